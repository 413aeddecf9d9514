/// Lets parallel workers fill distinct slots of a buffer they do not own.
public struct SlotWriter<T>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<T>
    public init(_ base: UnsafeMutablePointer<T>) { self.base = base }
    public func set(_ i: Int, _ v: T) { base[i] = v }
}
