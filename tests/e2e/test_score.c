/*
 * End-to-end tests of POST /v1/score against the daemon: campaigns and a user
 * written through the API, the embedded model, JSON and MessagePack both
 * ways, and errors with their status, code and pointer.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <msgpack.h>

#include "daemon.h"

static struct e2e_daemon d;
static struct e2e_resp rsp;

static void setup(void)
{
    cr_assert_eq(e2e_daemon_init(&d), 0, "e2e_daemon_init: %s", d.why);
}

static void teardown(void)
{
    e2e_daemon_done(&d);
}

TestSuite(score, .init = setup, .fini = teardown, .timeout = 60);

static const char *const json_ct[] = {"Content-Type: application/json", NULL};
static const char *const msgpack_ct[] = {"Content-Type: application/msgpack", "Accept: application/msgpack", NULL};

static void http(const char *method, const char *path, const void *body, size_t len, const char *const *headers,
                 bool no_auth)
{
    struct e2e_req req = {.proto = E2E_H2C_UPGRADE,
                          .method = method,
                          .path = path,
                          .body = body,
                          .body_len = len,
                          .headers = headers,
                          .no_auth = no_auth};

    cr_assert_eq(e2e_http(&d, &req, &rsp), 0, "%s", d.why);
    cr_assert_eq(rsp.code, CURLE_OK, "%s %s: %s (daemon %s)", method, path, rsp.error,
                 e2e_daemon_running(&d) ? "alive" : "dead");
    cr_assert_not(rsp.body_truncated);
}

static void put(const char *path, const char *json)
{
    http("PUT", path, json, strlen(json), json_ct, false);
    cr_assert(rsp.status == 200 || rsp.status == 201, "PUT %s: %ld %s", path, rsp.status, rsp.body);
}

/* The demo campaign as @p id with @p status, flight from 0. */
static void put_campaign(const char *id, const char *status)
{
    static char text[16384];
    char path[128];
    size_t n;
    cJSON *doc;
    char *json;

    cr_assert_eq(e2e_file_read(e2e_source("schemas/examples/campaign-demo.json"), text, sizeof(text) - 1, &n), 0);
    text[n] = '\0';
    doc = cJSON_Parse(text);
    cr_assert_not_null(doc);
    cJSON_ReplaceItemInObject(doc, "id", cJSON_CreateString(id));
    cJSON_ReplaceItemInObject(doc, "status", cJSON_CreateString(status));
    cJSON_ReplaceItemInObject(doc, "flight", cJSON_Parse("{\"start\":0,\"time_zone\":\"UTC\"}"));
    json = cJSON_PrintUnformatted(doc);
    snprintf(path, sizeof(path), "/v1/campaigns/%s", id);
    put(path, json);
    free(json);
    cJSON_Delete(doc);
}

/* Starts the daemon with campaigns c1 (active) and c3 (paused), user u1, and waits for the index to hold c1. */
static void start(void)
{
    e2e_assert_started(&d, NULL);
    put_campaign("c1", "active");
    put_campaign("c3", "paused");
    put("/v1/users/u1", "{\"attributes\":{\"country\":\"US\"},\"segments\":[{\"id\":\"coffee\",\"weight\":1,"
                        "\"last_seen\":1767000000}]}");
    for (int i = 0; i < 200; i++) {
        cJSON *doc, *n;
        http("GET", "/v1/admin/index", NULL, 0, NULL, false);
        doc = cJSON_Parse(rsp.body);
        n = cJSON_GetObjectItem(doc, "campaigns");
        if (cJSON_IsNumber(n) && n->valuedouble == 1) {
            cJSON_Delete(doc);
            return;
        }
        cJSON_Delete(doc);
        usleep(20 * 1000);
    }
    cr_assert_fail("the index never held c1: %s", rsp.body);
}

static const char request_json[] =
    "{\"user\":{\"id\":\"u1\"},\"context\":{\"site\":\"s1\",\"country\":\"USA\",\"device\":4,\"format\":\"banner\","
    "\"size\":\"300x250\"},\"candidates\":[{\"campaign\":\"c1\"},{\"campaign\":\"nope\"},{\"campaign\":\"c3\"},"
    "{\"campaign\":\"c1\",\"creative\":\"native\"},{\"campaign\":\"c1\",\"creative\":\"video\"}]}";

/* Checks the answer to request_json (as JSON, whichever encoding it came in). */
static void check_answer(cJSON *doc)
{
    cJSON *scores = cJSON_GetObjectItem(doc, "scores"), *s;
    static const char *const reasons[] = {NULL, "unknown_campaign", "not_active", NULL, "no_creative"};
    int i = 0;

    cr_assert(cJSON_IsString(cJSON_GetObjectItem(doc, "model")));
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(doc, "user_found")));
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(doc, "contextual")));
    cr_assert_eq(cJSON_GetObjectItem(doc, "scored")->valueint, 2);
    cr_assert_eq(cJSON_GetArraySize(scores), 5);
    cJSON_ArrayForEach(s, scores)
    {
        cJSON *score = cJSON_GetObjectItem(s, "score"), *rank = cJSON_GetObjectItem(s, "rank");
        cJSON *reason = cJSON_GetObjectItem(s, "reason");
        cr_assert_str_eq(cJSON_GetObjectItem(s, "campaign")->valuestring, i == 1 ? "nope" : i == 2 ? "c3" : "c1");
        if (reasons[i] == NULL) {
            cr_assert(cJSON_IsNumber(score) && score->valuedouble > 0 && score->valuedouble < 1, "%d", i);
            cr_assert(cJSON_IsNumber(rank), "%d", i);
            cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(s, "eligible")));
            cr_assert_null(reason);
        } else {
            cr_assert(cJSON_IsNull(score), "%d", i);
            cr_assert(cJSON_IsNull(rank), "%d", i);
            cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(s, "eligible")));
            cr_assert_str_eq(reason->valuestring, reasons[i]);
        }
        i++;
    }
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(scores, 0), "creative")->valuestring, "banner");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(scores, 3), "creative")->valuestring, "native");
    {
        double a = cJSON_GetObjectItem(cJSON_GetArrayItem(scores, 0), "score")->valuedouble;
        double b = cJSON_GetObjectItem(cJSON_GetArrayItem(scores, 3), "score")->valuedouble;
        int ra = cJSON_GetObjectItem(cJSON_GetArrayItem(scores, 0), "rank")->valueint;
        int rb = cJSON_GetObjectItem(cJSON_GetArrayItem(scores, 3), "rank")->valueint;
        cr_assert_eq(ra + rb, 3, "ranks 1 and 2");
        cr_assert_eq(ra == 1, a >= b, "rank 1 has the higher score (%g, %g)", a, b);
    }
}

Test(score, json_and_msgpack_round_trip)
{
    cJSON *from_json, *from_mp, *req = cJSON_Parse(request_json);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;

    start();
    http("POST", "/v1/score", request_json, strlen(request_json), json_ct, false);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    cr_assert_str_eq(rsp.content_type, "application/json");
    from_json = cJSON_Parse(rsp.body);
    cr_assert_not_null(from_json, "%s", rsp.body);
    check_answer(from_json);

    /* The same request as MessagePack, answered in MessagePack. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    {
        /* request_json by hand: user, context, candidates. */
        cJSON *it;
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "user", 4);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, "id", 2);
        msgpack_pack_str_with_body(&pk, "u1", 2);
        msgpack_pack_str_with_body(&pk, "context", 7);
        msgpack_pack_map(&pk, 5);
        msgpack_pack_str_with_body(&pk, "site", 4);
        msgpack_pack_str_with_body(&pk, "s1", 2);
        msgpack_pack_str_with_body(&pk, "country", 7);
        msgpack_pack_str_with_body(&pk, "USA", 3);
        msgpack_pack_str_with_body(&pk, "device", 6);
        msgpack_pack_uint32(&pk, 4);
        msgpack_pack_str_with_body(&pk, "format", 6);
        msgpack_pack_str_with_body(&pk, "banner", 6);
        msgpack_pack_str_with_body(&pk, "size", 4);
        msgpack_pack_str_with_body(&pk, "300x250", 7);
        msgpack_pack_str_with_body(&pk, "candidates", 10);
        msgpack_pack_array(&pk, (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(req, "candidates")));
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(req, "candidates"))
        {
            cJSON *cr = cJSON_GetObjectItem(it, "creative");
            const char *id = cJSON_GetObjectItem(it, "campaign")->valuestring;
            msgpack_pack_map(&pk, cr != NULL ? 2 : 1);
            msgpack_pack_str_with_body(&pk, "campaign", 8);
            msgpack_pack_str_with_body(&pk, id, strlen(id));
            if (cr != NULL) {
                msgpack_pack_str_with_body(&pk, "creative", 8);
                msgpack_pack_str_with_body(&pk, cr->valuestring, strlen(cr->valuestring));
            }
        }
    }
    http("POST", "/v1/score", sb.data, sb.size, msgpack_ct, false);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_eq(rsp.status, 200, "%s", rsp.body);
    cr_assert_str_eq(rsp.content_type, "application/msgpack");
    cr_assert(msgpack_zone_init(&zone, 4096));
    cr_assert_eq(msgpack_unpack(rsp.body, rsp.body_len, &off, &zone, &obj), MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(off, rsp.body_len, "one MessagePack value");
    from_mp = e2e_json_of_msgpack(&obj);
    msgpack_zone_destroy(&zone);
    cr_assert_not_null(from_mp);
    check_answer(from_mp);
    cr_assert(cJSON_Compare(from_json, from_mp, true), "the same answer in both encodings");

    cJSON_Delete(from_mp);
    cJSON_Delete(from_json);
    cJSON_Delete(req);

    /* Privacy: gdpr without consent is contextual. */
    {
        static const char body[] = "{\"user\":{\"id\":\"u1\"},\"privacy\":{\"gdpr\":1},\"candidates\":[{\"campaign\":"
                                   "\"c1\"}]}";
        cJSON *doc;
        http("POST", "/v1/score", body, strlen(body), json_ct, false);
        cr_assert_eq(rsp.status, 200, "%s", rsp.body);
        doc = cJSON_Parse(rsp.body);
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(doc, "contextual")), "%s", rsp.body);
        cJSON_Delete(doc);
    }
    e2e_assert_stopped_clean(&d);
}

/* The error body's pointer. */
static void assert_pointer(const char *pointer)
{
    cJSON *doc = cJSON_Parse(rsp.body);
    cJSON *p = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "error"), "pointer");

    cr_assert(cJSON_IsString(p), "%s", rsp.body);
    cr_assert_str_eq(p->valuestring, pointer, "%s", rsp.body);
    cJSON_Delete(doc);
}

Test(score, errors)
{
    static const char bad[] = "{\"candidates\":[{\"campaign\":\"a\"},{\"campaign\":\"b\"},{\"campaign\":\"c\"},"
                              "{\"campaign\":[]}]}";
    static const char ok[] = "{\"candidates\":[{\"campaign\":\"c1\"}]}";
    static const char *const text_ct[] = {"Content-Type: text/plain", NULL};
    size_t cap = 64 + 1001 * 20, len;
    char *big = malloc(cap);

    start();
    http("POST", "/v1/score", bad, strlen(bad), json_ct, false);
    e2e_assert_error_json(&rsp, 400, "invalid_argument");
    assert_pointer("/candidates/3/campaign");

    http("POST", "/v1/score", "{\"candidates\":[{\"campaign\":\"a\"}],\"context\":{\"colour\":\"red\"}}", 60, json_ct,
         false);
    e2e_assert_error_json(&rsp, 400, "invalid_argument");
    assert_pointer("/context/colour");

    http("POST", "/v1/score", "{\"candidates\":", 14, json_ct, false);
    e2e_assert_error_json(&rsp, 400, "bad_request");

    cr_assert_not_null(big);
    len = (size_t)snprintf(big, cap, "{\"candidates\":[");
    for (int i = 0; i < 1001; i++)
        len += (size_t)snprintf(big + len, cap - len, "%s{\"campaign\":\"c1\"}", i > 0 ? "," : "");
    len += (size_t)snprintf(big + len, cap - len, "]}");
    http("POST", "/v1/score", big, len, json_ct, false);
    e2e_assert_error_json(&rsp, 413, "body_too_large");
    assert_pointer("/candidates");
    free(big);

    http("POST", "/v1/score", ok, strlen(ok), text_ct, false);
    e2e_assert_error_json(&rsp, 415, "unsupported_media_type");

    http("POST", "/v1/score", ok, strlen(ok), json_ct, true);
    e2e_assert_error_json(&rsp, 401, "unauthorized");

    http("POST", "/v1/score", ok, strlen(ok), json_ct, false);
    cr_assert_eq(rsp.status, 200, "the daemon still answers: %s", rsp.body);
    e2e_assert_stopped_clean(&d);
}
