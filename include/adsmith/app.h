/*
 * app: the handles every request handler may use, shared by all worker threads.
 *
 * Built once by `adsmith serve` before the server starts and torn down after it
 * stops; nothing here changes while workers run, except the atomics.
 */
#ifndef ADSMITH_APP_H
#define ADSMITH_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct cfg;
struct store;
struct metrics;

struct app {
    const struct cfg *cfg;
    struct store *store;     /* open for the app's whole life */
    struct metrics *metrics; /* one shard per worker thread */
    int64_t started_at;      /* unix seconds */
    atomic_bool draining;    /* set when shutdown begins: /readyz turns 503 */
    atomic_long connections; /* open client connections, all workers */
    atomic_ulong reloads;    /* SIGHUP reloads handled */
};

#endif
