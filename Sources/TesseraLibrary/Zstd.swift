import CZstd
import TesseraEngine
import TesseraCore

/// zstd in one shot. Decompression needs the exact size the caller expects (from the
/// delta's own metadata) and refuses a frame that declares or produces anything else, so
/// a hostile stream cannot inflate past what its header says.
public enum Zstd {
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 3) throws -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { dst in
            ZSTD_compress(dst.baseAddress, bound, input.baseAddress, input.count, level)
        }
        if ZSTD_isError(n) != 0 { throw LibraryError("zstd compression failed: \(String(cString: ZSTD_getErrorName(n)))") }
        out.removeSubrange(n...)
        return out
    }

    public static func compress(_ input: [UInt8], level: Int32 = 3) throws -> [UInt8] {
        try input.withUnsafeBytes { try compress($0, level: level) }
    }

    public static func decompress(_ input: UnsafeRawBufferPointer, expectedSize: Int, what: String) throws -> [UInt8] {
        let declared = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if declared == tessera_zstd_contentsize_error() {
            throw LibraryError("\(what): not a zstd frame")
        }
        if declared != tessera_zstd_contentsize_unknown(), declared != UInt64(expectedSize) {
            throw LibraryError("\(what): zstd frame declares \(declared) bytes, expected \(expectedSize)")
        }
        var out = [UInt8](repeating: 0, count: expectedSize)
        let n = out.withUnsafeMutableBytes { dst in
            ZSTD_decompress(dst.baseAddress, expectedSize, input.baseAddress, input.count)
        }
        if ZSTD_isError(n) != 0 {
            throw LibraryError("\(what): zstd stream is corrupt or larger than the \(expectedSize) bytes declared (\(String(cString: ZSTD_getErrorName(n))))")
        }
        guard n == expectedSize else { throw LibraryError("\(what): zstd stream holds \(n) bytes, expected \(expectedSize)") }
        return out
    }
}

/// An error of the expert library, bundles or deltas, naming what it is about.
public struct LibraryError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
