import Foundation
import TesseraEngine
import TesseraCore

/// How much of a fine-tuned update's loss gain survives delta encoding. A small random
/// Qwen3-MoE model is fine-tuned (sparse AdamW, two experts per layer) on random token
/// rows; the gain is measured on those rows, since a random model has nothing to
/// generalise. The held-out version of this figure comes with the Proof-of-Loss work.
public struct GainSurvival: Encodable, Sendable {
    public struct Row: Encodable, Sendable {
        public var encoding: String
        public var density: Double?
        public var compressedBytes: Int
        public var ratio: Double
        public var loss: Double
        public var gainKept: Double
        enum CodingKeys: String, CodingKey {
            case encoding, density, ratio, loss
            case compressedBytes = "compressed_bytes"
            case gainKept = "gain_kept"
        }
    }
    public var baseLoss: Double
    public var tunedLoss: Double
    public var rows: [Row]

    enum CodingKeys: String, CodingKey {
        case rows
        case baseLoss = "base_loss"
        case tunedLoss = "tuned_loss"
    }

    public static func run(steps: Int = 30) throws -> GainSurvival {
        let config = ModelConfig(family: .qwen3MoE, vocabSize: 256, hiddenSize: 128, layers: 2, heads: 4, kvHeads: 2,
                                 experts: 8, topK: 2, expertWidth: 256, normTopKProb: true)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 11)
        var rng = SplitMix64(seed: 12)
        let tokens = try TokenBatch(batch: 4, seq: 64, ids: (0..<256).map { _ in Int32(rng.next() % 256) })
        let run = ModelRun(model: model, batch: 4, seq: 64, training: true)
        let baseLoss = try run.forward(tokens)
        let experts = (0..<2).flatMap { l in [ExpertID(layer: l, expert: 0), ExpertID(layer: l, expert: 1)] }
        let base = model.parameters.array
        let trainable = try TrainableSet.experts(experts, in: model.layout)
        let views = trainable.views(in: model.layout)
        let grads = FloatBuffer(count: model.parameters.count)
        let opt = AdamW(views: views, hyper: .init(learningRate: 1e-2, weightDecay: 0))
        for _ in 0..<steps {
            for v in views { grads.zero(v) }
            try run.lossAndGradients(tokens, trainable: trainable, grads: grads)
            clipGradientNorm(grads, views: views, maxNorm: 1)
            opt.update(params: model.parameters, grads: grads)
        }
        let tunedLoss = try run.forward(tokens)
        let tuned = model.parameters.array

        func weights(_ values: [Float], _ id: ExpertID) -> ExpertWeights {
            let e = model.layout.layers[id.layer].experts[id.expert]
            return ExpertWeights(tensors: [("gate", e.gate), ("up", e.up), ("down", e.down)].map { name, v in
                (name, DType.f32, [v.count], Array(values[v.offset..<(v.offset + v.count)]))
            })
        }
        var rows: [Row] = []
        for (encoding, density) in [(DeltaHeader.Encoding.sparse, 1.0 / 64), (.sparse, 1.0 / 16), (.sparse, 1.0 / 4), (.lossless, 1.0)] {
            var compressed = 0, fp32 = 0
            let P = model.parameters.pointer
            for i in base.indices { P[i] = base[i] }
            for id in experts {
                let header = DeltaHeader(format: DeltaHeader.formatName, layer: id.layer, expert: id.expert, base: String(repeating: "0", count: 64),
                                         encoding: encoding, modelType: "qwen3_moe", configSHA256: String(repeating: "0", count: 64), tensors: [])
                let r = try DeltaCodec.encode(base: weights(base, id), new: weights(tuned, id), header: header,
                                              options: DeltaOptions(encoding: encoding, density: density))
                compressed += r.stats.compressedBytes
                fp32 += r.stats.float32Bytes
                let dir = NSTemporaryDirectory() + "tessera-gain-\(getpid())"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: dir) }
                try DeltaCodec.write(r.records, header: r.header, to: dir + "/d.safetensors")
                let (file, h) = try DeltaCodec.read(dir + "/d.safetensors")
                let decoded = try DeltaCodec.decode(file, header: h, base: weights(base, id))
                let e = model.layout.layers[id.layer].experts[id.expert]
                for (t, v) in zip(decoded.tensors, [e.gate, e.up, e.down]) {
                    for j in 0..<v.count { P[v.offset + j] = t.values[j] }
                }
            }
            let loss = try run.forward(tokens)
            rows.append(Row(encoding: encoding.rawValue, density: encoding == .sparse ? density : nil, compressedBytes: compressed,
                            ratio: Double(fp32) / Double(compressed), loss: loss, gainKept: (baseLoss - loss) / (baseLoss - tunedLoss)))
        }
        return GainSurvival(baseLoss: baseLoss, tunedLoss: tunedLoss, rows: rows)
    }

    public var text: String {
        var lines = [String(format: "fine-tuned update (2 experts/layer, 2 layers): loss %.4f → %.4f on its training rows", baseLoss, tunedLoss)]
        for r in rows {
            lines.append(String(format: "  %@%@: %d bytes (%.1f× smaller than fp32), loss %.4f, gain kept %.1f%%",
                                r.encoding as NSString, (r.density.map { String(format: " density %.4f", $0) } ?? "") as NSString,
                                r.compressedBytes, r.ratio, r.loss, 100 * r.gainKept))
        }
        return lines.joined(separator: "\n")
    }
}
