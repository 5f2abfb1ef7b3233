/// PLAIN (RFC 4616): one client message, `authzid NUL authcid NUL passwd`.
///
/// The authorization identity is left empty, which asks the server to derive it
/// from the user name (RFC 4616 section 2); a submission client never needs to
/// act as someone else. The password travels in the clear, so the SMTP client
/// must only offer this inside TLS.
public struct PlainMechanism: SASLMechanism {
    public let name = SASLMechanismName.plain.rawValue
    private let credentials: Credentials
    private var state = SimpleState.initial

    public init(credentials: Credentials) {
        self.credentials = credentials
    }

    public mutating func initialResponse() throws -> [UInt8]? {
        guard state == .initial else {
            state = .failed
            throw unexpected("initial response requested twice")
        }
        return try message()
    }

    /// Only the empty challenge a server sends when AUTH carried no initial
    /// response (RFC 4422 section 5) is answered, with the same message.
    public mutating func respond(to challenge: [UInt8]) throws -> [UInt8] {
        guard state == .initial, challenge.isEmpty else {
            state = .failed
            throw unexpected("PLAIN has no challenge to answer")
        }
        return try message()
    }

    public mutating func finish(with data: [UInt8]?) throws {
        try state.finish(mechanism: name, data: data)
    }

    /// `UTF8SAFE` (RFC 4616 section 2) excludes NUL, the field separator, and
    /// `authcid` and `passwd` are `1*SAFE`: an empty or NUL-bearing credential
    /// would be parsed as different fields by the server, so it is refused here.
    private mutating func message() throws -> [UInt8] {
        let user = Array(credentials.username.utf8)
        let password = Array(credentials.password.utf8)
        do {
            guard !user.isEmpty else { throw SASLError.invalidCredentials(field: "username", reason: "is empty") }
            guard !user.contains(0) else {
                throw SASLError.invalidCredentials(field: "username", reason: "contains NUL")
            }
            guard !password.isEmpty else { throw SASLError.invalidCredentials(field: "password", reason: "is empty") }
            guard !password.contains(0) else {
                throw SASLError.invalidCredentials(field: "password", reason: "contains NUL")
            }
        } catch {
            state = .failed
            throw error
        }
        state = .sent
        return [0] + user + [0] + password
    }

    private func unexpected(_ reason: String) -> SASLError { .unexpectedStep("\(name): \(reason)") }
}

/// LOGIN (draft-murchison-sasl-login-00): the server asks twice, the client
/// answers with the user name, then the password.
///
/// The challenges are conventionally "Username:" and "Password:", but servers
/// vary the wording (and some localise it), so the answers go by position only.
/// No initial response: it would be the user name, which not every server
/// accepts with AUTH LOGIN.
public struct LoginMechanism: SASLMechanism {
    public let name = SASLMechanismName.login.rawValue
    private let credentials: Credentials
    private var state = SimpleState.initial
    /// Answers given so far: 0, 1 (user name sent) or 2 (password sent).
    private var answered = 0

    public init(credentials: Credentials) {
        self.credentials = credentials
    }

    public mutating func initialResponse() throws -> [UInt8]? {
        guard state == .initial, answered == 0 else {
            state = .failed
            throw SASLError.unexpectedStep("\(name): initial response requested mid-exchange")
        }
        return nil
    }

    public mutating func respond(to challenge: [UInt8]) throws -> [UInt8] {
        guard state == .initial, answered < 2 else {
            state = .failed
            throw SASLError.unexpectedStep("\(name): a third challenge after user name and password")
        }
        answered += 1
        if answered == 1 { return Array(credentials.username.utf8) }
        state = .sent
        return Array(credentials.password.utf8)
    }

    public mutating func finish(with data: [UInt8]?) throws {
        try state.finish(mechanism: name, data: data)
    }
}

/// CRAM-MD5 (RFC 2195): the server sends a unique challenge, the client answers
/// `user SP hex(HMAC-MD5(password, challenge))` in lower-case hex (section 2).
///
/// It keeps the password itself off the wire, but the server authenticates
/// nothing back and RFC 2195's digest is a plaintext-equivalent on the server:
/// prefer SCRAM whenever the server offers it.
public struct CRAMMD5Mechanism: SASLMechanism {
    public let name = SASLMechanismName.cramMD5.rawValue
    private let credentials: Credentials
    private var state = SimpleState.initial

    public init(credentials: Credentials) {
        self.credentials = credentials
    }

    public mutating func initialResponse() throws -> [UInt8]? {
        guard state == .initial else {
            state = .failed
            throw SASLError.unexpectedStep("\(name): initial response requested mid-exchange")
        }
        return nil
    }

    public mutating func respond(to challenge: [UInt8]) throws -> [UInt8] {
        guard state == .initial else {
            state = .failed
            throw SASLError.unexpectedStep("\(name): a second challenge")
        }
        do {
            // The challenge is a msg-id (RFC 2195 section 2); an empty one gives
            // the server nothing unique to check the digest against.
            guard !challenge.isEmpty else { throw SASLError.malformedChallenge("\(name): empty challenge") }
            guard !credentials.username.isEmpty else {
                throw SASLError.invalidCredentials(field: "username", reason: "is empty")
            }
            let digest = try SASLCrypto.hmac(.md5, key: Array(credentials.password.utf8), data: challenge)
            state = .sent
            return Array(credentials.username.utf8) + [UInt8(ascii: " ")]
                + Array(SASLCrypto.lowercaseHex(digest).utf8)
        } catch {
            state = .failed
            throw error
        }
    }

    public mutating func finish(with data: [UInt8]?) throws {
        try state.finish(mechanism: name, data: data)
    }
}

/// Progress of the mechanisms whose last step is the client's, shared by
/// PLAIN, LOGIN and CRAM-MD5.
enum SimpleState: Sendable, Equatable {
    /// Not all client messages sent yet.
    case initial
    /// The last client message is out; only the outcome remains.
    case sent
    /// Finished successfully.
    case done
    /// An earlier call threw; nothing more is accepted.
    case failed

    /// The 235 is only consistent with an exchange whose last message was sent,
    /// and these mechanisms define no additional data with success (RFC 4422
    /// section 3.6), so non-empty data means a confused or hostile server.
    mutating func finish(mechanism: String, data: [UInt8]?) throws(SASLError) {
        guard self == .sent else {
            let was = self
            self = .failed
            throw .unexpectedStep(was == .initial ? "\(mechanism): success before the exchange was complete"
                                              : "\(mechanism): exchange already over")
        }
        guard data?.isEmpty ?? true else {
            self = .failed
            throw .unexpectedStep("\(mechanism): defines no additional data with success")
        }
        self = .done
    }
}
