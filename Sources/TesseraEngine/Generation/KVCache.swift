import TesseraCore

/// One sequence's keys and values, per layer, for positions 0..<length. Latent-attention
/// models (DeepSeek) keep only the normed key/value latent and the shared rotary key per
/// position, kvRank + ropeDim floats, instead of every head's key and value: that is the
/// whole point of MLA, and `naiveBytes` says what the expanded cache would take.
public final class KVCache: @unchecked Sendable {
    public let capacity: Int
    /// Positions already written (the next token goes at `length`).
    public internal(set) var length = 0
    /// Per layer: keys [capacity, kvHeads · headDim] (or latent rows [capacity, kvRank + ropeDim]).
    let keys: [FloatBuffer]
    /// Per layer: values [capacity, kvHeads · valueDim] (empty for latent attention).
    let values: [FloatBuffer]
    let keyStride: Int, valueStride: Int
    /// Routed gate mass this sequence sent to each (layer, expert), summed over its tokens.
    public internal(set) var gateMass: [[Double]]
    /// Per position, per sparse layer, the chosen experts (topK each): what a routing
    /// receipt commits to.
    public internal(set) var choices: [Int32] = []

    public init(config c: ModelConfig, capacity: Int) {
        self.capacity = capacity
        let (keyWidth, valueWidth) = c.latentAttention.map { ($0.kvRank + $0.ropeDim, 0) } ?? (c.kvDim, c.vDim)
        keyStride = keyWidth
        valueStride = valueWidth
        keys = (0..<c.layers).map { _ in FloatBuffer(count: capacity * keyWidth) }
        values = (0..<c.layers).map { _ in FloatBuffer(count: capacity * valueWidth) }
        gateMass = Array(repeating: Array(repeating: 0, count: c.experts), count: c.layers)
    }

    /// Bytes of the cache's key/value storage.
    public var bytes: Int { (keys.count * capacity * (keyStride + valueStride)) * MemoryLayout<Float>.size }

    /// Bytes the same capacity would take with every head's key and value expanded.
    public static func naiveBytes(config c: ModelConfig, capacity: Int) -> Int {
        c.layers * capacity * c.heads * (c.headDim + c.valueHeadDim) * MemoryLayout<Float>.size
    }

    /// Bytes per position of this family's cache.
    public static func bytesPerPosition(config c: ModelConfig) -> Int {
        let perLayer = c.latentAttention.map { $0.kvRank + $0.ropeDim } ?? (c.kvDim + c.vDim)
        return c.layers * perLayer * MemoryLayout<Float>.size
    }
}
