import Prometheus

/// The SMTP listener's metrics. Their series are made on first use through
/// the registry, which hands back the same series for the same labels.
extension PosternMetrics {
    /// Creates every series of the listener at 0, so that dashboards see them
    /// before the first session; called when a listener starts.
    public func declareSMTP() {
        for end in SMTPSessionEnd.allCases { _ = sessionCounter(end) }
        for reason in SMTPRejection.allCases { _ = rejectionCounter(reason) }
        _ = acceptedCounter
        _ = bytesCounter
        _ = activeGauge
        _ = blanksMadeCounter
    }

    public func smtpSessionStarted() {
        activeGauge.increment()
    }

    public func smtpSessionEnded(_ end: SMTPSessionEnd) {
        if end != .refused { activeGauge.decrement() }
        sessionCounter(end).increment()
    }

    public func smtpAccepted(bytes: Int) {
        acceptedCounter.increment()
        bytesCounter.increment(by: Int64(bytes))
    }

    public func smtpRejected(_ reason: SMTPRejection) {
        rejectionCounter(reason).increment()
    }

    /// A batch of blanks made ahead and handed to the pool (`BlankMaker`).
    public func smtpBlanksMade(_ count: Int) {
        blanksMadeCounter.increment(by: Int64(count))
    }

    private func sessionCounter(_ end: SMTPSessionEnd) -> Counter {
        registry.makeCounter(descriptor: MetricFamily.smtpSessions.descriptor, labels: [("result", end.rawValue)])
    }

    private func rejectionCounter(_ reason: SMTPRejection) -> Counter {
        registry.makeCounter(descriptor: MetricFamily.smtpMessages.descriptor,
                             labels: [("result", "rejected"), ("reason", reason.rawValue)])
    }

    private var acceptedCounter: Counter {
        registry.makeCounter(descriptor: MetricFamily.smtpMessages.descriptor, labels: [("result", "accepted"), ("reason", "")])
    }

    private var bytesCounter: Counter {
        registry.makeCounter(descriptor: MetricFamily.smtpBytes.descriptor)
    }

    private var blanksMadeCounter: Counter {
        registry.makeCounter(descriptor: MetricFamily.smtpBlanksMade.descriptor)
    }

    private var activeGauge: Gauge {
        registry.makeGauge(descriptor: MetricFamily.smtpSessionsActive.descriptor)
    }
}
