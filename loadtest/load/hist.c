/*
 * lhist: see hist.h. Bucket i for i < LHIST_SUB holds exactly the value i.
 * Above, a value v with highest set bit m (m >= LHIST_SUB_BITS) is shifted
 * right by s = m - LHIST_SUB_BITS, leaving a mantissa in [LHIST_SUB,
 * 2 * LHIST_SUB); its bucket is s * LHIST_SUB + mantissa, which makes the
 * indices of consecutive octaves follow each other without a gap.
 */
#include "hist.h"

#include <string.h>

void lhist_init(struct lhist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned lhist_bucket(uint64_t value)
{
    if (value < LHIST_SUB)
        return (unsigned)value;
    if (value >> LHIST_MAX_BITS)
        return LHIST_BUCKETS - 1;
    unsigned m = 63u - (unsigned)__builtin_clzll(value);
    unsigned s = m - LHIST_SUB_BITS;
    return s * LHIST_SUB + (unsigned)(value >> s);
}

uint64_t lhist_bucket_low(unsigned i)
{
    if (i < 2 * LHIST_SUB)
        return i;
    unsigned s = i / LHIST_SUB - 1;
    uint64_t mantissa = i - s * LHIST_SUB;
    return mantissa << s;
}

uint64_t lhist_bucket_high(unsigned i)
{
    if (i < 2 * LHIST_SUB)
        return i;
    unsigned s = i / LHIST_SUB - 1;
    return lhist_bucket_low(i) + (((uint64_t)1 << s) - 1);
}

void lhist_record(struct lhist *h, uint64_t value)
{
    h->bucket[lhist_bucket(value)]++;
    h->count++;
    h->sum = (h->sum + value < h->sum) ? UINT64_MAX : h->sum + value;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
    if (value >> LHIST_MAX_BITS)
        h->clamped++;
}

void lhist_merge(struct lhist *dst, const struct lhist *src)
{
    for (unsigned i = 0; i < LHIST_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    dst->count += src->count;
    dst->sum = (dst->sum + src->sum < dst->sum) ? UINT64_MAX : dst->sum + src->sum;
    dst->clamped += src->clamped;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t lhist_percentile(const struct lhist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    /* Nearest rank; the small epsilon keeps p = 50 of 10 values at rank 5,
     * not 6, when p / 100 * count lands a hair above an integer. */
    double exact = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact - 1e-9)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LHIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t lo = lhist_bucket_low(i), hi = lhist_bucket_high(i);
            uint64_t mid = lo + (hi - lo) / 2;
            if (mid < h->min)
                mid = h->min;
            if (mid > h->max)
                mid = h->max;
            return mid;
        }
    }
    return h->max;
}

double lhist_mean(const struct lhist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
