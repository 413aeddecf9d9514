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
        while level.count > 1 {
            var next: [[UInt8]] = []
            var i = 0
            while i < level.count {
                next.append(i + 1 < level.count ? Array(SHA256.hash(data: level[i] + level[i + 1])) : level[i])
                i += 2
            }
            level = next
        }
        return Hex.encode(level[0])
    }
}
