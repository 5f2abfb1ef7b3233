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

    /// The envelope the listener hands to the daemon (`Envelope(queued:)`)
    /// is the one the daemon would read back from the drop's bytes, whatever
    /// the drop holds: every optional field set or unset, originals equal to
    /// their address or not, an arrival with a fraction of a second.
    @Test(arguments: 0..<8) func queuedEnvelopeIsWhatTheCodecReads(variant: Int) throws {
        let id = QueueIDGenerator().next()
        let all = variant & 1 == 1
        var drop = DropEnvelope(id: id, sender: variant & 2 == 0 ? "alice@example.org" : nil,
                                recipients: ["bob@example.net", "carol@example.net", "d\u{e9}@b\u{fc}cher.example"],
                                arrival: 1_764_386_254.75 + Double(variant), size: 1234 * variant, uid: 1000 + variant)
        drop.eightBit = variant & 4 == 4
        drop.smtputf8 = all
        if all {
            drop.messageID = "abc.\(variant)@example.org"
            drop.requireTLS = variant & 2 == 2
            drop.originals = ["bob@example.net": "rfc822;Bob@example.net", "carol@example.net": "carol@example.net"]
            drop.notifyNever = true
            drop.dsnReturn = variant & 4 == 4 ? .hdrs : .full
            drop.envelopeID = "QQ+2B\(variant)"
        }
        let read = try Envelope.decode(Data(drop.encoded()))
        #expect(Envelope(queued: drop) == read)
        #expect(Envelope(queued: drop).encoded() == read.encoded())
    }
}
