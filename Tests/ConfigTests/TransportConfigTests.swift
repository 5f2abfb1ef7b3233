import Foundation
import PosternCore
import Testing
@testable import Config

private func parse(_ text: String) throws(ConfigurationError) -> Configuration {
    try Configuration.parse(text, source: "postern.toml", overrides: [], defaultHostname: "mx.test.example")
}

private func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
    #expect(throws: ConfigurationError.self, sourceLocation: sourceLocation) { try parse(text) }
}

private let everyKind = """
    [transports.smarthost]
    kind = "submission"
    host = "smtp.example.net"
    credentials = "/etc/postern/smarthost.credentials"

    [transports.tls465]
    kind = "submissions"
    host = "smtp.example.net"
    credentials = "/etc/postern/smarthost.credentials"
    ca_file = "/etc/postern/ca.pem"
    ehlo_name = "out.example.org"

    [transports.lan]
    kind = "relay"
    host = "[2001:db8::25]:2525"
    tls = "none"

    [transports.v4only]
    kind = "direct"
    family = "ipv4"
    bind_ipv4 = "192.0.2.10"

    [transports.tor]
    kind = "socks5"
    proxy = "127.0.0.1:9050"
    ehlo_name = "localhost"

    [transports.local]
    kind = "maildir"
    path = "/var/mail/postern"

    [transports.forbidden]
    kind = "fail"
    code = 554
    enhanced = "5.7.1"
    text = "no mail to competitors"

    [[routes]]
    recipient_domains = ["competitor.example", ".competitor.example"]
    transport = "forbidden"

    [[routes]]
    sender_domains = ["lists.example.org"]
    transport = "lan"

    [[routes]]
    min_attempts = 3
    transport = "smarthost"
    """

@Suite struct TransportConfigTests {
    /// Every kind is read with its keys and each kind's default port.
    @Test func everyKindParses() throws {
        let configuration = try parse(everyKind)
        let byName = Dictionary(uniqueKeysWithValues: configuration.transports.map { ($0.name, $0) })
        #expect(configuration.transports.map(\.name) == ["smarthost", "tls465", "lan", "v4only", "tor", "local", "forbidden"])
        #expect(byName["smarthost"]?.server == RelayAddress(host: "smtp.example.net", port: 587))
        #expect(byName["tls465"]?.server?.port == 465)
        #expect(byName["tls465"]?.caFile == "/etc/postern/ca.pem")
        #expect(byName["tls465"]?.ehloName == "out.example.org")
        #expect(byName["lan"]?.server == RelayAddress(host: "2001:db8::25", port: 2525))
        #expect(byName["lan"]?.tls == .plaintext)
        #expect(byName["v4only"]?.family == .ipv4)
        #expect(byName["v4only"]?.bindIPv4 == "192.0.2.10")
        #expect(byName["tor"]?.proxy == RelayAddress(host: "127.0.0.1", port: 9050))
        #expect(byName["local"]?.path == "/var/mail/postern")
        #expect(byName["forbidden"]?.code == 554)
        #expect(byName["forbidden"]?.enhanced == "5.7.1")
        let routes = configuration.routes.map(\.route)
        #expect(routes.map(\.transport) == ["forbidden", "lan", "smarthost"])
        #expect(routes[0].recipientDomains == [DomainPattern(domain: "competitor.example", subdomains: false),
                                               DomainPattern(domain: "competitor.example", subdomains: true)])
        #expect(routes[2].minAttempts == 3)
        #expect(configuration.routes.map(\.line) == [38, 42, 46])
        #expect(configuration.transportNames == ["direct", "smarthost", "tls465", "lan", "v4only", "tor", "local", "forbidden"])
        #expect(configuration.unreachableRoutes().isEmpty)
    }

    /// rendered() writes transports and routes back so that they parse to the same configuration.
    @Test func renderedRoundTrip() throws {
        let configuration = try parse(everyKind)
        #expect(try parse(configuration.rendered()) == configuration)
    }

    /// The example file's routing section, uncommented, is a valid configuration.
    @Test func routingExampleParses() throws {
        let uncommented = Configuration.routingExample.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix("#") && (line.dropFirst().first?.isLetter == true || line.dropFirst().first == "[") ? line.dropFirst() : line
        }.joined(separator: "\n")
        let configuration = try parse(uncommented)
        #expect(configuration.transports.map(\.kind) == [.submission, .fail])
        #expect(configuration.routes.map(\.route.transport) == ["forbidden", "smarthost"])
    }

    /// Each kind takes its own keys only; required keys are named; values are checked.
    @Test(arguments: [
        ("[transports.x]\nkind = \"maildir\"\npath = \"/m\"\nport = 25\n", "transports.x.port", 4, "not a key of a maildir transport"),
        ("[transports.x]\nhost = \"a.example\"\n", "transports.x", 1, "needs kind = one of"),
        ("[transports.x]\nkind = \"smtp\"\n", "transports.x.kind", 2, "expected one of \"direct\", \"relay\""),
        ("[transports.x]\nkind = \"submission\"\nhost = \"a.example\"\n", "transports.x", 1, "needs credentials"),
        ("[transports.x]\nkind = \"relay\"\n", "transports.x", 1, "a relay transport needs host"),
        ("[transports.x]\nkind = \"socks5\"\nproxy = \"127.0.0.1\"\n", "transports.x.proxy", 3, "needs a port"),
        ("[transports.x]\nkind = \"fail\"\ncode = 250\n", "transports.x.code", 3, "from 400 to 599"),
        ("[transports.x]\nkind = \"fail\"\ncode = 450\nenhanced = \"5.7.1\"\n", "transports.x.enhanced", 4, "does not match the code 450"),
        ("[transports.x]\nkind = \"maildir\"\npath = \"relative\"\n", "transports.x.path", 3, "not an absolute path"),
        ("[transports.x]\nkind = \"direct\"\nbind_ipv4 = \"::1\"\n", "transports.x.bind_ipv4", 3, "not an IPv4 address"),
        ("[transports.direct]\nkind = \"direct\"\n", "transports.direct", 1, "is built in"),
        ("[transports.Big]\nkind = \"direct\"\n", "transports.Big", 1, "a transport name is"),
        ("[[routes]]\ntransport = \"direct\"\nrecipient_domains = \"a.example\"\n", "routes[0].recipient_domains", 3, "expected an array of domains"),
        ("[[routes]]\ntransport = \"direct\"\n\n[[routes]]\nsender_domains = [\"bad domain\"]\ntransport = \"direct\"\n",
         "routes[1].sender_domains", 5, "is not a domain"),
        ("[[routes]]\nmin_attempts = 1\n", "routes[0]", 1, "a route needs transport"),
        ("[[routes]]\ntransport = \"direct\"\nmin_attempt = 1\n", "routes[0].min_attempt", 3, "not a key of a route"),
    ])
    func refused(text: String, key: String, line: Int, message: String) {
        let error = failure(text)
        #expect(error?.key == key)
        #expect(error?.line == line)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
    }

    /// A route naming a transport that does not exist is an error at its line.
    @Test func unknownTransport() {
        let error = failure("[transports.smarthost]\nkind = \"relay\"\nhost = \"a.example\"\n\n[[routes]]\ntransport = \"smarthots\"\n")
        #expect(error?.key == "routes[0].transport")
        #expect(error?.line == 5)
        #expect(error?.message == "unknown transport \"smarthots\"; defined: direct, smarthost")
        #expect(throws: ConfigurationError.self) {
            try parse("relay = \"a.example\"\n[transports.relay]\nkind = \"relay\"\nhost = \"b.example\"\n")
        }
        #expect((try? parse("relay = \"a.example\"\n[[routes]]\ntransport = \"relay\"\n")) != nil)
    }

    /// A route matched entirely by an earlier one is reported, with both indices.
    @Test func unreachableRoutes() throws {
        let configuration = try parse("""
            [[routes]]
            recipient_domains = [".example.org"]
            transport = "direct"

            [[routes]]
            recipient_domains = ["mail.example.org"]
            min_attempts = 2
            transport = "direct"

            [[routes]]
            recipient_domains = ["example.org"]
            transport = "direct"
            """)
        #expect(configuration.unreachableRoutes() == ["routes[1] (line 5) is unreachable: routes[0] before it matches everything it matches"])
    }

    /// IDN route domains are kept as A-labels; `.domain` marks subdomains.
    @Test func idnDomains() throws {
        let configuration = try parse("[[routes]]\nrecipient_domains = [\".B\u{FC}cher.example\"]\ntransport = \"direct\"\n")
        #expect(configuration.routes.first?.route.recipientDomains == [DomainPattern(domain: "xn--bcher-kva.example", subdomains: true)])
    }

    /// -o cannot set transports or routes: the message says where they go.
    @Test func notByOverride() {
        let error = #expect(throws: ConfigurationError.self) {
            try Configuration.parse("", source: "postern.toml", overrides: ["transports.x.kind=fail"], defaultHostname: "mx.test.example")
        }
        #expect(error?.message == "transports and routes are set in the configuration file only")
    }
}

/// The credentials file: only its owner may read it, and it holds exactly a user name and a password.
@Suite struct CredentialsFileTests {
    func write(_ text: String, mode: mode_t) throws -> String {
        let path = NSTemporaryDirectory() + "postern-credentials-\(UUID().uuidString)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
        return path
    }

    @Test func readsUserAndPassword() throws {
        let path = try write("username = \"me@example.net\"\npassword = \"s3cret\"\n", mode: 0o600)
        defer { unlink(path) }
        let secret = try CredentialsFile.load(path)
        #expect(secret.username == "me@example.net")
        #expect(secret.password == "s3cret")
        #expect(!"\(secret)".contains("s3cret"))
    }

    /// A header or an array toml++ would abort on is a syntax error of the file (found by fuzzing the configuration).
    @Test(arguments: ["username = \"me@example.net\"\n[!]\n", "username = \"me@example.net\"\npassword = [}]\n"])
    func trapIsASyntaxError(text: String) throws {
        let path = try write(text, mode: 0o600)
        defer { unlink(path) }
        #expect(throws: ConfigurationError(source: path, line: 2, message: "TOML syntax error in the credentials file")) {
            try CredentialsFile.load(path)
        }
    }

    @Test func refusesReadableByOthers() throws {
        let path = try write("username = \"u\"\npassword = \"p\"\n", mode: 0o640)
        defer { unlink(path) }
        let error = #expect(throws: ConfigurationError.self) { try CredentialsFile.load(path) }
        #expect(error?.message.contains("chmod 600") == true)
    }

    @Test func refusesSymlinkAndMissingAndBadContent() throws {
        let target = try write("username = \"u\"\npassword = \"p\"\n", mode: 0o600)
        let link = target + ".link"
        symlink(target, link)
        defer { unlink(target); unlink(link) }
        #expect((#expect(throws: ConfigurationError.self) { try CredentialsFile.load(link) })?.message.contains("symbolic link") == true)
        #expect(throws: ConfigurationError.self) { try CredentialsFile.load(target + ".missing") }
        let extra = try write("username = \"u\"\npassword = \"p\"\nport = 1\n", mode: 0o600)
        defer { unlink(extra) }
        #expect((#expect(throws: ConfigurationError.self) { try CredentialsFile.load(extra) })?.key == "port")
        let broken = try write("username = \"u\"\npassword = \"p4ss\n", mode: 0o600)
        defer { unlink(broken) }
        let syntax = #expect(throws: ConfigurationError.self) { try CredentialsFile.load(broken) }
        #expect(syntax?.description.contains("p4ss") == false)
    }

    /// config check's view: each unusable credentials file of the configuration is named.
    @Test func credentialProblems() throws {
        let good = try write("username = \"u\"\npassword = \"p\"\n", mode: 0o600)
        defer { unlink(good) }
        let configuration = try parse("""
            [transports.a]
            kind = "submission"
            host = "a.example"
            credentials = "\(good)"

            [transports.b]
            kind = "submission"
            host = "b.example"
            credentials = "\(good).missing"
            """)
        #expect(configuration.credentialProblems().map(\.source) == ["\(good).missing"])
    }
}
