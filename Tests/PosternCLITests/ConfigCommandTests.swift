import Foundation
import PosternTesting
import Testing

/// `postern config check`: what it reports beyond parsing, and its exit status.
@Suite struct ConfigCommandTests {
    func write(_ text: String, to path: String, mode: mode_t = 0o644) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
    }

    /// A clean file: the effective configuration on stdout, transports and routes included, exit 0.
    @Test func validConfiguration() throws {
        let directory = NSTemporaryDirectory() + "postern-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("username = \"u\"\npassword = \"p\"\n", to: directory + "/secret", mode: 0o600)
        try write("""
            hostname = "mx.example.org"
            [transports.smarthost]
            kind = "submission"
            host = "smtp.example.net"
            credentials = "\(directory)/secret"
            [[routes]]
            transport = "smarthost"
            """, to: directory + "/postern.toml")
        let result = try PosternProcess.run(["config", "check", "--config", directory + "/postern.toml"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("[transports.smarthost]\nkind = \"submission\"\nhost = \"smtp.example.net:587\""))
        #expect(result.stdout.contains("[[routes]]\ntransport = \"smarthost\""))
        #expect(result.stderr.isEmpty)
    }

    /// An unreadable credentials file and an unreachable route are reported, one per line, with EX_CONFIG.
    @Test func reportsCredentialsAndUnreachableRoutes() throws {
        let directory = NSTemporaryDirectory() + "postern-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("username = \"u\"\npassword = \"p\"\n", to: directory + "/open", mode: 0o644)
        try write("""
            [transports.smarthost]
            kind = "submission"
            host = "smtp.example.net"
            credentials = "\(directory)/open"

            [[routes]]
            transport = "smarthost"

            [[routes]]
            recipient_domains = ["example.org"]
            transport = "direct"
            """, to: directory + "/postern.toml")
        let result = try PosternProcess.run(["config", "check", "--config", directory + "/postern.toml"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(directory)/open: the credentials file is readable by others (mode 644); chmod 600 it"))
        #expect(result.stderr.contains("routes[1] (line 9) is unreachable: routes[0] before it matches everything it matches"))
    }

    /// Issue #19: a line of the aliases file that would be left out is reported with its line, EX_CONFIG.
    @Test func reportsAliasesProblems() throws {
        let directory = NSTemporaryDirectory() + "postern-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("postmaster: root\nroot: |/usr/bin/procmail, ops@example.net\n", to: directory + "/aliases", mode: 0o644)
        try write("[local]\naliases = \"\(directory)/aliases\"\n", to: directory + "/postern.toml")
        let result = try PosternProcess.run(["config", "check", "--config", directory + "/postern.toml"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(directory)/aliases, line 2: root: \"|/usr/bin/procmail\": commands are never run; skipped"), "\(result.stderr)")
    }

    /// A route naming a transport that does not exist: the file and line, EX_CONFIG.
    @Test func unknownTransport() throws {
        let path = NSTemporaryDirectory() + "postern-config-\(UUID().uuidString).toml"
        defer { unlink(path) }
        try write("[[routes]]\nrecipient_domains = [\"example.org\"]\ntransport = \"smarthots\"\n", to: path)
        let result = try PosternProcess.run(["config", "check", "--config", path])
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(path):1: routes[0].transport: unknown transport \"smarthots\"; defined: direct"))
    }
}
