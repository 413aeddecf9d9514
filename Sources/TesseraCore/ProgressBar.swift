import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on standard error for long work: done/total, rate and time
/// left. Redraws at most ten times a second, and only when standard error is a terminal
/// (logs get a single line at the end instead).
public final class ProgressBar: @unchecked Sendable {
    public let label: String
    public let total: Double
    let unit: String
    let scale: Double
    let enabled: Bool
    let start = DispatchTime.now().uptimeNanoseconds
    var lastDraw: UInt64 = 0
    var done: Double = 0
    var extra = ""

    /// `unit`/`scale` say how to print amounts (e.g. "MB", 1e6).
    public init(label: String, total: Double, unit: String = "", scale: Double = 1, enabled: Bool = isatty(2) == 1) {
        self.label = label
        self.total = max(total, 1e-9)
        self.unit = unit
        self.scale = scale
        self.enabled = enabled
    }

    public func advance(by amount: Double, note: String? = nil) { update(done + amount, note: note) }

    public func update(_ value: Double, note: String? = nil) {
        done = value
        if let note { extra = note }
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if now - lastDraw < 100_000_000 && done < total { return }
        lastDraw = now
        FileHandle.standardError.write(Data(("\r" + line(now: now) + "\u{1B}[K").utf8))
    }

    public func finish() {
        let text = line(now: DispatchTime.now().uptimeNanoseconds)
        FileHandle.standardError.write(Data(((enabled ? "\r" : "") + text + (enabled ? "\u{1B}[K" : "") + "\n").utf8))
    }

    func line(now: UInt64) -> String {
        let fraction = min(1, done / total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        let elapsed = Double(now - start) / 1e9
        let rate = elapsed > 0 ? done / elapsed : 0
        let left = rate > 0 ? (total - done) / rate : 0
        let amount = String(format: "%.1f/%.1f%@", done / scale, total / scale, unit)
        let speed = String(format: "%.1f%@/s", rate / scale, unit)
        return "\(label) [\(bar)] \(Int(fraction * 100))% \(amount) \(speed) \(fraction < 1 ? "left \(Self.clock(left))" : "in \(Self.clock(elapsed))")" + (extra.isEmpty ? "" : " " + extra)
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
