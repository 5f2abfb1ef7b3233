import Foundation
import Glibc
import PosternCore

/// Moves what cannot be trusted out of the way, into `corrupt/`, with a reason.
///
/// Nothing is ever deleted: an operator reads `corrupt/NAME/reason`, repairs
/// `corrupt/NAME/entry` if it is worth it, and moves it back. The move is a
/// rename, so a symbolic link is moved as a link and never followed.
public struct Quarantine {
    public let layout: SpoolLayout
    public let fileSystem: any FileSystem
    public let now: () -> Date

    public init(layout: SpoolLayout, fileSystem: any FileSystem = SystemFileSystem(), now: @escaping () -> Date = { Date() }) {
        self.layout = layout
        self.fileSystem = fileSystem
        self.now = now
    }

    /// Moves `name` out of `directory` into a new `corrupt/NAME/`, as
    /// `corrupt/NAME/entry`, beside a `reason` file. Returns the path of `corrupt/NAME`.
    ///
    /// Protocol: create `corrupt/NAME/`, write and `fsync` `reason`, `fsync`
    /// `corrupt/NAME/` and `corrupt/`, rename the entry in, `fsync` both parents.
    /// A crash in between leaves the entry where it was (quarantined again on the
    /// next scan) and at worst a `corrupt/NAME/` with a reason and no entry.
    @discardableResult
    public func move(_ name: String, in directory: String, reason: String) throws(SpoolIOError) -> String {
        let target = try makeTarget(for: name)
        let origin = String(directory.dropFirst(layout.root.count + 1)) + "/" + name
        // One line each: a reason quoting untrusted text cannot forge a field.
        let text = "reason: \(TerminalText.safe(reason))\nfrom: \(TerminalText.safe(origin))\ntime: \(Timestamp.format(now()))\n"
        try fileSystem.writeFile(target + "/reason", Array(text.utf8), mode: 0o600)
        try fileSystem.syncDirectory(target)
        try fileSystem.syncDirectory(layout.corrupt)
        try fileSystem.rename(directory + "/" + name, to: target + "/entry")
        try fileSystem.syncDirectory(directory)
        try fileSystem.syncDirectory(target)
        return target
    }

    /// A fresh directory in `corrupt/` named after the entry (made safe), with a
    /// numeric suffix when the name was quarantined before.
    private func makeTarget(for name: String) throws(SpoolIOError) -> String {
        let safe = String(name.unicodeScalars.prefix(100).map { scalar -> Character in
            let ok = (scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "._-".unicodeScalars.contains(scalar)))
            return ok ? Character(scalar) : "_"
        })
        let base = safe.isEmpty || safe.hasPrefix(".") ? "_" + safe : safe
        var candidate = base
        for attempt in 1...1000 {
            do {
                try fileSystem.makeDirectory(layout.corrupt + "/" + candidate, mode: 0o700)
                return layout.corrupt + "/" + candidate
            } catch where error.code == EEXIST {
                candidate = "\(base).\(attempt)"
            }
        }
        throw SpoolIOError("mkdir", layout.corrupt + "/" + base, EEXIST)
    }
}
