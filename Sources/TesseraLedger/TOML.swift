import Foundation

/// The subset of TOML that Market/ files use: `[table]` and `[table.sub]` headers,
/// `key = value` with strings, integers (underscores allowed), floats, booleans and
/// one-line arrays of those, and `#` comments. Anything else is an error with its line.
public enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case bool(Bool)
    case array([TOMLValue])
    case table([String: TOMLValue])

    public var table: [String: TOMLValue]? { if case let .table(t) = self { return t }; return nil }
}

public struct TOMLError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int
    public let problem: String
    public var description: String { "\(file):\(line): \(problem)" }
}

public enum TOML {
    public static func parse(_ text: String, file: String) throws -> [String: TOMLValue] {
        var root: [String: TOMLValue] = [:]
        var path: [String] = []
        var definedTables = Set<String>()
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = n + 1
            func fail(_ p: String) -> TOMLError { TOMLError(file: file, line: lineNo, problem: p) }
            let line = stripComment(String(rawLine)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), !line.hasPrefix("[[") else { throw fail("unsupported table header \(line)") }
                let name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                let parts = name.split(separator: ".").map { $0.trimmingCharacters(in: .whitespaces) }
                guard !parts.isEmpty, parts.allSatisfy(isBareKey) else { throw fail("invalid table name \(name)") }
                guard definedTables.insert(parts.joined(separator: ".")).inserted else { throw fail("table [\(name)] defined twice") }
                path = parts
                try ensureTable(&root, path, fail)
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw fail("expected key = value") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            guard isBareKey(key) else { throw fail("invalid key \(key)") }
            var rest = Substring(line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces))
            let value = try parseValue(&rest, fail)
            guard rest.trimmingCharacters(in: .whitespaces).isEmpty else { throw fail("unexpected text after the value of \(key)") }
            try insert(&root, path, key, value, fail)
        }
        return root
    }

    static func stripComment(_ s: String) -> String {
        var inString = false
        var escaped = false
        var out = ""
        for c in s {
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
            } else if c == "\"" {
                inString = true
            } else if c == "#" {
                break
            }
            out.append(c)
        }
        return out
    }

    static func isBareKey(_ s: String) -> Bool {
        !s.isEmpty && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-" }
    }

    static func ensureTable(_ t: inout [String: TOMLValue], _ path: [String], _ fail: (String) -> TOMLError) throws {
        guard let first = path.first else { return }
        var sub: [String: TOMLValue]
        switch t[first] {
        case nil: sub = [:]
        case let .table(existing)?: sub = existing
        default: throw fail("\(first) is not a table")
        }
        try ensureTable(&sub, Array(path.dropFirst()), fail)
        t[first] = .table(sub)
    }

    static func insert(_ t: inout [String: TOMLValue], _ path: [String], _ key: String, _ v: TOMLValue, _ fail: (String) -> TOMLError) throws {
        if let first = path.first {
            guard case var .table(sub)? = t[first] else { throw fail("\(first) is not a table") }
            try insert(&sub, Array(path.dropFirst()), key, v, fail)
            t[first] = .table(sub)
        } else {
            guard t[key] == nil else { throw fail("key \(key) defined twice") }
            t[key] = v
        }
    }

    static func parseValue(_ s: inout Substring, _ fail: (String) -> TOMLError) throws -> TOMLValue {
        s = s.drop { $0 == " " || $0 == "\t" }
        guard let c = s.first else { throw fail("missing value") }
        if c == "\"" {
            s = s.dropFirst()
            var out = ""
            while let ch = s.first {
                s = s.dropFirst()
                if ch == "\"" { return .string(out) }
                if ch == "\\" {
                    guard let e = s.first else { break }
                    s = s.dropFirst()
                    switch e {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "\"": out.append("\"")
                    case "\\": out.append("\\")
                    default: throw fail("unsupported escape \\\(e)")
                    }
                } else {
                    out.append(ch)
                }
            }
            throw fail("unterminated string")
        }
        if c == "[" {
            s = s.dropFirst()
            var items: [TOMLValue] = []
            while true {
                s = s.drop { $0 == " " || $0 == "\t" }
                if s.first == "]" { s = s.dropFirst(); return .array(items) }
                items.append(try parseValue(&s, fail))
                s = s.drop { $0 == " " || $0 == "\t" }
                if s.first == "," { s = s.dropFirst(); continue }
                if s.first == "]" { s = s.dropFirst(); return .array(items) }
                throw fail("expected , or ] in array")
            }
        }
        let token = String(s.prefix { !",] \t".contains($0) })
        s = s.dropFirst(token.count)
        if token == "true" { return .bool(true) }
        if token == "false" { return .bool(false) }
        let plain = token.replacingOccurrences(of: "_", with: "")
        if let i = Int64(plain) { return .integer(i) }
        if plain.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let d = Double(plain), d.isFinite { return .float(d) }
        throw fail("cannot read value \(token)")
    }
}
