import Config
import Foundation
import Glibc
@testable import SpoolDrop
import Testing

/// The drop program reads three keys without a TOML library (DropSettings);
/// for any file the full parser accepts, both must give the same values.
struct DropSettingsTests {
    static let files: [String] = [
        Configuration.exampleText(),
        "hostname = \"mx.example.org\"\n[drop]\nmax_message_size = 1_000\nmax_recipients = 7\n",
        "drop.max_message_size = 2048 # dotted, at the top\nhostname = 'literal.example.org'\n",
        "[\"drop\"]\n\"max_recipients\" = 3\n",
        // CRLF line endings, a comment first.
        "# settings\r\nhostname = \"crlf.example.org\"\r\n[drop]\r\nmax_recipients = 9\r\n",
        // Escapes the reader must step over inside an array.
        "[transports.refuse]\nkind = \"fail\"\ncode = 554\n[[routes]]\nrecipient_domains = [\"\\u00e9xample.org\", \"b\\u0062.example\"]\ntransport = \"refuse\"\n[drop]\nmax_recipients = 4\n",
        // An escaped delimiter inside a multi-line basic string.
        "[transports.refuse]\nkind = \"fail\"\ncode = 554\ntext = \"\"\"a \\\"\"\" b \\\n  hostname = \"evil\" \\\n  \"\"\"\n[drop]\nmax_recipients = 6\n",
        // A multi-line string and an array that span lines hold key-like text: never read as keys.
        """
        [transports.refuse]
        kind = "fail"
        code = 554
        text = \"\"\"\\
        hostname = "evil.example" \\
        \"\"\"

        [[routes]]
        recipient_domains = [
          "a.example",  # hostname = "evil.example"
          "b.example",
        ]
        transport = "refuse"

        [drop]
        max_recipients = 12
        """,
    ]

    @Test(arguments: files)
    func sameAsTheFullParser(_ text: String) throws {
        let full = try Configuration.parse(text, source: "test", overrides: [], defaultHostname: "default.example")
        let drop = try DropSettings.parse(text, source: "test")
        #expect((drop.hostname ?? "default.example") == full.hostname)
        #expect(drop.maxMessageSize == full.drop.maxMessageSize)
        #expect(drop.maxRecipients == full.drop.maxRecipients)
    }

    /// A wrong value for one of its keys stops the drop with the line; an inline [drop] table is refused by name.
    @Test func wrongValuesAreNamed() throws {
        #expect(throws: DropSettings.Invalid(description: "f, line 2: drop.max_recipients: expected an integer of at least 1")) {
            try DropSettings.parse("[drop]\nmax_recipients = 0\n", source: "f")
        }
        #expect(throws: DropSettings.Invalid.self) { try DropSettings.parse("hostname = 42\n", source: "f") }
        #expect(throws: DropSettings.Invalid.self) { try DropSettings.parse("drop = { max_recipients = 2 }\n", source: "f") }
        // A quoted key is one key, even with a dot in it; a byte-order mark is not part of the first key.
        #expect(try DropSettings.parse("\"drop.max_recipients\" = 5\n", source: "f").maxRecipients == 1000)
        #expect(try DropSettings.parse("\u{FEFF}hostname = \"bom.example\"\n", source: "f").hostname == "bom.example")
    }

    /// Set-group-ID, a file that root does not own is not read.
    @Test func untrustedFileRefused() throws {
        let path = "/tmp/postern-drop-settings-\(getpid()).toml"
        try "hostname = \"x.example\"\n".write(toFile: path, atomically: false, encoding: .utf8)
        defer { unlink(path) }
        chown(path, 65534, 65534)
        #expect(throws: DropSettings.Invalid.self) { try DropSettings.load(path: path, trustedOnly: true) }
        #expect(try DropSettings.load(path: path, trustedOnly: false).hostname == "x.example")
        #expect(try DropSettings.load(path: "/nonexistent/postern.toml", trustedOnly: true) == DropSettings())
    }
}
