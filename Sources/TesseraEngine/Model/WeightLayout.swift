import TesseraCore
/// A run of floats inside the model's flat parameter buffer.
public struct ParamView: Sendable, Equatable {
    public var offset: Int
    public var count: Int
    /// Index of the checkpoint tensor this view lies in (a fused tensor holds many views).
    public var tensor: Int
}

/// One SwiGLU MLP: down(silu(gate x) * up x). Routed experts, Qwen2-MoE's shared expert
/// and dense MLP layers all have this shape. The up rows always follow the gate rows in
/// the parameter buffer (as in the fused on-disk layout), so both projections are one
/// matrix product with 2·width outputs.
public struct MLPWeights: Sendable, Equatable {
    public var gate: ParamView   // [width, hidden]
    public var up: ParamView     // [width, hidden]
    public var down: ParamView   // [hidden, width]
    public var width: Int
    /// gpt-oss's experts: `gate` and `up` are the two halves of one [hidden, 2·width]
    /// matrix whose columns alternate gate and up, `down` is [width, hidden], both
    /// products carry biases, and the activation is clamped (nil: the plain SwiGLU MLP).
    public var interleavedClamped: ClampedSwiGLU? = nil
    public var gateUpBias: ParamView? = nil   // [2·width]
    public var downBias: ParamView? = nil     // [hidden]
    /// Every view, biases included.
    public var all: [ParamView] { [gate, up, down, gateUpBias, downBias].compactMap { $0 } }
}

public struct AttentionWeights: Sendable, Equatable {
    public var q: ParamView, k: ParamView, v: ParamView, o: ParamView
    public var qBias: ParamView?, kBias: ParamView?, vBias: ParamView?, oBias: ParamView?
    public var qNorm: ParamView?, kNorm: ParamView?
    /// gpt-oss's per-head sink logits [heads].
    public var sinks: ParamView?
}

/// DeepSeek's latent attention. Queries: `q` = q_proj [heads·(nope+rope), hidden], or with
/// a query latent q_a_proj → q_a_layernorm → `q` = q_b_proj. Keys and values:
/// kv_a_proj_with_mqa [kvRank + rope, hidden] → kv_a_layernorm on the first kvRank →
/// kv_b_proj [heads·(nope+value), kvRank]; the last rope values are the shared rotary key.
public struct LatentAttentionWeights: Sendable, Equatable {
    public var qA: ParamView?, qANorm: ParamView?
    public var q: ParamView
    public var kvA: ParamView, kvANorm: ParamView, kvB: ParamView
    public var o: ParamView
    public var all: [ParamView] { [qA, qANorm, q, kvA, kvANorm, kvB, o].compactMap { $0 } }
}

public struct LayerWeights: Sendable, Equatable {
    public var inputNorm: ParamView
    public var postNorm: ParamView
    /// Exactly one of the two is set.
    public var attention: AttentionWeights?
    public var latentAttention: LatentAttentionWeights?
    /// Sparse layers: router [experts, hidden] and the routed experts.
    public var router: ParamView?
    /// DeepSeek-V3's e_score_correction_bias [experts]: shifts the choice, not the weights.
    public var routerBias: ParamView?
    /// gpt-oss's router bias [experts]: part of the logits (trained like the router).
    public var routerLogitBias: ParamView?
    public var experts: [MLPWeights]
    public var sharedExpert: MLPWeights?
    /// Qwen2-MoE's sigmoid gate [1, hidden] on the shared expert (nil: added ungated).
    public var sharedExpertGate: ParamView?
    /// Dense layers: the MLP used instead of experts.
    public var dense: MLPWeights?
}

/// How expert tensors are stored on disk.
public enum ExpertLayout: String, Sendable, Codable {
    /// One tensor per expert and projection (what save_pretrained writes).
    case perExpert = "per_expert"
    /// `mlp.experts.gate_up_proj` [E, 2I, H] (gate rows first) and `mlp.experts.down_proj` [E, H, I].
    case fused
}

/// A checkpoint tensor as the engine expects it: its name, shape, and where its values
/// live in the flat parameter buffer.
public struct TensorSlot: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var offset: Int
    public var count: Int { shape.reduce(1, *) }
    /// Stored in the checkpoint as MXFP4 `NAME_blocks` and `NAME_scales` (gpt-oss experts).
    public var mxfp4 = false
}

/// Every tensor a checkpoint of this config and layout must hold, and the named views the
/// model computes with. Built from the config alone; loading checks the files against it.
public struct WeightLayout: Sendable {
    public let config: ModelConfig
    public let expertLayout: ExpertLayout
    public private(set) var tensors: [TensorSlot] = []
    public private(set) var embed: ParamView
    public private(set) var finalNorm: ParamView
    public private(set) var lmHead: ParamView
    public private(set) var layers: [LayerWeights] = []
    public private(set) var totalCount = 0
    public private(set) var indexByName: [String: Int] = [:]

    /// Tensors start on 16-float (64-byte) boundaries, except an up projection, which
    /// directly follows its gate projection.
    private mutating func add(_ name: String, _ shape: [Int], aligned: Bool = true) -> ParamView {
        let count = shape.reduce(1, *)
        let offset = aligned ? (totalCount + 15) / 16 * 16 : totalCount
        tensors.append(TensorSlot(name: name, shape: shape, offset: offset))
        totalCount = offset + count
        return ParamView(offset: offset, count: count, tensor: tensors.count - 1)
    }

    public init(config c: ModelConfig, expertLayout requested: ExpertLayout) {
        self.config = c
        // gpt-oss publishes fused experts only.
        let expertLayout: ExpertLayout = c.clampedSwiGLU != nil ? .fused : requested
        self.expertLayout = expertLayout
        let H = c.hiddenSize
        embed = ParamView(offset: 0, count: 0, tensor: 0)
        finalNorm = embed
        lmHead = embed
        embed = add("model.embed_tokens.weight", [c.vocabSize, H])
        for l in 0..<c.layers {
            let p = "model.layers.\(l)."
            let inputNorm = add(p + "input_layernorm.weight", [H])
            var layer: LayerWeights
            if let m = c.latentAttention {
                let a = p + "self_attn."
                var qA: ParamView?, qANorm: ParamView?, q: ParamView
                if let r = m.queryRank {
                    qA = add(a + "q_a_proj.weight", [r, H])
                    qANorm = add(a + "q_a_layernorm.weight", [r])
                    q = add(a + "q_b_proj.weight", [c.qDim, r])
                } else {
                    q = add(a + "q_proj.weight", [c.qDim, H])
                }
                let kvA = add(a + "kv_a_proj_with_mqa.weight", [m.kvRank + m.ropeDim, H])
                let kvANorm = add(a + "kv_a_layernorm.weight", [m.kvRank])
                let kvB = add(a + "kv_b_proj.weight", [c.heads * (m.nopeDim + m.valueDim), m.kvRank])
                let o = add(a + "o_proj.weight", [H, c.attnDim])
                let latent = LatentAttentionWeights(qA: qA, qANorm: qANorm, q: q, kvA: kvA, kvANorm: kvANorm, kvB: kvB, o: o)
                let postNorm = add(p + "post_attention_layernorm.weight", [H])
                layer = LayerWeights(inputNorm: inputNorm, postNorm: postNorm, attention: nil, latentAttention: latent, router: nil, experts: [])
            } else {
                let q = add(p + "self_attn.q_proj.weight", [c.qDim, H])
                let k = add(p + "self_attn.k_proj.weight", [c.kvDim, H])
                let v = add(p + "self_attn.v_proj.weight", [c.kvDim, H])
                let o = add(p + "self_attn.o_proj.weight", [H, c.qDim])
                var attn = AttentionWeights(q: q, k: k, v: v, o: o)
                if c.qkvBias {
                    attn.qBias = add(p + "self_attn.q_proj.bias", [c.qDim])
                    attn.kBias = add(p + "self_attn.k_proj.bias", [c.kvDim])
                    attn.vBias = add(p + "self_attn.v_proj.bias", [c.kvDim])
                }
                if c.oBias { attn.oBias = add(p + "self_attn.o_proj.bias", [H]) }
                if c.attentionSinks { attn.sinks = add(p + "self_attn.sinks", [c.heads]) }
                switch c.qkNorm {
                case .none: break
                case .wholeProjection:
                    attn.qNorm = add(p + "self_attn.q_norm.weight", [c.qDim])
                    attn.kNorm = add(p + "self_attn.k_norm.weight", [c.kvDim])
                case .perHead:
                    attn.qNorm = add(p + "self_attn.q_norm.weight", [c.headDim])
                    attn.kNorm = add(p + "self_attn.k_norm.weight", [c.headDim])
                }
                let postNorm = add(p + "post_attention_layernorm.weight", [H])
                layer = LayerWeights(inputNorm: inputNorm, postNorm: postNorm, attention: attn, router: nil, experts: [])
            }
            if c.sparseLayers[l] {
                let I = c.expertWidth
                let moe = (c.family == .mixtral && expertLayout == .perExpert) ? "block_sparse_moe" : "mlp"
                if let f = c.clampedSwiGLU {
                    layer.router = add(p + "mlp.router.weight", [c.experts, H])
                    layer.routerLogitBias = add(p + "mlp.router.bias", [c.experts])
                    let gateUp = add(p + "mlp.experts.gate_up_proj", [c.experts, H, 2 * I])
                    tensors[gateUp.tensor].mxfp4 = c.mxfp4Experts
                    let gateUpBias = add(p + "mlp.experts.gate_up_proj_bias", [c.experts, 2 * I])
                    let down = add(p + "mlp.experts.down_proj", [c.experts, I, H])
                    tensors[down.tensor].mxfp4 = c.mxfp4Experts
                    let downBias = add(p + "mlp.experts.down_proj_bias", [c.experts, H])
                    layer.experts = Self.fusedSlices(gateUp: gateUp, down: down, experts: c.experts, width: I, hidden: H).enumerated().map { e, w in
                        var w = w
                        w.interleavedClamped = f
                        w.gateUpBias = ParamView(offset: gateUpBias.offset + e * 2 * I, count: 2 * I, tensor: gateUpBias.tensor)
                        w.downBias = ParamView(offset: downBias.offset + e * H, count: H, tensor: downBias.tensor)
                        return w
                    }
                    layers.append(layer)
                    continue
                }
                layer.router = add(p + moe + ".gate.weight", [c.experts, H])
                if c.router.correctionBias { layer.routerBias = add(p + moe + ".gate.e_score_correction_bias", [c.experts]) }
                switch expertLayout {
                case .perExpert:
                    let (g, u, d) = c.family == .mixtral ? ("w1", "w3", "w2") : ("gate_proj", "up_proj", "down_proj")
                    for e in 0..<c.experts {
                        let ep = p + moe + ".experts.\(e)."
                        let gate = add(ep + g + ".weight", [I, H])
                        let up = add(ep + u + ".weight", [I, H], aligned: false)
                        let down = add(ep + d + ".weight", [H, I])
                        layer.experts.append(MLPWeights(gate: gate, up: up, down: down, width: I))
                    }
                case .fused:
                    let gateUp = add(p + "mlp.experts.gate_up_proj", [c.experts, 2 * I, H])
                    let down = add(p + "mlp.experts.down_proj", [c.experts, H, I])
                    layer.experts = Self.fusedSlices(gateUp: gateUp, down: down, experts: c.experts, width: I, hidden: H)
                }
                if c.sharedExpertWidth > 0 {
                    let S = c.sharedExpertWidth
                    let sp = p + (c.family.isDeepSeek ? "mlp.shared_experts." : "mlp.shared_expert.")
                    let gate = add(sp + "gate_proj.weight", [S, H])
                    let up = add(sp + "up_proj.weight", [S, H], aligned: false)
                    let down = add(sp + "down_proj.weight", [H, S])
                    layer.sharedExpert = MLPWeights(gate: gate, up: up, down: down, width: S)
                    if c.sharedExpertGated { layer.sharedExpertGate = add(p + "mlp.shared_expert_gate.weight", [1, H]) }
                }
            } else {
                let D = c.denseWidth
                let gate = add(p + "mlp.gate_proj.weight", [D, H])
                let up = add(p + "mlp.up_proj.weight", [D, H], aligned: false)
                let down = add(p + "mlp.down_proj.weight", [H, D])
                layer.dense = MLPWeights(gate: gate, up: up, down: down, width: D)
            }
            layers.append(layer)
        }
        finalNorm = add("model.norm.weight", [H])
        lmHead = c.tieWordEmbeddings ? embed : add("lm_head.weight", [c.vocabSize, H])
        var index: [String: Int] = [:]
        for (i, t) in tensors.enumerated() {
            index[t.name] = i
            if t.mxfp4 { index[MXFP4.blocksName(t.name)] = i; index[MXFP4.scalesName(t.name)] = i }
        }
        indexByName = index
    }

    /// Expert e's views in fused tensors: the e-th 2·width·hidden block of gateUp (gate
    /// half first) and the e-th width·hidden block of down, whichever way each is laid out.
    static func fusedSlices(gateUp: ParamView, down: ParamView, experts: Int, width I: Int, hidden H: Int) -> [MLPWeights] {
        (0..<experts).map { e in
            let g0 = gateUp.offset + e * 2 * I * H
            return MLPWeights(gate: ParamView(offset: g0, count: I * H, tensor: gateUp.tensor),
                              up: ParamView(offset: g0 + I * H, count: I * H, tensor: gateUp.tensor),
                              down: ParamView(offset: down.offset + e * H * I, count: H * I, tensor: down.tensor), width: I)
        }
    }

    /// The tensors that hold routed expert (layer, expert): several for the per-expert
    /// layout, the two fused tensors (shared with the other experts) for the fused one.
    public func tensorIndices(layer: Int, expert: Int) -> [Int] {
        guard layer >= 0, layer < layers.count, expert >= 0, expert < layers[layer].experts.count else { return [] }
        return Array(Set(layers[layer].experts[expert].all.map(\.tensor))).sorted()
    }
}

extension WeightLayout {
    /// Everything that keeps `files` from being exactly this layout's checkpoint; empty
    /// when it matches.
    public func checkpointProblems(_ files: CheckpointFiles) -> [String] {
        var problems: [String] = []
        for slot in tensors {
            if slot.mxfp4 {
                for (name, shape) in [(MXFP4.blocksName(slot.name), MXFP4.blocksShape(slot.shape)), (MXFP4.scalesName(slot.name), MXFP4.scalesShape(slot.shape))] {
                    guard let info = files.info(name) else { problems.append("missing tensor \(name) \(shape) (MXFP4)"); continue }
                    if info.shape != shape || info.dtype != .u8 {
                        problems.append("tensor \(name) in \(files.path(of: name) ?? "?") is \(info.dtype.rawValue) \(info.shape), expected U8 \(shape) (MXFP4)")
                    }
                }
                continue
            }
            guard let info = files.info(slot.name) else {
                problems.append("missing tensor \(slot.name) \(slot.shape)")
                continue
            }
            if info.shape != slot.shape {
                problems.append("tensor \(slot.name) in \(files.path(of: slot.name) ?? "?") has shape \(info.shape), expected \(slot.shape)")
            }
            if !info.dtype.isFloatingPoint {
                problems.append("tensor \(slot.name) has dtype \(info.dtype.rawValue); supported: F32, F16, BF16, F64")
            }
        }
        for name in files.tensorNames where indexByName[name] == nil && !isIgnoredByTransformers(name) {
            var hint = ""
            if name == "lm_head.weight" && config.tieWordEmbeddings { hint = " (tie_word_embeddings is true, so the lm head is the embedding)" }
            problems.append("unused tensor \(name) in \(files.path(of: name) ?? "?")\(hint)")
        }
        return problems
    }

    /// DeepSeek-V3 checkpoints may carry the multi-token-prediction module as layer
    /// `num_hidden_layers` (61 in the released model); transformers does not load it
    /// (`_keys_to_ignore_on_load_unexpected`), and neither does the engine.
    public func isIgnoredByTransformers(_ name: String) -> Bool {
        guard config.family == .deepseekV3, name.hasPrefix("model.layers.") else { return false }
        let index = name.dropFirst("model.layers.".count).prefix { $0.isNumber }
        return Int(index).map { $0 >= config.layers } ?? false
    }

    /// The checkpoint's tensors that the engine leaves out (see `isIgnoredByTransformers`).
    public func ignoredTensors(_ files: CheckpointFiles) -> [String] {
        files.tensorNames.filter { indexByName[$0] == nil && isIgnoredByTransformers($0) }.sorted()
    }

    public func checkCheckpoint(_ files: CheckpointFiles) throws {
        let problems = checkpointProblems(files)
        guard !problems.isEmpty else { return }
        let shown = problems.prefix(12).joined(separator: "\n  ")
        let more = problems.count > 12 ? "\n  … and \(problems.count - 12) more" : ""
        throw EngineError.checkpoint("checkpoint \(files.directory) does not match its config.json (model_type \(config.family.rawValue), \(expertLayout.rawValue) expert layout; supported model types: \(ModelFamily.allCases.map(\.rawValue).joined(separator: ", ")); expert layouts: per-expert tensors or fused gate_up_proj/down_proj):\n  \(shown)\(more)")
    }

    /// Where a checkpoint tensor belongs in the expert library.
    public enum Placement: Equatable, Sendable {
        /// Shared by every expert: embeddings, attention, norms, routers, shared experts, dense MLPs, lm head.
        case trunk
        /// One routed expert's own tensor (per-expert layout).
        case expert(ExpertID)
        /// A fused tensor [E, ...] whose slice e belongs to expert (layer, e).
        case expertSlices(layer: Int)
    }

    public func placement(ofTensor index: Int) -> Placement {
        for (l, layer) in layers.enumerated() {
            for (e, w) in layer.experts.enumerated() where w.all.contains(where: { $0.tensor == index }) {
                return expertLayout == .fused ? .expertSlices(layer: l) : .expert(ExpertID(layer: l, expert: e))
            }
        }
        return .trunk
    }

    /// All routed experts, layer by layer.
    public var expertIDs: [ExpertID] {
        layers.enumerated().flatMap { l, layer in layer.experts.indices.map { ExpertID(layer: l, expert: $0) } }
    }
}
