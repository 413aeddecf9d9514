/* Float matrix products on AMX through split bf16 (the "bf16x3" / "bf16x6" emulation of
   float32 products): x = x0 + x1 (+ x2), each xi a bf16, and A·B ≈ Σ Ai·Bj over the
   leading pairs. Every function that touches AMX or AVX-512 carries its own target
   attribute, so the file builds for any x86-64 and runs those paths only after
   tsr_amx_available() said yes. */
#include "amx_matmul.h"

#if defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/syscall.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
#define KERNEL __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))

typedef struct {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;

static int amx_state;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static void amx_probe(void) {
    unsigned r[4], r1[4];
    cpuid(0, 0, r);
    if (r[0] < 7) return;
    cpuid(7, 0, r);
    cpuid(7, 1, r1);
    int tile = (r[3] >> 24) & 1, bf16 = (r[3] >> 22) & 1;
    int f = (r[1] >> 16) & 1, bw = (r[1] >> 30) & 1, vl = (r[1] >> 31) & 1, vbf16 = (r1[0] >> 5) & 1;
    if (!(tile && bf16 && f && bw && vl && vbf16)) return;
    /* Linux hands out the 8 KB tile state only on request. */
    amx_state = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int tsr_amx_available(void) {
    pthread_once(&amx_once, amx_probe);
    return amx_state;
}

/* Packed operands live in per-thread scratch that only grows. */
typedef struct { uint16_t *p; size_t cap; } scratch;
static _Thread_local scratch scratch_a, scratch_b;

/* Freed when the thread ends (as fixed_gemm.c's packing buffers: Dispatch's workers come
   and go). Thread-local storage is still valid while key destructors run. */
static pthread_key_t release_key;
static pthread_once_t release_once = PTHREAD_ONCE_INIT;
static void release_scratch(void *unused) {
    (void)unused;
    free(scratch_a.p); free(scratch_b.p);
    scratch_a = (scratch){0}; scratch_b = (scratch){0};
}
static void make_release_key(void) { pthread_key_create(&release_key, release_scratch); }

static uint16_t *grow(scratch *s, size_t count) {
    if (count <= s->cap) return s->p;
    pthread_once(&release_once, make_release_key);
    if (!pthread_getspecific(release_key)) pthread_setspecific(release_key, &scratch_a);
    size_t bytes = (count * 2 + 63) / 64 * 64;
    uint16_t *p = aligned_alloc(64, bytes);
    if (!p) return NULL;
    free(s->p);
    s->p = p;
    s->cap = count;
    return p;
}

/* Splits 16 floats into `parts` bf16 vectors (round to nearest even at each step). */
__attribute__((always_inline)) KERNEL static inline void split16(__m512 x, int parts, __m256i out[3]) {
    for (int p = 0; p < parts; p++) {
        __m256i h = (__m256i)_mm512_cvtneps_pbh(x);
        out[p] = h;
        if (p + 1 < parts)
            x = _mm512_sub_ps(x, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
}

KERNEL static inline __m512 load16(const float *p, int n) {
    if (n >= 16) return _mm512_loadu_ps(p);
    if (n <= 0) return _mm512_setzero_ps();
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}

/* Pairs (x[k], y[k]) of two split rows as 16 dwords, x in the low half. */
KERNEL static inline __m512i pair16(__m256i x, __m256i y) {
    return _mm512_or_si512(_mm512_cvtepu16_epi32(x), _mm512_slli_epi32(_mm512_cvtepu16_epi32(y), 16));
}

/* In-place transpose of a 16×16 dword matrix held in 16 registers. */
__attribute__((always_inline)) KERNEL static inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
        r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
    }
}

/* One 16×32 block of a row-major float matrix X (rows r0.., columns c0..; outside
   rows × cols is zero), times `scale`, as dwords: with `pairs_across_rows` 0, dword [i][j] holds the
   split pair (X[r0+i][c0+2j], X[r0+i][c0+2j+1]); with 1 it holds (X[r0+2i][c0+j],
   X[r0+2i+1][c0+j]) for j < 16 — rows i of the result are then pairs of source rows. */
__attribute__((always_inline)) KERNEL static inline void block_pairs(const float *X, int ld, int rows, int cols, int pairs_across_rows,
                               float scale, int parts, __m512i out[3][16]) {
    __m256i s0[3], s1[3];
    const __m512 factor = _mm512_set1_ps(scale);
    if (!pairs_across_rows) {
        for (int i = 0; i < 16; i++) {
            const float *row = X + (size_t)i * ld;
            __m512 x0 = i < rows ? load16(row, cols) : _mm512_setzero_ps();
            __m512 x1 = i < rows ? load16(row + 16, cols - 16) : _mm512_setzero_ps();
            if (scale != 1.0f) { x0 = _mm512_mul_ps(x0, factor); x1 = _mm512_mul_ps(x1, factor); }
            split16(x0, parts, s0);
            split16(x1, parts, s1);
            for (int p = 0; p < parts; p++)
                out[p][i] = _mm512_inserti64x4(_mm512_castsi256_si512(s0[p]), s1[p], 1);
        }
    } else {
        for (int i = 0; i < 16; i++) {
            int ra = 2 * i, rb = 2 * i + 1;
            __m512 x0 = ra < rows ? load16(X + (size_t)ra * ld, cols) : _mm512_setzero_ps();
            __m512 x1 = rb < rows ? load16(X + (size_t)rb * ld, cols) : _mm512_setzero_ps();
            if (scale != 1.0f) { x0 = _mm512_mul_ps(x0, factor); x1 = _mm512_mul_ps(x1, factor); }
            split16(x0, parts, s0);
            split16(x1, parts, s1);
            for (int p = 0; p < parts; p++) out[p][i] = pair16(s0[p], s1[p]);
        }
    }
}

/* Rows [first, first + count) of alpha · op(A) [M×K] into tiles [part][mb][kc] of 16
   rows × 32 bf16 (one k-run per row). */
__attribute__((always_inline)) KERNEL static inline void pack_a_parts(int transA, int M, int K, const float *A, int lda,
                          float alpha, int parts, int first, int count, int Kp, uint16_t *dst) {
    size_t partStride = (size_t)count * Kp;
    int kcs = Kp / 32;
    __m512i blk[3][16];
    for (int mb = 0; mb < count / 16; mb++)
        for (int kc = 0; kc < kcs; kc++) {
            int m0 = first + mb * 16, k0 = kc * 32;
            if (!transA) {
                block_pairs(A + (size_t)m0 * lda + k0, lda, M - m0, K - k0, 0, alpha, parts, blk);
            } else {
                /* A is stored K×M: pairs of stored rows k, k+1 give dwords [kp][m]. */
                block_pairs(A + (size_t)k0 * lda + m0, lda, K - k0, M - m0, 1, alpha, parts, blk);
                for (int p = 0; p < parts; p++) transpose16(blk[p]);
            }
            for (int p = 0; p < parts; p++) {
                __m512i *t = (__m512i *)(dst + p * partStride + ((size_t)mb * kcs + kc) * 512);
                for (int i = 0; i < 16; i++) _mm512_store_si512(t + i, blk[p][i]);
            }
        }
}

/* Columns [first, first + count) of op(B) [K×N] into VNNI tiles [part][nb][kc] of 16
   k-pairs × 16 columns × 2. */
__attribute__((always_inline)) KERNEL static inline void pack_b_parts(int transB, int K, int N, const float *B, int ldb, int parts,
                          int first, int count, int Kp, uint16_t *dst) {
    size_t partStride = (size_t)count * Kp;
    int kcs = Kp / 32;
    __m512i blk[3][16];
    for (int nb = 0; nb < count / 16; nb++)
        for (int kc = 0; kc < kcs; kc++) {
            int n0 = first + nb * 16, k0 = kc * 32;
            if (transB) {
                /* B is stored N×K: rows give dwords [n][kp]. */
                block_pairs(B + (size_t)n0 * ldb + k0, ldb, N - n0, K - k0, 0, 1.0f, parts, blk);
                for (int p = 0; p < parts; p++) transpose16(blk[p]);
            } else {
                block_pairs(B + (size_t)k0 * ldb + n0, ldb, K - k0, N - n0, 1, 1.0f, parts, blk);
            }
            for (int p = 0; p < parts; p++) {
                __m512i *t = (__m512i *)(dst + p * partStride + ((size_t)nb * kcs + kc) * 512);
                for (int i = 0; i < 16; i++) _mm512_store_si512(t + i, blk[p][i]);
            }
        }
}

/* The piece count as a constant lets the compiler keep each block in registers. */
KERNEL static void pack_a(int transA, int M, int K, const float *A, int lda, float alpha, int parts,
                          int first, int count, int Kp, uint16_t *dst) {
    if (parts == 3) pack_a_parts(transA, M, K, A, lda, alpha, 3, first, count, Kp, dst);
    else pack_a_parts(transA, M, K, A, lda, alpha, 2, first, count, Kp, dst);
}

KERNEL static void pack_b(int transB, int K, int N, const float *B, int ldb, int parts,
                          int first, int count, int Kp, uint16_t *dst) {
    if (parts == 3) pack_b_parts(transB, K, N, B, ldb, 3, first, count, Kp, dst);
    else pack_b_parts(transB, K, N, B, ldb, 2, first, count, Kp, dst);
}

/* Part pairs (i, j) accumulated, ordered so that consecutive terms share a loaded tile. */
static const int term_a2[3] = {0, 0, 1}, term_b2[3] = {1, 0, 0};
static const int term_a3[6] = {0, 0, 0, 1, 1, 2}, term_b3[6] = {2, 1, 0, 0, 1, 0};

static void edge_in(float *tmp, const float *c, int ldc, int rows, int cols, int load) {
    memset(tmp, 0, 1024);
    if (load)
        for (int r = 0; r < rows; r++) memcpy(tmp + r * 16, c + (size_t)r * ldc, (size_t)cols * 4);
}

static void edge_out(const float *tmp, float *c, int ldc, int rows, int cols) {
    for (int r = 0; r < rows; r++) memcpy(c + (size_t)r * ldc, tmp + r * 16, (size_t)cols * 4);
}

/* Tile numbers must be constants, hence macros. Whole 16×16 tiles of C are read and
   written in place; tiles on the matrix edge go through a zero-padded copy. */
#define TILE_IN(t, ptr) do { \
    if (full[t]) { if (load) _tile_loadd(t, ptr, ldc * 4); else _tile_zero(t); } \
    else { edge_in(edge[t], ptr, ldc, rows[t], cols[t], load && rows[t] > 0 && cols[t] > 0); _tile_loadd(t, edge[t], 64); } \
} while (0)
#define TILE_OUT(t, ptr) do { \
    if (full[t]) _tile_stored(t, ptr, ldc * 4); \
    else if (rows[t] > 0 && cols[t] > 0) { _tile_stored(t, edge[t], 64); edge_out(edge[t], ptr, ldc, rows[t], cols[t]); } \
} while (0)

enum { CHUNK_K = 512 };
#define A_CHUNK_BYTES ((size_t)1536 * 1024)

KERNEL int tsr_amx_sgemm(int parts, int transA, int transB, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb,
                         int accumulate, float *C, int ldc) {
    if (M <= 0 || N <= 0) return 0;
    parts = parts >= 3 ? 3 : 2;
    int terms = parts == 3 ? 6 : 3;
    const int *ta = parts == 3 ? term_a3 : term_a2, *tb = parts == 3 ? term_b3 : term_b2;
    int Mp = (M + 31) / 32 * 32, Np = (N + 31) / 32 * 32, Kp = (K + 31) / 32 * 32;
    /* Packed A chunks of at most about A_CHUNK_BYTES stay in L2 while the panels of B
       pass; the chunks are equal, since a product of 530 rows in chunks of 512 and 32
       would pack every panel of B twice. */
    int maxRows = (int)(A_CHUNK_BYTES / ((size_t)Kp * parts * 2)) / 32 * 32;
    if (maxRows < 64) maxRows = 64;
    int chunks = (Mp + maxRows - 1) / maxRows;
    int chunk = ((Mp + chunks - 1) / chunks + 31) / 32 * 32;
    uint16_t *ap = grow(&scratch_a, (size_t)parts * chunk * Kp);
    uint16_t *bp = grow(&scratch_b, (size_t)parts * 32 * Kp);
    if (!ap || !bp) return -1;

    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    float edge[4][256] __attribute__((aligned(64)));
    int kcs = Kp / 32;
    /* A chunk of rows is packed once and stays in L2; each 32-column panel of B is packed
       just before the chunk's rows use it, while it is still in cache. */
    for (int mc = 0; mc < Mp; mc += chunk) {
        int rowsHere = Mp - mc < chunk ? Mp - mc : chunk;
        size_t aPart = (size_t)rowsHere * Kp, bPart = (size_t)32 * Kp;
        pack_a(transA, M, K, A, lda, alpha, parts, mc, rowsHere, Kp, ap);
        for (int n0 = 0; n0 < Np; n0 += 32) {
            pack_b(transB, K, N, B, ldb, parts, n0, 32, Kp, bp);
            for (int kb = 0; kb < kcs; kb += CHUNK_K / 32) {
                int kbEnd = kb + CHUNK_K / 32 < kcs ? kb + CHUNK_K / 32 : kcs;
                int load = accumulate || kb > 0;
                for (int m0 = mc; m0 < mc + rowsHere; m0 += 32) {
                    int rows[4], cols[4], full[4];
                    for (int t = 0; t < 4; t++) {
                        int r = M - m0 - (t >> 1) * 16, c = N - n0 - (t & 1) * 16;
                        rows[t] = r < 0 ? 0 : r > 16 ? 16 : r;
                        cols[t] = c < 0 ? 0 : c > 16 ? 16 : c;
                        full[t] = rows[t] == 16 && cols[t] == 16;
                    }
                    float *c00 = C + (size_t)m0 * ldc + n0, *c01 = c00 + 16;
                    float *c10 = c00 + 16 * (size_t)ldc, *c11 = c10 + 16;
                    TILE_IN(0, c00); TILE_IN(1, c01); TILE_IN(2, c10); TILE_IN(3, c11);
                    const uint16_t *a0 = ap + (size_t)((m0 - mc) / 16) * kcs * 512, *a1 = a0 + (size_t)kcs * 512;
                    const uint16_t *b0 = bp, *b1 = b0 + (size_t)kcs * 512;
                    for (int kc = kb; kc < kbEnd; kc++) {
                        int la = -1, lb = -1;
                        for (int t = 0; t < terms; t++) {
                            if (ta[t] != la) {
                                la = ta[t];
                                _tile_loadd(4, a0 + la * aPart + kc * 512, 64);
                                _tile_loadd(5, a1 + la * aPart + kc * 512, 64);
                            }
                            if (tb[t] != lb) {
                                lb = tb[t];
                                _tile_loadd(6, b0 + lb * bPart + kc * 512, 64);
                                _tile_loadd(7, b1 + lb * bPart + kc * 512, 64);
                            }
                            _tile_dpbf16ps(0, 4, 6);
                            _tile_dpbf16ps(1, 4, 7);
                            _tile_dpbf16ps(2, 5, 6);
                            _tile_dpbf16ps(3, 5, 7);
                        }
                    }
                    TILE_OUT(0, c00); TILE_OUT(1, c01); TILE_OUT(2, c10); TILE_OUT(3, c11);
                }
            }
        }
    }
    _tile_release();
    return 0;
}

#else
int tsr_amx_available(void) { return 0; }
int tsr_amx_sgemm(int parts, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, int accumulate, float *C, int ldc) {
    (void)parts; (void)transA; (void)transB; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda;
    (void)B; (void)ldb; (void)accumulate; (void)C; (void)ldc;
    return -1;
}
#endif
