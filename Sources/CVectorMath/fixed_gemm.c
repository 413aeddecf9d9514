/* Matrix products whose every element is the same bits on every processor: each C[i,j]
   is Σ_p A[i,p]·B[p,j] taken over p in order, one fused multiply-add at a time, starting
   from zero; then multiplied by alpha (when alpha ≠ 1) and added to C (when
   accumulating). How the work is blocked over i and j, and how many lanes a vector has,
   never changes that sequence, so the AVX2 path (a 6×16 register tile, FMA) and the
   portable path (fmaf, correctly rounded like the hardware instruction) agree bit for
   bit. OpenBLAS splits and reorders its sums by kernel, so its results differ in the last
   bits between processors (and between OPENBLAS_CORETYPE choices on one processor). */
#pragma STDC FP_CONTRACT OFF
#include "vector_math.h"
#include "fixed_internal.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MR 6
#define NR 16
/* Rows per packed block of A: 16 tiles of 6, about 1.5 MB at k = 4096. */
#define MC 96

typedef struct { float *p; size_t cap; } buffer;
static _Thread_local buffer pack_a, pack_b;

/* A thread's packing buffers are freed when the thread ends: Dispatch's worker threads come
   and go, and each one that had multiplied used to leave its buffers behind (found by
   LeakSanitizer in scripts/sanitize). Thread-local storage is still valid while key
   destructors run. */
static pthread_key_t release_key;
static pthread_once_t release_once = PTHREAD_ONCE_INIT;
static void release_buffers(void *unused) {
    (void)unused;
    free(pack_a.p); free(pack_b.p);
    pack_a = (buffer){0}; pack_b = (buffer){0};
}
static void make_release_key(void) { pthread_key_create(&release_key, release_buffers); }

static float *reserve(buffer *b, size_t count) {
    if (count <= b->cap) return b->p;
    pthread_once(&release_once, make_release_key);
    if (!pthread_getspecific(release_key)) pthread_setspecific(release_key, &pack_a);
    free(b->p);
    b->p = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    b->cap = b->p ? count : 0;
    return b->p;
}

/* op(A) rows i0..i0+MR-1 (zero past m), k-major: ap[p*MR + r]. */
static void pack_a_tile(int transA, const float *a, long lda, long i0, long m, long k, float *ap) {
    for (long p = 0; p < k; p++)
        for (long r = 0; r < MR; r++) {
            long i = i0 + r;
            ap[p * MR + r] = i < m ? (transA ? a[p * lda + i] : a[i * lda + p]) : 0.0f;
        }
}

/* op(B) columns j0..j0+NR-1 (zero past n), k-major: bp[p*NR + c]. */
static void pack_b_panel(int transB, const float *b, long ldb, long j0, long n, long k, float *bp) {
    for (long p = 0; p < k; p++)
        for (long c = 0; c < NR; c++) {
            long j = j0 + c;
            bp[p * NR + c] = j < n ? (transB ? b[j * ldb + p] : b[p * ldb + j]) : 0.0f;
        }
}

/* The tile's sums written to C: alpha, then accumulation, only for real rows and columns. */
static void store_tile(const float acc[MR][NR], float alpha, int accumulate, float *c, long ldc, long i0, long j0, long m, long n) {
    for (long r = 0; r < MR && i0 + r < m; r++)
        for (long col = 0; col < NR && j0 + col < n; col++) {
            float v = acc[r][col];
            if (alpha != 1.0f) v = alpha * v;
            float *dst = c + (i0 + r) * ldc + j0 + col;
            *dst = accumulate ? *dst + v : v;
        }
}

static void tile_portable(const float *ap, const float *bp, long k, float acc[MR][NR]) {
    for (long r = 0; r < MR; r++)
        for (long col = 0; col < NR; col++) acc[r][col] = 0.0f;
    for (long p = 0; p < k; p++)
        for (long r = 0; r < MR; r++) {
            float av = ap[p * MR + r];
            for (long col = 0; col < NR; col++) acc[r][col] = fmaf(av, bp[p * NR + col], acc[r][col]);
        }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2FMA __attribute__((target("avx2,fma")))

AVX2FMA static void tile_avx2(const float *ap, const float *bp, long k, float acc[MR][NR]) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (long p = 0; p < k; p++) {
        const __m256 b0 = _mm256_loadu_ps(bp + p * NR), b1 = _mm256_loadu_ps(bp + p * NR + 8);
        const float *a = ap + p * MR;
        __m256 x;
        x = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    _mm256_storeu_ps(acc[0], c00); _mm256_storeu_ps(acc[0] + 8, c01);
    _mm256_storeu_ps(acc[1], c10); _mm256_storeu_ps(acc[1] + 8, c11);
    _mm256_storeu_ps(acc[2], c20); _mm256_storeu_ps(acc[2] + 8, c21);
    _mm256_storeu_ps(acc[3], c30); _mm256_storeu_ps(acc[3] + 8, c31);
    _mm256_storeu_ps(acc[4], c40); _mm256_storeu_ps(acc[4] + 8, c41);
    _mm256_storeu_ps(acc[5], c50); _mm256_storeu_ps(acc[5] + 8, c51);
}


/* Few rows against a weight stored [n, k] (transB, the decoding case): packing a panel of
   B costs as much as using it once, so instead eight rows of B are loaded, transposed in
   registers, and each lane runs its own column's sum over p in order, one FMA at a time
   from zero: the same sequence as the tiles, so the same bits. */
#define SMALL_M 8
AVX2FMA static void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20); r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20); r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31); r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31); r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* One row's eight sums to C: alpha, then accumulation, only for real columns. */
AVX2FMA static void store_panel(__m256 acc, float alpha, int accumulate, float *c, long cols) {
    float v[8];
    _mm256_storeu_ps(v, acc);
    for (long q = 0; q < cols; q++) {
        float x = alpha != 1.0f ? alpha * v[q] : v[q];
        c[q] = accumulate ? c[q] + x : x;
    }
}

AVX2FMA static void small_rows_avx2(long m, long n, long k, float alpha, const float *a, long lda,
                                    const float *b, long ldb, int accumulate, float *c, long ldc) {
    for (long j0 = 0; j0 < n; j0 += 8) {
        long cols = n - j0 < 8 ? n - j0 : 8;
        __m256 acc[SMALL_M];
        for (long r = 0; r < SMALL_M; r++) acc[r] = _mm256_setzero_ps();
        long p = 0;
        for (; p + 8 <= k; p += 8) {
            __m256 t[8];
            for (long q = 0; q < 8; q++) t[q] = q < cols ? _mm256_loadu_ps(b + (j0 + q) * ldb + p) : _mm256_setzero_ps();
            transpose8(t);
            for (long r = 0; r < m; r++) {
                const float *ar = a + r * lda + p;
                __m256 x = acc[r];
                for (long q = 0; q < 8; q++) x = _mm256_fmadd_ps(_mm256_broadcast_ss(ar + q), t[q], x);
                acc[r] = x;
            }
        }
        for (; p < k; p++) {
            float col[8] = {0};
            for (long q = 0; q < cols; q++) col[q] = b[(j0 + q) * ldb + p];
            __m256 t = _mm256_loadu_ps(col);
            for (long r = 0; r < m; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + r * lda + p), t, acc[r]);
        }
        for (long r = 0; r < m; r++) store_panel(acc[r], alpha, accumulate, c + r * ldc + j0, cols);
    }
}

/* Few rows against B stored [k, n] (no transpose): eight adjacent columns of a row of B
   are one load, so nothing needs packing; sums in the fixed order as everywhere. */
AVX2FMA static void small_rows_nn_avx2(long m, long n, long k, float alpha, const float *a, long lda,
                                       const float *b, long ldb, int accumulate, float *c, long ldc) {
    for (long j0 = 0; j0 < n; j0 += 8) {
        long cols = n - j0 < 8 ? n - j0 : 8;
        __m256 acc[SMALL_M];
        for (long r = 0; r < SMALL_M; r++) acc[r] = _mm256_setzero_ps();
        if (cols == 8) {
            for (long p = 0; p < k; p++) {
                __m256 x = _mm256_loadu_ps(b + p * ldb + j0);
                for (long r = 0; r < m; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + r * lda + p), x, acc[r]);
            }
        } else {
            for (long p = 0; p < k; p++) {
                float col[8] = {0};
                for (long q = 0; q < cols; q++) col[q] = b[p * ldb + j0 + q];
                __m256 x = _mm256_loadu_ps(col);
                for (long r = 0; r < m; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + r * lda + p), x, acc[r]);
            }
        }
        for (long r = 0; r < m; r++) store_panel(acc[r], alpha, accumulate, c + r * ldc + j0, cols);
    }
}

static int detect_fma(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0; }
static int detect_avx512(void) { return detect_fma() && __builtin_cpu_supports("avx512f") ? 1 : 0; }
#else
static int detect_fma(void) { return 0; }
static int detect_avx512(void) { return 0; }
#endif

/* 0 portable, 1 AVX2 and FMA, 2 the same with AVX-512 for the packed decoding products;
   -1 until first use. */
static int gemm_path = -1;
static int best_path(void) { return detect_avx512() ? 2 : detect_fma(); }
int tsr_fixed_path(void) {
    if (gemm_path < 0) gemm_path = best_path();
    return gemm_path;
}


#if defined(__x86_64__)
AVX2FMA static void widen_avx2(const void *src, float *dst, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const char *)src + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
    }
    for (; i < n; i++) dst[i] = widen_bf16(load_u16(src, i));
}
#endif

void tsr_bf16_to_f32(const void *src, float *dst, long n) {
#if defined(__x86_64__)
    if (tsr_fixed_path()) { widen_avx2(src, dst, n); return; }
#endif
    for (long i = 0; i < n; i++) dst[i] = widen_bf16(load_u16(src, i));
}

int tsr_fixed_gemm_fma_available(void) { return detect_fma(); }
int tsr_fixed_gemm_avx512_available(void) { return detect_avx512(); }

int tsr_fixed_gemm_force(int p) {
    int previous = tsr_fixed_path();
    if (p < 0) gemm_path = best_path();
    else if (p == 2 && detect_avx512()) gemm_path = 2;
    else gemm_path = (p >= 1 && detect_fma()) ? 1 : 0;
    return previous;
}

int tsr_sgemm_fixed(int transA, int transB, long m, long n, long k, float alpha,
                    const float *a, long lda, const float *b, long ldb, int accumulate, float *c, long ldc) {
    if (m <= 0 || n <= 0) return 0;
    int path = tsr_fixed_path();
#if defined(__x86_64__)
    if (path && !transA && transB && m <= SMALL_M) {
        small_rows_avx2(m, n, k, alpha, a, lda, b, ldb, accumulate, c, ldc);
        return 0;
    }
    if (path && !transA && !transB && m <= SMALL_M) {
        small_rows_nn_avx2(m, n, k, alpha, a, lda, b, ldb, accumulate, c, ldc);
        return 0;
    }
#endif
    long tiles = (m + MR - 1) / MR;
    long chunk_tiles = MC / MR;
    float *ap = reserve(&pack_a, (size_t)(chunk_tiles * MR) * (size_t)(k > 0 ? k : 1));
    float *bp = reserve(&pack_b, (size_t)NR * (size_t)(k > 0 ? k : 1));
    if (!ap || !bp) return -1;
    float acc[MR][NR];
    for (long t0 = 0; t0 < tiles; t0 += chunk_tiles) {
        long t1 = t0 + chunk_tiles < tiles ? t0 + chunk_tiles : tiles;
        for (long t = t0; t < t1; t++) pack_a_tile(transA, a, lda, t * MR, m, k, ap + (t - t0) * MR * k);
        for (long j0 = 0; j0 < n; j0 += NR) {
            pack_b_panel(transB, b, ldb, j0, n, k, bp);
            for (long t = t0; t < t1; t++) {
#if defined(__x86_64__)
                if (path) tile_avx2(ap + (t - t0) * MR * k, bp, k, acc);
                else
#endif
                    tile_portable(ap + (t - t0) * MR * k, bp, k, acc);
                store_tile(acc, alpha, accumulate, c, ldc, t * MR, j0, m, n);
            }
        }
    }
    return 0;
}
