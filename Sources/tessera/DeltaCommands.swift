import ArgumentParser
import Foundation
import TesseraBenchmarks
import TesseraClient
import TesseraEngine
import TesseraLibrary
import TesseraProof
import TesseraCore

struct Delta: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode, decode, apply and inspect expert deltas.",
        subcommands: [Encode.self, Decode.self, Apply.self, Inspect.self, DeltaBench.self])

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Encode an expert's new weights against its current library version.")
        @Option(help: "Library directory.") var library: String
        @Option(help: "The expert, LAYER:EXPERT.") var expert: String
        @Option(help: "The expert's new weights: a Hugging Face checkpoint directory, or a delta file of this expert (re-encoded).") var from: String
        @Option(help: "Output delta file.") var out: String
        @Option(help: "Delta encoding.") var encoding = DeltaHeader.Encoding.sparse
        @Option(help: "Sparse: fraction of each chunk's entries kept.") var density = 1.0 / 64
        @Option(help: "Sparse: elements per chunk (≤ 4096).") var chunk = 4096
        @Option(help: "Low-rank: components per tensor.") var rank = 4
        @Option(name: .customLong("factor-bits"), help: "Low-rank: bits per factor value (4 or 8).") var factorBits = 8
        @Option(name: .customLong("residual-in"), help: "Lossy encodings: error-feedback residual from the previous round.") var residualIn: String?
        @Option(name: .customLong("residual-out"), help: "Lossy encodings: write the new residual here.") var residualOut: String?
        @Flag(help: "Print one JSON object.") var json = false

        var options: DeltaOptions { DeltaOptions(encoding: encoding, density: density, chunk: chunk, rank: rank, factorBits: factorBits) }

        func validate() throws {
            if let problem = options.problem { throw ValidationError(problem) }
        }

        func run() throws {
            let enc = encoding
            let lib = try ExpertLibrary(directory: library)
            let id = try singleExpert(expert)
            var isDirectory: ObjCBool = false
            let new: ExpertWeights
            if FileManager.default.fileExists(atPath: from, isDirectory: &isDirectory), !isDirectory.boolValue {
                let (header, weights) = try lib.decodeDelta(from)
                guard header.id == id else { throw ValidationError("\(from) is a delta of expert \(header.id), not \(id)") }
                new = weights
            } else {
                new = try lib.expertWeights(id, fromCheckpoint: from)
            }
            let (header, stats) = try lib.encodeDelta(id, new: new, options: options, to: out, residualIn: residualIn, residualOut: residualOut)
            if json { print(try jsonString(stats)); return }
            print("delta for expert \(id) against \(header.base.prefix(12)) (\(enc.rawValue)): \(stats.compressedBytes) bytes, "
                + String(format: "%.1f× smaller than the fp32 expert (%d bytes); relative L2 error %.3g, max abs error %.3g",
                         stats.ratio, stats.float32Bytes, stats.relativeL2, stats.maxAbs))
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the weights a delta describes (shard tensor names) without changing the library.")
        @Option(help: "Library directory.") var library: String
        @Option(help: "Delta file.") var delta: String
        @Option(help: "Output safetensors file.") var out: String

        func run() throws {
            let lib = try ExpertLibrary(directory: library)
            let (header, weights) = try lib.decodeDelta(delta)
            try SafetensorsWriter.write(weights.tensors.map { TensorRecord(name: $0.name, shape: $0.shape, floats: $0.values, as: $0.dtype) }, to: out)
            print("wrote expert \(header.id) (\(weights.tensors.count) tensors) to \(out)")
        }
    }

    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a delta's result the expert's new current version.")
        @Option(help: "Library directory.") var library: String
        @Option(help: "Delta file.") var delta: String
        @Option(name: .customLong("produced-by"), help: "Submission that produced this version (repeatable).") var producedBy: [String] = []

        func run() throws {
            let lib = try ExpertLibrary(directory: library)
            let hash = try lib.applyDelta(delta, producedBy: producedBy)
            print("new version \(hash)")
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Describe a delta: expert, base, encoding, sizes and ratio to fp32.")
        @Argument(help: "Delta file.") var delta: String
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            let (file, header) = try DeltaCodec.read(delta)
            let compressed = header.tensors.reduce(0) { $0 + (file.tensors[$1.name]?.byteCount ?? 0) }
            if json {
                struct Out: Encodable { var header: DeltaHeader; var compressed_bytes: Int; var float32_bytes: Int; var ratio: Double }
                print(try jsonString(Out(header: header, compressed_bytes: compressed, float32_bytes: header.float32Bytes,
                                         ratio: Double(header.float32Bytes) / Double(max(compressed, 1)))))
                return
            }
            print("expert \(header.id), base \(header.base), \(header.encoding.rawValue), model \(header.modelType)")
            for t in header.tensors {
                let z = file.tensors[t.name]?.byteCount ?? 0
                print("  \(t.name) \(t.dtype.rawValue) \(t.shape): \(t.rawBytes) payload bytes, \(z) compressed"
                    + (t.chunk.map { ", chunk \($0) keep \(t.keep ?? 0)" } ?? ""))
            }
            print(String(format: "total %d bytes, %.1f× smaller than the fp32 expert (%d bytes)",
                         compressed, Double(header.float32Bytes) / Double(max(compressed, 1)), header.float32Bytes))
        }
    }

    struct DeltaBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench",
            abstract: "Measure delta size and encode/decode speed on a synthetic update, and the gain each encoding keeps of a trained update (--bundle).")
        @Option(help: "Expert width and hidden size of the synthetic expert.") var width = 1024
        @Option var hidden = 512
        @Option(help: "Sparse density.") var density = 1.0 / 64
        @Option(help: "A trained bundle (lossless deltas carry its update exactly): measure every encoding's size and held-out gain on it.") var bundle: String?
        @Option(help: "With --bundle: the library it was trained against.") var library = "Experts"
        @Option(help: "With --bundle: held-out windows of its domain.") var heldout: String?
        @Option(help: "With --bundle: background windows (forgetting).") var background: String?
        @Option(name: .customLong("max-windows")) var maxWindows: Count = Count(256)
        @Flag(help: "Print one JSON object.") var json = false

        func validate() throws {
            if bundle != nil, heldout == nil { throw ValidationError("--bundle needs --heldout") }
        }

        func run() throws {
            let r = try DeltaBenchmark.run(width: width, hidden: hidden, density: density)
            if let bundle, let heldout {
                try report(r, try DeltaGainCurve.run(library: try ExpertLibrary(directory: library), bundle: bundle,
                                                     heldOut: try TokenWindows.load(path: heldout).prefix(maxWindows.value),
                                                     background: try background.map { try TokenWindows.load(path: $0).prefix(maxWindows.value) }),
                           text: \.text)
            } else {
                try report(r, try GainSurvival.run(), text: \.text)
            }
        }

        /// The speed figures and the gain figures, as one JSON object or as text.
        func report<Gain: Encodable>(_ speed: DeltaBenchmark, _ gain: Gain, text: (Gain) -> String) throws {
            if json {
                print(try jsonString(BenchReport(speed: speed, gain: gain)))
            } else {
                print(speed.text)
                print(text(gain))
            }
        }
    }
}

struct BenchReport<Gain: Encodable>: Encodable { var speed: DeltaBenchmark; var gain: Gain }

func singleExpert(_ text: String) throws -> ExpertID {
    let ids = try ModelSource.parseExpertSet(text)
    guard ids.count == 1 else { throw ValidationError("\(text): name one expert as LAYER:EXPERT") }
    return ids.first!
}

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ed25519 participant keys.", subcommands: [New.self, Show.self])

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key file (mode 0600); never overwrites.")
        @Option(help: "Key file to create.") var out: String
        func run() throws {
            let key = ParticipantKey.generate()
            try key.save(to: out)
            print(key.publicHex)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a key file's public key: the participant's identity.")
        @Argument(help: "Key file.") var file: String
        func run() throws { print(try ParticipantKey.load(file).publicHex) }
    }
}

struct BundleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bundle", abstract: "Signed submission bundles.",
                                                    subcommands: [Create.self, Verify.self, BundleUpload.self, BundleDownload.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sign deltas into a submission bundle.")
        @Option(help: "Contributor key file.") var key: String
        @Option(help: "Library the deltas are against.") var library: String
        @Option(help: "The market the bundle is signed for: its directory or URL (asked for its ID), or its ID (the hash of its genesis event).")
        var market: String
        @Option var domain: String
        @Option var round: String
        @Option(help: "Delta file (repeatable).") var delta: [String] = []
        @Option(help: "JSON file with the training summary.") var summary: String?
        @Option(help: "Bundle directory to write.") var out: String

        func run() async throws {
            let marketID = try await resolveMarketID(market)
            var training = JSONValue.object([])
            if let summary {
                guard let data = FileManager.default.contents(atPath: summary) else { throw ValidationError("\(summary): cannot read") }
                training = try JSONValue.parse(data)
            }
            let b = try SubmissionBundle.create(key: try ParticipantKey.load(key), market: marketID, domain: domain, round: round,
                                                deltas: delta, training: training, library: try ExpertLibrary(directory: library), into: out)
            print("bundle \(out): \(b.items.count) delta(s) signed by \(b.contributor)")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a bundle's signature, hashes, sizes and shapes against a library.")
        @Argument(help: "Bundle directory.") var bundle: String
        @Option(help: "Library directory.") var library: String
        @Flag(help: "Also require every base to be the expert's current version.") var current = false

        func run() throws {
            let b = try SubmissionBundle.verify(bundle, library: try ExpertLibrary(directory: library), requireCurrent: current)
            print("bundle \(bundle) verifies: contributor \(b.contributor), market \(b.market), domain \(b.domain), round \(b.round), experts \(b.items.map { "\($0.expert)" }.joined(separator: ", "))")
        }
    }
}

/// A market's ID (the hash of its genesis event), given as the ID itself or as the
/// market's directory or URL.
func resolveMarketID(_ market: String) async throws -> String {
    ContentHash.isValid(market) ? market : try await Markets.open(market).summary().marketID
}
