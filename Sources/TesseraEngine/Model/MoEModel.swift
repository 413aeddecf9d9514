import Foundation
import TesseraCore

/// A Mixture-of-Experts causal language model held as one flat float32 parameter buffer
/// with named views, as llm.c holds GPT-2.
public final class MoEModel: @unchecked Sendable {
    public let config: ModelConfig
    public let layout: WeightLayout
    public let parameters: FloatBuffer
    /// The dtype each checkpoint tensor had on disk, for writing it back unchanged.
    public var sourceDTypes: [DType]
    /// Per sparse layer, which routed experts are loaded (nil: all). Tokens are routed
    /// among the resident experts only; see whitepaper-notes/library.md for the rule.
    public var residentExperts: [[Bool]]?

    public convenience init(config: ModelConfig, layout: ExpertLayout = .perExpert) {
        self.init(layout: WeightLayout(config: config, expertLayout: layout))
    }

    /// Allocates the parameters of a layout already made (and checked).
    init(layout: WeightLayout) {
        self.config = layout.config
        self.layout = layout
        self.parameters = FloatBuffer(count: layout.totalCount)
        self.sourceDTypes = Array(repeating: .f32, count: layout.tensors.count)
    }

    /// Loads a Hugging Face checkpoint directory (config.json plus one or several
    /// safetensors files). Strict: every expected tensor present with its exact shape, no
    /// tensor left unused. bf16 matrices stay bf16 in the mapped files (`keepBF16`, see
    /// `FrozenWeights`) until something trains them.
    public convenience init(directory: String, keepBF16: Bool = MoEModel.keepsBF16) throws {
        let config = try ModelConfig.load(directory: directory)
        let files = try CheckpointFiles(directory: directory)
        // The files must match the config before the parameters are allocated: a config
        // that promises more than the files hold would otherwise size the buffer.
        let layout = WeightLayout(config: config, expertLayout: Self.expertLayout(of: files))
        try layout.checkCheckpoint(files)
        let (bytes, overflow) = layout.tensors.enumerated().reduce(0) { sum, t in
            let bf16 = keepBF16 && files.entries[t.element.name]?.1.dtype == .bf16 && Self.mayStayBF16(t.element)
            return sum + t.element.count * (bf16 ? 1 : 2)
        }.multipliedReportingOverflow(by: 2)
        try requireMemory(forParameters: overflow ? Int.max : bytes, what: "the model in \(directory)",
                          hint: "split it into a library (tessera split) and load part of it (--resident)")
        self.init(layout: layout)
        try fill(from: files, keepBF16: keepBF16)
    }

    /// The on-disk expert layout of a checkpoint: fused when it holds fused expert tensors.
    public static func expertLayout(of files: CheckpointFiles) -> ExpertLayout {
        files.entries.keys.contains { $0.hasSuffix(".mlp.experts.gate_up_proj") || $0.hasSuffix(".mlp.experts.down_proj") }
            ? .fused : .perExpert
    }

    public func checkCheckpoint(_ files: CheckpointFiles) throws {
        try layout.checkCheckpoint(files)
    }

    public func load(from files: CheckpointFiles, keepBF16: Bool = MoEModel.keepsBF16) throws {
        try checkCheckpoint(files)
        try fill(from: files, keepBF16: keepBF16)
    }

    /// `load` after the check.
    private func fill(from files: CheckpointFiles, keepBF16: Bool) throws {
        for (i, slot) in layout.tensors.enumerated() {
            if slot.mxfp4 {
                try loadMXFP4(i, from: files)
                continue
            }
            let (fileIndex, info) = files.entries[slot.name]!
            let file = files.files[fileIndex]
            try setTensor(i, from: file.bytes(of: info), dtype: info.dtype, origin: file.path, mappedBy: keepBF16 ? file : nil)
            if !FrozenWeights.overlaps(parameters.pointer + slot.offset, count: slot.count) { file.release(info) }
        }
    }

    /// Decodes an MXFP4 expert weight (its shapes were checked by `checkCheckpoint`). Its
    /// values are exact in bf16, the dtype it is written back in.
    func loadMXFP4(_ index: Int, from files: CheckpointFiles) throws {
        let slot = layout.tensors[index]
        guard let (bf, blocks) = files.entries[MXFP4.blocksName(slot.name)], let (sf, scales) = files.entries[MXFP4.scalesName(slot.name)] else {
            throw EngineError.checkpoint("\(files.directory): \(slot.name) is missing its MXFP4 blocks or scales")
        }
        let blockFile = files.files[bf], scaleFile = files.files[sf]
        MXFP4.decode(blocks: blockFile.bytes(of: blocks), scales: scaleFile.bytes(of: scales), shape: slot.shape,
                     into: parameters.pointer + slot.offset)
        blockFile.release(blocks)
        scaleFile.release(scales)
        sourceDTypes[index] = .bf16
        let p = parameters.pointer + slot.offset
        for j in 0..<slot.count where !p[j].isFinite {
            throw EngineError.checkpoint("\(files.path(of: MXFP4.scalesName(slot.name)) ?? files.directory): \(slot.name) decodes to a non-finite value at element \(j)")
        }
    }

    /// Whether bf16 matrices read from mapped files stay bf16 (`FrozenWeights`) until
    /// something trains them: on unless TESSERA_FROZEN=f32 (to compare the two).
    public static let keepsBF16: Bool = getenv("TESSERA_FROZEN").map { String(cString: $0) != "f32" } ?? true

    /// Whether tensor `index` may stay bf16: a matrix that the engine reads through matrix
    /// products and embedding rows only (Qwen2-MoE's one-row shared-expert gate is read as
    /// a vector).
    public func mayStayBF16(_ index: Int) -> Bool { Self.mayStayBF16(layout.tensors[index]) }

    public static func mayStayBF16(_ slot: TensorSlot) -> Bool {
        // Biases (gpt-oss's per-expert ones are 2-D) are added, not multiplied: they stay float.
        slot.shape.count >= 2 && !slot.name.hasSuffix("shared_expert_gate.weight") && !slot.name.hasSuffix("_bias") && !slot.name.hasSuffix(".bias")
    }

    /// Fills tensor `index` (or, with `elementOffset`, a run of it: one expert's slice of a
    /// fused tensor) from little-endian bytes of a floating-point dtype. Non-finite values
    /// are refused with the tensor, element and origin named. With `mappedBy` (the mapped
    /// file holding `bytes`, kept alive as long as needed), a bf16 matrix stays bf16 there.
    public func setTensor(_ index: Int, from bytes: UnsafeRawBufferPointer, dtype: DType, elementOffset: Int = 0, origin: String,
                          mappedBy file: AnyObject? = nil) throws {
        let slot = layout.tensors[index]
        guard dtype.isFloatingPoint else {
            throw EngineError.checkpoint("tensor \(slot.name) in \(origin) has dtype \(dtype.rawValue); supported: F32, F16, BF16, F64")
        }
        let count = bytes.count / dtype.byteSize
        guard bytes.count % dtype.byteSize == 0, elementOffset >= 0, elementOffset + count <= slot.count else {
            throw EngineError.checkpoint("tensor \(slot.name) in \(origin): \(bytes.count) bytes of \(dtype.rawValue) at element \(elementOffset) do not fit its \(slot.count) elements")
        }
        sourceDTypes[index] = dtype
        guard count > 0 else { return }
        let dst = parameters.pointer + slot.offset + elementOffset
        if let file, dtype == .bf16, mayStayBF16(index) {
            let source = bytes.baseAddress!
            for j in 0..<count where source.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self) & 0x7F80 == 0x7F80 {
                throw EngineError.checkpoint("tensor \(slot.name) in \(origin) holds a non-finite value (\(floatFromBF16(source.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))) at element \(elementOffset + j)")
            }
            FrozenWeights.thaw(dst, count: count, keep: false)
            FrozenWeights.register(dst, count: count, source: source, owner: file)
            return
        }
        FrozenWeights.thaw(dst, count: count, keep: false)
        convertToFloat(bytes.baseAddress!, dtype: dtype, count: count, into: dst)
        for j in 0..<count where !dst[j].isFinite {
            throw EngineError.checkpoint("tensor \(slot.name) in \(origin) holds a non-finite value (\(dst[j])) at element \(elementOffset + j)")
        }
    }

    public func tensor(_ name: String) -> [Float]? {
        guard let i = layout.indexByName[name] else { return nil }
        let s = layout.tensors[i]
        return FrozenWeights.array(parameters.pointer + s.offset, count: s.count)
    }

    /// The values of a view, wherever they are kept.
    public func values(_ view: ParamView) -> [Float] { FrozenWeights.array(parameters.pointer + view.offset, count: view.count) }

    /// Every parameter value in buffer order, wherever it is kept.
    public var parameterValues: [Float] { FrozenWeights.array(parameters.pointer, count: parameters.count) }

    /// Makes every parameter float, for code that edits weights in place.
    public func thawAll() { FrozenWeights.thaw(parameters.pointer, count: parameters.count) }

    /// Makes views float in the parameter buffer, for code that writes them (training).
    public func thaw(_ views: [ParamView]) {
        for v in views { FrozenWeights.thaw(parameters.pointer + v.offset, count: v.count) }
    }

    /// Bytes of parameters kept as bf16 outside the parameter buffer.
    public var bf16Bytes: Int {
        let lo = UInt(bitPattern: parameters.pointer)
        return FrozenWeights.backedBytes(in: lo..<(lo + UInt(parameters.count * 4))) / 2
    }

    /// The parameters as checkpoint tensors, each in its source dtype (or `dtype`).
    public func records(dtype: DType? = nil) -> [TensorRecord] {
        layout.tensors.enumerated().map { i, slot in
            let values = FrozenWeights.array(parameters.pointer + slot.offset, count: slot.count)
            return TensorRecord(name: slot.name, shape: slot.shape, floats: values, as: dtype ?? sourceDTypes[i])
        }
    }

    /// Writes config.json and model.safetensors that transformers loads. `mxfp4Experts`
    /// (gpt-oss) stores the routed experts' weights quantised to MXFP4 as the released
    /// checkpoints do (lossy unless they hold MXFP4 values already) and says so in
    /// `quantization_config`; everything else in `dtype`.
    public func save(directory: String, dtype: DType? = nil, mxfp4Experts: Bool = false) throws {
        guard !mxfp4Experts || (config.family == .gptOss && config.hiddenSize % 32 == 0 && config.expertWidth % 32 == 0) else {
            throw EngineError.checkpoint("MXFP4 experts need a gpt_oss model with hidden_size and intermediate_size multiples of 32 (this is \(config.family.rawValue), \(config.hiddenSize), \(config.expertWidth))")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var records = records(dtype: dtype)
        if mxfp4Experts {
            var quantised = config
            quantised.mxfp4Experts = true
            let flags = WeightLayout(config: quantised, expertLayout: .fused).tensors.map(\.mxfp4)
            guard layout.expertLayout == .fused else { throw EngineError.checkpoint("MXFP4 experts need the fused expert layout") }
            records = zip(zip(layout.tensors, records), flags).flatMap { pair, mxfp4 -> [TensorRecord] in
                let (slot, record) = pair
                guard mxfp4 else { return [record] }
                let (experts, inputs, outputs) = (slot.shape[0], slot.shape[1], slot.shape[2])
                var blocks: [UInt8] = [], scales: [UInt8] = []
                for e in 0..<experts {
                    let encoded = MXFP4.encode(UnsafeBufferPointer(start: parameters.pointer + slot.offset + e * inputs * outputs, count: inputs * outputs),
                                               inputs: inputs, outputs: outputs)
                    blocks += encoded.blocks
                    scales += encoded.scales
                }
                return [TensorRecord(name: MXFP4.blocksName(slot.name), dtype: .u8, shape: MXFP4.blocksShape(slot.shape), bytes: blocks),
                        TensorRecord(name: MXFP4.scalesName(slot.name), dtype: .u8, shape: MXFP4.scalesShape(slot.shape), bytes: scales)]
            }
        }
        try SafetensorsWriter.write(records, to: (directory as NSString).appendingPathComponent("model.safetensors"))
        let json = config.huggingFaceJSON(dtype: dtype ?? sourceDTypes.first ?? .f32, mxfp4Experts: mxfp4Experts)
        try AtomicFile.write(Array(json.utf8), to: (directory as NSString).appendingPathComponent("config.json"))
    }

    /// Parameter count, and how many of them are routed-expert weights.
    public var parameterCount: Int { layout.tensors.reduce(0) { $0 + $1.count } }
}

extension ModelConfig {
    /// rope_parameters as transformers 5 writes them: the theta, and YaRN's fields when scaled.
    var ropeParametersJSON: JSONValue {
        func d(_ x: Double) -> JSONValue { .number(x) }
        guard let y = yarn else { return .object([("rope_theta", d(ropeTheta)), ("rope_type", .string("default"))]) }
        return .object([("rope_theta", d(ropeTheta)), ("rope_type", .string("yarn")), ("factor", d(y.factor)),
                        ("beta_fast", d(y.betaFast)), ("beta_slow", d(y.betaSlow)),
                        ("original_max_position_embeddings", .integer(Int64(y.originalMaxPositions))), ("truncate", .bool(y.truncate)),
                        ("attention_factor", d(y.attentionFactor))])
    }

    /// config.json in the transformers 5 spelling for this family.
    public func huggingFaceJSON(dtype: DType = .f32, mxfp4Experts: Bool = false) -> String {
        var m: [(String, JSONValue)] = []
        let arch: String
        switch family {
        case .mixtral: arch = "MixtralForCausalLM"
        case .olmoe: arch = "OlmoeForCausalLM"
        case .qwen2MoE: arch = "Qwen2MoeForCausalLM"
        case .qwen3MoE: arch = "Qwen3MoeForCausalLM"
        case .deepseekV2: arch = "DeepseekV2ForCausalLM"
        case .deepseekV3: arch = "DeepseekV3ForCausalLM"
        case .gptOss: arch = "GptOssForCausalLM"
        }
        func n(_ x: Int) -> JSONValue { .integer(Int64(x)) }
        m.append(("architectures", .array([.string(arch)])))
        m.append(("model_type", .string(family.rawValue)))
        m.append(("vocab_size", n(vocabSize)))
        m.append(("hidden_size", n(hiddenSize)))
        m.append(("num_hidden_layers", n(layers)))
        m.append(("num_attention_heads", n(heads)))
        m.append(("num_key_value_heads", n(kvHeads)))
        m.append(("head_dim", n(headDim)))
        m.append(("rms_norm_eps", .number(Double("\(rmsNormEps)") ?? Double(rmsNormEps))))
        m.append(("rope_theta", .number(ropeTheta)))
        m.append(("hidden_act", .string("silu")))
        m.append(("num_experts_per_tok", n(topK)))
        m.append(("tie_word_embeddings", .bool(tieWordEmbeddings)))
        m.append(("max_position_embeddings", n(4096)))
        m.append(("torch_dtype", .string(dtype == .bf16 ? "bfloat16" : dtype == .f16 ? "float16" : "float32")))
        switch family {
        case .mixtral:
            m.append(("num_local_experts", n(experts)))
            m.append(("intermediate_size", n(expertWidth)))
            m.append(("sliding_window", slidingWindow.map(n) ?? .null))
        case .olmoe:
            m.append(("num_experts", n(experts)))
            m.append(("intermediate_size", n(expertWidth)))
            m.append(("norm_topk_prob", .bool(normTopKProb)))
            m.append(("attention_bias", .bool(qkvBias)))
            m.append(("clip_qkv", clipQKV.map { .number(Double("\($0)") ?? Double($0)) } ?? .null))
        case .qwen2MoE, .qwen3MoE:
            m.append(("num_experts", n(experts)))
            m.append(("moe_intermediate_size", n(expertWidth)))
            m.append(("intermediate_size", n(denseWidth > 0 ? denseWidth : expertWidth)))
            m.append(("norm_topk_prob", .bool(normTopKProb)))
            m.append(("decoder_sparse_step", n(1)))
            m.append(("mlp_only_layers", .array((0..<layers).filter { !sparseLayers[$0] }.map(n))))
            m.append(("use_sliding_window", .bool(false)))
            if family == .qwen2MoE {
                m.append(("shared_expert_intermediate_size", n(sharedExpertWidth)))
                m.append(("qkv_bias", .bool(qkvBias)))
            } else {
                m.append(("attention_bias", .bool(qkvBias)))
            }
        case .deepseekV2, .deepseekV3:
            m.removeAll { $0.0 == "head_dim" || $0.0 == "rope_theta" }
            m.append(("rope_parameters", ropeParametersJSON))
            m.append(contentsOf: deepSeekJSONFields())
        case .gptOss:
            m.removeAll { $0.0 == "rope_theta" }
            m.append(("rope_parameters", ropeParametersJSON))
            m.append(("num_local_experts", n(experts)))
            m.append(("intermediate_size", n(expertWidth)))
            m.append(("attention_bias", .bool(true)))
            m.append(("sliding_window", slidingWindow.map(n) ?? .null))
            m.append(("layer_types", .array((0..<layers).map { .string(slidingLayers?[$0] ?? true ? "sliding_attention" : "full_attention") })))
            if let c = clampedSwiGLU {
                m.append(("swiglu_limit", .number(Double("\(c.limit)") ?? Double(c.limit))))
                m.append(("swiglu_alpha", .number(Double("\(c.alpha)") ?? Double(c.alpha))))
            }
            if mxfp4Experts {
                // As the released gpt-oss configs say it: only the experts are quantised.
                m.append(("quantization_config", .object([("quant_method", .string("mxfp4")), ("modules_to_not_convert", .array(
                    ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"].map { .string($0) }))])))
            }
        }
        return Self.floatLiterals(JSONValue.object(m).serialized()) + "\n"
    }

    /// transformers 5's strict config classes refuse an integer literal where they declare a
    /// float (routed_scaling_factor: 1), and the canonical writer drops ".0"; these keys get
    /// it back.
    static func floatLiterals(_ json: String) -> String {
        let keys = ["rope_theta", "routed_scaling_factor", "factor", "beta_fast", "beta_slow", "swiglu_limit", "swiglu_alpha",
                    "attention_factor", "rms_norm_eps"]
        var out = json
        for key in keys {
            guard let regex = try? NSRegularExpression(pattern: "(\"\(key)\":-?[0-9]+)(?=[,}])") else { continue }
            out = regex.stringByReplacingMatches(in: out, range: NSRange(out.startIndex..., in: out), withTemplate: "$1.0")
        }
        return out
    }
}
