import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraProof
#if canImport(Glibc)
import Glibc
import TesseraCore
import TesseraTestSupport
#endif

/// `tessera pretrain` killed with SIGKILL and rerun ends with exactly the checkpoint an
/// uninterrupted run writes: resumable, and deterministic for a seed.
@Suite(.serialized) struct PretrainKillTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var binary: String { ProcessInfo.processInfo.environment["TESSERA_BIN"] ?? root + "/.build/debug/tessera" }

    @Test func killedPretrainResumesToTheSameModel() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            Issue.record("tessera binary not found at \(Self.binary); build it first (swift build) or set TESSERA_BIN")
            return
        }
        let dir = NSTemporaryDirectory() + "tessera-pretrain-kill-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var rng = SplitMix64(seed: 1)
        let words = ["stitch", "time", "saves", "nine", "rolling", "stone", "gathers", "moss"]
        let text = (0..<400).map { _ in (0..<9).map { _ in words[Int(rng.next() % 8)] }.joined(separator: " ") }.joined(separator: "\n%\n")
        try text.write(toFile: dir + "/text", atomically: true, encoding: .utf8)
        func run(_ args: [String], killAfter: UInt32? = nil) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.binary)
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            if let killAfter {
                usleep(killAfter)
                kill(p.processIdentifier, SIGKILL)
            }
            p.waitUntilExit()
        }
        try run(["corpus", dir + "/text", "--out", dir + "/corpus", "--seq", "32", "--held-out-bps", "1000", "--key-hex", String(repeating: "ab", count: 16)])
        let common = ["--data", dir + "/corpus", "--hidden", "32", "--layers", "2", "--heads", "2", "--kv-heads", "1", "--head-dim", "16",
                      "--experts", "4", "--expert-width", "32", "--steps", "400", "--batch", "4", "--warmup", "5", "--seed", "3",
                      "--checkpoint-every", "5", "--eval-every", "20", "--eval-windows", "8"]
        try run(["pretrain", "--out", dir + "/straight"] + common)
        let straight = try Data(contentsOf: URL(fileURLWithPath: dir + "/straight/model.safetensors"))
        // Kill at several moments, then let the last run finish.
        var stepsAtKill: [Int] = []
        for delay in [300_000, 300_000, 300_000] as [UInt32] {
            try run(["pretrain", "--out", dir + "/resumed"] + common, killAfter: delay)
            let state = dir + "/resumed/training-state.safetensors"
            if FileManager.default.fileExists(atPath: state), !FileManager.default.fileExists(atPath: dir + "/resumed/model.safetensors") {
                stepsAtKill.append(Int(try SafetensorsFile(path: state).metadata["step"] ?? "") ?? -1)
            }
        }
        try run(["pretrain", "--out", dir + "/resumed"] + common)
        let resumed = try Data(contentsOf: URL(fileURLWithPath: dir + "/resumed/model.safetensors"))
        #expect(resumed == straight)
        // The kills landed mid-run, after checkpoints, and each rerun got further.
        #expect(!stepsAtKill.isEmpty && stepsAtKill.allSatisfy { $0 > 0 && $0 < 400 }, "\(stepsAtKill)")
        #expect(stepsAtKill == stepsAtKill.sorted())
        _ = try MoEModel(directory: dir + "/resumed")
    }
}
