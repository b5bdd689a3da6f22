/*
 * End-to-end tests of the served ranking model (mdl.h): the embedded default,
 * a model file given with --model, reloads by POST /v1/admin/model:reload and
 * by SIGHUP, refused files (corrupt, truncated, another schema) that leave the
 * running model in place, and reloads while requests score without pause.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

TestSuite(model, .init = setup, .fini = teardown, .timeout = 30);

static void copy_file(const char *from, const char *to)
{
    static char buf[4 * 1024 * 1024];
    size_t n;
    FILE *f;

    cr_assert_eq(e2e_file_read(from, buf, sizeof(buf), &n), 0, "cannot read %s", from);
    f = fopen(to, "wb");
    cr_assert_not_null(f, "cannot create %s: %s", to, strerror(errno));
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* Installs @p from as the served file atomically (a rename, as an operator would). */
static void install(const char *from)
{
    copy_file(from, e2e_path(&d, "model.tmp"));
    cr_assert_eq(rename(e2e_path(&d, "model.tmp"), e2e_path(&d, "model.bin")), 0);
}

/* A second valid model of the "adsmith" schema: trained on the Avazu fixture, converted as the default was. */
static void train_second(const char *out)
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

/* Member @p name of an error body's "error" object (never NULL: a missing one fails the test). */
static cJSON *err_member(cJSON *doc, const char *name)
{
    cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "error"), name);

    cr_assert(cJSON_IsString(m), "no error.%s in %s", name, rsp.body);
    return m;
}

static cJSON *get_json(const char *method, const char *path, const char *body, long want)
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

/* The served model's version, from GET /v1/admin/model. */
static void version(char out[64])
{
    cJSON *doc = get_json("GET", "/v1/admin/model", NULL, 200);

    cr_assert(cJSON_IsString(cJSON_GetObjectItem(doc, "version")), "%s", rsp.body);
    snprintf(out, 64, "%s", cJSON_GetObjectItem(doc, "version")->valuestring);
    cJSON_Delete(doc);
}

static double model_num(const char *member)
{
    cJSON *doc = get_json("GET", "/v1/admin/model", NULL, 200);
    double v;

    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(doc, member)), "%s", rsp.body);
    v = cJSON_GetObjectItem(doc, member)->valuedouble;
    cJSON_Delete(doc);
    return v;
}

static const char score_body[] =
    "{\"features\":{\"site\":\"1fbe01fe\",\"domain\":\"f3845767\",\"device\":\"1\","
    "\"hour\":\"14\",\"size\":\"320x50\"},"
    "\"candidates\":[{\"campaign\":\"1722\",\"advertiser\":\"79\"},{\"campaign\":\"2333\"}]}";

Test(model, embedded_default_serves_and_scores)
{
    cJSON *doc, *s;
    double v;
    char ver[64], series[160];

    cr_assert_eq(e2e_daemon_start(&d, NULL), 0, "%s", d.why);
    doc = get_json("GET", "/v1/admin/model", NULL, 200);
    cr_expect_str_eq(cJSON_GetObjectItem(doc, "source")->valuestring, "embedded");
    cr_expect_str_eq(cJSON_GetObjectItem(doc, "schema")->valuestring, "adsmith");
    cr_expect_gt(cJSON_GetObjectItem(doc, "rows")->valuedouble, 1000, "%s", rsp.body);
    snprintf(ver, sizeof(ver), "%s", cJSON_GetObjectItem(doc, "version")->valuestring);
    cJSON_Delete(doc);

    doc = get_json("POST", "/v1/admin/model:score", score_body, 200);
    cr_expect_str_eq(cJSON_GetObjectItem(doc, "model")->valuestring, ver, "every score names its model");
    s = cJSON_GetObjectItem(doc, "scores");
    cr_assert_eq(cJSON_GetArraySize(s), 2, "%s", rsp.body);
    for (int i = 0; i < 2; i++) {
        double p = cJSON_GetArrayItem(s, i)->valuedouble;
        cr_expect(p > 0.001 && p < 0.999, "score %d is %g", i, p);
    }
    cJSON_Delete(doc);

    /* Bad input: the field, its group and its type, each with its pointer. */
    doc = get_json("POST", "/v1/admin/model:score", "{\"features\":{\"nope\":\"x\"}}", 400);
    cr_expect_str_eq(err_member(doc, "pointer")->valuestring, "/features/nope");
    cJSON_Delete(doc);
    doc = get_json("POST", "/v1/admin/model:score", "{\"features\":{\"campaign\":\"x\"}}", 400);
    cr_expect_str_eq(err_member(doc, "pointer")->valuestring, "/features/campaign");
    cJSON_Delete(doc);
    doc = get_json("POST", "/v1/admin/model:score", "{\"features\":{\"freq\":\"many\"}}", 400);
    cr_expect_str_eq(err_member(doc, "pointer")->valuestring, "/features/freq");
    cJSON_Delete(doc);

    cr_assert_eq(e2e_http_get(&d, E2E_HTTP1, "/metrics", &rsp), 0, "%s", d.why);
    snprintf(series, sizeof(series), "adsmith_model_info{version=\"%s\",source=\"embedded\"}", ver);
    cr_expect_eq(e2e_metric(rsp.body, series, &v), 0, "no %s in /metrics", series);
    cr_expect_eq(v, 1);
    cr_expect_eq(e2e_metric(rsp.body, "adsmith_model_loads_total", &v), 0);
    cr_expect_eq(v, 1);
}

Test(model, reload_publishes_a_new_file_and_refuses_bad_ones)
{
    static char buf[4 * 1024 * 1024];
    char v1[64], v2[64], now[64];
    size_t n;
    cJSON *doc;
    FILE *f;

    train_second(e2e_path(&d, "second.model"));
    install(e2e_source("models/default/default.model"));
    cr_assert_eq(e2e_daemon_start(&d, (const char *[]){"--model", e2e_path(&d, "model.bin"), NULL}), 0, "%s", d.why);
    version(v1);

    /* A new file: published, and named by the answer and by what follows. */
    install(e2e_path(&d, "second.model"));
    doc = get_json("POST", "/v1/admin/model:reload", NULL, 200);
    cr_expect_str_eq(cJSON_GetObjectItem(doc, "previous")->valuestring, v1);
    snprintf(v2, sizeof(v2), "%s", cJSON_GetObjectItem(doc, "version")->valuestring);
    cJSON_Delete(doc);
    cr_assert_str_neq(v1, v2, "a different model got the same version");
    version(now);
    cr_expect_str_eq(now, v2);

    /* Corrupt (one weight byte flipped), truncated, another schema: each refused with a
     * reason, and the running model stays. */
    cr_assert_eq(e2e_file_read(e2e_path(&d, "second.model"), buf, sizeof(buf), &n), 0);
    buf[n - 100] ^= 0x10;
    f = fopen(e2e_path(&d, "model.bin"), "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
    doc = get_json("POST", "/v1/admin/model:reload", NULL, 422);
    cr_expect_str_eq(err_member(doc, "code")->valuestring, "model_refused");
    cr_expect(strstr(err_member(doc, "message")->valuestring, "checksum") != NULL, "%s", rsp.body);
    cJSON_Delete(doc);
    version(now);
    cr_expect_str_eq(now, v2, "a corrupt file replaced the model");

    buf[n - 100] ^= 0x10;
    f = fopen(e2e_path(&d, "model.bin"), "wb");
    cr_assert_eq(fwrite(buf, 1, n / 2, f), n / 2);
    fclose(f);
    doc = get_json("POST", "/v1/admin/model:reload", NULL, 422);
    cr_expect(strstr(err_member(doc, "message")->valuestring, "truncated") != NULL, "%s", rsp.body);
    cJSON_Delete(doc);

    {
        const char *args[] = {"train",
                              "--input",
                              e2e_source("tests/ctr/fixtures/criteo.tsv"),
                              "--format",
                              "criteo",
                              "--out",
                              e2e_path(&d, "criteo.model"),
                              "--bits",
                              "12",
                              NULL};
        char text[4096];
        int status;
        cr_assert_eq(e2e_run(&d, args, text, sizeof(text), NULL, 0, &status), 0, "%s", d.why);
        cr_assert_eq(status, 0, "%s", text);
    }
    install(e2e_path(&d, "criteo.model"));
    doc = get_json("POST", "/v1/admin/model:reload", NULL, 422);
    cr_expect(strstr(err_member(doc, "message")->valuestring, "schema") != NULL, "%s", rsp.body);
    cJSON_Delete(doc);
    unlink(e2e_path(&d, "model.bin"));
    doc = get_json("POST", "/v1/admin/model:reload", NULL, 422);
    cJSON_Delete(doc);
    version(now);
    cr_expect_str_eq(now, v2);
    cr_expect_eq(model_num("reload_failures"), 4);
    cr_expect_eq(model_num("loads"), 2);

    /* SIGHUP loads the file too. */
    install(e2e_source("models/default/default.model"));
    cr_assert_eq(e2e_daemon_signal(&d, SIGHUP), 0, "%s", d.why);
    cr_assert_eq(e2e_log_wait(&d, "model reloaded", 5000), 0, "no \"model reloaded\" record after SIGHUP");
    version(now);
    cr_expect_str_eq(now, v1, "SIGHUP did not publish the file");
}

enum { SCORERS = 3, RELOADS = 30 };

struct load {
    atomic_bool stop;
    atomic_long ok, bad;
    char v1[64], v2[64];
};

static void *scorer(void *arg)
{
    struct load *l = arg;
    struct e2e_resp *r = malloc(sizeof(*r));
    CURL *h = curl_easy_init();

    while (r != NULL && h != NULL && !atomic_load(&l->stop)) {
        struct e2e_req req = {.proto = E2E_H2C_UPGRADE,
                              .method = "POST",
                              .path = "/v1/admin/model:score",
                              .body = score_body,
                              .body_len = sizeof(score_body) - 1,
                              .handle = h,
                              .headers = (const char *[]){"Content-Type: application/json", NULL}};
        cJSON *doc, *m;
        bool good;
        if (e2e_http(&d, &req, r) != 0)
            break;
        doc = r->status == 200 ? cJSON_Parse(r->body) : NULL;
        m = doc != NULL ? cJSON_GetObjectItem(doc, "model") : NULL;
        /* Every answer comes from one of the two models, whole. */
        good = cJSON_IsString(m) && (strcmp(m->valuestring, l->v1) == 0 || strcmp(m->valuestring, l->v2) == 0) &&
               cJSON_GetArraySize(cJSON_GetObjectItem(doc, "scores")) == 2;
        atomic_fetch_add(good ? &l->ok : &l->bad, 1);
        cJSON_Delete(doc);
    }
    curl_easy_cleanup(h);
    free(r);
    return NULL;
}

Test(model, reloads_under_load_lose_no_request)
{
    struct load l;
    pthread_t t[SCORERS];
    cJSON *doc;
    long before;

    train_second(e2e_path(&d, "second.model"));
    install(e2e_source("models/default/default.model"));
    cr_assert_eq(e2e_daemon_start(&d, (const char *[]){"--model", e2e_path(&d, "model.bin"), "--threads", "2", NULL}),
                 0, "%s", d.why);
    e2e_admin_key(&d); /* made here, before the threads share d */
    version(l.v1);
    install(e2e_path(&d, "second.model"));
    doc = get_json("POST", "/v1/admin/model:reload", NULL, 200);
    snprintf(l.v2, sizeof(l.v2), "%s", cJSON_GetObjectItem(doc, "version")->valuestring);
    cJSON_Delete(doc);

    atomic_init(&l.stop, false);
    atomic_init(&l.ok, 0);
    atomic_init(&l.bad, 0);
    for (int i = 0; i < SCORERS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, scorer, &l), 0);
    for (int k = 0; k < RELOADS; k++) {
        install(k % 2 == 0 ? e2e_source("models/default/default.model") : e2e_path(&d, "second.model"));
        before = atomic_load(&l.ok);
        doc = get_json("POST", "/v1/admin/model:reload", NULL, 200);
        cJSON_Delete(doc);
        /* Let some requests score against each model. */
        for (int spin = 0; spin < 200 && atomic_load(&l.ok) < before + SCORERS; spin++)
            usleep(1000);
    }
    atomic_store(&l.stop, true);
    for (int i = 0; i < SCORERS; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(atomic_load(&l.bad), 0, "%ld of %ld scoring requests failed during reloads", atomic_load(&l.bad),
                 atomic_load(&l.ok) + atomic_load(&l.bad));
    cr_expect_gt(atomic_load(&l.ok), RELOADS, "only %ld requests ran during %d reloads", atomic_load(&l.ok), RELOADS);
    cr_expect_eq(model_num("loads"), 2 + RELOADS);
}
