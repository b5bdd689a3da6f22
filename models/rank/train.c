/*
 * The trainer: logistic regression by FTRL-Proximal (McMahan et al., 2013),
 * optionally with factorization-machine pairs (Rendle, 2010) trained by
 * AdaGrad, over the hashed features of rank__emit().
 *
 * Rows are featurized once, at add, and kept as bucket lists. fit() picks the
 * regularisation and the number of passes on a validation split made of the
 * last rows (the data is in time order, so this measures what serving sees:
 * a model scoring traffic newer than its training data), fits Platt scaling
 * on that split, then trains the final model on every row with the chosen
 * settings. Everything runs on one thread from a seeded generator, so the
 * same rows and seed give a byte-identical file.
 *
 * With cross-validation the final model is the mean of the fold models (3
 * bags of each by default); rare tokens (opts.min_count) are counted per
 * fold during the search and over every row for the final model.
 * models/README.md has the measurements behind each choice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rank_int.h"

#define EPOCHS_MAX 50
#define CV_FOLDS 5
#define CV_MAX_ROWS 200000
#define FOLDS_MAX 8
#define BAGS_MAX 4
#define BAGS_DEFAULT 3
#define PATIENCE 3
#define FTRL_BETA 1.0

struct params {
    double alpha, l1, l2, l2v;
    double l2b; /* numeric bins' L2 (they are few and each in many rows); < 0: as the tokens' */
};

/* Regularisation of the dense features (a field's "present" and continuous
 * weights): seen in nearly every row, they need almost none, whereas the
 * token weights need a lot; one l2 for both either starves the first or lets
 * the second overfit. */
#define L2_DENSE 1.0

struct rank_trainer {
    struct rank_cfg cfg;
    uint64_t seed, rng;
    double neg_rate, valid_frac;
    uint32_t epochs, folds;
    bool tune, refit;
    uint32_t min_count; /* 0: chosen by the validation */
    uint32_t bags;      /* models per fold in cross-validation (0: BAGS_DEFAULT) */
    float fl2[CTR_MAX_FIELDS]; /* per field: a factor on the tokens' L2 (0: 1) */
    float *bl2;                /* per bucket: that factor (NULL: all 1) */
    uint64_t *freq;     /* the final model's bitmap of frequent buckets (min_count > 1) */
    struct params fixed;
    char source[64];
    int64_t trained_at;

    /* rows, featurized */
    size_t nrows, caprows;
    size_t *off; /* nrows + 1 entries */
    float *label;
    uint32_t *fidx;
    float *fval;
    uint16_t *ftag; /* per feature: 1 + the field of a categorical token's own weight, 0 for any other */
    size_t nfeat, capfeat;
    bool oom;
    uint64_t first_line, last_line, positives;

    struct rank_image_meta meta; /* golden rows collected at add */

    unsigned char *image;
    size_t image_size;
};

/* ---- the random generator: splitmix-style, own constants ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    return rank__mix(*s);
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- options ---- */

int rank_trainer_new(const struct ctr_schema *schema, const struct rank_train_opts *opts,
                     struct rank_trainer **ret, struct ads_diag *diag)
{
    struct rank_train_opts o = {0};
    struct rank_trainer *t;
    int rc;

    if (opts != NULL)
        o = *opts;
    if (schema == NULL || schema->nfields == 0 || schema->nfields > CTR_MAX_FIELDS)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "the schema has no fields (or more than %d)", CTR_MAX_FIELDS);
    if (o.neg_rate == 0)
        o.neg_rate = 1;
    if (!(o.neg_rate > 0 && o.neg_rate <= 1))
        return ads_diag_set(diag, ADS_EINVAL, NULL, "neg_rate must be in (0, 1], got %g", o.neg_rate);
    if (o.epochs > 1000)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "epochs must be at most 1000, got %u", o.epochs);
    if (o.bits == 0)
        o.bits = 18;
    if (o.bits < 10 || o.bits > 24)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "bits must be in 10..24, got %u", o.bits);
    if (o.folds > FOLDS_MAX)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "folds must be at most %d, got %u", FOLDS_MAX, o.folds);
    if (o.valid_frac == 0)
        o.valid_frac = 0.2;
    if (!(o.valid_frac > 0 && o.valid_frac <= 0.5))
        return ads_diag_set(diag, ADS_EINVAL, NULL, "valid_frac must be in (0, 0.5], got %g", o.valid_frac);
    if (!(o.l1 >= 0 && o.l2 >= 0 && o.alpha >= 0) || !isfinite(o.l1 + o.l2 + o.alpha))
        return ads_diag_set(diag, ADS_EINVAL, NULL, "l1, l2 and alpha must be finite and not negative");
    if (o.min_count > 1000)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "min_count must be at most 1000, got %u", o.min_count);
    if (o.l1 + o.l2 + o.alpha > 0 && o.alpha == 0)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "alpha (the learning rate) must be positive when l1/l2 are given");

    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory");
    t->cfg.seed = o.seed;
    t->cfg.bits = o.bits;
    t->cfg.numbins = RANK_NUM_DEFAULT;
    if (o.family == NULL || strcmp(o.family, "lr") == 0) {
        t->cfg.type = RANK_TYPE_LR;
        t->cfg.k = 0;
    } else if (strcmp(o.family, "fm") == 0) {
        t->cfg.type = RANK_TYPE_FM;
        t->cfg.k = o.fm_k != 0 ? o.fm_k : 4;
        if (t->cfg.k > RANK_FM_K_MAX) {
            free(t);
            return ads_diag_set(diag, ADS_EINVAL, NULL, "fm_k must be in 1..%d, got %u", RANK_FM_K_MAX, o.fm_k);
        }
    } else {
        free(t);
        return ads_diag_set(diag, ADS_EINVAL, NULL, "unknown model family \"%s\" (known: lr, fm)", o.family);
    }
    snprintf(t->cfg.schema, sizeof(t->cfg.schema), "%.*s", CTR_NAME_MAX - 1, schema->id);
    t->cfg.nfields = schema->nfields;
    for (uint32_t f = 0; f < schema->nfields; f++) {
        snprintf(t->cfg.fields[f].name, CTR_NAME_MAX, "%.*s", CTR_NAME_MAX - 1, schema->fields[f].name);
        t->cfg.fields[f].kind = schema->fields[f].kind;
        if (t->cfg.fields[f].name[0] == '\0') {
            free(t);
            return ads_diag_set(diag, ADS_EINVAL, NULL, "field %u of the schema has no name", f);
        }
    }
    rc = rank__cfg_crosses(&t->cfg, o.crosses, diag);
    if (rc < 0) {
        free(t);
        return rc;
    }
    rank__cfg_derive(&t->cfg);
    t->seed = o.seed;
    t->rng = o.seed ^ 0x5eed5eed5eed5eedull;
    t->neg_rate = o.neg_rate;
    t->valid_frac = o.valid_frac;
    t->epochs = o.epochs;
    t->folds = o.folds;
    t->refit = true;
    t->min_count = o.min_count;
    t->tune = o.l1 == 0 && o.l2 == 0 && o.alpha == 0;
    t->fixed = (struct params){.alpha = o.alpha, .l1 = o.l1, .l2 = o.l2, .l2v = 0.01, .l2b = -1};
    snprintf(t->source, sizeof(t->source), "%s", o.source != NULL ? o.source : "");
    t->trained_at = o.trained_at;
    t->off = malloc(sizeof(*t->off));
    if (t->off == NULL) {
        free(t);
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory");
    }
    t->off[0] = 0;
    *ret = t;
    return 0;
}

int rank__trainer_tweak_field(struct rank_trainer *t, uint32_t f, double l2_factor)
{
    if (f >= t->cfg.nfields || !(l2_factor > 0))
        return ADS_EINVAL;
    t->fl2[f] = (float)l2_factor;
    return 0;
}

void rank__trainer_tweak_bins(struct rank_trainer *t, double l2b, uint32_t bags)
{
    t->fixed.l2b = l2b;
    t->bags = bags <= BAGS_MAX ? bags : BAGS_MAX;
}

void rank__trainer_tweak(struct rank_trainer *t, uint32_t numbins, bool refit)
{
    t->cfg.numbins = numbins;
    t->refit = refit;
}

/* ---- rows ---- */

static void add_sink(void *ctx, uint32_t idx, float x)
{
    struct rank_trainer *t = ctx;

    if (t->oom)
        return;
    if (t->nfeat == t->capfeat) {
        size_t cap = t->capfeat != 0 ? t->capfeat * 2 : 4096;
        uint32_t *fi = realloc(t->fidx, cap * sizeof(*fi));
        if (fi == NULL) {
            t->oom = true;
            return;
        }
        t->fidx = fi;
        float *fv = realloc(t->fval, cap * sizeof(*fv));
        if (fv == NULL) {
            t->oom = true;
            return;
        }
        t->fval = fv;
        uint16_t *ft = realloc(t->ftag, cap * sizeof(*ft));
        if (ft == NULL) {
            t->oom = true;
            return;
        }
        t->ftag = ft;
        t->capfeat = cap;
    }
    t->fidx[t->nfeat] = idx;
    t->fval[t->nfeat] = x;
    t->ftag[t->nfeat] = 0;
    t->nfeat++;
}

int rank_trainer_add(struct rank_trainer *t, const struct ctr_row *row)
{
    if (t->image != NULL)
        return ADS_EINVAL;
    if (row->label != 0 && row->label != 1)
        return ADS_EINVAL;
    if (row->n > CTR_MAX_VALUES)
        return ADS_EINVAL;
    for (uint32_t i = 0; i < row->n; i++)
        if (row->v[i].field >= t->cfg.nfields)
            return ADS_EINVAL;
    /* Downsampling draws for every negative, kept or not, so the rows kept
     * depend only on the seed and the input. */
    if (row->label == 0 && t->neg_rate < 1 && rng_unit(&t->rng) >= t->neg_rate)
        return 0;
    if (t->nrows + 1 >= t->caprows) {
        size_t cap = t->caprows != 0 ? t->caprows * 2 : 1024;
        size_t *off = realloc(t->off, (cap + 1) * sizeof(*off));
        if (off == NULL)
            return ADS_ENOMEM;
        t->off = off;
        float *lab = realloc(t->label, cap * sizeof(*lab));
        if (lab == NULL)
            return ADS_ENOMEM;
        t->label = lab;
        t->caprows = cap;
    }
    size_t before = t->nfeat;
    rank__emit(&t->cfg, NULL, 0, NULL, NULL, row->v, row->n, add_sink, t);
    if (t->oom) {
        t->oom = false;
        t->nfeat = before;
        return ADS_ENOMEM;
    }
    /* Tags the token weights (the second feature of a categorical value, in
     * rank__emit's order) so that fit() can send rare ones to their field's
     * rare weight; the trainer's configuration has no bitmap yet. */
    size_t pos = before;
    for (uint32_t i = 0; i < row->n; i++) {
        uint32_t idx[RANK_VAL_FEATS];
        float x[RANK_VAL_FEATS];
        if (!rank__valid(&t->cfg, &row->v[i]))
            continue;
        uint32_t k = rank__val_feats(&t->cfg, &row->v[i], idx, x);
        if (row->v[i].kind == CTR_CAT && k == 2 && pos + 1 < t->nfeat && t->fidx[pos + 1] == idx[1])
            t->ftag[pos + 1] = (uint16_t)(1 + row->v[i].field);
        pos += k;
    }
    t->label[t->nrows] = row->label;
    t->nrows++;
    t->off[t->nrows] = t->nfeat;
    if (t->nrows == 1)
        t->first_line = row->line;
    t->last_line = row->line;
    t->positives += row->label == 1;
    if (t->meta.ngolden < RANK_GOLDEN_MAX) {
        uint32_t g = t->meta.ngolden++, n = row->n < RANK_GOLDEN_VALUES ? row->n : RANK_GOLDEN_VALUES;
        memcpy(t->meta.golden[g], row->v, (size_t)n * sizeof(row->v[0]));
        t->meta.golden_n[g] = n;
    }
    return 0;
}

/* ---- one learner: FTRL-Proximal weights, AdaGrad factors ---- */

struct learner {
    const struct rank_cfg *c;
    const uint32_t *fidx; /* the rows' buckets, rare tokens already sent to their field's rare weight */
    const float *bl2;     /* per bucket: a factor on the tokens' L2 (NULL: 1) */
    size_t nb; /* buckets; the bias is coordinate nb */
    struct params p;
    double *zs, *ns; /* FTRL state, nb + 1 */
    uint8_t *dense;  /* nb + 1: 1 for the bias, "present" and continuous buckets */
    float *v, *vg;   /* FM factors and their squared-gradient sums, nb * k */
};

static void learner_free(struct learner *l)
{
    free(l->zs);
    free(l->ns);
    free(l->dense);
    free(l->v);
    free(l->vg);
}

static int learner_init(struct learner *l, const struct rank_cfg *c, const struct params *p, uint64_t seed)
{
    memset(l, 0, sizeof(*l));
    l->c = c;
    l->nb = (size_t)1 << c->bits;
    l->p = *p;
    l->zs = calloc(l->nb + 1, sizeof(double));
    l->ns = calloc(l->nb + 1, sizeof(double));
    l->dense = calloc(l->nb + 1, 1);
    if (l->zs == NULL || l->ns == NULL || l->dense == NULL) {
        learner_free(l);
        return ADS_ENOMEM;
    }
    l->dense[l->nb] = 2;
    for (uint32_t f = 0; f < c->nfields; f++) {
        l->dense[c->present[f]] = 1;
        if (c->fields[f].kind == CTR_NUM && (c->numbins & RANK_NUM_CONT))
            l->dense[c->cont[f]] = 1;
        if (c->fields[f].kind == CTR_NUM && (c->numbins & RANK_NUM_QUAD))
            l->dense[rank__quad_bucket(c, f)] = 1;
        if (c->fields[f].kind == CTR_NUM && (c->numbins & RANK_NUM_PROD))
            for (uint32_t g = f + 1; g < c->nfields; g++)
                if (c->fields[g].kind == CTR_NUM)
                    l->dense[rank__prod_bucket(c, f, g)] = 1;
        if (c->fields[f].kind == CTR_CAT && c->min_count > 1)
            l->dense[c->cont[f]] = 1; /* the field's rare weight */
        if (c->fields[f].kind == CTR_NUM && p->l2b >= 0) {
            /* The buckets of the field's numeric bins (rank__val_feats): their own L2. */
            for (int64_t v = -128; v <= 128; v++) {
                double x0 = v < 0 ? -exp2((double)-v / 4) : exp2((double)v / 4) - 1;
                struct ctr_value nv = {.field = f, .kind = CTR_NUM, .x = x0};
                uint32_t idx[RANK_VAL_FEATS];
                float x[RANK_VAL_FEATS];
                uint32_t k = rank__val_feats(c, &nv, idx, x);
                for (uint32_t q = 0; q < k; q++)
                    if (l->dense[idx[q]] == 0 && x[q] == 1.0f)
                        l->dense[idx[q]] = 3;
            }
        }
    }
    if (c->k > 0) {
        size_t nv = l->nb * c->k;
        l->v = malloc(nv * sizeof(float));
        l->vg = malloc(nv * sizeof(float));
        if (l->v == NULL || l->vg == NULL) {
            learner_free(l);
            return ADS_ENOMEM;
        }
        uint64_t s = seed ^ 0xfac7045ull;
        for (size_t i = 0; i < nv; i++) {
            l->v[i] = (float)((rng_unit(&s) - 0.5) * 0.02);
            l->vg[i] = 1.0f;
        }
    }
    return 0;
}

static double ftrl_w(const struct learner *l, size_t i)
{
    double z = l->zs[i], l1 = l->p.l1, l2 = l->p.l2;

    if (l->dense[i] != 0) {
        l1 = 0;
        l2 = l->dense[i] == 2 ? 0 : l->dense[i] == 3 ? l->p.l2b : L2_DENSE;
    } else if (l->bl2 != NULL) {
        l2 *= l->bl2[i];
    }
    if (fabs(z) <= l1)
        return 0;
    return -(z - (z > 0 ? l1 : -l1)) / ((FTRL_BETA + sqrt(l->ns[i])) / l->p.alpha + l2);
}

static void ftrl_update(struct learner *l, size_t i, double g, double w)
{
    double n = l->ns[i], sigma = (sqrt(n + g * g) - sqrt(n)) / l->p.alpha;

    l->zs[i] += g - sigma * w;
    l->ns[i] = n + g * g;
}

/* Raw score of row r; with @p w (may be NULL) filled with the row's weights. */
static double learner_score(const struct learner *l, const struct rank_trainer *t, size_t r, double *w,
                            double *s)
{
    const struct rank_cfg *c = l->c;
    double z = ftrl_w(l, l->nb), q = 0;

    for (uint32_t f = 0; f < c->k; f++)
        s[f] = 0;
    for (size_t j = t->off[r]; j < t->off[r + 1]; j++) {
        size_t i = l->fidx[j];
        double x = t->fval[j], wi = ftrl_w(l, i);
        if (w != NULL)
            w[j - t->off[r]] = wi;
        z += wi * x;
        for (uint32_t f = 0; f < c->k; f++) {
            double vx = (double)l->v[i * c->k + f] * x;
            s[f] += vx;
            q += vx * vx;
        }
    }
    if (c->k > 0) {
        double sq = 0;
        for (uint32_t f = 0; f < c->k; f++)
            sq += s[f] * s[f];
        z += 0.5 * (sq - q);
    }
    return z;
}

static void learner_step(struct learner *l, const struct rank_trainer *t, size_t r, double *w)
{
    const struct rank_cfg *c = l->c;
    double s[RANK_FM_K_MAX];
    double z = learner_score(l, t, r, w, s);
    double g = rank__sigmoid(z) - t->label[r];

    ftrl_update(l, l->nb, g, ftrl_w(l, l->nb));
    for (size_t j = t->off[r]; j < t->off[r + 1]; j++) {
        size_t i = l->fidx[j];
        double x = t->fval[j];
        ftrl_update(l, i, g * x, w[j - t->off[r]]);
        for (uint32_t f = 0; f < c->k; f++) {
            float *v = &l->v[i * c->k + f];
            double gv = g * x * (s[f] - *v * x) + l->p.l2v * *v;
            l->vg[i * c->k + f] += (float)(gv * gv);
            *v -= (float)(l->p.alpha * gv / sqrt(l->vg[i * c->k + f]));
        }
    }
}

static void learner_epoch(struct learner *l, const struct rank_trainer *t, size_t *order, size_t n, uint64_t *rng,
                          double *w)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng_next(rng) % i);
        size_t tmp = order[i - 1];
        order[i - 1] = order[j];
        order[j] = tmp;
    }
    for (size_t i = 0; i < n; i++)
        learner_step(l, t, order[i], w);
}

/* ---- metrics ---- */

struct scored {
    double s; /* raw score, downsampling corrected */
    double y, wt;
};

static double logloss_of(const struct scored *v, size_t n, double a, double b)
{
    double sum = 0, wsum = 0;

    for (size_t i = 0; i < n; i++) {
        double z = a * v[i].s + b;
        /* log(1 + e^-|z|) form: exact for large |z| */
        double l = (z > 0 ? 0 : -z) + log1p(exp(-fabs(z)));
        if (v[i].y == 0)
            l += z;
        sum += v[i].wt * l;
        wsum += v[i].wt;
    }
    return sum / wsum;
}

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const struct scored *)a)->s, y = ((const struct scored *)b)->s;
    return (x > y) - (x < y);
}

/* Weighted ROC AUC, ties counted half. Sorts @p v. */
static double auc_of(struct scored *v, size_t n)
{
    double pos = 0, neg = 0, area = 0;

    qsort(v, n, sizeof(*v), cmp_scored);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double gp = 0, gn = 0;
        while (j < n && v[j].s == v[i].s) {
            if (v[j].y == 1)
                gp += v[j].wt;
            else
                gn += v[j].wt;
            j++;
        }
        area += gp * (neg + 0.5 * gn);
        pos += gp;
        neg += gn;
        i = j;
    }
    return pos > 0 && neg > 0 ? area / (pos * neg) : 0.5;
}

/* Platt scaling: a and b minimising the weighted log loss of sigmoid(a*s + b), by Newton's method, with a
 * weak pull towards (1, 0) so that a tiny split cannot push them anywhere. */
static void platt_fit(const struct scored *v, size_t n, double *ret_a, double *ret_b)
{
    double a = 1, b = 0, wsum = 0;

    for (size_t i = 0; i < n; i++)
        wsum += v[i].wt;
    double lambda = 1e-3 * wsum;
    for (int it = 0; it < 100; it++) {
        double ga = lambda * (a - 1), gb = lambda * b, haa = lambda, hab = 0, hbb = lambda;
        for (size_t i = 0; i < n; i++) {
            double p = rank__sigmoid(a * v[i].s + b), d = v[i].wt * (p - v[i].y), h = v[i].wt * p * (1 - p);
            ga += d * v[i].s;
            gb += d;
            haa += h * v[i].s * v[i].s;
            hab += h * v[i].s;
            hbb += h;
        }
        double det = haa * hbb - hab * hab;
        if (!(det > 0))
            break;
        double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if (fabs(da) + fabs(db) < 1e-12)
            break;
    }
    if (!(isfinite(a) && isfinite(b) && a > 0)) {
        a = 1;
        b = 0;
    }
    *ret_a = a;
    *ret_b = b;
}

/* ---- fit ---- */

/* The validation design. With few rows (up to CV_MAX_ROWS) the rows are cut
 * into CV_FOLDS contiguous blocks and each block is scored by a model trained
 * on the others: every row is validated once, which is what makes the choice
 * of settings trustworthy on a few thousand rows (a single 20% split of 3,000
 * rows moves AUC by +-0.02 from noise alone). With more rows the last
 * valid_frac of them (the newest) are the validation split. */

struct fit_ctx {
    struct rank_trainer *t;
    uint32_t nfolds;
    size_t v0[FOLDS_MAX], v1[FOLDS_MAX]; /* fold j validates rows [v0, v1) */
    size_t ntrain[FOLDS_MAX];
    size_t *order[FOLDS_MAX]; /* fold j's training rows */
    uint32_t bags; /* models per fold, 1..BAGS_MAX */
    const uint32_t *map[FOLDS_MAX]; /* fold j's buckets (rare tokens remapped with its own counts) */
    uint32_t *mapbuf[FOLDS_MAX];
    double *w;                /* per-row weight scratch */
    struct scored *sc;        /* out-of-fold scores, in row order from v0[0] */
    size_t nsc;
    double offset; /* log(neg_rate) */
};

/* Scores rows [a, b) with the mean raw score of @p nl learners (a fold's bags). */
static void score_rows(struct fit_ctx *x, const struct learner *l, uint32_t nl, size_t a, size_t b,
                       struct scored *out)
{
    double s[RANK_FM_K_MAX];

    for (size_t r = a; r < b; r++) {
        double z = 0;
        for (uint32_t k = 0; k < nl; k++)
            z += learner_score(&l[k], x->t, r, NULL, s);
        out[r - a].s = z / nl + x->offset;
        out[r - a].y = x->t->label[r];
        out[r - a].wt = x->t->label[r] == 1 ? 1 : 1 / x->t->neg_rate;
    }
}

struct run {
    double loss;
    uint32_t epochs;
};

/*
 * Trains every fold's model with settings @p p, in lockstep, for @p epochs
 * passes (0: until the out-of-fold log loss has not improved for PATIENCE
 * passes). Leaves the out-of-fold scores of the best pass in @p keep (may be NULL).
 */
static int run_cv(struct fit_ctx *x, const struct params *p, uint32_t epochs, struct scored *keep, struct run *ret,
                  float *avg, double *avg_bias)
{
    struct learner l[FOLDS_MAX * BAGS_MAX];
    uint64_t rng[FOLDS_MAX * BAGS_MAX];
    uint32_t best_e = 0, max_e = epochs != 0 ? epochs : EPOCHS_MAX, nb = x->bags, nl = x->nfolds * nb;
    double best = INFINITY;
    int rc = 0;

    /* Learner j * nb + b is bag b of fold j: the same rows in another order
     * (and other FM starting factors). */
    for (uint32_t k = 0; k < nl; k++) {
        uint32_t j = k / nb, b = k % nb;
        rc = learner_init(&l[k], &x->t->cfg, p, x->t->seed + j + 1000 * b);
        if (rc < 0) {
            while (k-- > 0)
                learner_free(&l[k]);
            return rc;
        }
        l[k].fidx = x->map[j];
        l[k].bl2 = x->t->bl2;
        rng[k] = x->t->seed ^ (0x0dde7ull + j) ^ (b * 0x9e3779b97f4a7c15ull);
    }
    for (uint32_t j = 0; j < x->nfolds; j++) {
        size_t n = 0;
        for (size_t r = 0; r < x->v0[j]; r++)
            x->order[j][n++] = r;
        for (size_t r = x->v1[j]; r < x->v1[x->nfolds - 1] && x->nfolds > 1; r++)
            x->order[j][n++] = r;
        x->ntrain[j] = n;
    }
    for (uint32_t e = 1; e <= max_e; e++) {
        for (uint32_t j = 0; j < x->nfolds; j++) {
            for (uint32_t b = 0; b < nb; b++)
                learner_epoch(&l[j * nb + b], x->t, x->order[j], x->ntrain[j], &rng[j * nb + b], x->w);
            score_rows(x, &l[j * nb], nb, x->v0[j], x->v1[j], x->sc + (x->v0[j] - x->v0[0]));
        }
        double loss = logloss_of(x->sc, x->nsc, 1, 0);
        if (epochs != 0 ? e == epochs : loss < best - 1e-7) {
            best = loss;
            best_e = e;
            if (keep != NULL)
                memcpy(keep, x->sc, x->nsc * sizeof(*keep));
        } else if (epochs == 0 && e >= best_e + PATIENCE) {
            break;
        }
    }
    if (avg != NULL) {
        /* The final model of cross-validation: the mean of the fold models
         * (for LR exactly the mean of their scores), i.e. the models whose
         * out-of-fold scores the calibration was fitted on. */
        const struct rank_cfg *c = &x->t->cfg;
        size_t nbk = (size_t)1 << c->bits;
        double inv = 1.0 / nl;
        *avg_bias = 0;
        for (uint32_t j = 0; j < nl; j++) {
            *avg_bias += inv * ftrl_w(&l[j], nbk);
            for (size_t i = 0; i < nbk; i++) {
                avg[i * c->stride] += (float)(inv * ftrl_w(&l[j], i));
                for (uint32_t f = 0; f < c->k; f++)
                    avg[i * c->stride + 1 + f] += (float)(inv * l[j].v[i * c->k + f]);
            }
        }
    }
    for (uint32_t j = 0; j < nl; j++)
        learner_free(&l[j]);
    ret->loss = best;
    ret->epochs = best_e;
    return 0;
}

/*
 * Rare tokens. Counts how often each token bucket occurs in the rows outside
 * [a, b) (a fold's training rows: the rows it validates are not counted, as
 * serving traffic is not) and writes to @p out every row's buckets with the
 * tokens seen fewer than @p min times sent to their field's rare weight.
 * @p bits (may be NULL) gets the bitmap of frequent buckets for the file.
 */
static int remap(const struct rank_trainer *t, uint32_t min, size_t a, size_t b, uint32_t *out, uint64_t *bits)
{
    size_t nb = (size_t)1 << t->cfg.bits;
    uint16_t *cnt = calloc(nb, sizeof(*cnt));

    if (cnt == NULL)
        return ADS_ENOMEM;
    for (size_t r = 0; r < t->nrows; r++) {
        if (r >= a && r < b)
            continue;
        for (size_t j = t->off[r]; j < t->off[r + 1]; j++)
            if (t->ftag[j] != 0 && cnt[t->fidx[j]] < min)
                cnt[t->fidx[j]]++;
    }
    for (size_t j = 0; j < t->nfeat; j++)
        out[j] = t->ftag[j] != 0 && cnt[t->fidx[j]] < min ? t->cfg.cont[t->ftag[j] - 1] : t->fidx[j];
    if (bits != NULL) {
        memset(bits, 0, nb / 8);
        for (size_t i = 0; i < nb; i++)
            if (cnt[i] >= min)
                bits[i >> 6] |= 1ull << (i & 63);
    }
    free(cnt);
    return 0;
}

/* Sets the folds' bucket maps for threshold @p min (1: the buckets as added). */
static int set_maps(struct fit_ctx *x, uint32_t min)
{
    struct rank_trainer *t = x->t;

    t->cfg.min_count = min > 1 ? min : 0;
    for (uint32_t j = 0; j < x->nfolds; j++) {
        x->map[j] = t->fidx;
        if (min <= 1)
            continue;
        if (x->mapbuf[j] == NULL && (x->mapbuf[j] = malloc((t->nfeat + 1) * sizeof(uint32_t))) == NULL)
            return ADS_ENOMEM;
        int rc = remap(t, min, x->v0[j], x->v1[j], x->mapbuf[j], NULL);
        if (rc < 0)
            return rc;
        x->map[j] = x->mapbuf[j];
    }
    return 0;
}

static size_t grid(const struct rank_trainer *t, struct params *g, size_t max)
{
    static const double alphas[] = {0.05, 0.1, 0.2};
    static const double l1s[] = {0, 1, 4};
    static const double l2s[] = {10, 30, 100, 300, 1000};
    static const double l2vs[] = {0.003, 0.03};
    size_t n = 0;

    if (!t->tune) {
        g[0] = t->fixed;
        if (t->cfg.k == 0)
            return 1;
        g[1] = t->fixed;
        g[1].l2v = 0.1;
        return 2;
    }
    for (size_t a = 0; a < sizeof(alphas) / sizeof(alphas[0]); a++)
        for (size_t b = 0; b < sizeof(l1s) / sizeof(l1s[0]); b++)
            for (size_t c = 0; c < sizeof(l2s) / sizeof(l2s[0]); c++)
                for (size_t d = 0; d < (t->cfg.k > 0 ? sizeof(l2vs) / sizeof(l2vs[0]) : 1); d++)
                    if (n < max)
                        g[n++] = (struct params){alphas[a], l1s[b], l2s[c], l2vs[d], t->fixed.l2b};
    return n;
}

int rank_trainer_fit(struct rank_trainer *t, void (*progress)(void *ctx, double frac), void *ctx,
                     struct ads_diag *diag)
{
    struct fit_ctx x = {.t = t, .offset = log(t->neg_rate), .bags = 1};
    struct params g[128];
    size_t ng = grid(t, g, sizeof(g) / sizeof(g[0])), best = 0;
    struct run runs[128], best_run = {INFINITY, 0};
    static const uint32_t mins_tuned[] = {1, 2, 3, 5};
    uint32_t nmin = t->min_count == 0 ? sizeof(mins_tuned) / sizeof(mins_tuned[0]) : 1, best_min = 1;
    struct scored *keep = NULL, *cand = NULL;
    struct learner l;
    int rc = 0;

    if (t->image != NULL)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "this trainer was already fitted");
    if (t->nrows < 10)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "too few rows to train on: %zu (at least 10)", t->nrows);
    if (t->folds > 1 || (t->folds == 0 && t->nrows <= CV_MAX_ROWS)) {
        x.nfolds = t->folds > 1 ? t->folds : CV_FOLDS;
        for (uint32_t j = 0; j < x.nfolds; j++) {
            x.v0[j] = t->nrows * j / x.nfolds;
            x.v1[j] = t->nrows * (j + 1) / x.nfolds;
        }
    } else {
        size_t nv = (size_t)((double)t->nrows * t->valid_frac + 0.5);
        x.nfolds = 1;
        x.v0[0] = t->nrows - (nv < 1 ? 1 : nv);
        x.v1[0] = t->nrows;
    }
    x.nsc = x.v1[x.nfolds - 1] - x.v0[0];
    size_t pv = 0, pt = t->positives;
    for (size_t r = x.v0[0]; r < t->nrows; r++)
        pv += t->label[r] == 1;
    if (pv == 0 || pv == x.nsc || pt == 0 || pt == t->nrows || (x.nfolds == 1 && (pt == pv || pt - pv == x.v0[0])))
        return ads_diag_set(diag, ADS_EINVAL, NULL,
                            "both the training rows and the validation rows need clicks and non-clicks (%zu rows, "
                            "%zu clicks; %zu validation rows, %zu clicks)",
                            t->nrows, (size_t)pt, x.nsc, pv);
    size_t maxrow = 0;
    for (size_t r = 0; r < t->nrows; r++)
        if (t->off[r + 1] - t->off[r] > maxrow)
            maxrow = t->off[r + 1] - t->off[r];
    x.w = malloc((maxrow + 1) * sizeof(*x.w));
    x.sc = malloc(x.nsc * sizeof(*x.sc));
    keep = malloc(x.nsc * sizeof(*keep));
    cand = malloc(x.nsc * sizeof(*cand));
    bool ok = x.w != NULL && x.sc != NULL && keep != NULL && cand != NULL;
    for (uint32_t j = 0; j < x.nfolds; j++)
        ok = ok && (x.order[j] = malloc(t->nrows * sizeof(size_t))) != NULL;
    if (!ok)
        goto oom;

    bool any_fl2 = false;
    for (uint32_t f = 0; f < t->cfg.nfields; f++)
        any_fl2 = any_fl2 || (t->fl2[f] != 0 && t->fl2[f] != 1);
    if (any_fl2) {
        if ((t->bl2 = malloc(((size_t)1 << t->cfg.bits) * sizeof(float))) == NULL)
            goto oom;
        for (size_t i = 0; i < (size_t)1 << t->cfg.bits; i++)
            t->bl2[i] = 1;
        for (size_t j = 0; j < t->nfeat; j++)
            if (t->ftag[j] != 0 && t->fl2[t->ftag[j] - 1] != 0)
                t->bl2[t->fidx[j]] = t->fl2[t->ftag[j] - 1];
    }
    /* 1. every setting, scored out of fold; the best one's scores kept for
     * calibration. The rare-token threshold is searched second, at the best
     * setting of the first threshold (every token its own weight, or the
     * one asked for): a grid over both would take nmin times as long. */
    for (uint32_t mi = 0; mi < nmin; mi++) {
        uint32_t min = t->min_count != 0 ? t->min_count : mins_tuned[mi];
        if (set_maps(&x, min) < 0)
            goto oom;
        for (size_t i = mi == 0 ? 0 : best; i < (mi == 0 ? ng : best + 1); i++) {
            rc = run_cv(&x, &g[i], t->epochs, cand, &runs[i], NULL, NULL);
            if (rc < 0)
                goto oom;
            if (runs[i].loss < best_run.loss) {
                struct scored *tmp = keep;
                best = i;
                best_min = min;
                best_run = runs[i];
                keep = cand;
                cand = tmp;
            }
            if (progress != NULL)
                progress(ctx, 0.9 * (double)(mi == 0 ? i + 1 : ng + mi) / (double)(ng + nmin - 1));
        }
    }
    if (!isfinite(best_run.loss)) {
        rc = ads_diag_set(diag, ADS_EINVAL, NULL,
                          "training diverged (the validation loss is not a number): check the input's values");
        goto out;
    }
    /* Bagging (cross-validation only): the chosen setting again with several
     * models per fold (other row orders), scored by their mean. Measured on
     * Criteo: the out-of-fold log loss no longer depends on the seed (0.4477
     * for seeds 1-3, against 0.4477-0.4490 with one model per fold). The
     * passes are chosen again: a mean of models may want a few more. */
    if (x.nfolds > 1 && (t->bags != 1)) {
        x.bags = t->bags != 0 ? t->bags : BAGS_DEFAULT;
        if (set_maps(&x, best_min) < 0)
            goto oom;
        rc = run_cv(&x, &g[best], t->epochs, keep, &best_run, NULL, NULL);
        if (rc < 0)
            goto oom;
    }

    /* 2. calibration and the metrics snapshot, from the out-of-fold scores */
    double a, b;
    platt_fit(keep, x.nsc, &a, &b);
    struct rank_image_meta *mt = &t->meta;
    mt->valid_logloss = logloss_of(keep, x.nsc, a, b);
    double sp = 0, sy = 0;
    for (size_t i = 0; i < x.nsc; i++) {
        sp += keep[i].wt * rank__sigmoid(a * keep[i].s + b);
        sy += keep[i].wt * keep[i].y;
    }
    mt->valid_cal = sp / sy;
    mt->valid_auc = auc_of(keep, x.nsc);
    mt->valid_rows = x.nsc;
    mt->valid_pos = pv;

    /* 3. the final model. Cross-validation: the mean of the fold models,
     * rerun to the chosen pass (a model refitted on every row would be more
     * confident than the ones calibrated: measured 10% off in sum(p)/sum(y)
     * with downsampling). Holdout: refitted on every row with the chosen
     * settings (large logs: 80% or 100% of the rows make little difference). */
    size_t nb = (size_t)1 << t->cfg.bits, stride = t->cfg.stride;
    size_t nfinal = x.nfolds > 1 || t->refit ? t->nrows : x.v0[0];
    /* The final model's rare tokens: counted over all the rows it trains on. */
    t->cfg.min_count = best_min > 1 ? best_min : 0;
    if (best_min > 1) {
        if ((t->freq = malloc(nb / 8)) == NULL)
            goto oom;
        if (remap(t, best_min, nfinal, t->nrows, x.mapbuf[0], t->freq) < 0)
            goto oom;
        for (uint32_t j = 0; j < x.nfolds; j++)
            x.map[j] = x.mapbuf[0];
    } else {
        for (uint32_t j = 0; j < x.nfolds; j++)
            x.map[j] = t->fidx;
    }
    float *w = calloc(nb * stride, sizeof(float));
    if (w == NULL)
        goto oom;
    if (x.nfolds > 1) {
        struct run again;
        rc = run_cv(&x, &g[best], best_run.epochs, NULL, &again, w, &mt->bias);
        if (rc < 0) {
            free(w);
            goto oom;
        }
    } else {
        rc = learner_init(&l, &t->cfg, &g[best], t->seed);
        if (rc < 0) {
            free(w);
            goto oom;
        }
        l.fidx = x.map[0];
        l.bl2 = t->bl2;
        uint64_t rng = t->seed ^ 0xf1aull;
        for (size_t r = 0; r < nfinal; r++)
            x.order[0][r] = r;
        for (uint32_t e = 0; e < best_run.epochs; e++)
            learner_epoch(&l, t, x.order[0], nfinal, &rng, x.w);
        for (size_t i = 0; i < nb; i++) {
            w[i * stride] = (float)ftrl_w(&l, i);
            for (uint32_t f = 0; f < t->cfg.k; f++)
                w[i * stride + 1 + f] = l.v[i * t->cfg.k + f];
        }
        mt->bias = ftrl_w(&l, l.nb);
        learner_free(&l);
    }
    mt->cal_a = a;
    mt->cal_b = b + a * x.offset;
    mt->neg_rate = t->neg_rate;
    mt->first_line = t->first_line;
    mt->last_line = t->last_line;
    mt->rows = nfinal;
    mt->positives = t->positives;
    mt->trained_at = t->trained_at;
    mt->l1 = g[best].l1;
    mt->l2 = g[best].l2;
    mt->alpha = g[best].alpha;
    mt->epochs = best_run.epochs;
    snprintf(mt->source, sizeof(mt->source), "%s", t->source);
    t->cfg.freq = t->freq;
    rc = rank__image_build(&t->cfg, w, mt, &t->image, &t->image_size, diag);
    free(w);
    if (progress != NULL && rc == 0)
        progress(ctx, 1.0);
    goto out;
oom:
    rc = ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory training (2^%u buckets)", t->cfg.bits);
out:
    for (uint32_t j = 0; j < x.nfolds; j++) {
        free(x.order[j]);
        free(x.mapbuf[j]);
    }
    free(x.w);
    free(x.sc);
    free(keep);
    free(cand);
    return rc;
}

/* ---- output ---- */

int rank__trainer_image(const struct rank_trainer *t, const unsigned char **ret, size_t *ret_size)
{
    if (t->image == NULL)
        return ADS_EINVAL;
    *ret = t->image;
    *ret_size = t->image_size;
    return 0;
}

int rank_trainer_write(const struct rank_trainer *t, const char *path, struct ads_diag *diag)
{
    char tmp[4096];
    FILE *f;

    if (t->image == NULL)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "the model is not trained yet (call rank_trainer_fit first)");
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return ads_diag_set(diag, ADS_EINVAL, NULL, "model path too long");
    f = fopen(tmp, "wbx");
    if (f == NULL && errno == EEXIST && unlink(tmp) == 0)
        f = fopen(tmp, "wbx");
    if (f == NULL) {
        int e = errno;
        return ads_diag_set(diag, -e, NULL, "cannot create %s: %s", tmp, strerror(e));
    }
    if (fwrite(t->image, 1, t->image_size, f) != t->image_size || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        int e = errno != 0 ? errno : EIO;
        fclose(f);
        unlink(tmp);
        return ads_diag_set(diag, -e, NULL, "cannot write %s: %s", tmp, strerror(e));
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ads_diag_set(diag, -e, NULL, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

void rank_trainer_free(struct rank_trainer *t)
{
    if (t == NULL)
        return;
    free(t->off);
    free(t->label);
    free(t->fidx);
    free(t->fval);
    free(t->ftag);
    free(t->bl2);
    free(t->freq);
    free(t->image);
    free(t);
}
