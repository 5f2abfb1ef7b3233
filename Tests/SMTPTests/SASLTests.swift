import Testing
@testable import SMTP

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
private func text(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }

/// The RFC 7677 section 3 example exchange and variations on it.
struct SCRAMTests {
    static let credentials = Credentials(username: "user", password: "pencil")
    static let clientNonce = "rOprNGfwEbeRWgbNEkqO"
    static let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    static let clientFinal =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    static let serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

    /// The RFC's mechanism, with client-first already sent.
    static func afterClientFirst() throws -> SCRAMSHA256Mechanism {
        var scram = SCRAMSHA256Mechanism(credentials: credentials, clientNonce: clientNonce)
        _ = try scram.initialResponse()
        return scram
    }

    /// The RFC's mechanism, with client-final already sent.
    static func afterClientFinal() throws -> SCRAMSHA256Mechanism {
        var scram = try afterClientFirst()
        _ = try scram.respond(to: bytes(serverFirst))
        return scram
    }

    /// RFC 7677's exchange reproduces client-first and client-final byte for byte and accepts its server-final in the 235.
    @Test func rfc7677Example() throws {
        var scram = SCRAMSHA256Mechanism(credentials: Self.credentials, clientNonce: Self.clientNonce)
        #expect(scram.name == "SCRAM-SHA-256")
        #expect(text(try scram.initialResponse()) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        #expect(text(try scram.respond(to: bytes(Self.serverFirst))) == Self.clientFinal)
        try scram.finish(with: bytes(Self.serverFinal))
    }

    /// A server-final sent as a last 334 challenge is verified there, answered empty, and the bare 235 then succeeds.
    @Test func serverFinalAsChallenge() throws {
        var scram = try Self.afterClientFinal()
        #expect(try scram.respond(to: bytes(Self.serverFinal)) == [])
        try scram.finish(with: nil)
    }

    /// Without an initial response, the server's empty challenge gets client-first.
    @Test func clientFirstOnEmptyChallenge() throws {
        var scram = SCRAMSHA256Mechanism(credentials: Self.credentials, clientNonce: Self.clientNonce)
        #expect(text(try scram.respond(to: [])) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        #expect(text(try scram.respond(to: bytes(Self.serverFirst))) == Self.clientFinal)
    }

    /// A server signature that differs in one character is refused, and the exchange stays failed.
    @Test func wrongServerSignature() throws {
        var scram = try Self.afterClientFinal()
        #expect(throws: SASLError.serverSignatureMismatch) {
            try scram.finish(with: bytes("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
        }
        #expect(throws: SASLError.self) { try scram.finish(with: bytes(Self.serverFinal)) }
    }

    /// A server signature of the wrong length is a mismatch too, not a crash.
    @Test func shortServerSignature() throws {
        var scram = try Self.afterClientFinal()
        #expect(throws: SASLError.serverSignatureMismatch) { try scram.finish(with: bytes("v=AAAA")) }
    }

    /// A 235 without any server-final is refused: the server proved nothing.
    @Test func successWithoutServerFinal() throws {
        var scram = try Self.afterClientFinal()
        #expect(throws: SASLError.serverFinalMissing) { try scram.finish(with: nil) }
        var early = try Self.afterClientFirst()
        #expect(throws: SASLError.serverFinalMissing) { try early.finish(with: []) }
    }

    /// A server nonce that does not start with ours, or adds nothing to it, is refused.
    @Test(arguments: ["r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                      "r=serverOnly,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                      "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"])
    func nonceMismatch(serverFirst: String) throws {
        var scram = try Self.afterClientFirst()
        #expect(throws: SASLError.nonceMismatch) { try scram.respond(to: bytes(serverFirst)) }
    }

    /// Iteration counts below RFC 7677's 4096 (i=1 included) or above ten million are refused.
    @Test(arguments: [("1", SASLError.iterationCountTooLow(1)), ("4095", .iterationCountTooLow(4095)),
                      ("10000001", .iterationCountTooHigh(10_000_001)),
                      ("99999999999999999999999", .iterationCountTooHigh(Int.max))])
    func iterationBounds(count: String, expected: SASLError) throws {
        var scram = try Self.afterClientFirst()
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=" + count
        #expect(throws: expected) { try scram.respond(to: bytes(serverFirst)) }
    }

    /// An e= server-final surfaces as a typed error carrying the server's text, in the 235 or a 334.
    @Test func serverErrorSurfaced() throws {
        var scram = try Self.afterClientFinal()
        #expect(throws: SASLError.serverError("invalid-proof")) { try scram.finish(with: bytes("e=invalid-proof")) }
        var other = try Self.afterClientFinal()
        #expect(throws: SASLError.serverError("unknown-user")) { try other.respond(to: bytes("e=unknown-user")) }
    }

    /// Server-first messages outside the grammar, or with a mandatory extension, are malformed.
    @Test(arguments: ["", "garbage", "m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                      "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
                      "r=rOprNGfwEbeRWgbNEkqOxyz,s=not*base64,i=4096",
                      "r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096",
                      "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=04096",
                      "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,",
                      "r=rOprNGfwEbeRWgbNEkqO\u{7F},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"])
    func malformedServerFirst(serverFirst: String) throws {
        var scram = try Self.afterClientFirst()
        let error = #expect(throws: SASLError.self) { try scram.respond(to: bytes(serverFirst)) }
        guard case .malformedChallenge = error else {
            Issue.record("expected malformedChallenge, got \(String(describing: error))")
            return
        }
    }

    /// Extensions after i= are ignored, as RFC 5802 section 7 allows.
    @Test func serverFirstExtensionsIgnored() throws {
        var scram = try Self.afterClientFirst()
        #expect(text(try scram.respond(to: bytes(Self.serverFirst + ",x=future"))) != nil)
    }

    /// -PLUS puts "p=tls-exporter,," in client-first and base64("p=tls-exporter,," + data) in c=.
    @Test func plusChannelBinding() throws {
        let data: [UInt8] = Array(0..<32)
        var scram = SCRAMSHA256Mechanism(credentials: Self.credentials,
                                         channelBinding: .bound(.tlsExporter(data)), clientNonce: Self.clientNonce)
        #expect(scram.name == "SCRAM-SHA-256-PLUS")
        #expect(text(try scram.initialResponse()) == "p=tls-exporter,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let expectedC = text(SCRAMMessages.encodeBase64(bytes("p=tls-exporter,,") + data))!
        #expect(expectedC == "cD10bHMtZXhwb3J0ZXIsLAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f")
        let clientFinal = try #require(text(try scram.respond(to: bytes(Self.serverFirst))))
        #expect(clientFinal.hasPrefix("c=\(expectedC),r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="))
        // The proof covers the binding, so the RFC's (unbound) server signature no longer matches.
        #expect(throws: SASLError.serverSignatureMismatch) { try scram.finish(with: bytes(Self.serverFinal)) }
    }

    /// The factory uses y,, when the client could bind but the server offers no -PLUS, n,, otherwise (also for an unusable binding).
    @Test func gs2FlagFromFactory() throws {
        let binding = ChannelBinding.tlsExporter(Array(repeating: 7, count: 32))
        var yes = try SASLMechanismName.scramSHA256.makeMechanism(credentials: Self.credentials,
                                                                  channelBinding: binding)
        #expect(text(try yes.initialResponse())?.hasPrefix("y,,n=user,r=") == true)
        var offered = try SASLMechanismName.scramSHA256.makeMechanism(credentials: Self.credentials,
                                                                      channelBinding: binding, serverOffersPlus: true)
        #expect(text(try offered.initialResponse())?.hasPrefix("n,,n=user,r=") == true)
        var none = try SASLMechanismName.scramSHA256.makeMechanism(credentials: Self.credentials)
        #expect(text(try none.initialResponse())?.hasPrefix("n,,n=user,r=") == true)
        var unusable = try SASLMechanismName.scramSHA256.makeMechanism(credentials: Self.credentials,
                                                                       channelBinding: .tlsExporter([]))
        #expect(text(try unusable.initialResponse())?.hasPrefix("n,,n=user,r=") == true)
        var plus = try SASLMechanismName.scramSHA256Plus.makeMechanism(credentials: Self.credentials,
                                                                       channelBinding: binding)
        #expect(plus.name == "SCRAM-SHA-256-PLUS")
        #expect(text(try plus.initialResponse())?.hasPrefix("p=tls-exporter,,n=user,r=") == true)
    }

    /// -PLUS without channel binding data, or with an unusable binding, cannot be made.
    @Test func plusWithoutBinding() {
        #expect(throws: SASLError.channelBindingUnavailable(mechanism: "SCRAM-SHA-256-PLUS")) {
            _ = try SASLMechanismName.scramSHA256Plus.makeMechanism(credentials: Self.credentials)
        }
        #expect(throws: SASLError.invalidChannelBinding(type: "tls exporter")) {
            _ = try SASLMechanismName.scramSHA256Plus.makeMechanism(
                credentials: Self.credentials, channelBinding: ChannelBinding(type: "tls exporter", data: [1]))
        }
        #expect(throws: SASLError.invalidChannelBinding(type: "tls-exporter")) {
            _ = try SASLMechanismName.scramSHA256Plus.makeMechanism(
                credentials: Self.credentials, channelBinding: .tlsExporter([]))
        }
    }

    /// A generated client nonce is at least 18 random bytes' worth of printable characters and differs per exchange.
    @Test func generatedNonce() throws {
        var first = SCRAMSHA256Mechanism(credentials: Self.credentials)
        var second = SCRAMSHA256Mechanism(credentials: Self.credentials)
        let a = try #require(text(try first.initialResponse()))
        let b = try #require(text(try second.initialResponse()))
        let nonceA = try #require(a.split(separator: ",").last).dropFirst(2)
        #expect(nonceA.count >= 24)
        #expect(nonceA.utf8.allSatisfy(SCRAMMessages.isPrintable))
        #expect(a != b)
    }

    /// "=" and "," in the user name are sent as =3D and =2C (RFC 5802 section 5.1).
    @Test func usernameEscaping() throws {
        var scram = SCRAMSHA256Mechanism(credentials: Credentials(username: "a=b,c", password: "p"), clientNonce: "n")
        #expect(text(try scram.initialResponse()) == "n,,n=a=3Db=2Cc,r=n")
    }

    /// SASLprep maps soft hyphens and non-ASCII spaces, applies NFKC, and rejects control characters.
    @Test func saslPrep() throws {
        #expect(SASLprep.prepare("I\u{00AD}X") == "IX")
        #expect(SASLprep.prepare("user") == "user")
        #expect(SASLprep.prepare("\u{00AA}") == "a")
        #expect(SASLprep.prepare("\u{2168}") == "IX")
        #expect(SASLprep.prepare("a\u{00A0}b") == "a b")
        #expect(SASLprep.prepare("\u{0007}") == nil)
        #expect(SASLprep.prepare("a\u{200E}b") == nil)
        #expect(SASLprep.prepare("x\u{10FFFF}") == nil)
        var scram = SCRAMSHA256Mechanism(credentials: Credentials(username: "bad\u{0007}", password: "p"))
        let error = #expect(throws: SASLError.self) { try scram.initialResponse() }
        guard case .invalidCredentials(field: "username", reason: _) = error else {
            Issue.record("expected invalidCredentials(username), got \(String(describing: error))")
            return
        }
    }

    /// Calls out of order fail and poison the exchange.
    @Test func unexpectedSteps() throws {
        var scram = SCRAMSHA256Mechanism(credentials: Self.credentials, clientNonce: Self.clientNonce)
        #expect(throws: SASLError.self) { try scram.respond(to: bytes("hello")) }
        #expect(throws: SASLError.self) { try scram.initialResponse() }
        var done = try Self.afterClientFinal()
        try done.finish(with: bytes(Self.serverFinal))
        #expect(throws: SASLError.self) { try done.respond(to: []) }
        #expect(throws: SASLError.self) { try done.finish(with: nil) }
    }
}

/// PLAIN, LOGIN and CRAM-MD5.
struct SimpleMechanismTests {
    static let credentials = Credentials(username: "user", password: "pass")

    /// PLAIN's initial response is NUL user NUL password, and the bare 235 completes it.
    @Test func plain() throws {
        var plain = PlainMechanism(credentials: Self.credentials)
        #expect(plain.name == "PLAIN")
        #expect(try plain.initialResponse() == [0] + bytes("user") + [0] + bytes("pass"))
        try plain.finish(with: nil)
    }

    /// PLAIN answers the empty challenge that follows an AUTH without initial response, and nothing else.
    @Test func plainWithoutInitialResponse() throws {
        var plain = PlainMechanism(credentials: Self.credentials)
        #expect(try plain.respond(to: []) == [0] + bytes("user") + [0] + bytes("pass"))
        #expect(throws: SASLError.self) { try plain.respond(to: []) }
        var early = PlainMechanism(credentials: Self.credentials)
        #expect(throws: SASLError.self) { try early.finish(with: nil) }
    }

    /// PLAIN refuses a NUL in the password without quoting the password.
    @Test func plainRejectsNUL() throws {
        var plain = PlainMechanism(credentials: Credentials(username: "user", password: "se\u{0}cret"))
        let error = try #require(#expect(throws: SASLError.self) { try plain.initialResponse() })
        #expect(error == .invalidCredentials(field: "password", reason: "contains NUL"))
        #expect(!error.description.contains("cret"))
    }

    /// PLAIN refuses additional data with success, which it does not define.
    @Test func plainRejectsFinalData() throws {
        var plain = PlainMechanism(credentials: Self.credentials)
        _ = try plain.initialResponse()
        #expect(throws: SASLError.self) { try plain.finish(with: bytes("surprise")) }
    }

    /// LOGIN sends nothing with AUTH, then the user name and the password by position, whatever the prompts say.
    @Test func login() throws {
        var login = LoginMechanism(credentials: Self.credentials)
        #expect(login.name == "LOGIN")
        #expect(try login.initialResponse() == nil)
        #expect(try login.respond(to: bytes("Password:")) == bytes("user"))
        #expect(try login.respond(to: bytes("Username:")) == bytes("pass"))
        #expect(throws: SASLError.self) { try login.respond(to: bytes("Again:")) }
    }

    /// LOGIN completes on 235 after both answers, and not before.
    @Test func loginFinish() throws {
        var login = LoginMechanism(credentials: Self.credentials)
        _ = try login.respond(to: bytes("Username:"))
        #expect(throws: SASLError.self) { try login.finish(with: nil) }
        var complete = LoginMechanism(credentials: Self.credentials)
        _ = try complete.respond(to: bytes("Username:"))
        _ = try complete.respond(to: bytes("Password:"))
        try complete.finish(with: nil)
    }

    /// CRAM-MD5 reproduces the RFC 2195 section 2 example (tim / tanstaaftanstaaf).
    @Test func cramMD5RFC2195() throws {
        var cram = CRAMMD5Mechanism(credentials: Credentials(username: "tim", password: "tanstaaftanstaaf"))
        #expect(cram.name == "CRAM-MD5")
        #expect(try cram.initialResponse() == nil)
        let response = try cram.respond(to: bytes("<1896.697170952@postoffice.reston.mci.net>"))
        #expect(text(response) == "tim b913a602c7eda7a495b4e6e7334d3890")
        try cram.finish(with: nil)
    }

    /// CRAM-MD5 refuses an empty challenge and a second one.
    @Test func cramMD5Steps() throws {
        var empty = CRAMMD5Mechanism(credentials: Self.credentials)
        let error = #expect(throws: SASLError.self) { try empty.respond(to: []) }
        guard case .malformedChallenge = error else {
            Issue.record("expected malformedChallenge, got \(String(describing: error))")
            return
        }
        var twice = CRAMMD5Mechanism(credentials: Self.credentials)
        _ = try twice.respond(to: bytes("<1@x>"))
        #expect(throws: SASLError.self) { try twice.respond(to: bytes("<2@x>")) }
    }
}

/// Credentials, names, errors and the libcrypto wrappers.
struct SASLSupportTests {
    /// No textual rendering of credentials reveals the password.
    @Test func credentialsRedacted() {
        let credentials = Credentials(username: "alice", password: "hunter2-secret")
        var dumped = ""
        dump(credentials, to: &dumped)
        for rendering in ["\(credentials)", String(describing: credentials), String(reflecting: credentials), dumped] {
            #expect(!rendering.contains("hunter2"))
            #expect(rendering.contains("alice"))
        }
    }

    /// Both factory spellings return the right mechanism for every name.
    @Test(arguments: SASLMechanismName.allCases)
    func factoryNames(name: SASLMechanismName) throws {
        let mechanism = try name.makeMechanism(credentials: Credentials(username: "u", password: "p"),
                                               channelBinding: .tlsUnique(Array(repeating: 1, count: 12)))
        #expect(mechanism.name == name.rawValue)
        let viaSASL = try SASL.mechanism(name, credentials: Credentials(username: "u", password: "p"),
                                         channelBinding: .tlsUnique(Array(repeating: 1, count: 12)))
        #expect(viaSASL.name == name.rawValue)
    }

    /// Advertised names match case-insensitively and the strongest usable one is preferred.
    @Test func preferredMechanism() {
        #expect(SASLMechanismName(advertised: "cram-md5") == .cramMD5)
        #expect(SASLMechanismName(advertised: "GSSAPI") == nil)
        let offered = ["PLAIN", "login", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "XOAUTH2"]
        #expect(SASLMechanismName.preferred(among: offered, channelBindingAvailable: true) == .scramSHA256Plus)
        #expect(SASLMechanismName.preferred(among: offered, channelBindingAvailable: false) == .scramSHA256)
        #expect(SASLMechanismName.preferred(among: ["LOGIN", "PLAIN"], channelBindingAvailable: false) == .plain)
        #expect(SASLMechanismName.preferred(among: ["XOAUTH2"], channelBindingAvailable: true) == nil)
    }

    /// Server text in an error description has its control characters escaped.
    @Test func serverErrorEscaped() {
        #expect(SASLError.serverError("bad\r\nX-Injected: 1").description
                == "SCRAM server error: bad\\r\\nX-Injected: 1")
    }

    /// PBKDF2-HMAC-SHA-256 matches RFC 7914 section 11 (P="passwd", S="salt", c=1, dkLen=64).
    @Test func pbkdf2Vector() throws {
        let derived = try SASLCrypto.pbkdf2SHA256(password: bytes("passwd"), salt: bytes("salt"),
                                                  iterations: 1, length: 64)
        #expect(SASLCrypto.lowercaseHex(derived) == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
                + "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783")
    }

    /// Constant-time comparison agrees with ordinary equality, including on length differences.
    @Test func constantTimeEquals() {
        #expect(SASLCrypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!SASLCrypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!SASLCrypto.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(SASLCrypto.constantTimeEquals([], []))
    }

    /// SHA-256 of the empty string and HMAC with an empty key work (no null-pointer edge case).
    @Test func emptyInputs() throws {
        #expect(SASLCrypto.lowercaseHex(try SASLCrypto.digest(.sha256, []))
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SASLCrypto.lowercaseHex(try SASLCrypto.hmac(.sha256, key: [], data: []))
                == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }
}
