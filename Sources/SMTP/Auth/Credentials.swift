/// A user name and password for SMTP AUTH (RFC 4954).
///
/// The password is secret and must not end up in logs, crash reports or error
/// messages, so every textual rendering of this value (`description`,
/// `debugDescription`, string interpolation, `dump`, `Mirror`) shows the user
/// name and a placeholder instead of the password. Nothing in the SASL code puts
/// the password into a ``SASLError`` either.
///
/// Deliberately not `Equatable`: comparing passwords is the server's business, and
/// an `==` here would invite a non-constant-time comparison of secrets.
public struct Credentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable {
    /// The authentication identity (SASL's authcid, RFC 4422 section 2).
    public var username: String
    /// The password; never rendered by this type.
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// Shown in place of the password.
    static let redacted = "<redacted>"

    public var description: String {
        "Credentials(username: \(username.debugDescription), password: \(Self.redacted))"
    }

    public var debugDescription: String { description }

    /// `dump(credentials)` and debuggers that walk a value's mirror would
    /// otherwise print the stored password; the mirror carries the placeholder.
    public var customMirror: Mirror {
        Mirror(self, children: ["username": username, "password": Self.redacted],
               displayStyle: .struct)
    }
}

/// Channel binding data for the SCRAM `-PLUS` mechanisms (RFC 5056, RFC 5802
/// section 6): a value both ends derive from the TLS session, so that a
/// man-in-the-middle who terminates TLS with a different certificate cannot
/// relay the exchange (the server sees a binding that does not match its own).
///
/// The type is `tls-exporter` (RFC 9266) on TLS 1.3, or `tls-unique`
/// (RFC 5929 section 3) on TLS 1.2 with the extended master secret; which one
/// applies is the TLS layer's decision, this type only carries the result.
public struct ChannelBinding: Sendable, Equatable, CustomStringConvertible {
    /// The channel binding type name (RFC 5056 section 7), sent as the
    /// `cb-name` of the GS2 header (RFC 5802 section 7).
    public let type: String
    /// The binding data itself.
    public let data: [UInt8]

    public init(type: String, data: [UInt8]) {
        self.type = type
        self.data = data
    }

    /// `tls-exporter` (RFC 9266): 32 bytes exported with the label
    /// "EXPORTER-Channel-Binding" and an empty context.
    public static func tlsExporter(_ data: [UInt8]) -> ChannelBinding {
        ChannelBinding(type: "tls-exporter", data: data)
    }

    /// `tls-unique` (RFC 5929 section 3): the first Finished message of the
    /// most recent handshake. Not defined for TLS 1.3 (RFC 9266).
    public static func tlsUnique(_ data: [UInt8]) -> ChannelBinding {
        ChannelBinding(type: "tls-unique", data: data)
    }

    /// Whether the type is a syntactically valid `cb-name`
    /// (`1*(ALPHA / DIGIT / "." / "-")`, RFC 5802 section 7) and there is data
    /// to bind to. Anything else would corrupt the GS2 header.
    var isUsable: Bool {
        guard !type.isEmpty, !data.isEmpty else { return false }
        return type.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
        }
    }

    /// The type and the data's length; the bytes are of no use in a log.
    public var description: String { "ChannelBinding(\(type), \(data.count) bytes)" }
}
