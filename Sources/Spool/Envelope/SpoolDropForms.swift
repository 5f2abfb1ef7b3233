@_exported import SpoolDrop
import Foundation

// SpoolDrop (the drop path, linked by the set-group-ID drop program) works in
// bytes and seconds; the rest of Postern speaks `Data`, `Date` and `Envelope`.
// These are those forms.

extension JSONValue {
    /// Pretty-printed with sorted keys and a final newline: stable, diffable, `jq`-friendly.
    public func encoded() -> Data {
        Data(encodedBytes())
    }

    public static func decode(_ data: Data) throws -> JSONValue {
        try JSONText.parse(data)
    }
}

extension Envelope {
    /// The envelope a drop wrote, as the codec would read it back from
    /// `DropEnvelope.encoded()`, without the JSON in between: the listener
    /// hands each message's envelope to the daemon beside it so (`QueueInbox`),
    /// and decoding what it had just encoded cost it as much as the encoding.
    /// `DropEnvelopeTests` holds the two ways together.
    public init(queued drop: DropEnvelope) {
        // Whole seconds, as `arrival` is written (`Timestamp.format`).
        let arrival = Date(timeIntervalSince1970: drop.arrival.rounded(.down))
        self.init(id: drop.id, sender: drop.sender,
                  recipients: drop.recipients.map { address in
                      let original = drop.originals[address]
                      return Recipient(address: address, original: original == address ? nil : original)
                  },
                  arrival: arrival, size: drop.size, uid: drop.uid)
        messageID = drop.messageID
        eightBit = drop.eightBit
        smtputf8 = drop.smtputf8
        requireTLS = drop.requireTLS
        notifyNever = drop.notifyNever
        dsnReturn = drop.dsnReturn
        envelopeID = drop.envelopeID
    }
}

extension DropWriter {
    /// Finishes the drop with a full envelope (the daemon's DSNs).
    public func commit(_ envelope: Envelope) throws(SpoolIOError) {
        try commit(envelopeBytes: Array(envelope.encoded()), arrival: envelope.restingTime.timeIntervalSince1970)
    }
}
