import DNS
import Foundation
import PosternCore
import PosternTesting
import SMTP
import Testing
@testable import Delivery

/// Direct delivery: MX selection against a mock resolver, and attempts against smtp-sink on loopback addresses.
struct DirectTransportTests {
    static func transport(_ resolver: MockResolver, port: UInt16 = 25, family: DirectTransport.Family = .any,
                          budget: Double = 60) -> DirectTransport {
        var options = SMTPClientOptions(ehloName: "client.postern.test", tlsMode: .opportunistic)
        options.timeouts = SMTPTimeouts(uniform: 10)
        return DirectTransport(resolver: resolver, options: options, port: port, family: family,
                               limits: ConnectLimits(perAddress: 5, perAttempt: budget))
    }

    /// MX hosts come in preference order, equal preferences in any order.
    @Test func preferenceOrder() {
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 20, host: "backup.example.org"),
                                                         MXRecord(preference: 10, host: "a.example.org"),
                                                         MXRecord(preference: 10, host: "b.example.org")]])
        guard case .hosts(let hosts, _) = Self.transport(resolver).destinations(for: "example.org") else {
            Issue.record("expected hosts")
            return
        }
        #expect(Set(hosts.prefix(2)) == ["a.example.org", "b.example.org"])
        #expect(hosts.last == "backup.example.org")
    }

    /// No MX means the domain itself (implicit MX); null MX and NXDOMAIN are permanent; SERVFAIL is temporary.
    @Test func verdicts() {
        let resolver = MockResolver(mx: ["null.example": [MXRecord(preference: 0, host: "")]],
                                    a: ["implicit.example": ["127.0.0.1"]],
                                    serverFailures: ["broken.example"])
        let transport = Self.transport(resolver)
        #expect(transport.destinations(for: "implicit.example") == .hosts(["implicit.example"], authentic: false))
        #expect(transport.destinations(for: "null.example") == .permanent("null.example accepts no mail (null MX, RFC 7505)"))
        #expect(transport.destinations(for: "missing.example") == .permanent("missing.example does not exist (NXDOMAIN)"))
        guard case .temporary = transport.destinations(for: "broken.example") else {
            Issue.record("SERVFAIL should be temporary")
            return
        }
    }

    /// CNAMEs are followed to the MX; a loop is a temporary failure, not a hang.
    @Test func cnames() {
        let resolver = MockResolver(mx: ["real.example": [MXRecord(preference: 10, host: "mx.real.example")]],
                                    cname: ["alias.example": "real.example", "loop1.example": "loop2.example", "loop2.example": "loop1.example"])
        let transport = Self.transport(resolver)
        #expect(transport.destinations(for: "alias.example") == .hosts(["mx.real.example"], authentic: false))
        guard case .temporary = transport.destinations(for: "loop1.example") else {
            Issue.record("a CNAME loop should be temporary")
            return
        }
    }

    /// A CNAME to a name that does not exist is that name's NXDOMAIN: permanent. A chain longer
    /// than the limit and a timed-out lookup are temporary.
    @Test func cnameEdges() {
        var chain: [String: String] = [:]
        for index in 0...DirectTransport.cnameLimit { chain["c\(index).example"] = "c\(index + 1).example" }
        chain["dangling.example"] = "gone.example"
        let resolver = MockResolver(a: ["c\(DirectTransport.cnameLimit + 1).example": ["192.0.2.9"]], cname: chain,
                                    timeouts: ["slow.example"])
        let transport = Self.transport(resolver)
        #expect(transport.destinations(for: "dangling.example") == .permanent("dangling.example does not exist (NXDOMAIN)"))
        #expect(transport.destinations(for: "c\(DirectTransport.cnameLimit - 2).example") == .hosts(["c\(DirectTransport.cnameLimit + 1).example"], authentic: false))
        guard case .temporary = transport.destinations(for: "c0.example"), case .temporary = transport.destinations(for: "slow.example") else {
            Issue.record("an overlong CNAME chain and a timeout must be temporary")
            return
        }
    }

    /// A host with only IPv4 or only IPv6 addresses is dialed on what it has.
    @Test func singleFamilyHosts() {
        let resolver = MockResolver(a: ["v4.example": ["192.0.2.1"]], aaaa: ["v6.example": ["2001:db8::1"]])
        #expect(Self.transport(resolver).addresses(of: "v4.example").ips == ["192.0.2.1"])
        #expect(Self.transport(resolver).addresses(of: "v6.example").ips == ["2001:db8::1"])
        #expect(Self.transport(resolver, family: .ipv6).addresses(of: "v4.example").ips.isEmpty)
    }

    /// An IPv4-only or IPv6-only transport looks up and dials its family only.
    @Test func families() {
        let resolver = MockResolver(a: ["mx.example.org": ["192.0.2.1"]], aaaa: ["mx.example.org": ["2001:db8::1"]])
        #expect(Self.transport(resolver).addresses(of: "mx.example.org").ips == ["2001:db8::1", "192.0.2.1"])
        #expect(Self.transport(resolver, family: .ipv4).addresses(of: "mx.example.org").ips == ["192.0.2.1"])
        #expect(Self.transport(resolver, family: .ipv6).addresses(of: "mx.example.org").ips == ["2001:db8::1"])
        #expect(!Self.transport(resolver, family: .ipv6).allows("192.0.2.1"))
    }

    /// An IP-literal recipient goes to that address without DNS.
    @Test func ipLiteral() {
        let transport = Self.transport(MockResolver())
        #expect(transport.destinations(for: "[192.0.2.1]") == .address("192.0.2.1"))
        #expect(transport.destinations(for: "[ipv6:2001:db8::1]") == .address("2001:db8::1"))
        #expect(transport.destinations(for: "[IPv6:2001:db8::1]") == .address("2001:db8::1"))
    }
}

/// Direct delivery against real smtp-sinks on two loopback addresses.
@Suite(.serialized)
struct DirectDeliveryTests {
    init() throws {
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    func request(_ recipients: [String], domain: String) throws -> (DeliveryRequest, String) {
        let directory = NSTemporaryDirectory() + "/postern-direct-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/message"
        try Data("Subject: direct\r\n\r\nhello\r\n".utf8).write(to: URL(fileURLWithPath: path))
        return (DeliveryRequest(id: QueueIDGenerator().next(), messagePath: path, sender: "a@b.example", recipients: recipients, domain: domain), directory)
    }

    /// The first MX refuses connections; the attempt moves on to the next one and delivers there.
    @Test func nextHostAfterConnectFailure() throws {
        let sink = try LocalSink(ip: "127.0.0.1")
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "dead.example.org"), MXRecord(preference: 20, host: "live.example.org")]],
                                    a: ["dead.example.org": ["127.0.0.2"], "live.example.org": ["127.0.0.1"]])
        let (request, _) = try request(["bob@example.org"], domain: "example.org")
        let report = DirectTransportTests.transport(resolver, port: sink.port).deliver(request, cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered])
        #expect(report.host == "live.example.org" && report.ip == "127.0.0.1")
        #expect(BackgroundProcess.waitUntil(timeout: 10) { sink.messages().count == 1 })
    }

    /// A temporary refusal at the first MX moves the recipient on to the next MX, which accepts it.
    @Test func nextHostAfterTemporaryFailure() throws {
        let busy = try LocalSink(options: ["-r", "RCPT"], ip: "127.0.0.3")
        let accepting = try LocalSink(ip: "127.0.0.4", port: busy.port)
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "busy.example.org"), MXRecord(preference: 20, host: "ok.example.org")]],
                                    a: ["busy.example.org": ["127.0.0.3"], "ok.example.org": ["127.0.0.4"]])
        let (request, _) = try request(["bob@example.org", "carol@example.org"], domain: "example.org")
        let report = DirectTransportTests.transport(resolver, port: busy.port).deliver(request, cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered, .delivered])
        #expect(report.host == "ok.example.org")
        // The preferred host was dialed first and answered 4xx; then the next one.
        #expect(report.dialed == ["busy.example.org": ["127.0.0.3"], "ok.example.org": ["127.0.0.4"]])
        #expect(BackgroundProcess.waitUntil(timeout: 10) { accepting.messages().count == 1 })
        // smtp-sink creates its dump file at MAIL and removes it when the transaction is abandoned,
        // which it may do after we have moved on; a delivered message's file would stay.
        #expect(BackgroundProcess.waitUntil(timeout: 10) { busy.messages().isEmpty })
    }

    /// A permanent refusal at the first MX is final: the next MX is not tried (RFC 5321 5.1).
    @Test func permanentFailureStopsAtFirstHost() throws {
        let refusing = try LocalSink(options: ["-f", "RCPT"], ip: "127.0.0.6")
        let accepting = try LocalSink(ip: "127.0.0.7", port: refusing.port)
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "no.example.org"), MXRecord(preference: 20, host: "ok.example.org")]],
                                    a: ["no.example.org": ["127.0.0.6"], "ok.example.org": ["127.0.0.7"]])
        let (request, _) = try request(["bob@example.org"], domain: "example.org")
        let report = DirectTransportTests.transport(resolver, port: refusing.port).deliver(request, cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.failed])
        #expect(report.results.first?.code.map { $0 >= 500 } == true)
        #expect(report.dialed == ["no.example.org": ["127.0.0.6"]])
        #expect(report.host == "no.example.org")
        #expect(accepting.messages().isEmpty)
    }

    /// A spent connect budget stops the attempt before any address is dialed; the recipients wait.
    @Test func connectBudget() throws {
        let sink = try LocalSink(ip: "127.0.0.1")
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "mx.example.org")]],
                                    a: ["mx.example.org": ["127.0.0.1"]])
        let (request, _) = try request(["bob@example.org"], domain: "example.org")
        let report = DirectTransportTests.transport(resolver, port: sink.port, budget: 0).deliver(request, cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.deferred])
        #expect(report.results[0].text.contains("time for connecting in this attempt is spent"))
        #expect(report.dialed.values.allSatisfy { $0.isEmpty })
    }

    /// Connections leave from the configured local address (smtp-sink records the client's address).
    @Test func bindAddress() throws {
        let sink = try LocalSink(ip: "127.0.0.1")
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "mx.example.org")]],
                                    a: ["mx.example.org": ["127.0.0.1"]])
        let (request, _) = try request(["bob@example.org"], domain: "example.org")
        var options = SMTPClientOptions(ehloName: "client.postern.test", tlsMode: .plaintext)
        options.timeouts = SMTPTimeouts(uniform: 10)
        let transport = DirectTransport(resolver: resolver, options: options, dialer: TCPDialer(bindIPv4: "127.0.0.9"), port: sink.port)
        let report = transport.deliver(request, cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered])
        #expect(report.dialed == ["mx.example.org": ["127.0.0.1"]])
        #expect(BackgroundProcess.waitUntil(timeout: 10) { sink.messages().count == 1 })
        let dump = try #require(sink.messages().first)
        #expect(dump.contains("X-Client-Addr: 127.0.0.9"))
    }

    /// NXDOMAIN for the recipient domain fails every recipient permanently without touching the network.
    @Test func nonexistentDomain() throws {
        let (request, _) = try request(["bob@nowhere.example"], domain: "nowhere.example")
        let report = DirectTransportTests.transport(MockResolver()).deliver(request, cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.failed])
        #expect(report.results[0].text.contains("NXDOMAIN"))
    }
}

/// mox's dialed-IPs memory.
struct DialedIPsTests {
    /// With no history the resolver's order stands; after IPv6 was used, IPv4 comes first, and vice versa.
    @Test func alternatesFamilies() {
        let ips = ["2001:db8::1", "192.0.2.1"]
        #expect(DirectTransport.order(ips, dialed: []) == ips)
        #expect(DirectTransport.order(ips, dialed: ["2001:db8::1"]) == ["192.0.2.1", "2001:db8::1"])
        #expect(DirectTransport.order(ips, dialed: ["2001:db8::1", "192.0.2.1"]) == ["2001:db8::1", "192.0.2.1"])
    }

    /// Within the preferred family the address used before comes first (greylisting remembers it).
    @Test func reusesAddress() {
        let ips = ["192.0.2.1", "192.0.2.2", "2001:db8::1"]
        #expect(DirectTransport.order(ips, dialed: ["192.0.2.2", "2001:db8::1"]) == ["192.0.2.2", "192.0.2.1", "2001:db8::1"])
        // One family only: the same address again.
        #expect(DirectTransport.order(["192.0.2.1", "192.0.2.2"], dialed: ["192.0.2.2"]) == ["192.0.2.2", "192.0.2.1"])
    }
}
