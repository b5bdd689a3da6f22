#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adsmith/learn.h"
#include "adsmith/mdl.h"
#include "adsmith/rank.h"

/* The online learner (service/model/learn.c) driven by lrn_step() with a
 * clock of our own, over a small model of the serving schema trained here:
 * progressive-validation arithmetic, the bounded pending table, window
 * expiry, clicks, publishing through mdl and the restart after a reload. */

Test(learn_pv, arithmetic)
{
    struct lrn_pv pv;
    struct lrn_pv_summary s;

    cr_assert_eq(lrn_pv_init(&pv, 100), 0);
    lrn_pv_get(&pv, &s);
    cr_assert_eq(s.examples, 0);
    cr_assert_float_eq(s.auc, 0.5, 1e-15);
    lrn_pv_add(&pv, 0.9, 1);
    lrn_pv_add(&pv, 0.2, 0);
    lrn_pv_add(&pv, 0.6, 0);
    lrn_pv_add(&pv, 0.7, 1);
    lrn_pv_get(&pv, &s);
    cr_assert_eq(s.examples, 4);
    cr_assert_eq(s.positives, 2);
    cr_assert_float_eq(s.logloss, -(log(0.9) + log(0.8) + log(0.4) + log(0.7)) / 4, 1e-12);
    cr_assert_float_eq(s.calibration, (0.9 + 0.2 + 0.6 + 0.7) / 2, 1e-12);
    cr_assert_float_eq(s.auc, 1.0, 1e-15);
    /* One positive below a negative: 5 of 6 pairs in order. */
    lrn_pv_add(&pv, 0.5, 1);
    lrn_pv_get(&pv, &s);
    cr_assert_float_eq(s.auc, 5.0 / 6, 1e-12);
    /* A tie between a positive and a negative counts half: 7.5 of 9. */
    lrn_pv_add(&pv, 0.5, 0);
    lrn_pv_get(&pv, &s);
    cr_assert_float_eq(s.auc, 7.5 / 9, 1e-12);
    /* p = 0 for a click is clamped, not infinite. */
    lrn_pv_add(&pv, 0, 1);
    lrn_pv_get(&pv, &s);
    cr_assert(isfinite(s.logloss));
    lrn_pv_done(&pv);
}

Test(learn_pv, window)
{
    struct lrn_pv pv;
    struct lrn_pv_summary s;

    cr_assert_eq(lrn_pv_init(&pv, 2), 0);
    lrn_pv_add(&pv, 0.1, 1); /* out of order, but leaves the window */
    lrn_pv_add(&pv, 0.9, 0);
    lrn_pv_add(&pv, 0.8, 1);
    lrn_pv_add(&pv, 0.3, 0);
    lrn_pv_get(&pv, &s);
    cr_assert_eq(s.examples, 4);
    cr_assert_eq(s.auc_examples, 2);
    cr_assert_float_eq(s.auc, 1.0, 1e-15, "only the last 2 examples count");
    cr_assert_float_eq(s.calibration, (0.1 + 0.9 + 0.8 + 0.3) / 2, 1e-12, "calibration counts everything");
    lrn_pv_done(&pv);
}

static struct mdl *m;
static struct lrn *l;
static char model_path[64];

/* A model of the "adsmith" schema (site, freq, creative), 2^10 weights, in a temporary file. */
static void train_file(void)
{
    struct ctr_schema s;
    struct rank_train_opts opts = {.seed = 1, .bits = 10, .epochs = 2, .l1 = 0, .l2 = 10, .alpha = 0.1};
    struct rank_trainer *t;
    static struct ctr_row row;
    struct ads_diag d;
    int fd;

    snprintf(model_path, sizeof(model_path), "/tmp/adsmith-test-learn-XXXXXX");
    fd = mkstemp(model_path);
    cr_assert_geq(fd, 0);
    close(fd);
    rank_schema_adsmith(&s);
    cr_assert_eq(rank_trainer_new(&s, &opts, &t, &d), 0, "%s", d.message);
    for (int i = 0; i < 400; i++) {
        char site[16], cr[16];
        int ns = snprintf(site, sizeof(site), "s%d", i % 7), nc = snprintf(cr, sizeof(cr), "c%d", i % 5);
        row.n = 3;
        row.line = (uint64_t)i + 1;
        row.v[0] = (struct ctr_value){.field = RANK_F_SITE, .kind = CTR_CAT, .token = ctr_hash(site, (size_t)ns, 0), .x = 1};
        row.v[1] = (struct ctr_value){.field = RANK_F_FREQ, .kind = CTR_NUM, .x = i % 4};
        row.v[2] = (struct ctr_value){.field = RANK_F_CREATIVE, .kind = CTR_CAT, .token = ctr_hash(cr, (size_t)nc, 0), .x = 1};
        row.label = (i % 7 == 0 || i % 11 == 0) ? 1.0f : 0.0f;
        cr_assert_eq(rank_trainer_add(t, &row), 0);
    }
    cr_assert_eq(rank_trainer_fit(t, NULL, NULL, &d), 0, "%s", d.message);
    cr_assert_eq(rank_trainer_write(t, model_path, &d), 0, "%s", d.message);
    rank_trainer_free(t);
}

static void start(uint32_t window_s, uint32_t publish_s, uint32_t pending_max)
{
    struct ads_diag d;
    struct lrn_opts o = {window_s, publish_s, pending_max};

    train_file();
    cr_assert_eq(mdl_start(model_path, 1, &m, &d), 0, "%s", d.message);
    cr_assert_eq(lrn_new(&o, m, &l, &d), 0, "%s", d.message);
}

static void stop(void)
{
    lrn_free(l);
    mdl_stop(m);
    unlink(model_path);
}

/* Site "hot" also carries a deal: a field's presence has a weight of its own
 * whatever the model does with tokens it never saw in training. */
static void add_imp(struct lrn_batch *b, const char *id, const char *site)
{
    struct ctr_value v[3] = {
        {.field = RANK_F_SITE, .kind = CTR_CAT, .token = ctr_hash(site, strlen(site), 0), .x = 1},
        {.field = RANK_F_FREQ, .kind = CTR_NUM, .x = 3},
        {.field = RANK_F_DEAL, .kind = CTR_CAT, .token = ctr_hash("d1", 2, 0), .x = 1},
    };
    cr_assert_eq(lrn_batch_impression(b, id, v, strcmp(site, "hot") == 0 ? 3 : 2), 0);
}

static void submit_imps(int first, int count, const char *site)
{
    struct lrn_batch *b;
    char id[32];

    cr_assert_eq(lrn_batch_new((uint32_t)count, &b), 0);
    for (int i = first; i < first + count; i++) {
        snprintf(id, sizeof(id), "imp-%d", i);
        add_imp(b, id, site);
    }
    cr_assert_eq(lrn_submit(l, b), 0);
}

static void submit_click(const char *id)
{
    struct lrn_batch *b;

    cr_assert_eq(lrn_batch_new(1, &b), 0);
    cr_assert_eq(lrn_batch_click(b, id), 0);
    cr_assert_eq(lrn_submit(l, b), 0);
}

Test(learn, starts_from_the_served_model)
{
    struct lrn_stats s;
    struct mdl_stats ms;

    start(1, 1, 10);
    lrn_stats(l, &s);
    mdl_stats(m, &ms);
    cr_assert(s.enabled);
    cr_assert_str_eq(s.status, "learning");
    cr_assert_str_eq(s.base_version, ms.version);
    cr_assert_eq(ms.generation, 1);
    stop();
}

Test(learn, pending_is_bounded)
{
    struct lrn_stats s;

    start(60, 3600, 3);
    submit_imps(0, 5, "s1");
    lrn_step(l, 1000);
    lrn_stats(l, &s);
    cr_assert_eq(s.impressions, 5);
    cr_assert_eq(s.pending, 3);
    cr_assert_eq(s.early_negatives, 2, "the two oldest made room");
    cr_assert_eq(s.negatives, 2);
    cr_assert_eq(s.pv.examples, 2);
    /* The oldest went: a click on imp-0 finds nothing, one on imp-4 its impression. */
    submit_click("imp-0");
    submit_click("imp-4");
    lrn_step(l, 1001);
    lrn_stats(l, &s);
    cr_assert_eq(s.unmatched, 1);
    cr_assert_eq(s.positives, 1);
    cr_assert_eq(s.pending, 2);
    stop();
}

Test(learn, window_expiry_makes_negatives)
{
    struct lrn_stats s;

    start(2, 3600, 100);
    submit_imps(0, 3, "s1");
    lrn_step(l, 10000);
    submit_imps(3, 2, "s1");
    lrn_step(l, 11000);
    lrn_stats(l, &s);
    cr_assert_eq(s.pending, 5);
    cr_assert_eq(s.negatives, 0);
    lrn_step(l, 11999);
    lrn_stats(l, &s);
    cr_assert_eq(s.negatives, 0, "the window is 2 s from arrival");
    lrn_step(l, 12000);
    lrn_stats(l, &s);
    cr_assert_eq(s.negatives, 3, "the first three waited 2 s");
    cr_assert_eq(s.pending, 2);
    /* A click after the window: too late. */
    submit_click("imp-1");
    submit_click("imp-3");
    lrn_step(l, 12500);
    lrn_stats(l, &s);
    cr_assert_eq(s.unmatched, 1);
    cr_assert_eq(s.positives, 1);
    lrn_step(l, 13000);
    lrn_stats(l, &s);
    cr_assert_eq(s.negatives, 4);
    cr_assert_eq(s.pending, 0);
    cr_assert_eq(s.pv.examples, 5);
    cr_assert_eq(s.pv.positives, 1);
    stop();
}

Test(learn, repeated_impression_is_ignored)
{
    struct lrn_stats s;

    start(60, 3600, 100);
    submit_imps(0, 2, "s1");
    submit_imps(1, 2, "s1"); /* imp-1 again */
    lrn_step(l, 1);
    lrn_stats(l, &s);
    cr_assert_eq(s.impressions, 4);
    cr_assert_eq(s.repeated, 1);
    cr_assert_eq(s.pending, 3);
    stop();
}

Test(learn, publishes_and_restarts_after_a_reload)
{
    struct lrn_stats s;
    struct mdl_stats ms, before;
    struct ads_diag d;
    char v1[32];

    start(1, 2, 1000);
    mdl_stats(m, &before);
    /* Site "hot" always clicks, "cold" never does. */
    for (int round = 0; round < 20; round++) {
        submit_imps(round * 20, 10, "hot");
        submit_imps(round * 20 + 10, 10, "cold");
        for (int i = round * 20; i < round * 20 + 10; i++) {
            char id[32];
            snprintf(id, sizeof(id), "imp-%d", i);
            submit_click(id);
        }
        lrn_step(l, 1000 + (uint64_t)round * 100);
    }
    lrn_step(l, 5000); /* the cold ones expire; publish_s has passed */
    lrn_stats(l, &s);
    cr_assert_eq(s.positives, 200);
    cr_assert_eq(s.negatives, 200);
    cr_assert_eq(s.publishes, 1, "%s", s.last_error);
    mdl_stats(m, &ms);
    cr_assert_str_eq(ms.source, "online");
    cr_assert_str_eq(ms.version, s.version);
    cr_assert_eq(strncmp(ms.version, "lr-online-", 10), 0, "%s", ms.version);
    cr_assert_eq(ms.generation, before.generation, "a publish is no new generation");
    cr_assert_gt(s.pv.auc, 0.8, "hot and cold are told apart as the learner goes: %g", s.pv.auc);

    /* The published model ranks hot above cold. */
    struct rank_req rq;
    const struct rank_model *cur = mdl_enter(m, 0);
    double hot, cold;
    rank_req_begin(&rq, cur);
    rank_req_add(&rq, RANK_F_SITE, "hot", 3);
    rank_req_add_num(&rq, RANK_F_FREQ, 3);
    rank_req_add(&rq, RANK_F_DEAL, "d1", 2);
    rank_req_commit(&rq);
    hot = rank_req_score(&rq, NULL);
    rank_req_begin(&rq, cur);
    rank_req_add(&rq, RANK_F_SITE, "cold", 4);
    rank_req_add_num(&rq, RANK_F_FREQ, 3);
    rank_req_commit(&rq);
    cold = rank_req_score(&rq, NULL);
    mdl_exit(m, 0);
    cr_assert_gt(hot, cold, "hot %g, cold %g", hot, cold);

    /* Nothing new learned: no publish. */
    snprintf(v1, sizeof(v1), "%s", s.version);
    lrn_step(l, 9000);
    lrn_stats(l, &s);
    cr_assert_eq(s.publishes, 1);

    /* A reload replaces the online model; the learner restarts from it. */
    cr_assert_eq(mdl_reload(m, &d), 0, "%s", d.message);
    mdl_stats(m, &ms);
    cr_assert_str_eq(ms.source, "file");
    cr_assert_str_eq(ms.version, before.version);
    cr_assert_eq(ms.generation, 2);
    submit_imps(1000, 1, "hot");
    submit_click("imp-1000");
    lrn_step(l, 9100);
    lrn_stats(l, &s);
    cr_assert_eq(s.resets, 1);
    cr_assert_str_eq(s.base_version, before.version);
    cr_assert_eq(s.positives, 201);
    lrn_step(l, 12000);
    lrn_stats(l, &s);
    cr_assert_eq(s.publishes, 2, "%s", s.last_error);
    cr_assert_str_neq(s.version, v1, "learned from the reloaded weights, not the old state");
    stop();
}

Test(learn, full_queue_drops)
{
    struct lrn_stats s;
    struct lrn_batch *b;
    int dropped = 0;

    start(60, 3600, 1000);
    for (int k = 0; k <= LRN_QUEUE_MAX / 1000; k++) {
        cr_assert_eq(lrn_batch_new(1000, &b), 0);
        for (int i = 0; i < 1000; i++) {
            char id[32];
            snprintf(id, sizeof(id), "q-%d-%d", k, i);
            cr_assert_eq(lrn_batch_click(b, id), 0);
        }
        if (lrn_submit(l, b) == ADS_EOVERLOADED)
            dropped++;
    }
    cr_assert_eq(dropped, 1);
    lrn_stats(l, &s);
    cr_assert_eq(s.dropped, 1000);
    lrn_step(l, 1);
    lrn_stats(l, &s);
    cr_assert_eq(s.clicks, LRN_QUEUE_MAX);
    cr_assert_eq(s.unmatched, LRN_QUEUE_MAX);
    stop();
}

Test(learn, batch_limits)
{
    struct lrn_batch *b;
    struct ctr_value v[EVT_MAX_FEATURES + 1];
    char longid[EVT_ID_MAX + 2];

    memset(v, 0, sizeof(v));
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    cr_assert_eq(lrn_batch_new(0, &b), ADS_EINVAL);
    cr_assert_eq(lrn_batch_new(EVT_MAX_BATCH + 1, &b), ADS_EINVAL);
    cr_assert_eq(lrn_batch_new(1, &b), 0);
    cr_assert_eq(lrn_batch_click(b, ""), ADS_EINVAL);
    cr_assert_eq(lrn_batch_click(b, longid), ADS_EINVAL);
    cr_assert_eq(lrn_batch_impression(b, "a", v, EVT_MAX_FEATURES + 1), ADS_EINVAL);
    cr_assert_eq(lrn_batch_impression(b, "a", v, EVT_MAX_FEATURES), 0);
    cr_assert_eq(lrn_batch_click(b, "a"), ADS_EOVERLOADED);
    cr_assert_eq(lrn_batch_count(b), 1);
    lrn_batch_free(b);
}

Test(learn, bad_options)
{
    struct ads_diag d;
    struct lrn *x;
    struct lrn_opts o = {0, 1, 1};

    train_file();
    cr_assert_eq(mdl_start(model_path, 1, &m, &d), 0, "%s", d.message);
    cr_assert_eq(lrn_new(&o, m, &x, &d), ADS_EINVAL);
    o = (struct lrn_opts){1, 1, LRN_PENDING_MAX + 1};
    cr_assert_eq(lrn_new(&o, m, &x, &d), ADS_EINVAL);
    mdl_stop(m);
    unlink(model_path);
}
