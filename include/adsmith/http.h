/*
 * http: routing and responses on top of libh2o.
 *
 * Handlers are thin: parse, call one module, answer with http_send_json() or
 * http_send_error(). Every routed request is answered exactly once, from its own
 * worker thread, through these functions (they also record metrics and the
 * access log).
 *
 * Error responses always have the shape of schemas/error.schema.json:
 *   {"error":{"code":"not_found","message":"...","pointer":""}}
 */
#ifndef ADSMITH_HTTP_H
#define ADSMITH_HTTP_H

#include <h2o.h>
#include <stdbool.h>
#include <stdint.h>

#include "adsmith/app.h"
#include "adsmith/err.h"
#include "adsmith/metrics.h"

/** One routed request; allocated from the request's pool, lives as long as the request. */
struct http_req {
    h2o_req_t *req;
    struct app *app;
    unsigned worker;  /* index of the worker thread = metrics shard */
    size_t route;     /* index in the route table, or the count for "unmatched" */
    uint64_t t0_ns;   /* CLOCK_MONOTONIC at routing */
    bool answered;
};

typedef void (*http_handler_fn)(struct http_req *r);

struct http_route {
    const char *method; /* "GET" also answers HEAD */
    const char *path;   /* exact path */
    http_handler_fn fn;
};

/** The route table, and the same table as metric labels. Static storage. */
const struct http_route *http_routes(size_t *ret_count);
const struct met_route *http_route_labels(void);

/**
 * Looks up the HTTP status of an error code in the service's one status table.
 * Returns 0, or ADS_ENOT_FOUND when the table has no entry (e.g. an errno value).
 */
int http_status_lookup(int err, int *ret_status);

/** HTTP status for an error code: the table's entry, or 500 when it has none. */
int http_status_of(int err);

/**
 * Answers @p status with @p body of @p len bytes and the given Content-Type.
 * @p body must stay valid until the request ends: static storage or the
 * request's pool (r->req->pool).
 */
void http_send(struct http_req *r, int status, const char *content_type, const char *body, size_t len);

/** Same as http_send() with Content-Type application/json. */
void http_send_json(struct http_req *r, int status, const char *body, size_t len);

/**
 * Answers the error @p err with its status from http_status_of() and the JSON
 * error body. @p pointer is the JSON pointer of the offending field (NULL: "").
 * @p fmt (NULL: the code's default message) says what went wrong and what to do.
 */
void http_send_error(struct http_req *r, int err, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * Writes the JSON error body for @p err into @p ret_body. @p pointer (NULL: "")
 * and @p message (NULL: the code's default) are escaped. Shared by
 * http_send_error() and the filter that rewrites libh2o's own plain-text errors.
 */
void http_error_body(int err, const char *pointer, const char *message, struct buf *ret_body);

/**
 * Registers the router on @p host: one h2o handler on "/" that dispatches the
 * route table, plus a filter on the host's fallback path that turns libh2o's
 * own error responses (e.g. 413 before routing) into JSON error bodies.
 * @p app and @p worker_of (maps an h2o context to its worker index) are borrowed.
 */
void http_router_register(h2o_hostconf_t *host, struct app *app, unsigned (*worker_of)(h2o_context_t *ctx));

#endif
