/*
 * POST /openrtb2/bid and GET|POST /v1/notice/{win,bill,loss}: thin handlers
 * over ortb (parse, write), bid (decide, answer, sign) and the store.
 *
 * Both routes are HTTP_OPEN: exchanges hold no API key; bid requests carry
 * nothing a caller could abuse beyond CPU (bounded by ortb's limits), and
 * notices are authenticated by their HMAC signature instead of a key.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adsmith/bid.h"
#include "adsmith/camps.h"
#include "adsmith/catalog.h"
#include "adsmith/config.h"
#include "adsmith/handlers.h"
#include "adsmith/ledger.h"
#include "adsmith/mdl.h"
#include "adsmith/users.h"
#include "body.h"

#define BID_MIN_TMAX_MS 10    /* below this an exchange's deadline cannot be met (nbr 15) */
#define BID_CVR_PRIOR 0.05    /* conversions per click for target_cpa, until a pCVR model exists */
#define BID_MEM_PER_IMP 24576 /* answer memory per bid: markup, three notice URLs, ids */
/* Candidates scored per request, whatever its imps times the eligible campaigns: about 0.5 to 3 ms of CPU
 * (loadtest/bench_bid.c: 25 to 130 ns a candidate at 10,000 campaigns, the most with badv or bcat, which
 * read the campaign records), so that a 64-imp request against a large index cannot hold a worker long. */
#define BID_MAX_SCORED 20000

static atomic_ulong bid_forged; /* notices refused for their signature */
static atomic_ulong bid_notices;

unsigned long bid_handler_forged(void)
{
    return atomic_load(&bid_forged);
}

unsigned long bid_handler_notices(void)
{
    return atomic_load(&bid_notices);
}

/* ---- the notice key ---- */

static const char bid_key_meta[] = "notice_key";

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool key_from_hex(const char *hex, uint8_t key[BID_KEY_BYTES])
{
    if (hex == NULL || strlen(hex) != 2 * BID_KEY_BYTES)
        return false;
    for (int i = 0; i < BID_KEY_BYTES; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

struct key_job {
    struct wq_job wq;
    uint8_t key[BID_KEY_BYTES];
};

static atomic_bool key_job_queued;

static int key_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct key_job *job = (struct key_job *)wj;
    MDB_val k = {sizeof(bid_key_meta) - 1, (void *)bid_key_meta}, v = {BID_KEY_BYTES, job->key};
    int rc = mdb_put(txn, store_dbi(s, STORE_DB_META), &k, &v, MDB_NOOVERWRITE);

    return rc == MDB_KEYEXIST ? 0 : store_err(rc);
}

static void key_done(struct wq_job *wj)
{
    atomic_store(&key_job_queued, false);
    free(wj);
}

/*
 * The key that signs notices: notice_key from the configuration, else the
 * one kept in LMDB meta. When there is none yet a job creates it and the
 * caller answers without it this once (a bid request: no bid).
 */
static bool bid_key(struct http_req *r, MDB_txn *txn, struct store *s, uint8_t key[BID_KEY_BYTES])
{
    MDB_val k = {sizeof(bid_key_meta) - 1, (void *)bid_key_meta}, v;
    struct key_job *job;

    if (r->app->cfg->notice_key != NULL)
        return key_from_hex(r->app->cfg->notice_key, key);
    if (mdb_get(txn, store_dbi(s, STORE_DB_META), &k, &v) == 0 && v.mv_size == BID_KEY_BYTES) {
        memcpy(key, v.mv_data, BID_KEY_BYTES);
        return true;
    }
    if (atomic_exchange(&key_job_queued, true))
        return false;
    if ((job = calloc(1, sizeof(*job))) == NULL || RAND_bytes(job->key, BID_KEY_BYTES) != 1) {
        free(job);
        atomic_store(&key_job_queued, false);
        return false;
    }
    job->wq.apply = key_apply;
    job->wq.done = key_done;
    if (wq_submit(r->app->wq, &r->hw->port, &job->wq) != 0) {
        free(job);
        atomic_store(&key_job_queued, false);
    }
    return false;
}

/* ---- POST /openrtb2/bid ---- */

struct bid_thread {
    struct vpick_rng rng; /* Thompson draws and the control arm (variant.h) */
    struct ortb_scratch *ortb;
    struct bid_scratch *bid;
    struct bid_fx fx;
    bool fx_ok;
    struct bid_result res;
    struct bid_answer ans;
};

static __thread struct bid_thread *bid_tls;
static pthread_once_t bid_tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t bid_tls_key; /* frees a worker's scratch when the worker exits */

static void bid_thread_free(void *p)
{
    struct bid_thread *t = p;

    if (t == NULL)
        return;
    ortb_scratch_free(t->ortb);
    bid_scratch_free(t->bid);
    free(t);
}

static void bid_tls_init(void)
{
    (void)pthread_key_create(&bid_tls_key, bid_thread_free);
}

static struct bid_thread *bid_thread_get(const struct cfg *cfg)
{
    struct bid_thread *t = bid_tls;

    if (t != NULL)
        return t;
    pthread_once(&bid_tls_once, bid_tls_init);
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    if (ortb_scratch_new(&t->ortb) != 0 || bid_scratch_new(&t->bid) != 0 || pthread_setspecific(bid_tls_key, t) != 0) {
        bid_thread_free(t);
        return NULL;
    }
    vpick_rng_seed(&t->rng, (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)t);
    /* cfg_load() refused a table it cannot parse, so this holds. */
    t->fx_ok = bid_fx_parse(cfg->fx_rates, &t->fx, NULL) == 0;
    bid_tls = t;
    return t;
}

struct bid_read {
    MDB_txn *txn;
    struct store *s;
};

static int bid_spend(void *ctx, const struct cidx_camp *c, int64_t now, struct bid_spend *ret)
{
    struct bid_read *rd = ctx;
    struct camps_usage u;
    int rc = camps_usage_get(rd->txn, rd->s, c->id, &u);

    if (rc != 0)
        return rc;
    ret->total_micros = (int64_t)u.spend_total_micros;
    ret->day_micros = u.spend_day_start == (uint64_t)bid_day_start(c->zone, now) ? (int64_t)u.spend_day_micros : 0;
    return 0;
}

static int bid_doc(void *ctx, const char *id, msgpack_zone *zone, msgpack_object *ret)
{
    struct bid_read *rd = ctx;
    struct camps_rec rec;
    size_t off = 0;
    int rc = camps_get(rd->txn, rd->s, id, &rec);

    if (rc != 0)
        return rc;
    if (msgpack_unpack(rec.doc, rec.doc_len, &off, zone, ret) != MSGPACK_UNPACK_SUCCESS ||
        ret->type != MSGPACK_OBJECT_MAP)
        return ADS_EDATA_INVALID;
    return 0;
}

/* The stored profile of the request's user: user.id, then buyeruid, then each eid. */
static bool bid_profile(const struct ortb_req *req, struct bid_read *rd, struct prof_view *ret)
{
    MDB_val v;
    bool found = false;

    if (req->user.id.len > 0 && req->user.id.len <= PROF_ID_MAX)
        found = usr_lookup(rd->txn, rd->s, NULL, req->user.id.ptr, req->user.id.len, &v) == 0;
    if (!found && req->user.buyeruid.len > 0 && req->user.buyeruid.len <= PROF_ID_MAX)
        found = usr_lookup(rd->txn, rd->s, "buyeruid", req->user.buyeruid.ptr, req->user.buyeruid.len, &v) == 0;
    for (uint32_t i = 0; i < req->user.neids && !found; i++) {
        char src[PROF_SOURCE_MAX + 1];
        const struct ortb_eid *e = &req->user.eids[i];
        if (e->source.len == 0 || e->source.len > PROF_SOURCE_MAX)
            continue;
        memcpy(src, e->source.ptr, e->source.len);
        src[e->source.len] = '\0';
        for (uint32_t k = 0; k < e->nuids && !found; k++)
            if (e->uid[k].len > 0 && e->uid[k].len <= PROF_ID_MAX)
                found = usr_lookup(rd->txn, rd->s, src, e->uid[k].ptr, e->uid[k].len, &v) == 0;
    }
    return found && prof_view_open(v.mv_data, v.mv_size, ret) == 0;
}

static void echo_version(struct http_req *r)
{
    ssize_t i = h2o_find_header_by_str(&r->req->headers, H2O_STRLIT("x-openrtb-version"), -1);

    if (i >= 0 && r->req->headers.entries[i].value.len <= 16)
        h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, H2O_STRLIT("x-openrtb-version"), 0, NULL,
                              r->req->headers.entries[i].value.base, r->req->headers.entries[i].value.len);
}

void bid_post(struct http_req *r)
{
    struct bid_thread *t = bid_thread_get(r->app->cfg);
    struct store *s = app_store(r->app);
    struct ads_diag diag = {{0}, {0}};
    enum ortb_fault fault = ORTB_F_NONE;
    const struct ortb_req *req;
    struct bid_read rd = {NULL, s};
    struct prof_view pv;
    const struct prof_view *pvp = NULL;
    uint8_t key[BID_KEY_BYTES];
    enum doc_fmt fmt;
    msgpack_zone zone;
    struct buf mem, out;
    size_t cap;
    int rc;

    echo_version(r);
    if (t == NULL) {
        http_send_error(r, ADS_ENOMEM, NULL, NULL);
        return;
    }
    if ((rc = http_body_fmt(r, &fmt)) != 0) {
        http_send_error(r, rc, NULL, "send the BidRequest as application/json (or application/msgpack)");
        return;
    }
    rc = ortb_parse(t->ortb, fmt, r->req->entity.base != NULL ? r->req->entity.base : "", r->req->entity.len, &req,
                    &diag, &fault);
    if (rc != 0) {
        http_send_error(r, rc, diag.pointer, "%s (%s)", diag.message, ortb_fault_name(fault));
        return;
    }
    if (!t->fx_ok || s == NULL || store_read_begin(s, &rd.txn) != 0) {
        http_send(r, 204, NULL, NULL, 0);
        return;
    }
    if (!bid_key(r, rd.txn, s, key)) {
        store_read_end(rd.txn);
        http_send(r, 204, NULL, NULL, 0);
        return;
    }
    if (bid_privacy(req, NULL) == 0 && bid_profile(req, &rd, &pv))
        pvp = &pv;

    {
        const struct bid_opts opts = {r->app->cfg->bid_shading_pct, (int64_t)r->app->cfg->bid_max_cpm_micros,
                                      BID_MIN_TMAX_MS, BID_CVR_PRIOR, BID_MAX_SCORED};
        const struct cidx *ix = catl_enter(r->app->catalog, r->hw->idx);
        const struct rank_model *m = mdl_enter(r->app->model, r->hw->idx);
        struct vpick_cache *vc = r->app->variants;
        const struct vpick_set *vs = vc != NULL ? vpick_enter(vc, r->hw->idx) : NULL;
        struct bid_env env = {ix, m, pvp, bid_spend, &rd, &t->fx, &opts, (int64_t)body_now()};
        cap = 4096 + (size_t)req->nimps * BID_MEM_PER_IMP;

        rc = bid_decide(t->bid, req, &env, &t->res);
        msgpack_zone_init(&zone, 8192);
        buf_init(&mem, h2o_mem_alloc_pool(&r->req->pool, cap), cap);
        if (rc == 0 && t->res.npicks > 0) {
            struct bid_answer_ctx actx = {
                key, r->app->cfg->notice_url != NULL ? r->app->cfg->notice_url : "", bid_doc, &rd, &zone, pvp, env.now,
                &mem};
            const struct bid_variant_ctx vctx = {vs, &t->rng, r->app->cfg->variant_control_pct};
            rc = bid_answer_variants(req, &t->res, &actx, &vctx, &t->ans);
        } else {
            t->ans.resp.nseatbids = 0;
        }
        /* Bids point into the index's records (cid, adomain, cat): write them before leaving it. */
        if (rc == 0 && t->ans.resp.nseatbids > 0) {
            cap = 2048 + mem.len * 2;
            buf_init(&out, h2o_mem_alloc_pool(&r->req->pool, cap), cap);
            if (ortb_resp_write(&t->ans.resp, fmt, &out) != 0 || out.overflow)
                rc = ADS_EINTERNAL;
        }
        msgpack_zone_destroy(&zone);
        if (vc != NULL)
            vpick_exit(vc, r->hw->idx);
        mdl_exit(r->app->model, r->hw->idx);
        catl_exit(r->app->catalog, r->hw->idx);
    }
    store_read_end(rd.txn);
    if (rc != 0 || t->ans.resp.nseatbids == 0) {
        http_send(r, 204, NULL, NULL, 0);
        return;
    }
    http_send_doc(r, 200, fmt, &out);
}

/* ---- GET|POST /v1/notice/{win,bill,loss} ---- */

struct notice_job {
    struct http_job base;
    struct bid_notice n;
    int64_t price_micros;  /* the clearing price, response currency; -1 for loss */
    int64_t charge_micros; /* the same in the campaign's currency */
    uint64_t now;
    uint64_t day_start; /* of the campaign's local day that holds now: its daily spend's day */
    uint32_t half_life; /* interest_half_life_s, for the impression on the user's profile */
    bool duplicate, charged;
    struct evt imp; /* the impression a charged notice counts on the profile and the variant */
};

/* The idempotency key of (kind, auction, bid) in the events database: short, fixed length. */
static MDB_val notice_key(const struct bid_notice *n, const char *kind, char out[40])
{
    unsigned char md[32];
    unsigned int mdlen = 32;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    static const char hex[] = "0123456789abcdef";

    if (c != NULL) {
        EVP_DigestInit_ex(c, EVP_sha256(), NULL);
        EVP_DigestUpdate(c, kind, strlen(kind) + 1);
        EVP_DigestUpdate(c, n->auction, strlen(n->auction) + 1);
        EVP_DigestUpdate(c, n->bid, strlen(n->bid) + 1);
        EVP_DigestFinal_ex(c, md, &mdlen);
        EVP_MD_CTX_free(c);
    } else {
        memset(md, 0, sizeof(md));
    }
    memcpy(out, "\x01notice:", 8);
    for (int i = 0; i < 16; i++) {
        out[8 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i + 1] = hex[md[i] & 15];
    }
    return (MDB_val){40, out};
}

/* Records @p key as applied at @p now (events + event_times, swept after event_dedup_s); *ret_seen if it was. */
static int notice_mark(MDB_txn *txn, struct store *s, MDB_val key, uint64_t now, bool *ret_seen)
{
    MDB_val v;
    uint8_t tkey[8 + 40];
    int rc = mdb_get(txn, store_dbi(s, STORE_DB_EVENTS), &key, &v);

    *ret_seen = rc == 0;
    if (rc == 0)
        return 0;
    if (rc != MDB_NOTFOUND)
        return store_err(rc);
    v = (MDB_val){sizeof(now), &now};
    if ((rc = mdb_put(txn, store_dbi(s, STORE_DB_EVENTS), &key, &v, 0)) != 0)
        return store_err(rc);
    for (int i = 0; i < 8; i++)
        tkey[i] = (uint8_t)(now >> (56 - 8 * i));
    memcpy(tkey + 8, key.mv_data, key.mv_size);
    v = (MDB_val){8 + key.mv_size, tkey};
    MDB_val empty = {0, NULL};
    return store_err(mdb_put(txn, store_dbi(s, STORE_DB_EVENT_TIMES), &v, &empty, 0));
}

/*
 * The zones notices name (signed, so only zones of our own campaigns), loaded
 * once each; NULL for "" and for a zone the cache cannot hold.
 */
static struct ledger_zones *notice_zones;
static pthread_once_t notice_zones_once = PTHREAD_ONCE_INIT;

static void notice_zones_init(void)
{
    if (ledger_zones_new(&notice_zones) != 0)
        notice_zones = NULL;
}

static const struct tz *notice_zone(const char *name)
{
    const struct tz *z;

    pthread_once(&notice_zones_once, notice_zones_init);
    if (name[0] == '\0' || notice_zones == NULL || ledger_zones_get(notice_zones, name, &z) != 0)
        return NULL;
    return z;
}

/*
 * Adds @p micros and one impression to the campaign's SPEND record [1, total,
 * day_start, day, impressions]; @p day is the start of the campaign's local day.
 */
static int spend_add(MDB_txn *txn, struct store *s, const char *id, int64_t micros, uint64_t day)
{
    struct camps_usage u;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    MDB_val k = {strlen(id), (void *)id}, v;
    int rc = camps_usage_get(txn, s, id, &u);

    if (rc != 0)
        return rc;
    if (u.spend_day_start != day) {
        u.spend_day_start = day;
        u.spend_day_micros = 0;
    }
    u.spend_total_micros += (uint64_t)micros;
    u.spend_day_micros += (uint64_t)micros;
    u.impressions++;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, u.spend_total_micros);
    msgpack_pack_uint64(&pk, u.spend_day_start);
    msgpack_pack_uint64(&pk, u.spend_day_micros);
    msgpack_pack_uint64(&pk, u.impressions);
    if (sb.data == NULL) {
        msgpack_sbuffer_destroy(&sb);
        return ADS_ENOMEM;
    }
    v = (MDB_val){sb.size, sb.data};
    rc = mdb_put(txn, store_dbi(s, STORE_DB_SPEND), &k, &v, 0);
    msgpack_sbuffer_destroy(&sb);
    return store_err(rc);
}

/*
 * The impression a charged notice stands for, in the spend's transaction:
 * on the user's profile (frequency caps; a profile deleted since the bid is
 * not created again) and on the served variant's statistics (usr_ingest
 * does both for a profile; without one the variant's alone).
 */
static int notice_impression(MDB_txn *txn, struct store *s, struct notice_job *job)
{
    struct usr_ingest_result res;
    struct evt *e = &job->imp;
    MDB_val v;
    int rc;

    memset(e, 0, sizeof(*e));
    e->type = EVT_IMPRESSION;
    e->ts = job->now;
    snprintf(e->campaign, sizeof(e->campaign), "%s", job->n.campaign);
    snprintf(e->variant, sizeof(e->variant), "%s", job->n.variant);
    if (job->n.user[0] != '\0') {
        rc = usr_lookup(txn, s, NULL, job->n.user, strlen(job->n.user), &v);
        if (rc == 0) {
            snprintf(e->user, sizeof(e->user), "%s", job->n.user);
            return usr_ingest(txn, s, e, 1, job->half_life, 0, job->now, &res);
        }
        if (rc != ADS_ENOT_FOUND)
            return rc;
    }
    if (job->n.variant[0] == '\0')
        return 0;
    rc = var_stats_apply(txn, s, job->n.campaign, job->n.variant, EVT_IMPRESSION, 1);
    /* A variant deleted since the bid has nothing left to learn. */
    return rc == ADS_ENOT_FOUND || rc == ADS_EINVAL ? 0 : rc;
}

static int notice_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct notice_job *job = (struct notice_job *)wj;
    char mem[40], cmem[40];
    bool seen;
    int rc;

    job->duplicate = job->charged = false;
    if ((rc = notice_mark(txn, s, notice_key(&job->n, bid_notice_kind_name(job->n.kind), mem), job->now, &seen)) != 0)
        return rc;
    job->duplicate = seen;
    if (seen || job->n.kind == BID_NOTICE_LOSS || job->n.test)
        return 0;
    /* A win and a bill of one bid charge once, whichever comes first. */
    if ((rc = notice_mark(txn, s, notice_key(&job->n, "charge", cmem), job->now, &seen)) != 0)
        return rc;
    if (seen)
        return 0;
    job->charged = true;
    if ((rc = spend_add(txn, s, job->n.campaign, job->charge_micros, job->day_start)) != 0)
        return rc;
    return notice_impression(txn, s, job);
}

static void notice_finish(struct http_job *hj, struct http_req *r)
{
    struct notice_job *job = (struct notice_job *)hj;
    char *body;
    int n;

    if (hj->wq.rc != 0) {
        http_send_error(r, hj->wq.rc, NULL, NULL);
        return;
    }
    body = h2o_mem_alloc_pool(&r->req->pool, 160);
    n = snprintf(body, 160, "{\"status\":\"%s\",\"charged_micros\":%" PRId64 "}",
                 job->duplicate ? "duplicate" : "recorded", job->charged ? job->charge_micros : 0);
    http_send_json(r, 200, body, (size_t)n);
}

static bool q_str(struct http_req *r, const char *name, char *dst, size_t cap)
{
    return http_query(r, name, dst, cap) == 0;
}

void notice_post(struct http_req *r)
{
    struct notice_job *job;
    char kind[8], num[32], sig[BID_SIG_HEX + 8], price[40];
    uint8_t key[BID_KEY_BYTES];
    struct store *s;
    MDB_txn *txn;
    size_t klen;
    bool ok;
    double rate;

    atomic_fetch_add(&bid_notices, 1);
    if (http_param(r, kind, sizeof(kind), &klen) != 0 ||
        (strcmp(kind, "win") != 0 && strcmp(kind, "bill") != 0 && strcmp(kind, "loss") != 0)) {
        http_send_error(r, ADS_ENOT_FOUND, NULL, "notices are /v1/notice/win, /v1/notice/bill and /v1/notice/loss");
        return;
    }
    if ((s = body_store(r)) == NULL)
        return;
    if ((job = calloc(1, sizeof(*job))) == NULL) {
        http_send_error(r, ADS_ENOMEM, NULL, NULL);
        return;
    }
    job->n.kind = kind[0] == 'w' ? BID_NOTICE_WIN : kind[0] == 'b' ? BID_NOTICE_BILL : BID_NOTICE_LOSS;
    ok = q_str(r, "a", job->n.auction, sizeof(job->n.auction)) && q_str(r, "b", job->n.bid, sizeof(job->n.bid)) &&
         q_str(r, "i", job->n.imp, sizeof(job->n.imp)) && q_str(r, "c", job->n.campaign, sizeof(job->n.campaign)) &&
         q_str(r, "cc", job->n.camp_cur, sizeof(job->n.camp_cur)) && q_str(r, "cur", job->n.cur, sizeof(job->n.cur)) &&
         q_str(r, "u", job->n.user, sizeof(job->n.user)) && q_str(r, "m", job->n.model, sizeof(job->n.model)) &&
         q_str(r, "sig", sig, sizeof(sig));
    if (ok && q_str(r, "bp", num, sizeof(num)))
        job->n.bid_micros = strtoll(num, NULL, 10);
    else
        ok = false;
    if (ok && q_str(r, "t", num, sizeof(num)))
        job->n.test = num[0] == '1';
    else
        ok = false;
    if (ok && q_str(r, "ts", num, sizeof(num)))
        job->n.ts = strtoll(num, NULL, 10);
    else
        ok = false;
    /* vr is optional: notices written before variants existed have none. */
    if (ok && !q_str(r, "vr", job->n.variant, sizeof(job->n.variant)))
        job->n.variant[0] = '\0';
    /* tz likewise: without it (or for a zone this server does not know) the budget day is UTC's. */
    if (ok && !q_str(r, "tz", job->n.time_zone, sizeof(job->n.time_zone)))
        job->n.time_zone[0] = '\0';
    if (!ok) {
        free(job);
        http_send_error(r, ADS_EBAD_REQUEST, NULL,
                        "a notice URL must be used as adsmith wrote it; a parameter is missing");
        return;
    }
    ok = store_read_begin(s, &txn) == 0;
    if (ok) {
        ok = bid_key(r, txn, s, key);
        store_read_end(txn);
    }
    if (!ok || !bid_notice_verify(key, &job->n, sig, strlen(sig))) {
        free(job);
        atomic_fetch_add(&bid_forged, 1);
        http_send_error(r, ADS_EFORBIDDEN, "/sig", "the notice's signature does not match its parameters");
        return;
    }
    job->now = body_now();
    job->day_start = (uint64_t)bid_day_start(notice_zone(job->n.time_zone), (int64_t)job->now);
    job->half_life = r->app->cfg->interest_half_life_s;
    /* Applied notices are remembered for event_dedup_s (then swept), so an older one could be a replay the
     * store no longer recognises. With event_dedup_s = 0 nothing is swept and every notice is remembered. */
    if (r->app->cfg->event_dedup_s > 0 && (int64_t)job->now > job->n.ts + (int64_t)r->app->cfg->event_dedup_s) {
        free(job);
        http_send_error(r, ADS_EBAD_REQUEST, "/ts",
                        "the notice is older than event_dedup_s, the window in which retries are recognised");
        return;
    }
    job->price_micros = -1;
    if (job->n.kind != BID_NOTICE_LOSS) {
        struct bid_fx fx;
        if (!q_str(r, "p", price, sizeof(price)) || bid_price_parse(price, &job->price_micros) != 0 ||
            job->price_micros > job->n.bid_micros) {
            free(job);
            http_send_error(r, ADS_EBAD_REQUEST, "/p",
                            "p must be the clearing price (${AUCTION_PRICE}), a decimal no higher than the bid");
            return;
        }
        if (bid_fx_parse(r->app->cfg->fx_rates, &fx, NULL) != 0 ||
            bid_fx_rate(&fx, job->n.cur, job->n.camp_cur, &rate) != 0)
            rate = 1.0;
        job->charge_micros = (int64_t)((double)job->price_micros * rate / 1000.0 + 0.5); /* CPM: one impression */
    }
    http_job_submit(r, &job->base, notice_apply, notice_finish);
}
