/*
 * catalog: keeps the compiled campaign index (cidx) current.
 *
 * One background thread owns the build. It rebuilds when a campaign write
 * commits (catl_notify), when the campaign write counter in LMDB moved (a
 * write from another process, such as `adsmith campaigns` tools, or a request
 * whose client left before the answer), and when the index says it goes stale
 * (a flight starts or ends, a daypart hour turns, a zone changes offset). It
 * re-decodes only campaigns whose revision changed since the last build.
 *
 * Request threads read the current index without locks: catl_enter() /
 * catl_exit() around each use (reader = the worker's index); a new index is
 * published atomically and the old one is freed once no reader holds it.
 *
 * With cfg->demo, the thread also seeds an empty data directory once storage
 * is open: an admin key (printed on stdout) and the demo campaign.
 */
#ifndef ADSMITH_CATALOG_H
#define ADSMITH_CATALOG_H

#include <stdint.h>

#include "adsmith/cidx.h"

struct app;
struct catl;

struct catl_stats {
    uint64_t builds;      /* indexes published */
    uint64_t campaigns;   /* active campaigns in the current index */
    uint64_t revision;    /* campaign write counter the current index reflects */
    int64_t built_at;     /* unix seconds */
    uint64_t build_us;    /* how long the last build took */
    int64_t valid_until;  /* unix seconds; the index is rebuilt then */
    uint64_t errors;      /* builds that failed (the previous index stayed) */
};

/** Starts the thread for @p readers request threads. 0, ADS_ENOMEM or a negative errno. */
int catl_start(struct app *app, unsigned readers, struct catl **ret);

/** Stops the thread and frees everything. Accepts NULL. After the request threads stopped. */
void catl_stop(struct catl *c);

/** Asks for a rebuild soon (a campaign write committed). Any thread; never blocks. */
void catl_notify(struct catl *c);

/** The current index (NULL before the first build) for reader @p reader; pair with catl_exit(). */
const struct cidx *catl_enter(struct catl *c, unsigned reader);
void catl_exit(struct catl *c, unsigned reader);

/** A snapshot of the counters. Any thread. */
void catl_stats(struct catl *c, struct catl_stats *ret);

/** Waits up to @p timeout_ms for an index that reflects campaign write counter @p revision; 0 or -ETIMEDOUT. */
int catl_wait_revision(struct catl *c, uint64_t revision, int timeout_ms);

#endif
