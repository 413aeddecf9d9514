import Foundation
import TesseraCore
import TesseraLibrary

/// `tessera fetch`: a local copy of a market's library — the trunk and the current version
/// of every expert, or only of those asked for (a partial library, which loads with those
/// experts resident). Every shard is checked against its hash; an interrupted fetch
/// resumes (shards already here are kept, a partial one continues where it stopped); the
/// manifest is written last, so a library on disk is always whole.
public enum LibraryFetch {
    public struct Summary: Codable, Sendable {
        public var library: String
        public var shards: Int
        public var downloaded: Int
        public var bytes: Int
        public var experts: Int
        enum CodingKeys: String, CodingKey { case library, shards, downloaded, experts; case bytes = "downloaded_bytes" }
    }

    public static func run(from market: any MarketConnection, into dir: String, experts chosen: Set<ExpertID>? = nil,
                           log: (String) -> Void = { _ in }) async throws -> Summary {
        let manifestData = try await market.libraryManifest()
        let manifest = try StrictJSON.decode(LibraryManifest.self, from: manifestData, file: "\(market.location) manifest", rejectUnknownKeys: true)
        let configData = try await market.libraryConfig()
        guard ContentHash.sha256(Array(configData)) == manifest.configSHA256 else {
            throw MarketError.corrupt("\(market.location): config.json does not match the manifest's config_sha256")
        }
        if let chosen {
            for id in chosen where manifest.entry(id) == nil { throw CoreError("expert \(id) is not in \(market.location)'s library") }
        }
        let fm = FileManager.default
        let shardsDir = (dir as NSString).appendingPathComponent("shards")
        try fm.createDirectory(atPath: shardsDir, withIntermediateDirectories: true)
        let wanted = [manifest.trunk] + manifest.experts.filter { chosen?.contains($0.id) ?? true }.map(\.head.hash)
        var downloaded = 0, bytes = 0
        for (i, hash) in wanted.enumerated() {
            let path = (shardsDir as NSString).appendingPathComponent(hash + ".safetensors")
            if fm.fileExists(atPath: path), (try? ContentHash.sha256(file: path)) == hash { continue }
            try await market.downloadShard(hash, to: path)
            downloaded += 1
            bytes += (try? fm.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            log("shard \(i + 1) of \(wanted.count): \(hash.prefix(12)) (\(bytes / 1024) KiB so far)")
        }
        try AtomicFile.write(Array(configData), to: (dir as NSString).appendingPathComponent("config.json"))
        try AtomicFile.write(Array(manifestData), to: (dir as NSString).appendingPathComponent("manifest.json"))
        return Summary(library: dir, shards: wanted.count, downloaded: downloaded, bytes: bytes, experts: wanted.count - 1)
    }
}
