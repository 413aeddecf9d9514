import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TesseraCore
import TesseraLibrary

/// The deltas of a round's earlier submissions, which copy detection compares each new
/// one with. They live in a temporary file, unlinked as soon as it is open (nothing is
/// left behind, even by a kill), and are read back one expert at a time: a submission of
/// 128 OLMoE experts is 3.2 GB of float deltas, and a validator held every one in memory.
final class DeltaStore {
    struct Record {
        let submission: String
        var experts: [ExpertID: (offset: Int, count: Int)] = [:]
        var normSquared = 0.0
    }

    /// Committed records, in the order the submissions were judged or remembered.
    private(set) var records: [Record] = []
    private let fd: Int32
    private let directory: String
    private var committedEnd = 0
    private var writeEnd = 0

    init(directory: String = NSTemporaryDirectory()) throws {
        var template = Array(((directory as NSString).appendingPathComponent("tessera-deltas-XXXXXX")).utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw LibraryError("cannot create the validator's delta store in \(directory): \(String(cString: strerror(errno)))") }
        unlink(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        self.fd = fd
        self.directory = directory
    }

    deinit { close(fd) }

    func contains(_ submission: String) -> Bool { records.contains { $0.submission == submission } }

    /// A record to append a submission's deltas to; what an uncommitted record wrote is
    /// overwritten by the next.
    func begin(_ submission: String) -> Record {
        writeEnd = committedEnd
        return Record(submission: submission)
    }

    /// Writes `delta` (whose Σ x² is `squares`) as the record's delta of expert `id`.
    func append(_ delta: [Float], squares: Double, for id: ExpertID, to record: inout Record) throws {
        let bytes = delta.count * MemoryLayout<Float>.stride
        try delta.withUnsafeBytes { raw in
            var done = 0
            while done < bytes {
                let n = pwrite(fd, raw.baseAddress! + done, bytes - done, off_t(writeEnd + done))
                guard n > 0 else { throw LibraryError("cannot write the validator's delta store in \(directory): \(String(cString: strerror(errno)))") }
                done += n
            }
        }
        record.experts[id] = (writeEnd, delta.count)
        record.normSquared += squares
        writeEnd += bytes
    }

    func commit(_ record: Record) {
        records.append(record)
        committedEnd = writeEnd
    }

    /// The dot product of `delta` with the record's delta of the same expert (0 when the
    /// record has none, or one of another size).
    func dot(_ record: Record, _ id: ExpertID, _ delta: [Float]) throws -> Double {
        guard let (offset, count) = record.experts[id], count == delta.count, count > 0 else { return 0 }
        let stored = try [Float](unsafeUninitializedCapacity: count) { out, n in
            let bytes = count * MemoryLayout<Float>.stride
            var done = 0
            while done < bytes {
                let r = pread(fd, UnsafeMutableRawPointer(out.baseAddress!) + done, bytes - done, off_t(offset + done))
                guard r > 0 else { throw LibraryError("cannot read the validator's delta store in \(directory): \(String(cString: strerror(errno)))") }
                done += r
            }
            n = count
        }
        var s = 0.0
        for i in 0..<count { s += Double(delta[i]) * Double(stored[i]) }
        return s
    }
}
