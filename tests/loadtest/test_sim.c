/*
 * Tests of adsmith-load's simulator (loadtest/load/sim.c): the AUC against
 * hand-counted and analytic values, the oracle's AUC on the harness's own
 * generated bid traffic against what its probabilities predict, the
 * auction's rules, determinism, the uplift interval, and the MessagePack
 * round trip of --msgpack bodies.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../loadtest/load/gen.h"
#include "../../loadtest/load/rng.h"
#include "../../loadtest/load/sim.h"

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static double std_normal(struct lrng *r)
{
    double u1 = lrng_unit(r), u2 = lrng_unit(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

Test(sim, auc_by_hand)
{
    /* Positives 0.35 and 0.8, negatives 0.1 and 0.4: 3 of the 4 pairs ordered. */
    const double s[] = {0.1, 0.4, 0.35, 0.8};
    const uint8_t y[] = {0, 0, 1, 1};
    double auc;
    cr_assert_eq(sim_auc(s, y, 4, &auc), 0);
    cr_assert_float_eq(auc, 0.75, 1e-12);
    /* A tie between a positive and a negative counts one half. */
    const double t[] = {0.2, 0.2, 0.9};
    const uint8_t z[] = {0, 1, 1};
    cr_assert_eq(sim_auc(t, z, 3, &auc), 0);
    cr_assert_float_eq(auc, 0.75, 1e-12);
    const uint8_t none[] = {0, 0, 0};
    cr_assert_eq(sim_auc(t, none, 3, &auc), -EINVAL, "no positive: no AUC");
}

Test(sim, constant_model_gives_one_half)
{
    enum { N = 10000 };
    static double s[N], p[N];
    static uint8_t y[N];
    struct lrng r;
    lrng_seed(&r, 5);
    for (size_t i = 0; i < N; i++) {
        s[i] = 0.03;
        p[i] = 0.03;
        y[i] = lrng_chance(&r, 0.03) != 0;
    }
    double auc, exp_auc;
    cr_assert_eq(sim_auc(s, y, N, &auc), 0);
    cr_assert_float_eq(auc, 0.5, 1e-12);
    cr_assert_eq(sim_auc_expected(p, N, &exp_auc), 0);
    cr_assert_float_eq(exp_auc, 0.5, 1e-12);
}

/* The AUC of p = sigmoid(a + b x), x ~ N(0,1), on labels drawn from p, by numerical integration. */
static double analytic_auc(double a, double b)
{
    enum { G = 4000 };
    static double w[G], p[G];
    double lo = -8, hi = 8, dx = (hi - lo) / G;
    for (int i = 0; i < G; i++) {
        double x = lo + (i + 0.5) * dx;
        w[i] = exp(-x * x / 2) / sqrt(2 * 3.14159265358979323846) * dx;
        p[i] = sigmoid(a + b * x);
    }
    /* P(score_pos > score_neg) = sum_{i > j} w_i p_i w_j (1 - p_j) / (P(pos) P(neg)); b > 0 so p rises with x. */
    double pos = 0, neg = 0, num = 0, below = 0;
    for (int i = 0; i < G; i++) {
        num += w[i] * p[i] * below + 0.5 * w[i] * p[i] * w[i] * (1 - p[i]);
        below += w[i] * (1 - p[i]);
        pos += w[i] * p[i];
        neg += w[i] * (1 - p[i]);
    }
    return num / (pos * neg);
}

Test(sim, sampled_auc_of_a_logistic_model_matches_the_analytic_value)
{
    enum { N = 200000 };
    static double p[N];
    static uint8_t y[N];
    const double a = -2.0, b = 1.0;
    double want = analytic_auc(a, b);
    cr_assert(want > 0.7 && want < 0.8, "analytic AUC %f", want);
    struct lrng r;
    lrng_seed(&r, 42);
    size_t pos = 0;
    for (size_t i = 0; i < N; i++) {
        p[i] = sigmoid(a + b * std_normal(&r));
        y[i] = lrng_unit(&r) < p[i];
        pos += y[i];
    }
    double auc, exp_auc;
    cr_assert_eq(sim_auc(p, y, N, &auc), 0);
    cr_assert_eq(sim_auc_expected(p, N, &exp_auc), 0);
    /* About 30,000 positives: the AUC's standard error is near 0.0017; 0.008 is over four of them. */
    cr_assert(fabs(auc - want) < 0.008, "sampled AUC %f, analytic %f (%zu positives)", auc, want, pos);
    cr_assert(fabs(exp_auc - want) < 0.004, "expected AUC %f, analytic %f", exp_auc, want);
    /* A model that ranks backwards scores 1 - AUC. */
    for (size_t i = 0; i < N; i++)
        p[i] = -p[i];
    double back;
    cr_assert_eq(sim_auc(p, y, N, &back), 0);
    cr_assert_float_eq(back, 1 - auc, 1e-9);
}

Test(sim, oracle_auc_on_generated_bid_traffic_is_what_its_probabilities_predict)
{
    struct lgen_cfg gc = {.seed = 7, .users = 50000, .campaigns = 30, .zipf_s = 1.1, .batch = 1};
    struct lgen g;
    struct lgen_req req = {0};
    cr_assert_eq(lgen_init(&g, &gc, 0), 0);
    struct sim_cfg sc;
    sim_cfg_default(&sc, 7);
    enum { N = 150000 };
    static double p[N];
    static uint8_t y[N];
    size_t n = 0, clicks = 0;
    struct lrng pick;
    lrng_seed(&pick, 99);
    while (n < N) {
        cr_assert_eq(lgen_make(&g, LGEN_BID, 0, 1763880000 + (int64_t)(n / 50), &req), 0);
        const struct lgen_bid_info *bi = &req.bid;
        cr_assert(bi->nimp >= 1 && bi->nimp <= LGEN_IMPS_MAX);
        for (unsigned i = 0; i < bi->nimp && n < N; i++) {
            const struct lgen_imp_info *ii = &bi->imp[i];
            struct sim_features f = {.user = bi->user,
                                     .placement = bi->placement,
                                     .category = bi->category,
                                     .app = bi->app,
                                     .devtype = bi->devtype,
                                     .hour = bi->hour,
                                     .pos = ii->pos,
                                     .w = ii->w,
                                     .h = ii->h,
                                     .fmt = ii->fmt};
            char campaign[LGEN_ID_MAX], key[128];
            lgen_campaign_id(lrng_below(&pick, 30), campaign);
            const char *variant = lrng_chance(&pick, 0.5) ? "base" : "v1";
            p[n] = sim_pclick(&sc, &f, campaign, variant);
            snprintf(key, sizeof(key), "%s/%u", bi->auction, i + 1);
            y[n] = sim_uniform(&sc, key, 41) < p[n];
            clicks += y[n];
            n++;
        }
    }
    lgen_buf_free(&req.body);
    lgen_buf_free(&req.response);
    double ctr = (double)clicks / N;
    cr_assert(ctr > 0.005 && ctr < 0.05, "the oracle's CTR is %f", ctr);
    double auc, exp_auc;
    cr_assert_eq(sim_auc(p, y, N, &auc), 0);
    cr_assert_eq(sim_auc_expected(p, N, &exp_auc), 0);
    /* The features carry signal: the oracle ranks well above chance. */
    cr_assert(exp_auc > 0.7, "expected oracle AUC %f", exp_auc);
    /* With ~2,500 clicks the AUC's standard error is about 0.005: 0.022 is over four. */
    cr_assert(fabs(auc - exp_auc) < 0.022, "oracle AUC %f on %zu clicks, expected %f", auc, clicks, exp_auc);
}

Test(sim, the_oracle_is_deterministic_and_keyed_by_the_seed)
{
    struct sim_cfg a, b;
    sim_cfg_default(&a, 1);
    sim_cfg_default(&b, 2);
    struct sim_features f = {
        .user = 17, .placement = 3, .category = 2, .devtype = 4, .hour = 20, .pos = 1, .w = 300, .h = 250};
    double p1 = sim_pclick(&a, &f, "load-c-00001", "base"), p2 = sim_pclick(&a, &f, "load-c-00001", NULL);
    cr_assert_eq(p1, p2, "NULL and \"base\" are both the control arm");
    cr_assert_eq(p1, sim_pclick(&a, &f, "load-c-00001", ""));
    cr_assert_neq(p1, sim_pclick(&b, &f, "load-c-00001", "base"), "another seed, another model");
    cr_assert_neq(p1, sim_pclick(&a, &f, "load-c-00002", "base"));
    cr_assert_eq(sim_variant_effect(&a, "load-c-00001", "base"), 0);
    cr_assert_eq(sim_uniform(&a, "x", 1), sim_uniform(&a, "x", 1));
    cr_assert_neq(sim_uniform(&a, "x", 1), sim_uniform(&a, "x", 2));
    /* Some campaigns' variants beat their control arm, some lose. */
    unsigned better = 0, worse = 0;
    for (unsigned c = 0; c < 200; c++) {
        char id[LGEN_ID_MAX];
        lgen_campaign_id(c, id);
        double e = sim_variant_effect(&a, id, "v1");
        better += e > 0.1;
        worse += e < -0.05;
    }
    cr_assert(better > 60 && worse > 20, "variants better in %u of 200 campaigns, worse in %u", better, worse);
}

Test(sim, auction_rules)
{
    struct sim_cfg c;
    sim_cfg_default(&c, 3);
    unsigned wins = 0;
    for (unsigned i = 0; i < 5000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "a-%u/1", i);
        double floor = 0.05 + (i % 50) / 10.0, price = 0.5 + (i % 37) / 5.0;
        struct sim_auction a1 = sim_auction_run(&c, key, floor, price, 1);
        struct sim_auction a2 = sim_auction_run(&c, key, floor, price, 2);
        cr_assert_eq(a1.won, a2.won, "the auction type changes the price, not the winner");
        cr_assert(a1.competing > 0);
        if (price < floor)
            cr_assert(!a1.won, "a bid under the floor won");
        if (!a1.won)
            continue;
        wins++;
        cr_assert(price >= a1.competing);
        cr_assert_eq(a1.clearing, price, "first price pays the bid");
        cr_assert(a2.clearing <= price + 1e-12 && a2.clearing >= floor - 1e-12, "second price %f, bid %f, floor %f",
                  a2.clearing, price, floor);
        cr_assert(a2.clearing >= a2.competing - 1e-12 || a2.clearing == price);
    }
    cr_assert(wins > 500 && wins < 4500, "%u wins of 5000", wins);
    /* Low bids lose more often than high ones. */
    unsigned low = 0, high = 0;
    for (unsigned i = 0; i < 2000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "b-%u/1", i);
        low += sim_auction_run(&c, key, 0.5, 1.0, 2).won;
        high += sim_auction_run(&c, key, 0.5, 6.0, 2).won;
    }
    cr_assert_lt(low, high);
}

Test(sim, uplift_interval)
{
    struct sim_uplift u = sim_uplift_ci(100, 10000, 100, 10000);
    cr_assert(u.valid);
    cr_assert_float_eq(u.uplift, 0, 1e-12);
    cr_assert(u.low < 0 && u.high > 0, "equal arms: the interval holds 0 (%f .. %f)", u.low, u.high);
    u = sim_uplift_ci(400, 10000, 200, 10000);
    cr_assert_float_eq(u.uplift, 1.0, 1e-12);
    cr_assert(u.low > 0.5 && u.high < 1.5, "twice the CTR: %f .. %f", u.low, u.high);
    u = sim_uplift_ci(0, 100, 3, 100);
    cr_assert(!u.valid, "no click in one arm: no interval");
    cr_assert(!sim_uplift_ci(1, 0, 1, 10).valid);
}

Test(sim, log_grows_and_merges)
{
    struct sim_log a = {0}, b = {0};
    struct sim_rec r = {.p_oracle = 0.5f, .clicked = 1};
    for (unsigned i = 0; i < 3000; i++)
        cr_assert_eq(sim_log_add(&a, &r), 0);
    cr_assert_eq(sim_log_add(&b, &r), 0);
    cr_assert_eq(sim_log_merge(&b, &a), 0);
    cr_assert_eq(b.n, 3001);
    sim_log_free(&a);
    sim_log_free(&b);
    cr_assert_null(a.v);
}

/* --msgpack: every generated body survives JSON -> MessagePack -> (the answer reader) -> the same JSON tree. */
Test(sim, msgpack_bodies_round_trip)
{
    struct lgen_cfg gc = {.seed = 3, .users = 1000, .campaigns = 20, .zipf_s = 1.1, .batch = 20};
    struct lgen g;
    struct lgen_req req = {0};
    struct lgen_buf mp = {0};
    cr_assert_eq(lgen_init(&g, &gc, 0), 0);
    const enum lgen_kind kinds[] = {LGEN_BID, LGEN_EVENTS, LGEN_SCORE, LGEN_USERS, LGEN_POST_EMPTY};
    for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (unsigned i = 0; i < 50; i++) {
            cr_assert_eq(lgen_make(&g, kinds[k], 0, 1763880000, &req), 0);
            lgen_buf_reset(&mp);
            cr_assert_eq(lgen_msgpack_of(req.body.p, req.body.len, &mp), 0);
            cr_assert_lt(mp.len, req.body.len, "MessagePack is the smaller encoding");
            unsigned char first = (unsigned char)mp.p[0];
            cr_assert((first & 0xf0) == 0x80 || first == 0xde, "a map");
            cJSON *want = cJSON_ParseWithLength(req.body.p, req.body.len);
            cJSON *got = lgen_parse_answer(mp.p, mp.len);
            cr_assert_not_null(want);
            cr_assert_not_null(got, "%s: the MessagePack body does not read back", lgen_kind_name(kinds[k]));
            cr_assert(cJSON_Compare(want, got, 1), "%s: differs after the round trip", lgen_kind_name(kinds[k]));
            cJSON_Delete(want);
            cJSON_Delete(got);
        }
    }
    /* JSON answers pass through; garbage does not parse. */
    cJSON *j = lgen_parse_answer("{\"a\":1}", 7);
    cr_assert_not_null(j);
    cJSON_Delete(j);
    cr_assert_null(lgen_parse_answer("\x81\xa1", 2), "a truncated map");
    cr_assert_eq(lgen_msgpack_of("{\"a\":", 5, &mp), -EINVAL);
    lgen_buf_free(&mp);
    lgen_buf_free(&req.body);
}
