import Config
import Daemon
import Foundation
import Logging
import Monitoring
import PosternCore
import SMTPServer
import Spool
import TLS

/// Builds the SMTP listener of `postern run` from `[smtp]`: the one place
/// where its configuration words become listener settings.
///
/// Why inside `postern run` and not a separate `postern smtpd`: the daemon is
/// the spool's owner, so its drops are trusted (renamed into the queue, not
/// adopted: spool-layout.md 3) and the listener needs no set-group-ID
/// program; it shares the daemon's configuration, reload, log and metrics
/// endpoint; and one unit, one process, is what a null client's admin
/// expects. It runs on threads of its own (`SMTPListener`), never on the
/// daemon's event loop, and queues its messages itself: the daemon learns of
/// each through a `QueueInbox`, without reading the spool.
enum SMTPListenerFactory {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// nil when `smtp.listen` is empty.
    static func listener(_ configuration: Configuration, layout: SpoolLayout, logger: Logger,
                         metrics: PosternMetrics, inbox: QueueInbox?) throws(Failure) -> SMTPListener? {
        let smtp = configuration.smtp
        guard !smtp.listen.isEmpty else { return nil }
        var session = SessionSettings(hostname: configuration.hostname, maxMessageSize: configuration.drop.maxMessageSize,
                                      maxRecipients: configuration.drop.maxRecipients)
        session.maxErrors = smtp.maxErrors
        // Each one parsed when the configuration was read (smtp.relay_networks).
        session.relay = RelayPolicy(trustLoopback: smtp.trustLoopback, networks: smtp.relayNetworks.compactMap(IPNetwork.init))
        for path in smtp.users {
            do throws(ConfigurationError) {
                let secret = try CredentialsFile.load(path)
                session.users[secret.username] = Array(secret.password.utf8)
            } catch {
                throw Failure(description: "smtp.users: \(error)")
            }
        }
        var tls: TLSServerContext?
        switch (smtp.tlsCertificate.isEmpty, smtp.tlsKey.isEmpty) {
        case (true, true):
            guard smtp.users.isEmpty else {
                throw Failure(description: "smtp.users needs smtp.tls_certificate and smtp.tls_key: AUTH is offered over TLS only")
            }
        case (false, false):
            do throws(TLSError) {
                tls = try TLSServerContext(certificateChain: smtp.tlsCertificate, privateKey: smtp.tlsKey)
            } catch {
                throw Failure(description: "smtp.tls_certificate: \(error)")
            }
            session.tlsAvailable = true
        default:
            throw Failure(description: "smtp.tls_certificate and smtp.tls_key go together")
        }
        var settings = SMTPListener.Settings(session: session, addresses: smtp.listen.map { ($0.host, $0.port) })
        settings.maxConnections = smtp.maxConnections
        settings.maxConnectionsPerClient = smtp.maxConnectionsPerClient
        settings.timeout = smtp.timeout
        settings.tls = tls
        if let inbox {
            settings.handoff = QueueHandoff(takes: inbox.takes, expect: inbox.expect,
                                            queued: { id, envelope in inbox.queued(id, envelope: envelope) },
                                            unsure: inbox.unsure)
            settings.handoff?.blanks = inbox.blanks
        }
        return SMTPListener(settings: settings, layout: layout, logger: logger, metrics: metrics)
    }
}
