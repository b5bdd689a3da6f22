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
#include "adsmith/doc.h"
#include "adsmith/err.h"
#include "adsmith/keys.h"
#include "adsmith/metrics.h"
#include "adsmith/wq.h"

/** What the router knows of the worker thread a request runs on. Owned by the server. */
struct http_worker {
    unsigned idx;        /* metrics shard */
    struct wq_port port; /* where this worker's write-queue jobs report back */
};

/** One routed request; allocated from the request's pool, lives as long as the request. */
struct http_req {
    h2o_req_t *req;
    struct app *app;
    struct http_worker *hw; /* hw->idx is the metrics shard */
    size_t route;           /* index in the route table, or the count for "unmatched" */
    uint64_t t0_ns;         /* CLOCK_MONOTONIC at routing */
    h2o_iovec_t param;      /* the {id} segment of the raw path, still percent-encoded */
    struct keys_principal who; /* the API key's holder, on routes that need a key */
    bool answered;
};

typedef void (*http_handler_fn)(struct http_req *r);

/* Who may call a route. The router checks the API key (Authorization: Bearer)
 * before the handler runs: 401 without a valid key, 403 for a role the route
 * does not admit. Advertiser scoping (404 for another advertiser's campaign) is
 * the handler's, which knows what the id names. */
enum http_access {
    HTTP_OPEN,           /* no key: health, metrics, OpenRTB (exchanges), signed notices */
    HTTP_ADMIN,          /* admin keys: user profiles, events, admin routes */
    HTTP_CAMPAIGN_READ,  /* admin, advertiser and reader keys */
    HTTP_CAMPAIGN_WRITE, /* admin and advertiser keys */
};

struct http_route {
    const char *method; /* "GET" also answers HEAD */
    const char *path;   /* an exact path, or one with a "{id}" segment: any one non-empty segment */
    http_handler_fn fn;
    enum http_access access;
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
 * Answers @p status with @p body of @p len bytes and the given Content-Type
 * (NULL: none, for a response without a body such as 304).
 * @p body must stay valid until the request ends: static storage or the
 * request's pool (r->req->pool).
 */
void http_send(struct http_req *r, int status, const char *content_type, const char *body, size_t len);

/* What metrics record for a request whose client left before it was answered
 * (nginx's convention). */
#define HTTP_STATUS_ABANDONED 499

/**
 * Records @p r as abandoned (status HTTP_STATUS_ABANDONED) unless it was
 * answered: for requests whose client went away while their work was queued.
 */
void http_abandon(struct http_req *r);

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
void http_router_register(h2o_hostconf_t *host, struct app *app, struct http_worker *(*worker_of)(h2o_context_t *ctx));

/* ---- for handlers ---- */

/**
 * Percent-decodes the route's {id} segment into @p dst (@p cap bytes, NUL-terminated).
 * @return 0 with *@p ret_len set, or ADS_EINVAL (bad escape, NUL, longer than cap - 1).
 */
int http_param(const struct http_req *r, char *dst, size_t cap, size_t *ret_len);

/**
 * Finds query parameter @p name and percent-decodes its value (+ is a space) into
 * @p dst (@p cap bytes, NUL-terminated). @return 0, ADS_ENOT_FOUND, or ADS_EINVAL.
 */
int http_query(const struct http_req *r, const char *name, char *dst, size_t cap);

/** The encoding of the request body, from Content-Type. 0 or ADS_EUNSUPPORTED_MEDIA. */
int http_body_fmt(const struct http_req *r, enum doc_fmt *ret_fmt);

/** The encoding the client accepts for the response, from Accept. */
enum doc_fmt http_accept_fmt(const struct http_req *r);

/** Answers @p status with the document in @p body (from the request pool) in @p fmt. */
void http_send_doc(struct http_req *r, int status, enum doc_fmt fmt, const struct buf *body);

/**
 * A write-queue job on behalf of a request. The client may go away while the
 * job waits; the job then still runs, but finish() is not called.
 */
struct http_job_hook;

struct http_job {
    struct wq_job wq;
    struct http_req *r; /* NULL once the request is gone */
    struct http_job_hook *hook;
    /** Answers the request (still alive) from the job's outcome, job->wq.rc. */
    void (*finish)(struct http_job *job, struct http_req *r);
    /** Optional: frees what the job owns besides itself; called (once) just before free(job). */
    void (*release)(struct http_job *job);
};

/**
 * Queues @p job (its struct http_job zeroed or with only `release` set; heap
 * memory the caller gives up: it is free()d after
 * finish(), or when the request is gone) with @p apply for the writer thread.
 * When the queue refuses it, answers 503 and frees it.
 */
void http_job_submit(struct http_req *r, struct http_job *job, int (*apply)(struct wq_job *, MDB_txn *, struct store *),
                     void (*finish)(struct http_job *job, struct http_req *r));

#endif
