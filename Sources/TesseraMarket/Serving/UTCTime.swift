import Foundation

/// Unix seconds as ISO 8601 in UTC ("2026-12-01T00:00:00Z") and back: how periods are named
/// and times shown.
public enum UTCTime {
    private static func formatter() -> ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return f
    }

    public static func string(_ t: Int64) -> String { formatter().string(from: Date(timeIntervalSince1970: TimeInterval(t))) }

    public static func seconds(_ text: String) -> Int64? { formatter().date(from: text).map { Int64($0.timeIntervalSince1970) } }
}
