import Foundation
import TesseraEngine
#if canImport(Glibc)
import Glibc
import TesseraCore
#endif

/// An expert library on disk:
///
///     DIR/manifest.json           where every tensor lives; every expert's versions
///     DIR/config.json             the source config, byte for byte
///     DIR/tokenizer.json          the source's tokenizer, when it has one
///     DIR/shards/<sha256>.safetensors
///
/// Shards are content-addressed and never change; an operation writes its new shards
/// first and the manifest last, by rename, so a killed process leaves the library as it
/// was (at worst with an unreferenced shard).
public final class ExpertLibrary: @unchecked Sendable {
    public let directory: String
    /// Read by many threads (a server's handlers) while one of them adopts a new version:
    /// the value is swapped under a lock, never mutated in place.
    public private(set) var manifest: LibraryManifest {
        get { manifestLock.withLock { storedManifest } }
        set { manifestLock.withLock { storedManifest = newValue } }
    }
    private var storedManifest: LibraryManifest
    private let manifestLock = NSLock()

    public var manifestPath: String { Self.manifestPath(directory) }
    public var configPath: String { (directory as NSString).appendingPathComponent("config.json") }
    public var tokenizerPath: String { (directory as NSString).appendingPathComponent("tokenizer.json") }

    /// Refuses token windows made with another vocabulary than this model's: a corpus
    /// records the hash of the tokenizer.json it used (none for the byte vocabulary), the
    /// library the hash of the one its checkpoint came with.
    public func requireVocabulary(ofTokenFile origin: String, tokenizerSHA256 fileTokenizer: String?) throws {
        let mine = manifest.tokenizerSHA256
        guard fileTokenizer != mine else { return }
        func describe(_ hash: String?) -> String { hash.map { "the tokenizer \($0.prefix(12))…" } ?? "the byte vocabulary" }
        throw LibraryError("\(origin): its tokens were made with \(describe(fileTokenizer)), but the model in \(directory) uses \(describe(mine)); make the corpus again with `tessera corpus \(mine == nil ? "" : "--tokenizer \(tokenizerPath) ")...`")
    }
    public var shardsDirectory: String { (directory as NSString).appendingPathComponent("shards") }
    public static func manifestPath(_ dir: String) -> String { (dir as NSString).appendingPathComponent("manifest.json") }

    public static func isLibrary(_ dir: String) -> Bool {
        FileManager.default.fileExists(atPath: manifestPath(dir))
    }

    public init(directory: String) throws {
        self.directory = directory
        let path = Self.manifestPath(directory)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LibraryError("\(directory): not an expert library (no readable manifest.json)")
        }
        do {
            storedManifest = try StrictJSON.decode(LibraryManifest.self, from: data, file: path, rejectUnknownKeys: true)
        } catch {
            throw LibraryError("\(path): not a valid library manifest: \(error)")
        }
        try storedManifest.validate(file: path)
    }

    public func shardPath(_ hash: String) -> String {
        (shardsDirectory as NSString).appendingPathComponent(hash + ".safetensors")
    }

    /// Opens a shard after checking that its bytes hash to its name.
    public func openShard(_ hash: String, what: String) throws -> SafetensorsFile {
        let path = shardPath(hash)
        guard FileManager.default.fileExists(atPath: path) else {
            throw LibraryError("\(what): shard \(path) is missing")
        }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch {
            throw LibraryError("\(what): shard is unreadable: \(error)")
        }
        let actual = ContentHash.sha256(file.wholeFile)
        guard actual == hash else {
            throw LibraryError("\(what): shard \(path) is corrupt: its SHA-256 is \(actual)")
        }
        return file
    }

    public func config() throws -> ModelConfig {
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw LibraryError("\(configPath): missing")
        }
        let hash = ContentHash.sha256(Array(data))
        guard hash == manifest.configSHA256 else {
            throw LibraryError("\(configPath): SHA-256 \(hash) does not match the manifest's \(manifest.configSHA256)")
        }
        return try ModelConfig.parse(data, file: configPath)
    }

    /// Resolves a version given as a full hash or a unique prefix of at least 8 digits.
    public func resolveVersion(_ id: ExpertID, _ text: String) throws -> String {
        guard let entry = manifest.entry(id) else { throw LibraryError("expert \(id) is not in library \(directory)") }
        // Named in refusals only: not built on the way to a match.
        func list() -> String { entry.versions.map { String($0.hash.prefix(12)) }.joined(separator: ", ") }
        guard text.count >= 8 else {
            throw LibraryError("expert \(id): version \(text.prefix(80)) is too short; give at least 8 hex digits (versions: \(list()))")
        }
        let matches = entry.versions.filter { $0.hash.hasPrefix(text.lowercased()) }
        guard matches.count == 1 else {
            throw LibraryError("expert \(id) has \(matches.isEmpty ? "no" : "more than one") version \(text.prefix(80)) (versions: \(list()))")
        }
        return matches[0].hash
    }

    /// The version of each expert to use: the current one unless `chosen` names another.
    public func versions(_ chosen: [ExpertID: String] = [:]) throws -> [ExpertID: String] {
        var out: [ExpertID: String] = [:]
        for e in manifest.experts { out[e.id] = e.head.hash }
        for (id, text) in chosen { out[id] = try resolveVersion(id, text) }
        return out
    }

    /// Name of a tensor inside an expert shard: the source name, or for a fused tensor
    /// the expert's slice, `name[e]`.
    static func shardTensorName(_ entry: LibraryManifest.TensorEntry, expert: Int) -> String {
        entry.placement == .expertSlices ? "\(entry.name)[\(expert)]" : entry.name
    }

    static func expertMetadata(_ id: ExpertID, parent: String?, configSHA256: String, modelType: String) -> [String: String] {
        ["format": "pt", "tessera.kind": "expert", "tessera.layer": String(id.layer), "tessera.expert": String(id.expert),
         "tessera.parent": parent ?? "", "tessera.config_sha256": configSHA256, "tessera.model_type": modelType]
    }

    /// Writes a shard unless one with the same content exists; returns its hash.
    /// The content is hashed first, so an existing shard costs one read and no write.
    static func storeShard(_ tensors: [StreamedTensor], metadata: [String: String], in shards: String) throws -> String {
        var hasher = StreamingSHA256()
        try SafetensorsWriter.encode(tensors, metadata: metadata, file: shards) { hasher.update($0) }
        let hash = hasher.finalize()
        let path = (shards as NSString).appendingPathComponent(hash + ".safetensors")
        if FileManager.default.fileExists(atPath: path), (try? ContentHash.sha256(file: path)) == hash { return hash }
        var check = StreamingSHA256()
        let tmp = try AtomicFile.writeTemporary(near: path) { sink in
            try SafetensorsWriter.encode(tensors, metadata: metadata, file: path) { piece in
                check.update(piece)
                try sink(piece)
            }
        }
        guard check.finalize() == hash else {
            unlink(tmp)
            throw LibraryError("\(path): source changed while it was being written")
        }
        try AtomicFile.publish(tmp, to: path)
        return hash
    }

    /// Replaces the manifest atomically.
    func writeManifest(_ m: LibraryManifest) throws {
        CrashPoint.reach("library.manifest")
        try AtomicFile.write(try m.encoded(), to: manifestPath)
        manifest = m
    }

    /// Holds an exclusive lock on the library for one mutation.
    func withLock<T>(_ body: () throws -> T) throws -> T {
        let lockPath = (directory as NSString).appendingPathComponent(".lock")
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw LibraryError("\(lockPath): cannot open lock file") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw LibraryError("\(lockPath): cannot lock") }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Adds a new current version of an expert whose shard is already stored.
    public func addVersion(_ id: ExpertID, hash: String, parent: String, producedBy: [String], origin: String) throws {
        try withLock {
            let fresh = try ExpertLibrary(directory: directory)
            var m = fresh.manifest
            guard let i = m.experts.firstIndex(where: { $0.id == id }) else { throw LibraryError("expert \(id) is not in library \(directory)") }
            // Adding a version that is already the head on the same parent is done already
            // (another handle on this library, or a retry after a crash, added it).
            if m.experts[i].head.hash == hash, m.experts[i].head.parent == parent {
                manifest = m
                return
            }
            guard m.experts[i].head.hash == parent else {
                throw LibraryError("expert \(id): the new version's parent \(parent.prefix(12)) is not the current version \(m.experts[i].head.hash.prefix(12))")
            }
            guard !m.experts[i].versions.contains(where: { $0.hash == hash }) else {
                throw LibraryError("expert \(id) already has version \(hash.prefix(12))")
            }
            m.experts[i].versions.append(.init(hash: hash, parent: parent, producedBy: producedBy, origin: origin))
            try writeManifest(m)
        }
    }
}
