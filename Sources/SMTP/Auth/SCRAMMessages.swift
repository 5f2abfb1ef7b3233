import Foundation

/// The SCRAM message grammar (RFC 5802 section 7) as far as a client needs it:
/// building `saslname`, and strict parsers for the two server messages.
///
/// Strict, because every field of a server message feeds the key derivation or
/// the mutual-authentication check: a lenient parser (skipping unknown leading
/// attributes, accepting a bad base64 salt) would let a hostile server steer the
/// client into states the RFC never allows. Everything works on bytes, since the
/// exact bytes of server-first-message go into AuthMessage.
enum SCRAMMessages {
    /// The parsed server-first-message.
    struct ServerFirst: Equatable {
        /// The combined nonce (`r=`): ours followed by the server's.
        var nonce: [UInt8]
        /// The decoded salt (`s=`).
        var salt: [UInt8]
        /// The iteration count (`i=`), within the accepted bounds.
        var iterations: Int
    }

    /// The outcome a server-final-message announces.
    enum ServerFinal: Equatable {
        /// `v=`: the decoded server signature, still to be verified.
        case verifier([UInt8])
        /// `e=`: the server's error value.
        case error(String)
    }

    /// `saslname` (RFC 5802 sections 5.1 and 7): `=` and `,` would be read as
    /// attribute syntax, so they are sent as `=3D` and `=2C`.
    static func saslName(_ preparedUsername: String) -> [UInt8] {
        var output = [UInt8]()
        for byte in preparedUsername.utf8 {
            switch byte {
            case UInt8(ascii: "="): output += Array("=3D".utf8)
            case UInt8(ascii: ","): output += Array("=2C".utf8)
            default: output.append(byte)
            }
        }
        return output
    }

    /// `server-first-message = [reserved-mext ","] nonce "," salt ","
    /// iteration-count ["," extensions]`.
    ///
    /// - `m=` (a mandatory extension) must fail the exchange (section 5.1);
    /// - `r=` must be printable and extend `clientNonce` by at least one
    ///   character: anything else is not a reply to our client-first message;
    /// - `s=` must be non-empty, valid base64;
    /// - `i=` must be a positive decimal within `iterationBounds`.
    /// An `e=` here is outside the grammar but is surfaced as the server error it
    /// obviously is, rather than as a syntax complaint.
    static func parseServerFirst(_ message: [UInt8], clientNonce: [UInt8],
                                 iterationBounds: ClosedRange<Int>) throws(SASLError) -> ServerFirst {
        let attributes = try split(message, what: "server-first-message")
        if let first = attributes.first {
            switch first.name {
            case UInt8(ascii: "m"):
                throw .malformedChallenge("SCRAM server requires an unsupported mandatory extension (m=)")
            case UInt8(ascii: "e"):
                throw .serverError(String(decoding: first.value, as: UTF8.self))
            default:
                break
            }
        }
        guard attributes.count >= 3, attributes[0].name == UInt8(ascii: "r"),
              attributes[1].name == UInt8(ascii: "s"), attributes[2].name == UInt8(ascii: "i") else {
            throw .malformedChallenge("SCRAM server-first-message is not r=...,s=...,i=...")
        }

        let nonce = attributes[0].value
        guard nonce.allSatisfy(isPrintable) else {
            throw .malformedChallenge("SCRAM nonce contains characters outside printable ASCII")
        }
        guard nonce.count > clientNonce.count, nonce.starts(with: clientNonce) else {
            throw .nonceMismatch
        }

        guard let salt = decodeBase64(attributes[1].value), !salt.isEmpty else {
            throw .malformedChallenge("SCRAM salt is not non-empty base64")
        }

        let iterations = try parseIterationCount(attributes[2].value)
        guard iterations >= iterationBounds.lowerBound else { throw .iterationCountTooLow(iterations) }
        guard iterations <= iterationBounds.upperBound else { throw .iterationCountTooHigh(iterations) }
        return ServerFirst(nonce: nonce, salt: salt, iterations: iterations)
    }

    /// `server-final-message = (server-error / verifier) ["," extensions]`.
    static func parseServerFinal(_ message: [UInt8]) throws(SASLError) -> ServerFinal {
        let attributes = try split(message, what: "server-final-message")
        switch attributes.first?.name {
        case UInt8(ascii: "e"):
            return .error(String(decoding: attributes[0].value, as: UTF8.self))
        case UInt8(ascii: "v"):
            guard let signature = decodeBase64(attributes[0].value), !signature.isEmpty else {
                throw .malformedChallenge("SCRAM server signature is not base64")
            }
            return .verifier(signature)
        default:
            throw .malformedChallenge("SCRAM server-final-message has neither v= nor e=")
        }
    }

    /// Base64 (RFC 4648 section 4, padded), as SCRAM transmits binary values.
    static func encodeBase64(_ bytes: [UInt8]) -> [UInt8] {
        Array(Data(bytes).base64EncodedString().utf8)
    }

    /// Strict base64: the standard alphabet with padding, no whitespace, nil
    /// for anything else.
    static func decodeBase64(_ text: [UInt8]) -> [UInt8]? {
        guard text.allSatisfy({ $0 < 0x80 }) else { return nil }
        return Data(base64Encoded: String(decoding: text, as: UTF8.self)).map { Array($0) }
    }

    /// `printable = %x21-2B / %x2D-7E` (printable ASCII except ",").
    static func isPrintable(_ byte: UInt8) -> Bool {
        byte >= 0x21 && byte <= 0x7E && byte != UInt8(ascii: ",")
    }

    /// `posit-number = %x31-39 *DIGIT`. Longer digit strings than any accepted
    /// count saturate at `Int.max` (reported as too high) instead of overflowing.
    private static func parseIterationCount(_ text: [UInt8]) throws(SASLError) -> Int {
        guard let first = text.first, first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9"),
              text.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw .malformedChallenge("SCRAM iteration count is not a positive decimal number")
        }
        guard text.count <= 18 else { return Int.max }
        return text.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    /// One `attr-val`: a letter, `=`, and a value.
    struct Attribute: Equatable {
        var name: UInt8
        var value: [UInt8]
    }

    /// Splits a message at `,` into `ALPHA "=" value` attributes. Values may be
    /// empty only where the grammar will reject them anyway; a part without
    /// the `x=` shape makes the whole message malformed (this also covers
    /// trailing commas and empty messages).
    private static func split(_ message: [UInt8], what: String) throws(SASLError) -> [Attribute] {
        var attributes = [Attribute]()
        for part in message.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            guard part.count >= 2, part[part.startIndex + 1] == UInt8(ascii: "="),
                  let name = part.first,
                  (name >= UInt8(ascii: "a") && name <= UInt8(ascii: "z"))
                      || (name >= UInt8(ascii: "A") && name <= UInt8(ascii: "Z")) else {
                throw .malformedChallenge("SCRAM \(what) has an attribute without the x=value form")
            }
            attributes.append(Attribute(name: name, value: Array(part.dropFirst(2))))
        }
        return attributes
    }
}
