import Foundation
import TesseraCore
#if canImport(Glibc)
import Glibc
#endif

/// A submission bundle as one file, for the wire: an 8-byte little-endian header length,
/// a JSON header listing the bundle's files (name, size, SHA-256), then the files' bytes
/// in that order. Only a bundle's own names are allowed (`bundle.json`, `bundle.sig`,
/// `deltas/<sha256>.safetensors`), so unpacking cannot write anywhere else, and every size
/// and hash is checked while the bytes are copied.
public enum BundleArchive {
    public static let formatName = "tessera-bundle-archive/1"
    static let maxHeaderBytes = 1 << 20
    static let maxFiles = 4098

    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        public var size: Int
        public var sha256: String
    }

    struct Header: Codable {
        var format: String
        var files: [Entry]
    }

    /// Whether `name` is one a bundle holds.
    public static func isBundleFileName(_ name: String) -> Bool {
        if name == "bundle.json" || name == "bundle.sig" { return true }
        guard name.hasPrefix("deltas/"), name.hasSuffix(".safetensors") else { return false }
        let hash = name.dropFirst("deltas/".count).dropLast(".safetensors".count)
        return ContentHash.isValid(String(hash))
    }

    /// The archive of the bundle in `dir`.
    public static func pack(_ dir: String) throws -> [UInt8] {
        let fm = FileManager.default
        let deltas = ((try? fm.contentsOfDirectory(atPath: (dir as NSString).appendingPathComponent("deltas"))) ?? [])
            .filter { $0.hasSuffix(".safetensors") }.sorted().map { "deltas/" + $0 }
        var files: [(Entry, Data)] = []
        for name in ["bundle.json", "bundle.sig"] + deltas {
            guard isBundleFileName(name) else { throw LibraryError("\(dir)/\(name): not a file a bundle holds") }
            guard let data = fm.contents(atPath: (dir as NSString).appendingPathComponent(name)) else {
                throw LibraryError("\(dir)/\(name): cannot read")
            }
            files.append((Entry(name: name, size: data.count, sha256: ContentHash.sha256(Array(data))), data))
        }
        let header = Array(try JSONOutput.compact(Header(format: formatName, files: files.map(\.0))).utf8)
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
        out += header
        for (_, data) in files { out += data }
        return out
    }

    /// Unpacks the archive file at `path` into `dir` (created, must not exist), checking
    /// the layout, every size and every hash; at most `maxBytes` of content.
    @discardableResult
    public static func unpack(_ path: String, into dir: String, maxBytes: Int) throws -> [Entry] {
        let fd = open(path, O_RDONLY | O_NONBLOCK)  // a FIFO must not block the open; it is refused below
        guard fd >= 0 else { throw LibraryError("\(path): cannot open") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw LibraryError("\(path): cannot stat") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw LibraryError("\(path): not a regular file") }
        let total = Int(st.st_size)
        func read(_ count: Int) throws -> [UInt8] {
            var buf = [UInt8](repeating: 0, count: count)
            var done = 0
            while done < count {
                let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, count - done) }
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { throw LibraryError("bundle archive: truncated (\(done) of \(count) bytes of a part)") }
                done += n
            }
            return buf
        }
        guard total >= 8 else { throw LibraryError("bundle archive: \(total) bytes is too short for a header") }
        let lengthBytes = try read(8)
        let length = lengthBytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(maxHeaderBytes), Int(length) <= total - 8 else {
            throw LibraryError("bundle archive: header of \(length) bytes is larger than \(min(maxHeaderBytes, total - 8))")
        }
        let header: Header
        do {
            header = try StrictJSON.decode(Header.self, from: Data(try read(Int(length))), file: "bundle archive header", rejectUnknownKeys: true)
        }
        guard header.format == formatName else { throw LibraryError("bundle archive: format \(header.format) is not \(formatName)") }
        guard (2...maxFiles).contains(header.files.count) else { throw LibraryError("bundle archive: \(header.files.count) files") }
        var names = Set<String>()
        var content = 0
        for e in header.files {
            guard isBundleFileName(e.name) else { throw LibraryError("bundle archive: file name \"\(e.name.prefix(80))\" is not one a bundle holds") }
            guard names.insert(e.name).inserted else { throw LibraryError("bundle archive: \(e.name) is listed twice") }
            guard e.size >= 0, ContentHash.isValid(e.sha256) else { throw LibraryError("bundle archive: \(e.name) has a bad size or hash") }
            let (sum, overflow) = content.addingReportingOverflow(e.size)
            guard !overflow, sum <= maxBytes else { throw LibraryError("bundle archive: content exceeds the \(maxBytes)-byte cap") }
            content = sum
        }
        guard names.contains("bundle.json"), names.contains("bundle.sig") else { throw LibraryError("bundle archive: bundle.json or bundle.sig missing") }
        guard 8 + Int(length) + content == total else {
            throw LibraryError("bundle archive: header lists \(content) bytes of files, the archive holds \(total - 8 - Int(length))")
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: (dir as NSString).appendingPathComponent("deltas"), withIntermediateDirectories: true)
        for e in header.files {
            var hasher = StreamingSHA256()
            let target = (dir as NSString).appendingPathComponent(e.name)
            try AtomicFile.write(to: target) { sink in
                var left = e.size
                while left > 0 {
                    let piece = try read(min(left, 1 << 20))
                    try piece.withUnsafeBytes { buf in
                        hasher.update(buf)
                        try sink(buf)
                    }
                    left -= piece.count
                }
            }
            guard hasher.finalize() == e.sha256 else {
                throw LibraryError("bundle archive: \(e.name) does not hash to the SHA-256 its header lists")
            }
        }
        return header.files
    }
}
