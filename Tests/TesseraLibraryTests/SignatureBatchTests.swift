import Crypto
import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
import TesseraCore
import TesseraTestSupport

@Suite struct SignatureBatchTests {
    static func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

    /// Signatures by a few keys over random messages, as a ledger page would hold them.
    static func signed(_ count: Int, keys: Int = 5, seed: UInt64 = 1) throws -> [SignatureCheck] {
        var rng = SplitMix64(seed: seed)
        let signers = (0..<keys).map { _ in ParticipantKey.generate() }
        return try (0..<count).map { i in
            let key = signers[i % keys]
            let message = (0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            return SignatureCheck(publicKey: Array(key.publicKey.rawRepresentation), message: message, signature: try key.sign(message))
        }
    }

    @Test func rfc8032VectorsVerifyAloneAndTogether() {
        let one = SignatureCheck(publicKey: Self.hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"), message: [],
                                 signature: Self.hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"))
        let two = SignatureCheck(publicKey: Self.hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"), message: [0x72],
                                 signature: Self.hex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"))
        #expect(SignatureBatch.allValid([one]))
        #expect(SignatureBatch.allValid([two]))
        #expect(SignatureBatch.allValid([one, two]))
        var swapped = one
        swapped.message = [0x72]
        #expect(!SignatureBatch.allValid([swapped]))
        #expect(SignatureBatch.firstInvalid([one, two, swapped, one]) == 2)
    }

    @Test(arguments: [1, 2, 3, 40, 700])
    func validBatchesPassAndEveryKindOfTamperingIsFoundExactly(count: Int) throws {
        let items = try Self.signed(count, seed: UInt64(count))
        #expect(SignatureBatch.allValid(items))
        #expect(SignatureBatch.firstInvalid(items) == nil)
        // The same answers as swift-crypto for the untouched signatures.
        for item in items.prefix(20) {
            let key = try Curve25519.Signing.PublicKey(rawRepresentation: item.publicKey)
            #expect(key.isValidSignature(item.signature, for: item.message))
        }
        var rng = SplitMix64(seed: 99 + UInt64(count))
        let other = ParticipantKey.generate()
        for tamper in 0..<6 {
            var bad = items
            let at = Int(rng.next() % UInt64(count))
            switch tamper {
            case 0: bad[at].message.append(1)
            case 1: bad[at].signature[Int(rng.next() % 32)] ^= 1 << UInt8(rng.next() % 8)          // R
            case 2: bad[at].signature[32 + Int(rng.next() % 31)] ^= 1 << UInt8(rng.next() % 8)     // s
            case 3: bad[at].publicKey = Array(other.publicKey.rawRepresentation)
            case 4: bad[at].signature = Array(repeating: 0, count: 64)
            default:
                // s + L: the same point equation, but a non-canonical scalar.
                var s = Array(bad[at].signature[32...])
                let order: [UInt8] = [237, 211, 245, 92, 26, 99, 18, 88, 214, 156, 247, 162, 222, 249, 222, 20,
                                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16]
                var carry = 0
                for i in 0..<32 { let v = Int(s[i]) + Int(order[i]) + carry; s[i] = UInt8(v & 255); carry = v >> 8 }
                bad[at].signature = Array(bad[at].signature[..<32]) + s
            }
            #expect(!SignatureBatch.allValid(bad), "tampering \(tamper) at \(at) of \(count)")
            #expect(SignatureBatch.firstInvalid(bad) == at, "tampering \(tamper) at \(at) of \(count)")
        }
    }

    @Test func smallOrderKeysAndMalformedInputsAreRefused() throws {
        // The identity as a key with R = identity and s = 0 satisfies the bare equation for
        // any message; the small-order check refuses it.
        var identity = [UInt8](repeating: 0, count: 32)
        identity[0] = 1
        #expect(!SignatureBatch.allValid([SignatureCheck(publicKey: identity, message: [1, 2, 3], signature: identity + [UInt8](repeating: 0, count: 32))]))
        let good = try Self.signed(1)[0]
        #expect(!SignatureBatch.allValid([SignatureCheck(publicKey: Array(good.publicKey.prefix(31)), message: good.message, signature: good.signature)]))
        #expect(!SignatureBatch.allValid([SignatureCheck(publicKey: good.publicKey, message: good.message, signature: Array(good.signature.prefix(63)))]))
        // y = p (not canonical) as a key.
        let p: [UInt8] = [0xed] + [UInt8](repeating: 0xff, count: 30) + [0x7f]
        #expect(!SignatureBatch.allValid([SignatureCheck(publicKey: p, message: good.message, signature: good.signature)]))
        #expect(SignatureBatch.allValid([SignatureCheck]()))
    }

    @Test func participantKeysUseTheSameRule() throws {
        let key = ParticipantKey.generate()
        let sig = try key.sign([9, 8, 7])
        #expect(ParticipantKey.verify(signature: sig, of: [9, 8, 7], publicHex: key.publicHex))
        #expect(!ParticipantKey.verify(signature: sig, of: [9, 8], publicHex: key.publicHex))
        #expect(!ParticipantKey.verify(signature: sig, of: [9, 8, 7], publicHex: "zz"))
    }
}
