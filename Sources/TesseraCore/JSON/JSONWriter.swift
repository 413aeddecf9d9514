import Foundation

/// Writing JSON. Every writer here escapes strings and prints numbers the way RFC 8785
/// (the JSON Canonicalization Scheme) does, so the canonical form that signatures cover
/// and the files people read differ only in member order and whitespace. The one
/// departure from RFC 8785 (see whitepaper-notes/library.md): integers are kept exact
/// over the whole Int64 range instead of being rounded through a double past 2^53.
extension JSONValue {
    /// Compact, members in their stored order.
    public func serialized() -> String {
        var out = ""
        JSONWriter.write(self, into: &out, sortKeys: false, indent: nil, level: 0)
        return out
    }

    /// Compact with every object's members sorted (RFC 8785 order): the canonical text.
    public var canonicalText: String {
        var out = ""
        JSONWriter.write(self, into: &out, sortKeys: true, indent: nil, level: 0)
        return out
    }

    /// The canonical bytes that signatures cover.
    public var canonicalBytes: [UInt8] { Array(canonicalText.utf8) }

    /// Sorted members, two-space indentation, for files people read.
    public func prettyText() -> String {
        var out = ""
        JSONWriter.write(self, into: &out, sortKeys: true, indent: "  ", level: 0)
        return out
    }
}

enum JSONWriter {
    static func write(_ v: JSONValue, into out: inout String, sortKeys: Bool, indent: String?, level: Int) {
        switch v {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .integer(i): out += String(i)
        case let .number(n): out += ES6Number.format(n)
        case let .string(s): writeString(s, into: &out)
        case let .array(items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                newline(&out, indent, level + 1)
                write(item, into: &out, sortKeys: sortKeys, indent: indent, level: level + 1)
            }
            newline(&out, indent, level)
            out += "]"
        case let .object(members):
            if members.isEmpty { out += "{}"; return }
            out += "{"
            let ordered = sortKeys ? members.sorted { utf16Precedes($0.0, $1.0) } : members
            for (i, (k, value)) in ordered.enumerated() {
                if i > 0 { out += "," }
                newline(&out, indent, level + 1)
                writeString(k, into: &out)
                out += indent == nil ? ":" : ": "
                write(value, into: &out, sortKeys: sortKeys, indent: indent, level: level + 1)
            }
            newline(&out, indent, level)
            out += "}"
        }
    }

    private static func newline(_ out: inout String, _ indent: String?, _ level: Int) {
        guard let indent else { return }
        out += "\n"
        for _ in 0..<level { out += indent }
    }

    /// RFC 8785 sorts member names by their UTF-16 code units.
    static func utf16Precedes(_ a: String, _ b: String) -> Bool {
        a.utf16.lexicographicallyPrecedes(b.utf16)
    }

    /// RFC 8785 §3.2.2.2: the two-character escapes where JSON has them, \u00xx for the
    /// other control characters, everything else as itself.
    static func writeString(_ s: String, into out: inout String) {
        // Most strings (keys, hashes, names) need no escape: append them whole.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            out += "\""
            out += s
            out += "\""
            return
        }
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}

/// Numbers as ECMAScript's Number.prototype.toString prints them (RFC 8785 §3.2.2.3):
/// the shortest digits that read back as the same double, in plain notation for
/// exponents from -6 to 20 and in exponent notation outside.
public enum ES6Number {
    public static func format(_ x: Double) -> String {
        precondition(x.isFinite, "JSON has no encoding for \(x)")
        if x == 0 { return "0" }
        // Swift prints the shortest round-trip digits; take them and re-place the point.
        let text = x.magnitude.description
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        var whole = mantissa, fraction = Substring("")
        if let dot = mantissa.firstIndex(of: ".") {
            whole = mantissa[..<dot]
            fraction = mantissa[mantissa.index(after: dot)...]
        }
        var digits = Array(whole + fraction)
        // value = 0.d₁d₂…d_k × 10^n
        var n = whole.count + exponent
        while digits.first == "0" { digits.removeFirst(); n -= 1 }
        while digits.last == "0" { digits.removeLast() }
        let k = digits.count
        let d = String(digits)
        var out = x < 0 ? "-" : ""
        if k <= n && n <= 21 {
            out += d + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            out += String(digits[0..<n]) + "." + String(digits[n...])
        } else if -6 < n && n <= 0 {
            out += "0." + String(repeating: "0", count: -n) + d
        } else {
            let e = n - 1
            out += String(digits[0]) + (k > 1 ? "." + String(digits[1...]) : "") + "e" + (e < 0 ? "-" : "+") + String(abs(e))
        }
        return out
    }
}
