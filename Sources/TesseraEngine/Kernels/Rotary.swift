import Foundation
import TesseraCore

/// cos/sin tables for rotary embeddings at positions 0..<length, computed as transformers
/// does in float32: inv_freq = 1 / theta^(2i/d), angle = position · inv_freq.
public struct RotaryTable: Sendable {
    public let length: Int
    public let half: Int
    public let cos: [Float]   // [length, half]
    public let sin: [Float]

    /// With `yarn`, frequencies and the cos/sin factor follow transformers'
    /// `_compute_yarn_parameters`: low frequencies interpolated by the factor, high ones
    /// kept, a linear ramp between the two correction dimensions.
    public init(headDim: Int, theta: Double, length: Int, yarn: YarnRope? = nil) {
        half = headDim / 2
        self.length = length
        var c = [Float](repeating: 0, count: length * half)
        var s = c
        var ramp: (low: Float, high: Float)?
        if let y = yarn {
            func correction(_ rotations: Double) -> Double {
                Double(headDim) * Foundation.log(Double(y.originalMaxPositions) / (rotations * 2 * Double.pi)) / (2 * Foundation.log(theta))
            }
            var low = correction(y.betaFast), high = correction(y.betaSlow)
            if y.truncate { low = low.rounded(.down); high = high.rounded(.up) }
            low = max(low, 0); high = min(high, Double(headDim - 1))
            if low == high { high += 0.001 }
            ramp = (Float(low), Float(high))
        }
        let scale = Float(yarn?.attentionFactor ?? 1)
        for i in 0..<half {
            let posFreq = Float(pow(theta, Double(Float(2 * i) / Float(headDim))))
            var invFreq = 1 / posFreq
            if let y = yarn, let (low, high) = ramp {
                let interpolated = 1 / (Float(y.factor) * posFreq)
                let extrapolation = 1 - min(max((Float(i) - low) / (high - low), 0), 1)
                invFreq = interpolated * (1 - extrapolation) + invFreq * extrapolation
            }
            for p in 0..<length {
                let angle = Float(p) * invFreq
                c[p * half + i] = Float(Foundation.cos(Double(angle))) * scale
                s[p * half + i] = Float(Foundation.sin(Double(angle))) * scale
            }
        }
        cos = c
        sin = s
    }
}

/// Rotates each head of `x` [batch·seq, heads·headDim] in place, pairing element i with
/// i + headDim/2 (transformers' rotate_half). `inverse` applies the transpose, which is
/// the backward pass.
@inlinable
public func applyRotary(_ x: UnsafeMutablePointer<Float>, table: RotaryTable, batch: Int, seq: Int, heads: Int,
                        headDim: Int, inverse: Bool) {
    applyRotary(x, table: table, rows: batch * seq, seq: seq, rowStride: heads * headDim, heads: heads, headStride: headDim,
                offset: 0, interleaved: false, inverse: inverse)
}

/// Rotates the `2·table.half` values at `offset` of each head of each row in place (rows
/// of `rowStride` values, heads `headStride` apart; row t is at position t mod seq, or at
/// `positions[t]` when given, as in decoding).
/// Pairs are (i, i + half) as in rotate_half, or with `interleaved` (2i, 2i + 1) as
/// DeepSeek lays them out; attention scores come out the same either way as long as
/// queries and keys agree.
@inlinable
public func applyRotary(_ x: UnsafeMutablePointer<Float>, table: RotaryTable, rows: Int, seq: Int, rowStride: Int,
                        heads: Int, headStride: Int, offset: Int, interleaved: Bool, inverse: Bool,
                        positions: UnsafePointer<Int32>? = nil) {
    let half = table.half
    let (step, partner) = interleaved ? (2, 1) : (1, half)
    table.cos.withUnsafeBufferPointer { cosBuf in
        table.sin.withUnsafeBufferPointer { sinBuf in
            let cp = cosBuf.baseAddress!, sp = sinBuf.baseAddress!
            let sign: Float = inverse ? -1 : 1
            Parallel.ranges(rows, work: rows * heads * 2 * half) { range in
                for t in range {
                    let pos = positions.map { Int($0[t]) } ?? t % seq
                    let c = cp + pos * half, s = sp + pos * half
                    for h in 0..<heads {
                        let v = x + t * rowStride + h * headStride + offset
                        for i in 0..<half {
                            let j = i * step
                            let a = v[j], b = v[j + partner]
                            let si = sign * s[i]
                            v[j] = a * c[i] - b * si
                            v[j + partner] = b * c[i] + a * si
                        }
                    }
                }
            }
        }
    }
}
