import ArgumentParser
import TesseraEngine
import TesseraLibrary
import TesseraProof

/// How a contributor's update is made small enough to travel (train, contribute): by
/// default trained through rank-4 low-rank adapters with weight decay on their factors and
/// submitted as 4-bit factors (about 54× smaller than the experts in bf16 at the full
/// update's gain and forgetting on Spanish; whitepaper-notes/library.md has the curve), or
/// a full-weight update (`--lora-rank 0`) as a sparse, lossless or low-rank delta.
struct DeltaArguments: ParsableArguments {
    @Option(name: .customLong("lora-rank"),
            help: "Train the selected experts through low-rank adapters of this rank (LoRA), submitted as their factors; 0 trains every weight.")
    var loraRank = DeltaArguments.defaultLoraRank
    @Option(name: .customLong("delta"), help: "Delta encoding (default: low_rank with adapters, sparse for a full-weight update).")
    var deltaEncoding: DeltaHeader.Encoding?
    var delta: DeltaHeader.Encoding { deltaEncoding ?? (loraRank > 0 ? .lowRank : .sparse) }
    @Option(help: "Sparse deltas: share of entries kept.") var density = 0.25
    @Option(help: "Low-rank deltas of a full-weight update: components per tensor (with adapters, their rank is used).") var rank = 4
    @Option(name: .customLong("factor-bits"), help: "Low-rank deltas: bits per factor value (4 or 8).") var factorBits = 4

    var options: DeltaOptions { DeltaOptions(encoding: delta, density: density, rank: rank, factorBits: factorBits) }

    static let defaultLoraRank = TrainingDefaults.adapterRank
    /// Adapters want a higher peak rate than full weights, and weight decay on their factors
    /// (which bounds the update's nuclear norm and pulls it toward the base) keeps their
    /// forgetting at the full update's (the ESFT experiment, whitepaper-notes/library.md).
    var defaultLearningRate: Float { loraRank > 0 ? TrainingDefaults.adapterLearningRate : TrainingDefaults.fullLearningRate }

    /// The training options of `training` with the adapters asked for; with adapters and no
    /// --weight-decay, the decay that spends `TrainingDefaults.adapterDecayBudget`.
    func trainingOptions(_ training: TrainingArguments) -> TrainingOptions {
        var o = training.options(defaultLearningRate: defaultLearningRate)
        o.lowRank = loraRank > 0 ? loraRank : nil
        if loraRank > 0 && training.weightDecay == nil { o.weightDecay = TrainingDefaults.adapterWeightDecay(for: o) }
        return o
    }

    func validate() throws {
        guard density.isFinite, density > 0, density <= 1 else { throw ValidationError("--density \(density) must be in (0, 1]") }
        guard (0...LowRankAdapters.maxRank).contains(loraRank) else { throw ValidationError("--lora-rank \(loraRank) must be in 0...\(LowRankAdapters.maxRank)") }
        if let problem = options.problem { throw ValidationError(problem) }
    }
}
