/// Untrusted text made safe to print on a terminal.
///
/// A terminal obeys the control characters it is sent. ESC starts sequences
/// that recolour or hide text, move the cursor to overwrite what was printed,
/// set the window title (OSC `ESC ] 0;…BEL`), and on some terminals answer back
/// into the input or write to the clipboard. The C1 controls U+0080 to U+009F
/// are the same commands in one character (U+009B is CSI, U+009D is OSC), and
/// some UTF-8 terminals honour them. CR and backspace overwrite a line, and
/// a newline can fake one.
///
/// Postern prints text it did not write: a remote server's replies
/// (`smtp-probe`, and the replies kept in envelopes), and envelopes, which any
/// local user can hand-make in the drop directory (issue #12 item 9). An
/// operator who runs `postern show` must see what such text says, not have
/// their terminal do it. So every C0 control (except those the caller keeps,
/// such as a newline between its own lines), DEL and every C1 control become a
/// visible escape: `\x1b` for C0 and DEL, `\u{9b}` for C1, and `\xff` for each
/// byte of input that is not UTF-8. The result is meant for eyes, not to be
/// parsed back: a backslash in the text is left alone.
public enum TerminalText {
    /// `text` with its control characters escaped; `kept` ones stay as they are.
    public static func safe(_ text: String, keeping kept: Set<Unicode.Scalar> = []) -> String {
        // Most text has nothing to escape; it is returned as it is.
        guard text.unicodeScalars.contains(where: { isControl($0) && !kept.contains($0) }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars { append(scalar, to: &out, kept) }
        return out
    }

    /// `bytes`, read as UTF-8, with control characters and invalid bytes escaped.
    public static func safe(bytes: some Collection<UInt8>, keeping kept: Set<Unicode.Scalar> = []) -> String {
        let bytes = Array(bytes)
        var out = ""
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                append(Unicode.UTF8.decode(encoded), to: &out, kept)
                offset += encoded.count
            case .error(let length):
                for byte in bytes[offset..<offset + length] { out += "\\x" + hex(UInt32(byte), digits: 2) }
                offset += length
            case .emptyInput:
                return out
            }
        }
    }

    /// C0 controls, DEL and the C1 controls (U+0080 to U+009F): Unicode's
    /// general category Cc, exactly.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        // The ranges themselves: asking for the general category costs a table
        // lookup per character, and envelopes and log lines quote many.
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    private static func append(_ scalar: Unicode.Scalar, to out: inout String, _ kept: Set<Unicode.Scalar>) {
        if !isControl(scalar) || kept.contains(scalar) {
            out.unicodeScalars.append(scalar)
        } else if scalar.value < 0x80 {
            out += "\\x" + hex(scalar.value, digits: 2)
        } else {
            out += "\\u{" + hex(scalar.value, digits: 2) + "}"
        }
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
