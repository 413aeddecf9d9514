import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

@Suite struct LoaderTests {
    static func copyFixture(_ name: String, to dir: TemporaryDirectory) throws {
        for f in try FileManager.default.contentsOfDirectory(atPath: ReferenceFixtures.path(name)) where f != "expected.safetensors" {
            try FileManager.default.copyItem(atPath: ReferenceFixtures.path(name) + "/" + f, toPath: dir.sub(f))
        }
    }

    static func loadError(_ dir: String) -> String {
        do {
            _ = try MoEModel(directory: dir)
            return ""
        } catch {
            return "\(error)"
        }
    }

    @Test func rejectsMissingUnusedAndMisshapedTensors() throws {
        let dir = TemporaryDirectory()
        try Self.copyFixture("mixtral-tiny", to: dir)
        let model = try MoEModel(directory: dir.path)
        var records = model.records()
        records.removeAll { $0.name == "model.layers.1.block_sparse_moe.experts.2.w3.weight" }
        records.append(TensorRecord(name: "model.layers.0.extra.weight", shape: [2], floats: [1, 2]))
        if let i = records.firstIndex(where: { $0.name == "model.norm.weight" }) {
            records[i] = TensorRecord(name: "model.norm.weight", shape: [31], floats: Array(repeating: 1, count: 31))
        }
        try SafetensorsWriter.write(records, to: dir.sub("model.safetensors"))
        let message = Self.loadError(dir.path)
        #expect(message.contains("missing tensor model.layers.1.block_sparse_moe.experts.2.w3.weight"))
        #expect(message.contains("unused tensor model.layers.0.extra.weight"))
        #expect(message.contains("model.norm.weight") && message.contains("expected [32]"))
        #expect(message.contains("supported model types: mixtral, olmoe, qwen2_moe, qwen3_moe"))
    }

    @Test func rejectsNonFiniteWeights() throws {
        let dir = TemporaryDirectory()
        try Self.copyFixture("olmoe-tiny", to: dir)
        let model = try MoEModel(directory: dir.path)
        var records = model.records()
        let i = records.firstIndex { $0.name == "model.layers.0.mlp.gate.weight" }!
        var values = [Float](repeating: 0.1, count: 6 * 32)
        values[17] = .nan
        records[i] = TensorRecord(name: records[i].name, shape: [6, 32], floats: values)
        try SafetensorsWriter.write(records, to: dir.sub("model.safetensors"))
        #expect(Self.loadError(dir.path).contains("model.layers.0.mlp.gate.weight"))
    }

    @Test func configSpellingsOfBothTransformersVersions() throws {
        let v4 = #"{"model_type":"olmoe","vocab_size":50,"hidden_size":16,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":2,"num_local_experts":4,"num_experts_per_tok":2,"rope_theta":5000.0}"#
        let v5 = #"{"model_type":"olmoe","vocab_size":50,"hidden_size":16,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_experts":4,"num_experts_per_tok":2,"rope_parameters":{"rope_theta":5000.0,"rope_type":"default"}}"#
        let a = try ModelConfig.parse(Data(v4.utf8), file: "v4.json")
        let b = try ModelConfig.parse(Data(v5.utf8), file: "v5.json")
        #expect(a == b)
        #expect(a.experts == 4 && a.ropeTheta == 5000 && a.kvHeads == 2 && a.headDim == 8)
        #expect(!a.normTopKProb && a.qkNorm == .wholeProjection)
    }

    @Test func qwenDenseLayersFollowSparseStepAndMlpOnlyLayers() throws {
        let json = #"{"model_type":"qwen2_moe","vocab_size":50,"hidden_size":16,"intermediate_size":32,"moe_intermediate_size":8,"shared_expert_intermediate_size":12,"num_hidden_layers":6,"num_attention_heads":2,"num_experts":4,"num_experts_per_tok":2,"decoder_sparse_step":2,"mlp_only_layers":[3]}"#
        let c = try ModelConfig.parse(Data(json.utf8), file: "c.json")
        #expect(c.sparseLayers == [false, true, false, false, false, true])
        #expect(c.qkvBias && c.sharedExpertWidth == 12 && c.denseWidth == 32)
    }

    @Test(arguments: [
        (#""model_type":"mixtral","vocab_size":1099511627776,"hidden_size":1073741824"#, "vocab_size 1099511627776 exceeds"),
        (#""model_type":"deepseek_v2","kv_lora_rank":1000000"#, "kv_lora_rank 1000000 exceeds"),
        (#""model_type":"jamba""#, "unsupported model_type jamba; supported: mixtral, olmoe, qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3, gpt_oss"),
        (#""model_type":"deepseek_v3","first_k_dense_replace":0,"quantization_config":{"quant_method":"fp8"}"#, "quantization_config is not supported"),
        (#""model_type":"deepseek_v3","first_k_dense_replace":0,"n_routed_experts":6"#, "n_routed_experts 6 is not a multiple of n_group 8"),
        (#""model_type":"deepseek_v3","first_k_dense_replace":3"#, "first_k_dense_replace 3 must be in 0...1"),
        (#""model_type":"deepseek_v2","topk_method":"noaux_tc""#, "topk_method noaux_tc is not supported for deepseek_v2"),
        (#""model_type":"deepseek_v2","num_key_value_heads":2"#, "num_key_value_heads 2 differs from num_attention_heads 4"),
        (#""model_type":"deepseek_v2","attention_bias":true"#, "attention_bias true is not supported"),
        (#""model_type":"deepseek_v2","topk_method":"group_limited_greedy","n_group":2,"topk_group":3"#, "topk_group 3 exceeds n_group 2"),
        (#""model_type":"gpt_oss","num_key_value_heads":2,"quantization_config":{"quant_method":"fp8"}"#, "quant_method fp8 is not supported for gpt_oss; supported: mxfp4"),
        (#""model_type":"gpt_oss","num_key_value_heads":2,"quantization_config":{"quant_method":"mxfp4"}"#, "MXFP4 experts need hidden_size 16 and intermediate_size 8 to be multiples of 32"),
        (#""model_type":"gpt_oss","num_key_value_heads":2,"layer_types":["full_attention","full_attention"]"#, "layer_types has 2 entries for num_hidden_layers 1"),
        (#""model_type":"gpt_oss","num_key_value_heads":2,"layer_types":["chunked_attention"]"#, "layer_types entry chunked_attention is not supported"),
        (#""model_type":"gpt_oss","num_key_value_heads":2,"attention_bias":false"#, "attention_bias false is not supported for gpt_oss"),
        (#""model_type":"gpt_oss","num_key_value_heads":2,"rope_parameters":{"rope_type":"yarn","factor":4.0}"#, "original_max_position_embeddings"),
        (#""model_type":"mixtral","rope_parameters":{"rope_type":"yarn","factor":4.0}"#, "unsupported rope_parameters.rope_type yarn; supported: default"),
        (#""model_type":"mixtral","hidden_act":"gelu""#, "unsupported hidden_act gelu"),
        (#""model_type":"mixtral","rope_scaling":{"rope_type":"yarn","factor":4}"#, "unsupported rope_scaling type yarn"),
        (#""model_type":"qwen3_moe","use_sliding_window":true"#, "use_sliding_window"),
        (#""model_type":"mixtral","num_experts_per_tok":9"#, "num_experts_per_tok 9 exceeds"),
        (#""model_type":"mixtral","hidden_size":"big""#, "field hidden_size = \"big\" must be an integer"),
        (#""model_type":"mixtral","num_key_value_heads":3"#, "not a multiple of num_key_value_heads 3"),
    ])
    func rejectsUnsupportedConfigs(_ override: String, _ message: String) {
        let fields: [String: String] = [
            "vocab_size": "50", "hidden_size": "16", "intermediate_size": "8", "moe_intermediate_size": "8",
            "num_hidden_layers": "1", "num_attention_heads": "4", "num_local_experts": "4", "num_experts_per_tok": "2",
        ]
        var json = "{" + override
        for key in fields.keys.sorted() where !override.contains("\"\(key)\"") { json += ",\"\(key)\":\(fields[key]!)" }
        json += "}"
        do {
            _ = try ModelConfig.parse(Data(json.utf8), file: "bad/config.json")
            Issue.record("accepted \(json)")
        } catch let e as ConfigError {
            #expect(e.file == "bad/config.json")
            #expect(e.problem.contains(message), "\(e.problem)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func tokenIdsOutsideTheVocabularyAreRefused() throws {
        let model = try MoEModel(directory: ReferenceFixtures.path("mixtral-tiny"))
        let run = ModelRun(model: model, batch: 1, seq: 3, training: false)
        #expect(throws: EngineError.self) { try run.forward(try TokenBatch(batch: 1, seq: 3, ids: [1, 96, 2])) }
        let single = ModelRun(model: model, batch: 1, seq: 1, training: false)
        #expect(throws: EngineError.self) { try single.forward(try TokenBatch(batch: 1, seq: 1, ids: [1])) }
    }

    @Test func savedCheckpointReloadsBitIdentical() throws {
        let dir = TemporaryDirectory()
        let model = try MoEModel(directory: ReferenceFixtures.path("qwen2moe-tiny"))
        try model.save(directory: dir.path)
        let again = try MoEModel(directory: dir.path)
        #expect(again.config == model.config)
        #expect(again.parameterValues == model.parameterValues)
    }
}
