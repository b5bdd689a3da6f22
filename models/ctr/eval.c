/*
 * ctr_eval: logloss, normalised entropy, AUC, calibration and a reliability
 * table over (prediction, label) pairs.
 *
 * Sums that depend only on each pair (log-likelihood, Σp) are kept as the
 * pairs arrive, with compensated (Neumaier) summation, so the result does not
 * drift with the number of rows nor change when ctr_eval_result() sorts the
 * pairs for the AUC. The AUC is the Mann-Whitney statistic computed over
 * groups of equal predictions: a positive and a negative with the same score
 * count one half, which is what the area under the ROC curve drawn through
 * tied points (a diagonal segment) gives.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/ctr.h"

#define CTR_P_MIN 1e-15
#define CTR_EVAL_FIRST_CAP 4096

struct ctr_pair {
    double p;
    uint32_t y;
};

/* A running sum with its compensation term. */
struct ctr_sum {
    double s, c;
};

struct ctr_eval {
    struct ctr_pair *v;
    size_t n, cap;
    uint64_t positives;
    struct ctr_sum ll; /* Σ -log-likelihood */
    struct ctr_sum p;  /* Σ p */
};

static void ctr_sum_add(struct ctr_sum *a, double x)
{
    double t = a->s + x;

    if (fabs(a->s) >= fabs(x))
        a->c += (a->s - t) + x;
    else
        a->c += (x - t) + a->s;
    a->s = t;
}

static double ctr_sum_get(const struct ctr_sum *a)
{
    return a->s + a->c;
}

int ctr_eval_new(struct ctr_eval **ret)
{
    struct ctr_eval *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return ADS_ENOMEM;
    *ret = e;
    return 0;
}

int ctr_eval_add(struct ctr_eval *e, double p, float y)
{
    double q;

    if (!(p >= 0 && p <= 1) || (y != 0 && y != 1))
        return ADS_EINVAL;
    if (e->n >= CTR_EVAL_MAX)
        return ADS_EQUOTA_EXCEEDED;
    if (e->n == e->cap) {
        size_t cap = e->cap == 0 ? CTR_EVAL_FIRST_CAP : e->cap * 2;
        struct ctr_pair *v;
        if (cap > CTR_EVAL_MAX)
            cap = CTR_EVAL_MAX;
        if ((v = realloc(e->v, cap * sizeof(*v))) == NULL)
            return ADS_ENOMEM;
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n].p = p;
    e->v[e->n].y = y == 1;
    e->n++;
    q = p < CTR_P_MIN ? CTR_P_MIN : p > 1 - CTR_P_MIN ? 1 - CTR_P_MIN : p;
    ctr_sum_add(&e->ll, y == 1 ? -log(q) : -log1p(-q));
    ctr_sum_add(&e->p, p);
    e->positives += y == 1;
    return 0;
}

static int ctr_pair_cmp(const void *a, const void *b)
{
    double x = ((const struct ctr_pair *)a)->p, y = ((const struct ctr_pair *)b)->p;

    return (x > y) - (x < y);
}

/* The bin of p: [i/10, (i+1)/10), the last one closed; exact at the edges despite rounding in p * 10. */
static unsigned ctr_bin_of(double p)
{
    int b = (int)(p * CTR_RELIABILITY_BINS);

    if (b >= CTR_RELIABILITY_BINS)
        b = CTR_RELIABILITY_BINS - 1;
    if (b > 0 && p < (double)b / CTR_RELIABILITY_BINS)
        b--;
    else if (b + 1 < CTR_RELIABILITY_BINS && p >= (double)(b + 1) / CTR_RELIABILITY_BINS)
        b++;
    return (unsigned)b;
}

int ctr_eval_result(struct ctr_eval *e, struct ctr_metrics *out)
{
    struct ctr_sum bin_p[CTR_RELIABILITY_BINS];
    uint64_t bin_y[CTR_RELIABILITY_BINS];
    uint64_t neg = e->n - e->positives, neg_below = 0;
    double pairs = 0, base;
    size_t i = 0;

    memset(out, 0, sizeof(*out));
    memset(bin_p, 0, sizeof(bin_p));
    memset(bin_y, 0, sizeof(bin_y));
    out->count = e->n;
    out->positives = e->positives;
    out->logloss = e->n > 0 ? ctr_sum_get(&e->ll) / (double)e->n : NAN;
    base = e->n > 0 ? (double)e->positives / (double)e->n : NAN;
    if (e->positives > 0 && neg > 0)
        out->ne = out->logloss / -(base * log(base) + (1 - base) * log1p(-base));
    else
        out->ne = NAN;
    out->calibration = e->positives > 0 ? ctr_sum_get(&e->p) / (double)e->positives : NAN;

    if (e->n > 1)
        qsort(e->v, e->n, sizeof(*e->v), ctr_pair_cmp);
    while (i < e->n) {
        uint64_t gpos = 0, gneg = 0;
        double p = e->v[i].p;
        for (; i < e->n && e->v[i].p == p; i++) {
            unsigned b = ctr_bin_of(p);
            gpos += e->v[i].y;
            gneg += !e->v[i].y;
            ctr_sum_add(&bin_p[b], p);
            bin_y[b] += e->v[i].y;
            out->bins[b].count++;
        }
        pairs += (double)gpos * ((double)neg_below + 0.5 * (double)gneg);
        neg_below += gneg;
    }
    out->auc = e->positives > 0 && neg > 0 ? pairs / ((double)e->positives * (double)neg) : NAN;

    for (unsigned b = 0; b < CTR_RELIABILITY_BINS; b++) {
        struct ctr_bin *bin = &out->bins[b];
        bin->lo = (double)b / CTR_RELIABILITY_BINS;
        bin->hi = (double)(b + 1) / CTR_RELIABILITY_BINS;
        bin->mean_p = bin->count > 0 ? ctr_sum_get(&bin_p[b]) / (double)bin->count : NAN;
        bin->rate = bin->count > 0 ? (double)bin_y[b] / (double)bin->count : NAN;
    }
    return 0;
}

void ctr_eval_free(struct ctr_eval *e)
{
    if (e == NULL)
        return;
    free(e->v);
    free(e);
}
