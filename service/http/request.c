/* Helpers for handlers: path parameters, query strings, content negotiation. */
#include <stdlib.h>
#include <string.h>

#include "adsmith/http.h"

static int request_hex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes @p len bytes; @p plus_is_space for query strings. */
static int request_decode(const char *s, size_t len, bool plus_is_space, char *dst, size_t cap, size_t *ret_len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '%') {
            int hi, lo;
            if (len - i < 3)
                return ADS_EINVAL;
            if ((hi = request_hex(s[i + 1])) < 0 || (lo = request_hex(s[i + 2])) < 0)
                return ADS_EINVAL;
            ch = (char)(hi << 4 | lo);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        if (ch == '\0' || n + 1 >= cap)
            return ADS_EINVAL;
        dst[n++] = ch;
    }
    dst[n] = '\0';
    *ret_len = n;
    return 0;
}

int http_param(const struct http_req *r, char *dst, size_t cap, size_t *ret_len)
{
    return request_decode(r->param.base, r->param.len, false, dst, cap, ret_len);
}

int http_query(const struct http_req *r, const char *name, char *dst, size_t cap)
{
    const h2o_req_t *req = r->req;
    size_t nlen = strlen(name), len, vlen;
    const char *p, *end;

    if (req->query_at == SIZE_MAX)
        return ADS_ENOT_FOUND;
    p = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        len = (size_t)((amp != NULL ? amp : end) - p);
        if (len > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=')
            return request_decode(p + nlen + 1, len - nlen - 1, true, dst, cap, &vlen);
        p += len + 1;
    }
    return ADS_ENOT_FOUND;
}

static const h2o_iovec_t *request_header(const h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i >= 0 ? &req->headers.entries[i].value : NULL;
}

int http_body_fmt(const struct http_req *r, enum doc_fmt *ret_fmt)
{
    const h2o_iovec_t *ct = request_header(r->req, H2O_TOKEN_CONTENT_TYPE);
    return doc_fmt_of_content_type(ct != NULL ? ct->base : "", ct != NULL ? ct->len : 0, ret_fmt);
}

enum doc_fmt http_accept_fmt(const struct http_req *r)
{
    const h2o_iovec_t *accept = request_header(r->req, H2O_TOKEN_ACCEPT);
    return accept != NULL ? doc_fmt_of_accept(accept->base, accept->len) : DOC_JSON;
}

void http_send_doc(struct http_req *r, int status, enum doc_fmt fmt, const struct buf *body)
{
    http_send(r, status, doc_content_type(fmt), body->base, body->len);
}

/* Lives in the request's pool: when the pool goes (the request ended, maybe
 * before its job did), it tells the job not to touch the request. */
struct http_job_hook {
    struct http_job *job;
    struct http_req *r;
};

static void http_job_on_pool_dispose(void *p)
{
    struct http_job_hook *hook = p;

    if (hook->job == NULL)
        return;
    hook->job->r = NULL;
    /* libh2o runs this before it frees the pool's chunks, so r is still readable. */
    http_abandon(hook->r);
}

static void http_job_done(struct wq_job *wj)
{
    struct http_job *job = H2O_STRUCT_FROM_MEMBER(struct http_job, wq, wj);

    if (job->r != NULL) {
        job->hook->job = NULL;
        job->finish(job, job->r);
    }
    if (job->release != NULL)
        job->release(job);
    free(job);
}

void http_job_submit(struct http_req *r, struct http_job *job, int (*apply)(struct wq_job *, MDB_txn *, struct store *),
                     void (*finish)(struct http_job *job, struct http_req *r))
{
    int rc;

    job->wq.apply = apply;
    job->wq.done = http_job_done;
    job->r = r;
    job->finish = finish;
    job->hook = h2o_mem_alloc_shared(&r->req->pool, sizeof(*job->hook), http_job_on_pool_dispose);
    job->hook->job = job;
    job->hook->r = r;
    if ((rc = wq_submit(r->app->wq, &r->hw->port, &job->wq)) != 0) {
        job->hook->job = NULL;
        if (job->release != NULL)
            job->release(job);
        free(job);
        h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        http_send_error(r, rc, NULL,
                        rc == ADS_EOVERLOADED ? "too many writes are waiting (write_queue_max); retry shortly" : NULL);
    }
}
