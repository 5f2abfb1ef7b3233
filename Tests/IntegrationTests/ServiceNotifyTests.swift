import Foundation
import Glibc
import PosternTesting
import Testing

/// systemd's notify protocol against a test socket (issue #19): READY once the
/// index is built, STATUS with the queue, WATCHDOG at half WATCHDOG_USEC,
/// RELOADING and READY around SIGHUP, and STOPPING on SIGTERM.
@Suite(.serialized)
struct ServiceNotifyTests {
    init() throws {
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    @Test func readyWatchdogStopping() throws {
        let fixture = try DaemonFixture()
        let socketPath = fixture.spool.directory + "/notify"
        let listener = try NotifySocket(path: socketPath)
        fixture.environment = ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "200000"]
        try fixture.start()
        let ready = listener.receive(until: { $0.contains("READY=1") })
        #expect(ready.contains { $0.contains("READY=1") && $0.contains("STATUS=0 queued, 0 held") })
        // At half of 0.2 s: a few within a second, without anything else happening.
        #expect(listener.receive(until: { $0 == "WATCHDOG=1" }).contains("WATCHDOG=1"))
        // SIGHUP: RELOADING, then READY again once the configuration is read.
        fixture.daemon?.signal(SIGHUP)
        let reload = listener.receive(until: { $0.hasPrefix("READY=1") })
        #expect(reload.contains("RELOADING=1"))
        #expect(reload.firstIndex(of: "RELOADING=1").map { $0 < reload.count - 1 } == true)
        #expect(fixture.stop() == 0)
        #expect(listener.receive(until: { $0.hasPrefix("STOPPING=1") }).contains { $0.hasPrefix("STOPPING=1") })
    }

    /// Without NOTIFY_SOCKET nothing is sent and nothing fails (a daemon not run by systemd).
    @Test func withoutSocketNothingChanges() throws {
        let fixture = try DaemonFixture()
        try fixture.start()
        try fixture.drop(subject: "plain")
        #expect(fixture.waitForSink(1))
        #expect(fixture.stop() == 0)
    }
}

/// The receiving end of the notify protocol: an AF_UNIX datagram socket.
final class NotifySocket {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
    }

    /// Datagrams received until one satisfies `done`, or 30 s (bounded).
    func receive(until done: (String) -> Bool) -> [String] {
        var messages: [String] = []
        let deadline = Date().addingTimeInterval(30)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { continue }
            let text = String(decoding: buffer.prefix(count), as: UTF8.self)
            messages.append(text)
            if done(text) { break }
        }
        return messages
    }
}
