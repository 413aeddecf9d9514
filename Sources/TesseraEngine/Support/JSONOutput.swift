import Foundation

/// The one way Tessera writes JSON reports and manifests: keys sorted, so the same value
/// always gives the same bytes.
public enum JSONOutput {
    public static func compact<T: Encodable>(_ value: T) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(value), as: UTF8.self)
    }

    /// Indented, with a final newline, for files people read.
    public static func pretty<T: Encodable>(_ value: T) throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array(try enc.encode(value)) + [0x0A]
    }
}
