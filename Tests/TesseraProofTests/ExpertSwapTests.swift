import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraProof
import TesseraCore

/// A candidate's experts put into a model in place of the base and put back: with the
/// base's experts frozen in bf16 the candidate stays bf16 (no float copy either way), and
/// every loss is the one the same weights give as floats.
@Suite struct ExpertSwapTests {
    static func loss(_ model: MoEModel, _ data: TokenWindows) throws -> Double {
        let run = ModelRun(model: model, batch: data.count, seq: data.seq, training: false)
        run.matmul = .fp32Fixed
        return try run.forward(try data.batch(Array(0..<data.count)))
    }

    @Test func bf16ExpertsAreSwappedByAddressAndGiveTheFloatLosses() throws {
        let f = try ProofFixture(dtype: .bf16)
        let data = ProofFixture.windows(ProofFixture.domain, count: 4, seed: 2)
        let frozen = try f.library.loadModel(keepBF16: true)
        let floats = try f.library.loadModel(keepBF16: false)
        #expect(frozen.bf16Bytes > 0 && floats.bf16Bytes == 0)
        let range = UInt(bitPattern: frozen.parameters.pointer)..<UInt(bitPattern: frozen.parameters.pointer + frozen.parameters.count)
        let backedBefore = FrozenWeights.backedBytes(in: range)
        let baseLoss = try Self.loss(frozen, data)
        #expect(baseLoss == (try Self.loss(floats, data)))

        // Candidates: two experts scaled, rounded to bf16 as a bf16 library stores them.
        var candidates: [ExpertID: ExpertWeights] = [:]
        for id in [ExpertID(layer: 0, expert: 1), ExpertID(layer: 2, expert: 3)] {
            var t = try f.library.expertWeights(id).weights.tensors
            for i in t.indices { t[i].values = DeltaCodec.decodeStorage(DeltaCodec.storageBytes(t[i].values.map { $0 * 1.5 }, .bf16), .bf16) }
            candidates[id] = ExpertWeights(tensors: t)
        }
        let a = ExpertSwap(model: frozen, library: f.library), b = ExpertSwap(model: floats, library: f.library)
        for (id, w) in candidates { try a.put(id, w); try b.put(id, w) }
        #expect(a.bf16Bytes > 0 && a.floatBytes == 0, "frozen experts are swapped, not thawed")
        #expect(b.bf16Bytes == 0 && b.floatBytes > 0)
        let candidateLoss = try Self.loss(frozen, data)
        #expect(candidateLoss != baseLoss)
        #expect(candidateLoss == (try Self.loss(floats, data)))
        for (id, w) in candidates { #expect(try f.library.expertWeights(id, from: frozen).tensors.map(\.values) == w.tensors.map(\.values)) }

        a.restore(); b.restore()
        #expect(FrozenWeights.backedBytes(in: range) == backedBefore, "the base's bf16 backing is back")
        #expect(try Self.loss(frozen, data) == baseLoss)
        #expect(try Self.loss(floats, data) == baseLoss)
        #expect(frozen.parameterValues == floats.parameterValues)
    }

    /// An expert put twice ends as it began; a candidate of the wrong shape is refused
    /// before anything is written.
    @Test func restoringUndoesEveryPutAndBadShapesChangeNothing() throws {
        let f = try ProofFixture(dtype: .bf16)
        let model = try f.library.loadModel(keepBF16: true)
        let before = model.parameterValues
        let id = ExpertID(layer: 1, expert: 2)
        let base = try f.library.expertWeights(id).weights
        var once = base.tensors, twice = base.tensors
        for i in once.indices { once[i].values = once[i].values.map { -$0 }; twice[i].values = twice[i].values.map { $0 * 2 } }
        let swap = ExpertSwap(model: model, library: f.library)
        try swap.put(id, ExpertWeights(tensors: once))
        try swap.put(id, ExpertWeights(tensors: twice))
        #expect(try f.library.expertWeights(id, from: model).tensors.map(\.values) == twice.map(\.values))
        var short = try f.library.expertWeights(ExpertID(layer: 0, expert: 0)).weights.tensors
        short[short.count - 1].values.removeLast()
        #expect(throws: LibraryError.self) { try swap.put(ExpertID(layer: 0, expert: 0), ExpertWeights(tensors: short)) }
        swap.restore()
        #expect(model.parameterValues == before)
    }
}
