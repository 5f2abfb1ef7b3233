import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The sample lines of an exposition as series → value text (`name{labels}` →
/// `"3"`), and the `# TYPE` of each family. A series seen twice is recorded in
/// `duplicates`, which a test expects empty.
struct ParsedExposition {
    var samples: [String: String] = [:]
    var types: [String: String] = [:]
    var helps: Set<String> = []
    var duplicates: [String] = []

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let fields = line.split(separator: " ")
                types[String(fields[2])] = String(fields[3])
            } else if line.hasPrefix("# HELP ") {
                helps.insert(String(line.split(separator: " ")[2]))
            } else if let space = line.lastIndex(of: " ") {
                let series = String(line[..<space])
                if samples[series] != nil { duplicates.append(series) }
                samples[series] = String(line[line.index(after: space)...])
            }
        }
    }
}

/// Runs `body` on a new plain thread and returns its result: what the daemon's
/// own thread does. Blocking calls (`MetricsServer.start()`, a blocking socket)
/// must not run on the cooperative pool, whose few threads the server's tasks
/// need; Swift Testing runs tests there, in parallel.
func onPlainThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

/// A response as read off the wire.
struct RawResponse: Sendable {
    var status: Int
    var headers: [String: String]   // names lowercased
    var body: String
}

enum RawHTTPError: Error { case socket(String), malformed(String) }

/// One HTTP/1.1 request on a fresh blocking TCP connection to 127.0.0.1, with
/// `Connection: close`, read to EOF. Every read is bounded by SO_RCVTIMEO.
/// Blocks: call it from `onPlainThread`.
func rawHTTP(timeoutSeconds: Int = 5, port: UInt16, method: String = "GET", path: String) throws -> RawResponse {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw RawHTTPError.socket("socket: \(errno)") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw RawHTTPError.socket("connect: \(errno)") }
    let request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    let bytes = Array(request.utf8)
    guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
        throw RawHTTPError.socket("send: \(errno)")
    }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n == 0 { break }
        guard n > 0 else { throw RawHTTPError.socket("recv: \(errno)") }
        received += buffer[0..<n]
    }
    let text = String(decoding: received, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw RawHTTPError.malformed(text) }
    let head = text[..<split.lowerBound].components(separatedBy: "\r\n")
    let statusFields = head[0].split(separator: " ")
    guard statusFields.count >= 2, statusFields[0] == "HTTP/1.1", let status = Int(statusFields[1]) else {
        throw RawHTTPError.malformed(head[0])
    }
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return RawResponse(status: status, headers: headers, body: String(text[split.upperBound...]))
}

/// Whether a TCP connect to 127.0.0.1:`port` succeeds now.
func canConnect(port: UInt16) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}
