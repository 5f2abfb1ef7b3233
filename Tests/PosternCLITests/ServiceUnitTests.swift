import Foundation
import PosternTesting
import Testing

/// The systemd unit in packaging/ (issue #19): valid for systemd, and as confined as the daemon allows.
struct ServiceUnitTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let analyzer = "/usr/bin/systemd-analyze"

    /// The unit with ExecStart pointing at the binary under test (verify checks that it exists).
    func unit() throws -> String {
        let text = try String(contentsOf: Self.root.appendingPathComponent("packaging/postern.service"), encoding: .utf8)
        let directory = NSTemporaryDirectory() + "/postern-unit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/postern.service"
        try text.replacingOccurrences(of: "/usr/sbin/postern", with: PosternProcess.binary).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func analyze(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.analyzer)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    @Test func unitVerifies() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.analyzer), "systemd-analyze is needed (tools/test.sh installs systemd)")
        let result = try analyze(["verify", "--man=no", try unit()])
        #expect(result.status == 0 && result.output.isEmpty, "\(result.output)")
        let text = try String(contentsOf: Self.root.appendingPathComponent("packaging/postern.service"), encoding: .utf8)
        #expect(text.contains("Type=notify") && text.contains("ExecReload=/bin/kill -HUP $MAINPID"))
    }

    /// Completion scripts for the three shells README names, covering the subcommands (issue #19).
    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScripts(shell: String) throws {
        let result = try PosternProcess.run(["--generate-completion-script", shell])
        #expect(result.status == 0)
        for command in ["run", "list", "release", "explain", "smtp-probe"] {
            #expect(result.stdout.contains(command), "\(shell): \(command)")
        }
    }

    /// systemd's own exposure score stays "OK" (below 2.0; README states it).
    @Test func unitIsConfined() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.analyzer), "systemd-analyze is needed (tools/test.sh installs systemd)")
        let result = try analyze(["security", "--offline=true", "--no-pager", try unit()])
        let line = try #require(result.output.split(separator: "\n").first { $0.contains("Overall exposure level") }, "\(result.output)")
        let score = try #require(line.split(separator: " ").compactMap { Double($0) }.first, "\(line)")
        #expect(score < 2.0, "\(line)")
    }
}
