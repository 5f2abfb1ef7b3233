import Foundation
import Testing
@testable import PosternBase
@testable import PosternCore

/// RFC 3339 timestamps, parsed by hand: checked against Foundation's formatter as an oracle.
struct TimestampTests {
    /// format then parse is the identity on whole seconds, across eras and leap days.
    @Test func roundTrip() {
        var generator = SystemRandomNumberGenerator()
        let fixed: [Int64] = [0, 951_782_400, 1_709_164_800, 4_107_542_399, 253_402_300_799, -86_400]
        for seconds in fixed + (0..<2000).map({ _ in Int64.random(in: 0...4_102_444_800, using: &generator) }) {
            let date = Date(timeIntervalSince1970: Double(seconds))
            #expect(Timestamp.parse(Timestamp.format(date)) == date, "\(seconds)")
        }
    }

    /// The same instants as ISO8601DateFormatter reads them, offsets and fractions included.
    @Test(arguments: ["2026-11-29T03:17:34Z", "2026-11-29T04:17:34+01:00", "2026-11-28T22:47:34-04:30",
                      "2024-02-29T23:59:59Z", "2026-11-29T03:17:34.250Z", "1999-12-31T23:59:59.5+00:00"])
    func agreesWithFoundation(text: String) throws {
        let oracle = ISO8601DateFormatter()
        oracle.formatOptions = text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        let expected = try #require(oracle.date(from: text))
        let parsed = try #require(Timestamp.parse(text))
        #expect(abs(parsed.timeIntervalSince1970 - expected.timeIntervalSince1970) < 0.000_001)
    }

    /// Log lines carry milliseconds.
    @Test func milliseconds() {
        let date = Date(timeIntervalSince1970: 1_795_922_254.25)
        #expect(Timestamp.format(date, milliseconds: true) == "2026-11-29T03:17:34.250Z")
        #expect(Timestamp.parse(Timestamp.format(date, milliseconds: true)) == date)
    }

    /// RFC 3339 5.6 allows lower-case t and z.
    @Test func lowerCase() {
        #expect(Timestamp.parse("2026-11-29t03:17:34z") != nil)
        #expect(Timestamp.parse("2026-11-29t03:17:34z") == Timestamp.parse("2026-11-29T03:17:34Z"))
    }

    @Test(arguments: ["", "2026-11-29", "2026-11-29T03:17:34", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                      "2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-29T24:00:00Z", "2026-11-29T03:60:00Z",
                      "2026-11-29T03:17:34Zjunk", "2026-11-29T03:17:34.Z", "2026-11-29T03:17:34+0100",
                      "+2026-11-29T03:17:34Z", "2026-11-29 03:17:34Z", "２０２６-11-29T03:17:34Z"])
    func refused(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    /// The formatter's calendar agrees with the C library's `gmtime_r` across four centuries,
    /// before 1970 included.
    @Test func formatAgreesWithGmtime() {
        var generator = SystemRandomNumberGenerator()
        let samples = [0, -1, 86_399, 86_400, 951_782_400, 4_107_542_399] + (0..<2000).map { _ in
            Int.random(in: -2_208_988_800...7_258_118_399, using: &generator)
        }
        for seconds in samples {
            var time = time_t(seconds)
            var parts = tm()
            gmtime_r(&time, &parts)
            let expected = String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                                  Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
            #expect(Timestamp.format(epochSeconds: Double(seconds)) == expected, "\(seconds)")
        }
    }
}
