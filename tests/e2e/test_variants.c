/*
 * The variant pipeline end to end: the real daemon generates variants in the
 * background (the builtin generator, or an OpenAI-compatible backend played
 * by tests/gen/openai_double.c over HTTP), meters the tokens against the
 * campaign's package, checks and stores the output, and reports it through
 * GET /v1/campaigns/{id}/variants, /usage and /metrics.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../gen/genfix.h"
#include "daemon.h"

static struct e2e_daemon d;
static struct e2e_resp rsp;
static struct genfix_double dbl;
static bool dbl_running;

static void setup(void)
{
    cr_assert_eq(e2e_daemon_init(&d), 0, "e2e_daemon_init: %s", d.why);
}

static void teardown(void)
{
    if (dbl_running)
        genfix_double_stop(&dbl);
    e2e_daemon_done(&d);
}

TestSuite(variants, .init = setup, .fini = teardown, .timeout = 60);

static void http(const char *method, const char *path, const char *body)
{
    static const char *const json_ct[] = {"Content-Type: application/json", NULL};
    struct e2e_req req = {.proto = E2E_HTTP1,
                          .method = method,
                          .path = path,
                          .body = body,
                          .body_len = body != NULL ? strlen(body) : 0,
                          .headers = body != NULL ? json_ct : NULL};

    cr_assert_eq(e2e_http(&d, &req, &rsp), 0, "%s", d.why);
    cr_assert_eq(rsp.code, CURLE_OK, "%s %s: %s", method, path, rsp.error);
    cr_assert_not(rsp.body_truncated);
}

/* The demo campaign with @p edits applied: pairs of (text, replacement), NULL-terminated. */
static char *campaign(const char *const *edits)
{
    static char text[16384];
    size_t len;
    char *out;

    cr_assert_eq(e2e_file_read(e2e_source("schemas/examples/campaign-demo.json"), text, sizeof(text), &len), 0);
    out = strdup(text);
    for (size_t i = 0; edits != NULL && edits[i] != NULL; i += 2) {
        char *at = strstr(out, edits[i]), *next;
        cr_assert_not_null(at, "the demo campaign has no %s", edits[i]);
        size_t cap = strlen(out) + strlen(edits[i + 1]) + 1;
        next = malloc(cap);
        snprintf(next, cap, "%.*s%s%s", (int)(at - out), out, edits[i + 1], at + strlen(edits[i]));
        free(out);
        out = next;
    }
    return out;
}

static void put_campaign(const char *id, const char *const *edits)
{
    char path[128], *json = campaign(edits);

    snprintf(path, sizeof(path), "/v1/campaigns/%s", id);
    http("PUT", path, json);
    free(json);
    cr_assert(rsp.status == 200 || rsp.status == 201, "PUT %s: %ld %s", path, rsp.status, rsp.body);
}

static double metric(const char *series)
{
    double v = -1;

    http("GET", "/metrics", NULL);
    cr_assert_eq(rsp.status, 200);
    cr_assert_eq(e2e_metric(rsp.body, series, &v), 0, "/metrics has no %s", series);
    return v;
}

/* Waits up to 20 s for the metric to reach @p at_least. */
static void wait_metric(const char *series, double at_least)
{
    for (int i = 0; i < 200 && metric(series) < at_least; i++)
        usleep(100000);
    cr_assert_geq(metric(series), at_least, "%s stayed below %g", series, at_least);
}

static cJSON *get_json(const char *path)
{
    cJSON *j;

    http("GET", path, NULL);
    cr_assert_eq(rsp.status, 200, "GET %s: %ld %s", path, rsp.status, rsp.body);
    j = cJSON_Parse(rsp.body);
    cr_assert_not_null(j, "GET %s: not JSON", path);
    return j;
}

static double num_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItem(o, a);
    if (b != NULL)
        x = cJSON_GetObjectItem(x, b);
    cr_assert(cJSON_IsNumber(x), "no number at %s/%s", a, b != NULL ? b : "");
    return x->valuedouble;
}

static const char *const id_edit[] = {"\"demo-coffee\"", "\"camp-a\"", NULL};

Test(variants, builtin_writes_checked_variants_and_meters_their_tokens)
{
    cJSON *list, *usage, *v;
    double sum = 0;
    int n = 0;
    char seen[8][80];
    int nseen = 0;

    e2e_assert_started(&d, NULL);
    put_campaign("camp-a", id_edit);
    wait_metric("adsmith_variants_stored_total{state=\"approved\"}", 3);

    list = get_json("/v1/campaigns/camp-a/variants");
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(list, "variants"))
    {
        const cJSON *prov = cJSON_GetObjectItem(v, "provenance");
        const char *req = cJSON_GetObjectItem(prov, "request_id")->valuestring;
        bool dup = false;
        cr_assert_str_eq(cJSON_GetObjectItem(v, "state")->valuestring, "approved");
        cr_assert_str_eq(cJSON_GetObjectItem(v, "ai_label")->valuestring, "AI-generated");
        cr_assert_str_eq(cJSON_GetObjectItem(prov, "backend")->valuestring, "builtin");
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "checks"), "passed")));
        /* The brief's required term, matched case-insensitively, is in every variant. */
        cr_assert(strcasestr(cJSON_GetObjectItem(v, "title")->valuestring, "northwind") != NULL ||
                      strcasestr(cJSON_GetObjectItem(v, "description")->valuestring, "northwind") != NULL,
                  "a variant lacks the required term");
        cr_assert_gt(num_at(prov, "prompt_tokens", NULL), 0);
        for (int i = 0; i < nseen; i++)
            dup |= strcmp(seen[i], req) == 0;
        if (!dup && nseen < 8) {
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", req);
            sum += num_at(prov, "prompt_tokens", NULL) + num_at(prov, "completion_tokens", NULL);
        }
        n++;
    }
    cr_assert_eq(n, 3, "the brief asks for 3 variants per locale");
    cJSON_Delete(list);

    /* The ledger charged exactly what each generation that stored variants used, and holds no reservation. */
    usage = get_json("/v1/campaigns/camp-a/usage?group=kind");
    v = cJSON_GetObjectItem(usage, "tokens");
    cr_assert_eq(num_at(v, "settled", NULL), sum, "settled %g, the variants' generations used %g",
                 num_at(v, "settled", NULL), sum);
    cr_assert_eq(num_at(v, "reserved", NULL), 0);
    cr_assert_eq(num_at(v, "refusals", NULL), 0);
    cr_assert_eq(num_at(v, "remaining", NULL), num_at(v, "allowance", NULL) - sum);
    cr_assert_eq(num_at(cJSON_GetObjectItem(usage, "report"), "totals", "tokens"), sum);
    cJSON_Delete(usage);
    cr_assert_eq(metric("adsmith_gen_tokens_total{kind=\"prompt\"}") +
                     metric("adsmith_gen_tokens_total{kind=\"completion\"}"),
                 sum);
    cr_assert_eq(metric("adsmith_campaign_tokens_total{campaign=\"camp-a\",kind=\"prompt\"}") +
                     metric("adsmith_campaign_tokens_total{campaign=\"camp-a\",kind=\"completion\"}"),
                 sum);

    /* CSV of the same report. */
    http("GET", "/v1/campaigns/camp-a/usage?group=day,kind&format=csv", NULL);
    cr_assert_eq(rsp.status, 200);
    cr_assert(strncmp(rsp.content_type, "text/csv", 8) == 0, "%s", rsp.content_type);
    cr_assert(strncmp(rsp.body, "day,kind,tokens,money_micros,generations,estimated\r\n", 52) == 0, "%s", rsp.body);
    e2e_assert_stopped_clean(&d);
}

Test(variants, manual_approval_and_review)
{
    static const char *const edits[] = {"\"demo-coffee\"", "\"camp-m\"", "\"backend\": \"builtin\"",
                                        "\"backend\": \"builtin\", \"approval\": \"manual\"", NULL};
    char body[128], first[32];
    cJSON *list, *v;

    e2e_assert_started(&d, NULL);
    put_campaign("camp-m", edits);
    wait_metric("adsmith_variants_stored_total{state=\"pending\"}", 3);
    list = get_json("/v1/campaigns/camp-m/variants?state=pending");
    v = cJSON_GetArrayItem(cJSON_GetObjectItem(list, "variants"), 0);
    cr_assert_not_null(v);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(v, "serving")), "a pending variant does not serve");
    snprintf(first, sizeof(first), "%s", cJSON_GetObjectItem(v, "id")->valuestring);
    cJSON_Delete(list);

    snprintf(body, sizeof(body), "{\"variant\":\"%s\",\"state\":\"approved\"}", first);
    http("POST", "/v1/campaigns/camp-m/variants:review", body);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    list = get_json("/v1/campaigns/camp-m/variants?state=approved");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(list, "variants")), 1);
    cr_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(list, "variants"), 0), "id")->valuestring, first);
    cJSON_Delete(list);

    /* Pages of one state: 2 pending are left, one a page, then the end. */
    {
        char path[128], after[32] = "";
        int seen = 0;
        for (int page = 0; page < 4; page++) {
            const cJSON *next;
            snprintf(path, sizeof(path), "/v1/campaigns/camp-m/variants?state=pending&limit=1%s%s",
                     after[0] != '\0' ? "&after=" : "", after);
            list = get_json(path);
            seen += cJSON_GetArraySize(cJSON_GetObjectItem(list, "variants"));
            next = cJSON_GetObjectItem(list, "next_after");
            if (!cJSON_IsString(next)) {
                cJSON_Delete(list);
                break;
            }
            snprintf(after, sizeof(after), "%s", next->valuestring);
            cJSON_Delete(list);
        }
        cr_assert_eq(seen, 2, "paging by state saw %d pending variants", seen);
    }

    /* Bad reviews: a clear error with the pointer of the field. */
    http("POST", "/v1/campaigns/camp-m/variants:review", "{\"variant\":\"0123456789abcdef\",\"state\":\"approved\"}");
    e2e_assert_error_json(&rsp, 404, "not_found");
    snprintf(body, sizeof(body), "{\"variant\":\"%s\",\"state\":\"pending\"}", first);
    http("POST", "/v1/campaigns/camp-m/variants:review", body);
    e2e_assert_error_json(&rsp, 400, "invalid_argument");
    cr_assert(strstr(rsp.body, "\"/state\"") != NULL, "%s", rsp.body);
    http("POST", "/v1/campaigns/camp-m/variants:generate", "{\"locale\":\"fr-FR\"}");
    e2e_assert_error_json(&rsp, 400, "invalid_argument");
    cr_assert(strstr(rsp.body, "\"/locale\"") != NULL, "%s", rsp.body);
    http("POST", "/v1/campaigns/nope/variants:generate", NULL);
    e2e_assert_error_json(&rsp, 404, "not_found");
    e2e_assert_stopped_clean(&d);
}

/* Starts the double and the daemon with two backends on it: "dbl" answers with 最佳, "dblok" answers well. */
static void start_with_double(void)
{
    static char spec[512];
    const char *args[] = {"--gen-endpoints", spec, "--gen-retries", "0", NULL};

    genfix_double_start(&dbl);
    dbl_running = true;
    cr_assert_eq(setenv("TEST_DOUBLE_KEY", "test-key", 1), 0);
    snprintf(spec, sizeof(spec), "dbl=%s|forbidden|TEST_DOUBLE_KEY, dblok=%s|ok|TEST_DOUBLE_KEY", dbl.base_url,
             dbl.base_url);
    e2e_assert_started(&d, args);
}

Test(variants, forbidden_terms_never_reach_a_stored_variant)
{
    static const char *const edits[] = {"\"demo-coffee\"", "\"camp-f\"", "\"backend\": \"builtin\"",
                                        "\"backend\": \"dbl\"", NULL};
    cJSON *list, *usage, *v;
    int n = 0;

    start_with_double();
    put_campaign("camp-f", edits);
    wait_metric("adsmith_variants_stored_total{state=\"rejected\"}", 1);
    cr_assert_geq(genfix_double_count(&dbl, "forbidden"), 1u);
    http("GET", "/v1/campaigns/camp-f/variants", NULL);
    cr_assert_eq(rsp.status, 200);
    cr_assert_null(strstr(rsp.body, "\xe6\x9c\x80\xe4\xbd\xb3"), "最佳 reached storage: %s", rsp.body);
    list = cJSON_Parse(rsp.body);
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(list, "variants"))
    {
        cr_assert_str_eq(cJSON_GetObjectItem(v, "state")->valuestring, "rejected");
        cr_assert_str_eq(
            cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "checks"), "reasons"), 0)->valuestring,
            "forbidden_term");
        n++;
    }
    cr_assert_gt(n, 0);
    cJSON_Delete(list);
    /* The tokens of the refused output are charged all the same. */
    usage = get_json("/v1/campaigns/camp-f/usage");
    cr_assert_gt(num_at(cJSON_GetObjectItem(usage, "tokens"), "settled", NULL), 0);
    cJSON_Delete(usage);
    cr_assert_eq(metric("adsmith_variants_stored_total{state=\"approved\"}"), 0);
    e2e_assert_stopped_clean(&d);
}

Test(variants, a_hard_limit_refuses_before_anything_is_sent)
{
    static const char *const edits[] = {
        "\"demo-coffee\"", "\"camp-h\"", "\"backend\": \"builtin\"", "\"backend\": \"dblok\"", "\"tokens\": 1000000",
        "\"tokens\": 500", NULL};
    cJSON *usage, *list;

    start_with_double();
    put_campaign("camp-h", edits);
    wait_metric("adsmith_gen_refused_total", 1);
    cr_assert_eq(genfix_double_count(&dbl, "ok"), 0u, "a generation was sent although its reservation was refused");
    usage = get_json("/v1/campaigns/camp-h/usage");
    cr_assert_geq(num_at(cJSON_GetObjectItem(usage, "tokens"), "refusals", NULL), 1);
    cr_assert_eq(num_at(cJSON_GetObjectItem(usage, "tokens"), "settled", NULL), 0);
    cr_assert_eq(num_at(cJSON_GetObjectItem(usage, "tokens"), "reserved", NULL), 0);
    cJSON_Delete(usage);
    list = get_json("/v1/campaigns/camp-h/variants");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(list, "variants")), 0);
    cJSON_Delete(list);
    /* Asked for explicitly, the same refusal is said at once. */
    http("POST", "/v1/campaigns/camp-h/variants:generate", NULL);
    e2e_assert_error_json(&rsp, 409, "token_limit");
    cr_assert(strstr(rsp.body, "\"/token_package\"") != NULL, "%s", rsp.body);
    e2e_assert_stopped_clean(&d);
}

Test(variants, an_openai_backend_writes_variants_metered_by_reported_usage)
{
    static const char *const edits[] = {"\"demo-coffee\"", "\"camp-o\"", "\"backend\": \"builtin\"",
                                        "\"backend\": \"dblok\"", NULL};
    cJSON *usage, *list, *v;

    start_with_double();
    put_campaign("camp-o", edits);
    wait_metric("adsmith_variants_stored_total{state=\"approved\"}", 1);
    cr_assert_geq(genfix_double_count(&dbl, "ok"), 1u);
    list = get_json("/v1/campaigns/camp-o/variants?state=approved");
    v = cJSON_GetArrayItem(cJSON_GetObjectItem(list, "variants"), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "provenance"), "backend")->valuestring, "dblok");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "provenance"), "model")->valuestring, "ok");
    cJSON_Delete(list);
    /* Every token the provider reported is charged once, by kind. The double reports, per call, prompt_tokens
     * 321 of which 128 cached, completion_tokens 87 of which 9 reasoning (tests/gen/openai_double.c). */
    {
        double calls;
        usage = get_json("/v1/campaigns/camp-o/usage");
        v = cJSON_GetObjectItem(usage, "tokens");
        calls = num_at(v, "generations", NULL);
        cr_assert_geq(calls, 1);
        cr_assert_eq(num_at(v, "settled", NULL), 408 * calls, "%s", rsp.body);
        cr_assert_eq(num_at(v, "by_kind", "prompt"), 193 * calls, "%s", rsp.body);
        cr_assert_eq(num_at(v, "by_kind", "cached"), 128 * calls);
        cr_assert_eq(num_at(v, "by_kind", "completion"), 78 * calls);
        cr_assert_eq(num_at(v, "by_kind", "reasoning"), 9 * calls);
    }
    cr_assert_gt(num_at(v, "settled", NULL), 0);
    cr_assert_eq(num_at(v, "estimated", NULL), 0, "the double reports usage: nothing is estimated");
    cr_assert_eq(num_at(v, "reserved", NULL), 0);
    cJSON_Delete(usage);
    e2e_assert_stopped_clean(&d);
}

Test(variants, money_from_price_rows_and_alerts_once_per_period)
{
    static const char *const edits[] = {
        "\"demo-coffee\"", "\"camp-p\"", "\"tokens\": 1000000", "\"tokens\": 3000", "[80, 100]", "[50, 100]", NULL};
    cJSON *usage, *alerts, *a, *t;
    int n = 0;

    e2e_assert_started(&d, NULL);
    http("POST", "/v1/admin/token-prices",
         "{\"model\":\"builtin\",\"kind\":\"prompt\",\"valid_from\":0,\"micros_per_million\":1000000,\"currency\":"
         "\"USD\"}");
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    http("POST", "/v1/admin/token-prices",
         "{\"model\":\"builtin\",\"kind\":\"completion\",\"valid_from\":0,\"micros_per_million\":2000000,"
         "\"currency\":\"USD\"}");
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    http("POST", "/v1/admin/token-prices",
         "{\"model\":\"builtin\",\"kind\":\"spoken\",\"valid_from\":0,"
         "\"micros_per_million\":1,\"currency\":\"USD\"}");
    e2e_assert_error_json(&rsp, 400, "invalid_argument");
    cr_assert(strstr(rsp.body, "\"/kind\"") != NULL, "%s", rsp.body);

    put_campaign("camp-p", edits);
    wait_metric("adsmith_variants_stored_total{state=\"approved\"}", 3);
    usage = get_json("/v1/campaigns/camp-p/usage");
    t = cJSON_GetObjectItem(usage, "tokens");
    /* 1 micro-unit per prompt token, 2 per completion token. */
    cr_assert_eq(num_at(t, "money_micros", NULL),
                 num_at(t, "by_kind", "prompt") + 2 * num_at(t, "by_kind", "completion"), "%s", rsp.body);
    cr_assert_gt(num_at(t, "money_micros", NULL), 0);
    cr_assert_geq(num_at(t, "settled", NULL), 1500, "the 50 %% threshold of 3000 was crossed");
    cJSON_Delete(usage);

    alerts = get_json("/v1/admin/token-alerts");
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(alerts, "alerts"))
    {
        cr_assert_str_eq(cJSON_GetObjectItem(a, "campaign")->valuestring, "camp-p");
        cr_assert_eq(num_at(a, "threshold_pct", NULL), 50);
        cr_assert_eq(num_at(a, "allowance", NULL), 3000);
        n++;
    }
    cr_assert_eq(n, 1, "the 50 %% threshold is raised once: %d alerts", n);
    cJSON_Delete(alerts);
    e2e_assert_stopped_clean(&d);
}
