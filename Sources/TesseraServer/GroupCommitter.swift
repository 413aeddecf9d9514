import Dispatch
import Foundation
import Synchronization
import TesseraLedger
import TesseraMarket

/// Turns concurrent requests into few durable transactions: each request waits while the
/// actions that arrived together are appended in one transaction (one fsync), then gets its
/// own answer. Appends run on a thread of their own, so SQLite's waits never hold up the
/// server's event loops; a request is acknowledged only after its transaction committed.
final class GroupCommitter: Sendable {
    private struct Pending: Sendable {
        let action: SignedAction
        let done: CheckedContinuation<Ledger.Outcome, Error>
    }
    private let market: LocalMarket
    private let queue = Mutex<(pending: [Pending], flushing: Bool)>(([], false))
    private let worker = DispatchQueue(label: "tessera.group-commit")
    /// Largest group: a transaction of thousands of actions holds the lock for long.
    let maxGroup: Int
    let onAppended: @Sendable (Int) -> Void

    init(market: LocalMarket, maxGroup: Int = 512, onAppended: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.market = market
        self.maxGroup = maxGroup
        self.onAppended = onAppended
    }

    func append(_ action: SignedAction) async throws -> Ledger.Outcome {
        try await withCheckedThrowingContinuation { c in
            let start = queue.withLock { q -> Bool in
                q.pending.append(Pending(action: action, done: c))
                if q.flushing { return false }
                q.flushing = true
                return true
            }
            if start { worker.async { self.drain() } }
        }
    }

    private func drain() {
        while true {
            let group = queue.withLock { q -> [Pending] in
                let n = min(q.pending.count, maxGroup)
                let g = Array(q.pending.prefix(n))
                q.pending.removeFirst(n)
                if g.isEmpty { q.flushing = false }
                return g
            }
            if group.isEmpty { return }
            do {
                let results = try market.postEach(group.map(\.action))
                var appended = 0
                for (p, r) in zip(group, results) {
                    if case .success(.appended) = r { appended += 1 }
                    p.done.resume(with: r)
                }
                if appended > 0 { onAppended(appended) }
            } catch {
                for p in group { p.done.resume(throwing: error) }
            }
        }
    }
}

/// Writes per key: a token bucket of `burst` tokens refilled at `perSecond`.
final class RateLimiter: Sendable {
    let perSecond: Double
    let burst: Double
    private let buckets = Mutex<[String: (tokens: Double, at: Double)]>([:])

    init(perSecond: Double, burst: Double) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// Takes one token for `key`; nil when allowed, else the seconds to wait.
    func take(_ key: String, now: Double = Date().timeIntervalSince1970) -> Double? {
        guard perSecond > 0 else { return nil }
        return buckets.withLock { b in
            var entry = b[key] ?? (burst, now)
            entry.tokens = min(burst, entry.tokens + (now - entry.at) * perSecond)
            entry.at = now
            defer { b[key] = entry }
            guard entry.tokens >= 1 else { return (1 - entry.tokens) / perSecond }
            entry.tokens -= 1
            if b.count > 100_000 { b = b.filter { now - $0.value.at < 60 } }
            return nil
        }
    }

    /// Gives back the token of a write that turned out not to be `key`'s (its signature
    /// did not verify), so that nobody can spend another key's allowance by forging.
    func refund(_ key: String) {
        buckets.withLock { b in
            if var entry = b[key] { entry.tokens = min(burst, entry.tokens + 1); b[key] = entry }
        }
    }
}
