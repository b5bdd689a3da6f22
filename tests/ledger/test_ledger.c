#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adsmith/camps.h"
#include "adsmith/doc.h"
#include "adsmith/ledger.h"
#include "adsmith/wq.h"

static char dir[64];
static struct store *st;
static struct ledger_zones *zones;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/adsmith-ledger-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(store_open(dir, 256 << 20, NULL, NULL, &st), 0);
    cr_assert_eq(ledger_zones_new(&zones), 0);
}

static void teardown(void)
{
    char cmd[128];

    ledger_zones_free(zones);
    store_free(st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(ledger, .init = setup, .fini = teardown);

/* 2026-01-01T00:00:00Z */
#define JAN1 1767225600LL
#define DAY 86400LL

/* Unix time of a UTC civil time, by the C library (an independent reference). */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};

    return (int64_t)timegm(&tm);
}

static struct ledger_pkg pkg_make(uint64_t grant, enum ledger_period_kind period, int64_t anchor, bool hard,
                                  const char *zone)
{
    struct ledger_pkg p;

    memset(&p, 0, sizeof(p));
    p.grant = grant;
    p.period = period;
    p.anchor = anchor;
    p.hard = hard;
    p.thresholds[0] = 80;
    p.thresholds[1] = 100;
    p.n_thresholds = 2;
    cr_assert_eq(ledger_zones_get(zones, zone, &p.zone), 0, "zone %s", zone);
    return p;
}

static MDB_txn *wbegin(void)
{
    MDB_txn *txn;

    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, 0, &txn), 0);
    return txn;
}

static void wcommit(MDB_txn *txn)
{
    cr_assert_eq(mdb_txn_commit(txn), 0);
}

static struct ledger_reservation reserve(const char *cid, const struct ledger_pkg *pkg, const char *req,
                                         uint32_t attempt, uint64_t tokens, int64_t now)
{
    struct ledger_reservation r;
    MDB_txn *txn = wbegin();
    int rc = ledger_reserve(txn, st, cid, pkg, req, attempt, tokens, "m1", now, 600, &r);

    cr_assert_eq(rc, 0, "reserve %s/%u: %d", req, attempt, rc);
    wcommit(txn);
    return r;
}

static struct ledger_settlement settle_m(const char *cid, const struct ledger_pkg *pkg, const char *req,
                                         uint32_t attempt, struct ledger_use use, const char *model, int64_t now)
{
    struct ledger_settlement r;
    MDB_txn *txn = wbegin();
    int rc = ledger_settle(txn, st, cid, pkg, req, attempt, &use, model, now, &r);

    cr_assert_eq(rc, 0, "settle %s/%u: %d", req, attempt, rc);
    wcommit(txn);
    return r;
}

static struct ledger_settlement settle(const char *cid, const struct ledger_pkg *pkg, const char *req, uint32_t attempt,
                                       uint64_t prompt, uint64_t completion, int64_t now)
{
    return settle_m(cid, pkg, req, attempt, (struct ledger_use){.prompt = prompt, .completion = completion}, "m1", now);
}

static struct ledger_usage usage(const char *cid, const struct ledger_pkg *pkg, int64_t now)
{
    struct ledger_usage u;
    MDB_txn *txn;

    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(ledger_usage(txn, st, cid, pkg, now, &u), 0);
    mdb_txn_abort(txn);
    return u;
}

/* ---- packages from documents ---- */

Test(ledger, pkg_from_doc_reads_package_and_zone)
{
    static const char json[] =
        "{\"id\":\"c1\",\"flight\":{\"start\":0,\"time_zone\":\"Europe/Berlin\"},"
        "\"token_package\":{\"grant\":{\"tokens\":5000,\"period\":\"week\",\"anchor\":1767225600},"
        "\"top_ups\":[{\"id\":\"t1\",\"tokens\":70,\"at\":1767300000,\"note\":\"PO-1\"}],"
        "\"limit\":\"soft\",\"alert_thresholds\":[100,50,80]}}";
    msgpack_zone zone;
    msgpack_object doc;
    msgpack_object_kv *members;
    struct ledger_pkg p;

    msgpack_zone_init(&zone, 4096);
    cr_assert_eq(doc_parse(DOC_JSON, json, sizeof(json) - 1, &zone, &doc, NULL), 0);
    cr_assert_eq(ledger_pkg_from_doc(&doc, zones, &p), 0);
    cr_assert_eq(p.grant, 5000);
    cr_assert_eq(p.period, LEDGER_WEEK);
    cr_assert_eq(p.anchor, 1767225600);
    cr_assert(!p.hard);
    cr_assert_eq(p.n_top_ups, 1);
    cr_assert_eq(p.top_ups[0].tokens, 70);
    cr_assert_eq(p.top_ups[0].at, 1767300000);
    cr_assert_eq(p.n_thresholds, 3);
    cr_assert(p.thresholds[0] == 50 && p.thresholds[1] == 80 && p.thresholds[2] == 100);
    cr_assert_eq(tz_offset_at(p.zone, JAN1), 3600, "the campaign's zone is loaded");

    /* Without alert_thresholds: [80, 100]. Without token_package: not found. */
    members = doc.via.map.ptr[2].val.via.map.ptr;
    cr_assert_eq(members[3].key.via.str.size, strlen("alert_thresholds"));
    members[3].key.via.str.ptr = "alert_thresholdz";
    cr_assert_eq(ledger_pkg_from_doc(&doc, zones, &p), 0);
    cr_assert(p.n_thresholds == 2 && p.thresholds[0] == 80 && p.thresholds[1] == 100);
    doc.via.map.ptr[2].key.via.str.ptr = "token_packagf";
    cr_assert_eq(ledger_pkg_from_doc(&doc, zones, &p), ADS_ENOT_FOUND);
    msgpack_zone_destroy(&zone);
}

/* ---- arithmetic ---- */

Test(ledger, reserve_settle_release_arithmetic_is_exact)
{
    struct ledger_pkg p = pkg_make(10000, LEDGER_MONTH, JAN1, true, "UTC");
    int64_t now = JAN1 + 5 * DAY;
    struct ledger_reservation r;
    struct ledger_settlement s;
    struct ledger_usage u;
    struct camps_usage cu;
    MDB_txn *txn;

    r = reserve("c1", &p, "g1", 1, 1000, now);
    cr_assert(!r.refused && !r.over);
    cr_assert_eq(r.period_start, JAN1);
    cr_assert_eq(r.period_end, utc(2026, 2, 1, 0, 0));
    cr_assert_eq(r.allowance, 10000);
    cr_assert_eq(r.used, 1000);
    u = usage("c1", &p, now);
    cr_assert_eq(u.reserved, 1000);
    cr_assert_eq(u.settled, 0);
    cr_assert_eq(u.remaining, 9000);

    /* Less than reserved: 300 prompt of which 100 cached, 200 completion of which 50 reasoning. */
    s = settle_m("c1", &p, "g1", 1,
                 (struct ledger_use){.prompt = 300, .cached = 100, .completion = 200, .reasoning = 50}, "m1", now + 10);
    cr_assert(!s.duplicate && !s.unreserved);
    cr_assert_eq(s.tokens, 500);
    cr_assert_eq(s.released, 1000);
    u = usage("c1", &p, now);
    cr_assert_eq(u.reserved, 0);
    cr_assert_eq(u.tokens[LEDGER_PROMPT], 200);
    cr_assert_eq(u.tokens[LEDGER_CACHED], 100);
    cr_assert_eq(u.tokens[LEDGER_COMPLETION], 150);
    cr_assert_eq(u.tokens[LEDGER_REASONING], 50);
    cr_assert_eq(u.settled, 500);
    cr_assert_eq(u.remaining, 9500);
    cr_assert_eq(u.generations, 1);

    /* More than reserved: charged in full. */
    reserve("c1", &p, "g2", 1, 400, now + 20);
    cr_assert_eq(usage("c1", &p, now).reserved, 400);
    s = settle("c1", &p, "g2", 1, 250, 350, now + 30);
    cr_assert_eq(s.tokens, 600);
    cr_assert_eq(s.released, 400);
    u = usage("c1", &p, now);
    cr_assert_eq(u.reserved, 0);
    cr_assert_eq(u.settled, 1100);
    cr_assert_eq(u.remaining, 8900);
    cr_assert_eq(u.estimated, 0);

    /* An estimated settlement is flagged. */
    reserve("c1", &p, "g3", 1, 100, now + 40);
    settle_m("c1", &p, "g3", 1, (struct ledger_use){.prompt = 30, .completion = 20, .estimated = true}, "m1", now + 50);
    u = usage("c1", &p, now);
    cr_assert_eq(u.settled, 1150);
    cr_assert_eq(u.estimated, 1);
    cr_assert_eq(u.generations, 3);

    /* camps_usage_get() reads the campaign record the ledger keeps. */
    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(camps_usage_get(txn, st, "c1", &cu), 0);
    mdb_txn_abort(txn);
    cr_assert_eq(cu.tokens_total, 1150);
    cr_assert_eq(cu.tokens_period_start, (uint64_t)JAN1);
    cr_assert_eq(cu.tokens_period, 1150);
}

Test(ledger, invalid_arguments_and_conflicts)
{
    struct ledger_pkg p = pkg_make(1000, LEDGER_DAY, JAN1, true, "UTC");
    struct ledger_reservation r;
    struct ledger_settlement s;
    struct ledger_use bad = {.prompt = 10, .cached = 11};
    MDB_txn *txn = wbegin();

    cr_assert_eq(ledger_reserve(txn, st, "c1", &p, "", 1, 10, "m1", JAN1, 60, &r), ADS_EINVAL);
    cr_assert_eq(ledger_reserve(txn, st, "c1", &p, "g", 1, 0, "m1", JAN1, 60, &r), ADS_EINVAL);
    cr_assert_eq(ledger_reserve(txn, st, "c1", &p, "g", 1, 10, "m1", JAN1, 0, &r), ADS_EINVAL);
    cr_assert_eq(ledger_reserve(txn, st, "c1", &p, "g", 1, LEDGER_TOKENS_MAX + 1, "m1", JAN1, 60, &r), ADS_EINVAL);
    cr_assert_eq(ledger_settle(txn, st, "c1", &p, "g", 1, &bad, "m1", JAN1, &s), ADS_EINVAL, "cached > prompt");
    cr_assert_eq(ledger_reserve(txn, st, "c1", &p, "g", 1, 10, "m1", JAN1, 60, &r), 0);
    cr_assert_eq(ledger_reserve(txn, st, "c1", &p, "g", 1, 10, "m1", JAN1, 60, &r), ADS_ECONFLICT);
    cr_assert_eq(ledger_settle(txn, st, "c2", &p, "g", 1, &(struct ledger_use){.prompt = 1}, "m1", JAN1, &s),
                 ADS_ECONFLICT, "another campaign's reservation");
    cr_assert_eq(ledger_settle(txn, st, "c1", &p, "g", 1, &(struct ledger_use){.prompt = 1}, "m1", JAN1, &s), 0);
    cr_assert_eq(ledger_reserve(txn, st, "c1", &p, "g", 1, 10, "m1", JAN1, 60, &r), ADS_ECONFLICT,
                 "a settled attempt cannot be reserved again");
    mdb_txn_abort(txn);
}

/* ---- money ---- */

Test(ledger, money_from_versioned_prices)
{
    struct ledger_pkg p = pkg_make(1000000, LEDGER_MONTH, JAN1, true, "UTC");
    struct ledger_use use = {.prompt = 1000, .cached = 400, .completion = 500, .reasoning = 100};
    struct ledger_settlement s;
    uint64_t price;
    char cur[4];
    MDB_txn *txn = wbegin();

    cr_assert_eq(ledger_price_put(txn, st, "m1", LEDGER_PROMPT, JAN1, 1000000, "USD"), 0);     /* 1 micro/token */
    cr_assert_eq(ledger_price_put(txn, st, "m1", LEDGER_COMPLETION, JAN1, 3000000, "USD"), 0); /* 3 micros/token */
    cr_assert_eq(ledger_price_put(txn, st, "m1", LEDGER_PROMPT, JAN1 + 10 * DAY, 2000000, "USD"), 0);
    cr_assert_eq(ledger_price_put(txn, st, "m2", LEDGER_PROMPT, JAN1, 1, "USD"), 0); /* 10^-6 micro/token */
    cr_assert_eq(ledger_price_put(txn, st, "m1", LEDGER_CACHED, JAN1, 1, "EUR"), ADS_ECONFLICT, "one currency");
    cr_assert_eq(ledger_price_put(txn, st, "m1", LEDGER_CACHED, JAN1, 1, "usd"), ADS_EINVAL);
    wcommit(txn);

    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(ledger_price_get(txn, st, "m1", LEDGER_PROMPT, JAN1 - 1, &price, cur), ADS_ENOT_FOUND);
    cr_assert_eq(ledger_price_get(txn, st, "m1", LEDGER_PROMPT, JAN1, &price, cur), 0);
    cr_assert_eq(price, 1000000);
    cr_assert_str_eq(cur, "USD");
    cr_assert_eq(ledger_price_get(txn, st, "m1", LEDGER_PROMPT, JAN1 + 10 * DAY - 1, &price, NULL), 0);
    cr_assert_eq(price, 1000000);
    cr_assert_eq(ledger_price_get(txn, st, "m1", LEDGER_PROMPT, JAN1 + 10 * DAY, &price, NULL), 0);
    cr_assert_eq(price, 2000000);
    cr_assert_eq(ledger_price_get(txn, st, "m1", LEDGER_CACHED, JAN1 + DAY, &price, NULL), ADS_ENOT_FOUND);
    cr_assert_eq(ledger_price_get(txn, st, "m", LEDGER_PROMPT, JAN1 + DAY, &price, NULL), ADS_ENOT_FOUND);
    mdb_txn_abort(txn);

    /* Before the change: 600 prompt + 400 cached (prompt's price) at 1, 400 completion + 100 reasoning at 3. */
    reserve("c1", &p, "g1", 1, 2000, JAN1 + DAY);
    s = settle_m("c1", &p, "g1", 1, use, "m1", JAN1 + DAY);
    cr_assert_eq(s.money_micros, 600 + 400 + 1200 + 300);
    /* After it, in the same period: prompt and cached at 2. */
    reserve("c1", &p, "g2", 1, 2000, JAN1 + 11 * DAY);
    s = settle_m("c1", &p, "g2", 1, use, "m1", JAN1 + 11 * DAY);
    cr_assert_eq(s.money_micros, 1200 + 800 + 1200 + 300);
    cr_assert_eq(usage("c1", &p, JAN1 + 12 * DAY).money_micros, 2500 + 3500);

    /* Rounding half up, per settlement: 500000 tokens at 10^-6 micros each is 0.5 -> 1; 499999 -> 0. */
    s = settle_m("c2", &p, "g3", 1, (struct ledger_use){.prompt = 500000}, "m2", JAN1 + DAY);
    cr_assert(s.unreserved);
    cr_assert_eq(s.money_micros, 1);
    s = settle_m("c2", &p, "g4", 1, (struct ledger_use){.prompt = 499999}, "m2", JAN1 + DAY);
    cr_assert_eq(s.money_micros, 0);
    /* A model without prices costs nothing (its tokens still count). */
    s = settle_m("c2", &p, "g5", 1, (struct ledger_use){.prompt = 7, .completion = 3}, "m9", JAN1 + DAY);
    cr_assert_eq(s.money_micros, 0);
    cr_assert_eq(s.tokens, 10);
}

/* ---- the hard limit ---- */

Test(ledger, hard_limit_refuses_past_the_exact_boundary)
{
    struct ledger_pkg p = pkg_make(1000, LEDGER_DAY, JAN1, true, "UTC");
    int64_t now = JAN1 + 100;
    struct ledger_reservation r;

    /* allowance + 1 refused, allowance admitted, then nothing more. */
    r = reserve("a", &p, "a1", 1, 1001, now);
    cr_assert(r.refused);
    cr_assert_eq(r.used, 0);
    r = reserve("a", &p, "a2", 1, 1000, now);
    cr_assert(!r.refused);
    cr_assert_eq(r.used, 1000);
    r = reserve("a", &p, "a3", 1, 1, now);
    cr_assert(r.refused);
    cr_assert_eq(usage("a", &p, now).refusals, 2, "refusals are committed");
    cr_assert_eq(usage("a", &p, now).reserved, 1000);

    /* allowance - 1, then the last token, then one too many. */
    cr_assert(!reserve("b", &p, "b1", 1, 999, now).refused);
    cr_assert(!reserve("b", &p, "b2", 1, 1, now).refused);
    cr_assert(reserve("b", &p, "b3", 1, 1, now).refused);

    /* Settled tokens count as well as reserved ones. */
    settle("b", &p, "b1", 1, 500, 499, now);
    cr_assert(reserve("b", &p, "b4", 1, 1, now).refused, "999 settled + 1 reserved leave nothing");
    settle("b", &p, "b2", 1, 0, 0, now);
    cr_assert(!reserve("b", &p, "b5", 1, 1, now).refused, "settling b2 at 0 freed its token");
    cr_assert_eq(usage("b", &p, now).remaining, 0);
}

struct res_job {
    struct wq_job base;
    const struct ledger_pkg *pkg;
    char req[16];
    uint64_t tokens;
    int64_t now;
    struct ledger_reservation res;
    struct ledger_use use;
    struct ledger_settlement set;
    bool settling;
};

static int res_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct res_job *j = (struct res_job *)wj;

    if (j->settling)
        return ledger_settle(txn, s, "hot", j->pkg, j->req, 1, &j->use, "m1", j->now, &j->set);
    return ledger_reserve(txn, s, "hot", j->pkg, j->req, 1, j->tokens, "m1", j->now, 600, &j->res);
}

static void *res_thread_wq(void *arg)
{
    struct res_job *j = arg;
    struct wq *q = (struct wq *)j->base.next; /* smuggled in before the job is queued */

    j->base.next = NULL;
    cr_assert_eq(wq_run(q, &j->base), 0);
    return NULL;
}

static void *res_thread_txn(void *arg)
{
    struct res_job *j = arg;
    MDB_txn *txn;

    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, 0, &txn), 0);
    cr_assert_eq(res_apply(&j->base, txn, st), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    return NULL;
}

static struct store *get_store(void *arg)
{
    (void)arg;
    return st;
}

#define HOT_THREADS 64

/* 64 threads at once against a limit with 999 tokens left: 37 tokens each admit exactly 27 of them. */
static void hot_limit(bool via_wq)
{
    static struct res_job jobs[HOT_THREADS];
    struct ledger_pkg p = pkg_make(10000, LEDGER_DAY, JAN1, true, "UTC");
    pthread_t tids[HOT_THREADS];
    bool started[HOT_THREADS];
    struct ledger_usage u;
    struct wq *q = NULL;
    int64_t now = JAN1 + 1000;
    int admitted = 0;

    reserve("hot", &p, "base", 1, 9001, now);
    settle("hot", &p, "base", 1, 5001, 4000, now); /* 9001 settled: 999 left */
    if (via_wq)
        cr_assert_eq(wq_new(get_store, NULL, NULL, 1000, &q), 0);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < HOT_THREADS; i++) {
            if (round == 0) {
                memset(&jobs[i], 0, sizeof(jobs[i]));
                jobs[i].base.apply = res_apply;
                jobs[i].pkg = &p;
                snprintf(jobs[i].req, sizeof(jobs[i].req), "g%d", i);
                jobs[i].tokens = 37;
                jobs[i].now = now;
            } else {
                /* Settle what was admitted, at up to the reservation (the bound the pipeline keeps). */
                jobs[i].settling = true;
                jobs[i].use = (struct ledger_use){.prompt = 20, .completion = 17};
            }
            /* Refused generations are never sent, so never settled. */
            started[i] = round == 0 || !jobs[i].res.refused;
            if (!started[i])
                continue;
            jobs[i].base.next = (struct wq_job *)q;
            cr_assert_eq(pthread_create(&tids[i], NULL, via_wq ? res_thread_wq : res_thread_txn, &jobs[i]), 0);
        }
        for (int i = 0; i < HOT_THREADS; i++) {
            if (started[i])
                pthread_join(tids[i], NULL);
        }
        u = usage("hot", &p, now);
        cr_assert_leq(u.settled + u.reserved, u.allowance, "round %d: %llu settled + %llu reserved > %llu", round,
                      (unsigned long long)u.settled, (unsigned long long)u.reserved, (unsigned long long)u.allowance);
        if (round == 0) {
            for (int i = 0; i < HOT_THREADS; i++)
                admitted += !jobs[i].res.refused;
            cr_assert_eq(admitted, 999 / 37, "exactly what fits is admitted");
            cr_assert_eq(u.reserved, (uint64_t)admitted * 37);
            cr_assert_eq(u.refusals, (uint64_t)(HOT_THREADS - admitted));
        } else {
            cr_assert_eq(u.reserved, 0);
            cr_assert_eq(u.settled, 9001 + (uint64_t)admitted * 37);
            cr_assert_eq(u.unreserved, 0);
        }
    }
    wq_free(q);
}

Test(ledger, hot_limit_64_threads_through_wq_run_overspend_zero)
{
    hot_limit(true);
}

Test(ledger, hot_limit_64_threads_own_transactions_overspend_zero)
{
    hot_limit(false);
}

/* ---- idempotency and expiry ---- */

Test(ledger, retried_settlement_counts_once)
{
    struct ledger_pkg p = pkg_make(10000, LEDGER_DAY, JAN1, true, "UTC");
    int64_t now = JAN1 + 100;
    struct ledger_settlement s;
    struct ledger_usage u;

    reserve("c1", &p, "g1", 1, 500, now);
    s = settle("c1", &p, "g1", 1, 100, 200, now + 1);
    cr_assert(!s.duplicate);
    s = settle("c1", &p, "g1", 1, 100, 200, now + 2);
    cr_assert(s.duplicate);
    cr_assert_eq(s.tokens, 0);
    s = settle("c1", &p, "g1", 1, 999, 999, now + 3); /* a retry with other figures changes nothing either */
    cr_assert(s.duplicate);
    u = usage("c1", &p, now);
    cr_assert_eq(u.settled, 300);
    cr_assert_eq(u.generations, 1);
    cr_assert_eq(u.reserved, 0);

    /* Another attempt is another charge; without a reservation of its own it is unreserved. */
    s = settle("c1", &p, "g1", 2, 10, 20, now + 4);
    cr_assert(!s.duplicate && s.unreserved);
    u = usage("c1", &p, now);
    cr_assert_eq(u.settled, 330);
    cr_assert_eq(u.generations, 2);
    cr_assert_eq(u.unreserved, 1);
}

Test(ledger, expiry_releases_stale_reservations)
{
    struct ledger_pkg p = pkg_make(1000, LEDGER_MONTH, JAN1, true, "UTC");
    int64_t now = JAN1 + 100;
    struct ledger_settlement s;
    struct ledger_reservation r;
    uint32_t released;
    MDB_txn *txn = wbegin();

    cr_assert_eq(ledger_reserve(txn, st, "c1", &p, "g1", 1, 600, "m1", now, 60, &r), 0);
    cr_assert_eq(ledger_reserve(txn, st, "c1", &p, "g2", 1, 300, "m1", now, 120, &r), 0);
    wcommit(txn);
    cr_assert(reserve("c1", &p, "g3", 1, 101, now).refused);

    txn = wbegin();
    cr_assert_eq(ledger_expire(txn, st, now + 59, 100, &released), 0);
    cr_assert_eq(released, 0);
    cr_assert_eq(ledger_expire(txn, st, now + 60, 100, &released), 0);
    cr_assert_eq(released, 1);
    wcommit(txn);
    cr_assert_eq(usage("c1", &p, now).reserved, 300);
    cr_assert(!reserve("c1", &p, "g4", 1, 700, now + 61).refused, "the expired 600 are free again");

    /* A settle after expiry is still charged, unreserved, and releases nothing twice. */
    s = settle("c1", &p, "g1", 1, 50, 50, now + 70);
    cr_assert(s.unreserved);
    cr_assert_eq(s.released, 0);
    cr_assert_eq(usage("c1", &p, now).reserved, 1000);
    cr_assert_eq(usage("c1", &p, now).settled, 100);

    /* max bounds the work of one call. */
    txn = wbegin();
    cr_assert_eq(ledger_expire(txn, st, now + 10000, 1, &released), 0);
    cr_assert_eq(released, 1);
    cr_assert_eq(ledger_expire(txn, st, now + 10000, 10, &released), 0);
    cr_assert_eq(released, 1);
    wcommit(txn);
    cr_assert_eq(usage("c1", &p, now).reserved, 0);

    /* Settlement records are forgotten after LEDGER_SETTLE_KEEP_S. */
    cr_assert(settle("c1", &p, "g1", 1, 1, 1, now + 80).duplicate);
    txn = wbegin();
    cr_assert_eq(ledger_expire(txn, st, now + 70 + LEDGER_SETTLE_KEEP_S, 100, NULL), 0);
    wcommit(txn);
    cr_assert(!settle("c1", &p, "g1", 1, 1, 1, now + 90).duplicate);
}

/* ---- periods ---- */

static void expect_period(const struct ledger_pkg *p, int64_t now, int64_t start, int64_t end)
{
    int64_t s, e;

    ledger_period(p, now, &s, &e);
    cr_assert(s == start && e == end, "period of %lld: [%lld, %lld), want [%lld, %lld)", (long long)now, (long long)s,
              (long long)e, (long long)start, (long long)end);
}

Test(ledger, periods_day_week_month_utc)
{
    int64_t a = utc(2026, 1, 1, 6, 0);
    struct ledger_pkg d = pkg_make(1, LEDGER_DAY, a, true, "UTC");
    struct ledger_pkg w = pkg_make(1, LEDGER_WEEK, a, true, "UTC");
    struct ledger_pkg m = pkg_make(1, LEDGER_MONTH, utc(2026, 1, 31, 0, 0), true, "UTC");

    expect_period(&d, a - 1000, a, a + DAY); /* before the anchor: the first period */
    expect_period(&d, a, a, a + DAY);
    expect_period(&d, a + 3 * DAY - 1, a + 2 * DAY, a + 3 * DAY);
    expect_period(&d, a + 3 * DAY, a + 3 * DAY, a + 4 * DAY);
    expect_period(&d, utc(2026, 1, 4, 5, 59), a + 2 * DAY, a + 3 * DAY);
    expect_period(&w, a + 13 * DAY + 3600, a + 7 * DAY, a + 14 * DAY);
    expect_period(&w, a + 14 * DAY, a + 14 * DAY, a + 21 * DAY);
    /* Anchored on the 31st: the last day of shorter months. */
    expect_period(&m, utc(2026, 2, 15, 0, 0), utc(2026, 1, 31, 0, 0), utc(2026, 2, 28, 0, 0));
    expect_period(&m, utc(2026, 2, 28, 0, 0), utc(2026, 2, 28, 0, 0), utc(2026, 3, 31, 0, 0));
    expect_period(&m, utc(2026, 3, 30, 23, 59), utc(2026, 2, 28, 0, 0), utc(2026, 3, 31, 0, 0));
    expect_period(&m, utc(2026, 4, 15, 0, 0), utc(2026, 3, 31, 0, 0), utc(2026, 4, 30, 0, 0));
    expect_period(&m, utc(2028, 2, 29, 12, 0), utc(2028, 2, 29, 0, 0), utc(2028, 3, 31, 0, 0)); /* leap year */
    expect_period(&m, utc(2027, 1, 1, 0, 0), utc(2026, 12, 31, 0, 0), utc(2027, 1, 31, 0, 0));
}

Test(ledger, periods_follow_dst_in_berlin)
{
    /* Europe/Berlin leaves CET (+1) for CEST (+2) on 2026-03-29 at 01:00 UTC, and returns on 2026-10-25. */
    struct ledger_pkg d = pkg_make(1, LEDGER_DAY, utc(2026, 3, 27, 23, 0), true, "Europe/Berlin");   /* 28th 00:00 */
    struct ledger_pkg w = pkg_make(1, LEDGER_WEEK, utc(2026, 3, 22, 23, 0), true, "Europe/Berlin");  /* Mon 23rd */
    struct ledger_pkg m = pkg_make(1, LEDGER_MONTH, utc(2026, 1, 30, 23, 0), true, "Europe/Berlin"); /* Jan 31st */
    struct ledger_pkg g = pkg_make(1, LEDGER_DAY, utc(2026, 3, 28, 1, 30), true, "Europe/Berlin");   /* 02:30 CET */

    /* The day of the change has 23 hours: local midnight to local midnight. */
    expect_period(&d, utc(2026, 3, 29, 10, 0), utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0));
    expect_period(&d, utc(2026, 3, 29, 22, 0), utc(2026, 3, 29, 22, 0), utc(2026, 3, 30, 22, 0));
    /* And the day back has 25. */
    expect_period(&d, utc(2026, 10, 25, 12, 0), utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0));
    expect_period(&w, utc(2026, 3, 29, 21, 59), utc(2026, 3, 22, 23, 0), utc(2026, 3, 29, 22, 0));
    expect_period(&w, utc(2026, 4, 1, 0, 0), utc(2026, 3, 29, 22, 0), utc(2026, 4, 5, 22, 0));
    /* Monthly from Jan 31st 00:00 local: Feb 28th 00:00 CET, Mar 31st 00:00 CEST. */
    expect_period(&m, utc(2026, 3, 15, 0, 0), utc(2026, 2, 27, 23, 0), utc(2026, 3, 30, 22, 0));
    /* 02:30 does not exist on the 29th: that period starts at 03:30 CEST, as long after the gap as 02:30 is after
     * 02:00. */
    expect_period(&g, utc(2026, 3, 29, 1, 0), utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30));
    expect_period(&g, utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30));
    cr_assert_eq(ledger_local_day(&d, utc(2026, 3, 28, 23, 30)), (int32_t)(utc(2026, 3, 29, 0, 0) / DAY));
}

Test(ledger, period_rollover_starts_afresh)
{
    struct ledger_pkg p = pkg_make(1000, LEDGER_DAY, JAN1, true, "UTC");
    struct ledger_usage u;

    reserve("c1", &p, "g1", 1, 1000, JAN1 + DAY - 10);
    cr_assert(reserve("c1", &p, "g2", 1, 1, JAN1 + DAY - 5).refused);
    /* The settle lands in the reservation's period even after the period ended. */
    settle("c1", &p, "g1", 1, 400, 400, JAN1 + DAY + 5);
    u = usage("c1", &p, JAN1 + DAY - 1);
    cr_assert_eq(u.settled, 800);
    cr_assert_eq(u.reserved, 0);
    u = usage("c1", &p, JAN1 + DAY);
    cr_assert_eq(u.period_start, JAN1 + DAY);
    cr_assert_eq(u.settled, 0);
    cr_assert_eq(u.remaining, 1000);
    cr_assert(!reserve("c1", &p, "g3", 1, 1000, JAN1 + DAY + 10).refused, "a new period, a new grant");
}

/* ---- thresholds, soft limits, top-ups ---- */

struct alert_list {
    int n;
    uint64_t seq[16];
    uint32_t threshold[16];
    int64_t period[16];
};

static int alert_cb(const struct ledger_alert *a, void *arg)
{
    struct alert_list *l = arg;

    cr_assert_eq(a->campaign_id_len, 2);
    cr_assert(memcmp(a->campaign_id, "c1", 2) == 0);
    l->seq[l->n] = a->seq;
    l->threshold[l->n] = a->threshold;
    l->period[l->n] = a->period_start;
    l->n++;
    return 0;
}

static struct alert_list alerts(uint64_t after)
{
    struct alert_list l = {0};
    MDB_txn *txn;

    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(ledger_alerts(txn, st, after, 16, alert_cb, &l), 0);
    mdb_txn_abort(txn);
    return l;
}

Test(ledger, thresholds_alert_once_per_period)
{
    struct ledger_pkg p = pkg_make(1000, LEDGER_DAY, JAN1, true, "UTC");
    struct ledger_settlement s;
    struct alert_list l;

    p.thresholds[0] = 50;
    p.thresholds[1] = 80;
    p.thresholds[2] = 100;
    p.n_thresholds = 3;
    s = settle("c1", &p, "g1", 1, 300, 199, JAN1 + 10); /* 49.9 % */
    cr_assert_eq(s.n_alerts, 0);
    s = settle("c1", &p, "g2", 1, 1, 0, JAN1 + 20); /* 50 % exactly */
    cr_assert_eq(s.n_alerts, 1);
    cr_assert_eq(s.alerts[0], 50);
    s = settle("c1", &p, "g3", 1, 100, 0, JAN1 + 30);
    cr_assert_eq(s.n_alerts, 0, "50 % again in the same period: no alert");
    s = settle("c1", &p, "g4", 1, 500, 0, JAN1 + 40); /* 110 %: 80 and 100 at once */
    cr_assert_eq(s.n_alerts, 2);
    cr_assert(s.alerts[0] == 80 && s.alerts[1] == 100);
    cr_assert_eq(settle("c1", &p, "g5", 1, 1, 0, JAN1 + 50).n_alerts, 0);
    /* The next period raises them again. */
    s = settle("c1", &p, "g6", 1, 900, 0, JAN1 + DAY + 10);
    cr_assert_eq(s.n_alerts, 2);
    cr_assert(s.alerts[0] == 50 && s.alerts[1] == 80);

    l = alerts(0);
    cr_assert_eq(l.n, 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(l.seq[i], (uint64_t)i + 1);
    cr_assert(l.threshold[0] == 50 && l.threshold[1] == 80 && l.threshold[2] == 100 && l.threshold[3] == 50);
    cr_assert(l.period[2] == JAN1 && l.period[3] == JAN1 + DAY);
    l = alerts(3);
    cr_assert_eq(l.n, 2);
    cr_assert_eq(l.seq[0], 4);
    cr_assert_eq(usage("c1", &p, JAN1 + 60).n_raised, 3);
}

Test(ledger, soft_limit_allows_overrun_and_reports_it)
{
    struct ledger_pkg p = pkg_make(100, LEDGER_DAY, JAN1, false, "UTC");
    struct ledger_reservation r;
    struct ledger_settlement s;
    struct ledger_usage u;

    p.thresholds[0] = 80;
    p.n_thresholds = 1; /* 100 % is implicit under a soft limit */
    r = reserve("c1", &p, "g1", 1, 150, JAN1 + 10);
    cr_assert(!r.refused);
    cr_assert(r.over);
    s = settle("c1", &p, "g1", 1, 100, 50, JAN1 + 20);
    cr_assert_eq(s.n_alerts, 2);
    cr_assert(s.alerts[0] == 80 && s.alerts[1] == 100);
    u = usage("c1", &p, JAN1 + 30);
    cr_assert(!u.hard);
    cr_assert_eq(u.settled, 150);
    cr_assert_eq(u.overrun, 50);
    cr_assert_eq(u.remaining, 0);
    cr_assert_eq(u.refusals, 0);
}

Test(ledger, top_up_raises_the_allowance_of_its_period_only)
{
    struct ledger_pkg p = pkg_make(1000, LEDGER_MONTH, JAN1, true, "UTC");

    p.top_ups[0] = (struct ledger_top_up){.at = JAN1 + 10 * DAY, .tokens = 500};
    p.top_ups[1] = (struct ledger_top_up){.at = utc(2026, 3, 5, 0, 0), .tokens = 7};
    p.n_top_ups = 2;
    cr_assert_eq(usage("c1", &p, JAN1 + 9 * DAY).allowance, 1000, "not before it takes effect");
    cr_assert(reserve("c1", &p, "g1", 1, 1200, JAN1 + 9 * DAY).refused);
    cr_assert_eq(usage("c1", &p, JAN1 + 10 * DAY).allowance, 1500);
    cr_assert(!reserve("c1", &p, "g2", 1, 1200, JAN1 + 10 * DAY).refused);
    cr_assert(reserve("c1", &p, "g3", 1, 301, JAN1 + 10 * DAY).refused);
    cr_assert(!reserve("c1", &p, "g4", 1, 300, JAN1 + 10 * DAY).refused);
    cr_assert_eq(usage("c1", &p, utc(2026, 2, 10, 0, 0)).allowance, 1000, "the next period has the grant only");
    cr_assert_eq(usage("c1", &p, utc(2026, 3, 10, 0, 0)).allowance, 1007);
}

/* ---- daily rollups ---- */

struct day_list {
    int n;
    int32_t day[8];
    char model[8][8];
    uint64_t tokens[8], generations[8];
};

static int day_cb(const struct ledger_day *d, void *arg)
{
    struct day_list *l = arg;
    uint64_t sum = 0;

    cr_assert_lt(l->n, 8);
    l->day[l->n] = d->day;
    cr_assert_lt(d->model_len, sizeof(l->model[0]));
    memcpy(l->model[l->n], d->model, d->model_len);
    l->model[l->n][d->model_len] = '\0';
    for (int i = 0; i < LEDGER_KINDS; i++)
        sum += d->tokens[i];
    l->tokens[l->n] = sum;
    l->generations[l->n] = d->generations;
    l->n++;
    return 0;
}

Test(ledger, daily_rollups_by_local_day_and_model)
{
    struct ledger_pkg p = pkg_make(1000000, LEDGER_MONTH, JAN1, true, "Europe/Berlin");
    int32_t d1 = (int32_t)(utc(2026, 1, 5, 0, 0) / DAY), d2 = d1 + 1;
    struct day_list l = {0};
    MDB_txn *txn;

    settle_m("c1", &p, "g1", 1, (struct ledger_use){.prompt = 10, .completion = 5}, "mb", utc(2026, 1, 5, 12, 0));
    settle_m("c1", &p, "g2", 1, (struct ledger_use){.prompt = 20}, "ma", utc(2026, 1, 5, 13, 0));
    settle_m("c1", &p, "g3", 1, (struct ledger_use){.prompt = 1}, "ma", utc(2026, 1, 5, 22, 30)); /* 23:30 local */
    settle_m("c1", &p, "g4", 1, (struct ledger_use){.prompt = 2}, "ma", utc(2026, 1, 5, 23, 30)); /* 00:30 local */
    settle_m("c2", &p, "g5", 1, (struct ledger_use){.prompt = 99}, "ma", utc(2026, 1, 5, 12, 0));

    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(ledger_days(txn, st, "c1", d1, d2, day_cb, &l), 0);
    mdb_txn_abort(txn);
    cr_assert_eq(l.n, 3);
    cr_assert(l.day[0] == d1 && strcmp(l.model[0], "ma") == 0 && l.tokens[0] == 21 && l.generations[0] == 2);
    cr_assert(l.day[1] == d1 && strcmp(l.model[1], "mb") == 0 && l.tokens[1] == 15 && l.generations[1] == 1);
    cr_assert(l.day[2] == d2 && strcmp(l.model[2], "ma") == 0 && l.tokens[2] == 2);

    memset(&l, 0, sizeof(l));
    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(ledger_days(txn, st, "c1", d2, d2 + 30, day_cb, &l), 0);
    mdb_txn_abort(txn);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.day[0], d2);
}
