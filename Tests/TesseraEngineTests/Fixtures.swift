import Foundation
@testable import TesseraEngine

/// Locations of the shared reference fixtures (../shared from the project root).
enum Fixtures {
    static let projectRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let hfMoE: String = {
        if let env = ProcessInfo.processInfo.environment["TESSERA_FIXTURES"] { return env }
        return (projectRoot as NSString).appendingPathComponent("../shared/fixtures/hf-moe")
    }()

    /// Fixtures made by scripts/make_reference_fixtures.py for what the shared ones do not
    /// show: Qwen3-MoE per-head q/k norms, tied embeddings, a dense layer, head_dim apart
    /// from hidden/heads, top-level rope_theta; the fused expert layout in three shards
    /// with a sliding window; bf16 weights with clip_qkv and top-3 renormalised routing.
    static let local = ["qwen3moe-tied-dense", "mixtral-fused-sharded", "olmoe-bf16-clip"]
    static let names = ["mixtral-tiny", "olmoe-tiny", "qwen2moe-tiny"] + local

    static func directory(_ name: String) -> String {
        if local.contains(name) {
            return (projectRoot as NSString).appendingPathComponent("Tests/TesseraEngineTests/Reference/" + name)
        }
        return (hfMoE as NSString).appendingPathComponent(name)
    }
    static func expected(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: (directory(name) as NSString).appendingPathComponent("expected.safetensors"))
    }
}

/// A scratch directory removed when the value goes away.
final class TemporaryDirectory {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "tessera-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}
