import AsyncHTTPClient
import Foundation
import Testing
@testable import TesseraBlobs
import TesseraClient
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraMarket
import TesseraServer
import TesseraTestSupport

/// SigV4 as botocore computes it (values printed by scripts/make_sigv4_vectors.py).
@Suite struct SigV4Tests {
    let signer = SigV4(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "eu-west-1")
    let when = Date(timeIntervalSince1970: 1_796_042_096)  // 2026-11-30T12:34:56Z

    func authorization(_ method: String, _ path: String, body: [UInt8]) -> String? {
        let hash = ContentHash.sha256(body)
        return signer.sign(method: method, path: path, headers: [("host", "127.0.0.1:9000")], payloadHash: hash, date: when)
            .first { $0.0 == "Authorization" }?.1
    }

    @Test func headerSignaturesMatchBotocore() {
        #expect(SigV4.stamp(when).time == "20261130T123456Z")
        #expect(authorization("PUT", "/tessera-test/market/shards/ab cd", body: Array("hello".utf8)) ==
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=875d964ab9e6a0956b72fdc978a7ec1573a48b45c8f7492665cfb53a45bf861d")
        #expect(authorization("GET", "/tessera-test/market/bundles/x", body: []) ==
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=5528bdcf38d6f372a52348ac139490d3e865db17d365ce7c55f49f0155966e1f")
        // Another secret, another signature.
        let other = SigV4(accessKey: "AKIDEXAMPLE", secretKey: "x", region: "eu-west-1")
        #expect(other.sign(method: "GET", path: "/tessera-test/market/bundles/x", headers: [("host", "127.0.0.1:9000")],
                           payloadHash: SigV4.emptyPayloadHash, date: when).last?.1 != authorization("GET", "/tessera-test/market/bundles/x", body: []))
    }

    @Test func presignedURLsMatchBotocore() {
        #expect(signer.presignedQuery(method: "GET", path: "/tessera-test/market/shards/abc", host: "127.0.0.1:9000", expires: 600, date: when) ==
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261130%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20261130T123456Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature=48d764ef0c736852452adee2e06368c958af4f38060cca78b03ba5ca990a567c")
    }

    @Test func locationsAreCheckedByName() throws {
        let l = try S3Location("s3://tessera-test/market/a?endpoint=http://127.0.0.1:9000&region=eu-west-1", environment: [:])
        #expect(l.bucket == "tessera-test" && l.prefix == "market/a" && l.endpoint == "http://127.0.0.1:9000" && l.region == "eu-west-1")
        #expect(l.key("shards/x") == "market/a/shards/x")
        #expect(try S3Location("s3://tessera-test", environment: [:]).endpoint == "https://s3.us-east-1.amazonaws.com")
        for (bad, why) in [("s3://", "expected"), ("s3://Upper/x", "bucket name"), ("s3://ok-bucket/x?color=red", "unknown parameter color"),
                           ("s3://ok-bucket/x?endpoint=ftp://h", "endpoint")] {
            #expect { try S3Location(bad, environment: [:]) } throws: { "\($0)".contains(why) }
        }
    }
}

/// S3 for the tests: moto's server (`.ci/run` starts one) at the endpoint
/// `TESSERA_TEST_S3` names; always on CI.
enum TestS3 {
    static var endpoint: String? { ProcessInfo.processInfo.environment["TESSERA_TEST_S3"] }
    static var enabled: Bool { endpoint != nil || ProcessInfo.processInfo.environment["CI"] != nil }
    static let credentials = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"]

    /// A client on a fresh bucket.
    static func client(_ http: HTTPClient) async throws -> S3Client {
        guard let endpoint else { throw CoreError("TESSERA_TEST_S3 is not set: start moto_server and export its URL") }
        let bucket = "tessera-t-" + UUID().uuidString.lowercased().prefix(12)
        let c = try S3Client(location: try S3Location("s3://\(bucket)/market?endpoint=\(endpoint)&region=us-east-1", environment: [:]),
                             environment: credentials, http: http)
        try await c.createBucketIfMissing()
        return c
    }
}

@Suite(.enabled(if: TestS3.enabled), .serialized) struct S3ClientTests {
    @Test func objectsGoInAndOutWholeAndChecked() async throws {
        try await withHTTPClient { try await Self.roundTrip($0) }
    }

    static func roundTrip(_ http: HTTPClient) async throws {
        let s3 = try await TestS3.client(http)
        let dir = TemporaryDirectory("s3")
        var rng = SplitMix64(seed: 7)
        let bytes = (0..<(3 << 20) + 17).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        try AtomicFile.write(bytes, to: dir.sub("blob"))
        let hash = ContentHash.sha256(bytes)
        #expect(try await s3.size("market/x") == nil)
        try await s3.put("market/x", file: dir.sub("blob"), sha256: hash)
        #expect(try await s3.size("market/x") == Int64(bytes.count))
        #expect(try await s3.get("market/x", to: dir.sub("back"), sha256: hash))
        #expect(FileManager.default.contents(atPath: dir.sub("back")) == Data(bytes))
        // A wrong expected hash: refused, nothing left behind.
        await #expect { try await s3.get("market/x", to: dir.sub("bad"), sha256: String(repeating: "0", count: 64)) } throws: { "\($0)".contains("SHA-256") }
        #expect(!FileManager.default.fileExists(atPath: dir.sub("bad")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["back", "blob"])
        #expect(try await s3.get("market/none", to: dir.sub("none"), sha256: nil) == false)
        // A pre-signed URL needs no credentials.
        let response = try await http.execute(HTTPClientRequest(url: s3.presignedURL("market/x", expires: 60)), timeout: .seconds(60))
        #expect(response.status == .ok)
        #expect(try await response.body.collect(upTo: 8 << 20).readableBytes == bytes.count)
    }
}
