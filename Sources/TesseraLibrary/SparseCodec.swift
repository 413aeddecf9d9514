import TesseraEngine
import TesseraCore

/// The lossy sparse payload of one tensor's Δ, chunk by chunk:
///
///     [scale: Float32] × chunks                 max |kept value| / 127 per chunk
///     [index: 12 bits] × entries, two per 3 bytes   position inside the chunk, ascending
///     [value: Int8] × entries                   round(Δ / scale)
///
/// Every full chunk keeps `keep` entries (the largest |Δ|, lower index first on ties);
/// the last keeps min(keep, its length).
public enum SparseCodec {
    static func entries(count: Int, chunk: Int, keep: Int) -> Int {
        let full = count / chunk, rest = count % chunk
        return full * min(keep, chunk) + min(keep, rest)
    }

    static func chunks(count: Int, chunk: Int) -> Int { (count + chunk - 1) / chunk }

    public static func payloadSize(count: Int, chunk: Int, keep: Int) -> Int {
        let n = entries(count: count, chunk: chunk, keep: keep)
        return chunks(count: count, chunk: chunk) * 4 + (n + 1) / 2 * 3 + n
    }

    public static func encode(_ delta: [Float], chunk: Int, keep: Int) -> [UInt8] {
        let count = delta.count
        let nChunks = chunks(count: count, chunk: chunk)
        let nEntries = entries(count: count, chunk: chunk, keep: keep)
        var scales = [Float](repeating: 0, count: nChunks)
        var indices = [UInt16](repeating: 0, count: nEntries)
        var values = [Int8](repeating: 0, count: nEntries)
        delta.withUnsafeBufferPointer { d in
            scales.withUnsafeMutableBufferPointer { sc in
                indices.withUnsafeMutableBufferPointer { ix in
                    values.withUnsafeMutableBufferPointer { vs in
                        let dp = d.baseAddress!, sp = sc.baseAddress!, ip = ix.baseAddress!, vp = vs.baseAddress!
                        Parallel.ranges(nChunks, work: count * 8) { range in
                            var scratch = [Float](repeating: 0, count: chunk)
                            scratch.withUnsafeMutableBufferPointer { sb in
                                for c in range {
                                    let lo = c * chunk, len = min(chunk, count - lo), k = min(keep, len)
                                    let out = c * keep
                                    let src = dp + lo
                                    for i in 0..<len { sb[i] = abs(src[i]) }
                                    let threshold = kthLargest(sb.baseAddress!, len, k)
                                    var greater = 0
                                    for i in 0..<len where abs(src[i]) > threshold { greater += 1 }
                                    var ties = k - greater
                                    var n = 0
                                    var largest: Float = 0
                                    for i in 0..<len {
                                        let a = abs(src[i])
                                        if a > threshold || (a == threshold && ties > 0) {
                                            if a == threshold { ties -= 1 }
                                            ip[out + n] = UInt16(i)
                                            largest = max(largest, a)
                                            n += 1
                                            if n == k { break }
                                        }
                                    }
                                    let scale = largest / 127
                                    sp[c] = scale
                                    for j in 0..<k {
                                        let v = src[Int(ip[out + j])]
                                        vp[out + j] = scale > 0 ? Int8(max(-127, min(127, (v / scale).rounded()))) : 0
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        var payload = [UInt8]()
        payload.reserveCapacity(payloadSize(count: count, chunk: chunk, keep: keep))
        scales.withUnsafeBytes { payload.append(contentsOf: $0) }
        var i = 0
        while i < nEntries {
            let a = indices[i], b = i + 1 < nEntries ? indices[i + 1] : 0
            payload.append(UInt8(a & 0xFF))
            payload.append(UInt8((a >> 8) & 0x0F) | UInt8((b & 0x0F) << 4))
            payload.append(UInt8(b >> 4))
            i += 2
        }
        values.withUnsafeBytes { payload.append(contentsOf: $0) }
        return payload
    }

    public static func decode(_ payload: [UInt8], count: Int, chunk: Int, keep: Int, what: String) throws -> [Float] {
        guard payload.count == payloadSize(count: count, chunk: chunk, keep: keep) else {
            throw LibraryError("\(what): sparse payload has \(payload.count) bytes, expected \(payloadSize(count: count, chunk: chunk, keep: keep))")
        }
        let nChunks = chunks(count: count, chunk: chunk)
        let nEntries = entries(count: count, chunk: chunk, keep: keep)
        var out = [Float](repeating: 0, count: count)
        let indexStart = nChunks * 4
        let valueStart = indexStart + (nEntries + 1) / 2 * 3
        var indices = [UInt16](repeating: 0, count: nEntries)
        payload.withUnsafeBytes { p in
            var i = 0, o = indexStart
            while i < nEntries {
                let b0 = UInt16(p[o]), b1 = UInt16(p[o + 1]), b2 = UInt16(p[o + 2])
                indices[i] = b0 | ((b1 & 0x0F) << 8)
                if i + 1 < nEntries { indices[i + 1] = (b1 >> 4) | (b2 << 4) }
                i += 2
                o += 3
            }
        }
        var bad: String? = nil
        payload.withUnsafeBytes { p in
            for c in 0..<nChunks {
                let lo = c * chunk, len = min(chunk, count - lo), k = min(keep, len)
                let scale = p.loadUnaligned(fromByteOffset: 4 * c, as: Float.self)
                guard scale.isFinite, scale >= 0 else { bad = "chunk \(c) has an invalid scale \(scale)"; return }
                var previous = -1
                for j in 0..<k {
                    let idx = Int(indices[c * keep + j])
                    guard idx > previous, idx < len else { bad = "chunk \(c) has index \(idx) out of order or past its \(len) elements"; return }
                    previous = idx
                    out[lo + idx] = Float(Int8(bitPattern: p[valueStart + c * keep + j])) * scale
                }
            }
        }
        if let bad { throw LibraryError("\(what): corrupt sparse payload: \(bad)") }
        return out
    }

    /// The k-th largest of n values (k ≥ 1), reordering `v` (quickselect).
    static func kthLargest(_ v: UnsafeMutablePointer<Float>, _ n: Int, _ k: Int) -> Float {
        var lo = 0, hi = n - 1
        let target = k - 1
        while lo < hi {
            let pivot = v[(lo + hi) / 2]
            var i = lo, j = hi
            while i <= j {
                while v[i] > pivot { i += 1 }
                while v[j] < pivot { j -= 1 }
                if i <= j {
                    let t = v[i]; v[i] = v[j]; v[j] = t
                    i += 1; j -= 1
                }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { return v[target] }
        }
        return v[target]
    }
}
