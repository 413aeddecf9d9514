import CBLAS
import CAMXMatmul
import CVectorMath
import TesseraCore

/// Row-major C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C, with op = transpose when
/// asked. Large products are split by rows of C across the workers; each block is one
/// single-threaded OpenBLAS or AMX call. Which of the two computes a product depends on
/// `precision`, beta, n and k but never on m, so a row's result does not depend
/// on how many rows were computed with it.
/// A weight trained through adapters (`AdaptedWeights`) is multiplied as W₀ plus its
/// low-rank correction.
@inlinable
public func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                 alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                 b: UnsafePointer<Float>, ldb: Int,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                 parallel: Bool = true, precision: MatmulPrecision = .fp32) {
    gemmBase(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
             beta: beta, c: c, ldc: ldc, parallel: parallel, precision: precision)
    if AdaptedWeights.active, m > 0, n > 0, k > 0 {
        AdaptedWeights.addCorrections(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                                      b: b, ldb: ldb, c: c, ldc: ldc, parallel: parallel, precision: precision)
    }
}

/// `gemm` with the weight's stored values (W₀ of an adapted weight).
@inlinable @usableFromInline
func gemmBase(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
              alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
              b: UnsafePointer<Float>, ldb: Int,
              beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
              parallel: Bool = true, precision: MatmulPrecision = .fp32) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta == 0 {
            for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
        } else if beta != 1 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
        }
        return
    }
    let work = parallel ? m * n * k / 64 : 0
    _ = BLASThreads.single
    let packable = precision == .fp32Fixed && m <= PackedWeights.maxRows && !transA
    if FrozenWeights.active, !packable || !PackedWeights.active,
       let segments = FrozenWeights.segments(b, span: ((transB ? n : k) - 1) * ldb + (transB ? k : n)) {
        gemmFrozen(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: segments, ldb: ldb,
                   beta: beta, c: c, ldc: ldc, parallel: parallel, precision: precision)
        return
    }
    // Products narrower than two tiles gain nothing from AMX's padding to 32.
    let amx = precision.amxParts.flatMap { (beta == 0 || beta == 1) && n >= 32 && k >= 32 ? $0 : nil }
    if precision == .fp32Fixed {
        if beta != 0 && beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
        if packable, let packed = PackedWeights.lookup(b, n: n, k: k, ldb: ldb, transB: transB) {
            // Split by 32-column blocks (whole packed panels): each element's sum is unchanged.
            Parallel.ranges(n, granule: 32, work: parallel ? n * k / 4 : 0) { cols in
                packed.multiply(m: m, columns: cols, k: k, alpha: alpha, a: a, lda: lda, accumulate: beta != 0, c: c, ldc: ldc)
            }
            return
        }
        if let segments = FrozenWeights.segments(b, span: ((transB ? n : k) - 1) * ldb + (transB ? k : n)) {
            gemmFrozen(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: segments, ldb: ldb,
                       beta: beta == 0 ? 0 : 1, c: c, ldc: ldc, parallel: parallel, precision: precision)
            return
        }
        Parallel.ranges(m, granule: 6, work: work) { rows in
            let aRow = transA ? a + rows.lowerBound : a + rows.lowerBound * lda
            let status = tsr_sgemm_fixed(transA ? 1 : 0, transB ? 1 : 0, rows.count, n, k, alpha, aRow, lda, b, ldb,
                                         beta == 0 ? 0 : 1, c + rows.lowerBound * ldc, ldc)
            precondition(status == 0, "fixed-order matrix product: out of memory for \(rows.count)×\(k) scratch")
        }
        return
    }
    Parallel.ranges(m, granule: amx == nil ? 16 : 32, work: work) { rows in
        let aRow = transA ? a + rows.lowerBound : a + rows.lowerBound * lda
        if let amx, tsr_amx_sgemm(amx, transA ? 1 : 0, transB ? 1 : 0, Int32(rows.count), Int32(n), Int32(k), alpha,
                                  aRow, Int32(lda), b, Int32(ldb), beta == 1 ? 1 : 0,
                                  c + rows.lowerBound * ldc, Int32(ldc)) == 0 {
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(rows.count), Int32(n), Int32(k), alpha, aRow, Int32(lda), b, Int32(ldb),
                    beta, c + rows.lowerBound * ldc, Int32(ldc))
    }
}

/// Several few-row products X[m, in] · Wᵢᵀ with the same X in one parallel region: each
/// worker takes its share of every product's packed column blocks, so decoding pays one
/// dispatch for q, k and v instead of three. Same bits as the products one by one (each
/// element's sum is unchanged); falls back to them where weights are not packed.
public func linearForwardShared(_ x: UnsafePointer<Float>, _ products: [(w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, outDim: Int)],
                                rows: Int, inDim: Int, precision: MatmulPrecision) {
    let packed = rows <= PackedWeights.maxRows && precision == .fp32Fixed && !AdaptedWeights.active
        ? products.map { PackedWeights.lookup($0.w, n: $0.outDim, k: inDim, ldb: inDim, transB: true) } : []
    guard packed.count == products.count, packed.allSatisfy({ $0 != nil }), Parallel.workers > 1 else {
        for p in products { linearForward(x, p.w, p.y, rows: rows, inDim: inDim, outDim: p.outDim, precision: precision) }
        return
    }
    let blocks = products.map { ($0.outDim + 31) / 32 }, total = blocks.reduce(0, +)
    Parallel.parts(total) { _, range in
        var first = 0
        for (i, p) in products.enumerated() {
            let start = max(range.lowerBound, first), end = min(range.upperBound, first + blocks[i])
            if start < end {
                let lo = (start - first) * 32, hi = min(p.outDim, (end - first) * 32)
                packed[i]!.multiply(m: rows, columns: lo..<hi, k: inDim, alpha: 1, a: x, lda: inDim, accumulate: false, c: p.y, ldc: p.outDim)
            }
            first += blocks[i]
        }
    }
}

/// OpenBLAS set to one thread before its first call: `Parallel` splits the work instead.
@usableFromInline enum BLASThreads {
    @usableFromInline static let single: Void = openblas_set_num_threads(1)
}

/// Y[m, out] (+)= X[m, in] · Wᵀ, for a weight W [out, in] as checkpoints store it.
@inlinable
public func linearForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                          rows: Int, inDim: Int, outDim: Int, accumulate: Bool = false, parallel: Bool = true,
                          precision: MatmulPrecision = .fp32) {
    gemm(transB: true, m: rows, n: outDim, k: inDim, a: x, lda: inDim, b: w, ldb: inDim,
         beta: accumulate ? 1 : 0, c: y, ldc: outDim, parallel: parallel, precision: precision)
}

/// dX[m, in] += dY[m, out] · W.
@inlinable
public func linearBackwardInput(_ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                rows: Int, inDim: Int, outDim: Int, accumulate: Bool = true, parallel: Bool = true,
                                precision: MatmulPrecision = .fp32) {
    gemm(m: rows, n: inDim, k: outDim, a: dy, lda: outDim, b: w, ldb: inDim, beta: accumulate ? 1 : 0, c: dx, ldc: inDim,
         parallel: parallel, precision: precision)
}

/// dW[out, in] += dYᵀ · X.
@inlinable
public func linearBackwardWeight(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                                 rows: Int, inDim: Int, outDim: Int, parallel: Bool = true,
                                 precision: MatmulPrecision = .fp32) {
    gemm(transA: true, m: outDim, n: inDim, k: rows, a: dy, lda: outDim, b: x, ldb: inDim, beta: 1, c: dw, ldc: inDim,
         parallel: parallel, precision: precision)
}
