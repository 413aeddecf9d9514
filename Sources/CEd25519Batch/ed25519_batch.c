// Batch verification of Ed25519 signatures (Bernstein et al., "High-speed high-security
// signatures", section 5): n equations [s_i]B = R_i + [k_i]A_i, weighted by random z_i,
// become one multi-scalar multiplication
//     [8]( sum z_i R_i + sum_A (sum_{i by A} z_i k_i) A - (sum z_i s_i) B ) = 0,
// where signatures by the same key share one point. A ledger has few keys and many
// events, so the cost per signature is one point decompression, one hash and a share of
// the bucket additions, against a full double scalar multiplication when checked alone.
// Everything here handles public data only, so nothing needs to run in constant time.
// Field arithmetic: 5 limbs of 51 bits. SHA-512 and scalar arithmetic mod L: libsodium.

#include "ed25519_batch.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef struct { uint64_t v[5]; } fe;
typedef struct { fe X, Y, Z, T; } ge;                 // extended coordinates, x = X/Z, y = Y/Z, xy = T/Z
typedef struct { fe YplusX, YminusX, Z, T2d; } ge_cached;

static const uint64_t MASK51 = (1ULL << 51) - 1;
static const fe fe_d = {{0x34dca135978a3ULL, 0x1a8283b156ebdULL, 0x5e7a26001c029ULL, 0x739c663a03cbbULL, 0x52036cee2b6ffULL}};
static const fe fe_d2 = {{0x69b9426b2f159ULL, 0x35050762add7aULL, 0x3cf44c0038052ULL, 0x6738cc7407977ULL, 0x2406d9dc56dffULL}};
static const fe fe_sqrtm1 = {{0x61b274a0ea0b0ULL, 0xd5a5fc8f189dULL, 0x7ef5e9cbd0c60ULL, 0x78595a6804c9eULL, 0x2b8324804fc1dULL}};
static const ge ge_base = {
    {{0x62d608f25d51aULL, 0x412a4b4f6592aULL, 0x75b7171a4b31dULL, 0x1ff60527118feULL, 0x216936d3cd6e5ULL}},
    {{0x6666666666658ULL, 0x4ccccccccccccULL, 0x1999999999999ULL, 0x3333333333333ULL, 0x6666666666666ULL}},
    {{1, 0, 0, 0, 0}},
    {{0x68ab3a5b7dda3ULL, 0xeea2a5eadbbULL, 0x2af8df483c27eULL, 0x332b375274732ULL, 0x67875f0fd78b7ULL}},
};
// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
static const unsigned char order_L[32] = {237, 211, 245, 92, 26, 99, 18, 88, 214, 156, 247, 162, 222, 249, 222, 20,
                                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16};

static inline void fe_carry(fe *r) {
    uint64_t c;
    c = r->v[0] >> 51; r->v[0] &= MASK51; r->v[1] += c;
    c = r->v[1] >> 51; r->v[1] &= MASK51; r->v[2] += c;
    c = r->v[2] >> 51; r->v[2] &= MASK51; r->v[3] += c;
    c = r->v[3] >> 51; r->v[3] &= MASK51; r->v[4] += c;
    c = r->v[4] >> 51; r->v[4] &= MASK51; r->v[0] += 19 * c;
}

static inline void fe_add(fe *r, const fe *a, const fe *b) {
    for (int i = 0; i < 5; i++) r->v[i] = a->v[i] + b->v[i];
    fe_carry(r);
}

// a - b + 4p keeps every limb positive for carried inputs (limbs below 2^52).
static inline void fe_sub(fe *r, const fe *a, const fe *b) {
    r->v[0] = a->v[0] + 0x1fffffffffffb4ULL - b->v[0];
    for (int i = 1; i < 5; i++) r->v[i] = a->v[i] + 0x1ffffffffffffcULL - b->v[i];
    fe_carry(r);
}

// Carries five 128-bit limb sums of a product down to 51-bit limbs (2^255 = 19 mod p).
static inline void fe_carry_wide(fe *r, u128 r0, u128 r1, u128 r2, u128 r3, u128 r4) {
    r1 += (uint64_t)(r0 >> 51); uint64_t o0 = (uint64_t)r0 & MASK51;
    r2 += (uint64_t)(r1 >> 51); uint64_t o1 = (uint64_t)r1 & MASK51;
    r3 += (uint64_t)(r2 >> 51); uint64_t o2 = (uint64_t)r2 & MASK51;
    r4 += (uint64_t)(r3 >> 51); uint64_t o3 = (uint64_t)r3 & MASK51;
    uint64_t c = (uint64_t)(r4 >> 51); uint64_t o4 = (uint64_t)r4 & MASK51;
    o0 += 19 * c;
    o1 += o0 >> 51; o0 &= MASK51;
    r->v[0] = o0; r->v[1] = o1; r->v[2] = o2; r->v[3] = o3; r->v[4] = o4;
}

static inline void fe_mul(fe *r, const fe *a, const fe *b) {
    const uint64_t a0 = a->v[0], a1 = a->v[1], a2 = a->v[2], a3 = a->v[3], a4 = a->v[4];
    const uint64_t b0 = b->v[0], b1 = b->v[1], b2 = b->v[2], b3 = b->v[3], b4 = b->v[4];
    const uint64_t b1_19 = 19 * b1, b2_19 = 19 * b2, b3_19 = 19 * b3, b4_19 = 19 * b4;
    u128 r0 = (u128)a0 * b0 + (u128)a1 * b4_19 + (u128)a2 * b3_19 + (u128)a3 * b2_19 + (u128)a4 * b1_19;
    u128 r1 = (u128)a0 * b1 + (u128)a1 * b0 + (u128)a2 * b4_19 + (u128)a3 * b3_19 + (u128)a4 * b2_19;
    u128 r2 = (u128)a0 * b2 + (u128)a1 * b1 + (u128)a2 * b0 + (u128)a3 * b4_19 + (u128)a4 * b3_19;
    u128 r3 = (u128)a0 * b3 + (u128)a1 * b2 + (u128)a2 * b1 + (u128)a3 * b0 + (u128)a4 * b4_19;
    u128 r4 = (u128)a0 * b4 + (u128)a1 * b3 + (u128)a2 * b2 + (u128)a3 * b1 + (u128)a4 * b0;
    fe_carry_wide(r, r0, r1, r2, r3, r4);
}

// Squaring needs 15 limb products where a general product needs 25; decompression is
// mostly squarings.
static inline void fe_sq(fe *r, const fe *a) {
    const uint64_t a0 = a->v[0], a1 = a->v[1], a2 = a->v[2], a3 = a->v[3], a4 = a->v[4];
    const uint64_t d0 = 2 * a0, d1 = 2 * a1, d2 = 2 * a2;
    const uint64_t a3_19 = 19 * a3, a4_19 = 19 * a4;
    u128 r0 = (u128)a0 * a0 + (u128)d1 * a4_19 + (u128)d2 * a3_19;
    u128 r1 = (u128)d0 * a1 + (u128)d2 * a4_19 + (u128)a3 * a3_19;
    u128 r2 = (u128)d0 * a2 + (u128)a1 * a1 + (u128)(2 * a3) * a4_19;
    u128 r3 = (u128)d0 * a3 + (u128)d1 * a2 + (u128)a4 * a4_19;
    u128 r4 = (u128)d0 * a4 + (u128)d1 * a3 + (u128)a2 * a2;
    fe_carry_wide(r, r0, r1, r2, r3, r4);
}

static inline void fe_sq_times(fe *r, const fe *a, int n) {
    fe_sq(r, a);
    for (int i = 1; i < n; i++) fe_sq(r, r);
}

// The unique representative below p.
static void fe_canonical(uint64_t out[5], const fe *a) {
    fe t = *a;
    fe_carry(&t);
    fe_carry(&t);
    uint64_t q = (t.v[0] + 19) >> 51;
    q = (t.v[1] + q) >> 51;
    q = (t.v[2] + q) >> 51;
    q = (t.v[3] + q) >> 51;
    q = (t.v[4] + q) >> 51;
    t.v[0] += 19 * q;
    for (int i = 0; i < 4; i++) { t.v[i + 1] += t.v[i] >> 51; t.v[i] &= MASK51; }
    t.v[4] &= MASK51;
    memcpy(out, t.v, sizeof t.v);
}

static int fe_iszero(const fe *a) {
    uint64_t c[5];
    fe_canonical(c, a);
    return (c[0] | c[1] | c[2] | c[3] | c[4]) == 0;
}

static int fe_isnegative(const fe *a) {
    uint64_t c[5];
    fe_canonical(c, a);
    return (int)(c[0] & 1);
}

static inline uint64_t load64(const unsigned char *p) {
    uint64_t r = 0;
    for (int i = 7; i >= 0; i--) r = (r << 8) | p[i];
    return r;
}

// The low 255 bits; 0 when they are not below p (a non-canonical encoding).
static int fe_frombytes(fe *r, const unsigned char s[32]) {
    r->v[0] = load64(s) & MASK51;
    r->v[1] = (load64(s + 6) >> 3) & MASK51;
    r->v[2] = (load64(s + 12) >> 6) & MASK51;
    r->v[3] = (load64(s + 19) >> 1) & MASK51;
    r->v[4] = (load64(s + 24) >> 12) & MASK51;
    int top = r->v[4] == MASK51 && r->v[3] == MASK51 && r->v[2] == MASK51 && r->v[1] == MASK51;
    return !(top && r->v[0] >= MASK51 - 18);
}

// z^(2^252 - 3), the square-root exponent (p - 5) / 8.
static void fe_pow22523(fe *out, const fe *z) {
    fe t0, t1, t2;
    fe_sq(&t0, z);
    fe_sq_times(&t1, &t0, 2);
    fe_mul(&t1, z, &t1);
    fe_mul(&t0, &t0, &t1);
    fe_sq(&t0, &t0);
    fe_mul(&t0, &t1, &t0);            // z^(2^5 - 1)
    fe_sq_times(&t1, &t0, 5);
    fe_mul(&t0, &t1, &t0);            // 2^10 - 1
    fe_sq_times(&t1, &t0, 10);
    fe_mul(&t1, &t1, &t0);            // 2^20 - 1
    fe_sq_times(&t2, &t1, 20);
    fe_mul(&t1, &t2, &t1);            // 2^40 - 1
    fe_sq_times(&t1, &t1, 10);
    fe_mul(&t0, &t1, &t0);            // 2^50 - 1
    fe_sq_times(&t1, &t0, 50);
    fe_mul(&t1, &t1, &t0);            // 2^100 - 1
    fe_sq_times(&t2, &t1, 100);
    fe_mul(&t1, &t2, &t1);            // 2^200 - 1
    fe_sq_times(&t1, &t1, 50);
    fe_mul(&t0, &t1, &t0);            // 2^250 - 1
    fe_sq_times(&t0, &t0, 2);         // 2^252 - 4
    fe_mul(out, &t0, z);
}

// RFC 8032 section 5.1.3, refusing a non-canonical y and the encoding of x = 0 with the
// sign bit set.
static int ge_decode(ge *r, const unsigned char s[32]) {
    fe u, v, v3, vxx, check;
    const fe one = {{1, 0, 0, 0, 0}};
    if (!fe_frombytes(&r->Y, s)) return 0;
    r->Z = one;
    fe_sq(&u, &r->Y);
    fe_mul(&v, &u, &fe_d);
    fe_sub(&u, &u, &one);             // y^2 - 1
    fe_add(&v, &v, &one);             // d y^2 + 1
    fe_sq(&v3, &v);
    fe_mul(&v3, &v3, &v);             // v^3
    fe_sq(&r->X, &v3);
    fe_mul(&r->X, &r->X, &v);
    fe_mul(&r->X, &r->X, &u);         // u v^7
    fe_pow22523(&r->X, &r->X);
    fe_mul(&r->X, &r->X, &v3);
    fe_mul(&r->X, &r->X, &u);         // u v^3 (u v^7)^((p-5)/8)
    fe_sq(&vxx, &r->X);
    fe_mul(&vxx, &vxx, &v);
    fe_sub(&check, &vxx, &u);
    if (!fe_iszero(&check)) {
        fe_add(&check, &vxx, &u);
        if (!fe_iszero(&check)) return 0;
        fe_mul(&r->X, &r->X, &fe_sqrtm1);
    }
    int sign = s[31] >> 7;
    if (fe_iszero(&r->X) && sign) return 0;
    if (fe_isnegative(&r->X) != sign) {
        const fe zero = {{0, 0, 0, 0, 0}};
        fe_sub(&r->X, &zero, &r->X);
    }
    fe_mul(&r->T, &r->X, &r->Y);
    return 1;
}

static void ge_identity(ge *r) {
    memset(r, 0, sizeof *r);
    r->Y.v[0] = 1;
    r->Z.v[0] = 1;
}

static void ge_to_cached(ge_cached *r, const ge *p) {
    fe_add(&r->YplusX, &p->Y, &p->X);
    fe_sub(&r->YminusX, &p->Y, &p->X);
    r->Z = p->Z;
    fe_mul(&r->T2d, &p->T, &fe_d2);
}

// add-2008-hwcd-3: complete on Ed25519 (a = -1 a square, d not), so doubling and the
// identity need no special case.
static void ge_add(ge *r, const ge *p, const ge_cached *q) {
    fe a, b, c, d, e, f, g, h;
    fe_sub(&a, &p->Y, &p->X);
    fe_mul(&a, &a, &q->YminusX);
    fe_add(&b, &p->Y, &p->X);
    fe_mul(&b, &b, &q->YplusX);
    fe_mul(&c, &p->T, &q->T2d);
    fe_mul(&d, &p->Z, &q->Z);
    fe_add(&d, &d, &d);
    fe_sub(&e, &b, &a);
    fe_sub(&f, &d, &c);
    fe_add(&g, &d, &c);
    fe_add(&h, &b, &a);
    fe_mul(&r->X, &e, &f);
    fe_mul(&r->Y, &g, &h);
    fe_mul(&r->T, &e, &h);
    fe_mul(&r->Z, &f, &g);
}

static void ge_add_ge(ge *r, const ge *p, const ge *q) {
    ge_cached c;
    ge_to_cached(&c, q);
    ge_add(r, p, &c);
}

// dbl-2008-hwcd with a = -1.
static void ge_double(ge *r, const ge *p) {
    fe a, b, c, e, g, f, h, t;
    fe_sq(&a, &p->X);
    fe_sq(&b, &p->Y);
    fe_sq(&c, &p->Z);
    fe_add(&c, &c, &c);
    fe_add(&t, &p->X, &p->Y);
    fe_sq(&e, &t);
    fe_add(&t, &a, &b);
    fe_sub(&e, &e, &t);               // 2XY
    fe_sub(&g, &b, &a);               // -A + B
    fe_sub(&f, &g, &c);
    const fe zero = {{0, 0, 0, 0, 0}};
    fe_sub(&h, &zero, &t);            // -A - B
    fe_mul(&r->X, &e, &f);
    fe_mul(&r->Y, &g, &h);
    fe_mul(&r->T, &e, &h);
    fe_mul(&r->Z, &f, &g);
}

static int ge_is_identity(const ge *p) {
    fe t;
    fe_sub(&t, &p->Y, &p->Z);
    return fe_iszero(&p->X) && fe_iszero(&t);
}

// A point of order 1, 2, 4 or 8. Such keys and R values are refused (as libsodium does):
// with a small-order key, "signatures" satisfying the equation exist for every message.
static int ge_has_small_order(const ge *p) {
    ge t;
    ge_double(&t, p);
    ge_double(&t, &t);
    ge_double(&t, &t);
    return ge_is_identity(&t);
}

// Bits [at, at + width) of a little-endian scalar padded to 40 bytes.
static inline unsigned scalar_bits(const unsigned char *s, unsigned at, unsigned width) {
    return (unsigned)(load64(s + at / 8) >> (at % 8)) & ((1u << width) - 1);
}

enum { SCALAR_STRIDE = 40 };

// sum [scalar_j] P_j by Pippenger's buckets: per window of c bits, each point joins the
// bucket of its digit, and the buckets are summed by running sums. Points from
// `short_from` on have scalars below 2^short_bits and skip the windows above.
static void msm_buckets(ge *out, const ge_cached *pts, const unsigned char *scalars, size_t n, size_t short_from,
                        unsigned short_bits, unsigned c, ge *buckets) {
    unsigned windows = (253 + c - 1) / c;
    ge_identity(out);
    for (int w = (int)windows - 1; w >= 0; w--) {
        for (unsigned i = 0; i < c; i++) ge_double(out, out);
        size_t nb = ((size_t)1 << c) - 1;
        unsigned char *used = (unsigned char *)(buckets + nb);
        memset(used, 0, nb);
        unsigned at = (unsigned)w * c;
        size_t limit = at >= short_bits ? short_from : n;
        for (size_t j = 0; j < limit; j++) {
            unsigned d = scalar_bits(scalars + j * SCALAR_STRIDE, at, c);
            if (!d) continue;
            if (used[d - 1]) {
                ge_add(&buckets[d - 1], &buckets[d - 1], &pts[j]);
            } else {
                ge_identity(&buckets[d - 1]);
                ge_add(&buckets[d - 1], &buckets[d - 1], &pts[j]);
                used[d - 1] = 1;
            }
        }
        ge running, sum;
        ge_identity(&running);
        ge_identity(&sum);
        int any = 0;
        for (size_t b = nb; b-- > 0;) {
            if (used[b]) { ge_add_ge(&running, &running, &buckets[b]); any = 1; }
            if (any) ge_add_ge(&sum, &sum, &running);
        }
        if (any) ge_add_ge(out, out, &sum);
    }
}

// The same sum by Straus' interleaving with 4-bit windows: cheaper for a handful of
// points (a single signature is three).
static void msm_straus(ge *out, const ge_cached *pts, const unsigned char *scalars, size_t n, ge_cached *tables) {
    for (size_t j = 0; j < n; j++) {
        ge acc;
        ge_identity(&acc);
        ge_to_cached(&tables[j * 16], &acc);
        for (int k = 1; k < 16; k++) {
            ge_add(&acc, &acc, &pts[j]);
            ge_to_cached(&tables[j * 16 + k], &acc);
        }
    }
    ge_identity(out);
    for (int w = 63; w >= 0; w--) {
        for (int i = 0; i < 4; i++) ge_double(out, out);
        for (size_t j = 0; j < n; j++) {
            unsigned d = scalar_bits(scalars + j * SCALAR_STRIDE, (unsigned)w * 4, 4);
            if (d) ge_add(out, out, &tables[j * 16 + d]);
        }
    }
}

static int scalar_is_canonical(const unsigned char s[32]) {
    for (int i = 31; i >= 0; i--) {
        if (s[i] < order_L[i]) return 1;
        if (s[i] > order_L[i]) return 0;
    }
    return 0;
}

int tessera_ed25519_verify_batch(size_t n, const unsigned char *const *messages, const size_t *lengths,
                                 const unsigned char *signatures, size_t nkeys, const unsigned char *keys,
                                 const uint32_t *key_index) {
    if (n == 0) return 1;
    if (sodium_init() < 0) return 0;
    size_t npts = 1 + nkeys + n;
    ge_cached *pts = malloc(npts * sizeof *pts);
    unsigned char *scalars = calloc(npts, SCALAR_STRIDE);
    int ok = 0;
    if (!pts || !scalars) goto done;

    unsigned char *sB = scalars;                        // point 0: B
    unsigned char *sA = scalars + SCALAR_STRIDE;        // points 1...nkeys: the keys
    unsigned char *sR = scalars + (1 + nkeys) * SCALAR_STRIDE;
    ge p;
    ge_to_cached(&pts[0], &ge_base);
    for (size_t k = 0; k < nkeys; k++) {
        if (!ge_decode(&p, keys + 32 * k) || ge_has_small_order(&p)) goto done;
        ge_to_cached(&pts[1 + k], &p);
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *sig = signatures + 64 * i;
        if (key_index[i] >= nkeys || !scalar_is_canonical(sig + 32) || !ge_decode(&p, sig) || ge_has_small_order(&p)) goto done;
        ge_to_cached(&pts[1 + nkeys + i], &p);
        unsigned char digest[64], k[32], z[32] = {0}, t[32];
        crypto_hash_sha512_state st;
        crypto_hash_sha512_init(&st);
        crypto_hash_sha512_update(&st, sig, 32);
        crypto_hash_sha512_update(&st, keys + 32 * key_index[i], 32);
        crypto_hash_sha512_update(&st, messages[i], lengths[i]);
        crypto_hash_sha512_final(&st, digest);
        crypto_core_ed25519_scalar_reduce(k, digest);
        randombytes_buf(z, 16);
        z[0] |= 1;                                      // never zero
        memcpy(sR + i * SCALAR_STRIDE, z, 32);
        unsigned char *ak = sA + key_index[i] * SCALAR_STRIDE;
        crypto_core_ed25519_scalar_mul(t, z, k);
        crypto_core_ed25519_scalar_add(ak, ak, t);
        crypto_core_ed25519_scalar_mul(t, z, sig + 32);
        crypto_core_ed25519_scalar_add(sB, sB, t);
    }
    crypto_core_ed25519_scalar_negate(sB, sB);

    // Choose the cheaper method and window from an estimate of point additions.
    double straus = (double)npts * (15 + 64) - (double)n * 32;
    unsigned best_c = 0;
    double best = straus;
    for (unsigned c = 2; c <= 16; c++) {
        double cost = (double)((128 + c - 1) / c) * (double)n + (double)((253 + c - 1) / c) * ((double)(1 + nkeys) + 2.0 * (double)(1u << c));
        if (cost < best) { best = cost; best_c = c; }
    }
    ge sum;
    if (best_c == 0) {
        ge_cached *tables = malloc(npts * 16 * sizeof *tables);
        if (!tables) goto done;
        msm_straus(&sum, pts, scalars, npts, tables);
        free(tables);
    } else {
        size_t nb = ((size_t)1 << best_c) - 1;
        ge *buckets = malloc(nb * sizeof *buckets + nb);
        if (!buckets) goto done;
        msm_buckets(&sum, pts, scalars, npts, 1 + nkeys, 128, best_c, buckets);
        free(buckets);
    }
    ge_double(&sum, &sum);
    ge_double(&sum, &sum);
    ge_double(&sum, &sum);
    ok = ge_is_identity(&sum);
done:
    free(pts);
    free(scalars);
    return ok;
}

int tessera_ed25519_key_is_usable(const unsigned char *key) {
    ge p;
    return ge_decode(&p, key) && !ge_has_small_order(&p);
}
