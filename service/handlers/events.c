/* POST /v1/events: a thin handler over evt_ (validation) and usr_ingest (the
 * store); with online learning on, what the learner needs goes to it (lrn_)
 * once the batch is committed. */
#include <stdbool.h>
#include <stdlib.h>

#include "adsmith/config.h"
#include "adsmith/handlers.h"
#include "adsmith/learn.h"
#include "adsmith/users.h"
#include "body.h"

struct events_job {
    struct http_job base;
    struct lrn *learner;     /* with learn: the app's learner */
    struct lrn_batch *learn; /* impressions with features and clicks, for the learner; NULL: none */
    bool applied;            /* events_apply ran (set on the writer thread, read after done) */
    uint64_t now;
    uint32_t half_life, dedup_s;
    struct usr_ingest_result res;
    size_t n;
    struct evt events[];
};

static int events_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct events_job *job = (struct events_job *)wj;
    job->applied = true;
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

/* Runs once the job is over, committed or not (or refused by the queue). */
static void events_release(struct http_job *hj)
{
    struct events_job *job = (struct events_job *)hj;

    /* Only a committed batch teaches the learner; a full learner queue drops it (counted there). */
    if (job->applied && hj->wq.rc == 0)
        lrn_submit(job->learner, job->learn);
    else
        lrn_batch_free(job->learn);
    job->learn = NULL;
}

/*
 * The learner's share of a validated batch: impressions with features (known
 * by impression_id, else id) and clicks naming an impression_id. NULL when
 * there is none, or when memory runs out (learning is best effort; the
 * events are still written).
 */
static struct lrn_batch *events_learn_batch(const msgpack_object *doc, const struct evt *ev, size_t n)
{
    struct ctr_value v[EVT_MAX_FEATURES];
    struct lrn_batch *b = NULL;
    uint32_t nv;

    for (size_t i = 0; i < n; i++) {
        const struct evt *e = &ev[i];
        const char *key = e->impression_id[0] != '\0' ? e->impression_id : e->id;
        bool imp = e->type == EVT_IMPRESSION && e->has_features && key[0] != '\0';
        bool click = e->type == EVT_CLICK && e->impression_id[0] != '\0';
        if (!imp && !click)
            continue;
        if (b == NULL && lrn_batch_new((uint32_t)n, &b) != 0)
            return NULL;
        if (imp && evt_features_from_doc(doc, i, v, &nv) == 0)
            lrn_batch_impression(b, key, v, nv);
        else if (click)
            lrn_batch_click(b, key);
    }
    return b;
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
    job->base = (struct http_job){0}; /* the rest is set by http_job_submit() */
    job->learner = r->app->learner;
    job->learn = NULL;
    job->applied = false;
    job->now = body_now();
    job->half_life = r->app->cfg->interest_half_life_s;
    job->dedup_s = r->app->cfg->event_dedup_s;
    if ((rc = evt_batch_from_doc(&doc, job->now, job->events, &job->n, &diag)) != 0) {
        free(job);
        body_send_diag(r, rc, &diag);
        goto out;
    }
    if (job->learner != NULL && (job->learn = events_learn_batch(&doc, job->events, job->n)) != NULL)
        job->base.release = events_release;
    http_job_submit(r, &job->base, events_apply, events_finish);
out:
    msgpack_zone_destroy(&zone);
}
