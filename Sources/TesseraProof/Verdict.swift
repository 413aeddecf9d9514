import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// A validator's signed decision on one submission, with everything needed to re-run it.
public struct Verdict: Codable, Sendable, Equatable {
    /// Format 2 names the unit of every float figure in its keys; format 1 files (the same
    /// fields under the keys in `formatOneKeys`) are still read and their signatures checked.
    public static let formatName = "tessera-verdict/2"
    public static let formatOne = "tessera-verdict/1"
    static let formatOneKeys = ["gain": "gain_nats_per_token", "regression": "regression_nats_per_token",
                                "held_out_losses": "held_out_losses_nats_per_token", "background_losses": "background_losses_nats_per_token"]

    public struct Item: Codable, Sendable, Equatable {
        public var layer: Int
        public var expert: Int
        public var base: String
        /// ‖Δ‖ / ‖expert‖.
        public var relativeNorm: Double
        enum CodingKeys: String, CodingKey { case layer, expert, base; case relativeNorm = "relative_norm" }
    }

    public struct Losses: Codable, Sendable, Equatable {
        public var base: [Double]
        public var candidate: [Double]
    }

    public var format: String
    public var submission: String
    public var contributor: String
    public var validator: String
    public var market: String
    public var domain: String
    public var round: String
    public var experts: [Item]
    public var policy: ProofPolicy
    /// Every expert's version in the base model ("L:E" → hash).
    public var baseVersions: [String: String]
    public var heldOutSHA256: String
    public var backgroundSHA256: String
    public var method: String
    public var seed: UInt64
    /// Held-out gain (base − candidate) and background regression (candidate − base), nats per token.
    public var gain: PairedBounds.Result?
    public var regression: PairedBounds.Result?
    public var gainLCBMicronats: Int64
    public var regressionUCBMicronats: Int64
    public var copyOf: String?
    /// Largest cosine between this delta and an earlier submission's in the round.
    public var maxCosine: Double?
    public var accept: Bool
    public var reason: String
    public var heldOutLosses: Losses?
    public var backgroundLosses: Losses?
    /// The matrix-product precision the losses were computed in (`MatmulPrecision`);
    /// absent in verdicts made before there was a choice, which were all fp32.
    public var matmul: String? = nil

    /// The precision a re-check must use.
    public var matmulPrecision: String { matmul ?? MatmulPrecision.fp32.rawValue }

    enum CodingKeys: String, CodingKey {
        case format, submission, contributor, validator, market, domain, round, experts, policy, method, seed, accept, reason
        case gain = "gain_nats_per_token"
        case regression = "regression_nats_per_token"
        case baseVersions = "base_versions"
        case heldOutSHA256 = "held_out_sha256"
        case backgroundSHA256 = "background_sha256"
        case gainLCBMicronats = "gain_lcb_micronats"
        case regressionUCBMicronats = "regression_ucb_micronats"
        case copyOf = "copy_of"
        case maxCosine = "max_cosine"
        case heldOutLosses = "held_out_losses_nats_per_token"
        case backgroundLosses = "background_losses_nats_per_token"
        case matmul
    }

    /// The signed bytes: the verdict in canonical JSON.
    public func canonicalBytes() throws -> [UInt8] {
        try JSONOutput.canonicalBytes(self)
    }

    /// Writes `{"verdict": …, "signature": hex}` atomically.
    public func save(signedBy key: ParticipantKey, to path: String) throws {
        guard key.publicHex == validator else { throw LibraryError("verdict names validator \(validator.prefix(16))…, not this key") }
        let bytes = try canonicalBytes()
        let signature = Hex.encode(try key.sign(bytes))
        let body = "{\"verdict\":" + String(decoding: bytes, as: UTF8.self) + ",\"signature\":\"" + signature + "\"}\n"
        try AtomicFile.write(Array(body.utf8), to: path)
    }

    /// Reads a verdict file and checks the validator's signature.
    public static func load(_ path: String) throws -> Verdict {
        guard let data = FileManager.default.contents(atPath: path) else { throw LibraryError("\(path): cannot read") }
        let json: JSONValue
        do { json = try JSONValue.parse(data) } catch { throw LibraryError("\(path): not valid JSON (\(error))") }
        guard let v = json["verdict"], let sigHex = json["signature"]?.stringValue, let sig = Hex.decode(sigHex) else {
            throw LibraryError("\(path): expected {\"verdict\": …, \"signature\": hex}")
        }
        var fields = v
        if v["format"]?.stringValue == formatOne, case let .object(members) = v {
            fields = .object(members.map { (formatOneKeys[$0.0] ?? $0.0, $0.1) })
        }
        let verdict: Verdict
        do { verdict = try StrictJSON.decode(Verdict.self, from: fields, file: path, rejectUnknownKeys: true) } catch {
            throw LibraryError("verdict fields: \(error)")
        }
        guard verdict.format == formatName || verdict.format == formatOne else {
            throw LibraryError("\(path): format \(verdict.format) is not \(formatName) (or the older \(formatOne))")
        }
        guard ParticipantKey.verify(signature: sig, of: v.canonicalBytes, publicHex: verdict.validator) else {
            throw LibraryError("\(path): signature does not verify for validator \(verdict.validator.prefix(16))…")
        }
        return verdict
    }
}

extension Verdict {
    /// The base versions as expert IDs, for pinning a re-check's model.
    public func pinnedVersions() throws -> [ExpertID: String] {
        var out: [ExpertID: String] = [:]
        for (k, v) in baseVersions {
            let parts = k.split(separator: ":")
            guard parts.count == 2, let l = Int(parts[0]), let e = Int(parts[1]) else { throw LibraryError("verdict base_versions key \(k) is not LAYER:EXPERT") }
            out[ExpertID(layer: l, expert: e)] = v
        }
        return out
    }
}

extension PairedBounds.Result {
    var lowerMicronats: Int64 { Int64((lower * 1e6).rounded(.down)) }
    var upperMicronats: Int64 { Int64((upper * 1e6).rounded(.up)) }
}
