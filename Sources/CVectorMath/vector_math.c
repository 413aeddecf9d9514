/* Element-wise kernels that Swift's SIMD8 code left partly scalar (perf showed lane-by-
   lane blends and scalar multiplies). AVX2 + FMA, the engine's baseline (it is built
   with -target-cpu haswell). exp uses the same range reduction and Cephes polynomial as
   the engine's exp8, so the two agree to the last bit on finite inputs. */
#include "vector_math.h"
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define VEC __attribute__((target("avx2,fma")))

VEC static inline __m256 exp8(__m256 x) {
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    /* max/min return the second operand when the first is NaN: NaN stays NaN. */
    __m256 xc = _mm256_min_ps(_mm256_set1_ps(88.37626f), x);
    xc = _mm256_max_ps(_mm256_set1_ps(-87.33654f), xc);
    __m256 shifted = _mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)), magic);
    __m256 n = _mm256_sub_ps(shifted, magic);
    __m256 r = _mm256_sub_ps(xc, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_add_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(2.12194440e-4f)));
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, r2), r), _mm256_set1_ps(1.0f));
    __m256i k = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(p, scale);
}

/* 1 / (1 + e^-g) */
VEC static inline __m256 sigmoid8(__m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

VEC void tsr_swiglu_forward(const float *gu, float *a, long rows, long W) {
    for (long r = 0; r < rows; r++) {
        const float *g = gu + r * 2 * W, *u = g + W;
        float *ar = a + r * W;
        long i = 0;
        for (; i + 8 <= W; i += 8) {
            __m256 gv = _mm256_loadu_ps(g + i);
            __m256 s = sigmoid8(gv);
            _mm256_storeu_ps(ar + i, _mm256_mul_ps(_mm256_mul_ps(gv, s), _mm256_loadu_ps(u + i)));
        }
        for (; i < W; i++) ar[i] = g[i] / (1 + expf(-g[i])) * u[i];
    }
}

VEC void tsr_swiglu_backward(const float *gu, const float *da, float *dgu, long rows, long W) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (long r = 0; r < rows; r++) {
        const float *g = gu + r * 2 * W, *u = g + W, *d = da + r * W;
        float *dg = dgu + r * 2 * W, *du = dg + W;
        long i = 0;
        for (; i + 8 <= W; i += 8) {
            __m256 gv = _mm256_loadu_ps(g + i), dv = _mm256_loadu_ps(d + i);
            __m256 s = sigmoid8(gv);
            _mm256_storeu_ps(du + i, _mm256_mul_ps(_mm256_mul_ps(dv, gv), s));
            __m256 slope = _mm256_add_ps(one, _mm256_mul_ps(gv, _mm256_sub_ps(one, s)));
            _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dv, _mm256_loadu_ps(u + i)), s), slope));
        }
        for (; i < W; i++) {
            float s = 1 / (1 + expf(-g[i]));
            du[i] = d[i] * g[i] * s;
            dg[i] = d[i] * u[i] * s * (1 + g[i] * (1 - s));
        }
    }
}

#else
void tsr_swiglu_forward(const float *gu, float *a, long rows, long W) {
    for (long r = 0; r < rows; r++)
        for (long i = 0; i < W; i++) {
            const float *g = gu + r * 2 * W;
            a[r * W + i] = g[i] / (1 + expf(-g[i])) * g[W + i];
        }
}

void tsr_swiglu_backward(const float *gu, const float *da, float *dgu, long rows, long W) {
    for (long r = 0; r < rows; r++)
        for (long i = 0; i < W; i++) {
            const float *g = gu + r * 2 * W;
            float s = 1 / (1 + expf(-g[i])), d = da[r * W + i];
            dgu[r * 2 * W + W + i] = d * g[i] * s;
            dgu[r * 2 * W + i] = d * g[W + i] * s * (1 + g[i] * (1 - s));
        }
}
#endif
