import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Free space for an unprivileged writer on the file system that holds `path` (or, when
/// it does not exist yet, its nearest existing ancestor); nil when it cannot be read.
public enum FreeSpace {
    public static func bytes(near path: String) -> Int? {
        var dir = path.isEmpty ? "." : path
        while !FileManager.default.fileExists(atPath: dir) {
            let parent = (dir as NSString).deletingLastPathComponent
            guard !parent.isEmpty else { dir = "."; break }
            guard parent != dir else { break }
            dir = parent
        }
        var info = statvfs()
        guard statvfs(dir, &info) == 0 else { return nil }
        let (product, overflow) = Int(clamping: info.f_bavail).multipliedReportingOverflow(by: Int(clamping: info.f_frsize))
        return overflow ? Int.max : product
    }
}
