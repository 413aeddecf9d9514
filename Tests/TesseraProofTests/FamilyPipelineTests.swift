import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraProof
import TesseraCore
import TesseraTestSupport

/// Everything above the engine on the newer families: a byte-vocabulary DeepSeek-V2 (plain
/// q_proj, greedy routing, a dense first layer, two shared experts), DeepSeek-V3 (query
/// latent, sigmoid routing limited to groups, correction bias) and gpt-oss (sinks, biases,
/// sliding and full layers, YaRN, fused interleaved experts with biases) go through split,
/// ESFT selection, sparse and low-rank training, Proof-of-Loss (incremental = full),
/// merging and assembling.
@Suite struct FamilyPipelineTests {
    static let configs: [String: String] = [
        "deepseek_v2": #"{"model_type":"deepseek_v2","vocab_size":256,"hidden_size":16,"num_hidden_layers":3,"num_attention_heads":2,"num_key_value_heads":2,"q_lora_rank":null,"kv_lora_rank":8,"qk_nope_head_dim":4,"qk_rope_head_dim":4,"v_head_dim":6,"n_routed_experts":4,"num_experts_per_tok":2,"n_shared_experts":2,"first_k_dense_replace":1,"intermediate_size":24,"moe_intermediate_size":16,"routed_scaling_factor":1.0,"topk_method":"greedy"}"#,
        "deepseek_v3": #"{"model_type":"deepseek_v3","vocab_size":256,"hidden_size":16,"num_hidden_layers":3,"num_attention_heads":2,"num_key_value_heads":2,"q_lora_rank":12,"kv_lora_rank":8,"qk_nope_head_dim":4,"qk_rope_head_dim":4,"v_head_dim":6,"n_routed_experts":4,"num_experts_per_tok":2,"n_shared_experts":1,"first_k_dense_replace":1,"intermediate_size":24,"moe_intermediate_size":16,"routed_scaling_factor":2.5,"n_group":2,"topk_group":1,"norm_topk_prob":true}"#,
        "gpt_oss": #"{"model_type":"gpt_oss","vocab_size":256,"hidden_size":16,"num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":8,"num_local_experts":4,"num_experts_per_tok":2,"intermediate_size":16,"sliding_window":8,"layer_types":["sliding_attention","full_attention"],"swiglu_limit":7.0,"rope_parameters":{"rope_type":"yarn","factor":32.0,"beta_fast":32.0,"beta_slow":1.0,"truncate":false,"original_max_position_embeddings":4096,"rope_theta":150000.0}}"#,
    ]

    /// gpt-oss as released, its experts in MXFP4 (widths multiples of 32).
    static let mxfp4 = #"{"model_type":"gpt_oss","vocab_size":256,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":8,"num_local_experts":4,"num_experts_per_tok":2,"intermediate_size":32,"sliding_window":8,"layer_types":["sliding_attention","full_attention"],"swiglu_limit":7.0,"rope_parameters":{"rope_type":"yarn","factor":32.0,"beta_fast":32.0,"beta_slow":1.0,"truncate":false,"original_max_position_embeddings":4096,"rope_theta":150000.0}}"#

    @Test(arguments: ["deepseek_v2", "deepseek_v3", "gpt_oss", "gpt_oss_mxfp4"])
    func marketPipelineRunsOnTheFamily(_ family: String) throws {
        let quantised = family.hasSuffix("mxfp4")
        let config = try ModelConfig.parse(Data((quantised ? Self.mxfp4 : Self.configs[family]!).utf8), file: "\(family)/config.json")
        let f = try ProofFixture(seed: 5, config: config, mxfp4Experts: quantised)
        var written = config
        written.mxfp4Experts = quantised
        #expect(try f.library.config() == written, "config.json written by the engine reads back as the same config")
        // Assembling the fresh library gives back the checkpoint byte for byte.
        let source = try CheckpointFiles(directory: f.dir + "/hf")
        try f.library.assemble(into: f.dir + "/assembled")
        let rebuilt = try CheckpointFiles(directory: f.dir + "/assembled")
        for name in source.tensorNames { #expect(source.bytes(name).map(Array.init) == rebuilt.bytes(name).map(Array.init), "\(name)") }
        #expect(f.library.manifest.experts.count == 2 * 4, "routed experts of the two sparse layers; dense layers, shared experts and routers are trunk")

        let selection = try ExpertSelection.compute(model: try f.library.loadModel(), data: ProofFixture.windows(ProofFixture.domain, count: 16, seed: 5),
                                                    score: .token, topP: 0.5)
        #expect(!selection.experts.isEmpty && selection.experts.allSatisfy { config.sparseLayers[$0.layer] })
        let policy = ProofPolicy(confidence: 0.95, minGainMicronats: 500, backgroundToleranceMicronats: 300_000,
                                 deltaNormBound: 3.0, copyThreshold: 0.95, resamples: 500)
        let held = ProofFixture.windows(ProofFixture.domain, count: 24, seed: 99)
        let bg = ProofFixture.windows(ProofFixture.background, count: 24, seed: 98)
        let v = try Validator(library: f.library, key: ParticipantKey.generate(), policy: policy, heldOut: held, background: bg, batch: 8)
        var accepted: [RoundMerge.Accepted] = []
        for (name, rank) in [("sparse", nil), ("adapters", 2)] as [(String, Int?)] {
            var options = ProofFixture.options(steps: 30)
            options.lowRank = rank
            let request = Contribution.Request(experts: selection.experts, data: ProofFixture.windows(ProofFixture.domain, count: 64, seed: 11), heldOut: nil,
                                               options: options, partialResidency: false,
                                               delta: DeltaOptions(encoding: rank == nil ? .sparse : .lowRank, density: 0.5, rank: rank ?? 4),
                                               market: "m", domain: "es", round: "r1")
            let out = f.dir + "/bundles/" + name
            _ = try Contribution.run(request, library: f.library, key: ParticipantKey.generate(), out: out, progress: false)
            let verdict = try v.judge(bundle: out)
            #expect(verdict.accept, Comment(rawValue: family + " " + name + ": " + verdict.reason))
            let full = try Validator(library: f.library, key: ParticipantKey.generate(), policy: policy, heldOut: held, background: bg, batch: 8)
            full.fullEvaluation = true
            let again = try full.judge(bundle: out)
            #expect(again.heldOutLosses == verdict.heldOutLosses && again.backgroundLosses == verdict.backgroundLosses,
                    "incremental and full evaluation agree exactly")
            let bundle = try SubmissionBundle.verify(out, library: f.library)
            var weights: [ExpertID: ExpertWeights] = [:]
            for item in bundle.items { weights[item.expert] = try f.library.decodeDelta(out + "/" + item.file).weights }
            accepted.append(.init(submission: verdict.submission, contributor: bundle.contributor, gainMicronats: verdict.gainLCBMicronats, weights: weights))
        }
        let outcome = try RoundMerge.run(accepted, validator: v, library: f.library)
        #expect(outcome.chosen.gain > 0)
        let merged = try f.library.loadModel()
        let gain = mean(zip(v.heldOut.baseLosses, try windowLosses(model: merged, windows: held, batch: 8)).map { $0 - $1 })
        #expect(abs(gain - outcome.chosen.gain) < 1e-6)
        let requantized = try f.library.assemble(into: f.dir + "/merged")
        let reloaded = try MoEModel(directory: f.dir + "/merged")
        let changed = Set(f.library.manifest.experts.filter { $0.versions.count > 1 }.map(\.id))
        guard quantised else {
            #expect(requantized.isEmpty)
            #expect(reloaded.parameterValues == merged.parameterValues, "the merged library assembles into a checkpoint transformers can load")
            return
        }
        // MXFP4: the merged experts are quantised again (the report names each), the
        // others keep their original blocks and scales byte for byte.
        #expect(Set(requantized.map(\.expert)) == changed && !changed.isEmpty)
        #expect(requantized.allSatisfy { $0.relativeError > 0 && $0.relativeError < 0.2 })
        let base = try CheckpointFiles(directory: f.dir + "/hf"), out = try CheckpointFiles(directory: f.dir + "/merged")
        for name in base.tensorNames {
            let a = Array(base.bytes(name)!), b = Array(out.bytes(name)!)
            guard name.contains(".mlp.experts."), let layer = Int(name.split(separator: ".")[2]) else {
                #expect(a == b, "\(name)")
                continue
            }
            let per = a.count / config.experts
            for e in 0..<config.experts where !changed.contains(ExpertID(layer: layer, expert: e)) {
                #expect(a[(e * per)..<((e + 1) * per)] == b[(e * per)..<((e + 1) * per)], "\(name) expert \(e) keeps its bytes")
            }
        }
        // The reloaded checkpoint is the merged library with its experts rounded to MXFP4.
        let requantizedModel = try f.library.loadModel()
        try requantizedModel.save(directory: f.dir + "/expected", dtype: .f32, mxfp4Experts: true)
        #expect(reloaded.parameterValues == (try MoEModel(directory: f.dir + "/expected")).parameterValues)
    }
}
