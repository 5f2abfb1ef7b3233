/// One SASL exchange in progress (RFC 4422 section 3), seen from the client.
///
/// The SMTP client drives it (RFC 4954 section 4):
/// 1. `AUTH <name>` with ``initialResponse()`` base64-encoded as the optional
///    second argument (`=` for an empty one) when it returns non-nil;
/// 2. for each `334` reply, the decoded challenge goes to ``respond(to:)`` and
///    the result is sent base64-encoded on a line of its own;
/// 3. on `235`, ``finish(with:)`` receives the decoded additional data, if the
///    reply carried any. It may still throw: a SCRAM server has to prove that it
///    knows the password, and a 235 without that proof is not a success.
///
/// Any thrown ``SASLError`` means: cancel with `*` (mid-exchange) or drop the
/// session (after 235). Once a method has thrown, every later call throws too.
///
/// A value holds the credentials and the exchange's state; use a fresh one per
/// AUTH attempt (``SASLMechanismName/makeMechanism(credentials:channelBinding:serverOffersPlus:)``).
public protocol SASLMechanism: Sendable {
    /// The registered mechanism name (RFC 4422 section 3.1), as sent after AUTH.
    var name: String { get }

    /// The client's first message, or nil when the mechanism sends nothing with
    /// AUTH (LOGIN, CRAM-MD5: the server speaks first).
    ///
    /// A client that chooses not to send the initial response with AUTH (for
    /// example because the line would be too long) may skip this call instead:
    /// client-first mechanisms then answer the server's empty challenge with the
    /// same message (RFC 4422 section 5, item 2a).
    mutating func initialResponse() throws -> [UInt8]?

    /// The response to one `334` challenge, already base64-decoded.
    mutating func respond(to challenge: [UInt8]) throws -> [UInt8]

    /// Called on `235` with the decoded additional data of that reply, if any
    /// (RFC 4422 section 3.6). SCRAM verifies the server signature here unless
    /// the server already sent it as a final `334` challenge.
    mutating func finish(with data: [UInt8]?) throws
}

/// The mechanisms Postern implements, by their registered names.
///
/// `allCases` lists them from weakest to strongest; ``preferenceOrder`` is the
/// order in which a client should pick among those a server advertises.
public enum SASLMechanismName: String, CaseIterable, Sendable {
    /// RFC 4616: user name and password in the clear (TLS required in practice).
    case plain = "PLAIN"
    /// draft-murchison-sasl-login: the same secrets as PLAIN, in two steps.
    case login = "LOGIN"
    /// RFC 2195: HMAC-MD5 challenge/response; keeps the password off the wire
    /// but needs a plaintext-equivalent on the server and proves nothing back.
    case cramMD5 = "CRAM-MD5"
    /// RFC 5802 + RFC 7677: salted challenge/response with mutual
    /// authentication.
    case scramSHA256 = "SCRAM-SHA-256"
    /// SCRAM-SHA-256 bound to the TLS channel (RFC 5802 section 6).
    case scramSHA256Plus = "SCRAM-SHA-256-PLUS"

    /// Strongest first: mutual authentication with channel binding, without,
    /// then the password-equivalent ones. CRAM-MD5 ranks above PLAIN/LOGIN only
    /// because it does not reveal the password itself to an eavesdropper.
    public static let preferenceOrder: [SASLMechanismName] = [
        .scramSHA256Plus, .scramSHA256, .cramMD5, .plain, .login,
    ]

    /// The mechanism for a name as it appears in the EHLO `AUTH` keyword's
    /// parameters. SASL names are upper case (RFC 4422 section 3.1) but SMTP
    /// keywords are matched case-insensitively (RFC 5321 section 2.4), and some
    /// servers advertise them in lower case.
    public init?(advertised name: String) {
        self.init(rawValue: name.uppercased())
    }

    /// Whether the mechanism needs ``ChannelBinding`` data.
    public var requiresChannelBinding: Bool { self == .scramSHA256Plus }

    /// A fresh exchange for this mechanism.
    ///
    /// - Parameters:
    ///   - credentials: the user name and password.
    ///   - channelBinding: the TLS channel binding, when the TLS layer has one.
    ///     Required for ``scramSHA256Plus``; for ``scramSHA256`` a usable one
    ///     means "this client supports channel binding". Ignored by the others.
    ///   - serverOffersPlus: whether the server advertised `SCRAM-SHA-256-PLUS`.
    ///     Only matters for ``scramSHA256`` with a binding: when the client could
    ///     bind but the server offers no `-PLUS`, the GS2 flag is `y` rather than
    ///     `n`, so a server that really does support `-PLUS` detects that an
    ///     attacker stripped it from the EHLO reply (RFC 5802 section 6).
    /// - Throws: ``SASLError/channelBindingUnavailable(mechanism:)`` for
    ///   ``scramSHA256Plus`` without a binding,
    ///   ``SASLError/invalidChannelBinding(type:)`` for a malformed one.
    public func makeMechanism(credentials: Credentials, channelBinding: ChannelBinding? = nil,
                              serverOffersPlus: Bool = false) throws -> any SASLMechanism {
        switch self {
        case .plain:
            return PlainMechanism(credentials: credentials)
        case .login:
            return LoginMechanism(credentials: credentials)
        case .cramMD5:
            return CRAMMD5Mechanism(credentials: credentials)
        case .scramSHA256:
            // A binding we could not use anyway does not count as support.
            let canBind = channelBinding?.isUsable ?? false
            let mode: SCRAMSHA256Mechanism.ChannelBindingMode =
                canBind && !serverOffersPlus ? .supportedButNotOffered : .notSupported
            return SCRAMSHA256Mechanism(credentials: credentials, channelBinding: mode)
        case .scramSHA256Plus:
            guard let channelBinding else {
                throw SASLError.channelBindingUnavailable(mechanism: rawValue)
            }
            guard channelBinding.isUsable else {
                throw SASLError.invalidChannelBinding(type: channelBinding.type)
            }
            return SCRAMSHA256Mechanism(credentials: credentials, channelBinding: .bound(channelBinding))
        }
    }

    /// The best mechanism among `advertised` (the EHLO `AUTH` parameters) that
    /// can be used: ``scramSHA256Plus`` only when a channel binding is at hand.
    /// Whether PLAIN and LOGIN may be used at all (never without TLS) is the
    /// caller's policy, applied by filtering the result or the input.
    public static func preferred(among advertised: [String],
                                 channelBindingAvailable: Bool) -> SASLMechanismName? {
        let offered = Set(advertised.compactMap(SASLMechanismName.init(advertised:)))
        return preferenceOrder.first { name in
            offered.contains(name) && (!name.requiresChannelBinding || channelBindingAvailable)
        }
    }
}

/// The factory under the name the SMTP client calls it by.
public enum SASL {
    /// A fresh exchange for `name`; the same as
    /// ``SASLMechanismName/makeMechanism(credentials:channelBinding:serverOffersPlus:)``.
    public static func mechanism(_ name: SASLMechanismName, credentials: Credentials,
                                 channelBinding: ChannelBinding? = nil,
                                 serverOffersPlus: Bool = false) throws -> any SASLMechanism {
        try name.makeMechanism(credentials: credentials, channelBinding: channelBinding,
                               serverOffersPlus: serverOffersPlus)
    }
}
