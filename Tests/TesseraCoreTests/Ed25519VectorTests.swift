import CSodium
import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

/// Tessera's Ed25519 rule against vetted vectors and a vetted implementation: Wycheproof's
/// test vectors, the twelve edge cases of "Taming the many EdDSAs" (Chalkias, Garillot,
/// Nikolaenko, 2020) with the table of what each library accepts, and libsodium's
/// `crypto_sign_verify_detached` on random and mutated signatures at every batch size that
/// selects a different multi-scalar method. Vectors: Tests/Fixtures/ed25519 (Apache-2.0).
@Suite struct Ed25519VectorTests {
    static let folder = (ReferenceFixtures.projectRoot as NSString).appendingPathComponent("Tests/Fixtures/ed25519")

    static func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex) ?? [] }

    /// Single and batch answers for one signature.
    static func tessera(_ key: [UInt8], _ message: [UInt8], _ signature: [UInt8]) -> Bool {
        let check = SignatureCheck(publicKey: key, message: message, signature: signature)
        let single = ParticipantKey.verify(signature: signature, of: message, publicKey: key)
        #expect(single == SignatureBatch.allValid([check]), "single and batch disagree")
        return single
    }

    static func libsodium(_ key: [UInt8], _ message: [UInt8], _ signature: [UInt8]) -> Bool {
        guard key.count == 32, signature.count == 64 else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), key) == 0
    }

    @Test func wycheproofVectors() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.folder + "/wycheproof_ed25519_test.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let groups = try #require(root["testGroups"] as? [[String: Any]])
        var count = 0
        var valid: [SignatureCheck] = []
        for g in groups {
            let key = Self.bytes(try #require((g["publicKey"] as? [String: Any])?["pk"] as? String))
            for t in try #require(g["tests"] as? [[String: Any]]) {
                let msg = Self.bytes(t["msg"] as? String ?? ""), sig = Self.bytes(t["sig"] as? String ?? "")
                let expected = (t["result"] as? String) == "valid"
                #expect(Self.tessera(key, msg, sig) == expected, "Wycheproof tcId \(t["tcId"] ?? "?"): \(t["comment"] ?? "")")
                if expected { valid.append(SignatureCheck(publicKey: key, message: msg, signature: sig)) }
                count += 1
            }
        }
        #expect(count == root["numberOfTests"] as? Int, "\(count) vectors read")
        // All valid ones in one batch, and each invalid one hidden among them.
        #expect(SignatureBatch.allValid(valid))
    }

    /// Which of the twelve cases Tessera accepts, next to the libraries the paper tested.
    /// Tessera: s < L, canonical A and R, neither of small order, cofactored equation.
    /// Cases 0-2 have a small-order A or R (refused, as libsodium and Dalek strict do);
    /// 3 passes every equation; 4 and 5 pass only the cofactored equation with mixed-order
    /// points (accepted, as Zebra does: the batch equation is cofactored, and a rule that
    /// differs between one signature and a batch would let a batch's verdict depend on its
    /// company); 6-7 have s ≥ L; 8-11 non-canonical R or A (all refused).
    static let tesseraRow = "X X X V V V X X X X X X"

    @Test func tamingTheManyEdDSAsCases() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.folder + "/speccheck_cases.json"))
        let cases = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: String]])
        #expect(cases.count == 12)
        var row: [String] = []
        var sodiumRow: [String] = []
        for c in cases {
            let (key, msg, sig) = (Self.bytes(c["pub_key"] ?? ""), Self.bytes(c["message"] ?? ""), Self.bytes(c["signature"] ?? ""))
            row.append(Self.tessera(key, msg, sig) ? "V" : "X")
            sodiumRow.append(Self.libsodium(key, msg, sig) ? "V" : "X")
        }
        #expect(row.joined(separator: " ") == Self.tesseraRow)
        // The libsodium linked here answers as the paper's table says.
        let table = try String(contentsOfFile: Self.folder + "/speccheck_results.md", encoding: .utf8)
        let sodiumLine = try #require(table.split(separator: "\n").first { $0.hasPrefix("|LibSodium") })
        let published = sodiumLine.split(separator: "|").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        #expect(sodiumRow == published, "libsodium here \(sodiumRow), the paper's table \(published)")
        // Tessera and libsodium differ exactly on the cofactored-only cases.
        let differ = (0..<12).filter { row[$0] != sodiumRow[$0] }
        #expect(differ == [4, 5], "they differ on \(differ)")
    }

    /// Random signatures, valid and mutated, at the batch sizes where the verifier's method
    /// changes (Straus' interleaving, then Pippenger's buckets of 4 to 11 bits): the batch,
    /// the single check and libsodium agree, and a bad signature anywhere is found exactly.
    @Test(arguments: [(1, 1), (7, 7), (135, 1), (67, 67), (187, 187), (447, 447), (867, 867), (3331, 3331)])
    func agreesWithLibsodiumAtEveryMethod(_ size: (count: Int, keys: Int)) throws {
        #expect(sodium_init() >= 0)
        var rng = SplitMix64(seed: UInt64(size.count * 31 + size.keys))
        let keys = (0..<size.keys).map { _ in ParticipantKey.generate() }
        var items: [SignatureCheck] = []
        for i in 0..<size.count {
            let k = keys[i % keys.count]
            let msg = (0..<Int(rng.next() % 97)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            items.append(SignatureCheck(publicKey: Array(Hex.decode(k.publicHex)!), message: msg, signature: try k.sign(msg)))
        }
        #expect(SignatureBatch.allValid(items))
        #expect(items.allSatisfy { Self.libsodium($0.publicKey, $0.message, $0.signature) })

        let L: [UInt8] = [0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]
        let smallOrder = Self.bytes("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")  // a point of order 8
        let mutations: [(String, (inout SignatureCheck) -> Void)] = [
            ("a bit of R", { $0.signature[3] ^= 0x04 }),
            ("a bit of s", { $0.signature[40] ^= 0x01 }),
            ("a byte of the message", { $0.message = $0.message.isEmpty ? [1] : [$0.message[0] ^ 0x80] + $0.message.dropFirst() }),
            ("a bit of the key", { $0.publicKey[9] ^= 0x10 }),
            ("s + L (non-canonical s)", { c in
                var carry = 0
                for j in 0..<32 {
                    let v = Int(c.signature[32 + j]) + Int(L[j]) + carry
                    c.signature[32 + j] = UInt8(v & 0xff)
                    carry = v >> 8
                }
            }),
            ("R of small order", { $0.signature.replaceSubrange(0..<32, with: smallOrder) }),
            ("a key of small order", { $0.publicKey = smallOrder }),
        ]
        for position in Set([0, size.count / 2, size.count - 1]).sorted() {
            for (what, mutate) in mutations {
                var bad = items
                mutate(&bad[position])
                let b = bad[position]
                #expect(!Self.libsodium(b.publicKey, b.message, b.signature), "libsodium accepted \(what)")
                #expect(!ParticipantKey.verify(signature: b.signature, of: b.message, publicKey: b.publicKey), "\(what) accepted alone")
                #expect(!SignatureBatch.allValid(bad), "\(what) at \(position) of \(size.count) accepted in the batch")
                #expect(SignatureBatch.firstInvalid(bad) == position, "\(what) at \(position) of \(size.count)")
            }
        }
    }
}
