import Foundation
import CBLAS
import TesseraCore

/// Shapes of one causal self-attention call: q [B·S, H·d], k [B·S, Hkv·d], v [B·S, Hkv·dv]
/// and the output [B·S, H·dv] (dv = d except in DeepSeek's latent attention).
public struct AttentionShape: Sendable {
    public var batch: Int, seq: Int, heads: Int, kvHeads: Int, headDim: Int
    public var valueDim: Int
    /// Keys more than `window - 1` positions back are masked (nil: none).
    public var window: Int?
    public var qStride: Int { heads * headDim }
    public var kvStride: Int { kvHeads * headDim }
    public var vStride: Int { kvHeads * valueDim }
    public var outStride: Int { heads * valueDim }
    /// Softmax scale of the scores (1/√headDim unless the model says otherwise).
    public var scale: Float
    public init(batch: Int, seq: Int, heads: Int, kvHeads: Int, headDim: Int, valueDim: Int? = nil, window: Int?, scale: Float? = nil) {
        self.batch = batch; self.seq = seq; self.heads = heads; self.kvHeads = kvHeads
        self.headDim = headDim; self.valueDim = valueDim ?? headDim; self.window = window
        self.scale = scale ?? 1 / Float(headDim).squareRoot()
    }
    /// Rows are processed in blocks; block b only sees keys before its end, which halves
    /// the work of causal attention against a full S×S product.
    @usableFromInline static let block = 64
    public var probsPerHead: Int { seq * seq }
    @inlinable func firstKey(_ i: Int) -> Int { window.map { max(0, i - $0 + 1) } ?? 0 }
}

@inline(__always) @usableFromInline
func sgemmRaw(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
              _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
              _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, precision: MatmulPrecision) {
    if precision == .fp32Fixed {
        gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc,
             parallel: false, precision: precision)
        return
    }
    _ = BLASThreads.single
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// out = softmax(q kᵀ / √d + causal mask) v for every (sequence, head). `probs`, when
/// given, receives the attention weights [B, H, S, S] for the backward pass (rows hold
/// zeros at masked keys up to the end of their block); otherwise `scratch` must hold
/// `Parallel.workers · S · S` floats. With `sinks` (gpt-oss, one logit per head) each
/// softmax also runs over the head's sink, whose weight is then dropped.
public func attentionForward(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                             _ out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?,
                             scratch: UnsafeMutablePointer<Float>, shape s: AttentionShape,
                             precision: MatmulPrecision = .fp32, sinks: UnsafePointer<Float>? = nil) {
    let S = s.seq, d = s.headDim, dv = s.valueDim, group = s.heads / s.kvHeads
    Parallel.parts(s.batch * s.heads) { part, items in
        for item in items {
            let b = item / s.heads, h = item % s.heads, kvh = h / group
            let P = probs.map { $0 + item * S * S } ?? scratch + part * S * S
            let qb = q + b * S * s.qStride + h * d
            let kb = k + b * S * s.kvStride + kvh * d
            let vb = v + b * S * s.vStride + kvh * dv
            let ob = out + b * S * s.outStride + h * dv
            var r0 = 0
            while r0 < S {
                let r1 = min(S, r0 + AttentionShape.block)
                let rows = r1 - r0
                gemm(transB: true, m: rows, n: r1, k: d, alpha: s.scale, a: qb + r0 * s.qStride, lda: s.qStride, b: kb, ldb: s.kvStride,
                     c: P + r0 * S, ldc: S, parallel: false, precision: precision)
                for i in r0..<r1 {
                    let row = P + i * S
                    let lo = s.firstKey(i)
                    if lo > 0 { row.update(repeating: 0, count: lo) }
                    if let sinks { softmaxRowWithSink(row + lo, i + 1 - lo, sink: sinks[h]) } else { softmaxRow(row + lo, i + 1 - lo) }
                    if i + 1 < r1 { (row + i + 1).update(repeating: 0, count: r1 - i - 1) }
                }
                gemm(m: rows, n: dv, k: r1, a: P + r0 * S, lda: S, b: vb, ldb: s.vStride, c: ob + r0 * s.outStride, ldc: s.outStride,
                     parallel: false, precision: precision)
                r0 = r1
            }
        }
    }
}

/// Accumulates dq, dk, dv from dOut, given the saved weights `probs`. `scratch` holds
/// `Parallel.workers · S · S` floats. With sinks, `dSinks` (one per head) accumulates
/// their gradient: -p_sink · Σ_j p_j dp_j over every row.
public func attentionBackward(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, _ dOut: UnsafePointer<Float>,
                              _ dq: UnsafeMutablePointer<Float>, _ dk: UnsafeMutablePointer<Float>, _ dV: UnsafeMutablePointer<Float>,
                              scratch: UnsafeMutablePointer<Float>, shape s: AttentionShape, precision: MatmulPrecision = .fp32,
                              dSinks: UnsafeMutablePointer<Float>? = nil) {
    let S = s.seq, d = s.headDim, dv = s.valueDim, group = s.heads / s.kvHeads
    // Items of different sequences run at once and would all add to the same head's sink:
    // each (sequence, head) gets its own sum, added up in sequence order afterwards.
    let sinkSums = dSinks == nil ? nil : FloatBuffer(count: s.batch * s.heads)
    // One work item per (sequence, kv head): the heads sharing a kv head write the same
    // dk/dv rows, so they run in one item, in order.
    Parallel.parts(s.batch * s.kvHeads) { part, items in
        let dP = scratch + part * S * S
        for item in items {
            let b = item / s.kvHeads, kvh = item % s.kvHeads
            let kb = k + b * S * s.kvStride + kvh * d
            let vb = v + b * S * s.vStride + kvh * dv
            let dkb = dk + b * S * s.kvStride + kvh * d
            let dvb = dV + b * S * s.vStride + kvh * dv
            for h in (kvh * group)..<((kvh + 1) * group) {
                let P = probs + (b * s.heads + h) * S * S
                let qb = q + b * S * s.qStride + h * d
                let dqb = dq + b * S * s.qStride + h * d
                let dob = dOut + b * S * s.outStride + h * dv
                var r0 = 0
                while r0 < S {
                    let r1 = min(S, r0 + AttentionShape.block)
                    let rows = r1 - r0
                    sgemmRaw(false, true, rows, r1, dv, 1, dob + r0 * s.outStride, s.outStride, vb, s.vStride, 0, dP + r0 * S, S, precision: precision)
                    for i in r0..<r1 {
                        let pr = P + i * S, gr = dP + i * S
                        let lo = s.firstKey(i), hi = i + 1
                        let c = dot(pr + lo, gr + lo, hi - lo)
                        if let sinkSums {
                            var kept: Float = 0
                            for j in lo..<hi { kept += pr[j] }
                            sinkSums.pointer[b * s.heads + h] -= (1 - kept) * c
                        }
                        if lo > 0 { gr.update(repeating: 0, count: lo) }
                        for j in lo..<hi { gr[j] = pr[j] * (gr[j] - c) }
                        if hi < r1 { (gr + hi).update(repeating: 0, count: r1 - hi) }
                    }
                    sgemmRaw(false, false, rows, d, r1, s.scale, dP + r0 * S, S, kb, s.kvStride, 1, dqb + r0 * s.qStride, s.qStride, precision: precision)
                    sgemmRaw(true, false, r1, d, rows, s.scale, dP + r0 * S, S, qb + r0 * s.qStride, s.qStride, 1, dkb, s.kvStride, precision: precision)
                    sgemmRaw(true, false, r1, dv, rows, 1, P + r0 * S, S, dob + r0 * s.outStride, s.outStride, 1, dvb, s.vStride, precision: precision)
                    r0 = r1
                }
            }
        }
    }
    if let dSinks, let sinkSums {
        for b in 0..<s.batch { for h in 0..<s.heads { dSinks[h] += sinkSums.pointer[b * s.heads + h] } }
    }
}

/// Softmax of x[0..<n] joined by one more logit, `sink`, whose share is left out: the
/// values no longer sum to one (transformers' gpt-oss eager attention).
@inlinable
public func softmaxRowWithSink(_ x: UnsafeMutablePointer<Float>, _ n: Int, sink: Float) {
    var top = sink
    for j in 0..<n { top = max(top, x[j]) }
    var total = Foundation.exp(sink - top)
    for j in 0..<n { x[j] = Foundation.exp(x[j] - top); total += x[j] }
    let inverse = 1 / total
    for j in 0..<n { x[j] *= inverse }
}
