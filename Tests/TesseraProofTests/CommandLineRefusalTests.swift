import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

/// Command-line values that used to trap or loop are refused with a message naming the
/// option, before anything is written (exit status 64: a usage error).
@Suite struct CommandLineRefusalTests {
    func refused(_ arguments: [String], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (outcome, stderr) = try CrashRun.run(arguments)
        #expect(outcome == .exited(64), "\(arguments): \(outcome) \(stderr.prefix(300))", sourceLocation: sourceLocation)
        #expect(stderr.contains(fragment), "\(arguments): \(stderr.prefix(300))", sourceLocation: sourceLocation)
    }

    @Test func trapsAndEndlessLoopsAreUsageErrors() throws {
        guard FileManager.default.isExecutableFile(atPath: ReferenceFixtures.binary) else {
            Issue.record("tessera binary not found at \(ReferenceFixtures.binary); build it first (swift build) or set TESSERA_BIN")
            return
        }
        let s = TemporaryDirectory("cli-refusals")
        try refused(["select", "--library", "Experts", "--data", "none", "--max-windows=-1"], "max-windows")
        try refused(["validate-bench", "--library", "Experts", "--data", "none", "--repeats", "0"], "repeats")
        try refused(["init", "--hidden", "1099511627776", "--out", s.sub("a")], "64-bit count")
        try refused(["init", "--expert-width", "4611686018427387904", "--out", s.sub("b")], "memory")
        try refused(["init", "--hidden", "24", "--heads", "8", "--kv-heads", "8", "--out", s.sub("c")], "head size must be even")
        try FileManager.default.createDirectory(atPath: s.sub("full"), withIntermediateDirectories: true)
        try AtomicFile.write(Array("keep me".utf8), to: s.sub("full/notes.txt"))
        try refused(["init", "--hidden", "64", "--heads", "4", "--kv-heads", "4", "--expert-width", "32", "--out", s.sub("full")], "not empty")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.sub("full")) == ["notes.txt"])
        try refused(["ledger", "stress", "--market", s.sub("m"), "--key", s.sub("k"), "--batch", "0"], "--batch 0")
        try refused(["ledger", "bench", "--batch", "0"], "--batch 0")
        for density in ["0", "2", "nan"] {
            try refused(["train", "--library", "Experts", "--experts", "none", "--data", "none", "--key", "none", "--out", s.sub("t"),
                         "--market", "m", "--domain", "es", "--round", "r", "--density", density], "--density")
        }
        // The logits file pointed at the model's own weights: refused, the model intact.
        try FileManager.default.copyItem(atPath: ReferenceFixtures.path("olmoe-tiny"), toPath: s.sub("model"))
        let weights = try ContentHash.sha256(file: s.sub("model/model.safetensors"))
        try refused(["eval", "--model", s.sub("model"), "--tokens", s.sub("model/input_ids.safetensors"), "--logits-out", s.sub("model/model.safetensors")],
                    "an input of this evaluation")
        #expect(try ContentHash.sha256(file: s.sub("model/model.safetensors")) == weights)
        // A FIFO as the token file: refused at once (it used to block the open forever).
        #expect(mkfifo(s.sub("fifo"), 0o600) == 0)
        let (outcome, stderr) = try CrashRun.run(["eval", "--model", s.sub("model"), "--tokens", s.sub("fifo")])
        #expect(outcome == .exited(1) && stderr.contains("not a regular file"), "\(outcome) \(stderr.prefix(200))")
        for made in ["a", "b", "c", "m", "t"] { #expect(!FileManager.default.fileExists(atPath: s.sub(made)), "\(made) was written") }
    }
}
