import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// A contributor's work: fine-tune exactly the selected experts on its own data, with
/// everything else frozen, and package the result as a signed bundle of deltas.
public enum Contribution {
    public struct Request {
        public var experts: [ExpertID]
        public var data: TokenWindows
        /// Optional windows the contributor keeps aside to watch its own progress.
        public var heldOut: TokenWindows?
        public var options: TrainingOptions
        /// Load only the selected experts (plus, per layer, enough others to route top-k).
        public var partialResidency: Bool
        public var delta: DeltaOptions
        public var market: String
        public var domain: String
        public var round: String
        public var matmul: MatmulPrecision
        /// `Trainer.recomputeActivations` (nil: only when keeping them would not fit).
        public var recomputeActivations: Bool?
        public init(experts: [ExpertID], data: TokenWindows, heldOut: TokenWindows?, options: TrainingOptions, partialResidency: Bool,
                    delta: DeltaOptions, market: String, domain: String, round: String, matmul: MatmulPrecision = .machineDefault) {
            self.experts = experts; self.data = data; self.heldOut = heldOut; self.options = options
            self.partialResidency = partialResidency; self.delta = delta; self.market = market; self.domain = domain; self.round = round
            self.matmul = matmul
        }
    }

    public struct Report: Codable, Sendable {
        public var bundle: String
        public var experts: [ExpertID]
        public var training: TrainingReport
        public var deltaBytes: Int
        public var float32Bytes: Int
        enum CodingKeys: String, CodingKey {
            case bundle, experts, training
            case deltaBytes = "delta_bytes"
            case float32Bytes = "float32_bytes"
        }
    }

    /// The resident set for partial residency: the selected experts and, in each sparse
    /// layer with fewer than top-k of them, the lowest-numbered others to make up top-k.
    public static func residentSet(_ experts: [ExpertID], config: ModelConfig) -> Set<ExpertID> {
        var set = Set(experts)
        for l in 0..<config.layers where config.sparseLayers[l] {
            var e = 0
            while set.filter({ $0.layer == l }).count < config.topK && e < config.experts {
                set.insert(ExpertID(layer: l, expert: e))
                e += 1
            }
        }
        return set
    }

    /// Trains and writes the bundle into `out` (training state in `out/training-state.safetensors`,
    /// so a killed run resumes where its last checkpoint left it).
    public static func run(_ r: Request, library: ExpertLibrary, key: ParticipantKey, out: String, progress: Bool) throws -> Report {
        guard !r.experts.isEmpty else { throw LibraryError("no experts to train") }
        try r.data.requireVocabulary(of: library)
        try r.heldOut?.requireVocabulary(of: library)
        let config = try library.config()
        let model = try library.loadModel(resident: r.partialResidency ? residentSet(r.experts, config: config) : nil)
        let trainable = try TrainableSet.experts(r.experts, in: model.layout)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let trainer = try Trainer(model: model, trainable: trainable, options: r.options, train: r.data, heldOut: r.heldOut,
                                  statePath: (out as NSString).appendingPathComponent("training-state.safetensors"), matmul: r.matmul)
        trainer.recomputeActivations = r.recomputeActivations
        let report = try trainer.run(progress: progress)
        let scratch = (out as NSString).appendingPathComponent("encoded")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var paths: [String] = []
        var fp32 = 0
        // An update trained through adapters has exactly their rank: a low-rank delta of that
        // rank carries it whole (up to its factors' quantization).
        var delta = r.delta
        if let rank = r.options.lowRank, delta.encoding == .lowRank { delta.rank = rank }
        for id in r.experts.sorted() {
            let path = (scratch as NSString).appendingPathComponent("\(id.layer)-\(id.expert).safetensors")
            let (header, _) = try library.encodeDelta(id, new: try library.expertWeights(id, from: model), options: delta, to: path)
            fp32 += header.float32Bytes
            paths.append(path)
        }
        // The model reads as W₀ + B·A only while the trainer's adapters live.
        withExtendedLifetime(trainer) {}
        let training: JSONValue = try JSONValueEncoder().encode(TrainingSummary(options: r.options, dataSHA256: r.data.contentHash,
                                                                                finalLoss: report.history.last?.trainLoss ?? 0))
        let bundle = try SubmissionBundle.create(key: key, market: r.market, domain: r.domain, round: r.round, deltas: paths,
                                                 training: training, library: library, into: out)
        return Report(bundle: out, experts: r.experts.sorted(), training: report, deltaBytes: bundle.items.reduce(0) { $0 + $1.size },
                      float32Bytes: fp32)
    }

    struct TrainingSummary: Codable {
        var options: TrainingOptions
        var dataSHA256: String
        var finalLoss: Double
        enum CodingKeys: String, CodingKey { case options; case dataSHA256 = "data_sha256"; case finalLoss = "final_loss" }
    }
}
