import Foundation
import PosternCore
import PosternTesting
import Testing

/// The daemon's opportunistic STARTTLS in direct delivery against a real Postfix smtpd (issue #16): TLS
/// when offered; and, when the handshake fails, one plaintext connection that delivers.
@Suite(.serialized)
struct OpportunisticTLSTests {
    init() throws {
        try #require(PostfixPeer.isAvailable, "Postfix and smtp-sink are needed (tools/test.sh installs them); run as root")
    }

    /// Runs `postconf -e` on the peer's instance and reloads it: new smtpd processes see the change.
    static func reconfigure(_ peer: PostfixPeer, _ setting: String) throws {
        for arguments in [["postconf", "-c", peer.directory + "/etc", "-e", setting], ["postfix", "-c", peer.directory + "/etc", "reload"]] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0, "\(arguments.joined(separator: " ")) failed")
        }
    }

    /// Postfix offers STARTTLS: the daemon takes it (unverified: no policy applies to an unsigned domain),
    /// logs the outcome and policy, and the message arrives. Then Postfix is made to fail every handshake
    /// (TLS 1.1 at most, which Postern refuses): the next message goes over a second, plaintext connection.
    @Test func startTLSThenPlaintextRedial() throws {
        let directory = NSTemporaryDirectory() + "/postern-opportunistic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        let authority = try TestCertificateAuthority()
        let paths = try authority.issue(commonName: "mx.example.net", dnsNames: ["mx.example.net"]).write(to: directory, name: "smtpd")
        chmod(paths.key, 0o644)   // read by Postfix's unprivileged smtpd in its own instance
        let peer = try PostfixPeer(certificate: paths.certificate, key: paths.key)
        let dns = try FakeDNSServer(zone: .init(records: ["example.net": [.mx(10, "mx.example.net")], "mx.example.net": [.a("127.0.0.1")]]))
        defer { dns.stop() }
        let daemon = try DaemonFixture(overrides: ["direct.port=\(peer.smtpdPort)", "dns.nameserver=127.0.0.1:\(dns.port)",
                                                   "queue.reuse_max_messages=1"], relay: false)
        try daemon.start()
        try daemon.drop(subject: "over TLS", to: ["bob@example.net"])
        #expect(daemon.waitForLog("status=sent"))
        #expect(daemon.log.contains("tls_policy=none"))
        #expect(daemon.log.contains("tls_outcome=opportunistic"))
        #expect(try peer.waitForSinkMessages(count: 1).count == 1)
        #expect(peer.log.contains("TLS connection established"))

        try Self.reconfigure(peer, "smtpd_tls_protocols = <=TLSv1.1")
        try daemon.drop(subject: "in plaintext", to: ["carol@example.net"])
        #expect(daemon.waitForLog("status=sent", count: 2))
        #expect(daemon.log.contains("tls_outcome=none"))
        #expect(try peer.waitForSinkMessages(count: 2).count == 2)
        // Postfix saw the failed handshake, then a session without STARTTLS.
        #expect(peer.log.contains("SSL_accept error") || peer.log.contains("TLS library problem"), "\(peer.log)")
        #expect(daemon.stop() == 0)
    }
}
