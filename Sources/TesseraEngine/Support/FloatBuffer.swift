#if canImport(Glibc)
import Glibc
import TesseraCore
#endif

/// An owned, 64-byte-aligned, zero-initialised run of Floats. Large buffers come from
/// anonymous memory maps, whose pages cost nothing until touched: a full-size gradient
/// buffer for a sparse update only occupies the pages of the trainable tensors. They are
/// mapped without a swap reservation (MAP_NORESERVE): the kernel's overcommit heuristic
/// otherwise refuses a map larger than memory, which a partially resident model of 7 B
/// parameters (28 GB as floats, a few GB touched) is.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    private let mappedBytes: Int

    /// Bytes of the buffers `body` allocates on this task, such as a run's activation
    /// buffers (what a memory estimate before training needs). Counted per task, not as
    /// a difference of a process-wide total, which other threads' buffers would skew.
    public static func allocatedBytes<T>(_ body: () throws -> T) rethrows -> (value: T, bytes: Int) {
        let tally = LockedValue(0)
        let value = try $tally.withValue(tally) { try body() }
        return (value, tally.withLock { $0 })
    }
    @TaskLocal private static var tally: LockedValue<Int>?

    public init(count: Int) {
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        Self.tally?.withLock { $0 += bytes }
        if bytes >= 1 << 20 {
            let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else { fatalError("out of memory: cannot map \(bytes) bytes") }
            pointer = p.bindMemory(to: Float.self, capacity: max(count, 1))
            mappedBytes = bytes
        } else {
            var raw: UnsafeMutableRawPointer? = nil
            guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory: \(bytes) bytes") }
            memset(raw, 0, bytes)
            pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
            mappedBytes = 0
        }
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit {
        FrozenWeights.thaw(pointer, count: count, keep: false)
        if mappedBytes > 0 { munmap(pointer, mappedBytes) } else { free(pointer) }
    }

    public func zero() { memset(pointer, 0, count * MemoryLayout<Float>.stride) }
    public func zero(_ view: ParamView) { memset(pointer + view.offset, 0, view.count * MemoryLayout<Float>.stride) }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    public func array(_ view: ParamView) -> [Float] { Array(UnsafeBufferPointer(start: pointer + view.offset, count: view.count)) }

    @inlinable public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }
}
