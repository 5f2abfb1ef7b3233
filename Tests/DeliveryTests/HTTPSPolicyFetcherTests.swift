import Testing
@testable import Delivery

/// The HTTP side of the policy fetch (RFC 8461 3.3): a 200 with text/plain, no redirects, 64 KiB at most.
struct HTTPSPolicyFetcherTests {
    static func body(_ response: String) throws(MTASTSFetchError) -> String {
        String(decoding: try HTTPSPolicyFetcher.body(of: Array(response.utf8), host: "mta-sts.example.org"), as: UTF8.self)
    }

    /// The body of a 200, cut at Content-Length; a bare-LF header is read too.
    @Test func ok() throws {
        #expect(try Self.body("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhelloEXTRA") == "hello")
        #expect(try Self.body("HTTP/1.0 200 OK\nContent-Type: text/plain\n\nversion: STSv1\n") == "version: STSv1\n")
    }

    /// Redirects, other statuses, other types, oversized and truncated bodies are refused.
    @Test(arguments: [
        ("HTTP/1.1 301 Moved\r\nLocation: https://elsewhere/\r\n\r\n", "redirects are refused"),
        ("HTTP/1.1 404 Not Found\r\n\r\n", "HTTP 404"),
        ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>", "not text/plain"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n", "larger than 64 KiB"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "ended early"),
        ("HTTP/1.1 200 OK\r\n\r\n" + String(repeating: "a", count: 65_537), "larger than 64 KiB"),
        ("SMTP 220 hello\r\n\r\n", "not an HTTP response"),
        ("HTTP/1.1 200 OK\r\nContent-Type: text/plain", "no complete HTTP header"),
    ])
    func refused(response: String, reason: String) {
        #expect {
            try Self.body(response)
        } throws: { error in
            (error as? MTASTSFetchError)?.description.contains(reason) == true
        }
    }
}
