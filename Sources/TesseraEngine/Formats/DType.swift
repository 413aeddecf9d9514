import TesseraCore
/// Element types of safetensors files that Tessera reads and writes.
public enum DType: String, Sendable, CaseIterable, Codable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f64 = "F64"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u8 = "U8"
    case bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: return true
        default: return false
        }
    }
}

extension DType {
    /// The index of the first NaN or infinity among the values in `bytes` (little-endian,
    /// this dtype), or nil when all are finite or the dtype is not floating point. An
    /// all-ones exponent field is what marks both, in every IEEE width.
    public func firstNonFinite(in bytes: UnsafeRawBufferPointer) -> Int? {
        func scan<T: FixedWidthInteger>(_ type: T.Type, exponent: T) -> Int? {
            let n = bytes.count / MemoryLayout<T>.size
            for i in 0..<n where bytes.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self) & exponent == exponent { return i }
            return nil
        }
        switch self {
        case .f32: return scan(UInt32.self, exponent: 0x7F80_0000)
        case .bf16: return scan(UInt16.self, exponent: 0x7F80)
        case .f16: return scan(UInt16.self, exponent: 0x7C00)
        case .f64: return scan(UInt64.self, exponent: 0x7FF0_0000_0000_0000)
        default: return nil
        }
    }
}

/// bf16 is the upper half of an f32; rounding to nearest even as torch does.
@inlinable public func bf16Bits(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
    let rounding = ((bits >> 16) & 1) &+ 0x7FFF
    return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
}

@inlinable public func floatFromBF16(_ b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}

@inlinable public func floatFromF16(_ b: UInt16) -> Float {
    Float(Float16(bitPattern: b))
}

@inlinable public func f16Bits(_ x: Float) -> UInt16 {
    Float16(x).bitPattern
}

/// Converts `count` little-endian elements of a floating-point dtype to Float.
public func convertToFloat(_ src: UnsafeRawPointer, dtype: DType, count: Int, into dst: UnsafeMutablePointer<Float>) {
    switch dtype {
    case .f32:
        // Source may be unaligned inside a mapped file: copy bytes.
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    case .bf16:
        for i in 0..<count { dst[i] = floatFromBF16(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .f16:
        for i in 0..<count { dst[i] = floatFromF16(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .f64:
        for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
    default:
        preconditionFailure("convertToFloat called with non-float dtype \(dtype)")
    }
}

/// Encodes Float values as `dtype` bytes (little-endian), appending to `out`.
public func encodeFloats(_ values: UnsafeBufferPointer<Float>, as dtype: DType, into out: inout [UInt8]) {
    let start = out.count
    out.append(contentsOf: repeatElement(0, count: values.count * dtype.byteSize))
    out.withUnsafeMutableBytes { raw in
        let base = raw.baseAddress! + start
        switch dtype {
        case .f32:
            base.copyMemory(from: values.baseAddress!, byteCount: values.count * 4)
        case .bf16:
            for (i, v) in values.enumerated() { base.storeBytes(of: bf16Bits(v), toByteOffset: 2 * i, as: UInt16.self) }
        case .f16:
            for (i, v) in values.enumerated() { base.storeBytes(of: f16Bits(v), toByteOffset: 2 * i, as: UInt16.self) }
        case .f64:
            for (i, v) in values.enumerated() { base.storeBytes(of: Double(v), toByteOffset: 8 * i, as: Double.self) }
        default:
            preconditionFailure("encodeFloats called with non-float dtype \(dtype)")
        }
    }
}
