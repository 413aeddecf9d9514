import Foundation
import TesseraCore

/// The lossy low-rank payload of one tensor's Δ, viewed as a matrix [m, n] (m the first
/// dimension, n the product of the rest; a vector is [1, n]):
///
///     [scale_a: Float32, scale_b: Float32] × rank
///     [a: code] × rank × m      a_k = scale_a_k · code
///     [b: code] × rank × n      b_k = scale_b_k · code
///
///     Δ̂ = Σ_k a_k b_kᵀ
///
/// Codes are signed integers of `bits` bits (8: one byte each; 4: two per byte, the first
/// in the low nibble), symmetric around zero (−127…127, −7…7).
///
/// Components are found one at a time on what the earlier ones, after quantization, left:
/// the top singular pair of the remainder by power iteration, b quantized, a refitted to the
/// quantized b and quantized in turn. Each component thus corrects the rounding of the ones
/// before it, which a truncated SVD quantized afterwards does not.
public enum LowRankCodec {
    public static let allowedBits: Set<Int> = [4, 8]

    /// The matrix shape a tensor shape is coded as.
    public static func matrixShape(_ shape: [Int]) -> (m: Int, n: Int)? {
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else { return nil }
        if shape.count == 1 { return (1, shape[0]) }
        var n = 1
        for d in shape.dropFirst() {
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { return nil }
            n = p
        }
        return (shape[0], n)
    }

    static func codeBytes(_ count: Int, bits: Int) -> Int { bits == 8 ? count : (count + 1) / 2 }

    /// Payload bytes; nil when the figures do not fit (a hostile header).
    public static func payloadSize(m: Int, n: Int, rank: Int, bits: Int) -> Int? {
        guard rank > 0, m > 0, n > 0, allowedBits.contains(bits) else { return nil }
        let (ra, o1) = rank.multipliedReportingOverflow(by: m)
        let (rb, o2) = rank.multipliedReportingOverflow(by: n)
        guard !o1, !o2 else { return nil }
        let total = [rank * 8, codeBytes(ra, bits: bits), codeBytes(rb, bits: bits)].reduce(0 as Int?) { acc, x in
            acc.flatMap { a in let (s, o) = a.addingReportingOverflow(x); return o ? nil : s }
        }
        return total
    }

    /// Encodes `delta` ([m·n] row-major) at `rank` components of `bits`-bit codes.
    public static func encode(_ delta: [Float], m: Int, n: Int, rank: Int, bits: Int) -> [UInt8] {
        precondition(delta.count == m * n && allowedBits.contains(bits) && rank > 0)
        let qmax = Float((1 << (bits - 1)) - 1)
        var rest = delta
        var scales: [Float] = []
        var codesA: [Int8] = [], codesB: [Int8] = []
        for _ in 0..<rank {
            let (_, v) = topSingularPair(rest, m: m, n: n)
            let (qb, sb) = quantize(v, qmax: qmax)
            let b = qb.map { Float($0) * sb }
            // a = R b / ‖b‖²: the best a for the quantized b.
            let bb = b.reduce(0) { $0 + $1 * $1 }
            var a = [Float](repeating: 0, count: m)
            if bb > 0 {
                for i in 0..<m {
                    var s: Float = 0
                    let row = i * n
                    for j in 0..<n { s += rest[row + j] * b[j] }
                    a[i] = s / bb
                }
            }
            let (qa, sa) = quantize(a, qmax: qmax)
            for i in 0..<m {
                let ai = Float(qa[i]) * sa
                if ai == 0 { continue }
                let row = i * n
                for j in 0..<n { rest[row + j] -= ai * b[j] }
            }
            scales += [sa, sb]
            codesA += qa
            codesB += qb
        }
        var out: [UInt8] = []
        out.reserveCapacity(payloadSize(m: m, n: n, rank: rank, bits: bits) ?? 0)
        for s in scales { withUnsafeBytes(of: s.bitPattern.littleEndian) { out += $0 } }
        pack(codesA, bits: bits, into: &out)
        pack(codesB, bits: bits, into: &out)
        return out
    }

    /// Δ̂ from a payload of exactly `payloadSize` bytes (checked by the caller). The sums are
    /// plain scalar loops in a fixed order, not the engine's `dot`/`axpy`, whose vector paths
    /// differ between processors: every validator must decode the same bits.
    public static func decode(_ payload: [UInt8], m: Int, n: Int, rank: Int, bits: Int, what: String) throws -> [Float] {
        guard let size = payloadSize(m: m, n: n, rank: rank, bits: bits), payload.count == size else {
            throw LibraryError("\(what): low-rank payload of \(payload.count) bytes does not hold rank \(rank) of [\(m), \(n)] at \(bits) bits")
        }
        var scales = [Float](repeating: 0, count: 2 * rank)
        for k in 0..<(2 * rank) {
            var bits32: UInt32 = 0
            for byte in 0..<4 { bits32 |= UInt32(payload[k * 4 + byte]) << (8 * byte) }
            scales[k] = Float(bitPattern: bits32)
            guard scales[k].isFinite else { throw LibraryError("\(what): low-rank scale \(k) is not finite") }
        }
        var at = 8 * rank
        let codesA = unpack(payload, from: &at, count: rank * m, bits: bits)
        let codesB = unpack(payload, from: &at, count: rank * n, bits: bits)
        var out = [Float](repeating: 0, count: m * n)
        out.withUnsafeMutableBufferPointer { o in
            var b = [Float](repeating: 0, count: n)
            for k in 0..<rank {
                let sa = scales[2 * k], sb = scales[2 * k + 1]
                for j in 0..<n { b[j] = Float(codesB[k * n + j]) * sb }
                for i in 0..<m {
                    let ai = Float(codesA[k * m + i]) * sa
                    if ai == 0 { continue }
                    let row = o.baseAddress! + i * n
                    for j in 0..<n { row[j] += ai * b[j] }
                }
            }
        }
        return out
    }

    /// Symmetric quantization to ±qmax with one scale (max |x| / qmax).
    static func quantize(_ x: [Float], qmax: Float) -> (codes: [Int8], scale: Float) {
        let largest = x.reduce(0) { max($0, abs($1)) }
        guard largest > 0, largest.isFinite else { return ([Int8](repeating: 0, count: x.count), 0) }
        let scale = largest / qmax
        return (x.map { Int8(max(-qmax, min(qmax, ($0 / scale).rounded()))) }, scale)
    }

    /// The top right singular vector of R [m, n] (unit length) and its singular value, by
    /// power iteration on RᵀR from the row of largest norm (deterministic).
    static func topSingularPair(_ r: [Float], m: Int, n: Int) -> (sigma: Float, v: [Float]) {
        var best = 0, bestNorm: Float = -1
        for i in 0..<m {
            var s: Float = 0
            for j in 0..<n { s += r[i * n + j] * r[i * n + j] }
            if s > bestNorm { bestNorm = s; best = i }
        }
        guard bestNorm > 0 else { return (0, [Float](repeating: 0, count: n)) }
        var v = Array(r[(best * n)..<(best * n + n)])
        normalize(&v)
        var u = [Float](repeating: 0, count: m)
        var sigma: Float = 0
        for _ in 0..<60 {
            for i in 0..<m {
                var s: Float = 0
                for j in 0..<n { s += r[i * n + j] * v[j] }
                u[i] = s
            }
            var w = [Float](repeating: 0, count: n)
            for i in 0..<m where u[i] != 0 {
                let ui = u[i]
                for j in 0..<n { w[j] += ui * r[i * n + j] }
            }
            let norm = normalize(&w)
            let change = zip(w, v).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            v = w
            let previous = sigma
            sigma = norm.squareRoot()
            if change < 1e-10 || abs(sigma - previous) <= 1e-6 * sigma { break }
        }
        return (sigma, v)
    }

    @discardableResult
    static func normalize(_ v: inout [Float]) -> Float {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if norm > 0 { for j in v.indices { v[j] /= norm } }
        return norm
    }

    static func pack(_ codes: [Int8], bits: Int, into out: inout [UInt8]) {
        if bits == 8 { out += codes.map { UInt8(bitPattern: $0) }; return }
        var i = 0
        while i < codes.count {
            let lo = UInt8(bitPattern: codes[i]) & 0x0F
            let hi = i + 1 < codes.count ? UInt8(bitPattern: codes[i + 1]) & 0x0F : 0
            out.append(lo | hi << 4)
            i += 2
        }
    }

    static func unpack(_ bytes: [UInt8], from at: inout Int, count: Int, bits: Int) -> [Int8] {
        var out = [Int8](repeating: 0, count: count)
        if bits == 8 {
            for i in 0..<count { out[i] = Int8(bitPattern: bytes[at + i]) }
            at += count
            return out
        }
        for i in 0..<count {
            let byte = bytes[at + i / 2]
            let nibble = i % 2 == 0 ? byte & 0x0F : byte >> 4
            out[i] = Int8(bitPattern: nibble << 4) >> 4        // sign-extend the 4 bits
        }
        at += (count + 1) / 2
        return out
    }
}
