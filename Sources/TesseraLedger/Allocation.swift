/// Integer allocation rules. No floating point decides a unit or a minor unit.
public enum Allocation {
    /// Splits `total` over keys in proportion to their non-negative weights, exactly:
    /// each gets ⌊total·w/W⌋, and the remaining units go one each to the largest
    /// remainders (total·w mod W), ties broken by key order. Sums to `total` whenever
    /// some weight is positive; all zero otherwise.
    /// Weights summing past Int64.max are refused (`LedgerError.refused`).
    public static func largestRemainder<K: Comparable>(_ total: Int64, _ weights: [(key: K, weight: Int64)]) throws -> [(key: K, amount: Int64)] {
        let W = try CheckedMath.sum(weights.map(\.weight), "the sum of the weights")
        guard total > 0, W > 0 else { return weights.map { ($0.key, 0) } }
        var out: [(key: K, amount: Int64, rem: Int64)] = weights.map { k, w in
            let product = total.multipliedFullWidth(by: w)
            let (q, r) = W.dividingFullWidth(product)
            return (k, q, r)
        }
        var left = total - out.reduce(0) { $0 + $1.amount }
        let order = out.indices.sorted { a, b in out[a].rem != out[b].rem ? out[a].rem > out[b].rem : out[a].key < out[b].key }
        for i in order where left > 0 {
            out[i].amount += 1
            left -= 1
        }
        return out.map { ($0.key, $0.amount) }
    }

    /// Stake-weighted lower median: the smallest value whose cumulative stake (values
    /// ascending, ties by key) reaches half the total stake. One validator cannot move it
    /// past the others by reporting an extreme figure.
    /// Stakes summing past Int64.max are refused.
    public static func weightedMedian(_ items: [(key: String, value: Int64, stake: Int64)]) throws -> Int64? {
        let total = try CheckedMath.sum(items.map(\.stake), "the validators' stakes")
        guard total > 0 else { return nil }
        let sorted = items.sorted { ($0.value, $0.key) < ($1.value, $1.key) }
        var acc: Int64 = 0
        for item in sorted {
            acc += item.stake  // at most total
            if acc >= total - acc { return item.value }
        }
        return sorted.last?.value
    }
}
