/// An entry of a registry of disjoint address ranges kept sorted by `lo`: how
/// `FrozenWeights` and `AdaptedWeights` find what backs or adapts a weight by its address.
protocol AddressRange {
    var lo: UInt { get }
    var hi: UInt { get }
}

extension Array where Element: AddressRange {
    /// First index whose `lo` is ≥ `address`.
    func insertionIndex(_ address: UInt) -> Int {
        var a = 0, b = count
        while a < b {
            let m = (a + b) / 2
            if self[m].lo < address { a = m + 1 } else { b = m }
        }
        return a
    }

    /// The entries overlapping [lo, hi), in order.
    func overlapping(_ lo: UInt, _ hi: UInt) -> ArraySlice<Element> {
        // Disjoint and sorted by lo, so sorted by hi too: the first ending after lo starts the run.
        var a = 0, b = count
        while a < b {
            let m = (a + b) / 2
            if self[m].hi <= lo { a = m + 1 } else { b = m }
        }
        return self[a...].prefix { $0.lo < hi }
    }

    /// Inserts `entry` in order; `what` names the registry in the failure of an overlap.
    mutating func insertDisjoint(_ entry: Element, _ what: String) {
        let i = insertionIndex(entry.lo)
        precondition((i == 0 || self[i - 1].hi <= entry.lo) && (i == count || self[i].lo >= entry.hi), "\(what) ranges overlap")
        insert(entry, at: i)
    }
}
