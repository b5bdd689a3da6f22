/*
 * lrng: the seeded random numbers of adsmith-load, and a Zipf sampler.
 *
 * lrng is xoshiro256** (Blackman and Vigna, https://prng.di.unimi.it/),
 * seeded through splitmix64: fast, 256 bits of state, and the same seed
 * gives the same stream on every machine, so a workload can be replayed.
 *
 * lzipf draws ranks 1..n with P(k) proportional to k^-s by rejection-
 * inversion (W. Hormann and G. Derflinger, "Rejection-inversion to generate
 * variates from monotone discrete distributions", ACM TOMACS 6(3), 1996):
 * constant time and memory whatever n, so ten million users cost nothing.
 */
#ifndef ADSMITH_LOAD_RNG_H
#define ADSMITH_LOAD_RNG_H

#include <stdint.h>

struct lrng {
    uint64_t s[4];
};

/** splitmix64's finalizer: a bijection on 64-bit values (used to hash indices into ids). */
uint64_t lrng_mix(uint64_t x);

/** Seeds @p r from @p seed (any value, 0 included). */
void lrng_seed(struct lrng *r, uint64_t seed);

/** The next 64 random bits. */
uint64_t lrng_next(struct lrng *r);

/** A uniform integer in [0, n); n = 0 gives 0. */
uint64_t lrng_below(struct lrng *r, uint64_t n);

/** A uniform double in [0, 1). */
double lrng_unit(struct lrng *r);

/** true with probability @p p. */
int lrng_chance(struct lrng *r, double p);

struct lzipf {
    uint64_t n;
    double s;
    double h_x1;  /* H(1.5) - 1 */
    double h_n;   /* H(n + 0.5) */
    double shift; /* 2 - H^-1(H(2.5) - h(2)) */
};

/**
 * Prepares a sampler over ranks 1..@p n with exponent @p s.
 * @return 0, or -EINVAL when n is 0 or s is not in (0, 10].
 */
int lzipf_init(struct lzipf *z, uint64_t n, double s);

/** Draws a rank in 1..n (rank 1 most often). */
uint64_t lzipf_draw(const struct lzipf *z, struct lrng *r);

#endif
