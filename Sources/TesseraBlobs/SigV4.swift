import Crypto
import Foundation

/// AWS Signature Version 4 for S3 requests (header and pre-signed URL forms). No AWS SDK
/// for Swift is in the package mirror, and the part of it Tessera needs — signing GET, PUT
/// and HEAD of single objects — is this one algorithm, checked against AWS's published
/// examples and botocore's output in the tests.
public struct SigV4: Sendable {
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String?
    public var region: String
    public var service = "s3"

    public init(accessKey: String, secretKey: String, sessionToken: String? = nil, region: String) {
        (self.accessKey, self.secretKey, self.sessionToken, self.region) = (accessKey, secretKey, sessionToken, region)
    }

    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    static func stamp(_ date: Date) -> (date: String, time: String) {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let t = f.string(from: date)
        return (String(t.prefix(8)), t)
    }

    static let unreserved: Set<UInt8> = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".utf8))

    /// RFC 3986 unreserved characters stay; everything else is %XX (S3 keeps `/` in paths).
    public static func encode(_ s: String, keepSlash: Bool) -> String {
        var out = ""
        for b in s.utf8 {
            if unreserved.contains(b) || (keepSlash && b == UInt8(ascii: "/")) {
                out.append(Character(UnicodeScalar(b)))
            } else {
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    static func canonicalQuery(_ items: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = items.map { (encode($0.0, keepSlash: false), encode($0.1, keepSlash: false)) }
        let sorted = encoded.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        return sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    func signingKey(date: String) -> SymmetricKey {
        func hmac(_ key: SymmetricKey, _ s: String) -> SymmetricKey {
            SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(s.utf8), using: key)))
        }
        var k = hmac(SymmetricKey(data: Data("AWS4\(secretKey)".utf8)), date)
        k = hmac(k, region)
        k = hmac(k, service)
        return hmac(k, "aws4_request")
    }

    static func hex<D: Sequence>(_ d: D) -> String where D.Element == UInt8 { d.map { String(format: "%02x", $0) }.joined() }

    /// The signature of a canonical request (exposed for the tests).
    func signature(method: String, path: String, query: [(String, String)], headers: [(String, String)], payloadHash: String,
                   date: Date) -> (signature: String, signedHeaders: String, scope: String) {
        let (day, time) = Self.stamp(date)
        let canonicalHeaders = headers.map { ($0.0.lowercased(), $0.1.trimmingCharacters(in: .whitespaces)) }.sorted { $0.0 < $1.0 }
        let signedHeaders = canonicalHeaders.map(\.0).joined(separator: ";")
        let request = [method, Self.encode(path, keepSlash: true), Self.canonicalQuery(query),
                       canonicalHeaders.map { "\($0.0):\($0.1)\n" }.joined(), signedHeaders, payloadHash].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = ["AWS4-HMAC-SHA256", time, scope, Self.hex(SHA256.hash(data: Data(request.utf8)))].joined(separator: "\n")
        let sig = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: signingKey(date: day)))
        return (sig, signedHeaders, scope)
    }

    /// Headers to add to a request: x-amz-date, x-amz-content-sha256, the session token if
    /// any, and Authorization. `headers` are the others to sign (host at least).
    public func sign(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], payloadHash: String,
                     date: Date = Date()) -> [(String, String)] {
        let (_, time) = Self.stamp(date)
        var all = headers + [("x-amz-date", time), ("x-amz-content-sha256", payloadHash)]
        if let sessionToken { all.append(("x-amz-security-token", sessionToken)) }
        let s = signature(method: method, path: path, query: query, headers: all, payloadHash: payloadHash, date: date)
        let auth = "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(s.scope), SignedHeaders=\(s.signedHeaders), Signature=\(s.signature)"
        return Array(all.dropFirst(headers.count)) + [("Authorization", auth)]
    }

    /// The query of a pre-signed URL (host the only signed header, payload unsigned).
    public func presignedQuery(method: String, path: String, host: String, expires: Int, date: Date = Date()) -> String {
        let (day, time) = Self.stamp(date)
        var query = [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", "\(accessKey)/\(day)/\(region)/\(service)/aws4_request"),
                     ("X-Amz-Date", time), ("X-Amz-Expires", String(expires)), ("X-Amz-SignedHeaders", "host")]
        if let sessionToken { query.append(("X-Amz-Security-Token", sessionToken)) }
        let s = signature(method: method, path: path, query: query, headers: [("host", host)], payloadHash: Self.unsignedPayload, date: date)
        return Self.canonicalQuery(query) + "&X-Amz-Signature=" + s.signature
    }
}
