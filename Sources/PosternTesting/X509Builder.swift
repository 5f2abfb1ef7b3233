import COpenSSL
import Foundation

/// A failure while making test certificates. It carries OpenSSL's error queue
/// text, because a bare "X509_sign failed" says nothing about why.
public struct TestCertificateError: Error, CustomStringConvertible, Sendable {
    /// The call that failed, or what was wrong with the input.
    public let operation: String
    /// OpenSSL's error queue at the time of failure, oldest first (may be empty).
    public let openSSLErrors: [String]

    public var description: String {
        openSSLErrors.isEmpty ? operation : operation + ": " + openSSLErrors.joined(separator: "; ")
    }

    /// Drains this thread's OpenSSL error queue into an error for `operation`.
    static func openSSL(_ operation: String) -> TestCertificateError {
        var messages: [String] = []
        var code = ERR_get_error()
        while code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            code = ERR_get_error()
        }
        return TestCertificateError(operation: operation + " failed", openSSLErrors: messages)
    }

    /// Bad input, caught before OpenSSL sees it.
    static func invalid(_ message: String) -> TestCertificateError {
        TestCertificateError(operation: message, openSSLErrors: [])
    }
}

/// What goes into one certificate besides its key and issuer.
struct CertificateProfile {
    var commonName: String
    var dnsNames: [String]
    var notBefore: Date
    var notAfter: Date
    var isAuthority: Bool
}

/// Builds, signs and reads back X509 objects. Every function that returns an
/// `OpaquePointer` hands ownership to the caller, who frees it with `defer`;
/// everything allocated inside is freed on every path, error paths included.
enum X509Builder {
    /// A fresh EC P-256 key (`EVP_PKEY`). `EVP_EC_gen` is a macro around the
    /// variadic `EVP_PKEY_Q_keygen`, which Swift cannot call, hence the context.
    static func generateKey() throws(TestCertificateError) -> OpaquePointer {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else { throw .openSSL("EVP_PKEY_CTX_new_from_name") }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else { throw .openSSL("EVP_PKEY_keygen_init") }
        guard EVP_PKEY_CTX_set_group_name(context, "P-256") == 1 else { throw .openSSL("EVP_PKEY_CTX_set_group_name") }
        var key: OpaquePointer?
        guard EVP_PKEY_generate(context, &key) == 1, let key else { throw .openSSL("EVP_PKEY_generate") }
        return key
    }

    /// Makes a certificate for `key` under `profile`, signed with SHA-256 by
    /// `issuer`, or by `key` itself (self-signed) when `issuer` is nil.
    static func certificate(_ profile: CertificateProfile, key: OpaquePointer,
                            issuer: (certificate: OpaquePointer, key: OpaquePointer)?) throws(TestCertificateError) -> OpaquePointer {
        guard let x509 = X509_new() else { throw .openSSL("X509_new") }
        var handedOver = false
        defer { if !handedOver { X509_free(x509) } }

        guard X509_set_version(x509, Int(X509_VERSION_3)) == 1 else { throw .openSSL("X509_set_version") }
        // 63 random bits: positive, non-zero, and unique enough that no two test
        // certificates from one issuer share a serial.
        guard ASN1_INTEGER_set_uint64(X509_get_serialNumber(x509), UInt64.random(in: 1...UInt64(Int64.max))) == 1 else {
            throw .openSSL("ASN1_INTEGER_set_uint64")
        }
        try setSubject(x509, commonName: profile.commonName)
        let issuerName = X509_get_subject_name(issuer?.certificate ?? x509)
        guard X509_set_issuer_name(x509, issuerName) == 1 else { throw .openSSL("X509_set_issuer_name") }
        guard ASN1_TIME_set(X509_getm_notBefore(x509), time_t(profile.notBefore.timeIntervalSince1970.rounded(.down))) != nil,
              ASN1_TIME_set(X509_getm_notAfter(x509), time_t(profile.notAfter.timeIntervalSince1970.rounded(.down))) != nil else {
            throw .openSSL("ASN1_TIME_set")
        }
        // The public key goes in before the extensions: subjectKeyIdentifier hashes it.
        guard X509_set_pubkey(x509, key) == 1 else { throw .openSSL("X509_set_pubkey") }

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer?.certificate ?? x509, x509, nil, nil, 0)
        for (nid, value) in try extensions(profile, selfSigned: issuer == nil) {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else { throw .openSSL("X509V3_EXT_conf_nid(\(value))") }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(x509, ext, -1) == 1 else { throw .openSSL("X509_add_ext") }
        }

        guard X509_sign(x509, issuer?.key ?? key, EVP_sha256()) > 0 else { throw .openSSL("X509_sign") }
        handedOver = true
        return x509
    }

    /// The v3 extensions, as OpenSSL config strings. A CA gets the bits a
    /// verifier insists on for chain building; a leaf gets what a TLS server
    /// certificate carries, so PKIX tests exercise realistic certificates.
    private static func extensions(_ profile: CertificateProfile, selfSigned: Bool) throws(TestCertificateError) -> [(Int32, String)] {
        var list: [(Int32, String)] = [(NID_subject_key_identifier, "hash")]
        // RFC 5280 lets a self-signed certificate omit the authority key identifier.
        if !selfSigned { list.append((NID_authority_key_identifier, "keyid:always")) }
        if profile.isAuthority {
            list.append((NID_basic_constraints, "critical,CA:TRUE"))
            list.append((NID_key_usage, "critical,keyCertSign,cRLSign"))
        } else {
            list.append((NID_basic_constraints, "critical,CA:FALSE"))
            list.append((NID_key_usage, "critical,digitalSignature"))
            list.append((NID_ext_key_usage, "serverAuth"))
        }
        if !profile.dnsNames.isEmpty {
            // The config syntax separates entries by commas, so a comma in a name
            // would silently become a second entry.
            for name in profile.dnsNames where name.isEmpty || name.contains(",") || name.contains(where: \.isWhitespace) {
                throw .invalid("DNS name \(name.debugDescription) cannot go into subjectAltName")
            }
            list.append((NID_subject_alt_name, profile.dnsNames.map { "DNS:" + $0 }.joined(separator: ",")))
        }
        return list
    }

    private static func setSubject(_ x509: OpaquePointer, commonName: String) throws(TestCertificateError) {
        guard let name = X509_NAME_new() else { throw .openSSL("X509_NAME_new") }
        defer { X509_NAME_free(name) }
        for (nid, value) in [(NID_organizationName, "Postern Test"), (NID_commonName, commonName)] {
            let bytes = Array(value.utf8)
            guard X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, bytes, Int32(bytes.count), -1, 0) == 1 else {
                throw .openSSL("X509_NAME_add_entry_by_NID")
            }
        }
        // X509_set_subject_name copies the name, so ours is freed by the defer.
        guard X509_set_subject_name(x509, name) == 1 else { throw .openSSL("X509_set_subject_name") }
    }

    // MARK: Encoding and decoding

    /// DER through any `i2d_*` function, sized by a first call with no output
    /// buffer so nothing needs `OPENSSL_free`.
    static func der(_ operation: String, _ encode: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32) throws(TestCertificateError) -> [UInt8] {
        let length = encode(nil)
        guard length > 0 else { throw .openSSL(operation) }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        let written = bytes.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor = buffer.baseAddress
            return encode(&cursor)
        }
        guard written == length else { throw .openSSL(operation) }
        return bytes
    }

    /// PEM text written by `write` into a memory BIO.
    static func pem(_ operation: String, _ write: (OpaquePointer) -> Int32) throws(TestCertificateError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw .openSSL("BIO_new") }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw .openSSL(operation) }
        // BIO_get_mem_data(bio, &data) is a macro for this BIO_ctrl call.
        var data: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data)
        guard length > 0, let data else { throw .openSSL("BIO_get_mem_data") }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }

    /// An `X509` read back from DER (owned by the caller).
    static func parseCertificate(der: [UInt8]) throws(TestCertificateError) -> OpaquePointer {
        let x509 = der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            var cursor = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
        guard let x509 else { throw .openSSL("d2i_X509") }
        return x509
    }

    /// An `EVP_PKEY` read back from PEM (owned by the caller).
    static func parsePrivateKey(pem: String) throws(TestCertificateError) -> OpaquePointer {
        let bytes = Array(pem.utf8)
        // A memory BIO over borrowed bytes does not copy them, so the read
        // happens inside the closure that keeps them alive.
        let key = bytes.withUnsafeBytes { buffer -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else { throw .openSSL("PEM_read_bio_PrivateKey") }
        return key
    }

    /// A digest through EVP (`EVP_sha256()`, `EVP_sha512()`).
    static func digest(_ bytes: [UInt8], _ type: OpaquePointer?, _ operation: String) throws(TestCertificateError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_Digest(bytes, bytes.count, &output, &length, type, nil) == 1 else { throw .openSSL(operation) }
        return Array(output.prefix(Int(length)))
    }
}
