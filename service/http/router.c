#include "adsmith/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "adsmith/config.h"
#include "adsmith/log.h"

/* The one table from error code to HTTP status. tests/http/test_status.c
 * checks that every code of ADS_ERR_MAP appears here. */
static const struct {
    int err;
    int status;
} http_status_table[] = {
    {ADS_ENOMEM, 503},
    {ADS_EINVAL, 400},
    {ADS_ENOT_FOUND, 404},
    {ADS_EMETHOD, 405},
    {ADS_EBODY_TOO_LARGE, 413},
    {ADS_EHEADERS_TOO_LARGE, 431},
    {ADS_EBAD_REQUEST, 400},
    {ADS_ECONFIG, 500},
    {ADS_ESTORAGE, 500},
    {ADS_EDATA_TOO_NEW, 500},
    {ADS_ESTORAGE_FULL, 507},
    {ADS_ENOT_READY, 503},
    {ADS_ESHUTTING_DOWN, 503},
    {ADS_EINTERNAL, 500},
    {ADS_EHTTP_ERROR, 400},
    {ADS_EDATA_INVALID, 500},
    {ADS_EUNSUPPORTED_MEDIA, 415},
    {ADS_ECONFLICT, 409},
    {ADS_EOVERLOADED, 503},
    {ADS_EUNAUTHORIZED, 401},
    {ADS_EFORBIDDEN, 403},
    {ADS_EPRECONDITION_FAILED, 412},
    {ADS_EQUOTA_EXCEEDED, 409},
    {ADS_EMODEL_REFUSED, 422},
    {ADS_ETOKEN_LIMIT, 409},
    {ADS_EUPSTREAM, 502},
    {ADS_EUPSTREAM_UNAVAILABLE, 503},
};

int http_status_lookup(int err, int *ret_status)
{
    for (size_t i = 0; i < sizeof(http_status_table) / sizeof(http_status_table[0]); i++) {
        if (http_status_table[i].err == err) {
            *ret_status = http_status_table[i].status;
            return 0;
        }
    }
    return ADS_ENOT_FOUND;
}

int http_status_of(int err)
{
    int status;
    return http_status_lookup(err, &status) == 0 ? status : 500;
}

static const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

static uint64_t http_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool http_is_head(const h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

static void http_access_log(struct http_req *r, int status, size_t len, uint64_t dur_ns)
{
    h2o_req_t *req = r->req;
    struct lg_rec rec;

    lg_begin(&rec, LG_INFO, "access");
    lg_strn(&rec, "method", req->method.base, req->method.len);
    lg_strn(&rec, "path", req->path.base, req->path.len < 512 ? req->path.len : 512);
    lg_int(&rec, "status", status);
    lg_uint(&rec, "bytes", len);
    lg_uint(&rec, "duration_us", dur_ns / 1000);
    lg_str(&rec, "protocol", req->version >= 0x200 ? "HTTP/2" : "HTTP/1.1");
    lg_end(&rec);
}

/* Marks @p r answered (or abandoned) with @p status and records it; returns its duration. */
static uint64_t http_finish(struct http_req *r, int status)
{
    uint64_t dur_ns = http_now_ns() - r->t0_ns;

    r->answered = true;
    met_record(r->app->metrics, r->hw->idx, r->route, status, dur_ns);
    met_inflight_add(r->app->metrics, r->hw->idx, -1);
    return dur_ns;
}

void http_send(struct http_req *r, int status, const char *content_type, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = r->req;
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    uint64_t dur_ns;

    if (r->answered) {
        lg_msg(LG_ERROR, "bug: a request was answered twice");
        return;
    }
    dur_ns = http_finish(r, status);
    if (r->app->cfg->access_log)
        http_access_log(r, status, len, dur_ns);

    req->res.status = status;
    req->res.reason = http_reason(status);
    /* libh2o's inline sender leaves Content-Length unset; set it so HTTP/1.1
     * responses are not chunked and clients know the size up front. */
    req->res.content_length = len;
    if (content_type != NULL) /* NULL: no body (304) */
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_start_response(req, &generator);
    if (http_is_head(req))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

void http_abandon(struct http_req *r)
{
    if (!r->answered)
        http_finish(r, HTTP_STATUS_ABANDONED);
}

void http_send_json(struct http_req *r, int status, const char *body, size_t len)
{
    http_send(r, status, "application/json", body, len);
}

void http_error_body(int err, const char *pointer, const char *message, struct buf *out)
{
    buf_puts(out, "{\"error\":{");
    buf_json_kv(out, "code", ads_err_name(err));
    buf_puts(out, ",");
    buf_json_kv(out, "message", message != NULL ? message : ads_err_message(err));
    buf_puts(out, ",");
    buf_json_kv(out, "pointer", pointer != NULL ? pointer : "");
    buf_puts(out, "}}");
}

/* Messages and pointers are cut to these sizes; the body is sized so that even
 * a fully escaped message and pointer fit. */
#define HTTP_MAX_MESSAGE 512
#define HTTP_MAX_POINTER 256
#define HTTP_ERROR_BODY_CAP ((HTTP_MAX_MESSAGE + HTTP_MAX_POINTER) * 6 + 256)

void http_send_error(struct http_req *r, int err, const char *pointer, const char *fmt, ...)
{
    char message[HTTP_MAX_MESSAGE];
    char ptr[HTTP_MAX_POINTER];
    char *mem = h2o_mem_alloc_pool(&r->req->pool, HTTP_ERROR_BODY_CAP);
    struct buf b;
    va_list ap;

    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
    } else {
        snprintf(message, sizeof(message), "%s", ads_err_message(err));
    }
    snprintf(ptr, sizeof(ptr), "%s", pointer != NULL ? pointer : "");
    buf_init(&b, mem, HTTP_ERROR_BODY_CAP);
    http_error_body(err, ptr, message, &b);
    http_send_json(r, http_status_of(err), b.base, b.len);
}

/* ---- routing ---- */

struct http_router {
    h2o_handler_t super;
    struct app *app;
    struct http_worker *(*worker_of)(h2o_context_t *ctx);
};

static bool http_method_matches(const h2o_req_t *req, const char *method)
{
    if (h2o_memis(req->method.base, req->method.len, method, strlen(method)))
        return true;
    return strcmp(method, "GET") == 0 && http_is_head(req);
}

/* Exact paths match the normalized path. A path with a "{id}" segment
 * matches any one non-empty segment there, followed by the rest of the
 * path exactly; that segment is taken from the raw path, where an encoded "/"
 * (%2F) is still part of it, and decoded by http_param(). */
static bool http_path_matches(const h2o_req_t *req, const char *path, h2o_iovec_t *ret_param)
{
    const char *marker = strstr(path, "{id}");
    const char *raw = req->path.base;
    size_t raw_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    size_t prefix, suffix_len, end;
    const char *suffix;

    if (marker == NULL)
        return h2o_memis(req->path_normalized.base, req->path_normalized.len, path, strlen(path));
    prefix = (size_t)(marker - path);
    suffix = marker + 4;
    suffix_len = strlen(suffix);
    if (req->path_normalized.len <= prefix || memcmp(req->path_normalized.base, path, prefix) != 0)
        return false;
    if (raw_len <= prefix + suffix_len || memcmp(raw, path, prefix) != 0)
        return false;
    for (end = prefix; end < raw_len && raw[end] != '/'; end++)
        ;
    if (end == prefix || raw_len - end != suffix_len || memcmp(raw + end, suffix, suffix_len) != 0)
        return false;
    *ret_param = h2o_iovec_init(raw + prefix, end - prefix);
    return true;
}

/* Whether the route's access rule admits the request's role. */
static bool http_role_admitted(enum http_access access, enum keys_role role)
{
    switch (access) {
    case HTTP_OPEN: return true;
    case HTTP_ADMIN: return role == KEYS_ADMIN;
    case HTTP_CAMPAIGN_READ: return true;
    case HTTP_CAMPAIGN_WRITE: return role == KEYS_ADMIN || role == KEYS_ADVERTISER;
    }
    return false;
}

/* Checks the API key of a route that needs one and fills r->who; false after answering 401/403/503. */
static bool http_authorize(struct http_req *r, enum http_access access)
{
    static const char bearer[] = "bearer "; /* h2o_lcstris() wants the lower-case form */
    const size_t blen = sizeof(bearer) - 1;
    h2o_req_t *req = r->req;
    struct ads_diag d = {{0}, {0}};
    struct store *s;
    MDB_txn *txn;
    ssize_t at;
    int rc;

    if (access == HTTP_OPEN)
        return true;
    at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (at < 0 || req->headers.entries[at].value.len <= blen ||
        !h2o_lcstris(req->headers.entries[at].value.base, blen, bearer, blen)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"adsmith\""));
        http_send_error(r, ADS_EUNAUTHORIZED, NULL,
                        at < 0 ? "this route needs an API key: send Authorization: Bearer <key> "
                                 "(adsmith keys create makes one)"
                               : "the Authorization header must be \"Bearer <key>\"");
        return false;
    }
    if ((s = app_store(r->app)) == NULL) {
        http_send_error(r, ADS_ENOT_READY, NULL, "storage is not open yet; retry shortly");
        return false;
    }
    if ((rc = store_read_begin(s, &txn)) != 0) {
        http_send_error(r, rc, NULL, NULL);
        return false;
    }
    rc = keys_authenticate(txn, s, req->headers.entries[at].value.base + blen,
                           req->headers.entries[at].value.len - blen, &d, &r->who);
    store_read_end(txn);
    if (rc != 0) {
        if (rc == ADS_EUNAUTHORIZED)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                           H2O_STRLIT("Bearer realm=\"adsmith\", error=\"invalid_token\""));
        http_send_error(r, rc, NULL, "%s", d.message[0] != '\0' ? d.message : ads_err_message(rc));
        return false;
    }
    if (!http_role_admitted(access, r->who.role)) {
        http_send_error(r, ADS_EFORBIDDEN, NULL, "%s keys may not %s; this route needs %s", keys_role_name(r->who.role),
                        access == HTTP_ADMIN ? "use user, event or admin routes" : "change campaigns",
                        access == HTTP_ADMIN ? "an admin key" : "an admin or advertiser key");
        return false;
    }
    return true;
}

static size_t http_header_bytes(const h2o_req_t *req)
{
    size_t n = req->path.len + req->authority.len + req->method.len;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    return n;
}

static int http_router_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct http_router *router = (struct http_router *)self;
    const struct cfg *cfg = router->app->cfg;
    size_t nroutes, i, header_bytes;
    const struct http_route *routes = http_routes(&nroutes);
    struct http_req *r = h2o_mem_alloc_pool(&req->pool, sizeof(*r));
    struct http_worker *hw = router->worker_of(req->conn->ctx);
    char allow[128];
    struct buf ab;

    *r = (struct http_req){
        .req = req, .app = router->app, .hw = hw, .route = nroutes, .t0_ns = http_now_ns(), .answered = false};
    met_inflight_add(r->app->metrics, hw->idx, 1);

    if ((header_bytes = http_header_bytes(req)) > cfg->max_header_bytes) {
        http_send_error(r, ADS_EHEADERS_TOO_LARGE, NULL,
                        "the request line and headers total %zu bytes; the limit (max_header_bytes) is %llu",
                        header_bytes, (unsigned long long)cfg->max_header_bytes);
        return 0;
    }
    if (req->entity.base != NULL && req->entity.len > cfg->max_body) {
        http_send_error(r, ADS_EBODY_TOO_LARGE, NULL, "the request body is %zu bytes; the limit (max_body) is %llu",
                        req->entity.len, (unsigned long long)cfg->max_body);
        return 0;
    }

    buf_init(&ab, allow, sizeof(allow));
    for (i = 0; i < nroutes; i++) {
        if (!http_path_matches(req, routes[i].path, &r->param))
            continue;
        if (http_method_matches(req, routes[i].method)) {
            r->route = i;
            if (http_authorize(r, routes[i].access))
                routes[i].fn(r);
            return 0;
        }
        buf_printf(&ab, "%s%s", ab.len > 0 ? ", " : "", routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0)
            buf_puts(&ab, ", HEAD");
    }
    if (ab.len > 0) {
        char *allow_copy = h2o_mem_alloc_pool(&req->pool, ab.len);
        memcpy(allow_copy, ab.base, ab.len);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow_copy, ab.len);
        http_send_error(r, ADS_EMETHOD, NULL, "%.*s is not allowed on %.*s; allowed: %s", (int)req->method.len,
                        req->method.base, (int)(req->path_normalized.len < 200 ? req->path_normalized.len : 200),
                        req->path_normalized.base, ab.base);
        return 0;
    }
    http_send_error(r, ADS_ENOT_FOUND, NULL, "nothing exists at %.*s",
                    (int)(req->path_normalized.len < 200 ? req->path_normalized.len : 200), req->path_normalized.base);
    return 0;
}

/* ---- JSON bodies for libh2o's own errors ----
 *
 * libh2o answers some requests itself before they reach the router, e.g. 413
 * when an HTTP/1.1 Content-Length exceeds its entity limit, using a
 * text/plain body. It sends those through the host's fallback path, so a
 * filter there swaps the body for our JSON error shape, keeping libh2o's text
 * as the message. */

struct http_errfilter {
    h2o_filter_t super;
    struct app *app;
    struct http_worker *(*worker_of)(h2o_context_t *ctx);
};

struct http_errostream {
    h2o_ostream_t super;
    struct http_errfilter *filter;
    bool sent;
};

static int http_err_of_status(int status)
{
    switch (status) {
    case 404: return ADS_ENOT_FOUND;
    case 405: return ADS_EMETHOD;
    case 413: return ADS_EBODY_TOO_LARGE;
    case 431: return ADS_EHEADERS_TOO_LARGE;
    default: return status >= 500 ? ADS_EINTERNAL : ADS_EHTTP_ERROR;
    }
}

static void http_errostream_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                                 h2o_send_state_t state)
{
    struct http_errostream *os = (struct http_errostream *)self;
    struct http_errfilter *f = os->filter;
    char message[HTTP_MAX_MESSAGE];
    struct buf mb, b;
    char *mem;
    h2o_iovec_t out;
    int err = http_err_of_status(req->res.status);

    if (os->sent) {
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    os->sent = true;
    buf_init(&mb, message, sizeof(message));
    for (size_t i = 0; i < bufcnt; i++)
        buf_put(&mb, bufs[i].base, bufs[i].len);
    while (mb.len > 0 && (message[mb.len - 1] == '\n' || message[mb.len - 1] == '\r'))
        message[--mb.len] = '\0';
    if (err == ADS_EBODY_TOO_LARGE) {
        snprintf(message, sizeof(message), "the request body exceeds the limit (max_body) of %llu bytes",
                 (unsigned long long)f->app->cfg->max_body);
        mb.len = strlen(message);
    }

    mem = h2o_mem_alloc_pool(&req->pool, HTTP_ERROR_BODY_CAP);
    buf_init(&b, mem, HTTP_ERROR_BODY_CAP);
    http_error_body(err, "", mb.len > 0 ? message : NULL, &b);
    out = h2o_iovec_init(b.base, b.len);
    /* Headers have not gone out yet: the connection writes them on the first send below. */
    req->res.content_length = b.len;
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/json"), 1);
    met_record(f->app->metrics, f->worker_of(req->conn->ctx)->idx, SIZE_MAX, req->res.status, 0);
    if (http_is_head(req))
        h2o_ostream_send_next(self, req, NULL, 0, state);
    else
        h2o_ostream_send_next(self, req, &out, 1, state);
}

static void http_errfilter_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    struct http_errostream *os;

    if (req->res.status >= 400) {
        os = (struct http_errostream *)h2o_add_ostream(req, sizeof(*os), slot);
        os->super.do_send = http_errostream_send;
        os->filter = (struct http_errfilter *)self;
        os->sent = false;
        slot = &os->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

void http_router_register(h2o_hostconf_t *host, struct app *app, struct http_worker *(*worker_of)(h2o_context_t *ctx))
{
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    struct http_router *router = (struct http_router *)h2o_create_handler(path, sizeof(*router));
    struct http_errfilter *f = (struct http_errfilter *)h2o_create_filter(&host->fallback_path, sizeof(*f));

    router->super.on_req = http_router_on_req;
    router->app = app;
    router->worker_of = worker_of;
    f->super.on_setup_ostream = http_errfilter_setup;
    f->app = app;
    f->worker_of = worker_of;
}
