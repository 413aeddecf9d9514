import Foundation
import TesseraCore

/// Mean next-token cross-entropy of logits [B·S, V] against ids shifted by one (the last
/// position of each row has no label), as transformers computes it. When `dlogits` is
/// given it receives ∂mean/∂logits (zero on unlabeled rows). Per-row losses are summed
/// in Double, in order, so the figure does not depend on the worker count.
public func crossEntropyLoss(_ logits: UnsafePointer<Float>, ids: UnsafePointer<Int32>, batch: Int, seq: Int, vocab: Int,
                             rowLoss: UnsafeMutablePointer<Float>, dlogits: UnsafeMutablePointer<Float>?) -> Double {
    let T = batch * seq
    let n = batch * (seq - 1)
    let scale = n > 0 ? 1 / Float(n) : 0
    Parallel.ranges(T, work: T * vocab * 4) { range in
        var tmp = [Float](repeating: 0, count: vocab)
        tmp.withUnsafeMutableBufferPointer { tb in
            let p = tb.baseAddress!
            for t in range {
                let row = logits + t * vocab
                guard t % seq != seq - 1 else {
                    rowLoss[t] = 0
                    if let dlogits { (dlogits + t * vocab).update(repeating: 0, count: vocab) }
                    continue
                }
                let label = Int(ids[t + 1])
                p.update(from: row, count: vocab)
                var m = -Float.infinity
                for j in 0..<vocab { m = max(m, p[j]) }
                var s: Double = 0
                for j in 0..<vocab { let e = Foundation.exp(p[j] - m); p[j] = e; s += Double(e) }
                rowLoss[t] = Float(Foundation.log(s) + Double(m) - Double(row[label]))
                if let dlogits {
                    let d = dlogits + t * vocab
                    let inv = Float(1 / s)
                    for j in 0..<vocab { d[j] = p[j] * inv * scale }
                    d[label] -= scale
                }
            }
        }
    }
    var total: Double = 0
    for t in 0..<T where t % seq != seq - 1 { total += Double(rowLoss[t]) }
    return n > 0 ? total / Double(n) : .nan
}
