import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Named places where a crash is worth testing (between writing shards and the manifest,
/// between ledger batches). With `TESSERA_CRASH_AT=NAME` or `NAME#N` in the environment,
/// the process writes `crashpoint NAME N` to standard error the N-th time it reaches NAME
/// (every time without #N) and stops itself with SIGSTOP, so a kill test can wait for that
/// line and SIGKILL the process at exactly that place, however loaded the machine is.
/// Without the variable a crash point costs one comparison.
public enum CrashPoint {
    private static let target: (name: String, count: Int?)? = {
        guard let raw = getenv("TESSERA_CRASH_AT") else { return nil }
        let text = String(cString: raw)
        let parts = text.split(separator: "#", maxSplits: 1)
        guard let first = parts.first else { return nil }
        return (String(first), parts.count == 2 ? Int(parts[1]) : nil)
    }()
    private static let reached = Mutex<[String: Int]>([:])

    public static func reach(_ name: StaticString) {
        guard let target, target.name == "\(name)" else { return }
        let n = reached.withLock { counts -> Int in
            counts["\(name)", default: 0] += 1
            return counts["\(name)"]!
        }
        if let count = target.count, count != n { return }
        let line = "crashpoint \(name) \(n)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        raise(SIGSTOP)
    }
}

import Synchronization
