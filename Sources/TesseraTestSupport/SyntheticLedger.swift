import TesseraCore
import TesseraLedger

/// A synthetic market for the ledger's benchmark and tests: 50 contributors, 3 validators,
/// 64 experts; claims, submissions, three verdicts each, merges that mint units, and
/// revenue events paying every holder.
public enum SyntheticLedger {
    /// The policy of the synthetic market.
    public static let policy = MarketPolicy(quorum: 3, minGainMicronats: 100, genesisUnits: 1_000_000, doublingGainMicronats: 1_000_000,
                                            maxMintBps: 5_000, validatorFeeBps: 500, operatorFeeBps: 200, maxClaimantsPerExpert: 3)

    /// About `count` signed actions of a busy market, and one contributor who owns shares.
    public static func actions(count: Int) throws -> (actions: [SignedAction], owner: String) {
        let op = ParticipantKey.generate()
        let contributors = (0..<50).map { _ in ParticipantKey.generate() }
        let validators = (0..<3).map { _ in ParticipantKey.generate() }
        let experts = (0..<8).flatMap { l in (0..<8).map { ExpertID(layer: l, expert: $0) } }
        func h(_ s: String) -> String { ContentHash.sha256(Array(s.utf8)) }
        var t: Int64 = 1_000_000
        var plain: [(LedgerAction, ParticipantKey)] = []
        plain.append((.genesis(.init(at: t, publisher: op.publicHex, experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert, version: h("base\($0)")) }, policySHA256: h("p"))), op))
        plain.append((.openDomain(.init(at: t, name: "es")), op))
        for c in contributors { plain.append((.register(.init(at: t, key: c.publicHex, roles: [.contributor], stake: 0)), op)) }
        for (i, v) in validators.enumerated() { plain.append((.register(.init(at: t, key: v.publicHex, roles: [.validator], stake: Int64(100 + i))), op)) }
        plain.append((.openRound(.init(at: t, round: "r", domain: "es", experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }, closesAt: Int64.max / 2)), op))
        var current = Dictionary(uniqueKeysWithValues: experts.map { ($0, h("base\($0)")) })
        var i = 0
        while plain.count < count {
            let e = experts[i % experts.count], c = contributors[i % contributors.count]
            t += 10
            let bundle = h("bundle\(i)")
            plain.append((.claim(.init(at: t, round: "r", experts: [ExpertRef(layer: e.layer, expert: e.expert)], expiresAt: t + 5)), c))
            plain.append((.submit(.init(at: t + 1, round: "r", bundle: bundle, bundleSignature: "00", experts: [ExpertRef(layer: e.layer, expert: e.expert, version: current[e])])), c))
            for (j, v) in validators.enumerated() {
                plain.append((.verdict(.init(at: t + 2, submission: bundle, gainLCBMicronats: 1_000 + Int64((i * 7 + j * 13) % 500), regressionUCBMicronats: 5, accept: true, reason: "ok")), v))
            }
            let version = h("v\(i)")
            plain.append((.newVersion(.init(at: t + 3, layer: e.layer, expert: e.expert, version: version, parent: current[e]!, submissions: [bundle])), op))
            current[e] = version
            if i % 5 == 4 {
                let used = (0..<4).map { experts[(i + $0 * 16) % experts.count] }
                plain.append((.revenue(.init(at: t + 4, domain: "es", period: "p\(i)", amount: 1_000_003 + Int64(i),
                                             usage: used.map { .init(layer: $0.layer, expert: $0.expert, version: current[$0]!, usage: Int64(10 + ($0.expert * 3) % 7)) })), op))
            }
            i += 1
        }
        // Signing is the clients' work, spread over both cores here.
        var signed = [SignedAction?](repeating: nil, count: plain.count)
        signed.withUnsafeMutableBufferPointer { buf in
            let out = SlotWriter(buf.baseAddress!)
            Parallel.parts(plain.count) { _, range in
                for k in range { out.set(k, try? SignedAction(plain[k].0, key: plain[k].1)) }
            }
        }
        return (signed.map { $0! }, contributors[0].publicHex)
    }
}
