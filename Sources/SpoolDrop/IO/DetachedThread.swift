import CSysShim
import Glibc

/// A detached POSIX thread running one closure, for code that must not block
/// Swift's cooperative pool and does not link Foundation (`Thread`): the
/// spool's writers are part of `postern-drop`, which starts at every
/// `sendmail` call and stays lean.
public enum DetachedThread {
    /// Starts `body` on a new thread named `name` (at most 15 bytes show in
    /// `ps` and `perf`).
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        final class Box: Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let context = Unmanaged.passRetained(Box(name, body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            _ = csys_name_thread(box.name)
            box.body()
            return nil
        }, context)
        precondition(result == 0, "pthread_create failed: \(result)")
        pthread_detach(thread)
    }
}
