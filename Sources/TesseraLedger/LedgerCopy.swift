import Foundation

/// Copies a whole ledger from one store to another (SQLite to PostgreSQL and back): the
/// events as stored (signatures, hashes, sequence numbers), the derived tables and the
/// latest state snapshot, in one transaction on the target, which must be empty. The
/// caller verifies the copy.
public enum LedgerCopy {
    public static func copy(from source: any LedgerStore, to target: any LedgerStore, progress: (Int64) -> Void = { _ in }) throws -> Int64 {
        try target.write { w -> Int64 in
            if let head = try w.head() {
                throw LedgerError.refused("the target already holds a ledger (\(head.seq) events); copy into an empty one")
            }
            var seq: Int64 = 0
            while true {
                let page = try source.read { try $0.events(after: seq, limit: 10_000) }
                guard let last = page.last else { break }
                for e in page { try w.append(e) }
                seq = last.seq
                progress(seq)
            }
            for table in DerivedTable.allCases {
                let rows = try source.read { try $0.rows(table, matching: []) }
                var i = 0
                while i < rows.count {
                    try w.upsert(Array(rows[i..<min(rows.count, i + 10_000)]))
                    i += 10_000
                }
            }
            if let snap = try source.read({ try $0.snapshot(atOrBefore: .max) }) {
                try w.saveSnapshot(seq: snap.seq, data: snap.data)
            }
            return seq
        }
    }
}
