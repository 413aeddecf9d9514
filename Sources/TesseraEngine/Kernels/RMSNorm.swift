import TesseraCore
/// y = x / sqrt(mean(x²) + eps) · w over rows of length `dim`; saves 1/rms per row for
/// the backward pass. Accumulates in Float as transformers does in float32.
@inlinable
public func rmsNormForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                           _ rinv: UnsafeMutablePointer<Float>, rows: Int, dim: Int, eps: Float) {
    Parallel.ranges(rows, work: rows * dim) { range in
        for r in range {
            let xr = x + r * dim, yr = y + r * dim
            let ss = dot(xr, xr, dim)
            let inv = 1 / (ss / Float(dim) + eps).squareRoot()
            rinv[r] = inv
            for i in 0..<dim { yr[i] = (xr[i] * inv) * w[i] }
        }
    }
}

/// dx += ∂/∂x, dw += ∂/∂w (dw may be nil for a frozen weight, dx nil when not needed).
@inlinable
public func rmsNormBackward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ rinv: UnsafePointer<Float>,
                            _ dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                            rows: Int, dim: Int) {
    if let dw {
        // Column sums over rows: serial over rows keeps the summation order fixed.
        for r in 0..<rows {
            let xr = x + r * dim, gr = dy + r * dim
            let inv = rinv[r]
            for i in 0..<dim { dw[i] += gr[i] * xr[i] * inv }
        }
    }
    guard let dx else { return }
    Parallel.ranges(rows, work: rows * dim) { range in
        for r in range {
            let xr = x + r * dim, gr = dy + r * dim, dxr = dx + r * dim
            let inv = rinv[r]
            var s: Float = 0
            for i in 0..<dim { s += gr[i] * w[i] * xr[i] }
            let c = s * inv * inv / Float(dim)
            for i in 0..<dim { dxr[i] += inv * (gr[i] * w[i] - xr[i] * c) }
        }
    }
}
