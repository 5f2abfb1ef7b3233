import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// Transports and routes end to end, each against a real peer on loopback:
/// unbound for DNS, smtp-sinks on several 127.0.0.x addresses as MX hosts,
/// Postfix with Dovecot SASL for submission, Dante for SOCKS5, a Maildir read
/// back by Python's mailbox module.
@Suite(.serialized)
struct TransportTests {
    init() throws {
        try #require(LocalSink.isAvailable && PostfixPeer.isAvailable && DNSPeer.isAvailable && SOCKSPeer.isAvailable,
                     "Postfix, unbound and Dante are needed (tools/test.sh installs them)")
    }

    /// Two sinks on one port, at two loopback addresses: the MX hosts of the zone below.
    static func mxSinks() throws -> (LocalSink, LocalSink) {
        let first = try LocalSink(ip: "127.0.0.3")
        return (first, try LocalSink(ip: "127.0.0.4", port: first.port))
    }

    /// A private unbound with MX, CNAME, implicit-MX and null-MX domains; 127.0.0.2 listens nowhere.
    static let zone = [
        "sender.test. MX 10 mx.sender.test.", "mx.sender.test. A 127.0.0.3",
        "multi.test. MX 10 mx1.multi.test.", "multi.test. MX 20 mx2.multi.test.",
        "mx1.multi.test. A 127.0.0.2", "mx2.multi.test. A 127.0.0.3",
        "alias.test. CNAME multi.test.",
        "nomx.test. A 127.0.0.4",
        "nullmx.test. MX 0 .",
        "fallback.test. MX 10 mx.fallback.test.", "mx.fallback.test. A 127.0.0.2",
        "proxied.test. MX 10 mx.proxied.test.", "mx.proxied.test. A 127.0.0.4",
        "greylist.test. MX 10 busy.greylist.test.", "greylist.test. MX 20 mx2.multi.test.", "busy.greylist.test. A 127.0.0.5",
    ]

    /// Direct delivery through a real DNS server: MX order with a dead first host
    /// and with a first host answering 4xx, a CNAME, an implicit MX, two
    /// recipients of one domain in one transaction; null MX and NXDOMAIN bounce,
    /// and the DSN itself is delivered to the sender domain's MX.
    @Test func directThroughRealDNS() throws {
        let dns = try DNSPeer(zone: Self.zone)
        let (mx3, mx4) = try Self.mxSinks()
        let busy = try LocalSink(options: ["-r", "RCPT"], ip: "127.0.0.5", port: mx3.port)
        let fixture = try DaemonFixture(overrides: ["dns.nameserver=127.0.0.1:\(dns.port)", "direct.port=\(mx3.port)",
                                                    "direct.connect_timeout=5s"], relay: false)
        try fixture.start()
        try fixture.drop(subject: "direct", to: ["bob@multi.test", "bert@multi.test", "carol@alias.test", "dave@nomx.test",
                                                 "erin@nullmx.test", "frank@missing.test", "gina@greylist.test"], from: "alice@sender.test")
        #expect(fixture.waitForLog("status=bounced", count: 2))
        // multi.test's (both recipients) and alias.test's jobs, gina's after busy.greylist.test's 4xx,
        // then the DSN for erin and frank, at 127.0.0.3; dave's at 127.0.0.4.
        #expect(BackgroundProcess.waitUntil(timeout: 60) { mx3.messages().count == 4 && mx4.messages().count == 1 })
        // An abandoned transaction's dump file is removed by smtp-sink, perhaps after we moved on.
        #expect(BackgroundProcess.waitUntil(timeout: 10) { busy.messages().isEmpty })
        #expect(mx3.messages().contains { $0.contains("X-Rcpt-Args: <bob@multi.test>") && $0.contains("X-Rcpt-Args: <bert@multi.test>") })
        #expect(mx3.messages().contains { $0.contains("X-Rcpt-Args: <gina@greylist.test>") })
        #expect(fixture.waitForEmptyQueue())
        let log = fixture.log
        #expect(log.contains("recipient=bob@multi.test") && log.contains("host=mx2.multi.test"))
        #expect(log.split(separator: "\n").contains { $0.contains("recipient=bob@multi.test") && $0.contains("host=mx2.multi.test") })
        #expect(log.split(separator: "\n").contains { $0.contains("recipient=dave@nomx.test") && $0.contains("status=sent") && $0.contains("host=nomx.test") })
        #expect(log.contains("null MX, RFC 7505") && log.contains("missing.test does not exist (NXDOMAIN)"))
        let dsn = try #require(mx3.messages().first { $0.contains("Undelivered mail returned to sender") })
        #expect(dsn.contains("X-Rcpt-Args: <alice@sender.test>"))
        #expect(fixture.stop() == 0)
    }

    /// After one failed direct attempt, `min_attempts = 1` sends the next through a smarthost.
    @Test func fallbackAfterAttempts() throws {
        let dns = try DNSPeer(zone: Self.zone)
        let fixture = try DaemonFixture(overrides: ["dns.nameserver=127.0.0.1:\(dns.port)", "direct.connect_timeout=5s",
                                                    "queue.backoff_base=1h"],
                                        relay: false, config: "")
        try Data("""
            [transports.smarthost]
            kind = "relay"
            host = "127.0.0.1:\(fixture.sink.port)"
            tls = "none"

            [[routes]]
            min_attempts = 1
            transport = "smarthost"
            """.utf8).write(to: URL(fileURLWithPath: fixture.configPath))
        try fixture.start()
        let id = try fixture.drop(subject: "fallback", to: ["bob@fallback.test"])
        #expect(fixture.waitForLog("status=deferred"))
        #expect(fixture.log.contains("transport=direct"))
        // mox's dialed-IPs memory reaches the envelope, for the next attempt's order.
        #expect(BackgroundProcess.waitUntil(timeout: 10) {
            (try? fixture.envelope(id).dialedIPs) == ["mx.fallback.test": ["127.0.0.2"]]
        })
        #expect(try fixture.postern(["kick", id]).status == 0)
        #expect(fixture.waitForLog("status=sent"))
        #expect(fixture.log.split(separator: "\n").contains { $0.contains("status=sent") && $0.contains("transport=smarthost") })
        #expect(fixture.waitForSink(1))
        #expect(fixture.stop() == 0)
    }

    /// The submission transports against Postfix requiring AUTH (Dovecot SASL):
    /// STARTTLS on one port, implicit TLS on the other, both verified against the
    /// test CA; a wrong password defers instead of bouncing.
    @Test func submissionWithAuth() throws {
        let directory = NSTemporaryDirectory() + "postern-sasl-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let paths = try TestCertificate.selfSigned(commonName: "localhost", dnsNames: ["localhost"]).write(to: directory, name: "smtpd")
        chmod(paths.key, 0o644)
        let peer = try PostfixPeer(certificate: paths.certificate, key: paths.key, sasl: (user: "postern", password: "s3cret pass"))
        let good = directory + "/good.credentials", bad = directory + "/bad.credentials"
        try Data("username = \"postern\"\npassword = \"s3cret pass\"\n".utf8).write(to: URL(fileURLWithPath: good))
        try Data("username = \"postern\"\npassword = \"wrong\"\n".utf8).write(to: URL(fileURLWithPath: bad))
        chmod(good, 0o600)
        chmod(bad, 0o600)
        let fixture = try DaemonFixture(overrides: ["queue.backoff_base=1h"], relay: false, config: """
            [transports.starttls]
            kind = "submission"
            host = "localhost:\(try #require(peer.submissionPort))"
            credentials = "\(good)"
            ca_file = "\(paths.certificate)"

            [transports.implicit]
            kind = "submissions"
            host = "localhost:\(try #require(peer.submissionsPort))"
            credentials = "\(good)"
            ca_file = "\(paths.certificate)"

            [transports.badpass]
            kind = "submission"
            host = "localhost:\(try #require(peer.submissionPort))"
            credentials = "\(bad)"
            ca_file = "\(paths.certificate)"

            [[routes]]
            recipient_domains = ["one.example"]
            transport = "starttls"

            [[routes]]
            recipient_domains = ["two.example"]
            transport = "implicit"

            [[routes]]
            transport = "badpass"
            """)
        try fixture.start()
        try fixture.drop(subject: "via587", to: ["bob@one.example"])
        try fixture.drop(subject: "via465", to: ["carol@two.example"])
        let refused = try fixture.drop(subject: "refused", to: ["dave@three.example"])
        let bodies = try peer.waitForSinkMessages(count: 2).map { String(decoding: $0, as: UTF8.self) }
        #expect(bodies.contains { $0.contains("Subject: via587") } && bodies.contains { $0.contains("Subject: via465") })
        #expect(bodies.allSatisfy { $0.contains("with ESMTPSA") })
        #expect(fixture.waitForLog("status=deferred"))
        let envelope = try fixture.envelope(refused)
        #expect(envelope.recipients[0].state == .pending)
        #expect(envelope.recipients[0].lastResult?.code == 535)
        #expect(peer.log.contains("sasl_username=postern"))
        #expect(fixture.waitForLog("status=sent", count: 2))
        #expect(fixture.log.split(separator: "\n").filter { $0.contains("status=sent") }.allSatisfy { $0.contains("verified=pkix") })
        #expect(!fixture.log.contains("s3cret"))
        #expect(fixture.stop() == 0)
    }

    /// The socks5 transport: MX lookup here, the connection through Dante.
    @Test func socks5ThroughDante() throws {
        let dns = try DNSPeer(zone: Self.zone)
        let socks = try SOCKSPeer()
        let (_, mx4) = try Self.mxSinks()
        let fixture = try DaemonFixture(overrides: ["dns.nameserver=127.0.0.1:\(dns.port)", "direct.port=\(mx4.port)"], config: """
            [transports.proxy]
            kind = "socks5"
            proxy = "127.0.0.1:\(socks.port)"
            ehlo_name = "proxy-out.postern.test"

            [[routes]]
            recipient_domains = ["proxied.test"]
            transport = "proxy"
            """)
        try fixture.start()
        try fixture.drop(subject: "proxied", to: ["bob@proxied.test"])
        #expect(fixture.waitForLog("status=sent"))
        #expect(BackgroundProcess.waitUntil(timeout: 30) { mx4.messages().count == 1 })
        #expect(socks.relayed(to: "127.0.0.4.\(mx4.port)"))
        #expect(mx4.messages().first?.contains("X-Helo-Args: proxy-out.postern.test") == true)
        #expect(fixture.sink.messages().isEmpty)
        #expect(fixture.stop() == 0)
    }

    /// The maildir transport, read back with Python's mailbox module.
    @Test func maildirReadBack() throws {
        let fixture = try DaemonFixture(config: "")
        let maildir = fixture.spool.directory + "/Maildir"
        try Data("""
            [transports.local]
            kind = "maildir"
            path = "\(maildir)"

            [[routes]]
            recipient_domains = ["local.test"]
            transport = "local"
            """.utf8).write(to: URL(fileURLWithPath: fixture.configPath))
        try fixture.start()
        try fixture.drop(subject: "into the maildir", to: ["bob@local.test", "carol@local.test"])
        #expect(fixture.waitForLog("status=sent", count: 2))
        let script = """
            import json, mailbox, sys
            box = mailbox.Maildir(sys.argv[1], create=False)
            print(json.dumps([{"subject": m["Subject"], "delivered_to": m.get_all("Delivered-To"),
                               "return_path": m["Return-Path"], "body": m.get_payload()} for m in box]))
            """
        let output = try PythonScript.run(script, arguments: [maildir])
        let messages = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]])
        #expect(messages.count == 1)
        #expect(messages.first?["subject"] as? String == "into the maildir")
        #expect(messages.first?["delivered_to"] as? [String] == ["bob@local.test", "carol@local.test"])
        #expect(messages.first?["return_path"] as? String == "<alice@example.org>")
        #expect((messages.first?["body"] as? String)?.contains("body of into the maildir") == true)
        #expect(fixture.stop() == 0)
    }
}
