#include "body.h"

#include <time.h>

#include "adsmith/app.h"

struct store *body_store(struct http_req *r)
{
    struct store *s = app_store(r->app);

    if (s == NULL)
        http_send_error(r, ADS_ENOT_READY, NULL, "storage is not open yet; see /readyz, and retry");
    return s;
}

bool body_parse(struct http_req *r, msgpack_zone *zone, msgpack_object *ret_doc)
{
    struct ads_diag diag = {{0}, {0}};
    enum doc_fmt fmt;
    int rc;

    if ((rc = http_body_fmt(r, &fmt)) != 0) {
        ssize_t i = h2o_find_header(&r->req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
        h2o_iovec_t ct = i >= 0 ? r->req->headers.entries[i].value : h2o_iovec_init(H2O_STRLIT(""));
        http_send_error(r, rc, NULL,
                        "Content-Type %.*s is not accepted here; send application/json or application/msgpack",
                        (int)(ct.len < 100 ? ct.len : 100), ct.base);
        return false;
    }
    if ((rc = doc_parse(fmt, r->req->entity.base != NULL ? r->req->entity.base : "", r->req->entity.len, zone, ret_doc,
                        &diag)) != 0) {
        body_send_diag(r, rc, &diag);
        return false;
    }
    return true;
}

void body_send_diag(struct http_req *r, int err, const struct ads_diag *diag)
{
    http_send_error(r, err, diag->pointer, "%s", diag->message[0] != '\0' ? diag->message : ads_err_message(err));
}

uint64_t body_now(void)
{
    return (uint64_t)time(NULL);
}
