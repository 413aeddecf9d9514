import Crypto
import Foundation
import TesseraCore

/// What a served response commits to: the expert versions, the prompt and completion
/// tokens and, for every token the model read, its top-k expert choice per sparse layer, hashed, and signed by the server's
/// key. An owner holding receipts can have them re-run (`tessera audit`); a settlement
/// commits to its period's receipts by their Merkle root.
public struct RoutingReceipt: Codable, Sendable, Equatable {
    public var hash: String
    public var signature: String
    public var serverKey: String
    enum CodingKeys: String, CodingKey { case hash, signature, serverKey = "server_key" }

    static let domain = "tessera-receipt/1"

    /// SHA-256 of the domain tag, the version set, then the tokens and the choices as
    /// little-endian int32 runs, each preceded by its count.
    public static func hash(versionSet: String, tokens: [Int32], choices: [Int32]) -> String {
        var bytes = Array("\(domain)\n\(versionSet)\n".utf8)
        for run in [tokens, choices] {
            withUnsafeBytes(of: UInt64(run.count).littleEndian) { bytes += $0 }
            for v in run { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        }
        return ContentHash.sha256(bytes)
    }

    public static func make(versionSet: String, tokens: [Int32], choices: [Int32], key: ParticipantKey) throws -> RoutingReceipt {
        let h = hash(versionSet: versionSet, tokens: tokens, choices: choices)
        return RoutingReceipt(hash: h, signature: Hex.encode(try key.sign(Array("\(domain)|\(h)".utf8))), serverKey: key.publicHex)
    }

    public var signatureVerifies: Bool {
        guard let sig = Hex.decode(signature), sig.count == 64 else { return false }
        return ParticipantKey.verify(signature: sig, of: Array("\(Self.domain)|\(hash)".utf8), publicHex: serverKey)
    }

    /// Merkle root over receipt hashes (SHA-256 of the two children's bytes; an odd last
    /// node is carried up), the empty set's root being the hash of nothing.
    public static func merkleRoot(_ hashes: [String]) -> String {
        var level = hashes.compactMap { Hex.decode($0) }
        guard !level.isEmpty else { return ContentHash.sha256([]) }
        while level.count > 1 { level = parents(level) }
        return Hex.encode(level[0])
    }

    static func parents(_ level: [[UInt8]]) -> [[UInt8]] {
        stride(from: 0, to: level.count, by: 2).map { i in
            i + 1 < level.count ? Array(SHA256.hash(data: level[i] + level[i + 1])) : level[i]
        }
    }

    /// One step of an inclusion proof: the sibling's hash and whether it sits on the left.
    public struct ProofStep: Codable, Sendable, Equatable {
        public var hash: String
        public var left: Bool
    }

    /// The siblings from leaf `index` up to the root (levels where the node is carried up
    /// have no step).
    public static func inclusionProof(_ hashes: [String], index: Int) -> [ProofStep]? {
        var level = hashes.compactMap { Hex.decode($0) }
        guard level.count == hashes.count, index >= 0, index < level.count else { return nil }
        var i = index, proof: [ProofStep] = []
        while level.count > 1 {
            let sibling = i ^ 1
            if sibling < level.count { proof.append(ProofStep(hash: Hex.encode(level[sibling]), left: sibling < i)) }
            level = parents(level)
            i /= 2
        }
        return proof
    }

    /// Whether `leaf` with `proof` hashes up to `root`.
    public static func verifyInclusion(leaf: String, proof: [ProofStep], root: String) -> Bool {
        guard var node = Hex.decode(leaf) else { return false }
        for step in proof {
            guard let sibling = Hex.decode(step.hash) else { return false }
            node = Array(SHA256.hash(data: step.left ? sibling + node : node + sibling))
        }
        return Hex.encode(node) == root
    }
}
