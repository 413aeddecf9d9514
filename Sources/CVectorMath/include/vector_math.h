#ifndef TESSERA_VECTOR_MATH_H
#define TESSERA_VECTOR_MATH_H

#include <stdint.h>

/* Every kernel runs the AVX2 version where the processor has AVX2 and a portable version
   elsewhere; both give identical results, bit for bit. */

/* Σ a[i]·b[i]: 8 lane sums, reduced lane 0 to 7 in order, then the tail. */
float tsr_dot(const float *a, const float *b, long n);

/* y += alpha · x */
void tsr_axpy(float alpha, const float *x, float *y, long n);

/* In-place softmax of one row (nothing for n ≤ 0). */
void tsr_softmax_row(float *x, long n);

/* a[r, i] = silu(gu[r, i]) · gu[r, W + i] for `rows` rows of gu = [gate | up] (2W wide). */
void tsr_swiglu_forward(const float *gu, float *a, long rows, long width);

/* Given da [rows, W], writes dgu [rows, 2W]: da · up · silu'(gate) in the first half of
   each row, da · silu(gate) in the second. */
void tsr_swiglu_backward(const float *gu, const float *da, float *dgu, long rows, long width);

/* 1 when this processor has AVX2. */
int tsr_vector_math_avx2_available(void);

/* Chooses the path for tests and benchmarks: 1 AVX2 (when available), 0 portable, -1 the
   processor's own choice. Returns the path that was in use. Not for concurrent use. */
int tsr_vector_math_force(int path);

/* C[m,n] = alpha · op(A)·op(B), or C += that when `accumulate`, row-major, op = transpose
   when asked. Every element is Σ_p A[i,p]·B[p,j] summed over p in order by fused
   multiply-adds from zero: the same bits on every processor and path (AVX2+FMA, or the
   portable fmaf path). Returns -1 when scratch memory cannot be had. */
int tsr_sgemm_fixed(int transA, int transB, long m, long n, long k, float alpha,
                    const float *a, long lda, const float *b, long ldb, int accumulate, float *c, long ldc);

/* op(B) [k, n] packed for the products below, in tsr_packed_panels_count(n, k) elements:
   32-column panels, k-major, zero past n. Float panels hold each row's 32 values in column
   order; bf16 panels interleave them (column q < 16 at 2q, column 16 + q at 2q + 1), so
   that a 32-bit lane holds two columns and a shift or a mask widens either to float. */
long tsr_packed_panels_count(long n, long k);
void tsr_pack_panels(int transB, long n, long k, const float *b, long ldb, float *out);
void tsr_pack_panels_bf16(int transB, long n, long k, const void *b, long ldb, uint16_t *out);

/* tsr_sgemm_fixed with op(B) packed: the same bits. Columns of C start at the packed
   pointer's panel; callers splitting columns split at multiples of 32. */
int tsr_sgemm_fixed_packed(long m, long n, long k, float alpha, const float *a, long lda, const float *packed,
                           int accumulate, float *c, long ldc);
/* The same with bf16 panels: the bits of float panels holding the same values. */
int tsr_sgemm_fixed_packed_bf16(long m, long n, long k, float alpha, const float *a, long lda, const uint16_t *packed,
                                int accumulate, float *c, long ldc);

/* bf16 values widened to float; the source may be unaligned (inside a mapped file). */
void tsr_bf16_to_f32(const void *src, float *dst, long n);

/* 1 when the fixed-order products can use AVX2 and FMA here. */
int tsr_fixed_gemm_fma_available(void);

/* 1 when the packed products can also use AVX-512 here. */
int tsr_fixed_gemm_avx512_available(void);

/* As tsr_vector_math_force, for the fixed-order products, with path 2 for AVX-512 (the
   packed products; the rest as path 1). Every path gives the same bits. */
int tsr_fixed_gemm_force(int path);

#endif
