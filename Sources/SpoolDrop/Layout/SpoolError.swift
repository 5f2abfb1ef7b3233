import PosternBase

/// A refusal or failure that a command reports: one clear line for stderr and
/// the sysexits status to exit with.
public struct SpoolError: Error, Sendable, CustomStringConvertible {
    public let status: ExitStatus
    public let message: String

    public init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }
}

