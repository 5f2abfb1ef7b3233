import Foundation
import TLS

extension SMTPClient {
    /// AUTH (RFC 4954) with the first configured mechanism the server offers.
    ///
    /// Credentials never travel without TLS unless the configuration says so
    /// (RFC 4954 4 and 14). SCRAM-PLUS is chosen only when TLS gives a channel
    /// binding to bind to.
    func authenticate(_ credentials: Credentials) throws(SMTPError) {
        guard facts.tls != nil || options.allowAuthenticationWithoutTLS else {
            throw SMTPError(.refused(.authenticationWithoutTLS), command: "AUTH")
        }
        let binding = (stream as? TLSStream)?.channelBinding.map { ChannelBinding(type: $0.type, data: $0.data) }
        let offered = facts.extensions.authMechanisms
        guard let name = options.authMechanisms.first(where: { offered.contains($0.rawValue) && ($0 != .scramSHA256Plus || binding != nil) }) else {
            throw SMTPError(.refused(.noCommonAuthMechanism(offered: offered)), command: "AUTH")
        }
        var mechanism: any SASLMechanism
        do {
            mechanism = try SASL.mechanism(name, credentials: credentials, channelBinding: binding,
                                           serverOffersPlus: offered.contains(SASLMechanismName.scramSHA256Plus.rawValue))
        } catch {
            throw SMTPError(.refused(.authentication("\(error)")), command: "AUTH")
        }
        var line = "AUTH \(name.rawValue)"
        do {
            // RFC 4954 4: "=" stands for an empty initial response.
            if let initial = try mechanism.initialResponse() {
                line += " " + (initial.isEmpty ? "=" : Data(initial).base64EncodedString())
            }
        } catch {
            throw SMTPError(.refused(.authentication("\(error)")), command: "AUTH")
        }
        var reply = try command(line, timeout: options.timeouts.command, traced: "AUTH \(name.rawValue) ****")
        // A SASL exchange has a few steps; a server that keeps challenging is broken.
        for _ in 0..<8 {
            switch reply.code {
            case 235:
                do { try mechanism.finish(with: nil) } catch {
                    throw SMTPError(.refused(.authentication("\(error)")), command: "AUTH")
                }
                facts.authMechanism = name.rawValue
                return
            case 334:
                let text = reply.lines.first ?? ""
                guard let challenge = Data(base64Encoded: text) else {
                    throw SMTPError(.protocolViolation("AUTH challenge is not base64"), command: "AUTH")
                }
                let response: [UInt8]
                do {
                    response = try mechanism.respond(to: Array(challenge))
                } catch {
                    // RFC 4954 4: "*" cancels the exchange.
                    _ = try? command("*", timeout: options.timeouts.command)   // the exchange failed anyway
                    throw SMTPError(.refused(.authentication("\(error)")), command: "AUTH")
                }
                reply = try command(Data(response).base64EncodedString(), timeout: options.timeouts.command, traced: "****")
            default:
                throw SMTPError(.reply(reply), command: "AUTH")
            }
        }
        throw SMTPError(.protocolViolation("AUTH exchange did not end"), command: "AUTH")
    }
}
