import CWorkerPool
import Dispatch

/// Work is split across cores in Swift (the engine runs OpenBLAS single-threaded, because
/// its threads are process-wide and would fight with ours). Splitting is by fixed row
/// blocks, so the result of a row never depends on how many workers ran.
public enum Parallel {
    public static let workers: Int = max(1, min(System.coreCount, 64))

    /// Runs body(i) for i in 0..<n, spread over the workers.
    @inlinable public static func forEach(_ n: Int, _ body: (Int) -> Void) {
        if n <= 0 { return }
        if n == 1 || workers == 1 {
            for i in 0..<n { body(i) }
            return
        }
        spread(n, body)
    }

    /// The worker pool (`CWorkerPool`: helpers that spin briefly between regions, so short
    /// regions do not pay for waking a thread), or Dispatch when the pool is busy with
    /// another caller's work or is asked from inside its own.
    @usableFromInline static func spread(_ n: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { b in
            var closure = b
            let pooled = withUnsafeMutablePointer(to: &closure) { pointer in
                tsr_pool_run(n, { context, i in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(i)
                }, pointer, Int32(workers)) == 0
            }
            if pooled { return }
            let box = UncheckedBox(b)
            DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
        }
    }

    /// Runs body(part, range) over at most `workers` contiguous parts of 0..<total, so
    /// each part can own a scratch buffer indexed by `part`.
    @inlinable public static func parts(_ total: Int, _ body: (Int, Range<Int>) -> Void) {
        if total <= 0 { return }
        let w = min(workers, total)
        let per = (total + w - 1) / w
        let n = (total + per - 1) / per
        forEach(n) { i in body(i, (i * per)..<min(total, (i + 1) * per)) }
    }

    /// Splits 0..<total into `workers` contiguous ranges (each a multiple of `granule`
    /// except the last) and runs them in parallel when `work` is large enough.
    @inlinable public static func ranges(_ total: Int, granule: Int = 1, work: Int = .max, _ body: (Range<Int>) -> Void) {
        let w = (work < 1 << 16 || total <= granule) ? 1 : workers
        if w == 1 { body(0..<total); return }
        let chunks = (total + granule - 1) / granule
        let per = (chunks + w - 1) / w
        let parts = (chunks + per - 1) / per
        forEach(parts) { i in
            let lo = i * per * granule
            let hi = min(total, lo + per * granule)
            if lo < hi { body(lo..<hi) }
        }
    }
}

public enum System {
    public static var coreCount: Int {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return 1
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Carries a non-Sendable closure into concurrentPerform, which runs it only while the
/// caller waits; callers split work so that no two iterations write the same memory.
@usableFromInline struct UncheckedBox<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(_ value: T) { self.value = value }
}
