/// The "Map" and "Normalize" steps of UTS #46 (Unicode IDNA Compatibility
/// Processing) section 4, non-transitional, over the generated `UTS46Table`.
///
/// Written without Foundation (and so without ICU): the set-group-ID drop program
/// parses addresses with `PosternCore`, and must not load either.
enum UTS46 {
    /// A code point's status in the IdnaMappingTable (UTS #46 section 5).
    enum Status: UInt32, Sendable {
        case valid = 0
        case mapped = 1
        /// ß, ς, ZWJ and ZWNJ. Non-transitional processing treats them as valid;
        /// whether a ZWJ/ZWNJ may really stay is RFC 5892 CONTEXTJ's business.
        case deviation = 2
        case ignored = 3
        case disallowed = 4
    }

    /// The index of the table range holding `scalar`: the last range that starts
    /// at or before it (binary search; the first range starts at U+0000).
    static func rangeIndex(of scalar: Unicode.Scalar) -> Int {
        let starts = UTS46Table.rangeStarts
        var low = 0
        var high = starts.count  // invariant: starts[low] <= scalar < starts[high]
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if starts[middle] <= scalar.value { low = middle } else { high = middle }
        }
        return low
    }

    static func status(of scalar: Unicode.Scalar) -> Status {
        // The generator only writes statuses 0-4, so this cannot fail; a broken
        // table counts as disallowed rather than trapping.
        Status(rawValue: UTS46Table.rangeValues[rangeIndex(of: scalar)] & 0x7) ?? .disallowed
    }

    /// UTS #46 section 4 step 1 ("Map"), non-transitional: ignored code points are
    /// removed, mapped ones replaced by their mapping, and valid, deviation and
    /// disallowed ones kept. Disallowed code points are kept on purpose: the
    /// standard refuses them in the validity step (section 4.1, criterion 6), where
    /// the error can name the label.
    ///
    /// Step 2 ("Normalize") follows: the result is put into NFC. It cannot be
    /// skipped. Each mapping in the table is NFC on its own, but the input need not
    /// be ("u" + U+0308 for "ü"), and a mapping followed by a combining mark can
    /// compose ("Ａ" + U+0308 maps to "a" + U+0308, NFC "ä").
    static func mapAndNormalize(_ text: String) -> String {
        var mapped = String.UnicodeScalarView()
        var isASCII = true
        for scalar in text.unicodeScalars {
            let value = UTS46Table.rangeValues[rangeIndex(of: scalar)]
            switch Status(rawValue: value & 0x7) {
            case .ignored:
                continue
            case .mapped:
                let offset = Int(value >> 8)
                let length = Int((value >> 3) & 0x1F)
                for code in UTS46Table.mappingScalars[offset ..< offset + length] {
                    // The generator writes only scalars taken from Python strings.
                    guard let replacement = Unicode.Scalar(code) else { continue }
                    isASCII = isASCII && replacement.isASCII
                    mapped.append(replacement)
                }
            default:
                isASCII = isASCII && scalar.isASCII
                mapped.append(scalar)
            }
        }
        let result = String(mapped)
        return isASCII ? result : nfc(result)
    }

    /// `text` in Unicode Normalization Form C (UAX #15).
    ///
    /// The standard library has NFC (String comparison and hashing use it) but no
    /// supported public API for it, and Foundation's `precomposedStringWithCanonicalMapping`
    /// is what this file must avoid. `String._nfcCodeUnits` is public but
    /// underscored: exported by libswiftCore, not SPI, not documented. We use it
    /// anyway rather than carry our own decomposition and composition tables,
    /// because it is the stdlib's own normalizer, its Unicode data is the
    /// toolchain's (Unicode 17.0 in Swift 6.3, the same version as `UTS46Table`),
    /// and if a toolchain ever drops it the build fails loudly rather than the
    /// result silently changing; IDNATests pin its behaviour (decomposed input).
    static func nfc(_ text: String) -> String {
        String(decoding: text._nfcCodeUnits, as: UTF8.self)
    }
}
