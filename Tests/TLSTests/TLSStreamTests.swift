import COpenSSL
import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import TLS

/// TLS handshakes against an in-process OpenSSL server, with certificates made for the test.
struct TLSStreamTests {
    let directory: String
    let authority: TestCertificateAuthority
    let context: TLSContext

    init() throws {
        directory = NSTemporaryDirectory() + "/postern-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        authority = try TestCertificateAuthority()
        let anchors = directory + "/ca.pem"
        try authority.root.certificatePEM.write(toFile: anchors, atomically: true, encoding: .utf8)
        context = try TLSContext(trustAnchors: .file(anchors))
    }

    /// Serves `certificate` (its chain plus `extra` PEM) and says hello once TLS is up.
    func serve(_ certificate: TestCertificate, extra: String = "", maximumVersion: Int32? = nil) throws -> ScriptedSMTPPeer {
        let name = UUID().uuidString
        let paths = try certificate.write(to: directory, name: name)
        if !extra.isEmpty {
            try (certificate.chainPEM + extra).write(toFile: paths.certificate, atomically: true, encoding: .utf8)
        }
        let tls = ScriptedSMTPPeer.ServerTLS(certificateChain: paths.certificate, key: paths.key, maximumVersion: maximumVersion)
        return try ScriptedSMTPPeer([.startTLS(tls), .send("hello"), .waitForClose])
    }

    /// Connects, handshakes and reads the greeting; returns the session info.
    func connect(_ peer: ScriptedSMTPPeer, _ verification: TLSVerification, enforce: Bool = true) throws -> TLSSessionInfo {
        let plain = try SocketStream(fileDescriptor: peer.clientSocket)
        let options = TLSClientOptions(verification: verification, enforce: enforce, serverName: "mx.example.test", context: context)
        let stream = try TLSStream(over: plain, options: options, deadline: .after(10))
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try buffer.withUnsafeMutableBytes { try stream.read(into: $0, deadline: .after(10)) }
        #expect(String(decoding: buffer[0..<count], as: UTF8.self) == "hello\r\n")
        return stream.info
    }

    func expectFailure(_ peer: ScriptedSMTPPeer, _ verification: TLSVerification, _ check: (StreamError) -> Bool) {
        #expect {
            try connect(peer, verification)
        } throws: { error in
            guard let error = error as? StreamError else { return false }
            return check(error)
        }
    }

    static func reason(_ expected: VerificationFailure.Reason) -> (StreamError) -> Bool {
        { error in
            if case .tls(.verification(let failure)) = error { return failure.reason == expected }
            return false
        }
    }

    /// PKIX: a CA-issued certificate for the expected name verifies, over TLS 1.3.
    @Test func pkixSuccess() throws {
        let peer = try serve(try authority.issue(commonName: "mx.example.test", dnsNames: ["mx.example.test"]))
        let info = try connect(peer, .pkix(hostnames: ["mx.example.test"]))
        #expect(info.verified)
        #expect(info.version == "TLSv1.3")
        #expect(!info.cipher.isEmpty)
        #expect(info.peerSubject?.contains("CN=mx.example.test") == true)
        #expect(info.summary.hasSuffix("verified=pkix"))
    }

    /// PKIX failures are told apart: expired, wrong name, untrusted.
    @Test func pkixFailures() throws {
        let expired = try authority.issue(commonName: "mx.example.test", dnsNames: ["mx.example.test"],
                                          notBefore: Date(timeIntervalSinceNow: -7200), notAfter: Date(timeIntervalSinceNow: -3600))
        expectFailure(try serve(expired), .pkix(hostnames: ["mx.example.test"]), Self.reason(.expired))
        let wrongName = try authority.issue(commonName: "other.example.test", dnsNames: ["other.example.test"])
        expectFailure(try serve(wrongName), .pkix(hostnames: ["mx.example.test"]), Self.reason(.wrongName))
        let selfSigned = try TestCertificate.selfSigned(commonName: "mx.example.test", dnsNames: ["mx.example.test"])
        expectFailure(try serve(selfSigned), .pkix(hostnames: ["mx.example.test"]), Self.reason(.untrusted))
    }

    /// Without enforcement a failed verification is reported and the connection goes on.
    @Test func reportOnly() throws {
        let wrongName = try authority.issue(commonName: "other.example.test", dnsNames: ["other.example.test"])
        let info = try connect(try serve(wrongName), .pkix(hostnames: ["mx.example.test"]), enforce: false)
        #expect(!info.verified)
        #expect(info.verificationFailure?.reason == .wrongName)
    }

    /// No verification: any certificate will do, and the session says it is unverified.
    @Test func noVerification() throws {
        let selfSigned = try TestCertificate.selfSigned(commonName: "whatever", dnsNames: ["whatever"])
        let info = try connect(try serve(selfSigned), .none)
        #expect(!info.verified)
        #expect(info.summary.hasSuffix("unverified"))
    }

    /// DANE-EE(3) SPKI(1) SHA-256(1) matches a self-signed certificate whatever its name, and reports the record.
    @Test func daneEEMatch() throws {
        let certificate = try TestCertificate.selfSigned(commonName: "unrelated", dnsNames: ["unrelated.example"])
        let record = TLSARecord(usage: 3, selector: 1, matchingType: 1, data: try certificate.associationData(selector: 1, matchingType: 1))
        let info = try connect(try serve(certificate), .dane(records: [record], hostnames: ["mx.example.test"]))
        #expect(info.verified)
        #expect(info.matchedTLSA == record)
    }

    /// Full-certificate (selector 0) with SHA-512 (matching 2) and exact (matching 0) records match too.
    @Test(arguments: [(UInt8(0), UInt8(2)), (UInt8(0), UInt8(0)), (UInt8(1), UInt8(0))])
    func daneEESelectorsAndMatching(_ selector: UInt8, _ matching: UInt8) throws {
        let certificate = try TestCertificate.selfSigned(commonName: "mx", dnsNames: ["mx.example.test"])
        let record = TLSARecord(usage: 3, selector: selector, matchingType: matching,
                                data: try certificate.associationData(selector: selector, matchingType: matching))
        #expect(try connect(try serve(certificate), .dane(records: [record], hostnames: ["mx.example.test"])).matchedTLSA == record)
    }

    /// A DANE-EE record for another key is a DANE mismatch.
    @Test func daneEEMismatch() throws {
        let certificate = try TestCertificate.selfSigned(commonName: "mx", dnsNames: ["mx.example.test"])
        let other = try TestCertificate.selfSigned(commonName: "mx", dnsNames: ["mx.example.test"])
        let record = TLSARecord(usage: 3, selector: 1, matchingType: 1, data: try other.associationData(selector: 1, matchingType: 1))
        expectFailure(try serve(certificate), .dane(records: [record], hostnames: ["mx.example.test"]), Self.reason(.daneMismatch))
    }

    /// DANE-TA(2): a chain to the published trust anchor with the right name verifies; another anchor does not.
    @Test func daneTA() throws {
        let leaf = try authority.issue(commonName: "mx.example.test", dnsNames: ["mx.example.test"])
        let record = TLSARecord(usage: 2, selector: 0, matchingType: 1, data: try authority.root.associationData(selector: 0, matchingType: 1))
        let info = try connect(try serve(leaf, extra: authority.root.certificatePEM), .dane(records: [record], hostnames: ["mx.example.test"]))
        #expect(info.verified)
        #expect(info.matchedTLSA == record)

        let stranger = try TestCertificateAuthority(commonName: "Other CA")
        let wrong = TLSARecord(usage: 2, selector: 1, matchingType: 1, data: try stranger.root.associationData(selector: 1, matchingType: 1))
        expectFailure(try serve(leaf, extra: authority.root.certificatePEM), .dane(records: [wrong], hostnames: ["mx.example.test"]),
                      Self.reason(.daneMismatch))
    }

    /// Records OpenSSL cannot use are skipped and reported; with none usable, DANE fails as such.
    @Test func unusableRecords() throws {
        let certificate = try TestCertificate.selfSigned(commonName: "mx", dnsNames: ["mx.example.test"])
        let good = TLSARecord(usage: 3, selector: 1, matchingType: 1, data: try certificate.associationData(selector: 1, matchingType: 1))
        let unknownMatching = TLSARecord(usage: 3, selector: 1, matchingType: 7, data: [1, 2, 3])
        let unknownUsage = TLSARecord(usage: 9, selector: 1, matchingType: 1, data: good.data)
        let mixed = try connect(try serve(certificate), .dane(records: [unknownMatching, good, unknownUsage], hostnames: ["mx.example.test"]))
        #expect(mixed.verified)
        #expect(mixed.unusableTLSA == [unknownMatching, unknownUsage])
        expectFailure(try serve(certificate), .dane(records: [unknownMatching], hostnames: ["mx.example.test"]),
                      Self.reason(.noUsableTLSARecords))
    }

    /// A server that only speaks TLS 1.1 fails with a protocol-version error, not a generic one.
    @Test func oldProtocolServer() throws {
        let certificate = try authority.issue(commonName: "mx.example.test", dnsNames: ["mx.example.test"])
        expectFailure(try serve(certificate, maximumVersion: TLS1_1_VERSION), .none) { error in
            if case .tls(.protocolVersion) = error { return true }
            return false
        }
    }
}
