import Glibc
import PosternCore

/// Where the message bytes come from: read in blocks, twice at most (once to
/// check line endings, once to send), never loaded whole.
public protocol MessageSource {
    /// Octets in the message.
    var size: Int { get }
    /// Reads up to `buffer.count` octets at `offset`; 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(SMTPError.Refusal) -> Int
}

/// A message file in the spool, read with `pread(2)`.
public final class FileMessageSource: MessageSource {
    private let fd: Int32
    public let size: Int

    /// Opens `path` as a spool file must be opened: without following a link
    /// or blocking on a FIFO, and only if `fstat` then shows a regular file
    /// with one link (of `expectedSize` octets, when given), so that nothing
    /// but the message a directory was validated with is ever sent.
    public init(path: String, expectedSize: Int? = nil) throws(SMTPError.Refusal) {
        do {
            let (fd, info) = try RegularFile.open(path, expectedSize: expectedSize)
            self.fd = fd
            size = Int(info.st_size)
        } catch {
            throw .messageUnreadable("\(path): \(error)")
        }
    }

    deinit {
        close(fd)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(SMTPError.Refusal) -> Int {
        do throws(SystemCallError) {
            return try POSIX.readSome(into: buffer) { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
        } catch {
            throw .messageUnreadable(error.description)
        }
    }
}

/// A message in memory, for tests and small generated messages.
public struct BytesMessageSource: MessageSource {
    public let bytes: [UInt8]
    public var size: Int { bytes.count }

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(SMTPError.Refusal) -> Int {
        let count = min(buffer.count, max(0, bytes.count - offset))
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + count)]))
        }
        return count
    }
}

/// One message for one set of recipients on this connection.
public struct Transaction {
    /// The reverse-path; empty for the null sender.
    public var sender: String
    public var recipients: [String]
    public var message: any MessageSource
    /// Octets over 127: ask for BODY=8BITMIME (RFC 6152).
    public var eightBit = false
    /// Needs SMTPUTF8 (RFC 6531).
    public var smtputf8 = false
    /// Ask for REQUIRETLS (RFC 8689).
    public var requireTLS = false
    /// RFC 3461 ORCPT: the address the sender wrote, for the recipients an
    /// alias rewrote; passed on to a server that offers DSN, so that its DSNs
    /// name it too (RFC 3461 4.2).
    public var originalRecipients: [String: String] = [:]
    /// RFC 3461 4.3 RET: what the sender wants back in a failure DSN; passed
    /// on to a server that offers DSN.
    public var dsnReturn: DSNReturn?
    /// RFC 3461 4.4 ENVID, in xtext as received; passed on to a server that
    /// offers DSN, so that its DSNs carry it too.
    public var envelopeID: String?

    public init(sender: String, recipients: [String], message: any MessageSource) {
        self.sender = sender
        self.recipients = recipients
        self.message = message
    }
}

/// What happened to each recipient, and to the connection.
public struct DeliveryReport: Sendable {
    /// Per recipient: the server's final acceptance (the reply to the end of
    /// data), or the error that stopped it.
    public var outcomes: [(recipient: String, result: Result<SMTPReply, SMTPError>)]
    /// Whether another transaction may follow on this connection.
    public var connectionUsable: Bool
    /// The number of SMTP transactions used (RCPTMAX and 452 splitting).
    public var transactions: Int

    public var delivered: [String] { outcomes.filter { if case .success = $0.result { true } else { false } }.map(\.recipient) }
}
