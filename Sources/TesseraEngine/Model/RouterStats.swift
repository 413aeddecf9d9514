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

/// Softmax over the router logits, top-k per token (lower index first on ties), and the
/// routing weights: renormalised over the chosen k when the family does so. With a
/// resident mask, only resident experts can be chosen; the softmax still runs over all
/// experts, so a token whose top-k are all resident gets exactly the full model's weights.
func routeTokens(probs: UnsafeMutablePointer<Float>, tokens T: Int, experts E: Int, topK K: Int, normalize: Bool,
                 resident: [Bool]? = nil,
                 topIdx: UnsafeMutablePointer<Int32>, topW: UnsafeMutablePointer<Float>) {
    Parallel.ranges(T, work: T * E * 16) { range in
        for t in range {
            let p = probs + t * E
            softmaxRow(p, E)
            var sum: Float = 0
            for k in 0..<K {
                var best = -1
                var bestV = -Float.infinity
                for e in 0..<E where resident?[e] ?? true {
                    let v = p[e]
                    if v > bestV || best < 0 {
                        var taken = false
                        for j in 0..<k where topIdx[t * K + j] == Int32(e) { taken = true }
                        if !taken { best = e; bestV = v }
                    }
                }
                topIdx[t * K + k] = Int32(best)
                topW[t * K + k] = bestV
                sum += bestV
            }
            if normalize {
                for k in 0..<K { topW[t * K + k] /= sum }
            }
        }
    }
}

/// Experts ordered by how many rows they received, largest first (lower index first on
/// ties), so that spreading them over workers starts with the longest jobs.
func expertsBySize(_ start: [Int]) -> [Int] {
    let sizes = (0..<(start.count - 1)).map { start[$0 + 1] - start[$0] }
    return sizes.indices.sorted { a, b in sizes[a] != sizes[b] ? sizes[a] > sizes[b] : a < b }
}
