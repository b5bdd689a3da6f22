/*
 * app: the handles every request handler may use, shared by all worker threads,
 * and the life cycle of storage.
 *
 * Built once by `adsmith serve` before the server starts and torn down after it
 * stops. Storage opens at start; if it cannot (a read-only or full disk, wrong
 * permissions, a volume not mounted yet) the daemon still serves /healthz,
 * /readyz answers 503 with the reason, and a background thread retries every
 * storage_retry_ms. Data that can never be read (a newer schema, a directory
 * that is not adsmith's) is refused outright.
 */
#ifndef ADSMITH_APP_H
#define ADSMITH_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/campaign.h"

struct cfg;
struct store;
struct metrics;
struct app_storage;
struct wq;
struct mdl;
struct lrn;
struct vgen;
struct vpick_cache;

struct app {
    const struct cfg *cfg;
    struct metrics *metrics;       /* one shard per worker thread */
    int64_t started_at;            /* unix seconds */
    atomic_bool draining;          /* set when shutdown begins: /readyz turns 503 */
    atomic_long connections;       /* open client connections, all workers */
    atomic_ulong reloads;          /* SIGHUP reloads handled */
    _Atomic(struct store *) store; /* read with app_store() */
    atomic_bool refused;           /* storage holds data this build can never read */
    struct app_storage *storage;   /* retry state; private to service/app/app.c */
    struct wq *wq;                 /* the write queue (profile and event writes) */
    struct camp_validator *campaign_validator; /* the campaign schema and rules; immutable */
    struct catl *catalog;          /* the compiled campaign index and its builder */
    struct mdl *model;             /* the ranking model and its hot reload */
    struct lrn *learner;           /* online learning (learn.h); NULL when online_learning is off */
    struct vgen *vgen;             /* the variant pipeline (vgen.h); NULL until started */
    struct vpick_cache *variants;  /* approved variants for the bid path (variant.h); NULL: base creatives */
};

/** What campaign validation needs to know about this server (its generator backends). */
struct camp_rules app_campaign_rules(const struct app *app);

/**
 * Opens storage from app->cfg (data_dir, map_size) and logs the outcome.
 * @return 0 when storage is open, or could not open now and a thread retries
 *   every storage_retry_ms (app_store() tells which);
 *   ADS_EDATA_TOO_NEW or ADS_EDATA_INVALID when the data can never be read by
 *   this build (the caller should exit 1);
 *   ADS_ENOMEM or a negative errno when the retry thread could not start.
 * If a retry later finds data it can never read, it sets app->refused and
 * raises SIGTERM, so the server shuts down and the caller exits 1.
 * Block the signals the server waits for before calling: the retry thread
 * inherits the calling thread's signal mask.
 */
int app_storage_open(struct app *app);

/** Stops the retry thread (if any) and closes storage. Call after the server stopped. */
void app_storage_close(struct app *app);

/**
 * The open store, or NULL while storage is not open. Handlers that need storage
 * answer 503 not_ready on NULL. The pointer stays valid until app_storage_close().
 */
static inline struct store *app_store(struct app *app)
{
    return atomic_load_explicit(&app->store, memory_order_acquire);
}

/**
 * Starts the writer thread (app->wq) that applies profile and event writes,
 * and sweeps expired event ids. Call after app_storage_open(), with signals
 * blocked. Returns 0, ADS_ENOMEM or a negative errno.
 */
int app_writer_start(struct app *app);

/** Applies the writes still queued and stops the writer. After the server stopped. Accepts app->wq NULL. */
void app_writer_stop(struct app *app);

/** Copies why storage is not open ("" when it is) into @p ret_msg (@p size bytes). Thread-safe. */
void app_storage_error(struct app *app, char *ret_msg, size_t size);

#endif
