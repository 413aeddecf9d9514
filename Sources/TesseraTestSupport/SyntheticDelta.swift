import TesseraCore
import TesseraEngine
import TesseraLibrary

/// A synthetic expert update for the delta codec's benchmark and tests: a small dense
/// change everywhere plus a few larger entries, rounded through the storage dtype.
public enum SyntheticDelta {
    public static func update(width: Int, hidden: Int, dtype: DType, seed: UInt64) -> (base: ExpertWeights, new: ExpertWeights) {
        var rng = SplitMix64(seed: seed)
        var base: [(name: String, dtype: DType, shape: [Int], values: [Float])] = []
        var new = base
        for (name, shape) in [("gate", [width, hidden]), ("up", [width, hidden]), ("down", [hidden, width])] {
            let n = shape.reduce(1, *)
            var b = [Float](repeating: 0, count: n), u = b
            for i in 0..<n {
                b[i] = Float(rng.normal() * 0.02)
                var d = rng.normal() * 0.001
                if rng.uniform() < 0.02 { d += rng.normal() * 0.01 }
                u[i] = b[i] + Float(d)
            }
            let round = { (v: [Float]) in DeltaCodec.decodeStorage(DeltaCodec.storageBytes(v, dtype), dtype) }
            base.append((name, dtype, shape, round(b)))
            new.append((name, dtype, shape, round(u)))
        }
        return (ExpertWeights(tensors: base), ExpertWeights(tensors: new))
    }
}
