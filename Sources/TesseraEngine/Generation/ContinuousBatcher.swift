import Foundation
import TesseraCore
import Synchronization

/// What to generate for one prompt (token ids; text lives a layer above).
public struct GenerationRequest: Sendable {
    public var prompt: [Int32]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Tokens that end the sequence when chosen (the end-of-text token); not returned.
    public var stopTokens: Set<Int32>
    public init(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters = SamplingParameters(), stopTokens: Set<Int32> = []) {
        self.prompt = prompt; self.maxTokens = maxTokens; self.sampling = sampling; self.stopTokens = stopTokens
    }
}

public struct GeneratedToken: Sendable, Equatable {
    public var token: Int32
    public var logprob: Double
}

/// How a sequence ended, with its cache: the gate mass it routed and its per-position
/// expert choices (prompt and generated tokens alike), for metering and receipts.
public struct GenerationOutcome: @unchecked Sendable {
    public enum FinishReason: String, Sendable, Codable { case stop, length }
    public var tokens: [GeneratedToken]
    public var finishReason: FinishReason
    public var promptTokens: Int
    public var cache: KVCache
    /// Every token the cache holds (prompt, then generated tokens fed back).
    public var fedTokens: [Int32]
}

/// One request in the batcher. `onToken` sees each new token and returns false to end
/// the sequence there (a stop string, a closed connection); `onFinish` is called once.
public final class GenerationJob: @unchecked Sendable {
    public let request: GenerationRequest
    let onToken: (GeneratedToken) -> Bool
    let onFinish: (Result<GenerationOutcome, Error>) -> Void
    private let cancelled = Mutex(false)

    public init(_ request: GenerationRequest, onToken: @escaping (GeneratedToken) -> Bool = { _ in true },
                onFinish: @escaping (Result<GenerationOutcome, Error>) -> Void) {
        self.request = request; self.onToken = onToken; self.onFinish = onFinish
    }

    /// Ends the sequence before its next step (its outcome reports `stop`).
    public func cancel() { cancelled.withLock { $0 = true } }
    var isCancelled: Bool { cancelled.withLock { $0 } }
}

/// Continuous batching: sequences join the running batch between steps (their prompt is
/// prefilled in the same step as the others' next tokens) and leave as soon as they end,
/// so a long generation never holds a short one back. Each row's result does not depend
/// on its batch-mates (see `gemm`), so a sequence gets the same tokens alone or batched.
public final class ContinuousBatcher: @unchecked Sendable {
    public let decoder: Decoder
    public let maxBatch: Int
    private let condition = NSCondition()
    private var waiting: [GenerationJob] = []
    private var started = false
    private var retired = false

    private struct Running {
        let job: GenerationJob
        let cache: KVCache
        var sampler: TokenSampler
        var next: [Int32]
        var fed: [Int32] = []
        var tokens: [GeneratedToken] = []
    }

    public init(decoder: Decoder, maxBatch: Int = 8) {
        self.decoder = decoder
        self.maxBatch = max(1, maxBatch)
    }

    /// Checks a request against the model and the decoder's context.
    public func check(_ r: GenerationRequest) throws {
        try r.sampling.check()
        guard !r.prompt.isEmpty else { throw EngineError.invalidInput("the prompt has no tokens") }
        guard r.maxTokens >= 1 else { throw EngineError.invalidInput("max_tokens \(r.maxTokens) must be at least 1") }
        let (total, overflow) = r.prompt.count.addingReportingOverflow(r.maxTokens)
        guard !overflow, total <= decoder.maxContext else {
            throw EngineError.invalidInput("\(r.prompt.count) prompt tokens + max_tokens \(r.maxTokens) exceed the context of \(decoder.maxContext)")
        }
        let V = decoder.model.config.vocabSize
        if let bad = r.prompt.first(where: { $0 < 0 || Int($0) >= V }) {
            throw EngineError.invalidInput("prompt token id \(bad) is outside the vocabulary 0..<\(V)")
        }
    }

    /// Runs the jobs on the calling thread until every one has finished.
    public func run(_ jobs: [GenerationJob]) {
        var pending = jobs[...], running: [Running] = []
        while !pending.isEmpty || !running.isEmpty {
            while running.count < maxBatch, let job = pending.popFirst() { admit(job, into: &running) }
            step(&running)
        }
    }

    /// Queues a job for the batcher's own thread (started on first use).
    public func submit(_ job: GenerationJob) {
        condition.lock()
        waiting.append(job)
        if !started {
            started = true
            let thread = Thread { self.serve() }
            thread.name = "tessera-generation"
            thread.stackSize = 8 << 20
            thread.start()
        }
        condition.signal()
        condition.unlock()
    }

    /// Lets the batcher's thread end once every job it has finishes (the thread holds the
    /// batcher, and with it the model, until then). Jobs submitted afterwards still run.
    public func retire() {
        condition.lock()
        retired = true
        condition.signal()
        condition.unlock()
    }

    /// The batcher's thread: admits waiting jobs between steps, sleeps when idle, ends when
    /// retired and idle.
    private func serve() {
        var running: [Running] = []
        while true {
            condition.lock()
            while waiting.isEmpty && running.isEmpty {
                if retired {
                    started = false
                    condition.unlock()
                    return
                }
                condition.wait()
            }
            let room = maxBatch - running.count
            let admitted = Array(waiting.prefix(max(room, 0)))
            waiting.removeFirst(admitted.count)
            condition.unlock()
            for job in admitted { admit(job, into: &running) }
            step(&running)
        }
    }

    private func admit(_ job: GenerationJob, into running: inout [Running]) {
        do {
            try check(job.request)
            let cache = try decoder.makeCache(capacity: job.request.prompt.count + job.request.maxTokens)
            running.append(Running(job: job, cache: cache, sampler: TokenSampler(job.request.sampling), next: job.request.prompt))
        } catch {
            job.onFinish(.failure(error))
        }
    }

    /// One decoding step for every running sequence; finished ones leave.
    private func step(_ running: inout [Running]) {
        for i in running.indices.reversed() where running[i].job.isCancelled {
            finish(running.remove(at: i), .stop)
        }
        guard !running.isEmpty else { return }
        let logits: [[Float]]
        do {
            logits = try decoder.step(running.map { Decoder.Feed(cache: $0.cache, tokens: $0.next) })
        } catch {
            for r in running { r.job.onFinish(.failure(error)) }
            running.removeAll()
            return
        }
        var kept: [Running] = []
        for (var r, l) in zip(running, logits) {
            r.fed += r.next
            let chosen = r.sampler.next(l[...])
            let generated = GeneratedToken(token: chosen.token, logprob: chosen.logprob)
            if r.job.request.stopTokens.contains(generated.token) { finish(r, .stop); continue }
            r.tokens.append(generated)
            if !r.job.onToken(generated) { finish(r, .stop); continue }
            if r.tokens.count >= r.job.request.maxTokens { finish(r, .length); continue }
            r.next = [generated.token]
            kept.append(r)
        }
        running = kept
    }

    private func finish(_ r: Running, _ reason: GenerationOutcome.FinishReason) {
        r.job.onFinish(.success(GenerationOutcome(tokens: r.tokens, finishReason: reason, promptTokens: r.job.request.prompt.count,
                                                  cache: r.cache, fedTokens: r.fed)))
    }
}

extension ContinuousBatcher {
    /// Generates for one request on the calling thread.
    public func generate(_ request: GenerationRequest) throws -> GenerationOutcome {
        var result: Result<GenerationOutcome, Error>?
        run([GenerationJob(request) { result = $0 }])
        guard let result else { throw EngineError.invalidInput("generation ended without an outcome") }
        return try result.get()
    }

    /// Streams one request's tokens from the batcher's thread. `accept` sees each token
    /// there and returns false to end the sequence; `finished` sees the outcome there,
    /// before the stream reports it, even when the consumer has stopped reading (a closed
    /// connection cancels the sequence, and what it used is still accounted for).
    public func stream(_ request: GenerationRequest, accept: @escaping @Sendable (GeneratedToken) -> Bool = { _ in true },
                       finished: @escaping @Sendable (GenerationOutcome) -> Void = { _ in }) -> AsyncThrowingStream<GenerationEvent, Error> {
        AsyncThrowingStream { continuation in
            let job = GenerationJob(request, onToken: { token in
                let more = accept(token)
                if case .terminated = continuation.yield(.token(token)) { return false }
                return more
            }, onFinish: { result in
                switch result {
                case .success(let outcome):
                    finished(outcome)
                    continuation.yield(.finished(outcome))
                    continuation.finish()
                case .failure(let error): continuation.finish(throwing: error)
                }
            })
            continuation.onTermination = { _ in job.cancel() }
            submit(job)
        }
    }
}

public enum GenerationEvent: @unchecked Sendable {
    case token(GeneratedToken)
    case finished(GenerationOutcome)
}
