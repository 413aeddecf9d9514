import Foundation
import TesseraEngine
import TesseraCore

/// Experts' weights put into a model for a while (a candidate evaluated in place of the
/// base) and put back by `restore`. Where the model keeps an expert's tensor as frozen
/// bf16 and the candidate's values are bf16 too (a version of a bf16 library always is),
/// the candidate is kept as bf16 and swapped in by address: no float copy of the
/// candidate, none of the base to put back, and no float pages touched. Otherwise the
/// tensor is thawed to float and the base values are saved for `restore`.
public final class ExpertSwap {
    public let model: MoEModel
    public let library: ExpertLibrary
    private var undo: [() -> Void] = []

    public init(model: MoEModel, library: ExpertLibrary) {
        self.model = model
        self.library = library
    }

    deinit { restore() }

    /// Bytes of candidate weights held as bf16 and as float (with the saved base values).
    public private(set) var bf16Bytes = 0
    public private(set) var floatBytes = 0

    /// Puts `weights` (named as in a shard) in place of expert `id`. Every tensor is
    /// checked before the first is written.
    public func put(_ id: ExpertID, _ weights: ExpertWeights) throws {
        let slots = try library.expertSlots(id).map { slot -> (UnsafeMutablePointer<Float>, [Float], DType) in
            guard let index = model.layout.indexByName[slot.modelTensor], let values = weights.values(slot.name),
                  values.count == slot.count else {
                throw LibraryError("expert \(id): tensor \(slot.name) is missing or not of shape \(slot.shape)")
            }
            return (model.parameters.pointer + model.layout.tensors[index].offset + slot.elementOffset, values, slot.dtype)
        }
        for (dst, values, dtype) in slots {
            if dtype == .bf16, let halves = BF16Buffer(exactly: values),
               let swapped = FrozenWeights.swap(dst, count: values.count, source: UnsafeRawPointer(halves.pointer), owner: halves) {
                undo.append { FrozenWeights.restore(swapped) }
                bf16Bytes += values.count * 2
                continue
            }
            let saved = FrozenWeights.array(dst, count: values.count)
            FrozenWeights.thaw(dst, count: values.count, keep: false)
            values.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: values.count) }
            floatBytes += values.count * 8
            undo.append { saved.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: saved.count) } }
        }
    }

    /// Puts the model's own weights back (latest first, so an expert put twice ends as it began).
    public func restore() {
        while let step = undo.popLast() { step() }
        bf16Bytes = 0
        floatBytes = 0
    }
}

/// Runs `body` with `weights` in place of those experts in `model`, then puts the
/// model's own weights back.
public func withExperts<T>(_ weights: [ExpertID: ExpertWeights], in model: MoEModel, library: ExpertLibrary,
                           _ body: () throws -> T) throws -> T {
    let swap = ExpertSwap(model: model, library: library)
    defer { swap.restore() }
    for (id, w) in weights { try swap.put(id, w) }
    return try body()
}
