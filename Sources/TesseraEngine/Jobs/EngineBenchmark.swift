import Foundation

public struct EngineBenchmarkResult: Codable, Sendable {
    public var sgemmGflops: Double
    public var evalTokensPerS: Double
    public var evalFractionOfSgemm: Double
    public var trainTokensPerS: Double
    public var trainFractionOfSgemm: Double
    public var peakRssBytes: Int
    public var modelFlopsPerToken: Double
    public var workers: Int
    public var shape: String

    enum CodingKeys: String, CodingKey {
        case sgemmGflops = "sgemm_gflops"
        case evalTokensPerS = "eval_tokens_per_s"
        case evalFractionOfSgemm = "eval_fraction_of_sgemm"
        case trainTokensPerS = "train_tokens_per_s"
        case trainFractionOfSgemm = "train_fraction_of_sgemm"
        case peakRssBytes = "peak_rss_bytes"
        case modelFlopsPerToken = "model_flops_per_token"
        case workers, shape
    }

    public func jsonString() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }

    public var text: String {
        """
        shape: \(shape)
        sgemm (2048×1024×512, \(workers) workers): \(String(format: "%.1f", sgemmGflops)) GFLOP/s
        eval:  \(String(format: "%.0f", evalTokensPerS)) tokens/s, model FLOP/s = \(String(format: "%.1f%%", 100 * evalFractionOfSgemm)) of sgemm
        sparse train step: \(String(format: "%.0f", trainTokensPerS)) tokens/s (\(String(format: "%.1f%%", 100 * trainFractionOfSgemm)) of sgemm, counting the FLOPs done)
        peak RSS: \(String(format: "%.1f", Double(peakRssBytes) / 1_048_576)) MiB
        """
    }
}

public enum EngineBenchmark {
    public static func run(repeats: Int) throws -> EngineBenchmarkResult {
        throw EngineError.invalidInput("not yet")
    }
}
