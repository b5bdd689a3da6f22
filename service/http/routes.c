#include "adsmith/handlers.h"
#include "adsmith/http.h"

/* Every route of the service. Keep http_route_labels() in the same order. */
static const struct http_route http_route_table[] = {
    {"GET", "/healthz", ops_healthz, HTTP_OPEN},
    {"GET", "/readyz", ops_readyz, HTTP_OPEN},
    {"GET", "/metrics", ops_metrics, HTTP_OPEN},
    {"GET", "/v1/users/{id}", users_get, HTTP_ADMIN},
    {"PUT", "/v1/users/{id}", users_put, HTTP_ADMIN},
    {"PATCH", "/v1/users/{id}", users_patch, HTTP_ADMIN},
    {"DELETE", "/v1/users/{id}", users_delete, HTTP_ADMIN},
    {"POST", "/v1/events", events_post, HTTP_ADMIN},
    {"GET", "/v1/campaigns", campaigns_list, HTTP_CAMPAIGN_READ},
    {"GET", "/v1/campaigns/{id}", campaigns_get, HTTP_CAMPAIGN_READ},
    {"PUT", "/v1/campaigns/{id}", campaigns_put, HTTP_CAMPAIGN_WRITE},
    {"PATCH", "/v1/campaigns/{id}", campaigns_patch, HTTP_CAMPAIGN_WRITE},
    {"DELETE", "/v1/campaigns/{id}", campaigns_delete, HTTP_CAMPAIGN_WRITE},
    {"GET", "/v1/campaigns/{id}/usage", campaigns_usage, HTTP_CAMPAIGN_READ},
    /* issue 7: AI variants */
    {"GET", "/v1/campaigns/{id}/variants", campaigns_variants_list, HTTP_CAMPAIGN_READ},
    {"POST", "/v1/campaigns/{id}/variants:generate", campaigns_variants_generate, HTTP_CAMPAIGN_WRITE},
    {"POST", "/v1/campaigns/{id}/variants:review", campaigns_variants_review, HTTP_CAMPAIGN_WRITE},
    {"POST", "/v1/admin/token-prices", ledger_prices_post, HTTP_ADMIN},
    {"GET", "/v1/admin/token-alerts", ledger_alerts_get, HTTP_ADMIN},
    {"GET", "/v1/admin/index", campaigns_index_stats, HTTP_ADMIN},
    {"POST", "/v1/admin/eligibility", campaigns_eligibility, HTTP_ADMIN},
    {"GET", "/v1/admin/model", model_get, HTTP_ADMIN},
    {"POST", "/v1/admin/model:reload", model_reload, HTTP_ADMIN},
    {"POST", "/v1/admin/model:score", model_score, HTTP_ADMIN},
    /* issue 6: exchanges hold no API key; notices are authenticated by their HMAC signature */
    {"POST", "/openrtb2/bid", bid_post, HTTP_OPEN},
    {"GET", "/v1/notice/{id}", notice_post, HTTP_OPEN},
    {"POST", "/v1/notice/{id}", notice_post, HTTP_OPEN},
    /* issue 6: scores for platforms that run their own auction; admin keys, as it reads profiles */
    {"POST", "/v1/score", score_post, HTTP_ADMIN},
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
