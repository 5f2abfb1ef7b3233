import Foundation
import PosternCore
import Testing
@testable import Spool

struct EnvelopeTests {
    static let id = QueueID("01KB4Q3F2Z7J4X9V0M2C8D6E5F")!

    static func sample() -> Envelope {
        var envelope = Envelope(id: id, sender: "alice@example.org",
                                recipients: [Recipient(address: "bob@example.net"), Recipient(address: "carol@xn--bcher-kva.example")],
                                arrival: Date(timeIntervalSince1970: 1_764_386_254), size: 4096, uid: 1000)
        envelope.messageID = "abc@example.org"
        envelope.eightBit = true
        envelope.requireTLS = false
        envelope.dsnReturn = .hdrs
        envelope.envelopeID = "QQ314159+2B1"
        envelope.attempts = 2
        envelope.nextAttempt = Date(timeIntervalSince1970: 1_764_387_154)
        let result = DeliveryResult(time: Date(timeIntervalSince1970: 1_764_386_300), code: 451, enhanced: "4.7.1",
                                    text: "greylisted\nplease retry", host: "mx.example.net", permanent: false)
        envelope.recipients[0].attempts = 2
        envelope.recipients[0].lastResult = result
        envelope.recipients[1].state = .delivered
        envelope.record(AttemptRecord(time: result.time, recipients: ["bob@example.net"], host: "mx.example.net",
                                      ip: "192.0.2.1", tls: "TLSv1.3", result: result))
        return envelope
    }

    func decode(_ json: String) throws(EnvelopeError) -> Envelope {
        try Envelope.decode(Data(json.utf8))
    }

    /// Encoding then decoding gives the same envelope.
    @Test func roundTrip() throws {
        let envelope = Self.sample()
        #expect(try Envelope.decode(envelope.encoded()) == envelope)
    }

    /// The file is pretty-printed with sorted keys, snake_case names and RFC 3339 UTC times.
    @Test func encodedForm() throws {
        let text = String(decoding: Self.sample().encoded(), as: UTF8.self)
        #expect(text.contains("\"ret\": \"hdrs\"") && text.contains("\"envid\": \"QQ314159+2B1\""))
        #expect(text.contains("\"arrival\": \"2025-11-29T03:17:34Z\""))
        #expect(text.contains("\"require_tls\": false"))
        #expect(text.contains("\"next_attempt\": \"2025-11-29T03:32:34Z\""))
        #expect(text.hasSuffix("}\n"))
        let keys = text.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map { $0.split(separator: "\"")[1] }
        #expect(keys == keys.sorted())
        #expect(keys.first == "arrival" && keys.contains("eight_bit") && keys.contains("message_id"))
    }

    /// REQUIRETLS unset is written as null and read back as unset.
    @Test func requireTLSTriState() throws {
        var envelope = Self.sample()
        envelope.requireTLS = nil
        let text = String(decoding: envelope.encoded(), as: UTF8.self)
        #expect(text.contains("\"require_tls\": null"))
        #expect(try Envelope.decode(envelope.encoded()).requireTLS == nil)
        envelope.requireTLS = true
        #expect(try Envelope.decode(envelope.encoded()).requireTLS == true)
    }

    /// A minimal drop envelope, as a shell script writes it, decodes with defaults.
    @Test func minimalEnvelope() throws {
        let envelope = try decode("""
            {"version":"1.0","id":"\(Self.id)","sender":"","recipients":[{"address":"root@localhost"}],
             "arrival":"2026-11-29T03:17:34Z","size":12,"uid":0}
            """)
        #expect(envelope.sender == nil)
        #expect(envelope.recipients[0].state == .pending)
        #expect(envelope.attempts == 0 && envelope.nextAttempt == nil && envelope.requireTLS == nil)
    }

    /// Keys from a newer minor version survive a rewrite, at the top level and in recipients.
    @Test func preservesUnknownKeys() throws {
        var envelope = try decode("""
            {"version":"1.4","id":"\(Self.id)","sender":"a@b.example","future":{"x":[1,true,null]},
             "recipients":[{"address":"c@d.example","notify":"never"}],"arrival":"2026-11-29T03:17:34.250Z","size":1,"uid":5}
            """)
        envelope.attempts = 1
        let again = try Envelope.decode(envelope.encoded())
        #expect(again.extra["future"] == .object(["x": .array([.integer(1), .bool(true), .null])]))
        #expect(again.recipients[0].extra["notify"] == .string("never"))
        #expect(again.version.description == "1.4")
        #expect(again.attempts == 1)
    }

    /// An unknown major version is refused, not guessed at.
    @Test func refusesUnknownMajor() {
        #expect(throws: EnvelopeError.self) {
            try decode(#"{"version":"2.0","id":"\#(Self.id)","sender":"","recipients":[],"arrival":"x","size":1,"uid":0}"#)
        }
        do {
            _ = try decode(#"{"version":"2.0"}"#)
        } catch {
            #expect(error.kind == .unsupportedVersion)
            #expect(error.description.contains("major version 2"))
        }
    }

    /// Each missing required field is named in the error.
    @Test(arguments: ["version", "id", "sender", "recipients", "arrival", "size", "uid"])
    func missingField(_ field: String) throws {
        var object: [String: Any] = ["version": "1.0", "id": Self.id.rawValue, "sender": "",
                                     "recipients": [["address": "a@b.example"]],
                                     "arrival": "2026-11-29T03:17:34Z", "size": 1, "uid": 0]
        object.removeValue(forKey: field)
        let data = try JSONSerialization.data(withJSONObject: object)
        #expect {
            try Envelope.decode(data)
        } throws: { error in
            guard let error = error as? EnvelopeError else { return false }
            return error.kind == .missingField && error.field == field
        }
    }

    /// Wrong types, bad values and injected addresses are refused with the field's path.
    @Test(arguments: [
        (#""size":"12""#, "size"),
        (#""size":-1"#, "size"),
        (#""uid":1.5"#, "uid"),
        (#""arrival":"yesterday""#, "arrival"),
        (#""id":"../../etc""#, "id"),
        (#""sender":"a@b.example\r\nRCPT TO:<x@y>""#, "sender"),
        (#""recipients":[{"address":"ok@x.example"},{"address":"bad\u0000@x"}]"#, "recipients[1].address"),
        (#""recipients":[{"address":"a@b.example","state":"lost"}]"#, "recipients[0].state"),
        (#""recipients":[]"#, "recipients"),
        (#""eight_bit":"yes""#, "eight_bit"),
        // Issue #12 item 7: what reaches a DSN's In-Reply-To, References and Original-Recipient.
        (#""message_id":"a@b.example\r\nBcc: victim@x.example""#, "message_id"),
        (#""message_id":"a@b.example\nSubject: pwned""#, "message_id"),
        (#""message_id":"a\u0000@b.example""#, "message_id"),
        (#""message_id":"a\u001b[31m@b.example""#, "message_id"),
        (#""message_id":"a\u009b@b.example""#, "message_id"),
        (#""message_id":"a b@b.example""#, "message_id"),
        (#""message_id":"<a@b.example>""#, "message_id"),
        (#""message_id":"no-at-sign""#, "message_id"),
        (#""message_id":"@b.example""#, "message_id"),
        (#""message_id":"a@""#, "message_id"),
        (#""message_id":"\#(String(repeating: "x", count: 990))@b.example""#, "message_id"),
        (#""recipients":[{"address":"a@b.example","original":"a@b.example\rX-Fake: 1"}]"#, "recipients[0].original"),
        (#""recipients":[{"address":"a@b.example"},{"address":"c@d.example","original":"c@d\nAction: delivered"}]"#, "recipients[1].original"),
        (#""recipients":[{"address":"a@b.example","original":"a\u007f@b.example"}]"#, "recipients[0].original"),
        (#""recipients":[{"address":"a@b.example","original":"a\u0085@b.example"}]"#, "recipients[0].original"),
        (#""recipients":[{"address":"a@b.example","original":"\#(String(repeating: "x", count: 1001))"}]"#, "recipients[0].original"),
        // RFC 3461 RET and ENVID: what reaches MAIL FROM and a DSN's Original-Envelope-Id.
        (#""ret":"body""#, "ret"),
        (#""ret":true"#, "ret"),
        (#""envid":"abc\r\nRCPT TO:<x@y>""#, "envid"),
        (#""envid":"a+0Db""#, "envid"),
        (#""envid":"a+0""#, "envid"),
        (#""envid":"a=b""#, "envid"),
        (#""envid":"""#, "envid"),
        (#""envid":"\#(String(repeating: "x", count: 101))""#, "envid"),
    ])
    func badValues(_ replacement: String, _ field: String) throws {
        var fields = [#""version":"1.0""#, #""id":"\#(Self.id)""#, #""sender":"""#,
                      #""recipients":[{"address":"a@b.example"}]"#, #""arrival":"2026-11-29T03:17:34Z""#,
                      #""size":1"#, #""uid":0"#]
        let key = String(replacement.split(separator: ":")[0])
        fields.removeAll { $0.hasPrefix(key + ":") }
        fields.append(replacement)
        #expect {
            try decode("{" + fields.joined(separator: ",") + "}")
        } throws: { error in
            (error as? EnvelopeError)?.field == field
        }
    }

    /// Message IDs as mailers write them, and ORCPT addresses up to the limit, are accepted.
    @Test(arguments: ["abc@example.org", "01KB4Q3F2Z7J4X9V0M2C8D6E5F@host.example", "CAF=x+y/z_1.2@mail.gmail.com",
                      "\"odd\"@[192.0.2.1]", "grüße@bücher.example", String(repeating: "x", count: 986) + "@b.example"])
    func acceptedMessageIDs(_ messageID: String) throws {
        var envelope = Self.sample()
        envelope.messageID = messageID
        envelope.recipients[0].original = "Bob Example@Example.NET" + String(repeating: "é", count: 488)
        #expect(envelope.recipients[0].original!.utf8.count == 999)
        #expect(try Envelope.decode(envelope.encoded()) == envelope)
    }

    /// The refusal names the offending character, not the untrusted text around it.
    @Test func messageIDErrorDetail() throws {
        var envelope = Self.sample()
        envelope.messageID = "a@b.example\r\nBcc: victim@x.example"
        #expect {
            try Envelope.decode(envelope.encoded())
        } throws: { error in
            guard let error = error as? EnvelopeError else { return false }
            return error.kind == .badValue && error.description.contains("U+000D") && !error.description.contains("victim")
        }
    }

    /// Garbage is reported as not JSON.
    @Test func notJSON() {
        #expect(throws: EnvelopeError(kind: .notJSON, field: "", detail: "not valid JSON")) {
            try decode("{\"version\": ")
        }
    }

    /// The history keeps only the latest attempts.
    @Test func boundedHistory() {
        var envelope = Self.sample()
        for index in 0..<100 {
            envelope.record(AttemptRecord(time: Date(timeIntervalSince1970: Double(index)), recipients: [],
                                          result: DeliveryResult(time: Date(), text: "\(index)", permanent: false)))
        }
        #expect(envelope.history.count == Envelope.historyLimit)
        #expect(envelope.history.last?.result.text == "99")
    }
}

extension EnvelopeTests {
    /// Dialed IPs round-trip and stay bounded per host.
    @Test func dialedIPs() throws {
        var envelope = Self.sample()
        envelope.recordDialed(["mx.example.net": (1...10).map { "192.0.2.\($0)" }])
        #expect(envelope.dialedIPs["mx.example.net"]?.count == Envelope.dialedLimit)
        #expect(envelope.dialedIPs["mx.example.net"]?.last == "192.0.2.10")
        #expect(try Envelope.decode(envelope.encoded()) == envelope)
    }
}
