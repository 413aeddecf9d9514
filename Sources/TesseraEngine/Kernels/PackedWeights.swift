import CVectorMath
import Synchronization
import TesseraCore

/// Weights packed for decoding. A decoding step multiplies one to a few rows by each
/// weight, so packing the weight's panels on every call (as a general product must) costs
/// as much as the product itself; a decoder instead registers its model's parameters and
/// every weight it multiplies in fp32-fixed is packed on first use and kept. The packed
/// kernel sums each element in the same fixed order, so results are the same bits.
/// Registered parameters must not change while registered (a decoder serves a snapshot).
public enum PackedWeights {
    struct Key: Hashable { let address: UInt; let n: Int; let k: Int; let ldb: Int; let transB: Bool }
    struct State {
        var ranges: [ObjectIdentifier: (lo: UInt, hi: UInt, count: Int)] = [:]
        var packed: [Key: Panels] = [:]
    }
    /// A weight's packed panels: floats, or bf16 for a frozen weight (half the bytes to
    /// read per decoded token, the same bits). Two optionals, not an enum with two class
    /// payloads: Swift keeps such an enum's case in the reference's spare bits, which hides
    /// the buffer from the leak checker, so a cache that lives until exit reads as leaked.
    @usableFromInline struct Panels: @unchecked Sendable {
        let floats: FloatBuffer?
        let halves: BF16Buffer?

        static func f32(_ b: FloatBuffer) -> Panels { Panels(floats: b, halves: nil) }
        static func bf16(_ b: BF16Buffer) -> Panels { Panels(floats: nil, halves: b) }

        var bytes: Int { (floats?.count ?? 0) * 4 + (halves?.count ?? 0) * 2 }

        /// C[:, columns] (+)= alpha · A · op(B)[:, columns]; `columns` starts on a panel.
        @usableFromInline
        func multiply(m: Int, columns: Range<Int>, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int, accumulate: Bool,
                      c: UnsafeMutablePointer<Float>, ldc: Int) {
            let j = columns.lowerBound
            if let p = floats {
                _ = tsr_sgemm_fixed_packed(m, columns.count, k, alpha, a, lda, p.pointer + j * k, accumulate ? 1 : 0, c + j, ldc)
            } else if let p = halves {
                _ = tsr_sgemm_fixed_packed_bf16(m, columns.count, k, alpha, a, lda, p.pointer + j * k, accumulate ? 1 : 0, c + j, ldc)
            }
        }
    }
    static let state = Mutex(State())
    static let registered = Atomic<Int>(0)
    @usableFromInline static var active: Bool { registered.load(ordering: .relaxed) > 0 }

    /// Rows at most for which packed weights are used: a decoder's prompt chunks (128 rows)
    /// as well as its steps, since the packed kernels run rows in passes of eight panel by
    /// panel and reach the processor's FMA rate with AVX-512.
    public static let maxRows = 128

    /// Packs, from now on, the weights inside `buffer` that few-row products use.
    public static func register(_ buffer: FloatBuffer) {
        let lo = UInt(bitPattern: buffer.pointer), hi = lo + UInt(buffer.count * MemoryLayout<Float>.size)
        state.withLock { s in
            let id = ObjectIdentifier(buffer)
            let count = (s.ranges[id]?.count ?? 0) + 1
            s.ranges[id] = (lo, hi, count)
        }
        registered.add(1, ordering: .sequentiallyConsistent)
    }

    /// Drops the registration (and, with the last one, the packed copies of `buffer`).
    public static func unregister(_ buffer: FloatBuffer) {
        state.withLock { s in
            let id = ObjectIdentifier(buffer)
            guard let r = s.ranges[id] else { return }
            if r.count > 1 { s.ranges[id] = (r.lo, r.hi, r.count - 1); return }
            s.ranges[id] = nil
            s.packed = s.packed.filter { $0.key.address < r.lo || $0.key.address >= r.hi }
        }
        registered.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Bytes of packed copies held.
    public static var packedBytes: Int { state.withLock { $0.packed.values.reduce(0) { $0 + $1.bytes } } }

    /// The packed form of op(b) [k, n] when b lies in registered parameters.
    @usableFromInline
    static func lookup(_ b: UnsafePointer<Float>, n: Int, k: Int, ldb: Int, transB: Bool) -> Panels? {
        guard registered.load(ordering: .relaxed) > 0 else { return nil }
        let address = UInt(bitPattern: b)
        let key = Key(address: address, n: n, k: k, ldb: ldb, transB: transB)
        return state.withLock { s -> Panels? in
            if let p = s.packed[key] { return p }
            let span = ((transB ? n : k) - 1) * ldb + (transB ? k : n)
            let end = address + UInt(span) * UInt(MemoryLayout<Float>.size)
            guard s.ranges.values.contains(where: { address >= $0.lo && end <= $0.hi }) else { return nil }
            let panels: Panels
            if let segments = FrozenWeights.segments(b, span: span) {
                if let single = segments.single {
                    let buffer = BF16Buffer(count: tsr_packed_panels_count(n, k))
                    tsr_pack_panels_bf16(transB ? 1 : 0, n, k, single, ldb, buffer.pointer)
                    panels = .bf16(buffer)
                } else if let bits = segments.bf16Copy() {
                    let buffer = BF16Buffer(count: tsr_packed_panels_count(n, k))
                    tsr_pack_panels_bf16(transB ? 1 : 0, n, k, bits, ldb, buffer.pointer)
                    panels = .bf16(buffer)
                } else {
                    // Partly float: packed as floats (widening is exact).
                    let floats = FloatBuffer(count: span)
                    segments.widen(0, span, into: floats.pointer)
                    let buffer = FloatBuffer(count: tsr_packed_panels_count(n, k))
                    tsr_pack_panels(transB ? 1 : 0, n, k, floats.pointer, ldb, buffer.pointer)
                    panels = .f32(buffer)
                }
            } else {
                let buffer = FloatBuffer(count: tsr_packed_panels_count(n, k))
                tsr_pack_panels(transB ? 1 : 0, n, k, b, ldb, buffer.pointer)
                panels = .f32(buffer)
            }
            s.packed[key] = panels
            return panels
        }
    }
}
