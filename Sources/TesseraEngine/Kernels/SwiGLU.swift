import Foundation
import CVectorMath
import TesseraCore

/// a[r, i] = silu(gu[r, i]) · gu[r, W + i] for rows of gu = [gate | up] (2W wide).
@inlinable
public func swigluActivate(_ gu: UnsafePointer<Float>, _ a: UnsafeMutablePointer<Float>, rows: Int, width W: Int, parallel: Bool = true) {
    Parallel.ranges(rows, work: parallel ? rows * W * 8 : 0) { range in
        tsr_swiglu_forward(gu + range.lowerBound * 2 * W, a + range.lowerBound * W, range.count, W)
    }
}

/// Given da = ∂L/∂a [rows, W], writes ∂L/∂gu [rows, 2W]: dg = da · u · silu'(g) in the
/// first half of each row, du = da · silu(g) in the second.
@inlinable
public func swigluActivateBackward(_ gu: UnsafePointer<Float>, _ da: UnsafePointer<Float>, _ dgu: UnsafeMutablePointer<Float>,
                                   rows: Int, width W: Int, parallel: Bool = true) {
    Parallel.ranges(rows, work: parallel ? rows * W * 8 : 0) { range in
        tsr_swiglu_backward(gu + range.lowerBound * 2 * W, da + range.lowerBound * W, dgu + range.lowerBound * 2 * W, range.count, W)
    }
}

/// The weights of one SwiGLU MLP as pointers into a parameter-shaped buffer: gate and
/// up rows together as one [2·width, hidden] matrix, then down [hidden, width].
public struct MLPPointers {
    public var gateUp: UnsafeMutablePointer<Float>
    public var down: UnsafeMutablePointer<Float>
    public var width: Int
    /// gpt-oss's form (see `MLPWeights.interleavedClamped`).
    public var interleavedClamped: ClampedSwiGLU?
    public var gateUpBias: UnsafeMutablePointer<Float>?
    public var downBias: UnsafeMutablePointer<Float>?
    @inlinable public init(_ w: MLPWeights, base: UnsafeMutablePointer<Float>) {
        precondition(w.up.offset == w.gate.offset + w.gate.count, "up rows must follow gate rows")
        gateUp = base + w.gate.offset
        down = base + w.down.offset
        width = w.width
        interleavedClamped = w.interleavedClamped
        gateUpBias = w.gateUpBias.map { base + $0.offset }
        downBias = w.downBias.map { base + $0.offset }
    }
}

/// gpt-oss's activation over rows of interleaved [g₀, u₀, g₁, u₁, …]:
/// a = (clamp(u, ±L) + 1) · g' σ(α g'), g' = min(g, L).
@inlinable
public func clampedSwigluActivate(_ gu: UnsafePointer<Float>, _ a: UnsafeMutablePointer<Float>, rows: Int, width W: Int, _ f: ClampedSwiGLU) {
    for i in 0..<(rows * W) {
        let g = min(gu[2 * i], f.limit), u = min(max(gu[2 * i + 1], -f.limit), f.limit)
        a[i] = (u + 1) * g / (1 + Foundation.exp(-f.alpha * g))
    }
}

/// Backward of `clampedSwigluActivate`: ∂L/∂gu from ∂L/∂a; clamps pass the gradient where
/// the input lies within their bounds (bounds included), as torch's clamp does.
@inlinable
public func clampedSwigluBackward(_ gu: UnsafePointer<Float>, _ da: UnsafePointer<Float>, _ dgu: UnsafeMutablePointer<Float>,
                                  rows: Int, width W: Int, _ f: ClampedSwiGLU) {
    for i in 0..<(rows * W) {
        let rawG = gu[2 * i], rawU = gu[2 * i + 1]
        let g = min(rawG, f.limit), u = min(max(rawU, -f.limit), f.limit)
        let s = 1 / (1 + Foundation.exp(-f.alpha * g))
        let glu = g * s
        dgu[2 * i + 1] = rawU >= -f.limit && rawU <= f.limit ? da[i] * glu : 0
        dgu[2 * i] = rawG <= f.limit ? da[i] * (u + 1) * (s + g * f.alpha * s * (1 - s)) : 0
    }
}


/// y = down(silu(gate x) · up x) for `rows` contiguous rows; keeps gu = [gate x | up x]
/// [rows, 2·width] for the backward pass. `a` is scratch of rows · width. With
/// `parallel` false everything runs on the calling thread (the caller spreads experts).
@inlinable
public func mlpForward(_ x: UnsafePointer<Float>, _ w: MLPPointers, rows: Int, hidden: Int,
                       gu: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
                       parallel: Bool = true, precision: MatmulPrecision = .fp32) {
    if rows == 0 { return }
    if let f = w.interleavedClamped {
        let W = w.width
        gemm(m: rows, n: 2 * W, k: hidden, a: x, lda: hidden, b: w.gateUp, ldb: 2 * W, c: gu, ldc: 2 * W, parallel: parallel, precision: precision)
        if let b = w.gateUpBias { addRowBias(gu, b, rows: rows, dim: 2 * W) }
        clampedSwigluActivate(gu, a, rows: rows, width: W, f)
        gemm(m: rows, n: hidden, k: W, a: a, lda: W, b: w.down, ldb: hidden, c: y, ldc: hidden, parallel: parallel, precision: precision)
        if let b = w.downBias { addRowBias(y, b, rows: rows, dim: hidden) }
        return
    }
    linearForward(x, w.gateUp, gu, rows: rows, inDim: hidden, outDim: 2 * w.width, parallel: parallel, precision: precision)
    swigluActivate(gu, a, rows: rows, width: w.width, parallel: parallel)
    linearForward(a, w.down, y, rows: rows, inDim: w.width, outDim: hidden, parallel: parallel, precision: precision)
}

/// Backward of `mlpForward`. Weight gradients go to `grads` when given (the MLP is
/// trainable), input gradients are added to `dx` when given. `scratchA` holds
/// rows · width floats, `scratchB` rows · 2 · width.
@inlinable
public func mlpBackward(_ x: UnsafePointer<Float>, _ w: MLPPointers, rows: Int, hidden: Int,
                        gu: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                        grads: MLPPointers?, dx: UnsafeMutablePointer<Float>?,
                        scratchA: UnsafeMutablePointer<Float>, scratchB: UnsafeMutablePointer<Float>, parallel: Bool = true,
                        precision: MatmulPrecision = .fp32) {
    if rows == 0 || (grads == nil && dx == nil) { return }
    let W = w.width
    if let f = w.interleavedClamped {
        if let grads {
            clampedSwigluActivate(gu, scratchA, rows: rows, width: W, f)
            gemm(transA: true, m: W, n: hidden, k: rows, a: scratchA, lda: W, b: dy, ldb: hidden, beta: 1, c: grads.down, ldc: hidden,
                 parallel: parallel, precision: precision)
            if let db = grads.downBias { columnSums(dy, into: db, rows: rows, dim: hidden) }
        }
        gemm(transB: true, m: rows, n: W, k: hidden, a: dy, lda: hidden, b: w.down, ldb: hidden, c: scratchA, ldc: W,
             parallel: parallel, precision: precision)
        clampedSwigluBackward(gu, scratchA, scratchB, rows: rows, width: W, f)
        if let grads {
            gemm(transA: true, m: hidden, n: 2 * W, k: rows, a: x, lda: hidden, b: scratchB, ldb: 2 * W, beta: 1, c: grads.gateUp, ldc: 2 * W,
                 parallel: parallel, precision: precision)
            if let gb = grads.gateUpBias { columnSums(scratchB, into: gb, rows: rows, dim: 2 * W) }
        }
        if let dx {
            gemm(transB: true, m: rows, n: hidden, k: 2 * W, a: scratchB, lda: 2 * W, b: w.gateUp, ldb: 2 * W, beta: 1, c: dx, ldc: hidden,
                 parallel: parallel, precision: precision)
        }
        return
    }
    if let grads {
        swigluActivate(gu, scratchA, rows: rows, width: W, parallel: parallel)
        linearBackwardWeight(dy, scratchA, grads.down, rows: rows, inDim: W, outDim: hidden, parallel: parallel, precision: precision)
    }
    linearBackwardInput(dy, w.down, scratchA, rows: rows, inDim: W, outDim: hidden, accumulate: false, parallel: parallel, precision: precision)
    swigluActivateBackward(gu, scratchA, scratchB, rows: rows, width: W, parallel: parallel)
    if let grads { linearBackwardWeight(scratchB, x, grads.gateUp, rows: rows, inDim: hidden, outDim: 2 * W, parallel: parallel, precision: precision) }
    if let dx { linearBackwardInput(scratchB, w.gateUp, dx, rows: rows, inDim: hidden, outDim: 2 * W, parallel: parallel, precision: precision) }
}
