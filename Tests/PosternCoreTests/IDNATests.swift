import Testing
@testable import PosternBase
@testable import PosternCore

/// An RFC 3492 section 7.1 sample: Unicode text and its Punycode.
struct PunycodeSample: Sendable, CustomTestStringConvertible {
    let name: String
    let unicode: String
    let punycode: String
    var testDescription: String { name }
}

/// RFC 3492 7.1 sample strings, code point by code point.
private let rfc3492Samples: [PunycodeSample] = [
    .init(name: "(A) Arabic (Egyptian)",
          unicode: "\u{0644}\u{064A}\u{0647}\u{0645}\u{0627}\u{0628}\u{062A}\u{0643}\u{0644}"
              + "\u{0645}\u{0648}\u{0634}\u{0639}\u{0631}\u{0628}\u{064A}\u{061F}",
          punycode: "egbpdaj6bu4bxfgehfvwxn"),
    .init(name: "(B) Chinese (simplified)",
          unicode: "\u{4ED6}\u{4EEC}\u{4E3A}\u{4EC0}\u{4E48}\u{4E0D}\u{8BF4}\u{4E2D}\u{6587}",
          punycode: "ihqwcrb4cv8a8dqg056pqjye"),
    .init(name: "(C) Chinese (traditional)",
          unicode: "\u{4ED6}\u{5011}\u{7232}\u{4EC0}\u{9EBD}\u{4E0D}\u{8AAA}\u{4E2D}\u{6587}",
          punycode: "ihqwctvzc91f659drss3x8bo0yb"),
    .init(name: "(D) Czech",
          unicode: "Pro\u{010D}prost\u{011B}nemluv\u{00ED}\u{010D}esky",
          punycode: "Proprostnemluvesky-uyb24dma41a"),
    .init(name: "(E) Hebrew",
          unicode: "\u{05DC}\u{05DE}\u{05D4}\u{05D4}\u{05DD}\u{05E4}\u{05E9}\u{05D5}\u{05D8}\u{05DC}\u{05D0}"
              + "\u{05DE}\u{05D3}\u{05D1}\u{05E8}\u{05D9}\u{05DD}\u{05E2}\u{05D1}\u{05E8}\u{05D9}\u{05EA}",
          punycode: "4dbcagdahymbxekheh6e0a7fei0b"),
    .init(name: "(F) Hindi (Devanagari)",
          unicode: "\u{092F}\u{0939}\u{0932}\u{094B}\u{0917}\u{0939}\u{093F}\u{0928}\u{094D}\u{0926}"
              + "\u{0940}\u{0915}\u{094D}\u{092F}\u{094B}\u{0902}\u{0928}\u{0939}\u{0940}\u{0902}"
              + "\u{092C}\u{094B}\u{0932}\u{0938}\u{0915}\u{0924}\u{0947}\u{0939}\u{0948}\u{0902}",
          punycode: "i1baa7eci9glrd9b2ae1bj0hfcgg6iyaf8o0a1dig0cd"),
    .init(name: "(G) Japanese (kanji and hiragana)",
          unicode: "\u{306A}\u{305C}\u{307F}\u{3093}\u{306A}\u{65E5}\u{672C}\u{8A9E}\u{3092}"
              + "\u{8A71}\u{3057}\u{3066}\u{304F}\u{308C}\u{306A}\u{3044}\u{306E}\u{304B}",
          punycode: "n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa"),
    .init(name: "(H) Korean (Hangul syllables)",
          unicode: "\u{C138}\u{ACC4}\u{C758}\u{BAA8}\u{B4E0}\u{C0AC}\u{B78C}\u{B4E4}\u{C774}\u{D55C}"
              + "\u{AD6D}\u{C5B4}\u{B97C}\u{C774}\u{D574}\u{D55C}\u{B2E4}\u{BA74}\u{C5BC}\u{B9C8}"
              + "\u{B098}\u{C88B}\u{C744}\u{AE4C}",
          punycode: "989aomsvi5e83db1d2a355cv1e0vak1dwrv93d5xbh15a0dt30a5jpsd879ccm6fea98c"),
    .init(name: "(I) Russian (Cyrillic)",
          unicode: "\u{043F}\u{043E}\u{0447}\u{0435}\u{043C}\u{0443}\u{0436}\u{0435}\u{043E}\u{043D}"
              + "\u{0438}\u{043D}\u{0435}\u{0433}\u{043E}\u{0432}\u{043E}\u{0440}\u{044F}\u{0442}"
              + "\u{043F}\u{043E}\u{0440}\u{0443}\u{0441}\u{0441}\u{043A}\u{0438}",
          punycode: "b1abfaaepdrnnbgefbadotcwatmq2g4l"),
    .init(name: "(J) Spanish",
          unicode: "Porqu\u{00E9}nopuedensimplementehablarenEspa\u{00F1}ol",
          punycode: "PorqunopuedensimplementehablarenEspaol-fmd56a"),
    .init(name: "(K) Vietnamese",
          unicode: "T\u{1EA1}isaoh\u{1ECD}kh\u{00F4}ngth\u{1EC3}ch\u{1EC9}n\u{00F3}iti\u{1EBF}ngVi\u{1EC7}t",
          punycode: "TisaohkhngthchnitingVit-kjcr8268qyxafd2f1b9g"),
    .init(name: "(L) 3<nen>B<gumi><kinpachi><sensei>",
          unicode: "3\u{5E74}B\u{7D44}\u{91D1}\u{516B}\u{5148}\u{751F}",
          punycode: "3B-ww4c5e180e575a65lsy2b"),
    .init(name: "(M) <amuro><namie>-with-SUPER-MONKEYS",
          unicode: "\u{5B89}\u{5BA4}\u{5948}\u{7F8E}\u{6075}-with-SUPER-MONKEYS",
          punycode: "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n"),
    .init(name: "(N) Hello-Another-Way-<sorezore><no><basho>",
          unicode: "Hello-Another-Way-\u{305D}\u{308C}\u{305E}\u{308C}\u{306E}\u{5834}\u{6240}",
          punycode: "Hello-Another-Way--fc4qua05auwb3674vfr0b"),
    .init(name: "(O) <hitotsu><yane><no><shita>2",
          unicode: "\u{3072}\u{3068}\u{3064}\u{5C4B}\u{6839}\u{306E}\u{4E0B}2",
          punycode: "2-u9tlzr9756bt3uc0v"),
    .init(name: "(P) Maji<de>Koi<suru>5<byou><mae>",
          unicode: "Maji\u{3067}Koi\u{3059}\u{308B}5\u{79D2}\u{524D}",
          punycode: "MajiKoi5-783gue6qz075azm5e"),
    .init(name: "(Q) <pafii>de<runba>",
          unicode: "\u{30D1}\u{30D5}\u{30A3}\u{30FC}de\u{30EB}\u{30F3}\u{30D0}",
          punycode: "de-jg4avhby1noc0d"),
    .init(name: "(R) <sono><supiido><de>",
          unicode: "\u{305D}\u{306E}\u{30B9}\u{30D4}\u{30FC}\u{30C9}\u{3067}",
          punycode: "d9juau41awczczp"),
    .init(name: "(S) -> $1.00 <-", unicode: "-> $1.00 <-", punycode: "-> $1.00 <--"),
]

/// Each RFC 3492 7.1 sample encodes to its published Punycode.
@Test(arguments: rfc3492Samples)
func punycodeEncodesRFCSample(_ sample: PunycodeSample) throws {
    #expect(try Punycode.encode(Array(sample.unicode.unicodeScalars)) == sample.punycode)
}

/// Each RFC 3492 7.1 sample's Punycode decodes to exactly its code points.
@Test(arguments: rfc3492Samples)
func punycodeDecodesRFCSample(_ sample: PunycodeSample) throws {
    #expect(try Punycode.decode(sample.punycode) == Array(sample.unicode.unicodeScalars))
}

/// Digits are case-insensitive: the RFC's mixed-case Russian sample decodes too.
@Test func punycodeDigitsIgnoreCase() throws {
    #expect(try Punycode.decode("b1abfaaepdrnnbgefbaDotcwatmq2g4l") == Punycode.decode("b1abfaaepdrnnbgefbadotcwatmq2g4l"))
}

/// Hostile Punycode (overflow, truncation, non-digit, non-ASCII) fails cleanly instead of trapping.
@Test func punycodeRejectsMalformedInput() {
    #expect(throws: Punycode.Failure.overflow) { try Punycode.decode(String(repeating: "9", count: 20)) }
    #expect(throws: Punycode.Failure.truncated) { try Punycode.decode("99") }
    #expect(throws: Punycode.Failure.invalidDigit(UInt8(ascii: "!"))) { try Punycode.decode("ab!c") }
    #expect(throws: Punycode.Failure.nonASCIIInput) { try Punycode.decode("bü-cher") }
    let huge = Array(repeating: Unicode.Scalar("a"), count: 2100) + ["\u{10FFFF}"]
    #expect(throws: Punycode.Failure.overflow) { try Punycode.encode(huge) }
}

/// Domains convert to A-labels, with mapping (case, full-width, decomposed) and ideographic full stops.
@Test(arguments: [
    ("bücher.example", "xn--bcher-kva.example"),
    ("münchen.de", "xn--mnchen-3ya.de"),
    ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ("例え。テスト", "xn--r8jz45g.xn--zckzah"),
    ("bücher\u{FF0E}example", "xn--bcher-kva.example"),
    ("bücher\u{FF61}example", "xn--bcher-kva.example"),
    ("BÜCHER.Example", "xn--bcher-kva.example"),
    ("bu\u{0308}cher.example", "xn--bcher-kva.example"),
    ("ｅｘａｍｐｌｅ.com", "example.com"),
    ("Example.COM", "example.com"),
    ("localhost", "localhost"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
])
func toASCIIConverts(_ input: String, _ expected: String) throws {
    #expect(try IDNA.toASCII(input) == expected)
}

/// A-labels decode for display; labels that are not valid A-labels stay as they are.
@Test(arguments: [
    ("xn--bcher-kva.example", "bücher.example"),
    ("xn--mnchen-3ya.de", "münchen.de"),
    ("xn--r8jz45g.xn--zckzah", "例え.テスト"),
    ("XN--MNCHEN-3YA.DE", "münchen.de"),
    ("example.com", "example.com"),
    ("xn--zz-.example", "xn--zz-.example"),
    ("xn--9999999999999999.example", "xn--9999999999999999.example"),
])
func toUnicodeConverts(_ input: String, _ expected: String) {
    #expect(IDNA.toUnicode(input) == expected)
}

/// Unicode -> A-label -> Unicode round-trips, and A-labels are stable under reconversion.
@Test(arguments: ["bücher.example", "münchen.de", "例え.テスト", "παράδειγμα.δοκιμή", "пример.рф",
                  "mañana.example", "日本語.jp", "a-ü-b.example"])
func idnaRoundTrips(_ domain: String) throws {
    let ascii = try IDNA.toASCII(domain)
    #expect(ascii.unicodeScalars.allSatisfy { $0.isASCII })
    #expect(ascii.hasPrefix("xn--") || ascii.contains(".xn--"))
    #expect(IDNA.toUnicode(ascii) == domain)
    #expect(try IDNA.toASCII(IDNA.toUnicode(ascii)) == ascii)
    #expect(try IDNA.toASCII(ascii) == ascii)
}

/// Invalid domains are refused with the label and the reason.
@Test(arguments: [
    ("", AddressError.missingDomain(address: "")),
    ("example.com.", .badDomainLabel(address: "example.com.", label: "", reason: .trailingDot)),
    ("a..b", .badDomainLabel(address: "a..b", label: "", reason: .empty)),
    ("a_b.example", .badDomainLabel(address: "a_b.example", label: "a_b", reason: .invalidCharacter("_"))),
    ("-ab.example", .badDomainLabel(address: "-ab.example", label: "-ab", reason: .leadingHyphen)),
    ("ü-.example", .badDomainLabel(address: "ü-.example", label: "ü-", reason: .trailingHyphen)),
    ("ab--ü.example", .badDomainLabel(address: "ab--ü.example", label: "ab--ü",
                                       reason: .hyphensInThirdAndFourthPositions)),
    ("\u{0308}a.example", .badDomainLabel(address: "\u{0308}a.example", label: "\u{0308}a",
                                          reason: .leadingCombiningMark)),
    ("a\u{200C}b.example", .badDomainLabel(address: "a\u{200C}b.example", label: "a\u{200C}b",
                                           reason: .invalidCharacter("\u{200C}"))),
    ("xn--n3h.example", .badDomainLabel(address: "xn--n3h.example", label: "xn--n3h",
                                        reason: .invalidCharacter("☃"))),
    // UTS #46 IdnaMappingTable: U+0080 (a C1 control, what "xn--a" decodes to) is
    // "disallowed" (4.1 criterion 6); with the real table that is the reason given,
    // where the NFKC approximation could only say .invalidCharacter("\u{80}").
    ("xn--a.example", .badDomainLabel(address: "xn--a.example", label: "xn--a",
                                      reason: .disallowedCharacter("\u{80}"))),
    (String(repeating: "ü", count: 60) + ".example",
     .badDomainLabel(address: String(repeating: "ü", count: 60) + ".example",
                     label: String(repeating: "ü", count: 60), reason: .tooLong(octets: 66))),
])
func toASCIIRefuses(_ input: String, _ expected: AddressError) {
    #expect(throws: expected) { try IDNA.toASCII(input) }
}

/// Non-canonical, truncated, overflowing or unmapped (upper-case) "xn--" labels are refused as invalid Punycode.
@Test(arguments: ["xn---tda", "xn--ab-cd", "xn--9999999999999999", "xn--abc-9", "xn--" + upperCasePunycode])
func invalidALabelIsRefused(_ label: String) {
    #expect {
        try IDNA.toASCII(label + ".example")
    } throws: { error in
        guard case let .badDomainLabel(_, badLabel, .invalidPunycode(why)) = error as? AddressError else {
            return false
        }
        return badLabel == label.lowercased() && !why.isEmpty
    }
}

/// Punycode of "bÜcher": it decodes, but to a label that mapping would change.
private let upperCasePunycode = (try? Punycode.encode(Array("b\u{00DC}cher".unicodeScalars))) ?? ""

/// "xn--" alone is refused (its trailing hyphen already makes it invalid LDH).
@Test func bareACEPrefixIsRefused() {
    #expect(throws: AddressError.badDomainLabel(address: "xn--", label: "xn--", reason: .trailingHyphen)) {
        try IDNA.toASCII("xn--")
    }
}

// MARK: UTS #46 mapping (section 4, non-transitional)

/// UTS #46 step 1 "Map" and step 2 "Normalize". The expected A-labels are facts,
/// computed with Python's idna 3.13 (`idna.encode(x, uts46=True)`, Unicode 17.0
/// table), not with this code.
@Test(arguments: [
    // Full-width letters and U+FF0E FULLWIDTH FULL STOP: mapped to ASCII.
    ("\u{FF45}\u{FF58}\u{FF41}\u{FF4D}\u{FF50}\u{FF4C}\u{FF45}\u{FF0E}\u{FF43}\u{FF4F}\u{FF4D}", "example.com"),
    // Upper case, ASCII and Greek: U+03A3 maps to U+03C3 (not to final U+03C2).
    ("EXAMPLE.COM", "example.com"),
    ("\u{03A3}\u{03A3}.example", "xn--4xaa.example"),
    // Compatibility characters: U+FB01 LATIN SMALL LIGATURE FI, U+2167 ROMAN NUMERAL
    // EIGHT, U+337F SQUARE CORPORATION.
    ("\u{FB01}le.example", "file.example"),
    ("\u{2167}.example", "viii.example"),
    ("\u{337F}.example", "xn--6oqv20b1zgzxr.example"),
    // Ignored: U+00AD SOFT HYPHEN is removed.
    ("b\u{00FC}\u{00AD}cher.example", "xn--bcher-kva.example"),
    // NFC after mapping: U+FF21 maps to "a", which composes with U+0308 to U+00E4.
    ("\u{FF21}\u{0308}b.example", "xn--b-zfa.example"),
    // Deviation characters, non-transitional: U+00DF and U+03C2 are kept.
    ("fa\u{00DF}.de", "xn--fa-hia.de"),
    ("stra\u{00DF}e.example", "xn--strae-oqa.example"),
    ("\u{03C3}\u{03C2}.example", "xn--3xab.example"),
])
func uts46MapsBeforeConversion(_ input: String, _ expected: String) throws {
    #expect(try IDNA.toASCII(input) == expected)
}

/// Real IDNs against their known A-labels, both ways. Expected values computed with
/// Python's idna 3.13 (`idna.encode(x, uts46=True)`), hard-coded as facts.
@Test(arguments: [
    ("b\u{00FC}cher.example", "xn--bcher-kva.example"),
    ("\u{043F}\u{0440}\u{0438}\u{043C}\u{0435}\u{0440}.\u{0440}\u{0444}", "xn--e1afmkfd.xn--p1ai"),
    ("\u{03C0}\u{03B1}\u{03C1}\u{03AC}\u{03B4}\u{03B5}\u{03B9}\u{03B3}\u{03BC}\u{03B1}"
        + ".\u{03B4}\u{03BF}\u{03BA}\u{03B9}\u{03BC}\u{03AE}", "xn--hxajbheg2az3al.xn--jxalpdlp"),
    ("\u{65E5}\u{672C}\u{8A9E}.jp", "xn--wgv71a119e.jp"),
    ("ma\u{00F1}ana.com", "xn--maana-pta.com"),
    ("fa\u{00DF}.de", "xn--fa-hia.de"),
])
func knownALabelsRoundTrip(_ unicode: String, _ aLabel: String) throws {
    #expect(try IDNA.toASCII(unicode) == aLabel)
    #expect(IDNA.toUnicode(aLabel).unicodeScalars.elementsEqual(unicode.unicodeScalars))
    #expect(try IDNA.toASCII(aLabel) == aLabel)
}

/// Disallowed code points (UTS #46 4.1 criterion 6) are refused, whether typed or
/// inside an A-label: U+2FF0 IDEOGRAPHIC DESCRIPTION CHARACTER LEFT TO RIGHT, U+E000
/// (private use), and U+2024 ONE DOT LEADER, which NFKC would have turned into "."
/// (splitting the label in two).
@Test(arguments: [
    ("a\u{2FF0}b.example", "a\u{2FF0}b", Unicode.Scalar(0x2FF0)!),
    ("a\u{E000}b.example", "a\u{E000}b", Unicode.Scalar(0xE000)!),
    ("a\u{2024}b.example", "a\u{2024}b", Unicode.Scalar(0x2024)!),
    // Python: "a\u2ff0b".encode("punycode") == b"ab-7z3a".
    ("xn--ab-7z3a.example", "xn--ab-7z3a", Unicode.Scalar(0x2FF0)!),
])
func disallowedCodePointIsRefused(_ input: String, _ label: String, _ scalar: Unicode.Scalar) {
    #expect(throws: AddressError.badDomainLabel(address: input, label: label, reason: .disallowedCharacter(scalar))) {
        try IDNA.toASCII(input)
    }
}

/// An A-label must decode to NFC (UTS #46 4.1 criterion 1): "xn--bucher-xyd" is
/// "bu" U+0308 "cher" (Python: "bu\u0308cher".encode("punycode")), canonically
/// equivalent to "bücher" but not NFC, so it is not the A-label of anything.
@Test func decomposedALabelIsRefused() {
    #expect {
        try IDNA.toASCII("xn--bucher-xyd.example")
    } throws: { error in
        guard case .badDomainLabel(_, "xn--bucher-xyd", .invalidPunycode) = error as? AddressError else { return false }
        return true
    }
}

/// The generated table is well formed: it starts at U+0000, its ranges are sorted,
/// its statuses are known, and every mapping is in NFC by the stdlib's normalizer
/// (checked rather than assumed: `UTS46.mapAndNormalize` still applies NFC to the
/// whole result, UTS #46 section 4 step 2, because mapped text next to unmapped
/// combining marks can compose).
@Test func uts46TableIsWellFormed() {
    let starts = UTS46Table.rangeStarts
    #expect(UTS46Table.unicodeVersion == "17.0.0")
    #expect(starts.first == 0)
    #expect(starts.count == UTS46Table.rangeValues.count)
    #expect(zip(starts, starts.dropFirst()).allSatisfy { $0 < $1 })
    for value in UTS46Table.rangeValues {
        #expect(UTS46.Status(rawValue: value & 0x7) != nil)
        let offset = Int(value >> 8), length = Int((value >> 3) & 0x1F)
        guard length > 0 else { continue }
        let mapping = String(String.UnicodeScalarView(
            UTS46Table.mappingScalars[offset ..< offset + length].compactMap(Unicode.Scalar.init)))
        #expect(mapping.unicodeScalars.count == length)
        #expect(UTS46.nfc(mapping).unicodeScalars.elementsEqual(mapping.unicodeScalars))
    }
    #expect(UTS46.status(of: "a") == .valid)
    #expect(UTS46.status(of: "A") == .mapped)
    #expect(UTS46.status(of: "\u{00DF}") == .deviation)
    #expect(UTS46.status(of: "\u{200D}") == .deviation)
    #expect(UTS46.status(of: "\u{00AD}") == .ignored)
    #expect(UTS46.status(of: "\u{E000}") == .disallowed)
    #expect(UTS46.status(of: "\u{10FFFF}") == .disallowed)
}
