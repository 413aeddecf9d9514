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
        var packed: [Key: FloatBuffer] = [:]
    }
    static let state = Mutex(State())
    static let registered = Atomic<Int>(0)

    /// Rows at most for which packed weights are used.
    public static let maxRows = 8

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
    public static var packedBytes: Int { state.withLock { $0.packed.values.reduce(0) { $0 + $1.count * 4 } } }

    /// The packed form of op(b) [k, n] when b lies in registered parameters.
    @usableFromInline
    static func lookup(_ b: UnsafePointer<Float>, n: Int, k: Int, ldb: Int, transB: Bool) -> UnsafePointer<Float>? {
        guard registered.load(ordering: .relaxed) > 0 else { return nil }
        let address = UInt(bitPattern: b)
        let key = Key(address: address, n: n, k: k, ldb: ldb, transB: transB)
        return state.withLock { s -> UnsafePointer<Float>? in
            if let p = s.packed[key] { return UnsafePointer(p.pointer) }
            let span = UInt(((transB ? n : k) - 1) * ldb + (transB ? k : n)) * UInt(MemoryLayout<Float>.size)
            guard s.ranges.values.contains(where: { address >= $0.lo && address + span <= $0.hi }) else { return nil }
            let buffer = FloatBuffer(count: (n + 7) / 8 * 8 * k)
            tsr_pack_panels(transB ? 1 : 0, n, k, b, ldb, buffer.pointer)
            s.packed[key] = buffer
            return UnsafePointer(buffer.pointer)
        }
    }
}
