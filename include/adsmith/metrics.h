/*
 * met: request metrics, sharded per worker thread.
 *
 * Each worker writes only its own shard (relaxed atomics, no contention);
 * met_render() sums the shards when /metrics is scraped. Memory is fixed at
 * met_new(): routes x status classes x histogram buckets, whatever clients send.
 */
#ifndef ADSMITH_METRICS_H
#define ADSMITH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "adsmith/buf.h"

struct metrics;

/** Label of one route: method and path pattern, e.g. {"GET", "/healthz"}. */
struct met_route {
    const char *method;
    const char *path;
};

/**
 * Creates metrics for @p nshards workers and @p nroutes routes; index nroutes is
 * reserved for requests that matched no route. @p routes is borrowed and must
 * outlive the metrics. Returns 0 or ADS_ENOMEM.
 */
int met_new(unsigned nshards, const struct met_route *routes, size_t nroutes, struct metrics **ret_metrics);

/** Frees the metrics. Accepts NULL. */
void met_free(struct metrics *m);

/** Adds @p delta to the in-flight gauge of @p shard. */
void met_inflight_add(struct metrics *m, unsigned shard, int delta);

/** Records one answered request: its route (nroutes for none), status and duration. */
void met_record(struct metrics *m, unsigned shard, size_t route, int status, uint64_t duration_ns);

/** Counts a connection closed at accept because max_connections was reached. */
void met_conn_rejected(struct metrics *m, unsigned shard);

/** An upper bound of what met_render() writes, so callers can size the buffer. */
size_t met_render_bound(const struct metrics *m);

/**
 * Writes the request metrics in Prometheus text format (0.0.4):
 * adsmith_http_requests_total{method,route,code}, adsmith_http_request_duration_seconds
 * histogram {method,route}, adsmith_http_requests_in_flight, adsmith_connections_rejected_total.
 */
void met_render(const struct metrics *m, struct buf *out);

#endif
