#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../models/rank/rank_int.h"
#include "adsmith/rank.h"

/* Training on synthetic clicks with a known model behind them: determinism,
 * the correction of negative downsampling, and that the serving path scores
 * exactly like predict_row. */

static uint64_t rng_state;

static double unit(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static void syn_schema(struct ctr_schema *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "syn");
    s->nfields = 4;
    snprintf(s->fields[0].name, CTR_NAME_MAX, "user");
    snprintf(s->fields[1].name, CTR_NAME_MAX, "site");
    snprintf(s->fields[2].name, CTR_NAME_MAX, "ad");
    snprintf(s->fields[3].name, CTR_NAME_MAX, "count");
    for (int f = 0; f < 3; f++)
        s->fields[f].kind = CTR_CAT;
    s->fields[3].kind = CTR_NUM;
}

static struct ctr_value tok(uint32_t f, unsigned v)
{
    char b[16];
    int n = snprintf(b, sizeof(b), "%u", v);
    return (struct ctr_value){.field = f, .kind = CTR_CAT, .token = ctr_hash(b, (size_t)n, 0), .x = 1};
}

/* A click log drawn from a logistic model with site, ad and count effects
 * and a site x ad interaction; the user field is noise. */
static void syn_row(struct ctr_row *r, uint64_t line)
{
    unsigned u = (unsigned)(unit() * 500), s = (unsigned)(unit() * 20), a = (unsigned)(unit() * 10);
    double n = floor(unit() * unit() * 100);
    double z = -3.6 + 0.4 * (s % 5) - 0.3 * (a % 4) + 0.3 * log2(1 + n) + ((s + a) % 4 == 0 ? 0.8 : 0);

    r->n = 4;
    r->line = line;
    r->v[0] = tok(0, u);
    r->v[1] = tok(1, s);
    r->v[2] = tok(2, a);
    r->v[3] = (struct ctr_value){.field = 3, .kind = CTR_NUM, .x = n};
    r->label = unit() < 1 / (1 + exp(-z)) ? 1.0f : 0.0f;
}

static struct rank_trainer *train(const struct rank_train_opts *o, uint64_t data_seed, size_t rows)
{
    struct ctr_schema *s = calloc(1, sizeof(*s));
    struct ctr_row *r = calloc(1, sizeof(*r));
    struct rank_trainer *t = NULL;
    struct ads_diag d = {0};

    syn_schema(s);
    cr_assert_eq(rank_trainer_new(s, o, &t, &d), 0, "%s", d.message);
    rng_state = data_seed;
    for (size_t i = 0; i < rows; i++) {
        syn_row(r, i + 1);
        cr_assert_eq(rank_trainer_add(t, r), 0);
    }
    cr_assert_eq(rank_trainer_fit(t, NULL, NULL, &d), 0, "%s", d.message);
    free(s);
    free(r);
    return t;
}

static const struct rank_train_opts quick = {.seed = 3, .l1 = 1, .l2 = 10, .alpha = 0.1, .epochs = 3, .bits = 14};

Test(rank_train, deterministic_for_a_seed)
{
    struct rank_trainer *a = train(&quick, 11, 3000), *b = train(&quick, 11, 3000);
    struct rank_train_opts other = quick;
    other.seed = 4;
    struct rank_trainer *c = train(&other, 11, 3000);
    const unsigned char *pa, *pb, *pc;
    size_t na, nb, nc;

    cr_assert_eq(rank__trainer_image(a, &pa, &na), 0);
    cr_assert_eq(rank__trainer_image(b, &pb, &nb), 0);
    cr_assert_eq(rank__trainer_image(c, &pc, &nc), 0);
    cr_assert_eq(na, nb);
    cr_expect_eq(memcmp(pa, pb, na), 0, "same rows and seed, different files");
    cr_expect_neq(memcmp(pa, pc, na), 0, "the seed changes nothing");
    rank_trainer_free(a);
    rank_trainer_free(b);
    rank_trainer_free(c);
}

Test(rank_train, deterministic_with_tuning_and_downsampling)
{
    struct rank_train_opts o = {.seed = 9, .neg_rate = 0.5, .bits = 12};
    struct rank_trainer *a = train(&o, 5, 1500), *b = train(&o, 5, 1500);
    const unsigned char *pa, *pb;
    size_t na, nb;

    cr_assert_eq(rank__trainer_image(a, &pa, &na), 0);
    cr_assert_eq(rank__trainer_image(b, &pb, &nb), 0);
    cr_assert_eq(na, nb);
    cr_expect_eq(memcmp(pa, pb, na), 0);
    rank_trainer_free(a);
    rank_trainer_free(b);
}

/* Σp/Σy over @p rows fresh rows (no downsampling), and the AUC-free log loss. */
static double calibration(const struct rank_model *m, uint64_t data_seed, size_t rows, double *ret_ll,
                          double *ret_ll0)
{
    struct ctr_row *r = calloc(1, sizeof(*r));
    double sp = 0, sy = 0, ll = 0;

    rng_state = data_seed;
    for (size_t i = 0; i < rows; i++) {
        syn_row(r, i + 1);
        double p = rank_model_predict_row(m, r);
        sp += p;
        sy += r->label;
        ll -= r->label == 1 ? log(p) : log(1 - p);
    }
    free(r);
    double base = sy / (double)rows;
    *ret_ll = ll / (double)rows;
    *ret_ll0 = -(base * log(base) + (1 - base) * log(1 - base));
    return sp / sy;
}

static struct rank_model *model_of(const struct rank_trainer *t)
{
    struct ads_diag d = {0};
    char path[] = "/tmp/adsmith-rank-train-XXXXXX";
    struct rank_model *m = NULL;
    int fd = mkstemp(path);

    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(rank_trainer_write(t, path, &d), 0, "%s", d.message);
    cr_assert_eq(rank_model_open(path, &m, &d), 0, "%s", d.message);
    unlink(path);
    return m;
}

Test(rank_train, downsampling_is_corrected, .timeout = 120)
{
    struct rank_train_opts o = quick;
    o.neg_rate = 0.2;
    struct rank_trainer *t = train(&o, 21, 20000);
    struct rank_model *m = model_of(t);
    struct rank_info in;
    double ll, ll0;

    rank_model_info(m, &in);
    cr_expect(in.rows < 20000 * 0.45, "negatives were not dropped: %llu rows", (unsigned long long)in.rows);
    cr_expect_float_eq(in.neg_rate, 0.2, 1e-12);
    double cal = calibration(m, 77, 20000, &ll, &ll0);
    cr_expect(fabs(cal - 1) < 0.05, "sum(p)/sum(y) = %.4f on rows that were not downsampled (validation: %.4f, a %.3f)", cal, in.valid_calibration, m->cal_a);
    cr_expect(ll < ll0 - 0.01, "log loss %.4f, the base rate's %.4f", ll, ll0);
    rank_model_close(m);
    rank_trainer_free(t);
}

Test(rank_train, learns_the_signal, .timeout = 120)
{
    struct rank_train_opts o = {.seed = 1, .bits = 14, .crosses = "site*ad", .l1 = 1, .l2 = 10, .alpha = 0.1};
    struct rank_trainer *t = train(&o, 31, 6000);
    struct rank_model *m = model_of(t);
    struct rank_info in;
    double ll, ll0;

    rank_model_info(m, &in);
    cr_expect_eq(in.ncrosses, 1u);
    cr_expect(in.valid_auc > 0.6, "cross-validated AUC %.3f", in.valid_auc);
    cr_expect(fabs(in.valid_calibration - 1) < 0.02, "validation sum(p)/sum(y) %.4f", in.valid_calibration);
    cr_expect_eq(in.valid_rows, 6000u, "5-fold cross-validation scores every row once");
    double cal = calibration(m, 99, 10000, &ll, &ll0);
    cr_expect(ll < ll0 - 0.01, "log loss %.4f, base rate's %.4f", ll, ll0);
    cr_expect(fabs(cal - 1) < 0.06, "sum(p)/sum(y) %.4f", cal);
    rank_model_close(m);
    rank_trainer_free(t);
}

Test(rank_train, serving_scores_like_predict_row)
{
    struct rank_train_opts o = quick;
    o.crosses = "site*ad,count*ad";
    o.family = "fm";
    o.fm_k = 3;
    struct rank_trainer *t = train(&o, 41, 2000);
    struct rank_model *m = model_of(t);
    struct ctr_row *r = calloc(1, sizeof(*r));
    static struct rank_req rq;
    struct rank_cand cands[5];

    rng_state = 1234;
    syn_row(r, 1);
    rank_req_begin(&rq, m);
    cr_assert_eq(rank_req_add_num(&rq, 3, r->v[3].x), 0); /* out of order on purpose */
    cr_assert_eq(rank_req_add_token(&rq, 0, r->v[0].token), 0);
    cr_assert_eq(rank_req_add(&rq, 1, "7", 1), 0);
    cr_expect_eq(rank_req_add_num(&rq, 1, 3), ADS_EINVAL, "a number for a categorical field");
    cr_expect_eq(rank_req_add_token(&rq, 40, 1), ADS_EINVAL, "a field outside the schema");
    rank_req_commit(&rq);
    cr_expect_eq(rank_req_add_token(&rq, 0, 1), ADS_EINVAL, "an add after commit");
    for (unsigned a = 0; a < 5; a++) {
        char b[8];
        int n = snprintf(b, sizeof(b), "%u", a);
        rank_cand_init(&cands[a]);
        cr_assert_eq(rank_cand_add(&cands[a], 2, b, (size_t)n), 0);
    }
    for (unsigned a = 0; a < 5; a++) {
        r->n = 4;
        r->v[1] = tok(1, 7);
        r->v[2] = tok(2, a);
        double want = rank_model_predict_row(m, r), got = rank_req_score(&rq, &cands[a]);
        cr_expect_float_eq(got, want, 1e-12, "candidate %u: %.15f vs %.15f", a, got, want);
    }
    /* no candidate: the request alone */
    struct ctr_value req_only[3] = {r->v[3], r->v[0], tok(1, 7)};
    r->n = 3;
    memcpy(r->v, req_only, sizeof(req_only));
    cr_expect_float_eq(rank_req_score(&rq, NULL), rank_model_predict_row(m, r), 1e-12);
    free(r);
    rank_model_close(m);
    rank_trainer_free(t);
}

/* Rare tokens share their field's weight: the model file carries the bitmap
 * of frequent buckets, two tokens never seen score alike, and the serving
 * path still scores exactly like predict_row. */
Test(rank_train, rare_tokens_share_a_weight)
{
    struct rank_train_opts o = quick;
    o.min_count = 3;
    struct rank_trainer *t = train(&o, 51, 3000);
    struct rank_model *m = model_of(t);
    struct ctr_row *r = calloc(1, sizeof(*r));
    struct rank_info in;
    static struct rank_req rq;
    struct rank_cand c;

    rank_model_info(m, &in);
    cr_expect_eq(in.min_count, 3u);
    cr_assert_neq(m->cfg.freq, NULL, "no bitmap in the file");
    /* 500 users in 3,000 rows: many seen fewer than 3 times; 20 sites: every one frequent */
    rng_state = 777;
    syn_row(r, 1);
    r->v[0] = tok(0, 100000);
    double p1 = rank_model_predict_row(m, r);
    r->v[0] = tok(0, 100001);
    cr_expect_float_eq(rank_model_predict_row(m, r), p1, 1e-15, "two unseen users, two scores");
    struct ctr_row keep = *r;
    r->v[1] = tok(1, 0);
    double s0 = rank_model_predict_row(m, r);
    r->v[1] = tok(1, 1);
    cr_expect(fabs(rank_model_predict_row(m, r) - s0) > 1e-6, "frequent sites lost their own weights");

    *r = keep;
    rank_req_begin(&rq, m);
    cr_assert_eq(rank_req_add_token(&rq, 0, r->v[0].token), 0);
    cr_assert_eq(rank_req_add_token(&rq, 1, r->v[1].token), 0);
    cr_assert_eq(rank_req_add_num(&rq, 3, r->v[3].x), 0);
    rank_req_commit(&rq);
    rank_cand_init(&c);
    c.v[c.n++] = r->v[2];
    cr_expect_float_eq(rank_req_score(&rq, &c), rank_model_predict_row(m, r), 1e-12);

    /* rank_trainer_new refuses a threshold out of range */
    struct ctr_schema *sc = calloc(1, sizeof(*sc));
    struct rank_trainer *bad = NULL;
    syn_schema(sc);
    o.min_count = 1001;
    cr_expect_eq(rank_trainer_new(sc, &o, &bad, NULL), ADS_EINVAL);
    free(sc);
    free(r);
    rank_model_close(m);
    rank_trainer_free(t);
}

/* Numbers: the default featurization has a continuous, a quadratic and a
 * product weight; a product of a request number and a candidate number is
 * emitted once whichever side holds which. */
Test(rank_train, number_products_serve_like_predict_row)
{
    struct ctr_schema *s = calloc(1, sizeof(*s));
    struct ctr_row *r = calloc(1, sizeof(*r));
    struct rank_trainer *t = NULL;
    struct ads_diag d = {0};
    struct rank_train_opts o = quick;
    static struct rank_req rq;
    struct rank_cand c;

    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "nums");
    s->nfields = 4;
    snprintf(s->fields[0].name, CTR_NAME_MAX, "a");
    s->fields[0].kind = CTR_CAT;
    snprintf(s->fields[1].name, CTR_NAME_MAX, "x");
    snprintf(s->fields[2].name, CTR_NAME_MAX, "y");
    snprintf(s->fields[3].name, CTR_NAME_MAX, "z");
    cr_assert_eq(rank_trainer_new(s, &o, &t, &d), 0, "%s", d.message);
    rng_state = 5;
    for (int i = 0; i < 2000; i++) {
        double x = floor(unit() * 50), y = floor(unit() * 50), zz = unit() * 10;
        r->n = 4;
        r->line = (uint64_t)i + 1;
        r->v[0] = tok(0, (unsigned)(unit() * 5));
        r->v[1] = (struct ctr_value){.field = 1, .kind = CTR_NUM, .x = x};
        r->v[2] = (struct ctr_value){.field = 2, .kind = CTR_NUM, .x = y};
        r->v[3] = (struct ctr_value){.field = 3, .kind = CTR_NUM, .x = zz};
        double lz = -2 + 0.002 * x * y - 0.01 * zz * zz;
        r->label = unit() < 1 / (1 + exp(-lz)) ? 1.0f : 0.0f;
        cr_assert_eq(rank_trainer_add(t, r), 0);
    }
    cr_assert_eq(rank_trainer_fit(t, NULL, NULL, &d), 0, "%s", d.message);
    struct rank_model *m = model_of(t);
    cr_expect_eq(m->cfg.numbins, RANK_NUM_DEFAULT);
    cr_expect_neq(m->w[rank__prod_bucket(&m->cfg, 1, 2)], 0.0f, "no product weight was learned");
    cr_expect_eq(rank__prod_bucket(&m->cfg, 1, 2), rank__prod_bucket(&m->cfg, 2, 1));

    r->n = 4;
    r->v[0] = tok(0, 2);
    r->v[1] = (struct ctr_value){.field = 1, .kind = CTR_NUM, .x = 30};
    r->v[2] = (struct ctr_value){.field = 2, .kind = CTR_NUM, .x = 7};
    r->v[3] = (struct ctr_value){.field = 3, .kind = CTR_NUM, .x = -2.5};
    rank_req_begin(&rq, m);
    cr_assert_eq(rank_req_add_num(&rq, 2, 7), 0);
    cr_assert_eq(rank_req_add_num(&rq, 3, -2.5), 0);
    rank_req_commit(&rq);
    /* The candidate holds a token and a number (filled directly: the API adds tokens only). */
    rank_cand_init(&c);
    c.v[c.n++] = r->v[0];
    c.v[c.n++] = r->v[1];
    cr_expect_float_eq(rank_req_score(&rq, &c), rank_model_predict_row(m, r), 1e-12);
    rank_model_close(m);
    rank_trainer_free(t);
    free(s);
    free(r);
}

Test(rank_train, limits_are_counted)
{
    struct rank_trainer *t = train(&quick, 2, 500);
    struct rank_model *m = model_of(t);
    static struct rank_req rq;
    struct rank_cand c;

    rank_req_begin(&rq, m);
    for (int i = 0; i < RANK_REQ_MAX; i++)
        cr_assert_eq(rank_req_add_token(&rq, 0, (uint64_t)i), 0);
    cr_expect_eq(rank_req_add_token(&rq, 0, 1), ADS_EOVERLOADED);
    cr_expect_eq(rank_req_dropped(&rq), 1u);
    rank_req_commit(&rq);
    double p = rank_req_score(&rq, NULL);
    cr_expect(p > 0 && p < 1);
    rank_cand_init(&c);
    for (int i = 0; i < RANK_CAND_MAX; i++)
        cr_assert_eq(rank_cand_add(&c, 2, "x", 1), 0);
    cr_expect_eq(rank_cand_add(&c, 2, "x", 1), ADS_EOVERLOADED);
    cr_expect_eq(rank_cand_add(&c, CTR_MAX_FIELDS, "x", 1), ADS_EINVAL);
    rank_model_close(m);
    rank_trainer_free(t);
}

Test(rank_train, bad_input_refused)
{
    struct ctr_schema *s = calloc(1, sizeof(*s));
    struct ctr_row *r = calloc(1, sizeof(*r));
    struct rank_trainer *t = NULL;
    struct ads_diag d = {0};
    struct rank_train_opts o = {0};

    syn_schema(s);
    o.family = "gbdt";
    cr_expect_eq(rank_trainer_new(s, &o, &t, &d), ADS_EINVAL);
    cr_expect(strstr(d.message, "gbdt") != NULL, "%s", d.message);
    o = (struct rank_train_opts){.crosses = "site*nope"};
    cr_expect_eq(rank_trainer_new(s, &o, &t, &d), ADS_EINVAL);
    cr_expect(strstr(d.message, "site*nope") != NULL, "%s", d.message);
    o = (struct rank_train_opts){.crosses = "site*site"};
    cr_expect_eq(rank_trainer_new(s, &o, &t, &d), ADS_EINVAL);
    o = (struct rank_train_opts){.neg_rate = 1.5};
    cr_expect_eq(rank_trainer_new(s, &o, &t, &d), ADS_EINVAL);
    o = (struct rank_train_opts){.bits = 30};
    cr_expect_eq(rank_trainer_new(s, &o, &t, &d), ADS_EINVAL);

    cr_assert_eq(rank_trainer_new(s, NULL, &t, &d), 0);
    cr_expect_eq(rank_trainer_write(t, "/tmp/never", &d), ADS_EINVAL, "write before fit");
    r->label = 0.5f;
    cr_expect_eq(rank_trainer_add(t, r), ADS_EINVAL);
    r->label = 1;
    r->n = 1;
    r->v[0] = (struct ctr_value){.field = 4, .kind = CTR_CAT};
    cr_expect_eq(rank_trainer_add(t, r), ADS_EINVAL);
    r->n = 0;
    for (int i = 0; i < 20; i++)
        cr_assert_eq(rank_trainer_add(t, r), 0);
    cr_expect_eq(rank_trainer_fit(t, NULL, NULL, &d), ADS_EINVAL, "only clicks");
    cr_expect(strstr(d.message, "non-clicks") != NULL, "%s", d.message);
    rank_trainer_free(t);
    rank_trainer_free(NULL);
    free(s);
    free(r);
}

Test(rank_train, adsmith_schema)
{
    struct ctr_schema *s = calloc(1, sizeof(*s));

    rank_schema_adsmith(s);
    cr_expect_str_eq(s->id, "adsmith");
    cr_expect_eq(s->nfields, (uint32_t)RANK_F_COUNT);
    cr_expect_str_eq(s->fields[RANK_F_SITE].name, "site");
    cr_expect_str_eq(s->fields[RANK_F_CREATIVE].name, "creative");
    cr_expect_eq(s->fields[RANK_F_FREQ].kind, CTR_NUM);
    cr_expect_eq(rank_field_group(RANK_F_SEGMENT), RANK_GROUP_USER);
    cr_expect_eq(rank_field_group(RANK_F_HOUR), RANK_GROUP_CONTEXT);
    cr_expect_eq(rank_field_group(RANK_F_CAMPAIGN), RANK_GROUP_CANDIDATE);
    cr_expect_eq(rank_field_group(RANK_F_COUNT), -1);
    free(s);
}

/* A categorical value too large for the float arithmetic (libsvm "idx:1e39")
 * is dropped: the prediction stays a probability. */
Test(rank_train, huge_categorical_values_are_dropped)
{
    struct rank_trainer *t = train(&quick, 7, 2000);
    struct rank_model *m = model_of(t);
    struct ctr_row r;

    syn_row(&r, 1);
    double base = rank_model_predict_row(m, &r);
    r.v[0].x = 1e39;
    double p = rank_model_predict_row(m, &r);
    cr_expect(p > 0 && p < 1, "prediction %g with a huge value", p);
    r.v[0].x = 1;
    r.v[0].token = 0; /* an unseen token weighs about what a dropped one does */
    cr_expect(fabs(p - rank_model_predict_row(m, &r)) < 0.2, "%g vs %g (base %g)", p,
              rank_model_predict_row(m, &r), base);
    rank_model_close(m);
    rank_trainer_free(t);
}
