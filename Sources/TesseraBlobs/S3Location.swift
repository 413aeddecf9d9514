import Foundation
import TesseraCore

/// `s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION`: where a market's blobs live.
/// Without `endpoint`, AWS's regional endpoint. Objects are addressed path-style
/// (ENDPOINT/BUCKET/KEY), which AWS, R2, MinIO and moto all accept.
/// Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN).
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public var bucket: String
    public var prefix: String
    public var endpoint: String
    public var region: String

    public static func isS3(_ text: String) -> Bool { text.hasPrefix("s3://") }

    public init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func bad(_ why: String) -> CoreError { CoreError("blob store \(text): \(why)") }
        guard text.hasPrefix("s3://"), let c = URLComponents(string: text), let bucket = c.host, !bucket.isEmpty else {
            throw bad("expected s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=REGION")
        }
        // S3's bucket naming rules (3-63 of lower-case letters, digits, dots and hyphens).
        guard (3...63).contains(bucket.count), bucket.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }) else {
            throw bad("bucket name \(bucket) is not a valid S3 bucket name")
        }
        var endpoint: String?
        var region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        for item in c.queryItems ?? [] {
            switch item.name {
            case "endpoint": endpoint = item.value
            case "region": region = item.value ?? region
            default: throw bad("unknown parameter \(item.name)")
            }
        }
        if let e = endpoint {
            guard let u = URLComponents(string: e), u.scheme == "http" || u.scheme == "https", u.host != nil, u.path.isEmpty || u.path == "/" else {
                throw bad("endpoint \(e) is not http(s)://HOST[:PORT]")
            }
        }
        self.bucket = bucket
        self.prefix = c.path.split(separator: "/").joined(separator: "/")
        self.endpoint = (endpoint ?? "https://s3.\(region).amazonaws.com").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        self.region = region
    }

    public var description: String {
        "s3://\(bucket)/\(prefix)?endpoint=\(endpoint)&region=\(region)"
    }

    /// The object key of a name under the prefix.
    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }
}
