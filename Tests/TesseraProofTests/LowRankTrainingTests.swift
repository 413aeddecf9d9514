import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraProof
import TesseraCore
import TesseraTestSupport

/// Training through low-rank adapters: the factors' gradients derived from the engine's
/// weight gradients, and runs that move only the chosen experts, by an update of the
/// adapters' rank, resumable bit for bit.
@Suite struct LowRankTrainingTests {
    /// ∂L/∂B = G·Aᵀ and ∂L/∂A = Bᵀ·G against central finite differences of the loss.
    @Test func factorGradientsMatchFiniteDifferences() throws {
        let f = try ProofFixture()
        let model = try f.library.loadModel()
        let experts = [ExpertID(layer: 1, expert: 2)]
        let trainable = try TrainableSet.experts(experts, in: model.layout)
        let adapters = try LowRankAdapters(model: model, experts: experts, rank: 2, seed: 5)
        adapters.fillB(seed: 9)
        let data = ProofFixture.windows(ProofFixture.domain, count: 4, seed: 2)
        let batch = try data.batch(Array(0..<4))
        let run = ModelRun(model: model, batch: 4, seq: data.seq, training: true)
        run.matmul = .fp32Fixed
        let grads = FloatBuffer(count: model.parameters.count)
        _ = try run.lossAndGradients(batch, trainable: trainable, grads: grads)
        let factorGrads = FloatBuffer(count: adapters.factors.count)
        adapters.factorGradients(from: grads, into: factorGrads)
        func loss() throws -> Double {
            let scratch = FloatBuffer(count: model.parameters.count)
            return try run.lossAndGradients(batch, trainable: trainable, grads: scratch)
        }
        // The largest few entries of each factor of each matrix.
        var checked = 0
        for view in adapters.factorViews {
            let largest = (0..<view.count).sorted { abs(factorGrads.pointer[view.offset + $0]) > abs(factorGrads.pointer[view.offset + $1]) }.prefix(2)
            for i in largest {
                let at = view.offset + i, h: Float = 1e-2
                let saved = adapters.factors.pointer[at]
                adapters.factors.pointer[at] = saved + h
                let up = try loss()
                adapters.factors.pointer[at] = saved - h
                let down = try loss()
                adapters.factors.pointer[at] = saved
                let numeric = (up - down) / Double(2 * h), analytic = Double(factorGrads.pointer[at])
                #expect(abs(numeric - analytic) <= 0.03 * abs(analytic) + 1e-4, "factor entry \(at): numeric \(numeric), analytic \(analytic)")
                checked += 1
            }
        }
        #expect(checked == 12)
    }

    @Test func adapterRunsMoveOnlyTheExpertsByALowRankUpdateAndResume() throws {
        let f = try ProofFixture()
        let data = ProofFixture.windows(ProofFixture.domain, count: 40, seed: 1)
        let experts = [ExpertID(layer: 0, expert: 1), ExpertID(layer: 2, expert: 3)]
        var o = ProofFixture.options(steps: 20)
        o.lowRank = 2
        o.checkpointEvery = 5
        func fresh() throws -> (MoEModel, TrainableSet) {
            let m = try f.library.loadModel()
            return (m, try TrainableSet.experts(experts, in: m.layout))
        }
        let (straight, tr) = try fresh()
        let trainer = try Trainer(model: straight, trainable: tr, options: o, train: data, heldOut: nil, statePath: nil)
        let report = try trainer.run(progress: false)
        #expect(report.history.last!.trainLoss < report.history.first!.trainLoss)
        let adapters = try #require(trainer.adapters)
        #expect(report.trainedParameters == adapters.parameterCount && adapters.parameterCount == 2 * 3 * 2 * (16 + 16))
        let base = try f.library.loadModel()
        base.thawAll()
        for mat in adapters.matrices {
            let b = adapters.factors.array(mat.factorsB), a = adapters.factors.array(mat.factorsA), trained = straight.values(mat.view)
            for i in 0..<mat.rows {
                for j in 0..<mat.columns {
                    let expected = base.parameters.pointer[mat.view.offset + i * mat.columns + j] + b[i * 2] * a[j] + b[i * 2 + 1] * a[mat.columns + j]
                    #expect(abs(trained[i * mat.columns + j] - expected) <= 1e-6 * max(1, abs(expected)))
                }
            }
        }
        let moved = Set(base.layout.tensors.indices.filter { i in
            let s = base.layout.tensors[i]
            return base.tensor(s.name)
                != straight.tensor(s.name)
        })
        #expect(moved == tr.tensors)

        let state = f.dir + "/lora-state.safetensors"
        let (m1, tr1) = try fresh()
        _ = try Trainer(model: m1, trainable: tr1, options: o, train: data, heldOut: nil, statePath: state).run(progress: false, stopAfter: 10)
        let (m2, tr2) = try fresh()
        let second = try Trainer(model: m2, trainable: tr2, options: o, train: data, heldOut: nil, statePath: state)
        let resumed = try second.run(progress: false)
        #expect(resumed.resumedFrom == 10)
        #expect(second.adapters?.factors.array == adapters.factors.array)
        #expect(m2.parameterValues == straight.parameterValues)
        withExtendedLifetime(second) {}
        // A state saved by a full-weight run is not resumed as adapters.
        var full = o
        full.lowRank = nil
        let (m3, tr3) = try fresh()
        #expect(throws: EngineError.self) { try Trainer(model: m3, trainable: tr3, options: full, train: data, heldOut: nil, statePath: state).run(progress: false) }
        // Ranks the matrices cannot hold, and adapters on anything but routed experts, are refused.
        var tooHigh = o
        tooHigh.lowRank = 17
        let (m4, tr4) = try fresh()
        #expect { _ = try Trainer(model: m4, trainable: tr4, options: tooHigh, train: data, heldOut: nil, statePath: nil) } throws: { "\($0)".contains("exceeds") }
        #expect { _ = try Trainer(model: m4, trainable: .all(m4.layout), options: o, train: data, heldOut: nil, statePath: nil) } throws: { "\($0)".contains("routed experts only") }
    }
}
