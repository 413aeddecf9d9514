import Foundation
import TesseraCore

/// DeepSeek's multi-head latent attention (transformers' DeepseekV2Attention and
/// DeepseekV3Attention, eager): every head's key is [k_nope from kv_b_proj | the shared
/// rotary key], its value comes from kv_b_proj, and the softmax scale is 1/√(nope + rope).
/// The engine expands the latent into per-head keys and values and runs its ordinary
/// attention kernel with value heads of their own width.
extension ModelRun {
    /// transformers builds q_a_layernorm and kv_a_layernorm without passing rms_norm_eps.
    static let latentNormEps: Float = 1e-6

    func latentAttentionForward(_ l: Int, _ w: LatentAttentionWeights, _ a: LayerActivations) {
        guard let m = config.latentAttention, let L = a.latent else { return }
        let c = config, H = c.hiddenSize, R = m.kvRank, rope = m.ropeDim, nope = m.nopeDim, dv = m.valueDim
        let kvBWidth = c.heads * (nope + dv)
        let P = model.parameters.pointer
        let h1 = a.h1.pointer, q = a.q.pointer, k = a.k.pointer, v = a.v.pointer
        let timer = PhaseTimer.shared
        timer.measure("fwd.qkv") {
            if let qA = w.qA, let qNorm = w.qANorm, let r = m.queryRank {
                linearForward(h1, P + qA.offset, L.qA.pointer, rows: T, inDim: H, outDim: r, precision: matmul)
                rmsNormForward(L.qA.pointer, P + qNorm.offset, L.qANormed.pointer, L.rinvQA.pointer, rows: T, dim: r, eps: Self.latentNormEps)
                linearForward(L.qANormed.pointer, P + w.q.offset, q, rows: T, inDim: r, outDim: c.qDim, precision: matmul)
            } else {
                linearForward(h1, P + w.q.offset, q, rows: T, inDim: H, outDim: c.qDim, precision: matmul)
            }
            linearForward(h1, P + w.kvA.offset, L.kvA.pointer, rows: T, inDim: H, outDim: R + rope, precision: matmul)
            for t in 0..<T { (L.kvLatent.pointer + t * R).update(from: L.kvA.pointer + t * (R + rope), count: R) }
            rmsNormForward(L.kvLatent.pointer, P + w.kvANorm.offset, L.kvNormed.pointer, L.rinvKV.pointer, rows: T, dim: R, eps: Self.latentNormEps)
            // Decoding attends in the latent space (`DecodeStep.attendLatent`): no expansion.
            if decoding == nil {
                linearForward(L.kvNormed.pointer, P + w.kvB.offset, L.kvB.pointer, rows: T, inDim: R, outDim: kvBWidth, precision: matmul)
            }
        }
        timer.measure("fwd.rope") {
            applyRotary(q, table: rotary, rows: T, seq: seq, rowStride: c.qDim, heads: c.heads, headStride: c.headDim,
                        offset: nope, interleaved: m.interleavedRope, inverse: false, positions: rowPositions)
            applyRotary(L.kvA.pointer, table: rotary, rows: T, seq: seq, rowStride: R + rope, heads: 1, headStride: 0,
                        offset: R, interleaved: m.interleavedRope, inverse: false, positions: rowPositions)
        }
        if let decoding {
            timer.measure("fwd.attention") {
                decoding.attendLatent(layer: l, q: q, latent: L.kvNormed.pointer, kvA: L.kvA.pointer, kvB: P + w.kvB.offset,
                                      out: a.attn.pointer, shape: attentionShape(l), latent: m, precision: matmul)
            }
            timer.measure("fwd.o_proj") {
                linearForward(a.attn.pointer, P + w.o.offset, x.pointer, rows: T, inDim: c.attnDim, outDim: H, accumulate: true, precision: matmul)
            }
            return
        }
        for t in 0..<T {
            let kvb = L.kvB.pointer + t * kvBWidth, sharedKey = L.kvA.pointer + t * (R + rope) + R
            for h in 0..<c.heads {
                let kh = k + t * c.qDim + h * c.headDim
                kh.update(from: kvb + h * (nope + dv), count: nope)
                (kh + nope).update(from: sharedKey, count: rope)
                (v + t * c.vDim + h * dv).update(from: kvb + h * (nope + dv) + nope, count: dv)
            }
        }
        timer.measure("fwd.attention") {
            attentionForward(q, k, v, a.attn.pointer, probs: a.probs?.pointer, scratch: attnScratch.pointer,
                             shape: attentionShape(l), precision: matmul)
        }
        timer.measure("fwd.o_proj") {
            linearForward(a.attn.pointer, P + w.o.offset, x.pointer, rows: T, inDim: c.attnDim, outDim: H, accumulate: true, precision: matmul)
        }
    }

    /// From ∂L/∂(block output) in `b.dRes`: the weight gradients of the trainable latent
    /// tensors, and with `needInputGrad` (or a trainable input norm) the input gradient,
    /// added into `b.dRes` through the input norm as the ordinary block does.
    func latentAttentionBackward(_ l: Int, _ lw: LayerWeights, _ w: LatentAttentionWeights, _ a: LayerActivations, _ tr: TrainableSet,
                                 needInputGrad: Bool, grads G: UnsafeMutablePointer<Float>, b: BackwardBuffers) {
        guard let m = config.latentAttention, let L = a.latent else { return }
        let c = config, H = c.hiddenSize, R = m.kvRank, rope = m.ropeDim, nope = m.nopeDim, dv = m.valueDim
        let kvBWidth = c.heads * (nope + dv)
        let P = model.parameters.pointer
        let dRes = b.dRes.pointer, dh = b.dh.pointer
        let dq = b.dq.pointer, dk = b.dk.pointer, dV = b.dv.pointer, dAttn = b.dAttn.pointer
        let dKvB = b.dKvB.pointer, dKvA = b.dKvA.pointer, dLatent = b.dLatent.pointer, dQA = b.dQA.pointer
        let h1 = a.h1.pointer
        if tr.contains(w.o) { linearBackwardWeight(dRes, a.attn.pointer, G + w.o.offset, rows: T, inDim: c.attnDim, outDim: H, precision: matmul) }
        linearBackwardInput(dRes, P + w.o.offset, dAttn, rows: T, inDim: c.attnDim, outDim: H, accumulate: false, precision: matmul)
        dq.update(repeating: 0, count: T * c.qDim)
        dk.update(repeating: 0, count: T * c.kvDim)
        dV.update(repeating: 0, count: T * c.vDim)
        attentionBackward(a.q.pointer, a.k.pointer, a.v.pointer, probs: a.probs!.pointer, dAttn, dq, dk, dV,
                          scratch: attnScratch.pointer, shape: attentionShape(l), precision: matmul)
        applyRotary(dq, table: rotary, rows: T, seq: seq, rowStride: c.qDim, heads: c.heads, headStride: c.headDim,
                    offset: nope, interleaved: m.interleavedRope, inverse: true)
        // Keys and values back into kv_b's output; the shared rotary key gathers every head.
        dKvA.update(repeating: 0, count: T * (R + rope))
        for t in 0..<T {
            let row = dKvB + t * kvBWidth, sharedKey = dKvA + t * (R + rope) + R
            for h in 0..<c.heads {
                let dkh = dk + t * c.qDim + h * c.headDim
                (row + h * (nope + dv)).update(from: dkh, count: nope)
                (row + h * (nope + dv) + nope).update(from: dV + t * c.vDim + h * dv, count: dv)
                axpy(1, dkh + nope, sharedKey, rope)
            }
        }
        applyRotary(dKvA, table: rotary, rows: T, seq: seq, rowStride: R + rope, heads: 1, headStride: 0,
                    offset: R, interleaved: m.interleavedRope, inverse: true)
        if tr.contains(w.kvB) {
            linearBackwardWeight(dKvB, L.kvNormed.pointer, G + w.kvB.offset, rows: T, inDim: R, outDim: kvBWidth, precision: matmul)
        }
        linearBackwardInput(dKvB, P + w.kvB.offset, dLatent, rows: T, inDim: R, outDim: kvBWidth, accumulate: false, precision: matmul)
        // kv_a_layernorm's backward, its input gradient written straight into the latent
        // columns of dKvA (rows there are kvRank + rope wide).
        for t in 0..<T {
            let xr = L.kvLatent.pointer + t * R, gr = dLatent + t * R, out = dKvA + t * (R + rope)
            let weight = P + w.kvANorm.offset, inv = L.rinvKV.pointer[t]
            if tr.contains(w.kvANorm) {
                let dw = G + w.kvANorm.offset
                for i in 0..<R { dw[i] += gr[i] * xr[i] * inv }
            }
            var s: Float = 0
            for i in 0..<R { s += gr[i] * weight[i] * xr[i] }
            let cc = s * inv * inv / Float(R)
            for i in 0..<R { out[i] = inv * (gr[i] * weight[i] - xr[i] * cc) }
        }
        if tr.contains(w.kvA) {
            linearBackwardWeight(dKvA, h1, G + w.kvA.offset, rows: T, inDim: H, outDim: R + rope, precision: matmul)
        }
        let needH1 = needInputGrad || tr.contains(lw.inputNorm)
        if let qA = w.qA, let qNorm = w.qANorm, let r = m.queryRank {
            if tr.contains(w.q) {
                linearBackwardWeight(dq, L.qANormed.pointer, G + w.q.offset, rows: T, inDim: r, outDim: c.qDim, precision: matmul)
            }
            if needH1 || tr.contains(qNorm) || tr.contains(qA) {
                linearBackwardInput(dq, P + w.q.offset, dLatent, rows: T, inDim: r, outDim: c.qDim, accumulate: false, precision: matmul)
                dQA.update(repeating: 0, count: T * r)
                rmsNormBackward(L.qA.pointer, P + qNorm.offset, L.rinvQA.pointer, dLatent, dx: dQA,
                                dw: tr.contains(qNorm) ? G + qNorm.offset : nil, rows: T, dim: r)
                if tr.contains(qA) { linearBackwardWeight(dQA, h1, G + qA.offset, rows: T, inDim: H, outDim: r, precision: matmul) }
                if needH1 { linearBackwardInput(dQA, P + qA.offset, dh, rows: T, inDim: H, outDim: r, accumulate: false, precision: matmul) }
            }
        } else {
            if tr.contains(w.q) { linearBackwardWeight(dq, h1, G + w.q.offset, rows: T, inDim: H, outDim: c.qDim, precision: matmul) }
            if needH1 { linearBackwardInput(dq, P + w.q.offset, dh, rows: T, inDim: H, outDim: c.qDim, accumulate: false, precision: matmul) }
        }
        guard needH1 else { return }
        linearBackwardInput(dKvA, P + w.kvA.offset, dh, rows: T, inDim: H, outDim: R + rope, precision: matmul)
        rmsNormBackward(a.xIn.pointer, P + lw.inputNorm.offset, a.rinv1.pointer, dh, dx: needInputGrad ? dRes : nil,
                        dw: tr.contains(lw.inputNorm) ? G + lw.inputNorm.offset : nil, rows: T, dim: H)
    }
}
