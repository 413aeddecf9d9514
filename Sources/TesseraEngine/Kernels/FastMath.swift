import TesseraCore
/// exp for 8 lanes at once (Cephes' expf polynomial, about 1 ulp on the range that
/// matters): the scalar libm call costs more than everything else in a softmax or SiLU.
@inlinable @inline(__always)
public func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // Everything here maps to vector instructions: rounding and the float→int step use
    // the 1.5·2²³ trick, since Swift's generic SIMD conversions are scalarised.
    let magic = SIMD8<Float>(repeating: 12_582_912)
    var xc = x.replacing(with: 88.37626, where: x .> 88.37626)
    xc = xc.replacing(with: -87.33654, where: xc .< -87.33654)
    let shifted = xc * 1.44269504088896341 + magic
    let n = shifted - magic
    var r = xc - n * 0.693359375
    r = r + n * 2.12194440e-4
    let r2 = r * r
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * r2 + r + 1
    let k = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let scale = unsafeBitCast((k &+ 127) &<< 23, to: SIMD8<Float>.self)
    return p * scale
}

/// Loads 8 floats, padding past `count` with `fill`.
@inlinable @inline(__always)
func load8(_ p: UnsafePointer<Float>, _ count: Int, fill: Float) -> SIMD8<Float> {
    if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
    var v = SIMD8<Float>(repeating: fill)
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inlinable @inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self); return }
    for i in 0..<count { p[i] = v[i] }
}

/// In-place softmax of one row; returns nothing, rows of length 0 are left alone.
@inlinable
public func softmaxRow(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    if n == 0 { return }
    var m = -Float.infinity
    var i = 0
    var mv = SIMD8<Float>(repeating: -.infinity)
    while i + 8 <= n {
        let v = load8(x + i, 8, fill: 0)
        mv = mv.replacing(with: v, where: v .> mv)
        i += 8
    }
    m = mv.max()
    while i < n { m = max(m, x[i]); i += 1 }
    var sv = SIMD8<Float>()
    i = 0
    while i < n {
        let c = min(8, n - i)
        let e = exp8(load8(x + i, c, fill: -.infinity) - m)
        let masked = c == 8 ? e : e.replacing(with: 0, where: SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8<Int32>(repeating: Int32(c)))
        store8(masked, x + i, c)
        sv += masked
        i += 8
    }
    let inv = 1 / sv.sum()
    i = 0
    while i + 8 <= n { store8(load8(x + i, 8, fill: 0) * inv, x + i, 8); i += 8 }
    while i < n { x[i] *= inv; i += 1 }
}

/// Dot product of two runs, accumulated in 8 lanes.
@inlinable
public func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n { acc += load8(a + i, 8, fill: 0) * load8(b + i, 8, fill: 0); i += 8 }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// y += alpha · x
@inlinable
public func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n { store8(load8(y + i, 8, fill: 0) + alpha * load8(x + i, 8, fill: 0), y + i, 8); i += 8 }
    while i < n { y[i] += alpha * x[i]; i += 1 }
}
