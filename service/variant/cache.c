/* The thread that rebuilds the serving snapshot of variants (variant.h) and publishes it through a hold. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "adsmith/app.h"
#include "adsmith/camps.h"
#include "adsmith/hold.h"
#include "adsmith/variant.h"

#define VPICK_POLL_MS 100 /* how often the write counter is looked at */

struct vpick_cache {
    struct app *app;
    struct hold *holder; /* of struct vpick_set */
    uint32_t refresh_ms;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stop;
    atomic_uint_fast64_t builds;
};

static uint64_t vpick_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void vpick_set_free_v(void *p)
{
    vpick_set_free(p);
}

static void *vpick_main(void *arg)
{
    struct vpick_cache *c = arg;
    uint64_t built_rev = 0, built_camp_rev = 0, built_at = 0;
    bool built = false;
    struct timespec until;

    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        struct store *s;
        MDB_txn *txn;
        uint64_t rev = 0, camp_rev = 0, now;

        pthread_mutex_unlock(&c->mu);
        /* Once shutdown begins the store is about to close: the thread ends (its read slot with it). */
        if (atomic_load(&c->app->draining))
            return NULL;
        if ((s = app_store(c->app)) != NULL && store_read_begin(s, &txn) == 0) {
            struct vpick_set *set = NULL;
            now = vpick_now_ms();
            /* Campaign writes matter too: the snapshot holds their slots and fallback locales. */
            if (var_revision(txn, s, &rev) == 0 && camps_revision(txn, s, &camp_rev) == 0 &&
                (!built || rev != built_rev || camp_rev != built_camp_rev || now - built_at >= c->refresh_ms) &&
                vpick_build(txn, s, &set) == 0) {
                store_read_end(txn);
                txn = NULL;
                hold_swap(c->holder, set);
                built = true;
                built_rev = rev;
                built_camp_rev = camp_rev;
                built_at = now;
                atomic_fetch_add(&c->builds, 1);
            }
            if (txn != NULL)
                store_read_end(txn);
        }
        pthread_mutex_lock(&c->mu);
        if (c->stop)
            break;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += VPICK_POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->wake, &c->mu, &until);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int vpick_cache_new(struct app *app, unsigned readers, uint32_t refresh_ms, struct vpick_cache **ret)
{
    struct vpick_cache *c;
    int rc;

    if (app == NULL || readers == 0 || readers > HOLD_MAX_READERS || refresh_ms == 0)
        return ADS_EINVAL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return ADS_ENOMEM;
    c->app = app;
    c->refresh_ms = refresh_ms;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    if ((rc = hold_new(readers, NULL, vpick_set_free_v, &c->holder)) != 0) {
        vpick_cache_free(c);
        return rc;
    }
    if ((rc = pthread_create(&c->thread, NULL, vpick_main, c)) != 0) {
        vpick_cache_free(c);
        return -rc;
    }
    c->started = true;
    *ret = c;
    return 0;
}

void vpick_cache_free(struct vpick_cache *c)
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
    hold_free(c->holder);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const struct vpick_set *vpick_enter(struct vpick_cache *c, unsigned reader)
{
    return hold_enter(c->holder, reader);
}

void vpick_exit(struct vpick_cache *c, unsigned reader)
{
    hold_exit(c->holder, reader);
}

uint64_t vpick_builds(struct vpick_cache *c)
{
    return atomic_load(&c->builds);
}
