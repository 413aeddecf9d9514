import ArgumentParser
import Foundation
import TesseraEngine
import TesseraCore

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a randomly initialised MoE checkpoint (for tests and benchmarks), of a shape you choose or with a real model's config.",
        discussion: """
        With --preset the checkpoint has the published config of a real model (\(ModelPreset.all.map(\.name).joined(separator: ", "))) \
        and is streamed to disk tensor by tensor, in files of at most 5 GB with an index, so memory stays small \
        whatever the size; --layers keeps the real widths with fewer layers, for disks that cannot hold the \
        checkpoint and its library twice. Free space is checked before anything is written.
        """)
    @Option(help: "A real model's config: \(ModelPreset.all.map(\.name).joined(separator: ", ")). The size options below do not apply; --layers lowers the layer count.")
    var preset: String?
    @Option(help: "mixtral, olmoe, qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3 or gpt_oss.") var family: String?
    @Option var vocab: Int?
    @Option var hidden: Int?
    @Option var layers: Int?
    @Option var heads: Int?
    @Option(name: .customLong("kv-heads")) var kvHeads: Int?
    @Option var experts: Int?
    @Option(name: .customLong("top-k")) var topK: Int?
    @Option(name: .customLong("expert-width")) var expertWidth: Int?
    @Option(help: "F32, BF16 or F16; MXFP4 for a gpt-oss preset (experts in MXFP4, the rest in bf16, as released).") var dtype = "F32"
    @Option var seed: UInt64 = 0
    @Option(help: "Output checkpoint directory.") var out: String

    func run() throws {
        if let preset { return try writePreset(preset) }
        let family = self.family ?? "qwen3_moe", vocab = self.vocab ?? 256, hidden = self.hidden ?? 512, layers = self.layers ?? 4
        let heads = self.heads ?? 8, kvHeads = self.kvHeads ?? 8, experts = self.experts ?? 8, topK = self.topK ?? 2
        let expertWidth = self.expertWidth ?? 1024
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

    func writePreset(_ name: String) throws {
        let preset = try ModelPreset.named(name)
        let given = [("--family", family != nil), ("--vocab", vocab != nil), ("--hidden", hidden != nil), ("--heads", heads != nil),
                     ("--kv-heads", kvHeads != nil), ("--experts", experts != nil), ("--top-k", topK != nil), ("--expert-width", expertWidth != nil)]
        if let clash = given.first(where: \.1) {
            throw ValidationError("\(clash.0) does not apply with --preset (the preset fixes the shape; --layers lowers the layer count)")
        }
        let upper = dtype.uppercased()
        let mxfp4 = upper == "MXFP4"
        guard let dt = mxfp4 ? DType.bf16 : DType(rawValue: upper), dt.isFloatingPoint else {
            throw ValidationError("--dtype \(dtype): use F32, BF16, F16, or MXFP4 for gpt-oss")
        }
        let (json, config) = try preset.config(layers: layers)
        let checkpoint = try RandomCheckpoint(config: config, dtype: dt, mxfp4Experts: mxfp4, seed: seed)
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: out), !existing.isEmpty {
            throw ValidationError("--out \(out) is not empty; choose a new directory (nothing was written)")
        }
        let needed = checkpoint.totalBytes + (1 << 20)
        if let free = FreeSpace.bytes(near: out), free < needed {
            var fits: Int?
            for n in stride(from: config.layers - 1, through: 1, by: -1) {
                let smaller = try RandomCheckpoint(config: try preset.config(layers: n).config, dtype: dt, mxfp4Experts: mxfp4, seed: seed)
                if smaller.totalBytes + (1 << 20) <= free { fits = n; break }
            }
            throw CoreError("\(name) with \(config.layers) layers in \(upper) is \(gigabytes(needed)) GB; the disk holding \(out) has \(gigabytes(free)) GB free\(fits.map { ": --layers \($0) fits (remember the library takes as much again)" } ?? ""). Nothing was written")
        }
        let bar = ProgressBar(label: "init", total: Double(checkpoint.totalBytes), unit: "GB", scale: 1e9)
        try checkpoint.write(to: out, configJSON: json, progress: bar)
        bar.finish()
        print("wrote \(out): \(preset.name) (\(preset.source) config, \(config.layers) layers), \(checkpoint.parameterCount) parameters, \(gigabytes(checkpoint.totalBytes)) GB in \(checkpoint.files.count) file\(checkpoint.files.count == 1 ? "" : "s")")
    }

    private func gigabytes(_ bytes: Int) -> String { String(format: "%.2f", Double(bytes) / 1e9) }
}
