@testable import Daemon
import Foundation
import Logging
import PosternCore
import PosternTesting
import Spool
import Testing

/// What a failure DSN returns of the original (RFC 3461 4.3 RET against
/// `dsn.return_full_up_to`) and the envelope ID it carries (RFC 3464 2.2.1).
struct SpoolDSNTests {
    static let body = "the body line only a full return carries"

    /// Fails the planted message's recipient and returns the DSN the spool got.
    static func failureDSN(_ settings: SpoolDSN.Settings, edit: (inout Envelope) -> Void) throws -> String {
        let spool = try TemporarySpool()
        let envelope = try spool.plant(.queue, message: "Subject: returned\r\n\r\n\(body)\r\n") {
            $0.recipients[0].state = .failed
            $0.recipients[0].lastResult = DeliveryResult(time: Date(), code: 550, enhanced: "5.1.1", text: "550 5.1.1 no such user",
                                                         permanent: true)
            edit(&$0)
        }
        let dsn = SpoolDSN(layout: spool.layout, settings: settings, logger: Logger(label: "test"))
        #expect(dsn.failed(envelope, recipients: envelope.recipients))
        let id = try #require(try spool.names(.drop).first)
        return String(decoding: try spool.read("drop/\(id)/message"), as: UTF8.self)
    }

    /// RET=HDRS returns the header section only, however large
    /// dsn.return_full_up_to; RET=FULL returns the whole message even when
    /// dsn.return_full_up_to is 0; without RET, dsn.return_full_up_to decides.
    @Test(arguments: [
        (DSNReturn?.some(.hdrs), 1 << 20, false),
        (DSNReturn?.some(.full), 0, true),
        (DSNReturn?.none, 0, false),
        (DSNReturn?.none, 1 << 20, true),
    ])
    func returnedContent(_ ret: DSNReturn?, _ returnFullUpTo: Int, _ full: Bool) throws {
        let text = try Self.failureDSN(.init(hostname: "test.example", returnFullUpTo: returnFullUpTo)) { $0.dsnReturn = ret }
        #expect(text.contains("Subject: returned"))
        #expect(text.contains(Self.body) == full)
        #expect(text.contains("Content-Type: text/rfc822-headers") == !full)
        #expect(text.contains("Content-Type: message/rfc822") == full)
    }

    /// RET=FULL is honoured up to its own bound, and never for REQUIRETLS
    /// (RFC 8689 4.4): headers only then.
    @Test func fullReturnBounds() throws {
        var settings = SpoolDSN.Settings(hostname: "test.example")
        settings.requestedFullUpTo = 10
        #expect(!(try Self.failureDSN(settings) { $0.dsnReturn = .full }).contains(Self.body))
        #expect(!(try Self.failureDSN(.init(hostname: "test.example")) { $0.dsnReturn = .full; $0.requireTLS = true }).contains(Self.body))
    }

    /// The ENVID comes back xtext-decoded as the first per-message field
    /// (RFC 3464 2.2.1); without one there is no such field. An SMTPUTF8
    /// original's headers go back as message/global-headers (RFC 6533).
    @Test func envelopeIDAndInternationalHeaders() throws {
        let text = try Self.failureDSN(.init(hostname: "test.example")) {
            $0.envelopeID = "Order+2042+3Dok"
            $0.dsnReturn = .hdrs
            $0.smtputf8 = true
        }
        #expect(text.contains("Content-Type: message/global-delivery-status\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                              + "Original-Envelope-Id: Order 42=ok\r\nReporting-MTA: dns; test.example\r\n"))
        #expect(text.contains("Content-Type: message/global-headers"))
        #expect(!text.contains(Self.body))
        #expect(!(try Self.failureDSN(.init(hostname: "test.example")) { _ in }).contains("Original-Envelope-Id"))
    }
}
