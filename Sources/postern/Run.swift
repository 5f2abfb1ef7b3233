import ArgumentParser
import Config
import Daemon
import Delivery
import DNS
import Foundation
import Logging
import Monitoring
import PosternCore
import Scheduler
import SMTP
import SMTPServer
import Spool
import TLS

extension Postern {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run the delivery daemon on the spool (the main job).",
            discussion: """
                Takes the spool's lock (one daemon per spool), rebuilds its index with the scanner, \
                accepts drops as they arrive (inotify), and delivers: the first attempt at once, then \
                retries with backoff (queue.backoff_base, doubling, with jitter) up to \
                queue.max_attempts, at most queue.per_domain deliveries per destination domain and \
                queue.max_concurrent in all. Each delivery goes through the transport of the \
                first [[routes]] entry that matches it; with none, through `relay` when it is set, \
                otherwise directly to each recipient domain's MX hosts (DNS through the system \
                resolver, or dns.nameserver). Failed and delayed mail is reported to its sender \
                with a DSN dropped into the same spool. Logs one line per event to standard error.

                SIGTERM or SIGINT: stop starting attempts, let those in progress finish within \
                queue.shutdown_grace, abort the rest as temporary failures, exit 0. SIGHUP: re-read \
                the configuration (metrics.listen excepted).

                Prometheus metrics are served at http://metrics.listen/metrics (default \
                127.0.0.1:9464; "" turns them off): queue depth by state, oldest message age, \
                drops, deliveries by result and status class, DSNs, connections, TLS, attempt \
                durations. See the README for the list and a scrape configuration.

                With smtp.listen set, it also accepts mail over SMTP on those addresses (threads of \
                its own): each message is written into drop/ like a postern drop and answered 250 \
                once durable. Loopback clients may relay; others need smtp.relay_networks or AUTH \
                (smtp.users, over STARTTLS with smtp.tls_certificate). See the README, "SMTP listener".

                EXIT STATUS
                  0 stopped by a signal; 69 the metrics or an SMTP address cannot be listened on;
                  73 no spool; 75 another daemon holds the spool; 78 bad configuration.
                """
        )

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: ConfigOptions

        @Option(help: ArgumentHelp("Log format: logfmt or json (default: log.format).", valueName: "format"))
        var logFormat: String?

        func validate() throws {
            if let logFormat, LogfmtHandler.Format(rawValue: logFormat) == nil {
                throw ValidationError("--log-format must be logfmt or json")
            }
        }

        func run() throws {
            let configuration = try options.load()
            let format = logFormat.flatMap(LogfmtHandler.Format.init) ?? LogfmtHandler.Format(rawValue: configuration.log.format.rawValue) ?? .logfmt
            LoggingSystem.bootstrap { LogfmtHandler(label: $0, format: format) }
            let logger = Logger(label: "postern")
            for warning in configuration.unreachableRoutes() {
                logger.warning("configuration", metadata: ["problem": "\(warning)"])
            }
            let settings: DaemonSettings
            do {
                settings = try Self.settings(from: configuration, spool: global.layout)
            } catch {
                warn("\(error)")
                throw ExitCode(78)
            }
            let reload: () -> DaemonSettings? = {
                do {
                    return try Self.settings(from: options.load(), spool: global.layout)
                } catch {
                    logger.error("configuration", metadata: ["error": "\(error)"])
                    return nil
                }
            }
            let metrics = PosternMetrics()
            var server: MetricsServer?
            if let listen = configuration.metrics.listen {
                let candidate = MetricsServer(host: listen.host, port: listen.port, metrics: metrics, logger: logger)
                do {
                    try candidate.start()
                } catch {
                    warn("cannot serve metrics on \(listen): \(error) (set metrics.listen, or \"\" to turn metrics off)")
                    throw ExitCode(ExitStatus.unavailable.rawValue)
                }
                server = candidate
            }
            defer { server?.stop() }
            let listener: SMTPListener?
            // Blanks serve only a listener's messages (BlankPool).
            let inbox = QueueInbox(blanks: configuration.smtp.listen.isEmpty ? nil : BlankPool())
            do {
                listener = try SMTPListenerFactory.listener(configuration, layout: global.layout, logger: logger,
                                                            metrics: metrics, inbox: inbox)
            } catch {
                warn("\(error)")
                throw ExitCode(78)
            }
            do {
                try listener?.start()
            } catch {
                warn("\(error)")
                throw ExitCode(error.status.rawValue)
            }
            defer { listener?.stop() }
            do {
                // One account of the spool's condition for the daemon and its DSNs.
                let trouble = SpoolTrouble(layout: global.layout, logger: logger, metrics: metrics)
                try Daemon(layout: global.layout, settings: settings, logger: logger,
                           dsn: SpoolDSN(layout: global.layout, settings: Self.dsnSettings(configuration), logger: logger,
                                         metrics: metrics, trouble: trouble),
                           metrics: metrics, notifier: ServiceNotifier(environment: ProcessInfo.processInfo.environment),
                           trouble: trouble, inbox: inbox, reload: reload).run()
            } catch let error as SpoolError {
                throw failure(error)
            } catch {
                warn("\(error)")
                throw ExitCode(ExitStatus.software.rawValue)
            }
        }

        /// What DSNs are sent with.
        static func dsnSettings(_ configuration: Configuration) -> SpoolDSN.Settings {
            let dsn = configuration.dsn
            return SpoolDSN.Settings(hostname: configuration.hostname, from: dsn.from, returnFullUpTo: dsn.returnFullUpTo,
                                     postmaster: dsn.postmaster.isEmpty ? nil : dsn.postmaster,
                                     copyFailuresToPostmaster: dsn.copyFailuresToPostmaster)
        }

        /// `[local]`, with the host name that completes local target names.
        static func localSettings(_ configuration: Configuration) -> LocalRecipients.Settings {
            let local = configuration.local
            return LocalRecipients.Settings(domains: local.domains, aliasesPath: local.aliases,
                                            adminAddress: local.adminAddress, hostname: configuration.hostname)
        }

        /// The daemon's view of the configuration.
        static func settings(from configuration: Configuration, spool: SpoolLayout) throws -> DaemonSettings {
            var settings = DaemonSettings(hostname: configuration.hostname)
            let queue = configuration.queue
            settings.limits = SchedulerLimits(maxConcurrent: queue.maxConcurrent, perDomain: queue.perDomain)
            settings.maxAttempts = queue.maxAttempts
            settings.backoff = Backoff(base: queue.backoffBase, factor: queue.backoffFactor, jitter: queue.jitter)
            settings.keepRetired = queue.keepRetired
            settings.shutdownGrace = queue.shutdownGrace
            settings.attemptTimeout = queue.attemptTimeout
            settings.maxMessageSize = configuration.drop.maxMessageSize
            settings.maxRecipients = configuration.drop.maxRecipients
            settings.local = localSettings(configuration)
            settings.delayWarningAttempts = configuration.dsn.delayWarningAttempts
            settings.router = try TransportFactory.router(configuration, spool: spool)
            return settings
        }
    }
}

