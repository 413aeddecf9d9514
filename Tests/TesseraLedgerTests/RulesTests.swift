import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger

@Suite struct AllocationTests {
    @Test func largestRemainderIsExactAndDeterministic() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<2_000 {
            let n = Int(rng.next() % 9) + 1
            let total = Int64(rng.next() % 10_000_000)
            let weights = (0..<n).map { (key: "k\($0)", weight: Int64(rng.next() % 1_000)) }
            let out = Allocation.largestRemainder(total, weights)
            let W = weights.reduce(0) { $0 + $1.weight }
            #expect(out.reduce(0) { $0 + $1.amount } == (W > 0 ? total : 0))
            for (o, w) in zip(out, weights) {
                // Each share is its exact quota rounded down or up.
                let quota = Double(total) * Double(w.weight) / Double(max(W, 1))
                #expect(Double(o.amount) >= quota.rounded(.down) && Double(o.amount) <= quota.rounded(.up))
            }
            #expect(out.map(\.amount) == Allocation.largestRemainder(total, weights).map(\.amount))
        }
        // Ties go to the smaller key.
        #expect(Allocation.largestRemainder(1, [("b", 1), ("a", 1)]).map(\.amount) == [0, 1])
        // No overflow near the top of Int64.
        let big = Allocation.largestRemainder(Int64.max / 2, [("a", Int64.max / 3), ("b", Int64.max / 3)])
        #expect(big.reduce(0) { $0 + $1.amount } == Int64.max / 2)
    }

    @Test func weightedMedianFollowsStake() {
        #expect(Allocation.weightedMedian([("a", 10, 1), ("b", 20, 1), ("c", 1_000_000, 1)]) == 20)
        #expect(Allocation.weightedMedian([("a", 10, 5), ("b", 20, 1), ("c", 30, 1)]) == 10)
        #expect(Allocation.weightedMedian([]) == nil)
    }
}

@Suite struct PolicyTests {
    @Test func shippedPolicyLoads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let p = try MarketPolicy.load(root + "/Market/market.toml")
        #expect(p.quorum == 2 && p.genesisUnits == 1_000_000 && p.validatorFeeBps == 500)
        let d = try DomainPolicy.loadAll(root + "/Market/domains")
        #expect(d.map(\.name) == ["de", "es", "it"])
    }

    static let base = """
        [proof_of_loss]
        confidence = 0.95
        min_gain_micronats = 1
        background_tolerance_micronats = 1
        delta_norm_bound = 0.1
        copy_threshold = 0.9
        quorum = 2
        [shares]
        genesis_units = 10
        doubling_gain_micronats = 10
        max_mint_bps = 10
        [fees]
        validator_bps = 1
        operator_bps = 1
        [claims]
        max_claimants_per_expert = 1
        """

    /// (text replaced in the valid policy, its replacement, what the error must say)
    @Test(arguments: [
        ("validator_bps = 1", "validator_bps = 20000", "fees.validator_bps = 20000 is outside 0...10000"),
        ("validator_bps = 1", "validator_bps = \"x\"", "fees.validator_bps must be an integer"),
        ("validator_bps = 1\noperator_bps = 1", "validator_bps = 6000\noperator_bps = 6000", "exceeds 10000"),
        ("quorum = 2", "quorum = 0", "proof_of_loss.quorum = 0 is outside"),
        ("[claims]", "[extra]\nx = 1\n[claims]", "unknown table [extra]"),
        ("max_mint_bps = 10", "max_mint_bps = 10\nsurprise = 1", "unknown key shares.surprise"),
        ("[fees]", "[fees", ":12: unsupported table header"),
        ("validator_bps = 1", "validator_bps = 1\nvalidator_bps = 2", ":14: key validator_bps defined twice"),
        ("confidence = 0.95\n", "", "missing proof_of_loss.confidence"),
    ])
    func badPoliciesNameTheKeyAndValue(_ old: String, _ new: String, _ message: String) throws {
        _ = try MarketPolicy.parse(Self.base, file: "m.toml")
        let text = Self.base.replacingOccurrences(of: old, with: new)
        #expect(text != Self.base)
        #expect { try MarketPolicy.parse(text, file: "m.toml") } throws: { error in
            "\(error)".contains("m.toml") && "\(error)".contains(message)
        }
    }
}
