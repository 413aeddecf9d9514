import Synchronization
import TesseraCore

/// Weights trained through low-rank adapters, W = W₀ + B·A, multiplied without W: a
/// product with W is the product with W₀ (frozen, bf16 where the model keeps it so) plus
/// the rank-r correction, X·Wᵀ = X·W₀ᵀ + (X·Aᵀ)·Bᵀ and X·W = X·W₀ + (X·B)·A. Writing W
/// out as floats would cost 4 bytes per adapted parameter: 7.2 GB for 8 experts per layer
/// of DeepSeek-V2-Lite, against 2 for W₀ read from the mapped shards, and a few kB for the
/// factors. By count, the correction costs 2·r·(m·k + m·n) flops against the product's
/// 2·m·n·k, a share of r·(1/n + 1/k): 1% at rank 4 when both sides are 800 wide (its time
/// was not measured apart from the step's).
///
/// Like `FrozenWeights`, this is a registry by address: `gemm` looks its weight operand up
/// here, and `FrozenWeights.read` adds B·A to the values it copies, so the model code
/// never learns which weights are adapted. B and A are read where the adapters keep them,
/// so an optimizer step changes the products with no further call.
public enum AdaptedWeights {
    struct Entry: AddressRange, @unchecked Sendable {
        /// Addresses of W [rows, columns], row-major, in a parameter buffer.
        var lo: UInt, hi: UInt
        var rows: Int, columns: Int, rank: Int
        /// B [rows, rank] and A [rank, columns].
        var b: UnsafePointer<Float>, a: UnsafePointer<Float>
    }
    /// Sorted by `lo`, disjoint.
    static let entries = Mutex<[Entry]>([])
    static let registered = Atomic<Int>(0)
    @usableFromInline static var active: Bool { registered.load(ordering: .relaxed) > 0 }

    /// Adapts W [rows, columns] at `w` by B [rows, rank] at `b` and A [rank, columns] at `a`.
    /// The caller keeps all three alive until `unregister`.
    public static func register(_ w: UnsafePointer<Float>, rows: Int, columns: Int, rank: Int,
                                b: UnsafePointer<Float>, a: UnsafePointer<Float>) {
        precondition(rows > 0 && columns > 0 && rank > 0, "adapted weight: empty shape")
        let lo = UInt(bitPattern: w), hi = lo + UInt(rows * columns * 4)
        entries.withLock { $0.insertDisjoint(Entry(lo: lo, hi: hi, rows: rows, columns: columns, rank: rank, b: b, a: a), "adapted") }
        registered.add(1, ordering: .sequentiallyConsistent)
    }

    /// Ends the adaptation of the weight registered at `w`.
    public static func unregister(_ w: UnsafePointer<Float>) {
        let lo = UInt(bitPattern: w)
        let removed = entries.withLock { list -> Bool in
            let i = list.insertionIndex(lo)
            guard i < list.count, list[i].lo == lo else { return false }
            list.remove(at: i)
            return true
        }
        if removed { registered.subtract(1, ordering: .sequentiallyConsistent) }
    }

    static func overlapping(_ lo: UInt, _ hi: UInt) -> [Entry] {
        entries.withLock { Array($0.overlapping(lo, hi)) }
    }

    /// Where a weight operand starting at `lo` sits in an entry: its row 0 is the entry's
    /// row `row`, its column 0 the entry's column `column` (the operand's leading dimension
    /// must be the entry's width, as every product with a whole weight has it).
    static func origin(of lo: UInt, in e: Entry, ldb: Int, width: Int) -> (row: Int, column: Int) {
        precondition(ldb == e.columns, "a product reads an adapted \(e.rows)×\(e.columns) weight with leading dimension \(ldb)")
        let offset = (Int(bitPattern: lo) - Int(bitPattern: e.lo)) / 4
        let row = offset >= 0 ? offset / e.columns : -((-offset + e.columns - 1) / e.columns)
        let column = offset - row * e.columns
        precondition(column + width <= e.columns, "a product's columns straddle rows of an adapted weight")
        return (row, column)
    }

    /// Adds alpha · op(A) · op(ΔB) to C for every adapted part of the weight operand `b` of
    /// `gemm`, ΔB being B·A of the entries it overlaps.
    @usableFromInline
    static func addCorrections(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                               c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool, precision: MatmulPrecision) {
        let rowsOfB = transB ? n : k, width = transB ? k : n
        let lo = UInt(bitPattern: b), hi = lo + UInt(((rowsOfB - 1) * ldb + width) * 4)
        for e in overlapping(lo, hi) {
            let (r0, c0) = origin(of: lo, in: e, ldb: ldb, width: width)
            let first = max(0, -r0), end = min(rowsOfB, e.rows - r0)
            guard first < end else { continue }
            let r = e.rank
            let t = UnsafeMutablePointer<Float>.allocate(capacity: m * r)
            defer { t.deallocate() }
            if transB {
                // C[:, first..<end] += alpha · (op(A) · A[:, c0..<c0+k]ᵀ) · B[rows]ᵀ
                gemmBase(transA: transA, transB: true, m: m, n: r, k: k, a: a, lda: lda, b: e.a + c0, ldb: e.columns,
                         c: t, ldc: r, parallel: parallel, precision: precision)
                gemmBase(transB: true, m: m, n: end - first, k: r, alpha: alpha, a: t, lda: r, b: e.b + (r0 + first) * r, ldb: r,
                         beta: 1, c: c + first, ldc: ldc, parallel: parallel, precision: precision)
            } else {
                // C += alpha · (op(A)[:, first..<end] · B[rows]) · A[:, c0..<c0+n]
                let aPart = transA ? a + first * lda : a + first
                gemmBase(transA: transA, m: m, n: r, k: end - first, a: aPart, lda: lda, b: e.b + (r0 + first) * r, ldb: r,
                         c: t, ldc: r, parallel: parallel, precision: precision)
                gemmBase(m: m, n: n, k: r, alpha: alpha, a: t, lda: r, b: e.a + c0, ldb: e.columns,
                         beta: 1, c: c, ldc: ldc, parallel: parallel, precision: precision)
            }
        }
    }

    /// Adds B·A to `dst`, a copy of floats [p, p + count) of a parameter buffer.
    static func addDelta(_ p: UnsafePointer<Float>, count: Int, into dst: UnsafeMutablePointer<Float>) {
        let lo = UInt(bitPattern: p), hi = lo + UInt(count * 4)
        for e in overlapping(lo, hi) {
            let start = Int(max(e.lo, lo) - e.lo) / 4, stop = Int(min(e.hi, hi) - e.lo) / 4
            let shift = (Int(bitPattern: e.lo) - Int(bitPattern: lo)) / 4
            for index in start..<stop {
                let i = index / e.columns, j = index % e.columns
                var sum: Float = 0
                for q in 0..<e.rank { sum += e.b[i * e.rank + q] * e.a[q * e.columns + j] }
                dst[index + shift] += sum
            }
        }
    }
}
