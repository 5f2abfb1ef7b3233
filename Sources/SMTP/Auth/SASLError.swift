/// Why a SASL exchange (RFC 4422) was abandoned on the client side.
///
/// Every case means the client must cancel the exchange (send `*`, RFC 4954
/// section 4) or, after a 235, treat the session as not authenticated and close
/// it: in particular ``serverSignatureMismatch`` and ``serverFinalMissing`` mean
/// the server did not prove that it knows the password, so it may be an
/// impostor even though it said 235.
///
/// No case ever carries the password or anything derived from it. Text that came
/// from the server (``serverError(_:)``) is kept as sent but rendered with control
/// characters escaped, so it cannot forge log lines.
public enum SASLError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A challenge or final data that does not follow the mechanism's syntax
    /// (for SCRAM, RFC 5802 section 7); the text says what was wrong.
    case malformedChallenge(String)
    /// A call that does not fit the mechanism's state: a challenge after the
    /// last response, a 235 before the exchange was complete, additional data
    /// for a mechanism that defines none, or any call after an earlier failure.
    case unexpectedStep(String)
    /// SCRAM: the server's `r=` does not start with our client nonce, or adds
    /// nothing to it (RFC 5802 section 5.1), so this is not a reply to our
    /// client-first message.
    case nonceMismatch
    /// SCRAM: `i=` below ``SCRAMSHA256Mechanism/minimumIterationCount``
    /// (RFC 7677 section 4); a downgrade that makes the stored key cheap to attack.
    case iterationCountTooLow(Int)
    /// SCRAM: `i=` above ``SCRAMSHA256Mechanism/maximumIterationCount``; a hostile
    /// server could otherwise make the client spin on PBKDF2 for hours.
    case iterationCountTooHigh(Int)
    /// SCRAM: the server's `v=` differs from the signature we computed
    /// (RFC 5802 section 3): the server does not know the password.
    case serverSignatureMismatch
    /// SCRAM: the server declared success without sending its server-final
    /// message, so it never proved that it knows the password.
    case serverFinalMissing
    /// SCRAM: the server answered with `e=` (RFC 5802 section 7,
    /// `server-error-value`), e.g. "invalid-proof" or "unknown-user".
    case serverError(String)
    /// A `-PLUS` mechanism was requested without channel binding data
    /// (RFC 5802 section 6): the TLS layer could not provide any.
    case channelBindingUnavailable(mechanism: String)
    /// The channel binding type is not a valid `cb-name` or its data is empty.
    case invalidChannelBinding(type: String)
    /// A credential that cannot be sent: empty, containing NUL where the
    /// mechanism forbids it, or containing code points SASLprep prohibits
    /// (RFC 4013 section 2.3). `field` is "username" or "password"; the reason
    /// never quotes the offending text.
    case invalidCredentials(field: String, reason: String)
    /// libcrypto failed (for example MD5 refused under a FIPS configuration).
    case cryptoFailure(operation: String, detail: String)

    public var description: String {
        switch self {
        case .malformedChallenge(let reason):
            return "malformed SASL challenge: \(reason)"
        case .unexpectedStep(let reason):
            return "unexpected SASL step: \(reason)"
        case .nonceMismatch:
            return "SCRAM server nonce does not extend the client nonce"
        case .iterationCountTooLow(let count):
            return "SCRAM iteration count \(count) is below the minimum of "
                + "\(SCRAMSHA256Mechanism.minimumIterationCount)"
        case .iterationCountTooHigh(let count):
            return "SCRAM iteration count \(count) is above the maximum of "
                + "\(SCRAMSHA256Mechanism.maximumIterationCount)"
        case .serverSignatureMismatch:
            return "SCRAM server signature does not match: the server did not prove it knows the password"
        case .serverFinalMissing:
            return "server reported success without the SCRAM server-final message"
        case .serverError(let text):
            return "SCRAM server error: \(Self.escaped(text))"
        case .channelBindingUnavailable(let mechanism):
            return "\(mechanism) needs TLS channel binding, which is unavailable"
        case .invalidChannelBinding(let type):
            return "unusable channel binding of type \(Self.escaped(type))"
        case .invalidCredentials(let field, let reason):
            return "invalid \(field): \(reason)"
        case .cryptoFailure(let operation, let detail):
            return "libcrypto \(operation) failed: \(detail)"
        }
    }

    /// Printable ASCII as is, everything else as a `\u{...}` escape.
    static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar.value >= 0x20, scalar.value < 0x7F, scalar != "\\" {
                result.unicodeScalars.append(scalar)
            } else {
                result += scalar.escaped(asASCII: true)
            }
        }
        return result
    }
}
