/* Few-row products against packed weights: the decoding steps' products. Each element is
   summed over p in order with one fused multiply-add at a time from zero, as in
   fixed_gemm.c, so every path (portable, AVX2, AVX-512) and both panel precisions give the
   bits of tsr_sgemm_fixed. A decoding step at batch 1 multiplies one row by each weight,
   so each weight is read once per token: the kernels keep eight or more independent sums
   in flight and widen bf16 with one shift or mask per 16 values, so that reading the
   weights, not arithmetic, bounds them. */
#pragma STDC FP_CONTRACT OFF
#include "vector_math.h"
#include "fixed_internal.h"
#include <math.h>

#define PW 32      /* columns per panel */
#define ROWS 8     /* rows per pass of the kernels */

long tsr_packed_panels_count(long n, long k) { return (n + PW - 1) / PW * PW * k; }

/* Where column q (0 ≤ q < 32) of a panel row sits in a bf16 panel. */
static inline long bf16_slot(long q) { return q < 16 ? 2 * q : 2 * (q - 16) + 1; }

void tsr_pack_panels(int transB, long n, long k, const float *b, long ldb, float *out) {
    for (long j0 = 0; j0 < n; j0 += PW)
        for (long p = 0; p < k; p++)
            for (long q = 0; q < PW; q++) {
                long j = j0 + q;
                out[j0 * k + p * PW + q] = j < n ? (transB ? b[j * ldb + p] : b[p * ldb + j]) : 0.0f;
            }
}

void tsr_pack_panels_bf16(int transB, long n, long k, const void *b, long ldb, uint16_t *out) {
    for (long j0 = 0; j0 < n; j0 += PW)
        for (long p = 0; p < k; p++)
            for (long q = 0; q < PW; q++) {
                long j = j0 + q;
                out[j0 * k + p * PW + bf16_slot(q)] = j < n ? load_u16(b, transB ? j * ldb + p : p * ldb + j) : 0;
            }
}

static inline float packed_value(const void *pk, int bf16, long j, long p, long k) {
    long base = (j / PW) * PW * k + p * PW, q = j % PW;
    return bf16 ? widen_bf16(((const uint16_t *)pk)[base + bf16_slot(q)]) : ((const float *)pk)[base + q];
}

static void packed_portable(long m, long n, long k, float alpha, const float *a, long lda, const void *pk, int bf16,
                            int accumulate, float *c, long ldc) {
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            float acc = 0.0f;
            for (long p = 0; p < k; p++) acc = fmaf(a[i * lda + p], packed_value(pk, bf16, j, p, k), acc);
            float x = alpha != 1.0f ? alpha * acc : acc;
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + x : x;
        }
}

/* Sums to C: alpha, then accumulation, only for real columns. */
static inline void store_sums(const float *v, long cols, float alpha, int accumulate, float *c) {
    for (long q = 0; q < cols; q++) {
        float x = alpha != 1.0f ? alpha * v[q] : v[q];
        c[q] = accumulate ? c[q] + x : x;
    }
}

/* Calls f with m as a constant (1 to 8), so that its sums stay in registers. */
#define ROWS_CONSTANT(f, m, ...) do { switch (m) { \
    case 1: f(1, __VA_ARGS__); break; case 2: f(2, __VA_ARGS__); break; case 3: f(3, __VA_ARGS__); break; case 4: f(4, __VA_ARGS__); break; \
    case 5: f(5, __VA_ARGS__); break; case 6: f(6, __VA_ARGS__); break; case 7: f(7, __VA_ARGS__); break; \
    default: f(8, __VA_ARGS__); break; } } while (0)

static inline long clip(long n, long j0, long width) { return n - j0 < width ? (n - j0 > 0 ? n - j0 : 0) : width; }

#if defined(__x86_64__)
#include <immintrin.h>

/* AVX2: a panel row is four vectors of 8 columns (0-7, 8-15, 16-23, 24-31). In a bf16
   row, the first 16 values hold columns 0-7 (low halves) and 16-23 (high halves). */
#define AVX2FMA __attribute__((target("avx2,fma")))

/* A panel is one stream read once per step. Reading 120 MB of bf16 panels from memory on
   one thread, prefetching a fixed number of panel rows ahead (fewer when four panels
   stream at once) measured 13.5 → 19.2 GB/s for one row, 9.1 → 13.6 for two and 6.3 →
   11.1 for eight against the hardware prefetcher alone. */
static inline void prefetch_ahead(const void *pk, int bf16, long offset, long rows) {
    const char *row = (const char *)pk + (offset + rows * PW) * (bf16 ? 2 : 4);
    _mm_prefetch(row, _MM_HINT_T0);
    if (!bf16) _mm_prefetch(row + 64, _MM_HINT_T0);
}

AVX2FMA static inline __m256 row_vector8(const void *pk, int bf16, long offset, int v) {
    if (!bf16) return _mm256_loadu_ps((const float *)pk + offset + 8 * v);
    __m256i w = _mm256_loadu_si256((const __m256i *)((const uint16_t *)pk + offset + 16 * (v & 1)));
    return _mm256_castsi256_ps(v < 2 ? _mm256_slli_epi32(w, 16) : _mm256_and_si256(w, _mm256_set1_epi32((int)0xFFFF0000u)));
}

AVX2FMA static inline void store8(__m256 acc, long cols, float alpha, int accumulate, float *c) {
    float v[8];
    _mm256_storeu_ps(v, acc);
    store_sums(v, cols, alpha, accumulate, c);
}

/* One row, two panels at a time: eight sums in flight. */
AVX2FMA static inline __attribute__((always_inline)) void one_row_avx2(long n, long k, float alpha, const float *a, const void *pk,
                                                                        int bf16, int accumulate, float *c) {
    long panels = (n + PW - 1) / PW, pj = 0;
    for (; pj + 2 <= panels; pj += 2) {
        long o0 = pj * PW * k, o1 = o0 + PW * k;
        __m256 s[8];
        for (int i = 0; i < 8; i++) s[i] = _mm256_setzero_ps();
        for (long p = 0; p < k; p++) {
            __m256 x = _mm256_broadcast_ss(a + p);
            for (int v = 0; v < 4; v++) {
                s[v] = _mm256_fmadd_ps(x, row_vector8(pk, bf16, o0 + p * PW, v), s[v]);
                s[4 + v] = _mm256_fmadd_ps(x, row_vector8(pk, bf16, o1 + p * PW, v), s[4 + v]);
            }
        }
        for (int i = 0; i < 8; i++) {
            long j0 = pj * PW + 8 * i;
            store8(s[i], clip(n, j0, 8), alpha, accumulate, c + j0);
        }
    }
    for (; pj < panels; pj++) {
        long o = pj * PW * k;
        __m256 s[4];
        for (int i = 0; i < 4; i++) s[i] = _mm256_setzero_ps();
        for (long p = 0; p < k; p++) {
            __m256 x = _mm256_broadcast_ss(a + p);
            for (int v = 0; v < 4; v++) s[v] = _mm256_fmadd_ps(x, row_vector8(pk, bf16, o + p * PW, v), s[v]);
        }
        for (int v = 0; v < 4; v++) {
            long j0 = pj * PW + 8 * v;
            store8(s[v], clip(n, j0, 8), alpha, accumulate, c + j0);
        }
    }
}

/* Columns 8h-8h+7 and 16+8h-23+8h of a panel row (h = 0, 1): one 32-byte load in a bf16 panel. */
AVX2FMA static inline void row_pair8(const void *pk, int bf16, long offset, int h, __m256 *lo, __m256 *hi) {
    if (!bf16) {
        *lo = _mm256_loadu_ps((const float *)pk + offset + 8 * h);
        *hi = _mm256_loadu_ps((const float *)pk + offset + 16 + 8 * h);
        return;
    }
    __m256i w = _mm256_loadu_si256((const __m256i *)((const uint16_t *)pk + offset + 16 * h));
    *lo = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    *hi = _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32((int)0xFFFF0000u)));
}

/* Up to eight rows: each half of a panel in turn, two sums per row. */
AVX2FMA static inline __attribute__((always_inline)) void rows_avx2(long m, long n, long k, float alpha, const float *a, long lda,
                                                                     const void *pk, int bf16, int accumulate, float *c, long ldc) {
    long panels = (n + PW - 1) / PW;
    for (long pj = 0; pj < panels; pj++)
        for (int h = 0; h < 2; h++) {
            long j0 = pj * PW + 8 * h, j1 = j0 + 16;
            if (clip(n, j0, 8) == 0) continue;
            __m256 s[2 * ROWS];
            for (int r = 0; r < 2 * ROWS; r++) s[r] = _mm256_setzero_ps();
            for (long p = 0; p < k; p++) {
                __m256 lo, hi;
                row_pair8(pk, bf16, pj * PW * k + p * PW, h, &lo, &hi);
                for (long r = 0; r < m; r++) {
                    __m256 x = _mm256_broadcast_ss(a + r * lda + p);
                    s[2 * r] = _mm256_fmadd_ps(x, lo, s[2 * r]);
                    s[2 * r + 1] = _mm256_fmadd_ps(x, hi, s[2 * r + 1]);
                }
            }
            for (long r = 0; r < m; r++) {
                store8(s[2 * r], clip(n, j0, 8), alpha, accumulate, c + r * ldc + j0);
                store8(s[2 * r + 1], clip(n, j1, 8), alpha, accumulate, c + r * ldc + j1);
            }
        }
}

/* Sixteen ymm registers hold the sums of four rows at most: more rows go in two passes.
   `bf16` is passed on as a constant, so that each precision gets its own loops. */
#define AVX2_ROWS(bf16) do { \
    if (m == 1) { one_row_avx2(n, k, alpha, a, pk, bf16, accumulate, c); break; } \
    long first = m > 4 ? 4 : m; \
    ROWS_CONSTANT(rows_avx2, first, n, k, alpha, a, lda, pk, bf16, accumulate, c, ldc); \
    if (m > 4) ROWS_CONSTANT(rows_avx2, m - 4, n, k, alpha, a + 4 * lda, lda, pk, bf16, accumulate, c + 4 * ldc, ldc); \
} while (0)

AVX2FMA static void packed_avx2(long m, long n, long k, float alpha, const float *a, long lda, const void *pk, int bf16,
                                int accumulate, float *c, long ldc) {
    if (bf16) AVX2_ROWS(1);
    else AVX2_ROWS(0);
}

/* AVX-512: a panel row is two vectors of 16 columns; a bf16 row is one 64-byte load,
   widened by a shift (columns 0-15) and a mask (columns 16-31). */
#define AVX512 __attribute__((target("avx512f,avx2,fma")))

AVX512 static inline void row_vectors16(const void *pk, int bf16, long offset, long ahead, __m512 *lo, __m512 *hi) {
    prefetch_ahead(pk, bf16, offset, ahead);
    if (!bf16) {
        *lo = _mm512_loadu_ps((const float *)pk + offset);
        *hi = _mm512_loadu_ps((const float *)pk + offset + 16);
        return;
    }
    __m512i w = _mm512_loadu_si512((const void *)((const uint16_t *)pk + offset));
    *lo = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    *hi = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xFFFF0000u)));
}

AVX512 static inline void store16(__m512 acc, long cols, float alpha, int accumulate, float *c) {
    float v[16];
    _mm512_storeu_ps(v, acc);
    store_sums(v, cols, alpha, accumulate, c);
}

/* One row, four panels at a time: eight sums in flight. */
AVX512 static inline __attribute__((always_inline)) void one_row_avx512(long n, long k, float alpha, const float *a, const void *pk,
                                                                         int bf16, int accumulate, float *c) {
    long panels = (n + PW - 1) / PW, pj = 0;
    for (; pj + 4 <= panels; pj += 4) {
        long o = pj * PW * k, step = PW * k;
        __m512 s[8];
        for (int i = 0; i < 8; i++) s[i] = _mm512_setzero_ps();
        for (long p = 0; p < k; p++) {
            __m512 x = _mm512_set1_ps(a[p]);
            for (int g = 0; g < 4; g++) {
                __m512 lo, hi;
                row_vectors16(pk, bf16, o + g * step + p * PW, 16, &lo, &hi);
                s[2 * g] = _mm512_fmadd_ps(x, lo, s[2 * g]);
                s[2 * g + 1] = _mm512_fmadd_ps(x, hi, s[2 * g + 1]);
            }
        }
        for (int i = 0; i < 8; i++) {
            long j0 = pj * PW + 16 * i;
            store16(s[i], clip(n, j0, 16), alpha, accumulate, c + j0);
        }
    }
    for (; pj < panels; pj++) {
        long o = pj * PW * k;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        for (long p = 0; p < k; p++) {
            __m512 x = _mm512_set1_ps(a[p]), lo, hi;
            row_vectors16(pk, bf16, o + p * PW, 48, &lo, &hi);
            s0 = _mm512_fmadd_ps(x, lo, s0);
            s1 = _mm512_fmadd_ps(x, hi, s1);
        }
        store16(s0, clip(n, pj * PW, 16), alpha, accumulate, c + pj * PW);
        store16(s1, clip(n, pj * PW + 16, 16), alpha, accumulate, c + pj * PW + 16);
    }
}

/* Up to eight rows, one panel at a time: two sums per row. */
AVX512 static inline __attribute__((always_inline)) void rows_avx512(long m, long n, long k, float alpha, const float *a, long lda,
                                                                      const void *pk, int bf16, int accumulate, float *c, long ldc) {
    long panels = (n + PW - 1) / PW;
    for (long pj = 0; pj < panels; pj++) {
        __m512 s[2 * ROWS];
        for (int i = 0; i < 2 * ROWS; i++) s[i] = _mm512_setzero_ps();
        for (long p = 0; p < k; p++) {
            __m512 lo, hi;
            row_vectors16(pk, bf16, pj * PW * k + p * PW, 48, &lo, &hi);
            for (long r = 0; r < m; r++) {
                __m512 x = _mm512_set1_ps(a[r * lda + p]);
                s[2 * r] = _mm512_fmadd_ps(x, lo, s[2 * r]);
                s[2 * r + 1] = _mm512_fmadd_ps(x, hi, s[2 * r + 1]);
            }
        }
        long j0 = pj * PW;
        for (long r = 0; r < m; r++) {
            store16(s[2 * r], clip(n, j0, 16), alpha, accumulate, c + r * ldc + j0);
            store16(s[2 * r + 1], clip(n, j0 + 16, 16), alpha, accumulate, c + r * ldc + j0 + 16);
        }
    }
}

AVX512 static void packed_avx512(long m, long n, long k, float alpha, const float *a, long lda, const void *pk, int bf16,
                                 int accumulate, float *c, long ldc) {
    if (m == 1 && bf16) one_row_avx512(n, k, alpha, a, pk, 1, accumulate, c);
    else if (m == 1) one_row_avx512(n, k, alpha, a, pk, 0, accumulate, c);
    else if (bf16) ROWS_CONSTANT(rows_avx512, m, n, k, alpha, a, lda, pk, 1, accumulate, c, ldc);
    else ROWS_CONSTANT(rows_avx512, m, n, k, alpha, a, lda, pk, 0, accumulate, c, ldc);
}
#endif

/* Rows in passes of eight; every pass's elements are summed as one row alone would be. */
static void packed_rows(int path, long m, long n, long k, float alpha, const float *a, long lda, const void *pk, int bf16,
                        int accumulate, float *c, long ldc) {
    for (long i0 = 0; i0 < m; i0 += ROWS) {
        long rows = m - i0 < ROWS ? m - i0 : ROWS;
        const float *ai = a + i0 * lda;
        float *ci = c + i0 * ldc;
#if defined(__x86_64__)
        if (path == 2) { packed_avx512(rows, n, k, alpha, ai, lda, pk, bf16, accumulate, ci, ldc); continue; }
        if (path == 1) { packed_avx2(rows, n, k, alpha, ai, lda, pk, bf16, accumulate, ci, ldc); continue; }
#endif
        packed_portable(rows, n, k, alpha, ai, lda, pk, bf16, accumulate, ci, ldc);
    }
}

/* Past eight rows the passes go panel by panel, so that each panel is read from memory
   once and from the first-level cache by the later passes. */
static int packed_product(long m, long n, long k, float alpha, const float *a, long lda, const void *pk, int bf16,
                          int accumulate, float *c, long ldc) {
    if (m <= 0 || n <= 0) return 0;
    int path = tsr_fixed_path();
    if (m <= ROWS) {
        packed_rows(path, m, n, k, alpha, a, lda, pk, bf16, accumulate, c, ldc);
        return 0;
    }
    size_t element = bf16 ? sizeof(uint16_t) : sizeof(float);
    for (long j0 = 0; j0 < n; j0 += PW) {
        long cols = n - j0 < PW ? n - j0 : PW;
        packed_rows(path, m, cols, k, alpha, a, lda, (const char *)pk + (size_t)(j0 * k) * element, bf16, accumulate, c + j0, ldc);
    }
    return 0;
}

int tsr_sgemm_fixed_packed(long m, long n, long k, float alpha, const float *a, long lda, const float *packed,
                           int accumulate, float *c, long ldc) {
    return packed_product(m, n, k, alpha, a, lda, packed, 0, accumulate, c, ldc);
}

int tsr_sgemm_fixed_packed_bf16(long m, long n, long k, float alpha, const float *a, long lda, const uint16_t *packed,
                                int accumulate, float *c, long ldc) {
    return packed_product(m, n, k, alpha, a, lda, packed, 1, accumulate, c, ldc);
}
