import Foundation
#if canImport(Glibc)
import Glibc
import TesseraCore
#endif

/// A problem with one file, reported as "path: problem".
public struct FileProblem: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let problem: String
    public init(file: String, _ problem: String) {
        self.file = file
        self.problem = problem
    }
    public var description: String { "\(file): \(problem)" }
}

public typealias SafetensorsError = FileProblem

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the data buffer.
    public let begin: Int
    public let end: Int
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { end - begin }
}

/// A memory-mapped safetensors file whose header has been validated in full before any
/// tensor is handed out: every range inside the buffer, contiguous, not overlapping,
/// sized exactly dtype × shape.
public final class SafetensorsFile: @unchecked Sendable {
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let tensors: [String: TensorInfo]
    /// Tensor names in file order (by data offset).
    public let names: [String]
    public let metadata: [String: String]
    private let base: UnsafeRawPointer?
    private let mappedLength: Int
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_NONBLOCK)  // a FIFO must not block the open; it is refused below
        guard fd >= 0 else {
            throw SafetensorsError(file: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SafetensorsError(file: path, "cannot stat") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw SafetensorsError(file: path, "not a regular file") }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw SafetensorsError(file: path, "truncated: \(size) bytes, shorter than the 8-byte header length")
        }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw SafetensorsError(file: path, "cannot map: \(String(cString: strerror(errno)))")
        }
        let raw = UnsafeRawPointer(map)
        do {
            let parsed = try Self.parseHeader(raw, size: size, path: path)
            self.tensors = parsed.tensors
            self.names = parsed.names
            self.metadata = parsed.metadata
            self.dataStart = parsed.dataStart
        } catch {
            munmap(map, size)
            throw error
        }
        self.base = raw
        self.mappedLength = size
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }
    }

    /// The raw little-endian bytes of a tensor, valid while this object lives.
    public func bytes(of name: String) throws -> UnsafeRawBufferPointer {
        guard let info = tensors[name] else { throw SafetensorsError(file: path, "no tensor named \(name)") }
        return bytes(of: info)
    }

    public func bytes(of info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base! + dataStart + info.begin, count: info.byteCount)
    }

    /// Tells the kernel the pages of a tensor are no longer needed, so that streaming a
    /// large file through its map keeps resident memory near one tensor.
    public func release(_ info: TensorInfo) {
        guard let base, info.byteCount > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (dataStart + info.begin) / page * page
        let end = min(mappedLength, dataStart + info.end)
        guard end > start else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    /// Drops the pages under `piece` (a part of this file's map) once it has been used.
    public func release(_ piece: UnsafeRawBufferPointer) {
        guard let base, let start = piece.baseAddress, piece.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let from = (start - UnsafeRawPointer(base)) / page * page
        let to = min(mappedLength, start - UnsafeRawPointer(base) + piece.count)
        guard from >= 0, to > from else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + from), to - from, MADV_DONTNEED)
    }

    /// Hands `bytes` (part of this file's map) to `body` in pieces of at most `chunk` bytes,
    /// dropping each piece's pages after it: resident memory stays near one piece however
    /// large the tensor. Pieces end on element boundaries when `chunk` is a multiple of
    /// the element size.
    public func streamPieces(_ bytes: UnsafeRawBufferPointer, chunk: Int = 16 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        var offset = 0
        repeat {
            let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(bytes.count, offset + chunk)])
            try body(piece)
            release(piece)
            offset += chunk
        } while offset < bytes.count
    }

    /// Every byte of the file as mapped (header included), for hashing.
    public var wholeFile: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: mappedLength) }

    /// A floating-point tensor converted to Float.
    public func floats(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw SafetensorsError(file: path, "no tensor named \(name)") }
        guard info.dtype.isFloatingPoint else {
            throw SafetensorsError(file: path, "tensor \(name) has dtype \(info.dtype.rawValue), expected a floating-point dtype")
        }
        var out = [Float](repeating: 0, count: info.elementCount)
        let src = bytes(of: info)
        out.withUnsafeMutableBufferPointer { convertToFloat(src.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, dtype: info.dtype, count: info.elementCount, into: $0.baseAddress!) }
        return out
    }

    /// An integer tensor widened to Int64.
    public func int64s(_ name: String) throws -> [Int64] {
        guard let info = tensors[name] else { throw SafetensorsError(file: path, "no tensor named \(name)") }
        let src = bytes(of: info)
        let n = info.elementCount
        switch info.dtype {
        case .i64: return (0..<n).map { src.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
        case .i32: return (0..<n).map { Int64(src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
        case .i16: return (0..<n).map { Int64(src.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self)) }
        case .i8: return (0..<n).map { Int64(src.load(fromByteOffset: $0, as: Int8.self)) }
        case .u8: return (0..<n).map { Int64(src.load(fromByteOffset: $0, as: UInt8.self)) }
        default:
            throw SafetensorsError(file: path, "tensor \(name) has dtype \(info.dtype.rawValue), expected an integer dtype")
        }
    }

    private struct Parsed {
        var tensors: [String: TensorInfo]
        var names: [String]
        var metadata: [String: String]
        var dataStart: Int
    }

    private static func parseHeader(_ raw: UnsafeRawPointer, size: Int, path: String) throws -> Parsed {
        let headerLen = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        guard headerLen <= UInt64(maxHeaderBytes) else {
            throw SafetensorsError(file: path, "header length \(headerLen) exceeds the \(maxHeaderBytes)-byte limit")
        }
        let hl = Int(headerLen)
        guard 8 + hl <= size else {
            throw SafetensorsError(file: path, "truncated: header claims \(hl) bytes but the file has \(size - 8) after the length")
        }
        guard hl >= 2, raw.load(fromByteOffset: 8, as: UInt8.self) == UInt8(ascii: "{") else {
            throw SafetensorsError(file: path, "header does not start with '{'")
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(UnsafeRawBufferPointer(start: raw + 8, count: hl))
        } catch let e as JSONParseError {
            throw SafetensorsError(file: path, "header is not valid JSON (\(e.description))")
        }
        guard let members = json.objectMembers else { throw SafetensorsError(file: path, "header is not a JSON object") }
        let dataStart = 8 + hl
        let bufferSize = size - dataStart
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, entry) in members {
            if name == "__metadata__" {
                guard let m = entry.objectMembers else { throw SafetensorsError(file: path, "__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw SafetensorsError(file: path, "__metadata__ value for \(k) is not a string") }
                    metadata[k] = s
                }
                continue
            }
            tensors[name] = try tensorInfo(name: name, entry: entry, path: path)
        }
        // Ranges must tile the buffer exactly: sorted by begin, each starting where the last ended.
        let ordered = tensors.values.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var cursor = 0
        for t in ordered {
            if t.begin < cursor {
                throw SafetensorsError(file: path, "tensor \(t.name) bytes [\(t.begin), \(t.end)) overlap the previous tensor, which ends at \(cursor)")
            }
            if t.begin > cursor {
                throw SafetensorsError(file: path, "hole in data buffer: bytes [\(cursor), \(t.begin)) before tensor \(t.name) belong to no tensor")
            }
            if t.end > bufferSize {
                throw SafetensorsError(file: path, "truncated: tensor \(t.name) ends at byte \(t.end) of the data buffer, which has only \(bufferSize) bytes")
            }
            cursor = t.end
        }
        if cursor != bufferSize {
            throw SafetensorsError(file: path, "data buffer has \(bufferSize) bytes but the tensors cover \(cursor): \(bufferSize - cursor) trailing bytes")
        }
        return Parsed(tensors: tensors, names: ordered.map(\.name), metadata: metadata, dataStart: dataStart)
    }

    private static func tensorInfo(name: String, entry: JSONValue, path: String) throws -> TensorInfo {
        guard entry.objectMembers != nil else { throw SafetensorsError(file: path, "entry for tensor \(name) is not an object") }
        guard let dtypeName = entry["dtype"]?.stringValue else {
            throw SafetensorsError(file: path, "tensor \(name) has no dtype string")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw SafetensorsError(file: path, "tensor \(name) has unsupported dtype \(dtypeName); supported: \(DType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let shapeItems = entry["shape"]?.arrayValue else {
            throw SafetensorsError(file: path, "tensor \(name) has no shape array")
        }
        var shape: [Int] = []
        var count = 1
        for item in shapeItems {
            guard let d = item.intValue, d >= 0 else {
                throw SafetensorsError(file: path, "tensor \(name) has an invalid dimension \(item.serialized())")
            }
            shape.append(d)
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= Int(Int32.max) * 64 else {
                throw SafetensorsError(file: path, "tensor \(name) shape \(shape) is too large")
            }
            count = product
        }
        guard let offs = entry["data_offsets"]?.arrayValue, offs.count == 2,
              let begin = offs[0].intValue, let end = offs[1].intValue, begin >= 0, end >= begin
        else {
            throw SafetensorsError(file: path, "tensor \(name) has invalid data_offsets (need [begin, end] with 0 ≤ begin ≤ end)")
        }
        let expected = count * dtype.byteSize
        guard end - begin == expected else {
            throw SafetensorsError(file: path, "tensor \(name): dtype \(dtypeName) × shape \(shape) needs \(expected) bytes but data_offsets [\(begin), \(end)] span \(end - begin)")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }
}
