import TesseraCore
/// Which checkpoint tensors receive gradients. Everything else is frozen: no weight
/// gradient is computed for it, and back-propagation stops below the lowest layer that
/// holds a trainable tensor.
public struct TrainableSet: Sendable, Equatable {
    public var tensors: Set<Int>
    /// When set, only these routed experts train, even where a fused tensor holds others.
    public var expertFilter: Set<ExpertID>?

    public init(tensors: Set<Int>, expertFilter: Set<ExpertID>? = nil) {
        self.tensors = tensors
        self.expertFilter = expertFilter
    }

    public static func all(_ layout: WeightLayout) -> TrainableSet {
        TrainableSet(tensors: Set(layout.tensors.indices))
    }

    /// The routed experts given as (layer, expert) pairs. In the fused layout an expert
    /// shares its tensors with the others of its layer; the filter keeps the others frozen.
    public static func experts(_ list: [ExpertID], in layout: WeightLayout) throws -> TrainableSet {
        var set = Set<Int>()
        var ids = Set<ExpertID>()
        for id in list {
            let l = id.layer, e = id.expert
            guard l >= 0, l < layout.layers.count else {
                throw EngineError.invalidInput("expert \(l):\(e): layer \(l) is outside 0..<\(layout.layers.count)")
            }
            guard !layout.layers[l].experts.isEmpty else {
                throw EngineError.invalidInput("expert \(l):\(e): layer \(l) is a dense layer with no routed experts")
            }
            guard e >= 0, e < layout.layers[l].experts.count else {
                throw EngineError.invalidInput("expert \(l):\(e): expert \(e) is outside 0..<\(layout.layers[l].experts.count)")
            }
            set.formUnion(layout.tensorIndices(layer: l, expert: e))
            ids.insert(ExpertID(layer: l, expert: e))
        }
        return TrainableSet(tensors: set, expertFilter: ids)
    }

    public func containsExpert(layer: Int, expert: Int, _ w: MLPWeights) -> Bool {
        guard w.all.contains(where: { contains($0) }) else { return false }
        return expertFilter?.contains(ExpertID(layer: layer, expert: expert)) ?? true
    }

    public var isEmpty: Bool { tensors.isEmpty }

    @inlinable public func contains(_ view: ParamView?) -> Bool {
        guard let view else { return false }
        return tensors.contains(view.tensor)
    }
}

