/*
 * Private to models/rank/: the feature configuration shared by the trainer
 * and the scorer, the feature emitter both use (so that training and serving
 * can never featurize differently), and the model file's layout.
 */
#ifndef ADSMITH_RANK_INT_H
#define ADSMITH_RANK_INT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/rank.h"

#define RANK_MAX_CROSS 32
#define RANK_GOLDEN_MAX 8
#define RANK_GOLDEN_VALUES 64

/* Numeric binning (cfg.numbins flags). */
#define RANK_NUM_COARSE 1u /* floor(log2(1+|x|)) with sign */
#define RANK_NUM_FINE 2u   /* floor(4*log2(1+|x|)) with sign */
#define RANK_NUM_EXACT 4u  /* the integer itself for |x| <= 15 */
#define RANK_NUM_CONT 8u   /* one weight per field times log2(1+|x|)/8 with sign */
#define RANK_NUM_QUAD 16u  /* one weight per field times (log2(1+|x|)/8)^2 with sign: a smooth bend */
#define RANK_NUM_PROD 32u  /* one weight per pair of numeric fields times the product of their continuous values */
/* Chosen by 5-fold CV on Criteo: models/README.md. */
#define RANK_NUM_DEFAULT (RANK_NUM_CONT | RANK_NUM_QUAD | RANK_NUM_PROD)

/* Numbers of one row whose products are computed from a cache (rank__emit). */
#define RANK_PROD_CACHE 32

/* Features one value yields at most: present + three bins + continuous + quadratic. */
#define RANK_VAL_FEATS 6

struct rank_cfg {
    uint64_t seed;
    uint32_t type, bits, k, stride; /* stride: floats per bucket, 1 + k */
    uint32_t numbins;
    uint32_t nfields, ncross;
    char schema[CTR_NAME_MAX];
    struct ctr_field fields[CTR_MAX_FIELDS];
    uint32_t cross[RANK_MAX_CROSS][2];
    uint64_t fkey[CTR_MAX_FIELDS];     /* per-field hash key */
    uint32_t present[CTR_MAX_FIELDS];  /* bucket of the field's "present" feature */
    uint32_t cont[CTR_MAX_FIELDS];     /* bucket of a numeric field's continuous feature */
    uint8_t incross[CTR_MAX_FIELDS];   /* the field takes part in a cross */
    /* Rare tokens: with min_count > 1, a token whose bucket was seen fewer
     * than min_count times in training scores with its field's "rare" weight
     * (bucket cont[f], unused by a categorical field) instead. freq is a
     * bitmap of 2^bits bits, bit b set for a frequent bucket b (the model
     * file's, or the trainer's); NULL: every token keeps its own weight. */
    uint32_t min_count;
    const uint64_t *freq;
};

/* ---- hashing ---- */

static inline uint64_t rank__mix(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

/* A 64-bit hash of bytes (field names, the schema): own FNV-1a, then mixed. */
uint64_t rank__hash_bytes(const void *p, size_t n, uint64_t h);

/* The checksum of a model file, read as if the 8 bytes at @p zero_at (a multiple of 8) were zero. */
uint64_t rank__checksum(const unsigned char *p, size_t n, size_t zero_at);

static inline uint32_t rank__bucket(const struct rank_cfg *c, uint64_t key, uint64_t token)
{
    return (uint32_t)(rank__mix(key ^ (token * 0x9e3779b97f4a7c15ull)) >> (64 - c->bits));
}

/* Sets every derived member of @p c from seed, bits, fields and crosses. */
void rank__cfg_derive(struct rank_cfg *c);

/* Schema id: the schema's id string, field names and kinds. */
uint64_t rank__schema_id(const struct rank_cfg *c);

/* Parses "a*b,c*d" into c->cross. */
int rank__cfg_crosses(struct rank_cfg *c, const char *spec, struct ads_diag *diag);

/* The token a value contributes to a cross: the token itself, or a numeric value's coarse bin. */
static inline uint64_t rank__cross_token(const struct ctr_value *v)
{
    double a;
    int64_t b;

    if (v->kind == CTR_CAT)
        return v->token;
    a = fabs(v->x);
    b = a < 1e300 ? (int64_t)floor(log2(1.0 + a)) : 9999;
    return 0x4e554d00ull ^ (uint64_t)(v->x < 0 ? -1 - b : b);
}

static inline uint32_t rank__cross_bucket(const struct rank_cfg *c, const struct ctr_value *a, const struct ctr_value *b)
{
    uint64_t key = c->fkey[a->field] * 3 + c->fkey[b->field];
    return rank__bucket(c, key, rank__mix(rank__cross_token(a)) ^ rank__cross_token(b));
}

/* The bucket of numeric field @p f's quadratic weight (RANK_NUM_QUAD): right
 * after the present and continuous weights (2f, 2f+1), so that a row's dense
 * weights share a few cache lines instead of one miss each. Like the present,
 * continuous, rare and product weights it is a "dense" weight: in many rows,
 * trained with L2 = 1 and no L1 (train.c). */
static inline uint32_t rank__quad_bucket(const struct rank_cfg *c, uint32_t f)
{
    return (2 * c->nfields + f) & ((1u << c->bits) - 1);
}

/* Unigram features of one value: buckets in @p idx, values in @p x; returns how many. */
static inline uint32_t rank__val_feats(const struct rank_cfg *c, const struct ctr_value *v, uint32_t *idx, float *x)
{
    uint32_t n = 0, f = v->field;
    double a, l;
    int64_t sign;

    if (v->kind == CTR_CAT) {
        idx[n] = c->present[f];
        x[n++] = 1.0f;
        idx[n] = rank__bucket(c, c->fkey[f], v->token);
        if (c->freq != NULL && !((c->freq[idx[n] >> 6] >> (idx[n] & 63)) & 1))
            idx[n] = c->cont[f];
        x[n++] = (float)v->x;
        return n;
    }
    if (!isfinite(v->x))
        return 0;
    idx[n] = c->present[f];
    x[n++] = 1.0f;
    a = fabs(v->x);
    sign = v->x < 0 ? 1 : 0;
    l = log2(1.0 + a);
    if (c->numbins & RANK_NUM_COARSE) {
        idx[n] = rank__bucket(c, c->fkey[f], (1ull << 40) ^ ((uint64_t)floor(l) << 1 | (uint64_t)sign));
        x[n++] = 1.0f;
    }
    if (c->numbins & RANK_NUM_FINE) {
        idx[n] = rank__bucket(c, c->fkey[f], (2ull << 40) ^ ((uint64_t)floor(4 * l) << 1 | (uint64_t)sign));
        x[n++] = 1.0f;
    }
    if ((c->numbins & RANK_NUM_EXACT) && a <= 15 && a == floor(a)) {
        idx[n] = rank__bucket(c, c->fkey[f], (3ull << 40) ^ ((uint64_t)a << 1 | (uint64_t)sign));
        x[n++] = 1.0f;
    }
    if (c->numbins & RANK_NUM_CONT) {
        idx[n] = c->cont[f];
        x[n++] = (float)((sign ? -l : l) / 8);
    }
    if (c->numbins & RANK_NUM_QUAD) {
        idx[n] = rank__quad_bucket(c, f);
        x[n++] = (float)((sign ? -l * l : l * l) / 64);
    }
    return n;
}

/* The continuous value of a number: sign(x) * log2(1 + |x|) / 8. */
static inline double rank__num_cont(double x)
{
    double l = log2(1.0 + fabs(x)) / 8;
    return x < 0 ? -l : l;
}

/* The bucket of the product weight of numeric fields @p fa and @p fb (either
 * order): a block of nfields^2 after the quadratic weights (Criteo: 78 pairs
 * within 6 KB), for the same reason. */
static inline uint32_t rank__prod_bucket(const struct rank_cfg *c, uint32_t fa, uint32_t fb)
{
    uint32_t lo = fa < fb ? fa : fb, hi = fa < fb ? fb : fa;
    return (3 * c->nfields + lo * c->nfields + hi) & ((1u << c->bits) - 1);
}

/* Categorical values (libsvm/libffm "idx:val") beyond this size are dropped: a
 * larger one would overflow the float weights' arithmetic. */
#define RANK_CAT_VALUE_MAX 1e6

static inline bool rank__valid(const struct rank_cfg *c, const struct ctr_value *v)
{
    return v->field < c->nfields && v->kind == c->fields[v->field].kind &&
           (v->kind == CTR_CAT ? fabs(v->x) <= RANK_CAT_VALUE_MAX : isfinite(v->x));
}

/*
 * Emits the features of a row made of @p ov (values already accounted for)
 * and @p nv (new values): every unigram of nv, and every cross pair with at
 * least one side in nv. @p ofirst/@p ocount (may be NULL) index ov by field.
 * @p sink is called once per feature. Training, predict_row and the request
 * API all go through here, so they cannot featurize differently. Crosses
 * join two different fields (rank__cfg_crosses refuses "a*a").
 */
static inline void rank__emit(const struct rank_cfg *c, const struct ctr_value *ov, uint32_t no,
                              const uint8_t *ofirst, const uint8_t *ocount, const struct ctr_value *nv, uint32_t nn,
                              void (*sink)(void *ctx, uint32_t idx, float x), void *ctx)
{
    uint32_t idx[RANK_VAL_FEATS];
    float x[RANK_VAL_FEATS];

    for (uint32_t i = 0; i < nn; i++) {
        if (!rank__valid(c, &nv[i]))
            continue;
        uint32_t k = rank__val_feats(c, &nv[i], idx, x);
        for (uint32_t j = 0; j < k; j++)
            sink(ctx, idx[j], x[j]);
    }
    /* Products of numbers (RANK_NUM_PROD): each pair of numeric values of
     * different fields with at least one of them in nv, once. */
    if (c->numbins & RANK_NUM_PROD) {
        /* The numbers of nv with their continuous values computed once (a
         * Criteo row has 13: 78 pairs); a row with more numbers than the
         * cache takes the slow path, which emits the same features. */
        uint32_t pf[RANK_PROD_CACHE], m = 0;
        double pc[RANK_PROD_CACHE];
        for (uint32_t i = 0; i < nn; i++) {
            if (nv[i].kind != CTR_NUM || !rank__valid(c, &nv[i]))
                continue;
            if (m < RANK_PROD_CACHE) {
                pf[m] = nv[i].field;
                pc[m] = rank__num_cont(nv[i].x);
            }
            m++;
        }
        if (m <= RANK_PROD_CACHE) {
            for (uint32_t i = 0; i < m; i++)
                for (uint32_t j = i + 1; j < m; j++)
                    if (pf[j] != pf[i])
                        sink(ctx, rank__prod_bucket(c, pf[i], pf[j]), (float)(pc[i] * pc[j]));
        }
        for (uint32_t i = 0; i < nn; i++) {
            const struct ctr_value *a = &nv[i];
            if (a->kind != CTR_NUM || !rank__valid(c, a))
                continue;
            for (uint32_t j = i + 1; j < nn && m > RANK_PROD_CACHE; j++)
                if (nv[j].kind == CTR_NUM && nv[j].field != a->field && rank__valid(c, &nv[j]))
                    sink(ctx, rank__prod_bucket(c, a->field, nv[j].field),
                         (float)(rank__num_cont(a->x) * rank__num_cont(nv[j].x)));
            for (uint32_t j = 0; j < no; j++)
                if (ov[j].kind == CTR_NUM && ov[j].field != a->field && rank__valid(c, &ov[j]))
                    sink(ctx, rank__prod_bucket(c, a->field, ov[j].field),
                         (float)(rank__num_cont(a->x) * rank__num_cont(ov[j].x)));
        }
    }
    for (uint32_t r = 0; r < c->ncross; r++) {
        uint32_t fa = c->cross[r][0], fb = c->cross[r][1];
        uint32_t a0 = 0, a1 = no, b0 = 0, b1 = no;
        if (ofirst != NULL) {
            a0 = ofirst[fa];
            a1 = a0 + ocount[fa];
            b0 = ofirst[fb];
            b1 = b0 + ocount[fb];
        }
        for (uint32_t i = 0; i < nn; i++) {
            const struct ctr_value *v = &nv[i];
            if ((v->field != fa && v->field != fb) || !rank__valid(c, v))
                continue;
            if (v->field == fa) {
                for (uint32_t j = 0; j < nn; j++)
                    if (nv[j].field == fb && rank__valid(c, &nv[j]))
                        sink(ctx, rank__cross_bucket(c, v, &nv[j]), 1.0f);
                for (uint32_t j = b0; j < b1; j++)
                    if (ov[j].field == fb && rank__valid(c, &ov[j]))
                        sink(ctx, rank__cross_bucket(c, v, &ov[j]), 1.0f);
            } else {
                for (uint32_t j = a0; j < a1; j++)
                    if (ov[j].field == fa && rank__valid(c, &ov[j]))
                        sink(ctx, rank__cross_bucket(c, &ov[j], v), 1.0f);
            }
        }
    }
}

/* ---- the model ---- */

struct rank_hdr; /* file.c */

struct rank_model {
    const unsigned char *base;
    size_t size;
    bool mapped; /* base is an mmap (else borrowed memory) */
    struct rank_cfg cfg;
    const float *w; /* (1 << bits) * stride floats */
    double bias, cal_a, cal_b;
    struct rank_info info;
};

/*
 * Parses and checks a model image of @p size bytes (every check of
 * rank_model_open). @p m is filled and points into @p base, which must
 * outlive it. With @p building true the checksum and the golden predictions
 * are not checked (the trainer is still filling them in).
 */
int rank__parse(const unsigned char *base, size_t size, bool building, struct rank_model *m, struct ads_diag *diag);

/* Raw score (logit, before calibration) of a whole row of values. */
double rank__raw_row(const struct rank_model *m, const struct ctr_value *v, uint32_t n);

static inline double rank__sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

static inline double rank__calibrate(const struct rank_model *m, double z)
{
    return rank__sigmoid(m->cal_a * z + m->cal_b);
}

/* ---- trainer internals for tests and experiments ---- */

/* Overrides the numeric binning (RANK_NUM_*) and whether the final model is retrained on every row. Before any add. */
void rank__trainer_tweak(struct rank_trainer *t, uint32_t numbins, bool refit);

/* Gives the numeric bins their own L2 (< 0: the tokens') and sets the models per cross-validation fold
 * (0: default). Before fit. */
void rank__trainer_tweak_bins(struct rank_trainer *t, double l2b, uint32_t bags);

/* Multiplies the L2 of field @p f's tokens by @p l2_factor (> 0). Before fit. */
int rank__trainer_tweak_field(struct rank_trainer *t, uint32_t f, double l2_factor);

/* The fitted file image (owned by the trainer). ADS_EINVAL before fit. */
int rank__trainer_image(const struct rank_trainer *t, const unsigned char **ret, size_t *ret_size);

/* ---- the file layout (models/README.md has the table) ---- */

#define RANK_MAGIC "ADSRANK\0"
#define RANK_FORMAT_VERSION 2u /* 2: rare-token bitmap (min_count, offset) */
#define RANK_HDR_SIZE 512u
#define RANK_FIELD_REC 40u   /* name[32], u32 kind, u32 reserved */
#define RANK_CROSS_REC 8u    /* u32 a, u32 b */
#define RANK_GOLDEN_HDR 16u  /* u32 nvalues, u32 reserved, f64 expected p */
#define RANK_VALUE_REC 24u   /* u32 field, u32 kind, u64 token, f64 x */
#define RANK_WEIGHTS_ALIGN 64u

/* Header offsets. */
enum {
    RH_MAGIC = 0,
    RH_VERSION = 8,
    RH_HDR_SIZE = 12,
    RH_FILE_SIZE = 16,
    RH_CHECKSUM = 24,
    RH_SCHEMA_ID = 32,
    RH_SEED = 40,
    RH_TYPE = 48,
    RH_BITS = 52,
    RH_K = 56,
    RH_STRIDE = 60,
    RH_NFIELDS = 64,
    RH_NCROSS = 68,
    RH_NUMBINS = 72,
    RH_NGOLDEN = 76,
    RH_OFF_FIELDS = 80,
    RH_OFF_CROSS = 88,
    RH_OFF_GOLDEN = 96,
    RH_OFF_WEIGHTS = 104,
    RH_WEIGHTS_BYTES = 112,
    RH_BIAS = 120,
    RH_CAL_A = 128,
    RH_CAL_B = 136,
    RH_NEG_RATE = 144,
    RH_FIRST_LINE = 152,
    RH_LAST_LINE = 160,
    RH_ROWS = 168,
    RH_POSITIVES = 176,
    RH_TRAINED_AT = 184,
    RH_VALID_ROWS = 192,
    RH_VALID_POS = 200,
    RH_VALID_LOGLOSS = 208,
    RH_VALID_AUC = 216,
    RH_VALID_CAL = 224,
    RH_L1 = 232,
    RH_L2 = 240,
    RH_ALPHA = 248,
    RH_EPOCHS = 256,
    RH_CAL_KIND = 260,
    RH_SCHEMA = 264, /* char[32] */
    RH_SOURCE = 296, /* char[64] */
    RH_MIN_COUNT = 360, /* u32; 0 or 1: no rare-token bitmap */
    RH_OFF_FREQ = 368,  /* u64: the bitmap of frequent buckets, 2^bits / 8 bytes (0: none) */
    RH_END = 376        /* zero up to RANK_HDR_SIZE */
};

#define RANK_CAL_PLATT 1u

/* Everything the trainer puts in a file besides the weights. */
struct rank_image_meta {
    double bias, cal_a, cal_b, neg_rate;
    uint64_t first_line, last_line, rows, positives;
    int64_t trained_at;
    uint64_t valid_rows, valid_pos;
    double valid_logloss, valid_auc, valid_cal, l1, l2, alpha;
    uint32_t epochs;
    char source[64];
    uint32_t ngolden;
    uint32_t golden_n[RANK_GOLDEN_MAX];
    struct ctr_value golden[RANK_GOLDEN_MAX][RANK_GOLDEN_VALUES];
};

/* Builds a complete, checksummed file image (golden predictions computed here). Caller frees *ret. */
int rank__image_build(const struct rank_cfg *c, const float *w, const struct rank_image_meta *meta,
                      unsigned char **ret, size_t *ret_size, struct ads_diag *diag);

#endif
