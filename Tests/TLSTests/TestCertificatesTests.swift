import COpenSSL
import Foundation
import PosternTesting
import Testing

/// Checks the generated certificates with OpenSSL's own verifier, so TLS tests
/// that rely on them fail for the client's reasons, not the fixture's.
struct TestCertificatesTests {
    /// An owned `X509` parsed from DER; the caller frees it.
    static func x509(_ der: [UInt8]) throws -> OpaquePointer {
        let parsed = der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            var cursor = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
        return try #require(parsed)
    }

    /// Every certificate in a PEM text, in order; the caller frees them.
    static func certificates(inPEM pem: String) throws -> [OpaquePointer] {
        let bytes = Array(pem.utf8)
        return try bytes.withUnsafeBytes { buffer in
            let bio = try #require(BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)))
            defer { BIO_free(bio) }
            var found: [OpaquePointer] = []
            while let x509 = PEM_read_bio_X509(bio, nil, nil, nil) { found.append(x509) }
            ERR_clear_error()  // the read past the last certificate queues a "no start line" error
            return found
        }
    }

    /// Verifies `leaf` against the trusted `anchor`, with `untrusted` as the
    /// chain the peer sent; returns the `X509_V_*` result.
    static func verify(_ leaf: TestCertificate, trusting anchor: TestCertificate,
                       untrusted: [TestCertificate] = []) throws -> Int32 {
        let store = try #require(X509_STORE_new())
        defer { X509_STORE_free(store) }
        let root = try x509(anchor.certificateDER)
        defer { X509_free(root) }
        #expect(X509_STORE_add_cert(store, root) == 1)
        let target = try x509(leaf.certificateDER)
        defer { X509_free(target) }
        // sk_X509_new_null / sk_X509_push are macros over these; the stack does
        // not own its certificates, which are freed below.
        let stack = try #require(OPENSSL_sk_new_null())
        defer { OPENSSL_sk_free(stack) }
        let intermediates = try untrusted.map { try x509($0.certificateDER) }
        defer { intermediates.forEach { X509_free($0) } }
        for certificate in intermediates { #expect(OPENSSL_sk_push(stack, UnsafeRawPointer(certificate)) > 0) }

        let context = try #require(X509_STORE_CTX_new())
        defer { X509_STORE_CTX_free(context) }
        #expect(X509_STORE_CTX_init(context, store, target, stack) == 1)
        let verified = X509_verify_cert(context)
        let error = X509_STORE_CTX_get_error(context)
        #expect((verified == 1) == (error == X509_V_OK))
        ERR_clear_error()
        return error
    }

    /// A leaf issued by the CA verifies against it and matches its DNS names, not another name.
    @Test func leafVerifiesAndMatchesHost() throws {
        let authority = try TestCertificateAuthority()
        let leaf = try authority.issue(commonName: "mx.example.test", dnsNames: ["mx.example.test", "mail.example.test"])
        #expect(try Self.verify(leaf, trusting: authority.root) == X509_V_OK)

        let certificate = try Self.x509(leaf.certificateDER)
        defer { X509_free(certificate) }
        #expect(X509_check_host(certificate, "mx.example.test", 0, 0, nil) == 1)
        #expect(X509_check_host(certificate, "mail.example.test", 0, 0, nil) == 1)
        #expect(X509_check_host(certificate, "other.example.test", 0, 0, nil) == 0)
        #expect(leaf.chainPEM == leaf.certificatePEM)
    }

    /// The CA certificate is a CA and the leaf is not.
    @Test func basicConstraints() throws {
        let authority = try TestCertificateAuthority()
        let leaf = try authority.issue(commonName: "mx.example.test", dnsNames: ["mx.example.test"])
        let root = try Self.x509(authority.root.certificateDER)
        defer { X509_free(root) }
        let certificate = try Self.x509(leaf.certificateDER)
        defer { X509_free(certificate) }
        #expect(X509_check_ca(root) >= 1)
        #expect(X509_check_ca(certificate) == 0)
    }

    /// A leaf whose validity window has passed fails with "certificate has expired".
    @Test func expiredLeafFails() throws {
        let authority = try TestCertificateAuthority()
        let leaf = try authority.issue(commonName: "mx.example.test", dnsNames: ["mx.example.test"],
                                       notBefore: Date(timeIntervalSinceNow: -2 * 86400),
                                       notAfter: Date(timeIntervalSinceNow: -86400))
        #expect(try Self.verify(leaf, trusting: authority.root) == X509_V_ERR_CERT_HAS_EXPIRED)
    }

    /// A leaf from an intermediate verifies when the intermediate is sent as the untrusted chain, and not without it.
    @Test func intermediateChain() throws {
        let authority = try TestCertificateAuthority()
        let intermediate = try authority.intermediate(commonName: "Postern Test Intermediate")
        let leaf = try intermediate.issue(commonName: "mx.example.test", dnsNames: ["mx.example.test"])
        #expect(intermediate.root == authority.root)
        #expect(try Self.verify(leaf, trusting: authority.root, untrusted: [intermediate.certificate]) == X509_V_OK)
        #expect(try Self.verify(leaf, trusting: authority.root) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)

        // The chain file holds the leaf then the intermediate, never the root.
        let chain = try Self.certificates(inPEM: leaf.chainPEM)
        defer { chain.forEach { X509_free($0) } }
        #expect(chain.count == 2)
        let expected = try [leaf.certificateDER, intermediate.certificate.certificateDER].map(Self.x509)
        defer { expected.forEach { X509_free($0) } }
        #expect(zip(chain, expected).allSatisfy { X509_cmp($0, $1) == 0 })
    }

    /// A self-signed leaf is refused by PKIX against the test CA.
    @Test func selfSignedFailsPKIX() throws {
        let authority = try TestCertificateAuthority()
        let leaf = try TestCertificate.selfSigned(commonName: "mx.example.test", dnsNames: ["mx.example.test"])
        #expect(try Self.verify(leaf, trusting: authority.root) == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
    }

    /// publicKeyDER is the certificate's SubjectPublicKeyInfo as i2d_X509_PUBKEY encodes it.
    @Test func publicKeyDER() throws {
        let leaf = try TestCertificate.selfSigned(commonName: "mx.example.test", dnsNames: ["mx.example.test"])
        let certificate = try Self.x509(leaf.certificateDER)
        defer { X509_free(certificate) }
        let spki = X509_get_X509_PUBKEY(certificate)
        var encoded = [UInt8](repeating: 0, count: Int(i2d_X509_PUBKEY(spki, nil)))
        let written = encoded.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor = buffer.baseAddress
            return i2d_X509_PUBKEY(spki, &cursor)
        }
        #expect(written == Int32(encoded.count))
        #expect(leaf.publicKeyDER == encoded)
    }

    /// The certificate PEM reads back to the same DER, and the key PEM matches the certificate.
    @Test func pemRoundTrip() throws {
        let authority = try TestCertificateAuthority()
        let leaf = try authority.issue(commonName: "mx.example.test", dnsNames: ["mx.example.test"])
        let parsed = try Self.certificates(inPEM: leaf.certificatePEM)
        defer { parsed.forEach { X509_free($0) } }
        let certificate = try #require(parsed.count == 1 ? parsed[0] : nil)
        let original = try Self.x509(leaf.certificateDER)
        defer { X509_free(original) }
        #expect(X509_cmp(certificate, original) == 0)

        let keyBytes = Array(leaf.privateKeyPEM.utf8)
        let key = try keyBytes.withUnsafeBytes { buffer -> OpaquePointer in
            let bio = try #require(BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)))
            defer { BIO_free(bio) }
            return try #require(PEM_read_bio_PrivateKey(bio, nil, nil, nil))
        }
        defer { EVP_PKEY_free(key) }
        #expect(X509_check_private_key(certificate, key) == 1)
    }

    /// TLSA association data picks the certificate or SPKI and hashes it as the matching type says.
    @Test func associationData() throws {
        #expect(try TestCertificate.sha256(Array("abc".utf8)).prefix(4) == [0xba, 0x78, 0x16, 0xbf])
        #expect(try TestCertificate.sha512(Array("abc".utf8)).prefix(4) == [0xdd, 0xaf, 0x35, 0xa1])
        let leaf = try TestCertificate.selfSigned(commonName: "mx.example.test", dnsNames: [])
        #expect(try leaf.associationData(selector: 0, matchingType: 0) == leaf.certificateDER)
        #expect(try leaf.associationData(selector: 1, matchingType: 1) == TestCertificate.sha256(leaf.publicKeyDER))
        #expect(try leaf.associationData(selector: 0, matchingType: 2) == TestCertificate.sha512(leaf.certificateDER))
        #expect(throws: TestCertificateError.self) { try leaf.associationData(selector: 2, matchingType: 1) }
    }

    /// A DNS name that would corrupt the subjectAltName config string is refused.
    @Test func invalidDNSName() throws {
        let authority = try TestCertificateAuthority()
        #expect(throws: TestCertificateError.self) {
            try authority.issue(commonName: "mx", dnsNames: ["a.test,DNS:b.test"])
        }
    }

    /// write(to:name:) leaves NAME.crt with the chain and a private NAME.key.
    @Test func writesFiles() throws {
        let directory = NSTemporaryDirectory() + "/postern-certs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }  // only litter in /tmp if it fails
        let intermediate = try TestCertificateAuthority().intermediate(commonName: "Intermediate")
        let leaf = try intermediate.issue(commonName: "mx.example.test", dnsNames: ["mx.example.test"])
        let paths = try leaf.write(to: directory, name: "server")
        #expect(paths.certificate.hasSuffix("/server.crt") && paths.key.hasSuffix("/server.key"))
        #expect(try String(contentsOfFile: paths.certificate, encoding: .utf8) == leaf.chainPEM)
        #expect(try String(contentsOfFile: paths.key, encoding: .utf8) == leaf.privateKeyPEM)
        let mode = try FileManager.default.attributesOfItem(atPath: paths.key)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}
