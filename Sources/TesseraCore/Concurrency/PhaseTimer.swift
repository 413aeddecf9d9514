import Dispatch
import Synchronization

/// Wall time spent per named phase of a pass, collected only when enabled (by
/// `tessera bench --profile`), so the hot path pays a single load otherwise.
public final class PhaseTimer: Sendable {
    public static let shared = PhaseTimer()
    private let enabledFlag = Atomic<Bool>(false)
    private let totals = Mutex<[String: UInt64]>([:])

    public var enabled: Bool {
        get { enabledFlag.load(ordering: .relaxed) }
        set { enabledFlag.store(newValue, ordering: .relaxed) }
    }

    @inlinable @inline(__always)
    public func measure<T>(_ phase: StaticString, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { add(phase, DispatchTime.now().uptimeNanoseconds - t0) }
        return try body()
    }

    public func add(_ phase: StaticString, _ ns: UInt64) {
        guard enabled else { return }
        totals.withLock { $0["\(phase)", default: 0] += ns }
    }

    public func reset() { totals.withLock { $0.removeAll() } }

    /// Seconds per phase, largest first.
    public var report: [(phase: String, seconds: Double)] {
        totals.withLock { t in t.map { ($0.key, Double($0.value) / 1e9) }.sorted { $0.1 > $1.1 } }
    }
}
