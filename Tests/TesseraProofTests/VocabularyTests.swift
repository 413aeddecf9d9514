import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraProof
import TesseraCore
import TesseraTestSupport

/// A library keeps the tokenizer its checkpoint came with (hash in the manifest, file beside
/// it, back in assembled checkpoints), and every command that reads token windows for it
/// refuses windows made with another vocabulary.
@Suite struct VocabularyTests {
    static func windows(_ dir: String, name: String, tokenizer: String?) throws -> String {
        let path = dir + "/\(name).safetensors"
        var metadata = ["format": "pt"]
        if let tokenizer { metadata["tessera.tokenizer_sha256"] = tokenizer }
        let ids = (0..<(8 * 12)).map { Int64($0 % 60) }
        try SafetensorsWriter.write([TensorRecord(name: "input_ids", shape: [8, 12], int64s: ids)], metadata: metadata, to: path)
        return path
    }

    @Test func theLibraryRecordsItsTokenizerAndRefusesForeignTokenFiles() throws {
        let s = TemporaryDirectory()
        let checkpoint = s.sub("ckpt")
        try FileManager.default.copyItem(atPath: ReferenceFixtures.path("olmoe-tiny"), toPath: checkpoint)
        let tokenizer = try Data(contentsOf: URL(fileURLWithPath: ReferenceFixtures.projectRoot + "/Tests/Fixtures/tokenizers/bytelevel-bpe.json"))
        try tokenizer.write(to: URL(fileURLWithPath: checkpoint + "/tokenizer.json"))
        let hash = ContentHash.sha256(Array(tokenizer))
        try ExpertLibrary.split(checkpoint: checkpoint, into: s.sub("lib"))
        let lib = try ExpertLibrary(directory: s.sub("lib"))
        #expect(lib.manifest.tokenizerSHA256 == hash)
        try lib.assemble(into: s.sub("out"))
        #expect(FileManager.default.contents(atPath: s.sub("out") + "/tokenizer.json") == tokenizer)

        let matching = try TokenWindows.load(path: try Self.windows(s.path, name: "matching", tokenizer: hash))
        try matching.requireVocabulary(of: lib)
        let bytes = try TokenWindows.load(path: try Self.windows(s.path, name: "bytes", tokenizer: nil))
        #expect { try bytes.requireVocabulary(of: lib) } throws: {
            "\($0)".contains("made with the byte vocabulary") && "\($0)".contains("uses the tokenizer \(hash.prefix(12))")
        }
        let other = try TokenWindows.load(path: try Self.windows(s.path, name: "other", tokenizer: String(repeating: "ab", count: 32)))
        #expect(throws: (any Error).self) { try other.requireVocabulary(of: lib) }
        #expect(throws: (any Error).self) { try matching.appending(bytes) }
        // The validator and a contribution refuse before any work.
        let policy = ProofPolicy(confidence: 0.95, minGainMicronats: 500, backgroundToleranceMicronats: 300_000,
                                 deltaNormBound: 1.0, copyThreshold: 0.95, resamples: 100)
        #expect { try Validator(library: lib, key: ParticipantKey.generate(), policy: policy, heldOut: matching, background: bytes) } throws: {
            "\($0)".contains("bytes.safetensors")
        }
        let request = Contribution.Request(experts: [ExpertID(layer: 0, expert: 0)], data: other, heldOut: nil,
                                           options: TrainingOptions(steps: 1, batch: 1, learningRate: 1e-3, warmupSteps: 0, seed: 1),
                                           partialResidency: false, delta: DeltaOptions(encoding: .lossless), market: "m", domain: "d", round: "r")
        #expect(throws: (any Error).self) { try Contribution.run(request, library: lib, key: ParticipantKey.generate(), out: s.sub("bundle"), progress: false) }
        #expect(!FileManager.default.fileExists(atPath: s.sub("bundle")))

        // A byte-vocabulary library takes byte corpora and refuses tokenizer ones.
        try ExpertLibrary.split(checkpoint: ReferenceFixtures.path("olmoe-tiny"), into: s.sub("bytelib"))
        let byteLib = try ExpertLibrary(directory: s.sub("bytelib"))
        try bytes.requireVocabulary(of: byteLib)
        #expect(throws: (any Error).self) { try matching.requireVocabulary(of: byteLib) }
    }
}
