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
        var out: [UInt8] = []
        out.reserveCapacity(24)
        write(epochSeconds: epoch, milliseconds: milliseconds, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `format`, appended to `out` as bytes: listings write three of these
    /// per message, and a string of 20 characters would be an allocation each.
    public static func write(epochSeconds epoch: Double, milliseconds: Bool = false, into out: inout [UInt8]) {
        let seconds = Int64(epoch.rounded(.down))
        let (year, month, day) = civil(daysSinceEpoch: Int(seconds.floorDivided(by: 86_400)))
        let second = Int(seconds - seconds.floorDivided(by: 86_400) * 86_400)
        func put(_ value: Int, _ width: Int) {
            var digits: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
            var value = value
            withUnsafeMutableBytes(of: &digits) { buffer in
                for position in stride(from: width - 1, through: 0, by: -1) {
                    buffer[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                out.append(contentsOf: buffer.prefix(width))
            }
        }
        if (0...9999).contains(year) { put(year, 4) } else { out.append(contentsOf: String(year).utf8) }
        out.append(UInt8(ascii: "-")); put(month, 2); out.append(UInt8(ascii: "-")); put(day, 2)
        out.append(UInt8(ascii: "T")); put(second / 3600, 2); out.append(UInt8(ascii: ":"))
        put(second / 60 % 60, 2); out.append(UInt8(ascii: ":")); put(second % 60, 2)
        if milliseconds {
            out.append(UInt8(ascii: "."))
            put(min(999, max(0, Int((epoch - Double(seconds)) * 1000))), 3)
        }
        out.append(UInt8(ascii: "Z"))
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
        var text = text
        return text.withUTF8 { parseEpochSeconds(utf8: $0) }
    }

    /// The same, from the bytes of the text (no copy: listings parse four
    /// of these per envelope).
    public static func parseEpochSeconds(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        var index = 0
        func number(_ count: Int) -> Int? {
            guard bytes.count - index >= count else { return nil }
            var value = 0
            for _ in 0..<count {
                let byte = bytes[index]
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                index += 1
            }
            return value
        }
        func expect(_ first: UInt8, or second: UInt8? = nil) -> Bool {
            guard index < bytes.count, bytes[index] == first || bytes[index] == second else { return false }
            index += 1
            return true
        }
        let (dash, colon) = (UInt8(ascii: "-"), UInt8(ascii: ":"))
        guard let year = number(4), expect(dash), let month = number(2), expect(dash), let day = number(2),
              expect(UInt8(ascii: "T"), or: UInt8(ascii: "t")),
              let hour = number(2), expect(colon), let minute = number(2), expect(colon), let second = number(2),
              (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 60 else { return nil }
        var fraction = 0.0
        if expect(UInt8(ascii: ".")) {
            var scale = 0.1
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                fraction += Double(bytes[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset = 0
        if !expect(UInt8(ascii: "Z"), or: UInt8(ascii: "z")) {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == dash else { return nil }
            let negative = bytes[index] == dash
            index += 1
            guard let hours = number(2), expect(colon), let minutes = number(2), hours <= 23, minutes <= 59 else { return nil }
            offset = (hours * 3600 + minutes * 60) * (negative ? -1 : 1)
        }
        guard index == bytes.count else { return nil }
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
