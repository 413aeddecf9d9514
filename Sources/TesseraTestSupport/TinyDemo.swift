import Foundation
import TesseraCore
import TesseraEngine
import TesseraLibrary
import TesseraMarket

/// The demo's round at test size: a two-layer model with four experts per layer, seeded
/// random weights, synthetic "fortunes" in a made-up language ("xx") and in English, and
/// the repository's rules loosened for a model that learns little in 12 steps. The
/// in-process demo test and the network round test play it.
public enum TinyDemo {
    /// Writes the model, its library, the texts and the rules under `dir`; returns the
    /// demo's options (the market goes to `dir/run`).
    public static func prepare(in dir: String) throws -> Demo.Options {
        let fm = FileManager.default
        for sub in ["xx", "en", "policy/domains"] { try fm.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        var rng = SplitMix64(seed: 5)
        func fortunes(_ words: [String], _ n: Int) -> String {
            (0..<n).map { _ in (0..<8).map { _ in words[Int(rng.next() % UInt64(words.count))] }.joined(separator: " ") }.joined(separator: "\n%\n")
        }
        try fortunes(["EL", "GATO", "NEGRO", "LA", "CASA", "BLANCA", "UN", "PERRO"], 600).write(toFile: dir + "/xx/refranes", atomically: true, encoding: .utf8)
        try fortunes(["the", "cat", "black", "a", "house", "white", "one", "dog"], 600).write(toFile: dir + "/en/wisdom", atomically: true, encoding: .utf8)
        var toml = try String(contentsOfFile: ReferenceFixtures.marketRules + "/market.toml", encoding: .utf8)
        toml = toml.replacingOccurrences(of: #"background_tolerance_micronats = [0-9_]+"#, with: "background_tolerance_micronats = 400000", options: .regularExpression)
        toml = toml.replacingOccurrences(of: #"delta_norm_bound = [0-9.]+"#, with: "delta_norm_bound = 2.0", options: .regularExpression)
        try toml.write(toFile: dir + "/policy/market.toml", atomically: true, encoding: .utf8)
        // A domain the project never shipped: its file names its own text.
        try """
            [domain]
            name = "xx"
            description = "a made-up language"
            language = "xx"
            source = "none"
            text = "\(dir)/xx"
            held_out_bps = 2000
            """.write(toFile: dir + "/policy/domains/xx.toml", atomically: true, encoding: .utf8)

        let config = ModelConfig(family: .qwen3MoE, vocabSize: 256, hiddenSize: 16, layers: 2, heads: 2, kvHeads: 1, headDim: 8,
                                 experts: 4, topK: 2, expertWidth: 16, normTopKProb: true, tieWordEmbeddings: true)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 2, std: 0.1)
        try model.save(directory: dir + "/hf", dtype: .bf16)
        _ = try ExpertLibrary.split(checkpoint: dir + "/hf", into: dir + "/lib")

        var o = Demo.Options()
        o.experts = dir + "/lib"
        o.policy = dir + "/policy"
        o.domain = "xx"
        o.background = dir + "/en"
        o.directory = dir + "/run"
        o.steps = 12
        o.learningRate = 1e-2
        o.topP = 0.6
        o.trainWindows = 48
        o.evalWindows = 24
        o.servedWindows = 32
        o.progress = false
        o.matmul = .fp32Fixed
        return o
    }
}
