import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// Writes checkpoints with Tessera's writer into TESSERA_EXPORT_DIR (when set) so that
/// scripts/check_transformers_loads.py can load them in transformers and compare losses.
/// Without the variable the test only checks that the export reloads here.
@Suite struct ExportForTransformers {
    @Test(arguments: ReferenceFixtures.names)
    func export(_ name: String) throws {
        let model = try MoEModel(directory: ReferenceFixtures.path(name))
        let root = ProcessInfo.processInfo.environment["TESSERA_EXPORT_DIR"]
        let temp = TemporaryDirectory()
        let dir = root.map { $0 + "/" + name } ?? temp.path
        try model.save(directory: dir, dtype: name.contains("bf16") ? .bf16 : .f32)
        let again = try MoEModel(directory: dir)
        let tokens = try ReferenceTests.tokens(try ReferenceFixtures.expected(name))
        let a = try ModelRun(model: model, batch: tokens.batch, seq: tokens.seq, training: false).forward(tokens)
        let b = try ModelRun(model: again, batch: tokens.batch, seq: tokens.seq, training: false).forward(tokens)
        #expect(a == b)
    }
}
