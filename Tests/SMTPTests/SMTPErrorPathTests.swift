import Foundation
import PosternTesting
import Testing
@testable import SMTP
@testable import TLS

/// Every way a server can fail the client, and how each failure is classified.
struct SMTPErrorPathTests {
    typealias H = SessionHarness

    func openError(_ script: [ScriptedSMTPPeer.Step], options: SMTPClientOptions = H.options()) throws -> SMTPError? {
        let (error, _) = try H.run(script, options: options) { client -> SMTPError? in
            do throws(SMTPError) {
                try client.open()
                return nil
            } catch {
                return error
            }
        }
        return error
    }

    /// A 554 greeting is permanent; a 421 greeting is temporary; neither is a protocol error.
    @Test func badGreetings() throws {
        let refused = try #require(try openError([.send("554 5.7.1 no service for you"), .waitForClose]))
        #expect(refused.isPermanent && refused.code == 554 && refused.command == "greeting")
        let busy = try #require(try openError([.send("421 4.3.2 busy"), .waitForClose]))
        #expect(!busy.isPermanent && busy.code == 421)
    }

    /// EHLO refused with 502 falls back to HELO; the session then has no extensions.
    @Test func heloFallback() throws {
        let (facts, outcome) = try H.run([
            .send("220 old.example"), .expect("EHLO client.example"), .send("502 command not implemented"),
            .expect("HELO client.example"), .send("250 old.example"),
        ] + H.quit) { client in
            defer { client.quit() }
            return try client.open()
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(facts.usedHELO)
        #expect(facts.extensions.keywords.isEmpty)
    }

    /// The connection closing after each command is a temporary network failure that names the command.
    @Test(arguments: [
        ([ScriptedSMTPPeer.Step.close], "greeting"),
        ([.send("220 mx"), .expect("EHLO client.example"), .close], "EHLO"),
        ([.send("220 mx"), .expect("EHLO client.example"), .send("250 mx"), .expect("MAIL FROM:<alice@example.org>"), .close], "MAIL FROM"),
        ([.send("220 mx"), .expect("EHLO client.example"), .send("250 mx"), .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
          .expect("RCPT TO:<a@x.example>"), .close], "RCPT TO"),
        ([.send("220 mx"), .expect("EHLO client.example"), .send("250 mx"), .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
          .expect("RCPT TO:<a@x.example>"), .send("250 ok"), .expect("DATA"), .close], "DATA"),
        ([.send("220 mx"), .expect("EHLO client.example"), .send("250 mx"), .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
          .expect("RCPT TO:<a@x.example>"), .send("250 ok"), .expect("DATA"), .send("354 go"), .receiveData, .close], "end of data"),
    ])
    func closedAfter(_ script: [ScriptedSMTPPeer.Step], _ command: String) throws {
        let (error, _) = try H.run(script) { client -> SMTPError? in
            do throws(SMTPError) {
                try client.open()
            } catch {
                return error
            }
            return client.deliver(H.transaction(["a@x.example"])).error(for: "a@x.example")
        }
        let failure = try #require(error)
        #expect(failure.command == command)
        #expect(!failure.isPermanent)
        #expect(failure.kind == .network(.closed))
    }

    /// Garbage, over-long lines, endless replies and code changes are protocol errors, and temporary.
    @Test(arguments: [
        ScriptedSMTPPeer.Step.sendRaw(Array("HTTP/1.1 400 Bad Request\r\n".utf8)),
        .sendRaw(Array("220".utf8) + [UInt8](repeating: 0x41, count: 5000) + [13, 10]),
        .sendRaw(Array((0..<101).map { _ in "220-more\r\n" }.joined().utf8) + Array("220 end\r\n".utf8)),
        .sendRaw(Array("220-first\r\n250 second\r\n".utf8)),
        .sendRaw(Array("22\r\n".utf8)),
    ])
    func protocolViolations(_ step: ScriptedSMTPPeer.Step) throws {
        let error = try #require(try openError([step, .waitForClose]))
        guard case .protocolViolation = error.kind else {
            Issue.record("expected a protocol violation, got \(error)")
            return
        }
        #expect(!error.isPermanent && error.command == "greeting")
    }

    /// A server that says nothing costs one deadline, then a temporary timeout.
    @Test func silentServer() throws {
        var options = H.options()
        options.timeouts.greeting = 0.2
        let error = try #require(try openError([.waitForClose], options: options))
        #expect(error.kind == .timeout && !error.isPermanent && error.command == "greeting")
    }

    /// STARTTLS required but not offered: refused before anything else is said.
    @Test func startTLSUnavailable() throws {
        let context = try TLSContext()
        let options = H.options(.required, tls: TLSClientOptions(context: context))
        let error = try #require(try openError(H.opening(["PIPELINING"]) + [.waitForClose], options: options))
        #expect(error.kind == .refused(.startTLSUnavailable) && !error.isPermanent)
    }

    /// Credentials are not sent over a connection without TLS.
    @Test func noAuthWithoutTLS() throws {
        var options = H.options()
        options.credentials = Credentials(username: "user", password: "secret")
        let error = try #require(try openError(H.opening(["AUTH PLAIN"]) + [.waitForClose], options: options))
        #expect(error.kind == .refused(.authenticationWithoutTLS))
    }
}
