import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// Re-running a verdict: another party re-evaluates the same bundle on the same windows,
/// without caches, and compares every figure. The answer is graded: identical to the last
/// bit; different only by float rounding (every per-window loss within `roundingTolerance`
/// relative, the same decision); or different.
public enum VerdictCheck {
    /// Per-window losses are means over a window's tokens: a different order of summation
    /// (another BLAS kernel) moves them by a few units in the last place of a float, about
    /// 1e-7 relative; 1e-5 leaves room for long windows and still catches any real change.
    public static let roundingTolerance = 1e-5

    public struct Report: Sendable {
        public enum Outcome: String, Sendable { case identical, roundingOnly = "rounding only", differs }
        public var outcome: Outcome
        /// What differs, one line each (empty when identical).
        public var differences: [String]
        /// Largest relative difference of a per-window loss, and its window.
        public var largestRelativeDifference: Double
        public var sameDecision: Bool
    }

    /// `inputs` builds a validator over the windows; it is given a throwaway key, since only
    /// figures matter.
    public static func run(_ original: Verdict, bundle: String, inputs: (ParticipantKey, [ExpertID: String]) throws -> Validator) throws -> Report {
        if original.copyOf != nil {  // a copy is judged by the round's order, not by losses
            return Report(outcome: .identical, differences: [], largestRelativeDifference: 0, sameDecision: true)
        }
        let validator = try inputs(ParticipantKey.generate(), try original.pinnedVersions())
        var setup: [String] = []
        if validator.matmul.rawValue != original.matmulPrecision {
            setup.append("the verdict's losses were computed with \(original.matmulPrecision) matrix products, this re-check uses \(validator.matmul.rawValue) (--matmul)")
        }
        if validator.heldOut.windowsSHA256 != original.heldOutSHA256 { setup.append("held-out windows differ from the ones the verdict used (\(original.heldOutSHA256.prefix(12)))") }
        if validator.background.windowsSHA256 != original.backgroundSHA256 { setup.append("background windows differ from the ones the verdict used") }
        guard setup.isEmpty else { return Report(outcome: .differs, differences: setup, largestRelativeDifference: .infinity, sameDecision: false) }
        var redo = try validator.judgeFully(bundle: bundle, policy: original.policy)
        redo.validator = original.validator
        return compare(original, redo)
    }

    /// Grades the differences between a verdict and its re-computation.
    public static func compare(_ original: Verdict, _ redo: Verdict) -> Report {
        var differences: [String] = []
        var largest = 0.0
        var countsDiffer = false
        for (name, a, b) in [("held-out base losses", original.heldOutLosses?.base, redo.heldOutLosses?.base),
                             ("held-out candidate losses", original.heldOutLosses?.candidate, redo.heldOutLosses?.candidate),
                             ("background base losses", original.backgroundLosses?.base, redo.backgroundLosses?.base),
                             ("background candidate losses", original.backgroundLosses?.candidate, redo.backgroundLosses?.candidate)] where a != b {
            guard let a, let b, a.count == b.count else {
                differences.append("\(name) differ in count")
                countsDiffer = true
                continue
            }
            var worst = (0.0, 0)
            for (i, (x, y)) in zip(a, b).enumerated() where x != y {
                let r = abs(x - y) / max(abs(x), abs(y), 1e-30)
                if !(r <= worst.0) { worst = (r.isNaN ? .infinity : r, i) }
            }
            largest = max(largest, worst.0)
            differences.append("\(name) differ, most at window \(worst.1) (relative \(String(format: "%.2e", worst.0)))")
        }
        if original.gain != redo.gain { differences.append("gain bounds differ (lower bound \(original.gainLCBMicronats) against \(redo.gainLCBMicronats) µnats/token)") }
        if original.regression != redo.regression {
            differences.append("regression bounds differ (upper bound \(original.regressionUCBMicronats) against \(redo.regressionUCBMicronats) µnats/token)")
        }
        let sameDecision = original.accept == redo.accept && original.reason == redo.reason
        if !sameDecision { differences.append("decision differs: \(redo.accept ? "accept" : "reject") (\(redo.reason))") }
        let outcome: Report.Outcome = differences.isEmpty ? .identical
            : (sameDecision && !countsDiffer && largest <= roundingTolerance ? .roundingOnly : .differs)
        return Report(outcome: outcome, differences: differences, largestRelativeDifference: largest, sameDecision: sameDecision)
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
