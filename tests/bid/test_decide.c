/*
 * Unit tests of the bid decision (service/bid/decide.c), the BidResponse it
 * becomes (answer.c) and signed notices (notice.c), against campaigns built
 * from schemas/examples, requests parsed by ortb_parse() and a small model
 * of the "adsmith" schema trained here (so that the tests do not depend on
 * the file format of the default model), whose probabilities they read back
 * with rank_req_score().
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "adsmith/bid.h"
#include "adsmith/camps.h"
#include "adsmith/doc.h"
#include "adsmith/ortb.h"
#include "adsmith/profile.h"
#include "adsmith/rank.h"
#include "adsmith/variant.h"
#include "bidfix.h"

#define T0 BIDFIX_T0 /* 2026-01-01 12:00:00Z: half of the UTC day gone */

static struct rank_model *model;
static struct ortb_scratch *os;
static struct bid_scratch *bs;
static struct bid_fx fx;
static struct bid_opts opts;
static struct bid_spend spend_now;
static int spend_rc;
static struct bid_result res;

static void setup(void)
{
    struct ads_diag diag = {{0}, {0}};

    cr_assert_eq(bidfix_model(&model), 0, "the test model");
    cr_assert_eq(ortb_scratch_new(&os), 0);
    cr_assert_eq(bid_scratch_new(&bs), 0);
    cr_assert_eq(bid_fx_parse(BIDFIX_FX, &fx, &diag), 0, "%s", diag.message);
    opts = (struct bid_opts){.shading_pct = 85, .max_cpm_micros = 50000000, .min_tmax_ms = 10, .cvr_prior = 0.05};
    spend_now = (struct bid_spend){0, 0};
    spend_rc = 0;
}

static void teardown(void)
{
    bid_scratch_free(bs);
    ortb_scratch_free(os);
    rank_model_close(model);
}

TestSuite(decide, .init = setup, .fini = teardown);
TestSuite(notice);
TestSuite(fx);

/* ---- campaigns ---- */

static char *read_source(const char *rel)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[512];
    FILE *f;
    char *text;
    long len;

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is set by meson");
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    text[len] = '\0';
    fclose(f);
    return text;
}

/*
 * The demo campaign (USD, banner 300x250/728x90/320x50 and native, max_cpm
 * 2.50, caps 2/hour 6/day, budget 50/day 5000 total) with id @p id, flight
 * from 0 in UTC, pacing asap, and the members in @p kv replaced (pairs of
 * name and JSON text, NULL text: removed; "targeting.X" one member of
 * targeting), as its JSON text (malloc'd).
 */
static char *camp_json(const char *id, const char *const *kv)
{
    char *text = read_source("schemas/examples/campaign-demo.json");
    cJSON *doc = cJSON_Parse(text);
    char *out;

    cr_assert_not_null(doc);
    free(text);
    cJSON_ReplaceItemInObject(doc, "id", cJSON_CreateString(id));
    cJSON_ReplaceItemInObject(doc, "flight", cJSON_Parse("{\"start\":0,\"time_zone\":\"UTC\"}"));
    cJSON_ReplaceItemInObject(doc, "pacing", cJSON_CreateString("asap"));
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2) {
        cJSON *parent = doc;
        const char *key = kv[i];
        if (strncmp(key, "targeting.", 10) == 0) {
            parent = cJSON_GetObjectItemCaseSensitive(doc, "targeting");
            key += 10;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
        if (kv[i + 1] != NULL) {
            cJSON *v = cJSON_Parse(kv[i + 1]);
            cr_assert_not_null(v, "bad test JSON: %s", kv[i + 1]);
            cJSON_AddItemToObject(parent, key, v);
        }
    }
    out = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return out;
}

static struct cidx_camp *camp(const char *id, const char *const *kv)
{
    char *json = camp_json(id, kv);
    struct ads_diag diag = {{0}, {0}};
    msgpack_zone zone;
    msgpack_object doc;
    struct cidx_camp *c = NULL;

    cr_assert(msgpack_zone_init(&zone, 4096));
    cr_assert_eq(doc_parse(DOC_JSON, json, strlen(json), &zone, &doc, &diag), 0, "%s", diag.message);
    cr_assert_eq(cidx_camp_from_doc(&doc, &c, &diag), 0, "cidx_camp_from_doc: %s at %s", diag.message, diag.pointer);
    msgpack_zone_destroy(&zone);
    free(json);
    return c;
}

static struct cidx *index_of(struct cidx_camp **cs, size_t n)
{
    struct cidx_builder *b;
    struct cidx *ix;

    cr_assert_eq(cidx_builder_new(&b), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(cidx_builder_add(b, cs[i]), 0);
    cr_assert_eq(cidx_build(b, T0, &ix), 0);
    cr_assert_eq(cidx_count(ix), n, "every campaign made it into the index");
    cidx_builder_free(b);
    return ix;
}

/* An index of one demo campaign "c1" with @p kv. */
static struct cidx *one(const char *const *kv)
{
    struct cidx_camp *c = camp("c1", kv);
    return index_of(&c, 1);
}

/* ---- requests ---- */

static const struct ortb_req *parse(const char *json)
{
    const struct ortb_req *r;
    struct ads_diag diag = {{0}, {0}};

    cr_assert_eq(ortb_parse(os, DOC_JSON, json, strlen(json), &r, &diag, NULL), 0, "%s: %s", json, diag.message);
    return r;
}

static int spend_cb(void *ctx, const struct cidx_camp *c, int64_t now, struct bid_spend *ret)
{
    (void)ctx;
    (void)c;
    cr_assert_eq(now, T0);
    if (spend_rc != 0)
        return spend_rc;
    *ret = spend_now;
    return 0;
}

static const struct ortb_req *decide_pv(const struct cidx *ix, const char *json, const struct prof_view *pv)
{
    const struct ortb_req *r = parse(json);
    struct bid_env env = {ix, model, pv, spend_cb, NULL, &fx, &opts, T0};

    cr_assert_eq(bid_decide(bs, r, &env, &res), 0);
    cr_assert_leq(res.npicks, r->nimps);
    for (uint32_t i = 0; i < res.npicks; i++) {
        const struct bid_pick *p = &res.picks[i];
        cr_assert_gt(p->price_micros, 0);
        cr_assert_leq(p->price_micros, p->value_micros, "a bid never pays more than its value");
        cr_assert_geq(p->price_micros, p->floor_micros, "a bid never goes below its floor");
        cr_assert(p->p >= 0 && p->p <= 1);
    }
    return r;
}

static const struct ortb_req *decide(const struct cidx *ix, const char *json)
{
    return decide_pv(ix, json, NULL);
}

/* A banner 300x250 request with @p imp_extra inside the imp and @p extra at the top level (each "" or ",..."). */
static const char *banner(const char *imp_extra, const char *extra)
{
    static char mem[32768];
    int n = snprintf(mem, sizeof(mem),
                     "{\"id\":\"r1\",\"imp\":[{\"id\":\"1\",\"banner\":{\"format\":[{\"w\":300,\"h\":250}]}%s}],"
                     "\"site\":{\"domain\":\"news.example\"}%s}",
                     imp_extra, extra);
    cr_assert(n > 0 && (size_t)n < sizeof(mem));
    return mem;
}

/* ---- pricing ---- */

Test(decide, max_cpm_bids_its_amount_in_a_second_price_auction)
{
    struct cidx *ix = one(NULL);

    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 1);
    cr_assert_str_eq(res.cur, "USD");
    cr_assert_str_eq(res.picks[0].camp->id, "c1");
    cr_assert_eq(res.picks[0].at, 2);
    cr_assert_eq(res.picks[0].value_micros, 2500000);
    cr_assert_eq(res.picks[0].price_micros, 2500000);
    cr_assert_eq(res.picks[0].mtype, 1);
    cr_assert_eq(res.picks[0].w, 300);
    cr_assert_eq(res.picks[0].h, 250);
    cr_assert_eq(res.picks[0].deal, NULL);
    cr_assert_eq(res.privacy, 0);
    cidx_free(ix);
}

Test(decide, first_price_is_shaded)
{
    struct cidx *ix = one(NULL);

    decide(ix, banner("", ",\"at\":1"));
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].at, 1);
    cr_assert_eq(res.picks[0].value_micros, 2500000);
    cr_assert_eq(res.picks[0].price_micros, 2125000, "85%% of 2.50");
    opts.shading_pct = 100;
    decide(ix, banner("", ",\"at\":1"));
    cr_assert_eq(res.picks[0].price_micros, 2500000);
    cidx_free(ix);
}

/* The model's probability for the banner request of banner(), computed here from the documented features. */
static double expected_p(const char *camp_id)
{
    struct rank_req r;
    struct rank_cand c;
    char creative[96];

    rank_req_begin(&r, model);
    rank_req_add(&r, RANK_F_DOMAIN, "news.example", 12);
    rank_req_add(&r, RANK_F_HOUR, "12", 2);
    rank_req_add(&r, RANK_F_FORMAT, "banner", 6);
    rank_req_add(&r, RANK_F_SIZE, "300x250", 7);
    rank_req_commit(&r);
    rank_cand_init(&c);
    rank_cand_add(&c, RANK_F_CAMPAIGN, camp_id, strlen(camp_id));
    rank_cand_add(&c, RANK_F_ADVERTISER, "demo", 4);
    snprintf(creative, sizeof(creative), "%s/banner", camp_id);
    rank_cand_add(&c, RANK_F_CREATIVE, creative, strlen(creative));
    rank_cand_add(&c, RANK_F_CAMP_CATEGORY, "210", 3);
    return rank_req_score(&r, &c);
}

Test(decide, target_cpc_is_p_times_amount_times_1000)
{
    const char *kv[] = {"bid", "{\"strategy\":\"target_cpc\",\"amount_micros\":40000}", NULL};
    struct cidx *ix = one(kv);
    double p = expected_p("c1");

    cr_assert(p > 0 && p < 1, "p = %g", p);
    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 1, "p %g x 0.04 x 1000 is a bid", p);
    cr_assert_float_eq(res.picks[0].p, p, 1e-12, "the decision scored %g, the model says %g", res.picks[0].p, p);
    cr_assert_eq(res.picks[0].value_micros, (int64_t)floor(p * 40000.0 * 1000.0), "value %lld, p %.17g",
                 (long long)res.picks[0].value_micros, p);
    cr_assert_eq(res.picks[0].price_micros, res.picks[0].value_micros);
    cr_assert_eq(res.scored, 1);
    cidx_free(ix);
}

Test(decide, target_cpa_uses_the_conversion_prior)
{
    const char *kv[] = {"bid", "{\"strategy\":\"target_cpa\",\"amount_micros\":2000000}", NULL};
    struct cidx *ix = one(kv);
    double p = expected_p("c1");

    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].value_micros, (int64_t)floor(p * 0.05 * 2000000.0 * 1000.0));
    cidx_free(ix);
}

Test(decide, the_campaign_ceiling_and_bid_max_cpm_cap_the_value)
{
    const char *kv[] = {
        "bid", "{\"strategy\":\"target_cpc\",\"amount_micros\":900000000,\"ceiling_cpm_micros\":1750000}", NULL};
    const char *eur[] = {"currency", "\"EUR\"", NULL};
    struct cidx *ix = one(kv);

    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].value_micros, 1750000);
    opts.max_cpm_micros = 1500000;
    decide(ix, banner("", ""));
    cr_assert_eq(res.picks[0].value_micros, 1500000);
    cidx_free(ix);

    /* A EUR campaign: the USD cap is converted to EUR, the value back to USD, never above the cap. */
    ix = one(eur);
    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 1);
    cr_assert_leq(res.picks[0].value_micros, 1500000);
    cr_assert_geq(res.picks[0].value_micros, 1499990);
    opts.max_cpm_micros = 0;
    decide(ix, banner("", ""));
    cr_assert_eq(res.picks[0].value_micros, 2700000, "2.50 EUR is 2.70 USD");
    cidx_free(ix);
}

Test(decide, the_best_value_wins_the_impression)
{
    const char *lo[] = {"bid", "{\"strategy\":\"max_cpm\",\"amount_micros\":2000000}", NULL};
    const char *hi[] = {"bid", "{\"strategy\":\"max_cpm\",\"amount_micros\":3000000}", NULL};
    struct cidx_camp *cs[3] = {camp("a", lo), camp("b", hi), camp("c", lo)};
    struct cidx *ix = index_of(cs, 3);

    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 1);
    cr_assert_str_eq(res.picks[0].camp->id, "b");
    cr_assert_eq(res.eligible, 3);
    cr_assert_eq(res.scored, 3);
    cidx_free(ix);
}

Test(decide, max_scored_bounds_the_candidates_of_a_request)
{
    const char *hi[] = {"bid", "{\"strategy\":\"max_cpm\",\"amount_micros\":3000000}", NULL};
    struct cidx_camp *cs[8];
    struct cidx *ix;
    uint32_t best = 0;
    char id[16];

    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "c%d", i);
        cs[i] = camp(id, i == 7 ? hi : NULL);
    }
    ix = index_of(cs, 8);
    decide(ix, "{\"id\":\"r\",\"imp\":[{\"id\":\"a\",\"native\":{}},{\"id\":\"b\",\"native\":{}}]}");
    cr_assert_eq(res.scored, 16, "no limit: every candidate of every imp");
    cr_assert_str_eq(res.picks[0].camp->id, "c7");
    opts.max_scored = 3;
    decide(ix, "{\"id\":\"r\",\"imp\":[{\"id\":\"a\",\"native\":{}},{\"id\":\"b\",\"native\":{}}]}");
    cr_assert_eq(res.scored, 3);
    cr_assert_eq(res.eligible, 16);
    cr_assert_eq(res.npicks, 1, "the first imp scored 3, the second none: %u picks", res.npicks);
    /* the scan starts where the request id says: over many ids the best campaign is found sometimes, not never */
    for (int i = 0; i < 64; i++) {
        char body[160];
        snprintf(body, sizeof(body), "{\"id\":\"r%d\",\"imp\":[{\"id\":\"a\",\"native\":{}}]}", i);
        decide(ix, body);
        cr_assert_eq(res.scored, 3);
        best += res.npicks == 1 && strcmp(res.picks[0].camp->id, "c7") == 0;
    }
    cr_assert_gt(best, 0);
    cidx_free(ix);
}

/* ---- the pruned scan against scoring every candidate ---- */

static uint32_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*x >> 33);
}

/* Spend that differs by campaign: today's share of the daily budget from 0 to 9 tenths (even pacing at T0,
 * half the day gone, then scales values by 1 down to 0.2 or stops them). */
static int spend_by_id(void *ctx, const struct cidx_camp *c, int64_t now, struct bid_spend *ret)
{
    uint32_t h = 0;

    (void)ctx;
    (void)now;
    for (const char *p = c->id; *p != '\0'; p++)
        h = h * 31 + (uint8_t)*p;
    ret->total_micros = 0;
    ret->day_micros = c->daily_budget_micros / 10 * (int64_t)(h % 10);
    return 0;
}

/* Campaign @p i of the generated set: strategies, amounts (with ties), currencies, ceilings, pacing, formats,
 * deals, categories and advertiser domains vary. */
static struct cidx_camp *gen_camp(uint32_t i, uint64_t *x)
{
    static const char *const curs[] = {"\"USD\"", "\"EUR\"", "\"GBP\""};
    static const char *const formats[] = {"[\"banner\",\"native\"]", "[\"banner\"]", "[\"native\"]"};
    static const char *const ids[] = {"c1", "a", "b", "c"};
    char id[16], bid[160], adomain[64], cats[96];
    const char *kv[16];
    uint32_t k = 0, amount = 500000 + 500000 * (lcg(x) % 12); /* steps of 0.50: ties happen */

    if (i < 4)
        snprintf(id, sizeof(id), "%s", ids[i]);
    else
        snprintf(id, sizeof(id), "g%u", i);
    switch (lcg(x) % 4) {
    case 0:
        snprintf(bid, sizeof(bid), "{\"strategy\":\"target_cpc\",\"amount_micros\":%u}", 2000 + lcg(x) % 20000);
        break;
    case 1:
        snprintf(bid, sizeof(bid), "{\"strategy\":\"target_cpc\",\"amount_micros\":%u,\"ceiling_cpm_micros\":%u}",
                 2000 + lcg(x) % 60000, 1000000 + lcg(x) % 3000000);
        break;
    case 2:
        snprintf(bid, sizeof(bid), "{\"strategy\":\"target_cpa\",\"amount_micros\":%u}", 40000 + lcg(x) % 400000);
        break;
    default: snprintf(bid, sizeof(bid), "{\"strategy\":\"max_cpm\",\"amount_micros\":%u}", amount); break;
    }
    snprintf(adomain, sizeof(adomain), "[\"adv%u.example\"]", lcg(x) % 6);
    snprintf(cats, sizeof(cats), "{\"taxonomy\":\"iab_content_1.0\",\"ids\":[\"IAB%u-1\"]}", 1 + lcg(x) % 4);
    kv[k++] = "bid";
    kv[k++] = bid;
    kv[k++] = "currency";
    kv[k++] = curs[lcg(x) % 3];
    kv[k++] = "pacing";
    kv[k++] = lcg(x) % 2 == 0 ? "\"even\"" : "\"asap\"";
    kv[k++] = "targeting.formats";
    kv[k++] = formats[lcg(x) % 3];
    kv[k++] = "adomain";
    kv[k++] = adomain;
    kv[k++] = "creative_categories";
    kv[k++] = cats;
    if (lcg(x) % 4 == 0) {
        kv[k++] = "targeting.deals";
        kv[k++] = "[\"d1\",\"d2\"]";
    }
    kv[k] = NULL;
    return camp(id, kv);
}

/* A request of one to three imps with random formats, sizes, floors, deals, auction type, currency and blocks. */
static const char *gen_req(uint32_t n, uint64_t *x)
{
    static const char *const sizes[] = {"{\"w\":300,\"h\":250}", "{\"w\":728,\"h\":90}", "{\"w\":320,\"h\":50}",
                                        "{\"w\":160,\"h\":600}"};
    static const char *const fcurs[] = {"USD", "EUR", "GBP"};
    static char mem[8192];
    size_t at = 0;
    uint32_t nimps = 1 + lcg(x) % 3;

#define PUT(...) at += (size_t)snprintf(mem + at, sizeof(mem) - at, __VA_ARGS__)
    PUT("{\"id\":\"q%u\",\"at\":%u,\"imp\":[", n, 1 + lcg(x) % 2);
    for (uint32_t i = 0; i < nimps; i++) {
        uint32_t kind = lcg(x) % 4;
        PUT("%s{\"id\":\"%u\"", i > 0 ? "," : "", i + 1);
        if (kind != 1)
            PUT(",\"banner\":{\"format\":[%s,%s]}", sizes[lcg(x) % 4], sizes[lcg(x) % 4]);
        if (kind != 0)
            PUT(",\"native\":{}");
        if (lcg(x) % 2 == 0)
            PUT(",\"bidfloor\":%.2f,\"bidfloorcur\":\"%s\"", (double)(lcg(x) % 400) / 100.0, fcurs[lcg(x) % 3]);
        if (lcg(x) % 5 == 0)
            PUT(",\"pmp\":{\"private_auction\":%u,\"deals\":[{\"id\":\"d%u\",\"bidfloor\":%.2f,\"at\":%u}]}",
                lcg(x) % 2, 1 + lcg(x) % 3, (double)(lcg(x) % 300) / 100.0, 1 + lcg(x) % 3);
        PUT("}");
    }
    PUT("],\"site\":{\"domain\":\"news.example\"}");
    if (lcg(x) % 3 == 0)
        PUT(",\"cur\":[\"%s\"]", fcurs[lcg(x) % 3]);
    if (lcg(x) % 4 == 0)
        PUT(",\"badv\":[\"adv%u.example\"]", lcg(x) % 6);
    if (lcg(x) % 4 == 0)
        PUT(",\"bcat\":[\"IAB%u\"]", 1 + lcg(x) % 4);
    PUT("}");
#undef PUT
    cr_assert_lt(at, sizeof(mem));
    return mem;
}

Test(decide, the_pruned_scan_picks_what_scoring_every_candidate_picks)
{
    enum { NCAMPS = 48, NREQS = 400 };
    struct cidx_camp *cs[NCAMPS];
    struct cidx *ix, *solo[NCAMPS];
    uint64_t x = 42;
    uint32_t picks = 0, pruned = 0, cpc_wins = 0, cpm_wins = 0;

    for (uint32_t i = 0; i < NCAMPS; i++)
        cs[i] = gen_camp(i, &x);
    ix = index_of(cs, NCAMPS);
    /* The reference: each campaign alone in an index, where nothing can be pruned (it is always the first). */
    for (uint32_t i = 0; i < NCAMPS; i++) {
        struct cidx_camp *c;
        cr_assert_eq(cidx_camp_clone(cidx_camp(ix, i), &c), 0);
        solo[i] = index_of(&c, 1);
    }
    for (uint32_t n = 0; n < NREQS; n++) {
        const struct ortb_req *r = parse(gen_req(n, &x));
        struct bid_env env = {ix, model, NULL, spend_by_id, NULL, &fx, &opts, T0};
        struct bid_result fast;
        struct bid_pick want[ORTB_MAX_IMPS];
        bool have[ORTB_MAX_IMPS] = {false};
        uint32_t scored = 0;

        cr_assert_eq(bid_decide(bs, r, &env, &fast), 0);
        for (uint32_t j = 0; j < NCAMPS; j++) {
            env.ix = solo[j];
            cr_assert_eq(bid_decide(bs, r, &env, &res), 0);
            cr_assert_eq(res.pruned, 0);
            scored += res.scored;
            for (uint32_t k = 0; k < res.npicks; k++) {
                const struct bid_pick *p = &res.picks[k];
                /* Highest value wins; a tie keeps the first in the index. */
                if (!have[p->imp] || p->value_micros > want[p->imp].value_micros) {
                    want[p->imp] = *p;
                    have[p->imp] = true;
                }
            }
        }
        cr_assert_eq(fast.scored, scored, "request %u: every candidate that passed the checks counts", n);
        pruned += fast.pruned;
        for (uint32_t i = 0, k = 0; i < r->nimps; i++) {
            const struct bid_pick *got = k < fast.npicks && fast.picks[k].imp == i ? &fast.picks[k++] : NULL;
            cr_assert_eq(got != NULL, have[i], "request %u imp %u: a bid or none, as scoring every candidate", n, i);
            if (got == NULL)
                continue;
            picks++;
            cpc_wins += got->camp->strategy != CIDX_MAX_CPM;
            cpm_wins += got->camp->strategy == CIDX_MAX_CPM;
            cr_assert_str_eq(got->camp->id, want[i].camp->id, "request %u imp %u", n, i);
            cr_assert_eq(got->value_micros, want[i].value_micros, "request %u imp %u", n, i);
            cr_assert_eq(got->price_micros, want[i].price_micros, "request %u imp %u", n, i);
            cr_assert_eq(got->floor_micros, want[i].floor_micros, "request %u imp %u", n, i);
            cr_assert(got->p == want[i].p, "request %u imp %u: the same probability", n, i);
            cr_assert_eq(got->mtype, want[i].mtype);
            cr_assert_eq(got->w, want[i].w);
            cr_assert_eq(got->h, want[i].h);
            cr_assert_eq(got->deal, want[i].deal);
            cr_assert_eq(got->at, want[i].at);
        }
    }
    /* The generated set exercises what it is meant to: many bids, winners of each kind, pruning. */
    cr_assert_gt(picks, NREQS / 2, "%u picks", picks);
    cr_assert_gt(cpc_wins, 10, "%u target_cpc/cpa winners", cpc_wins);
    cr_assert_gt(cpm_wins, 10, "%u max_cpm winners", cpm_wins);
    cr_assert_gt(pruned, NREQS, "%u pruned", pruned);
    for (uint32_t i = 0; i < NCAMPS; i++)
        cidx_free(solo[i]);
    cidx_free(ix);
}

Test(decide, banner_sizes_beyond_the_index_size_bits_are_read_from_the_record)
{
    enum { N = CIDX_SIZE_BITS + 6 };
    struct cidx_camp *cs[N];
    struct cidx *ix;

    /* Campaign i bids on banner 100+i x 50 only, more for a larger i: the first CIDX_SIZE_BITS sizes get a bit,
     * the campaigns after them are matched through their records. */
    for (int i = 0; i < N; i++) {
        char id[16], sizes[64], bid[96];
        const char *kv[] = {"targeting.formats", "[\"banner\"]", "targeting.sizes", sizes, "bid", bid, NULL};
        snprintf(id, sizeof(id), "s%d", i);
        snprintf(sizes, sizeof(sizes), "[{\"w\":%d,\"h\":50}]", 100 + i);
        snprintf(bid, sizeof(bid), "{\"strategy\":\"max_cpm\",\"amount_micros\":%d}", 1000000 + 10000 * i);
        cs[i] = camp(id, kv);
    }
    ix = index_of(cs, N);
    cr_assert_eq(cidx_size_bit(ix, 101, 50), 1);
    cr_assert_eq(cidx_size_bit(ix, 100 + N - 1, 50), -1);
    decide(ix, "{\"id\":\"r\",\"imp\":[{\"id\":\"1\",\"banner\":{\"format\":[{\"w\":101,\"h\":50},"
               "{\"w\":168,\"h\":50},{\"w\":300,\"h\":250}]}}]}");
    cr_assert_eq(res.npicks, 1);
    cr_assert_str_eq(res.picks[0].camp->id, "s68");
    cr_assert_eq(res.picks[0].w, 168);
    cr_assert_eq(res.scored, 2);
    decide(ix, "{\"id\":\"r\",\"imp\":[{\"id\":\"1\",\"banner\":{\"format\":[{\"w\":300,\"h\":250},"
               "{\"w\":101,\"h\":50}]}}]}");
    cr_assert_eq(res.npicks, 1);
    cr_assert_str_eq(res.picks[0].camp->id, "s1");
    cr_assert_eq(res.picks[0].w, 101);
    cidx_free(ix);
}

Test(decide, each_impression_gets_its_own_bid)
{
    struct cidx *ix = one(NULL);

    decide(ix, "{\"id\":\"r\",\"imp\":[{\"id\":\"a\",\"banner\":{\"w\":728,\"h\":90}},"
               "{\"id\":\"b\",\"banner\":{\"format\":[{\"w\":160,\"h\":600}]}},{\"id\":\"c\",\"native\":{}}]}");
    cr_assert_eq(res.npicks, 2);
    cr_assert_eq(res.picks[0].imp, 0);
    cr_assert_eq(res.picks[0].w, 728);
    cr_assert_eq(res.picks[1].imp, 2);
    cr_assert_eq(res.picks[1].mtype, 4);
    cidx_free(ix);
}

/* ---- floors and currencies ---- */

Test(decide, a_floor_above_the_value_means_no_bid)
{
    struct cidx *ix = one(NULL);

    decide(ix, banner(",\"bidfloor\":2.5", ""));
    cr_assert_eq(res.npicks, 1, "a value equal to the floor bids");
    decide(ix, banner(",\"bidfloor\":2.500001", ""));
    cr_assert_eq(res.npicks, 0);
    cidx_free(ix);
}

Test(decide, a_shaded_price_below_the_floor_is_raised_to_it)
{
    struct cidx *ix = one(NULL);

    decide(ix, banner(",\"bidfloor\":2.2", ",\"at\":1"));
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].price_micros, 2200000);
    decide(ix, banner(",\"bidfloor\":2.0", ",\"at\":1"));
    cr_assert_eq(res.picks[0].price_micros, 2125000);
    cidx_free(ix);
}

Test(decide, floors_are_converted_from_bidfloorcur_and_rounded_up)
{
    struct cidx *ix = one(NULL);

    /* 2.00 EUR = 2.16 USD */
    decide(ix, banner(",\"bidfloor\":2.0,\"bidfloorcur\":\"EUR\"", ",\"at\":1"));
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].floor_micros, 2160000);
    cr_assert_eq(res.picks[0].price_micros, 2160000);
    /* 2.40 EUR = 2.592 USD: above the value */
    decide(ix, banner(",\"bidfloor\":2.4,\"bidfloorcur\":\"EUR\"", ""));
    cr_assert_eq(res.npicks, 0);
    /* 1 JPY = 0.0067 USD: a floor of 0.000001 JPY still needs at least one micro */
    decide(ix, banner(",\"bidfloor\":300,\"bidfloorcur\":\"JPY\"", ",\"at\":1"));
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].floor_micros, 2010000);
    cr_assert_eq(res.picks[0].price_micros, 2125000);
    /* a currency nobody knows: the floor cannot be met safely */
    decide(ix, banner(",\"bidfloor\":0.01,\"bidfloorcur\":\"XYZ\"", ""));
    cr_assert_eq(res.npicks, 0);
    cidx_free(ix);
}

Test(decide, the_response_currency_is_the_first_known_of_cur)
{
    struct cidx *ix = one(NULL);

    decide(ix, banner(",\"bidfloor\":2.0,\"bidfloorcur\":\"EUR\"", ",\"cur\":[\"XYZ\",\"EUR\",\"USD\"]"));
    cr_assert_eq(res.npicks, 1);
    cr_assert_str_eq(res.cur, "EUR");
    cr_assert_eq(res.picks[0].value_micros, (int64_t)floor(2500000 / 1.08), "2.50 USD in EUR, rounded down");
    cr_assert_eq(res.picks[0].floor_micros, 2000000);
    decide(ix, banner("", ",\"cur\":[\"XYZ\"]"));
    cr_assert_eq(res.npicks, 0);
    cr_assert_str_eq(res.cur, "");
    cidx_free(ix);
}

/* ---- deals ---- */

Test(decide, a_private_auction_needs_one_of_the_campaigns_deals)
{
    const char *deal[] = {"targeting.deals", "[\"D1\",\"D2\"]", NULL};
    const char *pmp = ",\"pmp\":{\"private_auction\":1,\"deals\":[{\"id\":\"D0\"},{\"id\":\"D2\",\"bidfloor\":1.5}]}";
    struct cidx *ix = one(NULL);

    decide(ix, banner(pmp, ""));
    cr_assert_eq(res.npicks, 0, "no deal, no bid in a private auction");
    cidx_free(ix);
    ix = one(deal);
    decide(ix, banner(pmp, ""));
    cr_assert_eq(res.npicks, 1);
    cr_assert_not_null(res.picks[0].deal);
    cr_assert_eq(res.picks[0].deal->id.len, 2);
    cr_assert_eq(memcmp(res.picks[0].deal->id.ptr, "D2", 2), 0);
    cr_assert_eq(res.picks[0].floor_micros, 1500000);
    cidx_free(ix);
}

Test(decide, the_deal_floor_and_at_apply)
{
    const char *deal[] = {"targeting.deals", "[\"D1\"]", NULL};
    struct cidx *ix = one(deal);

    /* the deal's floor replaces the imp's, the deal's at the request's */
    decide(ix, banner(",\"bidfloor\":9,\"pmp\":{\"deals\":[{\"id\":\"D1\",\"bidfloor\":1,\"at\":1}]}", ",\"at\":2"));
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].at, 1);
    cr_assert_eq(res.picks[0].price_micros, 2125000);
    decide(ix, banner(",\"pmp\":{\"private_auction\":1,\"deals\":[{\"id\":\"D1\",\"bidfloor\":3}]}", ""));
    cr_assert_eq(res.npicks, 0, "a deal floor above the value");
    /* at=3: the deal's floor is the agreed price */
    decide(ix, banner(",\"pmp\":{\"private_auction\":1,\"deals\":[{\"id\":\"D1\",\"bidfloor\":1.2,\"at\":3}]}", ""));
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].price_micros, 1200000, "a fixed-price deal bids its price");
    cidx_free(ix);
}

Test(decide, a_deal_whose_wseat_excludes_us_is_not_ours)
{
    const char *deal[] = {"targeting.deals", "[\"D1\"]", NULL};
    struct cidx *ix = one(deal);

    decide(ix, banner(",\"pmp\":{\"private_auction\":1,\"deals\":[{\"id\":\"D1\",\"wseat\":[\"other\"]}]}", ""));
    cr_assert_eq(res.npicks, 0);
    decide(ix, banner(",\"pmp\":{\"private_auction\":1,\"deals\":[{\"id\":\"D1\",\"wseat\":[\"other\",\"adsmith\"]}]}",
                      ""));
    cr_assert_eq(res.npicks, 1);
    cr_assert_not_null(res.picks[0].deal);
    cidx_free(ix);
}

/* ---- blocks and seats ---- */

Test(decide, badv_blocks_the_domain_and_its_subdomains)
{
    struct cidx *ix = one(NULL);

    decide(ix, banner("", ",\"badv\":[\"NorthWind-Coffee.EXAMPLE\"]"));
    cr_assert_eq(res.npicks, 0);
    decide(ix, banner("", ",\"badv\":[\"example\"]"));
    cr_assert_eq(res.npicks, 0);
    decide(ix, banner("", ",\"badv\":[\"coffee.example\",\"northwind-coffee.example.com\"]"));
    cr_assert_eq(res.npicks, 1);
    cidx_free(ix);
}

Test(decide, bcat_blocks_categories_of_its_taxonomy)
{
    const char *iab1[] = {"creative_categories", "{\"taxonomy\":\"iab_content_1.0\",\"ids\":[\"IAB25-3\"]}", NULL};
    struct cidx *ix = one(NULL); /* iab_content_2.2 "210" */

    decide(ix, banner("", ",\"cattax\":6,\"bcat\":[\"210\"]"));
    cr_assert_eq(res.npicks, 0);
    decide(ix, banner("", ",\"bcat\":[\"210\"]"));
    cr_assert_eq(res.npicks, 1, "bcat in IAB 1.0 does not name 2.2 ids");
    cidx_free(ix);
    ix = one(iab1);
    decide(ix, banner("", ",\"bcat\":[\"IAB25\"]"));
    cr_assert_eq(res.npicks, 0, "a 1.0 parent blocks its children");
    decide(ix, banner("", ",\"bcat\":[\"IAB2\",\"IAB25-2\"]"));
    cr_assert_eq(res.npicks, 1);
    cidx_free(ix);
}

Test(decide, bapp_does_not_stop_bids_that_name_no_bundle)
{
    struct cidx *ix = one(NULL);

    decide(ix, banner("", ",\"bapp\":[\"com.example.game\"]"));
    cr_assert_eq(res.npicks, 1);
    cidx_free(ix);
}

Test(decide, wseat_and_bseat)
{
    struct cidx *ix = one(NULL);

    decide(ix, banner("", ",\"wseat\":[\"other\"]"));
    cr_assert_eq(res.npicks, 0);
    decide(ix, banner("", ",\"wseat\":[\"other\",\"adsmith\"]"));
    cr_assert_eq(res.npicks, 1);
    decide(ix, banner("", ",\"bseat\":[\"adsmith\"]"));
    cr_assert_eq(res.npicks, 0);
    decide(ix, banner("", ",\"bseat\":[\"other\"]"));
    cr_assert_eq(res.npicks, 1);
    cidx_free(ix);
}

Test(decide, a_block_list_too_long_to_honour_means_no_bid)
{
    static char extra[16384];
    size_t n = (size_t)snprintf(extra, sizeof(extra), ",\"badv\":[");
    struct cidx *ix = one(NULL);

    for (int i = 0; i <= ORTB_MAX_BLOCKS; i++)
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, "%s\"d%d.example\"", i > 0 ? "," : "", i);
    snprintf(extra + n, sizeof(extra) - n, "]");
    decide(ix, banner("", extra));
    cr_assert_eq(res.npicks, 0);
    cr_assert_eq(res.nbr, ORTB_NBR_BLOCKED_PUBLISHER);
    cidx_free(ix);
}

/* ---- formats ---- */

Test(decide, only_offered_formats_and_sizes_are_answered)
{
    struct cidx *ix = one(NULL); /* banner 300x250, 728x90, 320x50; native */

    decide(
        ix,
        "{\"id\":\"r\",\"imp\":[{\"id\":\"1\",\"banner\":{\"format\":[{\"w\":160,\"h\":600},{\"w\":320,\"h\":50}]}}]}");
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].w, 320);
    cr_assert_eq(res.picks[0].h, 50);
    decide(ix, "{\"id\":\"r\",\"imp\":[{\"id\":\"1\",\"banner\":{\"format\":[{\"w\":160,\"h\":600}]}}]}");
    cr_assert_eq(res.npicks, 0);
    decide(ix, "{\"id\":\"r\",\"imp\":[{\"id\":\"1\",\"video\":{\"w\":640,\"h\":360,\"mimes\":[\"video/mp4\"]}}]}");
    cr_assert_eq(res.npicks, 0, "no video creative");
    decide(ix, "{\"id\":\"r\",\"imp\":[{\"id\":\"1\",\"audio\":{\"mimes\":[\"audio/mp4\"]}}]}");
    cr_assert_eq(res.npicks, 0, "audio is never answered");
    decide(ix, "{\"id\":\"r\",\"imp\":[{\"id\":\"1\",\"banner\":{\"format\":[{\"w\":160,\"h\":600}]},\"native\":{}}]}");
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].mtype, 4);
    cidx_free(ix);
}

/* ---- request-level reasons ---- */

Test(decide, a_tmax_too_small_is_not_answered)
{
    struct cidx *ix = one(NULL);

    decide(ix, banner("", ",\"tmax\":5"));
    cr_assert_eq(res.npicks, 0);
    cr_assert_eq(res.nbr, ORTB_NBR_INSUFFICIENT_TIME);
    decide(ix, banner("", ",\"tmax\":10"));
    cr_assert_eq(res.npicks, 1);
    decide(ix, banner("", ",\"tmax\":0"));
    cr_assert_eq(res.npicks, 1);
    cidx_free(ix);
}

Test(decide, nothing_to_bid_with)
{
    const struct ortb_req *r = parse(banner("", ""));
    struct bid_env env = {NULL, model, NULL, NULL, NULL, &fx, &opts, T0};

    cr_assert_eq(bid_decide(bs, r, &env, &res), 0);
    cr_assert_eq(res.npicks, 0);
    cr_assert_eq(res.nbr, ORTB_NBR_UNKNOWN);
    env.model = NULL;
    cr_assert_eq(bid_decide(bs, r, &env, &res), ADS_EINVAL);
}

/* ---- privacy ---- */

/* A stored profile @p id with segment "seg-a" and the given counters for campaign "c1". */
static struct prof_view *profile(const char *id, uint32_t consent_known, uint32_t consent, const struct prof_freq *f)
{
    static struct profile p;
    static char mem[PROF_ENCODED_MAX];
    static struct prof_view v;
    struct buf b;

    memset(&p, 0, sizeof(p));
    snprintf(p.id, sizeof(p.id), "%s", id);
    p.nsegments = 1;
    snprintf(p.segments[0].id, sizeof(p.segments[0].id), "seg-a");
    p.segments[0].weight = 1;
    p.segments[0].at = T0 - 60;
    snprintf(p.attr[PROF_CITY], sizeof(p.attr[PROF_CITY]), "Lyon");
    p.consent_known = consent_known;
    p.consent = consent;
    if (f != NULL) {
        p.nfreq = 1;
        p.freq[0] = *f;
    }
    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(prof_encode(&p, &b), 0);
    cr_assert_eq(prof_view_open(b.base, b.len, &v), 0);
    return &v;
}

Test(decide, privacy_signals_make_the_request_contextual)
{
    const char *seg[] = {"targeting.segments", "{\"include\":[\"seg-a\"]}", NULL};
    struct cidx *ix = one(seg);
    struct prof_view *pv = profile("u1", 0, 0, NULL);
    static const struct {
        const char *extra;
        uint32_t why;
    } cases[] = {
        {",\"regs\":{\"coppa\":1}", BID_PRIV_COPPA},
        {",\"regs\":{\"gdpr\":1}", BID_PRIV_GDPR},
        {",\"regs\":{\"ext\":{\"gdpr\":1}}", BID_PRIV_GDPR},
        {",\"regs\":{\"us_privacy\":\"1YY-\"}", BID_PRIV_USP},
        {",\"regs\":{\"ext\":{\"us_privacy\":\"1NYN\"}}", BID_PRIV_USP},
        {",\"regs\":{\"gpp\":\"DBABMA~x\",\"gpp_sid\":[7]}", BID_PRIV_GPP},
        {",\"device\":{\"lmt\":1}", BID_PRIV_LMT},
        {",\"device\":{\"dnt\":1}", BID_PRIV_LMT},
    };

    decide_pv(ix, banner("", ""), pv);
    cr_assert_eq(res.npicks, 1, "the profile's segment matches");
    decide_pv(
        ix,
        banner("", ",\"regs\":{\"gdpr\":1},\"user\":{\"consent\":\"CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA\"}"),
        pv);
    cr_assert_eq(res.npicks, 1, "gdpr with a consent string");
    decide_pv(ix, banner("", ",\"regs\":{\"us_privacy\":\"1YN-\"}"), pv);
    cr_assert_eq(res.npicks, 1, "us_privacy without opt-out");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        decide_pv(ix, banner("", cases[i].extra), pv);
        cr_assert_eq(res.npicks, 0, "%s: a segment-targeted campaign must not bid", cases[i].extra);
        cr_assert_eq(res.privacy & cases[i].why, cases[i].why, "%s: privacy %#x", cases[i].extra, res.privacy);
    }
    cidx_free(ix);
}

Test(decide, request_segments_are_dropped_too_when_contextual)
{
    const char *seg[] = {"targeting.segments", "{\"include\":[\"seg-a\"]}", NULL};
    struct cidx *ix = one(seg);
    const char *user = ",\"user\":{\"data\":[{\"segment\":[{\"id\":\"seg-a\"}]}]}";
    char extra[256];

    decide(ix, banner("", user));
    cr_assert_eq(res.npicks, 1, "the request's own segment matches without a profile");
    snprintf(extra, sizeof(extra), "%s,\"regs\":{\"coppa\":1}", user);
    decide(ix, banner("", extra));
    cr_assert_eq(res.npicks, 0);
    cidx_free(ix);
}

Test(decide, a_profile_without_consent_is_not_used)
{
    const char *seg[] = {"targeting.segments", "{\"include\":[\"seg-a\"]}", NULL};
    struct cidx *ix = one(seg);

    decide_pv(ix, banner("", ""), profile("u1", PROF_CONSENT_PERSONALIZATION, 0, NULL));
    cr_assert_eq(res.npicks, 0);
    cr_assert_eq(res.privacy, BID_PRIV_PROFILE);
    decide_pv(ix, banner("", ""), profile("u1", PROF_CONSENT_SALE_OPT_OUT, PROF_CONSENT_SALE_OPT_OUT, NULL));
    cr_assert_eq(res.npicks, 0);
    decide_pv(ix, banner("", ""), profile("u1", PROF_CONSENT_PERSONALIZATION, PROF_CONSENT_PERSONALIZATION, NULL));
    cr_assert_eq(res.npicks, 1);
    cidx_free(ix);
}

/* ---- budgets, caps, pacing ---- */

Test(decide, exhausted_budgets_do_not_bid)
{
    struct cidx *ix = one(NULL); /* 50 a day, 5000 in all */

    spend_now = (struct bid_spend){4999999999, 49999999};
    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 1);
    spend_now = (struct bid_spend){5000000000, 0};
    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 0, "total budget spent");
    spend_now = (struct bid_spend){100, 50000000};
    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 0, "today's budget spent");
    spend_now = (struct bid_spend){0, 0};
    spend_rc = ADS_EINTERNAL;
    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 0, "spend that cannot be read");
    cidx_free(ix);
}

Test(decide, even_pacing_slows_a_campaign_ahead_of_the_day)
{
    const char *even[] = {"pacing", "\"even\"", NULL};
    struct cidx *ix = one(even); /* 50 a day; at T0 half the day is gone */

    spend_now = (struct bid_spend){25000000, 25000000};
    decide(ix, banner("", ""));
    cr_assert_eq(res.picks[0].value_micros, 2500000, "on schedule");
    spend_now = (struct bid_spend){37500000, 37500000};
    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].value_micros, 1250000, "1.5 times ahead: half the value");
    decide(ix, banner(",\"bidfloor\":1.3", ""));
    cr_assert_eq(res.npicks, 0, "the paced value is what meets the floor");
    cidx_free(ix);
}

/* Daily budgets and pacing count in the campaign's own day: at 12:00Z it is 21:00 in Tokyo. */
Test(decide, the_budget_day_is_the_campaigns_local_day)
{
    const char *tokyo[] = {"pacing", "\"even\"", "flight", "{\"start\":0,\"time_zone\":\"Asia/Tokyo\"}", NULL};
    const char *utc[] = {"pacing", "\"even\"", NULL};
    struct cidx *ix = one(tokyo), *ux = one(utc);
    double tokyo_value, utc_value;

    cr_assert_eq(bid_day_start(NULL, T0), T0 - 12 * 3600);
    cr_assert_eq(bid_day_start(cidx_camp(ix, 0)->zone, T0), T0 - 21 * 3600, "Tokyo's day began at 15:00Z");
    spend_now = (struct bid_spend){45000000, 45000000};
    decide(ix, banner("", ""));
    cr_assert_eq(res.npicks, 1);
    tokyo_value = (double)res.picks[0].value_micros;
    decide(ux, banner("", ""));
    cr_assert_eq(res.npicks, 1);
    utc_value = (double)res.picks[0].value_micros;
    /* 90 % spent: 1.03 times ahead of Tokyo's 21 hours, 1.8 times ahead of UTC's 12. */
    cr_assert_float_eq(tokyo_value, 2500000 * (2 - 0.9 / (21.0 / 24)), 2, "%g", tokyo_value);
    cr_assert_float_eq(utc_value, 500000, 2, "%g", utc_value);
    cidx_free(ix);
    cidx_free(ux);
}

Test(decide, frequency_caps_apply_with_a_profile)
{
    struct cidx *ix = one(NULL); /* 2 an hour, 6 a day */
    struct prof_freq f;

    memset(&f, 0, sizeof(f));
    snprintf(f.campaign, sizeof(f.campaign), "c1");
    f.day_start = T0 - T0 % 86400;
    f.day = 6;
    f.lifetime = 6;
    decide_pv(ix, banner("", ""), profile("u1", 0, 0, &f));
    cr_assert_eq(res.npicks, 0, "six today");
    f.day = 5;
    f.hour_start = T0 - 600;
    f.hour = 2;
    decide_pv(ix, banner("", ""), profile("u1", 0, 0, &f));
    cr_assert_eq(res.npicks, 0, "two this hour");
    f.hour_start = T0 - 3600;
    decide_pv(ix, banner("", ""), profile("u1", 0, 0, &f));
    cr_assert_eq(res.npicks, 1, "last hour's count is over");
    f.day_start -= 86400;
    f.day = 6;
    decide_pv(ix, banner("", ""), profile("u1", 0, 0, &f));
    cr_assert_eq(res.npicks, 1, "yesterday's count is over");
    cidx_free(ix);
}

/* ---- the answer ---- */

static char *doc_text;

static int doc_cb(void *ctx, const char *id, msgpack_zone *zone, msgpack_object *ret)
{
    (void)ctx;
    (void)id;
    return doc_parse(DOC_JSON, doc_text, strlen(doc_text), zone, ret, NULL);
}

static const uint8_t test_key[BID_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static void answer(const struct ortb_req *r, const struct prof_view *pv, struct bid_answer *ans)
{
    static char mem[1 << 18];
    struct buf b;
    msgpack_zone zone;
    struct bid_answer_ctx ctx = {test_key, "https://bid.example.com", doc_cb, NULL, &zone, pv, T0, &b};

    buf_init(&b, mem, sizeof(mem));
    cr_assert(msgpack_zone_init(&zone, 8192));
    cr_assert_eq(bid_answer(r, &res, &ctx, ans), 0);
    msgpack_zone_destroy(&zone);
}

static bool has(struct cidx_str s, const char *needle)
{
    return s.ptr != NULL && memmem(s.ptr, s.len, needle, strlen(needle)) != NULL;
}

Test(decide, the_answer_follows_the_requests_rules)
{
    static struct bid_answer ans;
    struct cidx *ix = one(NULL);
    struct ortb_check_ctx chk = {{"EUR", 3}, {BID_SEAT, sizeof(BID_SEAT) - 1}, bid_fx_rate, &fx};
    const struct ortb_req *r =
        decide_pv(ix, banner(",\"bidfloor\":1,\"bidfloorcur\":\"GBP\"", ",\"cur\":[\"EUR\"],\"at\":1,\"test\":1"),
                  profile("u1", 0, 0, NULL));

    doc_text = camp_json("c1", NULL);
    cr_assert_eq(res.npicks, 1);
    answer(r, profile("u1", 0, 0, NULL), &ans);
    cr_assert_eq(ans.resp.nseatbids, 1);
    cr_assert_eq(ans.seatbid.nbids, 1);
    cr_assert_eq(ans.resp.cur.len, 3);
    cr_assert_eq(ortb_check_bid(r, &ans.bids[0], &chk, NULL), ORTB_RULE_OK);
    cr_assert(has(ans.bids[0].adm, "The autumn blend is in Lyon."), "the profile fills the slot");
    cr_assert(has(ans.bids[0].nurl, "https://bid.example.com/v1/notice/win?"));
    cr_assert(has(ans.bids[0].burl, "/v1/notice/bill?"));
    cr_assert(has(ans.bids[0].lurl, "/v1/notice/loss?"));
    cr_assert(has(ans.bids[0].nurl, "&t=1&"), "test=1 travels in the signed notice");
    cr_assert(has(ans.bids[0].nurl, "&u=u1&"));
    cr_assert(has(ans.bids[0].nurl, "&p=${AUCTION_PRICE}&sig="));
    cr_assert(has(ans.bids[0].model, res.model_version));
    free(doc_text);
    cidx_free(ix);
}

Test(decide, a_contextual_answer_carries_nothing_of_the_profile)
{
    static struct bid_answer ans;
    struct cidx *ix = one(NULL);
    const struct ortb_req *r = decide_pv(ix, banner("", ",\"regs\":{\"coppa\":1}"), profile("u1", 0, 0, NULL));

    doc_text = camp_json("c1", NULL);
    cr_assert_eq(res.npicks, 1);
    answer(r, profile("u1", 0, 0, NULL), &ans);
    cr_assert_eq(ans.resp.nseatbids, 1);
    cr_assert(has(ans.bids[0].adm, "in your city."), "the slot's fallback");
    cr_assert(has(ans.bids[0].nurl, "&u=&"));
    cr_assert(has(ans.bids[0].nurl, "&t=0&"));
    free(doc_text);
    cidx_free(ix);
}

Test(decide, insecure_markup_is_not_sent_to_a_secure_imp)
{
    static struct bid_answer ans;
    const char *kv[] = {"creatives",
                        "{\"banner\":{\"sizes\":[{\"w\":300,\"h\":250}],\"html_template\":"
                        "\"<img src='http://cdn.example/a.png'>\",\"click_url\":\"https://a.example\"}}",
                        NULL};
    struct cidx *ix = one(kv);
    const struct ortb_req *r = decide(ix, banner(",\"secure\":1", ""));

    doc_text = camp_json("c1", kv);
    cr_assert_eq(res.npicks, 1);
    answer(r, NULL, &ans);
    cr_assert_eq(ans.resp.nseatbids, 0);
    r = decide(ix, banner(",\"secure\":0", ""));
    answer(r, NULL, &ans);
    cr_assert_eq(ans.resp.nseatbids, 1);
    free(doc_text);
    cidx_free(ix);
}

/* ---- variants of the native creative ---- */

/* A store in a temporary directory holding campaign c1 (its slots) and one approved variant; its snapshot. */
static char var_dir[64];
static struct store *var_st;
static char var_id[VAR_ID_LEN + 1];

static struct vpick_set *variant_snapshot(const char *json)
{
    struct camps_rec cr = {.rev = 1};
    static struct var_rec v;
    struct vpick_set *set;
    msgpack_zone zone;
    msgpack_object doc;
    msgpack_sbuffer sb;
    MDB_txn *txn;

    snprintf(var_dir, sizeof(var_dir), "/tmp/adsmith-decide-XXXXXX");
    cr_assert_not_null(mkdtemp(var_dir));
    cr_assert_eq(store_open(var_dir, 32 << 20, NULL, NULL, &var_st), 0);
    cr_assert(msgpack_zone_init(&zone, 8192));
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(doc_parse(DOC_JSON, json, strlen(json), &zone, &doc, NULL), 0);
    cr_assert_eq(camps_pack_doc(&doc, &sb), 0);
    snprintf(cr.id, sizeof(cr.id), "c1");
    snprintf(cr.advertiser, sizeof(cr.advertiser), "adv");
    snprintf(cr.status, sizeof(cr.status), "active");
    cr.doc = sb.data;
    cr.doc_len = sb.size;
    memset(&v, 0, sizeof(v));
    snprintf(v.campaign, sizeof(v.campaign), "c1");
    snprintf(v.locale, sizeof(v.locale), "en-US");
    snprintf(v.title, sizeof(v.title), "Northwind roasts for {{city}}");
    snprintf(v.cta, sizeof(v.cta), "Taste it");
    snprintf(v.ai_label, sizeof(v.ai_label), "AI-generated");
    v.state = VAR_APPROVED;
    cr_assert_eq(mdb_txn_begin(store_env(var_st), NULL, 0, &txn), 0);
    cr_assert_eq(camps_put(txn, var_st, &cr, NULL), 0);
    cr_assert_eq(var_put(txn, var_st, &v, var_id), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&zone);
    cr_assert_eq(store_read_begin(var_st, &txn), 0);
    cr_assert_eq(vpick_build(txn, var_st, &set), 0);
    store_read_end(txn);
    return set;
}

static void variant_store_free(void)
{
    char cmd[128];

    store_free(var_st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", var_dir);
    cr_assert_eq(system(cmd), 0);
}

static void answer_v(const struct ortb_req *r, const struct prof_view *pv, const struct vpick_set *set,
                     uint32_t control_pct, struct bid_answer *ans)
{
    static char mem[1 << 18];
    struct buf b;
    msgpack_zone zone;
    struct vpick_rng rng;
    struct bid_answer_ctx ctx = {test_key, "https://bid.example.com", doc_cb, NULL, &zone, pv, T0, &b};
    struct bid_variant_ctx vctx = {set, &rng, control_pct};

    vpick_rng_seed(&rng, 9);
    buf_init(&b, mem, sizeof(mem));
    cr_assert(msgpack_zone_init(&zone, 8192));
    cr_assert_eq(bid_answer_variants(r, &res, &ctx, &vctx, ans), 0);
    msgpack_zone_destroy(&zone);
}

Test(decide, an_approved_variant_serves_in_a_native_bid_with_its_label)
{
    static struct bid_answer ans;
    struct cidx *ix = one(NULL);
    struct ortb_check_ctx chk = {{"USD", 3}, {BID_SEAT, sizeof(BID_SEAT) - 1}, bid_fx_rate, &fx};
    const char *req = "{\"id\":\"r\",\"imp\":[{\"id\":\"1\",\"native\":{}}],\"device\":{\"language\":\"en\"}}";
    const struct ortb_req *r;
    struct vpick_set *set;
    char want[128];

    doc_text = camp_json("c1", NULL);
    set = variant_snapshot(doc_text);
    r = decide_pv(ix, req, profile("u1", 0, 0, NULL));
    cr_assert_eq(res.npicks, 1);
    cr_assert_eq(res.picks[0].mtype, 4);
    answer_v(r, profile("u1", 0, 0, NULL), set, 0, &ans);
    cr_assert_eq(ans.resp.nseatbids, 1);
    cr_assert_eq(ortb_check_bid(r, &ans.bids[0], &chk, NULL), ORTB_RULE_OK);
    cr_assert_str_eq(ans.variant[0], var_id);
    cr_assert(has(ans.bids[0].adm, "\"text\":\"Northwind roasts for Lyon\""), "the variant's title, slot filled");
    cr_assert(has(ans.bids[0].adm, "\"value\":\"Northwind Coffee \xc2\xb7 AI-generated\""), "the AI label");
    cr_assert(has(ans.bids[0].adm, "\"value\":\"Taste it\""), "the variant's cta");
    cr_assert(has(ans.bids[0].adm, "Caramel and hazelnut"), "no description in the variant: the base's");
    snprintf(want, sizeof(want), "c1/native/%s", var_id);
    cr_assert_eq(ans.bids[0].crid.len, strlen(want));
    cr_assert(has(ans.bids[0].crid, want));
    snprintf(want, sizeof(want), "&vr=%s&", var_id);
    cr_assert(has(ans.bids[0].nurl, want) && has(ans.bids[0].burl, want) && has(ans.bids[0].lurl, want));

    /* The control arm: the base creative, unlabelled, and "base" in the notices. */
    answer_v(r, profile("u1", 0, 0, NULL), set, 100, &ans);
    cr_assert_eq(ans.resp.nseatbids, 1);
    cr_assert_str_eq(ans.variant[0], VAR_BASE);
    cr_assert(has(ans.bids[0].adm, "Autumn blend, roasted for Lyon"));
    cr_assert(!has(ans.bids[0].adm, "AI-generated"));
    cr_assert(has(ans.bids[0].adm, "\"value\":\"Order now\""), "the base cta");
    cr_assert(has(ans.bids[0].crid, "c1/native") && ans.bids[0].crid.len == strlen("c1/native"));
    cr_assert(has(ans.bids[0].nurl, "&vr=base&"));

    /* Without a snapshot: as before variants, and no vr. */
    answer_v(r, profile("u1", 0, 0, NULL), NULL, 0, &ans);
    cr_assert_str_eq(ans.variant[0], "");
    cr_assert(!has(ans.bids[0].nurl, "&vr="));
    vpick_set_free(set);
    variant_store_free();
    free(doc_text);
    cidx_free(ix);
}

Test(decide, banner_bids_keep_their_base_creative_with_variants)
{
    static struct bid_answer ans;
    struct cidx *ix = one(NULL);
    const struct ortb_req *r = decide_pv(ix, banner("", ""), profile("u1", 0, 0, NULL));
    struct vpick_set *set;

    doc_text = camp_json("c1", NULL);
    set = variant_snapshot(doc_text);
    cr_assert_eq(res.npicks, 1);
    answer_v(r, profile("u1", 0, 0, NULL), set, 0, &ans);
    cr_assert_eq(ans.resp.nseatbids, 1);
    cr_assert_str_eq(ans.variant[0], "");
    cr_assert(has(ans.bids[0].adm, "The autumn blend is in Lyon."));
    cr_assert(!has(ans.bids[0].nurl, "&vr="));
    vpick_set_free(set);
    variant_store_free();
    free(doc_text);
    cidx_free(ix);
}

/* ---- notices ---- */

static struct bid_notice notice(void)
{
    struct bid_notice n;

    memset(&n, 0, sizeof(n));
    n.kind = BID_NOTICE_WIN;
    snprintf(n.auction, sizeof(n.auction), "auction-1");
    snprintf(n.bid, sizeof(n.bid), "auction-1-0");
    snprintf(n.imp, sizeof(n.imp), "1");
    snprintf(n.campaign, sizeof(n.campaign), "c1");
    memcpy(n.camp_cur, "USD", 4);
    memcpy(n.cur, "EUR", 4);
    n.bid_micros = 2125000;
    snprintf(n.user, sizeof(n.user), "u1");
    snprintf(n.model, sizeof(n.model), "lr-0123456789abcdef");
    n.test = 0;
    n.ts = T0;
    return n;
}

/*
 * A known answer: HMAC-SHA256 with test_key over the canonical text of
 * notice() as notice.c documents it, computed apart from adsmith (Python's
 * hmac module). The per-thread keyed context must give what the one-shot HMAC
 * gave, whatever key the thread signed with before.
 */
Test(notice, signatures_are_hmac_sha256_of_the_canonical_text)
{
    static const uint8_t other_key[BID_KEY_BYTES] = {42};
    static const char want[] = "959b169296493847ad1118273f0dacd39b1b8bfe42cf37b0e05e565ab710ddf0";
    struct bid_notice n = notice();
    char sig[BID_SIG_HEX + 1], other[BID_SIG_HEX + 1];

    bid_notice_sign(test_key, &n, sig);
    cr_assert_str_eq(sig, want);
    bid_notice_sign(other_key, &n, other);
    cr_assert_str_neq(other, want, "another key, another signature");
    bid_notice_sign(test_key, &n, sig);
    cr_assert_str_eq(sig, want, "the first key again after another");
    bid_notice_sign(test_key, &n, sig);
    cr_assert_str_eq(sig, want, "and again with the same key");
}

Test(notice, sign_then_verify)
{
    struct bid_notice n = notice();
    char sig[BID_SIG_HEX + 1], upper[BID_SIG_HEX + 1];

    bid_notice_sign(test_key, &n, sig);
    cr_assert_eq(strlen(sig), BID_SIG_HEX);
    cr_assert(bid_notice_verify(test_key, &n, sig, BID_SIG_HEX));
    for (int i = 0; i <= BID_SIG_HEX; i++)
        upper[i] = (char)(sig[i] >= 'a' && sig[i] <= 'f' ? sig[i] - 32 : sig[i]);
    cr_assert(bid_notice_verify(test_key, &n, upper, BID_SIG_HEX), "upper-case hex is the same signature");
}

Test(notice, any_altered_parameter_or_signature_is_refused)
{
    struct bid_notice n = notice(), m;
    char sig[BID_SIG_HEX + 1], bad[BID_SIG_HEX + 1];
    uint8_t key2[BID_KEY_BYTES];

    bid_notice_sign(test_key, &n, sig);
#define ALTER(stmt)                                                                                                    \
    do {                                                                                                               \
        m = n;                                                                                                         \
        stmt;                                                                                                          \
        cr_assert(!bid_notice_verify(test_key, &m, sig, BID_SIG_HEX), "accepted after %s", #stmt);                     \
    } while (0)
    ALTER(m.kind = BID_NOTICE_BILL);
    ALTER(m.kind = BID_NOTICE_LOSS);
    ALTER(m.auction[0] = 'b');
    ALTER(m.bid[10] = '1');
    ALTER(m.imp[0] = '2');
    ALTER(m.campaign[1] = '2');
    ALTER(memcpy(m.camp_cur, "EUR", 4));
    ALTER(memcpy(m.cur, "USD", 4));
    ALTER(m.bid_micros++);
    ALTER(m.user[0] = '\0');
    ALTER(m.model[3] = '1');
    ALTER(m.test = 1);
    ALTER(m.ts++);
    ALTER(snprintf(m.variant, sizeof(m.variant), "base"));
    /* moving a character from one field to the next */
    ALTER((snprintf(m.auction, sizeof(m.auction), "auction-"), snprintf(m.bid, sizeof(m.bid), "1auction-1-0")));
#undef ALTER
    for (int i = 0; i < BID_SIG_HEX; i++) {
        memcpy(bad, sig, sizeof(bad));
        bad[i] = bad[i] == '0' ? '1' : '0';
        cr_assert(!bid_notice_verify(test_key, &n, bad, BID_SIG_HEX), "a signature altered at %d", i);
    }
    cr_assert(!bid_notice_verify(test_key, &n, sig, BID_SIG_HEX - 1));
    cr_assert(!bid_notice_verify(test_key, &n, "", 0));
    memcpy(key2, test_key, sizeof(key2));
    key2[31] ^= 1;
    cr_assert(!bid_notice_verify(key2, &n, sig, BID_SIG_HEX), "another key");
}

Test(notice, the_url_carries_every_signed_parameter)
{
    struct bid_notice n = notice();
    char mem[2048], sig[BID_SIG_HEX + 1];
    struct buf b;

    snprintf(n.user, sizeof(n.user), "a b&c=d");
    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(bid_notice_url(test_key, "https://bid.example.com", &n, &b), 0);
    bid_notice_sign(test_key, &n, sig);
    {
        char full[1024];
        snprintf(full, sizeof(full),
                 "https://bid.example.com/v1/notice/win?v=1&a=auction-1&b=auction-1-0&i=1&c=c1&cc=USD&cur=EUR"
                 "&bp=2125000&u=a%%20b%%26c%%3Dd&m=lr-0123456789abcdef&t=0&ts=1767268800&p=${AUCTION_PRICE}&sig=%s",
                 sig);
        cr_assert_str_eq(b.base, full);
    }
    n.kind = BID_NOTICE_LOSS;
    b.len = 0;
    cr_assert_eq(bid_notice_url(test_key, "https://bid.example.com", &n, &b), 0);
    cr_assert(strstr(b.base, "/v1/notice/loss?") != NULL && strstr(b.base, "&l=${AUCTION_LOSS}&sig=") != NULL);
    buf_init(&b, mem, 64);
    cr_assert_eq(bid_notice_url(test_key, "https://bid.example.com", &n, &b), -ENOBUFS);
}

Test(notice, the_variant_is_signed_and_older_notices_still_verify)
{
    struct bid_notice n = notice(), m;
    char sig[BID_SIG_HEX + 1], old_sig[BID_SIG_HEX + 1], mem[2048];
    struct buf b;

    /* A notice without a variant signs as it did before the field existed (the URL test pins that text). */
    bid_notice_sign(test_key, &n, old_sig);
    snprintf(n.variant, sizeof(n.variant), "0123456789abcdef");
    bid_notice_sign(test_key, &n, sig);
    cr_assert(strcmp(sig, old_sig) != 0);
    cr_assert(bid_notice_verify(test_key, &n, sig, BID_SIG_HEX));
    m = n;
    m.variant[0] = '\0';
    cr_assert(!bid_notice_verify(test_key, &m, sig, BID_SIG_HEX), "the variant cannot be dropped");
    snprintf(m.variant, sizeof(m.variant), "base");
    cr_assert(!bid_notice_verify(test_key, &m, sig, BID_SIG_HEX), "nor replaced");
    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(bid_notice_url(test_key, "https://bid.example.com", &n, &b), 0);
    cr_assert(strstr(b.base, "&ts=1767268800&vr=0123456789abcdef&p=${AUCTION_PRICE}&sig=") != NULL, "%s", b.base);
}

Test(notice, the_time_zone_is_signed_and_older_notices_still_verify)
{
    struct bid_notice n = notice(), m;
    char sig[BID_SIG_HEX + 1], old_sig[BID_SIG_HEX + 1], mem[2048];
    struct buf b;

    bid_notice_sign(test_key, &n, old_sig);
    snprintf(n.time_zone, sizeof(n.time_zone), "Asia/Tokyo");
    bid_notice_sign(test_key, &n, sig);
    cr_assert(strcmp(sig, old_sig) != 0);
    cr_assert(bid_notice_verify(test_key, &n, sig, BID_SIG_HEX));
    m = n;
    m.time_zone[0] = '\0';
    cr_assert(!bid_notice_verify(test_key, &m, sig, BID_SIG_HEX), "the zone cannot be dropped");
    snprintf(m.time_zone, sizeof(m.time_zone), "UTC");
    cr_assert(!bid_notice_verify(test_key, &m, sig, BID_SIG_HEX), "nor replaced");
    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(bid_notice_url(test_key, "https://bid.example.com", &n, &b), 0);
    cr_assert(strstr(b.base, "&tz=Asia%2FTokyo&p=${AUCTION_PRICE}&sig=") != NULL, "%s", b.base);
}

Test(notice, prices_read_as_micros)
{
    int64_t v;

    cr_assert_eq(bid_price_parse("1.25", &v), 0);
    cr_assert_eq(v, 1250000);
    cr_assert_eq(bid_price_parse("0.000001", &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(bid_price_parse("2", &v), 0);
    cr_assert_eq(v, 2000000);
    cr_assert_eq(bid_price_parse("0.1234569", &v), 0);
    cr_assert_eq(v, 123456, "digits past the sixth are dropped");
    cr_assert_eq(bid_price_parse(".5", &v), 0);
    cr_assert_eq(v, 500000);
    cr_assert_eq(bid_price_parse("", &v), ADS_EINVAL);
    cr_assert_eq(bid_price_parse("-1", &v), ADS_EINVAL);
    cr_assert_eq(bid_price_parse("1e3", &v), ADS_EINVAL);
    cr_assert_eq(bid_price_parse("${AUCTION_PRICE}", &v), ADS_EINVAL);
    cr_assert_eq(bid_price_parse("1.2.3", &v), ADS_EINVAL);
    cr_assert_eq(bid_price_parse("99999999999999999999999", &v), ADS_EINVAL);
}

Test(notice, verification_compares_in_constant_time)
{
    char *src = read_source("service/bid/notice.c");
    char *fn = strstr(src, "bool bid_notice_verify(");
    char *end;

    cr_assert_not_null(fn);
    end = strstr(fn, "\n}\n");
    cr_assert_not_null(end);
    *end = '\0';
    cr_assert(strstr(fn, "CRYPTO_memcmp(") != NULL, "verify uses OpenSSL's constant-time compare");
    cr_assert(strstr(fn, "strcmp") == NULL && strstr(fn, " memcmp(") == NULL, "and no early-exit compare");
    free(src);
}

/* ---- currency tables ---- */

Test(fx, tables_parse_and_refuse_what_they_cannot_read)
{
    struct bid_fx t;
    struct ads_diag diag = {{0}, {0}};
    double rate;

    cr_assert_eq(bid_fx_parse("", &t, NULL), 0);
    cr_assert_eq(t.n, 1, "USD only");
    cr_assert_eq(bid_fx_parse(" EUR=1.08, GBP=1.27 ,", &t, NULL), 0);
    cr_assert_eq(t.n, 3);
    cr_assert_eq(bid_fx_rate(&t, "EUR", "GBP", &rate), 0);
    cr_assert_float_eq(rate, 1.08 / 1.27, 1e-12);
    cr_assert_eq(bid_fx_rate(&t, "EUR", "JPY", &rate), ADS_ENOT_FOUND);
    cr_assert_eq(bid_fx_parse("EUR=1.1,EUR=1.2", &t, NULL), 0);
    cr_assert_eq(t.n, 2, "a repeated code replaces");
    static const char *const bad[] = {"eur=1.08", "EUR",    "EUR=",    "EUR=0",   "EUR=-1",   "EUR=abc",
                                      "EUR=1.0x", "EURO=1", "EUR=inf", "EUR=nan", "EUR=1e400"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(bid_fx_parse(bad[i], &t, &diag), ADS_EINVAL, "%s accepted", bad[i]);
        cr_assert_neq(diag.message[0], '\0');
    }
}
