import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// What `tessera eval` and `tessera grad` do, end to end through files.
@Suite struct JobTests {
    @Test func evalReportsLossTokensRouterCountsAndLogits() throws {
        let dir = TemporaryDirectory()
        let name = "mixtral-fused-sharded"
        let tokensPath = ReferenceFixtures.path(name) + "/expected.safetensors"
        let report = try Evaluation.run(model: try MoEModel(directory: ReferenceFixtures.path(name)), tokensPath: tokensPath,
                                        logitsOut: dir.sub("logits.safetensors"))
        let expected = try ReferenceFixtures.expected(name)
        #expect(abs(report.loss - Double(try expected.floats("loss")[0])) < 1e-5)
        #expect(report.tokens == 2 * 8)
        #expect(report.routerCounts[0] == (try expected.int64s("router_counts.0")).map(Int.init))
        let json = try JSONValue.parse(Data(try JSONOutput.compact(report).utf8))
        #expect(json["loss_nats_per_token"]?.doubleValue != nil && json["tokens"]?.intValue == 16 && json["router_counts"]?.arrayValue?.count == 2)
        let logits = try SafetensorsFile(path: dir.sub("logits.safetensors"))
        #expect(logits.tensors["logits"]?.shape == [2, 9, 64] && logits.tensors["logits"]?.dtype == .f32)
        let ref = try expected.floats("logits")
        let ours = try logits.floats("logits")
        #expect(zip(ref, ours).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func gradWritesCheckpointNamesAndOnlyChosenExperts() throws {
        let dir = TemporaryDirectory()
        let name = "mixtral-fused-sharded"
        let tokensPath = ReferenceFixtures.path(name) + "/expected.safetensors"
        let out = dir.sub("g.safetensors")
        _ = try GradientExport.run(model: try MoEModel(directory: ReferenceFixtures.path(name)), tokensPath: tokensPath, outPath: out, experts: "1:2")
        let g = try SafetensorsFile(path: out)
        #expect(Set(g.tensors.keys) == ["model.layers.1.mlp.experts.gate_up_proj", "model.layers.1.mlp.experts.down_proj"])
        let expected = try ReferenceFixtures.expected(name)
        let ours = try g.floats("model.layers.1.mlp.experts.gate_up_proj")
        let ref = try expected.floats("grad.model.layers.1.mlp.experts.gate_up_proj")
        let per = 2 * 48 * 32
        let scale = ref.map { abs($0) }.max()!
        for e in 0..<4 {
            let slice = (e * per)..<((e + 1) * per)
            if e == 2 {
                #expect(slice.allSatisfy { abs(ours[$0] - ref[$0]) <= 1e-3 * scale })
            } else {
                #expect(slice.allSatisfy { ours[$0] == 0 }, "expert \(e) is not in the list and must stay zero")
            }
        }
        #expect(throws: EngineError.self) {
            _ = try GradientExport.run(model: try MoEModel(directory: ReferenceFixtures.path(name)), tokensPath: tokensPath, outPath: out, experts: "7:0")
        }
        #expect { _ = try GradientExport.run(model: try MoEModel(directory: ReferenceFixtures.path(name)), tokensPath: tokensPath, outPath: out, experts: "one") }
            throws: { "\($0)".contains("\"one\" is not of the form LAYER:EXPERT") }
    }

    @Test func tokenFileErrorsNameTheFile() throws {
        let dir = TemporaryDirectory()
        let path = dir.sub("tokens.safetensors")
        try SafetensorsWriter.write([TensorRecord(name: "input_ids", shape: [4], int64s: [1, 2, 3, 4])], to: path)
        #expect { try TokenBatch.load(path: path) } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("expected [batch, seq]")
        }
        try SafetensorsWriter.write([TensorRecord(name: "input_ids", shape: [1, 2], int64s: [1, -4])], to: path)
        #expect { try TokenBatch.load(path: path) } throws: { "\($0)".contains("token id -4") }
        try SafetensorsWriter.write([TensorRecord(name: "ids", shape: [1, 2], int64s: [1, 4])], to: path)
        #expect { try TokenBatch.load(path: path) } throws: { "\($0)".contains("no tensor named input_ids") }
    }
}
