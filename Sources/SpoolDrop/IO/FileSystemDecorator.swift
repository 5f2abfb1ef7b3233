import Glibc
import PosternBase

/// A file system that passes every call to `base` except those it declares
/// itself: the shape of each wrapper that changes one or two calls (a fault
/// injected on purpose, a probe that counts writes), so that none of them
/// restates the whole protocol, and a call added to `FileSystem` reaches
/// `base` through all of them.
public protocol FileSystemDecorator: FileSystem {
    var base: any FileSystem { get }
}

extension FileSystemDecorator {
    public func makeDirectory(_ path: String, mode: mode_t) throws(SpoolIOError) { try base.makeDirectory(path, mode: mode) }
    public func createFile(_ path: String, mode: mode_t) throws(SpoolIOError) -> Int32 { try base.createFile(path, mode: mode) }
    public func reuseFile(_ path: String) throws(SpoolIOError) -> Int32 { try base.reuseFile(path) }
    public func grantAccess(_ path: String, to user: uid_t, permissions: mode_t) throws(SpoolIOError) {
        try base.grantAccess(path, to: user, permissions: permissions)
    }
    public func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SpoolIOError) {
        try base.write(fd, bytes, path: path)
    }
    public func sync(_ fd: Int32, path: String) throws(SpoolIOError) { try base.sync(fd, path: path) }
    public func startWriteback(_ fd: Int32) { base.startWriteback(fd) }
    public func close(_ fd: Int32) { base.close(fd) }
    public func syncDirectory(_ path: String) throws(SpoolIOError) { try base.syncDirectory(path) }
    public func syncFileSystem(_ directory: DirectoryHandle) throws(SpoolIOError) { try base.syncFileSystem(directory) }
    public func rename(_ source: String, to destination: String) throws(SpoolIOError) { try base.rename(source, to: destination) }
    public func exchange(_ first: String, _ second: String) throws(SpoolIOError) { try base.exchange(first, second) }
    public func replace(_ source: String, with destination: String) throws(SpoolIOError) { try base.replace(source, with: destination) }
    public func removeTree(_ path: String) throws(SpoolIOError) { try base.removeTree(path) }
    public func removeFile(_ path: String) throws(SpoolIOError) { try base.removeFile(path) }
    public func setModified(_ path: String, epochSeconds: Double) throws(SpoolIOError) {
        try base.setModified(path, epochSeconds: epochSeconds)
    }
}
