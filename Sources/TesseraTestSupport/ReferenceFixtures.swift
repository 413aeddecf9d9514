import Foundation
import TesseraEngine
import TesseraCore

/// The repository's own files that tests read: the reference checkpoints made by
/// scripts/make_reference_fixtures.py (transformers' logits, loss, router counts and
/// gradients) under Tests/Fixtures/reference, the policy under Market/, and the built
/// `tessera` binary for the kill tests. Nothing outside the repository.
public enum ReferenceFixtures {
    public static let projectRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    public static let directory = (projectRoot as NSString).appendingPathComponent("Tests/Fixtures/reference")

    /// Every reference checkpoint: what each covers is in scripts/make_reference_fixtures.py.
    public static let names = ["mixtral-tiny", "olmoe-tiny", "qwen2moe-tiny",
                               "qwen3moe-tied-dense", "mixtral-fused-sharded", "olmoe-bf16-clip",
                               "deepseekv2-tiny", "deepseekv3-tiny", "deepseekv2-qlora-groups-bf16", "deepseekv3-bias-fused",
                               "gptoss-tiny", "gptoss-clamp-bf16"]
    /// Checkpoints whose experts are stored in MXFP4 (gpt-oss as released): the engine
    /// reads them and the library keeps them as they are, but the engine's plain `save`
    /// writes them back in bf16, so the export check leaves them out.
    public static let mxfp4 = ["gptoss-mxfp4"]

    public static func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    public static func expected(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: (path(name) as NSString).appendingPathComponent("expected.safetensors"))
    }

    /// The token file of a fixture: its expected.safetensors holds `input_ids`.
    public static func tokens(_ name: String) -> String { (path(name) as NSString).appendingPathComponent("expected.safetensors") }

    public static let marketRules = (projectRoot as NSString).appendingPathComponent("Market")

    /// The `tessera` executable the kill tests run (`swift build` makes it; TESSERA_BIN overrides).
    public static var binary: String {
        ProcessInfo.processInfo.environment["TESSERA_BIN"] ?? (projectRoot as NSString).appendingPathComponent(".build/debug/tessera")
    }

    /// The fuzz targets' executable the corpus replay runs (TESSERA_FUZZ_BIN overrides).
    public static var fuzzBinary: String {
        ProcessInfo.processInfo.environment["TESSERA_FUZZ_BIN"] ?? (projectRoot as NSString).appendingPathComponent(".build/debug/tessera-fuzz")
    }
}
