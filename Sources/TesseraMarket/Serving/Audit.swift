import Foundation
import TesseraCore
import TesseraEngine
import TesseraProof

/// Re-runs a metered request on the same expert versions and checks what the operator
/// claimed: the receipt (its hash from the recomputed routing, the server's signature),
/// the metered gate mass per expert version, the price, and that each completion token is
/// what the request's sampling (temperature 0: the most likely token; otherwise the
/// seeded sampler) picks from the recomputed logits.
///
/// What it proves: for the sampled requests, the tokens were produced by the served
/// versions and the usage billed to each version is the routing those tokens cause, so an
/// inflated or redirected meter is caught on any sampled request. What it does not: that
/// unsampled requests are honest (the chance of missing k forged records among n with a
/// sample of s is about (1 − s/n)^k), that requests were not invented whole (a fabricated
/// prompt re-runs consistently; the receipt's signature only binds the server), or that the
/// period's total is complete (the receipts root binds the records, not their number to
/// real demand).
public enum Audit {
    public struct Finding: Codable, Sendable, Equatable {
        public var id: String
        public var ok: Bool
        public var problems: [String]
    }

    /// `decoder`: one already made for `served.model` whose context holds the record's
    /// tokens (an audit of many records makes one per model; its packed weights are kept).
    public static func check(_ r: MeterRecord, served: ServedModel, decoder reused: Decoder? = nil) throws -> Finding {
        var problems: [String] = []
        if r.versionSet != served.versionSetHash {
            problems.append("served on version set \(r.versionSet.prefix(12))…, the audit's model is \(served.versionSetHash.prefix(12))…")
        }
        guard r.promptTokens >= 1, r.completionTokens >= 0, r.tokens.count == r.promptTokens + r.completionTokens else {
            return Finding(id: r.id, ok: false, problems: problems + ["\(r.tokens.count) tokens do not make \(r.promptTokens) prompt + \(r.completionTokens) completion tokens"])
        }
        // The model read every token but the last one it chose.
        let fed = r.completionTokens > 0 ? Array(r.tokens.dropLast()) : r.tokens
        let decoder = reused.flatMap { $0.model === served.model && $0.maxContext >= fed.count ? $0 : nil }
            ?? Decoder(model: served.model, maxRows: 256, maxContext: fed.count)
        let cache = try decoder.makeCache(capacity: fed.count)
        let logits = try decoder.step([Decoder.Feed(cache: cache, tokens: fed)], allRows: true)[0]
        let V = served.model.config.vocabSize
        let receiptHash = RoutingReceipt.hash(versionSet: r.versionSet, tokens: r.tokens, choices: cache.choices)
        if receiptHash != r.receipt.hash { problems.append("the receipt's hash is not the routing of these tokens on these versions") }
        if !r.receipt.signatureVerifies { problems.append("the receipt's signature does not verify") }
        let usage = ExpertUsage.of(gateMass: cache.gateMass, versions: served.versions)
        if usage != r.usage {
            let claimed = r.usage.reduce(Int64(0)) { $0 &+ $1.usage }, actual = usage.reduce(Int64(0)) { $0 &+ $1.usage }
            problems.append("metered usage differs from the recomputed routing (\(claimed) units claimed, \(actual) recomputed)")
        }
        if MeterRecord.price(tokens: r.promptTokens + r.completionTokens, pricePer1k: r.pricePer1kTokens) != r.price {
            problems.append("price \(r.price) is not \(r.promptTokens + r.completionTokens) tokens at \(r.pricePer1kTokens) per 1000")
        }
        var sampler = TokenSampler(r.sampling)
        for i in r.promptTokens..<r.tokens.count {
            let row = logits[((i - 1) * V)..<(i * V)]
            let chosen = sampler.next(row).token
            if chosen != r.tokens[i] {
                problems.append("completion token \(i - r.promptTokens) is \(r.tokens[i]); the sampling gives \(chosen)")
                break
            }
        }
        return Finding(id: r.id, ok: problems.isEmpty, problems: problems)
    }

    /// Checks `sample` records of the meter, chosen by a seeded draw (all when fewer), each
    /// on the versions it was served on (those it named, or the library's current ones; a
    /// record served on a current set since replaced is reported as such).
    public static func run(market: String, library: String, sample: Int, seed: UInt64) throws -> [Finding] {
        try check(draw(try UsageMeter.records(market: market), sample: sample, seed: seed), library: library)
    }

    /// `sample` records drawn by a seeded shuffle (all when fewer): the same draw wherever
    /// it is made, so the server's sample for a seed is the one the auditor asked for.
    public static func draw(_ records: [MeterRecord], sample: Int, seed: UInt64) -> [MeterRecord] {
        var records = records
        var rng = SplitMix64(seed: seed)
        records.shuffle(using: &rng)
        return Array(records.prefix(max(0, sample)))
    }

    /// Re-runs each record on the library at the versions it was served on.
    public static func check(_ records: [MeterRecord], library: String) throws -> [Finding] {
        var models: [String: (served: ServedModel, decoder: Decoder)] = [:]
        let context = max(1, records.map(\.tokens.count).max() ?? 1)
        func add(_ served: ServedModel) { models[served.versionSetHash] = (served, Decoder(model: served.model, maxRows: 256, maxContext: context)) }
        let current = try ServedModel.load(library)
        add(current)
        return try records.map { r in
            // A request that named its versions is re-run on those (the library keeps every version).
            if models[r.versionSet] == nil, !r.versionChoices.isEmpty, let named = try? ServedModel.load(library, versions: r.versionChoices) {
                add(named)
            }
            let (served, decoder) = models[r.versionSet] ?? models[current.versionSetHash]!
            return try check(r, served: served, decoder: decoder)
        }
    }

    /// The bytes a participant signs to read a sample of the meter.
    public static func sampleRequestBytes(sample: Int, seed: UInt64) -> [UInt8] { Array("tessera-meter-sample/1|\(sample)|\(seed)".utf8) }
}
