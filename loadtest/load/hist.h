/*
 * lhist: a log-bucketed latency histogram with bounded relative error.
 *
 * The idea is HdrHistogram's (Gil Tene, https://github.com/HdrHistogram):
 * values below 2^LHIST_SUB_BITS get one bucket each; above, every power of
 * two [2^m, 2^(m+1)) is cut into 2^LHIST_SUB_BITS equal buckets, so a
 * bucket is never wider than 1/128 of the values it holds. A percentile is
 * reported as the middle of its bucket, which is within 1/256 (0.39 %) of
 * every value in that bucket. The count, sum, minimum and maximum are kept
 * exactly. The code is our own.
 *
 * Values are unsigned 64-bit integers (adsmith-load records nanoseconds).
 * Values of 2^LHIST_MAX_BITS (about 18 minutes in ns) and above are counted
 * in the last bucket and in `clamped`; min and max stay exact.
 *
 * A histogram is a plain struct of fixed size (about 35 KiB), embedded or
 * allocated by the caller; nothing in it allocates. Not thread-safe: each
 * thread records into its own, and lhist_merge() adds them up afterwards.
 */
#ifndef ADSMITH_LOAD_HIST_H
#define ADSMITH_LOAD_HIST_H

#include <stdint.h>

#define LHIST_SUB_BITS 7
#define LHIST_SUB (1u << LHIST_SUB_BITS)
#define LHIST_MAX_BITS 40
#define LHIST_BUCKETS ((LHIST_MAX_BITS - LHIST_SUB_BITS + 1) * LHIST_SUB)

struct lhist {
    uint64_t count;   /* values recorded */
    uint64_t sum;     /* their exact sum (saturates at UINT64_MAX) */
    uint64_t min;     /* exact; UINT64_MAX while empty */
    uint64_t max;     /* exact; 0 while empty */
    uint64_t clamped; /* values >= 2^LHIST_MAX_BITS, counted in the last bucket */
    uint64_t bucket[LHIST_BUCKETS];
};

/** Empties @p h. */
void lhist_init(struct lhist *h);

/** Records one value. */
void lhist_record(struct lhist *h, uint64_t value);

/** Adds every value of @p src into @p dst (both initialised). */
void lhist_merge(struct lhist *dst, const struct lhist *src);

/**
 * The value at percentile @p p (0-100) by nearest rank: the smallest bucket
 * whose cumulative count reaches ceil(p / 100 * count), reported as its
 * middle, and never outside [min, max]. p <= 0 gives min, p >= 100 gives
 * max exactly. Returns 0 for an empty histogram.
 */
uint64_t lhist_percentile(const struct lhist *h, double p);

/** The exact mean, or 0 for an empty histogram. */
double lhist_mean(const struct lhist *h);

/** The bucket @p value falls in (0 .. LHIST_BUCKETS - 1). */
unsigned lhist_bucket(uint64_t value);

/** The smallest value of bucket @p i. */
uint64_t lhist_bucket_low(unsigned i);

/** The largest value of bucket @p i. */
uint64_t lhist_bucket_high(unsigned i);

#endif
