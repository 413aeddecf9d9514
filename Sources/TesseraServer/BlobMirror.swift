import Foundation
import TesseraBlobs
import TesseraCore
import TesseraLibrary
import TesseraMarket

/// The market's shards and bundles in an S3-compatible store shared by several servers:
/// each server keeps its market directory as a cache, writes what it accepts through to
/// the store, and fetches what it lacks from it. Nothing fetched is trusted: a shard must
/// hash to its name and pass the library's intake checks, a bundle passes the same
/// verification as an upload.
public struct BlobMirror: Sendable {
    public let s3: S3Client
    /// Answer shard downloads with a redirect to a pre-signed URL instead of the bytes.
    public var redirect: Bool

    public init(s3: S3Client, redirect: Bool = false) {
        self.s3 = s3
        self.redirect = redirect
    }

    static func shardKey(_ hash: String) -> String { "shards/\(hash)" }
    static func bundleKey(_ submission: String) -> String { "bundles/\(submission)" }

    /// Stores a shard (named by its SHA-256) unless the store has it.
    public func putShard(_ hash: String, file: String) async throws {
        let key = s3.location.key(Self.shardKey(hash))
        if try await s3.size(key) == nil { try await s3.put(key, file: file, sha256: hash) }
    }

    /// Every shard of a library (the base model's, before a market opens).
    public func putLibrary(_ library: ExpertLibrary, progress: (Int, Int) -> Void = { _, _ in }) async throws -> Int {
        var hashes = Set(library.manifest.experts.flatMap { $0.versions.map(\.hash) })
        hashes.insert(library.manifest.trunk)
        var done = 0
        for h in hashes.sorted() where FileManager.default.fileExists(atPath: library.shardPath(h)) {
            try await putShard(h, file: library.shardPath(h))
            done += 1
            progress(done, hashes.count)
        }
        return done
    }

    /// A bundle's archive as uploaded.
    public func putBundle(_ submission: String, archive: String) async throws {
        let key = s3.location.key(Self.bundleKey(submission))
        if try await s3.size(key) == nil { try await s3.put(key, file: archive, sha256: try ContentHash.sha256(file: archive)) }
    }

    /// Fetches a shard into the library (checked by hash and by the library's intake).
    /// False when the store does not have it either.
    public func fetchShard(_ hash: String, into library: ExpertLibrary) async throws -> Bool {
        let tmp = NSTemporaryDirectory() + "tessera-blob-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        guard try await s3.get(s3.location.key(Self.shardKey(hash)), to: tmp, sha256: hash) else { return false }
        if hash == library.manifest.trunk || library.manifest.experts.contains(where: { $0.versions.contains { $0.hash == hash } }) {
            // A shard the manifest already names (the base model's or an adopted version).
            try FileManager.default.createDirectory(atPath: (library.shardPath(hash) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: library.shardPath(hash)) { try FileManager.default.moveItem(atPath: tmp, toPath: library.shardPath(hash)) }
        } else {
            _ = try await Blocking.run { try library.intakeShard(tmp) }
        }
        return true
    }

    /// Fetches a bundle's archive and accepts it as an upload would be. False when the
    /// store does not have it.
    public func fetchBundle(_ submission: String, into market: LocalMarket) async throws -> Bool {
        let tmp = NSTemporaryDirectory() + "tessera-blob-\(UUID().uuidString)"
        let dir = tmp + ".d"
        defer {
            try? FileManager.default.removeItem(atPath: tmp)
            try? FileManager.default.removeItem(atPath: dir)
        }
        guard try await s3.get(s3.location.key(Self.bundleKey(submission)), to: tmp, sha256: nil) else { return false }
        let cap = market.rules.bundles.maxBytes
        try await Blocking.run {
            try BundleArchive.unpack(tmp, into: dir, maxBytes: cap)
            let stored = try market.acceptBundle(directory: dir)
            guard stored == submission else { throw MarketError.corrupt("the store's bundle \(submission.prefix(12)) is bundle \(stored.prefix(12))") }
        }
        return true
    }
}
