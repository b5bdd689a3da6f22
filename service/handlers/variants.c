/*
 * /v1/campaigns/{id}/variants: the AI variants of a campaign, their checks,
 * provenance and results; asking for more; reviewing them (approval).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/app.h"
#include "adsmith/camps.h"
#include "adsmith/doc.h"
#include "adsmith/handlers.h"
#include "adsmith/variant.h"
#include "adsmith/vgen.h"
#include "body.h"

#define VARIANTS_PAGE_DEFAULT 100
#define VARIANTS_PAGE_MAX 200

struct variants_page {
    struct var_rec *recs;
    uint32_t n, cap;
    int state;                    /* enum var_state, or -1: every state */
    char visited[VAR_ID_LEN + 1]; /* the last id looked at, kept or not */
};

/* Keeps the records of the state asked for until the page is full; the rest stops the listing. */
static int variants_collect(void *ctx, const struct var_rec *rec)
{
    struct variants_page *p = ctx;

    if (p->n == p->cap)
        return 1;
    memcpy(p->visited, rec->id, sizeof(p->visited));
    if (p->state < 0 || rec->state == (uint8_t)p->state)
        p->recs[p->n++] = *rec;
    return 0;
}

static void variants_stats(struct docw *w, const struct var_stats *st)
{
    docw_map(w, 4);
    docw_key(w, "impressions");
    docw_uint(w, st->impressions);
    docw_key(w, "clicks");
    docw_uint(w, st->clicks);
    docw_key(w, "conversions");
    docw_uint(w, st->conversions);
    docw_key(w, "ctr");
    if (st->impressions > 0)
        docw_double(w, (double)st->clicks / (double)st->impressions);
    else
        docw_nil(w);
    docw_map_end(w);
}

static void variants_write(struct docw *w, const struct var_rec *v, const struct var_stats *st)
{
    docw_map(w, 13);
    docw_key(w, "id");
    docw_cstr(w, v->id);
    docw_key(w, "state");
    docw_cstr(w, var_state_name((enum var_state)v->state));
    docw_key(w, "locale");
    docw_cstr(w, v->locale);
    docw_key(w, "segment");
    docw_cstr(w, v->segment);
    docw_key(w, "title");
    docw_cstr(w, v->title);
    docw_key(w, "description");
    docw_cstr(w, v->description);
    docw_key(w, "cta");
    docw_cstr(w, v->cta);
    docw_key(w, "ai_label");
    docw_cstr(w, v->ai_label);
    docw_key(w, "checks");
    docw_map(w, 2);
    docw_key(w, "passed");
    docw_bool(w, v->nreasons == 0);
    docw_key(w, "reasons");
    docw_array(w, v->nreasons);
    for (uint32_t i = 0; i < v->nreasons; i++)
        docw_cstr(w, v->reasons[i]);
    docw_array_end(w);
    docw_map_end(w);
    docw_key(w, "provenance");
    docw_map(w, 7);
    docw_key(w, "backend");
    docw_cstr(w, v->prov.backend);
    docw_key(w, "model");
    docw_cstr(w, v->prov.model);
    docw_key(w, "prompt_version");
    docw_cstr(w, v->prov.prompt_version);
    docw_key(w, "request_id");
    docw_cstr(w, v->prov.request_id);
    docw_key(w, "prompt_tokens");
    docw_uint(w, v->prov.prompt_tokens);
    docw_key(w, "completion_tokens");
    docw_uint(w, v->prov.completion_tokens);
    docw_key(w, "created_at");
    docw_uint(w, v->prov.created_at);
    docw_map_end(w);
    docw_key(w, "updated_at");
    docw_uint(w, v->updated_at);
    docw_key(w, "results");
    variants_stats(w, st);
    docw_key(w, "serving");
    docw_bool(w, v->state == VAR_APPROVED);
    docw_map_end(w);
}

/* GET /v1/campaigns/{id}/variants[?state=S&after=ID&limit=N] */
void campaigns_variants_list(struct http_req *r)
{
    struct camps_rec rec;
    struct variants_page page = {.state = -1};
    struct var_stats *stats = NULL, control;
    char q[64], after[VAR_ID_LEN + 1] = "";
    enum doc_fmt fmt = http_accept_fmt(r);
    uint32_t visited = 0, limit = VARIANTS_PAGE_DEFAULT;
    bool more;
    struct store *s;
    MDB_txn *txn;
    struct docw w;
    struct buf b;
    size_t cap;
    int rc;

    if (http_query(r, "state", q, sizeof(q)) == 0) {
        enum var_state st;
        if (var_state_parse(q, &st) != 0) {
            http_send_error(r, ADS_EINVAL, "/state", "state must be pending, approved, rejected or retired");
            return;
        }
        page.state = (int)st;
    }
    if (http_query(r, "limit", q, sizeof(q)) == 0) {
        char *end;
        unsigned long v = strtoul(q, &end, 10);
        if (*end != '\0' || v < 1 || v > VARIANTS_PAGE_MAX) {
            http_send_error(r, ADS_EINVAL, "/limit", "limit must be 1-%d", VARIANTS_PAGE_MAX);
            return;
        }
        limit = (uint32_t)v;
    }
    if (http_query(r, "after", after, sizeof(after)) < 0)
        after[0] = '\0';
    if (!campaigns_read(r, &txn, &rec))
        return;
    s = app_store(r->app);
    page.cap = limit;
    page.recs = h2o_mem_alloc_pool(&r->req->pool, sizeof(*page.recs) * limit);
    stats = h2o_mem_alloc_pool(&r->req->pool, sizeof(*stats) * limit);
    rc = var_list(txn, s, rec.id, after, page.state < 0 ? limit : VAR_LIST_MAX, variants_collect, &page, &visited);
    more = rc == 1 || visited == (page.state < 0 ? limit : VAR_LIST_MAX);
    if (rc == 1)
        rc = 0;
    for (uint32_t i = 0; rc == 0 && i < page.n; i++)
        rc = var_stats_get(txn, s, rec.id, page.recs[i].id, &stats[i]);
    if (rc == 0)
        rc = var_stats_get(txn, s, rec.id, VAR_BASE, &control);
    store_read_end(txn);
    if (rc != 0) {
        http_send_error(r, rc, NULL, NULL);
        return;
    }
    cap = 4096 + (size_t)page.n * 8192; /* a record: ~2.5 KB of text, escaped at most 2 x, and its provenance */
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, cap), cap);
    docw_init(&w, fmt, &b);
    docw_map(&w, 4);
    docw_key(&w, "campaign");
    docw_cstr(&w, rec.id);
    docw_key(&w, "variants");
    docw_array(&w, page.n);
    for (uint32_t i = 0; i < page.n; i++)
        variants_write(&w, &page.recs[i], &stats[i]);
    docw_array_end(&w);
    docw_key(&w, "control");
    variants_stats(&w, &control);
    docw_key(&w, "next_after");
    /* More may follow a full page, or a scan that stopped at its bound: go on after the last id looked at. */
    if (more)
        docw_cstr(&w, page.visited);
    else
        docw_nil(&w);
    docw_map_end(&w);
    if (b.overflow) {
        http_send_error(r, ADS_EINTERNAL, NULL, "the variants did not fit the response buffer");
        return;
    }
    http_send_doc(r, 200, fmt, &b);
}

static bool variants_str(struct http_req *r, const msgpack_object *doc, const char *key, char *dst, size_t cap,
                         bool *ret_set)
{
    const msgpack_object *o = doc != NULL ? doc_map_get(doc, key) : NULL;
    char ptr[40];

    *ret_set = false;
    if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
        return true;
    snprintf(ptr, sizeof(ptr), "/%s", key);
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap) {
        http_send_error(r, ADS_EINVAL, ptr, "%s must be a string of at most %zu bytes", key, cap - 1);
        return false;
    }
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    *ret_set = true;
    return true;
}

/* POST /v1/campaigns/{id}/variants:generate  {"locale"?, "segment"?, "count"?} -> 202 {"queued": n} */
void campaigns_variants_generate(struct http_req *r)
{
    struct camps_rec rec;
    msgpack_zone zone;
    msgpack_object doc, *docp = NULL;
    char locale[VAR_LOCALE_MAX + 1], segment[VAR_SEGMENT_MAX + 1], id[CIDX_ID_MAX + 1];
    bool has_locale = false, has_segment = false;
    uint32_t count = 0, jobs = 0;
    const msgpack_object *c;
    struct ads_diag diag;
    enum doc_fmt fmt = http_accept_fmt(r);
    MDB_txn *txn;
    struct docw w;
    struct buf b;
    char mem[256];
    int rc;

    if (r->app->vgen == NULL) {
        http_send_error(r, ADS_ENOT_READY, NULL, "variant generation is not running");
        return;
    }
    if (!campaigns_read(r, &txn, &rec))
        return;
    store_read_end(txn);
    snprintf(id, sizeof(id), "%s", rec.id);
    msgpack_zone_init(&zone, 1024);
    if (r->req->entity.len > 0) {
        if (!body_parse(r, &zone, &doc))
            goto out;
        if (doc.type != MSGPACK_OBJECT_MAP) {
            http_send_error(r, ADS_EINVAL, "",
                            "the body must be an object: {\"locale\", \"segment\", \"count\"}, "
                            "each optional");
            goto out;
        }
        docp = &doc;
        for (uint32_t i = 0; i < doc.via.map.size; i++) {
            const msgpack_object *k = &doc.via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR ||
                !((k->via.str.size == 6 && memcmp(k->via.str.ptr, "locale", 6) == 0) ||
                  (k->via.str.size == 7 && memcmp(k->via.str.ptr, "segment", 7) == 0) ||
                  (k->via.str.size == 5 && memcmp(k->via.str.ptr, "count", 5) == 0))) {
                http_send_error(r, ADS_EINVAL, "", "unknown member: the body takes locale, segment and count");
                goto out;
            }
        }
    }
    if (!variants_str(r, docp, "locale", locale, sizeof(locale), &has_locale) ||
        !variants_str(r, docp, "segment", segment, sizeof(segment), &has_segment))
        goto out;
    if (docp != NULL && (c = doc_map_get(docp, "count")) != NULL && c->type != MSGPACK_OBJECT_NIL) {
        if (c->type != MSGPACK_OBJECT_POSITIVE_INTEGER || c->via.u64 < 1 || c->via.u64 > VAR_MAX_PER_GROUP) {
            http_send_error(r, ADS_EINVAL, "/count", "count must be an integer 1-%d", VAR_MAX_PER_GROUP);
            goto out;
        }
        count = (uint32_t)c->via.u64;
    }
    memset(&diag, 0, sizeof(diag));
    rc = vgen_request(r->app->vgen, id, has_locale ? locale : NULL, has_segment ? segment : NULL, count, &jobs, &diag);
    if (rc != 0) {
        body_send_diag(r, rc, &diag);
        goto out;
    }
    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, fmt, &b);
    docw_map(&w, 2);
    docw_key(&w, "campaign");
    docw_cstr(&w, id);
    docw_key(&w, "queued");
    docw_uint(&w, jobs);
    docw_map_end(&w);
    http_send_doc(r, 202, fmt, &b);
out:
    msgpack_zone_destroy(&zone);
}

/* POST /v1/campaigns/{id}/variants:review  {"variant": ID, "state": "approved"|"rejected"|"retired"} */
struct review_job {
    struct http_job base;
    char campaign[CIDX_ID_MAX + 1];
    char variant[VAR_ID_LEN + 1];
    enum var_state state;
    uint64_t now;
};

static int review_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct review_job *j = (struct review_job *)wj;
    static const char *const reviewed[] = {"reviewed"};
    struct var_rec rec;
    int rc;

    /* A variant that failed a check never serves: its reasons are the checks'. */
    if (j->state == VAR_APPROVED) {
        if ((rc = var_get(txn, s, j->campaign, j->variant, &rec)) != 0)
            return rc;
        if (rec.nreasons > 0 && strcmp(rec.reasons[0], "reviewed") != 0)
            return ADS_ECONFLICT;
    }
    return var_set_state(txn, s, j->campaign, j->variant, j->state, j->state == VAR_APPROVED ? NULL : reviewed,
                         j->state == VAR_APPROVED ? 0 : 1, j->now);
}

static void review_finish(struct http_job *job, struct http_req *r)
{
    struct review_job *j = (struct review_job *)job;
    enum doc_fmt fmt = http_accept_fmt(r);
    struct docw w;
    struct buf b;
    char mem[256];

    if (j->base.wq.rc == ADS_ENOT_FOUND) {
        http_send_error(r, ADS_ENOT_FOUND, "/variant", "campaign %s has no variant %s", j->campaign, j->variant);
        return;
    }
    if (j->base.wq.rc == ADS_ECONFLICT) {
        http_send_error(r, ADS_ECONFLICT, "/state",
                        "variant %s failed the checks (see its reasons in GET /v1/campaigns/{id}/variants) and "
                        "cannot be approved",
                        j->variant);
        return;
    }
    if (j->base.wq.rc == ADS_EQUOTA_EXCEEDED) {
        http_send_error(r, ADS_EQUOTA_EXCEEDED, "/state",
                        "%d variants already serve for this segment and locale: retire one first", VAR_MAX_PER_GROUP);
        return;
    }
    if (j->base.wq.rc != 0) {
        http_send_error(r, j->base.wq.rc, NULL, NULL);
        return;
    }
    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, fmt, &b);
    docw_map(&w, 3);
    docw_key(&w, "campaign");
    docw_cstr(&w, j->campaign);
    docw_key(&w, "variant");
    docw_cstr(&w, j->variant);
    docw_key(&w, "state");
    docw_cstr(&w, var_state_name(j->state));
    docw_map_end(&w);
    http_send_doc(r, 200, fmt, &b);
}

void campaigns_variants_review(struct http_req *r)
{
    struct camps_rec rec;
    struct review_job *job;
    msgpack_zone zone;
    msgpack_object doc;
    char variant[VAR_ID_LEN + 2], state[16];
    bool has_variant, has_state;
    enum var_state st;
    MDB_txn *txn;

    if (!campaigns_read(r, &txn, &rec))
        return;
    store_read_end(txn);
    msgpack_zone_init(&zone, 1024);
    if (!body_parse(r, &zone, &doc))
        goto out;
    if (doc.type != MSGPACK_OBJECT_MAP) {
        http_send_error(r, ADS_EINVAL, "", "the body must be an object: {\"variant\": ID, \"state\": STATE}");
        goto out;
    }
    if (!variants_str(r, &doc, "variant", variant, sizeof(variant), &has_variant) ||
        !variants_str(r, &doc, "state", state, sizeof(state), &has_state))
        goto out;
    if (!has_variant || strlen(variant) != VAR_ID_LEN) {
        http_send_error(r, ADS_EINVAL, "/variant",
                        "variant must be a variant id (%d hex digits), as GET "
                        "/v1/campaigns/{id}/variants lists",
                        VAR_ID_LEN);
        goto out;
    }
    if (!has_state || var_state_parse(state, &st) != 0 || st == VAR_PENDING) {
        http_send_error(r, ADS_EINVAL, "/state", "state must be approved, rejected or retired");
        goto out;
    }
    if ((job = calloc(1, sizeof(*job))) == NULL) {
        http_send_error(r, ADS_ENOMEM, NULL, NULL);
        goto out;
    }
    snprintf(job->campaign, sizeof(job->campaign), "%s", rec.id);
    memcpy(job->variant, variant, VAR_ID_LEN + 1);
    job->state = st;
    job->now = body_now();
    http_job_submit(r, &job->base, review_apply, review_finish);
out:
    msgpack_zone_destroy(&zone);
}
