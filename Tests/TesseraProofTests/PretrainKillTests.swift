import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraProof
import TesseraCore
import TesseraTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `tessera pretrain` killed with SIGKILL right after a checkpoint is written, and rerun,
/// ends with exactly the checkpoint an uninterrupted run writes: resumable, and
/// deterministic for a seed.
@Suite(.serialized) struct PretrainKillTests {
    @Test func killedPretrainResumesToTheSameModel() throws {
        guard FileManager.default.isExecutableFile(atPath: ReferenceFixtures.binary) else {
            Issue.record("tessera binary not found at \(ReferenceFixtures.binary); build it first (swift build) or set TESSERA_BIN")
            return
        }
        let tmp = TemporaryDirectory("pretrain-kill")
        let dir = tmp.path
        var rng = SplitMix64(seed: 1)
        let words = ["stitch", "time", "saves", "nine", "rolling", "stone", "gathers", "moss"]
        let text = (0..<400).map { _ in (0..<9).map { _ in words[Int(rng.next() % 8)] }.joined(separator: " ") }.joined(separator: "\n%\n")
        try text.write(toFile: dir + "/text", atomically: true, encoding: .utf8)
        let (corpus, _) = try CrashRun.run(["corpus", dir + "/text", "--out", dir + "/corpus", "--seq", "32", "--held-out-bps", "1000",
                                            "--key-hex", String(repeating: "ab", count: 16)])
        #expect(corpus == .exited(0))
        let common = ["--data", dir + "/corpus", "--hidden", "32", "--layers", "2", "--heads", "2", "--kv-heads", "1", "--head-dim", "16",
                      "--experts", "4", "--expert-width", "32", "--steps", "60", "--batch", "4", "--warmup", "5", "--seed", "3",
                      "--checkpoint-every", "5", "--eval-every", "20", "--eval-windows", "8"]
        #expect(try CrashRun.run(["pretrain", "--out", dir + "/straight"] + common).outcome == .exited(0))
        let straight = try Data(contentsOf: URL(fileURLWithPath: dir + "/straight/model.safetensors"))
        // Killed after its 2nd checkpoint (step 10), rerun and killed after the 3rd checkpoint
        // it writes (step 25), then left to finish.
        var stepsAtKill: [Int] = []
        for point in ["train.checkpoint#2", "train.checkpoint#3"] {
            let (outcome, stderr) = try CrashRun.run(["pretrain", "--out", dir + "/resumed"] + common, crashAt: point)
            #expect(outcome == .killed, "\(point): \(stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/resumed/model.safetensors"))
            stepsAtKill.append(Int(try SafetensorsFile(path: dir + "/resumed/training-state.safetensors").metadata["step"] ?? "") ?? -1)
        }
        #expect(stepsAtKill == [10, 25])
        #expect(try CrashRun.run(["pretrain", "--out", dir + "/resumed"] + common).outcome == .exited(0))
        let resumed = try Data(contentsOf: URL(fileURLWithPath: dir + "/resumed/model.safetensors"))
        #expect(resumed == straight)
        _ = try MoEModel(directory: dir + "/resumed")
    }
}
