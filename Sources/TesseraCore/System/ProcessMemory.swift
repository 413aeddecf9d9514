import Foundation

/// Memory figures the kernel publishes under /proc (Linux), in bytes; nil where they
/// cannot be read.
public enum ProcessMemory {
    /// MemAvailable: what can still be given to processes without swapping.
    public static var available: Int? { kilobytes("MemAvailable:", in: "/proc/meminfo") }

    /// VmRSS of a process (this one by default).
    public static func resident(pid: Int32? = nil) -> Int? {
        kilobytes("VmRSS:", in: "/proc/\(pid.map(String.init) ?? "self")/status")
    }

    /// A "Key:   N kB" line of a /proc file.
    static func kilobytes(_ key: String, in path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
              let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap({ Int($0) }) else { return nil }
        let (bytes, overflow) = kb.multipliedReportingOverflow(by: 1024)
        return overflow ? nil : bytes
    }
}
