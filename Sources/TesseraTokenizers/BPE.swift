/// A BPE model: a vocabulary of symbols and the ranked merges that build them. A word is
/// split into its initial symbols (byte-level characters, or characters with byte fallback
/// for SentencePiece-style files) and the adjacent pair of lowest rank is merged, leftmost
/// first among equal ranks, until no ranked pair remains: `tokenizers`' word.rs without
/// dropout, with the same priority queue, so a whole text taken as one word (SentencePiece
/// files have no pre-tokenizer) costs n log n rather than n².
struct BPEModel: Sendable {
    let vocab: [String: Int]
    /// "left right" → rank (lower merges first).
    let ranks: [Pair: Int]
    let ignoreMerges: Bool
    let unknown: Int?
    /// Characters outside the vocabulary become their UTF-8 bytes as "<0xNN>" tokens.
    var byteFallback = false
    /// Consecutive unknown characters make one unk token.
    var fuseUnknown = false
    var unknownToken: String?

    struct Pair: Hashable, Sendable { let left: String, right: String }

    /// The ids of one pre-tokenized word given as its initial symbols.
    func ids(_ characters: [String]) throws -> [Int] {
        if ignoreMerges, let id = vocab[characters.joined()] { return [id] }
        return try merged(characters).map { symbol in
            if let id = vocab[symbol] { return id }
            if let unknown { return unknown }
            throw TokenizerError("BPE: symbol \(symbol.debugDescription) is not in the vocabulary and the model has no unk_token")
        }
    }

    /// The ids of a word of characters (SentencePiece style): each character is a symbol
    /// when the vocabulary has it, else its bytes' "<0xNN>" tokens (byte_fallback, all of
    /// them present), else unk (one for a run with fuse_unk).
    func characterIDs(_ word: String) throws -> [Int] {
        if ignoreMerges, let id = vocab[word] { return [id] }
        var symbols: [String] = []
        var lastWasUnknown = false
        for scalar in word.unicodeScalars {
            let symbol = String(scalar)
            if vocab[symbol] != nil { symbols.append(symbol); lastWasUnknown = false; continue }
            if byteFallback {
                let bytes = symbol.utf8.map(Self.byteToken)
                if bytes.allSatisfy({ vocab[$0] != nil }) { symbols += bytes; lastWasUnknown = false; continue }
            }
            guard let unknownToken else {
                throw TokenizerError("BPE: character \(symbol.debugDescription) is not in the vocabulary and the model has no unk_token")
            }
            if fuseUnknown && lastWasUnknown { continue }
            symbols.append(unknownToken)
            lastWasUnknown = true
        }
        return try ids(symbols)
    }

    static let hexDigits = Array("0123456789ABCDEF")
    static func byteToken(_ b: UInt8) -> String { "<0x\(hexDigits[Int(b >> 4)])\(hexDigits[Int(b & 15)])>" }

    /// The merges applied: a doubly linked list of symbols and a min-heap of (rank, position).
    func merged(_ symbols: [String]) -> [String] {
        let n = symbols.count
        guard n > 1 else { return symbols }
        var sym = symbols
        var next = Array(1...n), prev = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        func push(_ i: Int) {
            let j = next[i]
            guard j < n, let r = ranks[Pair(left: sym[i], right: sym[j])] else { return }
            heap.push((r, i))
        }
        for i in 0..<(n - 1) { push(i) }
        while let (rank, i) = heap.pop() {
            // Stale entries: the symbol was merged away, or its pair changed since.
            guard alive[i], next[i] < n, ranks[Pair(left: sym[i], right: sym[next[i]])] == rank else { continue }
            let j = next[i]
            sym[i] += sym[j]
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { prev[next[j]] = i }
            if prev[i] >= 0 { push(prev[i]) }
            push(i)
        }
        var out: [String] = []
        var i = 0
        while i < n { out.append(sym[i]); i = next[i] }
        return out
    }
}

/// A binary min-heap of (rank, position), ordered by rank, then position.
struct MinHeap {
    private var items: [(Int, Int)] = []
    private static func less(_ a: (Int, Int), _ b: (Int, Int)) -> Bool { a.0 != b.0 ? a.0 < b.0 : a.1 < b.1 }

    mutating func push(_ x: (Int, Int)) {
        items.append(x)
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard Self.less(items[c], items[p]) else { break }
            items.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() -> (Int, Int)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < items.count, Self.less(items[l], items[m]) { m = l }
                if r < items.count, Self.less(items[r], items[m]) { m = r }
                if m == p { break }
                items.swapAt(p, m)
                p = m
            }
        }
        return top
    }
}
