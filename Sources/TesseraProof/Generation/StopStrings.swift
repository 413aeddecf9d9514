/// Stop strings over a growing completion: the completion ends where the first stop
/// string begins, and a stream shows only text that can no longer turn out to be the
/// start of one.
public struct StopStrings: Sendable {
    public let stops: [String]
    public init(_ stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// The text before the earliest stop string in `text`, if one occurs.
    public func cut(_ text: String) -> String? {
        var earliest: String.Index?
        for s in stops {
            if let r = text.range(of: s), earliest.map({ r.lowerBound < $0 }) ?? true { earliest = r.lowerBound }
        }
        return earliest.map { String(text[..<$0]) }
    }

    /// How much of `text` (no stop string in it) is safe to show: all but the longest
    /// suffix that is a prefix of some stop string. Counted in Unicode scalars, which,
    /// unlike characters, never merge with what comes after them.
    public func settled(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var held = 0
        for s in stops {
            let stop = Array(s.unicodeScalars)
            for n in stride(from: min(stop.count, scalars.count), to: held, by: -1) where scalars.suffix(n).elementsEqual(stop.prefix(n)) {
                held = n
                break
            }
        }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars.dropLast(held))
        return String(out)
    }
}
