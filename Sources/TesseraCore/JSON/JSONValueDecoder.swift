import Foundation

/// Decodes `Decodable` types from a parsed `JSONValue`, so every JSON document Tessera
/// reads goes through the one strict parser (duplicate keys, bad numbers and bad UTF-8
/// are refused before any field is looked at). With `rejectUnknownKeys`, a member that no
/// decoding step asked for is an error naming its path: hand-edited files cannot carry a
/// misspelt key that is silently ignored.
public struct JSONValueDecoder {
    public var rejectUnknownKeys: Bool
    public init(rejectUnknownKeys: Bool = false) { self.rejectUnknownKeys = rejectUnknownKeys }

    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        let usage = KeyUsage(enabled: rejectUnknownKeys)
        let decoder = ValueDecoder(value: value, codingPath: [], usage: usage)
        let result = try T(from: decoder)
        if rejectUnknownKeys, let unknown = usage.firstUnknown() {
            throw DecodingError.dataCorrupted(.init(codingPath: unknown.path, debugDescription: "unknown key; known here: \(unknown.known.joined(separator: ", "))"))
        }
        return result
    }
}

/// Reading JSON documents in one call, with errors that name the file and the field.
public enum StrictJSON {
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, file: String, rejectUnknownKeys: Bool = false) throws -> T {
        let value: JSONValue
        do { value = try JSONValue.parse(data) } catch { throw CoreError("\(file): \(error)") }
        return try decode(type, from: value, file: file, rejectUnknownKeys: rejectUnknownKeys)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, file: String, rejectUnknownKeys: Bool = false) throws -> T {
        do {
            return try JSONValueDecoder(rejectUnknownKeys: rejectUnknownKeys).decode(type, from: value)
        } catch let error as DecodingError {
            throw CoreError("\(file): \(describe(error, in: value))")
        }
    }

    public static func load<T: Decodable>(_ type: T.Type, file: String, rejectUnknownKeys: Bool = false) throws -> T {
        guard let data = FileManager.default.contents(atPath: file) else { throw CoreError("\(file): cannot read") }
        return try decode(type, from: data, file: file, rejectUnknownKeys: rejectUnknownKeys)
    }

    /// "experts[2].versions[0].hash", the way a person would point at a field.
    public static func path(_ codingPath: [CodingKey]) -> String {
        var out = ""
        for key in codingPath {
            if let i = key.intValue, key.stringValue.hasPrefix("Index ") || key is IndexKey {
                out += "[\(i)]"
            } else {
                out += (out.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return out
    }

    /// A decoding error as a sentence: which field, what was there, what was expected.
    public static func describe(_ error: DecodingError, in root: JSONValue) -> String {
        switch error {
        case let .keyNotFound(key, context):
            return "missing key \(path(context.codingPath + [key]))"
        case let .valueNotFound(type, context):
            return "\(path(context.codingPath)) is null, expected \(typeName(type))"
        case let .typeMismatch(type, context):
            let found = root.value(at: context.codingPath).map { " = " + $0.brief } ?? ""
            return "\(path(context.codingPath))\(found) must be \(typeName(type))"
        case let .dataCorrupted(context):
            let at = path(context.codingPath)
            let found = root.value(at: context.codingPath).map { " = " + $0.brief } ?? ""
            return at.isEmpty ? context.debugDescription : "\(at)\(found): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Double.Type, is Float.Type: return "a number"
        case is Int.Type, is Int64.Type, is Int32.Type, is Int16.Type, is Int8.Type: return "an integer"
        case is UInt.Type, is UInt64.Type, is UInt32.Type, is UInt16.Type, is UInt8.Type: return "a non-negative integer"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array<") || name.hasPrefix("Set<") { return "an array" }
            if name.hasPrefix("Dictionary<") { return "a table of values" }
            return "a \(name) value"
        }
    }
}

extension JSONValue {
    /// The value at a coding path, if there is one.
    func value(at path: [CodingKey]) -> JSONValue? {
        var v = self
        for key in path {
            switch v {
            case let .object(members):
                guard let next = members.first(where: { $0.0 == key.stringValue })?.1 else { return nil }
                v = next
            case let .array(items):
                guard let i = key.intValue, items.indices.contains(i) else { return nil }
                v = items[i]
            default: return nil
            }
        }
        return v
    }

    /// At most 60 characters of the value, for error messages.
    var brief: String {
        let s = serialized()
        return s.count > 60 ? String(s.prefix(57)) + "..." : s
    }
}

/// An array position in a coding path.
struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(_ i: Int) { intValue = i }
    init?(stringValue: String) { return nil }
    init?(intValue: Int) { self.intValue = intValue }
}

/// Which members of each decoded object some decoding step asked for. Every object opened
/// as a keyed container is registered with its member names; afterwards each must have
/// had every member asked for. Objects taken whole (a `JSONValue` field) or never opened
/// are not registered: a parent that never asked for them is caught at its own level.
final class KeyUsage {
    /// Off when unknown keys are allowed: nothing is recorded then.
    let enabled: Bool
    private(set) var objects: [ObjectUsage] = []
    init(enabled: Bool) { self.enabled = enabled }

    func open(_ members: [(String, JSONValue)], at path: [CodingKey]) -> ObjectUsage? {
        guard enabled else { return nil }
        let o = ObjectUsage(path: path, names: members.map(\.0))
        objects.append(o)
        return o
    }

    /// The first registered object's first member nothing asked for.
    func firstUnknown() -> (path: [CodingKey], known: [String])? {
        for o in objects {
            for name in o.names where !o.asked.contains(name) {
                return (o.path + [AnyKey(name)], o.asked.sorted())
            }
        }
        return nil
    }
}

final class ObjectUsage {
    let path: [CodingKey]
    let names: [String]
    var asked: [String] = []
    init(path: [CodingKey], names: [String]) { self.path = path; self.names = names }
    func ask(_ key: String) { if !asked.contains(key) { asked.append(key) } }
}

struct AnyKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [CodingKey]
    let usage: KeyUsage
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case let .object(members) = value else {
            throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: codingPath, debugDescription: "expected an object"))
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, codingPath: codingPath, usage: usage,
                                                          object: usage.open(members, at: codingPath)))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case let .array(items) = value else {
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "expected an array"))
        }
        return UnkeyedContainer(items: items, codingPath: codingPath, usage: usage)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { SingleContainer(value: value, codingPath: codingPath, usage: usage) }
}

struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [(String, JSONValue)]
    let codingPath: [CodingKey]
    let usage: KeyUsage
    /// Where the keys asked of this object are recorded (nil when nothing is recorded).
    let object: ObjectUsage?

    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.0) } }

    func contains(_ key: Key) -> Bool {
        object?.ask(key.stringValue)
        return members.contains { $0.0 == key.stringValue }
    }

    private func child(_ key: Key) throws -> JSONValue {
        object?.ask(key.stringValue)
        guard let v = members.first(where: { $0.0 == key.stringValue })?.1 else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return v
    }

    private func decoder(_ key: Key) throws -> ValueDecoder {
        ValueDecoder(value: try child(key), codingPath: codingPath + [key], usage: usage)
    }

    func decodeNil(forKey key: Key) throws -> Bool { try child(key).isNull }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let d = try decoder(key)
        return try SingleContainer(value: d.value, codingPath: d.codingPath, usage: usage).decode(type)
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try decoder(key).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { try decoder(key).unkeyedContainer() }
    func superDecoder() throws -> Decoder { ValueDecoder(value: .object(members), codingPath: codingPath, usage: usage) }
    func superDecoder(forKey key: Key) throws -> Decoder { try decoder(key) }
}

struct UnkeyedContainer: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [CodingKey]
    let usage: KeyUsage
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next<T>(_ type: T.Type) throws -> ValueDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "the array has only \(items.count) items"))
        }
        defer { currentIndex += 1 }
        return ValueDecoder(value: items[currentIndex], codingPath: codingPath + [IndexKey(currentIndex)], usage: usage)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { return false }
        if items[currentIndex].isNull { currentIndex += 1; return true }
        return false
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let d = try next(type)
        return try SingleContainer(value: d.value, codingPath: d.codingPath, usage: usage).decode(type)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next([String: Any].self).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try next([Any].self).unkeyedContainer() }
    mutating func superDecoder() throws -> Decoder { try next(Any.self) }
}

struct SingleContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [CodingKey]
    let usage: KeyUsage

    private func mismatch<T>(_ type: T.Type) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "wrong type"))
    }

    func decodeNil() -> Bool { value.isNull }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case let .bool(b) = value else { throw mismatch(type) }
        return b
    }
    func decode(_ type: String.Type) throws -> String {
        guard case let .string(s) = value else { throw mismatch(type) }
        return s
    }
    func decode(_ type: Double.Type) throws -> Double {
        switch value {
        case let .number(d): return d
        case let .integer(i): return Double(i)
        default: throw mismatch(type)
        }
    }
    func decode(_ type: Float.Type) throws -> Float {
        let d = try decode(Double.self)
        guard abs(d) <= Double(Float.greatestFiniteMagnitude) else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "outside the range of a 32-bit float"))
        }
        return Float(d)
    }

    /// An exact integer of type T: an integer literal, or a number with no fraction that
    /// a double holds exactly (|x| ≤ 2^53).
    private func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        switch value {
        case let .integer(i):
            guard let v = T(exactly: i) else {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "outside \(T.min)...\(T.max)"))
            }
            return v
        case let .number(d):
            guard d == d.rounded(), abs(d) <= 9_007_199_254_740_992, let v = T(exactly: d) else {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "not an integer in \(T.min)...\(T.max) (or too large to be exact)"))
            }
            return v
        default:
            throw mismatch(type)
        }
    }
    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        switch type {
        case is Bool.Type: return try decode(Bool.self) as! T
        case is String.Type: return try decode(String.self) as! T
        case is Double.Type: return try decode(Double.self) as! T
        case is Float.Type: return try decode(Float.self) as! T
        case is Int.Type: return try decode(Int.self) as! T
        case is Int64.Type: return try decode(Int64.self) as! T
        case is Int32.Type: return try decode(Int32.self) as! T
        case is UInt64.Type: return try decode(UInt64.self) as! T
        case is UInt32.Type: return try decode(UInt32.self) as! T
        case is JSONValue.Type:
            return value as! T
        default:
            return try T(from: ValueDecoder(value: value, codingPath: codingPath, usage: usage))
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        if let d = decoder as? ValueDecoder {
            self = d.value
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else {
            let keyed = try decoder.container(keyedBy: AnyKey.self)
            self = .object(try keyed.allKeys.map { ($0.stringValue, try keyed.decode(JSONValue.self, forKey: $0)) })
        }
    }

    public func encode(to encoder: Encoder) throws {
        if let e = encoder as? ValueEncoder {
            e.storage.set(self)
            return
        }
        switch self {
        case .null: var c = encoder.singleValueContainer(); try c.encodeNil()
        case let .bool(b): var c = encoder.singleValueContainer(); try c.encode(b)
        case let .integer(i): var c = encoder.singleValueContainer(); try c.encode(i)
        case let .number(d): var c = encoder.singleValueContainer(); try c.encode(d)
        case let .string(s): var c = encoder.singleValueContainer(); try c.encode(s)
        case let .array(items): var c = encoder.unkeyedContainer(); for i in items { try c.encode(i) }
        case let .object(members):
            var c = encoder.container(keyedBy: AnyKey.self)
            for (k, v) in members { try c.encode(v, forKey: AnyKey(k)) }
        }
    }
}
