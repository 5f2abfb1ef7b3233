import Foundation
import Glibc
import PosternTesting
import Testing
@testable import Spool

/// RFC 3461 RET and ENVID end to end: given on MAIL FROM to the listener by
/// Python's smtplib, stored, relayed to a real Postfix, and honoured by the
/// failure DSN, which Python's email package parses.
@Suite(.serialized, .enabled(if: PostfixPeer.isAvailable && LocalSink.isAvailable))
struct SMTPListenerDSNTests {
    /// RET=HDRS and ENVID=QQ+2B1 reach Postfix on the relayed MAIL FROM (its
    /// smtp client passes them on to smtp-sink, which records them); the
    /// recipient Postfix refuses gets a failure DSN that returns the headers
    /// only (though dsn.return_full_up_to would allow the whole message) and
    /// names the envelope ID, decoded, in Original-Envelope-Id.
    @Test func retAndEnvelopeIDRelayedAndHonoured() throws {
        let directory = NSTemporaryDirectory() + "/postern-ret-certs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o755)
        let paths = try TestCertificate.selfSigned(commonName: "mx.postern.test", dnsNames: ["mx.postern.test"]).write(to: directory, name: "smtpd")
        chmod(paths.key, 0o644)
        let peer = try PostfixPeer(certificate: paths.certificate, key: paths.key)
        let fixture = try DaemonFixture(overrides: ["smtp.listen=[\"127.0.0.1:0\"]", "dsn.return_full_up_to=1000000"],
                                        relayPort: peer.smtpdPort)
        try fixture.start()
        defer { fixture.stop() }
        let port = try #require(fixture.smtpPort, "no smtp listening line: \(fixture.log)")

        let out = try PythonScript.run("""
            import smtplib
            s = smtplib.SMTP('127.0.0.1', \(port))
            s.ehlo('client.example')
            assert s.has_extn('dsn')
            body = b'Subject: ret hdrs\\r\\nMessage-ID: <ret@example.org>\\r\\n\\r\\nthe secret body line\\r\\n'
            print(s.sendmail('alice@example.org', ['bob@x.example', 'reject@x.example'], body,
                             mail_options=['RET=HDRS', 'ENVID=QQ+2B1']))
            s.quit()
            """)
        #expect(out == "{}\n")
        let arrived = try peer.waitForSinkMessages(count: 2, timeout: 60).map { String(decoding: $0, as: UTF8.self) }
        #expect(fixture.waitForEmptyQueue())

        let relayed = try #require(arrived.first { $0.contains("X-Rcpt-Args: <bob@x.example>") }, "\(arrived)")
        let mailArgs = try #require(relayed.split(separator: "\n").first { $0.hasPrefix("X-Mail-Args: ") })
        #expect(mailArgs.contains(" RET=HDRS") && mailArgs.contains(" ENVID=QQ+2B1"), "\(mailArgs)")
        #expect(relayed.contains("the secret body line"))

        let dsnDump = try #require(arrived.first { $0.contains("X-Mail-Args: <>") }, "\(arrived)")
        let parsed = try DSNEndToEndTests.parseWithPython(try PostfixPeer.body(ofSinkMessage: Data(dsnDump.utf8)))
        let parts = try #require(parsed["parts"] as? [[String: Any]])
        #expect(parts.map { $0["type"] as? String } == ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        let blocks = try #require(parts[1]["blocks"] as? [[String: String]])
        #expect(blocks.first?["Original-Envelope-Id"] == "QQ+1")
        #expect(blocks.last?["Final-Recipient"] == "rfc822; reject@x.example")
        let returned = try #require(parts[2]["text"] as? String)
        #expect(returned.contains("Subject: ret hdrs"))
        #expect(!dsnDump.contains("the secret body line"))
    }
}
