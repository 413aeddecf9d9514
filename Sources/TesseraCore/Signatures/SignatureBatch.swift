import CEd25519Batch

/// One Ed25519 signature to check: a raw 32-byte public key, the signed bytes and the
/// 64-byte signature.
public struct SignatureCheck: Sendable {
    public var publicKey: [UInt8]
    public var message: [UInt8]
    public var signature: [UInt8]
    public init(publicKey: [UInt8], message: [UInt8], signature: [UInt8]) {
        self.publicKey = publicKey; self.message = message; self.signature = signature
    }
}

/// Tessera's signature rule, checked many at a time. A signature is valid when s < L,
/// A and R are canonical encodings of curve points not of small order (as libsodium
/// requires) and [8][s]B = [8]R + [8][k]A (the cofactored equation: it is the one a batch
/// check decides exactly, so one signature checked alone or among thousands gets the same
/// answer). Stricter than ZIP 215, which takes non-canonical and small-order encodings;
/// of the twelve cases of "Taming the many EdDSAs" it accepts 3, 4 and 5, libsodium only 3
/// (4 and 5 pass the cofactored equation only; `Ed25519VectorTests`). Every signature an
/// RFC 8032 signer produces satisfies it.
public enum SignatureBatch {
    /// Whether every signature is valid: one multi-scalar multiplication for the lot,
    /// with signatures by the same key sharing its point.
    public static func allValid(_ items: some RandomAccessCollection<SignatureCheck>) -> Bool {
        if items.isEmpty { return true }
        var keyIndex: [[UInt8]: UInt32] = [:]
        var keys: [UInt8] = []
        var indices: [UInt32] = []
        var signatures: [UInt8] = []
        indices.reserveCapacity(items.count)
        signatures.reserveCapacity(items.count * 64)
        for item in items {
            guard item.publicKey.count == 32, item.signature.count == 64 else { return false }
            if let k = keyIndex[item.publicKey] {
                indices.append(k)
            } else {
                let k = UInt32(keyIndex.count)
                keyIndex[item.publicKey] = k
                keys += item.publicKey
                indices.append(k)
            }
            signatures += item.signature
        }
        // One contiguous copy of the messages, so every pointer is valid for the call.
        var flat: [UInt8] = []
        var offsets: [Int] = []
        var lengths: [Int] = []
        offsets.reserveCapacity(items.count)
        lengths.reserveCapacity(items.count)
        for item in items {
            offsets.append(flat.count)
            lengths.append(item.message.count)
            flat += item.message
        }
        flat.append(0)
        return flat.withUnsafeBufferPointer { buf in
            let pointers: [UnsafePointer<UInt8>?] = offsets.map { buf.baseAddress! + $0 }
            return tessera_ed25519_verify_batch(items.count, pointers, lengths, signatures, keyIndex.count, keys, indices) == 1
        }
    }

    /// The position of the first invalid signature, or nil when all are valid. A failed
    /// batch is halved until the culprit is alone, so the answer is exact.
    public static func firstInvalid(_ items: [SignatureCheck]) -> Int? {
        firstInvalid(items[...])
    }

    private static func firstInvalid(_ items: ArraySlice<SignatureCheck>) -> Int? {
        if allValid(items) { return nil }
        if items.count == 1 { return items.startIndex }
        let mid = items.startIndex + items.count / 2
        return firstInvalid(items[items.startIndex..<mid]) ?? firstInvalid(items[mid..<items.endIndex])
    }
}
