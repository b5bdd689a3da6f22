#include "adsmith/app.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adsmith/config.h"
#include "adsmith/ledger.h"
#include "adsmith/log.h"
#include "adsmith/store.h"
#include "adsmith/users.h"
#include "adsmith/vgen.h"
#include "adsmith/wq.h"

struct app_storage {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled to stop the retry thread */
    bool stop;
    bool retrying; /* the retry thread was started */
    pthread_t tid;
    char error[256]; /* why storage is not open; "" once it is */
};

static bool app_storage_permanent(int rc)
{
    return rc == ADS_EDATA_TOO_NEW || rc == ADS_EDATA_INVALID;
}

/* One attempt; publishes the store on success. Returns the store_open() code. */
static int app_storage_try(struct app *app)
{
    struct app_storage *st = app->storage;
    struct store_open_info info;
    struct store *s = NULL;
    struct ads_diag d;
    struct lg_rec r;
    int rc;

    rc = store_open(app->cfg->data_dir, app->cfg->map_size, &d, &info, &s);
    pthread_mutex_lock(&st->mu);
    if (rc == 0)
        st->error[0] = '\0';
    else
        snprintf(st->error, sizeof(st->error), "%s", d.message);
    pthread_mutex_unlock(&st->mu);

    if (rc == 0) {
        atomic_store_explicit(&app->store, s, memory_order_release);
        lg_begin(&r, LG_INFO, "storage open");
        lg_str(&r, "data_dir", app->cfg->data_dir);
        lg_uint(&r, "schema", info.schema);
        lg_bool(&r, "created", info.created);
        lg_int(&r, "stale_readers_cleared", info.stale_readers_cleared);
        lg_end(&r);
        return 0;
    }
    lg_begin(&r, LG_ERROR, app_storage_permanent(rc) ? "storage refused" : "storage unavailable");
    lg_str(&r, "error", ads_err_name(rc));
    lg_str(&r, "detail", d.message);
    if (!app_storage_permanent(rc))
        lg_uint(&r, "retry_ms", app->cfg->storage_retry_ms);
    lg_end(&r);
    return rc;
}

static void *app_storage_retry_main(void *arg)
{
    struct app *app = arg;
    struct app_storage *st = app->storage;
    struct timespec until;
    int rc;

    pthread_mutex_lock(&st->mu);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += app->cfg->storage_retry_ms / 1000;
        until.tv_nsec += (long)(app->cfg->storage_retry_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!st->stop && pthread_cond_timedwait(&st->cv, &st->mu, &until) != ETIMEDOUT)
            ;
        if (st->stop)
            break;
        pthread_mutex_unlock(&st->mu);
        rc = app_storage_try(app);
        pthread_mutex_lock(&st->mu);
        if (rc == 0)
            break;
        if (app_storage_permanent(rc)) {
            /* Refused after start-up: stop the daemon the way an operator
             * would, and let the caller turn the refusal into exit status 1. */
            atomic_store(&app->refused, true);
            /* Process-directed: raise() would target this thread, where the
             * signal is blocked, and srv_run()'s sigwait() would never see it. */
            kill(getpid(), SIGTERM);
            break;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

int app_storage_open(struct app *app)
{
    struct app_storage *st = calloc(1, sizeof(*st));
    pthread_condattr_t ca;
    int rc;

    if (st == NULL)
        return ADS_ENOMEM;
    pthread_mutex_init(&st->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cv, &ca);
    pthread_condattr_destroy(&ca);
    app->storage = st;
    atomic_store(&app->store, NULL);

    if ((rc = app_storage_try(app)) == 0)
        return 0;
    if (app_storage_permanent(rc)) {
        atomic_store(&app->refused, true);
        return rc;
    }
    if ((rc = pthread_create(&st->tid, NULL, app_storage_retry_main, app)) != 0)
        return -rc;
    st->retrying = true;
    return 0;
}

void app_storage_close(struct app *app)
{
    struct app_storage *st = app->storage;

    if (st == NULL)
        return;
    if (st->retrying) {
        pthread_mutex_lock(&st->mu);
        st->stop = true;
        pthread_cond_signal(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->tid, NULL);
    }
    store_free(atomic_exchange(&app->store, NULL));
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st);
    app->storage = NULL;
}

void app_storage_error(struct app *app, char *ret_msg, size_t size)
{
    struct app_storage *st = app->storage;

    if (st == NULL) {
        snprintf(ret_msg, size, "storage was never opened");
        return;
    }
    pthread_mutex_lock(&st->mu);
    snprintf(ret_msg, size, "%s", st->error);
    pthread_mutex_unlock(&st->mu);
}

/* Expired event ids are swept in slices, each riding along with a commit (or
 * a commit of its own) about every 100 ms: up to 100,000 expiries a second. */
#define APP_SWEEP_SLICE 10000

static struct store *app_writer_store(void *arg)
{
    return app_store(arg);
}

static int app_writer_maintain(MDB_txn *txn, struct store *s, void *arg)
{
    struct app *app = arg;
    size_t deleted;
    uint32_t released;
    int rc;

    /* Token reservations past their time return to their packages. */
    if ((rc = ledger_expire(txn, s, (int64_t)time(NULL), APP_SWEEP_SLICE, &released)) != 0)
        return rc;
    if (app->cfg->event_dedup_s == 0)
        return 0;
    return usr_sweep_events(txn, s, (uint64_t)time(NULL), app->cfg->event_dedup_s, APP_SWEEP_SLICE, &deleted);
}

int app_writer_start(struct app *app)
{
    return wq_new(app_writer_store, app_writer_maintain, app, app->cfg->write_queue_max, &app->wq);
}

void app_writer_stop(struct app *app)
{
    wq_free(app->wq);
    app->wq = NULL;
}

struct camp_rules app_campaign_rules(const struct app *app)
{
    static const char *const builtin[] = {"builtin"};
    const char *const *names;
    size_t n;

    if (app->vgen == NULL)
        return (struct camp_rules){builtin, 1};
    names = vgen_backend_names(app->vgen, &n);
    return (struct camp_rules){names, n};
}
