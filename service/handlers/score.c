/*
 * POST /v1/score: a thin handler over score.h. Admin keys only, like
 * /v1/users: the answer is derived from a user's stored profile.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/camps.h"
#include "adsmith/catalog.h"
#include "adsmith/handlers.h"
#include "adsmith/mdl.h"
#include "adsmith/score.h"
#include "adsmith/users.h"
#include "body.h"

/* Per worker: the parsed request and its result (about 150 KiB together), reused request after request. */
struct score_thread {
    struct score_req *req;
    struct score_result res;
};

static __thread struct score_thread *score_tls;
static pthread_once_t score_tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t score_tls_key; /* frees a worker's memory when the worker exits */

static void score_thread_free(void *p)
{
    struct score_thread *t = p;

    if (t == NULL)
        return;
    score_req_free(t->req);
    free(t);
}

static void score_tls_init(void)
{
    (void)pthread_key_create(&score_tls_key, score_thread_free);
}

static struct score_thread *score_thread_get(void)
{
    struct score_thread *t = score_tls;

    if (t != NULL)
        return t;
    pthread_once(&score_tls_once, score_tls_init);
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    if (score_req_new(&t->req) != 0 || pthread_setspecific(score_tls_key, t) != 0) {
        score_thread_free(t);
        return NULL;
    }
    score_tls = t;
    return t;
}

struct score_read {
    MDB_txn *txn;
    struct store *s;
};

static bool score_exists(void *ctx, const char *id)
{
    struct score_read *rd = ctx;
    struct camps_rec rec;

    return camps_get(rd->txn, rd->s, id, &rec) == 0;
}

void score_post(struct http_req *r)
{
    struct score_thread *t = score_thread_get();
    struct ads_diag diag = {{0}, {0}};
    struct score_read rd = {NULL, NULL};
    struct prof_view pv;
    const struct prof_view *pvp = NULL;
    enum doc_fmt fmt = http_accept_fmt(r);
    const char *uid, *src;
    size_t uid_len, src_len;
    msgpack_zone zone;
    msgpack_object doc;
    struct docw w;
    struct buf b;
    size_t cap;
    int rc;

    if (t == NULL) {
        http_send_error(r, ADS_ENOMEM, NULL, NULL);
        return;
    }
    msgpack_zone_init(&zone, 8192);
    if (!body_parse(r, &zone, &doc))
        goto out;
    if ((rc = score_req_parse(t->req, &doc, &diag)) != 0) {
        body_send_diag(r, rc, &diag);
        goto out;
    }
    if ((rd.s = body_store(r)) == NULL)
        goto out;
    if ((rc = store_read_begin(rd.s, &rd.txn)) != 0) {
        http_send_error(r, rc, NULL, "storage could not be read; retry");
        goto out;
    }
    score_req_user(t->req, &uid, &uid_len, &src, &src_len);
    if (uid != NULL) {
        char source[PROF_SOURCE_MAX + 1];
        MDB_val v;
        if (src != NULL) {
            memcpy(source, src, src_len);
            source[src_len] = '\0';
        }
        if (usr_lookup(rd.txn, rd.s, src != NULL ? source : NULL, uid, uid_len, &v) == 0 &&
            prof_view_open(v.mv_data, v.mv_size, &pv) == 0)
            pvp = &pv;
    }
    {
        const struct cidx *ix = catl_enter(r->app->catalog, r->hw->idx);
        const struct rank_model *m = mdl_enter(r->app->model, r->hw->idx);
        struct score_env env = {ix, m, pvp, score_exists, &rd, (int64_t)body_now()};

        rc = score_run(t->req, &env, &t->res);
        mdl_exit(r->app->model, r->hw->idx);
        catl_exit(r->app->catalog, r->hw->idx);
    }
    store_read_end(rd.txn);
    if (rc != 0) {
        http_send_error(r, rc, NULL, NULL);
        goto out;
    }
    /* Per candidate at most its id escaped (6 x 64 bytes) and about 120 bytes of members. */
    cap = 512 + (size_t)t->res.n * 512;
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, cap), cap);
    docw_init(&w, fmt, &b);
    score_write(t->req, &t->res, &w);
    if (b.overflow) {
        http_send_error(r, ADS_EINTERNAL, NULL, NULL);
        goto out;
    }
    http_send_doc(r, 200, fmt, &b);
out:
    msgpack_zone_destroy(&zone);
}
