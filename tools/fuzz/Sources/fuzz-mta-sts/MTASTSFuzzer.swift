import FuzzSupport
@testable import Delivery

/// The MTA-STS policy parser (`MTASTSPolicy.parse`, RFC 8461 3.2: the body of
/// `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`, a remote server's to
/// write) and the `_mta-sts` TXT record's (`MTASTSPolicies.parseTXT`, 3.1,
/// each input line one record).
///
/// Invariants: an accepted policy has `max_age` within RFC 8461's year, an
/// `mx` unless its mode is `none`, and only host name patterns of ASCII
/// letters, digits, hyphens and dots (they are matched against MX names and
/// logged); written back out as a policy it parses to itself; each pattern
/// permits the host it names (or one label under a `*.`); a TXT id is 1 to 32
/// letters and digits.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMTASTS(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    let bytes = FuzzInput(data, count).bytes
    if let policy = try? MTASTSPolicy.parse(bytes) { check(policy) }

    let records = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if case .id(let id) = MTASTSPolicies.parseTXT(records) {
        require((1...32).contains(id.utf8.count) && id.unicodeScalars.allSatisfy { $0.isASCII && $0.properties.isAlphabetic || ("0"..."9").contains($0) },
                "a TXT record id \(shown(id))")
    }
    return 0
}

func check(_ policy: MTASTSPolicy) {
    require((0...MTASTSPolicy.maxMaxAge).contains(policy.maxAge), "max_age \(policy.maxAge)")
    require(policy.mode == .none || !policy.mx.isEmpty, "a \(policy.mode) policy without mx")
    for pattern in policy.mx {
        require(!pattern.isEmpty && pattern.utf8.allSatisfy { byte in
            byte == UInt8(ascii: "*") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
                || (0x30...0x39).contains(byte) || (0x61...0x7A).contains(byte)
        }, "an mx pattern \(shown(pattern))")
        let host = pattern.hasPrefix("*.") ? "mx1" + pattern.dropFirst(1) : pattern
        require(policy.permits(host), "the pattern \(shown(pattern)) does not permit \(shown(host))")
        require(policy.permits(host.uppercased() + "."), "the pattern \(shown(pattern)) is case- or dot-sensitive")
        if pattern.hasPrefix("*.") {
            let alone = MTASTSPolicy(mode: .enforce, mx: [pattern], maxAge: 1)
            require(!alone.permits("a.b" + pattern.dropFirst(1)), "the pattern \(shown(pattern)) permits two labels")
            require(!alone.permits(String(pattern.dropFirst(2))), "the pattern \(shown(pattern)) permits its own suffix")
        }
    }
    var text = "version: STSv1\r\nmode: \(policy.mode.rawValue)\r\n"
    for pattern in policy.mx { text += "mx: \(pattern)\r\n" }
    text += "max_age: \(policy.maxAge)\r\n"
    do {
        let again = try MTASTSPolicy.parse(Array(text.utf8))
        require(again == policy, "a policy written back parses to another")
    } catch {
        fail("a policy written back does not parse: \(error)\n\(text)")
    }
}
