import Glibc

/// RFC 3339 timestamps in UTC, the only time format in the spool's JSON.
///
/// Written with whole seconds and a `Z` (`2026-11-29T03:17:34Z`) so that `jq`,
/// `date -d` and string comparison all agree; read with or without fractional
/// seconds so that writers in other languages need not truncate.
///
/// The functions here take seconds since the Unix epoch, so that the drop
/// program can use them without Foundation; PosternCore adds `Date` forms.
public enum Timestamp {
    /// Seconds since the Unix epoch, now (`CLOCK_REALTIME`).
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// `milliseconds` adds a fraction (`…:34.250Z`), for log lines.
    public static func format(epochSeconds epoch: Double, milliseconds: Bool = false) -> String {
        let seconds = Int64(epoch.rounded(.down))
        let (year, month, day) = civil(daysSinceEpoch: Int(seconds.floorDivided(by: 86_400)))
        let second = Int(seconds - seconds.floorDivided(by: 86_400) * 86_400)
        let fraction = milliseconds ? min(999, max(0, Int((epoch - Double(seconds)) * 1000))) : -1
        // Written byte by byte: listings format three of these per message.
        guard (0...9999).contains(year) else {
            return "\(year)-\(digits(month, 2))-\(digits(day, 2))T\(digits(second / 3600, 2)):\(digits(second / 60 % 60, 2)):"
                + digits(second % 60, 2) + (fraction >= 0 ? "." + digits(fraction, 3) : "") + "Z"
        }
        return String(unsafeUninitializedCapacity: 24) { out in
            var at = 0
            func put(_ value: Int, _ width: Int) {
                var value = value
                for position in stride(from: at + width - 1, through: at, by: -1) {
                    out[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                at += width
            }
            func put(_ byte: Unicode.Scalar) {
                out[at] = UInt8(ascii: byte)
                at += 1
            }
            put(year, 4); put("-"); put(month, 2); put("-"); put(day, 2)
            put("T"); put(second / 3600, 2); put(":"); put(second / 60 % 60, 2); put(":"); put(second % 60, 2)
            if fraction >= 0 { put("."); put(fraction, 3) }
            put("Z")
            return at
        }
    }

    /// The proleptic Gregorian date of a day counted from 1970-01-01 (H.
    /// Hinnant's civil_from_days, the inverse of `daysSinceEpoch`).
    static func civil(daysSinceEpoch days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shifted = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shifted + 2) / 5 + 1
        let month = shifted < 10 ? shifted + 3 : shifted - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Parses an RFC 3339 date-time (section 5.6) with any offset; `nil` if malformed.
    ///
    /// By hand rather than with `ISO8601DateFormatter`: every envelope holds
    /// timestamps, and a formatter (ICU locale data under Foundation on Linux)
    /// made the start-up scan spend milliseconds per message.
    public static func parseEpochSeconds(_ text: String) -> Double? {
        var bytes = Array(text.utf8)[...]
        func number(_ count: Int) -> Int? {
            guard bytes.count >= count else { return nil }
            var value = 0
            for byte in bytes.prefix(count) {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            bytes = bytes.dropFirst(count)
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard let byte = bytes.first, characters.utf8.contains(byte) else { return false }
            bytes = bytes.dropFirst()
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2), expect("Tt"),
              let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2),
              (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 60 else { return nil }
        var fraction = 0.0
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            var scale = 0.1
            let start = bytes.count
            while let byte = bytes.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                fraction += Double(byte - UInt8(ascii: "0")) * scale
                scale /= 10
                bytes = bytes.dropFirst()
            }
            guard bytes.count < start else { return nil }
        }
        var offset = 0
        if !expect("Zz") {
            guard let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
            bytes = bytes.dropFirst()
            guard let hours = number(2), expect(":"), let minutes = number(2), hours <= 23, minutes <= 59 else { return nil }
            offset = (hours * 3600 + minutes * 60) * (sign == UInt8(ascii: "-") ? -1 : 1)
        }
        guard bytes.isEmpty else { return nil }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
        return Double(seconds) + fraction
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// `value` in decimal, zero-padded to `width` digits.
    static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    /// The RFC 5322 section 3.3 form for a `Date:` header, in UTC:
    /// `Sun, 29 Nov 2026 03:17:34 +0000`.
    public static func rfc5322(epochSeconds: Double) -> String {
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        var time = time_t(Int64(epochSeconds.rounded(.down)))
        var parts = tm()
        gmtime_r(&time, &parts)
        return "\(days[Int(parts.tm_wday)]), \(parts.tm_mday) \(months[Int(parts.tm_mon)]) "
            + digits(Int(parts.tm_year) + 1900, 4) + " " + digits(Int(parts.tm_hour), 2) + ":" + digits(Int(parts.tm_min), 2)
            + ":" + digits(Int(parts.tm_sec), 2) + " +0000"
    }
}

extension Int64 {
    /// Division rounding toward negative infinity (times before 1970).
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
