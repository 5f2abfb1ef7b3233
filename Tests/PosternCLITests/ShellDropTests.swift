import Foundation
import PosternTesting
import Testing
@testable import Spool

/// A drop written by a plain shell script that follows spool-layout.md.
struct ShellDropTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/spool-drop.sh").path

    /// tools/spool-drop.sh (the recipe in spool-layout.md) makes a drop the scanner accepts.
    @Test func scannerAcceptsShellDrop() throws {
        let spool = try TemporarySpool()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [Self.script, spool.layout.root, "", "bob@example.net"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        try input.fileHandleForWriting.write(contentsOf: Data("From: root@localhost\r\nSubject: shell\r\n\r\nhi\r\n".utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let id = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)

        var items: [ScanItem] = []
        let report = SpoolScanner(layout: spool.layout, mode: .readOnly).scan { items.append($0) }
        #expect(report.quarantined.isEmpty, "\(report.quarantined)")
        #expect(items.map(\.id.rawValue) == [id])
        #expect(items.first?.envelope.sender == nil)
        #expect(items.first?.envelope.recipients.map(\.address) == ["bob@example.net"])
        #expect(try spool.temporaryNames().isEmpty)
    }
}
