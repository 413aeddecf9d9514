/// A BPE model: a vocabulary of symbols and the ranked merges that build them. A word is
/// split into characters (here byte-level characters) and the adjacent pair of lowest rank
/// is merged until no ranked pair remains (leftmost first among equal ranks), as
/// `tokenizers`' BPE does without dropout.
struct BPEModel: Sendable {
    let vocab: [String: Int]
    /// "left right" → rank (lower merges first).
    let ranks: [Pair: Int]
    let ignoreMerges: Bool
    let unknown: Int?

    struct Pair: Hashable, Sendable { let left: String, right: String }

    /// The ids of one pre-tokenized word given as its characters.
    func ids(_ characters: [String]) throws -> [Int] {
        if ignoreMerges, let id = vocab[characters.joined()] { return [id] }
        var word = characters
        while word.count > 1 {
            var best: (rank: Int, at: Int)?
            for k in 0..<(word.count - 1) {
                if let r = ranks[Pair(left: word[k], right: word[k + 1])], r < (best?.rank ?? .max) { best = (r, k) }
            }
            guard let best else { break }
            let merged = word[best.at] + word[best.at + 1]
            let pair = Pair(left: word[best.at], right: word[best.at + 1])
            // Every occurrence of the pair, left to right, as one step.
            var out: [String] = []
            out.reserveCapacity(word.count)
            var k = 0
            while k < word.count {
                if k + 1 < word.count, word[k] == pair.left, word[k + 1] == pair.right {
                    out.append(merged); k += 2
                } else {
                    out.append(word[k]); k += 1
                }
            }
            word = out
        }
        return try word.map { symbol in
            if let id = vocab[symbol] { return id }
            if let unknown { return unknown }
            throw TokenizerError("BPE: symbol \(symbol.debugDescription) is not in the vocabulary and the model has no unk_token")
        }
    }
}
