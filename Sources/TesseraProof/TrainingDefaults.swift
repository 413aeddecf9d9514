/// What contributors train and submit when they do not say: the winner of the ESFT
/// experiment (scripts/esft_experiment.sh, whitepaper-notes/library.md): rank-4 low-rank
/// adapters on the selected experts with decoupled weight decay on their factors, submitted
/// as 4-bit factors. `tessera train`, `contribute` and the demo all read these.
public enum TrainingDefaults {
    public static let adapterRank = 4
    public static let adapterLearningRate: Float = 1.5e-2
    public static let adapterFactorBits = 4
    /// Full-weight training (`--lora-rank 0`).
    public static let fullLearningRate: Float = 1e-3
    /// AdamW multiplies the factors by (1 − lr_t · wd) each step, so what bounds the update
    /// (and the forgetting) is wd · Σ lr_t over the run, not wd alone: the default decay
    /// spends this budget whatever the run's length and schedule. With 2.6 (factors shrunk
    /// by e^−2.6 ≈ 7% of what they would be undecayed, gradients permitting) the ESFT
    /// experiment kept 91.6% (Spanish) and 92.8% (Italian) of the full update's gain with
    /// less forgetting than it, and the 40-step demo rounds passed the market's forgetting
    /// guard (whitepaper-notes/library.md; German forgets more, as said there).
    public static let adapterDecayBudget = 2.6

    /// The weight decay that spends `adapterDecayBudget` over `options`' schedule.
    public static func adapterWeightDecay(for options: TrainingOptions) -> Float {
        let total = (1...max(options.steps, 1)).reduce(0.0) { $0 + Double(options.learningRate(at: $1)) }
        return total > 0 ? Float(adapterDecayBudget / total) : 0
    }
}
