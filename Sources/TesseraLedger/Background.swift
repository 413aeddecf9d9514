import Dispatch

/// A value computed on another thread; `take` waits for it.
final class Background<T>: @unchecked Sendable {
    private let group = DispatchGroup()
    private var value: T?
    init(_ work: @escaping @Sendable () -> T) {
        DispatchQueue.global().async(group: group) { self.value = work() }
    }
    func take() -> T {
        group.wait()
        return value!
    }
}
