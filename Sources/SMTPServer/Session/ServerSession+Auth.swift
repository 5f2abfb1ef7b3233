import PosternBase

extension ServerSession {
    /// AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN, over TLS only.
    mutating func auth(_ argument: String) -> Response {
        func reply(_ code: Int, _ enhanced: String?, _ text: String) -> Response {
            Response(reply: ServerReply(code, enhanced, text), next: .proceed)
        }
        guard !settings.users.isEmpty else { return reply(502, "5.5.1", "Error: authentication not enabled") }
        guard phase != .fresh, esmtp else { return reply(503, "5.5.1", "Error: send EHLO first") }
        // RFC 4954 4: 538 when the mechanism needs an encrypted session.
        guard tls else { return reply(538, "5.7.11", "Encryption required for requested authentication mechanism") }
        guard authenticatedUser == nil else { return reply(503, "5.5.1", "Error: already authenticated") }
        guard transaction == nil else { return reply(503, "5.5.1", "Error: MAIL transaction in progress") }
        let words = argument.split(separator: " ", omittingEmptySubsequences: true)
        guard let mechanism = words.first?.uppercased(), words.count <= 2 else {
            return reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
        }
        let initial = words.count == 2 ? Array(words[1].utf8) : nil
        switch mechanism {
        case "PLAIN":
            guard let initial else {
                authStep = .plain
                return reply(334, nil, "")
            }
            return plain(initial[...])
        case "LOGIN":
            guard let initial else {
                authStep = .loginUser
                return reply(334, nil, "VXNlcm5hbWU6")   // "Username:"
            }
            return loginUser(initial[...])
        default:
            return reply(504, "5.5.4", "Unsupported authentication mechanism")
        }
    }

    /// A line sent in answer to a 334 challenge.
    mutating func authResponse(_ line: ArraySlice<UInt8>) -> Response {
        let step = authStep
        authStep = nil
        // RFC 4954 4: "*" cancels the exchange.
        if line.elementsEqual("*".utf8) {
            return Response(reply: ServerReply(501, "5.7.0", "Authentication canceled"), next: .proceed)
        }
        switch step {
        case .plain: return plain(line)
        case .loginUser: return loginUser(line)
        case .loginPassword(let user):
            guard let password = Base64.decode(line) else { return malformed() }
            return verify(user: user, password: password)
        case nil: return malformed()
        }
    }

    /// PLAIN: authzid NUL authcid NUL passwd (RFC 4616 2); an authorization
    /// identity other than the user's own is refused.
    private mutating func plain(_ encoded: ArraySlice<UInt8>) -> Response {
        if encoded.elementsEqual("=".utf8) { return verify(user: "", password: []) }   // an empty response
        guard let decoded = Base64.decode(encoded) else { return malformed() }
        let parts = decoded.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let user = String(validating: parts[1], as: UTF8.self) else { return malformed() }
        guard parts[0].isEmpty || parts[0].elementsEqual(parts[1]) else {
            return Response(reply: ServerReply(535, "5.7.8", "Authentication credentials invalid"), next: .proceed)
        }
        return verify(user: user, password: Array(parts[2]))
    }

    private mutating func loginUser(_ encoded: ArraySlice<UInt8>) -> Response {
        guard let decoded = Base64.decode(encoded), let user = String(validating: decoded, as: UTF8.self) else { return malformed() }
        authStep = .loginPassword(user: user)
        return Response(reply: ServerReply(334, nil, "UGFzc3dvcmQ6"), next: .proceed)   // "Password:"
    }

    private func malformed() -> Response {
        Response(reply: ServerReply(501, "5.5.2", "Cannot decode response"), next: .proceed)
    }

    private mutating func verify(user: String, password: [UInt8]) -> Response {
        // Compared in full whatever matches, so that timing tells nothing of the password.
        let expected = settings.users[user]
        var difference = (expected?.count ?? -1) == password.count ? 0 : 1
        let reference = expected ?? password
        for index in 0..<min(reference.count, password.count) { difference |= Int(reference[index] ^ password[index]) }
        guard expected != nil, difference == 0 else {
            return Response(reply: ServerReply(535, "5.7.8", "Authentication credentials invalid"), next: .proceed)
        }
        authenticatedUser = user
        return Response(reply: ServerReply(235, "2.7.0", "Authentication successful"), next: .proceed)
    }
}
