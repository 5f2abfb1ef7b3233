import DNS
import Foundation
import PosternCore
import PosternTesting
import TLS
import Testing
@testable import Delivery

/// The policy fetch over real HTTPS: Python's http.server behind TLS with a test CA, on loopback.
@Suite(.serialized)
struct HTTPSPolicyServerTests {
    static let policy = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmax_age: 86400\r\n"

    /// Serves /.well-known/mta-sts.txt with the policy, /redirect/.well-known/mta-sts.txt with a 301.
    static let server = """
        import http.server, ssl, sys
        policy = sys.argv[4].encode()
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.headers.get("Host") != "mta-sts.example.org":
                    self.send_response(400); self.end_headers(); return
                if sys.argv[5] == "redirect":
                    self.send_response(301); self.send_header("Location", "https://elsewhere.example/"); self.end_headers(); return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(policy)))
                self.end_headers()
                self.wfile.write(policy)
            def log_message(self, *args): pass
        server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = context.wrap_socket(server.socket, server_side=True)
        print("ready", flush=True)
        server.serve_forever()
        """

    let directory = NSTemporaryDirectory() + "postern-https-\(UUID().uuidString)"

    func serve(name: String, mode: String = "ok", notAfter: Date = Date(timeIntervalSinceNow: 86400))
        throws -> (process: BackgroundProcess, port: UInt16, ca: String) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let authority = try TestCertificateAuthority()
        let paths = try authority.issue(commonName: name, dnsNames: [name], notAfter: notAfter).write(to: directory, name: "https")
        let ca = directory + "/ca.pem"
        try authority.root.certificatePEM.write(toFile: ca, atomically: true, encoding: .utf8)
        try Self.server.write(toFile: directory + "/server.py", atomically: true, encoding: .utf8)
        let port = try freeLoopbackPort()
        let process = try BackgroundProcess(["/usr/bin/python3", directory + "/server.py", "\(port)", paths.certificate, paths.key,
                                             Self.policy, mode], log: directory + "/server.log")
        try #require(BackgroundProcess.waitUntil(timeout: 20) { process.log.contains("ready") }, "\(process.log)")
        return (process, port, ca)
    }

    func fetcher(port: UInt16, ca: String) throws -> HTTPSPolicyFetcher {
        HTTPSPolicyFetcher(resolver: MockResolver(a: ["mta-sts.example.org": ["127.0.0.1"]]),
                           context: try TLSContext(trustAnchors: .file(ca)), port: port, timeout: 10)
    }

    /// A valid certificate for mta-sts.DOMAIN: the policy's bytes exactly.
    @Test func fetchesThePolicy() throws {
        let (process, port, ca) = try serve(name: "mta-sts.example.org")
        defer { process.signal(SIGTERM); process.wait() }
        let body = try fetcher(port: port, ca: ca).fetch("example.org")
        #expect(String(decoding: body, as: UTF8.self) == Self.policy)
        #expect(try MTASTSPolicy.parse(body).mode == .enforce)
    }

    /// A certificate for another name is refused (RFC 8461 3.3: PKIX for the policy host).
    @Test func wrongNameIsRefused() throws {
        let (process, port, ca) = try serve(name: "www.example.org")
        defer { process.signal(SIGTERM); process.wait() }
        #expect {
            try fetcher(port: port, ca: ca).fetch("example.org")
        } throws: { error in
            (error as? MTASTSFetchError)?.description.contains("wrong name") == true
        }
    }

    /// A redirect is not followed.
    @Test func redirectIsRefused() throws {
        let (process, port, ca) = try serve(name: "mta-sts.example.org", mode: "redirect")
        defer { process.signal(SIGTERM); process.wait() }
        #expect {
            try fetcher(port: port, ca: ca).fetch("example.org")
        } throws: { error in
            (error as? MTASTSFetchError)?.description.contains("redirects are refused") == true
        }
    }
}
