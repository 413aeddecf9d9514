import ArgumentParser
import Foundation
import TesseraEngine
import TesseraCore

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a randomly initialised MoE checkpoint (for tests and benchmarks).")
    @Option(help: "mixtral, olmoe, qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3 or gpt_oss.") var family = "qwen3_moe"
    @Option var vocab = 256
    @Option var hidden = 512
    @Option var layers = 4
    @Option var heads = 8
    @Option(name: .customLong("kv-heads")) var kvHeads = 8
    @Option var experts = 8
    @Option(name: .customLong("top-k")) var topK = 2
    @Option(name: .customLong("expert-width")) var expertWidth = 1024
    @Option(help: "F32, BF16 or F16.") var dtype = "F32"
    @Option var seed: UInt64 = 0
    @Option(help: "Output checkpoint directory.") var out: String

    func run() throws {
        guard let fam = ModelFamily(rawValue: family) else {
            throw ValidationError("--family \(family): supported: \(ModelFamily.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let dt = DType(rawValue: dtype.uppercased()), dt.isFloatingPoint else { throw ValidationError("--dtype \(dtype): use F32, BF16 or F16") }
        guard vocab > 0, hidden > 0, layers > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0, hidden % heads == 0,
              experts > 0, topK > 0, topK <= experts, expertWidth > 0 else {
            throw ValidationError("sizes must be positive, heads a multiple of kv heads and of hidden's divisor, top-k ≤ experts")
        }
        // Rotary embeddings pair a head's dimensions: eval refuses an odd head size.
        guard (hidden / heads) % 2 == 0 else {
            throw ValidationError("--hidden \(hidden) / --heads \(heads) = \(hidden / heads): the head size must be even (rotary embeddings rotate pairs)")
        }
        // The parameters, counted without overflow, must fit this machine's memory as floats.
        let headDim = hidden / heads
        func product(_ xs: Int...) -> Int? {
            xs.reduce(Optional(1)) { acc, x in acc.flatMap { a in let (p, o) = a.multipliedReportingOverflow(by: x); return o ? nil : p } }
        }
        let perLayerParts = [product(hidden, heads, headDim, 2), product(hidden, kvHeads, headDim, 2), product(experts, 3, hidden, expertWidth),
                             product(hidden, experts), product(3, hidden, expertWidth)]
        let perLayer = perLayerParts.reduce(Optional(0)) { acc, x in acc.flatMap { a in x.flatMap { let (s, o) = a.addingReportingOverflow($0); return o ? nil : s } } }
        let total = perLayer.flatMap { l in product(l, layers) }.flatMap { l in product(vocab, hidden, 2).flatMap { let (s, o) = l.addingReportingOverflow($0); return o ? nil : s } }
        let memory = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        guard let total, let bytes = product(total, 4), bytes <= memory else {
            throw ValidationError("these sizes make \(total.map { "\($0) parameters" } ?? "more parameters than a 64-bit count holds"), more than this machine's \(memory >> 30) GiB of memory holds as floats")
        }
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: out), !existing.isEmpty {
            throw ValidationError("--out \(out) is not empty; choose a new directory (nothing was written)")
        }
        let config = fam == .gptOss
            ? try ModelConfig.parse(Data(#"{"model_type":"gpt_oss","vocab_size":\#(vocab),"hidden_size":\#(hidden),"num_hidden_layers":\#(layers),"num_attention_heads":\#(heads),"num_key_value_heads":\#(kvHeads),"head_dim":\#(hidden / heads),"num_local_experts":\#(experts),"num_experts_per_tok":\#(topK),"intermediate_size":\#(expertWidth)}"#.utf8), file: "--family gpt_oss")
            : fam.isDeepSeek
            ? ModelConfig.deepSeek(fam, vocabSize: vocab, hiddenSize: hidden, layers: layers, heads: heads, experts: experts, topK: topK,
                                   expertWidth: expertWidth, denseLayers: layers > 1 ? 1 : 0)
            : ModelConfig(family: fam, vocabSize: vocab, hiddenSize: hidden, layers: layers, heads: heads, kvHeads: kvHeads,
                          experts: experts, topK: topK, expertWidth: expertWidth, denseWidth: expertWidth,
                          sharedExpertWidth: fam == .qwen2MoE ? expertWidth : 0)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: seed)
        try model.save(directory: out, dtype: dt)
        print("wrote \(out): \(model.parameterCount) parameters")
    }
}
