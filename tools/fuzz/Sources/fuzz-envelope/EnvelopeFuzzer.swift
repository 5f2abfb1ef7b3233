import Foundation
import FuzzSupport
import PosternBase
import Spool
import SpoolDrop

/// The envelope decoder: JSON text (`JSONValue`, the hand-written RFC 8259
/// parser) and the envelope's validation (`Envelope.decode`), on bytes as they
/// would lie in `envelope.json`, another user's file.
///
/// Invariants: JSON that parses is written back (pretty and compact) to text
/// that parses to the same value; an envelope that decodes re-encodes to an
/// envelope that decodes equal, whose encoding is then stable; no address,
/// message ID or original recipient of an accepted envelope carries a control
/// character (they reach SMTP commands and DSN header fields); and the drop's
/// own writer (`DropEnvelope`) produces what the decoder reads back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvelope(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    let bytes = FuzzInput(data, count).bytes
    checkJSON(bytes)
    checkEnvelope(bytes)
    return 0
}

func checkJSON(_ bytes: [UInt8]) {
    guard let value = try? JSONValue.decode(bytes) else { return }
    for (form, text) in [("pretty", value.encodedBytes()), ("compact", Array(value.encodedLine().utf8))] {
        let again: JSONValue
        do {
            again = try JSONValue.decode(text)
        } catch {
            fail("the \(form) JSON written from a parsed value does not parse: \(error): \(shown(String(decoding: text, as: UTF8.self)))")
        }
        require(again == value, "the \(form) JSON does not read back as the value written")
    }
}

func checkEnvelope(_ bytes: [UInt8]) {
    guard let envelope = try? Envelope.decode(Data(bytes)) else { return }
    // Timestamps are written in whole seconds (spool-layout.md 5) and read with
    // or without a fraction: the first rewrite may drop one, and nothing else.
    let encoded = envelope.encoded()
    let again: Envelope
    do {
        again = try Envelope.decode(encoded)
    } catch {
        fail("a decoded envelope's encoding does not decode: \(error)")
    }
    require(again.encoded() == encoded, "an envelope's encoding is not stable: \(shown(String(decoding: encoded, as: UTF8.self)))")
    require((try? Envelope.decode(again.encoded())) == again, "an envelope does not survive encode and decode: \(again)")
    var truncated = envelope
    truncated.arrival = wholeSeconds(envelope.arrival)
    truncated.nextAttempt = envelope.nextAttempt.map(wholeSeconds)
    require(truncated.id == again.id && truncated.arrival == again.arrival && truncated.nextAttempt == again.nextAttempt
                && truncated.recipients.map(\.address) == again.recipients.map(\.address) && truncated.extra == again.extra,
            "an envelope's fields change in encode and decode: \(envelope) became \(again)")

    let addresses = [envelope.sender ?? ""] + envelope.recipients.map(\.address) + envelope.dsnPending
    for address in addresses {
        require(!hasControl(address), "an accepted address carries a control character: \(shown(address))")
    }
    for original in envelope.recipients.compactMap(\.original) {
        require(!hasControl(original), "an accepted original recipient carries a control character: \(shown(original))")
    }
    if let messageID = envelope.messageID {
        require(!hasControl(messageID), "an accepted message ID carries a control character: \(shown(messageID))")
    }
    checkDropEnvelope(envelope)
}

/// The drop path writes envelopes without the codec (no Foundation there);
/// whatever it writes, the codec must read back field for field.
func checkDropEnvelope(_ envelope: Envelope) {
    var drop = DropEnvelope(id: envelope.id, sender: envelope.sender, recipients: envelope.recipients.map(\.address),
                            arrival: envelope.arrival.timeIntervalSince1970, size: envelope.size, uid: envelope.uid)
    drop.messageID = envelope.messageID
    drop.eightBit = envelope.eightBit
    drop.smtputf8 = envelope.smtputf8
    drop.requireTLS = envelope.requireTLS
    drop.notifyNever = envelope.notifyNever
    for recipient in envelope.recipients {
        if let original = recipient.original { drop.originals[recipient.address] = original }
    }
    let read: Envelope
    do {
        read = try Envelope.decode(Data(drop.encoded()))
    } catch {
        fail("the drop's envelope does not decode: \(error)")
    }
    require(read.id == envelope.id && read.sender == envelope.sender && read.size == envelope.size
                && read.uid == envelope.uid && read.messageID == envelope.messageID
                && read.eightBit == envelope.eightBit && read.smtputf8 == envelope.smtputf8
                && read.requireTLS == envelope.requireTLS && read.notifyNever == envelope.notifyNever,
            "the drop's envelope reads back with other fields")
    require(read.recipients.map(\.address) == envelope.recipients.map(\.address), "the drop's envelope has other recipients")
    require(read.arrival == wholeSeconds(envelope.arrival), "the drop's envelope has another arrival: \(read.arrival) for \(envelope.arrival)")
}

func wholeSeconds(_ date: Date) -> Date {
    Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
}
