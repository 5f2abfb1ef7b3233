import PosternCore

/// Who may relay through the listener (RFC 5321 7.1: an open relay is
/// abused within hours). A null client delivers everything elsewhere, so
/// every recipient is relayed: the question is asked at each RCPT.
public struct RelayPolicy: Sendable, Equatable {
    /// Loopback clients may relay (the default: programs on this machine).
    public var trustLoopback = true
    /// Further networks whose clients may relay without AUTH.
    public var networks: [IPNetwork] = []

    public init(trustLoopback: Bool = true, networks: [IPNetwork] = []) {
        self.trustLoopback = trustLoopback
        self.networks = networks
    }

    /// Whether a client at `address` may relay before any AUTH.
    public func trusts(_ address: [UInt8]) -> Bool {
        (trustLoopback && IPNetwork.loopback.contains { $0.contains(address) }) || networks.contains { $0.contains(address) }
    }
}
