import DNS
import PosternCore
import TLS

/// Fetches a domain's MTA-STS policy text: one contact with the outside world
/// behind a protocol, with the HTTPS implementation below and a test double
/// that returns what a test says.
public protocol MTASTSFetcher: Sendable {
    /// The body of `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`.
    /// Blocks: called on delivery threads only.
    func fetch(_ domain: String) throws(MTASTSFetchError) -> [UInt8]
}

public struct MTASTSFetchError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The policy fetch over the project's own TLS stream, with a minimal HTTP
/// GET: why not URLSession (RFC 8461 3.3 needs PKIX against the system store,
/// no redirects, 64 KiB, a short timeout). FoundationNetworking's URLSession
/// is libcurl underneath, with its own OpenSSL setup, its own threads, and
/// redirects refused only through a delegate; the whole exchange here is one
/// request and one response, and `TLSStream` already does PKIX with the
/// system store and bounded waits, as the rest of delivery does.
///
/// The request is HTTP/1.0 with a Host header: an HTTP/1.1 server answers it
/// without chunked encoding, so the body is what arrives until the server
/// closes (or Content-Length says), and no chunk parser is needed.
///
/// `port` and `trust` exist for tests, which point the fetch at a loopback
/// HTTPS server with a test CA (`mta_sts.https_port`, `mta_sts.ca_file`); the
/// address of `mta-sts.DOMAIN` comes from the same resolver as MX hosts.
public struct HTTPSPolicyFetcher: MTASTSFetcher {
    public let resolver: any Resolver
    public let dialer: any Dialer
    public let context: TLSContext
    public let port: UInt16
    public let timeout: Double

    /// RFC 8461 3.3 says nothing on headers; 16 KiB of them is plenty.
    static let maxHeader = 16_384

    public init(resolver: any Resolver, dialer: any Dialer = TCPDialer(), context: TLSContext, port: UInt16 = 443, timeout: Double = 10) {
        self.resolver = resolver
        self.dialer = dialer
        self.context = context
        self.port = port
        self.timeout = timeout
    }

    public func fetch(_ domain: String) throws(MTASTSFetchError) -> [UInt8] {
        let host = "mta-sts." + domain
        let deadline = Deadline.after(timeout)
        var addresses: [String] = []
        for lookup in [resolver.aaaa, resolver.a] as [(String) throws(DNSError) -> DNSAnswer<String>] {
            do { addresses += try lookup(host).records } catch { continue }   // one family may serve
        }
        guard !addresses.isEmpty else { throw MTASTSFetchError("\(host) has no address") }
        var failures: [String] = []
        for ip in addresses where !deadline.hasPassed {
            do {
                return try get(host: host, ip: ip, deadline: deadline)
            } catch let error as MTASTSFetchError {
                failures.append(error.description)
            } catch {
                failures.append("\(error)")
            }
        }
        throw MTASTSFetchError(failures.last ?? "the fetch timed out")
    }

    private func get(host: String, ip: String, deadline: Deadline) throws -> [UInt8] {
        let plain = try dialer.connect(ip: ip, port: port, deadline: deadline)
        // RFC 8461 3.3: "a valid PKIX certificate" for the policy host.
        let tls = try TLSStream(over: plain, options: TLSClientOptions(verification: .pkix(hostnames: [host]), enforce: true,
                                                                       serverName: host, context: context), deadline: deadline)
        defer { tls.shutdown() }
        let request = "GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: \(host)\r\nUser-Agent: postern\r\nAccept: text/plain\r\n\r\n"
        try tls.write(Array(request.utf8), deadline: deadline)
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        let limit = Self.maxHeader + MTASTSPolicy.maxSize + 1
        while response.count < limit {
            let count = try buffer.withUnsafeMutableBytes { try tls.read(into: $0, deadline: deadline) }
            if count == 0 { break }
            response += buffer.prefix(count)
        }
        return try Self.body(of: response, host: host)
    }

    /// The body of a 200 response; anything else refused (RFC 8461 3.3: no
    /// redirects, text/plain, 64 KiB at most).
    static func body(of response: [UInt8], host: String) throws(MTASTSFetchError) -> [UInt8] {
        guard let end = headerEnd(response) else { throw MTASTSFetchError("\(host): no complete HTTP header") }
        guard String(validating: response[..<end.header], as: UTF8.self) != nil else {
            throw MTASTSFetchError("\(host): the HTTP header is not text")
        }
        let lines = MTASTSPolicy.lines(of: response[..<end.header])
        let status = lines.first?.split(separator: " ", maxSplits: 2) ?? []
        guard status.count >= 2, status[0].hasPrefix("HTTP/1."), let code = Int(status[1]) else {
            throw MTASTSFetchError("\(host): not an HTTP response")
        }
        if (300...399).contains(code) { throw MTASTSFetchError("\(host): HTTP \(code): redirects are refused (RFC 8461 3.3)") }
        guard code == 200 else { throw MTASTSFetchError("\(host): HTTP \(code)") }
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
        }
        if let type = fields["content-type"], !type.lowercased().hasPrefix("text/plain") {
            throw MTASTSFetchError("\(host): the policy is served as \(TerminalText.safe(type)), not text/plain")
        }
        var body = Array(response[end.body...])
        if let length = fields["content-length"].flatMap({ Int($0) }) {
            guard length <= MTASTSPolicy.maxSize else { throw MTASTSFetchError("\(host): the policy is larger than 64 KiB") }
            guard body.count >= length else { throw MTASTSFetchError("\(host): the response ended early") }
            body = Array(body.prefix(length))
        }
        guard body.count <= MTASTSPolicy.maxSize else { throw MTASTSFetchError("\(host): the policy is larger than 64 KiB") }
        return body
    }

    static func headerEnd(_ bytes: [UInt8]) -> (header: Int, body: Int)? {
        let limit = min(bytes.count, maxHeader)
        var index = 0
        while index + 1 < limit {
            if bytes[index] == 0x0A {
                if bytes[index + 1] == 0x0A { return (index, index + 2) }
                if index + 2 < bytes.count, bytes[index + 1] == 0x0D, bytes[index + 2] == 0x0A { return (index, index + 3) }
            }
            index += 1
        }
        return nil
    }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var text = self
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return String(text)
    }
}
