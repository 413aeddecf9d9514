import Foundation
import TesseraCore

/// gpt-oss config.json as transformers 5 reads it (defaults: transformers' GptOssConfig).
extension ModelConfig {
    static func resolveGptOss(_ c: HFConfigFile, keys: Set<String>, quantization: String?, file: String) throws -> ModelConfig {
        func need(_ v: Int?, _ key: String, default d: Int? = nil) throws -> Int { try positiveField(v, key, default: d, file: file) }
        if keys.contains("quantization_config"), quantization != "mxfp4" {
            throw ConfigError(file: file, "quantization_config quant_method \(quantization ?? "?") is not supported for gpt_oss; supported: mxfp4")
        }
        let hidden = try need(c.hiddenSize, "hidden_size", default: 2880)
        let heads = try need(c.numAttentionHeads, "num_attention_heads", default: 64)
        let kvHeads = try need(c.numKeyValueHeads, "num_key_value_heads", default: 8)
        guard heads % kvHeads == 0 else {
            throw ConfigError(file: file, "num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)")
        }
        let headDim = try need(c.headDim, "head_dim", default: 64)
        guard headDim % 2 == 0 else { throw ConfigError(file: file, "head_dim \(headDim) must be even for rotary embeddings") }
        let layers = try need(c.numHiddenLayers, "num_hidden_layers", default: 36)
        let experts = try need(c.numLocalExperts, "num_local_experts", default: 128)
        let topK = try need(c.numExpertsPerTok, "num_experts_per_tok", default: 4)
        guard topK <= experts else { throw ConfigError(file: file, "num_experts_per_tok \(topK) exceeds num_local_experts \(experts)") }
        let width = try need(c.intermediateSize, "intermediate_size", default: 2880)
        let eps = c.rmsNormEps ?? 1e-5
        guard eps > 0, eps.isFinite else { throw ConfigError(file: file, "rms_norm_eps must be positive, got \(eps)") }
        let window = try need(keys.contains("sliding_window") ? c.slidingWindow : (c.slidingWindow ?? 128), "sliding_window")
        let types = c.layerTypes ?? (0..<layers).map { $0 % 2 == 0 ? "sliding_attention" : "full_attention" }
        guard types.count == layers else {
            throw ConfigError(file: file, "layer_types has \(types.count) entries for num_hidden_layers \(layers)")
        }
        for t in types where t != "sliding_attention" && t != "full_attention" {
            throw ConfigError(file: file, "layer_types entry \(t) is not supported; supported: sliding_attention, full_attention")
        }
        if c.attentionBias == false { throw ConfigError(file: file, "attention_bias false is not supported for gpt_oss; supported: true") }
        let limit = c.swigluLimit ?? 7, alpha = c.swigluAlpha ?? 1.702
        guard limit > 0, limit.isFinite, alpha > 0, alpha.isFinite else {
            throw ConfigError(file: file, "swiglu_limit \(limit) and swiglu_alpha \(alpha) must be positive")
        }
        let rope = c.ropeParameters ?? c.ropeScaling
        let theta = rope?.ropeTheta ?? c.ropeTheta ?? 150_000
        guard theta > 0, theta.isFinite else { throw ConfigError(file: file, "rope_theta must be positive, got \(theta)") }
        var config = ModelConfig(family: .gptOss, vocabSize: try need(c.vocabSize, "vocab_size", default: 201_088), hiddenSize: hidden,
                                 layers: layers, heads: heads, kvHeads: kvHeads, headDim: headDim, rmsNormEps: Float(eps),
                                 ropeTheta: theta, experts: experts, topK: topK, expertWidth: width,
                                 tieWordEmbeddings: c.tieWordEmbeddings ?? false, slidingWindow: window)
        config.slidingLayers = types.map { $0 == "sliding_attention" }
        config.qkvBias = true
        config.oBias = true
        config.attentionSinks = true
        config.router.scoring = .softmaxOfTopK
        config.clampedSwiGLU = ClampedSwiGLU(limit: Float(limit), alpha: Float(alpha))
        if quantization == "mxfp4" {
            guard hidden % 32 == 0, width % 32 == 0 else {
                throw ConfigError(file: file, "MXFP4 experts need hidden_size \(hidden) and intermediate_size \(width) to be multiples of 32")
            }
            config.mxfp4Experts = true
        }
        // With no rope_parameters at all transformers fills in gpt-oss's YaRN.
        let defaultYarn = HFConfigFile.RopeParameters(ropeType: "yarn", factor: 32, betaFast: 32, betaSlow: 1,
                                                      originalMaxPositionEmbeddings: 4096, truncate: false)
        config.yarn = try yarnRope(rope ?? defaultYarn, maxPositions: c.maxPositionEmbeddings ?? 131_072, file: file)
        if let pad = c.padTokenId, (0..<config.vocabSize).contains(pad) { config.paddingIndex = pad }
        return config
    }

    /// YaRN's parameters from rope_parameters / rope_scaling (nil when the type is default).
    static func yarnRope(_ r: HFConfigFile.RopeParameters, maxPositions: Int, file: String) throws -> YarnRope? {
        guard r.kind == "yarn" else { return nil }
        guard let original = r.originalMaxPositionEmbeddings, original > 0 else {
            throw ConfigError(file: file, "yarn rope scaling needs a positive original_max_position_embeddings")
        }
        let factor = r.factor ?? Double(maxPositions) / Double(original)
        guard factor > 0, factor.isFinite else { throw ConfigError(file: file, "yarn factor must be positive, got \(factor)") }
        func mscale(_ scale: Double, _ m: Double = 1) -> Double { scale <= 1 ? 1 : 0.1 * m * Foundation.log(scale) + 1 }
        var attention = r.attentionFactor ?? mscale(factor)
        if r.attentionFactor == nil, let m = r.mscale, let all = r.mscaleAllDim, m != 0, all != 0 {
            attention = mscale(factor, m) / mscale(factor, all)
        }
        let fast = r.betaFast ?? 32, slow = r.betaSlow ?? 1
        guard fast.isFinite, slow.isFinite, attention.isFinite, attention > 0 else {
            throw ConfigError(file: file, "yarn beta_fast, beta_slow and attention_factor must be finite (attention_factor positive)")
        }
        return YarnRope(factor: factor, betaFast: fast == 0 ? 32 : fast, betaSlow: slow == 0 ? 1 : slow,
                        originalMaxPositions: original, truncate: r.truncate ?? true, attentionFactor: attention)
    }
}
