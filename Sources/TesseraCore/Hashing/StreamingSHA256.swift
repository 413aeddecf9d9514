import Crypto

/// SHA-256 fed piece by piece as a file is produced.
public struct StreamingSHA256 {
    var hasher = SHA256()
    public init() {}
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }
    public mutating func finalize() -> String { Hex.encode(hasher.finalize()) }
}
