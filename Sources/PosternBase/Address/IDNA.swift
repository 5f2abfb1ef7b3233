/// Internationalized domain names: conversion between U-labels ("bücher") and the
/// A-labels ("xn--bcher-kva") that DNS and SMTP without SMTPUTF8 understand
/// (RFC 5890, RFC 5891).
///
/// Postern keeps domains in A-label form so that the spool and every SMTP command
/// are plain ASCII regardless of what the server supports.
///
/// Mapping follows UTS #46 section 4, non-transitional: steps 1 "Map" and
/// 2 "Normalize" (NFC) in `UTS46`, over the IdnaMappingTable in `UTS46Table`. That
/// covers case, full-width and other compatibility forms, ignored code points
/// (e.g. U+00AD soft hyphen) and label separators (U+3002, U+FF0E, U+FF61 map to
/// "."), and keeps the deviation characters ß, ς, ZWJ and ZWNJ (so "faß.de" is
/// "xn--fa-hia.de", as IDNA2008 wants, not "fass.de"). Labels are then checked
/// against the validity criteria of UTS #46 section 4.1 that matter here
/// (disallowed code points, NFC, hyphens, leading mark) and a simplified form of
/// the RFC 5892 rules, stricter than UTS #46: letters (Ll, Lu, Lo, Lm), marks
/// (Mn, Mc), decimal digits and hyphen are allowed; CONTEXTJ/CONTEXTO code points
/// (e.g. ZWNJ) and symbols are refused. The Bidi rule (RFC 5893) is not checked.
///
/// No Foundation here: the set-group-ID drop program parses addresses with
/// `PosternCore`, and must not load Foundation or ICU.
public enum IDNA {
    /// RFC 3490 3.1: U+3002, U+FF0E and U+FF61 separate labels like ".". The
    /// UTS #46 table maps all three to "." already; they stay here so that
    /// splitting does not depend on that.
    static let labelSeparators: Set<Unicode.Scalar> = [".", "\u{3002}", "\u{FF0E}", "\u{FF61}"]
    /// RFC 5890 2.3.2.1: the ACE prefix of an A-label.
    static let acePrefix = "xn--"
    // RFC 1035 2.3.4: a label is at most 63 octets.
    static let maxLabelOctets = 63
    // RFC 5321 4.5.3.1.2: a domain is at most 255 octets.
    static let maxDomainOctets = 255

    /// Converts a domain to lower-case A-label form, label by label: ASCII labels
    /// are lower-cased, others become "xn--" + Punycode, and existing "xn--" labels
    /// must decode to a valid U-label. A trailing dot is refused.
    public static func toASCII(_ domain: String) throws(AddressError) -> String {
        try convert(domain, address: domain).ascii
    }

    /// Converts the A-labels of a domain back to U-labels for display. Labels that
    /// are not valid A-labels are returned unchanged (but mapped); it never fails.
    public static func toUnicode(_ domain: String) -> String {
        labels(of: map(domain)).map { label in
            guard label.hasPrefix(acePrefix), case let .success(unicode) = decodeALabel(label) else {
                return label
            }
            return unicode
        }.joined(separator: ".")
    }

    /// UTS #46 section 4 steps 1 and 2: map (non-transitional), then NFC.
    /// Disallowed code points survive this; `uLabelProblem` refuses them.
    static func map(_ text: String) -> String {
        UTS46.mapAndNormalize(text)
    }

    static func labels(of domain: String) -> [String] {
        domain.unicodeScalars
            .split(omittingEmptySubsequences: false) { labelSeparators.contains($0) }
            .map { String(String.UnicodeScalarView($0)) }
    }

    /// The A-label form of `domain`, and its U-label form when any label is
    /// internationalized. `address` names the input in errors.
    static func convert(_ domain: String, address: String) throws(AddressError) -> (ascii: String, unicode: String?) {
        guard !domain.isEmpty else { throw .missingDomain(address: address) }
        let labels = labels(of: map(domain))
        var asciiLabels: [String] = []
        var unicodeLabels: [String] = []
        var isInternationalized = false
        for (index, label) in labels.enumerated() {
            guard !label.isEmpty else {
                let trailing = index > 0 && index == labels.count - 1
                throw .badDomainLabel(address: address, label: label, reason: trailing ? .trailingDot : .empty)
            }
            let converted: (ascii: String, unicode: String)
            switch convertLabel(label) {
            case let .success(value): converted = value
            case let .failure(failure):
                throw .badDomainLabel(address: address, label: label, reason: failure.problem)
            }
            isInternationalized = isInternationalized || converted.ascii != converted.unicode
            asciiLabels.append(converted.ascii)
            unicodeLabels.append(converted.unicode)
        }
        let ascii = asciiLabels.joined(separator: ".")
        guard ascii.utf8.count <= maxDomainOctets else {
            throw .domainTooLong(address: address, octets: ascii.utf8.count)
        }
        return (ascii, isInternationalized ? unicodeLabels.joined(separator: ".") : nil)
    }

    struct LabelFailure: Error {
        let problem: AddressError.LabelProblem
        init(_ problem: AddressError.LabelProblem) { self.problem = problem }
    }

    /// One mapped, non-empty label to its (A-label, U-label) pair.
    static func convertLabel(_ label: String) -> Result<(ascii: String, unicode: String), LabelFailure> {
        let scalars = Array(label.unicodeScalars)
        // Every scalar costs at least one octet in the A-label: refuse early.
        guard scalars.count <= maxLabelOctets else {
            return .failure(LabelFailure(.tooLong(octets: label.utf8.count)))
        }
        if scalars.allSatisfy(\.isASCII) {
            if let problem = ldhProblem(scalars) { return .failure(LabelFailure(problem)) }
            guard label.hasPrefix(acePrefix) else { return .success((label, label)) }
            return decodeALabel(label).map { (label, $0) }
        }
        if let problem = uLabelProblem(scalars) { return .failure(LabelFailure(problem)) }
        let encoded: String
        do {
            encoded = try Punycode.encode(scalars)
        } catch {
            return .failure(LabelFailure(.invalidPunycode(error.description)))
        }
        let aLabel = acePrefix + encoded
        guard aLabel.utf8.count <= maxLabelOctets else {
            return .failure(LabelFailure(.tooLong(octets: aLabel.utf8.count)))
        }
        return .success((aLabel, label))
    }

    /// RFC 1035 2.3.1 (as relaxed by RFC 1123 2.1): letters, digits, hyphen; no
    /// hyphen at either end.
    static func ldhProblem(_ scalars: [Unicode.Scalar]) -> AddressError.LabelProblem? {
        if let bad = scalars.first(where: { !isLDH($0) }) { return .invalidCharacter(bad) }
        if scalars.first == "-" { return .leadingHyphen }
        if scalars.last == "-" { return .trailingHyphen }
        return nil
    }

    static func isLDH(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "-": return true
        default: return false
        }
    }

    /// RFC 5891 4.2.3 and a simplified RFC 5892 code point check for a mapped label.
    /// UTS #46's own verdict comes first (section 4.1, criterion 6: every code
    /// point valid, or deviation under non-transitional processing), so that a
    /// disallowed code point is reported as such.
    static func uLabelProblem(_ scalars: [Unicode.Scalar]) -> AddressError.LabelProblem? {
        if let bad = scalars.first(where: { UTS46.status(of: $0) == .disallowed }) {
            return .disallowedCharacter(bad)
        }
        if let bad = scalars.first(where: { !isAllowedInULabel($0) }) { return .invalidCharacter(bad) }
        if scalars.first == "-" { return .leadingHyphen }
        if scalars.last == "-" { return .trailingHyphen }
        if scalars.count >= 4, scalars[2] == "-", scalars[3] == "-" { return .hyphensInThirdAndFourthPositions }
        if let first = scalars.first, [.nonspacingMark, .spacingMark, .enclosingMark].contains(first.properties.generalCategory) {
            return .leadingCombiningMark
        }
        return nil
    }

    static func isAllowedInULabel(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return isLDH(scalar) }
        switch scalar.properties.generalCategory {
        case .lowercaseLetter, .uppercaseLetter, .otherLetter, .modifierLetter,
             .nonspacingMark, .spacingMark, .decimalNumber:
            return true
        default:
            return false
        }
    }

    /// Checks an "xn--" label (RFC 5891 5.4): its Punycode must decode, contain
    /// non-ASCII, re-encode to exactly the same text, and yield a valid U-label that
    /// mapping leaves unchanged. Returns the U-label.
    ///
    /// "Unchanged" is compared scalar by scalar: Swift's `==` on strings is
    /// canonical equivalence, which would let a decomposed (non-NFC) label through,
    /// and UTS #46 4.1 criterion 1 requires NFC.
    static func decodeALabel(_ label: String) -> Result<String, LabelFailure> {
        func invalid(_ why: String) -> Result<String, LabelFailure> {
            .failure(LabelFailure(.invalidPunycode(why)))
        }
        let payload = String(label.dropFirst(acePrefix.count)).lowercased()
        let scalars: [Unicode.Scalar]
        do {
            scalars = try Punycode.decode(payload)
        } catch {
            return invalid(error.description)
        }
        guard scalars.contains(where: { !$0.isASCII }) else {
            return invalid("it decodes to plain ASCII, which must not be Punycode-encoded")
        }
        guard (try? Punycode.encode(scalars)) == payload else {
            return invalid("it is not the canonical Punycode encoding of what it decodes to")
        }
        let unicode = String(String.UnicodeScalarView(scalars))
        if let problem = uLabelProblem(scalars) { return .failure(LabelFailure(problem)) }
        guard map(unicode).unicodeScalars.elementsEqual(unicode.unicodeScalars) else {
            return invalid("it decodes to \(AddressError.render(unicode)), which is not in mapped (UTS #46, NFC) form")
        }
        return .success(unicode)
    }
}
