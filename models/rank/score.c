/*
 * Scoring: a whole row (predict_row, the golden check, evaluation) and the
 * serving path, where the request's user and context features are summed
 * once and each candidate adds only its own. Nothing here allocates.
 */
#include <string.h>

#include "rank_int.h"

/* The running sums of a score: the linear part and, for FM, per-factor sums. */
struct acc {
    const struct rank_model *m;
    double z, q;
    double s[RANK_FM_K_MAX];
};

static void acc_lr(void *ctx, uint32_t idx, float x)
{
    struct acc *a = ctx;

    a->z += (double)a->m->w[idx] * x;
}

static void acc_fm(void *ctx, uint32_t idx, float x)
{
    struct acc *a = ctx;
    const float *b = a->m->w + (size_t)idx * a->m->cfg.stride;
    uint32_t k = a->m->cfg.k;

    a->z += (double)b[0] * x;
    for (uint32_t f = 0; f < k; f++) {
        double t = (double)b[1 + f] * x;
        a->s[f] += t;
        a->q += t * t;
    }
}

static double acc_total(const struct acc *a)
{
    double z = a->z;

    if (a->m->cfg.type == RANK_TYPE_FM) {
        double p = 0;
        for (uint32_t f = 0; f < a->m->cfg.k; f++)
            p += a->s[f] * a->s[f];
        z += 0.5 * (p - a->q);
    }
    return z;
}

double rank__raw_row(const struct rank_model *m, const struct ctr_value *v, uint32_t n)
{
    struct acc a = {.m = m, .z = m->bias};

    rank__emit(&m->cfg, NULL, 0, NULL, NULL, v, n, m->cfg.type == RANK_TYPE_FM ? acc_fm : acc_lr, &a);
    return acc_total(&a);
}

double rank_model_predict_row(const struct rank_model *m, const struct ctr_row *row)
{
    return rank__calibrate(m, rank__raw_row(m, row->v, row->n));
}

/* ---- serving ---- */

void rank_req_begin(struct rank_req *r, const struct rank_model *m)
{
    r->m = m;
    r->n = 0;
    r->dropped = 0;
    r->committed = 0;
    r->z = 0;
    r->q = 0;
}

static int req_push(struct rank_req *r, uint32_t f, enum ctr_kind kind, uint64_t token, double x)
{
    if (r->committed || f >= r->m->cfg.nfields || r->m->cfg.fields[f].kind != kind)
        return ADS_EINVAL;
    if (r->n == RANK_REQ_MAX) {
        r->dropped++;
        return ADS_EOVERLOADED;
    }
    r->v[r->n] = (struct ctr_value){.field = f, .kind = kind, .token = token, .x = x};
    r->n++;
    return 0;
}

int rank_req_add(struct rank_req *r, uint32_t f, const char *s, size_t len)
{
    return req_push(r, f, CTR_CAT, ctr_hash(s, len, 0), 1.0);
}

int rank_req_add_token(struct rank_req *r, uint32_t f, uint64_t token)
{
    return req_push(r, f, CTR_CAT, token, 1.0);
}

int rank_req_add_num(struct rank_req *r, uint32_t f, double x)
{
    if (!isfinite(x))
        return 0;
    return req_push(r, f, CTR_NUM, 0, x);
}

void rank_req_commit(struct rank_req *r)
{
    const struct rank_model *m = r->m;
    struct acc a = {.m = m, .z = m->bias};

    /* Sorted by field (stable insertion sort: at most RANK_REQ_MAX values),
     * so that a candidate finds the request's values of a crossed field
     * directly. */
    for (uint32_t i = 1; i < r->n; i++) {
        struct ctr_value t = r->v[i];
        uint32_t j = i;
        while (j > 0 && r->v[j - 1].field > t.field) {
            r->v[j] = r->v[j - 1];
            j--;
        }
        r->v[j] = t;
    }
    memset(r->count, 0, sizeof(r->count));
    memset(r->first, 0, sizeof(r->first));
    for (uint32_t i = r->n; i-- > 0;) {
        r->first[r->v[i].field] = (uint8_t)i;
        r->count[r->v[i].field]++;
    }
    rank__emit(&m->cfg, NULL, 0, NULL, NULL, r->v, r->n, m->cfg.type == RANK_TYPE_FM ? acc_fm : acc_lr, &a);
    r->z = a.z;
    r->q = a.q;
    memcpy(r->s, a.s, sizeof(r->s));
    r->committed = 1;
}

uint32_t rank_req_dropped(const struct rank_req *r)
{
    return r->dropped;
}

double rank_req_score(const struct rank_req *r, const struct rank_cand *c)
{
    const struct rank_model *m = r->m;
    struct acc a = {.m = m, .z = r->z, .q = r->q};

    if (m->cfg.type == RANK_TYPE_FM) {
        memcpy(a.s, r->s, sizeof(a.s));
        if (c != NULL)
            rank__emit(&m->cfg, r->v, r->n, r->first, r->count, c->v, c->n, acc_fm, &a);
    } else if (c != NULL) {
        rank__emit(&m->cfg, r->v, r->n, r->first, r->count, c->v, c->n, acc_lr, &a);
    }
    return rank__calibrate(m, acc_total(&a));
}

void rank_cand_init(struct rank_cand *c)
{
    c->n = 0;
    c->dropped = 0;
}

int rank_cand_add_token(struct rank_cand *c, uint32_t f, uint64_t token)
{
    if (f >= CTR_MAX_FIELDS)
        return ADS_EINVAL;
    if (c->n == RANK_CAND_MAX) {
        c->dropped++;
        return ADS_EOVERLOADED;
    }
    c->v[c->n] = (struct ctr_value){.field = f, .kind = CTR_CAT, .token = token, .x = 1.0};
    c->n++;
    return 0;
}

int rank_cand_add(struct rank_cand *c, uint32_t f, const char *s, size_t len)
{
    return rank_cand_add_token(c, f, ctr_hash(s, len, 0));
}

void rank_model_info(const struct rank_model *m, struct rank_info *ret)
{
    *ret = m->info;
}

int rank_model_check_schema(const struct rank_model *m, const struct ctr_schema *schema, struct ads_diag *diag)
{
    const struct rank_cfg *c = &m->cfg;

    if (strncmp(c->schema, schema->id, CTR_NAME_MAX) != 0)
        return ads_diag_set(diag, ADS_EDATA_INVALID, NULL, "the model was trained on schema \"%s\", the data is \"%.*s\"",
                            c->schema, CTR_NAME_MAX, schema->id);
    if (c->nfields != schema->nfields)
        return ads_diag_set(diag, ADS_EDATA_INVALID, NULL, "the model has %u fields, the data has %u", c->nfields,
                            schema->nfields);
    for (uint32_t f = 0; f < c->nfields; f++) {
        if (strncmp(c->fields[f].name, schema->fields[f].name, CTR_NAME_MAX) != 0 ||
            c->fields[f].kind != schema->fields[f].kind)
            return ads_diag_set(diag, ADS_EDATA_INVALID, NULL,
                                "field %u is \"%s\" (%s) in the model but \"%.*s\" (%s) in the data", f,
                                c->fields[f].name, c->fields[f].kind == CTR_NUM ? "numeric" : "categorical",
                                CTR_NAME_MAX, schema->fields[f].name,
                                schema->fields[f].kind == CTR_NUM ? "numeric" : "categorical");
    }
    return 0;
}
