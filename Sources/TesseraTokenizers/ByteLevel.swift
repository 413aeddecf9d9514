/// GPT-2's byte-level alphabet: every byte as a printable character, so a BPE vocabulary
/// of strings covers any byte sequence. Bytes that print (33-126, 161-172, 174-255) stand
/// for themselves; the others take the code points from 256 upward, in byte order.
enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    /// Each byte's character as a string: BPE's starting symbols, made once.
    static let byteToString: [String] = byteToScalar.map { String(Character($0)) }

    /// A piece of text as the byte-level characters of its UTF-8 bytes.
    static func encode(_ piece: Substring.UnicodeScalarView) -> [String] {
        String(piece).utf8.map { byteToString[Int($0)] }
    }

    /// The bytes byte-level text stands for; characters outside the alphabet are kept as their UTF-8.
    static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for s in text.unicodeScalars {
            if let b = scalarToByte[s.value] { out.append(b) } else { out += Array(String(s).utf8) }
        }
        return out
    }
}
