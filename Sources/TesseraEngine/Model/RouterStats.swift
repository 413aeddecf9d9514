import Foundation
import TesseraCore
/// Per layer: how many (token, slot) pairs chose each expert, and the routing weight
/// those pairs carried. Dense layers have empty rows.
public struct RouterStats: Sendable, Equatable, Codable {
    public var counts: [[Int]]
    public var gateMass: [[Double]]

    public init(config: ModelConfig) {
        counts = config.sparseLayers.map { Array(repeating: 0, count: $0 ? config.experts : 0) }
        gateMass = config.sparseLayers.map { Array(repeating: 0, count: $0 ? config.experts : 0) }
    }

    public mutating func add(_ other: RouterStats) {
        for l in counts.indices {
            for e in counts[l].indices {
                counts[l][e] += other.counts[l][e]
                gateMass[l][e] += other.gateMass[l][e]
            }
        }
    }
}

/// Turns router logits (in `probs`, overwritten by the scores) into each token's top-k
/// experts (lower index first on ties) and their weights, by `rule`: softmax or sigmoid
/// scores; with a correction bias, the bias shifts the choice but not the weights; with
/// groups, the choice is limited to the best `topGroups` groups; weights renormalised over
/// the chosen k when `normalize`, then scaled. With a resident mask, only resident experts
/// can be chosen; scores still cover all experts, so a token whose top-k are all resident
/// gets exactly the full model's weights.
func routeTokens(probs: UnsafeMutablePointer<Float>, tokens T: Int, experts E: Int, topK K: Int, normalize: Bool,
                 rule: RouterRule = RouterRule(), bias: UnsafePointer<Float>? = nil, resident: [Bool]? = nil,
                 topIdx: UnsafeMutablePointer<Int32>, topW: UnsafeMutablePointer<Float>) {
    let perGroup = E / rule.groups
    Parallel.ranges(T, work: T * E * 16) { range in
        var choice = [Float](repeating: 0, count: E)
        var groupScore = [Float](repeating: 0, count: rule.groups)
        var allowed = [Bool](repeating: true, count: E)
        for t in range {
            let p = probs + t * E
            switch rule.scoring {
            case .softmax: softmaxRow(p, E)
            case .sigmoid: for e in 0..<E { p[e] = 1 / (1 + Foundation.exp(-p[e])) }
            case .softmaxOfTopK: break
            }
            for e in 0..<E { choice[e] = p[e] + (bias?[e] ?? 0) }
            for e in 0..<E { allowed[e] = resident?[e] ?? true }
            if rule.groups > 1 {
                for g in 0..<rule.groups {
                    var first = -Float.infinity, second = -Float.infinity
                    for e in (g * perGroup)..<((g + 1) * perGroup) {
                        let v = choice[e]
                        if v > first { second = first; first = v } else if v > second { second = v }
                    }
                    groupScore[g] = rule.groupScore == .best ? first : first + second
                }
                var keep = [Bool](repeating: false, count: rule.groups)
                for _ in 0..<rule.topGroups {
                    var best = -1
                    for g in 0..<rule.groups where !keep[g] && (best < 0 || groupScore[g] > groupScore[best]) { best = g }
                    keep[best] = true
                }
                for e in 0..<E where !keep[e / perGroup] { allowed[e] = false }
            }
            var sum: Float = 0
            for k in 0..<K {
                var best = -1
                var bestV = -Float.infinity
                for e in 0..<E where allowed[e] {
                    let v = choice[e]
                    if v > bestV || best < 0 {
                        var taken = false
                        for j in 0..<k where topIdx[t * K + j] == Int32(e) { taken = true }
                        if !taken { best = e; bestV = v }
                    }
                }
                // Fewer allowed experts than k (a partial model's resident experts outside
                // the chosen groups): the slot goes to a resident expert with no weight.
                guard best >= 0 else {
                    topIdx[t * K + k] = Int32((0..<E).first { resident?[$0] ?? true } ?? 0)
                    topW[t * K + k] = 0
                    continue
                }
                topIdx[t * K + k] = Int32(best)
                topW[t * K + k] = p[best]
                sum += p[best]
            }
            if rule.scoring == .softmaxOfTopK {
                var top = -Float.infinity
                for k in 0..<K { top = max(top, topW[t * K + k]) }
                var total: Float = 0
                for k in 0..<K { topW[t * K + k] = Foundation.exp(topW[t * K + k] - top); total += topW[t * K + k] }
                for k in 0..<K { topW[t * K + k] /= total }
                continue
            }
            if normalize {
                let denominator = rule.scoring == .sigmoid ? sum + 1e-20 : sum
                for k in 0..<K { topW[t * K + k] /= denominator }
            }
            if rule.scale != 1 { for k in 0..<K { topW[t * K + k] *= rule.scale } }
        }
    }
}

/// Experts ordered by how many rows they received, largest first (lower index first on
/// ties), so that spreading them over workers starts with the longest jobs.
func expertsBySize(_ start: [Int]) -> [Int] {
    let sizes = (0..<(start.count - 1)).map { start[$0 + 1] - start[$0] }
    return sizes.indices.sorted { a, b in sizes[a] != sizes[b] ? sizes[a] > sizes[b] : a < b }
}
