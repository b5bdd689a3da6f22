/* GET /v1/campaigns/{id}/usage[?from=&to=&group=day,model,kind|variant&format=json|csv] (usage.h) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/app.h"
#include "adsmith/camps.h"
#include "adsmith/handlers.h"
#include "adsmith/ledger.h"
#include "adsmith/usage.h"
#include "body.h"

static bool usage_time(struct http_req *r, const char *name, int64_t *v)
{
    char q[32], *end;
    long long t;

    if (http_query(r, name, q, sizeof(q)) != 0)
        return true;
    t = strtoll(q, &end, 10);
    if (*end != '\0' || end == q || t < 0 || t > LEDGER_TIME_MAX) {
        char ptr[16];
        snprintf(ptr, sizeof(ptr), "/%s", name);
        http_send_error(r, ADS_EINVAL, ptr, "%s must be unix seconds (an integer 0-%lld)", name,
                        (long long)LEDGER_TIME_MAX);
        return false;
    }
    *v = t;
    return true;
}

void campaigns_usage(struct http_req *r)
{
    struct usage_query uq = {.from = -1, .to = -1, .fmt = http_accept_fmt(r)};
    struct ads_diag diag = {{0}, {0}};
    struct camps_rec rec;
    struct buf b;
    char q[64];
    MDB_txn *txn;
    int rc;

    if (http_query(r, "group", q, sizeof(q)) == 0 && usage_parse_group(q, &uq.group) != 0) {
        http_send_error(r, ADS_EINVAL, "/group",
                        "group is a comma-separated list of day, model and kind, or "
                        "variant alone");
        return;
    }
    if (http_query(r, "format", q, sizeof(q)) == 0) {
        if (strcmp(q, "csv") != 0 && strcmp(q, "json") != 0) {
            http_send_error(r, ADS_EINVAL, "/format", "format must be json or csv");
            return;
        }
        uq.csv = strcmp(q, "csv") == 0;
    }
    if (!usage_time(r, "from", &uq.from) || !usage_time(r, "to", &uq.to))
        return;
    if (!campaigns_read(r, &txn, &rec))
        return;
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, USAGE_OUT_MAX), USAGE_OUT_MAX);
    rc = usage_report(txn, app_store(r->app), &rec, &uq, (int64_t)body_now(), &b, &diag);
    store_read_end(txn);
    if (rc == ADS_EINVAL) {
        body_send_diag(r, rc, &diag);
        return;
    }
    if (rc != 0) {
        http_send_error(r, rc == -ENOBUFS ? ADS_EINTERNAL : rc, NULL, NULL);
        return;
    }
    if (uq.csv)
        http_send(r, 200, "text/csv; charset=utf-8", b.base, b.len);
    else
        http_send_doc(r, 200, uq.fmt, &b);
}
