#if canImport(Glibc)
import Glibc
#endif
import CVectorMath
import Synchronization
import TesseraCore

/// Frozen weights kept in bf16, their checkpoint precision, instead of float32 in the
/// parameter buffer: a model of 7 B parameters is 28 GB as floats and 14 GB as bf16, most
/// of it read straight from the page cache of the memory-mapped shards.
///
/// A range of a parameter buffer is *backed* by bf16 values elsewhere (a mapped file, or
/// an anonymous buffer); its float pages are never touched. Every matrix product looks its
/// weight up here by address (`gemm`, the packed few-row products), so the model code keeps
/// computing with parameter pointers and never learns which weights are frozen. A backed
/// weight is widened to float a block of columns at a time, and widening is exact, so a
/// product gives the same bits as with the float weight (fp32-fixed sums each element in
/// the same order whatever the blocking). Code that reads parameter values other than
/// through a product goes through `read` (embedding rows, saving, deltas); code that writes
/// them thaws the range first (`thaw`: training, merging a new version).
public enum FrozenWeights {
    struct Entry: AddressRange, @unchecked Sendable {
        var lo: UInt, hi: UInt
        var source: UnsafeRawPointer
        var owner: AnyObject
    }
    /// Sorted by `lo`, disjoint.
    static let entries = Mutex<[Entry]>([])
    static let registered = Atomic<Int>(0)
    /// Whether any range is backed (a product's one check when none is).
    @usableFromInline static var active: Bool { registered.load(ordering: .relaxed) > 0 }

    /// Whether `thaw` and `register` guard backed float pages (PROT_NONE) so that a read
    /// that misses this registry faults instead of computing with zeros: in debug builds
    /// (every test) only, since each guarded range costs kernel mappings.
    #if DEBUG
    static let guardPages = true
    #else
    static let guardPages = false
    #endif

    /// Backs floats [p, p + count) by `count` bf16 values at `source` (any alignment),
    /// which `owner` keeps alive. The range must not overlap a backed one.
    public static func register(_ p: UnsafeMutablePointer<Float>, count: Int, source: UnsafeRawPointer, owner: AnyObject) {
        guard count > 0 else { return }
        let lo = UInt(bitPattern: p), hi = lo + UInt(count * 4)
        let entry = Entry(lo: lo, hi: hi, source: source, owner: owner)
        entries.withLock { $0.insertDisjoint(entry, "frozen") }
        registered.add(1, ordering: .sequentiallyConsistent)
        protect(lo, hi, PROT_NONE)
    }

    /// Makes every backed range overlapping [p, p + count) float again, widening its
    /// values into the buffer; without `keep`, those inside [p, p + count) are left to be
    /// overwritten (the parts of a range outside it are always widened).
    public static func thaw(_ p: UnsafeMutablePointer<Float>, count: Int, keep: Bool = true) {
        guard registered.load(ordering: .relaxed) > 0, count > 0 else { return }
        let lo = UInt(bitPattern: p), hi = lo + UInt(count * 4)
        let removed = entries.withLock { list -> [Entry] in
            var out: [Entry] = []
            var i = max(0, list.insertionIndex(lo) - 1)
            while i < list.count, list[i].lo < hi {
                if list[i].hi > lo { out.append(list.remove(at: i)) } else { i += 1 }
            }
            return out
        }
        for e in removed {
            protect(e.lo, e.hi, PROT_READ | PROT_WRITE)
            let pieces = keep ? [(e.lo, e.hi)] : [(e.lo, min(e.hi, lo)), (max(e.lo, hi), e.hi)]
            for (a, b) in pieces where a < b {
                if let f = UnsafeMutablePointer<Float>(bitPattern: a) { tsr_bf16_to_f32(e.source + Int(a - e.lo) / 2, f, Int(b - a) / 4) }
            }
            registered.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// What `swap` replaced, for `restore`.
    public struct Swapped: @unchecked Sendable {
        fileprivate let replaced: [Entry]
        fileprivate let lo: UInt
    }

    /// Backs floats [p, p + count) by other bf16 values (a candidate's weights) in place
    /// of the ranges that back it now, without widening anything: swapping and restoring
    /// cost no float pages. Nil, and nothing changed, unless the backed ranges lie inside
    /// [p, p + count) and cover it whole. Nothing reads the replaced ranges until `restore`,
    /// so the pages of those a mapped file backs are dropped from this process's memory
    /// (a validator holding the whole model would otherwise hold the base and the candidate):
    /// the map is read-only, and a read after `restore` faults them in again from the file.
    public static func swap(_ p: UnsafeMutablePointer<Float>, count: Int, source: UnsafeRawPointer, owner: AnyObject) -> Swapped? {
        guard registered.load(ordering: .relaxed) > 0, count > 0 else { return nil }
        let lo = UInt(bitPattern: p), hi = lo + UInt(count * 4)
        let swapped = entries.withLock { list -> Swapped? in
            let first = max(0, list.insertionIndex(lo) - 1)
            var i = first, covered = lo
            while i < list.count, list[i].lo < hi {
                let e = list[i]
                if e.hi > lo {
                    guard e.lo == covered, e.hi <= hi else { return nil }
                    covered = e.hi
                }
                i += 1
            }
            guard covered == hi else { return nil }
            let start = list.insertionIndex(lo)
            let replaced = Array(list[start..<i])
            list.replaceSubrange(start..<i, with: [Entry(lo: lo, hi: hi, source: source, owner: owner)])
            registered.add(1 - replaced.count, ordering: .sequentiallyConsistent)
            return Swapped(replaced: replaced, lo: lo)
        }
        for e in swapped?.replaced ?? [] {
            guard let file = e.owner as? SafetensorsFile else { continue }
            file.release(UnsafeRawBufferPointer(start: e.source, count: Int(e.hi - e.lo) / 2))
        }
        return swapped
    }

    /// Puts back the ranges `swap` replaced.
    public static func restore(_ swapped: Swapped) {
        entries.withLock { list in
            let i = list.insertionIndex(swapped.lo)
            precondition(i < list.count && list[i].lo == swapped.lo, "restoring a frozen range that was not swapped")
            list.replaceSubrange(i...i, with: swapped.replaced)
        }
        registered.add(swapped.replaced.count - 1, ordering: .sequentiallyConsistent)
    }

    /// The backed parts of floats [p, p + span) (nil when there are none): one product's
    /// weight may span several ranges, as a gate and an up projection multiplied as one.
    @usableFromInline
    static func segments(_ p: UnsafePointer<Float>, span: Int) -> Segments? {
        guard registered.load(ordering: .relaxed) > 0, span > 0 else { return nil }
        let lo = UInt(bitPattern: p), hi = lo + UInt(span * 4)
        let list = entries.withLock { list -> [Segments.Part] in
            list.overlapping(lo, hi).map { e in
                let a = max(e.lo, lo), b = min(e.hi, hi)
                return .init(start: Int(a - lo) / 4, end: Int(b - lo) / 4, source: e.source + Int(a - e.lo) / 2)
            }
        }
        return list.isEmpty ? nil : Segments(base: p, span: span, parts: list)
    }

    /// Whether any float of [p, p + count) is backed.
    public static func overlaps(_ p: UnsafePointer<Float>, count: Int) -> Bool {
        guard registered.load(ordering: .relaxed) > 0, count > 0 else { return false }
        let lo = UInt(bitPattern: p), hi = lo + UInt(count * 4)
        return entries.withLock { !$0.overlapping(lo, hi).isEmpty }
    }

    /// Copies floats [p, p + count) to `dst`, widening the backed parts.
    /// A weight trained through adapters reads as W₀ + B·A (`AdaptedWeights`).
    public static func read(_ p: UnsafePointer<Float>, count: Int, into dst: UnsafeMutablePointer<Float>) {
        readStored(p, count: count, into: dst)
        if AdaptedWeights.active { AdaptedWeights.addDelta(p, count: count, into: dst) }
    }

    static func readStored(_ p: UnsafePointer<Float>, count: Int, into dst: UnsafeMutablePointer<Float>) {
        guard registered.load(ordering: .relaxed) > 0 else { dst.update(from: p, count: count); return }
        let lo = UInt(bitPattern: p), hi = lo + UInt(count * 4)
        let parts = entries.withLock { list -> [(lo: UInt, hi: UInt, source: UnsafeRawPointer)] in
            list.overlapping(lo, hi).map { e in (max(e.lo, lo), min(e.hi, hi), e.source + Int(max(e.lo, lo) - e.lo) / 2) }
        }
        var at = lo
        func floats(_ a: UInt, _ b: UInt) -> Int { Int(b - a) / 4 }
        for part in parts {
            if part.lo > at { (dst + floats(lo, at)).update(from: p + floats(lo, at), count: floats(at, part.lo)) }
            tsr_bf16_to_f32(part.source, dst + floats(lo, part.lo), floats(part.lo, part.hi))
            at = part.hi
        }
        if at < hi { (dst + floats(lo, at)).update(from: p + floats(lo, at), count: floats(at, hi)) }
    }

    /// `read` as an array.
    public static func array(_ p: UnsafePointer<Float>, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, n in
            if count > 0 { read(p, count: count, into: out.baseAddress!) }
            n = count
        }
    }

    /// Bytes of float parameters in `addresses` that are backed (twice their bf16 bytes).
    public static func backedBytes(in addresses: Range<UInt>) -> Int {
        entries.withLock { $0.reduce(0) { $0 + ($1.lo >= addresses.lowerBound && $1.hi <= addresses.upperBound ? Int($1.hi - $1.lo) : 0) } }
    }

    static func protect(_ lo: UInt, _ hi: UInt, _ flags: Int32) {
        guard guardPages else { return }
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let first = (lo + page - 1) / page * page, last = hi / page * page
        guard first < last, let start = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = mprotect(start, Int(last - first), flags)
    }
}

/// The backed parts of one product's weight, found once per product, so that widening
/// its rows takes no lock.
@usableFromInline
struct Segments: @unchecked Sendable {
    struct Part { var start: Int, end: Int, source: UnsafeRawPointer }
    let base: UnsafePointer<Float>
    let span: Int
    let parts: [Part]

    /// One run backed from end to end: its bf16 values, contiguous.
    var single: UnsafeRawPointer? { parts.count == 1 && parts[0].start == 0 && parts[0].end == span ? parts[0].source : nil }

    /// Floats [offset, offset + count) of the weight, widened where backed.
    func widen(_ offset: Int, _ count: Int, into dst: UnsafeMutablePointer<Float>) {
        var a = 0, b = parts.count
        while a < b { let m = (a + b) / 2; if parts[m].end <= offset { a = m + 1 } else { b = m } }
        var at = offset
        let end = offset + count
        while at < end {
            if a < parts.count, parts[a].start <= at {
                let stop = min(parts[a].end, end)
                tsr_bf16_to_f32(parts[a].source + 2 * (at - parts[a].start), dst + (at - offset), stop - at)
                at = stop
                a += 1
            } else {
                let stop = a < parts.count ? min(parts[a].start, end) : end
                (dst + (at - offset)).update(from: base + at, count: stop - at)
                at = stop
            }
        }
    }

    /// The whole weight as bf16 bits, when every float of it is backed.
    func bf16Copy() -> [UInt16]? {
        var covered = 0
        for p in parts { guard p.start == covered else { return nil }; covered = p.end }
        guard covered == span else { return nil }
        var out = [UInt16](repeating: 0, count: span)
        out.withUnsafeMutableBytes { raw in
            for p in parts { (raw.baseAddress! + 2 * p.start).copyMemory(from: p.source, byteCount: 2 * (p.end - p.start)) }
        }
        return out
    }
}

/// bf16 storage in anonymous memory (MXFP4 experts decoded, or shards whose bf16 values
/// are not 2-byte aligned in the file).
public final class BF16Buffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<UInt16>
    public let count: Int
    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
    }

    /// `values` as bf16, when every one is a bf16 value (nil otherwise): a bf16
    /// checkpoint's or library's weights are, and keeping them so changes no bit.
    public convenience init?(exactly values: [Float]) {
        self.init(count: values.count)
        for (i, v) in values.enumerated() {
            guard v.bitPattern & 0xFFFF == 0 else { return nil }
            pointer[i] = UInt16(v.bitPattern >> 16)
        }
    }
    deinit { pointer.deallocate() }
}

/// The product of `gemm` when op(B) is a backed weight: each worker widens a block of
/// op(B)'s columns to float and multiplies it, so the split depends on n alone.
@usableFromInline
func gemmFrozen(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                b: Segments, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                parallel: Bool, precision: MatmulPrecision) {
    let block = 64
    Parallel.ranges(n, granule: block, work: parallel ? m * n * k / 64 : 0) { cols in
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * k)
        defer { scratch.deallocate() }
        var j0 = cols.lowerBound
        while j0 < cols.upperBound {
            let nb = min(block, cols.upperBound - j0)
            if transB {
                for j in 0..<nb { b.widen((j0 + j) * ldb, k, into: scratch + j * k) }
                gemmBase(transA: transA, transB: true, m: m, n: nb, k: k, alpha: alpha, a: a, lda: lda, b: scratch, ldb: k,
                     beta: beta, c: c + j0, ldc: ldc, parallel: false, precision: precision)
            } else {
                for p in 0..<k { b.widen(p * ldb + j0, nb, into: scratch + p * nb) }
                gemmBase(transA: transA, transB: false, m: m, n: nb, k: k, alpha: alpha, a: a, lda: lda, b: scratch, ldb: nb,
                     beta: beta, c: c + j0, ldc: ldc, parallel: false, precision: precision)
            }
            j0 += nb
        }
    }
}
