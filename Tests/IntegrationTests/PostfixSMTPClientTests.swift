import Foundation
import PosternTesting
import Testing
import Delivery
import PosternCore
@testable import SMTP
@testable import TLS

/// The SMTP client against a real Postfix smtpd with STARTTLS on loopback,
/// relaying into smtp-sink (tools/postfix-peer.sh).
@Suite(.serialized)
struct PostfixSMTPClientTests {
    let peer: PostfixPeer
    let options: SMTPClientOptions

    init() throws {
        try #require(PostfixPeer.isAvailable, "Postfix and smtp-sink are needed (tools/test.sh installs them); run as root")
        let directory = NSTemporaryDirectory() + "/postern-postfix-certs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        let authority = try TestCertificateAuthority()
        let paths = try authority.issue(commonName: "mx.postern.test", dnsNames: ["mx.postern.test"]).write(to: directory, name: "smtpd")
        chmod(paths.key, 0o644)   // read by Postfix's unprivileged smtpd in its own instance
        try authority.root.certificatePEM.write(toFile: directory + "/ca.pem", atomically: true, encoding: .utf8)
        peer = try PostfixPeer(certificate: paths.certificate, key: paths.key)
        var options = SMTPClientOptions(ehloName: "client.postern.test", tlsMode: .required,
                                        tls: TLSClientOptions(verification: .pkix(hostnames: ["mx.postern.test"]), serverName: "mx.postern.test",
                                                              context: try TLSContext(trustAnchors: .file(directory + "/ca.pem"))))
        options.timeouts = SMTPTimeouts(uniform: 30)
        self.options = options
    }

    func deliver(_ transaction: Transaction) throws -> (SessionFacts, DeliveryReport) {
        let client = SMTPClient(stream: try TCPConnector.connect(ip: "127.0.0.1", port: peer.smtpdPort, deadline: .after(10)), options: options)
        let facts = try client.open()
        let report = client.deliver(transaction)
        client.quit()
        return (facts, report)
    }

    /// Over verified STARTTLS, Postfix receives the message and the sink gets exactly the bytes sent.
    @Test func deliversBytesIntact() throws {
        let message = "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: intact\r\nMessage-ID: <intact@postern.test>\r\n\r\n"
            + ".leading dot\r\n..two dots\r\n.\r\ncaf\u{e9} 8-bit\r\n" + String(repeating: "x", count: 900) + "\r\nend\r\n"
        var transaction = Transaction(sender: "alice@example.org", recipients: ["bob@example.net"], message: BytesMessageSource(Array(message.utf8)))
        transaction.eightBit = true
        let (facts, report) = try deliver(transaction)
        #expect(facts.tls?.verified == true)
        #expect(facts.tls?.version.hasPrefix("TLSv1.") == true)
        #expect(report.delivered == ["bob@example.net"])
        let arrived = try peer.waitForSinkMessages(count: 1)
        #expect(try PostfixPeer.body(ofSinkMessage: arrived[0]) == Data(message.utf8))
        #expect(peer.log.contains("TLS connection established"))
    }

    /// Postfix's 450 from an access map is a temporary result, its 550 a permanent one, per recipient.
    @Test func classifiesPostfixRejections() throws {
        let transaction = Transaction(sender: "alice@example.org", recipients: ["tempfail@x.example", "reject@x.example", "ok@x.example"],
                                      message: BytesMessageSource(Array("Subject: mixed\r\n\r\nbody\r\n".utf8)))
        let (_, report) = try deliver(transaction)
        let temporary = try #require(report.error(for: "tempfail@x.example"))
        #expect(temporary.code == 450 && !temporary.isPermanent && temporary.command == "RCPT TO")
        #expect(temporary.enhanced?.description == "4.2.0")
        let permanent = try #require(report.error(for: "reject@x.example"))
        #expect(permanent.code == 550 && permanent.isPermanent)
        #expect(permanent.enhanced?.description == "5.1.1")
        #expect(report.delivered == ["ok@x.example"])
        _ = try peer.waitForSinkMessages(count: 1)
    }
}

extension DeliveryReport {
    func error(for recipient: String) -> SMTPError? {
        for outcome in outcomes where outcome.recipient == recipient {
            if case .failure(let error) = outcome.result { return error }
        }
        return nil
    }
}

extension PostfixSMTPClientTests {
    /// Connection reuse against Postfix: five messages, to two domains, over verified STARTTLS through a
    /// session cache arrive over one connection, as Postfix's own log counts them (one session: five
    /// MAILs, four RSETs); each is verified TLS.
    @Test func fiveMessagesOverOneVerifiedConnection() throws {
        let sessions = SessionCache(limits: .init(maxMessages: 100, idleTimeout: 30, maxAge: 300))
        let relay = RelayTransport(name: "smarthost", host: "127.0.0.1", port: peer.smtpdPort, options: options, sessions: sessions)
        let directory = NSTemporaryDirectory() + "/postern-reuse-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var uses: [Int?] = []
        for index in 0..<5 {
            let path = directory + "/message-\(index)"
            try Data("Subject: reuse \(index)\r\n\r\nbody\r\n".utf8).write(to: URL(fileURLWithPath: path))
            let domain = index % 2 == 0 ? "one.example" : "two.example"
            let request = DeliveryRequest(id: QueueIDGenerator().next(), messagePath: path, sender: "alice@example.org",
                                          recipients: ["r\(index)@\(domain)"], domain: domain)
            let report = relay.deliver(request, cancellation: Cancellation())
            #expect(report.results.map(\.outcome) == [.delivered], "\(report.results)")
            #expect(report.tls?.contains("verified") == true, "\(report.tls ?? "none")")
            uses.append(report.connectionUse)
        }
        sessions.closeAll()
        #expect(uses == [1, 2, 3, 4, 5])
        #expect(try peer.waitForSinkMessages(count: 5).count == 5)
        // smtpd's summary of each session that carried mail (the peer's own readiness probe carries none),
        // logged once smtpd has handled the QUIT, which may be after the sink has the messages.
        func sessionsWithMailLogged() -> [String] {
            peer.log.components(separatedBy: "\n").filter { $0.contains(" disconnect from ") && $0.contains(" mail=") }
        }
        #expect(BackgroundProcess.waitUntil(timeout: 30) { !sessionsWithMailLogged().isEmpty }, "\(peer.log)")
        let sessionsWithMail = sessionsWithMailLogged()
        #expect(sessionsWithMail.count == 1 && sessionsWithMail[0].contains(" mail=5 ") && sessionsWithMail[0].contains(" rset=4 "),
                "\(sessionsWithMail)")
    }
}
