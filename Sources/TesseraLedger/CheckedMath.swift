/// Sums and products of money, units and stakes. Every figure in an action is an Int64 a
/// signer chose, so an overflow refuses the action, naming what would overflow, instead of
/// trapping (a ledger that traps on a payload can be stopped by anyone who can post one).
enum CheckedMath {
    static func add(_ a: Int64, _ b: Int64, _ what: @autoclosure () -> String) throws -> Int64 {
        let (r, overflow) = a.addingReportingOverflow(b)
        if overflow { throw LedgerError.refused("\(what()) would pass \(Int64.max)") }
        return r
    }

    static func sum<S: Sequence>(_ values: S, _ what: @autoclosure () -> String) throws -> Int64 where S.Element == Int64 {
        var total: Int64 = 0
        for v in values { total = try add(total, v, what()) }
        return total
    }

    /// ⌊a·b / d⌋ for a, b ≥ 0 and d > 0, computed in 128 bits; nil when the quotient does
    /// not fit in an Int64 (`dividingFullWidth` would trap).
    static func mulDiv(_ a: Int64, _ b: Int64, _ d: Int64) -> Int64? {
        guard a >= 0, b >= 0, d > 0 else { return nil }
        let p = a.multipliedFullWidth(by: b)
        let high = UInt64(bitPattern: p.high)
        // The quotient fits when p < d·2^63, that is when p >> 63 < d.
        guard high >> 62 == 0, (high << 1 | p.low >> 63) < UInt64(d) else { return nil }
        return d.dividingFullWidth(p).quotient
    }
}
