import TesseraCore
/// What one decoder layer keeps from its forward pass: enough for the backward pass
/// without recomputation. Evaluation, and training that recomputes each layer's forward
/// pass in the backward pass, reuse a single instance for every layer (`layer` nil: sized
/// to fit any).
final class LayerActivations: @unchecked Sendable {
    let xIn: FloatBuffer, rinv1: FloatBuffer, h1: FloatBuffer
    let qProj: FloatBuffer, kProj: FloatBuffer, vProj: FloatBuffer
    let qNormed: FloatBuffer?, kNormed: FloatBuffer?, rinvQ: FloatBuffer?, rinvK: FloatBuffer?
    let q: FloatBuffer, k: FloatBuffer, v: FloatBuffer
    let probs: FloatBuffer?
    let attn: FloatBuffer
    let xMid: FloatBuffer, rinv2: FloatBuffer, h2: FloatBuffer
    // Routed experts, rows in dispatch order (grouped by expert).
    let routerProbs: FloatBuffer?
    let topIdx: IndexBuffer?, topW: FloatBuffer?, slotPos: IndexBuffer?, dispTok: IndexBuffer?
    var expertStart: [Int] = []
    let xDisp: FloatBuffer?, gu: FloatBuffer?, y: FloatBuffer?
    // Shared expert (Qwen2-MoE) or dense MLP: [gate | up] over all tokens, then its output.
    let mlpGU: FloatBuffer?, mlpY: FloatBuffer?, sharedGate: FloatBuffer?
    let latent: LatentActivations?

    init(config c: ModelConfig, layer l: Int?, tokens T: Int, batch: Int, seq: Int, training: Bool) {
        let H = c.hiddenSize
        xIn = FloatBuffer(count: T * H)
        rinv1 = FloatBuffer(count: T)
        h1 = FloatBuffer(count: T * H)
        let standard = c.latentAttention == nil
        qProj = FloatBuffer(count: standard ? T * c.qDim : 0)
        kProj = FloatBuffer(count: standard ? T * c.kvDim : 0)
        vProj = FloatBuffer(count: standard ? T * c.vDim : 0)
        latent = c.latentAttention.map { LatentActivations(config: c, latent: $0, tokens: T) }
        let normed = c.qkNorm != .none
        let normRowsQ = c.qkNorm == .perHead ? T * c.heads : T
        let normRowsK = c.qkNorm == .perHead ? T * c.kvHeads : T
        qNormed = normed ? FloatBuffer(count: T * c.qDim) : nil
        kNormed = normed ? FloatBuffer(count: T * c.kvDim) : nil
        rinvQ = normed ? FloatBuffer(count: normRowsQ) : nil
        rinvK = normed ? FloatBuffer(count: normRowsK) : nil
        q = FloatBuffer(count: T * c.qDim)
        k = FloatBuffer(count: T * c.kvDim)
        v = FloatBuffer(count: T * c.vDim)
        probs = training ? FloatBuffer(count: batch * c.heads * seq * seq) : nil
        attn = FloatBuffer(count: T * c.attnDim)
        xMid = FloatBuffer(count: T * H)
        rinv2 = FloatBuffer(count: T)
        h2 = FloatBuffer(count: T * H)
        let sparse = l.map { c.sparseLayers[$0] } ?? c.sparseLayers.contains(true)
        let TK = T * c.topK
        if sparse {
            routerProbs = FloatBuffer(count: T * c.experts)
            topIdx = IndexBuffer(count: TK)
            topW = FloatBuffer(count: TK)
            slotPos = IndexBuffer(count: TK)
            dispTok = IndexBuffer(count: TK)
            xDisp = FloatBuffer(count: TK * H)
            gu = FloatBuffer(count: TK * 2 * c.expertWidth)
            y = FloatBuffer(count: TK * H)
        } else {
            routerProbs = nil; topIdx = nil; topW = nil; slotPos = nil; dispTok = nil
            xDisp = nil; gu = nil; y = nil
        }
        let mlpWidth = l.map { c.sparseLayers[$0] ? c.sharedExpertWidth : c.denseWidth }
            ?? max(c.sharedExpertWidth, c.sparseLayers.contains(false) ? c.denseWidth : 0)
        if mlpWidth > 0 {
            mlpGU = FloatBuffer(count: T * 2 * mlpWidth)
            mlpY = FloatBuffer(count: T * H)
            sharedGate = FloatBuffer(count: T)
        } else {
            mlpGU = nil; mlpY = nil; sharedGate = nil
        }
    }
}

/// What latent attention keeps beyond the per-head q, k, v: the query latent before and
/// after its norm, the key/value latent before and after its norm, and its expansion.
final class LatentActivations: @unchecked Sendable {
    let qA: FloatBuffer, rinvQA: FloatBuffer, qANormed: FloatBuffer
    let kvLatent: FloatBuffer, rinvKV: FloatBuffer, kvNormed: FloatBuffer
    /// kv_a_proj_with_mqa's output [T, kvRank + rope] (its rope part is rotated into k).
    let kvA: FloatBuffer
    /// kv_b_proj's output [T, heads · (nope + value)].
    let kvB: FloatBuffer

    init(config c: ModelConfig, latent m: LatentAttention, tokens T: Int) {
        let r = m.queryRank ?? 0
        qA = FloatBuffer(count: T * r)
        rinvQA = FloatBuffer(count: r > 0 ? T : 0)
        qANormed = FloatBuffer(count: T * r)
        kvLatent = FloatBuffer(count: T * m.kvRank)
        rinvKV = FloatBuffer(count: T)
        kvNormed = FloatBuffer(count: T * m.kvRank)
        kvA = FloatBuffer(count: T * (m.kvRank + m.ropeDim))
        kvB = FloatBuffer(count: T * c.heads * (m.nopeDim + m.valueDim))
    }
}
