import Foundation
import TesseraCore
import TesseraEngine
import TesseraProof

/// One served request as metered: what it cost, what each expert version served, and the
/// receipt the client got. The tokens are kept so that an audit can run it again.
public struct MeterRecord: Codable, Sendable, Equatable {
    public var id: String
    public var at: Int64
    public var period: String
    public var domain: String
    /// The first 16 hex digits of the API key's hash.
    public var apiKey: String
    public var promptTokens: Int
    public var completionTokens: Int
    /// Minor units: ⌈tokens · price per 1k / 1000⌉.
    public var price: Int64
    /// The key's price per thousand tokens.
    public var pricePer1kTokens: Int64
    public var versionSet: String
    /// The versions the request named ("LAYER:EXPERT=HASH"; empty: the current ones).
    public var versionChoices: [String]
    public var usage: [ExpertUsage]
    public var receipt: RoutingReceipt
    /// Every token the model read (prompt, then completion tokens fed back) and the last one it chose.
    public var tokens: [Int32]
    public var sampling: SamplingParameters
    enum CodingKeys: String, CodingKey {
        case id, at, period, domain, price, usage, receipt, tokens, sampling, pricePer1kTokens = "price_per_1k_tokens"
        case apiKey = "api_key", promptTokens = "prompt_tokens", completionTokens = "completion_tokens", versionSet = "version_set", versionChoices = "version_choices"
    }

    public init(id: String, at: Int64, period: String, domain: String, apiKey: String, promptTokens: Int, completionTokens: Int,
                price: Int64, pricePer1kTokens: Int64, versionSet: String, versionChoices: [String] = [], usage: [ExpertUsage], receipt: RoutingReceipt, tokens: [Int32], sampling: SamplingParameters) {
        self.id = id; self.at = at; self.period = period; self.domain = domain; self.apiKey = apiKey
        self.promptTokens = promptTokens; self.completionTokens = completionTokens; self.price = price; self.pricePer1kTokens = pricePer1kTokens; self.versionSet = versionSet
        self.versionChoices = versionChoices
        self.usage = usage; self.receipt = receipt; self.tokens = tokens; self.sampling = sampling
    }

    /// The price of `tokens` at `pricePer1k`, rounded up; nil when it does not fit.
    public static func price(tokens: Int, pricePer1k: Int64) -> Int64? {
        let (product, overflow) = Int64(tokens).multipliedReportingOverflow(by: pricePer1k)
        guard !overflow, tokens >= 0 else { return nil }
        return (product + 999) / 1000
    }

    /// Periods are named by their start: "2026-12-01T00:00:00Z" for a day.
    public static func period(at: Int64, seconds: Int64) -> String {
        UTCTime.string(at - ((at % seconds) + seconds) % seconds)
    }
}

/// MARKET/serving/meter.jsonl, one record per line, each appended and flushed to disk
/// (fsync) before the response leaves: a killed server has billed nothing it did not
/// store. A torn last line (killed mid-write) is skipped on reading.
public final class UsageMeter: @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private let descriptor: Int32

    public static func path(market: String) -> String { (market as NSString).appendingPathComponent("serving/meter.jsonl") }

    public init(market: String) throws {
        path = Self.path(market: market)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw CoreError("\(path): cannot be opened for appending (errno \(errno))") }
    }

    deinit { close(descriptor) }

    public func append(_ record: MeterRecord) throws {
        let line = Array((try JSONOutput.compact(record) + "\n").utf8)
        try lock.withLock {
            var written = 0
            while written < line.count {
                let n = line[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                guard n > 0 else { throw CoreError("\(path): write failed (errno \(errno))") }
                written += n
            }
            guard fsync(descriptor) == 0 else { throw CoreError("\(path): fsync failed (errno \(errno))") }
        }
    }

    /// Every whole record in the file, in order.
    public static func records(market: String) throws -> [MeterRecord] {
        let path = path(market: market)
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var out: [MeterRecord] = []
        for line in data.split(separator: UInt8(ascii: "\n")) {
            guard let record = try? StrictJSON.decode(MeterRecord.self, from: Data(line), file: path, rejectUnknownKeys: true) else { continue }
            out.append(record)
        }
        return out
    }
}
