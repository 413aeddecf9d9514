import TesseraCore

extension MoEModel {
    /// Fills every weight with N(0, std²) and every norm weight with 1, as transformers
    /// initialises these families; biases start at 0.
    public func initializeRandomly(seed: UInt64, std: Double = 0.02) {
        var rng = SplitMix64(seed: seed)
        let P = parameters.pointer
        for slot in layout.tensors {
            let p = P + slot.offset
            if slot.name.hasSuffix("norm.weight") || slot.name.hasSuffix("layernorm.weight") {
                for i in 0..<slot.count { p[i] = 1 }
            } else if slot.name.hasSuffix(".bias") {
                for i in 0..<slot.count { p[i] = 0 }
            } else {
                for i in 0..<slot.count { p[i] = Float(rng.normal() * std) }
            }
        }
    }
}
