import COpenSSL
import Glibc

/// Why TLS failed, in the terms policy code decides on (RFC 7672 and RFC 8461
/// both distinguish "no TLS" from "TLS without authentication").
public enum TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The peer's certificate did not verify: `code` is OpenSSL's X509_V_ERR_*.
    case verification(VerificationFailure)
    /// No protocol version both sides accept (e.g. a server offering only TLS 1.0).
    case protocolVersion(String)
    /// The handshake failed for another reason: an alert, a bad message.
    case handshake(String)
    /// TLS could not even be set up (a library error, bad options).
    case setup(String)

    public var description: String {
        switch self {
        case .verification(let failure): "TLS certificate verification failed: \(failure)"
        case .protocolVersion(let detail): "TLS protocol version not supported: \(detail)"
        case .handshake(let detail): "TLS handshake failed: \(detail)"
        case .setup(let detail): "TLS setup failed: \(detail)"
        }
    }
}

/// A failed certificate verification, classified.
public struct VerificationFailure: Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, Equatable {
        case expired
        case notYetValid = "not yet valid"
        case wrongName = "wrong name"
        case untrusted
        case daneMismatch = "DANE mismatch"
        case noUsableTLSARecords = "no usable TLSA records"
        case noCertificate = "no certificate"
        case other
    }

    public let reason: Reason
    /// OpenSSL's X509_V_ERR_* code (0 where OpenSSL gave none).
    public let code: Int
    /// OpenSSL's text for the code.
    public let detail: String

    public init(reason: Reason, code: Int, detail: String) {
        self.reason = reason
        self.code = code
        self.detail = detail
    }

    /// Classifies an X509_V_ERR_* code.
    init(code: Int) {
        let reason: Reason = switch Int32(code) {
        case X509_V_ERR_CERT_HAS_EXPIRED: .expired
        case X509_V_ERR_CERT_NOT_YET_VALID: .notYetValid
        case X509_V_ERR_HOSTNAME_MISMATCH: .wrongName
        case X509_V_ERR_DANE_NO_MATCH: .daneMismatch
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
             X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
             X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_UNTRUSTED: .untrusted
        default: .other
        }
        self.init(reason: reason, code: code, detail: String(cString: X509_verify_cert_error_string(code)))
    }

    public var description: String { "\(reason.rawValue) (\(detail))" }
}

/// OpenSSL's error queue, drained into one line.
enum OpenSSLErrors {
    static func drain() -> (text: String, reasons: [Int32]) {
        var parts: [String] = []
        var reasons: [Int32] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            parts.append(String(decoding: buffer.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self))
            reasons.append(ERR_GET_REASON(code))
        }
        return (parts.joined(separator: "; "), reasons)
    }
}
