import Foundation
import PosternCore

/// What an operator asks of queued messages (`postern kick`, `hold`, ...).
public enum ControlAction: Sendable, Equatable, CustomStringConvertible {
    /// Next attempt now, optionally through another transport.
    case kick(transport: String?)
    /// Move to `hold/`; never delivered until released.
    case hold(reason: String?)
    /// Move back from `hold/` to `queue/`.
    case release
    /// Remove without a DSN.
    case delete
    /// Fail every pending recipient permanently; a failure DSN follows.
    case fail(reason: String?)
    /// Set the REQUIRETLS tri-state: true, false, or nil for the default.
    case requireTLS(Bool?)

    public var name: String {
        switch self {
        case .kick: "kick"
        case .hold: "hold"
        case .release: "release"
        case .delete: "delete"
        case .fail: "fail"
        case .requireTLS: "requiretls"
        }
    }

    public var description: String { name }

    var json: JSONValue {
        var object: [String: JSONValue] = ["action": .string(name)]
        switch self {
        case .kick(let transport): object["transport"] = transport.map(JSONValue.string) ?? .null
        case .hold(let reason), .fail(let reason): object["reason"] = reason.map(JSONValue.string) ?? .null
        case .requireTLS(let value): object["value"] = value.map(JSONValue.bool) ?? .null
        case .release, .delete: break
        }
        return .object(object)
    }

    init(json: JSONValue) throws(EnvelopeError) {
        var reader = try JSONObjectReader(json, path: "action")
        switch try reader.requiredString("action") {
        case "kick": self = .kick(transport: try reader.string("transport"))
        case "hold": self = .hold(reason: try reader.string("reason"))
        case "release": self = .release
        case "delete": self = .delete
        case "fail": self = .fail(reason: try reader.string("reason"))
        case "requiretls": self = .requireTLS(try reader.bool("value"))
        case let other: throw reader.bad("action", "unknown action \"\(other)\"")
        }
    }
}

/// What an action did to one message.
public enum ControlOutcome: Sendable, Equatable {
    case changed
    /// Left alone, with the reason (`not held`, `no such message`).
    case unchanged(String)
}
