import Foundation
import TesseraCore
import TesseraEngine
import TesseraLibrary

/// A model ready to serve: the weights, which version of each routed expert they hold
/// (nil for a plain checkpoint), and its vocabulary.
public struct ServedModel: @unchecked Sendable {
    public let model: MoEModel
    public let versions: [ExpertID: String]?
    public let vocabulary: TextVocabulary

    /// One hash naming every expert version served (SHA-256 of "L:E=HASH" lines, in order).
    public let versionSetHash: String

    public init(model: MoEModel, versions: [ExpertID: String]?, vocabulary: TextVocabulary) {
        self.model = model; self.versions = versions; self.vocabulary = vocabulary
        let lines = (versions ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined()
        versionSetHash = ContentHash.sha256(Array(lines.utf8))
    }

    /// A checkpoint directory, or a library at its current versions (or those chosen).
    public static func load(_ path: String, versions chosen: [String] = []) throws -> ServedModel {
        guard ExpertLibrary.isLibrary(path) else {
            return ServedModel(model: try ModelSource.load(path, versions: chosen), versions: nil, vocabulary: try .of(directory: path))
        }
        let library = try ExpertLibrary(directory: path)
        let choice = try ModelSource.parseVersionChoices(chosen)
        return ServedModel(model: try library.loadModel(versions: choice), versions: try library.versions(choice),
                           vocabulary: try .of(directory: path))
    }

}

/// Routed gate mass per expert version, in the ledger's integer units (1000 per unit of
/// gate weight, rounded), experts that served nothing left out.
public struct ExpertUsage: Codable, Sendable, Equatable {
    public var layer: Int
    public var expert: Int
    /// The version served (empty for a plain checkpoint).
    public var version: String
    public var usage: Int64

    public static let unitsPerGateWeight = 1000.0

    public init(layer: Int, expert: Int, version: String, usage: Int64) {
        self.layer = layer; self.expert = expert; self.version = version; self.usage = usage
    }

    public static func of(gateMass: [[Double]], versions: [ExpertID: String]?) -> [ExpertUsage] {
        var out: [ExpertUsage] = []
        for (l, row) in gateMass.enumerated() {
            for (e, mass) in row.enumerated() {
                let units = (mass * unitsPerGateWeight).rounded()
                guard units >= 1, units < 9.0e18 else { continue }
                out.append(ExpertUsage(layer: l, expert: e, version: versions?[ExpertID(layer: l, expert: e)] ?? "", usage: Int64(units)))
            }
        }
        return out
    }
}

/// A finished completion.
public struct TextCompletion: @unchecked Sendable {
    public var text: String
    public var tokens: [Int32]
    public var logprobs: [Double]
    public var finishReason: GenerationOutcome.FinishReason
    public var promptTokens: Int
    public var usage: [ExpertUsage]
    public var outcome: GenerationOutcome
}

/// What to complete, in text.
public struct TextRequest: Sendable {
    public var prompt: String
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var stop: [String]
    public init(prompt: String, maxTokens: Int = 16, sampling: SamplingParameters = SamplingParameters(), stop: [String] = []) {
        self.prompt = prompt; self.maxTokens = maxTokens; self.sampling = sampling; self.stop = stop
    }
}

/// Text completions over a served model and a continuous batcher: the same code whether
/// one completion runs on the calling thread (`tessera generate`) or many stream from
/// the server, so a prompt gets the same text from both at temperature 0.
public final class TextGenerator: @unchecked Sendable {
    public let served: ServedModel
    public let batcher: ContinuousBatcher

    public init(served: ServedModel, maxBatch: Int = 8, maxContext: Int = 2048, matmul: MatmulPrecision = .machineDefault) {
        self.served = served
        let decoder = Decoder(model: served.model, maxRows: 128, maxContext: maxContext)
        decoder.matmul = matmul
        batcher = ContinuousBatcher(decoder: decoder, maxBatch: maxBatch)
    }

    /// The token request, checked (prompt, lengths, sampling) before anything runs.
    public func tokenRequest(_ r: TextRequest) throws -> GenerationRequest {
        let request = GenerationRequest(prompt: try served.vocabulary.encode(r.prompt), maxTokens: r.maxTokens, sampling: r.sampling,
                                        stopTokens: Set([served.vocabulary.endOfText].compactMap { $0 }))
        try batcher.check(request)
        return request
    }

    /// Text so far, and whether a stop string ended it.
    func text(of tokens: [GeneratedToken], stops: StopStrings) -> (text: String, stopped: Bool) {
        let text = served.vocabulary.decode(tokens.map(\.token))
        if let cut = stops.cut(text) { return (cut, true) }
        return (text, false)
    }

    func completion(_ outcome: GenerationOutcome, stops: StopStrings) -> TextCompletion {
        let (text, stopped) = text(of: outcome.tokens, stops: stops)
        return TextCompletion(text: text, tokens: outcome.tokens.map(\.token), logprobs: outcome.tokens.map(\.logprob),
                              finishReason: stopped ? .stop : outcome.finishReason, promptTokens: outcome.promptTokens,
                              usage: ExpertUsage.of(gateMass: outcome.cache.gateMass, versions: served.versions), outcome: outcome)
    }

    /// Called with every finished completion, on the thread that finished it and before
    /// its caller or stream sees it, including completions whose consumer went away: the
    /// server meters here.
    public var onCompletion: (@Sendable (TextCompletion) -> Void)?

    /// Ends the sequence at a stop string: called with each token on the batcher's thread.
    private func stopAcceptor(_ stops: StopStrings) -> @Sendable (GeneratedToken) -> Bool {
        let seen = LockedValue<[GeneratedToken]>([])
        return { [self] token in
            guard !stops.stops.isEmpty else { return true }
            let tokens = seen.withLock { $0.append(token); return $0 }
            return !text(of: tokens, stops: stops).stopped
        }
    }

    /// Completes on the calling thread.
    public func complete(_ r: TextRequest) throws -> TextCompletion {
        let request = try tokenRequest(r)
        let stops = StopStrings(r.stop)
        var result: Result<GenerationOutcome, Error>?
        batcher.run([GenerationJob(request, onToken: stopAcceptor(stops), onFinish: { result = $0 })])
        guard let result else { throw CoreError("generation ended without an outcome") }
        let done = completion(try result.get(), stops: stops)
        onCompletion?(done)
        return done
    }

    public enum Event: @unchecked Sendable {
        /// New text, settled: it will not be taken back by a stop string.
        case text(String)
        case finished(TextCompletion)
    }

    /// The text after its first `count` Unicode scalars, if any.
    static func scalars(of text: String, after count: Int) -> String? {
        guard text.unicodeScalars.count > count else { return nil }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: text.unicodeScalars.dropFirst(count))
        return String(out)
    }

    /// Streams a completion from the batcher's thread, text as it settles. `finished`,
    /// like `onCompletion`, sees the completion on that thread before the stream does,
    /// even when nobody reads the stream any more.
    public func stream(_ r: TextRequest, finished: (@Sendable (TextCompletion) -> Void)? = nil) throws -> AsyncThrowingStream<Event, Error> {
        let request = try tokenRequest(r)
        let stops = StopStrings(r.stop)
        let completed = LockedValue<TextCompletion?>(nil)
        let events = batcher.stream(request, accept: stopAcceptor(stops), finished: { [self] outcome in
            let done = completion(outcome, stops: stops)
            onCompletion?(done)
            finished?(done)
            completed.withLock { $0 = done }
        })
        let vocabulary = served.vocabulary
        return AsyncThrowingStream { continuation in
            let task = Task {
                var tokens: [Int32] = [], shown = 0
                do {
                    for try await event in events {
                        switch event {
                        case .token(let token):
                            tokens.append(token.token)
                            let raw = vocabulary.decode(tokens, complete: true)
                            let visible = stops.cut(raw) ?? stops.settled(raw)
                            if let more = Self.scalars(of: visible, after: shown) {
                                continuation.yield(.text(more))
                                shown = visible.unicodeScalars.count
                            }
                        case .finished:
                            guard let done = completed.withLock({ $0 }) else { continue }
                            if let more = Self.scalars(of: done.text, after: shown) { continuation.yield(.text(more)) }
                            continuation.yield(.finished(done))
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
