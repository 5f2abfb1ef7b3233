import Glibc
import PosternCore

/// Finds one message by ID for the read-only commands (`show`, `cat`).
public struct SpoolReader {
    public let layout: SpoolLayout

    public init(layout: SpoolLayout) {
        self.layout = layout
    }

    /// The message's area and its validated envelope.
    ///
    /// - Throws: `SpoolError` with `.dataError` for a malformed ID, `.noInput`
    ///   when no area holds it, `.dataError` naming the problem when its
    ///   directory does not pass the scanner's checks.
    public func message(_ text: String) throws(SpoolError) -> (area: SpoolLayout.Area, directory: MessageDirectory, envelope: Envelope) {
        guard let id = QueueID(text) else {
            throw SpoolError(.dataError, "\"\(text)\" is not a queue ID (26 characters of Crockford base32)")
        }
        try SpoolCheck.requireSpool(layout)
        let root = layout.root
        let trusted = MessageDirectory.trustedOwners(of: layout)
        for area in SpoolLayout.Area.allCases {
            let directory = MessageDirectory(path: layout.path(area, id))
            guard MessageDirectory.lstatus(directory.path) != nil else { continue }
            do {
                return (area, directory, try directory.load(id: id, trustedOwners: trusted))
            } catch {
                throw SpoolError(.dataError, "\(area.rawValue)/\(id) cannot be trusted: \(error)")
            }
        }
        throw SpoolError(.noInput, "no message \(id) in \(root)")
    }
}
