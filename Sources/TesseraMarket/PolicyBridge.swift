import TesseraLedger
import TesseraProof

extension MarketPolicy {
    /// The Proof-of-Loss part of the market's policy, as validators apply it.
    public var proofPolicy: ProofPolicy {
        ProofPolicy(confidence: confidence, minGainMicronats: minGainMicronats, backgroundToleranceMicronats: backgroundToleranceMicronats,
                    deltaNormBound: deltaNormBound, copyThreshold: copyThreshold)
    }
}
