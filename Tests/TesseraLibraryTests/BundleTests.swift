import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
import TesseraCore
import TesseraTestSupport

@Suite struct BundleTests {
    @Test func keysAreCreatedPrivateAndNeverOverwritten() throws {
        let s = TemporaryDirectory()
        let key = ParticipantKey.generate()
        try key.save(to: s.sub("k.json"))
        let attrs = try FileManager.default.attributesOfItem(atPath: s.sub("k.json"))
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        #expect(try ParticipantKey.load(s.sub("k.json")).publicHex == key.publicHex)
        #expect { try ParticipantKey.generate().save(to: s.sub("k.json")) } throws: { "\($0)".contains("never overwritten") }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: s.sub("k.json"))
        #expect { try ParticipantKey.load(s.sub("k.json")) } throws: { "\($0)".contains("readable by others") }
        let sig = try key.sign([1, 2, 3])
        #expect(ParticipantKey.verify(signature: sig, of: [1, 2, 3], publicHex: key.publicHex))
        #expect(!ParticipantKey.verify(signature: sig, of: [1, 2, 4], publicHex: key.publicHex))
    }

    @Test func canonicalBytesIgnoreKeyOrderAndWhitespace() throws {
        let a = try JSONValue.parse(Data(#"{"b": [1, {"y": 2, "x": "é"}], "a": 1.5}"#.utf8))
        let b = try JSONValue.parse(Data(#"{"a":1.5,"b":[1,{"x":"é","y":2}]}"#.utf8))
        #expect(a.canonicalBytes == b.canonicalBytes)
        #expect(String(decoding: a.canonicalBytes, as: UTF8.self) == #"{"a":1.5,"b":[1,{"x":"é","y":2}]}"#)
    }

    static func makeBundle(_ s: TemporaryDirectory) throws -> (ExpertLibrary, ParticipantKey) {
        let ids = [ExpertID(layer: 0, expert: 3), ExpertID(layer: 1, expert: 0)]
        let lib = try DeltaTests.setUp("olmoe-tiny", ids[0], scratch: s)
        let model = try MoEModel(directory: s.sub("tuned"))
        let e = model.layout.layers[1].experts[0]
        model.thaw([e.down])
        for i in e.down.offset..<(e.down.offset + e.down.count) { model.parameters[i] *= 1.01 }
        try model.save(directory: s.sub("tuned"))
        for (n, id) in ids.enumerated() {
            _ = try lib.encodeDelta(id, new: try lib.expertWeights(id, fromCheckpoint: s.sub("tuned")),
                                    options: DeltaOptions(encoding: n == 0 ? .sparse : .lossless), to: s.sub("d\(n).safetensors"))
        }
        let key = ParticipantKey.generate()
        _ = try SubmissionBundle.create(key: key, market: "m1", domain: "es", round: "r7",
                                        deltas: [s.sub("d0.safetensors"), s.sub("d1.safetensors")],
                                        training: .object([("steps", .number(40)), ("loss", .number(2.25))]),
                                        library: lib, into: s.sub("bundle"))
        return (lib, key)
    }

    /// A submission is its signed content: the same manifest re-formatted (indented, a
    /// trailing newline, a character written as a \u escape) still verifies and has the
    /// same identity, so it cannot be submitted again as a new bundle.
    @Test func reformattedManifestsAreTheSameSubmission() throws {
        let s = TemporaryDirectory()
        let (lib, _) = try Self.makeBundle(s)
        let path = s.sub("bundle/bundle.json")
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let identity = try SubmissionBundle.submissionRecord(s.sub("bundle")).hash
        #expect(identity == ContentHash.sha256(Array(original)), "bundles are written canonically, so existing identities stay")
        let object = try JSONSerialization.jsonObject(with: original)
        let pretty = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .withoutEscapingSlashes])
        let escaped = String(decoding: original, as: UTF8.self).replacingOccurrences(of: "\"es\"", with: "\"\\u0065s\"")
        for variant in [pretty, original + Data("\n".utf8), Data(escaped.utf8)] {
            #expect(variant != original)
            try variant.write(to: URL(fileURLWithPath: path))
            _ = try SubmissionBundle.verify(s.sub("bundle"), library: lib)
            #expect(try SubmissionBundle.submissionRecord(s.sub("bundle")).hash == identity)
        }
    }

    @Test func bundleVerifiesAndEveryTamperIsCaught() throws {
        let s = TemporaryDirectory()
        let (lib, key) = try Self.makeBundle(s)
        let b = try SubmissionBundle.verify(s.sub("bundle"), library: lib, requireCurrent: true)
        #expect(b.contributor == key.publicHex && b.items.count == 2 && b.domain == "es" && b.training["steps"]?.intValue == 40)

        // Manifest edited after signing.
        let manifestPath = s.sub("bundle/bundle.json")
        let manifest = try String(contentsOfFile: manifestPath, encoding: .utf8)
        try manifest.replacingOccurrences(of: "\"r7\"", with: "\"r8\"").write(toFile: manifestPath, atomically: true, encoding: .utf8)
        #expect { try SubmissionBundle.verify(s.sub("bundle"), library: lib) } throws: { "\($0)".contains("signature does not verify") }
        try manifest.write(toFile: manifestPath, atomically: true, encoding: .utf8)

        // A delta file changed.
        let deltaPath = s.sub("bundle/" + b.items[1].file)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: deltaPath))
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: URL(fileURLWithPath: deltaPath))
        #expect { try SubmissionBundle.verify(s.sub("bundle"), library: lib) } throws: { "\($0)".contains("SHA-256 does not match") }
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: URL(fileURLWithPath: deltaPath))
        try bytes.prefix(100).write(to: URL(fileURLWithPath: deltaPath))
        #expect { try SubmissionBundle.verify(s.sub("bundle"), library: lib) } throws: { "\($0)".contains("bytes, the manifest says") }
        try bytes.write(to: URL(fileURLWithPath: deltaPath))

        // Signature missing, or by someone else.
        let sigPath = s.sub("bundle/bundle.sig")
        let sig = try Data(contentsOf: URL(fileURLWithPath: sigPath))
        try FileManager.default.removeItem(atPath: sigPath)
        #expect { try SubmissionBundle.verify(s.sub("bundle"), library: lib) } throws: { "\($0)".contains("missing signature") }
        let forged = try ParticipantKey.generate().sign(Array(try Data(contentsOf: URL(fileURLWithPath: manifestPath))))
        try Data((Hex.encode(forged) + "\n").utf8).write(to: URL(fileURLWithPath: sigPath))
        #expect { try SubmissionBundle.verify(s.sub("bundle"), library: lib) } throws: { "\($0)".contains("signature does not verify") }
        try sig.write(to: URL(fileURLWithPath: sigPath))
        _ = try SubmissionBundle.verify(s.sub("bundle"), library: lib)

        // A manifest that names one expert twice, properly signed, is refused by name (a
        // validator would otherwise count the expert's delta twice).
        guard case .object(var fields)? = try? JSONValue.parse(Data(manifest.utf8)),
              let at = fields.firstIndex(where: { $0.0 == "experts" }), case .array(let experts) = fields[at].1 else {
            Issue.record("manifest has no experts array"); return
        }
        fields[at].1 = .array(experts + [experts[0]])
        let doubled = JSONValue.object(fields).canonicalBytes
        try Data(doubled).write(to: URL(fileURLWithPath: manifestPath))
        try Data((Hex.encode(try key.sign(doubled)) + "\n").utf8).write(to: URL(fileURLWithPath: sigPath))
        #expect { try SubmissionBundle.verify(s.sub("bundle"), library: lib) } throws: { "\($0)".contains("experts[2] repeats expert") }
        try manifest.write(toFile: manifestPath, atomically: true, encoding: .utf8)
        try sig.write(to: URL(fileURLWithPath: sigPath))

        // Once one delta is applied, its base is stale for a bundle that must be current.
        try lib.applyDelta(s.sub("bundle/" + b.items[0].file), producedBy: ["bundle"])
        let fresh = try ExpertLibrary(directory: s.sub("lib"))
        #expect { try SubmissionBundle.verify(s.sub("bundle"), library: fresh, requireCurrent: true) } throws: { "\($0)".contains("no longer its current version") }
    }
}
