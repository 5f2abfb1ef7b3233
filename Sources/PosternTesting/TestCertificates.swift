import COpenSSL
import Foundation

/// A key pair and certificate made for one test run.
///
/// Certificates are generated through libcrypto at test time rather than
/// checked in, so none ever expires under the test suite, each run gets fresh
/// keys, and a test can ask for exactly the defect it needs (expired, wrong
/// name, unknown issuer). Only bytes are kept, so the value is `Sendable`.
public struct TestCertificate: Sendable, Equatable {
    public let certificatePEM: String
    /// The private key as unencrypted PKCS#8 PEM (`BEGIN PRIVATE KEY`).
    public let privateKeyPEM: String
    public let certificateDER: [UInt8]
    /// DER of the SubjectPublicKeyInfo (for DANE selector 1).
    public let publicKeyDER: [UInt8]
    /// This certificate followed by the intermediates between it and the root,
    /// never the root itself: what a server sends in its Certificate message.
    /// For a certificate issued by a root (or self-signed) it is `certificatePEM`.
    public let chainPEM: String

    /// Exports `x509` and `key`; `chainAbove` is the issuer's chain PEM, empty
    /// when the issuer is a root.
    init(certificate x509: OpaquePointer, key: OpaquePointer, chainAbove: String) throws(TestCertificateError) {
        certificatePEM = try X509Builder.pem("PEM_write_bio_X509") { PEM_write_bio_X509($0, x509) }
        privateKeyPEM = try X509Builder.pem("PEM_write_bio_PrivateKey") { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) }
        certificateDER = try X509Builder.der("i2d_X509") { i2d_X509(x509, $0) }
        publicKeyDER = try X509Builder.der("i2d_PUBKEY") { i2d_PUBKEY(key, $0) }
        chainPEM = certificatePEM + chainAbove
    }

    /// Generates a key and a certificate for it under `profile`, signed by
    /// `issuer` or self-signed when `issuer` is nil.
    static func make(_ profile: CertificateProfile, issuer: (certificate: OpaquePointer, key: OpaquePointer)?,
                     chainAbove: String) throws(TestCertificateError) -> TestCertificate {
        let key = try X509Builder.generateKey()
        defer { EVP_PKEY_free(key) }
        let x509 = try X509Builder.certificate(profile, key: key, issuer: issuer)
        defer { X509_free(x509) }
        return try TestCertificate(certificate: x509, key: key, chainAbove: chainAbove)
    }

    /// A self-signed leaf with no CA behind it, for DANE-EE tests (where the
    /// client checks the key against a TLSA record and ignores names and chain)
    /// and for "unknown issuer" PKIX failures.
    public static func selfSigned(commonName: String, dnsNames: [String],
                                  notBefore: Date = Date(timeIntervalSinceNow: -3600),
                                  notAfter: Date = Date(timeIntervalSinceNow: 86400)) throws(TestCertificateError) -> TestCertificate {
        ERR_clear_error()
        let profile = CertificateProfile(commonName: commonName, dnsNames: dnsNames, notBefore: notBefore,
                                         notAfter: notAfter, isAuthority: false)
        return try make(profile, issuer: nil, chainAbove: "")
    }

    /// Writes `NAME.crt` (the chain PEM, as a server's certificate file wants
    /// it) and `NAME.key` (mode 0600) into `directory`; returns their paths.
    @discardableResult
    public func write(to directory: String, name: String) throws -> (certificate: String, key: String) {
        let base = URL(fileURLWithPath: directory, isDirectory: true)
        let certificatePath = base.appendingPathComponent(name + ".crt").path
        let keyPath = base.appendingPathComponent(name + ".key").path
        try Data(chainPEM.utf8).write(to: URL(fileURLWithPath: certificatePath))
        try Data(privateKeyPEM.utf8).write(to: URL(fileURLWithPath: keyPath))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyPath)
        return (certificatePath, keyPath)
    }

    /// SHA-256 of `bytes` (TLSA matching type 1).
    public static func sha256(_ bytes: [UInt8]) throws(TestCertificateError) -> [UInt8] {
        try X509Builder.digest(bytes, EVP_sha256(), "EVP_Digest(SHA-256)")
    }

    /// SHA-512 of `bytes` (TLSA matching type 2).
    public static func sha512(_ bytes: [UInt8]) throws(TestCertificateError) -> [UInt8] {
        try X509Builder.digest(bytes, EVP_sha512(), "EVP_Digest(SHA-512)")
    }

    /// The certificate association data of a TLSA record for this certificate
    /// (RFC 6698 section 2.1): selector 0 = full certificate, 1 = SubjectPublicKeyInfo;
    /// matching type 0 = exact, 1 = SHA-256, 2 = SHA-512.
    public func associationData(selector: UInt8, matchingType: UInt8) throws(TestCertificateError) -> [UInt8] {
        let selected: [UInt8]
        switch selector {
        case 0: selected = certificateDER
        case 1: selected = publicKeyDER
        default: throw .invalid("TLSA selector \(selector) is not 0 or 1")
        }
        switch matchingType {
        case 0: return selected
        case 1: return try Self.sha256(selected)
        case 2: return try Self.sha512(selected)
        default: throw .invalid("TLSA matching type \(matchingType) is not 0, 1 or 2")
        }
    }

    /// A TLSA record's data for this certificate as zone-file text, `"3 1 1
    /// 5a3f…"` (RFC 6698 2.2: usage, selector, matching type, hex), for the
    /// zones of `DNSPeer` and `DNSSECPeer`. DANE-EE (3) names a server's own
    /// certificate; DANE-TA (2) a CA's (`authority.root.tlsa(usage: 2, …)`).
    public func tlsa(usage: UInt8, selector: UInt8, matchingType: UInt8) throws(TestCertificateError) -> String {
        let data = try associationData(selector: selector, matchingType: matchingType)
        let digits = Array("0123456789abcdef".utf8)
        let hex = String(decoding: data.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
        return "\(usage) \(selector) \(matchingType) \(hex)"
    }
}

/// A test certificate authority: a root, or an intermediate under one.
///
/// It holds only its certificate and key as bytes and re-reads them for each
/// signature, so it is a plain `Sendable` value with no OpenSSL object to free
/// or share between threads.
public struct TestCertificateAuthority: Sendable {
    /// This authority's own certificate and key. Its `chainPEM` holds the
    /// intermediates up to, not including, the root.
    public let certificate: TestCertificate
    /// The self-signed certificate at the top: what a PKIX test trusts, and what
    /// a DANE-TA record names. Equal to `certificate` for a root.
    public let root: TestCertificate

    /// A new self-signed root CA.
    public init(commonName: String = "Postern Test CA",
                notBefore: Date = Date(timeIntervalSinceNow: -86400),
                notAfter: Date = Date(timeIntervalSinceNow: 30 * 86400)) throws(TestCertificateError) {
        ERR_clear_error()
        let profile = CertificateProfile(commonName: commonName, dnsNames: [], notBefore: notBefore,
                                         notAfter: notAfter, isAuthority: true)
        let root = try TestCertificate.make(profile, issuer: nil, chainAbove: "")
        self.init(certificate: root, root: root)
    }

    private init(certificate: TestCertificate, root: TestCertificate) {
        self.certificate = certificate
        self.root = root
    }

    /// A leaf for a server: CN and subjectAltName DNS entries, validity window,
    /// signed by this CA. A window in the past makes an expired certificate.
    public func issue(commonName: String, dnsNames: [String],
                      notBefore: Date = Date(timeIntervalSinceNow: -3600),
                      notAfter: Date = Date(timeIntervalSinceNow: 86400)) throws(TestCertificateError) -> TestCertificate {
        try sign(CertificateProfile(commonName: commonName, dnsNames: dnsNames, notBefore: notBefore,
                                    notAfter: notAfter, isAuthority: false))
    }

    /// An intermediate CA signed by this one, able to issue leaves itself: for
    /// DANE-TA tests with a chain, and PKIX tests where the server must send it.
    public func intermediate(commonName: String,
                             notBefore: Date = Date(timeIntervalSinceNow: -86400),
                             notAfter: Date = Date(timeIntervalSinceNow: 30 * 86400)) throws(TestCertificateError) -> TestCertificateAuthority {
        let issued = try sign(CertificateProfile(commonName: commonName, dnsNames: [], notBefore: notBefore,
                                                 notAfter: notAfter, isAuthority: true))
        return TestCertificateAuthority(certificate: issued, root: root)
    }

    private func sign(_ profile: CertificateProfile) throws(TestCertificateError) -> TestCertificate {
        ERR_clear_error()
        let issuerCertificate = try X509Builder.parseCertificate(der: certificate.certificateDER)
        defer { X509_free(issuerCertificate) }
        let issuerKey = try X509Builder.parsePrivateKey(pem: certificate.privateKeyPEM)
        defer { EVP_PKEY_free(issuerKey) }
        // The root never goes into a chain; an intermediate's chain carries on below it.
        let chainAbove = certificate == root ? "" : certificate.chainPEM
        return try TestCertificate.make(profile, issuer: (issuerCertificate, issuerKey), chainAbove: chainAbove)
    }
}
