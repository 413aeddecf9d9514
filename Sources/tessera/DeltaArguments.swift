import ArgumentParser
import TesseraEngine
import TesseraLibrary
import TesseraProof

/// How a contributor's update is made small enough to travel (train, contribute): a
/// full-weight update as a sparse (default), lossless or low-rank delta, or an update
/// trained through low-rank adapters and submitted as their quantized factors (50× smaller;
/// whitepaper-notes/library.md has the measured trade against forgetting).
struct DeltaArguments: ParsableArguments {
    @Option(name: .customLong("lora-rank"),
            help: "Train the selected experts through low-rank adapters of this rank (LoRA), so the update is small by construction (use with --delta low_rank); 0 trains every weight.")
    var loraRank = 0
    @Option(help: "Delta encoding.") var delta = DeltaHeader.Encoding.sparse
    @Option(help: "Sparse deltas: share of entries kept.") var density = 0.25
    @Option(help: "Low-rank deltas of a full-weight update: components per tensor (with adapters, their rank is used).") var rank = 4
    @Option(name: .customLong("factor-bits"), help: "Low-rank deltas: bits per factor value (4 or 8).") var factorBits = 4

    var options: DeltaOptions { DeltaOptions(encoding: delta, density: density, rank: rank, factorBits: factorBits) }

    /// The peak learning rate when none is given: adapters need a higher one (5e-3 matched
    /// the full update's forgetting in the ESFT experiment).
    var defaultLearningRate: Float { loraRank > 0 ? 5e-3 : 1e-3 }

    /// The training options of `training` with the adapters asked for.
    func trainingOptions(_ training: TrainingArguments) -> TrainingOptions {
        var o = training.options(defaultLearningRate: defaultLearningRate)
        o.lowRank = loraRank > 0 ? loraRank : nil
        return o
    }

    func validate() throws {
        guard density.isFinite, density > 0, density <= 1 else { throw ValidationError("--density \(density) must be in (0, 1]") }
        guard (0...LowRankAdapters.maxRank).contains(loraRank) else { throw ValidationError("--lora-rank \(loraRank) must be in 0...\(LowRankAdapters.maxRank)") }
        if let problem = options.problem { throw ValidationError(problem) }
    }
}
