import Foundation
import Testing
@testable import Spool

/// The hand-written JSON reader and writer behind envelopes.
struct JSONTextTests {
    static let sample: JSONValue = .object([
        "version": .string("1.0"), "attempts": .integer(3), "ratio": .number(1.5), "whole": .number(2),
        "held": .bool(false), "hold_reason": .null, "big": .integer(Int64.max), "negative": .integer(-42),
        "text": .string("quote \" backslash \\ slash / newline \n tab \t nul \u{0} del \u{7F} é 😀"),
        "recipients": .array([.object(["address": .string("bob@example.net"), "state": .string("pending")]), .array([])]),
        "empty": .object([:]),
    ])

    /// Writing then reading gives the same value, pretty and compact, integers staying integers.
    @Test func roundTrip() throws {
        for pretty in [true, false] {
            let text = JSONText.write(Self.sample, pretty: pretty)
            #expect(try JSONText.parse(Array(text.utf8)) == Self.sample)
        }
        #expect(JSONText.write(.object(["b": .integer(1), "a": .array([.bool(true)])]), pretty: true) == "{\n  \"a\": [\n    true\n  ],\n  \"b\": 1\n}")
    }

    /// What we write, Foundation's JSONSerialization reads to the same values (an independent reader).
    @Test func foundationReadsWhatWeWrite() throws {
        let data = Data(JSONText.write(Self.sample, pretty: true).utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["text"] as? String == "quote \" backslash \\ slash / newline \n tab \t nul \u{0} del \u{7F} é 😀")
        #expect((object["big"] as? NSNumber)?.int64Value == Int64.max)
        #expect((object["ratio"] as? NSNumber)?.doubleValue == 1.5)
        #expect((object["recipients"] as? [Any])?.count == 2)
    }

    /// Issue #12 item 9: every control character, C1 and DEL included, is written
    /// as an escape, so JSON printed to a terminal carries none; it reads back the same.
    @Test func escapesEveryControlCharacter() throws {
        let text = String(String.UnicodeScalarView((0..<0xA0).compactMap(Unicode.Scalar.init)))
        let written = JSONText.write(.array([.string(text)]), pretty: false)
        #expect(!written.unicodeScalars.contains { $0.properties.generalCategory == .control })
        #expect(written.contains(#"\u001B"#) && written.contains(#"\u007F"#) && written.contains(#"\u009B"#) && written.contains(#"\u0085"#))
        #expect(try JSONText.parse(Array(written.utf8)) == .array([.string(text)]))
        let object = try JSONSerialization.jsonObject(with: Data(written.utf8)) as? [String]
        #expect(object == [text])
    }

    /// Escapes in input: short forms, \u with surrogate pairs.
    @Test func readsEscapes() throws {
        let text = #"["\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\", 1e3, -0.5, 0, 12345678901234567890]"#
        #expect(try JSONText.parse(Array(text.utf8)) == .array([.string("é😀/\u{08}\u{0C}\n\r\t\"\\"), .number(1000), .number(-0.5),
                                                                 .integer(0), .number(12_345_678_901_234_567_890)]))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1,\"a\":2}", "\"tab\there\"", "\"\\ud800\"", "\"\\udc00x\"",
        "\"\\x\"", "01", "1.", "1e", "-", "tru", "nul", "[1] x", "{\"a\":1}}", "NaN", "Infinity",
        String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
    ])
    func refused(text: String) {
        #expect(throws: JSONText.Malformed.self) { try JSONText.parse(Array(text.utf8)) }
    }

    /// Invalid UTF-8 inside a string is refused, not replaced.
    @Test func invalidUTF8() {
        #expect(throws: JSONText.Malformed.self) { try JSONText.parse([0x22, 0xC3, 0x28, 0x22]) }
    }
}
