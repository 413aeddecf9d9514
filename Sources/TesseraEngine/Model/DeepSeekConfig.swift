import Foundation
import TesseraCore

/// DeepSeek-V2 and -V3 config.json, resolved as transformers 5 reads it: a key that is
/// absent takes transformers' default for the family (q_lora_rank absent means 1536, while
/// null means plain q_proj), and what transformers ignores is ignored here too.
extension ModelConfig {
    static func resolveDeepSeek(_ c: HFConfigFile, family: ModelFamily, keys: Set<String>, file: String) throws -> ModelConfig {
        let v3 = family == .deepseekV3
        func need(_ v: Int?, _ key: String, default d: Int? = nil) throws -> Int { try positiveField(v, key, default: d, file: file) }
        if keys.contains("quantization_config") {
            throw ConfigError(file: file, "quantization_config is not supported for \(family.rawValue) (FP8 weights with weight_scale_inv): give a checkpoint in bf16 or float32")
        }
        if c.attentionBias == true { throw ConfigError(file: file, "attention_bias true is not supported for \(family.rawValue); supported: false") }
        if c.mlpBias == true { throw ConfigError(file: file, "mlp_bias true is not supported for \(family.rawValue); supported: false") }
        if let f = c.moeLayerFreq, f != 1 {
            throw ConfigError(file: file, "moe_layer_freq \(f) is not supported (transformers builds every layer from first_k_dense_replace on as MoE); supported: 1")
        }
        let hidden = try need(c.hiddenSize, "hidden_size")
        let heads = try need(c.numAttentionHeads, "num_attention_heads")
        if let kv = c.numKeyValueHeads, kv != heads {
            throw ConfigError(file: file, "num_key_value_heads \(kv) differs from num_attention_heads \(heads); latent attention expands keys and values for every head")
        }
        let layers = try need(c.numHiddenLayers, "num_hidden_layers")
        let queryRank: Int?
        if keys.contains("q_lora_rank") {
            queryRank = try c.qLoraRank.map { try need($0, "q_lora_rank", default: 0) }
        } else {
            queryRank = 1536
        }
        let latent = LatentAttention(
            queryRank: queryRank,
            kvRank: try need(c.kvLoraRank, "kv_lora_rank", default: 512),
            nopeDim: try need(c.qkNopeHeadDim, "qk_nope_head_dim", default: 128),
            ropeDim: try need(c.qkRopeHeadDim, "qk_rope_head_dim", default: 64),
            valueDim: try need(c.vHeadDim, "v_head_dim", default: 128),
            interleavedRope: v3 ? (c.ropeInterleave ?? true) : true)
        guard latent.ropeDim % 2 == 0 else { throw ConfigError(file: file, "qk_rope_head_dim \(latent.ropeDim) must be even for rotary embeddings") }
        let experts = try need(c.nRoutedExperts, "n_routed_experts", default: v3 ? 256 : 64)
        let topK = try need(c.numExpertsPerTok ?? (v3 ? 8 : nil), "num_experts_per_tok")
        guard topK <= experts else { throw ConfigError(file: file, "num_experts_per_tok \(topK) exceeds n_routed_experts \(experts)") }
        let expertWidth = try need(c.moeIntermediateSize, "moe_intermediate_size", default: v3 ? 2048 : 1407)
        let shared = try need(c.nSharedExperts, "n_shared_experts", default: v3 ? 1 : 2)
        let firstDense = c.firstKDenseReplace ?? (v3 ? 3 : 0)
        guard (0...layers).contains(firstDense) else {
            throw ConfigError(file: file, "first_k_dense_replace \(firstDense) must be in 0...\(layers)")
        }
        let sparse = (0..<layers).map { $0 >= firstDense }
        let denseWidth = firstDense > 0 ? try need(c.intermediateSize, "intermediate_size") : 0
        let theta = c.ropeParameters?.ropeTheta ?? c.ropeTheta ?? 10_000
        guard theta > 0, theta.isFinite else { throw ConfigError(file: file, "rope_theta must be positive, got \(theta)") }
        let eps = c.rmsNormEps ?? 1e-6
        guard eps > 0, eps.isFinite else { throw ConfigError(file: file, "rms_norm_eps must be positive, got \(eps)") }
        let (sharedWidth, widthOverflow) = expertWidth.multipliedReportingOverflow(by: shared)
        guard !widthOverflow else { throw ConfigError(file: file, "moe_intermediate_size × n_shared_experts overflows") }

        var rule = RouterRule()
        rule.scale = Float(c.routedScalingFactor ?? (v3 ? 2.5 : 1))
        guard rule.scale.isFinite, rule.scale > 0 else {
            throw ConfigError(file: file, "routed_scaling_factor must be positive, got \(c.routedScalingFactor ?? 0)")
        }
        var normalize = false
        if v3 {
            // transformers' V3 router is sigmoid scoring with the correction bias and group
            // limits whatever topk_method and scoring_func say (the released configs say
            // noaux_tc and sigmoid); other spellings are refused rather than ignored.
            if let s = c.scoringFunc, s != "sigmoid" { throw ConfigError(file: file, "scoring_func \(s) is not supported for deepseek_v3; supported: sigmoid") }
            if let m = c.topkMethod, m != "noaux_tc" { throw ConfigError(file: file, "topk_method \(m) is not supported for deepseek_v3; supported: noaux_tc") }
            rule.scoring = .sigmoid
            rule.correctionBias = true
            rule.groupScore = .bestTwo
            rule.groups = try need(keys.contains("n_group") ? c.nGroup : (c.nGroup ?? 8), "n_group", default: 0)
            rule.topGroups = try need(keys.contains("topk_group") ? c.topkGroup : (c.topkGroup ?? 4), "topk_group", default: 0)
            normalize = c.normTopkProb ?? true
        } else {
            if let s = c.scoringFunc, s != "softmax" { throw ConfigError(file: file, "scoring_func \(s) is not supported for deepseek_v2; supported: softmax") }
            switch c.topkMethod ?? "greedy" {
            case "greedy": break
            case "group_limited_greedy":
                rule.groups = try need(c.nGroup, "n_group")
                rule.topGroups = try need(c.topkGroup, "topk_group")
            case let m:
                throw ConfigError(file: file, "topk_method \(m) is not supported for deepseek_v2; supported: greedy, group_limited_greedy")
            }
            // transformers' DeepseekV2 router never renormalises: norm_topk_prob is read
            // but unused, so it is ignored here too.
        }
        guard experts % rule.groups == 0 else {
            throw ConfigError(file: file, "n_routed_experts \(experts) is not a multiple of n_group \(rule.groups)")
        }
        guard rule.topGroups <= rule.groups else {
            throw ConfigError(file: file, "topk_group \(rule.topGroups) exceeds n_group \(rule.groups)")
        }
        guard topK <= rule.topGroups * (experts / rule.groups) else {
            throw ConfigError(file: file, "num_experts_per_tok \(topK) exceeds the experts in topk_group \(rule.topGroups) groups of \(experts / rule.groups)")
        }
        if rule.groupScore == .bestTwo && rule.groups > 1 && experts / rule.groups < 2 {
            throw ConfigError(file: file, "deepseek_v3 scores a group by its two best experts; n_group \(rule.groups) leaves \(experts / rule.groups) per group")
        }

        var config = ModelConfig(
            family: family, vocabSize: try need(c.vocabSize, "vocab_size"), hiddenSize: hidden, layers: layers,
            heads: heads, kvHeads: heads, headDim: latent.headDim, rmsNormEps: Float(eps), ropeTheta: theta,
            experts: experts, topK: topK, expertWidth: expertWidth, denseWidth: denseWidth, sharedExpertWidth: sharedWidth,
            normTopKProb: normalize, sparseLayers: sparse, tieWordEmbeddings: c.tieWordEmbeddings ?? false)
        config.latentAttention = latent
        config.valueHeadDim = latent.valueDim
        config.rotaryDim = latent.ropeDim
        config.router = rule
        if let rope = c.ropeParameters ?? c.ropeScaling,
           let yarn = try yarnRope(rope, maxPositions: c.maxPositionEmbeddings ?? (v3 ? 4096 : 2048), file: file) {
            config.yarn = yarn
            // transformers' yarn_apply_mscale: DeepSeek scales the softmax by mscale² too.
            if let all = rope.mscaleAllDim, all != 0, yarn.factor > 1 {
                let m = 0.1 * all * Foundation.log(yarn.factor) + 1
                config.attentionScale = Float(1 / Double(latent.headDim).squareRoot() * m * m)
            }
        }
        if let pad = c.padTokenId, (0..<config.vocabSize).contains(pad) { config.paddingIndex = pad }
        return config
    }

    /// A DeepSeek config of the given widths, with the proportions of the released models
    /// (DeepSeek-V2-Lite's for V2: per head nope = v = hidden/heads and rope half that, a
    /// key/value latent of hidden/4, plain q_proj, two shared experts, one dense first
    /// layer twice an expert's width; V3 adds a query latent of hidden/2, one shared expert
    /// and sigmoid routing). For `tessera init` and the benchmarks.
    public static func deepSeek(_ family: ModelFamily, vocabSize: Int, hiddenSize: Int, layers: Int, heads: Int,
                                experts: Int, topK: Int, expertWidth: Int, denseLayers: Int = 1) -> ModelConfig {
        let v3 = family == .deepseekV3
        let head = hiddenSize / heads
        let latent = LatentAttention(queryRank: v3 ? max(hiddenSize / 2, 1) : nil, kvRank: max(hiddenSize / 4, 1), nopeDim: head,
                                     ropeDim: max(head / 2 / 2 * 2, 2), valueDim: head, interleavedRope: true)
        let shared = v3 ? 1 : 2
        var config = ModelConfig(family: family, vocabSize: vocabSize, hiddenSize: hiddenSize, layers: layers, heads: heads,
                                 kvHeads: heads, headDim: latent.headDim, experts: experts, topK: topK, expertWidth: expertWidth,
                                 denseWidth: denseLayers > 0 ? 2 * expertWidth : 0, sharedExpertWidth: shared * expertWidth,
                                 normTopKProb: v3, sparseLayers: (0..<layers).map { $0 >= denseLayers })
        config.latentAttention = latent
        config.valueHeadDim = latent.valueDim
        config.rotaryDim = latent.ropeDim
        if v3 {
            config.router.scoring = .sigmoid
            config.router.correctionBias = true
            config.router.groupScore = .bestTwo
            config.router.scale = 2.5
        }
        return config
    }

    /// The config.json fields of a DeepSeek family, in transformers 5's spelling.
    func deepSeekJSONFields() -> [(String, JSONValue)] {
        func n(_ x: Int) -> JSONValue { .integer(Int64(x)) }
        guard let m = latentAttention else { return [] }
        var f: [(String, JSONValue)] = [
            ("n_routed_experts", n(experts)),
            ("moe_intermediate_size", n(expertWidth)),
            ("n_shared_experts", n(sharedExpertWidth / max(expertWidth, 1))),
            ("first_k_dense_replace", n(sparseLayers.firstIndex(of: true) ?? layers)),
            ("intermediate_size", n(denseWidth > 0 ? denseWidth : expertWidth)),
            ("q_lora_rank", m.queryRank.map(n) ?? .null),
            ("kv_lora_rank", n(m.kvRank)),
            ("qk_nope_head_dim", n(m.nopeDim)),
            ("qk_rope_head_dim", n(m.ropeDim)),
            ("v_head_dim", n(m.valueDim)),
            ("routed_scaling_factor", .number(Double("\(router.scale)") ?? Double(router.scale))),
            ("norm_topk_prob", .bool(normTopKProb)),
            ("attention_bias", .bool(false)),
        ]
        if family == .deepseekV3 {
            f.append(("n_group", n(router.groups)))
            f.append(("topk_group", n(router.topGroups)))
            f.append(("rope_interleave", .bool(m.interleavedRope)))
        } else {
            f.append(("topk_method", .string(router.groups > 1 ? "group_limited_greedy" : "greedy")))
            f.append(("n_group", router.groups > 1 ? n(router.groups) : .null))
            f.append(("topk_group", router.groups > 1 ? n(router.topGroups) : .null))
        }
        return f
    }
}
