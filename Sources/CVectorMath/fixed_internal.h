/* Shared by the fixed-order product files; not part of the module's interface. */
#ifndef TESSERA_FIXED_INTERNAL_H
#define TESSERA_FIXED_INTERNAL_H

#include <stdint.h>
#include <string.h>

/* The path in use: 0 portable, 1 AVX2 and FMA, 2 AVX-512 for the packed products. */
int tsr_fixed_path(void);

static inline float widen_bf16(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

/* Sources may be unaligned (inside a mapped file). */
static inline uint16_t load_u16(const void *base, long index) {
    uint16_t h;
    memcpy(&h, (const char *)base + 2 * index, 2);
    return h;
}

#endif
