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

    static let names = ["mixtral-tiny", "olmoe-tiny", "qwen2moe-tiny"]

    static func directory(_ name: String) -> String { (hfMoE as NSString).appendingPathComponent(name) }
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
