import Foundation
import TOMLKit

/// Policy files are TOML edited by hand (Market/market.toml, Market/domains/*.toml).
/// TOMLKit (toml++) parses them — every TOML 1.0 form: quoted and dotted keys, inline
/// tables, comments anywhere — and the result is decoded into `Decodable` types by the
/// strict JSON-value decoder, so a misspelt key, a missing key or a value of the wrong type
/// is an error naming the file and the key.
public enum PolicyFile {
    /// The document as a value tree: tables become objects, arrays arrays; dates and times
    /// (which no policy uses) are refused.
    public static func parse(_ text: String, file: String) throws -> JSONValue {
        try checkKeys(text, file: file)
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw CoreError("\(file):\(e.source.begin.line):\(e.source.begin.column): \(e.description)")
        }
        return try value(of: table, file: file, path: "")
    }

    /// toml++ (inside TOMLKit) aborts the process on an assertion when a table header's key
    /// does not start with a bare-key character or a quote (`[ (x)]`, `[\u{8A}fees]`: found by
    /// scripts/fuzz), and keys outside ASCII are not ones a policy uses. Header lines and keys
    /// are checked here, naming the line, before the parser sees them; lines inside multi-line
    /// arrays and strings are values and are left to the parser.
    static func checkKeys(_ text: String, file: String) throws {
        let key = #"(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"#
        let header = try Regex(#"^\s*\[\[?\s*"# + key + #"(?:\s*\.\s*"# + key + #")*\s*\]\]?\s*(?:#.*)?$"#)
        var depth = 0              // open [ and { of a multi-line value
        var multiline: String?     // the closing delimiter of a multi-line string
        for (n, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let body = line.drop { $0 == " " || $0 == "\t" }
            var rest = Substring(line)
            if depth == 0, multiline == nil, let first = body.first, first != "#" {
                if first == "[" {
                    guard (try? header.wholeMatch(in: String(line))) != nil else {
                        throw CoreError("\(file):\(n + 1): \(body.prefix(60).debugDescription) is not a table header (keys are bare ASCII words or quoted)")
                    }
                    continue
                }
                if let eq = body.firstIndex(of: "=") {
                    if body[..<eq].unicodeScalars.contains(where: { !$0.isASCII || ($0.value < 0x20 && $0 != "\t") }) {
                        throw CoreError("\(file):\(n + 1): a key or table name holds a character outside ASCII (\(body[..<eq].prefix(60).debugDescription)); policy keys are ASCII")
                    }
                    rest = body[body.index(after: eq)...]
                }
            }
            // The value part: strings and comments skipped, brackets counted.
            var i = rest.startIndex
            while i < rest.endIndex {
                if let close = multiline {
                    if rest[i...].hasPrefix(close) {
                        multiline = nil
                        i = rest.index(i, offsetBy: 3)
                    } else {
                        i = rest.index(after: i)
                    }
                    continue
                }
                if rest[i...].hasPrefix("\"\"\"") || rest[i...].hasPrefix("'''") {
                    multiline = String(rest[i...].prefix(3))
                    i = rest.index(i, offsetBy: 3)
                    continue
                }
                let c = rest[i]
                switch c {
                case "#":
                    i = rest.endIndex
                    continue
                case "\"", "'":
                    var j = rest.index(after: i)
                    while j < rest.endIndex, rest[j] != c {
                        if c == "\"", rest[j] == "\\", rest.index(after: j) < rest.endIndex { j = rest.index(after: j) }
                        j = rest.index(after: j)
                    }
                    i = j < rest.endIndex ? rest.index(after: j) : j
                    continue
                case "[", "{": depth += 1
                case "]", "}": depth = max(0, depth - 1)
                default: break
                }
                i = rest.index(after: i)
            }
        }
    }

    public static func read(_ file: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: file) else { throw CoreError("\(file): cannot read") }
        guard let text = String(data: data, encoding: .utf8) else { throw CoreError("\(file): not UTF-8 text") }
        return try parse(text, file: file)
    }

    /// Decodes the given top-level tables of a document (each required) into `T`, which
    /// must ask for every key they hold; tables not named are left to other readers.
    public static func decode<T: Decodable>(_ type: T.Type, tables: [String], of document: JSONValue, file: String) throws -> T {
        guard case let .object(members) = document else { throw CoreError("\(file): not a TOML table") }
        var picked: [(String, JSONValue)] = []
        for t in tables {
            guard let v = members.first(where: { $0.0 == t })?.1 else { throw CoreError("\(file): missing table [\(t)]") }
            guard case .object = v else { throw CoreError("\(file): \(t) must be a table") }
            picked.append((t, v))
        }
        return try StrictJSON.decode(type, from: .object(picked), file: file, rejectUnknownKeys: true)
    }

    /// The document with one table's members limited to `keep` (or without `drop`): for
    /// a table two readers share, each decoding only its own keys.
    public static func restricting(_ document: JSONValue, table: String, keep: Set<String>? = nil, drop: Set<String> = []) -> JSONValue {
        guard case let .object(members) = document else { return document }
        return .object(members.map { name, value in
            guard name == table, case let .object(inner) = value else { return (name, value) }
            return (name, .object(inner.filter { (keep?.contains($0.0) ?? true) && !drop.contains($0.0) }))
        })
    }

    /// Refuses top-level tables no reader owns.
    public static func requireOnly(_ tables: Set<String>, in document: JSONValue, file: String) throws {
        for (k, _) in document.objectMembers ?? [] where !tables.contains(k) {
            throw CoreError("\(file): unknown table [\(k)]; known: \(tables.sorted().joined(separator: ", "))")
        }
    }

    private static func value(of node: TOMLValueConvertible, file: String, path: String) throws -> JSONValue {
        switch node.type {
        case .table:
            guard let t = node.table else { break }
            var members: [(String, JSONValue)] = []
            for (k, v) in t { members.append((k, try value(of: v, file: file, path: path.isEmpty ? k : path + "." + k))) }
            return .object(members)
        case .array:
            guard let a = node.array else { break }
            var items: [JSONValue] = []
            for (i, v) in a.enumerated() { items.append(try value(of: v, file: file, path: "\(path)[\(i)]")) }
            return .array(items)
        case .int:
            if let i = node.int { return .integer(Int64(i)) }
        case .double:
            if let d = node.double {
                guard d.isFinite else { throw CoreError("\(file): \(path) = \(d) is not a finite number") }
                return .number(d)
            }
        case .string:
            if let s = node.string { return .string(s) }
        case .bool:
            if let b = node.bool { return .bool(b) }
        default:
            throw CoreError("\(file): \(path) is a date or time, which no policy key takes")
        }
        throw CoreError("\(file): \(path) could not be read")
    }
}

/// Range checks after decoding: the error names the file, the key and the value.
public struct PolicyChecker {
    public let file: String
    public init(file: String) { self.file = file }

    public func require<T: Comparable>(_ value: T, in range: ClosedRange<T>, _ key: String) throws {
        guard range.contains(value) else {
            throw CoreError("\(file): \(key) = \(value) is outside \(range.lowerBound)...\(range.upperBound)")
        }
    }

    public func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        guard condition else { throw CoreError("\(file): \(message())") }
    }
}
