/*
 * Unit tests of adsmith-load's latency histogram (loadtest/load/hist.c):
 * known-answer percentiles, the bucket layout and its error bound, merging,
 * and values past the top of the range.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "../../loadtest/load/hist.h"
#include "../../loadtest/load/rng.h"

static struct lhist *new_hist(void)
{
    struct lhist *h = malloc(sizeof(*h));
    cr_assert_not_null(h);
    lhist_init(h);
    return h;
}

/* |got - want| <= want / 256: the bound hist.h promises for a percentile. */
static void assert_close(uint64_t got, uint64_t want, const char *what)
{
    uint64_t diff = got > want ? got - want : want - got;
    cr_assert(diff * 256 <= want, "%s: got %llu, want %llu (+-%llu)", what, (unsigned long long)got,
              (unsigned long long)want, (unsigned long long)(want / 256));
}

Test(hist, empty)
{
    struct lhist *h = new_hist();
    cr_assert_eq(h->count, 0);
    cr_assert_eq(lhist_percentile(h, 50), 0);
    cr_assert_eq(lhist_percentile(h, 100), 0);
    cr_assert_eq(lhist_mean(h), 0.0);
    free(h);
}

Test(hist, small_values_are_exact)
{
    struct lhist *h = new_hist();
    for (uint64_t v = 1; v <= 100; v++)
        lhist_record(h, v);
    cr_assert_eq(lhist_percentile(h, 50), 50);
    cr_assert_eq(lhist_percentile(h, 90), 90);
    cr_assert_eq(lhist_percentile(h, 99), 99);
    cr_assert_eq(lhist_percentile(h, 99.9), 100);
    cr_assert_eq(lhist_percentile(h, 100), 100);
    cr_assert_eq(lhist_percentile(h, 0), 1);
    cr_assert_eq(h->min, 1);
    cr_assert_eq(h->max, 100);
    cr_assert_float_eq(lhist_mean(h), 50.5, 1e-9);
    free(h);
}

Test(hist, known_answers_over_a_million_values)
{
    /* 1 us .. 1 s in ns, in steps of 1 us: percentile p is p * 10^4 us. */
    struct lhist *h = new_hist();
    for (uint64_t v = 1; v <= 1000000; v++)
        lhist_record(h, v * 1000);
    cr_assert_eq(h->count, 1000000);
    assert_close(lhist_percentile(h, 50), 500000000, "p50");
    assert_close(lhist_percentile(h, 90), 900000000, "p90");
    assert_close(lhist_percentile(h, 99), 990000000, "p99");
    assert_close(lhist_percentile(h, 99.9), 999000000, "p99.9");
    cr_assert_eq(lhist_percentile(h, 100), 1000000000, "max is exact");
    cr_assert_eq(h->min, 1000);
    cr_assert_float_eq(lhist_mean(h), 500000500.0, 1e-3);
    free(h);
}

Test(hist, percentiles_of_a_skewed_distribution)
{
    /* 990 fast answers of 100 us and 10 slow ones of 50 ms: p99 is fast, p99.9 slow. */
    struct lhist *h = new_hist();
    for (int i = 0; i < 990; i++)
        lhist_record(h, 100000);
    for (int i = 0; i < 10; i++)
        lhist_record(h, 50000000);
    assert_close(lhist_percentile(h, 50), 100000, "p50");
    assert_close(lhist_percentile(h, 99), 100000, "p99");
    assert_close(lhist_percentile(h, 99.1), 50000000, "p99.1");
    assert_close(lhist_percentile(h, 99.9), 50000000, "p99.9");
    free(h);
}

Test(hist, buckets_tile_the_range_without_gaps)
{
    cr_assert_eq(lhist_bucket_low(0), 0);
    for (unsigned i = 0; i + 1 < LHIST_BUCKETS; i++) {
        cr_assert_eq(lhist_bucket_low(i + 1), lhist_bucket_high(i) + 1, "gap after bucket %u", i);
        cr_assert_eq(lhist_bucket(lhist_bucket_low(i)), i);
        cr_assert_eq(lhist_bucket(lhist_bucket_high(i)), i);
    }
    cr_assert_eq(lhist_bucket_high(LHIST_BUCKETS - 1), (UINT64_C(1) << LHIST_MAX_BITS) - 1);
}

Test(hist, bucket_width_is_at_most_1_in_128)
{
    for (unsigned i = LHIST_SUB; i < LHIST_BUCKETS; i++) {
        uint64_t lo = lhist_bucket_low(i), width = lhist_bucket_high(i) - lo + 1;
        cr_assert(width * LHIST_SUB <= lo, "bucket %u: [%llu, +%llu)", i, (unsigned long long)lo,
                  (unsigned long long)width);
    }
}

Test(hist, error_bound_on_random_values)
{
    /* A histogram of one value reports it within 1/256, across 1 ns .. 2^40 ns. */
    struct lrng r;
    lrng_seed(&r, 42);
    struct lhist *h = new_hist();
    for (int i = 0; i < 20000; i++) {
        uint64_t v = lrng_next(&r) >> (24 + lrng_below(&r, 40));
        if (v == 0)
            continue;
        lhist_init(h);
        lhist_record(h, v);
        lhist_record(h, v);
        cr_assert_eq(lhist_percentile(h, 100), v);
        cr_assert_eq(lhist_percentile(h, 0), v);
        /* The middle of the bucket, clamped to [min, max], is v itself here; test the unclamped middle. */
        unsigned b = lhist_bucket(v);
        uint64_t lo = lhist_bucket_low(b), hi = lhist_bucket_high(b);
        cr_assert(lo <= v && v <= hi);
        assert_close(lo + (hi - lo) / 2, v, "bucket middle");
    }
    free(h);
}

Test(hist, merge_equals_recording_together)
{
    struct lhist *a = new_hist(), *b = new_hist(), *all = new_hist();
    struct lrng r;
    lrng_seed(&r, 7);
    for (int i = 0; i < 100000; i++) {
        uint64_t v = 1 + lrng_below(&r, 5000000);
        lhist_record(i % 3 ? a : b, v);
        lhist_record(all, v);
    }
    lhist_merge(a, b);
    cr_assert_eq(a->count, all->count);
    cr_assert_eq(a->sum, all->sum);
    cr_assert_eq(a->min, all->min);
    cr_assert_eq(a->max, all->max);
    for (unsigned i = 0; i < LHIST_BUCKETS; i++)
        cr_assert_eq(a->bucket[i], all->bucket[i], "bucket %u", i);
    static const double ps[] = {50, 90, 99, 99.9, 100};
    for (unsigned i = 0; i < 5; i++)
        cr_assert_eq(lhist_percentile(a, ps[i]), lhist_percentile(all, ps[i]));
    free(a);
    free(b);
    free(all);
}

Test(hist, merge_into_empty_keeps_min)
{
    struct lhist *a = new_hist(), *b = new_hist();
    lhist_record(b, 300);
    lhist_merge(a, b);
    cr_assert_eq(a->min, 300);
    cr_assert_eq(a->max, 300);
    lhist_merge(a, new_hist()); /* merging an empty one changes nothing */
    cr_assert_eq(a->min, 300);
    cr_assert_eq(a->count, 1);
    free(a);
    free(b);
}

Test(hist, values_past_the_range_are_clamped_but_max_is_exact)
{
    struct lhist *h = new_hist();
    uint64_t big = UINT64_C(1) << 45;
    lhist_record(h, 1000);
    lhist_record(h, big);
    cr_assert_eq(h->clamped, 1);
    cr_assert_eq(h->max, big);
    cr_assert_eq(lhist_percentile(h, 100), big);
    cr_assert_eq(lhist_bucket(big), LHIST_BUCKETS - 1);
    free(h);
}

Test(hist, percentiles_never_decrease)
{
    struct lhist *h = new_hist();
    struct lrng r;
    lrng_seed(&r, 99);
    for (int i = 0; i < 50000; i++)
        lhist_record(h, (uint64_t)(1e5 / (1e-6 + lrng_unit(&r)))); /* a long tail */
    uint64_t prev = 0;
    for (double p = 0; p <= 100; p += 0.05) {
        uint64_t v = lhist_percentile(h, p);
        cr_assert_geq(v, prev, "p%.2f", p);
        prev = v;
    }
    free(h);
}

Test(zipf, rank_one_is_most_frequent_and_ranks_stay_in_range)
{
    struct lzipf z;
    struct lrng r;
    cr_assert_eq(lzipf_init(&z, 1000, 1.1), 0);
    cr_assert_lt(lzipf_init(&z, 0, 1.1), 0);
    cr_assert_eq(lzipf_init(&z, 1000, 1.1), 0);
    lrng_seed(&r, 1);
    static unsigned counts[1001];
    for (int i = 0; i < 200000; i++) {
        uint64_t k = lzipf_draw(&z, &r);
        cr_assert(k >= 1 && k <= 1000);
        counts[k]++;
    }
    /* P(1) / P(2) = 2^1.1 = 2.14 and P(1) / P(10) = 10^1.1 = 12.6, within sampling noise. */
    double r12 = (double)counts[1] / counts[2], r110 = (double)counts[1] / counts[10];
    cr_assert(r12 > 1.95 && r12 < 2.35, "P(1)/P(2) = %f", r12);
    cr_assert(r110 > 10.5 && r110 < 15.0, "P(1)/P(10) = %f", r110);
}

Test(zipf, exponent_one_works)
{
    struct lzipf z;
    struct lrng r;
    cr_assert_eq(lzipf_init(&z, 10000000, 1.0), 0);
    lrng_seed(&r, 3);
    unsigned ones = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t k = lzipf_draw(&z, &r);
        cr_assert(k >= 1 && k <= 10000000);
        ones += k == 1;
    }
    /* P(1) = 1 / H(10^7) = 1 / 16.7 = 6 %. */
    cr_assert(ones > 5000 && ones < 7000, "rank 1 drawn %u times in 100000", ones);
}
