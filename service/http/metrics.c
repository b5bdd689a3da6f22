#include "adsmith/metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/err.h"

/* Statuses adsmith answers with get their own series; anything else is counted
 * under its class ("1xx" .. "5xx") so the label set stays fixed. */
static const int met_statuses[] = {200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 406,
                                   408, 409, 412, 413, 415, 422, 429, 431, 499, 500, 501, 502, 503, 504, 507};
#define MET_NKNOWN (sizeof(met_statuses) / sizeof(met_statuses[0]))
#define MET_NSTATUS (MET_NKNOWN + 5)

/* Histogram upper bounds in nanoseconds: 25 us .. 1 s, then +Inf. */
static const uint64_t met_bounds_ns[] = {25000,    50000,    100000,    250000,    500000,    1000000,   2500000,
                                         5000000,  10000000, 25000000,  50000000,  100000000, 250000000, 1000000000};
#define MET_NBOUNDS (sizeof(met_bounds_ns) / sizeof(met_bounds_ns[0]))

struct met_route_stats {
    atomic_uint_fast64_t status[MET_NSTATUS];
    atomic_uint_fast64_t bucket[MET_NBOUNDS + 1];
    atomic_uint_fast64_t sum_ns;
};

struct met_shard {
    _Alignas(64) atomic_int_fast64_t inflight;
    atomic_uint_fast64_t rejected;
    struct met_route_stats *routes; /* nroutes + 1 */
};

struct metrics {
    unsigned nshards;
    size_t nroutes;
    const struct met_route *labels;
    struct met_shard *shards;
};

int met_new(unsigned nshards, const struct met_route *routes, size_t nroutes, struct metrics **ret_metrics)
{
    struct metrics *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return ADS_ENOMEM;
    m->nshards = nshards;
    m->nroutes = nroutes;
    m->labels = routes;
    if ((m->shards = aligned_alloc(64, sizeof(*m->shards) * nshards)) == NULL)
        goto fail;
    for (unsigned i = 0; i < nshards; i++) {
        atomic_init(&m->shards[i].inflight, 0);
        atomic_init(&m->shards[i].rejected, 0);
        /* calloc's zero bytes are a valid initial state for these lock-free atomics. */
        if ((m->shards[i].routes = calloc(nroutes + 1, sizeof(struct met_route_stats))) == NULL) {
            m->nshards = i;
            goto fail;
        }
    }
    *ret_metrics = m;
    return 0;

fail:
    met_free(m);
    return ADS_ENOMEM;
}

void met_free(struct metrics *m)
{
    if (m == NULL)
        return;
    for (unsigned i = 0; m->shards != NULL && i < m->nshards; i++)
        free(m->shards[i].routes);
    free(m->shards);
    free(m);
}

void met_inflight_add(struct metrics *m, unsigned shard, int delta)
{
    atomic_fetch_add_explicit(&m->shards[shard].inflight, delta, memory_order_relaxed);
}

static size_t met_status_index(int status)
{
    for (size_t i = 0; i < MET_NKNOWN; i++) {
        if (met_statuses[i] == status)
            return i;
    }
    if (status < 100 || status > 599)
        status = 500;
    return MET_NKNOWN + (size_t)(status / 100 - 1);
}

void met_record(struct metrics *m, unsigned shard, size_t route, int status, uint64_t duration_ns)
{
    struct met_route_stats *rs = &m->shards[shard].routes[route <= m->nroutes ? route : m->nroutes];
    size_t b = 0;

    while (b < MET_NBOUNDS && duration_ns > met_bounds_ns[b])
        b++;
    atomic_fetch_add_explicit(&rs->status[met_status_index(status)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rs->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rs->sum_ns, duration_ns, memory_order_relaxed);
}

void met_conn_rejected(struct metrics *m, unsigned shard)
{
    atomic_fetch_add_explicit(&m->shards[shard].rejected, 1, memory_order_relaxed);
}

size_t met_render_bound(const struct metrics *m)
{
    /* Per route: one line per status and per bucket, plus sum and count; each
     * line is well under 256 bytes because labels come from our route table. */
    return (m->nroutes + 1) * (MET_NSTATUS + MET_NBOUNDS + 4) * 256 + 2048;
}

static void met_labels(const struct metrics *m, size_t route, struct buf *out)
{
    if (route == m->nroutes)
        buf_puts(out, "method=\"\",route=\"unmatched\"");
    else
        buf_printf(out, "method=\"%s\",route=\"%s\"", m->labels[route].method, m->labels[route].path);
}

/* Sums one route's counters over all shards. */
struct met_snap {
    uint64_t status[MET_NSTATUS];
    uint64_t bucket[MET_NBOUNDS + 1];
    uint64_t sum_ns;
};

static void met_snapshot(const struct metrics *m, size_t route, struct met_snap *ret)
{
    memset(ret, 0, sizeof(*ret));
    for (unsigned s = 0; s < m->nshards; s++) {
        const struct met_route_stats *rs = &m->shards[s].routes[route];
        for (size_t i = 0; i < MET_NSTATUS; i++)
            ret->status[i] += atomic_load_explicit(&rs->status[i], memory_order_relaxed);
        for (size_t b = 0; b <= MET_NBOUNDS; b++)
            ret->bucket[b] += atomic_load_explicit(&rs->bucket[b], memory_order_relaxed);
        ret->sum_ns += atomic_load_explicit(&rs->sum_ns, memory_order_relaxed);
    }
}

void met_render(const struct metrics *m, struct buf *out)
{
    struct met_snap snap;
    int64_t inflight = 0;
    uint64_t rejected = 0;

    buf_puts(out, "# HELP adsmith_http_requests_total HTTP requests answered, by route and status code.\n"
                  "# TYPE adsmith_http_requests_total counter\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        met_snapshot(m, r, &snap);
        for (size_t i = 0; i < MET_NSTATUS; i++) {
            if (snap.status[i] == 0)
                continue;
            buf_puts(out, "adsmith_http_requests_total{");
            met_labels(m, r, out);
            if (i < MET_NKNOWN)
                buf_printf(out, ",code=\"%d\"} %" PRIu64 "\n", met_statuses[i], snap.status[i]);
            else
                buf_printf(out, ",code=\"%zuxx\"} %" PRIu64 "\n", i - MET_NKNOWN + 1, snap.status[i]);
        }
    }

    buf_puts(out, "# HELP adsmith_http_request_duration_seconds Time from routing a request to handing its response to the "
                  "server.\n# TYPE adsmith_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        uint64_t cum = 0;
        met_snapshot(m, r, &snap);
        for (size_t b = 0; b <= MET_NBOUNDS; b++) {
            cum += snap.bucket[b];
            buf_puts(out, "adsmith_http_request_duration_seconds_bucket{");
            met_labels(m, r, out);
            if (b < MET_NBOUNDS)
                buf_printf(out, ",le=\"%g\"} %" PRIu64 "\n", (double)met_bounds_ns[b] / 1e9, cum);
            else
                buf_printf(out, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
        }
        buf_puts(out, "adsmith_http_request_duration_seconds_sum{");
        met_labels(m, r, out);
        buf_printf(out, "} %.9f\n", (double)snap.sum_ns / 1e9);
        buf_puts(out, "adsmith_http_request_duration_seconds_count{");
        met_labels(m, r, out);
        buf_printf(out, "} %" PRIu64 "\n", cum);
    }

    for (unsigned s = 0; s < m->nshards; s++) {
        inflight += atomic_load_explicit(&m->shards[s].inflight, memory_order_relaxed);
        rejected += atomic_load_explicit(&m->shards[s].rejected, memory_order_relaxed);
    }
    buf_printf(out,
               "# HELP adsmith_http_requests_in_flight Requests routed and not yet answered.\n"
               "# TYPE adsmith_http_requests_in_flight gauge\nadsmith_http_requests_in_flight %" PRId64 "\n"
               "# HELP adsmith_connections_rejected_total Connections closed at accept because max_connections was "
               "reached.\n# TYPE adsmith_connections_rejected_total counter\nadsmith_connections_rejected_total %" PRIu64
               "\n",
               inflight, rejected);
}
