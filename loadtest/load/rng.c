/*
 * lrng and lzipf: see rng.h.
 */
#include "rng.h"

#include <errno.h>
#include <math.h>

uint64_t lrng_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void lrng_seed(struct lrng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        seed += 0x9e3779b97f4a7c15ull;
        r->s[i] = lrng_mix(seed);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t lrng_next(struct lrng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t lrng_below(struct lrng *r, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Lemire's multiply-shift; the bias (< n / 2^64) does not matter here. */
    __extension__ typedef unsigned __int128 u128;
    return (uint64_t)(((u128)lrng_next(r) * n) >> 64);
}

double lrng_unit(struct lrng *r)
{
    return (double)(lrng_next(r) >> 11) * 0x1.0p-53;
}

int lrng_chance(struct lrng *r, double p)
{
    return lrng_unit(r) < p;
}

/* log1p(x) / x and (exp(x) - 1) / x, with their limits at 0, so that s = 1
 * (where (1 - s) is 0) needs no special case. */
static double log1p_over(double x)
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x / 2.0;
}

static double expm1_over(double x)
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1.0 + x / 2.0;
}

/* h(x) = x^-s; H is an antiderivative of h, H(x) = (x^(1-s) - 1) / (1 - s). */
static double zh(const struct lzipf *z, double x)
{
    return exp(-z->s * log(x));
}

static double zH(const struct lzipf *z, double x)
{
    double lx = log(x);
    return expm1_over((1.0 - z->s) * lx) * lx;
}

static double zHinv(const struct lzipf *z, double y)
{
    double t = y * (1.0 - z->s);
    if (t < -1.0)
        t = -1.0; /* rounding at the lower end of the range */
    return exp(log1p_over(t) * y);
}

int lzipf_init(struct lzipf *z, uint64_t n, double s)
{
    if (n == 0 || !(s > 0.0) || s > 10.0)
        return -EINVAL;
    z->n = n;
    z->s = s;
    z->h_x1 = zH(z, 1.5) - 1.0;
    z->h_n = zH(z, (double)n + 0.5);
    z->shift = 2.0 - zHinv(z, zH(z, 2.5) - zh(z, 2.0));
    return 0;
}

uint64_t lzipf_draw(const struct lzipf *z, struct lrng *r)
{
    for (;;) {
        double u = z->h_n + lrng_unit(r) * (z->h_x1 - z->h_n);
        double x = zHinv(z, u);
        double kd = floor(x + 0.5);
        if (kd < 1.0)
            kd = 1.0;
        else if (kd > (double)z->n)
            kd = (double)z->n;
        if (kd - x <= z->shift || u >= zH(z, kd + 0.5) - zh(z, kd))
            return (uint64_t)kd;
    }
}
