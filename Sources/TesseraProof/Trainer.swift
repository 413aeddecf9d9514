import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// How a training run goes: schedule, optimizer, data sampling, evaluation and
/// checkpoints. The same loop pretrains a whole model and fine-tunes chosen experts.
public struct TrainingOptions: Codable, Sendable, Equatable {
    public var steps: Int
    public var batch: Int
    public var learningRate: Float
    public var warmupSteps: Int
    /// The cosine decay ends at this fraction of the peak rate.
    public var minLearningRateFraction: Float = 0.1
    public var weightDecay: Float = 0.0
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var clipNorm: Float = 1.0
    public var seed: UInt64
    /// transformers' router_aux_loss_coef; 0 leaves the load-balancing loss out.
    public var routerAuxLossCoefficient: Float = 0
    /// Held-out evaluation every this many steps (0: only at the end).
    public var evalEvery: Int = 0
    public var evalWindows: Int = 64
    /// A resumable checkpoint every this many steps (0: only at the end).
    public var checkpointEvery: Int = 0
    /// Train the experts through low-rank adapters of this rank (nil: every weight).
    public var lowRank: Int?

    public init(steps: Int, batch: Int, learningRate: Float, warmupSteps: Int, seed: UInt64) {
        self.steps = steps
        self.batch = batch
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
        self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case steps, batch, seed
        case learningRate = "learning_rate"
        case warmupSteps = "warmup_steps"
        case minLearningRateFraction = "min_learning_rate_fraction"
        case weightDecay = "weight_decay"
        case beta1, beta2
        case clipNorm = "clip_norm"
        case routerAuxLossCoefficient = "router_aux_loss_coef"
        case evalEvery = "eval_every"
        case evalWindows = "eval_windows"
        case checkpointEvery = "checkpoint_every"
        case lowRank = "low_rank"
    }

    public func validate() throws {
        func bad(_ s: String) -> EngineError { .invalidInput(s) }
        guard steps > 0 else { throw bad("--steps \(steps) must be positive") }
        guard batch > 0 else { throw bad("--batch \(batch) must be positive") }
        guard learningRate > 0, learningRate.isFinite else { throw bad("--lr \(learningRate) must be positive") }
        guard warmupSteps >= 0, warmupSteps <= steps else { throw bad("--warmup \(warmupSteps) must be in 0...\(steps)") }
        guard (0...1).contains(minLearningRateFraction) else { throw bad("minimum learning-rate fraction \(minLearningRateFraction) must be in 0...1") }
        guard weightDecay >= 0, clipNorm > 0, (0..<1).contains(beta1), (0..<1).contains(beta2) else {
            throw bad("weight decay must be ≥ 0, clip norm > 0, betas in [0, 1)")
        }
        guard routerAuxLossCoefficient >= 0, evalEvery >= 0, evalWindows >= 0, checkpointEvery >= 0 else {
            throw bad("aux-loss coefficient, eval and checkpoint intervals must be ≥ 0")
        }
        if let lowRank, !(1...LowRankAdapters.maxRank).contains(lowRank) { throw bad("--lora-rank \(lowRank) must be in 1...\(LowRankAdapters.maxRank)") }
    }

    /// Linear warm-up to the peak, then cosine decay to `minLearningRateFraction` of it.
    /// `step` counts from 1.
    public func learningRate(at step: Int) -> Float {
        if warmupSteps > 0 && step <= warmupSteps { return learningRate * Float(step) / Float(warmupSteps) }
        let span = max(steps - warmupSteps, 1)
        let progress = Double(step - warmupSteps) / Double(span)
        let cosine = 0.5 * (1 + cos(Double.pi * min(max(progress, 0), 1)))
        return learningRate * (minLearningRateFraction + (1 - minLearningRateFraction) * Float(cosine))
    }

    /// Windows of step `step`: a function of seed and step alone, so a resumed run draws
    /// exactly what an uninterrupted one would.
    public func windows(at step: Int, of count: Int) -> [Int] {
        var rng = SplitMix64(seed: seed ^ (UInt64(step) &* 0xD1B5_4A32_D192_ED03))
        return (0..<batch).map { _ in Int(rng.next() % UInt64(count)) }
    }
}

public struct TrainingReport: Codable, Sendable {
    public struct Point: Codable, Sendable {
        public var step: Int
        public var trainLoss: Double
        public var heldOutLoss: Double?
        enum CodingKeys: String, CodingKey { case step; case trainLoss = "train_loss"; case heldOutLoss = "held_out_loss" }
    }
    public var steps: Int
    public var resumedFrom: Int
    public var trainedParameters: Int
    public var tokensPerSecond: Double
    public var seconds: Double
    public var history: [Point]
    public var finalHeldOutLoss: Double?

    enum CodingKeys: String, CodingKey {
        case steps, seconds, history
        case resumedFrom = "resumed_from"
        case trainedParameters = "trained_parameters"
        case tokensPerSecond = "tokens_per_second"
        case finalHeldOutLoss = "final_held_out_loss"
    }
}

/// Trains the `trainable` part of a model in place.
public final class Trainer {
    public let model: MoEModel
    public let trainable: TrainableSet
    public let options: TrainingOptions
    let views: [ParamView]
    let train: TokenWindows
    let heldOut: TokenWindows?
    /// Resumable state file; nil trains without checkpoints.
    let statePath: String?
    /// The matrix-product precision of every pass.
    public let matmul: MatmulPrecision
    /// With `options.lowRank`: the adapters trained instead of the experts' weights.
    public let adapters: LowRankAdapters?
    /// What the optimizer updates and a checkpoint saves: the trained views of the model's
    /// parameters, or the adapters' factors.
    var optimizedViews: [ParamView] { adapters?.factorViews ?? views }
    /// The memory a run may add, in bytes; nil asks the kernel (MemAvailable). Set by tests.
    public var memoryAvailable: Int?
    /// Whether the backward pass recomputes each layer's forward pass instead of keeping
    /// every layer's activations (`ModelRun.recomputesActivations`: same bits, a forward
    /// pass more per step); nil does so only when keeping them would not fit in memory.
    public var recomputeActivations: Bool?
    /// Whether the last `run` recomputed activations.
    public private(set) var recomputedActivations = false
    var optimizedBuffer: FloatBuffer { adapters?.factors ?? model.parameters }

    public init(model: MoEModel, trainable: TrainableSet, options: TrainingOptions, train: TokenWindows,
                heldOut: TokenWindows?, statePath: String?, matmul: MatmulPrecision = .machineDefault) throws {
        try options.validate()
        guard train.count > 0 else { throw EngineError.invalidInput("\(train.origin): no training windows") }
        guard !trainable.isEmpty else { throw EngineError.invalidInput("nothing to train: the trainable set is empty") }
        self.model = model
        self.trainable = trainable
        self.options = options
        self.views = trainable.views(in: model.layout)
        self.train = train
        self.heldOut = heldOut.map { $0.prefix(options.evalWindows) }
        self.statePath = statePath
        self.matmul = matmul
        if let rank = options.lowRank {
            guard let experts = trainable.expertFilter,
                  views.count == experts.reduce(0, { $0 + model.layout.layers[$1.layer].experts[$1.expert].all.count }) else {
                throw EngineError.invalidInput("low-rank adapters train routed experts only; this run trains other tensors too")
            }
            adapters = try LowRankAdapters(model: model, experts: Array(experts), rank: rank, seed: options.seed)
        } else {
            adapters = nil
            // Trained weights are float (the optimizer writes them); the rest may stay bf16,
            // and so do the matrices adapters train (they are never written).
            model.thaw(views)
        }
    }

    public var trainedParameters: Int { optimizedViews.reduce(0) { $0 + $1.count } }

    /// What a checkpoint must agree with to be resumed: options, trained views and data.
    var fingerprint: String {
        let o = (try? JSONOutput.compact(options)) ?? ""
        let v = views.map { "\($0.offset)+\($0.count)" }.joined(separator: ",")
        return ContentHash.sha256(Array("\(o)|\(v)|\(train.count)x\(train.seq)".utf8))
    }

    /// Trains to `options.steps`, or with `stopAfter` stops there as a kill would (after
    /// that step's checkpoint, if one falls due).
    public func run(progress: Bool = true, stopAfter: Int? = nil) throws -> TrainingReport {
        let o = options
        let optimizer = AdamW(views: optimizedViews, hyper: .init(learningRate: o.learningRate, beta1: o.beta1, beta2: o.beta2,
                                                        epsilon: 1e-8, weightDecay: o.weightDecay))
        var history: [TrainingReport.Point] = []
        var first = 1
        if let statePath, FileManager.default.fileExists(atPath: statePath) {
            let step = try restore(statePath, optimizer: optimizer, history: &history)
            first = step + 1
        }
        func makeRun(recompute: Bool) -> (run: ModelRun, work: BackwardWorkspace, activations: Int) {
            let ((run, work), activations) = FloatBuffer.allocatedBytes {
                let run = ModelRun(model: model, batch: o.batch, seq: train.seq, training: true, recomputeActivations: recompute)
                return (run, BackwardWorkspace(run: run))
            }
            return (run, work, activations)
        }
        // Buffers this large are mapped untouched, so sizing a run costs no memory.
        var (run, work, activations) = makeRun(recompute: recomputeActivations ?? false)
        var shortfall = memoryShortfall(activations: activations, optimizer: optimizer)
        if recomputeActivations == nil, shortfall != nil {
            (run, work, activations) = makeRun(recompute: true)
            shortfall = memoryShortfall(activations: activations, optimizer: optimizer)
        }
        if let shortfall { throw EngineError.invalidInput(shortfall) }
        recomputedActivations = run.recomputesActivations
        run.matmul = matmul
        run.routerAuxLossCoefficient = o.routerAuxLossCoefficient
        let grads = FloatBuffer(count: model.parameters.count)
        let factorGrads = adapters.map { FloatBuffer(count: $0.factors.count) }
        // Adapters take their experts' gradients from the backward pass (no page of `grads` is touched).
        if let adapters, let factorGrads { run.expertGradients = AdapterGradients(adapters, into: factorGrads) }
        let bar = progress ? ProgressBar(label: "train", total: Double(o.steps)) : nil
        bar?.update(Double(first - 1))
        let started = Date()
        var tokens = 0
        var recent: [Double] = []
        for step in first...max(first, o.steps) where step <= o.steps {
            if let factorGrads { factorGrads.zero() } else { for v in views { grads.zero(v) } }
            let batch = try train.batch(o.windows(at: step, of: train.count))
            let loss = try run.lossAndGradients(batch, trainable: trainable, grads: grads, buffers: work)
            guard loss.isFinite else { throw EngineError.invalidInput("training diverged at step \(step): loss \(loss)") }
            if let adapters, let factorGrads {
                clipGradientNorm(factorGrads, views: optimizedViews, maxNorm: o.clipNorm)
                optimizer.update(params: adapters.factors, grads: factorGrads, learningRate: o.learningRate(at: step))
            } else {
                clipGradientNorm(grads, views: views, maxNorm: o.clipNorm)
                optimizer.update(params: model.parameters, grads: grads, learningRate: o.learningRate(at: step))
            }
            tokens += batch.predictedTokens
            recent.append(loss)
            if recent.count > 20 { recent.removeFirst() }
            var point = TrainingReport.Point(step: step, trainLoss: loss, heldOutLoss: nil)
            if (o.evalEvery > 0 && step % o.evalEvery == 0) || step == o.steps, let heldOut, heldOut.count > 0 {
                point.heldOutLoss = mean(try windowLosses(model: model, windows: heldOut, batch: o.batch, matmul: matmul))
            }
            if point.heldOutLoss != nil || step % 10 == 0 || step == o.steps { history.append(point) }
            if let statePath, (o.checkpointEvery > 0 && step % o.checkpointEvery == 0) || step == o.steps {
                try save(statePath, step: step, optimizer: optimizer, history: history)
            }
            let rate = Double(tokens) / max(Date().timeIntervalSince(started), 1e-9)
            let held = history.last(where: { $0.heldOutLoss != nil })?.heldOutLoss.map { String(format: " held-out %.3f", $0) } ?? ""
            if let stopAfter, step >= stopAfter { break }
            bar?.update(Double(step), note: "step \(step) loss " + String(format: "%.3f", mean(recent)) + held + String(format: " %.0f tok/s", rate))
        }
        bar?.finish()
        let seconds = Date().timeIntervalSince(started)
        return TrainingReport(steps: o.steps, resumedFrom: first - 1, trainedParameters: trainedParameters,
                              tokensPerSecond: Double(tokens) / max(seconds, 1e-9), seconds: seconds, history: history,
                              finalHeldOutLoss: history.last?.heldOutLoss)
    }

    /// Why a run cannot fit, said before its first step (the kernel would kill it minutes
    /// in); nil when it fits. What the steps add to what the process holds is the activation
    /// buffers (all written every step), the gradients of the trained tensors (a full-size
    /// buffer of which only those pages are touched) and the optimizer's two moments.
    func memoryShortfall(activations: Int, optimizer: AdamW) -> String? {
        // Adapters: the factors' gradients, and one expert's gradient per worker in flight.
        let gradients = (adapters.map { $0.factors.count + Parallel.workers * $0.largestExpertParameters } ?? views.reduce(0) { $0 + $1.count })
            * MemoryLayout<Float>.stride
        let moments = optimizer.stateCount * 2 * MemoryLayout<Float>.stride
        let added = activations + gradients + moments
        guard let available = memoryAvailable ?? ProcessMemory.available else { return nil }
        func gb(_ bytes: Int) -> String { String(format: "%.2f GB", Double(bytes) / 1e9) }
        guard added <= available else {
            return "this run needs about \(gb(added)) more memory than the model holds (\(gb(ProcessMemory.resident() ?? 0))), and \(gb(available)) are available: activations \(gb(activations)) for batch \(options.batch) × \(train.seq) tokens, gradients \(gb(gradients)), optimizer moments \(gb(moments)). Lower --batch (activations grow with it)\(adapters == nil ? " or train through low-rank adapters (--lora-rank 4)" : "") or train fewer experts; nothing was trained"
        }
        return nil
    }

    /// The trained values, the optimizer's moments and the step, in one file written
    /// atomically: a kill leaves the previous checkpoint or the new one, never half of one.
    func save(_ path: String, step: Int, optimizer: AdamW, history: [TrainingReport.Point]) throws {
        let metadata = ["format": "tessera-train-state", "step": String(step), "fingerprint": fingerprint,
                        "history": try JSONOutput.compact(history)]
        // Streamed from the buffers: copies of the trained values and both moments would
        // triple them for a moment, which at billions of parameters is what runs out of memory.
        func stream(_ name: String, _ buffer: FloatBuffer, _ runs: [(offset: Int, count: Int)]) -> StreamedTensor {
            StreamedTensor(name: name, dtype: .f32, shape: [runs.reduce(0) { $0 + $1.count }]) { sink in
                for r in runs { try sink(UnsafeRawBufferPointer(start: buffer.pointer + r.offset, count: r.count * MemoryLayout<Float>.stride)) }
            }
        }
        let moments = [(offset: 0, count: optimizer.stateCount)]
        try SafetensorsWriter.write(streamed: [stream("params", optimizedBuffer, optimizedViews.map { ($0.offset, $0.count) }),
                                               stream("adam_m", optimizer.firstMoments, moments),
                                               stream("adam_v", optimizer.secondMoments, moments)],
                                    metadata: metadata, to: path)
        CrashPoint.reach("train.checkpoint")
    }

    func restore(_ path: String, optimizer: AdamW, history: inout [TrainingReport.Point]) throws -> Int {
        let file = try SafetensorsFile(path: path)
        guard file.metadata["format"] == "tessera-train-state", let stepText = file.metadata["step"], let step = Int(stepText) else {
            throw EngineError.invalidInput("\(path): not a Tessera training state (no format/step metadata)")
        }
        guard file.metadata["fingerprint"] == fingerprint else {
            throw EngineError.invalidInput("\(path): saved by a run with other options, experts or data; delete it to start over, or rerun with the same arguments")
        }
        // Read from the mapped file into the buffers, without float arrays in between.
        func bytes(_ name: String, count: Int) throws -> UnsafeRawBufferPointer {
            guard let info = file.tensors[name], info.dtype == .f32, info.shape == [count] else {
                throw EngineError.invalidInput("\(path): \(name) is missing or not float32 [\(count)]; this run trains \(trainedParameters) parameters")
            }
            return file.bytes(of: info)
        }
        let params = try bytes("params", count: trainedParameters)
        try optimizer.restore(step: step, firstMoments: try bytes("adam_m", count: optimizer.stateCount),
                              secondMoments: try bytes("adam_v", count: optimizer.stateCount))
        var at = 0
        for v in optimizedViews {
            UnsafeMutableRawPointer(optimizedBuffer.pointer + v.offset).copyMemory(from: params.baseAddress! + at, byteCount: v.count * MemoryLayout<Float>.stride)
            at += v.count * MemoryLayout<Float>.stride
        }
        if let h = file.metadata["history"] {
            history = try StrictJSON.decode([TrainingReport.Point].self, from: Data(h.utf8), file: path)
        }
        return step
    }
}
