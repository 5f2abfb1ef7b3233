import Foundation
import Glibc

/// A private Postfix on loopback for integration tests of the SMTP client: smtpd
/// on `127.0.0.1:smtpdPort` offers STARTTLS, answers `tempfail@…` with 450 and
/// `reject@…` with 550, and relays everything else to smtp-sink on `sinkPort`,
/// which writes each message it receives to a file. A real MTA on the other end
/// catches what a hand-written fake would agree with us about.
///
/// With `sasl`, two more listeners require AUTH (a private Dovecot checks the one
/// account): `submissionPort` with STARTTLS required, `submissionsPort` with
/// implicit TLS. There, MAIL before AUTH gets 530, a wrong password 535; the
/// mechanisms are PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1 and SCRAM-SHA-256; mail
/// goes to the same sink (its smtpd `Received:` line says "ESMTPSA").
///
/// Each of `listeners` is one more smtpd on its own loopback address and port,
/// relaying to the same sink, with its own certificate or without STARTTLS: a
/// distinct MX host for DANE, MTA-STS and STARTTLS tests (see `Listener`).
///
/// All the work is in `tools/postfix-peer.sh` (runnable by hand, too); this only
/// picks ports and a directory, runs it, and reads the results. Needs root.
public final class PostfixPeer: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    /// One more smtpd, on `ip:port` (in 127.0.0.0/8: MX hosts of a test share
    /// one port, the client's `direct.port`, on distinct addresses). Its
    /// greeting, EHLO and `Received:` header name it `hostname`, and its log
    /// lines carry `logTag`. For example, two MX hosts, one with a certificate
    /// that matches a TLSA record and one that does not announce STARTTLS:
    ///
    /// ```swift
    /// let port = try freeLoopbackPort()
    /// let peer = try PostfixPeer(certificate: main.certificate, key: main.key, listeners: [
    ///     .starttls(ip: "127.0.0.2", port: port, certificate: good.certificate, key: good.key),
    ///     .plain(ip: "127.0.0.3", port: port),
    /// ])
    /// ```
    public struct Listener: Sendable {
        public let ip: String
        public let port: UInt16
        /// The certificate chain (leaf first) and key files STARTTLS offers;
        /// nil: EHLO does not list STARTTLS. Readable by user postfix.
        public let tls: (certificate: String, key: String)?

        /// STARTTLS offered with this certificate chain (PEM file) and key.
        public static func starttls(ip: String, port: UInt16, certificate: String, key: String) -> Listener {
            Listener(ip: ip, port: port, tls: (certificate, key))
        }

        /// STARTTLS not announced.
        public static func plain(ip: String, port: UInt16) -> Listener {
            Listener(ip: ip, port: port, tls: nil)
        }

        /// `127-0-0-2-2525.peer.postern.test`: what it calls itself.
        public var hostname: String { "\(ip.replacingOccurrences(of: ".", with: "-"))-\(port).peer.postern.test" }

        /// What its log lines in `PostfixPeer.log` contain: `/127-0-0-2-2525/smtpd[`.
        public var logTag: String { "/\(ip.replacingOccurrences(of: ".", with: "-"))-\(port)/smtpd[" }

        var arguments: [String] {
            ["--listener", "\(ip):\(port)"] + (tls.map { [$0.certificate, $0.key] } ?? ["none"])
        }
    }

    public let directory: String
    public let smtpdPort: UInt16
    public let sinkPort: UInt16
    /// With `sasl`: STARTTLS required, then AUTH. Nil without.
    public let submissionPort: UInt16?
    /// With `sasl`: implicit TLS (RFC 8314), AUTH. Nil without.
    public let submissionsPort: UInt16?
    public let listeners: [Listener]

    /// Whether Postfix is installed (`tools/postfix-peer.sh install`) and we are
    /// root, which the Postfix master needs: gate integration tests on this.
    public static var isAvailable: Bool {
        geteuid() == 0 && ["/usr/sbin/postfix", "/usr/sbin/smtp-sink"].allSatisfy(FileManager.default.isExecutableFile)
    }

    /// Whether Dovecot is installed too (the same `install`), which `sasl` needs.
    public static var isSASLAvailable: Bool {
        isAvailable && FileManager.default.isExecutableFile(atPath: "/usr/sbin/dovecot")
    }

    /// Starts an instance in a fresh directory under `NSTemporaryDirectory()`.
    /// Returns once smtpd and smtp-sink (and with `sasl`, the submission ports,
    /// AUTH included) answer; throws with the script's output (which includes the
    /// logs) if they do not. `sasl`: the one account the submission ports accept;
    /// the user of letters, digits and `._@-`, the password without `:`.
    /// `listeners`: more smtpd listeners, each waited for as well.
    public init(certificate: String, key: String, sasl: (user: String, password: String)? = nil,
                listeners: [Listener] = []) throws {
        self.listeners = listeners
        // All sockets are bound before any is closed, so the ports differ.
        // Another process may still take one before Postfix binds it: rare.
        var sockets: [(fd: Int32, port: UInt16)] = []
        defer { sockets.forEach { close($0.fd) } }
        for _ in 0..<(sasl == nil ? 2 : 4) { sockets.append(try bindLoopback()) }
        (smtpdPort, sinkPort) = (sockets[0].port, sockets[1].port)
        (submissionPort, submissionsPort) = sasl == nil ? (nil, nil) : (sockets[2].port, sockets[3].port)
        directory = NSTemporaryDirectory() + "postfix-peer-" + UUID().uuidString
        var arguments = ["start", directory, "\(smtpdPort)", "\(sinkPort)", certificate, key]
        if let sasl, let submissionPort, let submissionsPort {
            arguments += ["--sasl", "\(sasl.user):\(sasl.password)", "\(submissionPort)", "\(submissionsPort)"]
        }
        arguments += listeners.flatMap(\.arguments)
        sockets.forEach { close($0.fd) }
        sockets = []
        let (status, output) = try Self.run(arguments)
        // On failure the script has stopped what it started; deinit still runs
        // (every property is set) and removes the directory.
        guard status == 0 else { throw Failure(description: "postfix-peer.sh start failed (\(status)):\n\(output)") }
    }

    deinit {
        _ = try? Self.run(["stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Everything this instance's Postfix logged (DIR/log/maillog): "TLS
    /// connection established", "reject: RCPT …", "status=sent (250 …)", with
    /// `sasl` "sasl_method=PLAIN, sasl_username=…" and "SASL LOGIN authentication
    /// failed". The start-up probe shows as one "lost connection after STARTTLS"
    /// (and with `sasl`, one more on the submission port and one TLS session with
    /// EHLO and QUIT on the submissions port).
    public var log: String {
        (try? String(contentsOfFile: directory + "/log/maillog", encoding: .utf8)) ?? ""
    }

    /// With `sasl`, Dovecot's log (DIR/log/dovecot.log): "Password mismatch" and
    /// "unknown user" for failed logins. Empty without.
    public var saslLog: String {
        (try? String(contentsOfFile: directory + "/log/dovecot.log", encoding: .utf8)) ?? ""
    }

    /// Messages smtp-sink has written so far (file contents), sorted by file name:
    /// `<UTC time to the second>.<random hex>`, so the order of messages received
    /// within one second is arbitrary; match them by content. Files smtp-sink
    /// still holds open (a transaction between MAIL and ".") are left out.
    ///
    /// A file is NOT what the client sent. From the top, it holds:
    /// 1. smtp-sink's records, one line each: `X-Client-Addr:`, `X-Client-Proto:`,
    ///    `X-Helo-Args:`, `X-Mail-Args:` (MAIL FROM arguments, e.g. `<a@b>
    ///    BODY=8BITMIME`) and one `X-Rcpt-Args:` per recipient (`<r@x> ORCPT=…`);
    /// 2. smtp-sink's `Received:` header (3 lines: `Received: from …`, TAB `by …
    ///    (smtp-sink) with ESMTP id …;`, TAB date);
    /// 3. Postfix smtpd's `Received:` header (`from HELO (unknown [127.0.0.1])`,
    ///    TAB `by peer.postern.test (Postfix) with ESMTPS id QUEUEID`, and for one
    ///    recipient TAB `for <r@x>; date`): "ESMTPS" means the client used TLS
    ///    (plain "ESMTP" that it did not);
    /// 4. the message as the client sent it after dot-unstuffing, with every CR
    ///    removed (smtp-sink drops all CR bytes, so CRLF becomes LF);
    /// 5. one extra LF: the end of the client's terminating `.CRLF`.
    /// Postfix itself changes nothing else: tools/postfix-peer.sh turns off header
    /// rewriting, added headers, dropped headers (Bcc:, Return-Path:, …) and the
    /// folding of lines over 998 bytes. `sinkMessageBodies()` undoes 1–5.
    public func sinkMessages() throws -> [Data] {
        let sink = directory + "/sink"
        let names = try FileManager.default.contentsOfDirectory(atPath: sink).sorted()
        let open = openBySink()  // listed first, then checked: a closed file is complete
        return try names.filter { !open.contains($0) }.map { try Data(contentsOf: URL(fileURLWithPath: "\(sink)/\($0)")) }
    }

    /// The sink messages with exactly the lines described at `sinkMessages()`
    /// removed and LF turned back into CRLF: byte for byte what the client sent
    /// in DATA, before dot-stuffing, if that used only CRLF line ends (a bare CR
    /// or LF cannot survive smtp-sink) and ended with CRLF.
    public func sinkMessageBodies() throws -> [Data] {
        try sinkMessages().map(Self.body(ofSinkMessage:))
    }

    /// Undoes what smtp-sink and Postfix add to one dump file (see `sinkMessages()`).
    public static func body(ofSinkMessage dump: Data) throws -> Data {
        var lines = dump.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard lines.count >= 2, lines.removeLast().isEmpty, lines.removeLast().isEmpty else {
            throw Failure(description: "sink message does not end with the extra LF")
        }
        func starts(_ line: Data, _ prefix: String) -> Bool { line.starts(with: Data(prefix.utf8)) }
        let records = ["X-Client-Addr: ", "X-Client-Proto: ", "X-Helo-Args: ", "X-Mail-Args: ", "X-Rcpt-Args: "]
        var index = 0
        while index < lines.count, records.contains(where: { starts(lines[index], $0) }) { index += 1 }
        for _ in 0..<2 {  // smtp-sink's Received:, then smtpd's, each with its continuation lines
            guard index < lines.count, starts(lines[index], "Received: ") else {
                throw Failure(description: "sink message lacks the expected Received: headers")
            }
            index += 1
            while index < lines.count, let first = lines[index].first, first == 0x20 || first == 0x09 { index += 1 }
        }
        var body = Data()
        for line in lines[index...] { body.append(line); body.append(contentsOf: [0x0D, 0x0A]) }
        return body
    }

    /// Polls every 50 ms, at most `timeout` seconds, until smtp-sink has written
    /// at least `count` complete messages; relaying takes a queue manager pass,
    /// so a fixed sleep would be both slow and flaky. Throws with the log on timeout.
    public func waitForSinkMessages(count: Int, timeout: Double = 30) throws -> [Data] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let messages = try sinkMessages()
            if messages.count >= count { return messages }
            guard Date() < deadline else {
                throw Failure(description: "\(messages.count) of \(count) messages in the sink after \(timeout) s:\n\(log)")
            }
            usleep(50_000)
        }
    }

    /// Names of the files smtp-sink (pid in DIR/sink.pid) has open right now.
    private func openBySink() -> Set<String> {
        guard let pid = try? String(contentsOfFile: directory + "/sink.pid", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines), let number = pid_t(pid) else { return [] }
        return LocalSink.namesOpen(by: number)
    }

    private static func run(_ arguments: [String]) throws -> (Int32, String) {
        try PeerScript.run("postfix-peer.sh", arguments)
    }
}
