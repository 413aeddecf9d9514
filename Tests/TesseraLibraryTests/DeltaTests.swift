import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
import TesseraCore
import TesseraTestSupport

@Suite struct DeltaTests {
    /// A library of `name` and a checkpoint in which expert `id` has been fine-tuned
    /// (a random update of about 1% of its weights' scale).
    static func setUp(_ name: String, _ id: ExpertID, scratch s: TemporaryDirectory, seed: UInt64 = 1) throws -> ExpertLibrary {
        try ExpertLibrary.split(checkpoint: ReferenceFixtures.path(name), into: s.sub("lib"))
        let model = try MoEModel(directory: ReferenceFixtures.path(name))
        var rng = SplitMix64(seed: seed)
        let e = model.layout.layers[id.layer].experts[id.expert]
        model.thaw([e.gate, e.up, e.down])
        for v in [e.gate, e.up, e.down] {
            for i in v.offset..<(v.offset + v.count) { model.parameters[i] += Float(rng.normal() * 0.01) }
        }
        try model.save(directory: s.sub("tuned"))
        return try ExpertLibrary(directory: s.sub("lib"))
    }

    @Test(arguments: ["olmoe-bf16-clip", "mixtral-fused-sharded", "qwen2moe-tiny"])
    func losslessDeltaReproducesTheNewWeightsExactly(_ name: String) throws {
        let s = TemporaryDirectory()
        let id = ExpertID(layer: 1, expert: 2)
        let lib = try Self.setUp(name, id, scratch: s)
        let new = try lib.expertWeights(id, fromCheckpoint: s.sub("tuned"))
        let (header, stats) = try lib.encodeDelta(id, new: new, options: DeltaOptions(encoding: .lossless), to: s.sub("d.safetensors"))
        #expect(stats.relativeL2 == 0 && stats.maxAbs == 0)
        #expect(header.base == lib.manifest.entry(id)!.head.hash)
        let hash = try lib.applyDelta(s.sub("d.safetensors"), producedBy: ["submission-1"])
        let lib2 = try ExpertLibrary(directory: s.sub("lib"))
        #expect(lib2.manifest.entry(id)!.versions.count == 2)
        #expect(lib2.manifest.entry(id)!.head == .init(hash: hash, parent: header.base, producedBy: ["submission-1"], origin: "delta lossless"))
        // The library now gives exactly the tuned model, and the old version is still there.
        let tuned = try MoEModel(directory: s.sub("tuned"))
        #expect(try lib2.loadModel().parameterValues == tuned.parameterValues)
        let old = try lib2.loadModel(versions: [id: String(header.base.prefix(10))])
        #expect(old.parameterValues == (try MoEModel(directory: ReferenceFixtures.path(name))).parameterValues)
        // Assembling the new version gives the tuned checkpoint's bytes.
        try lib2.assemble(into: s.sub("out"))
        let a = try CheckpointFiles(directory: s.sub("out")), b = try CheckpointFiles(directory: s.sub("tuned"))
        for t in a.tensorNames where b.info(t)!.dtype == a.info(t)!.dtype { #expect(Array(a.bytes(t)!) == Array(b.bytes(t)!)) }
        // The same delta again is refused: its base is no longer current.
        #expect { try lib2.applyDelta(s.sub("d.safetensors"), producedBy: []) } throws: { "\($0)".contains("refusing to apply") }
    }

    @Test func sparseDeltaErrorIsBoundedAndErrorFeedbackConverges() throws {
        let (base, new) = SyntheticDelta.update(width: 96, hidden: 64, dtype: .f32, seed: 9)
        let header = DeltaHeader(format: DeltaHeader.formatName, layer: 0, expert: 0, base: String(repeating: "a", count: 64),
                                 encoding: .sparse, modelType: "t", configSHA256: String(repeating: "b", count: 64), tensors: [])
        let dense = try DeltaCodec.encode(base: base, new: new, header: header, options: DeltaOptions(density: 1))
        // Keeping every entry leaves only int8 rounding: at most half a step (max |Δ| / 127) per entry.
        var largest: Float = 0
        for (b, n) in zip(base.tensors, new.tensors) { for i in b.values.indices { largest = max(largest, abs(n.values[i] - b.values[i])) } }
        #expect(dense.stats.maxAbs <= Double(largest) / 127 / 2 * 1.001 && dense.stats.relativeL2 < 0.05)
        let sparse = try DeltaCodec.encode(base: base, new: new, header: header, options: DeltaOptions(density: 1.0 / 16))
        #expect(sparse.stats.relativeL2 < 1 && sparse.stats.ratio > 15)
        // Top-k never does worse than dropping Δ entirely, and more density never hurts.
        let denser = try DeltaCodec.encode(base: base, new: new, header: header, options: DeltaOptions(density: 1.0 / 4))
        #expect(denser.stats.relativeL2 < sparse.stats.relativeL2)
        // Repeating the same update 24 times: with error feedback what was left out is sent
        // later, so the accumulated error is far below sending the same top-k every time.
        let withFeedback = try Self.accumulatedError(base, new, header, feedback: true)
        let without = try Self.accumulatedError(base, new, header, feedback: false)
        #expect(withFeedback < 0.5 * without, "accumulated relative error \(withFeedback) with feedback, \(without) without")
    }

    static func accumulatedError(_ base: ExpertWeights, _ new: ExpertWeights, _ header: DeltaHeader, feedback: Bool, rounds: Int = 24) throws -> Double {
        var residual: [String: [Float]]? = nil
        var sent = base.tensors.map { [Float](repeating: 0, count: $0.values.count) }
        for _ in 0..<rounds {
            let r = try DeltaCodec.encode(base: base, new: new, header: header, options: DeltaOptions(density: 1.0 / 16), residual: residual)
            let s = TemporaryDirectory()
            try DeltaCodec.write(r.records, header: r.header, to: s.sub("d"))
            let (file, h) = try DeltaCodec.read(s.sub("d"))
            let decoded = try DeltaCodec.decode(file, header: h, base: base)
            for (i, t) in decoded.tensors.enumerated() { for j in t.values.indices { sent[i][j] += t.values[j] - base.tensors[i].values[j] } }
            if feedback { residual = r.residual }
        }
        // Relative distance of what was sent in total from rounds × Δ.
        var err: Double = 0, ref: Double = 0
        for (i, t) in base.tensors.enumerated() {
            for j in t.values.indices {
                let target = Double(rounds) * Double(new.tensors[i].values[j] - t.values[j])
                err += pow(Double(sent[i][j]) - target, 2)
                ref += target * target
            }
        }
        return (err / ref).squareRoot()
    }

    @Test func corruptTruncatedAndMismatchedDeltasAreRefusedAndTheLibraryIsUnchanged() throws {
        let s = TemporaryDirectory()
        let id = ExpertID(layer: 0, expert: 1)
        let lib = try Self.setUp("mixtral-tiny", id, scratch: s)
        let new = try lib.expertWeights(id, fromCheckpoint: s.sub("tuned"))
        _ = try lib.encodeDelta(id, new: new, options: DeltaOptions(), to: s.sub("d.safetensors"))
        let manifest = FileManager.default.contents(atPath: s.sub("lib/manifest.json"))
        let original = try Data(contentsOf: URL(fileURLWithPath: s.sub("d.safetensors")))
        func attempt(_ data: Data, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let path = s.sub("bad.safetensors")
            FileManager.default.createFile(atPath: path, contents: data)
            #expect(sourceLocation: sourceLocation) { try lib.applyDelta(path, producedBy: []) } throws: { error in
                "\(error)".contains(fragment) || { print("got: \(error)"); return false }()
            }
        }
        attempt(original.prefix(original.count - 10), "truncated")
        var flipped = original
        flipped[flipped.count - 20] ^= 0xFF
        attempt(flipped, "corrupt")
        // A delta made against another model.
        let s2 = TemporaryDirectory()
        let other = try Self.setUp("qwen2moe-tiny", id, scratch: s2)
        _ = try other.encodeDelta(id, new: try other.expertWeights(id, fromCheckpoint: s2.sub("tuned")), options: DeltaOptions(), to: s2.sub("o.safetensors"))
        attempt(try Data(contentsOf: URL(fileURLWithPath: s2.sub("o.safetensors"))), "different model")
        #expect(FileManager.default.contents(atPath: s.sub("lib/manifest.json")) == manifest)
        #expect(try ExpertLibrary(directory: s.sub("lib")).manifest.entry(id)!.versions.count == 1)
        // Versions named by too short a prefix are refused as such (once "more than one version").
        let head = lib.manifest.entry(id)!.head.hash
        #expect { try lib.resolveVersion(id, String(head.prefix(4))) } throws: { "\($0)".contains("too short") }
        #expect { try lib.resolveVersion(id, "ffffffff") } throws: { "\($0)".contains("has no version") || head.hasPrefix("ffffffff") }
        #expect(try lib.resolveVersion(id, String(head.prefix(8)).uppercased()) == head)
    }

    /// A delta whose description declares shapes whose element count is huge or wraps past
    /// 2^64 is refused by name; reading it used to trap multiplying the shape.
    @Test func deltasDeclaringHugeShapesAreRefusedNotTrapped() throws {
        let s = TemporaryDirectory()
        let id = ExpertID(layer: 0, expert: 1)
        let lib = try Self.setUp("mixtral-tiny", id, scratch: s)
        _ = try lib.encodeDelta(id, new: try lib.expertWeights(id, fromCheckpoint: s.sub("tuned")), options: DeltaOptions(), to: s.sub("d.safetensors"))
        let original = try Data(contentsOf: URL(fileURLWithPath: s.sub("d.safetensors")))
        for shape in ["[1099511627776,1099511627776]", "[4294967296,4294967296,16]", "[-4,-4]", "[3037000500,3037000500]"] {
            let path = s.sub("huge.safetensors")
            try Self.rewritingDeltaShapes(original, to: shape).write(to: URL(fileURLWithPath: path))
            for read in [{ _ = try DeltaCodec.read(path) }, { _ = try lib.applyDelta(path, producedBy: []) }] as [() throws -> Void] {
                #expect { try read() } throws: { "\($0)".contains("invalid shape") }
            }
        }
    }

    /// The delta's safetensors file with every tensor's declared shape in its description
    /// replaced (the payloads untouched, so their hashes still match).
    static func rewritingDeltaShapes(_ data: Data, to shape: String) throws -> Data {
        try rewritingDeltaDescription(data, pattern: #""shape":\[[0-9,]*\]"#, with: "\"shape\":\(shape)")
    }

    /// The delta's file with `pattern` (a regular expression) replaced in its description.
    static func rewritingDeltaDescription(_ data: Data, pattern: String, with replacement: String) throws -> Data {
        let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + n)) as? [String: Any])
        var metadata = try #require(header["__metadata__"] as? [String: String])
        let key = try #require(metadata.keys.first { $0.contains("delta") })
        metadata[key] = try #require(metadata[key]).replacingOccurrences(of: pattern, with: replacement, options: .regularExpression)
        header["__metadata__"] = metadata
        var json = try JSONSerialization.data(withJSONObject: header)
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        return out + json + data.subdata(in: 8 + n..<data.count)
    }

    @Test func zstdRefusesStreamsThatInflatePastTheDeclaredSize() throws {
        let big = [UInt8](repeating: 7, count: 1 << 20)
        let z = try Zstd.compress(big)
        #expect(z.count < 1000)
        #expect { try z.withUnsafeBytes { try Zstd.decompress($0, expectedSize: 4096, what: "bomb") } } throws: { "\($0)".contains("declares") }
        #expect(try z.withUnsafeBytes { try Zstd.decompress($0, expectedSize: big.count, what: "ok") } == big)
        #expect(throws: LibraryError.self) { try [UInt8]([1, 2, 3, 4, 5, 6]).withUnsafeBytes { try Zstd.decompress($0, expectedSize: 10, what: "junk") } }
    }

    @Test func nonFiniteNewWeightsAreRefused() throws {
        var (base, new) = SyntheticDelta.update(width: 8, hidden: 8, dtype: .f32, seed: 2)
        new.tensors[1].values[5] = .infinity
        let header = DeltaHeader(format: DeltaHeader.formatName, layer: 0, expert: 0, base: String(repeating: "a", count: 64),
                                 encoding: .sparse, modelType: "t", configSHA256: String(repeating: "b", count: 64), tensors: [])
        #expect { try DeltaCodec.encode(base: base, new: new, header: header, options: DeltaOptions()) } throws: { "\($0)".contains("non-finite") }
        base.tensors[0].values[0] = 0
    }
}
