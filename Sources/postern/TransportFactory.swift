import Config
import Delivery
import DNS
import PosternCore
import Spool
import SMTP
import TLS

/// Builds the daemon's transports and router from the configuration: the one
/// place where configuration words (`submission`, `tls = "required"`) become
/// delivery behaviour (port 587, STARTTLS or fail, PKIX, AUTH).
enum TransportFactory {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// `spool`: where the MTA-STS cache and TLSRPT counts live; nil keeps
    /// policies in no cache and counts nothing (tools that only look).
    /// `storesPolicies`: false for tools that look while a daemon runs; only
    /// the daemon (which holds the spool lock) writes the cache.
    static func router(_ configuration: Configuration, spool: SpoolLayout? = nil, storesPolicies: Bool = true) throws -> Router {
        let factory = try Parts(configuration, spool: spool, storesPolicies: storesPolicies)
        var transports: [any Transport] = [try factory.direct(name: "direct", definition: nil)]
        if let relay = configuration.relay {
            transports.append(try factory.relay(name: "relay", server: relay, mode: configuration.relayTLS,
                                                credentials: nil, caFile: nil, ehloName: nil))
        }
        for definition in configuration.transports {
            transports.append(try factory.make(definition))
        }
        var router = Router(transports: transports, routes: configuration.routes.map(\.route),
                            defaultTransport: configuration.defaultTransportName)
        router.sessions = factory.sessions
        router.reports = factory.reports
        return router
    }

    /// What every transport shares: the resolver, the limits, the host name.
    private struct Parts {
        let configuration: Configuration
        let resolver: any Resolver
        let limits: ConnectLimits
        /// Idle SMTP sessions, shared by every SMTP transport (keyed by transport).
        let sessions: SessionCache
        /// The system's trust anchors, loaded once for every transport (a
        /// context serves many connections); a `ca_file` gets its own.
        let systemTLS: TLSContext
        /// MTA-STS policies for direct delivery; nil with `mta_sts.enabled = false`.
        let mtaSTS: MTASTSPolicies?
        let reports: TLSReportCounter?

        init(_ configuration: Configuration, spool: SpoolLayout?, storesPolicies: Bool) throws {
            self.configuration = configuration
            systemTLS = try TLSContext()
            let dns = configuration.dns
            let trustAD: Bool? = switch dns.trustAD {
            case .auto: nil
            case .yes: true
            case .no: false
            }
            resolver = SystemResolver(nameserver: dns.nameserver.map { (host: $0.host, port: $0.port) }, trustAD: trustAD)
            limits = ConnectLimits(perAddress: configuration.direct.connectTimeout, perAttempt: configuration.direct.connectBudget)
            mtaSTS = try Self.mtaSTS(configuration, resolver: resolver, systemTLS: systemTLS, spool: spool, stores: storesPolicies)
            reports = storesPolicies ? spool.map { TLSReportCounter(directory: $0.tlsReports) } : nil
            let queue = configuration.queue
            sessions = SessionCache(limits: .init(maxMessages: queue.reuseMaxMessages, idleTimeout: queue.reuseIdleTimeout,
                                                  maxAge: queue.reuseMaxAge))
        }

        static func mtaSTS(_ configuration: Configuration, resolver: any Resolver, systemTLS: TLSContext,
                           spool: SpoolLayout?, stores: Bool) throws -> MTASTSPolicies? {
            let settings = configuration.mtaSTS
            guard settings.enabled else { return nil }
            let context = settings.caFile.isEmpty ? systemTLS : try TLSContext(trustAnchors: .file(settings.caFile))
            let fetcher = HTTPSPolicyFetcher(resolver: resolver, context: context, port: UInt16(settings.port), timeout: settings.timeout)
            return MTASTSPolicies(resolver: resolver, fetcher: fetcher, cache: spool.map { MTASTSCache(directory: $0.mtaSTSCache) },
                                  storesFetched: stores)
        }

        func make(_ definition: TransportDefinition) throws -> any Transport {
            switch definition.kind {
            case .direct:
                return try direct(name: definition.name, definition: definition)
            case .relay:
                return try relay(name: definition.name, server: try need(definition.server, "host", definition),
                                 mode: definition.tls, credentials: definition.credentials,
                                 caFile: definition.caFile, ehloName: definition.ehloName)
            case .submission, .submissions:
                // RFC 8314 3: submission with TLS verified, and AUTH only inside it.
                return try relay(name: definition.name, server: try need(definition.server, "host", definition),
                                 mode: definition.kind == .submission ? .required : .implicit,
                                 credentials: definition.credentials, caFile: definition.caFile, ehloName: definition.ehloName)
            case .socks5:
                let proxy = try need(definition.proxy, "proxy", definition)
                let dialer = SOCKS5Dialer(proxyHost: proxy.host, proxyPort: proxy.port)
                return DirectTransport(name: definition.name, resolver: resolver, options: try opportunistic(definition.ehloName),
                                       dialer: dialer, port: UInt16(configuration.direct.port), family: family(definition.family),
                                       limits: limits, sessions: sessions, mtaSTS: mtaSTS, reports: reports)
            case .maildir:
                return MaildirTransport(name: definition.name, path: try need(definition.path, "path", definition), hostname: configuration.hostname)
            case .fail:
                return FailTransport(name: definition.name, code: definition.code, enhanced: definition.enhanced, text: definition.text)
            }
        }

        /// MX delivery under each domain's TLS policy: DANE, MTA-STS, and
        /// opportunistic STARTTLS without checks elsewhere (RFC 7435).
        func direct(name: String, definition: TransportDefinition?) throws -> any Transport {
            let global = configuration.direct
            let dialer = TCPDialer(bindIPv4: definition?.bindIPv4 ?? (global.bindIPv4.isEmpty ? nil : global.bindIPv4),
                                   bindIPv6: definition?.bindIPv6 ?? (global.bindIPv6.isEmpty ? nil : global.bindIPv6))
            return DirectTransport(name: name, resolver: resolver, options: try opportunistic(definition?.ehloName),
                                   dialer: dialer, port: UInt16(global.port), family: family(definition?.family ?? global.family),
                                   limits: limits, sessions: sessions, mtaSTS: mtaSTS, reports: reports)
        }

        func opportunistic(_ ehloName: String?) throws -> SMTPClientOptions {
            let tls = TLSClientOptions(verification: .none, enforce: false, context: systemTLS)
            return SMTPClientOptions(ehloName: ehloName ?? configuration.hostname, tlsMode: .opportunistic, tls: tls)
        }

        /// A smarthost named in the configuration is checked by name when TLS
        /// is required of it; opportunistic TLS protects against passive
        /// listeners only.
        func relay(name: String, server: RelayAddress, mode: TLSMode, credentials path: String?, caFile: String?,
                   ehloName: String?) throws -> any Transport {
            let verification: TLSVerification = mode == .required || mode == .implicit ? .pkix(hostnames: [server.host]) : .none
            let isLiteral = server.host.contains(":") || server.host.allSatisfy { $0.isNumber || $0 == "." }
            let context = try caFile.map { try TLSContext(trustAnchors: .file($0)) } ?? systemTLS
            let tls = TLSClientOptions(verification: verification, serverName: isLiteral ? nil : server.host, context: context)
            var options = SMTPClientOptions(ehloName: ehloName ?? configuration.hostname, tlsMode: mode, tls: tls)
            if let path {
                do {
                    let secret = try CredentialsFile.load(path)
                    options.credentials = Credentials(username: secret.username, password: secret.password)
                } catch {
                    throw Failure(description: "transport \(name): \(error)")
                }
            }
            return RelayTransport(name: name, host: server.host, port: server.port, options: options, limits: limits, sessions: sessions)
        }

        /// A key the parser has already required; checked again rather than
        /// trusted with `!`, since a crash here would stop all delivery.
        func need<Value>(_ value: Value?, _ key: String, _ definition: TransportDefinition) throws -> Value {
            guard let value else { throw Failure(description: "transport \(definition.name) has no \(key)") }
            return value
        }

        func family(_ family: AddressFamily) -> DirectTransport.Family {
            switch family {
            case .any: .any
            case .ipv4: .ipv4
            case .ipv6: .ipv6
            }
        }
    }
}
