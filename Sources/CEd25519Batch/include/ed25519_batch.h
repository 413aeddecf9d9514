#ifndef TESSERA_ED25519_BATCH_H
#define TESSERA_ED25519_BATCH_H

#include <stddef.h>
#include <stdint.h>

/// Checks n Ed25519 signatures at once. Signature i (64 bytes at signatures + 64 i) is
/// over messages[i] (lengths[i] bytes) by the public key keys + 32 key_index[i].
/// Returns 1 when every signature satisfies the cofactored verification equation
/// [8][s]B = [8]R + [8][k]A with s < L and canonical encodings of A and R, neither of
/// small order, 0 when any
/// does not (or memory runs out). Random 128-bit weights combine the n equations into
/// one multi-scalar multiplication, so a bad signature passes with probability < 2^-125.
int tessera_ed25519_verify_batch(size_t n, const unsigned char *const *messages, const size_t *lengths,
                                 const unsigned char *signatures, size_t nkeys, const unsigned char *keys,
                                 const uint32_t *key_index);

/// 1 when the 32 bytes are a public key some signature could verify under: a canonical
/// encoding of a curve point that is not of small order (the verifier's own rule), else 0.
int tessera_ed25519_key_is_usable(const unsigned char *key);

#endif
