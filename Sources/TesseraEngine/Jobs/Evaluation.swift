import Foundation
import TesseraCore

/// What `tessera eval` reports.
public struct EvaluationReport: Codable, Sendable {
    /// Mean next-token loss, nats per token.
    public var loss: Double
    public var tokens: Int
    public var modelType: String
    public var experts: Int
    public var topK: Int
    /// Per layer, (token, slot) pairs routed to each expert; empty for dense layers.
    public var routerCounts: [[Int]]
    /// Per layer, routing weight carried to each expert.
    public var gateMass: [[Double]]
    /// Peak resident memory of the process when the report was made.
    public var peakRSSBytes: Int
    /// Wall time of the forward pass alone, and predicted tokens per second of it.
    public var forwardSeconds: Double
    public var tokensPerSecond: Double
    /// Wall time of loading the model (set by the command that loaded it).
    public var loadSeconds: Double? = nil

    enum CodingKeys: String, CodingKey {
        case tokens, experts
        case loss = "loss_nats_per_token"
        case modelType = "model_type"
        case topK = "top_k"
        case routerCounts = "router_counts"
        case gateMass = "gate_mass"
        case peakRSSBytes = "peak_rss_bytes"
        case forwardSeconds = "forward_seconds"
        case tokensPerSecond = "tokens_per_s"
        case loadSeconds = "load_seconds"
    }

}

public enum Evaluation {
    public static func run(model: MoEModel, tokensPath: String, logitsOut: String? = nil,
                           matmul: MatmulPrecision = .machineDefault) throws -> EvaluationReport {
        let tokens = try TokenBatch.load(path: tokensPath)
        let run = ModelRun(model: model, batch: tokens.batch, seq: tokens.seq, training: false)
        run.matmul = matmul
        let started = DispatchTime.now().uptimeNanoseconds
        let loss = try run.forward(tokens)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        if let logitsOut {
            let V = model.config.vocabSize
            let values = Array(UnsafeBufferPointer(start: run.logits.pointer, count: tokens.count * V))
            try SafetensorsWriter.write([TensorRecord(name: "logits", shape: [tokens.batch, tokens.seq, V], floats: values)], to: logitsOut)
        }
        let c = model.config
        return EvaluationReport(loss: loss, tokens: tokens.predictedTokens, modelType: c.family.rawValue, experts: c.experts,
                                topK: c.topK, routerCounts: run.routerStats.counts, gateMass: run.routerStats.gateMass,
                                peakRSSBytes: peakResidentBytes(), forwardSeconds: seconds,
                                tokensPerSecond: Double(tokens.count) / max(seconds, 1e-9))
    }
}

public enum GradientExport {
    public struct Summary: Sendable {
        public var loss: Double
        public var tensors: Int
    }

    /// Computes gradients of the mean loss and writes them under the checkpoint's own
    /// tensor names. With an expert list, only those experts' tensors are written (in the
    /// fused layout, the fused tensors with the other experts' slices left at zero).
    public static func run(model: MoEModel, tokensPath: String, outPath: String, experts: String?,
                           matmul: MatmulPrecision = .machineDefault) throws -> Summary {
        let tokens = try TokenBatch.load(path: tokensPath)
        let trainable = try experts.map { try TrainableSet.experts(ExpertID.parseList($0), in: model.layout) } ?? .all(model.layout)
        let run = ModelRun(model: model, batch: tokens.batch, seq: tokens.seq, training: true)
        run.matmul = matmul
        let grads = FloatBuffer(count: model.parameters.count)
        let loss = try run.lossAndGradients(tokens, trainable: trainable, grads: grads)
        let records = model.layout.tensors.enumerated().filter { trainable.tensors.contains($0.offset) }.map { _, slot in
            TensorRecord(name: slot.name, shape: slot.shape,
                         floats: Array(UnsafeBufferPointer(start: grads.pointer + slot.offset, count: slot.count)))
        }
        try SafetensorsWriter.write(records, to: outPath)
        return Summary(loss: loss, tensors: records.count)
    }
}

/// Refuses to load `bytes` of parameters that the machine cannot hold: past MemAvailable
/// the kernel kills the process minutes into reading them. `available` overrides the
/// kernel's figure (tests).
public func requireMemory(forParameters bytes: Int, what: String, hint: String, available: Int? = nil) throws {
    guard let free = available ?? ProcessMemory.available, bytes > free else { return }
    throw EngineError.invalidInput(String(format: "%@ needs %.2f GB for its parameters as float32, and %.2f GB of memory are available; %@",
                                          what, Double(bytes) / 1e9, Double(free) / 1e9, hint))
}

/// Peak resident set size of this process (getrusage), in bytes.
public func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}

#if canImport(Glibc)
import Glibc
#endif
