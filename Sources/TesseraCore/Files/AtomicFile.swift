import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file under a temporary name, fsyncs it, renames it into place and fsyncs the
/// folder, so a reader sees either the old file or the whole new one.
public enum AtomicFile {
    public typealias Sink = (UnsafeRawBufferPointer) throws -> Void

    public static func write(to path: String, _ body: (Sink) throws -> Void) throws {
        let tmp = try writeTemporary(near: path, body)
        try publish(tmp, to: path)
    }

    /// Writes and fsyncs a temporary file beside `path` and returns its name; the caller
    /// decides the final name (a content hash, say) and calls `publish`.
    public static func writeTemporary(near path: String, _ body: (Sink) throws -> Void) throws -> String {
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CoreError("\(path): cannot create: \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            if !ok { close(fd); unlink(tmp) }
        }
        try body { buf in
            var done = 0
            while done < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw CoreError("\(path): write failed: \(String(cString: strerror(errno)))")
                }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw CoreError("\(path): fsync failed: \(String(cString: strerror(errno)))") }
        ok = true
        close(fd)
        return tmp
    }

    /// Renames a finished temporary file into place and makes the rename durable.
    public static func publish(_ tmp: String, to path: String) throws {
        guard rename(tmp, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(tmp)
            throw CoreError("\(path): rename failed: \(message)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    public static func write(_ data: [UInt8], to path: String) throws {
        try write(to: path) { sink in try data.withUnsafeBytes { try sink($0) } }
    }
}
