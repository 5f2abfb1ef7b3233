import PosternCore

/// The `fail` transport: every recipient routed here gets the configured
/// reply, as if a server had given it, without any connection. A 5xx code
/// bounces at once (with a DSN), a 4xx defers until the routes change or the
/// message expires. Admins use it to forbid destinations.
public struct FailTransport: Transport {
    public let name: String
    public let code: Int
    public let enhanced: String?
    public let text: String

    public init(name: String, code: Int, enhanced: String?, text: String) {
        self.name = name
        self.code = code
        self.enhanced = enhanced
        self.text = text
    }

    public func deliver(_ request: DeliveryRequest, cancellation: Cancellation) -> AttemptReport {
        // The reply as a server would word it, so logs, DSNs and `explain` read the same.
        let reply = ([String(code)] + (enhanced.map { [$0] } ?? []) + [text]).joined(separator: " ")
        var report = AttemptReport.all(request.recipients, code >= 500 ? .failed : .deferred, code: code, enhanced: enhanced,
                                       text: reply)
        report.tls = "none"
        return report
    }
}
