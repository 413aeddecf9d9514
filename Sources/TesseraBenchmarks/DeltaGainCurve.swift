import Foundation
import TesseraCore
import TesseraEngine
import TesseraLibrary
import TesseraProof

/// How much of a real update's held-out gain each delta encoding keeps, and at what size:
/// the update is a trained bundle (its deltas decoded: lossless gives the update exactly);
/// every setting re-encodes each expert as a contributor would submit it, decodes it as a
/// validator would, and evaluates the model on held-out (and background) windows. Sizes are
/// the delta files, headers included, against the experts in their stored dtype.
public struct DeltaGainCurve: Encodable, Sendable {
    public struct Row: Encodable, Sendable {
        public var encoding: String
        public var setting: String
        public var bytes: Int
        public var ratio: Double
        public var heldOutLoss: Double
        public var gainKept: Double
        public var backgroundRegression: Double?
        public var encodeSeconds: Double

        enum CodingKeys: String, CodingKey {
            case encoding, setting, bytes, ratio
            case heldOutLoss = "held_out_loss"
            case gainKept = "gain_kept"
            case backgroundRegression = "background_regression"
            case encodeSeconds = "encode_seconds"
        }
    }

    public var experts: Int
    /// Bytes of the updated experts as the library stores them (bf16 for the bundled base).
    public var expertBytes: Int
    public var baseHeldOutLoss: Double
    public var updatedHeldOutLoss: Double
    public var baseBackgroundLoss: Double?
    public var rows: [Row]

    enum CodingKeys: String, CodingKey {
        case experts, rows
        case expertBytes = "expert_bytes"
        case baseHeldOutLoss = "base_held_out_loss"
        case updatedHeldOutLoss = "updated_held_out_loss"
        case baseBackgroundLoss = "base_background_loss"
    }

    /// The settings measured when none are given: sparse at three densities, low-rank at
    /// four ranks with 4- and 8-bit factors, and lossless.
    public static let defaultSettings: [DeltaOptions] =
        [1.0 / 4, 1.0 / 16, 1.0 / 64].map { DeltaOptions(encoding: .sparse, density: $0) }
        + [2, 4, 8, 16].flatMap { r in [4, 8].map { DeltaOptions(encoding: .lowRank, rank: r, factorBits: $0) } }
        + [DeltaOptions(encoding: .lossless)]

    public static func run(library: ExpertLibrary, bundle: String, heldOut: TokenWindows, background: TokenWindows?,
                           settings: [DeltaOptions] = defaultSettings, matmul: MatmulPrecision = .machineDefault) throws -> DeltaGainCurve {
        guard heldOut.count > 0 else { throw LibraryError("\(heldOut.origin): no held-out windows") }
        let (_, updated) = try SubmissionBundle.verifyDecoding(bundle, library: library, requireCurrent: true)
        let ids = updated.keys.sorted()
        let model = try library.loadModel()
        func losses() throws -> (Double, Double?) {
            (mean(try windowLosses(model: model, windows: heldOut, matmul: matmul)),
             try background.map { mean(try windowLosses(model: model, windows: $0, matmul: matmul)) })
        }
        let base = try ids.map { try library.expertWeights($0).weights }
        let expertBytes = base.reduce(0) { $0 + $1.tensors.reduce(0) { $0 + $1.values.count * $1.dtype.byteSize } }
        let (baseLoss, baseBackground) = try losses()
        for (id, weights) in updated { try library.setExpert(id, weights, in: model) }
        let (updatedLoss, _) = try losses()
        let scratch = NSTemporaryDirectory() + "tessera-delta-curve-\(getpid())"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var rows: [Row] = []
        for options in settings {
            var bytes = 0
            var seconds = 0.0
            for (id, new) in updated.sorted(by: { $0.key < $1.key }) {
                let path = (scratch as NSString).appendingPathComponent("\(id.layer)-\(id.expert).safetensors")
                let started = Date()
                _ = try library.encodeDelta(id, new: new, options: options, to: path)
                seconds += Date().timeIntervalSince(started)
                bytes += (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
                try library.setExpert(id, try library.decodeDelta(path).weights, in: model)
            }
            let (loss, backgroundLoss) = try losses()
            let setting: String
            switch options.encoding {
            case .lossless: setting = "exact"
            case .sparse: setting = String(format: "density %.4g", options.density)
            case .lowRank: setting = "rank \(options.rank), \(options.factorBits)-bit factors"
            }
            rows.append(Row(encoding: options.encoding.rawValue, setting: setting, bytes: bytes, ratio: Double(expertBytes) / Double(max(bytes, 1)),
                            heldOutLoss: loss, gainKept: (baseLoss - loss) / (baseLoss - updatedLoss),
                            backgroundRegression: backgroundLoss.flatMap { b in baseBackground.map { b - $0 } },
                            encodeSeconds: seconds))
        }
        for (id, weights) in zip(ids, base) { try library.setExpert(id, weights, in: model) }
        return DeltaGainCurve(experts: ids.count, expertBytes: expertBytes, baseHeldOutLoss: baseLoss, updatedHeldOutLoss: updatedLoss,
                              baseBackgroundLoss: baseBackground, rows: rows)
    }

    public var text: String {
        var lines = [String(format: "trained update of %d experts (%d bytes as stored): held-out loss %.4f → %.4f", experts, expertBytes,
                            baseHeldOutLoss, updatedHeldOutLoss)]
        for r in rows {
            let regression = r.backgroundRegression.map { String(format: ", background %+.4f", $0) } ?? ""
            lines.append(String(format: "  %@ %@: %d bytes (%.1f× smaller), held-out loss %.4f, gain kept %.1f%%%@",
                                r.encoding as NSString, r.setting as NSString, r.bytes, r.ratio, r.heldOutLoss, 100 * r.gainKept, regression as NSString))
        }
        return lines.joined(separator: "\n")
    }
}
