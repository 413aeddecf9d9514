import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// Re-running a verdict: another party re-evaluates the same bundle on the same windows,
/// without caches, and compares every figure exactly.
public enum VerdictCheck {
    /// Returns the differences found (empty when the verdict reproduces). `inputs` builds a
    /// validator over the windows; it is given a throwaway key, since only figures matter.
    public static func run(_ original: Verdict, bundle: String, inputs: (ParticipantKey, [ExpertID: String]) throws -> Validator) throws -> [String] {
        if original.copyOf != nil { return [] }  // a copy is judged by the round's order, not by losses
        let validator = try inputs(ParticipantKey.generate(), try original.pinnedVersions())
        var problems: [String] = []
        if validator.matmul.rawValue != original.matmulPrecision {
            problems.append("the verdict's losses were computed with \(original.matmulPrecision) matrix products, this re-check uses \(validator.matmul.rawValue) (--matmul)")
        }
        if validator.heldOut.windowsSHA256 != original.heldOutSHA256 { problems.append("held-out windows differ from the ones the verdict used (\(original.heldOutSHA256.prefix(12)))") }
        if validator.background.windowsSHA256 != original.backgroundSHA256 { problems.append("background windows differ from the ones the verdict used") }
        guard problems.isEmpty else { return problems }
        var redo = try validator.judgeFully(bundle: bundle, policy: original.policy)
        redo.validator = original.validator
        for (name, a, b) in [("held-out base losses", original.heldOutLosses?.base, redo.heldOutLosses?.base),
                             ("held-out candidate losses", original.heldOutLosses?.candidate, redo.heldOutLosses?.candidate),
                             ("background base losses", original.backgroundLosses?.base, redo.backgroundLosses?.base),
                             ("background candidate losses", original.backgroundLosses?.candidate, redo.backgroundLosses?.candidate)] where a != b {
            let i = zip(a ?? [], b ?? []).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            problems.append("\(name) differ" + (i.map { " first at window \($0)" } ?? " in count"))
        }
        if original.gain != redo.gain { problems.append("gain bounds differ") }
        if original.regression != redo.regression { problems.append("regression bounds differ") }
        if original.accept != redo.accept || original.reason != redo.reason { problems.append("decision differs: \(redo.reason)") }
        return problems
    }
}

extension Validator {
    /// Judges with full (uncached) evaluation under `policy`: what a re-check runs.
    func judgeFully(bundle: String, policy: ProofPolicy) throws -> Verdict {
        let saved = fullEvaluation
        fullEvaluation = true
        defer { fullEvaluation = saved }
        return try judge(bundle: bundle, policy: policy)
    }
}
