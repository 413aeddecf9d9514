import Foundation
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraProof
import TesseraCore
import TesseraTestSupport

/// A tiny byte-vocabulary library in a temporary directory, and synthetic text for a
/// "domain" and a "background", so Proof-of-Loss runs in well under a second.
final class ProofFixture {
    let scratch = TemporaryDirectory("proof")
    let dir: String
    let library: ExpertLibrary
    let config: ModelConfig

    /// `mxfp4Experts` writes the checkpoint the library is split from with its experts in
    /// MXFP4, as gpt-oss is released.
    init(seed: UInt64 = 3, config: ModelConfig? = nil, mxfp4Experts: Bool = false, dtype: DType = .f32) throws {
        dir = scratch.path
        self.config = config ?? ModelConfig(family: .qwen3MoE, vocabSize: 256, hiddenSize: 16, layers: 3, heads: 2, kvHeads: 1, headDim: 8,
                                            experts: 4, topK: 2, expertWidth: 16, normTopKProb: true, tieWordEmbeddings: true)
        let model = MoEModel(config: self.config)
        model.initializeRandomly(seed: seed, std: 0.1)
        try model.save(directory: dir + "/hf", dtype: dtype, mxfp4Experts: mxfp4Experts)
        _ = try ExpertLibrary.split(checkpoint: dir + "/hf", into: dir + "/lib")
        library = try ExpertLibrary(directory: dir + "/lib")
    }

    /// Windows of text drawn from a few phrases, so a model can learn them quickly.
    static func windows(_ phrases: [String], count: Int, seq: Int = 24, seed: UInt64) -> TokenWindows {
        var rng = SplitMix64(seed: seed)
        var bytes: [Int32] = []
        while bytes.count < count * seq {
            bytes += phrases[Int(rng.next() % UInt64(phrases.count))].utf8.map { Int32($0) }
        }
        return TokenWindows(seq: seq, ids: Array(bytes.prefix(count * seq)), origin: "synthetic")
    }

    // Disjoint letters (upper vs lower case), so learning one does not help the other.
    static let domain = ["EL GATO NEGRO ", "LA CASA BLANCA ", "UN PERRO FELIZ "]
    static let background = ["the black cat ", "a white house ", "one happy dog "]

    static func options(steps: Int = 30, seed: UInt64 = 1) -> TrainingOptions {
        var o = TrainingOptions(steps: steps, batch: 8, learningRate: 1e-2, warmupSteps: 3, seed: seed)
        o.clipNorm = 1
        return o
    }
}
