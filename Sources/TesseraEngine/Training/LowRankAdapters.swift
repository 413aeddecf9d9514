import Foundation
import CVectorMath
import TesseraCore

/// Low-rank adapters on chosen experts' matrices (LoRA): each matrix W [m, n] is trained as
/// W₀ + B·A with B [m, r] and A [r, n], W₀ frozen. The update B·A then has rank r by
/// construction, so it can be submitted as its factors instead of approximated afterwards.
/// While the adapters live, the model computes with W₀ + B·A without writing W anywhere
/// (`AdaptedWeights`): every product and every read of those matrices sees it.
///
/// The engine's backward pass already computes G = ∂L/∂W for a trained matrix; the factors'
/// gradients follow from it, ∂L/∂B = G·Aᵀ and ∂L/∂A = Bᵀ·G, so the adapters need no
/// backward code of their own. Initialisation as in LoRA: B = 0 (the model starts at W₀), A
/// uniform in ±1/√n from a seed.
public final class LowRankAdapters: @unchecked Sendable {
    public struct Matrix: Sendable {
        public let expert: ExpertID
        /// The matrix's values in the model's parameter buffer.
        public let view: ParamView
        public let rows: Int, columns: Int
        /// B then A in the factor buffer.
        public let factorsB: ParamView, factorsA: ParamView
    }

    /// The largest rank any command accepts (a bound on memory before the matrices are seen).
    public static let maxRank = 4096

    public let rank: Int
    public let matrices: [Matrix]
    /// Every B and A, laid out as `matrices` says: what the optimizer updates.
    public let factors: FloatBuffer
    public var factorViews: [ParamView] { matrices.flatMap { [$0.factorsB, $0.factorsA] } }
    /// The matrices of each adapted expert.
    public let matricesByExpert: [ExpertID: [Matrix]]
    /// Parameters of the largest adapted expert's matrices (one expert's gradient in flight).
    public var largestExpertParameters: Int { matricesByExpert.values.map { $0.reduce(0) { $0 + $1.view.count } }.max() ?? 0 }
    /// The model whose weights the adapters adapt: its parameter buffer must outlive the
    /// registration of those weights in `AdaptedWeights`.
    let model: MoEModel

    /// Adapters on the gate, up and down matrices of `experts`.
    public init(model: MoEModel, experts: [ExpertID], rank: Int, seed: UInt64) throws {
        guard rank >= 1 else { throw EngineError.invalidInput("low-rank adapters: rank \(rank) must be at least 1") }
        var list: [Matrix] = []
        var total = 0
        for id in experts.sorted() {
            guard id.layer >= 0, id.layer < model.layout.layers.count, id.expert >= 0, id.expert < model.layout.layers[id.layer].experts.count else {
                throw EngineError.invalidInput("low-rank adapters: no expert \(id) in this model")
            }
            let e = model.layout.layers[id.layer].experts[id.expert]
            let hidden = e.down.count / e.width
            // gpt-oss keeps gate and up as one [hidden, 2·width] matrix (columns interleaved)
            // and down as [width, hidden]; its biases stay frozen, as LoRA leaves biases.
            let shapes = e.interleavedClamped == nil
                ? [(e.gate, e.width, hidden), (e.up, e.width, hidden), (e.down, hidden, e.width)]
                : [(ParamView(offset: e.gate.offset, count: e.gate.count + e.up.count, tensor: e.gate.tensor), hidden, 2 * e.width),
                   (e.down, e.width, hidden)]
            for (view, rows, columns) in shapes {
                guard rank <= min(rows, columns) else {
                    throw EngineError.invalidInput("low-rank adapters: rank \(rank) exceeds the \(rows)×\(columns) matrices of expert \(id)")
                }
                let b = ParamView(offset: total, count: rows * rank, tensor: view.tensor)
                let a = ParamView(offset: total + rows * rank, count: rank * columns, tensor: view.tensor)
                total += b.count + a.count
                list.append(Matrix(expert: id, view: view, rows: rows, columns: columns, factorsB: b, factorsA: a))
            }
        }
        guard !list.isEmpty else { throw EngineError.invalidInput("low-rank adapters: no experts to adapt") }
        self.rank = rank
        matrices = list
        matricesByExpert = Dictionary(grouping: list, by: \.expert)
        factors = FloatBuffer(count: total)
        self.model = model
        var rng = SplitMix64(seed: seed)
        for mat in list {
            let bound = 1 / Float(mat.columns).squareRoot()
            for i in 0..<mat.factorsA.count {
                factors.pointer[mat.factorsA.offset + i] = (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * bound
            }
        }
        // W₀ stays where the model keeps it (bf16 in the mapped shards, as a rule): products
        // and reads add B·A, so W is never written out as floats.
        for mat in list {
            AdaptedWeights.register(model.parameters.pointer + mat.view.offset, rows: mat.rows, columns: mat.columns, rank: rank,
                                    b: factors.pointer + mat.factorsB.offset, a: factors.pointer + mat.factorsA.offset)
        }
    }

    deinit {
        for mat in matrices { AdaptedWeights.unregister(model.parameters.pointer + mat.view.offset) }
    }

    public var parameterCount: Int { factors.count }

    /// The factors' gradients from the matrices' gradients G in `grads` (laid out like the
    /// model's parameters): ∂B = G·Aᵀ, ∂A = Bᵀ·G, into `factorGrads` (laid out like `factors`).
    public func factorGradients(from grads: FloatBuffer, into factorGrads: FloatBuffer) {
        for mat in matrices { project(UnsafePointer(grads.pointer + mat.view.offset), mat, into: factorGrads) }
    }

    /// ∂B and ∂A of one matrix from its gradient `g`.
    func project(_ g: UnsafePointer<Float>, _ mat: Matrix, into factorGrads: FloatBuffer) {
        gemm(transB: true, m: mat.rows, n: rank, k: mat.columns, a: g, lda: mat.columns,
             b: factors.pointer + mat.factorsA.offset, ldb: mat.columns, beta: 0,
             c: factorGrads.pointer + mat.factorsB.offset, ldc: rank, parallel: false)
        gemm(transA: true, m: rank, n: mat.columns, k: mat.rows, a: factors.pointer + mat.factorsB.offset, lda: rank,
             b: g, ldb: mat.columns, beta: 0, c: factorGrads.pointer + mat.factorsA.offset, ldc: mat.columns, parallel: false)
    }
}

/// The adapters as the backward pass's sink for their experts' gradients: each expert's
/// gradient is projected onto its factors as soon as it is complete, so training adapters
/// never holds the full-size gradient of the experts it adapts (3.2 GB for 8 experts per
/// layer of OLMoE-1B-7B, 7.2 GB for DeepSeek-V2-Lite). The factor gradients are the same
/// bits as `factorGradients` gives from a full gradient buffer. Zero `factorGrads` before
/// each backward pass: an expert no token reached is not handed over.
public final class AdapterGradients: ExpertGradientSink, @unchecked Sendable {
    public let adapters: LowRankAdapters
    public let factorGrads: FloatBuffer

    public init(_ adapters: LowRankAdapters, into factorGrads: FloatBuffer) {
        self.adapters = adapters
        self.factorGrads = factorGrads
    }

    public func takes(layer: Int, expert: Int) -> Bool { adapters.matricesByExpert[ExpertID(layer: layer, expert: expert)] != nil }

    public func consume(_ gradient: ExpertGradient) {
        for mat in adapters.matricesByExpert[ExpertID(layer: gradient.layer, expert: gradient.expert)] ?? [] {
            adapters.project(gradient.pointer(mat.view), mat, into: factorGrads)
        }
    }
}
