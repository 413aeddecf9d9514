import CVectorMath

/// The engine's small vector kernels run in C (CVectorMath): AVX2 where the processor has
/// it, a portable path elsewhere, identical to the last bit. Built without CPU-specific
/// flags, Swift's own SIMD code would run on every x86-64 processor but in SSE only.

/// In-place softmax of one row; rows of length 0 are left alone.
@inlinable
public func softmaxRow(_ x: UnsafeMutablePointer<Float>, _ n: Int) { tsr_softmax_row(x, n) }

/// Dot product of two runs, accumulated in 8 lanes.
@inlinable
public func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float { tsr_dot(a, b, n) }

/// y += alpha · x
@inlinable
public func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) { tsr_axpy(alpha, x, y, n) }

/// Which vector path the kernels take: `avx2`, or `portable` on processors without AVX2.
public enum VectorPath: String, Sendable, CaseIterable {
    case portable, avx2

    public static var available: [VectorPath] { tsr_vector_math_avx2_available() == 1 ? [.portable, .avx2] : [.portable] }

    /// Runs `body` with the kernels forced onto `path` (tests and benchmarks only: the
    /// choice is process-wide while `body` runs).
    public static func with<T>(_ path: VectorPath, _ body: () throws -> T) rethrows -> T {
        let previous = tsr_vector_math_force(path == .avx2 ? 1 : 0)
        defer { _ = tsr_vector_math_force(previous) }
        return try body()
    }
}

/// y[r] += b for every row of y [rows, dim] (a bias added to a product).
@inlinable func addRowBias(_ y: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, rows: Int, dim: Int) {
    for r in 0..<rows { axpy(1, b, y + r * dim, dim) }
}

/// out += Σ_r d[r] over rows of d [rows, dim] (a bias's gradient), rows in order.
@inlinable func columnSums(_ d: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int, dim: Int) {
    for r in 0..<rows { axpy(1, d + r * dim, out, dim) }
}
