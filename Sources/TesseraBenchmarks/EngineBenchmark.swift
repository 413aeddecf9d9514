import Dispatch
import Foundation
import TesseraCore
import TesseraEngine
import TesseraLibrary
import TesseraLedger
import TesseraProof
import TesseraTestSupport

public struct EngineBenchmarkResult: Codable, Sendable {
    public var sgemmGflops: Double
    /// The same 2048³ product with the fixed-order kernel (`fp32-fixed`), same threading.
    public var fixedGemmGflops: Double
    public var evalTokensPerS: Double
    public var evalFractionOfSgemm: Double
    public var trainTokensPerS: Double
    public var trainFractionOfSgemm: Double
    public var peakRssBytes: Int
    /// The precision of the model's matrix products in the eval and train figures.
    public var matmul: MatmulPrecision
    /// Evaluation in fp32 (OpenBLAS) in the same run, when `matmul` is another precision.
    public var evalFp32TokensPerS: Double?
    /// |loss(matmul) − loss(fp32)| / loss(fp32) on the benchmark batch, in that case.
    public var evalLossRelativeDifference: Double?
    public var modelFlopsPerToken: Double
    public var workers: Int
    public var shape: String
    /// Seconds per phase over the timed repetitions, when profiling was asked for.
    public var profile: [String: Double]?

    enum CodingKeys: String, CodingKey {
        case sgemmGflops = "sgemm_gflops"
        case fixedGemmGflops = "fixed_gemm_gflops"
        case evalTokensPerS = "eval_tokens_per_s"
        case evalFractionOfSgemm = "eval_fraction_of_sgemm"
        case trainTokensPerS = "train_tokens_per_s"
        case trainFractionOfSgemm = "train_fraction_of_sgemm"
        case peakRssBytes = "peak_rss_bytes"
        case matmul
        case evalFp32TokensPerS = "eval_fp32_tokens_per_s"
        case evalLossRelativeDifference = "eval_loss_relative_difference"
        case modelFlopsPerToken = "model_flops_per_token"
        case workers, shape, profile
    }

    var profileText: String {
        guard let profile else { return "" }
        let lines = profile.sorted { $0.value > $1.value }.map { entry -> String in
            let name = entry.key.padding(toLength: 22, withPad: " ", startingAt: 0)
            return "  " + name + String(format: "%8.3f", entry.value)
        }
        return "\nphases (seconds summed over the timed runs):\n" + lines.joined(separator: "\n")
    }

    public var text: String {
        var lines = [
            "shape: \(shape)",
            "sgemm (fp32 OpenBLAS, 2048×2048×2048, \(workers) workers): " + String(format: "%.1f GFLOP/s", sgemmGflops)
                + String(format: "; fixed-order fp32 (fp32-fixed): %.1f GFLOP/s", fixedGemmGflops),
            "matrix products: \(matmul.rawValue)",
            String(format: "eval:  %.0f tokens/s, model FLOP/s = %.1f%% of sgemm", evalTokensPerS, 100 * evalFractionOfSgemm),
        ]
        if let evalFp32TokensPerS, let evalLossRelativeDifference {
            lines.append(String(format: "       fp32 (OpenBLAS) in the same run: %.0f tokens/s; %@ is %.2f× that, loss differs by %.1e relative",
                                evalFp32TokensPerS, matmul.rawValue, evalTokensPerS / evalFp32TokensPerS, evalLossRelativeDifference))
        }
        lines.append(String(format: "sparse train step: %.0f tokens/s (%.1f%% of sgemm, counting the FLOPs done)",
                            trainTokensPerS, 100 * trainFractionOfSgemm))
        lines.append(String(format: "peak RSS: %.1f MiB", Double(peakRssBytes) / 1_048_576))
        return lines.joined(separator: "\n") + profileText
    }
}

public enum EngineBenchmark {
    /// The reference shape of the engine issue: Mixtral layout, byte vocabulary, hidden 512,
    /// expert width 1024, 4 layers, 8 heads, 8 experts, top-2, batch 8 × 256.
    public static let referenceConfig = ModelConfig(
        family: .mixtral, vocabSize: 256, hiddenSize: 512, layers: 4, heads: 8, kvHeads: 8,
        ropeTheta: 1_000_000, experts: 8, topK: 2, expertWidth: 1024)
    /// The reference shape (hidden 512, expert width 1024, 4 layers, 8 heads, 8 experts,
    /// top-2) in another family's architecture; DeepSeek's per `ModelConfig.deepSeek`
    /// (latent attention, two shared experts and a dense first layer for V2).
    public static func referenceConfig(family: String) -> ModelConfig? {
        let r = referenceConfig
        switch family {
        case ModelFamily.mixtral.rawValue: return r
        case ModelFamily.deepseekV2.rawValue, ModelFamily.deepseekV3.rawValue:
            return ModelConfig.deepSeek(ModelFamily(rawValue: family)!, vocabSize: r.vocabSize, hiddenSize: r.hiddenSize, layers: r.layers,
                                        heads: r.heads, experts: r.experts, topK: r.topK, expertWidth: r.expertWidth)
        default: return nil
        }
    }
    public static let batch = 8
    public static let seq = 256
    public static let trainablePerLayer = 2

    public static func run(repeats: Int, phases: Set<String> = ["eval", "train"], profile: Bool = false,
                           precision: MatmulPrecision = .machineDefault,
                           config: ModelConfig = referenceConfig, batch: Int = batch, seq: Int = seq) throws -> EngineBenchmarkResult {
        let reps = max(1, repeats)
        let sgemmBefore = measureSgemm(repeats: reps)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 0)
        var rng = SplitMix64(seed: 1)
        let tokens = try TokenBatch(batch: batch, seq: seq,
                                    ids: (0..<(batch * seq)).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) })
        let evalRun = ModelRun(model: model, batch: batch, seq: seq, training: false)
        evalRun.matmul = precision
        var evalTime = Double.nan
        var fp32Time: Double?, lossDifference: Double?
        let timer = PhaseTimer.shared
        if phases.contains("eval") {
            let loss = try evalRun.forward(tokens)
            timer.reset()
            if precision == .fp32 {
                timer.enabled = profile
                evalTime = try bestTime(reps) { _ = try timer.measure("eval.total") { try evalRun.forward(tokens) } }
                timer.enabled = false
            } else {
                // Alternating the two precisions puts both under the same load on a shared machine.
                let reference = ModelRun(model: model, batch: batch, seq: seq, training: false)
                reference.matmul = .fp32
                let fp32Loss = try reference.forward(tokens)
                lossDifference = abs(loss - fp32Loss) / fp32Loss
                var best = (Double.infinity, Double.infinity)
                for _ in 0..<reps {
                    timer.enabled = profile
                    best.0 = min(best.0, try bestTime(1) { _ = try timer.measure("eval.total") { try evalRun.forward(tokens) } })
                    timer.enabled = false
                    best.1 = min(best.1, try bestTime(1) { try reference.forward(tokens) })
                }
                evalTime = best.0
                fp32Time = best.1
            }
        }

        let pairs = (0..<config.layers).filter { config.sparseLayers[$0] }.flatMap { l in (0..<trainablePerLayer).map { ExpertID(layer: l, expert: $0) } }
        let trainable = try TrainableSet.experts(pairs, in: model.layout)
        let views = trainable.views(in: model.layout)
        let trainRun = ModelRun(model: model, batch: batch, seq: seq, training: true)
        trainRun.matmul = precision
        let work = BackwardWorkspace(run: trainRun)
        let grads = FloatBuffer(count: model.parameters.count)
        let optimizer = AdamW(views: views, hyper: .init(learningRate: 1e-4))
        func step() throws {
            for v in views { grads.zero(v) }
            try trainRun.lossAndGradients(tokens, trainable: trainable, grads: grads, buffers: work)
            clipGradientNorm(grads, views: views, maxNorm: 1)
            optimizer.update(params: model.parameters, grads: grads)
        }
        var trainTime = Double.nan
        if phases.contains("train") {
            try step()
            timer.enabled = profile
            trainTime = try bestTime(reps) { _ = try timer.measure("train.total") { try step() } }
            timer.enabled = false
        }

        let T = Double(batch * seq)
        let fwd = forwardFlopsPerToken(config, seq: seq)
        let trainFlops = trainingFlopsPerToken(config, seq: seq, trainablePerLayer: trainablePerLayer)
        // The machine is shared: take the better of the sgemm rates measured before and after.
        let sgemm = max(sgemmBefore, measureSgemm(repeats: reps))
        var phaseSeconds: [String: Double]? = nil
        if profile {
            var d: [String: Double] = [:]
            for entry in timer.report { d[entry.phase] = entry.seconds }
            phaseSeconds = d
        }
        let shape = "\(config.family.rawValue) V=\(config.vocabSize) H=\(config.hiddenSize) I=\(config.expertWidth) L=\(config.layers) "
            + "heads=\(config.heads)/\(config.kvHeads) E=\(config.experts) top-\(config.topK) batch \(batch)×\(seq), "
            + "sparse step trains \(trainablePerLayer) experts/layer"
            + (config.latentAttention.map { m in
                ", latent attention kv \(m.kvRank) q \(m.queryRank.map(String.init) ?? "none") nope/rope/v \(m.nopeDim)/\(m.ropeDim)/\(m.valueDim), "
                    + "shared width \(config.sharedExpertWidth), dense layers \(config.sparseLayers.filter { !$0 }.count)" } ?? "")
        let fixed = measureSgemm(repeats: reps, precision: .fp32Fixed)
        return EngineBenchmarkResult(
            sgemmGflops: sgemm / 1e9,
            fixedGemmGflops: fixed / 1e9,
            evalTokensPerS: T / evalTime,
            evalFractionOfSgemm: fwd * T / evalTime / sgemm,
            trainTokensPerS: T / trainTime,
            trainFractionOfSgemm: trainFlops * T / trainTime / sgemm,
            peakRssBytes: peakResidentBytes(),
            matmul: precision,
            evalFp32TokensPerS: fp32Time.map { T / $0 },
            evalLossRelativeDifference: lossDifference,
            modelFlopsPerToken: fwd,
            workers: Parallel.workers,
            shape: shape, profile: phaseSeconds)
    }

    /// The shortest wall time of `n` runs: on a shared machine the least-disturbed run.
    public static func bestTime(_ n: Int, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<n {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return best
    }

    /// FLOP/s of one large single-precision product through the same path the model uses.
    public static func measureSgemm(repeats: Int, m: Int = 2048, n: Int = 2048, k: Int = 2048, precision: MatmulPrecision = .fp32) -> Double {
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
        for i in 0..<(m * k) { a.pointer[i] = Float(i % 7) * 0.01 }
        for i in 0..<(k * n) { b.pointer[i] = Float(i % 5) * 0.01 }
        gemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.pointer, ldc: n, precision: precision)
        let t = bestTime(max(repeats, 3)) {
            gemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.pointer, ldc: n, precision: precision)
        }
        return 2 * Double(m) * Double(n) * Double(k) / t
    }

    /// Matrix-product FLOPs of one forward token: projections, causal attention (the
    /// average position attends to (S+1)/2 keys), router, the k chosen experts, shared
    /// expert or dense MLP, and the lm head.
    public static func forwardFlopsPerToken(_ c: ModelConfig, seq: Int) -> Double {
        let H = Double(c.hiddenSize)
        var total = 2 * H * Double(c.vocabSize)
        for l in 0..<c.layers { total += layerForwardFlops(c, layer: l, seq: seq) }
        return total
    }

    static func attentionFlops(_ c: ModelConfig, seq: Int) -> Double {
        let H = Double(c.hiddenSize)
        let core = 2 * Double(c.qDim + c.attnDim) * Double(seq + 1) / 2
        guard let m = c.latentAttention else {
            return 2 * H * Double(c.qDim + c.kvDim + c.vDim) + 2 * Double(c.attnDim) * H + core
        }
        let query = m.queryRank.map { 2 * H * Double($0) + 2 * Double($0) * Double(c.qDim) } ?? 2 * H * Double(c.qDim)
        let latent = 2 * H * Double(m.kvRank + m.ropeDim) + 2 * Double(m.kvRank) * Double(c.heads * (m.nopeDim + m.valueDim))
        return query + latent + 2 * Double(c.attnDim) * H + core
    }

    static func mlpFlops(_ c: ModelConfig, layer l: Int) -> Double {
        let H = Double(c.hiddenSize)
        if c.sparseLayers[l] {
            return 2 * H * Double(c.experts) + Double(c.topK) * 6 * H * Double(c.expertWidth) + 6 * H * Double(c.sharedExpertWidth)
        }
        return 6 * H * Double(c.denseWidth)
    }

    static func layerForwardFlops(_ c: ModelConfig, layer l: Int, seq: Int) -> Double {
        attentionFlops(c, seq: seq) + mlpFlops(c, layer: l)
    }

    /// FLOPs a sparse step actually performs per token: the forward pass, input gradients
    /// through every layer above the lowest trainable one (attention's core costs twice its
    /// forward), and weight gradients for the trainable experts only (their share of the
    /// routed tokens, assuming balanced routing).
    public static func trainingFlopsPerToken(_ c: ModelConfig, seq: Int, trainablePerLayer: Int) -> Double {
        let H = Double(c.hiddenSize), I = Double(c.expertWidth)
        var total = forwardFlopsPerToken(c, seq: seq) + 2 * H * Double(c.vocabSize)
        let share = Double(trainablePerLayer) / Double(c.experts)
        let lowest = c.sparseLayers.firstIndex(of: true) ?? c.layers
        for l in lowest..<c.layers {
            let expertWeightGrads = c.sparseLayers[l] ? Double(c.topK) * share * 6 * H * I : 0
            if l == lowest {
                // Only the trainable experts' dA (one product) and weight gradients.
                total += expertWeightGrads + Double(c.topK) * share * 2 * H * I
            } else {
                total += attentionFlops(c, seq: seq) + 2 * Double(c.qDim + c.attnDim) * Double(seq + 1) / 2
                total += mlpFlops(c, layer: l) + expertWeightGrads
            }
        }
        return total
    }
}

#if canImport(Glibc)
import Glibc
#endif
