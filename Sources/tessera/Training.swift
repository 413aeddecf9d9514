import ArgumentParser
import Foundation
import TesseraEngine
import TesseraProof
import TesseraCore

/// Options every training command shares.
struct TrainingArguments: ParsableArguments {
    @OptionGroup var matmul: MatmulOption
    @Option var steps = 200
    @Option(help: "Windows per step.") var batch = 8
    @Option(name: .customLong("lr"), help: "Peak learning rate (default: 1e-3; with low-rank adapters, 5e-3).") var learningRate: Float?
    @Option(help: "Linear warm-up steps before the cosine decay.") var warmup = 20
    @Option(name: .customLong("min-lr-fraction")) var minLRFraction: Float = 0.1
    @Option(name: .customLong("weight-decay"), help: "Decoupled weight decay (AdamW) (default: 0; with low-rank adapters, the decay that spends a budget of 2.6 = wd · Σ lr over the run).") var weightDecay: Float?
    @Option(name: .customLong("clip"), help: "Global gradient-norm bound.") var clipNorm: Float = 1
    @Option var seed: UInt64 = 0
    @Option(name: .customLong("eval-every"), help: "Held-out evaluation interval in steps (0: at the end).") var evalEvery = 0
    @Option(name: .customLong("eval-windows")) var evalWindows = 64
    @Option(name: .customLong("checkpoint-every"), help: "Resumable checkpoint interval in steps (0: at the end).") var checkpointEvery = 0
    @Flag(name: .customLong("recompute-activations"), inversion: .prefixedNo,
          help: "Keep one layer's activations and recompute each layer's forward pass in the backward pass (same result; one layer's activations instead of every layer's, for a forward pass more per step: 10-26% more time in the runs of whitepaper-notes/scale.md). Default: only when keeping every layer's would not fit.")
    var recomputeActivations: Bool?

    func options(auxCoef: Float = 0, defaultLearningRate: Float = 1e-3) -> TrainingOptions {
        var o = TrainingOptions(steps: steps, batch: batch, learningRate: learningRate ?? defaultLearningRate, warmupSteps: warmup, seed: seed)
        o.minLearningRateFraction = minLRFraction
        o.weightDecay = weightDecay ?? 0
        o.clipNorm = clipNorm
        o.evalEvery = evalEvery
        o.evalWindows = evalWindows
        o.checkpointEvery = checkpointEvery
        o.routerAuxLossCoefficient = auxCoef
        return o
    }
}

struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a byte-vocabulary Qwen3-MoE from scratch on a corpus; resumes after a kill.")
    @Option(help: "Corpus directory from `tessera corpus` (train.safetensors, heldout.safetensors).") var data: String
    @Option(help: "Output checkpoint directory.") var out: String
    @Option var hidden = 128
    @Option var layers = 4
    @Option var heads = 4
    @Option(name: .customLong("kv-heads")) var kvHeads = 2
    @Option(name: .customLong("head-dim")) var headDim = 32
    @Option var experts = 8
    @Option(name: .customLong("top-k")) var topK = 2
    @Option(name: .customLong("expert-width")) var expertWidth = 192
    @Option(name: .customLong("aux-coef"), help: "Load-balancing loss coefficient.") var auxCoef: Float = 0.01
    @Option(help: "Checkpoint dtype: F32 or BF16.") var dtype = "BF16"
    @OptionGroup var training: TrainingArguments
    @Flag var json = false

    func run() throws {
        guard let dt = DType(rawValue: dtype.uppercased()), dt == .f32 || dt == .bf16 else { throw ValidationError("--dtype \(dtype): use F32 or BF16") }
        var shape = Pretraining.Shape()
        shape.hidden = hidden; shape.layers = layers; shape.heads = heads; shape.kvHeads = kvHeads
        shape.headDim = headDim; shape.experts = experts; shape.topK = topK; shape.expertWidth = expertWidth
        let r = try Pretraining.run(shape: shape, options: training.options(auxCoef: auxCoef), data: data, out: out, dtype: dt,
                                    progress: true, matmul: training.matmul.precision, recomputeActivations: training.recomputeActivations)
        if json { print(try jsonString(r)); return }
        let held = r.training.finalHeldOutLoss.map { String(format: ", held-out loss %.4f (%.3f bits/byte)", $0, $0 / log(2)) } ?? ""
        print("wrote \(r.out): \(r.parameters) parameters, \(r.training.steps) steps at " + String(format: "%.0f", r.training.tokensPerSecond) + " tokens/s" + held)
    }
}
