/// Seconds with three decimals (`0.042`), for log lines: `String(format:)`
/// goes through Foundation's locale machinery, once per delivery.
public enum Milliseconds {
    public static func seconds(_ value: Double) -> String {
        guard value.isFinite else { return "0.000" }
        let thousandths = Int64((max(0, value) * 1000).rounded())
        let fraction = String(thousandths % 1000)
        return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
