import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import SMTP
@testable import TLS

/// Runs an SMTP client against a scripted peer and returns what the peer saw.
struct SessionHarness {
    static let ehloName = "client.example"

    static func options(_ mode: TLSMode = .plaintext, tls: TLSClientOptions? = nil) -> SMTPClientOptions {
        var options = SMTPClientOptions(ehloName: ehloName, tlsMode: mode, tls: tls)
        options.timeouts.greeting = 10
        options.timeouts.command = 10
        return options
    }

    /// An EHLO reply announcing `extensions`.
    static func ehlo(_ extensions: [String]) -> String {
        let lines = ["mx.example"] + extensions
        return lines.enumerated().map { index, line in "250\(index == lines.count - 1 ? " " : "-")\(line)" }.joined(separator: "\n")
    }

    /// Greeting and EHLO with `extensions`.
    static func opening(_ extensions: [String] = []) -> [ScriptedSMTPPeer.Step] {
        [.send("220 mx.example ESMTP"), .expect("EHLO \(ehloName)"), .send(ehlo(extensions))]
    }

    static let quit: [ScriptedSMTPPeer.Step] = [.expect("QUIT"), .send("221 bye"), .waitForClose]

    /// Connects a client to a peer running `script`, runs `body`, closes, and returns the peer's outcome.
    @discardableResult
    static func run<T>(_ script: [ScriptedSMTPPeer.Step], options: SMTPClientOptions = options(),
                       _ body: (SMTPClient) throws -> T) throws -> (T, ScriptedSMTPPeer.Outcome) {
        let peer = try ScriptedSMTPPeer(script)
        let value: T
        do {
            let client = SMTPClient(stream: try SocketStream(fileDescriptor: peer.clientSocket), options: options)
            value = try body(client)
        }
        return (value, peer.finish())
    }

    static func message(_ text: String) -> BytesMessageSource {
        BytesMessageSource(Array(text.utf8))
    }

    static func transaction(_ recipients: [String], message: String = "Subject: t\r\n\r\nhello\r\n") -> Transaction {
        Transaction(sender: "alice@example.org", recipients: recipients, message: Self.message(message))
    }
}

extension DeliveryReport {
    /// Per recipient: the reply code of its final outcome.
    var codes: [String: Int?] {
        Dictionary(uniqueKeysWithValues: outcomes.map { outcome in
            switch outcome.result {
            case .success(let reply): (outcome.recipient, reply.code)
            case .failure(let error): (outcome.recipient, error.code)
            }
        })
    }

    func error(for recipient: String) -> SMTPError? {
        for outcome in outcomes where outcome.recipient == recipient {
            if case .failure(let error) = outcome.result { return error }
        }
        return nil
    }
}
