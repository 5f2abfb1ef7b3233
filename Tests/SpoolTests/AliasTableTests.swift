import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// Issue #19: the `/etc/aliases` parser, strict but forgiving one line at a time.
struct AliasTableTests {
    /// What a text parses to: each name's targets as text (`@` for mailboxes,
    /// `local:` for names), and the line numbers of the problems.
    struct Case: Sendable, CustomStringConvertible {
        let text: String
        let entries: [String: [String]]
        let problemLines: [Int?]
        var description: String { text.debugDescription }
    }

    static func shown(_ target: AliasTable.Target) -> String {
        switch target {
        case .address(let address): return address.smtpForm
        case .local(let name): return "local:" + name
        }
    }

    static let cases: [Case] = [
        // Debian's default file: comments, names to a local name.
        Case(text: "# /etc/aliases\nmailer-daemon: postmaster\npostmaster: root\n\nnobody: root\n",
             entries: ["mailer-daemon": ["local:postmaster"], "postmaster": ["local:root"], "nobody": ["local:root"]],
             problemLines: []),
        // Several targets, addresses and names, with white space and an empty item.
        Case(text: "root:  alice@Example.ORG ,bob,, carol@example.net,\n",
             entries: ["root": ["alice@example.org", "local:bob", "carol@example.net"]], problemLines: []),
        // Continuation lines (space or tab), comments between them, CRLF endings.
        Case(text: "root: a@example.org,\r\n  b@example.org,\r\n# between\r\n\tc@example.org\r\nother: d@example.org\r\n",
             entries: ["root": ["a@example.org", "b@example.org", "c@example.org"], "other": ["d@example.org"]],
             problemLines: []),
        // Names match in any case; the first definition wins, the second is a problem.
        Case(text: "Root: a@example.org\nROOT: b@example.org\n",
             entries: ["root": ["a@example.org"]], problemLines: [2]),
        // Unsupported targets are skipped (each a problem); an alias left with none is dropped.
        Case(text: "root: |/usr/bin/procmail, /var/mail/root, :include:/etc/list, a@example.org\nlog: /tmp/log\n",
             entries: ["root": ["a@example.org"]], problemLines: [1, 1, 1, 2, 2]),
        Case(text: "run: \"|touch /tmp/pwned\"\n", entries: [:], problemLines: [1, 1]),
        // Bad lines: no colon, a bad name, a continuation with nothing before it, a bad target.
        Case(text: "  orphan@example.org\nno colon here\nbad name: a@example.org\nx: a@@example.org, b@example.org\n",
             entries: ["x": ["b@example.org"]], problemLines: [1, 2, 3, 4]),
        // A control character (here ESC) leaves the line out: it never reaches an address.
        Case(text: "root: a@example.org\u{1B}\nok: b@example.org\n", entries: ["ok": ["b@example.org"]], problemLines: [1]),
        // A quoted local part may hold a comma or a colon (its quotes are part of the name, as in an address).
        Case(text: "\"a:b\": \"x,y\"@example.org\n", entries: ["\"a:b\"": ["\"x,y\"@example.org"]], problemLines: []),
        // An empty value.
        Case(text: "root:\n", entries: [:], problemLines: [1]),
    ]

    /// Each case's entries and problem lines.
    @Test(arguments: cases) func parses(_ test: Case) {
        let (table, problems) = AliasTable.parse(test.text, source: "/etc/aliases")
        #expect(table.entries.mapValues { $0.targets.map(Self.shown) } == test.entries)
        #expect(problems.map(\.line) == test.problemLines, "\(problems)")
        #expect(problems.allSatisfy { $0.description.hasPrefix("/etc/aliases, line ") })
    }

    /// A problem names the file, the line and what was left out.
    @Test func problemsSayWhatAndWhere() {
        let (_, problems) = AliasTable.parse("a: b@example.org\nroot: |/bin/sh -c x\n", source: "/etc/aliases")
        #expect(problems.map(\.description) == [
            "/etc/aliases, line 2: root: \"|/bin/sh -c x\": commands are never run; skipped",
            "/etc/aliases, line 2: root: no target that can be used; the alias is left out",
        ])
    }

    /// A CR inside a line (not before its LF) is a control character, never part of an address.
    @Test func bareCarriageReturnIsRefused() {
        let (table, problems) = AliasTable.parse("root: a@example.org\rRCPT TO:<x@evil.example>\n", source: "f")
        #expect(table.isEmpty)
        #expect(problems.count == 1)
    }

    /// The file is read once per change, bounded in size; a missing file is no aliases and no problem.
    @Test func fileIsBoundedAndReadOncePerChange() throws {
        let spool = try TemporarySpool()
        let path = spool.directory + "/aliases"
        let file = AliasesFile(path: path)
        #expect(file.load().table.isEmpty && file.load().problems.isEmpty)

        try Data("root: a@example.org\nbad\n".utf8).write(to: URL(fileURLWithPath: path))
        let first = file.load()
        #expect(first.table["ROOT"]?.targets.map(Self.shown) == ["a@example.org"])
        #expect(first.problems.map(\.line) == [2])
        // Unchanged: the same table, the problems not said again.
        let second = file.load()
        #expect(second.table == first.table && second.problems.isEmpty)

        try Data("root: b@example.org\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(file.load().table["root"]?.targets.map(Self.shown) == ["b@example.org"])

        try Data(repeating: UInt8(ascii: "#"), count: AliasesFile.maxSize + 1).write(to: URL(fileURLWithPath: path))
        let big = file.load()
        #expect(big.table.isEmpty)
        #expect(big.problems.map(\.description) == ["\(path): \(AliasesFile.maxSize + 1) octets, over the bound of \(AliasesFile.maxSize); no aliases apply"])
    }
}
