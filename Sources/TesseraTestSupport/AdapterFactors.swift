import TesseraCore
import TesseraEngine

extension LowRankAdapters {
    /// Gives every B values in ±0.1 from a seed: adapters start with B = 0, which makes
    /// ∂A vanish, so tests of the factors' gradients set B first.
    public func fillB(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for mat in matrices {
            for i in 0..<mat.factorsB.count { factors.pointer[mat.factorsB.offset + i] = (Float(rng.next() >> 40) / Float(1 << 24) - 0.5) * 0.2 }
        }
    }
}
