/// Punycode (RFC 3492), the encoding behind IDNA A-labels ("xn--" + Punycode).
///
/// Implemented here rather than borrowed so PosternCore stays free of
/// dependencies. Both directions check every arithmetic step against `maxInt` as
/// RFC 3492 6.4 requires, so hostile input fails cleanly instead of trapping.
/// Basic (ASCII) code points are copied as given; case is not altered.
enum Punycode {
    // RFC 3492 5: parameter values for Punycode.
    static let base = 36
    static let tMin = 1
    static let tMax = 26
    static let skew = 38
    static let damp = 700
    static let initialBias = 72
    static let initialN = 0x80
    static let delimiter = UInt8(ascii: "-")
    // RFC 3492 6.4: the integers are at least 26 bits; use a 32-bit signed bound.
    static let maxInt = Int(Int32.max)

    enum Failure: Error, Equatable, CustomStringConvertible {
        case overflow
        case nonASCIIInput
        case invalidDigit(UInt8)
        case truncated
        case invalidCodePoint(Int)

        var description: String {
            switch self {
            case .overflow: return "the Punycode arithmetic overflows"
            case .nonASCIIInput: return "Punycode text must be ASCII"
            case let .invalidDigit(byte):
                return "\(AddressError.describe(Unicode.Scalar(byte))) is not a Punycode digit"
            case .truncated: return "the Punycode text ends in the middle of a number"
            case let .invalidCodePoint(value): return "it decodes to the invalid code point \(value)"
            }
        }
    }

    /// RFC 3492 6.1: bias adaptation.
    static func adapt(_ delta: Int, _ numPoints: Int, _ firstTime: Bool) -> Int {
        var delta = firstTime ? delta / damp : delta / 2
        delta += delta / numPoints
        var k = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }

    static func threshold(_ k: Int, _ bias: Int) -> Int {
        k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
    }

    /// 0-25 -> "a"-"z", 26-35 -> "0"-"9" (RFC 3492 5).
    static func encodeDigit(_ digit: Int) -> UInt8 {
        digit < 26 ? UInt8(digit) + UInt8(ascii: "a") : UInt8(digit - 26) + UInt8(ascii: "0")
    }

    /// Digit value of a byte, case-insensitively; `base` when it is not a digit.
    static func decodeDigit(_ byte: UInt8) -> Int {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0")) + 26
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return Int(byte - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return Int(byte - UInt8(ascii: "a"))
        default: return base
        }
    }

    /// RFC 3492 6.3: encoding procedure. Returns the Punycode text without "xn--".
    static func encode(_ input: [Unicode.Scalar]) throws(Failure) -> String {
        let codes = input.map { Int($0.value) }
        var output: [UInt8] = codes.filter { $0 < initialN }.map { UInt8($0) }
        let basicCount = output.count
        var handled = basicCount
        if basicCount > 0 { output.append(delimiter) }

        var n = initialN
        var delta = 0
        var bias = initialBias
        while handled < codes.count {
            // The smallest code point not yet handled; one exists since handled < count.
            let m = codes.filter { $0 >= n }.min() ?? n
            guard m - n <= (maxInt - delta) / (handled + 1) else { throw .overflow }
            delta += (m - n) * (handled + 1)
            n = m
            for code in codes {
                if code < n {
                    guard delta < maxInt else { throw .overflow }
                    delta += 1
                }
                guard code == n else { continue }
                var q = delta
                var k = base
                while true {
                    let t = threshold(k, bias)
                    if q < t { break }
                    output.append(encodeDigit(t + (q - t) % (base - t)))
                    q = (q - t) / (base - t)
                    k += base
                }
                output.append(encodeDigit(q))
                bias = adapt(delta, handled + 1, handled == basicCount)
                delta = 0
                handled += 1
            }
            guard delta < maxInt, n < maxInt else { throw .overflow }
            delta += 1
            n += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// RFC 3492 6.2: decoding procedure. `text` is the Punycode without "xn--".
    static func decode(_ text: String) throws(Failure) -> [Unicode.Scalar] {
        let bytes = Array(text.utf8)
        guard bytes.allSatisfy({ $0 < 0x80 }) else { throw .nonASCIIInput }
        var output: [Int] = []
        var position = 0
        if let last = bytes.lastIndex(of: delimiter) {
            output = bytes[..<last].map { Int($0) }
            position = last + 1
        }

        var n = initialN
        var i = 0
        var bias = initialBias
        while position < bytes.count {
            let oldI = i
            var w = 1
            var k = base
            while true {
                guard position < bytes.count else { throw .truncated }
                let byte = bytes[position]
                position += 1
                let digit = decodeDigit(byte)
                guard digit < base else { throw .invalidDigit(byte) }
                guard digit <= (maxInt - i) / w else { throw .overflow }
                i += digit * w
                let t = threshold(k, bias)
                if digit < t { break }
                guard w <= maxInt / (base - t) else { throw .overflow }
                w *= base - t
                k += base
            }
            let length = output.count + 1
            bias = adapt(i - oldI, length, oldI == 0)
            guard i / length <= maxInt - n else { throw .overflow }
            n += i / length
            i %= length
            // A basic code point must not be encoded as a delta (RFC 3492 6.2).
            guard n >= initialN, n <= 0x10FFFF, Unicode.Scalar(UInt32(n)) != nil else {
                throw .invalidCodePoint(n)
            }
            output.insert(n, at: i)
            i += 1
        }
        return output.compactMap { Unicode.Scalar(UInt32($0)) }
    }
}
