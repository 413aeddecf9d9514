@preconcurrency import Crypto
import CEd25519Batch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A participant's Ed25519 identity. The key file is JSON with the public and private
/// keys in hex, created with mode 0600 and refused when others can read it.
public struct ParticipantKey: Sendable {
    public let privateKey: Curve25519.Signing.PrivateKey
    public var publicKey: Curve25519.Signing.PublicKey { privateKey.publicKey }
    /// The identity: the raw public key in hex.
    public var publicHex: String { Hex.encode(publicKey.rawRepresentation) }

    public init(privateKey: Curve25519.Signing.PrivateKey) { self.privateKey = privateKey }

    public static func generate() -> ParticipantKey { ParticipantKey(privateKey: Curve25519.Signing.PrivateKey()) }

    public func sign(_ bytes: [UInt8]) throws -> [UInt8] { Array(try privateKey.signature(for: bytes)) }

    /// Creates a new key file; never overwrites one.
    public func save(to path: String) throws {
        let json = JSONValue.object([
            ("algorithm", .string("ed25519")),
            ("public_key", .string(publicHex)),
            ("private_key", .string(Hex.encode(privateKey.rawRepresentation))),
        ]).serialized() + "\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw CoreError("\(path): cannot create key file: \(String(cString: strerror(errno)))\(errno == EEXIST ? " (a key is already there; it is never overwritten)" : "")")
        }
        defer { close(fd) }
        fchmod(fd, 0o600)
        let bytes = Array(json.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            unlink(path)
            throw CoreError("\(path): cannot write key file")
        }
    }

    public static func load(_ path: String) throws -> ParticipantKey {
        var st = stat()
        guard stat(path, &st) == 0 else { throw CoreError("\(path): no key file") }
        guard st.st_mode & 0o077 == 0 else {
            throw CoreError("\(path): key file is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        guard let data = FileManager.default.contents(atPath: path), let json = try? JSONValue.parse(data) else {
            throw CoreError("\(path): not a key file")
        }
        guard json["algorithm"]?.stringValue == "ed25519", let hex = json["private_key"]?.stringValue,
              let raw = Hex.decode(hex), raw.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw CoreError("\(path): key file has no valid ed25519 private_key")
        }
        let k = ParticipantKey(privateKey: key)
        if let pub = json["public_key"]?.stringValue, pub != k.publicHex {
            throw CoreError("\(path): public_key does not belong to private_key")
        }
        return k
    }

    /// A public key in its one spelling: 64 lower-case hex digits.
    public static func isPublicKey(_ hex: String) -> Bool {
        hex.utf8.count == 64 && hex.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// A key in its one spelling (64 lower-case hex digits) that a signature can verify
    /// under: a canonical point not of small order. Registering anything else would give
    /// stake and fees to an identity that can never sign.
    public static func isUsablePublicKey(_ hex: String) -> Bool {
        guard isPublicKey(hex), let raw = Hex.decode(hex) else { return false }
        return raw.withUnsafeBufferPointer { tessera_ed25519_key_is_usable($0.baseAddress!) } == 1
    }

    /// Checks an Ed25519 signature by a public key given in hex.
    public static func verify(signature: [UInt8], of bytes: [UInt8], publicHex: String) -> Bool {
        guard let raw = Hex.decode(publicHex), raw.count == 32 else { return false }
        return verify(signature: signature, of: bytes, publicKey: raw)
    }

    /// Tessera's one signature rule (`SignatureBatch`), so that a signature checked here
    /// and the same signature checked in a ledger batch always get the same answer.
    public static func verify(signature: [UInt8], of bytes: [UInt8], publicKey: [UInt8]) -> Bool {
        SignatureBatch.allValid(CollectionOfOne(SignatureCheck(publicKey: publicKey, message: bytes, signature: signature)))
    }
}
