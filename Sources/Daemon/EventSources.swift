import CSysShim
import Glibc
import PosternCore

/// A pipe that wakes the daemon's `poll(2)`: workers write 0 when a job is
/// done, the signal handler writes the signal's number.
final class WakePipe: @unchecked Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws(DaemonError) {
        var fds: [Int32] = [0, 0]
        guard csys_pipe2(&fds, O_NONBLOCK | O_CLOEXEC) == 0 else { throw DaemonError("pipe2: \(POSIX.errorText(errno))") }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func wake(_ byte: UInt8 = 0) {
        var value = byte
        // A full pipe already holds a wake-up: losing this byte loses nothing.
        _ = write(writeEnd, &value, 1)
    }

    /// Everything written since the last drain.
    func drain() -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let count = read(readEnd, &buffer, buffer.count)
            if count <= 0 { return result }
            result.append(contentsOf: buffer[0..<count])
        }
    }
}

/// The write end the signal handler uses: a C handler cannot capture context.
nonisolated(unsafe) private var signalWakeFD: Int32 = -1

/// Routes SIGTERM, SIGINT and SIGHUP into a wake pipe (the self-pipe trick), so
/// the event loop handles them as events, on its own thread, whatever thread
/// the kernel delivered them to.
enum SignalRouting {
    static func install(_ pipe: WakePipe) {
        signalWakeFD = pipe.writeEnd
        for signal in [SIGTERM, SIGINT, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalWakeFD, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signal, &action, nil)
        }
        // Whoever started us may have blocked them (a parent's mask is inherited
        // across exec): a daemon that cannot be stopped is worse than none.
        var set = sigset_t()
        sigemptyset(&set)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, signal) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        // A vanished peer must cost an error, never the daemon.
        Glibc.signal(SIGPIPE, SIG_IGN)
    }
}

/// inotify(7) on the spool's directories: how the daemon notices drops,
/// operators' moves and control requests at once, without polling.
final class DirectoryWatcher {
    struct Event {
        let directory: String
        let name: String
        let mask: UInt32
        var overflowed: Bool { mask & UInt32(IN_Q_OVERFLOW) != 0 }
        var watchLost: Bool { mask & UInt32(IN_IGNORED) != 0 }
    }

    let fd: Int32
    private var directories: [Int32: String] = [:]

    init() throws(DaemonError) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw DaemonError("inotify_init1: \(POSIX.errorText(errno))") }
    }

    deinit {
        close(fd)
    }

    /// Watches `path` for entries appearing (created or renamed in) and leaving.
    func watch(_ path: String) throws(DaemonError) {
        let mask = UInt32(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
        let descriptor = inotify_add_watch(fd, path, mask)
        guard descriptor >= 0 else { throw DaemonError("inotify_add_watch \(path): \(POSIX.errorText(errno))") }
        directories[descriptor] = path
    }

    /// The events waiting now (non-blocking).
    func read() -> [Event] {
        var events: [Event] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count <= 0 { return events }
            var offset = 0
            buffer.withUnsafeBytes { raw in
                while offset + MemoryLayout<inotify_event>.size <= count {
                    let header = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    let nameStart = offset + MemoryLayout<inotify_event>.size
                    let nameBytes = raw[nameStart..<min(count, nameStart + Int(header.len))].prefix { $0 != 0 }
                    events.append(Event(directory: directories[header.wd] ?? "", name: String(decoding: nameBytes, as: UTF8.self),
                                        mask: header.mask))
                    offset = nameStart + Int(header.len)
                }
            }
        }
    }
}

/// A failure that stops the daemon from starting or running.
public struct DaemonError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
