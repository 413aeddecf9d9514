import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// Trains every parameter of a new byte-vocabulary Qwen3-MoE from scratch and writes a
/// Hugging Face checkpoint directory.
public enum Pretraining {
    public struct Shape: Codable, Sendable, Equatable {
        public var hidden = 128
        public var layers = 4
        public var heads = 4
        public var kvHeads = 2
        public var headDim = 32
        public var experts = 8
        public var topK = 2
        public var expertWidth = 192
        public init() {}

        public func config() throws -> ModelConfig {
            guard hidden > 0, layers > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0, headDim > 0, headDim % 2 == 0,
                  experts >= 2, topK >= 1, topK <= experts, expertWidth > 0 else {
                throw EngineError.invalidInput("model shape: sizes must be positive, heads a multiple of kv heads, head_dim even, 1 ≤ top-k ≤ experts")
            }
            return ModelConfig(family: .qwen3MoE, vocabSize: 256, hiddenSize: hidden, layers: layers, heads: heads, kvHeads: kvHeads,
                               headDim: headDim, ropeTheta: 10_000, experts: experts, topK: topK, expertWidth: expertWidth,
                               normTopKProb: true, tieWordEmbeddings: true)
        }
    }

    public struct Report: Codable, Sendable {
        public var parameters: Int
        public var training: TrainingReport
        public var out: String
    }

    /// `data` is a corpus directory (train.safetensors, heldout.safetensors). The training
    /// state lives in `out/training-state.safetensors`; rerunning after a kill resumes it.
    public static func run(shape: Shape, options: TrainingOptions, data: String, out: String, dtype: DType,
                           progress: Bool, matmul: MatmulPrecision = .machineDefault, recomputeActivations: Bool? = nil) throws -> Report {
        let config = try shape.config()
        let train = try TokenWindows.load(path: (data as NSString).appendingPathComponent("train.safetensors"))
        let heldPath = (data as NSString).appendingPathComponent("heldout.safetensors")
        let held = FileManager.default.fileExists(atPath: heldPath) ? try TokenWindows.load(path: heldPath) : nil
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: options.seed)
        let trainer = try Trainer(model: model, trainable: .all(model.layout), options: options, train: train, heldOut: held,
                                  statePath: (out as NSString).appendingPathComponent("training-state.safetensors"), matmul: matmul)
        trainer.recomputeActivations = recomputeActivations
        let report = try trainer.run(progress: progress)
        try model.save(directory: out, dtype: dtype)
        return Report(parameters: model.parameterCount, training: report, out: out)
    }
}
