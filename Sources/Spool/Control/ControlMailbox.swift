import Foundation
import Glibc
import PosternCore

/// A request to a running daemon: an action and the messages it applies to.
public struct ControlRequest: Sendable, Equatable {
    public let id: QueueID
    public let action: ControlAction
    public let messages: [QueueID]

    public init(id: QueueID, action: ControlAction, messages: [QueueID]) {
        self.id = id
        self.action = action
        self.messages = messages
    }
}

/// The daemon's answer: each message's outcome.
public struct ControlResponse: Sendable, Equatable {
    public let outcomes: [QueueID: ControlOutcome]
    public init(outcomes: [QueueID: ControlOutcome]) { self.outcomes = outcomes }
}

/// `SPOOL/control/`: how commands talk to a running daemon without racing it.
///
/// A command writes `control/ID.request` (temp file, fsync, rename); the daemon
/// notices it through inotify, applies it as the spool's single writer, writes
/// `control/ID.response` the same way and removes the request. The command reads
/// and removes the response. A request left by a command that gave up is applied
/// when the daemon next starts.
public struct ControlMailbox {
    public let layout: SpoolLayout
    public var fileSystem: any FileSystem = SystemFileSystem()

    public init(layout: SpoolLayout) {
        self.layout = layout
    }

    func path(_ id: QueueID, _ suffix: String) -> String { layout.control + "/\(id).\(suffix)" }

    public func submit(_ request: ControlRequest) throws(SpoolIOError) {
        let object: JSONValue = .object(["action": request.action.json,
                                         "messages": .array(request.messages.map { .string($0.rawValue) })])
        try write(object, to: path(request.id, "request"))
    }

    /// Requests waiting, oldest first; unreadable ones are removed with their reason.
    public func pending() -> (requests: [ControlRequest], invalid: [String]) {
        var requests: [ControlRequest] = []
        var invalid: [String] = []
        let names = (try? DirectoryListing.names(in: layout.control)) ?? []   // no control/: nothing pending
        for name in names.sorted() where name.hasSuffix(".request") {
            let path = layout.control + "/" + name
            guard let id = QueueID(String(name.dropLast(".request".count))),
                  let data = read(path),
                  let value = try? JSONValue.decode(data),
                  case .object(let object) = value,
                  let actionJSON = object["action"], let action = try? ControlAction(json: actionJSON),
                  case .array(let list)? = object["messages"] else {
                invalid.append(name)
                try? fileSystem.removeTree(path)   // an unreadable request cannot be answered; it is reported by the caller
                continue
            }
            let messages = list.compactMap { item -> QueueID? in
                if case .string(let text) = item { return QueueID(text) }
                return nil
            }
            requests.append(ControlRequest(id: id, action: action, messages: messages))
        }
        return (requests, invalid)
    }

    /// Answers a request and removes it.
    public func respond(to request: ControlRequest, with response: ControlResponse) throws(SpoolIOError) {
        var outcomes: [String: JSONValue] = [:]
        for (id, outcome) in response.outcomes {
            switch outcome {
            case .changed: outcomes[id.rawValue] = .string("changed")
            case .unchanged(let reason): outcomes[id.rawValue] = .object(["unchanged": .string(reason)])
            }
        }
        try write(.object(["outcomes": .object(outcomes)]), to: path(request.id, "response"))
        try fileSystem.removeTree(path(request.id, "request"))
    }

    /// The response to request `id`, if there is one yet; it is removed once read.
    public func response(to id: QueueID) -> ControlResponse? {
        let file = path(id, "response")
        guard let data = read(file), let value = try? JSONValue.decode(data),
              case .object(let object) = value, case .object(let entries)? = object["outcomes"] else { return nil }
        var outcomes: [QueueID: ControlOutcome] = [:]
        for (key, value) in entries {
            guard let id = QueueID(key) else { continue }
            switch value {
            case .string("changed"): outcomes[id] = .changed
            case .object(let detail): outcomes[id] = .unchanged({ if case .string(let text)? = detail["unchanged"] { text } else { "unchanged" } }())
            default: continue
            }
        }
        try? fileSystem.removeTree(file)   // read already; a leftover is removed at the daemon's next start
        return ControlResponse(outcomes: outcomes)
    }

    private func write(_ value: JSONValue, to target: String) throws(SpoolIOError) {
        let temporary = layout.control + "/.\(UUID().uuidString).tmp"
        try fileSystem.writeFile(temporary, Array(value.encoded()), mode: 0o600)
        try fileSystem.replace(temporary, with: target)
        try fileSystem.syncDirectory(layout.control)
    }

    private func read(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size <= 16 << 20 else { return nil }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: false).readDataToEndOfFile()
    }
}
