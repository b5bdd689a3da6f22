/*
 * ctr_eval: metrics against values worked out by hand (the comments show the
 * arithmetic), ties, edges of the reliability bins, and the AUC against a
 * brute-force count of pairs.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>

#include "adsmith/ctr.h"
#include "adsmith/err.h"

#define EPS 1e-12

static struct ctr_eval *eval_of(const double *p, const float *y, size_t n)
{
    struct ctr_eval *e = NULL;

    cr_assert_eq(ctr_eval_new(&e), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ctr_eval_add(e, p[i], y[i]), 0, "add %zu", i);
    return e;
}

static struct ctr_metrics metrics_of(const double *p, const float *y, size_t n)
{
    struct ctr_eval *e = eval_of(p, y, n);
    struct ctr_metrics m;

    cr_assert_eq(ctr_eval_result(e, &m), 0);
    ctr_eval_free(e);
    return m;
}

Test(eval, auc_without_ties)
{
    /* Positives 0.35, 0.8; negatives 0.1, 0.4. Pairs ranked right: (0.35>0.1), (0.8>0.1), (0.8>0.4): 3 of 4. */
    static const double p[] = {0.1, 0.4, 0.35, 0.8};
    static const float y[] = {0, 0, 1, 1};
    struct ctr_metrics m = metrics_of(p, y, 4);

    cr_expect_float_eq(m.auc, 0.75, EPS);
    cr_expect_eq(m.count, 4);
    cr_expect_eq(m.positives, 2);
}

Test(eval, auc_ties_count_half)
{
    /* Positives 0.5, 0.9; negatives 0.2, 0.5: 1 + 0.5 (tie) + 1 + 1 = 3.5 of 4. */
    static const double p[] = {0.2, 0.5, 0.5, 0.9};
    static const float y[] = {0, 0, 1, 1};
    /* Every score equal: each of the 4 pairs is a tie. */
    static const double flat[] = {0.3, 0.3, 0.3, 0.3};
    static const float fy[] = {1, 0, 0, 1};

    cr_expect_float_eq(metrics_of(p, y, 4).auc, 0.875, EPS);
    cr_expect_float_eq(metrics_of(flat, fy, 4).auc, 0.5, EPS);
}

Test(eval, auc_perfect_and_inverted)
{
    static const double p[] = {0.9, 0.8, 0.2, 0.1};
    static const float y[] = {1, 1, 0, 0};
    static const float inv[] = {0, 0, 1, 1};

    cr_expect_float_eq(metrics_of(p, y, 4).auc, 1.0, EPS);
    cr_expect_float_eq(metrics_of(p, inv, 4).auc, 0.0, EPS);
}

Test(eval, logloss_ne_calibration)
{
    /*
     * logloss = (-ln 0.9 - ln 0.8 - ln 0.7 - ln 0.4) / 4 = 1.6014697427849236 / 4 = 0.4003674356962309
     * base rate 1/4: H = -(0.25 ln 0.25 + 0.75 ln 0.75) = 0.5623351446188083; NE = 0.7119729924894328
     * calibration = (0.1 + 0.2 + 0.3 + 0.4) / 1 = 1
     */
    static const double p[] = {0.1, 0.2, 0.3, 0.4};
    static const float y[] = {0, 0, 0, 1};
    struct ctr_metrics m = metrics_of(p, y, 4);

    cr_expect_float_eq(m.logloss, 0.4003674356962309, EPS);
    cr_expect_float_eq(m.ne, 0.7119729924894328, EPS);
    cr_expect_float_eq(m.calibration, 1.0, EPS);
    cr_expect_float_eq(m.auc, 1.0, EPS);
}

Test(eval, coin_is_ne_one)
{
    /* p = 0.5 everywhere with base rate 0.5: logloss = ln 2 = H, so NE = 1. */
    static const double p[] = {0.5, 0.5, 0.5, 0.5};
    static const float y[] = {0, 1, 1, 0};
    struct ctr_metrics m = metrics_of(p, y, 4);

    cr_expect_float_eq(m.logloss, log(2.0), EPS);
    cr_expect_float_eq(m.ne, 1.0, EPS);
    /* Σp = 2, Σy = 2 */
    cr_expect_float_eq(m.calibration, 1.0, EPS);
}

Test(eval, calibration_over_and_under)
{
    /* Σp = 0.6 + 0.6 + 0.6 = 1.8 over Σy = 1: 1.8. */
    static const double p[] = {0.6, 0.6, 0.6};
    static const float y[] = {1, 0, 0};

    cr_expect_float_eq(metrics_of(p, y, 3).calibration, 1.8, EPS);
}

Test(eval, clamped_extremes)
{
    /* p = 0 for a click: -ln(1e-15) = 34.538776394910684; p = 1 for a click: -ln(1 - 1e-15) ~ 1e-15. */
    static const double p[] = {0.0, 1.0};
    static const float y[] = {1, 1};
    struct ctr_metrics m = metrics_of(p, y, 2);

    cr_expect_float_eq(m.logloss, 34.538776394910684 / 2, 1e-9);
    cr_expect(isnan(m.ne), "one class only: no entropy to normalise by");
    cr_expect(isnan(m.auc));
    cr_expect_float_eq(m.calibration, 0.5, EPS);
}

Test(eval, no_positives_and_empty)
{
    static const double p[] = {0.1, 0.2};
    static const float y[] = {0, 0};
    struct ctr_metrics m = metrics_of(p, y, 2);
    struct ctr_eval *e = NULL;

    cr_expect(isnan(m.calibration));
    cr_expect(isnan(m.auc));
    cr_expect(isnan(m.ne));
    cr_expect_float_eq(m.logloss, -(log(0.9) + log(0.8)) / 2, EPS);

    cr_assert_eq(ctr_eval_new(&e), 0);
    cr_assert_eq(ctr_eval_result(e, &m), 0);
    cr_expect_eq(m.count, 0);
    cr_expect(isnan(m.logloss) && isnan(m.auc) && isnan(m.calibration));
    for (int b = 0; b < CTR_RELIABILITY_BINS; b++)
        cr_expect(m.bins[b].count == 0 && isnan(m.bins[b].mean_p) && isnan(m.bins[b].rate));
    ctr_eval_free(e);
}

Test(eval, reliability_bins_and_edges)
{
    /* 0 -> bin 0; 0.1 -> bin 1 (lower edge included); 0.3, 0.7 exact edges; 0.95 and 1 -> bin 9. */
    static const double p[] = {0.0, 0.1, 0.15, 0.3, 0.7, 0.95, 1.0, 0.299999999999999};
    static const float y[] = {0, 1, 0, 1, 0, 1, 1, 0};
    struct ctr_metrics m = metrics_of(p, y, 8);

    cr_expect_eq(m.bins[0].count, 1);
    cr_expect_eq(m.bins[1].count, 2);
    cr_expect_float_eq(m.bins[1].mean_p, 0.125, EPS);
    cr_expect_float_eq(m.bins[1].rate, 0.5, EPS);
    cr_expect_eq(m.bins[2].count, 1, "0.299999999999999 is below 0.3");
    cr_expect_eq(m.bins[3].count, 1);
    cr_expect_eq(m.bins[7].count, 1);
    cr_expect_eq(m.bins[9].count, 2);
    cr_expect_float_eq(m.bins[9].mean_p, 0.975, EPS);
    cr_expect_float_eq(m.bins[9].rate, 1.0, EPS);
    cr_expect_eq(m.bins[5].count, 0);
    cr_expect(isnan(m.bins[5].mean_p));
    for (int b = 0; b < CTR_RELIABILITY_BINS; b++) {
        cr_expect_float_eq(m.bins[b].lo, b / 10.0, EPS);
        cr_expect_float_eq(m.bins[b].hi, (b + 1) / 10.0, EPS);
    }
}

Test(eval, rejects_bad_input)
{
    struct ctr_eval *e = NULL;
    struct ctr_metrics m;

    cr_assert_eq(ctr_eval_new(&e), 0);
    cr_expect_eq(ctr_eval_add(e, -0.01, 0), ADS_EINVAL);
    cr_expect_eq(ctr_eval_add(e, 1.01, 1), ADS_EINVAL);
    cr_expect_eq(ctr_eval_add(e, NAN, 1), ADS_EINVAL);
    cr_expect_eq(ctr_eval_add(e, INFINITY, 1), ADS_EINVAL);
    cr_expect_eq(ctr_eval_add(e, 0.5, 0.5f), ADS_EINVAL);
    cr_expect_eq(ctr_eval_add(e, 0.5, 2), ADS_EINVAL);
    cr_assert_eq(ctr_eval_result(e, &m), 0);
    cr_expect_eq(m.count, 0, "nothing rejected was counted");
    ctr_eval_free(e);
    ctr_eval_free(NULL);
}

Test(eval, result_again_after_more)
{
    struct ctr_eval *e = NULL;
    struct ctr_metrics m;

    cr_assert_eq(ctr_eval_new(&e), 0);
    cr_assert_eq(ctr_eval_add(e, 0.8, 1), 0);
    cr_assert_eq(ctr_eval_add(e, 0.2, 0), 0);
    cr_assert_eq(ctr_eval_result(e, &m), 0);
    cr_expect_float_eq(m.auc, 1.0, EPS);
    cr_assert_eq(ctr_eval_add(e, 0.9, 0), 0);
    cr_assert_eq(ctr_eval_result(e, &m), 0);
    /* Positive 0.8 beats 0.2, loses to 0.9: 1 of 2. */
    cr_expect_float_eq(m.auc, 0.5, EPS);
    cr_expect_eq(m.count, 3);
    ctr_eval_free(e);
}

/* A fixed pseudo-random sequence (64-bit LCG, top bits). */
static uint64_t lcg_state = 12345;

static uint32_t lcg(void)
{
    lcg_state = lcg_state * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (uint32_t)(lcg_state >> 33);
}

Test(eval, auc_matches_pair_count)
{
    enum { N = 600 };
    static double p[N];
    static float y[N];
    double wins = 0;
    uint64_t pos = 0;
    struct ctr_metrics m;

    /* Scores on a coarse grid, so that ties are common; labels correlated with the score. */
    for (int i = 0; i < N; i++) {
        p[i] = (double)(lcg() % 21) / 20.0;
        y[i] = (float)(lcg() % 100 < 20 + 50 * p[i]);
        pos += y[i] == 1;
    }
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            if (y[i] == 1 && y[j] == 0)
                wins += p[i] > p[j] ? 1.0 : p[i] == p[j] ? 0.5 : 0.0;
        }
    }
    m = metrics_of(p, y, N);
    cr_assert(pos > 0 && pos < N);
    cr_expect_float_eq(m.auc, wins / ((double)pos * (double)(N - pos)), 1e-12);
    cr_expect_eq(m.positives, pos);
}
