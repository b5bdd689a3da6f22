/*
 * Online FTRL-Proximal over a served LR model (rank_online.h), and the
 * snapshots the learner publishes, written with the trainer's file writer
 * (rank__image_build) so that they pass every check a file passes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/rank_online.h"
#include "rank_int.h"

/* The trainer's FTRL constants (models/rank/train.c): beta, and the L2 of the
 * dense weights (a field's "present" and continuous weights), which get no
 * L1. Kept equal to train.c's so that the online state continues the same
 * objective. */
#define ONLINE_BETA 1.0
#define ONLINE_L2_DENSE 1.0

/* When the model file records no FTRL settings (alpha 0): the middle of the trainer's grid. */
#define ONLINE_DEFAULT_ALPHA 0.1
#define ONLINE_DEFAULT_L2 100.0

/* Features one example may touch; more (only with many crossed values) are ignored. */
#define ONLINE_MAX_FEATS 8192

enum { W_TOKEN = 0, W_DENSE = 1, W_BIAS = 2 };

struct rank_online {
    struct rank_cfg cfg;
    size_t nb;       /* buckets; the bias is coordinate nb */
    double *z, *n;   /* FTRL state, nb + 1 */
    uint8_t *kind;   /* nb + 1: W_TOKEN, W_DENSE or W_BIAS */
    uint64_t *freq;  /* a copy of the base model's rare-token bitmap (cfg.freq points here); NULL: none */
    double alpha, l1, l2;
    double cal_a, cal_b, neg_rate;
    uint64_t examples, base_rows, base_positives, positives;
    uint64_t first_line, last_line;
    char base_version[32];
    uint32_t ngolden;
    uint32_t golden_n[RANK_GOLDEN_MAX];
    struct ctr_value golden[RANK_GOLDEN_MAX][RANK_GOLDEN_VALUES];
    /* scratch of one example */
    uint32_t nf;
    uint32_t fidx[ONLINE_MAX_FEATS];
    float fx[ONLINE_MAX_FEATS];
    double fw[ONLINE_MAX_FEATS];
};

static double online_l1(const struct rank_online *o, size_t i)
{
    return o->kind[i] == W_TOKEN ? o->l1 : 0;
}

static double online_l2(const struct rank_online *o, size_t i)
{
    return o->kind[i] == W_TOKEN ? o->l2 : o->kind[i] == W_DENSE ? ONLINE_L2_DENSE : 0;
}

/* The FTRL-Proximal closed form of weight i from its z and n (as train.c's ftrl_w). */
static double online_w(const struct rank_online *o, size_t i)
{
    double z = o->z[i], l1 = online_l1(o, i);

    if (fabs(z) <= l1)
        return 0;
    return -(z - (z > 0 ? l1 : -l1)) / ((ONLINE_BETA + sqrt(o->n[i])) / o->alpha + online_l2(o, i));
}

int rank_online_new(const struct rank_model *m, struct rank_online **ret, struct ads_diag *diag)
{
    struct rank_online *o;

    if (m->cfg.type != RANK_TYPE_LR)
        return ads_diag_set(diag, ADS_EINVAL, NULL,
                            "online learning needs an LR model; the served model is %s (its factors are not learned "
                            "online)",
                            m->info.type_name);
    if ((o = calloc(1, sizeof(*o))) == NULL)
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory");
    o->cfg = m->cfg;
    o->nb = (size_t)1 << m->cfg.bits;
    o->z = malloc((o->nb + 1) * sizeof(double));
    o->n = calloc(o->nb + 1, sizeof(double));
    o->kind = calloc(o->nb + 1, 1);
    if (o->z == NULL || o->n == NULL || o->kind == NULL) {
        rank_online_free(o);
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory for the online state of 2^%u weights",
                            m->cfg.bits);
    }
    /* The rare-token bitmap lives in the base model's image, which may be
     * closed while this state lives on: keep a copy. It stays fixed: a token
     * rare in training keeps learning through its field's rare weight. */
    if (o->cfg.min_count > 1 && o->cfg.freq != NULL) {
        size_t fbytes = o->nb / 8;
        if ((o->freq = malloc(fbytes)) == NULL) {
            rank_online_free(o);
            return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory");
        }
        memcpy(o->freq, o->cfg.freq, fbytes);
        o->cfg.freq = o->freq;
    }
    o->kind[o->nb] = W_BIAS;
    for (uint32_t f = 0; f < o->cfg.nfields; f++) {
        o->kind[o->cfg.present[f]] = W_DENSE;
        if (o->cfg.fields[f].kind == CTR_NUM && (o->cfg.numbins & RANK_NUM_CONT))
            o->kind[o->cfg.cont[f]] = W_DENSE;
        if (o->cfg.fields[f].kind == CTR_NUM && (o->cfg.numbins & RANK_NUM_QUAD))
            o->kind[rank__quad_bucket(&o->cfg, f)] = W_DENSE;
        if (o->cfg.fields[f].kind == CTR_NUM && (o->cfg.numbins & RANK_NUM_PROD))
            for (uint32_t g = f + 1; g < o->cfg.nfields; g++)
                if (o->cfg.fields[g].kind == CTR_NUM)
                    o->kind[rank__prod_bucket(&o->cfg, f, g)] = W_DENSE;
        if (o->cfg.fields[f].kind == CTR_CAT && o->cfg.min_count > 1)
            o->kind[o->cfg.cont[f]] = W_DENSE; /* the field's rare weight (train.c) */
    }
    o->alpha = m->info.alpha;
    o->l1 = m->info.l1;
    o->l2 = m->info.l2;
    if (!(o->alpha > 0 && isfinite(o->alpha)) || !(o->l1 >= 0 && isfinite(o->l1)) || !(o->l2 >= 0 && isfinite(o->l2))) {
        o->alpha = ONLINE_DEFAULT_ALPHA;
        o->l1 = 0;
        o->l2 = ONLINE_DEFAULT_L2;
    }
    /* The file holds weights, not FTRL state. With n = 0 the closed form is
     * w = -(z - sign(z) l1) / (beta/alpha + l2), so z = -w (beta/alpha + l2)
     * - sign(w) l1 gives back every weight exactly, and a zero weight gets
     * z = 0 (inside the L1 dead zone). The learning rates restart as if each
     * weight had seen no gradient yet: models/README.md "Online learning". */
    for (size_t i = 0; i <= o->nb; i++) {
        double w = i < o->nb ? (double)m->w[i] : m->bias;
        double denom = ONLINE_BETA / o->alpha + online_l2(o, i), l1 = online_l1(o, i);
        o->z[i] = w == 0 ? 0 : -w * denom - (w > 0 ? l1 : -l1);
    }
    o->cal_a = m->cal_a;
    o->cal_b = m->cal_b;
    o->neg_rate = m->info.neg_rate;
    o->base_rows = m->info.rows;
    o->base_positives = m->info.positives;
    o->first_line = m->info.first_line;
    o->last_line = m->info.last_line;
    snprintf(o->base_version, sizeof(o->base_version), "%s", m->info.version);

    /* The golden rows of the base file: the snapshot keeps them, with their
     * predictions recomputed, so a snapshot is checked like any file. */
    uint32_t ngolden;
    uint64_t at;
    memcpy(&ngolden, m->base + RH_NGOLDEN, 4);
    memcpy(&at, m->base + RH_OFF_GOLDEN, 8);
    for (uint32_t g = 0; g < ngolden && g < RANK_GOLDEN_MAX; g++) {
        uint32_t nv;
        memcpy(&nv, m->base + at, 4);
        if (nv > RANK_GOLDEN_VALUES)
            break; /* rank__parse refused such a file already */
        memcpy(o->golden[g], m->base + at + RANK_GOLDEN_HDR, (size_t)nv * RANK_VALUE_REC);
        o->golden_n[g] = nv;
        o->ngolden = g + 1;
        at += RANK_GOLDEN_HDR + (uint64_t)nv * RANK_VALUE_REC;
    }
    *ret = o;
    return 0;
}

void rank_online_free(struct rank_online *o)
{
    if (o == NULL)
        return;
    free(o->z);
    free(o->n);
    free(o->kind);
    free(o->freq);
    free(o);
}

static void online_sink(void *ctx, uint32_t idx, float x)
{
    struct rank_online *o = ctx;

    if (o->nf < ONLINE_MAX_FEATS) {
        o->fidx[o->nf] = idx;
        o->fx[o->nf] = x;
        o->nf++;
    }
}

/* Featurizes a row into o's scratch and returns its raw score. */
static double online_raw(struct rank_online *o, const struct ctr_value *v, uint32_t n)
{
    double z = online_w(o, o->nb);

    o->nf = 0;
    rank__emit(&o->cfg, NULL, 0, NULL, NULL, v, n < CTR_MAX_VALUES ? n : CTR_MAX_VALUES, online_sink, o);
    for (uint32_t j = 0; j < o->nf; j++)
        z += online_w(o, o->fidx[j]) * o->fx[j];
    return z;
}

double rank_online_predict(struct rank_online *o, const struct ctr_value *v, uint32_t n)
{
    return rank__sigmoid(o->cal_a * online_raw(o, v, n) + o->cal_b);
}

static void online_step(struct rank_online *o, size_t i, double g, double w)
{
    double n = o->n[i], sigma = (sqrt(n + g * g) - sqrt(n)) / o->alpha;

    o->z[i] += g - sigma * w;
    o->n[i] = n + g * g;
}

int rank_online_update(struct rank_online *o, const struct ctr_value *v, uint32_t n, int label, double *ret_p)
{
    double *w = o->fw;

    if (label != 0 && label != 1)
        return ADS_EINVAL;
    double s = online_raw(o, v, n);
    double p = rank__sigmoid(o->cal_a * s + o->cal_b);
    /* d/dw of the log loss of sigma(a*s + b): a (p - y) x. The weights of
     * one example are all read before any is changed (as in training). */
    double g = o->cal_a * (p - label);
    for (uint32_t j = 0; j < o->nf; j++)
        w[j] = online_w(o, o->fidx[j]);
    online_step(o, o->nb, g, online_w(o, o->nb));
    for (uint32_t j = 0; j < o->nf; j++)
        online_step(o, o->fidx[j], g * o->fx[j], w[j]);
    o->examples++;
    o->positives += (uint64_t)label;
    *ret_p = p;
    return 0;
}

uint64_t rank_online_examples(const struct rank_online *o)
{
    return o->examples;
}

double rank_online_weight(const struct rank_online *o, size_t i, double *ret_z, double *ret_n)
{
    if (i > o->nb)
        return 0;
    if (ret_z != NULL)
        *ret_z = o->z[i];
    if (ret_n != NULL)
        *ret_n = o->n[i];
    return online_w(o, i);
}

void rank_online_params(const struct rank_online *o, double *ret_alpha, double *ret_l1, double *ret_l2)
{
    *ret_alpha = o->alpha;
    *ret_l1 = o->l1;
    *ret_l2 = o->l2;
}

/*
 * A model that owns its image: one allocation holds the struct and, after it
 * at a 64-byte boundary, the image, so rank_model_close() (which frees the
 * struct and unmaps only mapped files) frees both.
 */
#define ONLINE_IMAGE_AT ((sizeof(struct rank_model) + 63) / 64 * 64)

int rank_online_model(const struct rank_online *o, const struct rank_online_meta *meta, struct rank_model **ret,
                      struct ads_diag *diag)
{
    struct rank_image_meta *mt = calloc(1, sizeof(*mt));
    float *w = malloc(o->nb * sizeof(float));
    unsigned char *img = NULL, *block = NULL;
    size_t size = 0;
    int rc;

    if (mt == NULL || w == NULL) {
        rc = ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory building an online model");
        goto out;
    }
    for (size_t i = 0; i < o->nb; i++)
        w[i] = (float)online_w(o, i);
    mt->bias = online_w(o, o->nb);
    mt->cal_a = o->cal_a;
    mt->cal_b = o->cal_b;
    mt->neg_rate = o->neg_rate;
    mt->first_line = o->first_line;
    mt->last_line = o->last_line;
    mt->rows = o->base_rows + o->examples;
    mt->positives = o->base_positives + o->positives;
    mt->trained_at = meta->trained_at;
    mt->valid_rows = meta->valid_rows;
    mt->valid_pos = meta->valid_positives;
    mt->valid_logloss = meta->valid_logloss;
    mt->valid_auc = meta->valid_auc;
    mt->valid_cal = meta->valid_calibration;
    mt->l1 = o->l1;
    mt->l2 = o->l2;
    mt->alpha = o->alpha;
    mt->epochs = 1;
    snprintf(mt->source, sizeof(mt->source), "online %.28s +%llu", o->base_version,
             (unsigned long long)o->examples);
    mt->ngolden = o->ngolden;
    memcpy(mt->golden_n, o->golden_n, sizeof(mt->golden_n));
    memcpy(mt->golden, o->golden, sizeof(mt->golden));
    if ((rc = rank__image_build(&o->cfg, w, mt, &img, &size, diag)) != 0)
        goto out;
    if ((block = malloc(ONLINE_IMAGE_AT + size)) == NULL) {
        rc = ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory building an online model");
        goto out;
    }
    memcpy(block + ONLINE_IMAGE_AT, img, size);
    struct rank_model *m = (struct rank_model *)(void *)block;
    if ((rc = rank__parse(block + ONLINE_IMAGE_AT, size, false, m, diag)) != 0) {
        free(block);
        goto out;
    }
    m->mapped = false;
    uint64_t sum;
    memcpy(&sum, block + ONLINE_IMAGE_AT + RH_CHECKSUM, 8);
    snprintf(m->info.version, sizeof(m->info.version), "lr-online-%016llx", (unsigned long long)sum);
    *ret = m;
out:
    free(img);
    free(w);
    free(mt);
    return rc;
}
