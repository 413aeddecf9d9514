/// a = silu(g) · u, elementwise over n values.
@inlinable
public func swigluActivate(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ a: UnsafeMutablePointer<Float>, _ n: Int) {
    Parallel.ranges(n, granule: 1024, work: n * 8) { range in
        var i = range.lowerBound
        while i < range.upperBound {
            let c = min(8, range.upperBound - i)
            let gv = load8(g + i, c, fill: 0)
            let s = 1 / (1 + exp8(-gv))
            store8(gv * s * load8(u + i, c, fill: 0), a + i, c)
            i += 8
        }
    }
}

/// Given da = ∂L/∂a: dg = da · u · silu'(g) and du = da · silu(g), written over `da` (dg)
/// and `du`.
@inlinable
public func swigluActivateBackward(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>,
                                   _ da: UnsafeMutablePointer<Float>, _ du: UnsafeMutablePointer<Float>, _ n: Int) {
    Parallel.ranges(n, granule: 1024, work: n * 8) { range in
        var i = range.lowerBound
        while i < range.upperBound {
            let c = min(8, range.upperBound - i)
            let gv = load8(g + i, c, fill: 0)
            let s = 1 / (1 + exp8(-gv))
            let d = load8(da + i, c, fill: 0)
            store8(d * gv * s, du + i, c)
            store8(d * load8(u + i, c, fill: 0) * s * (1 + gv * (1 - s)), da + i, c)
            i += 8
        }
    }
}

/// The weights of one SwiGLU MLP as pointers into the parameter buffer.
public struct MLPPointers {
    public var gate: UnsafeMutablePointer<Float>
    public var up: UnsafeMutablePointer<Float>
    public var down: UnsafeMutablePointer<Float>
    public var width: Int
    @inlinable public init(_ w: MLPWeights, base: UnsafeMutablePointer<Float>) {
        gate = base + w.gate.offset
        up = base + w.up.offset
        down = base + w.down.offset
        width = w.width
    }
}

/// y = down(silu(gate x) · up x) for `rows` contiguous rows; keeps g and u for backward.
/// `a` is scratch of rows · width.
@inlinable
public func mlpForward(_ x: UnsafePointer<Float>, _ w: MLPPointers, rows: Int, hidden: Int,
                       g: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>,
                       y: UnsafeMutablePointer<Float>) {
    if rows == 0 { return }
    linearForward(x, w.gate, g, rows: rows, inDim: hidden, outDim: w.width)
    linearForward(x, w.up, u, rows: rows, inDim: hidden, outDim: w.width)
    swigluActivate(g, u, a, rows * w.width)
    linearForward(a, w.down, y, rows: rows, inDim: w.width, outDim: hidden)
}

/// Backward of `mlpForward`. Weight gradients go to `grads` when given (the MLP is
/// trainable), input gradients are added to `dx` when given. `scratchA`, `scratchB`
/// hold rows · width each.
@inlinable
public func mlpBackward(_ x: UnsafePointer<Float>, _ w: MLPPointers, rows: Int, hidden: Int,
                        g: UnsafePointer<Float>, u: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                        grads: MLPPointers?, dx: UnsafeMutablePointer<Float>?,
                        scratchA: UnsafeMutablePointer<Float>, scratchB: UnsafeMutablePointer<Float>) {
    if rows == 0 || (grads == nil && dx == nil) { return }
    let n = rows * w.width
    if let grads {
        swigluActivate(g, u, scratchA, n)
        linearBackwardWeight(dy, scratchA, grads.down, rows: rows, inDim: w.width, outDim: hidden)
    }
    // scratchB = da, then dg in place; scratchA = du.
    linearBackwardInput(dy, w.down, scratchB, rows: rows, inDim: w.width, outDim: hidden, accumulate: false)
    swigluActivateBackward(g, u, scratchB, scratchA, n)
    if let grads {
        linearBackwardWeight(scratchB, x, grads.gate, rows: rows, inDim: hidden, outDim: w.width)
        linearBackwardWeight(scratchA, x, grads.up, rows: rows, inDim: hidden, outDim: w.width)
    }
    if let dx {
        linearBackwardInput(scratchB, w.gate, dx, rows: rows, inDim: hidden, outDim: w.width)
        linearBackwardInput(scratchA, w.up, dx, rows: rows, inDim: hidden, outDim: w.width)
    }
}
