import Foundation
import Glibc
import PosternTesting
import Testing
@testable import Spool

/// postern-drop, the set-group-ID drop program (issue #13): what it loads, and
/// that every way in ends in it.
struct DropProgramTests {
    /// The running drop maps no shared library at all (a static executable):
    /// in particular no Foundation, ICU, libcurl, libstdc++ or OpenSSL. Read
    /// from /proc/PID/maps while it waits for the message on standard input.
    @Test func dropLoadsNoSharedLibrary() throws {
        let spool = try TemporarySpool()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: PosternProcess.dropBinary)
        process.arguments = ["--spool", spool.layout.root, "-v", "bob@example.net"]
        process.environment = ["POSTERN_CONFIG": "/nonexistent/postern.toml", "POSTERN_HOSTNAME": "test.example"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let maps = "/proc/\(process.processIdentifier)/maps"
        var mapped = ""
        // Until exec has replaced the child (Foundation's spawn returns first).
        #expect(BackgroundProcess.waitUntil(timeout: 30) {
            mapped = (try? String(contentsOfFile: maps, encoding: .utf8)) ?? ""
            return mapped.contains("postern-drop")
        })
        let files = Set(mapped.split(separator: "\n").compactMap { line in line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).first.map(String.init) })
            .filter { $0.hasPrefix("/") }
        #expect(files == [PosternProcess.dropBinary], "\(files.sorted())")
        for library in ["Foundation", "icu", "curl", "stdc++", "libssl", "libcrypto", ".so"] {
            #expect(!mapped.contains(library), "\(library) is mapped")
        }
        input.fileHandleForWriting.write(Data("Subject: lean\n\nhi\n".utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let id = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try spool.names(.drop) == [id])
    }

    /// `postern drop`, `postern sendmail` and a link named sendmail all run
    /// postern-drop: its help text comes back each way.
    @Test func everyWayInIsTheDropProgram() throws {
        for (arguments, program) in [(["drop", "--help"], nil), (["sendmail", "--help"], nil), (["--help"], "sendmail")] {
            let result = try PosternProcess.run(arguments, program: program)
            #expect(result.status == 0)
            #expect(result.stdout.contains("This is\npostern-drop") || result.stdout.contains("This is postern-drop"), "\(arguments)")
        }
    }

    /// The drop reads hostname, drop.max_message_size and drop.max_recipients
    /// from the configuration file: a wrong value stops it (78), a limit applies.
    @Test func settingsFromTheConfigurationFile() throws {
        let spool = try TemporarySpool()
        let config = spool.directory + "/postern.toml"
        try Data("hostname = \"mail.example.org\"\n[drop]\nmax_recipients = 1\n".utf8).write(to: URL(fileURLWithPath: config))
        let env = ["POSTERN_CONFIG": config, "POSTERN_HOSTNAME": ""]
        let two = try PosternProcess.run(["drop", "--spool", spool.layout.root, "a@example.net", "b@example.net"],
                                         input: Data("Subject: x\n\nhi\n".utf8), environment: env)
        #expect(two.status == 65)
        #expect(two.stderr.contains("the limit is 1"))
        let one = try PosternProcess.run(["drop", "--spool", spool.layout.root, "-v", "a@example.net"],
                                         input: Data("Subject: x\n\nhi\n".utf8), environment: env)
        #expect(one.status == 0, "\(one.stderr)")
        let id = one.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let message = String(decoding: try spool.read("drop/\(id)/message"), as: UTF8.self)
        #expect(message.contains("@mail.example.org>"))   // the generated Message-ID's host
        try Data("[drop]\nmax_recipients = \"many\"\n".utf8).write(to: URL(fileURLWithPath: config))
        let bad = try PosternProcess.run(["drop", "--spool", spool.layout.root, "a@example.net"],
                                         input: Data("Subject: x\n\nhi\n".utf8), environment: env)
        #expect(bad.status == 78)
        #expect(bad.stderr.contains("line 2: drop.max_recipients: expected an integer"))
    }
}
