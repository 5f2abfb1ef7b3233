/// SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802 with SHA-256, RFC 7677).
///
/// The exchange, client's view (RFC 5802 sections 3 and 5):
/// 1. client-first: `gs2-header n=<user>,r=<client nonce>`;
/// 2. server-first: `r=<client nonce + server nonce>,s=<salt>,i=<iterations>`;
/// 3. client-final: `c=<base64 of gs2-header + binding>,r=<nonce>,p=<proof>`,
///    the proof showing knowledge of `SaltedPassword` without revealing it;
/// 4. server-final: `v=<server signature>`, which only a server that holds the
///    stored keys can compute. It arrives either as a last `334` challenge
///    (answered with an empty response) or as additional data of the `235`; in
///    both cases the exchange only succeeds once it has been verified.
///
/// The GS2 header (RFC 5802 section 7) says what the client knows about
/// channel binding, see ``ChannelBindingMode``. With `.bound`, the mechanism is
/// `SCRAM-SHA-256-PLUS` and `c=` carries the TLS channel binding data, so a
/// man-in-the-middle holding a different TLS session cannot relay the proof.
///
/// The iteration count the server asks for is bounded on both sides: at least
/// ``minimumIterationCount`` (RFC 7677 section 4: "at least 4096"), so a
/// malicious or downgraded server cannot collect a cheaply brute-forced proof,
/// and at most ``maximumIterationCount``, so it cannot make the client burn
/// minutes of CPU in PBKDF2 per attempt.
public struct SCRAMSHA256Mechanism: SASLMechanism {
    /// The client's channel binding situation, sent as the GS2 cbind-flag.
    public enum ChannelBindingMode: Sendable, Equatable {
        /// `n`: the client does not support channel binding.
        case notSupported
        /// `y`: the client supports channel binding but the server did not offer
        /// `-PLUS`. A server that does support it fails the exchange, which
        /// defeats an attacker who removed `-PLUS` from the EHLO reply.
        case supportedButNotOffered
        /// `p=<type>`: bind to this TLS channel (`SCRAM-SHA-256-PLUS`).
        case bound(ChannelBinding)
    }

    /// RFC 7677 section 4's minimum; lower counts are refused.
    public static let minimumIterationCount = 4096
    /// A ceiling against CPU exhaustion by a hostile server. Ten million rounds
    /// are about 2,500 times the minimum and several seconds of one core.
    public static let maximumIterationCount = 10_000_000
    /// Random bytes in a generated client nonce. RFC 5802 section 5.1 only asks
    /// for an unpredictable value; 24 bytes from the CSPRNG (192 bits, sent as
    /// 32 base64 characters, all `printable`) leave no room for a collision.
    static let nonceByteCount = 24

    public let name: String
    private let credentials: Credentials
    private let channelBinding: ChannelBindingMode
    /// A fixed client nonce, for reproducing published test vectors.
    private let fixedNonce: [UInt8]?
    private var state = State.initial

    private enum State: Sendable {
        case initial
        /// client-first sent; what the next step needs from it.
        case awaitingServerFirst(gs2Header: [UInt8], clientFirstBare: [UInt8], clientNonce: [UInt8],
                                 preparedPassword: [UInt8])
        /// client-final sent; the signature the server must present.
        case awaitingServerFinal(expectedSignature: [UInt8])
        /// Server signature verified (via a 334); only the 235 is missing.
        case verified
        case done
        case failed
    }

    public init(credentials: Credentials, channelBinding: ChannelBindingMode = .notSupported) {
        self.init(credentials: credentials, channelBinding: channelBinding, fixedNonce: nil)
    }

    /// For tests: `clientNonce` replaces the random one. It must be non-empty
    /// printable ASCII without commas (RFC 5802 section 7, `c-nonce`).
    init(credentials: Credentials, channelBinding: ChannelBindingMode = .notSupported, clientNonce: String) {
        let nonce = Array(clientNonce.utf8)
        precondition(!nonce.isEmpty && nonce.allSatisfy(SCRAMMessages.isPrintable), "invalid SCRAM test nonce")
        self.init(credentials: credentials, channelBinding: channelBinding, fixedNonce: nonce)
    }

    private init(credentials: Credentials, channelBinding: ChannelBindingMode, fixedNonce: [UInt8]?) {
        self.credentials = credentials
        self.channelBinding = channelBinding
        self.fixedNonce = fixedNonce
        if case .bound = channelBinding {
            name = SASLMechanismName.scramSHA256Plus.rawValue
        } else {
            name = SASLMechanismName.scramSHA256.rawValue
        }
    }

    /// client-first-message. Also prepares the credentials, so that a user name
    /// or password SASLprep refuses fails before anything is sent.
    public mutating func initialResponse() throws -> [UInt8]? {
        guard case .initial = state else {
            state = .failed
            throw SASLError.unexpectedStep("\(name): initial response requested twice")
        }
        do {
            return try clientFirst()
        } catch {
            state = .failed
            throw error
        }
    }

    public mutating func respond(to challenge: [UInt8]) throws -> [UInt8] {
        do {
            switch state {
            case .initial where challenge.isEmpty:
                // AUTH went without an initial response (RFC 4422 section 5).
                return try clientFirst()
            case .awaitingServerFirst(let gs2Header, let clientFirstBare, let clientNonce, let password):
                return try clientFinal(serverFirst: challenge, gs2Header: gs2Header,
                                       clientFirstBare: clientFirstBare, clientNonce: clientNonce,
                                       password: password)
            case .awaitingServerFinal(let expected):
                try verify(serverFinal: challenge, expected: expected)
                state = .verified
                return []
            case .initial, .verified, .done, .failed:
                throw SASLError.unexpectedStep("\(name): challenge not expected at this point")
            }
        } catch {
            state = .failed
            throw error
        }
    }

    /// The server's 235. Succeeds only if the server signature has been, or now
    /// is, verified: a 235 without it means the server never proved anything.
    public mutating func finish(with data: [UInt8]?) throws {
        let data = data ?? []
        do {
            switch state {
            case .awaitingServerFinal(let expected):
                guard !data.isEmpty else { throw SASLError.serverFinalMissing }
                try verify(serverFinal: data, expected: expected)
            case .verified:
                guard data.isEmpty else {
                    throw SASLError.unexpectedStep("\(name): a second server-final message")
                }
            case .initial, .awaitingServerFirst:
                throw SASLError.serverFinalMissing
            case .done, .failed:
                throw SASLError.unexpectedStep("\(name): exchange already over")
            }
            state = .done
        } catch {
            state = .failed
            throw error
        }
    }

    // MARK: - Steps

    /// `gs2-header = gs2-cbind-flag "," [authzid] ","`, authzid left empty.
    private var gs2Header: [UInt8] {
        switch channelBinding {
        case .notSupported: return Array("n,,".utf8)
        case .supportedButNotOffered: return Array("y,,".utf8)
        case .bound(let binding): return Array("p=\(binding.type),,".utf8)
        }
    }

    private mutating func clientFirst() throws(SASLError) -> [UInt8] {
        if case .bound(let binding) = channelBinding, !binding.isUsable {
            throw .invalidChannelBinding(type: binding.type)
        }
        guard let username = SASLprep.prepare(credentials.username) else {
            throw .invalidCredentials(field: "username", reason: "contains a character SASLprep (RFC 4013) prohibits")
        }
        guard !username.isEmpty else { throw .invalidCredentials(field: "username", reason: "is empty") }
        guard let password = SASLprep.prepare(credentials.password) else {
            throw .invalidCredentials(field: "password", reason: "contains a character SASLprep (RFC 4013) prohibits")
        }
        let nonce: [UInt8]
        if let fixedNonce {
            nonce = fixedNonce
        } else {
            nonce = SCRAMMessages.encodeBase64(try SASLCrypto.randomBytes(Self.nonceByteCount))
        }
        let header = gs2Header
        let bare = Array("n=".utf8) + SCRAMMessages.saslName(username) + Array(",r=".utf8) + nonce
        state = .awaitingServerFirst(gs2Header: header, clientFirstBare: bare, clientNonce: nonce,
                                     preparedPassword: Array(password.utf8))
        return header + bare
    }

    /// client-final-message with the proof (RFC 5802 section 3):
    ///
    ///     SaltedPassword  := Hi(Normalize(password), salt, i)
    ///     ClientKey       := HMAC(SaltedPassword, "Client Key")
    ///     StoredKey       := H(ClientKey)
    ///     AuthMessage     := client-first-message-bare + "," +
    ///                        server-first-message + "," +
    ///                        client-final-message-without-proof
    ///     ClientSignature := HMAC(StoredKey, AuthMessage)
    ///     ClientProof     := ClientKey XOR ClientSignature
    ///     ServerKey       := HMAC(SaltedPassword, "Server Key")
    ///     ServerSignature := HMAC(ServerKey, AuthMessage)
    ///
    /// Only ServerSignature is kept for the last step; the salted password and
    /// keys are dropped when this returns.
    private mutating func clientFinal(serverFirst: [UInt8], gs2Header: [UInt8], clientFirstBare: [UInt8],
                                      clientNonce: [UInt8], password: [UInt8]) throws(SASLError) -> [UInt8] {
        let parsed = try SCRAMMessages.parseServerFirst(
            serverFirst, clientNonce: clientNonce,
            iterationBounds: Self.minimumIterationCount...Self.maximumIterationCount)

        // c= is the GS2 header followed by the binding data (RFC 5802 section 7,
        // cbind-input), so the server checks both the flag and the channel.
        var bindingInput = gs2Header
        if case .bound(let binding) = channelBinding { bindingInput += binding.data }
        let withoutProof = Array("c=".utf8) + SCRAMMessages.encodeBase64(bindingInput)
            + Array(",r=".utf8) + parsed.nonce
        let comma = [UInt8(ascii: ",")]
        let authMessage = clientFirstBare + comma + serverFirst + comma + withoutProof

        let salted = try SASLCrypto.pbkdf2SHA256(password: password, salt: parsed.salt,
                                                 iterations: parsed.iterations, length: 32)
        let clientKey = try SASLCrypto.hmac(.sha256, key: salted, data: Array("Client Key".utf8))
        let storedKey = try SASLCrypto.digest(.sha256, clientKey)
        let clientSignature = try SASLCrypto.hmac(.sha256, key: storedKey, data: authMessage)
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
        let serverKey = try SASLCrypto.hmac(.sha256, key: salted, data: Array("Server Key".utf8))
        let serverSignature = try SASLCrypto.hmac(.sha256, key: serverKey, data: authMessage)

        state = .awaitingServerFinal(expectedSignature: serverSignature)
        return withoutProof + Array(",p=".utf8) + SCRAMMessages.encodeBase64(proof)
    }

    /// Checks server-final: `e=` becomes ``SASLError/serverError(_:)``, `v=`
    /// must equal the expected ServerSignature, compared in constant time.
    private func verify(serverFinal: [UInt8], expected: [UInt8]) throws(SASLError) {
        switch try SCRAMMessages.parseServerFinal(serverFinal) {
        case .error(let text):
            throw .serverError(text)
        case .verifier(let signature):
            guard SASLCrypto.constantTimeEquals(signature, expected) else { throw .serverSignatureMismatch }
        }
    }
}
