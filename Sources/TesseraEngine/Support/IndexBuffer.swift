#if canImport(Glibc)
import Glibc
import TesseraCore
#endif

/// An owned run of Int32 (token ids, expert indices, dispatch positions), zeroed.
public final class IndexBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Int32>

    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    public var array: [Int32] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
