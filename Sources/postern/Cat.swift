import ArgumentParser
import Glibc
import PosternCore
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
                let count: Int
                do throws(SystemCallError) { count = try POSIX.readSome(fd, into: &buffer) } catch {
                    throw failure(SpoolError(.ioError, "\(path): \(error)"))
                }
                if count == 0 { return }
                do throws(SystemCallError) { try POSIX.writeAll(STDOUT_FILENO, Array(buffer[..<count])) } catch {
                    throw failure(SpoolError(.ioError, "standard output: \(error)"))
                }
            }
        }
    }
}
