import Testing
@testable import PosternBase
@testable import PosternCore

struct DurationTextTests {
    /// Durations combine units from largest to smallest.
    @Test(arguments: [("90s", 90.0), ("7m30s", 450.0), ("2h", 7200.0), ("1d12h", 129_600.0), ("250ms", 0.25), ("0s", 0.0)])
    func parses(_ text: String, _ seconds: Double) {
        #expect(DurationText.parse(text) == seconds)
    }

    /// Bare numbers, unknown units, repeated or misordered units are refused.
    @Test(arguments: ["", "30", "5x", "1s2m", "1h1h", "h", "-5s", "1.5h"])
    func refuses(_ text: String) {
        #expect(DurationText.parse(text) == nil)
    }
}
