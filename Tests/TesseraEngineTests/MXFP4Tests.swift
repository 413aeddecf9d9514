import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// The MXFP4 quantiser against the fixture script's (the way the released gpt-oss
/// checkpoints were quantised), and the MXFP4 checkpoints the engine writes.
@Suite struct MXFP4Tests {
    @Test func encoderMakesThePythonQuantisersBlocksAndScales() throws {
        let file = try SafetensorsFile(path: ReferenceFixtures.directory + "/mxfp4-quantizer.safetensors")
        let weight = try file.floats("weight")
        let shape = file.tensors["weight"]!.shape
        let (experts, inputs, outputs) = (shape[0], shape[1], shape[2])
        let blocks = Array(file.bytes(of: file.tensors["blocks"]!)), scales = Array(file.bytes(of: file.tensors["scales"]!))
        let per = inputs * outputs, blockBytes = blocks.count / experts, scaleBytes = scales.count / experts
        for e in 0..<experts {
            let encoded = weight.withUnsafeBufferPointer {
                MXFP4.encode(UnsafeBufferPointer(rebasing: $0[(e * per)..<((e + 1) * per)]), inputs: inputs, outputs: outputs)
            }
            #expect(encoded.scales == Array(scales[(e * scaleBytes)..<((e + 1) * scaleBytes)]), "expert \(e) scales")
            #expect(encoded.blocks == Array(blocks[(e * blockBytes)..<((e + 1) * blockBytes)]), "expert \(e) blocks")
        }
    }

    /// Every MXFP4 value quantises to itself: a checkpoint decoded and encoded again holds
    /// the same values (not always the same bytes: a group's scale is chosen afresh).
    @Test func decodedValuesEncodeBackToTheSameValues() throws {
        let files = try CheckpointFiles(directory: ReferenceFixtures.path("gptoss-mxfp4"))
        let name = "model.layers.1.mlp.experts.gate_up_proj"
        let shape = [files.info(MXFP4.blocksName(name))!.shape[0], files.info(MXFP4.blocksName(name))!.shape[2] * 32, files.info(MXFP4.blocksName(name))!.shape[1]]
        var values = [Float](repeating: 0, count: shape.reduce(1, *))
        values.withUnsafeMutableBufferPointer {
            MXFP4.decode(blocks: files.bytes(MXFP4.blocksName(name))!, scales: files.bytes(MXFP4.scalesName(name))!, shape: shape, into: $0.baseAddress!)
        }
        let per = shape[1] * shape[2]
        for e in 0..<shape[0] {
            let slice = Array(values[(e * per)..<((e + 1) * per)])
            let encoded = slice.withUnsafeBufferPointer { MXFP4.encode($0, inputs: shape[1], outputs: shape[2]) }
            var again = [Float](repeating: 0, count: per)
            let bad = encoded.blocks.withUnsafeBytes { b in encoded.scales.withUnsafeBytes { s in
                again.withUnsafeMutableBufferPointer { MXFP4.decodeExpert(blocks: b, scales: s, inputs: shape[1], outputs: shape[2], into: $0.baseAddress!) }
            } }
            #expect(bad == nil)
            #expect(again == slice, "expert \(e)")
        }
    }

    /// A float gpt-oss model saved with MXFP4 experts reads back as the quantised model:
    /// experts rounded to MXFP4, everything else as it was, and the config says mxfp4.
    @Test func savingWithMXFP4ExpertsWritesTheReleasedFormat() throws {
        let s = TemporaryDirectory()
        let source = try MoEModel(directory: ReferenceFixtures.path("gptoss-mxfp4"))
        try source.save(directory: s.sub("q"), dtype: .f32, mxfp4Experts: true)
        let files = try CheckpointFiles(directory: s.sub("q"))
        #expect(files.info("model.layers.0.mlp.experts.down_proj_blocks")?.dtype == .u8)
        #expect(files.info("model.layers.0.mlp.experts.down_proj") == nil)
        let reread = try MoEModel(directory: s.sub("q"))
        #expect(reread.config.mxfp4Experts)
        #expect(reread.parameterValues == source.parameterValues, "MXFP4 values survive a second quantisation")
        let original = try CheckpointFiles(directory: ReferenceFixtures.path("gptoss-mxfp4"))
        #expect(Array(files.bytes("model.layers.0.self_attn.sinks")!) == Array(original.bytes("model.layers.0.self_attn.sinks")!))
        // Not a gpt-oss model, or widths that are not multiples of 32: refused before writing.
        let mixtral = try MoEModel(directory: ReferenceFixtures.path("mixtral-tiny"))
        #expect { try mixtral.save(directory: s.sub("m"), mxfp4Experts: true) } throws: { "\($0)".contains("MXFP4 experts need a gpt_oss model") }
        #expect(!FileManager.default.fileExists(atPath: s.sub("m")))
    }
}
