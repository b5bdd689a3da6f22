/*
 * ctr_hash: the 64-bit hash of token text.
 *
 * Model files store weights at slots derived from these hashes, so the
 * function is frozen: the same bytes and seed give the same value on every
 * platform and in every later version (tests/ctr/test_reader.c pins known
 * answers). Bytes are read as little-endian words whatever the host order.
 *
 * The construction is a multiply-rotate absorb of 8-byte words into one
 * 64-bit state (odd multipliers, so each step is a bijection of the state),
 * the length folded in at the start so that inputs differing only in
 * trailing zero bytes differ, and a full-avalanche finaliser (xor-shift /
 * multiply rounds) so that every input bit affects every output bit. It is
 * not a cryptographic hash: an adversary can build collisions. Click logs are
 * not adversarial, and a collision only shares a weight slot.
 */
#include <stdint.h>

#include "adsmith/ctr.h"

#define CTR_H_M1 UINT64_C(0x9e3779b97f4a7c15) /* 2^64 / golden ratio, odd */
#define CTR_H_M2 UINT64_C(0xd6e8feb86659fd93)
#define CTR_H_M3 UINT64_C(0xbf58476d1ce4e5b9)
#define CTR_H_M4 UINT64_C(0x94d049bb133111eb)

static inline uint64_t ctr_h_rotl(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t ctr_h_load(const unsigned char *p, size_t n)
{
    uint64_t w = 0;

    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

static inline uint64_t ctr_h_absorb(uint64_t h, uint64_t w)
{
    w *= CTR_H_M2;
    w = ctr_h_rotl(w, 29);
    w *= CTR_H_M1;
    h ^= w;
    h = ctr_h_rotl(h, 31);
    return h * CTR_H_M1 + CTR_H_M3;
}

uint64_t ctr_hash(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ ((uint64_t)len * CTR_H_M4) ^ CTR_H_M1;
    size_t i = 0;

    for (; i + 8 <= len; i += 8)
        h = ctr_h_absorb(h, ctr_h_load(p + i, 8));
    if (i < len)
        h = ctr_h_absorb(h, ctr_h_load(p + i, len - i));
    h ^= h >> 30;
    h *= CTR_H_M3;
    h ^= h >> 27;
    h *= CTR_H_M4;
    h ^= h >> 31;
    return h;
}
