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

extension DropWriter {
    /// Finishes the drop with a full envelope (the daemon's DSNs).
    public func commit(_ envelope: Envelope) throws(SpoolIOError) {
        try commit(envelopeBytes: Array(envelope.encoded()), arrival: envelope.restingTime.timeIntervalSince1970)
    }
}
