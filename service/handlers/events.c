/* POST /v1/events: a thin handler over evt_ (validation) and usr_ingest (the store). */
#include <stdlib.h>

#include "adsmith/config.h"
#include "adsmith/handlers.h"
#include "adsmith/users.h"
#include "body.h"

struct events_job {
    struct http_job base;
    uint64_t now;
    uint32_t half_life, dedup_s;
    struct usr_ingest_result res;
    size_t n;
    struct evt events[];
};

static int events_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct events_job *job = (struct events_job *)wj;
    return usr_ingest(txn, s, job->events, job->n, job->half_life, job->dedup_s, job->now, &job->res);
}

static void events_finish(struct http_job *hj, struct http_req *r)
{
    struct events_job *job = (struct events_job *)hj;
    char *mem;
    struct docw w;
    struct buf b;
    enum doc_fmt fmt = http_accept_fmt(r);

    if (hj->wq.rc != 0) {
        http_send_error(r, hj->wq.rc, NULL, NULL);
        return;
    }
    mem = h2o_mem_alloc_pool(&r->req->pool, 128);
    buf_init(&b, mem, 128);
    docw_init(&w, fmt, &b);
    docw_map(&w, 3);
    docw_key(&w, "accepted");
    docw_uint(&w, job->res.accepted);
    docw_key(&w, "duplicates");
    docw_uint(&w, job->res.duplicates);
    docw_key(&w, "unresolved");
    docw_uint(&w, job->res.unresolved);
    docw_map_end(&w);
    http_send_doc(r, 200, fmt, &b);
}

void events_post(struct http_req *r)
{
    struct events_job *job;
    struct ads_diag diag = {{0}, {0}};
    msgpack_zone zone;
    msgpack_object doc;
    size_t n;
    int rc;

    if (body_store(r) == NULL)
        return;
    msgpack_zone_init(&zone, 16384);
    if (!body_parse(r, &zone, &doc))
        goto out;
    n = evt_batch_count(&doc);
    if ((job = malloc(sizeof(*job) + (n > 0 ? n : 1) * sizeof(job->events[0]))) == NULL) {
        http_send_error(r, ADS_ENOMEM, NULL, NULL);
        goto out;
    }
    job->base = (struct http_job){0}; /* no release hook; the rest is set by http_job_submit() */
    job->now = body_now();
    job->half_life = r->app->cfg->interest_half_life_s;
    job->dedup_s = r->app->cfg->event_dedup_s;
    if ((rc = evt_batch_from_doc(&doc, job->now, job->events, &job->n, &diag)) != 0) {
        free(job);
        body_send_diag(r, rc, &diag);
        goto out;
    }
    http_job_submit(r, &job->base, events_apply, events_finish);
out:
    msgpack_zone_destroy(&zone);
}
