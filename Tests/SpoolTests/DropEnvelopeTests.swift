import Foundation
import PosternCore
import Testing
@testable import Spool

/// The drop writes its envelope without the full codec (it links no
/// Foundation): what it writes must be what the codec writes and reads.
struct DropEnvelopeTests {
    @Test func dropEnvelopeIsTheCodecsForm() throws {
        let id = QueueIDGenerator().next()
        var drop = DropEnvelope(id: id, sender: "alice@example.org", recipients: ["bob@example.net", "carol@example.net"],
                                arrival: 1_764_386_254, size: 1234, uid: 1000)
        drop.messageID = "abc@example.org"
        drop.eightBit = true
        drop.requireTLS = false
        drop.dsnReturn = .full
        drop.envelopeID = "QQ+2B1"
        var expected = Envelope(id: id, sender: "alice@example.org",
                                recipients: [Recipient(address: "bob@example.net"), Recipient(address: "carol@example.net")],
                                arrival: Date(timeIntervalSince1970: 1_764_386_254), size: 1234, uid: 1000)
        expected.messageID = "abc@example.org"
        expected.eightBit = true
        expected.requireTLS = false
        expected.dsnReturn = .full
        expected.envelopeID = "QQ+2B1"
        let decoded = try Envelope.decode(Data(drop.encoded()))
        #expect(decoded == expected)
        // The same bytes, but for the fields the codec writes with their defaults.
        let full = try JSONValue.decode(expected.encoded())
        guard case .object(var members) = full else { Issue.record("not an object"); return }
        for key in ["attempts", "history"] { members[key] = nil }
        members["recipients"] = .array(expected.recipients.map { .object(["address": .string($0.address)]) })
        #expect(JSONValue.object(members).encodedBytes() == drop.encoded())
        // The null sender, no Message-ID, REQUIRETLS unset.
        let bare = try Envelope.decode(Data(DropEnvelope(id: id, sender: nil, recipients: ["bob@example.net"], arrival: 0,
                                                         size: 0, uid: 0).encoded()))
        #expect(bare.sender == nil && bare.messageID == nil && bare.requireTLS == nil)
        #expect(bare.dsnReturn == nil && bare.envelopeID == nil)
    }
}
