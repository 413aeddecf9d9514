import Foundation
#if canImport(Glibc)
import Glibc
import TesseraCore
#endif

/// One tensor to be written: its bytes are already encoded in `dtype`, little-endian.
public struct TensorRecord: Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var bytes: [UInt8]

    public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    public init(name: String, shape: [Int], floats: [Float], as dtype: DType = .f32) {
        var out: [UInt8] = []
        out.reserveCapacity(floats.count * dtype.byteSize)
        floats.withUnsafeBufferPointer { encodeFloats($0, as: dtype, into: &out) }
        self.init(name: name, dtype: dtype, shape: shape, bytes: out)
    }

    public init(name: String, shape: [Int], int64s: [Int64]) {
        var out = [UInt8](repeating: 0, count: int64s.count * 8)
        out.withUnsafeMutableBytes { raw in
            for (i, v) in int64s.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: 8 * i, as: Int64.self) }
        }
        self.init(name: name, dtype: .i64, shape: shape, bytes: out)
    }
}

/// A tensor whose bytes are produced while the file is written (from a mapped shard,
/// or several slices in turn), so that nothing larger than one tensor is ever copied.
public struct StreamedTensor {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Calls the sink with the tensor's bytes, in one or more pieces.
    public var emit: (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void

    public init(name: String, dtype: DType, shape: [Int], emit: @escaping (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.emit = emit
    }

    public init(_ record: TensorRecord) {
        self.init(name: record.name, dtype: record.dtype, shape: record.shape) { sink in
            try record.bytes.withUnsafeBytes { try sink($0) }
        }
    }

    public var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
}

/// Writes safetensors files the way the reference writer does (tensors ordered by
/// descending alignment then name, header padded with spaces to a multiple of 8), so
/// that transformers and the safetensors library load them. The file appears at its
/// path only when complete: written to a temporary name, flushed, then renamed.
public enum SafetensorsWriter {
    public static func write(_ records: [TensorRecord], metadata: [String: String] = ["format": "pt"], to path: String) throws {
        for r in records {
            let expected = r.shape.reduce(1, *) * r.dtype.byteSize
            guard r.bytes.count == expected, r.shape.allSatisfy({ $0 >= 0 }) else {
                throw SafetensorsError(file: path, "tensor \(r.name): \(r.bytes.count) bytes do not match dtype \(r.dtype.rawValue) × shape \(r.shape)")
            }
        }
        try write(streamed: records.map(StreamedTensor.init), metadata: metadata, to: path)
    }

    public static func write(streamed: [StreamedTensor], metadata: [String: String] = ["format": "pt"], to path: String) throws {
        try AtomicFile.write(to: path) { sink in try encode(streamed, metadata: metadata, file: path, sink: sink) }
    }

    /// Produces the file's bytes in order through `sink`: the length, the header, then
    /// each tensor, checking that every tensor emits exactly the bytes its shape needs.
    public static func encode(_ tensors: [StreamedTensor], metadata: [String: String], file: String,
                              sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var seen = Set<String>()
        for t in tensors {
            guard seen.insert(t.name).inserted else { throw SafetensorsError(file: file, "duplicate tensor name \(t.name)") }
            guard t.name != "__metadata__" else { throw SafetensorsError(file: file, "tensor name __metadata__ is reserved") }
            guard t.shape.allSatisfy({ $0 >= 0 }) else { throw SafetensorsError(file: file, "tensor \(t.name) has a negative dimension") }
        }
        let ordered = tensors.sorted { ($0.dtype.byteSize, $1.name) > ($1.dtype.byteSize, $0.name) }
        var members: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            members.append(("__metadata__", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        var offset = 0
        for t in ordered {
            members.append((t.name, .object([
                ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { .integer(Int64($0)) })),
                ("data_offsets", .array([.integer(Int64(offset)), .integer(Int64(offset + t.byteCount))])),
            ])))
            offset += t.byteCount
        }
        var header = Array(JSONValue.object(members).serialized().utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var len = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &len) { try sink($0) }
        try header.withUnsafeBytes { try sink($0) }
        for t in ordered {
            var written = 0
            try t.emit { piece in
                written += piece.count
                guard written <= t.byteCount else {
                    throw SafetensorsError(file: file, "tensor \(t.name) produced more than its \(t.byteCount) bytes")
                }
                try sink(piece)
            }
            guard written == t.byteCount else {
                throw SafetensorsError(file: file, "tensor \(t.name) produced \(written) bytes, expected \(t.byteCount)")
            }
        }
    }
}

