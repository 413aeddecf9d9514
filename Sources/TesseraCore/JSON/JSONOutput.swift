/// The one way Tessera writes JSON reports and manifests: through `JSONValueEncoder` and
/// `JSONWriter`, keys sorted, so the same value always gives the same bytes.
public enum JSONOutput {
    /// Compact and canonical (RFC 8785 member order and number form).
    public static func compact<T: Encodable>(_ value: T) throws -> String {
        try JSONValueEncoder().encode(value).canonicalText
    }

    /// The canonical bytes of a value, as signatures cover them.
    public static func canonicalBytes<T: Encodable>(_ value: T) throws -> [UInt8] {
        try JSONValueEncoder().encode(value).canonicalBytes
    }

    /// Indented, with a final newline, for files people read.
    public static func pretty<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try JSONValueEncoder().encode(value).prettyText().utf8) + [0x0A]
    }
}
