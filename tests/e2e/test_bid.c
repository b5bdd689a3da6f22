/*
 * End-to-end tests of the bid path (issue 6) against the real daemon:
 * POST /openrtb2/bid over every fixture in tests/bid/fixtures (200 or 204,
 * never 5xx; every bid valid by ortb_check_bid() and traceable to the served
 * model), malformed requests (400 with an error body), campaigns uploaded
 * through the API becoming biddable, privacy (coppa keeps the profile out),
 * signed notices (spend once, forgeries refused and counted, test traffic
 * free) and a seeded mutation loop over the fixtures.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../bid/bidfix.h"
#include "adsmith/bid.h"
#include "adsmith/ortb.h"
#include "adsmith/variant.h"
#include "daemon.h"

#define NOTICE_BASE "https://bid.example.com"
#define NOTICE_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define GEN_CAMPAIGNS 40

static struct e2e_daemon d;
static struct e2e_resp rsp;
static struct ortb_scratch *scr;
static struct bid_fx fx;

static void setup(void)
{
    cr_assert_eq(e2e_daemon_init(&d), 0, "e2e_daemon_init: %s", d.why);
    cr_assert_eq(ortb_scratch_new(&scr), 0);
    cr_assert_eq(bid_fx_parse(BIDFIX_FX, &fx, NULL), 0);
}

static void teardown(void)
{
    ortb_scratch_free(scr);
    e2e_daemon_done(&d);
}

TestSuite(bid, .init = setup, .fini = teardown, .timeout = 30);

static const char *const daemon_args[] = {"--notice-key", NOTICE_KEY, "--notice-url", NOTICE_BASE, "--fx-rates",
                                          BIDFIX_FX,      NULL};

/* ---- HTTP ---- */

static void http(const char *method, const char *path, const char *body, const char *const *headers, bool no_auth,
                 const char *capture)
{
    struct e2e_req req = {.proto = E2E_HTTP1,
                          .method = method,
                          .path = path,
                          .body = body,
                          .body_len = body != NULL ? strlen(body) : 0,
                          .headers = headers,
                          .capture = capture,
                          .no_auth = no_auth};

    cr_assert_eq(e2e_http(&d, &req, &rsp), 0, "%s", d.why);
    cr_assert_eq(rsp.code, CURLE_OK, "%s %s: %s (daemon %s)", method, path, rsp.error,
                 e2e_daemon_running(&d) ? "alive" : "dead");
    cr_assert_not(rsp.body_truncated);
}

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

static void put_campaign(const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    char path[128];

    cr_assert_not_null(doc);
    snprintf(path, sizeof(path), "/v1/campaigns/%s", cJSON_GetObjectItem(doc, "id")->valuestring);
    cJSON_Delete(doc);
    http("PUT", path, json, json_ct, false, NULL);
    cr_assert(rsp.status == 200 || rsp.status == 201, "PUT %s: %ld %s", path, rsp.status, rsp.body);
}

static void put_generated(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        char *json = bidfix_campaign(i);
        cr_assert_not_null(json);
        put_campaign(json);
        free(json);
    }
}

/* POSTs @p body to /openrtb2/bid with x-openrtb-version: 2.6. */
static void bid_request(const char *body, size_t len)
{
    static const char *const h[] = {"Content-Type: application/json", "x-openrtb-version: 2.6", NULL};
    struct e2e_req req = {.proto = E2E_HTTP1,
                          .path = "/openrtb2/bid",
                          .method = "POST",
                          .body = body,
                          .body_len = len,
                          .headers = h,
                          .capture = "x-openrtb-version",
                          .no_auth = true};

    cr_assert_eq(e2e_http(&d, &req, &rsp), 0, "%s", d.why);
    cr_assert_eq(rsp.code, CURLE_OK, "POST /openrtb2/bid: %s (daemon %s)", rsp.error,
                 e2e_daemon_running(&d) ? "alive" : "dead");
    cr_assert_not(rsp.body_truncated);
}

static void model_version(char out[64])
{
    cJSON *doc;

    http("GET", "/v1/admin/model", NULL, NULL, false, NULL);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    doc = cJSON_Parse(rsp.body);
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(doc, "version")), "%s", rsp.body);
    snprintf(out, 64, "%s", cJSON_GetObjectItem(doc, "version")->valuestring);
    cJSON_Delete(doc);
}

static double metric(const char *series)
{
    double v = -1;

    http("GET", "/metrics", NULL, NULL, true, NULL);
    cr_assert_eq(rsp.status, 200);
    cr_assert_eq(e2e_metric(rsp.body, series, &v), 0, "no %s in /metrics", series);
    return v;
}

/* ---- checking an answer ---- */

static struct cidx_str jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(o, name);
    return cJSON_IsString(v) ? (struct cidx_str){v->valuestring, strlen(v->valuestring)} : (struct cidx_str){NULL, 0};
}

static int64_t jint(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(o, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static void strs(const cJSON *arr, struct cidx_str *out, uint32_t cap, uint32_t *ret_n)
{
    const cJSON *v;
    uint32_t n = 0;

    cJSON_ArrayForEach(v, arr)
    {
        cr_assert(cJSON_IsString(v));
        cr_assert_lt(n, cap);
        out[n++] = (struct cidx_str){v->valuestring, strlen(v->valuestring)};
    }
    *ret_n = n;
}

/*
 * Checks a 200 answer to @p body: a BidResponse for the request's id whose
 * every bid passes ortb_check_bid() and names @p version as its model.
 * @return the number of bids; the response document in *@p ret_doc (caller deletes) when not NULL.
 */
static uint32_t check_answer(const char *what, const char *body, size_t len, const char *version, cJSON **ret_doc)
{
    const struct ortb_req *r;
    struct ads_diag diag = {{0}, {0}};
    cJSON *doc = cJSON_Parse(rsp.body), *sb, *seat, *b;
    struct ortb_check_ctx chk = {{NULL, 0}, {NULL, 0}, bid_fx_rate, &fx};
    uint32_t n = 0;

    cr_assert_eq(ortb_parse(scr, DOC_JSON, body, len, &r, &diag, NULL), 0,
                 "%s: the daemon answered a request "
                 "ortb_parse refuses (%s)",
                 what, diag.message);
    cr_assert_not_null(doc, "%s: not JSON: %s", what, rsp.body);
    cr_assert_eq(jstr(doc, "id").len, r->id.len);
    cr_assert_eq(memcmp(jstr(doc, "id").ptr, r->id.ptr, r->id.len), 0, "%s: the response id", what);
    chk.cur = jstr(doc, "cur");
    cr_assert(cJSON_IsArray(cJSON_GetObjectItem(doc, "seatbid")), "%s: %s", what, rsp.body);
    cJSON_ArrayForEach(sb, cJSON_GetObjectItem(doc, "seatbid"))
    {
        chk.seat = jstr(sb, "seat");
        cJSON_ArrayForEach(seat, cJSON_GetObjectItem(sb, "bid"))
        {
            struct ortb_bid bid;
            struct cidx_str adomain[16], cat[16];
            const cJSON *model;

            b = seat;
            memset(&bid, 0, sizeof(bid));
            bid.id = jstr(b, "id");
            bid.impid = jstr(b, "impid");
            cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(b, "price")), "%s: a bid without a price", what);
            bid.price_micros = llround(cJSON_GetObjectItem(b, "price")->valuedouble * 1e6);
            bid.adm = jstr(b, "adm");
            bid.crid = jstr(b, "crid");
            bid.cid = jstr(b, "cid");
            bid.dealid = jstr(b, "dealid");
            bid.bundle = jstr(b, "bundle");
            strs(cJSON_GetObjectItem(b, "adomain"), adomain, 16, &bid.nadomain);
            bid.adomain = adomain;
            strs(cJSON_GetObjectItem(b, "cat"), cat, 16, &bid.ncat);
            bid.cat = cat;
            bid.cattax = (int32_t)jint(b, "cattax");
            bid.w = (uint16_t)jint(b, "w");
            bid.h = (uint16_t)jint(b, "h");
            bid.mtype = (int32_t)jint(b, "mtype");
            cr_assert_eq(ortb_check_bid(r, &bid, &chk, &diag), ORTB_RULE_OK, "%s: bid %s breaks a rule: %s", what,
                         bid.id.ptr, diag.message);
            model = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "ext"), "adsmith"), "model");
            cr_assert(cJSON_IsString(model), "%s: a bid without ext.adsmith.model", what);
            cr_assert_str_eq(model->valuestring, version, "%s: the bid's model", what);
            cr_assert(jstr(b, "nurl").len > 0 && jstr(b, "burl").len > 0 && jstr(b, "lurl").len > 0);
            n++;
        }
    }
    cr_assert_gt(n, 0, "%s: a 200 without bids", what);
    if (ret_doc != NULL)
        *ret_doc = doc;
    else
        cJSON_Delete(doc);
    return n;
}

/* ---- fixtures ---- */

struct fixture {
    char name[128];
    char *body;
    size_t len;
};

static struct fixture fixtures[64];
static size_t nfixtures;

static void load_fixtures(void)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char dir[512], path[1024];
    struct dirent *e;
    DIR *dd;

    cr_assert_not_null(root);
    snprintf(dir, sizeof(dir), "%s/tests/bid/fixtures", root);
    dd = opendir(dir);
    cr_assert_not_null(dd, "%s", dir);
    nfixtures = 0;
    while ((e = readdir(dd)) != NULL && nfixtures < 64) {
        size_t l = strlen(e->d_name);
        struct fixture *f = &fixtures[nfixtures];
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
            continue;
        snprintf(f->name, sizeof(f->name), "%.*s", (int)sizeof(f->name) - 1, e->d_name);
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        f->body = malloc(1 << 20);
        cr_assert_not_null(f->body);
        cr_assert_eq(e2e_file_read(path, f->body, 1 << 20, &f->len), 0);
        nfixtures++;
    }
    closedir(dd);
    cr_assert_geq(nfixtures, 20);
}

Test(bid, every_fixture_gets_200_or_204_and_every_bid_is_valid)
{
    char version[64];
    uint32_t bids = 0, answered = 0;

    load_fixtures();
    e2e_assert_started(&d, daemon_args);
    put_generated(GEN_CAMPAIGNS);
    model_version(version);
    usleep(1100 * 1000); /* the index is rebuilt after campaign writes */
    for (size_t i = 0; i < nfixtures; i++) {
        bid_request(fixtures[i].body, fixtures[i].len);
        cr_assert(rsp.status == 200 || rsp.status == 204, "%s: %ld %s", fixtures[i].name, rsp.status, rsp.body);
        cr_assert(rsp.has_header, "%s: x-openrtb-version is echoed", fixtures[i].name);
        cr_assert_str_eq(rsp.header, "2.6");
        if (rsp.status == 200) {
            bids += check_answer(fixtures[i].name, fixtures[i].body, fixtures[i].len, version, NULL);
            answered++;
        } else {
            cr_assert_eq(rsp.body_len, 0);
        }
    }
    cr_assert_geq(answered, nfixtures / 2, "only %u of %zu fixtures got bids", answered, nfixtures);
    cr_assert_geq(bids, answered);
    for (size_t i = 0; i < nfixtures; i++)
        free(fixtures[i].body);
    e2e_assert_stopped_clean(&d);
}

Test(bid, malformed_requests_get_400_with_an_error_body)
{
    static const char *const bodies[] = {
        "not json",
        "[]",
        "{\"imp\":[{\"id\":\"1\",\"banner\":{}}]}",
        "{\"id\":\"\",\"imp\":[{\"id\":\"1\"}]}",
        "{\"id\":\"r\"}",
        "{\"id\":\"r\",\"imp\":[]}",
        "{\"id\":\"r\",\"imp\":[{\"banner\":{}}]}",
        "{\"id\":\"r\",\"imp\":[{\"id\":\"1\"},{\"id\":\"1\"}]}",
        "{\"id\":\"r\",\"imp\":[{\"id\":\"1\"}]",
    };

    e2e_assert_started(&d, daemon_args);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        bid_request(bodies[i], strlen(bodies[i]));
        e2e_assert_error_json(&rsp, 400, "bad_request");
    }
    e2e_assert_stopped_clean(&d);
}

static const char banner_req[] =
    "{\"id\":\"r-%d\",\"imp\":[{\"id\":\"1\",\"banner\":{\"format\":[{\"w\":300,\"h\":250}]}}],"
    "\"site\":{\"domain\":\"news.example\"}%s}";

static void banner_bid(int n, const char *extra)
{
    char body[1024];
    int len = snprintf(body, sizeof(body), banner_req, n, extra);

    bid_request(body, (size_t)len);
    cr_assert(rsp.status == 200 || rsp.status == 204, "%ld %s", rsp.status, rsp.body);
}

Test(bid, a_campaign_put_through_the_api_is_biddable_within_a_second)
{
    char *json = bidfix_campaign(1); /* banner only, EUR, max_cpm */
    uint64_t t0;
    int n = 0;

    e2e_assert_started(&d, daemon_args);
    banner_bid(n++, "");
    cr_assert_eq(rsp.status, 204, "nothing to bid with yet");
    put_campaign(json);
    free(json);
    t0 = e2e_now_ms();
    do {
        banner_bid(n++, "");
        if (rsp.status == 200)
            break;
        usleep(20 * 1000);
    } while (e2e_now_ms() - t0 < 1000);
    cr_assert_eq(rsp.status, 200, "the campaign bids within a second of its PUT");
    e2e_assert_stopped_clean(&d);
}

Test(bid, coppa_keeps_the_profile_out_of_the_decision)
{
    char *json = bidfix_campaign(1);
    cJSON *doc = cJSON_Parse(json);
    char *seg;
    const char *user = ",\"user\":{\"id\":\"kid-1\"}";
    char extra[256];

    free(json);
    cJSON_AddItemToObject(cJSON_GetObjectItem(doc, "targeting"), "segments",
                          cJSON_Parse("{\"include\":[\"toy-buyers\"]}"));
    seg = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    e2e_assert_started(&d, daemon_args);
    put_campaign(seg);
    free(seg);
    http("PUT", "/v1/users/kid-1", "{\"id\":\"kid-1\",\"segments\":[{\"id\":\"toy-buyers\",\"weight\":1}]}", json_ct,
         false, NULL);
    cr_assert(rsp.status == 200 || rsp.status == 201, "%ld %s", rsp.status, rsp.body);
    usleep(1100 * 1000);
    banner_bid(1, user);
    cr_assert_eq(rsp.status, 200, "the profile's segment matches");
    snprintf(extra, sizeof(extra), "%s,\"regs\":{\"coppa\":1}", user);
    banner_bid(2, extra);
    cr_assert_eq(rsp.status, 204, "coppa=1: the profile is not used, the segment-targeted campaign does not bid");
    banner_bid(3, "");
    cr_assert_eq(rsp.status, 204, "no user, no segment");
    e2e_assert_stopped_clean(&d);
}

/* ---- notices ---- */

/* The notice URL @p name ("nurl") of the first bid of @p doc as a daemon path, with ${AUCTION_PRICE} = @p price. */
static void notice_path(const cJSON *doc, const char *name, const char *price, char *out, size_t cap)
{
    const cJSON *b =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "seatbid"), 0), "bid"), 0);
    const char *url = cJSON_GetObjectItem(b, name)->valuestring;
    const char *macro = strstr(url, "${AUCTION_PRICE}");

    cr_assert(strncmp(url, NOTICE_BASE "/v1/notice/", strlen(NOTICE_BASE) + 11) == 0, "%s", url);
    cr_assert_not_null(macro, "%s", url);
    snprintf(out, cap, "%.*s%s%s", (int)(macro - url - strlen(NOTICE_BASE)), url + strlen(NOTICE_BASE), price,
             macro + strlen("${AUCTION_PRICE}"));
}

static void notice(const char *path)
{
    http("GET", path, NULL, NULL, true, NULL);
}

static int64_t spent(const char *id)
{
    char path[128];
    cJSON *doc;
    int64_t v;

    snprintf(path, sizeof(path), "/v1/campaigns/%s/usage", id);
    http("GET", path, NULL, NULL, false, NULL);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    doc = cJSON_Parse(rsp.body);
    cr_assert_not_null(doc);
    v = jint(cJSON_GetObjectItem(doc, "spend"), "total_micros");
    cJSON_Delete(doc);
    return v;
}

/* Replaces the first "&@p name=VALUE" of @p path with "&@p name=@p value". */
static void replace_param(char *path, size_t cap, const char *name, const char *value)
{
    char key[16], tmp[4096];
    char *at, *end;

    snprintf(key, sizeof(key), "&%s=", name);
    at = strstr(path, key);
    cr_assert_not_null(at, "%s in %s", key, path);
    end = strchr(at + 1, '&');
    snprintf(tmp, sizeof(tmp), "%.*s%s%s%s", (int)(at - path), path, key, value, end != NULL ? end : "");
    snprintf(path, cap, "%s", tmp);
}

Test(bid, notices_charge_once_and_forgeries_are_refused)
{
    char version[64], path[4096], bad[4096];
    char *json = bidfix_campaign(6); /* banner only, USD, max_cpm */
    cJSON *doc;
    const char *id = "gen-006";
    double forged0;
    int64_t s0;

    e2e_assert_started(&d, daemon_args);
    put_campaign(json);
    free(json);
    model_version(version);
    usleep(1100 * 1000);
    {
        char body[1024];
        int len = snprintf(body, sizeof(body), banner_req, 1, "");
        bid_request(body, (size_t)len);
        cr_assert_eq(rsp.status, 200, "%s", rsp.body);
        check_answer("banner", body, (size_t)len, version, &doc);
    }
    cr_assert_eq(spent(id), 0);
    forged0 = metric("adsmith_bid_notices_forged_total");

    /* a forged signature, an altered parameter: 403, counted */
    notice_path(doc, "nurl", "1.00", path, sizeof(path));
    snprintf(bad, sizeof(bad), "%s", path);
    replace_param(bad, sizeof(bad), "sig", "0000000000000000000000000000000000000000000000000000000000000000");
    notice(bad);
    e2e_assert_error_json(&rsp, 403, "forbidden");
    snprintf(bad, sizeof(bad), "%s", path);
    replace_param(bad, sizeof(bad), "bp", "99000000");
    notice(bad);
    e2e_assert_error_json(&rsp, 403, "forbidden");
    snprintf(bad, sizeof(bad), "%s", path);
    replace_param(bad, sizeof(bad), "c", "gen-007");
    notice(bad);
    e2e_assert_error_json(&rsp, 403, "forbidden");
    cr_assert_eq(metric("adsmith_bid_notices_forged_total"), forged0 + 3);
    cr_assert_eq(spent(id), 0, "nothing charged for a forgery");

    /* a clearing price above our bid */
    notice_path(doc, "nurl", "1000", bad, sizeof(bad));
    notice(bad);
    e2e_assert_error_json(&rsp, 400, "bad_request");
    cr_assert_eq(spent(id), 0);

    /* the real win: 1.00 CPM is 1000 micros for one impression */
    notice(path);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    cr_assert(strstr(rsp.body, "\"recorded\"") != NULL, "%s", rsp.body);
    cr_assert_eq(spent(id), 1000);
    notice(path);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    cr_assert(strstr(rsp.body, "\"duplicate\"") != NULL, "%s", rsp.body);
    cr_assert_eq(spent(id), 1000, "the same notice again is counted once");
    notice_path(doc, "burl", "1.00", bad, sizeof(bad));
    notice(bad);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    cr_assert_eq(spent(id), 1000, "a bill after the win charges nothing more");
    http("POST", path, "", NULL, true, NULL);
    cr_assert_eq(rsp.status, 200, "notices may be POSTed too: %s", rsp.body);
    cr_assert_geq(metric("adsmith_bid_notices_total"), 7);
    cJSON_Delete(doc);

    /* test traffic: the notice is accepted, nothing is spent */
    {
        char body[1024];
        int len = snprintf(body, sizeof(body), banner_req, 2, ",\"test\":1");
        bid_request(body, (size_t)len);
        cr_assert_eq(rsp.status, 200, "%s", rsp.body);
        check_answer("test=1", body, (size_t)len, version, &doc);
        notice_path(doc, "nurl", "1.00", path, sizeof(path));
        cr_assert(strstr(path, "&t=1&") != NULL);
        notice(path);
        cr_assert_eq(rsp.status, 200, "%s", rsp.body);
        s0 = spent(id);
        cr_assert_eq(s0, 1000, "test=1 spends nothing");
        cJSON_Delete(doc);
    }
    e2e_assert_stopped_clean(&d);
}

/* ---- variants of the native creative ---- */

/* Stores an approved variant of demo-coffee straight into the stopped daemon's data directory. */
static void store_variant(char id[VAR_ID_LEN + 1])
{
    static struct var_rec v;
    struct store *st;
    MDB_txn *txn;

    cr_assert_eq(store_open(d.data_dir, 256u << 20, NULL, NULL, &st), 0);
    memset(&v, 0, sizeof(v));
    snprintf(v.campaign, sizeof(v.campaign), "demo-coffee");
    snprintf(v.locale, sizeof(v.locale), "en-US");
    snprintf(v.title, sizeof(v.title), "Northwind roasts for {{city}}");
    snprintf(v.cta, sizeof(v.cta), "Taste it");
    snprintf(v.ai_label, sizeof(v.ai_label), "AI-generated");
    snprintf(v.prov.backend, sizeof(v.prov.backend), "builtin");
    v.state = VAR_APPROVED;
    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, 0, &txn), 0);
    cr_assert_eq(var_put(txn, st, &v, id), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    store_free(st);
}

static struct var_stats variant_stats(const char *id)
{
    struct var_stats vs;
    struct store *st;
    MDB_txn *txn;

    cr_assert_eq(store_open(d.data_dir, 256u << 20, NULL, NULL, &st), 0);
    cr_assert_eq(store_read_begin(st, &txn), 0);
    cr_assert_eq(var_stats_get(txn, st, "demo-coffee", id, &vs), 0);
    store_read_end(txn);
    store_free(st);
    return vs;
}

/* The lifetime impressions of @p campaign in user @p user's frequency counters (0: none). */
static int64_t user_impressions(const char *user, const char *campaign)
{
    char path[128];
    const cJSON *f;
    cJSON *doc;
    int64_t n = 0;

    snprintf(path, sizeof(path), "/v1/users/%s", user);
    http("GET", path, NULL, NULL, false, NULL);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    doc = cJSON_Parse(rsp.body);
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(doc, "frequency"))
    {
        if (strcmp(cJSON_GetObjectItem(f, "campaign")->valuestring, campaign) == 0)
            n = jint(f, "lifetime");
    }
    cJSON_Delete(doc);
    return n;
}

Test(bid, a_stored_variant_serves_and_its_win_counts_one_impression, .timeout = 60)
{
    static const char *const args[] = {"--notice-key",
                                       NOTICE_KEY,
                                       "--notice-url",
                                       NOTICE_BASE,
                                       "--fx-rates",
                                       BIDFIX_FX,
                                       "--variant-control-pct",
                                       "0",
                                       NULL};
    static const char req[] = "{\"id\":\"nv-%d\",\"imp\":[{\"id\":\"1\",\"native\":{}}],"
                              "\"device\":{\"language\":\"en\"},\"user\":{\"id\":\"u-var\"}}";
    char id[VAR_ID_LEN + 1], body[512], path[4096], want[128];
    const cJSON *b = NULL;
    cJSON *doc = NULL;
    char *demo;
    size_t len;
    uint64_t t0;
    int n = 0;

    e2e_assert_started(&d, args);
    demo = malloc(1 << 16);
    cr_assert_eq(e2e_file_read(e2e_source("schemas/examples/campaign-demo.json"), demo, 1 << 16, &len), 0);
    demo[len] = '\0';
    put_campaign(demo);
    free(demo);
    http("PUT", "/v1/users/u-var", "{\"id\":\"u-var\",\"attributes\":{\"city\":\"Lyon\"}}", json_ct, false, NULL);
    cr_assert(rsp.status == 200 || rsp.status == 201, "%ld %s", rsp.status, rsp.body);
    e2e_assert_stopped_clean(&d);
    store_variant(id);
    d.pid = 0; /* a second run on the same data directory (as test_durability does) */
    d.reaped = false;
    e2e_assert_started(&d, args);

    /* The snapshot builder starts with the first bid request; the variant serves once it has built. */
    t0 = e2e_now_ms();
    do {
        int blen = snprintf(body, sizeof(body), req, n++);
        bid_request(body, (size_t)blen);
        if (rsp.status == 200 && strstr(rsp.body, "AI-generated") != NULL)
            break;
        usleep(50 * 1000);
    } while (e2e_now_ms() - t0 < 5000);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    doc = cJSON_Parse(rsp.body);
    cr_assert_not_null(doc);
    b = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "seatbid"), 0), "bid"), 0);
    cr_assert_not_null(strstr(cJSON_GetObjectItem(b, "adm")->valuestring, "Northwind roasts for Lyon"), "%s", rsp.body);
    cr_assert_not_null(strstr(cJSON_GetObjectItem(b, "adm")->valuestring, "Northwind Coffee \xc2\xb7 AI-generated"));
    snprintf(want, sizeof(want), "demo-coffee/native/%s", id);
    cr_assert_str_eq(cJSON_GetObjectItem(b, "crid")->valuestring, want);
    snprintf(want, sizeof(want), "&vr=%s&", id);
    cr_assert_not_null(strstr(cJSON_GetObjectItem(b, "nurl")->valuestring, want));
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "ext"), "adsmith"), "variant")
                         ->valuestring,
                     id, "ext.adsmith.variant names the served variant: %s", rsp.body);
    cr_assert_eq(user_impressions("u-var", "demo-coffee"), 0);

    /* The win: one impression for the variant and on the profile, once however often it is retried. */
    notice_path(doc, "nurl", "1.00", path, sizeof(path));
    notice(path);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    cr_assert(strstr(rsp.body, "\"recorded\"") != NULL, "%s", rsp.body);
    notice(path);
    cr_assert(strstr(rsp.body, "\"duplicate\"") != NULL, "%s", rsp.body);
    notice_path(doc, "burl", "1.00", path, sizeof(path));
    notice(path);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    cr_assert_eq(user_impressions("u-var", "demo-coffee"), 1, "the win counts on the frequency caps");
    /* A forged variant is refused like any altered parameter. */
    notice_path(doc, "nurl", "1.00", path, sizeof(path));
    replace_param(path, sizeof(path), "vr", "base");
    notice(path);
    e2e_assert_error_json(&rsp, 403, "forbidden");
    cJSON_Delete(doc);
    e2e_assert_stopped_clean(&d);
    cr_assert_eq(variant_stats(id).impressions, 1);
    cr_assert_eq(variant_stats(VAR_BASE).impressions, 0);
}

/* ---- mutations ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* A mutation of @p f into @p out (cap bytes): bytes flipped, cut, duplicated, or a value swapped for another token. */
static size_t mutate(const struct fixture *f, char *out, size_t cap)
{
    static const char *const tokens[] = {"0",        "-1",          "1e308",    "null",     "\"\"",
                                         "[]",       "{}",          "true",     "\"USD\"",  "99999999999",
                                         "0.000001", "\"\\u0000\"", "[[[[[[[[", "\"IAB1\"", "1.5"};
    size_t len = f->len < cap ? f->len : cap;
    uint32_t kind = rnd(4), times = 1 + rnd(4);

    memcpy(out, f->body, len);
    for (uint32_t t = 0; t < times && len > 0; t++) {
        size_t at = rnd((uint32_t)len);
        switch (kind) {
        case 0: out[at] = (char)rnd(256); break;
        case 1: len = at; break;
        case 2: { /* a value after ':' replaced by a token */
            char *colon = memchr(out + at, ':', len - at);
            const char *tok = tokens[rnd(sizeof(tokens) / sizeof(tokens[0]))];
            size_t tl = strlen(tok), vs, ve;
            if (colon == NULL)
                break;
            vs = (size_t)(colon - out) + 1;
            for (ve = vs; ve < len && out[ve] != ',' && out[ve] != '}' && out[ve] != ']'; ve++)
                ;
            if (len - (ve - vs) + tl >= cap)
                break;
            memmove(out + vs + tl, out + ve, len - ve);
            memcpy(out + vs, tok, tl);
            len = len - (ve - vs) + tl;
            break;
        }
        default: { /* a span duplicated */
            size_t n = rnd(64);
            if (at + n > len || len + n >= cap)
                break;
            memmove(out + at + n, out + at, len - at);
            len += n;
            break;
        }
        }
    }
    return len;
}

Test(bid, mutated_requests_never_get_5xx, .timeout = 30)
{
    static char body[1 << 17];
    char version[64];
    uint32_t st[6] = {0};
    const uint32_t rounds = 3000;

    load_fixtures();
    e2e_assert_started(&d, daemon_args);
    put_generated(GEN_CAMPAIGNS);
    model_version(version);
    usleep(1100 * 1000);
    for (uint32_t i = 0; i < rounds; i++) {
        const struct fixture *f = &fixtures[rnd((uint32_t)nfixtures)];
        size_t len = mutate(f, body, sizeof(body) - 1);
        bid_request(body, len);
        cr_assert(rsp.status >= 200 && rsp.status < 500, "round %u (%s): %ld %s", i, f->name, rsp.status, rsp.body);
        st[rsp.status / 100]++;
        if (rsp.status == 200)
            check_answer(f->name, body, len, version, NULL);
    }
    cr_assert(e2e_daemon_running(&d), "the daemon is alive");
    cr_assert_gt(st[2], 0);
    cr_assert_gt(st[4], 0, "some mutations are malformed");
    for (size_t i = 0; i < nfixtures; i++)
        free(fixtures[i].body);
    e2e_assert_stopped_clean(&d);
}
