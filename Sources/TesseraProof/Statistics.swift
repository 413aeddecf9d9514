import Foundation
import TesseraEngine
import TesseraCore

/// One-sided confidence bounds on the mean of paired differences.
public enum PairedBounds {
    public struct Result: Codable, Sendable, Equatable {
        public var mean: Double
        /// Bootstrap percentile bounds: the (1 − confidence) and confidence quantiles of the
        /// resampled means.
        public var lower: Double
        public var upper: Double
        /// Student-t bounds, reported alongside for comparison.
        public var tLower: Double
        public var tUpper: Double
        public var n: Int
        enum CodingKeys: String, CodingKey { case mean, lower, upper, n; case tLower = "t_lower"; case tUpper = "t_upper" }
    }

    /// Paired bootstrap: `resamples` means of n values drawn with replacement by a
    /// SplitMix64 seeded with `seed`, so anyone re-running with the recorded seed gets the
    /// same bounds, bit for bit. Sums run in a fixed order in Double.
    public static func compute(_ d: [Double], confidence: Double, seed: UInt64, resamples: Int = 2000) -> Result {
        let n = d.count
        guard n > 0 else { return Result(mean: 0, lower: 0, upper: 0, tLower: 0, tUpper: 0, n: 0) }
        let m = d.reduce(0, +) / Double(n)
        var rng = SplitMix64(seed: seed)
        var means = [Double](repeating: 0, count: resamples)
        for b in 0..<resamples {
            var s = 0.0
            for _ in 0..<n { s += d[Int(rng.next() % UInt64(n))] }
            means[b] = s / Double(n)
        }
        means.sort()
        let lo = means[min(resamples - 1, max(0, Int((Double(resamples) * (1 - confidence)).rounded(.down))))]
        let hi = means[min(resamples - 1, max(0, Int((Double(resamples) * confidence).rounded(.up)) - 1))]
        let variance = n > 1 ? d.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n - 1) : 0
        let se = (variance / Double(n)).squareRoot()
        let t = studentTQuantile(confidence, degrees: max(n - 1, 1))
        return Result(mean: m, lower: lo, upper: hi, tLower: m - t * se, tUpper: m + t * se, n: n)
    }

    /// Quantile of Student's t by bisection on its CDF (regularised incomplete beta).
    static func studentTQuantile(_ p: Double, degrees v: Int) -> Double {
        var lo = 0.0, hi = 100.0
        for _ in 0..<100 {
            let mid = (lo + hi) / 2
            if studentTCDF(mid, Double(v)) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }

    static func studentTCDF(_ t: Double, _ v: Double) -> Double {
        let x = v / (v + t * t)
        let tail = 0.5 * incompleteBeta(x, v / 2, 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// Regularised incomplete beta I_x(a, b) by Lentz's continued fraction.
    static func incompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let lg: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let lbeta: Double = lg + a * log(x) + b * log(1 - x)
        if x > (a + 1) / (a + b + 2) { return 1 - incompleteBeta(1 - x, b, a) }
        let front = exp(lbeta) / a
        var f = 1.0, c = 1.0, d = 0.0
        for i in 0...300 {
            let m = Double(i / 2)
            var numerator: Double
            if i == 0 { numerator = 1 } else if i % 2 == 0 {
                numerator = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m))
            } else {
                numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
            }
            d = 1 + numerator * d
            if abs(d) < 1e-30 { d = 1e-30 }
            d = 1 / d
            c = 1 + numerator / c
            if abs(c) < 1e-30 { c = 1e-30 }
            let cd = c * d
            f *= cd
            if abs(1 - cd) < 1e-12 { break }
        }
        return front * (f - 1)
    }
}
