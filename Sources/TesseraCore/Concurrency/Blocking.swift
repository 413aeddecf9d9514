import Dispatch

/// Work that waits (for a child process, a pipe, a socket, SQLite's write lock) runs on a
/// dispatch thread, never on Swift's cooperative pool: that pool has one thread per core,
/// so on a 2-core machine two waiting tasks stall every other task of the process.
public enum Blocking {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            DispatchQueue.global().async { c.resume(with: Result { try body() }) }
        }
    }
}
