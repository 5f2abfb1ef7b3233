import COpenSSL

/// The few libcrypto primitives the SASL mechanisms need, as functions over byte
/// arrays.
///
/// Everything goes through the system OpenSSL 3.0 rather than a hand-written
/// implementation: its HMAC, PBKDF2 and CSPRNG are the audited ones, and a
/// FIPS-configured host then refuses MD5 (CRAM-MD5) with an error instead of
/// silently using a non-approved algorithm. Every call checks libcrypto's return
/// value and reports a failure as ``SASLError/cryptoFailure(operation:detail:)``
/// with libcrypto's own reason text, which never contains key material.
enum SASLCrypto {
    /// The hash functions the mechanisms use.
    enum Algorithm: Sendable {
        /// MD5, only for CRAM-MD5's HMAC-MD5 (RFC 2195 section 2).
        case md5
        /// SHA-256, for SCRAM-SHA-256 (RFC 7677 section 3).
        case sha256

        /// libcrypto's descriptor; a static object owned by libcrypto, never freed.
        var descriptor: OpaquePointer? {
            switch self {
            case .md5: return EVP_md5()
            case .sha256: return EVP_sha256()
            }
        }

        /// Output length in bytes.
        var outputSize: Int {
            switch self {
            case .md5: return 16
            case .sha256: return 32
            }
        }

        var name: String {
            switch self {
            case .md5: return "MD5"
            case .sha256: return "SHA-256"
            }
        }
    }

    /// `H(data)`: a one-shot hash with `EVP_Digest`.
    static func digest(_ algorithm: Algorithm, _ data: [UInt8]) throws(SASLError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: algorithm.outputSize)
        var length: UInt32 = 0
        let ok = withNonNullBytes(data) { pointer, count in
            output.withUnsafeMutableBufferPointer { out in
                EVP_Digest(pointer, count, out.baseAddress, &length, algorithm.descriptor, nil)
            }
        }
        guard ok == 1, Int(length) == algorithm.outputSize else {
            throw failure("\(algorithm.name) digest")
        }
        return output
    }

    /// `HMAC(key, data)` (RFC 2104) with the one-shot `HMAC()` of OpenSSL 3.0.
    static func hmac(_ algorithm: Algorithm, key: [UInt8], data: [UInt8]) throws(SASLError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: algorithm.outputSize)
        var length: UInt32 = 0
        guard key.count <= Int(Int32.max) else { throw SASLError.cryptoFailure(operation: "HMAC", detail: "key too long") }
        let result = withNonNullBytes(key) { keyPointer, keyCount in
            withNonNullBytes(data) { dataPointer, dataCount in
                output.withUnsafeMutableBufferPointer { out in
                    HMAC(algorithm.descriptor, keyPointer, Int32(keyCount),
                         dataPointer.assumingMemoryBound(to: UInt8.self), dataCount,
                         out.baseAddress, &length)
                }
            }
        }
        guard result != nil, Int(length) == algorithm.outputSize else {
            throw failure("HMAC-\(algorithm.name)")
        }
        return output
    }

    /// `Hi(password, salt, iterations)` of RFC 5802 section 2.2, which is
    /// PBKDF2 (RFC 8018 section 5.2) with HMAC-SHA-256 as the PRF and one block of
    /// output, so `length` is 32 for SCRAM-SHA-256.
    static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int,
                             length: Int) throws(SASLError) -> [UInt8] {
        guard iterations > 0, iterations <= Int(Int32.max), password.count <= Int(Int32.max),
              salt.count <= Int(Int32.max), length > 0, length <= Int(Int32.max) else {
            throw SASLError.cryptoFailure(operation: "PBKDF2-HMAC-SHA-256", detail: "parameter out of range")
        }
        var output = [UInt8](repeating: 0, count: length)
        let ok = withNonNullBytes(password) { passwordPointer, passwordCount in
            withNonNullBytes(salt) { saltPointer, saltCount in
                output.withUnsafeMutableBufferPointer { out in
                    PKCS5_PBKDF2_HMAC(passwordPointer.assumingMemoryBound(to: CChar.self), Int32(passwordCount),
                                      saltPointer.assumingMemoryBound(to: UInt8.self), Int32(saltCount),
                                      Int32(iterations), EVP_sha256(), Int32(length), out.baseAddress)
                }
            }
        }
        guard ok == 1 else { throw failure("PBKDF2-HMAC-SHA-256") }
        return output
    }

    /// `count` bytes from libcrypto's CSPRNG (`RAND_bytes`), for SCRAM's client
    /// nonce (RFC 5802 section 5.1: it must be unpredictable).
    static func randomBytes(_ count: Int) throws(SASLError) -> [UInt8] {
        guard count > 0, count <= Int(Int32.max) else {
            throw SASLError.cryptoFailure(operation: "RAND_bytes", detail: "bad length")
        }
        var output = [UInt8](repeating: 0, count: count)
        let ok = output.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        guard ok == 1 else { throw failure("RAND_bytes") }
        return output
    }

    /// Equality whose running time depends only on the lengths, not on where the
    /// first difference is (`CRYPTO_memcmp`), so comparing a server signature leaks
    /// nothing an attacker could use to forge one byte at a time. The lengths
    /// themselves are public (a SHA-256 output is always 32 bytes).
    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        guard !lhs.isEmpty else { return true }
        return lhs.withUnsafeBytes { left in
            rhs.withUnsafeBytes { right in
                CRYPTO_memcmp(left.baseAddress, right.baseAddress, left.count) == 0
            }
        }
    }

    /// Lower-case hexadecimal, as CRAM-MD5's digest is sent (RFC 2195 section 2).
    static func lowercaseHex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Calls `body` with a pointer that is never null, even for an empty array
    /// (whose `baseAddress` may be nil): libcrypto treats a null pointer with a
    /// zero length inconsistently across functions, a valid one never.
    private static func withNonNullBytes<R>(_ bytes: [UInt8],
                                            _ body: (UnsafeRawPointer, Int) -> R) -> R {
        if bytes.isEmpty {
            var dummy: UInt8 = 0
            return withUnsafePointer(to: &dummy) { body(UnsafeRawPointer($0), 0) }
        }
        return bytes.withUnsafeBytes { body($0.baseAddress!, $0.count) }
    }

    /// A ``SASLError/cryptoFailure(operation:detail:)`` carrying the oldest
    /// queued libcrypto reason, and the error queue emptied so that a later,
    /// unrelated OpenSSL call (the TLS layer's) does not report this failure.
    private static func failure(_ operation: String) -> SASLError {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return .cryptoFailure(operation: operation, detail: "no reason given") }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return .cryptoFailure(operation: operation, detail: String(decoding: bytes, as: UTF8.self))
    }
}
