import Foundation
import TesseraEngine
import TesseraCore

/// A contributor's submission: a signed manifest and the delta files it names.
///
///     DIR/bundle.json      the manifest, in canonical JSON (the signed bytes)
///     DIR/bundle.sig       Ed25519 signature of those bytes, hex
///     DIR/deltas/<sha256>.safetensors
public struct SubmissionBundle: Sendable {
    public static let formatName = "tessera-bundle/1"

    public struct Item: Sendable, Equatable {
        public var expert: ExpertID
        public var base: String
        public var file: String
        public var sha256: String
        public var size: Int
        public var encoding: String
    }

    public var contributor: String
    public var market: String
    public var domain: String
    public var round: String
    public var items: [Item]
    public var training: JSONValue

    public var manifestJSON: JSONValue {
        .object([
            ("format", .string(Self.formatName)),
            ("contributor", .string(contributor)),
            ("market", .string(market)),
            ("domain", .string(domain)),
            ("round", .string(round)),
            ("experts", .array(items.map { i in
                .object([
                    ("layer", .integer(Int64(i.expert.layer))), ("expert", .integer(Int64(i.expert.expert))),
                    ("base", .string(i.base)),
                    ("delta", .object([("file", .string(i.file)), ("sha256", .string(i.sha256)),
                                       ("size", .integer(Int64(i.size))), ("encoding", .string(i.encoding))])),
                ])
            })),
            ("training", training),
        ])
    }

    /// Writes a bundle of the given deltas, signed by `key`.
    public static func create(key: ParticipantKey, market: String, domain: String, round: String, deltas: [String],
                              training: JSONValue, library: ExpertLibrary, into dir: String) throws -> SubmissionBundle {
        guard !deltas.isEmpty else { throw LibraryError("a bundle needs at least one delta") }
        let fm = FileManager.default
        try fm.createDirectory(atPath: (dir as NSString).appendingPathComponent("deltas"), withIntermediateDirectories: true)
        var items: [Item] = []
        for path in deltas {
            let (_, header) = try library.checkDelta(path)
            guard let data = fm.contents(atPath: path) else { throw LibraryError("\(path): cannot read") }
            let hash = ContentHash.sha256(Array(data))
            let name = "deltas/\(hash).safetensors"
            guard !items.contains(where: { $0.expert == header.id }) else {
                throw LibraryError("\(path): a second delta for expert \(header.id) in one bundle")
            }
            try AtomicFile.write(Array(data), to: (dir as NSString).appendingPathComponent(name))
            items.append(Item(expert: header.id, base: header.base, file: name, sha256: hash, size: data.count, encoding: header.encoding.rawValue))
        }
        items.sort { $0.expert < $1.expert }
        let bundle = SubmissionBundle(contributor: key.publicHex, market: market, domain: domain, round: round, items: items, training: training)
        let bytes = bundle.manifestJSON.canonicalBytes
        let signature = try key.sign(bytes)
        try AtomicFile.write(bytes, to: (dir as NSString).appendingPathComponent("bundle.json"))
        try AtomicFile.write(Array((Hex.encode(signature) + "\n").utf8), to: (dir as NSString).appendingPathComponent("bundle.sig"))
        return bundle
    }

    /// Reads a bundle and checks everything that can be checked against a library: the
    /// signature over the manifest's canonical bytes, every delta's hash and size, its
    /// expert and base matching the manifest, and that it decodes against that base to
    /// finite values of the expert's shapes. With `requireCurrent`, every base must be the
    /// expert's current version.
    public static func verify(_ dir: String, library: ExpertLibrary, requireCurrent: Bool = false) throws -> SubmissionBundle {
        try verify(dir, library: library, requireCurrent: requireCurrent) { _, _, _ in }
    }

    /// `verify`, also returning the experts' weights each delta decodes to (decoding is
    /// part of the check, so callers that need the weights need not decode again).
    public static func verifyDecoding(_ dir: String, library: ExpertLibrary, requireCurrent: Bool = false) throws
        -> (bundle: SubmissionBundle, weights: [ExpertID: ExpertWeights]) {
        var decoded: [ExpertID: ExpertWeights] = [:]
        let bundle = try verify(dir, library: library, requireCurrent: requireCurrent) { item, _, weights in decoded[item.expert] = weights }
        return (bundle, decoded)
    }

    /// `verify`, handing each expert's base and decoded weights to `each` as soon as its
    /// delta checks out, in the manifest's order, so that only one expert's floats are held
    /// at a time (a bundle of 128 OLMoE experts decodes to 3.2 GB). `each` may have seen
    /// some experts when a later one fails and the whole call throws.
    public static func verify(_ dir: String, library: ExpertLibrary, requireCurrent: Bool = false,
                              each: (Item, _ base: ExpertWeights, _ new: ExpertWeights) throws -> Void) throws -> SubmissionBundle {
        var seen: Set<ExpertID> = []
        let fm = FileManager.default
        let manifestPath = (dir as NSString).appendingPathComponent("bundle.json")
        let sigPath = (dir as NSString).appendingPathComponent("bundle.sig")
        guard let data = fm.contents(atPath: manifestPath) else { throw LibraryError("\(manifestPath): missing") }
        guard let sigText = fm.contents(atPath: sigPath) else { throw LibraryError("\(sigPath): missing signature") }
        let json: JSONValue
        do { json = try JSONValue.parse(data) } catch { throw LibraryError("\(manifestPath): not valid JSON (\(error))") }
        guard let sig = Hex.decode(String(decoding: sigText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), sig.count == 64 else {
            throw LibraryError("\(sigPath): not a hex Ed25519 signature")
        }
        guard json["format"]?.stringValue == formatName else { throw LibraryError("\(manifestPath): format is not \(formatName)") }
        func text(_ key: String) throws -> String {
            guard let s = json[key]?.stringValue else { throw LibraryError("\(manifestPath): field \(key) is missing or not a string") }
            return s
        }
        let contributor = try text("contributor")
        guard ParticipantKey.verify(signature: sig, of: json.canonicalBytes, publicHex: contributor) else {
            throw LibraryError("\(sigPath): signature does not verify for contributor \(contributor.prefix(16))… over the manifest")
        }
        guard let experts = json["experts"]?.arrayValue, !experts.isEmpty else { throw LibraryError("\(manifestPath): no experts") }
        var items: [Item] = []
        for (n, e) in experts.enumerated() {
            guard let l = e["layer"]?.intValue, let x = e["expert"]?.intValue, let base = e["base"]?.stringValue,
                  let d = e["delta"], let file = d["file"]?.stringValue, let hash = d["sha256"]?.stringValue,
                  let size = d["size"]?.intValue, let encoding = d["encoding"]?.stringValue else {
                throw LibraryError("\(manifestPath): experts[\(n)] lacks layer, expert, base or delta fields")
            }
            guard file == "deltas/\(hash).safetensors", ContentHash.isValid(hash) else {
                throw LibraryError("\(manifestPath): experts[\(n)] delta file \(file) is not named by its hash")
            }
            let path = (dir as NSString).appendingPathComponent(file)
            guard let bytes = fm.contents(atPath: path) else { throw LibraryError("\(path): missing") }
            guard bytes.count == size else { throw LibraryError("\(path): \(bytes.count) bytes, the manifest says \(size)") }
            guard ContentHash.sha256(Array(bytes)) == hash else { throw LibraryError("\(path): SHA-256 does not match the manifest") }
            let id = ExpertID(layer: l, expert: x)
            guard seen.insert(id).inserted else { throw LibraryError("\(manifestPath): experts[\(n)] repeats expert \(id)") }
            let (header, baseWeights, weights) = try library.decodeDeltaWithBase(path)
            guard header.id == id, header.base == base, header.encoding.rawValue == encoding else {
                throw LibraryError("\(path): delta is for expert \(header.id) base \(header.base.prefix(12)) (\(header.encoding.rawValue)), the manifest says \(id) base \(base.prefix(12)) (\(encoding))")
            }
            if requireCurrent, library.manifest.entry(id)?.head.hash != base {
                throw LibraryError("\(path): base \(base.prefix(12)) of expert \(id) is no longer its current version")
            }
            let item = Item(expert: id, base: base, file: file, sha256: hash, size: size, encoding: encoding)
            items.append(item)
            try each(item, baseWeights, weights)
        }
        return SubmissionBundle(contributor: contributor, market: try text("market"), domain: try text("domain"), round: try text("round"),
                                items: items, training: json["training"] ?? .object([]))
    }

    /// The contributor a bundle names (before any check: for rate limits and messages).
    public static func contributor(of dir: String) throws -> String {
        let path = (dir as NSString).appendingPathComponent("bundle.json")
        guard let data = FileManager.default.contents(atPath: path) else { throw LibraryError("\(path): missing") }
        guard let c = (try? JSONValue.parse(data))?["contributor"]?.stringValue else { throw LibraryError("\(path): no contributor") }
        return c
    }

    /// What the ledger records of a bundle: the SHA-256 of its manifest bytes (the bundle's
    /// identity) and its signature.
    public static func submissionRecord(_ dir: String) throws -> (hash: String, signature: String) {
        let manifestPath = (dir as NSString).appendingPathComponent("bundle.json")
        let sigPath = (dir as NSString).appendingPathComponent("bundle.sig")
        guard let manifest = FileManager.default.contents(atPath: manifestPath) else { throw LibraryError("\(manifestPath): missing") }
        guard let sig = FileManager.default.contents(atPath: sigPath) else { throw LibraryError("\(sigPath): missing signature") }
        // The identity is the signed content, not the file's bytes: the same bundle re-formatted
        // (spacing, escapes, key order) is the same submission. Bundles are written in this
        // canonical form, so their identity equals their file's hash.
        let json: JSONValue
        do { json = try JSONValue.parse(manifest) } catch { throw LibraryError("\(manifestPath): not valid JSON (\(error))") }
        return (ContentHash.sha256(json.canonicalBytes), String(decoding: sig, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
