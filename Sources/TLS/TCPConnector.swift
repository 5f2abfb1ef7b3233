import Glibc
import PosternCore

/// Opens TCP connections with a deadline: a non-blocking `connect(2)` and
/// `poll(2)`, so an address that swallows SYNs costs one deadline, not a
/// kernel timeout of minutes.
public enum TCPConnector {
    /// Connects to an IP address (`192.0.2.1`, `::1`) and port, from the local
    /// address `bind` when given (of the same family; port chosen by the kernel).
    public static func connect(ip: String, port: UInt16, deadline: Deadline, bind local: String? = nil) throws(StreamError) -> SocketStream {
        let (address, length, family) = try socketAddress(ip, port: port)
        var storage = address
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .system(operation: "socket", code: errno) }
        let stream = try SocketStream(fileDescriptor: fd)
        if let local {
            let (localAddress, localLength, localFamily) = try socketAddress(local, port: 0)
            var localStorage = localAddress
            guard localFamily == family else { throw .system(operation: "bind \(local) for \(ip)", code: EAFNOSUPPORT) }
            let bound = withUnsafePointer(to: &localStorage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, localLength) }
            }
            guard bound == 0 else { throw .system(operation: "bind \(local)", code: errno) }
        }
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
        }
        if result != 0 {
            guard errno == EINPROGRESS else { throw .system(operation: "connect \(ip) port \(port)", code: errno) }
            try waitFor(fd, events: Int16(POLLOUT), deadline: deadline)
            var code: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &size)
            guard code == 0 else { throw .system(operation: "connect \(ip) port \(port)", code: code) }
        }
        return stream
    }

    /// A socket address for an IP address text and port (the listener binds with it too).
    public static func socketAddress(_ ip: String, port: UInt16) throws(StreamError) -> (sockaddr_storage, socklen_t, Int32) {
        var storage = sockaddr_storage()
        if ip.contains(":") {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, ip, &address.sin6_addr) == 1 else { throw .system(operation: "inet_pton \(ip)", code: EINVAL) }
            withUnsafeBytes(of: address) { raw in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: raw) } }
            return (storage, socklen_t(MemoryLayout<sockaddr_in6>.size), AF_INET6)
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, ip, &address.sin_addr) == 1 else { throw .system(operation: "inet_pton \(ip)", code: EINVAL) }
        withUnsafeBytes(of: address) { raw in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: raw) } }
        return (storage, socklen_t(MemoryLayout<sockaddr_in>.size), AF_INET)
    }

    /// The IP addresses of a host name through the system resolver (getaddrinfo),
    /// for tools; delivery uses the DNS resolver with its own rules.
    public static func addresses(of host: String) throws(StreamError) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            throw .system(operation: "resolve \(host): \(String(cString: gai_strerror(status)))", code: EHOSTUNREACH)
        }
        defer { freeaddrinfo(first) }
        var result: [String] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            if current.pointee.ai_family == AF_INET {
                current.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { var a = $0.pointee.sin_addr; _ = inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count)) }
            } else if current.pointee.ai_family == AF_INET6 {
                current.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { var a = $0.pointee.sin6_addr; _ = inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count)) }
            }
            let text = String(decoding: buffer.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
            if !text.isEmpty, !result.contains(text) { result.append(text) }
            entry = current.pointee.ai_next
        }
        return result
    }
}
