import PosternCore

extension KeyTable {
    /// The `[smtp]` table: the listener of `postern run` (README, "SMTP listener").
    static let smtpKeys: [KeyDefinition] = [
        .make("smtp.listen", summary: "array of \"IP:PORT\" or \"[IPv6]:PORT\"", default: .strings([]),
              example: .strings(["127.0.0.1:25", "[::1]:25"]), \.smtp.listen,
              decode: { (scalar: Scalar) throws(ValueProblem) -> [RelayAddress] in
                  guard case .strings(let texts) = scalar else {
                      throw .wrongType(expected: "an array of addresses such as [\"127.0.0.1:25\"]", got: scalar)
                  }
                  var addresses: [RelayAddress] = []
                  for text in texts {
                      addresses.append(try RelayAddress.listenAddress(text, example: "127.0.0.1:25"))
                  }
                  return addresses
              },
              encode: { .strings($0.map(\.description)) },
              doc: "Where postern run accepts mail over SMTP; [] (the default) runs no listener.",
              details: [
                  "Each accepted message is written into drop/ like a postern drop, and the 250 after its",
                  "data is sent once it is durable. Loopback clients may relay; for other addresses see",
                  "smtp.relay_networks and smtp.users. Read at start (a reload keeps the listener as it was).",
              ]),
        .make("smtp.relay_networks", summary: "array of \"ADDRESS\" or \"ADDRESS/LENGTH\"", default: .strings([]),
              example: .strings(["10.0.0.0/8", "2001:db8::/32"]), \.smtp.relayNetworks,
              decode: { (scalar: Scalar) throws(ValueProblem) -> [String] in
                  guard case .strings(let texts) = scalar else {
                      throw .wrongType(expected: "an array of networks such as [\"10.0.0.0/8\"]", got: scalar)
                  }
                  // The listener's own parser decides (IPNetwork), so what passes here is what it matches.
                  for text in texts where IPNetwork(text) == nil {
                      throw ValueProblem("\(TOMLText.quoted(text)) is not an address or a network such as \"10.0.0.0/8\"")
                  }
                  return texts
              },
              encode: { .strings($0) },
              doc: "Clients in these networks may relay through the listener without AUTH.",
              details: ["Everyone else (not loopback, not authenticated) gets 554 5.7.1 at RCPT TO."]),
        .boolean("smtp.trust_loopback", default: true, \.smtp.trustLoopback,
                 doc: "Whether loopback clients (127.0.0.0/8, ::1) may relay without AUTH.",
                 details: ["false: they need smtp.relay_networks or AUTH like anyone else."]),
        .text("smtp.tls_certificate", summary: "a PEM file, or \"\" for no STARTTLS", default: .string(""),
              \.smtp.tlsCertificate, parse: absolutePath, encode: { $0 },
              doc: "The certificate chain the listener offers STARTTLS with (the server's certificate first).",
              details: ["Needs smtp.tls_key. Read at start."]),
        .text("smtp.tls_key", summary: "a PEM file, or \"\"", default: .string(""), \.smtp.tlsKey,
              parse: absolutePath, encode: { $0 },
              doc: "The private key of smtp.tls_certificate; readable by the daemon's user only."),
        .make("smtp.users", summary: "array of credentials files", default: .strings([]),
              example: .strings(["/etc/postern/smtp-alice.credentials"]), \.smtp.users,
              decode: { (scalar: Scalar) throws(ValueProblem) -> [String] in
                  guard case .strings(let texts) = scalar else {
                      throw .wrongType(expected: "an array of paths", got: scalar)
                  }
                  for text in texts { _ = try absolutePath(text) }
                  return texts
              },
              encode: { .strings($0) },
              doc: "AUTH users of the listener: one credentials file each (username and password, mode 0600).",
              details: [
                  "The same format as a transport's credentials. AUTH PLAIN and LOGIN are offered after",
                  "STARTTLS only, so they need smtp.tls_certificate; an authenticated client may relay.",
              ]),
        .integer("smtp.max_connections", default: 100, minimum: 1, \.smtp.maxConnections,
                 doc: "The most SMTP sessions at once; more are answered 421 and closed."),
        .integer("smtp.max_connections_per_client", default: 20, minimum: 1, \.smtp.maxConnectionsPerClient,
                 doc: "The most SMTP sessions at once from one client address."),
        .integer("smtp.max_errors", default: 10, minimum: 1, \.smtp.maxErrors,
                 doc: "Error replies (4xx, 5xx) a session may earn before it is closed with 421."),
        .duration("smtp.timeout", default: "5m", positive: true, \.smtp.timeout,
                  doc: "How long the listener waits for a client's next command or data (RFC 5321 4.5.3.2.7: 5 minutes at least).",
                  details: ["Also the limit for each read during DATA and for the TLS handshake."]),
    ]

    /// An absolute path without control characters, or "".
    @Sendable static func absolutePath(_ text: String) throws(ValueProblem) -> String {
        guard text.isEmpty || (text.hasPrefix("/") && !text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ValueProblem("\(TOMLText.quoted(text)) is not an absolute path")
        }
        return text
    }
}
