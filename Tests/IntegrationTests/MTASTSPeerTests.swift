import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import TLS

/// The MTA-STS policy server (tools/mta-sts-peer.sh) fetched with the project's
/// own TLS client: PKIX against the test CA, SNI picking the certificate, the
/// Host header picking the answer, answers changed between fetches.
@Suite(.serialized)
struct MTASTSPeerTests {
    let sts: MTASTSPeer
    let authority: TestCertificateAuthority
    let context: TLSContext
    static let policy = "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n"

    init() throws {
        try #require(MTASTSPeer.isAvailable, "python3 is needed (tools/test.sh installs it)")
        authority = try TestCertificateAuthority()
        let anchors = NSTemporaryDirectory() + "/postern-sts-ca-\(UUID().uuidString).pem"
        try authority.root.certificatePEM.write(toFile: anchors, atomically: true, encoding: .utf8)
        context = try TLSContext(trustAnchors: .file(anchors))
        sts = try MTASTSPeer()
    }

    func certificate(_ host: String) throws -> TestCertificate {
        try authority.issue(commonName: host, dnsNames: [host])
    }

    /// GET /.well-known/mta-sts.txt from `host` over PKIX-verified TLS (SNI `host`);
    /// returns the status code, the headers and the body.
    func fetch(_ host: String, timeout: Double = 10) throws -> (status: Int, headers: String, body: String) {
        let plain = try TCPConnector.connect(ip: sts.host, port: sts.port, deadline: .after(10))
        let options = TLSClientOptions(verification: .pkix(hostnames: [host]), serverName: host, context: context)
        let stream = try TLSStream(over: plain, options: options, deadline: .after(10))
        try stream.write(Array("GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8), deadline: .after(10))
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try stream.read(into: $0, deadline: .after(timeout)) }
            if count == 0 { break }
            response += buffer[0..<count]
        }
        let text = String(decoding: response, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let status = Int(parts[0].split(separator: " ")[1]) ?? 0
        return (status, parts[0], parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// A policy is served to a client that verifies the server against the test CA, and the log counts the request.
    @Test func servesPolicy() throws {
        try sts.set("mta-sts.sts.test", certificate: try certificate("mta-sts.sts.test"), .policy(Self.policy))
        let response = try fetch("mta-sts.sts.test")
        #expect(response.status == 200 && response.body == Self.policy)
        #expect(response.headers.contains("Content-Type: text/plain"))
        #expect(sts.requests(for: "mta-sts.sts.test") == 1)
    }

    /// Each host gets its own answer, and `set` changes it for the next fetch.
    @Test func answersPerHostAndChange() throws {
        try sts.set("mta-sts.a.test", certificate: try certificate("mta-sts.a.test"), .status(404))
        try sts.set("mta-sts.b.test", certificate: try certificate("mta-sts.b.test"), .redirect("https://mta-sts.a.test/.well-known/mta-sts.txt"))
        try sts.set("mta-sts.c.test", certificate: try certificate("mta-sts.c.test"), .oversized(70_000))
        #expect(try fetch("mta-sts.a.test").status == 404)
        let redirect = try fetch("mta-sts.b.test")
        #expect(redirect.status == 301 && redirect.headers.contains("Location: https://mta-sts.a.test/.well-known/mta-sts.txt"))
        let oversized = try fetch("mta-sts.c.test")
        #expect(oversized.status == 200 && oversized.body.utf8.count == 70_000 && oversized.body.hasPrefix("version: STSv1\r\n"))
        try sts.set("mta-sts.a.test", certificate: try certificate("mta-sts.a.test"), .policy(Self.policy))
        #expect(try fetch("mta-sts.a.test").body == Self.policy)
        // A hung server answers nothing: the client's own deadline ends the wait.
        try sts.set("mta-sts.d.test", certificate: try certificate("mta-sts.d.test"), .hang)
        #expect(throws: StreamError.timeout) { try fetch("mta-sts.d.test", timeout: 1) }
        #expect(sts.log.contains("mta-sts.d.test mta-sts.d.test /.well-known/mta-sts.txt hang"))
    }

    /// A certificate for another name fails PKIX; a name the server does not know fails the handshake.
    @Test func certificateFailures() throws {
        try sts.set("mta-sts.wrong.test", certificate: try certificate("www.wrong.test"), .policy(Self.policy))
        #expect {
            try fetch("mta-sts.wrong.test")
        } throws: { error in
            guard case .tls(.verification(let failure)) = error as? StreamError else { return false }
            return failure.reason == .wrongName
        }
        #expect(throws: StreamError.self) { try fetch("mta-sts.unknown.test") }
        #expect(sts.log.contains("mta-sts.unknown.test - - handshake refused"))
    }
}
