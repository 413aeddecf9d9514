import Foundation
import TesseraCore

/// The sequences of one decoding step: rows `row..<row + count` of the step hold one
/// sequence's new tokens, at positions `start..<start + count` of its cache. Attention
/// writes the new keys and values into the caches, then lets each new row see its
/// sequence's cached positions up to its own (and no further back than the window).
final class DecodeStep: @unchecked Sendable {
    struct Span {
        let cache: KVCache
        let row: Int
        let count: Int
        let start: Int
        var end: Int { start + count }
    }
    let spans: [Span]
    private let scratch: FloatBuffer
    private let scratchPerWorker: Int

    init(spans: [Span], config c: ModelConfig) {
        self.spans = spans
        let latentWidth = c.latentAttention.map { 2 * ($0.kvRank + $0.ropeDim) } ?? 0
        scratchPerWorker = spans.map { $0.count * ($0.end + latentWidth) }.max() ?? 0
        scratch = FloatBuffer(count: Parallel.workers * scratchPerWorker)
    }

    /// Keys more than `window - 1` positions back are masked, as in `AttentionShape`.
    private func maskedSoftmax(_ scores: UnsafeMutablePointer<Float>, span: Span, window: Int?, sink: Float?) {
        let L = span.end
        for i in 0..<span.count {
            let row = scores + i * L, position = span.start + i
            let lo = window.map { max(0, position - $0 + 1) } ?? 0, hi = position + 1
            if lo > 0 { row.update(repeating: 0, count: lo) }
            if let sink { softmaxRowWithSink(row + lo, hi - lo, sink: sink) } else { softmaxRow(row + lo, hi - lo) }
            if hi < L { (row + hi).update(repeating: 0, count: L - hi) }
        }
    }

    /// Standard (grouped-query) attention over the caches; q, k, v and out are the step's
    /// rows laid out as `attentionForward` takes them.
    func attend(layer l: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                out: UnsafeMutablePointer<Float>, shape s: AttentionShape, sinks: UnsafePointer<Float>?, precision: MatmulPrecision) {
        let d = s.headDim, dv = s.valueDim, group = s.heads / s.kvHeads
        for span in spans {
            (span.cache.keys[l].pointer + span.start * s.kvStride).update(from: k + span.row * s.kvStride, count: span.count * s.kvStride)
            (span.cache.values[l].pointer + span.start * s.vStride).update(from: v + span.row * s.vStride, count: span.count * s.vStride)
        }
        Parallel.parts(spans.count * s.heads) { part, items in
            let scores = scratch.pointer + part * scratchPerWorker
            for item in items {
                let span = spans[item / s.heads], h = item % s.heads, kvh = h / group
                let n = span.count, L = span.end
                gemm(transB: true, m: n, n: L, k: d, alpha: s.scale, a: q + span.row * s.qStride + h * d, lda: s.qStride,
                     b: span.cache.keys[l].pointer + kvh * d, ldb: s.kvStride, c: scores, ldc: L, parallel: false, precision: precision)
                maskedSoftmax(scores, span: span, window: s.window, sink: sinks?[h])
                gemm(m: n, n: dv, k: L, a: scores, lda: L, b: span.cache.values[l].pointer + kvh * dv, ldb: s.vStride,
                     c: out + span.row * s.outStride + h * dv, ldc: s.outStride, parallel: false, precision: precision)
            }
        }
    }

    /// DeepSeek's latent attention with the cache in compressed form. kv_b_proj is absorbed
    /// into the query and the output (DeepSeek-V2 paper, §2.1.2): head h's score against
    /// position j is (q_nope·W_kbₕ)·c_j + q_rope·k_rope_j, and its value is W_vbₕ·Σⱼ pⱼ c_j,
    /// the same products as the expanded form in another order. `latent` holds the new rows'
    /// normed latents [T, kvRank], `kvA` their kv_a output whose rope part is rotated.
    func attendLatent(layer l: Int, q: UnsafePointer<Float>, latent: UnsafePointer<Float>, kvA: UnsafePointer<Float>,
                      kvB: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, shape s: AttentionShape,
                      latent m: LatentAttention, precision: MatmulPrecision) {
        let R = m.kvRank, rope = m.ropeDim, nope = m.nopeDim, dv = m.valueDim, W = R + rope
        let qStride = s.qStride, d = s.headDim
        for span in spans {
            let cache = span.cache.keys[l].pointer
            for i in 0..<span.count {
                let t = span.row + i, row = cache + (span.start + i) * W
                row.update(from: latent + t * R, count: R)
                (row + R).update(from: kvA + t * W + R, count: rope)
            }
        }
        Parallel.parts(spans.count * s.heads) { part, items in
            let base = scratch.pointer + part * scratchPerWorker
            for item in items {
                let span = spans[item / s.heads], h = item % s.heads
                let n = span.count, L = span.end
                let queries = base, outLatent = base + n * W, scores = base + 2 * n * W
                let cache = UnsafePointer(span.cache.keys[l].pointer)
                let qh = q + span.row * qStride + h * d
                let keyUp = kvB + h * (nope + dv) * R, valueUp = kvB + (h * (nope + dv) + nope) * R
                gemm(m: n, n: R, k: nope, a: qh, lda: qStride, b: keyUp, ldb: R, c: queries, ldc: W, parallel: false, precision: precision)
                for i in 0..<n { (queries + i * W + R).update(from: qh + i * qStride + nope, count: rope) }
                gemm(transB: true, m: n, n: L, k: W, alpha: s.scale, a: queries, lda: W, b: cache, ldb: W, c: scores, ldc: L,
                     parallel: false, precision: precision)
                maskedSoftmax(scores, span: span, window: s.window, sink: nil)
                gemm(m: n, n: R, k: L, a: scores, lda: L, b: cache, ldb: W, c: outLatent, ldc: W, parallel: false, precision: precision)
                gemm(transB: true, m: n, n: dv, k: R, a: outLatent, lda: W, b: valueUp, ldb: R,
                     c: out + span.row * s.outStride + h * dv, ldc: s.outStride, parallel: false, precision: precision)
            }
        }
    }
}
