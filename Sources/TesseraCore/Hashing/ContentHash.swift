import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum Hex {
    public static func encode<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

public enum ContentHash {
    public static func sha256(_ bytes: UnsafeRawBufferPointer) -> String {
        Hex.encode(SHA256.hash(data: bytes))
    }

    public static func sha256(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { sha256($0) }
    }

    /// SHA-256 of a whole file, read through a private map.
    public static func sha256(file path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_NONBLOCK)  // a FIFO must not block the open; it is refused below
        guard fd >= 0 else { throw CoreError("\(path): cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CoreError("\(path): cannot stat") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw CoreError("\(path): not a regular file") }
        let size = Int(st.st_size)
        if size == 0 { return sha256([UInt8]()) }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw CoreError("\(path): cannot map")
        }
        defer { munmap(map, size) }
        return sha256(UnsafeRawBufferPointer(start: map, count: size))
    }

    public static func isValid(_ hash: String) -> Bool {
        hash.utf8.count == 64 && hash.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// A validator's commitment to its held-out windows: published when a round opens,
/// checked against the revealed salt and windows after it closes. The salt keeps the
/// hash from being matched against guessed candidate windows.
public enum HeldOutCommitment {
    public static func commitment(heldOutSHA256: String, salt: [UInt8]) -> String {
        ContentHash.sha256(Array("tessera-commitment/1|".utf8) + salt + Array("|\(heldOutSHA256)".utf8))
    }
}
