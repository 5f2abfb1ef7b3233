import Glibc

/// systemd's notify protocol (sd_notify(3)), without libsystemd: each state is
/// a datagram of `KEY=VALUE` lines sent to the `AF_UNIX` socket that
/// `NOTIFY_SOCKET` names (a path, or `@name` in the abstract namespace).
///
/// With `Type=notify` the unit is started once the daemon says `READY=1`
/// (its index is built and it accepts work), a stop shows `STOPPING=1`,
/// `STATUS=` carries the queue counts for `systemctl status`, and with
/// `WatchdogSec=` the daemon sends `WATCHDOG=1` at half the interval from its
/// event loop, so that a hung loop is restarted. A few lines of C library calls
/// instead of a library to load at every start.
public final class ServiceNotifier: Sendable {
    private let fd: Int32
    private let address: sockaddr_un
    private let length: socklen_t
    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, when the
    /// watchdog is meant for this process (`WATCHDOG_PID` unset or ours).
    public let watchdogInterval: Double?

    /// nil when `NOTIFY_SOCKET` is not set (not started by systemd) or unusable.
    public init?(environment: [String: String]) {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty, path.utf8.count < 108,
              path.hasPrefix("/") || path.hasPrefix("@") else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }   // the abstract namespace
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        self.fd = fd
        self.address = address
        length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        if let text = environment["WATCHDOG_USEC"], let micros = Double(text), micros > 0,
           environment["WATCHDOG_PID"].map({ $0 == String(getpid()) }) ?? true {
            watchdogInterval = micros / 2_000_000
        } else {
            watchdogInterval = nil
        }
    }

    deinit {
        close(fd)
    }

    /// Sends one state change; best effort (a missing listener is not an error of ours).
    public func send(_ fields: String) {
        var target = address
        _ = fields.utf8CString.withUnsafeBufferPointer { text in
            withUnsafePointer(to: &target) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, text.baseAddress, text.count - 1, Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
    }
}
