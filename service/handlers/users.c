/* /v1/users/{id}: thin handlers over the profile model (prof_) and store (usr_). */
#include <stdlib.h>
#include <string.h>

#include "adsmith/config.h"
#include "adsmith/handlers.h"
#include "adsmith/users.h"
#include "body.h"

/* Rendering starts in a small buffer; a profile near its limits takes the large one. */
#define USERS_RENDER_SMALL (16 * 1024)
#define USERS_RENDER_MAX (512 * 1024)

enum users_op { USERS_PUT, USERS_PATCH, USERS_DELETE };

struct users_job {
    struct http_job base;
    enum users_op op;
    enum doc_fmt out;
    uint64_t now;
    struct ads_diag diag;
    bool created;
    char source[PROF_SOURCE_MAX + 1]; /* DELETE by alias */
    char id[PROF_ID_MAX + 1];
    size_t id_len;
    struct profile result; /* PUT: the profile to write; PATCH: the merged profile */
    struct prof_patch patch;
};

/* The {id} of the path, checked; false after answering 400. */
static bool users_path_id(struct http_req *r, char *id, size_t *ret_len)
{
    if (http_param(r, id, PROF_ID_MAX + 1, ret_len) != 0 || prof_check_id(id, *ret_len) != 0) {
        http_send_error(
            r, ADS_EINVAL, "",
            "the user id in the path must be 1-%d bytes of percent-encoded UTF-8 without control characters",
            PROF_ID_MAX);
        return false;
    }
    return true;
}

/* The optional ?source= of an alias lookup; false after answering 400. */
static bool users_source(struct http_req *r, char *source)
{
    int rc = http_query(r, "source", source, PROF_SOURCE_MAX + 1);

    if (rc == ADS_ENOT_FOUND) {
        source[0] = '\0';
        return true;
    }
    if (rc != 0 || source[0] == '\0' || !doc_utf8_valid(source, strlen(source))) {
        http_send_error(r, ADS_EINVAL, "", "the source query parameter must be 1-%d bytes of UTF-8", PROF_SOURCE_MAX);
        return false;
    }
    return true;
}

static void users_send_profile(struct http_req *r, int status, enum doc_fmt fmt, const struct profile *p)
{
    size_t cap = USERS_RENDER_SMALL;
    struct docw w;
    struct buf b;

    for (;;) {
        buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, cap), cap);
        docw_init(&w, fmt, &b);
        prof_render(p, &w);
        if (!b.overflow || cap == USERS_RENDER_MAX)
            break;
        cap = USERS_RENDER_MAX;
    }
    if (b.overflow) {
        http_send_error(r, ADS_EINTERNAL, NULL, "the profile did not fit the response buffer");
        return;
    }
    http_send_doc(r, status, fmt, &b);
}

void users_get(struct http_req *r)
{
    char id[PROF_ID_MAX + 1], source[PROF_SOURCE_MAX + 1];
    struct store *s;
    struct profile *p;
    MDB_txn *txn;
    MDB_val val;
    size_t len;
    int rc;

    if (!users_path_id(r, id, &len) || !users_source(r, source) || (s = body_store(r)) == NULL)
        return;
    if ((rc = store_read_begin(s, &txn)) != 0) {
        http_send_error(r, rc, NULL, NULL);
        return;
    }
    p = h2o_mem_alloc_pool(&r->req->pool, sizeof(*p));
    if ((rc = usr_lookup(txn, s, source, id, len, &val)) == 0)
        rc = prof_decode(val.mv_data, val.mv_size, p);
    store_read_end(txn);
    if (rc == ADS_ENOT_FOUND)
        http_send_error(r, rc, NULL, source[0] != '\0' ? "no user holds this alias" : "no user has this id");
    else if (rc != 0)
        http_send_error(r, rc, NULL, NULL);
    else
        users_send_profile(r, 200, http_accept_fmt(r), p);
}

static int users_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct users_job *job = (struct users_job *)wj;
    MDB_val val;
    int rc;

    memset(&job->diag, 0, sizeof(job->diag)); /* a retried job must not keep an old message */
    switch (job->op) {
    case USERS_PUT: return usr_put(txn, s, &job->result, job->now, &job->diag, &job->created);
    case USERS_PATCH: return usr_patch(txn, s, &job->patch, job->now, &job->diag, &job->result);
    case USERS_DELETE:
        if (job->source[0] == '\0')
            return usr_delete(txn, s, job->id, job->id_len);
        /* By alias: find the owner in this transaction, so whoever holds the alias now is erased. */
        struct prof_view v;
        if ((rc = usr_lookup(txn, s, job->source, job->id, job->id_len, &val)) != 0 ||
            (rc = prof_view_open(val.mv_data, val.mv_size, &v)) != 0)
            return rc;
        char owner[PROF_ID_MAX + 1];
        size_t len = v.id_len <= PROF_ID_MAX ? v.id_len : PROF_ID_MAX;
        memcpy(owner, v.id, len); /* val is invalid once usr_delete() writes */
        return usr_delete(txn, s, owner, len);
    }
    return ADS_EINTERNAL;
}

static void users_finish(struct http_job *hj, struct http_req *r)
{
    struct users_job *job = (struct users_job *)hj;
    int rc = hj->wq.rc;

    if (rc == ADS_ENOT_FOUND)
        http_send_error(r, rc, NULL, "no user has this id");
    else if (rc != 0)
        body_send_diag(r, rc, &job->diag);
    else if (job->op == USERS_DELETE)
        http_send(r, 204, "application/json", "", 0);
    else
        users_send_profile(r, job->created ? 201 : 200, job->out, &job->result);
}

/* PUT, PATCH and DELETE: validate on this thread, write on the writer's. */
static void users_write(struct http_req *r, enum users_op op)
{
    struct users_job *job;
    msgpack_zone zone;
    msgpack_object doc;
    struct store *s;
    int rc = 0;

    if ((s = body_store(r)) == NULL)
        return;
    if ((job = calloc(1, sizeof(*job))) == NULL) {
        http_send_error(r, ADS_ENOMEM, NULL, NULL);
        return;
    }
    job->op = op;
    job->out = http_accept_fmt(r);
    job->now = body_now();
    if (!users_path_id(r, job->id, &job->id_len) || !users_source(r, job->source))
        goto fail;
    if (op != USERS_DELETE && job->source[0] != '\0') {
        http_send_error(r, ADS_EINVAL, "",
                        "?source= looks up an alias on GET and DELETE only; PUT and PATCH take the user id");
        goto fail;
    }
    if (op != USERS_DELETE) {
        msgpack_zone_init(&zone, 4096);
        if (!body_parse(r, &zone, &doc)) {
            msgpack_zone_destroy(&zone);
            goto fail;
        }
        if (op == USERS_PUT)
            rc = prof_from_doc(&doc, job->id, job->id_len, &job->result, &job->diag);
        else
            rc = prof_patch_from_doc(&doc, job->id, job->id_len, &job->patch, &job->diag);
        msgpack_zone_destroy(&zone);
        if (rc != 0) {
            body_send_diag(r, rc, &job->diag);
            goto fail;
        }
    }
    http_job_submit(r, &job->base, users_apply, users_finish);
    return;
fail:
    free(job);
}

void users_put(struct http_req *r)
{
    users_write(r, USERS_PUT);
}

void users_patch(struct http_req *r)
{
    users_write(r, USERS_PATCH);
}

void users_delete(struct http_req *r)
{
    users_write(r, USERS_DELETE);
}
