/*
 * /v1/admin/token-prices and /v1/admin/token-alerts: the token ledger's price
 * rows (versioned by the time they take effect) and the alerts it raised.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/app.h"
#include "adsmith/doc.h"
#include "adsmith/handlers.h"
#include "adsmith/ledger.h"
#include "body.h"

#define ALERTS_PAGE_MAX 1000

static const char *const ledger_kind_names[LEDGER_KINDS] = {"prompt", "cached", "completion", "reasoning"};

struct price_job {
    struct http_job base;
    char model[LEDGER_MODEL_MAX + 1];
    char currency[4];
    enum ledger_kind kind;
    int64_t valid_from;
    uint64_t micros;
};

static int price_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct price_job *j = (struct price_job *)wj;

    return ledger_price_put(txn, s, j->model, j->kind, j->valid_from, j->micros, j->currency);
}

static void price_finish(struct http_job *job, struct http_req *r)
{
    struct price_job *j = (struct price_job *)job;
    enum doc_fmt fmt = http_accept_fmt(r);
    struct docw w;
    struct buf b;
    char mem[512];

    if (j->base.wq.rc == ADS_ECONFLICT) {
        http_send_error(r, ADS_ECONFLICT, "/currency",
                        "the ledger keeps one currency, set by its first price row; %s differs", j->currency);
        return;
    }
    if (j->base.wq.rc != 0) {
        http_send_error(r, j->base.wq.rc, NULL, NULL);
        return;
    }
    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, fmt, &b);
    docw_map(&w, 5);
    docw_key(&w, "model");
    docw_cstr(&w, j->model);
    docw_key(&w, "kind");
    docw_cstr(&w, ledger_kind_names[j->kind]);
    docw_key(&w, "valid_from");
    docw_int(&w, j->valid_from);
    docw_key(&w, "micros_per_million");
    docw_uint(&w, j->micros);
    docw_key(&w, "currency");
    docw_cstr(&w, j->currency);
    docw_map_end(&w);
    http_send_doc(r, 200, fmt, &b);
}

/* Copies string member @p key of @p doc; false after answering 400 with its pointer. */
static bool ledger_member_str(struct http_req *r, const msgpack_object *doc, const char *key, char *dst, size_t min,
                              size_t cap)
{
    const msgpack_object *o = doc_map_get(doc, key);
    char ptr[32];

    snprintf(ptr, sizeof(ptr), "/%s", key);
    if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size < min || o->via.str.size >= cap ||
        memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
        http_send_error(r, ADS_EINVAL, ptr, "%s must be a string of %zu-%zu bytes", key, min, cap - 1);
        return false;
    }
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return true;
}

static bool ledger_member_uint(struct http_req *r, const msgpack_object *doc, const char *key, uint64_t max,
                               uint64_t *ret)
{
    const msgpack_object *o = doc_map_get(doc, key);
    char ptr[32];

    snprintf(ptr, sizeof(ptr), "/%s", key);
    if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max) {
        http_send_error(r, ADS_EINVAL, ptr, "%s must be an integer 0-%llu", key, (unsigned long long)max);
        return false;
    }
    *ret = o->via.u64;
    return true;
}

/* POST /v1/admin/token-prices {"model","kind","valid_from","micros_per_million","currency"} */
void ledger_prices_post(struct http_req *r)
{
    struct price_job *job;
    msgpack_zone zone;
    msgpack_object doc;
    char model[LEDGER_MODEL_MAX + 1], kind[16], cur[4];
    uint64_t from, micros;
    int k;

    if (body_store(r) == NULL)
        return;
    msgpack_zone_init(&zone, 1024);
    if (!body_parse(r, &zone, &doc))
        goto out;
    if (doc.type != MSGPACK_OBJECT_MAP) {
        http_send_error(r, ADS_EINVAL, "",
                        "the body must be an object: {\"model\", \"kind\", \"valid_from\", "
                        "\"micros_per_million\", \"currency\"}");
        goto out;
    }
    if (!ledger_member_str(r, &doc, "model", model, 1, sizeof(model)) ||
        !ledger_member_str(r, &doc, "kind", kind, 1, sizeof(kind)) ||
        !ledger_member_uint(r, &doc, "valid_from", (uint64_t)LEDGER_TIME_MAX, &from) ||
        !ledger_member_uint(r, &doc, "micros_per_million", LEDGER_PRICE_MAX, &micros) ||
        !ledger_member_str(r, &doc, "currency", cur, 3, sizeof(cur)))
        goto out;
    for (k = 0; k < LEDGER_KINDS && strcmp(kind, ledger_kind_names[k]) != 0; k++)
        ;
    if (k == LEDGER_KINDS) {
        http_send_error(r, ADS_EINVAL, "/kind", "kind must be prompt, cached, completion or reasoning");
        goto out;
    }
    if (cur[0] < 'A' || cur[0] > 'Z' || cur[1] < 'A' || cur[1] > 'Z' || cur[2] < 'A' || cur[2] > 'Z') {
        http_send_error(r, ADS_EINVAL, "/currency", "currency must be an ISO 4217 code in capitals (e.g. USD)");
        goto out;
    }
    if ((job = calloc(1, sizeof(*job))) == NULL) {
        http_send_error(r, ADS_ENOMEM, NULL, NULL);
        goto out;
    }
    memcpy(job->model, model, sizeof(model));
    memcpy(job->currency, cur, sizeof(cur));
    job->kind = (enum ledger_kind)k;
    job->valid_from = (int64_t)from;
    job->micros = micros;
    http_job_submit(r, &job->base, price_apply, price_finish);
out:
    msgpack_zone_destroy(&zone);
}

struct alerts_page {
    struct docw *w;
    uint32_t n;
    uint64_t last;
};

static int alerts_count(const struct ledger_alert *a, void *arg)
{
    struct alerts_page *p = arg;

    p->n++;
    p->last = a->seq;
    return 0;
}

static int alerts_write(const struct ledger_alert *a, void *arg)
{
    struct docw *w = ((struct alerts_page *)arg)->w;

    docw_map(w, 7);
    docw_key(w, "seq");
    docw_uint(w, a->seq);
    docw_key(w, "campaign");
    docw_str(w, a->campaign_id, a->campaign_id_len);
    docw_key(w, "period_start");
    docw_int(w, a->period_start);
    docw_key(w, "threshold_pct");
    docw_uint(w, a->threshold);
    docw_key(w, "at");
    docw_int(w, a->at);
    docw_key(w, "tokens");
    docw_uint(w, a->tokens);
    docw_key(w, "allowance");
    docw_uint(w, a->allowance);
    docw_map_end(w);
    return 0;
}

/* GET /v1/admin/token-alerts[?after=SEQ&limit=N]: thresholds reached, oldest first. */
void ledger_alerts_get(struct http_req *r)
{
    struct alerts_page page = {0};
    enum doc_fmt fmt = http_accept_fmt(r);
    char q[32], *end;
    uint64_t after = 0;
    uint32_t limit = 100;
    struct store *s;
    MDB_txn *txn;
    struct docw w;
    struct buf b;
    size_t cap;
    int rc;

    if (http_query(r, "after", q, sizeof(q)) == 0) {
        after = strtoull(q, &end, 10);
        if (*end != '\0' || end == q) {
            http_send_error(r, ADS_EINVAL, "/after", "after must be the seq of the last alert read");
            return;
        }
    }
    if (http_query(r, "limit", q, sizeof(q)) == 0) {
        unsigned long v = strtoul(q, &end, 10);
        if (*end != '\0' || v < 1 || v > ALERTS_PAGE_MAX) {
            http_send_error(r, ADS_EINVAL, "/limit", "limit must be 1-%d", ALERTS_PAGE_MAX);
            return;
        }
        limit = (uint32_t)v;
    }
    if ((s = body_store(r)) == NULL)
        return;
    if ((rc = store_read_begin(s, &txn)) != 0) {
        http_send_error(r, rc, NULL, NULL);
        return;
    }
    rc = ledger_alerts(txn, s, after, limit, alerts_count, &page);
    cap = 1024 + (size_t)page.n * 256;
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, cap), cap);
    docw_init(&w, fmt, &b);
    docw_map(&w, 2);
    docw_key(&w, "alerts");
    docw_array(&w, page.n);
    page.w = &w;
    if (rc == 0 && page.n > 0)
        rc = ledger_alerts(txn, s, after, page.n, alerts_write, &page);
    store_read_end(txn);
    docw_array_end(&w);
    docw_key(&w, "next_after");
    docw_uint(&w, page.n > 0 ? page.last : after);
    docw_map_end(&w);
    if (rc != 0) {
        http_send_error(r, rc, NULL, NULL);
        return;
    }
    http_send_doc(r, 200, fmt, &b);
}
