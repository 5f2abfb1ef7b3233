#if canImport(Glibc)
import Glibc
#endif

/// Stops the run when an invariant does not hold: the message on standard
/// error, then `abort()`, which libFuzzer reports as a crash and for which it
/// saves the input (`crash-<sha1>`). Not `precondition`, whose message an
/// optimised build may drop.
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    guard !condition() else { return }
    fail(message(), file: file, line: line)
}

public func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    let text = Array("fuzz invariant broken (\(file):\(line)): \(message)\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

/// Whether `text` holds a control character (C0, DEL or C1): none may reach an
/// SMTP command, a header field or a terminal.
public func hasControl(_ text: some StringProtocol) -> Bool {
    text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
}

/// Whether `bytes` holds a CR or LF.
public func hasLineBreak(_ bytes: some Sequence<UInt8>) -> Bool {
    bytes.contains { $0 == 0x0D || $0 == 0x0A }
}

/// Text for a failure message: control characters escaped, at most 200 scalars.
public func shown(_ text: some StringProtocol) -> String {
    String(text.unicodeScalars.prefix(200).map { scalar in
        scalar.value < 0x20 || scalar.value == 0x7F ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
    }.joined())
}
