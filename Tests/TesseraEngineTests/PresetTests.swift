import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// The real models' configs behind `tessera init --preset`, and the streamed random
/// checkpoint writer they use.
@Suite struct PresetTests {
    /// Parameter counts as the model cards give them (total, with embeddings).
    @Test(arguments: [("olmoe-1b-7b", 6.92e9), ("deepseek-v2-lite", 15.71e9), ("qwen3-30b-a3b", 30.53e9), ("gpt-oss-20b", 20.91e9)])
    func presetsHaveTheirModelsParameterCounts(_ name: String, _ published: Double) throws {
        let (_, config) = try ModelPreset.named(name).config()
        let checkpoint = try RandomCheckpoint(config: config, dtype: .bf16, seed: 0)
        #expect(abs(Double(checkpoint.parameterCount) / published - 1) < 0.005, "\(name): \(checkpoint.parameterCount)")
        #expect(checkpoint.totalBytes == 2 * checkpoint.parameterCount)
        #expect(checkpoint.files.allSatisfy { $0.bytes <= 5_000_000_000 })
    }

    @Test func fewerLayersKeepTheWidthsAndBadCountsAreRefused() throws {
        let preset = try ModelPreset.named("gpt-oss-20b")
        let (json, config) = try preset.config(layers: 3)
        #expect(config.layers == 3 && config.hiddenSize == 2880 && config.experts == 32 && config.slidingLayers == [true, false, true])
        #expect(json.contains("\"num_hidden_layers\":3"))
        for bad in [0, 25] {
            #expect { try preset.config(layers: bad) } throws: { "\($0)".contains("--layers \(bad)") }
        }
        #expect { try ModelPreset.named("mixtral-8x7b") } throws: { "\($0)".contains("presets: olmoe-1b-7b") }
    }

    /// Small shapes through the writer the presets use: sharded with an index, loadable,
    /// the same bytes for the same seed, values by the initialisation rule; and gpt-oss
    /// with MXFP4 experts as released.
    @Test func streamedCheckpointsLoadAndRepeat() throws {
        let s = TemporaryDirectory()
        let config = try ModelConfig.parse(Data(#"{"model_type":"olmoe","vocab_size":64,"hidden_size":32,"intermediate_size":16,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":4,"num_experts":4,"num_experts_per_tok":2}"#.utf8), file: "test")
        let checkpoint = try RandomCheckpoint(config: config, dtype: .bf16, seed: 7, maxShardBytes: 20_000)
        #expect(checkpoint.files.count > 2)
        try checkpoint.write(to: s.sub("a"), configJSON: config.huggingFaceJSON(dtype: .bf16))
        try RandomCheckpoint(config: config, dtype: .bf16, seed: 7, maxShardBytes: 20_000).write(to: s.sub("b"), configJSON: config.huggingFaceJSON(dtype: .bf16))
        for file in checkpoint.files.map(\.name) + ["model.safetensors.index.json"] {
            #expect(FileManager.default.contents(atPath: s.sub("a") + "/" + file) == FileManager.default.contents(atPath: s.sub("b") + "/" + file), "\(file)")
        }
        let model = try MoEModel(directory: s.sub("a"))
        #expect(model.parameterCount == checkpoint.parameterCount)
        #expect(model.tensor("model.norm.weight")!.allSatisfy { $0 == 1 })
        let embed = model.tensor("model.embed_tokens.weight")!
        let mean = embed.reduce(0, +) / Float(embed.count), std = (embed.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(embed.count)).squareRoot()
        #expect(abs(mean) < 0.002 && abs(std - 0.02) < 0.002, "mean \(mean), std \(std)")
        #expect(model.sourceDTypes.allSatisfy { $0 == .bf16 })

        let (json, gptOss) = try ModelPreset.named("gpt-oss-20b").config(layers: 1)
        var small = gptOss
        (small.vocabSize, small.hiddenSize, small.expertWidth, small.heads, small.kvHeads, small.headDim) = (64, 64, 32, 2, 1, 32)
        let quantised = try RandomCheckpoint(config: small, dtype: .bf16, mxfp4Experts: true, seed: 3)
        try quantised.write(to: s.sub("q"), configJSON: small.huggingFaceJSON(dtype: .bf16, mxfp4Experts: true))
        #expect(json.contains("gpt_oss"))
        let q = try MoEModel(directory: s.sub("q"))
        #expect(q.config.mxfp4Experts && q.parameterCount == quantised.parameterCount)
        #expect(try CheckpointFiles(directory: s.sub("q")).info("model.layers.0.mlp.experts.down_proj_blocks")?.dtype == .u8)
    }
}
