@preconcurrency import Crypto
import CSodium
import Dispatch
import Foundation
import TesseraCore
import TesseraEngine
import TesseraLibrary
import TesseraLedger
import TesseraProof
import TesseraTestSupport

/// Ed25519 checks per second on one core, measured in one run: Tessera's batch check
/// (at the ledger's page size), the same rule one signature at a time, libsodium's and
/// swift-crypto's single verification, all over the same signatures.
public struct SignatureBenchmark: Encodable, Sendable {
    public var signatures: Int
    public var batchPerS: Double
    public var singlePerS: Double
    public var libsodiumPerS: Double
    public var swiftCryptoPerS: Double

    enum CodingKeys: String, CodingKey {
        case signatures
        case batchPerS = "batch_per_s"
        case singlePerS = "single_per_s"
        case libsodiumPerS = "libsodium_per_s"
        case swiftCryptoPerS = "swift_crypto_per_s"
    }

    public var text: String {
        let f = { (x: Double) in String(Int(x.rounded())) }
        return "Ed25519 checks per core-second: batches of \(signatures) \(f(batchPerS)), one at a time \(f(singlePerS)), libsodium \(f(libsodiumPerS)), swift-crypto \(f(swiftCryptoPerS)) (batch vs swift-crypto \(String(format: "%.1f", batchPerS / swiftCryptoPerS))x)"
    }

    public static func run(signatures n: Int = 5_000, keys: Int = 54) throws -> SignatureBenchmark {
        let signers = (0..<keys).map { _ in ParticipantKey.generate() }
        let items = try (0..<n).map { i -> SignatureCheck in
            let message = Array("{\"kind\":\"verdict\",\"payload\":{\"at\":\(i),\"submission\":\"\(i * 7919)\"}}".utf8)
            return SignatureCheck(publicKey: Array(signers[i % keys].publicKey.rawRepresentation), message: message, signature: try signers[i % keys].sign(message))
        }
        let sample = Array(items.prefix(max(1, n / 5)))
        func rate(_ count: Int, _ body: () -> Bool) throws -> Double {
            let t0 = DispatchTime.now().uptimeNanoseconds
            guard body() else { throw LibraryError("signature benchmark: a valid signature was refused") }
            return Double(count) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        guard sodium_init() >= 0 else { throw LibraryError("libsodium did not initialise") }
        let batch = try rate(n) { SignatureBatch.allValid(items) }
        let single = try rate(sample.count) { sample.allSatisfy { SignatureBatch.allValid(CollectionOfOne($0)) } }
        let sodium = try rate(sample.count) {
            sample.allSatisfy { crypto_sign_verify_detached($0.signature, $0.message, UInt64($0.message.count), $0.publicKey) == 0 }
        }
        let keysByBytes = try Dictionary(uniqueKeysWithValues: signers.map { (Array($0.publicKey.rawRepresentation), try Curve25519.Signing.PublicKey(rawRepresentation: $0.publicKey.rawRepresentation)) })
        let boring = try rate(sample.count) { sample.allSatisfy { keysByBytes[$0.publicKey]!.isValidSignature($0.signature, for: $0.message) } }
        return SignatureBenchmark(signatures: n, batchPerS: batch, singlePerS: single, libsodiumPerS: sodium, swiftCryptoPerS: boring)
    }
}
