import Delivery
import Monitoring
import Scheduler

extension Daemon {
    /// Counts one finished job: each connection and its TLS, the attempt's
    /// duration (mox's histogram), and each recipient's outcome.
    func record(_ report: AttemptReport, attempt: Int, verdicts: [(Verdict, Int?)]) {
        for connection in report.connections {
            metrics.connection(PosternMetrics.ConnectionResult(rawValue: connection.result.rawValue) ?? .error)
            if let tls = connection.tls, let outcome = PosternMetrics.TLSOutcome(rawValue: tls.rawValue) { metrics.tls(outcome) }
        }
        metrics.deliveryDuration(seconds: report.duration, attempt: attempt, transport: report.transport ?? "none",
                                 tlsMode: PosternMetrics.TLSMode(rawValue: report.tlsMode ?? "none") ?? .plaintext,
                                 result: Self.attemptResult(report))
        for (verdict, code) in verdicts {
            guard let result = PosternMetrics.RecipientResult(rawValue: verdict.rawValue) else { continue }
            metrics.delivery(result: result, statusClass: PosternMetrics.StatusClass(replyCode: code))
        }
    }

    /// The attempt as mox's delivery histogram labels it: all delivered, some,
    /// a permanent refusal, or why nothing could be delivered.
    static func attemptResult(_ report: AttemptReport) -> PosternMetrics.AttemptResult {
        let outcomes = report.results.map(\.outcome)
        if !outcomes.isEmpty, outcomes.allSatisfy({ $0 == .delivered }) { return .ok }
        if outcomes.contains(.delivered) { return .okPartial }
        if outcomes.contains(.failed) { return .permError }
        switch report.connections.last?.result {
        case .timeout?: return .timeout
        case .canceled?: return .canceled
        case .error?: return .error
        default: return .tempError
        }
    }
}
