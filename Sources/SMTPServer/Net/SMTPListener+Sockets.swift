import Glibc
import PosternCore
import TLS

extension SMTPListener {
    /// A listening TCP socket on `host` (an IP address) and `port`.
    static func listen(host: String, port: UInt16) throws(StreamError) -> Int32 {
        let v6 = host.contains(":")
        let (address, length, _) = try TCPConnector.socketAddress(host, port: port)
        var storage = address
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .system(operation: "socket", code: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        // [::1]:25 is that address only, not the IPv4 ones too.
        if v6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let bound = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, Glibc.listen(fd, 128) == 0 else {
            let code = errno
            close(fd)
            throw .system(operation: "listen on \(v6 ? "[\(host)]" : host):\(port)", code: code)
        }
        return fd
    }

    static func localPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return withUnsafeBytes(of: storage) { raw in
            // sin_port and sin6_port are both at offset 2.
            UInt16(raw[2]) << 8 | UInt16(raw[3])
        }
    }

    /// A peer address as octets (IPv4-mapped IPv6 unwrapped) and as text.
    static func clientAddress(_ storage: sockaddr_storage) -> ([UInt8], String) {
        var storage = storage
        var bytes: [UInt8]
        if Int32(storage.ss_family) == AF_INET6 {
            bytes = withUnsafeBytes(of: &storage) { raw in
                raw.load(as: sockaddr_in6.self).sin6_addr
            }.withBytes()
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { bytes = Array(bytes[12...]) }
        } else {
            bytes = withUnsafeBytes(of: &storage) { raw in raw.load(as: sockaddr_in.self).sin_addr }.withBytes()
        }
        return (bytes, IPNetwork(address: bytes, prefixLength: bytes.count * 8).description)
    }
}

extension in_addr {
    fileprivate func withBytes() -> [UInt8] { withUnsafeBytes(of: self) { Array($0) } }
}

extension in6_addr {
    fileprivate func withBytes() -> [UInt8] { withUnsafeBytes(of: self) { Array($0) } }
}
