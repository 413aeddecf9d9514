import Foundation

/// Encodes `Encodable` values into a `JSONValue`, the other half of the one JSON stack:
/// reports, manifests and signed documents are all written by `JSONWriter`.
public struct JSONValueEncoder {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let storage = EncodedBox()
        try ValueEncoder(storage: storage, codingPath: []).encodeValue(value)
        return storage.value
    }
}

/// A value under construction; objects and arrays stay open while containers add to them.
final class EncodedBox {
    enum Node { case value(JSONValue), object(ObjectBox), array(ArrayBox), empty }
    var node: Node = .empty

    func set(_ v: JSONValue) { node = .value(v) }

    var value: JSONValue {
        switch node {
        case let .value(v): return v
        case let .object(o): return o.value
        case let .array(a): return a.value
        case .empty: return .object([])
        }
    }

    func object() -> ObjectBox {
        if case let .object(o) = node { return o }
        let o = ObjectBox()
        node = .object(o)
        return o
    }

    func array() -> ArrayBox {
        if case let .array(a) = node { return a }
        let a = ArrayBox()
        node = .array(a)
        return a
    }
}

final class ObjectBox {
    var members: [(String, EncodedBox)] = []
    func child(_ key: String) -> EncodedBox {
        if let existing = members.first(where: { $0.0 == key })?.1 { return existing }
        let b = EncodedBox()
        members.append((key, b))
        return b
    }
    var value: JSONValue { .object(members.map { ($0.0, $0.1.value) }) }
}

final class ArrayBox {
    var items: [EncodedBox] = []
    func append() -> EncodedBox {
        let b = EncodedBox()
        items.append(b)
        return b
    }
    var value: JSONValue { .array(items.map(\.value)) }
}

struct ValueEncoder: Encoder {
    let storage: EncodedBox
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(KeyedEncoder<Key>(object: storage.object(), codingPath: codingPath))
    }
    func unkeyedContainer() -> UnkeyedEncodingContainer { UnkeyedEncoder(array: storage.array(), codingPath: codingPath) }
    func singleValueContainer() -> SingleValueEncodingContainer { SingleEncoder(storage: storage, codingPath: codingPath) }

    func encodeValue<T: Encodable>(_ value: T) throws {
        var single = SingleEncoder(storage: storage, codingPath: codingPath)
        try single.encode(value)
    }
}

struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let object: ObjectBox
    let codingPath: [CodingKey]

    private func encoder(_ key: Key) -> ValueEncoder { ValueEncoder(storage: object.child(key.stringValue), codingPath: codingPath + [key]) }

    mutating func encodeNil(forKey key: Key) throws { object.child(key.stringValue).set(.null) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try encoder(key).encodeValue(value) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        encoder(key).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer { encoder(key).unkeyedContainer() }
    mutating func superEncoder() -> Encoder { ValueEncoder(storage: object.child("super"), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> Encoder { encoder(key) }
}

struct UnkeyedEncoder: UnkeyedEncodingContainer {
    let array: ArrayBox
    let codingPath: [CodingKey]
    var count: Int { array.items.count }

    private func next() -> ValueEncoder { ValueEncoder(storage: array.append(), codingPath: codingPath + [IndexKey(array.items.count)]) }

    mutating func encodeNil() throws { array.append().set(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try next().encodeValue(value) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        next().container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer { next().unkeyedContainer() }
    mutating func superEncoder() -> Encoder { next() }
}

struct SingleEncoder: SingleValueEncodingContainer {
    let storage: EncodedBox
    let codingPath: [CodingKey]

    mutating func encodeNil() throws { storage.set(.null) }
    mutating func encode(_ value: Bool) throws { storage.set(.bool(value)) }
    mutating func encode(_ value: String) throws { storage.set(.string(value)) }
    mutating func encode(_ value: Double) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) has no JSON encoding"))
        }
        storage.set(.number(value))
    }
    /// A float is written with its own shortest digits (0.001, not 0.0010000000474974513).
    mutating func encode(_ value: Float) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) has no JSON encoding"))
        }
        storage.set(.number(Double(value.description) ?? Double(value)))
    }
    mutating func encode(_ value: Int) throws { storage.set(.integer(Int64(value))) }
    mutating func encode(_ value: Int8) throws { storage.set(.integer(Int64(value))) }
    mutating func encode(_ value: Int16) throws { storage.set(.integer(Int64(value))) }
    mutating func encode(_ value: Int32) throws { storage.set(.integer(Int64(value))) }
    mutating func encode(_ value: Int64) throws { storage.set(.integer(value)) }
    mutating func encode(_ value: UInt) throws { try encodeUnsigned(UInt64(value)) }
    mutating func encode(_ value: UInt8) throws { storage.set(.integer(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { storage.set(.integer(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { storage.set(.integer(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { try encodeUnsigned(value) }

    private mutating func encodeUnsigned(_ value: UInt64) throws {
        guard let i = Int64(exactly: value) else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) exceeds the Int64 range JSON integers are kept in"))
        }
        storage.set(.integer(i))
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        switch value {
        case let v as Bool: try encode(v)
        case let v as String: try encode(v)
        case let v as Double: try encode(v)
        case let v as Float: try encode(v)
        case let v as Int: try encode(v)
        case let v as Int64: try encode(v)
        case let v as Int32: try encode(v)
        case let v as UInt64: try encode(v)
        case let v as UInt32: try encode(v)
        case let v as JSONValue: storage.set(v)
        default: try value.encode(to: ValueEncoder(storage: storage, codingPath: codingPath))
        }
    }
}
