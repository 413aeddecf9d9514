import Foundation
import TesseraCore
import TesseraEngine
import TesseraMarket
import TesseraProof

/// Generation on the reference shape as `../shared/bench/torch_peer_generate.py` and
/// `llama_cpp_peer.py` measure it: 64-token prompts, 128 new tokens, greedy, at batch 1
/// and batch 8. Prefill is timed alone; new tokens/s is B·N over (generation − prefill),
/// the peers' formula.
public struct GenerationBenchmarkResult: Codable, Sendable {
    public var generateBatch1TokensPerS: Double
    public var generateBatch8TokensPerS: Double
    public var prefillTokensPerS: Double
    public var prefillBatch8TokensPerS: Double
    public var kvCacheBytesPerToken: Int
    public var kvCacheNaiveBytesPerToken: Int
    /// Metering one request (receipt hash and signature, record appended and fsynced),
    /// per token of a 64 + 128-token request, and against the time to generate it.
    public var meterMicrosecondsPerRequest: Double
    public var meterNanosecondsPerToken: Double
    public var meterShareOfBatch1Generation: Double
    public var matmul: MatmulPrecision
    /// The weights' precision in memory: f32, or bf16 (frozen weights kept bf16, read
    /// through bf16 packed panels).
    public var weights: String
    public var shape: String
    /// With --profile: wall time per phase of the batch-1 decoding steps, seconds.
    public var profile: [String: Double]?
    enum CodingKeys: String, CodingKey {
        case generateBatch1TokensPerS = "generate_batch1_tokens_per_s", generateBatch8TokensPerS = "generate_batch8_tokens_per_s"
        case prefillTokensPerS = "prefill_tokens_per_s", prefillBatch8TokensPerS = "prefill_batch8_tokens_per_s"
        case kvCacheBytesPerToken = "kv_cache_bytes_per_token", kvCacheNaiveBytesPerToken = "kv_cache_naive_bytes_per_token"
        case meterMicrosecondsPerRequest = "meter_us_per_request", meterNanosecondsPerToken = "meter_ns_per_token"
        case meterShareOfBatch1Generation = "meter_share_of_batch1_generation"
        case matmul, weights, shape, profile
    }

    public var text: String {
        [shape, "matrix products: \(matmul.rawValue), weights in \(weights)",
         String(format: "prefill: %.0f tokens/s at batch 1, %.0f at batch 8 (64-token prompts)", prefillTokensPerS, prefillBatch8TokensPerS),
         String(format: "generate: %.1f new tokens/s at batch 1, %.1f at batch 8 (128 new tokens, greedy)",
                generateBatch1TokensPerS, generateBatch8TokensPerS),
         String(format: "metering: %.0f µs per request (%.0f ns per token, %.2f%% of generating it at batch 1)",
                meterMicrosecondsPerRequest, meterNanosecondsPerToken, 100 * meterShareOfBatch1Generation),
         "key/value cache: \(kvCacheBytesPerToken) bytes per token (every head's keys and values expanded: \(kvCacheNaiveBytesPerToken))"]
            .joined(separator: "\n")
            + (profile.map { p in "\nbatch-1 decoding, wall time per phase:\n" + p.sorted { $0.value > $1.value }
                .map { "  " + $0.key.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: "%7.3f s", $0.value) }.joined(separator: "\n") } ?? "")
    }
}

public enum GenerationBenchmark {
    public static let promptLength = 64
    public static let newTokens = 128

    /// (prefill seconds, total seconds) of the best of `repeats` runs at batch `b`.
    static func time(_ decoder: Decoder, batch b: Int, repeats: Int) throws -> (prefill: Double, total: Double) {
        let V = decoder.model.config.vocabSize
        var rng = SplitMix64(seed: 3)
        let prompts = (0..<b).map { _ in (0..<promptLength).map { _ in Int32(rng.next() % UInt64(V)) } }
        var best = (prefill: Double.infinity, total: Double.infinity)
        for _ in 0..<repeats {
            let caches = try prompts.map { try decoder.makeCache(capacity: $0.count + newTokens) }
            var samplers = prompts.map { _ in TokenSampler(SamplingParameters()) }
            let t0 = DispatchTime.now().uptimeNanoseconds
            var logits = try decoder.step(zip(caches, prompts).map { Decoder.Feed(cache: $0, tokens: $1) })
            let t1 = DispatchTime.now().uptimeNanoseconds
            for produced in 1...newTokens {
                let next = (0..<b).map { samplers[$0].next(logits[$0][...]).token }
                if produced == newTokens { break }
                logits = try decoder.step((0..<b).map { Decoder.Feed(cache: caches[$0], tokens: [next[$0]]) })
            }
            let t2 = DispatchTime.now().uptimeNanoseconds
            best.prefill = min(best.prefill, Double(t1 - t0) / 1e9)
            best.total = min(best.total, Double(t2 - t0) / 1e9)
        }
        return best
    }

    public static func run(repeats: Int, precision: MatmulPrecision, config: ModelConfig = EngineBenchmark.referenceConfig,
                           profile: Bool = false, bf16Weights: Bool = false) throws -> GenerationBenchmarkResult {
        var model = MoEModel(config: config)
        model.initializeRandomly(seed: 0)
        if bf16Weights {
            // As a bf16 checkpoint is loaded: its matrices stay bf16 in the mapped file,
            // which the model keeps mapped, so the directory can go once it is loaded.
            let saved = NSTemporaryDirectory() + "tessera-generate-bench-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: saved) }
            try model.save(directory: saved, dtype: .bf16)
            model = try MoEModel(directory: saved, keepBF16: true)
        }
        let decoder = Decoder(model: model, maxRows: 512, maxContext: promptLength + newTokens)
        decoder.matmul = precision
        _ = try time(decoder, batch: 1, repeats: 1)
        let one = try time(decoder, batch: 1, repeats: repeats)
        let eight = try time(decoder, batch: 8, repeats: repeats)
        var phases: [String: Double]?
        if profile {
            let timer = PhaseTimer.shared
            timer.reset()
            timer.enabled = true
            _ = try time(decoder, batch: 1, repeats: 1)
            timer.enabled = false
            phases = Dictionary(timer.report.map { ($0.phase, $0.seconds) }, uniquingKeysWith: +)
        }
        let meter = try meterCost(config: config, repeats: 200)
        let batch1Seconds = one.total
        let shape = "\(config.family.rawValue) V=\(config.vocabSize) H=\(config.hiddenSize) I=\(config.expertWidth) L=\(config.layers) "
            + "heads=\(config.heads)/\(config.kvHeads) E=\(config.experts) top-\(config.topK), \(promptLength)-token prompts, \(newTokens) new tokens"
        return GenerationBenchmarkResult(
            generateBatch1TokensPerS: Double(newTokens) / (one.total - one.prefill),
            generateBatch8TokensPerS: Double(8 * newTokens) / (eight.total - eight.prefill),
            prefillTokensPerS: Double(promptLength) / one.prefill,
            prefillBatch8TokensPerS: Double(8 * promptLength) / eight.prefill,
            kvCacheBytesPerToken: KVCache.bytesPerPosition(config: config),
            kvCacheNaiveBytesPerToken: KVCache.naiveBytes(config: config, capacity: 1),
            meterMicrosecondsPerRequest: meter * 1e6, meterNanosecondsPerToken: meter * 1e9 / Double(promptLength + newTokens),
            meterShareOfBatch1Generation: meter / batch1Seconds,
            matmul: precision, weights: bf16Weights ? "bf16" : "f32", shape: shape, profile: phases)
    }

    /// Seconds to meter one request of the benchmark's size: its receipt made and signed,
    /// its record (usage of every expert) appended and flushed to disk, best of `repeats`.
    static func meterCost(config c: ModelConfig, repeats: Int) throws -> Double {
        let dir = NSTemporaryDirectory() + "tessera-meter-bench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let meter = try UsageMeter(market: dir)
        let key = ParticipantKey.generate()
        var rng = SplitMix64(seed: 9)
        let tokens = (0..<(promptLength + newTokens)).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        let choices = (0..<(tokens.count * c.layers * c.topK)).map { _ in Int32(rng.next() % UInt64(c.experts)) }
        let usage = (0..<c.layers).flatMap { l in (0..<c.experts).map { ExpertUsage(layer: l, expert: $0, version: String(repeating: "ab", count: 32), usage: 12_345) } }
        var best = Double.infinity
        for i in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let receipt = try RoutingReceipt.make(versionSet: String(repeating: "cd", count: 32), tokens: tokens, choices: choices, key: key)
            try meter.append(MeterRecord(id: "cmpl-\(i)", at: 0, period: "p", domain: "es", apiKey: "k", promptTokens: promptLength,
                                         completionTokens: newTokens, price: 1, pricePer1kTokens: 1, versionSet: receipt.hash, usage: usage,
                                         receipt: receipt, tokens: tokens, sampling: SamplingParameters()))
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return best
    }
}
