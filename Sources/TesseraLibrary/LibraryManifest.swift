import Foundation
import TesseraEngine
import TesseraCore

/// manifest.json of an expert library: where every source tensor lives, and the chain
/// of versions of every routed expert. Written last and atomically, so a library on disk
/// is always the state before or after an operation.
public struct LibraryManifest: Codable, Sendable, Equatable {
    public static let formatName = "tessera-library/1"

    public struct SourceFile: Codable, Sendable, Equatable {
        public var name: String
        /// Tensor names of this file in its data order.
        public var tensors: [String]
    }

    /// Where a source tensor is stored.
    public enum Placement: String, Codable, Sendable {
        /// In the trunk shard.
        case trunk
        /// In the shard of expert (layer, expert).
        case expert
        /// A fused tensor of a layer, whose slice e is stored in expert (layer, e)'s shard.
        case expertSlices = "expert_slices"
    }

    public struct TensorEntry: Codable, Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var placement: Placement
        public var layer: Int?
        public var expert: Int?
        /// Set when this tensor is half of an MXFP4-stored weight (gpt-oss experts as
        /// released): the weight it encodes, which half, and the weight's shape.
        public var mxfp4: MXFP4Part? = nil
    }

    /// An MXFP4 weight W [E, in, out] is kept as its source's two U8 tensors, each sliced
    /// by expert like any fused tensor, so the base versions keep their original bytes.
    public struct MXFP4Part: Codable, Sendable, Equatable {
        public enum Half: String, Codable, Sendable { case blocks, scales }
        public var weight: String
        public var half: Half
        public var weightShape: [Int]

        enum CodingKeys: String, CodingKey {
            case weight, half
            case weightShape = "weight_shape"
        }
    }

    public struct ExpertVersion: Codable, Sendable, Equatable {
        /// SHA-256 of the shard file, which is also its name.
        public var hash: String
        public var parent: String?
        /// The submissions (or other records) merged into this version.
        public var producedBy: [String]
        /// What made it: "split" for the base, "delta" for an applied update.
        public var origin: String

        enum CodingKeys: String, CodingKey {
            case hash, parent, origin
            case producedBy = "produced_by"
        }
    }

    public struct ExpertEntry: Codable, Sendable, Equatable {
        public var layer: Int
        public var expert: Int
        /// Oldest first; the last is the current version.
        public var versions: [ExpertVersion]
        public var id: ExpertID { ExpertID(layer: layer, expert: expert) }
        public var head: ExpertVersion { versions[versions.count - 1] }
    }

    public var format: String
    public var modelType: String
    public var expertLayout: ExpertLayout
    /// SHA-256 of config.json, which is kept beside the manifest byte for byte.
    public var configSHA256: String
    public var sourceFiles: [SourceFile]
    public var tensors: [TensorEntry]
    public var trunk: String
    public var experts: [ExpertEntry]
    /// SHA-256 of the tokenizer.json the checkpoint came with (kept beside the manifest);
    /// nil for a byte-vocabulary model. Token files must have been made with it.
    public var tokenizerSHA256: String? = nil

    enum CodingKeys: String, CodingKey {
        case format, tensors, trunk, experts
        case tokenizerSHA256 = "tokenizer_sha256"
        case modelType = "model_type"
        case expertLayout = "expert_layout"
        case configSHA256 = "config_sha256"
        case sourceFiles = "source_files"
    }

    public func entry(_ id: ExpertID) -> ExpertEntry? {
        experts.first { $0.layer == id.layer && $0.expert == id.expert }
    }

    func encoded() throws -> [UInt8] { try JSONOutput.pretty(self) }

    /// A file name with no directory part, not hidden, ending in `.safetensors`.
    static func isPlainSafetensorsName(_ name: String) -> Bool {
        name.hasSuffix(".safetensors") && name.count > ".safetensors".count && name.count <= 255 && !name.hasPrefix(".")
            && !name.contains("/") && !name.contains("\\") && !name.unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{7F}" }
    }

    /// Structural checks, so a hand-edited or damaged manifest fails on open with the
    /// field named instead of misbehaving later.
    func validate(file: String) throws {
        guard format == Self.formatName else {
            throw LibraryError("\(file): format \"\(format)\" is not \(Self.formatName)")
        }
        guard ContentHash.isValid(trunk), ContentHash.isValid(configSHA256) else {
            throw LibraryError("\(file): trunk or config_sha256 is not a SHA-256 hex digest")
        }
        var seen = Set<ExpertID>()
        for e in experts {
            guard seen.insert(e.id).inserted else { throw LibraryError("\(file): expert \(e.id) is listed twice") }
            guard !e.versions.isEmpty else { throw LibraryError("\(file): expert \(e.id) has no version") }
            for (i, v) in e.versions.enumerated() {
                guard ContentHash.isValid(v.hash) else { throw LibraryError("\(file): expert \(e.id) version \(i) hash \"\(v.hash)\" is not a SHA-256 hex digest") }
                if i > 0, v.parent != e.versions[i - 1].hash {
                    throw LibraryError("\(file): expert \(e.id) version \(v.hash.prefix(12)) names parent \(v.parent ?? "none") instead of \(e.versions[i - 1].hash.prefix(12))")
                }
            }
        }
        // Source file names become paths when a checkpoint is assembled: plain names of
        // safetensors files only, each once, and each tensor in one file.
        var fileNames = Set<String>()
        for f in sourceFiles {
            guard Self.isPlainSafetensorsName(f.name) else {
                throw LibraryError("\(file): source file name \"\(f.name.prefix(80))\" is not a plain NAME.safetensors file name")
            }
            guard fileNames.insert(f.name).inserted else { throw LibraryError("\(file): source file \(f.name) is listed twice") }
        }
        var placed = Set<String>()
        for name in sourceFiles.flatMap(\.tensors) where !placed.insert(name).inserted {
            throw LibraryError("\(file): tensor \(name.prefix(80)) is in more than one source file")
        }
        let named = placed
        for t in tensors {
            guard named.contains(t.name) else { throw LibraryError("\(file): tensor \(t.name) belongs to no source file") }
            switch t.placement {
            case .trunk: break
            case .expert:
                guard let l = t.layer, let x = t.expert, seen.contains(ExpertID(layer: l, expert: x)) else {
                    throw LibraryError("\(file): tensor \(t.name) names an expert the manifest does not list")
                }
            case .expertSlices:
                guard let l = t.layer, let count = t.shape.first, count > 0,
                      (0..<count).allSatisfy({ seen.contains(ExpertID(layer: l, expert: $0)) }) else {
                    throw LibraryError("\(file): tensor \(t.name) names layer slices the manifest does not list")
                }
            }
            if let part = t.mxfp4 {
                let w = part.weightShape
                guard t.placement == .expertSlices, t.dtype == .u8, w.count == 3, w.allSatisfy({ $0 > 0 }), w[1] % 32 == 0,
                      t.shape == (part.half == .blocks ? MXFP4.blocksShape(w) : MXFP4.scalesShape(w)) else {
                    throw LibraryError("\(file): tensor \(t.name) is not the MXFP4 \(part.half.rawValue) of a weight of shape \(w) sliced by expert")
                }
                let other: MXFP4Part.Half = part.half == .blocks ? .scales : .blocks
                guard tensors.contains(where: { $0.mxfp4 == MXFP4Part(weight: part.weight, half: other, weightShape: w) && $0.layer == t.layer }) else {
                    throw LibraryError("\(file): MXFP4 weight \(part.weight) has its \(part.half.rawValue) but no \(other.rawValue)")
                }
            }
        }
    }
}
