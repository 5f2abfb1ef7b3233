/// Durations as an admin writes them: `90s`, `7m30s`, `2h`, `1d12h`.
///
/// Units are `d`, `h`, `m`, `s` (and `ms`), largest first, each at most once;
/// a bare number is not accepted, because "is 30 seconds or minutes?" must never
/// be a guess in a mail system's configuration.
public enum DurationText {
    /// Seconds in `text`, or `nil` when it is not a duration.
    public static func parse(_ text: String) -> Double? {
        let units: [(String, Double)] = [("d", 86400), ("h", 3600), ("ms", 0.001), ("m", 60), ("s", 1)]
        var rest = Substring(text)
        var total = 0.0
        var lastRank = -1
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, let number = Double(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let rank = units.firstIndex(where: { rest.hasPrefix($0.0) }) else { return nil }
            let order = ["d", "h", "m", "s", "ms"].firstIndex(of: units[rank].0)!
            guard order > lastRank else { return nil }
            lastRank = order
            total += number * units[rank].1
            rest = rest.dropFirst(units[rank].0.count)
        }
        return total
    }

    /// The short form for listings: `45s`, `12m`, `3h`, `2d`.
    public static func short(_ seconds: Double) -> String {
        let value = max(0, Int(seconds))
        switch value {
        case ..<60: return "\(value)s"
        case ..<3600: return "\(value / 60)m"
        case ..<86400: return "\(value / 3600)h"
        default: return "\(value / 86400)d"
        }
    }
}
