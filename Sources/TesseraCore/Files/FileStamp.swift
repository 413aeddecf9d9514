#if canImport(Glibc)
import Glibc
#endif

/// What says a file changed without reading it: device, inode, size and modification time.
/// A file replaced by `AtomicFile` (a rename) gets a new inode, so its stamp changes too.
public struct FileStamp: Equatable, Sendable {
    let device: UInt64, inode: UInt64, size: Int64, seconds: Int64, nanoseconds: Int64

    /// nil when the file does not exist (or cannot be examined).
    public init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev); inode = UInt64(st.st_ino); size = Int64(st.st_size)
        seconds = Int64(st.st_mtim.tv_sec); nanoseconds = Int64(st.st_mtim.tv_nsec)
    }
}
