import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraProof
import TesseraCore
import TesseraTestSupport

@Suite struct TrainerTests {
    @Test func scheduleWarmsUpThenDecaysToTheFloor() {
        var o = TrainingOptions(steps: 100, batch: 1, learningRate: 1, warmupSteps: 10, seed: 0)
        o.minLearningRateFraction = 0.1
        #expect(o.learningRate(at: 1) == 0.1)
        #expect(o.learningRate(at: 10) == 1)
        #expect(abs(o.learningRate(at: 55) - 0.55) < 1e-6)
        #expect(abs(o.learningRate(at: 100) - 0.1) < 1e-6)
        #expect(o.windows(at: 7, of: 50) == o.windows(at: 7, of: 50))
        #expect(o.windows(at: 7, of: 50) != o.windows(at: 8, of: 50))
    }

    @Test func badOptionsAreRefused() throws {
        var o = ProofFixture.options()
        o.warmupSteps = 1000
        #expect(throws: EngineError.self) { try o.validate() }
        o = ProofFixture.options()
        o.batch = 0
        #expect(throws: EngineError.self) { try o.validate() }
    }

    /// A run that cannot fit is refused before its first step, with the parts of the
    /// estimate and the way out named, and the model untouched.
    @Test func aRunThatCannotFitIsRefusedBeforeItsFirstStep() throws {
        let f = try ProofFixture()
        let data = ProofFixture.windows(ProofFixture.domain, count: 16, seed: 1)
        let model = try f.library.loadModel()
        let before = model.parameterValues
        let trainable = try TrainableSet.experts([ExpertID(layer: 1, expert: 0)], in: model.layout)
        for batch in [2, 8] {
            var o = ProofFixture.options(steps: 4)
            o.batch = batch
            let trainer = try Trainer(model: model, trainable: trainable, options: o, train: data, heldOut: nil, statePath: f.dir + "/state-\(batch)")
            trainer.memoryAvailable = 1000
            #expect { try trainer.run(progress: false) } throws: { error in
                 "\(error)".contains("needs about") && "\(error)".contains("batch \(batch) × 24 tokens") && "\(error)".contains("--lora-rank 4")
            }
        }
        #expect(model.parameterValues == before)
        #expect(!FileManager.default.fileExists(atPath: f.dir + "/state-2"))
        var o = ProofFixture.options(steps: 4)
        o.batch = 2
        let fits = try Trainer(model: model, trainable: trainable, options: o, train: data, heldOut: nil, statePath: nil)
        fits.memoryAvailable = 1 << 40
        _ = try fits.run(progress: false)
    }

    /// Killed after 4 of 8 steps and resumed from its checkpoint, a run ends with exactly
    /// the weights and optimizer state of an uninterrupted one.
    @Test func resumedRunIsBitIdentical() throws {
        let f = try ProofFixture()
        let data = ProofFixture.windows(ProofFixture.domain, count: 40, seed: 1)
        let experts = [ExpertID(layer: 1, expert: 0), ExpertID(layer: 2, expert: 3)]
        func fresh() throws -> (MoEModel, TrainableSet) {
            let m = try f.library.loadModel()
            return (m, try TrainableSet.experts(experts, in: m.layout))
        }
        var o = ProofFixture.options(steps: 8)
        o.checkpointEvery = 2
        let (straight, tr) = try fresh()
        let full = try Trainer(model: straight, trainable: tr, options: o, train: data, heldOut: nil, statePath: nil).run(progress: false)
        #expect(full.history.last!.trainLoss < full.history.first!.trainLoss || full.history.count == 1)

        let state = f.dir + "/state.safetensors"
        let (m1, tr1) = try fresh()
        _ = try Trainer(model: m1, trainable: tr1, options: o, train: data, heldOut: nil, statePath: state).run(progress: false, stopAfter: 4)
        let (m2, tr2) = try fresh()
        let resumed = try Trainer(model: m2, trainable: tr2, options: o, train: data, heldOut: nil, statePath: state).run(progress: false)
        #expect(resumed.resumedFrom == 4)
        #expect(m2.parameterValues == straight.parameterValues)
        // Only the chosen experts moved.
        let base = try f.library.loadModel()
        let moved = Set(base.layout.tensors.indices.filter { i in
            let s = base.layout.tensors[i]
            return base.tensor(s.name)
                != m2.tensor(s.name)
        })
        #expect(moved == tr.tensors)
        // A state saved by other options is refused rather than silently mixed in.
        var other = o
        other.learningRate = 5e-3
        let (m3, tr3) = try fresh()
        #expect(throws: EngineError.self) { try Trainer(model: m3, trainable: tr3, options: other, train: data, heldOut: nil, statePath: state).run(progress: false) }
    }
}

extension TrainerTests {
    /// A run whose activations for every layer would not fit recomputes them instead,
    /// and ends with the same weights as a run that keeps them; told to, it recomputes
    /// whatever the memory.
    @Test func aRunShortOfMemoryForActivationsRecomputesThemToTheSameWeights() throws {
        let f = try ProofFixture()
        let data = ProofFixture.windows(ProofFixture.domain, count: 16, seed: 1)
        let experts = [ExpertID(layer: 1, expert: 0), ExpertID(layer: 0, expert: 2)]
        var o = ProofFixture.options(steps: 3)
        o.batch = 2
        func activationBytes(_ recompute: Bool) throws -> Int {
            let model = try f.library.loadModel()
            return FloatBuffer.allocatedBytes {
                let run = ModelRun(model: model, batch: o.batch, seq: data.seq, training: true, recomputeActivations: recompute)
                return BackwardWorkspace(run: run)
            }.bytes
        }
        let full = try activationBytes(false), recomputed = try activationBytes(true)
        #expect(recomputed < full)
        func train(memory: Int?, recompute: Bool?) throws -> (weights: [Float], recomputed: Bool) {
            let model = try f.library.loadModel()
            let trainer = try Trainer(model: model, trainable: try TrainableSet.experts(experts, in: model.layout), options: o,
                                      train: data, heldOut: nil, statePath: nil)
            let state = trainer.trainedParameters * 12
            trainer.memoryAvailable = memory.map { $0 + state }
            trainer.recomputeActivations = recompute
            _ = try trainer.run(progress: false)
            return (model.parameterValues, trainer.recomputedActivations)
        }
        let roomy = try train(memory: nil, recompute: nil)
        #expect(!roomy.recomputed)
        let short = try train(memory: (full + recomputed) / 2, recompute: nil)
        #expect(short.recomputed)
        #expect(short.weights == roomy.weights)
        let asked = try train(memory: nil, recompute: true)
        #expect(asked.recomputed && asked.weights == roomy.weights)
    }
}
