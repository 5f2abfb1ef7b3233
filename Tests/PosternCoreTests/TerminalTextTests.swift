import Foundation
import Glibc
import Testing
@testable import PosternBase
@testable import PosternCore

/// Untrusted text made safe for a terminal (issue #12 item 9).
struct TerminalTextTests {
    /// Whether a terminal would act on anything in `text` other than the kept characters.
    static func hasControl(_ text: String, except kept: Set<Unicode.Scalar> = []) -> Bool {
        text.unicodeScalars.contains { $0.properties.generalCategory == .control && !kept.contains($0) }
    }

    /// ESC sequences (colour, OSC window title ended by BEL) become visible text.
    @Test func escapeSequences() {
        #expect(TerminalText.safe("550 \u{1B}[31mred\u{1B}[0m") == #"550 \x1b[31mred\x1b[0m"#)
        #expect(TerminalText.safe("\u{1B}]0;pwned\u{07}") == #"\x1b]0;pwned\x07"#)
        #expect(TerminalText.safe("over\rwrite\u{08}\u{7F}") == #"over\x0dwrite\x08\x7f"#)
    }

    /// C1 controls, which some UTF-8 terminals honour (U+009B is CSI), are escaped too.
    @Test func c1Controls() {
        #expect(TerminalText.safe("\u{9B}31mred \u{9D}0;title\u{9C} next\u{85}line") == #"\u{9b}31mred \u{9d}0;title\u{9c} next\u{85}line"#)
        #expect(TerminalText.safe("\u{80}\u{9F}") == #"\u{80}\u{9f}"#)
    }

    /// Newlines and tabs are escaped unless the caller keeps them.
    @Test func keptCharacters() {
        #expect(TerminalText.safe("a\nb\tc") == #"a\x0ab\x09c"#)
        #expect(TerminalText.safe("a\nb\tc\u{1B}", keeping: ["\n", "\t"]) == "a\nb\tc\\x1b")
    }

    /// Printable text, non-ASCII included, is left exactly as it is.
    @Test(arguments: ["plain ASCII ~!@#$%^&*()", "grüße, 日本語, emoji 🙂", "\u{A0}no-break space just after C1", #"back\slash"#, ""])
    func printableUnchanged(_ text: String) {
        #expect(TerminalText.safe(text) == text)
        #expect(TerminalText.safe(bytes: Array(text.utf8)) == text)
    }

    /// Every scalar from U+0000 to U+00FF: the result has no control character left.
    @Test func noControlSurvives() {
        let all = String(String.UnicodeScalarView((0..<0x100).compactMap(Unicode.Scalar.init)))
        #expect(!Self.hasControl(TerminalText.safe(all)))
        #expect(!Self.hasControl(TerminalText.safe(all, keeping: ["\n"]), except: ["\n"]))
        #expect(!Self.hasControl(TerminalText.safe(bytes: (0...255).map(UInt8.init))))
    }

    /// Bytes that are not UTF-8 are shown as \xNN, each of them; valid sequences around them decode.
    @Test func invalidUTF8() {
        #expect(TerminalText.safe(bytes: [0x66, 0xFF, 0x6F]) == #"f\xffo"#)
        #expect(TerminalText.safe(bytes: [0xC0, 0x80, 0xC3, 0xA9]) == #"\xc0\x80é"#)   // an overlong NUL, then é
        #expect(TerminalText.safe(bytes: [0xC2, 0x9B, 0x1B]) == #"\u{9b}\x1b"#)         // a valid C1 is a C1, escaped as one
        #expect(TerminalText.safe(bytes: [0x61, 0xE2, 0x82]) == #"a\xe2\x82"#)          // cut short at the end
    }
}

struct MillisecondsTests {
    @Test(arguments: [(0.0, "0.000"), (0.0424, "0.042"), (1.5, "1.500"), (12.3456, "12.346"), (-1, "0.000"), (Double.nan, "0.000")])
    func seconds(value: Double, text: String) {
        #expect(Milliseconds.seconds(value) == text)
    }
}

/// /etc/mailname as Debian's MTAs read it: the first line, a plain host name, a file only root may write.
struct MailNameTests {
    func file(_ text: String, mode: mode_t = 0o644) throws -> String {
        let path = NSTemporaryDirectory() + "/postern-mailname-\(UUID().uuidString)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
        return path
    }

    @Test func readsTheFirstLine() throws {
        #expect(SystemHost.mailName(path: try file("mail.example.org\n")) == "mail.example.org")
        #expect(SystemHost.mailName(path: try file("  mx1.example.org  \nsecond.example\n")) == "mx1.example.org")
    }

    @Test func refusesWhatIsNotAPlainHostName() throws {
        for text in ["", "\n", "bad_name.example\n", "trailing.dot.\n", "-lead.example\n", "two words\n", "x\u{9B}y\n"] {
            #expect(SystemHost.mailName(path: try file(text)) == nil, "\(text)")
        }
        #expect(SystemHost.mailName(path: "/nonexistent/mailname") == nil)
    }

    /// Writable by others, it could name any domain for everyone's mail: not trusted (tests run as root).
    @Test func refusesAFileOthersMayWrite() throws {
        #expect(SystemHost.mailName(path: try file("mail.example.org\n", mode: 0o666)) == nil)
    }

    /// The one fallback order: /etc/mailname, then the machine's name, then nothing (the caller's last resort).
    @Test func defaultMailNameFallsBackInOrder() throws {
        let mailname = try file("mail.example.org\n")
        #expect(SystemHost.defaultMailName(mailNamePath: mailname, machineName: { "box.example.net" }) == "mail.example.org")
        #expect(SystemHost.defaultMailName(mailNamePath: try file("bad_name\n"), machineName: { "box.example.net" }) == "box.example.net")
        #expect(SystemHost.defaultMailName(mailNamePath: "/nonexistent/mailname", machineName: { "box.example.net" }) == "box.example.net")
        #expect(SystemHost.defaultMailName(mailNamePath: "/nonexistent/mailname", machineName: { nil }) == nil)
    }
}
