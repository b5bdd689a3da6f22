#include "adsmith/handlers.h"
#include "adsmith/http.h"

/* Every route of the service. Keep http_route_labels() in the same order. */
static const struct http_route http_route_table[] = {
    {"GET", "/healthz", ops_healthz},
    {"GET", "/readyz", ops_readyz},
    {"GET", "/metrics", ops_metrics},
    {"GET", "/v1/users/{id}", users_get},
    {"PUT", "/v1/users/{id}", users_put},
    {"PATCH", "/v1/users/{id}", users_patch},
    {"DELETE", "/v1/users/{id}", users_delete},
    {"POST", "/v1/events", events_post},
};

#define HTTP_NROUTES (sizeof(http_route_table) / sizeof(http_route_table[0]))

static struct met_route http_label_table[HTTP_NROUTES];

const struct http_route *http_routes(size_t *ret_count)
{
    *ret_count = HTTP_NROUTES;
    return http_route_table;
}

const struct met_route *http_route_labels(void)
{
    /* Derived from the route table so the two cannot disagree; idempotent, and
     * called once at start-up before any worker runs. */
    for (size_t i = 0; i < HTTP_NROUTES; i++)
        http_label_table[i] = (struct met_route){http_route_table[i].method, http_route_table[i].path};
    return http_label_table;
}
