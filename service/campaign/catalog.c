#include "adsmith/catalog.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adsmith/app.h"
#include "adsmith/camps.h"
#include "adsmith/config.h"
#include "adsmith/doc.h"
#include "adsmith/hold.h"
#include "adsmith/keys.h"
#include "adsmith/log.h"

#define CATL_POLL_MS 1000 /* how often the write counter is looked at without a notification */

/* A compiled record kept between builds, for a campaign at one revision. */
struct catl_cached {
    MDB_val key; /* the campaign id, in key.mv_data's own allocation */
    uint64_t rev, updated_at;
    struct cidx_camp *camp;
};

/* The records of the last build's active campaigns, in LMDB key order. */
struct catl_cache {
    struct catl_cached *v;
    size_t n, cap;
};

struct catl {
    struct app *app;
    struct catl_cache cache; /* the build thread's own */
    struct hold *holder; /* of struct cidx */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t wake;  /* the thread waits here */
    pthread_cond_t built; /* catl_wait_revision() waits here */
    bool stop, pending, seeded;
    struct catl_stats stats;
};

static uint64_t catl_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void catl_log_failure(const char *msg, int rc, const char *detail)
{
    struct lg_rec r;

    lg_begin(&r, LG_ERROR, msg);
    lg_str(&r, "error", ads_err_name(rc));
    lg_str(&r, "detail", detail);
    lg_end(&r);
}

/* ---- demo seeding ---- */

static int catl_seed_campaign(MDB_txn *txn, struct store *s, int64_t now)
{
    struct ads_diag d = {{0}, {0}};
    struct camps_rec rec = {.rev = 1};
    msgpack_zone zone;
    msgpack_object doc;
    msgpack_sbuffer sb;
    int rc;

    msgpack_zone_init(&zone, 4096);
    msgpack_sbuffer_init(&sb);
    if ((rc = doc_parse(DOC_JSON, camp_demo_json, camp_demo_json_len, &zone, &doc, &d)) != 0)
        goto out;
    camps_rec_from_doc(&doc, &rec);
    if ((rc = camps_pack_doc(&doc, &sb)) != 0)
        goto out;
    rec.created_at = rec.updated_at = (uint64_t)now;
    rec.doc = sb.data;
    rec.doc_len = sb.size;
    rc = camps_put(txn, s, &rec, NULL);
out:
    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&zone);
    return rc;
}

/* With cfg->demo: an admin key when there is none, the demo campaign when there is no campaign. */
static void catl_seed(struct store *s)
{
    struct ads_diag d = {{0}, {0}};
    char token[KEYS_TOKEN_LEN + 1];
    struct keys_info info;
    MDB_txn *txn;
    MDB_stat st;
    size_t nkeys = 0;
    bool key_made = false, camp_made = false;
    int64_t now = (int64_t)time(NULL);
    int rc;

    if ((rc = mdb_txn_begin(store_env(s), NULL, 0, &txn)) != 0) {
        catl_log_failure("cannot seed the demo data", store_err(rc), mdb_strerror(rc));
        return;
    }
    if ((rc = keys_count(txn, s, &nkeys)) == 0 && nkeys == 0) {
        if ((rc = keys_create(txn, s, KEYS_ADMIN, NULL, "demo", (uint64_t)now, &d, token, &info)) == 0)
            key_made = true;
    }
    if (rc == 0 && (rc = mdb_stat(txn, store_dbi(s, STORE_DB_CAMPAIGNS), &st)) == 0 && st.ms_entries == 0) {
        if ((rc = catl_seed_campaign(txn, s, now)) == 0)
            camp_made = true;
    } else if (rc > 0) {
        rc = store_err(rc);
    }
    if (rc != 0)
        mdb_txn_abort(txn);
    else
        rc = store_err(mdb_txn_commit(txn));
    if (rc != 0) {
        catl_log_failure("cannot seed the demo data", rc, d.message[0] != '\0' ? d.message : ads_err_message(rc));
        return;
    }
    if (key_made) {
        /* The one place the key is shown: the log never holds it. */
        printf("demo admin key: %s\n(send it as Authorization: Bearer <key>; it is shown once)\n", token);
        fflush(stdout);
        struct lg_rec r;
        lg_begin(&r, LG_INFO, "demo key created");
        lg_str(&r, "key_id", info.who.id);
        lg_str(&r, "role", "admin");
        lg_str(&r, "where", "printed on stdout");
        lg_end(&r);
    }
    if (camp_made) {
        struct lg_rec r;
        lg_begin(&r, LG_INFO, "demo campaign stored");
        lg_str(&r, "campaign", "demo-coffee");
        lg_end(&r);
    }
}

/* ---- building ---- */

/* Compiles the stored document of @p rec into an index record. */
static int catl_compile(const struct camps_rec *rec, struct cidx_camp **ret)
{
    struct ads_diag d = {{0}, {0}};
    msgpack_zone zone;
    msgpack_object doc;
    size_t off = 0;
    int rc;

    msgpack_zone_init(&zone, 4096);
    if (msgpack_unpack(rec->doc, rec->doc_len, &off, &zone, &doc) != MSGPACK_UNPACK_SUCCESS)
        rc = ADS_EDATA_INVALID;
    else
        rc = cidx_camp_from_doc(&doc, ret, &d);
    msgpack_zone_destroy(&zone);
    return rc;
}

static void catl_cache_free(struct catl_cache *k)
{
    for (size_t i = 0; i < k->n; i++) {
        free(k->v[i].key.mv_data);
        cidx_camp_free(k->v[i].camp);
    }
    free(k->v);
    *k = (struct catl_cache){0};
}

static int catl_cache_push(struct catl_cache *k, struct catl_cached e)
{
    if (k->n == k->cap) {
        size_t cap = k->cap == 0 ? 256 : k->cap * 2;
        struct catl_cached *v = realloc(k->v, cap * sizeof(*v));
        if (v == NULL)
            return ADS_ENOMEM;
        k->v = v;
        k->cap = cap;
    }
    k->v[k->n++] = e;
    return 0;
}

/*
 * The compiled record of active campaign @p rec (LMDB key @p key), for the
 * builder: a copy of the cached one when the campaign has not changed since
 * the last build, else freshly compiled. The cache entry moves from @p old
 * (walked in step with the cursor: both are in key order) to @p next.
 */
static int catl_record(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key, const struct camps_rec *rec,
                       struct catl_cache *old, size_t *pos, struct catl_cache *next, struct cidx_camp **ret)
{
    struct catl_cached e = {{0, NULL}, rec->rev, rec->updated_at, NULL};
    int rc;

    while (*pos < old->n && mdb_cmp(txn, dbi, &old->v[*pos].key, key) < 0)
        (*pos)++;
    if (*pos < old->n && mdb_cmp(txn, dbi, &old->v[*pos].key, key) == 0 && old->v[*pos].rev == rec->rev &&
        old->v[*pos].updated_at == rec->updated_at) {
        e = old->v[*pos];
        old->v[(*pos)++] = (struct catl_cached){{0, NULL}, 0, 0, NULL};
    } else {
        if ((rc = catl_compile(rec, &e.camp)) != 0)
            return rc;
        e.key.mv_size = key->mv_size;
        if ((e.key.mv_data = malloc(key->mv_size)) == NULL) {
            cidx_camp_free(e.camp);
            return ADS_ENOMEM;
        }
        memcpy(e.key.mv_data, key->mv_data, key->mv_size);
    }
    if ((rc = cidx_camp_clone(e.camp, ret)) != 0 || (rc = catl_cache_push(next, e)) != 0) {
        free(e.key.mv_data);
        cidx_camp_free(e.camp);
        return rc;
    }
    return 0;
}

/*
 * Reads every active campaign and publishes a new index. 0 or an error (the
 * old index stays). Only campaigns written since the last build are decoded
 * again; the others are copies of the records the cache keeps (which doubles
 * the memory records take: README "Benchmarks" gives the sizes).
 */
static int catl_build(struct catl *c, struct store *s)
{
    uint64_t t0 = catl_now_us(), rev = 0;
    struct catl_cache next = {0};
    struct cidx_builder *b = NULL;
    struct cidx_camp *camp;
    struct cidx *ix = NULL;
    struct camps_rec rec;
    MDB_cursor *cur;
    MDB_val key, val;
    MDB_txn *txn;
    MDB_dbi dbi;
    int64_t now = (int64_t)time(NULL);
    size_t pos = 0;
    int rc;

    if ((rc = cidx_builder_new(&b)) != 0)
        return rc;
    if ((rc = store_read_begin(s, &txn)) != 0) {
        cidx_builder_free(b);
        return rc;
    }
    dbi = store_dbi(s, STORE_DB_CAMPAIGNS);
    if ((rc = camps_revision(txn, s, &rev)) != 0 || (rc = store_err(mdb_cursor_open(txn, dbi, &cur))) != 0) {
        store_read_end(txn);
        cidx_builder_free(b);
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        int crc;
        if (key.mv_size > CAMP_ID_MAX || camps_decode(&val, &rec) != 0 || strcmp(rec.status, "active") != 0)
            continue;
        if ((crc = catl_record(txn, dbi, &key, &rec, &c->cache, &pos, &next, &camp)) == 0)
            crc = cidx_builder_add(b, camp);
        if (crc != 0) {
            struct lg_rec r;
            lg_begin(&r, LG_WARN, "campaign left out of the index");
            lg_strn(&r, "campaign", key.mv_data, key.mv_size);
            lg_str(&r, "error", ads_err_name(crc));
            lg_end(&r);
        }
    }
    mdb_cursor_close(cur);
    store_read_end(txn);
    /* The new cache matches the store whatever happens next; what is left of
     * the old one was changed or is no longer active. */
    catl_cache_free(&c->cache);
    c->cache = next;
    if (rc != MDB_NOTFOUND || (rc = cidx_build(b, now, &ix)) != 0) {
        cidx_builder_free(b);
        return rc > 0 ? store_err(rc) : rc;
    }
    cidx_builder_free(b);

    hold_swap(c->holder, ix); /* waits until no reader holds the old index, then frees it */
    /* ix stays valid: only this thread swaps it out. */
    pthread_mutex_lock(&c->mu);
    c->stats.builds++;
    c->stats.campaigns = cidx_count(ix);
    c->stats.revision = rev;
    c->stats.built_at = now;
    c->stats.build_us = catl_now_us() - t0;
    c->stats.valid_until = cidx_valid_until(ix);
    pthread_cond_broadcast(&c->built);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static void *catl_main(void *arg)
{
    struct catl *c = arg;
    struct store *s;
    struct timespec until;
    uint64_t rev;
    MDB_txn *txn;
    bool built = false;
    int rc;

    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        if (!c->pending) {
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += CATL_POLL_MS / 1000;
            pthread_cond_timedwait(&c->wake, &c->mu, &until);
        }
        if (c->stop)
            break;
        c->pending = false;
        pthread_mutex_unlock(&c->mu);

        if ((s = app_store(c->app)) != NULL) {
            if (c->app->cfg->demo && !c->seeded) {
                c->seeded = true;
                catl_seed(s);
            }
            rev = 0;
            if (store_read_begin(s, &txn) == 0) {
                camps_revision(txn, s, &rev);
                store_read_end(txn);
            }
            pthread_mutex_lock(&c->mu);
            bool stale = !built || rev != c->stats.revision || (int64_t)time(NULL) >= c->stats.valid_until;
            pthread_mutex_unlock(&c->mu);
            if (stale) {
                if ((rc = catl_build(c, s)) == 0) {
                    built = true;
                } else {
                    pthread_mutex_lock(&c->mu);
                    c->stats.errors++;
                    pthread_mutex_unlock(&c->mu);
                    catl_log_failure("cannot build the campaign index", rc, ads_err_message(rc));
                }
            }
        }
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void catl_index_free(void *ix)
{
    cidx_free(ix);
}

int catl_start(struct app *app, unsigned readers, struct catl **ret)
{
    struct catl *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL)
        return ADS_ENOMEM;
    c->app = app;
    c->pending = true;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    pthread_cond_init(&c->built, NULL);
    if ((rc = hold_new(readers, NULL, catl_index_free, &c->holder)) != 0) {
        catl_stop(c);
        return rc;
    }
    if ((rc = pthread_create(&c->thread, NULL, catl_main, c)) != 0) {
        catl_stop(c);
        return -rc;
    }
    c->started = true;
    *ret = c;
    return 0;
}

void catl_stop(struct catl *c)
{
    if (c == NULL)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    if (c->holder != NULL)
        hold_free(c->holder);
    catl_cache_free(&c->cache);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->built);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void catl_notify(struct catl *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->pending = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->mu);
}

const struct cidx *catl_enter(struct catl *c, unsigned reader)
{
    return hold_enter(c->holder, reader);
}

void catl_exit(struct catl *c, unsigned reader)
{
    hold_exit(c->holder, reader);
}

void catl_stats(struct catl *c, struct catl_stats *ret)
{
    pthread_mutex_lock(&c->mu);
    *ret = c->stats;
    pthread_mutex_unlock(&c->mu);
}

int catl_wait_revision(struct catl *c, uint64_t revision, int timeout_ms)
{
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    while (c->stats.revision < revision && rc == 0)
        rc = pthread_cond_timedwait(&c->built, &c->mu, &until);
    rc = c->stats.revision >= revision ? 0 : -ETIMEDOUT;
    pthread_mutex_unlock(&c->mu);
    return rc;
}
