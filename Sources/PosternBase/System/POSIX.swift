import Glibc

/// The one place that turns `read(2)`, `write(2)` and their relatives into
/// "all of it, or a clear error": interrupted calls (`EINTR`) are repeated,
/// short transfers are continued, and every other failure comes back as a
/// `SystemCallError` that says how far the transfer got.
///
/// The system call itself is a parameter (`Transfer`), so that each caller
/// passes the call it makes (`write`, `send` with `MSG_NOSIGNAL`, `pread` at an
/// offset) and tests pass a scripted one that fails with `EINTR`, `EAGAIN`,
/// `ENOSPC` or `EIO`, or moves one octet at a time, on any call they choose.
///
/// Policy for `EAGAIN`/`EWOULDBLOCK` (a non-blocking descriptor that is not
/// ready): the helpers never spin and never wait. They stop and throw, with
/// `transferred` counting what did go through; a caller on a non-blocking
/// socket waits with `poll(2)` under its own deadline and calls again with the
/// rest. For a blocking descriptor `EAGAIN` cannot happen and is an error like
/// any other.
public enum POSIX {
    /// One transfer system call on a buffer: the number of octets moved
    /// (0 for end of file when reading), or -1 with `errno` set, exactly as
    /// `read(2)` and `write(2)` return.
    public typealias Transfer<Buffer> = (Buffer) -> Int

    /// The text of an errno value, as `strerror(3)` gives it (glibc 2.32 and
    /// later make it safe to call from several threads).
    public static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// Writes all of `bytes` with `call`, repeating it after `EINTR` and after
    /// each short write.
    ///
    /// A call that writes nothing for a non-empty buffer would loop forever;
    /// it is reported as `EIO` instead.
    /// - Throws: `SystemCallError` with the errno and the octets written before it.
    public static func writeAll(_ bytes: UnsafeRawBufferPointer,
                                with call: Transfer<UnsafeRawBufferPointer>) throws(SystemCallError) {
        var written = 0
        while written < bytes.count {
            let count = call(UnsafeRawBufferPointer(rebasing: bytes[written...]))
            if count > 0 {
                written += min(count, bytes.count - written)
            } else if count == 0 {
                throw SystemCallError(code: EIO, transferred: written)
            } else {
                let code = errno
                if code == EINTR { continue }
                throw SystemCallError(code: code, transferred: written)
            }
        }
    }

    /// Makes `call` (one system call returning a count, or -1 with `errno`)
    /// until it is not interrupted (`EINTR`): its count, or its errno thrown.
    /// For calls the helpers below do not cover (`copy_file_range`, `pread`).
    public static func uninterrupted(_ call: () -> Int) throws(SystemCallError) -> Int {
        while true {
            let count = call()
            if count >= 0 { return count }
            let code = errno
            if code != EINTR { throw SystemCallError(code: code) }
        }
    }

    /// One read into `buffer` with `call`, repeated after `EINTR`: the
    /// octets read, 0 at end of file. For loops that handle each block as it
    /// comes (copying, converting line endings).
    public static func readSome(into buffer: UnsafeMutableRawBufferPointer,
                                with call: Transfer<UnsafeMutableRawBufferPointer>) throws(SystemCallError) -> Int {
        guard buffer.count > 0 else { return 0 }
        return min(try uninterrupted { call(buffer) }, buffer.count)
    }

    /// Reads with `call` until `buffer` is full or the end of file, repeating
    /// after `EINTR` and short reads: the octets read, fewer than
    /// `buffer.count` only at end of file.
    /// - Throws: `SystemCallError` with the errno and the octets read before it.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer,
                            with call: Transfer<UnsafeMutableRawBufferPointer>) throws(SystemCallError) -> Int {
        var filled = 0
        while filled < buffer.count {
            let count: Int
            do throws(SystemCallError) {
                count = try readSome(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]), with: call)
            } catch {
                throw SystemCallError(code: error.code, transferred: filled)
            }
            if count == 0 { break }
            filled += count
        }
        return filled
    }

    /// Reads with `call` until the end of file or `limit` octets, whichever
    /// comes first. A caller that must refuse longer input asks for one octet
    /// more than it accepts and checks the count.
    public static func read(upTo limit: Int, with call: Transfer<UnsafeMutableRawBufferPointer>) throws(SystemCallError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: limit)
        var failure: SystemCallError?
        let count = bytes.withUnsafeMutableBytes { raw in
            do throws(SystemCallError) { return try fill(raw, with: call) } catch { failure = error; return 0 }
        }
        if let failure { throw failure }
        bytes.removeSubrange(count...)
        return bytes
    }
}

// MARK: - The same on a file descriptor, with read(2) and write(2)

extension POSIX {
    /// `write(2)` to `fd` until all of `bytes` is written.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemCallError) {
        try writeAll(bytes) { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    /// `write(2)` to `fd` until all of `bytes` is written.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemCallError) {
        var failure: SystemCallError?
        bytes.withUnsafeBytes { raw in
            do throws(SystemCallError) { try writeAll(fd, raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// One `read(2)` from `fd`, repeated after `EINTR`; 0 at end of file.
    public static func readSome(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Int {
        try readSome(into: buffer) { Glibc.read(fd, $0.baseAddress, $0.count) }
    }

    /// One `read(2)` from `fd` into the start of `buffer`, repeated after
    /// `EINTR`; 0 at end of file.
    public static func readSome(_ fd: Int32, into buffer: inout [UInt8]) throws(SystemCallError) -> Int {
        var failure: SystemCallError?
        let count = buffer.withUnsafeMutableBytes { raw in
            do throws(SystemCallError) { return try readSome(fd, into: raw) } catch { failure = error; return 0 }
        }
        if let failure { throw failure }
        return count
    }

    /// `read(2)` from `fd` until the end of file or `limit` octets.
    public static func read(_ fd: Int32, upTo limit: Int) throws(SystemCallError) -> [UInt8] {
        try read(upTo: limit) { Glibc.read(fd, $0.baseAddress, $0.count) }
    }
}

/// A system call that failed: its errno, and how many octets of the transfer
/// went through before it (the rest is still to do).
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int32
    public let transferred: Int

    public init(code: Int32, transferred: Int = 0) {
        self.code = code
        self.transferred = transferred
    }

    /// `EAGAIN` or `EWOULDBLOCK`: a non-blocking descriptor is not ready;
    /// wait for it and go on with the rest.
    public var wouldBlock: Bool { code == EAGAIN || code == EWOULDBLOCK }

    /// The errno's text, as `strerror(3)` gives it: callers put the call and
    /// the file in front ("write /var/spool/postern/tmp/X: No space left on device").
    public var description: String { POSIX.errorText(code) }
}
