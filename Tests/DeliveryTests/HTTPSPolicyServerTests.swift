import DNS
import Foundation
import PosternCore
import PosternTesting
import TLS
import Testing
@testable import Delivery

/// The policy fetch over real HTTPS: the MTA-STS peer (tools/mta-sts-peer.sh)
/// on loopback with a test CA, fetched by `HTTPSPolicyFetcher`.
@Suite(.serialized)
struct HTTPSPolicyServerTests {
    static let policy = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmax_age: 86400\r\n"
    static let host = "mta-sts.example.org"

    let sts: MTASTSPeer
    let authority: TestCertificateAuthority
    let context: TLSContext

    init() throws {
        try #require(MTASTSPeer.isAvailable, "python3 is needed (tools/test.sh installs it)")
        authority = try TestCertificateAuthority()
        let anchors = NSTemporaryDirectory() + "postern-https-ca-\(UUID().uuidString).pem"
        try authority.root.certificatePEM.write(toFile: anchors, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: anchors) }   // read by the context at once
        context = try TLSContext(trustAnchors: .file(anchors))
        sts = try MTASTSPeer()
    }

    /// Serves `response` for mta-sts.example.org with a certificate for `name`.
    func serve(_ response: MTASTSPeer.Response, certificateFor name: String = Self.host) throws {
        try sts.set(Self.host, certificate: try authority.issue(commonName: name, dnsNames: [name]), response)
    }

    func fetch() throws -> [UInt8] {
        try HTTPSPolicyFetcher(resolver: MockResolver(a: [Self.host: [sts.host]]), context: context, port: sts.port, timeout: 10)
            .fetch("example.org")
    }

    /// The fetch fails with an error whose text contains `words`.
    func refuses(_ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) {
            try fetch()
        } throws: { error in
            (error as? MTASTSFetchError)?.description.contains(words) == true
        }
    }

    /// A valid certificate for mta-sts.DOMAIN: the policy's bytes exactly.
    @Test func fetchesThePolicy() throws {
        try serve(.policy(Self.policy))
        let body = try fetch()
        #expect(String(decoding: body, as: UTF8.self) == Self.policy)
        #expect(try MTASTSPolicy.parse(body).mode == .enforce)
        #expect(sts.requests(for: Self.host) == 1)
    }

    /// A certificate for another name is refused (RFC 8461 3.3: PKIX for the policy host).
    @Test func wrongNameIsRefused() throws {
        try serve(.policy(Self.policy), certificateFor: "www.example.org")
        refuses("wrong name")
    }

    /// A redirect is not followed.
    @Test func redirectIsRefused() throws {
        try serve(.redirect("https://elsewhere.example/"))
        refuses("redirects are refused")
    }

    /// More than 64 KiB is refused (RFC 8461 3.3), over a real connection.
    @Test func oversizedIsRefused() throws {
        try serve(.oversized(70_000))
        refuses("larger than 64 KiB")
    }
}
