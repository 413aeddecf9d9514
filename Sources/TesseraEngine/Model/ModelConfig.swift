import Foundation
import TesseraCore

public enum ModelFamily: String, Sendable, CaseIterable, Codable {
    case mixtral
    case olmoe
    case qwen2MoE = "qwen2_moe"
    case qwen3MoE = "qwen3_moe"
    case deepseekV2 = "deepseek_v2"
    case deepseekV3 = "deepseek_v3"
    case gptOss = "gpt_oss"

    /// DeepSeek's multi-head latent attention, shared experts and scaled routing.
    public var isDeepSeek: Bool { self == .deepseekV2 || self == .deepseekV3 }
}

public typealias ConfigError = FileProblem

/// config.json as transformers 4.x and 5.x write it for the four supported families.
/// Spellings that changed between versions are both accepted; features the engine does
/// not implement are refused by `validated`, never ignored.
public struct HFConfigFile: Codable, Sendable {
    /// rope_parameters (transformers 5) and rope_scaling (4.x) share their YaRN fields.
    public struct RopeParameters: Codable, Sendable {
        public var ropeTheta: Double?
        public var ropeType: String?
        public var type: String?
        public var factor: Double?
        public var betaFast: Double?
        public var betaSlow: Double?
        public var originalMaxPositionEmbeddings: Int?
        public var truncate: Bool?
        public var attentionFactor: Double?
        public var mscale: Double?
        public var mscaleAllDim: Double?
        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta"
            case ropeType = "rope_type"
            case type, factor, truncate, mscale
            case betaFast = "beta_fast"
            case betaSlow = "beta_slow"
            case originalMaxPositionEmbeddings = "original_max_position_embeddings"
            case attentionFactor = "attention_factor"
            case mscaleAllDim = "mscale_all_dim"
        }
        public var kind: String { ropeType ?? type ?? "default" }
        public init(ropeTheta: Double? = nil, ropeType: String? = nil, factor: Double? = nil, betaFast: Double? = nil, betaSlow: Double? = nil,
                    originalMaxPositionEmbeddings: Int? = nil, truncate: Bool? = nil) {
            self.ropeTheta = ropeTheta; self.ropeType = ropeType; self.factor = factor; self.betaFast = betaFast
            self.betaSlow = betaSlow; self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings; self.truncate = truncate
        }
    }
    public typealias RopeScaling = RopeParameters

    public var modelType: String?
    public var vocabSize: Int?
    public var hiddenSize: Int?
    public var intermediateSize: Int?
    public var moeIntermediateSize: Int?
    public var sharedExpertIntermediateSize: Int?
    public var numHiddenLayers: Int?
    public var numAttentionHeads: Int?
    public var numKeyValueHeads: Int?
    public var headDim: Int?
    public var rmsNormEps: Double?
    public var ropeTheta: Double?
    public var ropeParameters: RopeParameters?
    public var ropeScaling: RopeScaling?
    public var numLocalExperts: Int?
    public var numExperts: Int?
    public var numExpertsPerTok: Int?
    public var normTopkProb: Bool?
    public var decoderSparseStep: Int?
    public var mlpOnlyLayers: [Int]?
    public var tieWordEmbeddings: Bool?
    public var padTokenId: Int?
    public var attentionBias: Bool?
    public var qkvBias: Bool?
    public var clipQKV: Double?
    public var hiddenAct: String?
    public var slidingWindow: Int?
    public var useSlidingWindow: Bool?
    public var maxPositionEmbeddings: Int?
    // DeepSeek-V2/V3 (defaults are transformers' when a key is absent; see `resolveDeepSeek`).
    public var qLoraRank: Int?
    public var kvLoraRank: Int?
    public var qkNopeHeadDim: Int?
    public var qkRopeHeadDim: Int?
    public var vHeadDim: Int?
    public var nRoutedExperts: Int?
    public var nSharedExperts: Int?
    public var firstKDenseReplace: Int?
    public var moeLayerFreq: Int?
    public var routedScalingFactor: Double?
    public var topkMethod: String?
    public var nGroup: Int?
    public var topkGroup: Int?
    public var scoringFunc: String?
    public var ropeInterleave: Bool?
    public var mlpBias: Bool?
    // gpt-oss
    public var layerTypes: [String]?
    public var swigluLimit: Double?
    public var swigluAlpha: Double?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case moeIntermediateSize = "moe_intermediate_size"
        case sharedExpertIntermediateSize = "shared_expert_intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case ropeParameters = "rope_parameters"
        case ropeScaling = "rope_scaling"
        case numLocalExperts = "num_local_experts"
        case numExperts = "num_experts"
        case numExpertsPerTok = "num_experts_per_tok"
        case normTopkProb = "norm_topk_prob"
        case decoderSparseStep = "decoder_sparse_step"
        case mlpOnlyLayers = "mlp_only_layers"
        case tieWordEmbeddings = "tie_word_embeddings"
        case padTokenId = "pad_token_id"
        case attentionBias = "attention_bias"
        case qkvBias = "qkv_bias"
        case clipQKV = "clip_qkv"
        case hiddenAct = "hidden_act"
        case slidingWindow = "sliding_window"
        case useSlidingWindow = "use_sliding_window"
        case maxPositionEmbeddings = "max_position_embeddings"
        case qLoraRank = "q_lora_rank"
        case kvLoraRank = "kv_lora_rank"
        case qkNopeHeadDim = "qk_nope_head_dim"
        case qkRopeHeadDim = "qk_rope_head_dim"
        case vHeadDim = "v_head_dim"
        case nRoutedExperts = "n_routed_experts"
        case nSharedExperts = "n_shared_experts"
        case firstKDenseReplace = "first_k_dense_replace"
        case moeLayerFreq = "moe_layer_freq"
        case routedScalingFactor = "routed_scaling_factor"
        case topkMethod = "topk_method"
        case nGroup = "n_group"
        case topkGroup = "topk_group"
        case scoringFunc = "scoring_func"
        case ropeInterleave = "rope_interleave"
        case mlpBias = "mlp_bias"
        case layerTypes = "layer_types"
        case swigluLimit = "swiglu_limit"
        case swigluAlpha = "swiglu_alpha"
    }
}

/// DeepSeek's multi-head latent attention (MLA): keys and values come from a compressed
/// latent of `kvRank` values per token plus one rotary key part shared by all heads.
public struct LatentAttention: Sendable, Equatable, Codable {
    /// q_lora_rank: queries go through a compressed latent too (nil: one q_proj).
    public var queryRank: Int?
    public var kvRank: Int
    public var nopeDim: Int
    public var ropeDim: Int
    public var valueDim: Int
    /// Rotary pairs are adjacent elements (DeepSeek-V2 always; V3 with rope_interleave)
    /// rather than i and i + d/2.
    public var interleavedRope: Bool
    public var headDim: Int { nopeDim + ropeDim }
}

/// YaRN (arXiv 2309.00071) as transformers' `_compute_yarn_parameters` computes it.
public struct YarnRope: Sendable, Equatable, Codable {
    public var factor: Double
    public var betaFast: Double
    public var betaSlow: Double
    public var originalMaxPositions: Int
    public var truncate: Bool
    /// Multiplies cos and sin (so attention scores by its square).
    public var attentionFactor: Double
}

/// gpt-oss's expert activation: (clamp(up, ±limit) + 1) · g · σ(α g) with g = min(gate, limit).
public struct ClampedSwiGLU: Sendable, Equatable, Codable {
    public var limit: Float
    public var alpha: Float
}

/// How a sparse layer's router turns logits into the chosen experts and their weights.
public struct RouterRule: Sendable, Equatable, Codable {
    public enum Scoring: String, Sendable, Codable {
        case softmax, sigmoid
        /// gpt-oss: the top-k logits are chosen first, their softmax is the weights.
        case softmaxOfTopK = "softmax_of_top_k"
    }
    /// How a group of experts is scored when choices are limited to the best groups.
    public enum GroupScore: String, Sendable, Codable {
        /// DeepSeek-V2's group_limited_greedy: the group's best expert.
        case best
        /// DeepSeek-V3: the sum of the group's two best.
        case bestTwo = "best_two"
    }
    public var scoring: Scoring = .softmax
    /// Experts fall into `groups` equal groups; a token chooses among the `topGroups` best
    /// (1 and 1: no limit).
    public var groups: Int = 1
    public var topGroups: Int = 1
    public var groupScore: GroupScore = .best
    /// Weights are multiplied by this after any renormalisation (routed_scaling_factor).
    public var scale: Float = 1
    /// DeepSeek-V3's e_score_correction_bias: added to the scores for choosing only.
    public var correctionBias: Bool = false
    public init() {}
}

/// The resolved architecture the engine runs: every choice explicit.
public struct ModelConfig: Sendable, Equatable, Codable {
    public var family: ModelFamily
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    /// Routed experts per sparse layer, and how many each token uses.
    public var experts: Int
    public var topK: Int
    public var expertWidth: Int
    /// Width of the dense MLP in layers that have no experts (Qwen2/3-MoE).
    public var denseWidth: Int
    /// Qwen2-MoE's always-on expert (0 when absent).
    public var sharedExpertWidth: Int
    public var normTopKProb: Bool
    /// Which layers route to experts; the others use a dense MLP.
    public var sparseLayers: [Bool]
    public var tieWordEmbeddings: Bool
    public var qkvBias: Bool
    public var oBias: Bool
    public var qkNorm: QKNorm
    public var clipQKV: Float?
    /// Keys further back than this many positions are masked (nil: full causal attention).
    public var slidingWindow: Int?
    /// `pad_token_id`: transformers builds the embedding with it as padding_idx, whose row
    /// receives no gradient through the embedding lookup (nil: none).
    public var paddingIndex: Int?
    /// Value head width (differs from `headDim` in latent attention).
    public var valueHeadDim: Int
    /// Width of the rotary part of each head (all of it, except in latent attention).
    public var rotaryDim: Int
    public var latentAttention: LatentAttention?
    public var router = RouterRule()
    /// Qwen2-MoE scales its shared expert by a sigmoid gate; DeepSeek's shared experts are
    /// added as they are.
    public var sharedExpertGated: Bool
    /// YaRN rotary scaling (nil: plain rotary embeddings).
    public var yarn: YarnRope?
    /// Softmax scale of attention scores (nil: 1/√headDim); DeepSeek's YaRN multiplies it.
    public var attentionScale: Float?
    /// gpt-oss: a learned per-head logit that joins each softmax and is then dropped.
    public var attentionSinks = false
    /// Which layers use `slidingWindow` (nil: all of them).
    public var slidingLayers: [Bool]?
    /// gpt-oss's experts: stored [hidden, 2·width] with gate and up interleaved by column,
    /// down [width, hidden], both with biases, and a clamped SwiGLU.
    public var clampedSwiGLU: ClampedSwiGLU?
    /// gpt-oss checkpoints with `quantization_config` mxfp4: expert weights stored as MXFP4
    /// blocks and scales, decoded to float on load.
    public var mxfp4Experts = false

    public enum QKNorm: String, Sendable, Codable {
        case none
        /// OLMoE: RMSNorm over the whole q (and k) projection.
        case wholeProjection = "whole_projection"
        /// Qwen3: RMSNorm over each head's head_dim slice, weights shared by heads.
        case perHead = "per_head"
    }

    public init(family: ModelFamily, vocabSize: Int, hiddenSize: Int, layers: Int, heads: Int, kvHeads: Int,
                headDim: Int? = nil, rmsNormEps: Float = 1e-6, ropeTheta: Double = 10000, experts: Int, topK: Int,
                expertWidth: Int, denseWidth: Int = 0, sharedExpertWidth: Int = 0, normTopKProb: Bool? = nil,
                sparseLayers: [Bool]? = nil, tieWordEmbeddings: Bool = false, slidingWindow: Int? = nil) {
        self.family = family
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim ?? hiddenSize / heads
        self.valueHeadDim = self.headDim
        self.rotaryDim = self.headDim
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.experts = experts
        self.topK = topK
        self.expertWidth = expertWidth
        self.denseWidth = denseWidth
        self.sharedExpertWidth = (family == .qwen2MoE || family.isDeepSeek) ? sharedExpertWidth : 0
        self.sharedExpertGated = family == .qwen2MoE
        self.normTopKProb = family == .mixtral ? true : (normTopKProb ?? false)
        self.sparseLayers = sparseLayers ?? Array(repeating: true, count: layers)
        self.tieWordEmbeddings = tieWordEmbeddings
        self.qkvBias = family == .qwen2MoE
        self.oBias = false
        switch family {
        case .olmoe: qkNorm = .wholeProjection
        case .qwen3MoE: qkNorm = .perHead
        default: qkNorm = .none
        }
        self.clipQKV = nil
        self.slidingWindow = slidingWindow
    }

    public var qDim: Int { heads * headDim }
    public var kvDim: Int { kvHeads * headDim }
    /// Values [T, kvHeads · valueHeadDim]; the attention output [T, heads · valueHeadDim].
    public var vDim: Int { kvHeads * valueHeadDim }
    public var attnDim: Int { heads * valueHeadDim }

    public static func load(directory: String) throws -> ModelConfig {
        let path = (directory as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, "cannot read config.json")
        }
        return try parse(data, file: path)
    }

    public static func parse(_ data: Data, file: String) throws -> ModelConfig {
        let json: JSONValue
        do { json = try JSONValue.parse(data) } catch { throw ConfigError(file: file, "not a valid config.json: \(error)") }
        let raw: HFConfigFile
        do {
            raw = try JSONValueDecoder().decode(HFConfigFile.self, from: json)
        } catch let e as DecodingError {
            throw ConfigError(file: file, "field \(StrictJSON.describe(e, in: json))")
        }
        var keys = Set<String>()
        if case .object(let pairs) = json { keys = Set(pairs.map(\.0)) }
        let quantization = json["quantization_config"]?["quant_method"]?.stringValue
        let config = try resolve(raw, keys: keys, quantization: quantization, file: file)
        try config.checkSizes(file: file)
        return config
    }

    /// A positive integer field, or its default when absent (nil: the field is required).
    static func positiveField(_ v: Int?, _ key: String, default d: Int?, file: String) throws -> Int {
        guard let x = v ?? d else { throw ConfigError(file: file, "missing required field \(key)") }
        guard x > 0 else { throw ConfigError(file: file, "field \(key) must be positive, got \(x)") }
        return x
    }

    /// Bounds far above any released model's, so that no tensor size or parameter count of
    /// the layout can overflow (a hostile config.json with hidden_size 2^30 and vocab_size
    /// 2^40 used to trap in the layout before any file was read): products of three
    /// bounded dimensions stay below 2^50, and 2^10 layers of them below 2^62.
    func checkSizes(file: String) throws {
        var limits: [(String, Int, Int)] = [
            ("vocab_size", vocabSize, 1 << 22), ("hidden_size", hiddenSize, 1 << 16), ("num_hidden_layers", layers, 1 << 10),
            ("num_attention_heads", heads, 1 << 10), ("num_key_value_heads", kvHeads, 1 << 10), ("head_dim", headDim, 1 << 12),
            ("v_head_dim", valueHeadDim, 1 << 12), ("experts", experts, 1 << 12), ("expert width (intermediate_size)", expertWidth, 1 << 18),
            ("dense width (intermediate_size)", denseWidth, 1 << 18), ("shared expert width", sharedExpertWidth, 1 << 19),
        ]
        if let m = latentAttention {
            limits += [("kv_lora_rank", m.kvRank, 1 << 16), ("q_lora_rank", m.queryRank ?? 0, 1 << 16)]
        }
        for (name, value, limit) in limits where value > limit {
            throw ConfigError(file: file, "\(name) \(value) exceeds \(limit), far beyond any released model; refusing it before sizing tensors")
        }
        // The layout holds a view per routed expert: bounded too (DeepSeek-V3 has 14,848).
        let routed = experts * sparseLayers.filter { $0 }.count
        guard routed <= 1 << 16 else {
            throw ConfigError(file: file, "\(routed) routed experts over all layers exceed \(1 << 16), far beyond any released model")
        }
    }

    /// `keys`: the fields config.json spells out, where absent and null mean different things.
    static func resolve(_ c: HFConfigFile, keys: Set<String> = [], quantization: String? = nil, file: String) throws -> ModelConfig {
        func need<T>(_ v: T?, _ key: String) throws -> T {
            guard let v else { throw ConfigError(file: file, "missing required field \(key)") }
            return v
        }
        func positive(_ v: Int, _ key: String) throws -> Int {
            guard v > 0 else { throw ConfigError(file: file, "field \(key) must be positive, got \(v)") }
            return v
        }
        let typeName = try need(c.modelType, "model_type")
        guard let family = ModelFamily(rawValue: typeName) else {
            throw ConfigError(file: file, "unsupported model_type \(typeName); supported: \(ModelFamily.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let act = c.hiddenAct, act != "silu" {
            throw ConfigError(file: file, "unsupported hidden_act \(act); supported: silu")
        }
        let yarnFamily = family.isDeepSeek || family == .gptOss
        if let rs = c.ropeScaling, rs.kind != "default", !(yarnFamily && rs.kind == "yarn") {
            throw ConfigError(file: file, "unsupported rope_scaling type \(rs.kind); supported: default (no scaling)\(yarnFamily ? ", yarn" : "")")
        }
        if let rt = c.ropeParameters?.ropeType, rt != "default", !(yarnFamily && rt == "yarn") {
            throw ConfigError(file: file, "unsupported rope_parameters.rope_type \(rt); supported: default\(yarnFamily ? ", yarn" : "")")
        }
        if family.isDeepSeek { return try resolveDeepSeek(c, family: family, keys: keys, file: file) }
        if family == .gptOss { return try resolveGptOss(c, keys: keys, quantization: quantization, file: file) }
        let hidden = try positive(try need(c.hiddenSize, "hidden_size"), "hidden_size")
        let heads = try positive(try need(c.numAttentionHeads, "num_attention_heads"), "num_attention_heads")
        let kvHeads = try positive(c.numKeyValueHeads ?? heads, "num_key_value_heads")
        guard heads % kvHeads == 0 else {
            throw ConfigError(file: file, "num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)")
        }
        let headDim = try positive(c.headDim ?? hidden / heads, "head_dim")
        guard headDim % 2 == 0 else { throw ConfigError(file: file, "head_dim \(headDim) must be even for rotary embeddings") }
        if c.headDim == nil, hidden % heads != 0 {
            throw ConfigError(file: file, "hidden_size \(hidden) is not a multiple of num_attention_heads \(heads) and head_dim is not given")
        }
        let layers = try positive(try need(c.numHiddenLayers, "num_hidden_layers"), "num_hidden_layers")
        let experts = try positive(try need(c.numLocalExperts ?? c.numExperts, "num_local_experts or num_experts"), "num_experts")
        let topK = try positive(try need(c.numExpertsPerTok, "num_experts_per_tok"), "num_experts_per_tok")
        guard topK <= experts else {
            throw ConfigError(file: file, "num_experts_per_tok \(topK) exceeds the number of experts \(experts)")
        }
        let theta = c.ropeParameters?.ropeTheta ?? c.ropeTheta ?? (family == .mixtral ? 1_000_000 : 10_000)
        guard theta > 0, theta.isFinite else { throw ConfigError(file: file, "rope_theta must be positive, got \(theta)") }
        let eps = c.rmsNormEps ?? 1e-6
        guard eps > 0, eps.isFinite else { throw ConfigError(file: file, "rms_norm_eps must be positive, got \(eps)") }

        var sparse = Array(repeating: true, count: layers)
        var expertWidth: Int
        var denseWidth = 0
        var sharedWidth = 0
        switch family {
        case .mixtral, .olmoe, .deepseekV2, .deepseekV3, .gptOss:   // DeepSeek and gpt-oss are resolved above
            expertWidth = try positive(try need(c.intermediateSize, "intermediate_size"), "intermediate_size")
        case .qwen2MoE, .qwen3MoE:
            expertWidth = try positive(try need(c.moeIntermediateSize, "moe_intermediate_size"), "moe_intermediate_size")
            let step = c.decoderSparseStep ?? 1
            guard step >= 1 else { throw ConfigError(file: file, "decoder_sparse_step must be at least 1, got \(step)") }
            let mlpOnly = Set(c.mlpOnlyLayers ?? [])
            for l in mlpOnly where l < 0 || l >= layers {
                throw ConfigError(file: file, "mlp_only_layers names layer \(l), outside 0..<\(layers)")
            }
            for l in 0..<layers { sparse[l] = !mlpOnly.contains(l) && (l + 1) % step == 0 }
            if sparse.contains(false) {
                denseWidth = try positive(try need(c.intermediateSize, "intermediate_size"), "intermediate_size")
            }
            if family == .qwen2MoE {
                sharedWidth = try positive(try need(c.sharedExpertIntermediateSize, "shared_expert_intermediate_size"), "shared_expert_intermediate_size")
            }
        }
        var window: Int? = nil
        switch family {
        case .mixtral:
            window = c.slidingWindow
        case .qwen2MoE, .qwen3MoE:
            if c.useSlidingWindow == true {
                throw ConfigError(file: file, "use_sliding_window true is not supported (Qwen's per-layer windows); supported: false")
            }
        case .olmoe, .deepseekV2, .deepseekV3, .gptOss: break
        }
        if let w = window, w <= 0 { window = nil }

        var config = ModelConfig(
            family: family, vocabSize: try positive(try need(c.vocabSize, "vocab_size"), "vocab_size"),
            hiddenSize: hidden, layers: layers, heads: heads, kvHeads: kvHeads, headDim: headDim,
            rmsNormEps: Float(eps), ropeTheta: theta, experts: experts, topK: topK, expertWidth: expertWidth,
            denseWidth: denseWidth, sharedExpertWidth: sharedWidth, normTopKProb: c.normTopkProb,
            sparseLayers: sparse, tieWordEmbeddings: c.tieWordEmbeddings ?? false, slidingWindow: window)
        if let pad = c.padTokenId, (0..<config.vocabSize).contains(pad) { config.paddingIndex = pad }
        switch family {
        case .mixtral, .deepseekV2, .deepseekV3, .gptOss: break
        case .olmoe:
            config.qkvBias = c.attentionBias ?? false
            config.oBias = c.attentionBias ?? false
            if let clip = c.clipQKV {
                guard clip > 0 else { throw ConfigError(file: file, "clip_qkv must be positive, got \(clip)") }
                config.clipQKV = Float(clip)
            }
        case .qwen2MoE:
            config.qkvBias = c.qkvBias ?? true
        case .qwen3MoE:
            config.qkvBias = c.attentionBias ?? false
            config.oBias = c.attentionBias ?? false
        }
        return config
    }
}
