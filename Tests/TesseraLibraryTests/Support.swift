import Foundation
@testable import TesseraEngine

enum Paths {
    static let projectRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let shared = (projectRoot as NSString).appendingPathComponent("../shared/fixtures/hf-moe")
    static let sharedNames = ["mixtral-tiny", "olmoe-tiny", "qwen2moe-tiny"]
    static let localNames = ["qwen3moe-tied-dense", "mixtral-fused-sharded", "olmoe-bf16-clip"]
    static func fixture(_ name: String) -> String {
        localNames.contains(name)
            ? (projectRoot as NSString).appendingPathComponent("Tests/TesseraEngineTests/Reference/" + name)
            : (shared as NSString).appendingPathComponent(name)
    }
    static func tokens(_ name: String) -> String { fixture(name) + "/expected.safetensors" }
}

final class Scratch {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "tessera-lib-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func sub(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}
