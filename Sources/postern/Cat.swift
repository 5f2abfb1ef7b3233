import ArgumentParser
import Glibc
import Spool

extension Postern {
    struct Cat: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cat",
            abstract: "Write a message's bytes, exactly as stored, to standard output.",
            discussion: """
                The stored message has CRLF line endings and the headers that 'postern drop' \
                added. Never modifies the spool.

                EXIT STATUS
                  0 written; 65 not a queue ID or the message fails the scanner's checks;
                  66 no such message; 74 read or write error.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The queue ID.")
        var id: String

        func run() throws {
            let found: (area: SpoolLayout.Area, directory: MessageDirectory, envelope: Envelope)
            do { found = try SpoolReader(layout: global.layout).message(id) } catch { throw failure(error) }
            let path = found.directory.path + "/" + SpoolLayout.messageFile
            let fd: Int32
            do {
                fd = try DirectoryHandle(path: found.directory.path).openRegularFile(SpoolLayout.messageFile).fd
            } catch {
                throw failure(SpoolError(.ioError, "\(error)"))
            }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw failure(SpoolError(.ioError, "\(path): \(String(cString: strerror(errno)))")) }
                if count == 0 { return }
                var offset = 0
                while offset < count {
                    let written = buffer.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + offset, count - offset) }
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { throw failure(SpoolError(.ioError, "standard output: \(String(cString: strerror(errno)))")) }
                    offset += written
                }
            }
        }
    }
}
