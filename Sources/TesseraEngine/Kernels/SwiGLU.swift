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
    @inlinable public init(_ w: MLPWeights, base: UnsafeMutablePointer<Float>) {
        precondition(w.up.offset == w.gate.offset + w.gate.count, "up rows must follow gate rows")
        gateUp = base + w.gate.offset
        down = base + w.down.offset
        width = w.width
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
    if let grads {
        swigluActivate(gu, scratchA, rows: rows, width: W, parallel: parallel)
        linearBackwardWeight(dy, scratchA, grads.down, rows: rows, inDim: W, outDim: hidden, parallel: parallel, precision: precision)
    }
    linearBackwardInput(dy, w.down, scratchA, rows: rows, inDim: W, outDim: hidden, accumulate: false, parallel: parallel, precision: precision)
    swigluActivateBackward(gu, scratchA, scratchB, rows: rows, width: W, parallel: parallel)
    if let grads { linearBackwardWeight(scratchB, x, grads.gateUp, rows: rows, inDim: hidden, outDim: 2 * W, parallel: parallel, precision: precision) }
    if let dx { linearBackwardInput(scratchB, w.gateUp, dx, rows: rows, inDim: hidden, outDim: 2 * W, parallel: parallel, precision: precision) }
}
