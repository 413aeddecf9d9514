import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// Central finite differences against the analytic gradient on random small models of
/// every family, each loaded back from files the way a user's checkpoint would be.
@Suite struct GradientCheckTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var config: ModelConfig
        var layout: ExpertLayout = .perExpert
        var dtype: DType = .f32
        var shards = 1
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        var mixtral = ModelConfig(family: .mixtral, vocabSize: 20, hiddenSize: 16, layers: 2, heads: 4, kvHeads: 2,
                                  ropeTheta: 10000, experts: 4, topK: 2, expertWidth: 12)
        mixtral.slidingWindow = 4
        let olmoe = ModelConfig(family: .olmoe, vocabSize: 20, hiddenSize: 16, layers: 2, heads: 2, kvHeads: 2,
                                experts: 5, topK: 2, expertWidth: 10, normTopKProb: false)
        var olmoeClip = olmoe
        olmoeClip.clipQKV = 0.8
        let qwen2 = ModelConfig(family: .qwen2MoE, vocabSize: 20, hiddenSize: 16, layers: 3, heads: 4, kvHeads: 2,
                                experts: 4, topK: 2, expertWidth: 8, denseWidth: 14, sharedExpertWidth: 10,
                                sparseLayers: [true, false, true])
        let qwen3 = ModelConfig(family: .qwen3MoE, vocabSize: 20, hiddenSize: 16, layers: 2, heads: 4, kvHeads: 2,
                                headDim: 6, experts: 6, topK: 3, expertWidth: 8, normTopKProb: true, tieWordEmbeddings: true)
        var deepseekV2 = ModelConfig.deepSeek(.deepseekV2, vocabSize: 20, hiddenSize: 16, layers: 3, heads: 2, experts: 4, topK: 2, expertWidth: 8)
        deepseekV2.router.scale = 1.5
        var deepseekV3 = ModelConfig.deepSeek(.deepseekV3, vocabSize: 20, hiddenSize: 16, layers: 2, heads: 2, experts: 4, topK: 2, expertWidth: 8)
        deepseekV3.router.groups = 2
        deepseekV3.router.topGroups = 1
        deepseekV3.latentAttention?.interleavedRope = false
        let gptOss = try! ModelConfig.parse(Data(#"{"model_type":"gpt_oss","vocab_size":20,"hidden_size":16,"num_hidden_layers":3,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":4,"num_local_experts":4,"num_experts_per_tok":2,"intermediate_size":6,"sliding_window":3,"layer_types":["sliding_attention","full_attention","sliding_attention"],"swiglu_limit":0.6,"rope_parameters":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":16,"rope_theta":1000.0}}"#.utf8), file: "gpt_oss")
        return [
            Case(name: "gpt_oss sinks, biases, alternating windows, YaRN, clamped interleaved experts", config: gptOss, layout: .fused, shards: 2),
            Case(name: "deepseek_v2 latent attention, dense layer, scaled routing", config: deepseekV2),
            Case(name: "deepseek_v3 query latent, sigmoid grouped routing, rotate_half", config: deepseekV3, layout: .fused),
            Case(name: "mixtral fused sharded sliding-window", config: mixtral, layout: .fused, shards: 3),
            Case(name: "olmoe bf16", config: olmoe, dtype: .bf16),
            Case(name: "olmoe clip_qkv", config: olmoeClip),
            Case(name: "qwen2_moe shared expert and dense layer", config: qwen2, dtype: .f16),
            Case(name: "qwen3_moe tied per-head norms", config: qwen3, layout: .fused),
        ]
    }()

    /// Builds a random model, writes it as a checkpoint (dtype, layout and shards as the
    /// case says) and loads it back.
    static func roundTripModel(_ c: Case, seed: UInt64, dir: TemporaryDirectory) throws -> MoEModel {
        let source = MoEModel(config: c.config, layout: c.layout)
        source.initializeRandomly(seed: seed, std: 0.3)
        var rng = SplitMix64(seed: seed ^ 0xABCD)
        let P = source.parameters.pointer
        for slot in source.layout.tensors where slot.name.contains("norm") {
            for i in 0..<slot.count { P[slot.offset + i] = Float(1 + 0.3 * rng.normal()) }
        }
        try TestCheckpoints.write(source, to: dir.path, dtype: c.dtype, shards: c.shards)
        return try MoEModel(directory: dir.path)
    }

    static func randomTokens(vocab: Int, batch: Int, seq: Int, seed: UInt64) throws -> TokenBatch {
        var rng = SplitMix64(seed: seed)
        return try TokenBatch(batch: batch, seq: seq, ids: (0..<(batch * seq)).map { _ in Int32(rng.next() % UInt64(vocab)) })
    }

    @Test(arguments: cases)
    func finiteDifferencesMatchBackward(_ c: Case) throws {
        let dir = TemporaryDirectory()
        let model = try Self.roundTripModel(c, seed: 7, dir: dir)
        let tokens = try Self.randomTokens(vocab: c.config.vocabSize, batch: 2, seq: 6, seed: 11)
        let run = ModelRun(model: model, batch: 2, seq: 6, training: true)
        // The backward's calculus is under test, not the product precision.
        run.matmul = .fp32
        let grads = FloatBuffer(count: model.parameters.count)
        try run.lossAndGradients(tokens, trainable: .all(model.layout), grads: grads)
        model.thawAll()
        let P = model.parameters.pointer
        var rng = SplitMix64(seed: 99)
        let eps: Float = 2e-3
        for slot in model.layout.tensors {
            // A random unit direction over this tensor.
            var u = (0..<slot.count).map { _ in Float(rng.normal()) }
            let norm = u.reduce(0) { $0 + $1 * $1 }.squareRoot()
            u = u.map { $0 / norm }
            var analytic: Double = 0
            for i in 0..<slot.count { analytic += Double(grads.pointer[slot.offset + i]) * Double(u[i]) }
            let saved = Array(UnsafeBufferPointer(start: P + slot.offset, count: slot.count))
            for i in 0..<slot.count { P[slot.offset + i] = saved[i] + eps * u[i] }
            let plus = try run.forward(tokens)
            for i in 0..<slot.count { P[slot.offset + i] = saved[i] - eps * u[i] }
            let minus = try run.forward(tokens)
            for i in 0..<slot.count { P[slot.offset + i] = saved[i] }
            let numeric = (plus - minus) / Double(2 * eps)
            #expect(abs(numeric - analytic) <= 2e-2 * abs(analytic) + 3e-4,
                    "\(slot.name): finite difference \(numeric), backward \(analytic)")
        }
    }

    /// Sparse mode computes exactly the chosen experts' gradients of the full backward,
    /// leaves every other gradient untouched, and does no work below the lowest such layer.
    @Test(arguments: cases)
    func sparseGradientsEqualFullGradients(_ c: Case) throws {
        let dir = TemporaryDirectory()
        let model = try Self.roundTripModel(c, seed: 3, dir: dir)
        let tokens = try Self.randomTokens(vocab: c.config.vocabSize, batch: 2, seq: 7, seed: 5)
        let run = ModelRun(model: model, batch: 2, seq: 7, training: true)
        let full = FloatBuffer(count: model.parameters.count)
        try run.lossAndGradients(tokens, trainable: .all(model.layout), grads: full)
        let sparseLayers = (0..<c.config.layers).filter { c.config.sparseLayers[$0] }
        let pairs = [ExpertID(layer: sparseLayers.last!, expert: 1), ExpertID(layer: sparseLayers.last!, expert: c.config.experts - 1)]
        let trainable = try TrainableSet.experts(pairs, in: model.layout)
        let sparse = FloatBuffer(count: model.parameters.count)
        for i in 0..<sparse.count { sparse.pointer[i] = .nan }
        let views = trainable.views(in: model.layout)
        for v in views { sparse.zero(v) }
        try run.lossAndGradients(tokens, trainable: trainable, grads: sparse)
        var inTrainable = [Bool](repeating: false, count: model.parameters.count)
        for v in views { for i in v.offset..<(v.offset + v.count) { inTrainable[i] = true } }
        for i in 0..<model.parameters.count {
            if inTrainable[i] {
                #expect(abs(sparse.pointer[i] - full.pointer[i]) <= 1e-5 * max(1, abs(full.pointer[i])))
            } else if !sparse.pointer[i].isNaN {
                Issue.record("parameter \(i) outside the trainable experts received a gradient")
                break
            }
        }
    }
}

enum TestCheckpoints {
    /// Writes config.json and the tensors in `dtype`, split over `shards` files with an
    /// index when more than one.
    static func write(_ model: MoEModel, to dir: String, dtype: DType, shards: Int) throws {
        let records = model.records(dtype: dtype)
        try AtomicFile.write(Array(model.config.huggingFaceJSON(dtype: dtype).utf8), to: dir + "/config.json")
        if shards <= 1 {
            try SafetensorsWriter.write(records, to: dir + "/model.safetensors")
            return
        }
        var map: [(String, JSONValue)] = []
        let per = (records.count + shards - 1) / shards
        for s in 0..<shards {
            let file = String(format: "model-%05d-of-%05d.safetensors", s + 1, shards)
            let part = Array(records[min(records.count, s * per)..<min(records.count, (s + 1) * per)])
            try SafetensorsWriter.write(part, to: dir + "/" + file)
            map += part.map { ($0.name, .string(file)) }
        }
        let index = JSONValue.object([("metadata", .object([])), ("weight_map", .object(map))])
        try AtomicFile.write(Array(index.serialized().utf8), to: dir + "/model.safetensors.index.json")
    }
}
