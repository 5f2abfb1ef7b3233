import Testing
@testable import Daemon

/// Log values reach terminals: anything that could split a line or steer a terminal is quoted and escaped.
struct LogfmtHandlerTests {
    @Test(arguments: [("plain", "plain"), ("two words", "\"two words\""), ("", "\"\""), ("a=b", "\"a=b\""),
                      ("say \"hi\"", "\"say \\\"hi\\\"\""), ("line\nbreak", "\"line\\nbreak\""), ("del\u{7F}", "\"del\\u007F\""),
                      ("csi\u{9B}2J", "\"csi\\u009B2J\""), ("café", "café"), ("tab\there", "\"tab\\there\"")])
    func quoting(value: String, expected: String) {
        #expect(LogfmtHandler.quoted(value) == expected)
    }
}
