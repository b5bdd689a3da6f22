#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../models/rank/rank_int.h"
#include "adsmith/rank.h"
#include "adsmith/rank_online.h"

/* Online FTRL over a model (models/rank/online.c): the state reproduces the
 * model's weights, one step gives the known FTRL-Proximal answer, and a
 * snapshot is a valid model that scores like the state. */

static void schema2(struct ctr_schema *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "tiny");
    s->nfields = 2;
    snprintf(s->fields[0].name, CTR_NAME_MAX, "ad");
    snprintf(s->fields[1].name, CTR_NAME_MAX, "count");
    s->fields[0].kind = CTR_CAT;
    s->fields[1].kind = CTR_NUM;
}

static struct ctr_value tok(uint32_t f, const char *t)
{
    return (struct ctr_value){.field = f, .kind = CTR_CAT, .token = ctr_hash(t, strlen(t), 0), .x = 1};
}

/* A hand-made LR model of schema2 with 2^10 zero weights: bias, calibration and FTRL settings given. */
static struct rank_model *tiny_model(double bias, double cal_a, double cal_b, double alpha, double l1, double l2,
                                     unsigned char **ret_image)
{
    struct ctr_schema s;
    struct rank_cfg *c = calloc(1, sizeof(*c));
    struct rank_image_meta *mt = calloc(1, sizeof(*mt));
    float *w = calloc(1024, sizeof(float));
    struct rank_model *m = NULL;
    size_t size;
    struct ads_diag d;

    cr_assert(c != NULL && mt != NULL && w != NULL);
    schema2(&s);
    c->seed = 7;
    c->type = RANK_TYPE_LR;
    c->bits = 10;
    c->stride = 1;
    c->numbins = RANK_NUM_DEFAULT;
    c->nfields = 2;
    snprintf(c->schema, sizeof(c->schema), "%s", s.id);
    memcpy(c->fields, s.fields, sizeof(s.fields[0]) * 2);
    rank__cfg_derive(c);
    mt->bias = bias;
    mt->cal_a = cal_a;
    mt->cal_b = cal_b;
    mt->neg_rate = 1;
    mt->alpha = alpha;
    mt->l1 = l1;
    mt->l2 = l2;
    cr_assert_eq(rank__image_build(c, w, mt, ret_image, &size, &d), 0, "%s", d.message);
    cr_assert_eq(rank_model_open_mem(*ret_image, size, &m, &d), 0, "%s", d.message);
    free(c);
    free(mt);
    free(w);
    return m;
}

struct feats {
    uint32_t n, idx[16];
};

static void collect(void *ctx, uint32_t idx, float x)
{
    struct feats *f = ctx;
    (void)x;
    if (f->n < 16)
        f->idx[f->n++] = idx;
}

Test(online, one_step_known_answer)
{
    unsigned char *img;
    struct rank_model *m = tiny_model(0, 1, 0, 0.1, 0.2, 10, &img);
    struct rank_online *o;
    struct ads_diag d;
    struct ctr_value v = tok(0, "a");
    struct feats f = {0};
    double p, z, n;

    cr_assert_eq(rank_online_new(m, &o, &d), 0, "%s", d.message);
    rank__emit(&m->cfg, NULL, 0, NULL, NULL, &v, 1, collect, &f);
    cr_assert_eq(f.n, 2, "a token gives its field's present weight and its own");
    cr_assert_eq(f.idx[0], m->cfg.present[0]);
    cr_assert_neq(f.idx[1], f.idx[0]);

    /* Every weight 0: p = sigmoid(0) = 0.5, a click: g = a (p - y) = -0.5 on
     * each coordinate (x = 1). With n = 0 before the step, n = 0.25 after, and
     * z = g - (sqrt(0.25) - 0) / alpha * w_old = -0.5 (w_old = 0):
     *   bias (no L1, no L2):        w = 0.5 / ((1 + 0.5) / 0.1)        = 0.5 / 15 = 1/30
     *   present (dense, L2 1):      w = 0.5 / (15 + 1)                  = 0.03125
     *   token (L1 0.2, L2 10):      w = (0.5 - 0.2) / (15 + 10)         = 0.012 */
    cr_assert_eq(rank_online_update(o, &v, 1, 1, &p), 0);
    cr_assert_float_eq(p, 0.5, 1e-15);
    cr_assert_float_eq(rank_online_weight(o, 1024, &z, &n), 1.0 / 30, 1e-15);
    cr_assert_float_eq(z, -0.5, 1e-15);
    cr_assert_float_eq(n, 0.25, 1e-15);
    cr_assert_float_eq(rank_online_weight(o, f.idx[0], NULL, NULL), 0.03125, 1e-15);
    cr_assert_float_eq(rank_online_weight(o, f.idx[1], NULL, NULL), 0.012, 1e-15);
    cr_assert_eq(rank_online_examples(o), 1);

    /* Progressive validation: the next prediction is made with the new
     * weights, before the second step changes them. */
    double want = 1 / (1 + exp(-(1.0 / 30 + 0.03125 + 0.012)));
    cr_assert_float_eq(rank_online_predict(o, &v, 1), want, 1e-12);
    cr_assert_eq(rank_online_update(o, &v, 1, 0, &p), 0);
    cr_assert_float_eq(p, want, 1e-12);
    cr_assert_eq(rank_online_update(o, &v, 1, 2, &p), ADS_EINVAL);

    rank_online_free(o);
    rank_model_close(m);
    free(img);
}

Test(online, calibration_in_the_gradient)
{
    unsigned char *img;
    struct rank_model *m = tiny_model(0.5, 2, -1, 0.1, 0, 0, &img);
    struct rank_online *o;
    struct ads_diag d;
    double p, z;

    cr_assert_eq(rank_online_new(m, &o, &d), 0, "%s", d.message);
    /* An empty row: only the bias. p = sigmoid(2 * 0.5 - 1) = 0.5; no click:
     * g = a (p - y) = 1. Initial z makes w = 0.5: z = -0.5 * (1 / 0.1) = -5.
     * After: z = -5 + 1 - (1 / 0.1) * 0.5 = -9, n = 1, w = 9 / ((1 + 1) / 0.1) = 0.45. */
    cr_assert_float_eq(rank_online_weight(o, 1024, &z, NULL), 0.5, 1e-15);
    cr_assert_float_eq(z, -5, 1e-12);
    cr_assert_eq(rank_online_update(o, NULL, 0, 0, &p), 0);
    cr_assert_float_eq(p, 0.5, 1e-15);
    cr_assert_float_eq(rank_online_weight(o, 1024, &z, NULL), 0.45, 1e-12);
    cr_assert_float_eq(z, -9, 1e-12);
    rank_online_free(o);
    rank_model_close(m);
    free(img);
}

static uint64_t rng_state = 42;

static double unit(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* A trained model with L1 (so that some weights are exactly 0) over schema2. */
static struct rank_model *trained(struct rank_trainer **ret_t)
{
    struct ctr_schema s;
    struct rank_train_opts opts = {.seed = 3, .bits = 10, .epochs = 3, .l1 = 1, .l2 = 10, .alpha = 0.1};
    struct rank_trainer *t;
    struct ctr_row *row = calloc(1, sizeof(*row));
    const unsigned char *img;
    struct rank_model *m;
    size_t size;
    struct ads_diag d;

    schema2(&s);
    cr_assert_eq(rank_trainer_new(&s, &opts, &t, &d), 0, "%s", d.message);
    for (int i = 0; i < 2000; i++) {
        char b[16];
        unsigned a = (unsigned)(unit() * 40);
        double cnt = floor(unit() * 30);
        snprintf(b, sizeof(b), "%u", a);
        row->n = 2;
        row->line = (uint64_t)i + 1;
        row->v[0] = tok(0, b);
        row->v[1] = (struct ctr_value){.field = 1, .kind = CTR_NUM, .x = cnt};
        row->label = unit() < 1 / (1 + exp(-(-2.0 + 0.1 * (a % 7) + 0.2 * log2(1 + cnt)))) ? 1.0f : 0.0f;
        cr_assert_eq(rank_trainer_add(t, row), 0);
    }
    cr_assert_eq(rank_trainer_fit(t, NULL, NULL, &d), 0, "%s", d.message);
    cr_assert_eq(rank__trainer_image(t, &img, &size), 0);
    cr_assert_eq(rank_model_open_mem(img, size, &m, &d), 0, "%s", d.message);
    free(row);
    *ret_t = t;
    return m;
}

Test(online, state_reproduces_the_weights)
{
    struct rank_trainer *t;
    struct rank_model *m = trained(&t);
    struct rank_online *o;
    struct ads_diag d;
    double alpha, l1, l2;
    size_t zeros = 0, nonzero = 0;

    cr_assert_eq(rank_online_new(m, &o, &d), 0, "%s", d.message);
    rank_online_params(o, &alpha, &l1, &l2);
    cr_assert_float_eq(alpha, 0.1, 1e-15);
    cr_assert_float_eq(l1, 1, 1e-15);
    cr_assert_float_eq(l2, 10, 1e-15);
    for (size_t i = 0; i < 1024; i++) {
        double w = rank_online_weight(o, i, NULL, NULL);
        cr_assert_eq((float)w, m->w[i], "bucket %zu: %.9g, the model has %.9g", i, w, (double)m->w[i]);
        if (m->w[i] == 0)
            zeros++;
        else
            nonzero++;
    }
    cr_assert_float_eq(rank_online_weight(o, 1024, NULL, NULL), m->bias, 1e-12);
    cr_assert_gt(nonzero, 10);
    cr_assert_gt(zeros, 0);

    /* Unchanged state, snapshot: the same scores as the model. */
    struct rank_online_meta meta = {.trained_at = 1700000000, .valid_rows = 5, .valid_auc = 0.6};
    struct rank_model *snap;
    struct rank_info in;
    cr_assert_eq(rank_online_model(o, &meta, &snap, &d), 0, "%s", d.message);
    rank_model_info(snap, &in);
    cr_assert_eq(strncmp(in.version, "lr-online-", 10), 0, "%s", in.version);
    cr_assert_eq(strncmp(in.source, "online lr-", 10), 0, "%s", in.source);
    cr_assert_eq(in.trained_at, 1700000000);
    cr_assert_eq(in.valid_rows, 5);
    struct ctr_row *row = calloc(1, sizeof(*row));
    row->n = 2;
    row->v[0] = tok(0, "3");
    row->v[1] = (struct ctr_value){.field = 1, .kind = CTR_NUM, .x = 4};
    cr_assert_float_eq(rank_model_predict_row(snap, row), rank_model_predict_row(m, row), 1e-9);

    /* Learn: a token that always clicks rises, in the state and in the next snapshot. */
    double before = rank_online_predict(o, row->v, 2), p;
    for (int i = 0; i < 50; i++)
        cr_assert_eq(rank_online_update(o, row->v, 2, 1, &p), 0);
    double after = rank_online_predict(o, row->v, 2);
    cr_assert_gt(after, before + 0.05, "%g -> %g", before, after);
    struct rank_model *snap2;
    cr_assert_eq(rank_online_model(o, &meta, &snap2, &d), 0, "%s", d.message);
    cr_assert_float_eq(rank_model_predict_row(snap2, row), after, 1e-5);
    struct rank_info in2;
    rank_model_info(snap2, &in2);
    cr_assert_str_neq(in.version, in2.version);
    cr_assert_eq(in2.rows, in.rows + 50);

    free(row);
    rank_model_close(snap);
    rank_model_close(snap2);
    rank_online_free(o);
    rank_model_close(m);
    rank_trainer_free(t);
}

Test(online, fm_refused)
{
    struct ctr_schema s;
    struct rank_train_opts opts = {.seed = 3, .bits = 10, .epochs = 1, .family = "fm", .fm_k = 2,
                                   .l1 = 0, .l2 = 10, .alpha = 0.1};
    struct rank_trainer *t;
    struct ctr_row *row = calloc(1, sizeof(*row));
    const unsigned char *img;
    struct rank_model *m;
    struct rank_online *o = NULL;
    size_t size;
    struct ads_diag d;

    schema2(&s);
    cr_assert_eq(rank_trainer_new(&s, &opts, &t, &d), 0, "%s", d.message);
    for (int i = 0; i < 200; i++) {
        char b[16];
        snprintf(b, sizeof(b), "%d", i % 9);
        row->n = 1;
        row->v[0] = tok(0, b);
        row->label = i % 5 == 0 ? 1.0f : 0.0f;
        cr_assert_eq(rank_trainer_add(t, row), 0);
    }
    cr_assert_eq(rank_trainer_fit(t, NULL, NULL, &d), 0, "%s", d.message);
    cr_assert_eq(rank__trainer_image(t, &img, &size), 0);
    cr_assert_eq(rank_model_open_mem(img, size, &m, &d), 0, "%s", d.message);
    cr_assert_eq(rank_online_new(m, &o, &d), ADS_EINVAL);
    cr_assert_not_null(strstr(d.message, "LR"), "%s", d.message);
    free(row);
    rank_model_close(m);
    rank_trainer_free(t);
}
