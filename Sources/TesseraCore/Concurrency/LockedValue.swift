import Synchronization

/// A value shared between threads behind a lock, as a class so that closures can share it
/// (a `Mutex` cannot be captured by escaping closures).
public final class LockedValue<Value>: @unchecked Sendable {
    private let mutex: Mutex<Void> = Mutex(())
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutex.withLock { _ in try body(&value) }
    }
}
