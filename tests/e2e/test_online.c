/*
 * End-to-end test of online learning (learn.h): the daemon with
 * --online-learning takes impression events that carry features and the
 * clicks that name them, learns, publishes a new model version, exports its
 * progressive-validation metrics, scores the clicked feature higher than
 * before, and goes back to the file's model on a reload.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

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

TestSuite(online, .init = setup, .fini = teardown, .timeout = 120);

/* A model of the "adsmith" schema from the Avazu fixture, as tests/e2e/test_model.c makes its second one. */
static void train_model(const char *out)
{
    char cmd[4 * E2E_PATH_MAX];
    char text[4096];
    int status;

    snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' > '%s'", e2e_source("models/default/avazu_to_adsmith.py"),
             e2e_source("tests/ctr/fixtures/avazu.csv"), e2e_path(&d, "avazu.jsonl"));
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    const char *args[] = {
        "train", "--input", e2e_path(&d, "avazu.jsonl"), "--format", "adsmith", "--out", out, "--seed", "2", "--bits",
        "12",    NULL};
    cr_assert_eq(e2e_run(&d, args, text, sizeof(text), NULL, 0, &status), 0, "%s", d.why);
    cr_assert_eq(status, 0, "adsmith train exited %d: %s", status, text);
}

static cJSON *call(const char *method, const char *path, const char *body, long want)
{
    struct e2e_req req = {.proto = E2E_HTTP1,
                          .method = method,
                          .path = path,
                          .body = body,
                          .body_len = body != NULL ? strlen(body) : 0,
                          .headers = (const char *[]){"Content-Type: application/json", NULL}};
    cJSON *doc;

    cr_assert_eq(e2e_http(&d, &req, &rsp), 0, "%s", d.why);
    cr_assert_eq(rsp.status, want, "%s %s: %ld %s", method, path, rsp.status, rsp.body);
    doc = cJSON_Parse(rsp.body);
    cr_assert_not_null(doc, "%s %s: not JSON: %s", method, path, rsp.body);
    return doc;
}

static double num(cJSON *o, const char *member)
{
    cJSON *v = cJSON_GetObjectItem(o, member);

    cr_assert(cJSON_IsNumber(v), "no number %s in %s", member, rsp.body);
    return v->valuedouble;
}

/* The logit of the score with a deal minus the one without, on the same site. */
static double deal_effect(void)
{
    static const char body[] = "{\"features\":{\"site\":\"s1\",\"freq\":2,\"deal\":\"d1\"}}";
    static const char plain[] = "{\"features\":{\"site\":\"s1\",\"freq\":2}}";
    cJSON *doc;
    double p1, p0;

    doc = call("POST", "/v1/admin/model:score", body, 200);
    p1 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "scores"), 0)->valuedouble;
    cJSON_Delete(doc);
    doc = call("POST", "/v1/admin/model:score", plain, 200);
    p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "scores"), 0)->valuedouble;
    cJSON_Delete(doc);
    return log(p1 / (1 - p1)) - log(p0 / (1 - p0));
}

#define ROUNDS 4
#define PER_ROUND 50 /* impressions with a deal (all clicked), and as many without (never clicked) */

static void post_round(int round)
{
    static char body[64 * 1024];
    size_t at = 0;
    long now = (long)time(NULL);
    cJSON *doc;

    at += (size_t)snprintf(body + at, sizeof(body) - at, "{\"events\":[");
    for (int i = 0; i < 2 * PER_ROUND; i++) {
        bool deal = i % 2 == 0;
        at += (size_t)snprintf(body + at, sizeof(body) - at,
                               "%s{\"type\":\"impression\",\"user\":\"u%d\",\"ts\":%ld,\"impression_id\":\"r%d-%d\","
                               "\"features\":{\"site\":\"s1\",\"freq\":2%s,\"creative\":[\"c1\",\"c2\"]}}",
                               i > 0 ? "," : "", i % 7, now, round, i, deal ? ",\"deal\":\"d1\"" : "");
    }
    at += (size_t)snprintf(body + at, sizeof(body) - at, "]}");
    cr_assert_lt(at, sizeof(body) - 1);
    doc = call("POST", "/v1/events", body, 200);
    cr_expect_eq(num(doc, "accepted"), 2 * PER_ROUND);
    cJSON_Delete(doc);

    at = 0;
    at += (size_t)snprintf(body + at, sizeof(body) - at, "{\"events\":[");
    for (int i = 0; i < 2 * PER_ROUND; i += 2)
        at += (size_t)snprintf(body + at, sizeof(body) - at,
                               "%s{\"type\":\"click\",\"user\":\"u%d\",\"ts\":%ld,\"impression_id\":\"r%d-%d\"}",
                               i > 0 ? "," : "", i % 7, now, round, i);
    at += (size_t)snprintf(body + at, sizeof(body) - at, "]}");
    doc = call("POST", "/v1/events", body, 200);
    cJSON_Delete(doc);
}

static double metric(const char *series)
{
    double v = NAN;

    cr_assert_eq(e2e_http_get(&d, E2E_HTTP1, "/metrics", &rsp), 0, "%s", d.why);
    cr_assert_eq(e2e_metric(rsp.body, series, &v), 0, "no %s in /metrics", series);
    return v;
}

Test(online, learns_publishes_and_resets)
{
    const char *args[] = {
        "--model", e2e_path(&d, "model.bin"), "--online-learning", "--online-window-s", "1", "--online-publish-s", "1",
        NULL};
    char v0[64], v1[64];
    cJSON *doc, *on;
    double before, after;
    const int total = ROUNDS * 2 * PER_ROUND;

    train_model(e2e_path(&d, "model.bin"));
    e2e_assert_started(&d, args);
    cr_assert_eq(e2e_log_wait(&d, "online learning started", 5000), 0, "no start record");

    doc = call("GET", "/v1/admin/model", NULL, 200);
    snprintf(v0, sizeof(v0), "%s", cJSON_GetObjectItem(doc, "version")->valuestring);
    on = cJSON_GetObjectItem(doc, "online");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(on, "enabled")), "%s", rsp.body);
    cr_assert_str_eq(cJSON_GetObjectItem(on, "status")->valuestring, "learning", "%s", rsp.body);
    cr_assert_str_eq(cJSON_GetObjectItem(on, "base_version")->valuestring, v0);
    cJSON_Delete(doc);
    before = deal_effect();

    /* Bad features are refused with their pointer, whether or not a learner runs. */
    doc = call("POST", "/v1/events",
               "{\"events\":[{\"type\":\"impression\",\"user\":\"u\",\"ts\":1700000000,\"id\":\"x\","
               "\"features\":{\"nope\":\"a\"}}]}",
               400);
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "error"), "pointer")->valuestring,
                     "/events/0/features");
    cJSON_Delete(doc);
    doc = call("POST", "/v1/events",
               "{\"events\":[{\"type\":\"impression\",\"user\":\"u\",\"ts\":1700000000,\"id\":\"x\","
               "\"features\":{\"freq\":\"many\"}}]}",
               400);
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "error"), "pointer")->valuestring,
                     "/events/0/features/freq");
    cJSON_Delete(doc);

    for (int r = 0; r < ROUNDS; r++)
        post_round(r);

    /* Every impression is learned once its click came or its window (1 s)
     * ended; the served model is the learner's once its metrics snapshot
     * counts them all. */
    uint64_t deadline = e2e_now_ms() + 20000;
    for (;;) {
        doc = call("GET", "/v1/admin/model", NULL, 200);
        bool done =
            strcmp(cJSON_GetObjectItem(doc, "source")->valuestring, "online") == 0 && num(doc, "valid_rows") == total;
        if (done) {
            snprintf(v1, sizeof(v1), "%s", cJSON_GetObjectItem(doc, "version")->valuestring);
            on = cJSON_GetObjectItem(doc, "online");
            cr_expect_eq(num(on, "positives"), ROUNDS * PER_ROUND);
            cr_expect_eq(num(on, "negatives"), ROUNDS * PER_ROUND);
            cr_expect_eq(num(on, "pending"), 0);
            cr_expect_eq(num(on, "unmatched_clicks"), 0);
            cr_expect_str_eq(cJSON_GetObjectItem(on, "version")->valuestring, v1);
            cr_expect_gt(num(on, "auc"), 0.6, "the deal tells clicks apart: %s", rsp.body);
        }
        cJSON_Delete(doc);
        if (done)
            break;
        cr_assert_lt(e2e_now_ms(), deadline, "the learned model was not published: %s", rsp.body);
        usleep(100 * 1000);
    }
    cr_expect_str_neq(v1, v0);
    cr_expect_eq(strncmp(v1, "lr-online-", 10), 0, "%s", v1);

    cr_expect_eq(metric("adsmith_online_examples_total{label=\"1\"}"), ROUNDS * PER_ROUND);
    cr_expect_eq(metric("adsmith_online_examples_total{label=\"0\"}"), ROUNDS * PER_ROUND);
    cr_expect_eq(metric("adsmith_online_events_total{type=\"impression\"}"), total);
    cr_expect_eq(metric("adsmith_online_events_total{type=\"click\"}"), ROUNDS * PER_ROUND);
    cr_expect_geq(metric("adsmith_online_publishes_total"), 1);
    cr_expect_eq(metric("adsmith_online_learning"), 1);
    double ll = metric("adsmith_online_logloss");
    cr_expect(ll > 0 && ll < 2, "logloss %g", ll);
    cr_expect_gt(metric("adsmith_online_calibration"), 0);
    cr_expect_gt(metric("adsmith_online_auc"), 0.6);

    after = deal_effect();
    cr_expect_gt(after, before + 0.1, "the clicked feature's score did not rise: %g -> %g", before, after);

    /* A reload of the file replaces the online model, and the learner restarts from it. */
    doc = call("POST", "/v1/admin/model:reload", NULL, 200);
    cr_expect_str_eq(cJSON_GetObjectItem(doc, "version")->valuestring, v0);
    cJSON_Delete(doc);
    deadline = e2e_now_ms() + 5000;
    while (metric("adsmith_online_resets_total") < 1) {
        cr_assert_lt(e2e_now_ms(), deadline, "the learner did not restart after the reload");
        usleep(50 * 1000);
    }
    doc = call("GET", "/v1/admin/model", NULL, 200);
    cr_expect_str_eq(cJSON_GetObjectItem(doc, "source")->valuestring, "file");
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "online"), "base_version")->valuestring, v0);
    cJSON_Delete(doc);
    cr_expect_float_eq(deal_effect(), before, 1e-9, "the reloaded model scores as before learning");

    e2e_assert_stopped_clean(&d);
}

Test(online, off_by_default)
{
    const char *args[] = {"--model", e2e_path(&d, "model.bin"), NULL};
    cJSON *doc;
    double v;

    train_model(e2e_path(&d, "model.bin"));
    e2e_assert_started(&d, args);
    doc = call("GET", "/v1/admin/model", NULL, 200);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "online"), "enabled")), "%s", rsp.body);
    cJSON_Delete(doc);
    /* Features are accepted (and ignored) without a learner. */
    doc = call("POST", "/v1/events",
               "{\"events\":[{\"type\":\"impression\",\"user\":\"u\",\"ts\":1700000000,\"impression_id\":\"i\","
               "\"features\":{\"site\":\"s\",\"freq\":1}},{\"type\":\"click\",\"user\":\"u\",\"ts\":1700000000,"
               "\"impression_id\":\"i\"}]}",
               200);
    cr_expect_eq(num(doc, "accepted"), 2);
    cJSON_Delete(doc);
    cr_assert_eq(e2e_http_get(&d, E2E_HTTP1, "/metrics", &rsp), 0, "%s", d.why);
    cr_expect_eq(e2e_metric(rsp.body, "adsmith_online_learning", &v), -ENOENT, "online metrics without a learner");
    e2e_assert_stopped_clean(&d);
}
