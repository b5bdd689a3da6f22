/*
 * /v1/campaigns: thin handlers over the validator (camp_), the store (camps_)
 * and the index (catl_).
 *
 * Tenancy: an advertiser key (and a scoped reader key) sees only its
 * advertiser's campaigns; anything else answers 404 exactly as a missing
 * campaign does, so ids of other advertisers do not leak through reads,
 * writes, deletes or usage. Campaign ids are global (events and frequency
 * counters name campaigns by id), so creating an id another advertiser holds
 * is refused with that same 404.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/app.h"
#include "adsmith/campaign.h"
#include "adsmith/camps.h"
#include "adsmith/catalog.h"
#include "adsmith/config.h"
#include "adsmith/handlers.h"
#include "body.h"

#define CAMPS_LIST_DEFAULT 100
#define CAMPS_LIST_MAX 1000
#define CAMPS_LIST_SCAN_MAX 20000 /* records one page may look at when filtering by status */

enum camps_op { CAMPS_PUT, CAMPS_PATCH, CAMPS_DELETE };

struct camps_job {
    struct http_job base;
    enum camps_op op;
    enum doc_fmt out;
    uint64_t now;
    struct keys_principal who;
    const struct camp_validator *validator;
    struct camp_rules rules;
    uint64_t max_per_adv;
    char id[CAMP_ID_MAX + 1];
    char if_match[CAMPS_ETAG_MAX + 16]; /* "" when absent */
    bool if_none_match;                 /* If-None-Match: * */
    /* PUT: the new document and its fields; PATCH: the patch. */
    struct camps_rec fields; /* id, advertiser, status and name of the document to write */
    msgpack_sbuffer input;
    /* Outcome. */
    bool created, unchanged;
    struct camps_rec rec; /* as written (doc points into result) */
    msgpack_sbuffer result;
    struct ads_diag diag;
    struct vrep rep; /* PATCH: the merged document's problems */
};

static bool camps_can_see(const struct keys_principal *who, const char *advertiser)
{
    return who->advertiser[0] == '\0' || strcmp(who->advertiser, advertiser) == 0;
}

struct camps_msg {
    char text[200];
};

/* The one 404 message, the same whether the campaign is missing or another advertiser's. */
static struct camps_msg camps_not_found(const char *id, const struct keys_principal *who)
{
    struct camps_msg m;

    snprintf(m.text, sizeof(m.text), "no campaign has the id \"%s\"%s%s%s", id,
             who->advertiser[0] != '\0' ? " for advertiser \"" : "", who->advertiser,
             who->advertiser[0] != '\0' ? "\"" : "");
    return m;
}

/* The campaign id of the path, checked; false after answering 400. */
static bool camps_path_id(struct http_req *r, char *id)
{
    size_t len;

    if (http_param(r, id, CAMP_ID_MAX + 1, &len) != 0 || !camp_id_valid(id, len)) {
        http_send_error(r, ADS_EINVAL, "", "the campaign id in the path must be 1-%d characters of A-Z a-z 0-9 _ . -",
                        CAMP_ID_MAX);
        return false;
    }
    return true;
}

/* Writes the stored document of @p rec with created_at and updated_at. */
static int camps_render(const struct camps_rec *rec, struct docw *w)
{
    msgpack_zone zone;
    msgpack_object doc;
    size_t off = 0;
    int rc = 0;

    msgpack_zone_init(&zone, 4096);
    if (msgpack_unpack(rec->doc, rec->doc_len, &off, &zone, &doc) != MSGPACK_UNPACK_SUCCESS ||
        doc.type != MSGPACK_OBJECT_MAP) {
        rc = ADS_EDATA_INVALID;
    } else {
        docw_map(w, doc.via.map.size + 2);
        for (uint32_t i = 0; i < doc.via.map.size; i++) {
            const msgpack_object_kv *kv = &doc.via.map.ptr[i];
            docw_keyn(w, kv->key.via.str.ptr, kv->key.via.str.size);
            docw_object(w, &kv->val);
        }
        docw_key(w, "created_at");
        docw_uint(w, rec->created_at);
        docw_key(w, "updated_at");
        docw_uint(w, rec->updated_at);
        docw_map_end(w);
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

static void camps_send_rec(struct http_req *r, int status, enum doc_fmt fmt, const struct camps_rec *rec)
{
    /* JSON writes a stored byte as at most 6 ("\u00XX"); numbers and the two times fit the slack. */
    size_t cap = rec->doc_len * 6 + 4096;
    char *etag = h2o_mem_alloc_pool(&r->req->pool, CAMPS_ETAG_MAX);
    struct docw w;
    struct buf b;
    int rc;

    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, cap), cap);
    docw_init(&w, fmt, &b);
    rc = camps_render(rec, &w);
    if (rc != 0 || b.overflow) {
        http_send_error(r, rc != 0 ? rc : ADS_EINTERNAL, NULL, "the stored campaign could not be rendered");
        return;
    }
    camps_etag(rec, etag);
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_ETAG, NULL, etag, strlen(etag));
    if (status == 201) {
        size_t n = strlen(rec->id) + sizeof("/v1/campaigns/");
        char *loc = h2o_mem_alloc_pool(&r->req->pool, n);
        snprintf(loc, n, "/v1/campaigns/%s", rec->id);
        h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_LOCATION, NULL, loc, n - 1);
    }
    http_send_doc(r, status, fmt, &b);
}

/* Answers 400 with every problem of @p rep. */
static void camps_send_problems(struct http_req *r, const struct vrep *rep)
{
    size_t cap = 4096 + rep->count * 1024;
    struct buf b;
    struct docw w;
    char msg[640];

    snprintf(msg, sizeof(msg), "the campaign has %zu problem%s%s; the first: %s: %s", rep->total,
             rep->total == 1 ? "" : "s", rep->total > rep->count ? " (the first ones are listed)" : "",
             rep->items[0].pointer[0] != '\0' ? rep->items[0].pointer : "(the document)", rep->items[0].message);
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, cap), cap);
    docw_init(&w, DOC_JSON, &b);
    docw_map(&w, 1);
    docw_key(&w, "error");
    docw_map(&w, 5);
    docw_key(&w, "code");
    docw_cstr(&w, ads_err_name(ADS_EINVAL));
    docw_key(&w, "message");
    docw_cstr(&w, msg);
    docw_key(&w, "pointer");
    docw_cstr(&w, rep->items[0].pointer);
    docw_key(&w, "problems");
    docw_uint(&w, rep->total);
    docw_key(&w, "errors");
    vrep_write(rep, &w);
    docw_map_end(&w);
    docw_map_end(&w);
    if (b.overflow) {
        http_send_error(r, ADS_EINVAL, rep->items[0].pointer, "%s", msg);
        return;
    }
    http_send_json(r, 400, b.base, b.len);
}

/* The If-Match and If-None-Match of the request; false after answering 400. */
static bool camps_preconditions(struct http_req *r, struct camps_job *job)
{
    ssize_t i = h2o_find_header(&r->req->headers, H2O_TOKEN_IF_MATCH, -1);
    ssize_t j = h2o_find_header(&r->req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);

    if (i >= 0) {
        h2o_iovec_t v = r->req->headers.entries[i].value;
        if (v.len == 0 || v.len >= sizeof(job->if_match)) {
            http_send_error(r, ADS_EINVAL, NULL, "If-Match must be * or the ETag a GET returned");
            return false;
        }
        memcpy(job->if_match, v.base, v.len);
        job->if_match[v.len] = '\0';
    }
    if (j >= 0) {
        h2o_iovec_t v = r->req->headers.entries[j].value;
        if (!h2o_memis(v.base, v.len, H2O_STRLIT("*"))) {
            http_send_error(r, ADS_EINVAL, NULL, "on writes, If-None-Match may only be * (create, never replace)");
            return false;
        }
        job->if_none_match = true;
    }
    return true;
}

/* Whether If-Match (a list of entity-tags, or *) admits the stored @p rec (NULL: none stored). */
static bool camps_if_match_ok(const struct camps_job *job, const struct camps_rec *rec)
{
    char etag[CAMPS_ETAG_MAX];
    const char *p;
    size_t n;

    if (job->if_match[0] == '\0')
        return true;
    if (rec == NULL)
        return false;
    if (strcmp(job->if_match, "*") == 0)
        return true;
    camps_etag(rec, etag);
    n = strlen(etag);
    for (p = job->if_match; (p = strstr(p, etag)) != NULL; p += n) {
        if ((p == job->if_match || p[-1] == ' ' || p[-1] == ',') && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return true;
    }
    return false;
}

static void camps_job_release(struct http_job *hj)
{
    struct camps_job *job = (struct camps_job *)hj;

    msgpack_sbuffer_destroy(&job->input);
    msgpack_sbuffer_destroy(&job->result);
}

static struct camps_job *camps_job_new(struct http_req *r, enum camps_op op)
{
    struct camps_job *job = calloc(1, sizeof(*job));

    if (job == NULL) {
        http_send_error(r, ADS_ENOMEM, NULL, NULL);
        return NULL;
    }
    job->base.release = camps_job_release;
    job->op = op;
    job->out = http_accept_fmt(r);
    job->now = body_now();
    job->who = r->who;
    job->validator = r->app->campaign_validator;
    job->rules = app_campaign_rules(r->app);
    job->max_per_adv = r->app->cfg->campaigns_per_advertiser;
    msgpack_sbuffer_init(&job->input);
    msgpack_sbuffer_init(&job->result);
    return job;
}

/* ---- the writer thread's part ---- */

/* The stored campaign as the job's key may see it: ADS_ENOT_FOUND for another advertiser's. */
static int camps_load_visible(struct camps_job *job, MDB_txn *txn, struct store *s, struct camps_rec *rec)
{
    int rc = camps_get(txn, s, job->id, rec);

    /* Another advertiser's campaign reads exactly as a missing one. */
    if (rc == ADS_ENOT_FOUND || (rc == 0 && !camps_can_see(&job->who, rec->advertiser)))
        return ads_diag_set(&job->diag, ADS_ENOT_FOUND, "", "%s", camps_not_found(job->id, &job->who).text);
    return rc;
}

static int camps_check_preconditions(struct camps_job *job, const struct camps_rec *old)
{
    char etag[CAMPS_ETAG_MAX] = "none";

    if (job->if_none_match && old != NULL)
        return ads_diag_set(&job->diag, ADS_EPRECONDITION_FAILED, "",
                            "campaign \"%s\" already exists and If-None-Match: * asks to create only", job->id);
    if (!camps_if_match_ok(job, old)) {
        if (old != NULL)
            camps_etag(old, etag);
        return ads_diag_set(&job->diag, ADS_EPRECONDITION_FAILED, "",
                            "If-Match %s does not match the stored campaign (ETag %s): it changed since you read it; "
                            "GET it, reapply your change and retry",
                            job->if_match, etag);
    }
    if (old != NULL && strcmp(old->status, "archived") == 0 && job->op != CAMPS_DELETE)
        return ads_diag_set(&job->diag, ADS_ECONFLICT, "/status",
                            "campaign \"%s\" is archived and can no longer change; create a new campaign", job->id);
    return 0;
}

/* Writes job->result as campaign job->id after @p old (NULL: new). */
static int camps_write(struct camps_job *job, MDB_txn *txn, struct store *s, const struct camps_rec *old)
{
    struct camps_rec *rec = &job->rec;

    memset(rec, 0, sizeof(*rec));
    memcpy(rec->id, job->id, sizeof(rec->id));
    memcpy(rec->advertiser, job->fields.advertiser, sizeof(rec->advertiser));
    memcpy(rec->status, job->fields.status, sizeof(rec->status));
    memcpy(rec->name, job->fields.name, sizeof(rec->name));
    rec->rev = old != NULL ? old->rev + 1 : 1;
    rec->created_at = old != NULL ? old->created_at : job->now;
    rec->updated_at = job->now;
    rec->doc = job->result.data;
    rec->doc_len = job->result.size;
    job->created = old == NULL;
    return camps_put(txn, s, rec, old != NULL ? old->status : NULL);
}

static int camps_apply_put(struct camps_job *job, MDB_txn *txn, struct store *s)
{
    struct camps_rec old = {.rev = 0};
    uint64_t live;
    int rc = camps_get(txn, s, job->id, &old);

    if (rc != 0 && rc != ADS_ENOT_FOUND)
        return rc;
    if (rc == 0 && !camps_can_see(&job->who, old.advertiser))
        return ads_diag_set(&job->diag, ADS_ENOT_FOUND, "/id",
                            "campaign id \"%s\" is not available to advertiser \"%s\" (ids are global); choose "
                            "another id",
                            job->id, job->who.advertiser);
    if ((rc = camps_check_preconditions(job, rc == 0 ? &old : NULL)) != 0)
        return rc;
    if (old.rev != 0 && strcmp(old.advertiser, job->fields.advertiser) != 0)
        return ads_diag_set(&job->diag, ADS_ECONFLICT, "/advertiser",
                            "campaign \"%s\" belongs to advertiser \"%s\"; a campaign cannot move to another advertiser",
                            job->id, old.advertiser);
    if (old.rev == 0 && strcmp(job->fields.status, "archived") != 0) {
        if ((rc = camps_live_count(txn, s, job->fields.advertiser, &live)) != 0)
            return rc;
        if (live >= job->max_per_adv)
            return ads_diag_set(&job->diag, ADS_EQUOTA_EXCEEDED, "",
                                "advertiser \"%s\" has %" PRIu64 " campaigns that are not archived, the most allowed "
                                "(campaigns_per_advertiser); archive one first",
                                job->fields.advertiser, live);
    }
    /* A copy: the writer may abort the group and apply this job again. */
    if (msgpack_sbuffer_write(&job->result, job->input.data, job->input.size) != 0)
        return ADS_ENOMEM;
    return camps_write(job, txn, s, old.rev != 0 ? &old : NULL);
}

/* Unpacks @p rec's document into @p zone. */
static int camps_unpack(const struct camps_rec *rec, msgpack_zone *zone, msgpack_object *ret)
{
    size_t off = 0;

    if (msgpack_unpack(rec->doc, rec->doc_len, &off, zone, ret) != MSGPACK_UNPACK_SUCCESS ||
        ret->type != MSGPACK_OBJECT_MAP)
        return ADS_EDATA_INVALID;
    return 0;
}

static int camps_apply_patch(struct camps_job *job, MDB_txn *txn, struct store *s)
{
    struct camps_rec old;
    msgpack_zone zone;
    msgpack_object cur, patch, merged;
    size_t off = 0;
    int rc;

    if ((rc = camps_load_visible(job, txn, s, &old)) != 0 || (rc = camps_check_preconditions(job, &old)) != 0)
        return rc;
    msgpack_zone_init(&zone, 4096);
    if ((rc = camps_unpack(&old, &zone, &cur)) != 0)
        goto out;
    if (msgpack_unpack(job->input.data, job->input.size, &off, &zone, &patch) != MSGPACK_UNPACK_SUCCESS) {
        rc = ADS_EINTERNAL;
        goto out;
    }
    if ((rc = doc_merge_patch(&zone, &cur, &patch, &merged)) != 0)
        goto out;
    vrep_init(&job->rep);
    if (camp_validate(job->validator, &merged, &job->rules, &job->rep) != 0) {
        rc = ADS_EINVAL;
        goto out;
    }
    camps_rec_from_doc(&merged, &job->fields);
    if (strcmp(job->fields.id, job->id) != 0) {
        rc = ads_diag_set(&job->diag, ADS_EINVAL, "/id", "a campaign's id cannot change (it is \"%s\")", job->id);
        goto out;
    }
    if (strcmp(job->fields.advertiser, old.advertiser) != 0) {
        rc = ads_diag_set(&job->diag, ADS_ECONFLICT, "/advertiser",
                          "campaign \"%s\" belongs to advertiser \"%s\"; a campaign cannot move to another advertiser",
                          job->id, old.advertiser);
        goto out;
    }
    if ((rc = camps_pack_doc(&merged, &job->result)) == 0)
        rc = camps_write(job, txn, s, &old);
out:
    msgpack_zone_destroy(&zone);
    return rc;
}

static int camps_apply_delete(struct camps_job *job, MDB_txn *txn, struct store *s)
{
    static const msgpack_object archived = {.type = MSGPACK_OBJECT_STR, .via.str = {8, "archived"}};
    struct camps_rec old;
    msgpack_zone zone;
    msgpack_object cur;
    int rc;

    if ((rc = camps_load_visible(job, txn, s, &old)) != 0 || (rc = camps_check_preconditions(job, &old)) != 0)
        return rc;
    if (strcmp(old.status, "archived") == 0) {
        /* Already archived: answer with what is stored, write nothing. */
        job->unchanged = true;
        job->rec = old;
        msgpack_sbuffer_write(&job->result, old.doc, old.doc_len);
        job->rec.doc = job->result.data;
        return 0;
    }
    msgpack_zone_init(&zone, 4096);
    if ((rc = camps_unpack(&old, &zone, &cur)) == 0) {
        for (uint32_t i = 0; i < cur.via.map.size; i++) {
            const msgpack_object *k = &cur.via.map.ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 6 && memcmp(k->via.str.ptr, "status", 6) == 0)
                cur.via.map.ptr[i].val = archived;
        }
        camps_rec_from_doc(&cur, &job->fields);
        if ((rc = camps_pack_doc(&cur, &job->result)) == 0)
            rc = camps_write(job, txn, s, &old);
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

static int camps_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct camps_job *job = (struct camps_job *)wj;

    /* A retried job starts over. */
    memset(&job->diag, 0, sizeof(job->diag));
    job->rep.total = 0;
    msgpack_sbuffer_destroy(&job->result);
    msgpack_sbuffer_init(&job->result);
    switch (job->op) {
    case CAMPS_PUT: return camps_apply_put(job, txn, s);
    case CAMPS_PATCH: return camps_apply_patch(job, txn, s);
    case CAMPS_DELETE: return camps_apply_delete(job, txn, s);
    }
    return ADS_EINTERNAL;
}

static void camps_finish(struct http_job *hj, struct http_req *r)
{
    struct camps_job *job = (struct camps_job *)hj;
    int rc = hj->wq.rc;

    if (rc == ADS_EINVAL && job->rep.total > 0) {
        camps_send_problems(r, &job->rep);
        return;
    }
    if (rc != 0) {
        body_send_diag(r, rc, &job->diag);
        return;
    }
    if (!job->unchanged)
        catl_notify(r->app->catalog);
    camps_send_rec(r, job->created ? 201 : 200, job->out, &job->rec);
}

/* ---- the handlers ---- */

void campaigns_put(struct http_req *r)
{
    struct camps_job *job;
    struct ads_diag d = {{0}, {0}};
    msgpack_zone zone;
    msgpack_object doc;
    struct vrep *rep;
    int rc;

    if (body_store(r) == NULL || (job = camps_job_new(r, CAMPS_PUT)) == NULL)
        return;
    if (!camps_path_id(r, job->id) || !camps_preconditions(r, job))
        goto fail;
    msgpack_zone_init(&zone, 4096);
    if (!body_parse(r, &zone, &doc))
        goto fail_zone;
    rep = &job->rep;
    vrep_init(rep);
    if (camp_validate(job->validator, &doc, &job->rules, rep) != 0) {
        camps_send_problems(r, rep);
        goto fail_zone;
    }
    camps_rec_from_doc(&doc, &job->fields);
    if (strcmp(job->fields.id, job->id) != 0) {
        http_send_error(r, ADS_EINVAL, "/id", "the document's id \"%s\" differs from the path's \"%s\"", job->fields.id,
                        job->id);
        goto fail_zone;
    }
    if (!camps_can_see(&job->who, job->fields.advertiser) || job->who.role == KEYS_READER) {
        http_send_error(r, ADS_EFORBIDDEN, "/advertiser", "this key may only write campaigns of advertiser \"%s\"",
                        job->who.advertiser);
        goto fail_zone;
    }
    if ((rc = camps_pack_doc(&doc, &job->input)) != 0) {
        ads_diag_set(&d, rc, "", "out of memory");
        body_send_diag(r, rc, &d);
        goto fail_zone;
    }
    msgpack_zone_destroy(&zone);
    http_job_submit(r, &job->base, camps_apply, camps_finish);
    return;
fail_zone:
    msgpack_zone_destroy(&zone);
fail:
    camps_job_release(&job->base);
    free(job);
}

void campaigns_patch(struct http_req *r)
{
    struct camps_job *job;
    msgpack_zone zone;
    msgpack_object patch;
    msgpack_packer pk;

    if (body_store(r) == NULL || (job = camps_job_new(r, CAMPS_PATCH)) == NULL)
        return;
    if (!camps_path_id(r, job->id) || !camps_preconditions(r, job))
        goto fail;
    msgpack_zone_init(&zone, 4096);
    if (!body_parse(r, &zone, &patch)) {
        msgpack_zone_destroy(&zone);
        goto fail;
    }
    if (patch.type != MSGPACK_OBJECT_MAP) {
        msgpack_zone_destroy(&zone);
        http_send_error(r, ADS_EINVAL, "", "a PATCH body is a JSON Merge Patch (RFC 7396): an object of the members to "
                                           "change, with null for members to remove");
        goto fail;
    }
    msgpack_packer_init(&pk, &job->input, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, patch);
    msgpack_zone_destroy(&zone);
    http_job_submit(r, &job->base, camps_apply, camps_finish);
    return;
fail:
    camps_job_release(&job->base);
    free(job);
}

void campaigns_delete(struct http_req *r)
{
    struct camps_job *job;

    if (body_store(r) == NULL || (job = camps_job_new(r, CAMPS_DELETE)) == NULL)
        return;
    if (!camps_path_id(r, job->id) || !camps_preconditions(r, job)) {
        camps_job_release(&job->base);
        free(job);
        return;
    }
    http_job_submit(r, &job->base, camps_apply, camps_finish);
}

/* Reads campaign {id} for a GET-like route; false after answering. */
bool campaigns_read(struct http_req *r, MDB_txn **ret_txn, struct camps_rec *rec)
{
    char id[CAMP_ID_MAX + 1];
    struct store *s;
    int rc;

    if (!camps_path_id(r, id) || (s = body_store(r)) == NULL)
        return false;
    if ((rc = store_read_begin(s, ret_txn)) != 0) {
        http_send_error(r, rc, NULL, NULL);
        return false;
    }
    rc = camps_get(*ret_txn, s, id, rec);
    if (rc == 0 && !camps_can_see(&r->who, rec->advertiser))
        rc = ADS_ENOT_FOUND;
    if (rc != 0) {
        store_read_end(*ret_txn);
        if (rc == ADS_ENOT_FOUND)
            http_send_error(r, rc, NULL, "%s", camps_not_found(id, &r->who).text);
        else
            http_send_error(r, rc, NULL, NULL);
        return false;
    }
    return true;
}

void campaigns_get(struct http_req *r)
{
    struct camps_rec rec;
    MDB_txn *txn;
    char etag[CAMPS_ETAG_MAX];
    ssize_t i;

    if (!campaigns_read(r, &txn, &rec))
        return;
    camps_etag(&rec, etag);
    i = h2o_find_header(&r->req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (i >= 0 && (h2o_strstr(r->req->headers.entries[i].value.base, r->req->headers.entries[i].value.len, etag,
                              strlen(etag)) != SIZE_MAX ||
                   h2o_memis(r->req->headers.entries[i].value.base, r->req->headers.entries[i].value.len,
                             H2O_STRLIT("*")))) {
        char *copy = h2o_mem_alloc_pool(&r->req->pool, CAMPS_ETAG_MAX);
        store_read_end(txn);
        memcpy(copy, etag, CAMPS_ETAG_MAX);
        h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_ETAG, NULL, copy, strlen(copy));
        http_send(r, 304, NULL, "", 0);
        return;
    }
    camps_send_rec(r, 200, http_accept_fmt(r), &rec);
    store_read_end(txn);
}

/* ---- GET /v1/campaigns ---- */

struct camps_page {
    struct camps_rec *items;
    size_t n, cap;
    char next[CAMP_ID_MAX + 1]; /* "" when this is the last page */
};

/* Adds @p rec to @p page when it passes the filter; false when the page is full. */
static bool camps_page_add(struct camps_page *page, const struct camps_rec *rec, const char *status)
{
    if (status[0] != '\0' && strcmp(rec->status, status) != 0)
        return true;
    if (page->n == page->cap) {
        return false;
    }
    page->items[page->n++] = *rec;
    return true;
}

/* Fills @p page from the cursor on. 0 or a storage error. */
static int camps_page_fill(MDB_txn *txn, struct store *s, const char *advertiser, const char *status,
                           const char *after, struct camps_page *page)
{
    char kmem[2 * CAMP_ID_MAX + 2];
    size_t alen = strlen(advertiser), scanned = 0;
    MDB_cursor *cur;
    MDB_val key, val;
    MDB_dbi dbi = store_dbi(s, advertiser[0] != '\0' ? STORE_DB_CAMPAIGNS_BY_ADV : STORE_DB_CAMPAIGNS);
    struct camps_rec rec, last = {.id = ""};
    int rc;

    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return store_err(rc);
    if (advertiser[0] != '\0') {
        memcpy(kmem, advertiser, alen + 1);
        snprintf(kmem + alen + 1, sizeof(kmem) - alen - 1, "%s", after);
        key = (MDB_val){alen + 1 + strlen(after), kmem};
    } else {
        key = (MDB_val){strlen(after), (void *)after};
    }
    rc = key.mv_size > 0 ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE) : mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        const char *id = key.mv_data;
        size_t id_len = key.mv_size;
        if (advertiser[0] != '\0') {
            if (key.mv_size <= alen + 1 || memcmp(key.mv_data, advertiser, alen) != 0 || id[alen] != '\0')
                break;
            id += alen + 1;
            id_len -= alen + 1;
        }
        if (id_len > CAMP_ID_MAX)
            continue;
        if (strlen(after) == id_len && memcmp(id, after, id_len) == 0)
            continue; /* the cursor names the last id of the previous page */
        memcpy(rec.id, id, id_len);
        rec.id[id_len] = '\0';
        if (advertiser[0] != '\0') {
            if ((rc = camps_get(txn, s, rec.id, &rec)) != 0)
                break;
        } else if ((rc = camps_decode(&val, &rec)) != 0) {
            break;
        }
        if (!camps_page_add(page, &rec, status)) {
            memcpy(page->next, last.id, sizeof(page->next));
            break;
        }
        last = rec;
        if (++scanned == CAMPS_LIST_SCAN_MAX) {
            /* A sparse filter: stop here and let the client go on from this id. */
            memcpy(page->next, rec.id, sizeof(page->next));
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : rc < 0 ? rc : store_err(rc);
}

void campaigns_list(struct http_req *r)
{
    static const char *const statuses[] = {"", "draft", "active", "paused", "archived"};
    char status[16], advertiser[CAMP_ID_MAX + 1], after[CAMP_ID_MAX + 1], num[16], etag[CAMPS_ETAG_MAX];
    struct camps_page page = {0};
    unsigned long limit = CAMPS_LIST_DEFAULT;
    enum doc_fmt fmt = http_accept_fmt(r);
    struct store *s;
    MDB_txn *txn;
    struct docw w;
    struct buf b;
    size_t cap;
    bool known = false;
    int rc;

    if ((rc = http_query(r, "status", status, sizeof(status))) == ADS_ENOT_FOUND)
        status[0] = '\0';
    for (size_t i = 0; rc != ADS_EINVAL && i < sizeof(statuses) / sizeof(statuses[0]); i++)
        known |= strcmp(status, statuses[i]) == 0;
    if (!known) {
        http_send_error(r, ADS_EINVAL, "", "status must be draft, active, paused or archived");
        return;
    }
    if ((rc = http_query(r, "advertiser", advertiser, sizeof(advertiser))) == ADS_ENOT_FOUND)
        advertiser[0] = '\0';
    else if (rc != 0) {
        http_send_error(r, ADS_EINVAL, "", "advertiser must be an advertiser id of 1-%d characters", CAMP_ID_MAX);
        return;
    }
    if ((rc = http_query(r, "cursor", after, sizeof(after))) == ADS_ENOT_FOUND)
        after[0] = '\0';
    else if (rc != 0) {
        http_send_error(r, ADS_EINVAL, "", "cursor must be the next_cursor of the previous page");
        return;
    }
    if (http_query(r, "limit", num, sizeof(num)) == 0) {
        char *end;
        limit = strtoul(num, &end, 10);
        if (num[0] < '0' || num[0] > '9' || *end != '\0' || limit < 1 || limit > CAMPS_LIST_MAX) {
            http_send_error(r, ADS_EINVAL, "", "limit must be a whole number from 1 to %d", CAMPS_LIST_MAX);
            return;
        }
    }
    if ((s = body_store(r)) == NULL)
        return;
    /* A scoped key lists its own advertiser's campaigns, whatever it asks for. */
    if (r->who.advertiser[0] != '\0') {
        if (advertiser[0] != '\0' && strcmp(advertiser, r->who.advertiser) != 0)
            limit = 0;
        memcpy(advertiser, r->who.advertiser, sizeof(advertiser));
    }
    page.cap = limit;
    page.items = h2o_mem_alloc_pool(&r->req->pool, (limit > 0 ? limit : 1) * sizeof(*page.items));
    if ((rc = store_read_begin(s, &txn)) != 0) {
        http_send_error(r, rc, NULL, NULL);
        return;
    }
    rc = limit > 0 ? camps_page_fill(txn, s, advertiser, status, after, &page) : 0;
    store_read_end(txn); /* the items keep no pointer into LMDB: summaries only */
    if (rc != 0) {
        http_send_error(r, rc, NULL, NULL);
        return;
    }
    cap = 256 + page.n * 1200;
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, cap), cap);
    docw_init(&w, fmt, &b);
    docw_map(&w, page.next[0] != '\0' ? 2 : 1);
    docw_key(&w, "campaigns");
    docw_array(&w, (uint32_t)page.n);
    for (size_t i = 0; i < page.n; i++) {
        const struct camps_rec *c = &page.items[i];
        camps_etag(c, etag);
        docw_map(&w, 7);
        docw_key(&w, "id");
        docw_cstr(&w, c->id);
        docw_key(&w, "advertiser");
        docw_cstr(&w, c->advertiser);
        docw_key(&w, "name");
        docw_cstr(&w, c->name);
        docw_key(&w, "status");
        docw_cstr(&w, c->status);
        docw_key(&w, "etag");
        docw_cstr(&w, etag);
        docw_key(&w, "created_at");
        docw_uint(&w, c->created_at);
        docw_key(&w, "updated_at");
        docw_uint(&w, c->updated_at);
        docw_map_end(&w);
    }
    docw_array_end(&w);
    if (page.next[0] != '\0') {
        docw_key(&w, "next_cursor");
        docw_cstr(&w, page.next);
    }
    docw_map_end(&w);
    if (b.overflow) {
        http_send_error(r, ADS_EINTERNAL, NULL, "the page did not fit the response buffer");
        return;
    }
    http_send_doc(r, 200, fmt, &b);
}

/* ---- /v1/admin: the compiled index ---- */

void campaigns_index_stats(struct http_req *r)
{
    struct catl_stats st;
    enum doc_fmt fmt = http_accept_fmt(r);
    struct docw w;
    struct buf b;

    catl_stats(r->app->catalog, &st);
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, 1024), 1024);
    docw_init(&w, fmt, &b);
    docw_map(&w, 7);
    docw_key(&w, "builds");
    docw_uint(&w, st.builds);
    docw_key(&w, "campaigns");
    docw_uint(&w, st.campaigns);
    docw_key(&w, "revision");
    docw_uint(&w, st.revision);
    docw_key(&w, "built_at");
    docw_int(&w, st.built_at);
    docw_key(&w, "build_us");
    docw_uint(&w, st.build_us);
    docw_key(&w, "valid_until");
    docw_int(&w, st.valid_until);
    docw_key(&w, "errors");
    docw_uint(&w, st.errors);
    docw_map_end(&w);
    http_send_doc(r, 200, fmt, &b);
}

/* An optional string member of the eligibility context; false after answering 400. */
static bool camps_q_str(struct http_req *r, const msgpack_object *ctx, const char *key, size_t max, struct cidx_str *ret)
{
    const msgpack_object *v = doc_map_get(ctx, key);

    if (v == NULL)
        return true;
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size > max) {
        http_send_error(r, ADS_EINVAL, NULL, "%s must be a string of at most %zu bytes", key, max);
        return false;
    }
    *ret = (struct cidx_str){v->via.str.ptr, v->via.str.size};
    return true;
}

/* An optional list of strings; the array lives in the request's pool. */
static bool camps_q_list(struct http_req *r, const msgpack_object *ctx, const char *key, uint32_t max_n, size_t max,
                         const struct cidx_str **ret, uint32_t *ret_n)
{
    const msgpack_object *v = doc_map_get(ctx, key);
    struct cidx_str *out;

    if (v == NULL)
        return true;
    if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > max_n) {
        http_send_error(r, ADS_EINVAL, NULL, "%s must be an array of at most %u strings", key, max_n);
        return false;
    }
    out = h2o_mem_alloc_pool(&r->req->pool, (v->via.array.size + 1) * sizeof(*out));
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *e = &v->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_STR || e->via.str.size > max) {
            http_send_error(r, ADS_EINVAL, NULL, "%s[%u] must be a string of at most %zu bytes", key, i, max);
            return false;
        }
        out[i] = (struct cidx_str){e->via.str.ptr, e->via.str.size};
    }
    *ret = out;
    *ret_n = v->via.array.size;
    return true;
}

/* A {w,h} size; false after answering 400. */
static bool camps_q_size(struct http_req *r, const msgpack_object *o, const char *what, struct cidx_size *ret)
{
    const msgpack_object *w = doc_map_get(o, "w"), *h = doc_map_get(o, "h");

    if (w == NULL || h == NULL || w->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        h->type != MSGPACK_OBJECT_POSITIVE_INTEGER || w->via.u64 > 65535 || h->via.u64 > 65535) {
        http_send_error(r, ADS_EINVAL, NULL, "%s must be {\"w\":PIXELS,\"h\":PIXELS}", what);
        return false;
    }
    *ret = (struct cidx_size){(uint16_t)w->via.u64, (uint16_t)h->via.u64};
    return true;
}

/*
 * POST /v1/admin/eligibility, body {"country","region","device","os","language",
 * "domain","bundle","cattax","categories":[],"segments":[],"formats":[],
 * "banner_sizes":[{w,h}],"video_size":{w,h},"deals":[],"private_auction",
 * "now"} (all optional): which campaigns the live index finds eligible.
 * For operators asking "why does this campaign not bid?".
 */
void campaigns_eligibility(struct http_req *r)
{
    static const char *const formats[] = {"banner", "native", "video"};
    static const char *const taxonomies[] = {"", "iab_content_1.0", "iab_content_2.0", "iab_content_2.1",
                                             "iab_content_2.2", "iab_content_3.0", "iab_content_3.1"};
    struct cidx_query q = {.now = (int64_t)body_now()};
    struct cidx_str tax = {NULL, 0};
    const struct cidx_str *fmts = NULL;
    uint32_t nfmts = 0, n;
    const msgpack_object *v;
    msgpack_zone zone;
    msgpack_object ctx;
    const struct cidx *ix;
    struct catl_stats st;
    enum doc_fmt out = http_accept_fmt(r);
    uint64_t *bits;
    struct docw w;
    struct buf b;
    bool ok;

    msgpack_zone_init(&zone, 4096);
    if (!body_parse(r, &zone, &ctx))
        goto out;
    if (ctx.type != MSGPACK_OBJECT_MAP) {
        http_send_error(r, ADS_EINVAL, "", "the body must be an object describing one impression");
        goto out;
    }
    ok = camps_q_str(r, &ctx, "country", CIDX_COUNTRY_MAX, &q.country) &&
         camps_q_str(r, &ctx, "region", CIDX_REGION_MAX, &q.region) &&
         camps_q_str(r, &ctx, "device", 16, &q.device) && camps_q_str(r, &ctx, "os", CIDX_OS_MAX, &q.os) &&
         camps_q_str(r, &ctx, "language", CIDX_LANGUAGE_MAX, &q.language) &&
         camps_q_str(r, &ctx, "domain", CIDX_DOMAIN_MAX, &q.domain) &&
         camps_q_str(r, &ctx, "bundle", CIDX_BUNDLE_MAX, &q.bundle) && camps_q_str(r, &ctx, "cattax", 32, &tax) &&
         camps_q_list(r, &ctx, "categories", CIDX_Q_MAX_CATEGORIES, CIDX_CATEGORY_MAX, &q.categories,
                      &q.ncategories) &&
         camps_q_list(r, &ctx, "segments", CIDX_Q_MAX_SEGMENTS, CIDX_SEGMENT_MAX, &q.segments, &q.nsegments) &&
         camps_q_list(r, &ctx, "deals", CIDX_Q_MAX_DEALS, CIDX_DEAL_MAX, &q.deals, &q.ndeals) &&
         camps_q_list(r, &ctx, "formats", 3, 16, &fmts, &nfmts);
    if (!ok)
        goto out;
    for (uint32_t i = 0; i < nfmts; i++) {
        uint32_t bit = 0;
        for (uint32_t k = 0; k < 3; k++)
            bit |= fmts[i].len == strlen(formats[k]) && memcmp(fmts[i].ptr, formats[k], fmts[i].len) == 0 ? 1u << k : 0;
        if (bit == 0) {
            http_send_error(r, ADS_EINVAL, NULL, "formats[%u] must be banner, native or video", i);
            goto out;
        }
        q.formats |= bit;
    }
    for (uint32_t k = 1; tax.len > 0 && k < sizeof(taxonomies) / sizeof(taxonomies[0]); k++) {
        if (tax.len == strlen(taxonomies[k]) && memcmp(tax.ptr, taxonomies[k], tax.len) == 0)
            q.cattax = (enum cidx_taxonomy)k;
    }
    if ((v = doc_map_get(&ctx, "banner_sizes")) != NULL) {
        struct cidx_size *sizes;
        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > CIDX_Q_MAX_SIZES) {
            http_send_error(r, ADS_EINVAL, NULL, "banner_sizes must be an array of at most %d sizes", CIDX_Q_MAX_SIZES);
            goto out;
        }
        sizes = h2o_mem_alloc_pool(&r->req->pool, (v->via.array.size + 1) * sizeof(*sizes));
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            if (!camps_q_size(r, &v->via.array.ptr[i], "each of banner_sizes", &sizes[i]))
                goto out;
        }
        q.banner_sizes = sizes;
        q.nbanner_sizes = v->via.array.size;
    }
    if ((v = doc_map_get(&ctx, "video_size")) != NULL && !camps_q_size(r, v, "video_size", &q.video_size))
        goto out;
    if ((v = doc_map_get(&ctx, "private_auction")) != NULL)
        q.private_auction = v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
    if ((v = doc_map_get(&ctx, "now")) != NULL) {
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > 32503680000u) {
            http_send_error(r, ADS_EINVAL, NULL, "now must be unix seconds");
            goto out;
        }
        q.now = (int64_t)v->via.u64;
    }

    ix = catl_enter(r->app->catalog, r->hw->idx);
    catl_stats(r->app->catalog, &st); /* the revision of ix, or a newer one being published */
    if (ix == NULL) {
        catl_exit(r->app->catalog, r->hw->idx);
        http_send_error(r, ADS_ENOT_READY, NULL, "the campaign index is not built yet; retry shortly");
        goto out;
    }
    bits = h2o_mem_alloc_pool(&r->req->pool, (cidx_words(ix) + 1) * sizeof(*bits));
    n = cidx_eligible(ix, &q, bits);
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, 256 + (size_t)n * 72), 256 + (size_t)n * 72);
    docw_init(&w, out, &b);
    docw_map(&w, 3);
    docw_key(&w, "revision");
    docw_uint(&w, st.revision);
    docw_key(&w, "count");
    docw_uint(&w, n);
    docw_key(&w, "eligible");
    docw_array(&w, n);
    for (uint32_t i = 0; i < cidx_count(ix); i++) {
        if (bits[i / 64] & (1ull << (i % 64)))
            docw_cstr(&w, cidx_camp(ix, i)->id);
    }
    docw_array_end(&w);
    docw_map_end(&w);
    catl_exit(r->app->catalog, r->hw->idx);
    http_send_doc(r, 200, out, &b);
out:
    msgpack_zone_destroy(&zone);
}
