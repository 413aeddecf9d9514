import Foundation
import TesseraCore

/// The configs of real MoE models, as their published config.json files give them, so
/// that memory and speed can be measured at the sizes contributors bring without
/// downloading the weights (`tessera init --preset`). Only the keys the engine and
/// transformers read are kept; `num_hidden_layers` can be lowered to fit a short disk.
public struct ModelPreset: Sendable {
    public var name: String
    /// The Hugging Face repository whose config.json this is.
    public var source: String
    public var configJSON: String

    public static let all: [ModelPreset] = [
        ModelPreset(name: "olmoe-1b-7b", source: "allenai/OLMoE-1B-7B-0924", configJSON: #"""
        {"architectures":["OlmoeForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"clip_qkv":null,"eos_token_id":50279,"hidden_act":"silu","hidden_size":2048,"initializer_range":0.02,"intermediate_size":1024,"max_position_embeddings":4096,"model_type":"olmoe","norm_topk_prob":false,"num_attention_heads":16,"num_experts":64,"num_experts_per_tok":8,"num_hidden_layers":16,"num_key_value_heads":16,"output_router_logits":false,"pad_token_id":1,"rms_norm_eps":1e-05,"rope_scaling":null,"rope_theta":10000.0,"router_aux_loss_coef":0.01,"tie_word_embeddings":false,"torch_dtype":"bfloat16","use_cache":true,"vocab_size":50304}
        """#),
        ModelPreset(name: "deepseek-v2-lite", source: "deepseek-ai/DeepSeek-V2-Lite", configJSON: #"""
        {"architectures":["DeepseekV2ForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"aux_loss_alpha":0.001,"bos_token_id":100000,"eos_token_id":100001,"first_k_dense_replace":1,"hidden_act":"silu","hidden_size":2048,"initializer_range":0.02,"intermediate_size":10944,"kv_lora_rank":512,"max_position_embeddings":163840,"model_type":"deepseek_v2","moe_intermediate_size":1408,"moe_layer_freq":1,"n_group":1,"n_routed_experts":64,"n_shared_experts":2,"norm_topk_prob":false,"num_attention_heads":16,"num_experts_per_tok":6,"num_hidden_layers":27,"num_key_value_heads":16,"q_lora_rank":null,"qk_nope_head_dim":128,"qk_rope_head_dim":64,"rms_norm_eps":1e-06,"rope_scaling":{"beta_fast":32,"beta_slow":1,"factor":40,"mscale":0.707,"mscale_all_dim":0.707,"original_max_position_embeddings":4096,"type":"yarn"},"rope_theta":10000,"routed_scaling_factor":1.0,"scoring_func":"softmax","seq_aux":true,"tie_word_embeddings":false,"topk_group":1,"topk_method":"greedy","torch_dtype":"bfloat16","use_cache":true,"v_head_dim":128,"vocab_size":102400}
        """#),
        ModelPreset(name: "qwen3-30b-a3b", source: "Qwen/Qwen3-30B-A3B", configJSON: #"""
        {"architectures":["Qwen3MoeForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"bos_token_id":151643,"decoder_sparse_step":1,"eos_token_id":151645,"head_dim":128,"hidden_act":"silu","hidden_size":2048,"initializer_range":0.02,"intermediate_size":6144,"max_position_embeddings":40960,"max_window_layers":48,"mlp_only_layers":[],"model_type":"qwen3_moe","moe_intermediate_size":768,"norm_topk_prob":true,"num_attention_heads":32,"num_experts":128,"num_experts_per_tok":8,"num_hidden_layers":48,"num_key_value_heads":4,"output_router_logits":false,"rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":1000000.0,"router_aux_loss_coef":0.001,"sliding_window":null,"tie_word_embeddings":false,"torch_dtype":"bfloat16","use_cache":true,"use_sliding_window":false,"vocab_size":151936}
        """#),
        ModelPreset(name: "gpt-oss-20b", source: "openai/gpt-oss-20b", configJSON: #"""
        {"architectures":["GptOssForCausalLM"],"attention_bias":true,"attention_dropout":0.0,"eos_token_id":200002,"head_dim":64,"hidden_act":"silu","hidden_size":2880,"initial_context_length":4096,"initializer_range":0.02,"intermediate_size":2880,"layer_types":["sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention","full_attention"],"max_position_embeddings":131072,"model_type":"gpt_oss","num_attention_heads":64,"num_experts_per_tok":4,"num_hidden_layers":24,"num_key_value_heads":8,"num_local_experts":32,"output_router_logits":false,"pad_token_id":199999,"rms_norm_eps":1e-05,"rope_scaling":{"beta_fast":32.0,"beta_slow":1.0,"factor":32.0,"original_max_position_embeddings":4096,"rope_type":"yarn","truncate":false},"rope_theta":150000,"router_aux_loss_coef":0.9,"sliding_window":128,"swiglu_limit":7.0,"tie_word_embeddings":false,"torch_dtype":"bfloat16","use_cache":true,"vocab_size":201088}
        """#),
    ]

    public static func named(_ name: String) throws -> ModelPreset {
        guard let preset = all.first(where: { $0.name == name }) else {
            throw EngineError.checkpoint("no preset \(name.prefix(80)); presets: \(all.map(\.name).joined(separator: ", "))")
        }
        return preset
    }

    /// config.json for this preset with `layers` decoder layers (all when nil): the real
    /// widths, fewer layers. gpt-oss keeps the first `layers` entries of `layer_types`.
    public func config(layers: Int? = nil) throws -> (json: String, config: ModelConfig) {
        var members = try JSONValue.parse(configJSON).objectMembers ?? []
        if let layers {
            guard case let .integer(real)? = members.first(where: { $0.0 == "num_hidden_layers" })?.1, layers >= 1, layers <= real else {
                throw EngineError.checkpoint("--layers \(layers): \(name) has layers 1 to \(try ModelConfig.parse(Data(configJSON.utf8), file: name).layers)")
            }
            for i in members.indices {
                switch (members[i].0, members[i].1) {
                case ("num_hidden_layers", _), ("max_window_layers", _): members[i].1 = .integer(Int64(layers))
                case let ("layer_types", .array(items)): members[i].1 = .array(Array(items.prefix(layers)))
                default: break
                }
            }
        }
        let json = JSONValue.object(members).serialized() + "\n"
        return (json, try ModelConfig.parse(Data(json.utf8), file: "preset \(name)"))
    }
}
