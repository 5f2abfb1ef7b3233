import PosternCore
import SpoolDrop

/// One policy domain's TLSRPT counts for one UTC day: the content of
/// `SPOOL/tlsrpt/DAY/DOMAIN.json` (spool-layout.md 11), and its rendering as
/// an RFC 8460 4.4 report.
public struct TLSReportDay: Sendable, Equatable {
    public struct FailureKey: Sendable, Hashable {
        public var resultType: String
        public var host: String
        public var ip: String
    }

    public struct Counts: Sendable, Equatable {
        public var successful = 0
        public var failed = 0
        public var failures: [FailureKey: Int] = [:]
        /// One example of what went wrong per key (the last), for `additional-information`.
        public var details: [FailureKey: String] = [:]
        public var hosts: Set<String> = []
    }

    public var domain: String
    public var day: String
    /// By RFC 8460 policy type: `tlsa`, `sts`, `no-policy-found`.
    public var policies: [String: Counts] = [:]

    public init(domain: String, day: String) {
        self.domain = domain
        self.day = day
    }

    mutating func add(_ event: TLSReportCounter.Event) {
        let type = TLSReportCounter.policyType(event.policy)
        var counts = policies[type] ?? Counts()
        if let host = event.host { counts.hosts.insert(host) }
        if let failure = event.failure {
            counts.failed += 1
            let key = FailureKey(resultType: failure.resultType, host: event.host ?? "", ip: event.ip ?? "")
            counts.failures[key, default: 0] += 1
            switch failure {
            case .validationFailure(let text), .tlsaInvalid(let text), .stsPolicyFetchError(let text):
                counts.details[key] = String(TerminalText.safe(text).prefix(300))
            default: break
            }
        } else {
            counts.successful += 1
        }
        policies[type] = counts
    }

    /// The stored form.
    var json: JSONValue {
        .object(["domain": .string(domain), "day": .string(day),
                 "policies": .object(policies.mapValues { counts in
                     .object(["successful": .integer(Int64(counts.successful)), "failed": .integer(Int64(counts.failed)),
                              "mx_hosts": .array(counts.hosts.sorted().map(JSONValue.string)),
                              "failures": .array(counts.failures.keys.sorted { ($0.resultType, $0.host, $0.ip) < ($1.resultType, $1.host, $1.ip) }.map { key in
                                  var object: [String: JSONValue] = ["result_type": .string(key.resultType), "host": .string(key.host),
                                                                     "ip": .string(key.ip), "count": .integer(Int64(counts.failures[key]!))]
                                  if let detail = counts.details[key] { object["detail"] = .string(detail) }
                                  return .object(object)
                              })])
                 })])
    }

    static func load(_ path: String) -> TLSReportDay? {
        guard let bytes = MTASTSCache.read(path), case .object(let root)? = try? JSONValue.decode(bytes),
              case .string(let domain)? = root["domain"], case .string(let day)? = root["day"],
              case .object(let policies)? = root["policies"] else { return nil }
        var result = TLSReportDay(domain: domain, day: day)
        for (type, value) in policies {
            guard case .object(let object) = value, case .integer(let successful)? = object["successful"],
                  case .integer(let failed)? = object["failed"] else { return nil }
            var counts = Counts(successful: Int(successful), failed: Int(failed))
            if case .array(let hosts)? = object["mx_hosts"] {
                for case .string(let host) in hosts { counts.hosts.insert(host) }
            }
            if case .array(let failures)? = object["failures"] {
                for case .object(let failure) in failures {
                    guard case .string(let type)? = failure["result_type"], case .string(let host)? = failure["host"],
                          case .string(let ip)? = failure["ip"], case .integer(let count)? = failure["count"] else { return nil }
                    let key = FailureKey(resultType: type, host: host, ip: ip)
                    counts.failures[key] = Int(count)
                    if case .string(let detail)? = failure["detail"] { counts.details[key] = detail }
                }
            }
            result.policies[type] = counts
        }
        return result
    }

    /// The RFC 8460 4.4 report of this day for `organization` (this host's
    /// name): what `postern tlsrpt` prints and what would be mailed to the
    /// domain's `rua`.
    public func report(organization: String, contact: String) -> JSONValue {
        let policies: [JSONValue] = self.policies.keys.sorted().map { type in
            let counts = self.policies[type]!
            var policy: [String: JSONValue] = ["policy-type": .string(type), "policy-domain": .string(domain)]
            if !counts.hosts.isEmpty { policy["mx-host"] = .array(counts.hosts.sorted().map(JSONValue.string)) }
            let details: [JSONValue] = counts.failures.keys.sorted { ($0.resultType, $0.host, $0.ip) < ($1.resultType, $1.host, $1.ip) }.map { key in
                var object: [String: JSONValue] = ["result-type": .string(key.resultType),
                                                   "failed-session-count": .integer(Int64(counts.failures[key]!))]
                if !key.host.isEmpty { object["receiving-mx-hostname"] = .string(key.host) }
                if !key.ip.isEmpty { object["receiving-ip"] = .string(key.ip) }
                if let detail = counts.details[key] { object["failure-reason-code"] = .string(detail) }
                return .object(object)
            }
            var entry: [String: JSONValue] = [
                "policy": .object(policy),
                "summary": .object(["total-successful-session-count": .integer(Int64(counts.successful)),
                                    "total-failure-session-count": .integer(Int64(counts.failed))]),
            ]
            if !details.isEmpty { entry["failure-details"] = .array(details) }
            return .object(entry)
        }
        return .object([
            "organization-name": .string(organization),
            "date-range": .object(["start-datetime": .string(day + "T00:00:00Z"), "end-datetime": .string(day + "T23:59:59Z")]),
            "contact-info": .string(contact),
            "report-id": .string("\(day)_\(domain)@\(organization)"),
            "policies": .array(policies),
        ])
    }
}
