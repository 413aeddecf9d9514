/* The engine's element-wise and reduction kernels, in two versions chosen at run time:
   AVX2 (8 lanes) where the processor has it, and a portable version that computes the
   same thing in the same order, so every result is identical to the last bit whichever
   runs (a verdict made on one machine reproduces on another). Neither version fuses a
   multiply and an add: FMA would round differently from the other path.

   The orders mirror the Swift SIMD8 code these kernels replace: sums of 8 lane
   accumulators, reduced lane 0 to 7 in sequence, then the tail element by element; exp
   is Cephes' expf polynomial with the 1.5·2²³ rounding trick. */
#pragma STDC FP_CONTRACT OFF
#include "vector_math.h"
#include <math.h>
#include <string.h>

/* ---- portable versions: 8 emulated lanes ---- */

static inline float exp1(float x) {
    /* clamps as the vector code does: NaN passes through both. */
    float xc = (x > 88.37626f) ? 88.37626f : x;
    xc = (xc < -87.33654f) ? -87.33654f : xc;
    const float magic = 12582912.0f;
    float shifted = xc * 1.44269504088896341f + magic;
    float n = shifted - magic;
    float r = xc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    int bits;
    memcpy(&bits, &shifted, 4);
    int k = (int)((unsigned)bits - 0x4B400000u);
    int sbits = (int)(((unsigned)k + 127u) << 23);
    float scale;
    memcpy(&scale, &sbits, 4);
    return p * scale;
}

static inline float sum_lanes(const float acc[8]) {
    float s = -0.0f;
    for (int j = 0; j < 8; j++) s += acc[j];
    return s;
}

static float dot_portable(const float *a, const float *b, long n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = sum_lanes(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_portable(float alpha, const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] += alpha * x[i];
}

static void softmax_portable(float *x, long n) {
    if (n <= 0) return;
    float mv[8];
    for (int j = 0; j < 8; j++) mv[j] = -INFINITY;
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) mv[j] = (x[i + j] > mv[j]) ? x[i + j] : mv[j];
    float m = mv[0];
    for (int j = 0; j < 8; j++) m = (mv[j] >= m) ? mv[j] : m;
    for (; i < n; i++) m = (x[i] >= m) ? x[i] : m;
    float sv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (i = 0; i < n; i += 8) {
        long c = n - i < 8 ? n - i : 8;
        for (int j = 0; j < 8; j++) {
            float e = j < c ? exp1(x[i + j] - m) : 0.0f;
            if (j < c) x[i + j] = e;
            sv[j] += e;
        }
    }
    float inv = 1.0f / sum_lanes(sv);
    i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) x[i + j] = x[i + j] * inv;
    for (; i < n; i++) x[i] *= inv;
}

static inline float sigmoid1(float g) { return 1.0f / (1.0f + exp1(0.0f - g)); }

static void swiglu_forward_portable(const float *gu, float *a, long rows, long W) {
    for (long r = 0; r < rows; r++) {
        const float *g = gu + r * 2 * W, *u = g + W;
        float *ar = a + r * W;
        for (long i = 0; i < W; i++) ar[i] = (g[i] * sigmoid1(g[i])) * u[i];
    }
}

static void swiglu_backward_portable(const float *gu, const float *da, float *dgu, long rows, long W) {
    for (long r = 0; r < rows; r++) {
        const float *g = gu + r * 2 * W, *u = g + W, *d = da + r * W;
        float *dg = dgu + r * 2 * W, *du = dg + W;
        for (long i = 0; i < W; i++) {
            float s = sigmoid1(g[i]);
            du[i] = (d[i] * g[i]) * s;
            float slope = 1.0f + g[i] * (1.0f - s);
            dg[i] = ((d[i] * u[i]) * s) * slope;
        }
    }
}

/* ---- AVX2 versions ---- */

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))

AVX2 static inline __m256 exp8(__m256 x) {
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    /* min/max return the second operand when the first is NaN: NaN stays NaN. */
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

AVX2 static inline float sum8(__m256 v) {
    float acc[8];
    _mm256_storeu_ps(acc, v);
    return sum_lanes(acc);
}

/* Lanes j < c set, the others zero (as a mask for blends). */
AVX2 static inline __m256 lane_mask(long c) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)c), idx));
}

AVX2 static float dot_avx2(const float *a, const float *b, long n) {
    __m256 acc = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    float s = sum8(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

AVX2 static void axpy_avx2(float alpha, const float *x, float *y, long n) {
    const __m256 av = _mm256_set1_ps(alpha);
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, _mm256_loadu_ps(x + i))));
    for (; i < n; i++) y[i] += alpha * x[i];
}

AVX2 static void softmax_avx2(float *x, long n) {
    if (n <= 0) return;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    long i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(_mm256_loadu_ps(x + i), mv);
    float lanes[8];
    _mm256_storeu_ps(lanes, mv);
    float m = lanes[0];
    for (int j = 0; j < 8; j++) m = (lanes[j] >= m) ? lanes[j] : m;
    for (; i < n; i++) m = (x[i] >= m) ? x[i] : m;
    const __m256 mb = _mm256_set1_ps(m);
    __m256 sv = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mb));
        _mm256_storeu_ps(x + i, e);
        sv = _mm256_add_ps(sv, e);
    }
    if (i < n) {
        long c = n - i;
        __m256 mask = lane_mask(c);
        float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(buf, x + i, (size_t)c * sizeof(float));
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(buf), mb)), mask);
        _mm256_storeu_ps(buf, e);
        memcpy(x + i, buf, (size_t)c * sizeof(float));
        sv = _mm256_add_ps(sv, e);
    }
    const float inv = 1.0f / sum8(sv);
    const __m256 iv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), iv));
    for (; i < n; i++) x[i] *= inv;
}

AVX2 static inline __m256 sigmoid8(__m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

AVX2 static void swiglu_forward_avx2(const float *gu, float *a, long rows, long W) {
    for (long r = 0; r < rows; r++) {
        const float *g = gu + r * 2 * W, *u = g + W;
        float *ar = a + r * W;
        long i = 0;
        for (; i + 8 <= W; i += 8) {
            __m256 gv = _mm256_loadu_ps(g + i);
            __m256 s = sigmoid8(gv);
            _mm256_storeu_ps(ar + i, _mm256_mul_ps(_mm256_mul_ps(gv, s), _mm256_loadu_ps(u + i)));
        }
        for (; i < W; i++) ar[i] = (g[i] * sigmoid1(g[i])) * u[i];
    }
}

AVX2 static void swiglu_backward_avx2(const float *gu, const float *da, float *dgu, long rows, long W) {
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
            float s = sigmoid1(g[i]);
            du[i] = (d[i] * g[i]) * s;
            dg[i] = ((d[i] * u[i]) * s) * (1.0f + g[i] * (1.0f - s));
        }
    }
}

static int detect_avx2(void) { return __builtin_cpu_supports("avx2") ? 1 : 0; }
#else
static int detect_avx2(void) { return 0; }
#endif

/* ---- dispatch ---- */

/* -1: not decided yet; 0: portable; 1: AVX2. Decided once (a benign race: every thread
   decides the same), or forced by tsr_vector_math_force for tests and benchmarks. */
static int path = -1;

static inline int use_avx2(void) {
    if (path < 0) path = detect_avx2();
    return path;
}

int tsr_vector_math_avx2_available(void) { return detect_avx2(); }

int tsr_vector_math_force(int p) {
    int previous = use_avx2();
    path = (p == 1 && detect_avx2()) ? 1 : (p < 0 ? detect_avx2() : 0);
    return previous;
}

#if defined(__x86_64__)
#define DISPATCH(name, ...) (use_avx2() ? name##_avx2(__VA_ARGS__) : name##_portable(__VA_ARGS__))
#else
#define DISPATCH(name, ...) (name##_portable(__VA_ARGS__))
#endif

float tsr_dot(const float *a, const float *b, long n) { return DISPATCH(dot, a, b, n); }
void tsr_axpy(float alpha, const float *x, float *y, long n) { DISPATCH(axpy, alpha, x, y, n); }
void tsr_softmax_row(float *x, long n) { DISPATCH(softmax, x, n); }
void tsr_swiglu_forward(const float *gu, float *a, long rows, long width) { DISPATCH(swiglu_forward, gu, a, rows, width); }
void tsr_swiglu_backward(const float *gu, const float *da, float *dgu, long rows, long width) {
    DISPATCH(swiglu_backward, gu, da, dgu, rows, width);
}
