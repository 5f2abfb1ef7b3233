import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// Issue #12 item 9: what envelopes and servers say reaches the operator's
/// terminal escaped. An envelope can be hand-made by any local user, and a
/// server chooses its replies; ESC and the C1 controls (U+009B is CSI) in them
/// would otherwise recolour, retitle or overwrite the operator's terminal.
struct TerminalSafetyTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func postern(_ arguments: [String]) throws -> PosternProcess.Result {
        try PosternProcess.run(arguments + ["--spool", spool.layout.root])
    }

    /// ESC sequences with an OSC title ended by BEL, a C1 CSI, DEL, and a CR to overwrite the line.
    static let hostile = "\u{1B}[31mred\u{1B}]0;pwned\u{07} \u{9B}2J\u{7F} over\rwritten"
    static let escaped = #"\x1b[31mred\x1b]0;pwned\x07 \u{9b}2J\x7f over\x0dwritten"#

    /// Fails the test for any control character but the newline: byte 0x1B, BEL, CR, DEL,
    /// or a raw U+009B (bytes C2 9B) would reach the terminal.
    static func expectTerminalSafe(_ output: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let control = output.unicodeScalars.first { $0.properties.generalCategory == .control && $0 != "\n" }
        #expect(control == nil, "\(what) printed U+\(String(control?.value ?? 0, radix: 16, uppercase: true))",
                sourceLocation: sourceLocation)
        #expect(!output.utf8.contains(0x1B), "\(what) printed ESC", sourceLocation: sourceLocation)
    }

    /// A queued message whose replies, hosts and transport carry terminal controls, and a held one whose reason does.
    func plantHostile() throws -> (queued: Envelope, held: Envelope) {
        let result = DeliveryResult(time: Date(timeIntervalSinceNow: -60), code: 550, enhanced: "5.1.1",
                                    text: "550 5.1.1 " + Self.hostile + "\n550 second line \u{9B}0m",
                                    host: "mx\u{1B}[8m.example", permanent: false)
        let queued = try spool.plant(.queue) {
            $0.attempts = 1
            $0.transport = "relay\u{9D}0;x\u{9C}"
            $0.recipients[0].attempts = 1
            $0.recipients[0].lastResult = result
            $0.lastResult = result
            $0.record(AttemptRecord(time: result.time, recipients: ["bob@example.net"], host: result.host,
                                    ip: "192.0.2.7\u{1B}[A", tls: "TLSv1.3\u{9B}K", result: result))
        }
        let held = try spool.plant(.hold) {
            $0.holdReason = "spam " + Self.hostile
            $0.recipients[0].lastResult = result
        }
        return (queued, held)
    }

    /// show, list and explain print the hostile text escaped, and still show it.
    @Test func humanOutputs() throws {
        let (queued, held) = try plantHostile()
        let runs: [(String, [String])] = [
            ("show", ["show", queued.id.rawValue]), ("show held", ["show", held.id.rawValue]),
            ("list", ["list"]), ("explain", ["explain", queued.id.rawValue]), ("explain held", ["explain", held.id.rawValue]),
        ]
        for (what, arguments) in runs {
            let result = try postern(arguments)
            #expect(result.status == 0, "\(what): \(result.stderr)")
            Self.expectTerminalSafe(result.stdout, what)
            Self.expectTerminalSafe(result.stderr, what + " (stderr)")
        }
        let shown = try postern(["show", queued.id.rawValue]).stdout
        #expect(shown.contains("    last: 550 5.1.1 550 5.1.1 " + Self.escaped + #" (mx\x1b[8m.example)"#))
        #expect(shown.contains(#"transport:     relay\u{9d}0;x\u{9c}"#))
        #expect(shown.contains(#"mx\x1b[8m.example 192.0.2.7\x1b[A TLSv1.3\u{9b}K"#))
        #expect(try postern(["list"]).stdout.contains(Self.escaped))
        #expect(try postern(["explain", held.id.rawValue]).stdout.contains("It is held: spam " + Self.escaped + "."))
        #expect(try postern(["explain", queued.id.rawValue]).stdout.contains(#"second line \u{9b}0m"#))
    }

    /// list --json and explain --json escape the controls as \u00XX: valid JSON, the same strings, no raw controls.
    @Test func jsonOutputs() throws {
        let (queued, held) = try plantHostile()
        for arguments in [["list", "--json"], ["explain", "--json", queued.id.rawValue], ["explain", "--json", held.id.rawValue]] {
            let result = try postern(arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            Self.expectTerminalSafe(result.stdout, arguments.joined(separator: " "))
            for line in result.stdout.split(separator: "\n") {
                #expect(try JSONSerialization.jsonObject(with: Data(line.utf8)) is [String: Any])
            }
            #expect(result.stdout.contains(#"\u001B[31m"#) && result.stdout.contains(#"\u009B2J"#))
        }
        let listed = try postern(["list", "--json"]).stdout.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let result = try #require(listed.first { $0?["id"] as? String == queued.id.rawValue }??["last_result"] as? [String: Any])
        #expect((result["text"] as? String)?.contains(Self.hostile) == true)
    }

    /// show --json prints envelope.json as stored when it is Postern's own (which escapes
    /// every control), and re-written by Postern's writer when a hand-made file holds raw
    /// DEL or C1 characters, which JSON allows in strings.
    @Test func showJSON() throws {
        let (queued, _) = try plantHostile()
        let path = spool.layout.path(.queue, queued.id) + "/envelope.json"
        let stored = try spool.read("queue/\(queued.id)/envelope.json")
        #expect(Data(try postern(["show", "--json", queued.id.rawValue]).stdout.utf8) == stored)

        let raw = String(decoding: stored, as: UTF8.self).replacingOccurrences(of: #"\u009B"#, with: "\u{9B}")
            .replacingOccurrences(of: #"\u007F"#, with: "\u{7F}")
        #expect(raw.unicodeScalars.contains("\u{9B}") && raw.unicodeScalars.contains("\u{7F}"))
        try Data(raw.utf8).write(to: URL(fileURLWithPath: path))
        let shown = try postern(["show", "--json", queued.id.rawValue])
        #expect(shown.status == 0, "\(shown.stderr)")
        Self.expectTerminalSafe(shown.stdout, "show --json")
        #expect(try Envelope.decode(Data(shown.stdout.utf8)) == Envelope.decode(Data(raw.utf8)))
    }

    /// Warnings quote scanner reasons escaped: an envelope refused for its version names it safely.
    @Test func quarantineReasons() throws {
        let bad = try spool.plant(.queue)
        let path = spool.layout.path(.queue, bad.id) + "/envelope.json"
        let text = String(decoding: try spool.read("queue/\(bad.id)/envelope.json"), as: UTF8.self)
            .replacingOccurrences(of: #""version": "1.0""#, with: #""version": "\u001B]0;pwned\u0007\u009B2J""#)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let list = try postern(["list"])
        #expect(list.stderr.contains("cannot be trusted"))
        Self.expectTerminalSafe(list.stderr, "list (stderr)")
        let check = try postern(["check"])
        #expect(check.status == 65)
        Self.expectTerminalSafe(check.stdout, "check")
        let explained = try postern(["explain", bad.id.rawValue])
        #expect(explained.stdout.contains("is quarantined: envelope field version:"))
        Self.expectTerminalSafe(explained.stdout, "explain (quarantined)")
    }

    /// smtp-probe prints what the server says (greeting, EHLO reply, extension
    /// keywords, the reply to QUIT) escaped; the server here is a scripted peer on
    /// a loopback port, the probe the real binary.
    @Test func smtpProbe() throws {
        let hostile = "\u{1B}[31mred\u{1B}]0;pwned\u{07} \u{9B}2J\u{7F}"
        let peer = try ScriptedSMTPPeer(listening: [
            .send("220 mx.example ESMTP " + hostile),
            .expectPrefix("EHLO "),
            .send("250-mx.example greets you \u{1B}[2J\n250-X-\u{9B}31m\n250 PIPELINING"),
            .expect("QUIT"),
            .send("221 bye \u{9B}0m"),
        ])
        let result = try PosternProcess.run(["smtp-probe", "127.0.0.1:\(peer.port)", "--tls-mode", "none", "--timeout", "10"])
        let outcome = peer.finish()
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(result.status == 0, "\(result.stderr)")
        Self.expectTerminalSafe(result.stdout, "smtp-probe")
        Self.expectTerminalSafe(result.stderr, "smtp-probe (stderr)")
        #expect(result.stdout.contains(#"S: 220 mx.example ESMTP \x1b[31mred\x1b]0;pwned\x07 \u{9b}2J\x7f"#))
        #expect(result.stdout.contains(#"S: 250-mx.example greets you \x1b[2J"#))
        #expect(result.stdout.contains(#"S: 221 bye \u{9b}0m"#))
    }
}
