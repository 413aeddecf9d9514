/// A BPE model: a vocabulary of symbols and the ranked merges that build them. A word is
/// split into its initial symbols (byte-level characters, or characters with byte fallback
/// for SentencePiece-style files) and the adjacent pair of lowest rank is merged, leftmost
/// first among equal ranks, until no ranked pair remains: `tokenizers`' word.rs without
/// dropout, with the same priority queue, so a whole text taken as one word (SentencePiece
/// files have no pre-tokenizer) costs n log n rather than n².
struct BPEModel: Sendable {
    let vocab: [String: Int]
    let ignoreMerges: Bool
    let unknown: Int?
    /// Characters outside the vocabulary become their UTF-8 bytes as "<0xNN>" tokens.
    var byteFallback = false
    /// Consecutive unknown characters make one unk token.
    var fuseUnknown = false
    var unknownToken: String?

    struct Pair: Hashable, Sendable { let left: String, right: String }

    /// Merges by ids, as tokenizers keeps them: (left, right) packed in 64 bits → the
    /// merge's rank and the merged token's id. Hashing two integers instead of two strings,
    /// and never building the merged strings, is most of the encoder's speed.
    let merges: [UInt64: (rank: Int32, merged: Int32)]
    /// Tokens of one Unicode scalar, by scalar: a word's characters become ids without a
    /// string per character.
    let scalarIDs: [UInt32: Int32]
    /// The id of each byte's byte-level character (-1: not in the vocabulary).
    let byteLevelIDs: [Int32]

    /// `ranks`: "left right" → rank. A merge whose parts or result are not in the vocabulary
    /// is refused, as tokenizers refuses to load such a file (MergeTokenOutOfVocabulary).
    init(vocab: [String: Int], ranks: [Pair: Int], ignoreMerges: Bool, unknown: Int?) throws {
        self.vocab = vocab
        self.ignoreMerges = ignoreMerges
        self.unknown = unknown
        var merges: [UInt64: (rank: Int32, merged: Int32)] = [:]
        for (pair, rank) in ranks {
            guard let l = vocab[pair.left], let r = vocab[pair.right], let m = vocab[pair.left + pair.right] else {
                throw TokenizerError("model.merges[\(rank)] (\(pair.left.debugDescription) \(pair.right.debugDescription)) names or makes a token that is not in the vocabulary")
            }
            merges[Self.key(Int32(l), Int32(r))] = (Int32(rank), Int32(m))
        }
        self.merges = merges
        var scalars: [UInt32: Int32] = [:]
        for (token, id) in vocab where token.unicodeScalars.count == 1 { scalars[token.unicodeScalars.first!.value] = Int32(id) }
        scalarIDs = scalars
        byteLevelIDs = (0..<256).map { scalars[ByteLevel.byteToScalar[$0].value] ?? -1 }
    }

    @inline(__always) static func key(_ l: Int32, _ r: Int32) -> UInt64 { UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r)) }

    /// A byte-level word (GPT-2, Qwen): its UTF-8 bytes, each a character of the alphabet.
    func byteLevelIDs(_ word: Substring.UnicodeScalarView) throws -> [Int] {
        if ignoreMerges, let id = vocab[ByteLevel.encode(word).joined()] { return [id] }
        let bytes = Array(String(word).utf8)
        return try finish(bytes.map { byteLevelIDs[Int($0)] }) { ByteLevel.byteToString[Int(bytes[$0])] }
    }

    /// The ids of a word of characters (SentencePiece style): each character is a symbol
    /// when the vocabulary has it, else its bytes' "<0xNN>" tokens (byte_fallback, all of
    /// them present), else unk (one for a run with fuse_unk).
    func characterIDs(_ word: String) throws -> [Int] {
        if ignoreMerges, let id = vocab[word] { return [id] }
        var symbols: [Int32] = []
        var lastWasUnknown = false
        for scalar in word.unicodeScalars {
            if let id = scalarIDs[scalar.value] { symbols.append(id); lastWasUnknown = false; continue }
            if byteFallback {
                let bytes = String(scalar).utf8.map { vocab[Self.byteToken($0)] }
                if bytes.allSatisfy({ $0 != nil }) { symbols += bytes.map { Int32($0!) }; lastWasUnknown = false; continue }
            }
            guard let unknown else {
                throw TokenizerError("BPE: character \(String(scalar).debugDescription) is not in the vocabulary and the model has no unk_token")
            }
            if fuseUnknown && lastWasUnknown { continue }
            symbols.append(Int32(unknown))
            lastWasUnknown = true
        }
        return merged(symbols).map(Int.init)
    }

    /// Merges, then maps symbols outside the vocabulary (-1) to unk, or refuses them.
    private func finish(_ symbols: [Int32], name: (Int) -> String) throws -> [Int] {
        if let bad = symbols.firstIndex(of: -1), unknown == nil {
            throw TokenizerError("BPE: symbol \(name(bad).debugDescription) is not in the vocabulary and the model has no unk_token")
        }
        return merged(symbols).map { $0 < 0 ? unknown! : Int($0) }
    }

    static let hexDigits = Array("0123456789ABCDEF")
    static func byteToken(_ b: UInt8) -> String { "<0x\(hexDigits[Int(b >> 4)])\(hexDigits[Int(b & 15)])>" }

    /// The merges applied: a doubly linked list of symbols and a min-heap of (rank, position).
    func merged(_ symbols: [Int32]) -> [Int32] {
        let n = symbols.count
        guard n > 1 else { return symbols }
        var sym = symbols
        var next = Array(1...n), prev = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        func push(_ i: Int) {
            let j = next[i]
            guard j < n, let m = merges[Self.key(sym[i], sym[j])] else { return }
            heap.push((Int(m.rank), i))
        }
        for i in 0..<(n - 1) { push(i) }
        while let (rank, i) = heap.pop() {
            // Stale entries: the symbol was merged away, or its pair changed since.
            guard alive[i], next[i] < n, let m = merges[Self.key(sym[i], sym[next[i]])], Int(m.rank) == rank else { continue }
            let j = next[i]
            sym[i] = m.merged
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { prev[next[j]] = i }
            if prev[i] >= 0 { push(prev[i]) }
            push(i)
        }
        var out: [Int32] = []
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
