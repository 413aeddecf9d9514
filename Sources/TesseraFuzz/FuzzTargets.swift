import Foundation
import TesseraCore
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraMarket
import TesseraProof
import TesseraTokenizers

/// Every parser of untrusted bytes, each a function of one input. An input may be refused
/// (an error); it may never trap, hang or touch anything but the scratch directory.
enum FuzzTarget: String, CaseIterable {
    case json, safetensors, delta, sparse, lowRank = "low-rank", libraryManifest = "library-manifest", snapshot, policy, proofPolicy = "proof-policy",
         tokens, action, bundleArchive = "bundle-archive", bundleManifest = "bundle-manifest", tokenizer, modelConfig = "model-config",
         completionRequest = "completion-request", meter

    /// A scratch directory of this process for parsers that read files.
    static let scratch: String = {
        let dir = NSTemporaryDirectory() + "tessera-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    static func file(_ name: String, _ bytes: UnsafeRawBufferPointer) -> String {
        let path = (scratch as NSString).appendingPathComponent(name)
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func run(_ bytes: UnsafeRawBufferPointer) {
        let data = Data(bytes)
        switch self {
        case .json:
            if let v = try? JSONValue.parse(bytes) { _ = v.canonicalBytes; _ = try? JSONValue.parse(Data(v.serialized().utf8)) }
        case .safetensors:
            if let f = try? SafetensorsFile(path: Self.file("f.safetensors", bytes)) {
                for name in f.names { if let info = f.tensors[name], info.dtype.isFloatingPoint { _ = try? f.floats(name) } }
            }
        case .delta:
            _ = try? DeltaCodec.read(Self.file("d.safetensors", bytes))
        case .sparse:
            // Parameters from the first six bytes, bounded as a delta header's would be.
            guard bytes.count >= 6 else { return }
            let count = Int(bytes[0]) << 8 | Int(bytes[1]), chunk = max(1, (Int(bytes[2]) << 8 | Int(bytes[3])) % 4097)
            let keep = max(1, (Int(bytes[4]) << 8 | Int(bytes[5])) % (chunk + 1))
            _ = try? SparseCodec.decode(Array(bytes.dropFirst(6)), count: count, chunk: chunk, keep: keep, what: "fuzz")
        case .lowRank:
            // Shape, rank and bits from the first five bytes, bounded as `DeltaCodec.read` bounds them.
            guard bytes.count >= 5 else { return }
            let m = 1 + Int(bytes[0]) % 64, n = 1 + Int(bytes[1]) << 8 | Int(bytes[2]), rank = 1 + Int(bytes[3]) % min(m, n)
            let bits = bytes[4] & 1 == 0 ? 8 : 4
            _ = try? LowRankCodec.decode(Array(bytes.dropFirst(5)), m: m, n: n, rank: rank, bits: bits, what: "fuzz")
        case .tokenizer:
            // A tokenizer.json; one that reads is then run on its own bytes as text.
            if let t = try? Tokenizer(json: data, file: "fuzz.json") {
                let text = String(decoding: bytes.prefix(4096), as: UTF8.self)
                if let ids = try? t.encode(text) { _ = t.decode(ids) }
            }
        case .modelConfig:
            // A checkpoint's config.json; one that reads is laid out (sizes must not overflow).
            if let c = try? ModelConfig.parse(data, file: "config.json") {
                _ = WeightLayout(config: c, expertLayout: .perExpert).totalCount
                _ = c.huggingFaceJSON()
            }
        case .completionRequest:
            // A POST /v1/completions body; one that reads has bounded lengths and sampling.
            if let r = try? CompletionRequest.parse(data, maxTokens: 1024) { _ = try? r.sampling.check() }
        case .meter:
            // A market's meter (one record per line, a torn line skipped) and its API keys.
            let dir = (Self.scratch as NSString).appendingPathComponent("market")
            try? FileManager.default.createDirectory(atPath: dir + "/serving", withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: UsageMeter.path(market: dir), contents: data)
            FileManager.default.createFile(atPath: APIKeys.path(market: dir), contents: data)
            if let records = try? UsageMeter.records(market: dir) {
                _ = try? Settlement.revenues(records: records, period: records.first?.period ?? "", at: 0)
                for r in records.prefix(4) { _ = r.receipt.signatureVerifies }
            }
            _ = (try? APIKeys.load(market: dir))?.record(forSecret: "tsk-" + String(repeating: "0", count: 64))
        case .libraryManifest:
            let dir = (Self.scratch as NSString).appendingPathComponent("lib")
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: dir + "/manifest.json", contents: data)
            _ = try? ExpertLibrary(directory: dir)
        case .snapshot:
            let policy = MarketPolicy(quorum: 2, minGainMicronats: 100, genesisUnits: 1_000_000, doublingGainMicronats: 10_000,
                                      maxMintBps: 5_000, validatorFeeBps: 500, operatorFeeBps: 200, maxClaimantsPerExpert: 2)
            _ = try? LedgerState(snapshot: data, seq: 7, policy: policy)
        case .policy:
            _ = try? MarketPolicy.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.toml")
        case .proofPolicy:
            _ = try? ProofPolicy.load(Self.file("market.toml", bytes))
        case .tokens:
            _ = try? TokenWindows.load(path: Self.file("t.safetensors", bytes))
        case .action:
            if let e = try? StrictJSON.decode(ActionEnvelope.self, from: data, file: "fuzz", rejectUnknownKeys: true), let a = try? e.signedAction() {
                var s = LedgerState(policy: MarketPolicy(quorum: 2, minGainMicronats: 100, genesisUnits: 1_000_000, doublingGainMicronats: 10_000,
                                                         maxMintBps: 5_000, validatorFeeBps: 500, operatorFeeBps: 200, maxClaimantsPerExpert: 2))
                _ = try? s.apply(a, seq: 1, hash: String(repeating: "0", count: 64), checkSignature: true)
            }
        case .bundleArchive:
            let out = (Self.scratch as NSString).appendingPathComponent("unpacked")
            try? FileManager.default.removeItem(atPath: out)
            _ = try? BundleArchive.unpack(Self.file("b.archive", bytes), into: out, maxBytes: 1 << 20)
        case .bundleManifest:
            let dir = (Self.scratch as NSString).appendingPathComponent("bundle")
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: dir + "/bundle.json", contents: data)
            FileManager.default.createFile(atPath: dir + "/bundle.sig", contents: Data(repeating: 0x61, count: 128))
            _ = try? SubmissionBundle.submissionRecord(dir)
            _ = try? SubmissionBundle.contributor(of: dir)
        }
    }
}
