import COpenSSL
import Foundation
import PosternTesting
import Testing
@testable import SMTP
@testable import TLS

/// STARTTLS, implicit TLS and AUTH against the scripted server.
struct SMTPTLSAndAuthTests {
    typealias H = SessionHarness
    let directory: String
    let serverTLS: ScriptedSMTPPeer.ServerTLS
    let clientTLS: TLSClientOptions

    init() throws {
        directory = NSTemporaryDirectory() + "/postern-smtp-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let authority = try TestCertificateAuthority()
        let paths = try authority.issue(commonName: "mx.example", dnsNames: ["mx.example"]).write(to: directory, name: "mx")
        serverTLS = ScriptedSMTPPeer.ServerTLS(certificateChain: paths.certificate, key: paths.key)
        try authority.root.certificatePEM.write(toFile: directory + "/ca.pem", atomically: true, encoding: .utf8)
        clientTLS = TLSClientOptions(verification: .pkix(hostnames: ["mx.example"]), serverName: "mx.example",
                                     context: try TLSContext(trustAnchors: .file(directory + "/ca.pem")))
    }

    /// Opportunistic STARTTLS: upgrade, then EHLO again, forgetting the extensions learnt in plaintext.
    @Test func startTLS() throws {
        let (facts, outcome) = try H.run(H.opening(["STARTTLS", "PIPELINING"]) + [
            .expect("STARTTLS"), .send("220 2.0.0 ready"), .startTLS(serverTLS),
            .expect("EHLO client.example"), .send(H.ehlo(["8BITMIME", "AUTH PLAIN"])),
        ] + H.quit, options: H.options(.opportunistic, tls: clientTLS)) { client in
            defer { client.quit() }
            return try client.open()
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(facts.tls?.verified == true)
        #expect(facts.tls?.version == "TLSv1.3")
        #expect(facts.extensions.eightBitMIME && !facts.extensions.pipelining && !facts.extensions.startTLS)
    }

    /// REQUIRETLS goes only over verified TLS (RFC 8689 4.2.1): over TLS whose certificate was not
    /// checked the client refuses before MAIL, although the server offers REQUIRETLS.
    @Test func requireTLSNeedsVerifiedTLS() throws {
        let unverified = TLSClientOptions(verification: .none, enforce: false, context: clientTLS.context)
        for (tls, sent) in [(clientTLS, true), (unverified, false)] {
            var transaction = H.transaction(["bob@example.net"])
            transaction.requireTLS = true
            let delivery: [ScriptedSMTPPeer.Step] = sent
                ? [.expect("MAIL FROM:<alice@example.org> REQUIRETLS"), .send("250 ok"), .expect("RCPT TO:<bob@example.net>"),
                   .send("250 ok"), .expect("DATA"), .send("354 go on"), .receiveData, .send("250 queued")]
                : []
            let (report, outcome) = try H.run(H.opening(["STARTTLS"]) + [
                .expect("STARTTLS"), .send("220 2.0.0 ready"), .startTLS(serverTLS),
                .expect("EHLO client.example"), .send(H.ehlo(["REQUIRETLS"])),
            ] + delivery + H.quit, options: H.options(.required, tls: tls)) { client in
                defer { client.quit() }
                try client.open()
                return client.deliver(transaction)
            }
            #expect(outcome.failures.isEmpty, "\(outcome.failures)")
            if sent {
                #expect(report.delivered == ["bob@example.net"])
            } else {
                guard case .failure(let error) = report.outcomes.first?.result else { Issue.record("expected a refusal"); continue }
                #expect(error.kind == .refused(.requireTLSUnsupported) && !error.isPermanent)
            }
        }
    }

    /// Opportunistic mode goes on in plaintext when STARTTLS is not offered, or refused.
    @Test func opportunisticFallsBack() throws {
        let (facts, _) = try H.run(H.opening(["STARTTLS"]) + [.expect("STARTTLS"), .send("454 4.7.0 TLS not available")] + H.quit,
                                   options: H.options(.opportunistic, tls: clientTLS)) { client in
            defer { client.quit() }
            return try client.open()
        }
        #expect(facts.tls == nil)
        #expect(facts.startTLSRefused?.code == 454)
    }

    /// Required STARTTLS refused by the server is the server's reply, classified by its code.
    @Test func requiredRefused() throws {
        let (error, _) = try H.run(H.opening(["STARTTLS"]) + [.expect("STARTTLS"), .send("454 4.7.0 TLS not available"), .waitForClose],
                                   options: H.options(.required, tls: clientTLS)) { client -> SMTPError? in
            do throws(SMTPError) { try client.open() } catch { return error }
            return nil
        }
        #expect(error?.code == 454 && error?.command == "STARTTLS" && error?.isPermanent == false)
    }

    /// A certificate failure during STARTTLS is a temporary TLS error naming the reason.
    @Test func verificationFailure() throws {
        var options = clientTLS
        options.verification = .pkix(hostnames: ["other.example"])
        let (error, _) = try H.run(H.opening(["STARTTLS"]) + [.expect("STARTTLS"), .send("220 ready"), .startTLS(serverTLS), .waitForClose],
                                   options: H.options(.required, tls: options)) { client -> SMTPError? in
            do throws(SMTPError) { try client.open() } catch { return error }
            return nil
        }
        let failure = try #require(error)
        #expect(failure.kind == .tls(.verification(VerificationFailure(reason: .wrongName, code: Int(X509_V_ERR_HOSTNAME_MISMATCH),
                                                                            detail: "hostname mismatch"))))
        #expect(!failure.isPermanent && failure.command == "STARTTLS")
    }

    /// Implicit TLS (port 465): the handshake comes before the greeting.
    @Test func implicitTLS() throws {
        let (facts, outcome) = try H.run([.startTLS(serverTLS)] + H.opening(["AUTH PLAIN"]) + H.quit,
                                         options: H.options(.implicit, tls: clientTLS)) { client in
            defer { client.quit() }
            return try client.open()
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(facts.tls?.verified == true)
        #expect(facts.greeting?.code == 220)
    }

    func authenticate(_ offered: String, _ mechanisms: [SASLMechanismName], _ exchange: [ScriptedSMTPPeer.Step]) throws -> (Result<SessionFacts, SMTPError>, ScriptedSMTPPeer.Outcome) {
        var options = H.options(.implicit, tls: clientTLS)
        options.credentials = Credentials(username: "tim", password: "tanstaaftanstaaf")
        options.authMechanisms = mechanisms
        return try H.run([.startTLS(serverTLS)] + H.opening(["AUTH \(offered)"]) + exchange + H.quit, options: options) { client in
            defer { client.quit() }
            do throws(SMTPError) { return .success(try client.open()) } catch { return .failure(error) }
        }
    }

    /// AUTH PLAIN sends the initial response with the command.
    @Test func authPlain() throws {
        let (result, outcome) = try authenticate("LOGIN PLAIN", [.plain], [
            .expect("AUTH PLAIN " + Data("\0tim\0tanstaaftanstaaf".utf8).base64EncodedString()), .send("235 2.7.0 ok"),
        ])
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(try result.get().authMechanism == "PLAIN")
    }

    /// AUTH LOGIN answers the username and password challenges in turn.
    @Test func authLogin() throws {
        let (result, outcome) = try authenticate("LOGIN", [.plain, .login], [
            .expect("AUTH LOGIN"), .send("334 VXNlcm5hbWU6"), .expect(Data("tim".utf8).base64EncodedString()),
            .send("334 UGFzc3dvcmQ6"), .expect(Data("tanstaaftanstaaf".utf8).base64EncodedString()), .send("235 ok"),
        ])
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(try result.get().authMechanism == "LOGIN")
    }

    /// CRAM-MD5 answers the RFC 2195 challenge with the RFC's digest.
    @Test func authCRAMMD5() throws {
        let challenge = Data("<1896.697170952@postoffice.reston.mci.net>".utf8).base64EncodedString()
        let (result, outcome) = try authenticate("CRAM-MD5", [.cramMD5], [
            .expect("AUTH CRAM-MD5"), .send("334 \(challenge)"),
            .expect(Data("tim b913a602c7eda7a495b4e6e7334d3890".utf8).base64EncodedString()), .send("235 ok"),
        ])
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(try result.get().authMechanism == "CRAM-MD5")
    }

    /// Bad credentials (535) fail the session, but not the recipients: a temporary failure (soft bounce).
    @Test func authRejected() throws {
        let (result, _) = try authenticate("PLAIN", [.plain], [.expectPrefix("AUTH PLAIN "), .send("535 5.7.8 authentication failed")])
        guard case .failure(let error) = result else {
            Issue.record("authentication should have failed")
            return
        }
        #expect(!error.isPermanent && error.code == 535 && error.command == "AUTH")
    }

    /// SCRAM-SHA-256-PLUS against a SCRAM server that checks the tls-exporter channel binding and the proof.
    @Test func scramPlusWithChannelBinding() throws {
        let (result, outcome) = try authenticate("SCRAM-SHA-256 SCRAM-SHA-256-PLUS", [.scramSHA256Plus, .scramSHA256],
                                                 [.custom(SCRAMServer(password: "tanstaaftanstaaf").run)])
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(try result.get().authMechanism == "SCRAM-SHA-256-PLUS")
    }
}

/// The server side of SCRAM-SHA-256-PLUS (RFC 5802 3, RFC 7677), just enough to check a client.
struct SCRAMServer: Sendable {
    let password: String

    func run(_ connection: inout PeerConnection) throws {
        let salt: [UInt8] = Array("postern-salt".utf8), iterations = 4096
        guard let command = connection.readLine(), command.hasPrefix("AUTH SCRAM-SHA-256-PLUS "),
              let first = Data(base64Encoded: String(command.dropFirst("AUTH SCRAM-SHA-256-PLUS ".count))) else {
            throw PeerError("expected AUTH SCRAM-SHA-256-PLUS with an initial response")
        }
        let clientFirst = String(decoding: first, as: UTF8.self)
        let header = "p=tls-exporter,,"
        guard clientFirst.hasPrefix(header) else { throw PeerError("client-first without the tls-exporter gs2 header: \(clientFirst)") }
        let bare = String(clientFirst.dropFirst(header.count))
        guard let clientNonce = bare.split(separator: ",").first(where: { $0.hasPrefix("r=") })?.dropFirst(2) else {
            throw PeerError("client-first without a nonce")
        }
        let serverFirst = "r=\(clientNonce)server,s=\(Data(salt).base64EncodedString()),i=\(iterations)"
        connection.send("334 " + Data(serverFirst.utf8).base64EncodedString())
        guard let line = connection.readLine(), let finalData = Data(base64Encoded: line) else { throw PeerError("no client-final") }
        let clientFinal = String(decoding: finalData, as: UTF8.self)
        guard let proofRange = clientFinal.range(of: ",p=") else { throw PeerError("client-final without a proof") }
        let withoutProof = String(clientFinal[..<proofRange.lowerBound])
        let proof = [UInt8](Data(base64Encoded: String(clientFinal[proofRange.upperBound...])) ?? Data())
        guard let binding = connection.exportKeyingMaterial(label: "EXPORTER-Channel-Binding", length: 32) else {
            throw PeerError("no exporter")
        }
        let expectedC = "c=" + Data(Array(header.utf8) + binding).base64EncodedString()
        guard withoutProof.hasPrefix(expectedC + ",") else { throw PeerError("channel binding mismatch: \(withoutProof)") }

        let salted = try SASLCrypto.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations, length: 32)
        let clientKey = try SASLCrypto.hmac(.sha256, key: salted, data: Array("Client Key".utf8))
        let storedKey = try SASLCrypto.digest(.sha256, clientKey)
        let authMessage = Array("\(bare),\(serverFirst),\(withoutProof)".utf8)
        let clientSignature = try SASLCrypto.hmac(.sha256, key: storedKey, data: authMessage)
        guard proof == zip(clientKey, clientSignature).map({ $0 ^ $1 }) else {
            connection.send("535 5.7.8 bad proof")
            throw PeerError("the client proof does not verify")
        }
        let serverKey = try SASLCrypto.hmac(.sha256, key: salted, data: Array("Server Key".utf8))
        let serverSignature = try SASLCrypto.hmac(.sha256, key: serverKey, data: authMessage)
        connection.send("334 " + Data("v=\(Data(serverSignature).base64EncodedString())".utf8).base64EncodedString())
        guard connection.readLine() == "" else { throw PeerError("expected an empty response to server-final") }
        connection.send("235 2.7.0 authenticated")
    }
}
