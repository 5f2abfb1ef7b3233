import COpenSSL
import COpenSSLShim
import Foundation
import Glibc
import PosternCore

/// An SMTP server that follows a script, for testing the client without a
/// network: it runs on its own thread at one end of a socketpair, and the
/// script reads like a transcript.
///
/// ```swift
/// let peer = try ScriptedSMTPPeer([
///     .send("220 mx.example ESMTP"),
///     .expect("EHLO client.example"),
///     .send("250-mx.example\n250 PIPELINING"),
///     ...
/// ])
/// let client = SMTPClient(stream: try SocketStream(fileDescriptor: peer.clientSocket), ...)
/// ```
/// `finish()` waits for the script to end and returns what happened; a line
/// that differs from what the script expected is recorded as a failure and the
/// server hangs up, as a real one would on a protocol error.
public final class ScriptedSMTPPeer: @unchecked Sendable {
    public enum Step: Sendable {
        /// Lines to send, separated by `\n`; each goes out with CRLF.
        case send(String)
        /// Bytes to send exactly as given (garbage, bare LFs, overlong lines).
        case sendRaw([UInt8])
        /// One line from the client, which must equal this.
        case expect(String)
        /// One line from the client, which must start with this.
        case expectPrefix(String)
        /// The message after a 354: lines up to the lone dot, recorded as received.
        case receiveData
        /// A server-side TLS handshake (after "220 ready" to STARTTLS, or first thing for implicit TLS).
        case startTLS(ServerTLS)
        /// Sends these bytes over and over until the client stops reading and
        /// hangs up, or `limit` octets have gone out: a server that never ends
        /// a reply. The octets sent are in `Outcome.flooded`.
        case flood([UInt8], limit: Int)
        /// Sends these bytes one at a time, `interval` seconds apart, until
        /// they are all out or the client hangs up: a slowloris server.
        case drip([UInt8], interval: Double)
        /// Hang up.
        case close
        /// Hang up with a TCP reset (SO_LINGER 0) instead of a FIN: a server
        /// that crashed or a middlebox that dropped the connection.
        case reset
        /// Say nothing and read until the client gives up and closes.
        case waitForClose
        /// Anything a fixed line cannot express (a SASL server computing its
        /// answers); a thrown error is recorded as a failure and ends the script.
        case custom(@Sendable (inout PeerConnection) throws -> Void)
    }

    /// The server's certificate and protocol limits.
    public struct ServerTLS: Sendable {
        public var certificateChain: String
        public var key: String
        /// e.g. `TLS1_1_VERSION` to play a server stuck on an old protocol.
        public var maximumVersion: Int32?

        public init(certificateChain: String, key: String, maximumVersion: Int32? = nil) {
            self.certificateChain = certificateChain
            self.key = key
            self.maximumVersion = maximumVersion
        }
    }

    /// What the server saw and did.
    public struct Outcome: Sendable {
        /// `C: line` and `S: line`, in order.
        public var transcript: [String] = []
        /// Each message received with `.receiveData`, exactly as it came (still dot-stuffed, CRLF).
        public var messages: [[UInt8]] = []
        /// Where the client did not follow the script.
        public var failures: [String] = []
        /// The TLS version the server negotiated, if any.
        public var tlsVersion: String?
        /// Octets sent by `.flood` and `.drip` steps before the client hung up.
        public var flooded = 0
    }

    /// The client's end of the socketpair; hand it to `SocketStream`, which then owns it.
    /// -1 for a peer made with `init(listening:)`.
    public let clientSocket: Int32
    /// The loopback port of a peer made with `init(listening:)`; 0 otherwise.
    public let port: UInt16
    private let done = DispatchSemaphore(value: 0)
    private var outcome = Outcome()

    public init(_ script: [Step]) throws {
        // The server writes to clients that may have hung up: EPIPE, not SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        clientSocket = fds[0]
        port = 0
        let serverSocket = fds[1]
        Thread.detachNewThread { [self] in
            play(script, on: serverSocket)
            done.signal()
        }
    }

    /// A peer on 127.0.0.1 at `port`, for a client in another process (the
    /// `postern smtp-probe` binary): it accepts one connection and plays the
    /// script on it. A client that never connects ends the script after 30
    /// seconds (`accept` honours SO_RCVTIMEO), recorded as a failure.
    public convenience init(listening script: [Step]) throws {
        try self.init(listening: [script])
    }

    /// A peer on 127.0.0.1 that accepts one connection per script, one after
    /// the other, and plays each script on its connection: a server that a
    /// client leaves and comes back to (connection reuse ending).
    /// `ip` and `port` place it elsewhere in 127.0.0.0/8 on a given port: one
    /// more MX host beside `PostfixPeer`'s listeners, on their port (0: any).
    public init(listening scripts: [[Step]], ip: String = "127.0.0.1", port: UInt16 = 0) throws {
        signal(SIGPIPE, SIG_IGN)
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(ip)
        address.sin_port = port.bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        let ready = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0
            }
        } && listen(listener, 1) == 0
            && setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0
        guard ready else {
            let code = errno
            Glibc.close(listener)
            throw POSIXError(.init(rawValue: code) ?? .EIO)
        }
        clientSocket = -1
        self.port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread { [self] in
            defer {
                Glibc.close(listener)
                done.signal()
            }
            for (index, script) in scripts.enumerated() {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else {
                    outcome.failures.append("no client made connection \(index + 1) to port \(self.port)")
                    return
                }
                play(script, on: connection)
            }
        }
    }

    /// Runs the script on the server's end of a connection, then closes it.
    private func play(_ script: [Step], on fd: Int32) {
        var connection = PeerConnection(fd: fd)
        run(script, on: &connection)
        connection.close()
    }

    /// Waits for the script to end (the client must have closed or the script hung up).
    public func finish() -> Outcome {
        done.wait()
        return outcome
    }

    private func run(_ script: [Step], on connection: inout PeerConnection) {
        for step in script {
            switch step {
            case .send(let text):
                for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                    outcome.transcript.append("S: \(line)")
                    connection.write(Array((line + "\r\n").utf8))
                }
            case .sendRaw(let bytes):
                outcome.transcript.append("S: <\(bytes.count) raw octets>")
                connection.write(bytes)
            case .expect(let expected), .expectPrefix(let expected):
                guard let line = connection.readLine() else {
                    outcome.failures.append("expected \"\(expected)\", the client closed the connection")
                    return
                }
                outcome.transcript.append("C: \(line)")
                let matches: Bool = if case .expect = step { line == expected } else { line.hasPrefix(expected) }
                if !matches {
                    outcome.failures.append("expected \"\(expected)\", got \"\(line)\"")
                    return
                }
            case .receiveData:
                var message: [UInt8] = []
                while true {
                    guard let line = connection.readRawLine() else {
                        outcome.failures.append("the connection closed during DATA")
                        return
                    }
                    if line == Array(".\r\n".utf8) { break }
                    message.append(contentsOf: line)
                }
                outcome.transcript.append("C: <message of \(message.count) octets>")
                outcome.messages.append(message)
            case .startTLS(let tls):
                do {
                    outcome.tlsVersion = try connection.acceptTLS(tls)
                    outcome.transcript.append("S: <TLS \(outcome.tlsVersion ?? "")>")
                } catch {
                    outcome.failures.append("TLS handshake: \(error)")
                    return
                }
            case .custom(let body):
                do {
                    try body(&connection)
                } catch {
                    outcome.failures.append("\(error)")
                    return
                }
            case .flood(let bytes, let limit):
                outcome.transcript.append("S: <flood of \(bytes.count)-octet units>")
                while outcome.flooded < limit, connection.trySend(bytes) { outcome.flooded += bytes.count }
            case .drip(let bytes, let interval):
                outcome.transcript.append("S: <\(bytes.count) octets, one every \(interval)s>")
                for byte in bytes {
                    guard connection.trySend([byte]) else { break }
                    outcome.flooded += 1
                    Thread.sleep(forTimeInterval: interval)
                }
            case .close:
                return
            case .reset:
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(connection.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                return
            case .waitForClose:
                while connection.readRawLine() != nil {}
                return
            }
        }
    }
}

/// The server's end of the connection: blocking reads and writes, plain or TLS.
public struct PeerConnection {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var context: OpaquePointer?
    private var ssl: OpaquePointer?

    init(fd: Int32) {
        self.fd = fd
    }

    mutating func acceptTLS(_ tls: ScriptedSMTPPeer.ServerTLS) throws -> String {
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw PeerError("SSL_CTX_new") }
        self.context = context
        if let maximum = tls.maximumVersion {
            // Old protocols need the lowest security level in OpenSSL 3.
            SSL_CTX_set_cipher_list(context, "DEFAULT:@SECLEVEL=0")
            _ = shim_SSL_CTX_set_min_proto_version(context, TLS1_VERSION)
            _ = shim_SSL_CTX_set_max_proto_version(context, maximum)
        }
        guard SSL_CTX_use_certificate_chain_file(context, tls.certificateChain) == 1,
              SSL_CTX_use_PrivateKey_file(context, tls.key, SSL_FILETYPE_PEM) == 1,
              let ssl = SSL_new(context) else { throw PeerError("cannot load the server certificate") }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        guard SSL_accept(ssl) == 1 else { throw PeerError("SSL_accept failed (error \(ERR_get_error()))") }
        return String(cString: SSL_get_version(ssl))
    }

    /// Sends one line with CRLF.
    public mutating func send(_ line: String) {
        write(Array((line + "\r\n").utf8))
    }

    /// TLS exporter output on the server's side (RFC 5705), e.g. for channel binding.
    public func exportKeyingMaterial(label: String, length: Int) -> [UInt8]? {
        guard let ssl else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        return SSL_export_keying_material(ssl, &out, length, label, label.utf8.count, nil, 0, 0) == 1 ? out : nil
    }

    mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            if let ssl {
                var written = 0
                _ = SSL_write_ex(ssl, raw.baseAddress, raw.count, &written)
            } else {
                _ = Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
            }
        }
    }

    /// Sends all of `bytes` on a plain connection; false once the client has
    /// gone (EPIPE, ECONNRESET), for the steps that send until it does.
    mutating func trySend(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            do throws(SystemCallError) {
                try POSIX.writeAll(raw) { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                return true
            } catch {
                return false
            }
        }
    }

    /// A line without its CRLF, or nil at end of stream.
    public mutating func readLine() -> String? {
        guard var line = readRawLine() else { return nil }
        while line.last == 0x0A || line.last == 0x0D { line.removeLast() }
        return String(decoding: line, as: UTF8.self)
    }

    /// A line with its terminator, or nil at end of stream.
    mutating func readRawLine() -> [UInt8]? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[...newline])
                buffer.removeFirst(newline + 1)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 16384)
            let count: Int = chunk.withUnsafeMutableBytes { raw in
                if let ssl {
                    var read = 0
                    return SSL_read_ex(ssl, raw.baseAddress, raw.count, &read) == 1 ? read : 0
                }
                return recv(fd, raw.baseAddress, raw.count, 0)
            }
            guard count > 0 else { return buffer.isEmpty ? nil : { defer { buffer.removeAll() }; return buffer }() }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }

    mutating func close() {
        if let ssl { SSL_free(ssl) }
        if let context { SSL_CTX_free(context) }
        Glibc.close(fd)
    }
}

public struct PeerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
