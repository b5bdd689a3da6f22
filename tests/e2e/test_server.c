/*
 * End-to-end tests of `adsmith serve`: the real binary on a loopback port,
 * spoken to over HTTP/1.1, h2c (prior knowledge and Upgrade) and HTTP/2 over
 * TLS. Each test starts its own daemon, so counters start at zero, and ends
 * with a clean SIGTERM that must exit 0 with a log of JSON records only.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <lmdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adsmith/version.h"
#include "daemon.h"

#define SMALL_BODY_LIMIT 1024 /* --max-body 1KiB */

static struct e2e_daemon dmn;
static struct e2e_daemon aux; /* a second run in the same test, when one is needed */

static void setup(void)
{
    int rc = e2e_daemon_init(&dmn);

    cr_assert_eq(rc, 0, "e2e_daemon_init: %s", dmn.why);
}

static void teardown(void)
{
    e2e_daemon_done(&aux);
    e2e_daemon_done(&dmn);
}

TestSuite(server, .init = setup, .fini = teardown);

static void get(enum e2e_proto proto, const char *path, struct e2e_resp *r)
{
    int rc = e2e_http_get(&dmn, proto, path, r);

    cr_assert_eq(rc, 0, "cannot set up the request (%d)", rc);
}

static void request(const struct e2e_req *req, struct e2e_resp *r)
{
    int rc = e2e_http(&dmn, req, r);

    cr_assert_eq(rc, 0, "cannot set up the request (%d)", rc);
}

/* Asserts a 200 {"status":"ok"} from /healthz over the given protocol version. */
static void assert_healthy(const struct e2e_resp *r, long version)
{
    cr_assert_eq(r->code, CURLE_OK, "transfer failed: %s (%s)", curl_easy_strerror(r->code), r->error);
    cr_assert_eq(r->status, 200, "status %ld; body: %s", r->status, r->body);
    cr_assert_eq(r->version, version, "negotiated HTTP version %ld, expected %ld", r->version, version);
    cr_assert_str_eq(r->content_type, "application/json");
    cr_assert_str_eq(r->body, "{\"status\":\"ok\"}");
}

static double metric(const char *text, const char *series)
{
    double v = -1;
    int rc = e2e_metric(text, series, &v);

    cr_assert_eq(rc, 0, "no sample for %s in:\n%s", series, text);
    return v;
}

static void get_metrics(struct e2e_resp *r)
{
    get(E2E_HTTP1, "/metrics", r);
    cr_assert_eq(r->code, CURLE_OK, "GET /metrics failed: %s", r->error);
    cr_assert_eq(r->status, 200);
    cr_assert_not(r->body_truncated, "/metrics is larger than the test's buffer");
}

/* ---- health over every protocol ---- */

Test(server, healthz_http1, .timeout = 30)
{
    struct e2e_resp r;

    e2e_assert_started(&dmn, NULL);
    get(E2E_HTTP1, "/healthz", &r);
    assert_healthy(&r, CURL_HTTP_VERSION_1_1);
    e2e_assert_stopped_clean(&dmn);
}

Test(server, healthz_h2c_prior_knowledge, .timeout = 30)
{
    struct e2e_resp r;

    e2e_assert_started(&dmn, NULL);
    get(E2E_H2C, "/healthz", &r);
    assert_healthy(&r, CURL_HTTP_VERSION_2_0);
    e2e_assert_stopped_clean(&dmn);
}

Test(server, healthz_h2c_upgrade, .timeout = 30)
{
    struct e2e_resp r;

    e2e_assert_started(&dmn, NULL);
    get(E2E_H2C_UPGRADE, "/healthz", &r);
    assert_healthy(&r, CURL_HTTP_VERSION_2_0);
    e2e_assert_stopped_clean(&dmn);
}

Test(server, healthz_tls_alpn_h2, .timeout = 30)
{
    const char *extra[] = {"--tls-cert", dmn.cert_path, "--tls-key", dmn.key_path, NULL};
    struct e2e_req by_name = {.proto = E2E_H2_TLS, .path = "/healthz", .host = "localhost", .ca_file = dmn.cert_path};
    struct e2e_req untrusted = {.proto = E2E_H2_TLS, .path = "/healthz"};
    const cJSON *tls;
    cJSON *rec;
    struct e2e_resp r;
    int rc;

    rc = e2e_tls_cert(&dmn);
    cr_assert_eq(rc, 0, "%s", dmn.why);
    e2e_assert_started(&dmn, extra);
    rc = e2e_log_find(&dmn, "listening", &rec);
    cr_assert_eq(rc, 0);
    tls = cJSON_GetObjectItemCaseSensitive(rec, "tls");
    rc = cJSON_IsTrue(tls);
    cJSON_Delete(rec);
    cr_assert(rc, "the listening record does not say \"tls\":true");

    /* The certificate verifies for its IP address and for its DNS name. */
    get(E2E_H2_TLS, "/healthz", &r);
    assert_healthy(&r, CURL_HTTP_VERSION_2_0);
    request(&by_name, &r);
    assert_healthy(&r, CURL_HTTP_VERSION_2_0);
    /* And verification is real: without the test's CA the handshake is refused. */
    request(&untrusted, &r);
    cr_assert_eq(r.code, CURLE_PEER_FAILED_VERIFICATION, "a self-signed certificate was accepted without its CA: %s",
                 curl_easy_strerror(r.code));
    /* Cleartext HTTP to a TLS listener gets no HTTP response. */
    get(E2E_HTTP1, "/healthz", &r);
    cr_assert_neq(r.code, CURLE_OK, "the TLS listener answered cleartext HTTP with status %ld", r.status);
    e2e_assert_stopped_clean(&dmn);
}

Test(server, healthz_tls_http1, .timeout = 30)
{
    const char *extra[] = {"--tls-cert", dmn.cert_path, "--tls-key", dmn.key_path, NULL};
    struct e2e_resp r;
    int rc;

    rc = e2e_tls_cert(&dmn);
    cr_assert_eq(rc, 0, "%s", dmn.why);
    e2e_assert_started(&dmn, extra);
    get(E2E_HTTP1_TLS, "/healthz", &r);
    assert_healthy(&r, CURL_HTTP_VERSION_1_1);
    e2e_assert_stopped_clean(&dmn);
}

Test(server, readyz_reports_storage, .timeout = 30)
{
    const cJSON *status, *storage;
    struct e2e_resp r;
    cJSON *doc;
    bool ok_status, ok_storage;

    e2e_assert_started(&dmn, NULL);
    get(E2E_H2C, "/readyz", &r);
    cr_assert_eq(r.code, CURLE_OK, "%s", r.error);
    cr_assert_eq(r.status, 200, "body: %s", r.body);
    cr_assert_str_eq(r.content_type, "application/json");
    doc = cJSON_Parse(r.body);
    cr_assert_not_null(doc, "not JSON: %s", r.body);
    status = cJSON_GetObjectItemCaseSensitive(doc, "status");
    storage = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "checks"), "storage");
    ok_status = cJSON_IsString(status) && strcmp(status->valuestring, "ready") == 0;
    ok_storage = cJSON_IsString(storage) && strcmp(storage->valuestring, "ok") == 0;
    cJSON_Delete(doc);
    cr_assert(ok_status, "status is not \"ready\": %s", r.body);
    cr_assert(ok_storage, "checks.storage is not \"ok\": %s", r.body);
    e2e_assert_stopped_clean(&dmn);
}

Test(server, head_healthz_has_no_body, .timeout = 30)
{
    static const enum e2e_proto protos[] = {E2E_HTTP1, E2E_H2C};
    struct e2e_resp r;

    e2e_assert_started(&dmn, NULL);
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        struct e2e_req req = {.proto = protos[i], .method = "HEAD", .path = "/healthz", .capture = "Content-Length"};
        request(&req, &r);
        cr_assert_eq(r.code, CURLE_OK, "HEAD failed: %s", r.error);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.body_len, 0, "HEAD returned %zu body bytes", r.body_len);
        cr_assert_str_eq(r.content_type, "application/json");
        /* The length of the body GET would have sent. */
        cr_assert(r.has_header, "HEAD response without Content-Length");
        cr_assert_str_eq(r.header, "15");
    }
    e2e_assert_stopped_clean(&dmn);
}

/* ---- metrics ---- */

Test(server, metrics_count_requests, .timeout = 30)
{
    char series[256];
    struct e2e_resp r;
    double used;

    e2e_assert_started(&dmn, NULL);
    for (int i = 0; i < 3; i++) {
        get(E2E_HTTP1, "/healthz", &r);
        cr_assert_eq(r.status, 200);
    }
    for (int i = 0; i < 2; i++) {
        get(E2E_H2C, "/healthz", &r);
        cr_assert_eq(r.status, 200);
    }
    get(E2E_HTTP1, "/no/such/route", &r);
    cr_assert_eq(r.status, 404);

    get_metrics(&r);
    cr_assert(strncmp(r.content_type, "text/plain", 10) == 0, "Content-Type is '%s'", r.content_type);
    /* A fresh daemon: these are exact. The scrape counts itself only once answered. */
    cr_assert_eq(metric(r.body, "adsmith_http_requests_total{method=\"GET\",route=\"/healthz\",code=\"200\"}"), 5);
    cr_assert_eq(metric(r.body, "adsmith_http_requests_total{method=\"\",route=\"unmatched\",code=\"404\"}"), 1);
    cr_assert_eq(
        e2e_metric(r.body, "adsmith_http_requests_total{method=\"GET\",route=\"/metrics\",code=\"200\"}", &used),
        -ENOENT, "the scrape counted itself before it was answered");
    cr_assert_eq(
        metric(r.body, "adsmith_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"+Inf\"}"),
        5);
    cr_assert_eq(metric(r.body, "adsmith_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"}"), 5);
    cr_assert_geq(metric(r.body, "adsmith_http_request_duration_seconds_sum{method=\"GET\",route=\"/healthz\"}"), 0);
    cr_assert_not_null(strstr(r.body, "# TYPE adsmith_http_request_duration_seconds histogram\n"));
    /* The scrape itself is the one request in flight. */
    cr_assert_eq(metric(r.body, "adsmith_http_requests_in_flight"), 1);
    cr_assert_geq(metric(r.body, "adsmith_connections_open"), 1);
    cr_assert_eq(metric(r.body, "adsmith_storage_open"), 1);
    cr_assert_eq(metric(r.body, "adsmith_lmdb_map_size_bytes"), 17179869184.0);
    used = metric(r.body, "adsmith_lmdb_map_used_bytes");
    cr_assert(used > 0 && used <= 1073741824.0, "adsmith_lmdb_map_used_bytes is %g", used);
    cr_assert_eq(metric(r.body, "adsmith_reloads_total"), 0);
    snprintf(series, sizeof(series), "adsmith_build_info{version=\"%s\",", ADS_VERSION);
    cr_assert_not_null(strstr(r.body, series), "no %s...} sample in:\n%s", series, r.body);

    /* The counter moves on: the scrape above is counted now. */
    get_metrics(&r);
    cr_assert_eq(metric(r.body, "adsmith_http_requests_total{method=\"GET\",route=\"/metrics\",code=\"200\"}"), 1);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- error responses ---- */

Test(server, unknown_path_is_404_json, .timeout = 30)
{
    static const enum e2e_proto protos[] = {E2E_HTTP1, E2E_H2C};
    struct e2e_resp r;

    e2e_assert_started(&dmn, NULL);
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        get(protos[i], "/nope", &r);
        e2e_assert_error_json(&r, 404, "not_found");
    }
    e2e_assert_stopped_clean(&dmn);
}

Test(server, wrong_method_is_405_json_with_allow, .timeout = 30)
{
    static const enum e2e_proto protos[] = {E2E_HTTP1, E2E_H2C};
    struct e2e_resp r;

    e2e_assert_started(&dmn, NULL);
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        struct e2e_req req = {.proto = protos[i], .method = "DELETE", .path = "/healthz", .capture = "Allow"};
        request(&req, &r);
        e2e_assert_error_json(&r, 405, "method_not_allowed");
        cr_assert(r.has_header, "405 without an Allow header");
        cr_assert_str_eq(r.header, "GET, HEAD");
    }
    e2e_assert_stopped_clean(&dmn);
}

static void post_body(enum e2e_proto proto, size_t len, const char *capture, struct e2e_resp *r)
{
    char *body = malloc(len);
    struct e2e_req req = {.proto = proto, .path = "/healthz", .body = body, .body_len = len, .capture = capture};

    cr_assert_not_null(body);
    memset(body, 'b', len);
    request(&req, r);
    free(body);
}

Test(server, body_at_limit_passes_the_size_check, .timeout = 30)
{
    static const enum e2e_proto protos[] = {E2E_HTTP1, E2E_H2C};
    const char *extra[] = {"--max-body", "1KiB", NULL};
    struct e2e_resp r;

    e2e_assert_started(&dmn, extra);
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        /* Exactly max_body reaches routing: POST /healthz is 405, not 413. */
        post_body(protos[i], SMALL_BODY_LIMIT, NULL, &r);
        e2e_assert_error_json(&r, 405, "method_not_allowed");
        /* One byte more does not. */
        post_body(protos[i], SMALL_BODY_LIMIT + 1, NULL, &r);
        e2e_assert_error_json(&r, 413, "body_too_large");
    }
    e2e_assert_stopped_clean(&dmn);
}

Test(server, body_over_limit_http1, .timeout = 30)
{
    const char *extra[] = {"--max-body", "1KiB", NULL};
    struct e2e_resp r;

    e2e_assert_started(&dmn, extra);
    /* Between max_body and twice it: read, then refused by the router. */
    post_body(E2E_HTTP1, SMALL_BODY_LIMIT * 3 / 2, NULL, &r);
    e2e_assert_error_json(&r, 413, "body_too_large");
    /* Far beyond: libh2o refuses on Content-Length alone; the filter makes it JSON. */
    post_body(E2E_HTTP1, SMALL_BODY_LIMIT * 4, "Connection", &r);
    e2e_assert_error_json(&r, 413, "body_too_large");
    cr_assert(r.has_header, "libh2o's 413 has no Connection header");
    cr_assert_str_eq(r.header, "close");
    get(E2E_HTTP1, "/healthz", &r);
    assert_healthy(&r, CURL_HTTP_VERSION_1_1);
    e2e_assert_stopped_clean(&dmn);
}

Test(server, body_over_limit_h2, .timeout = 30)
{
    const char *extra[] = {"--max-body", "1KiB", NULL};
    struct e2e_resp r;

    e2e_assert_started(&dmn, extra);
    post_body(E2E_H2C, SMALL_BODY_LIMIT * 3 / 2, NULL, &r);
    e2e_assert_error_json(&r, 413, "body_too_large");
    cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0);
    e2e_assert_stopped_clean(&dmn);
}

Test(server, body_far_over_limit_h2_is_refused, .timeout = 30)
{
    const char *extra[] = {"--max-body", "1KiB", NULL};
    struct e2e_resp r;

    e2e_assert_started(&dmn, extra);
    /* libh2o resets the stream (REFUSED_STREAM); curl retries, then gives up. */
    post_body(E2E_H2C, SMALL_BODY_LIMIT * 4, NULL, &r);
    cr_assert_neq(r.code, CURLE_OK, "a body of 4 x max_body got a response: status %ld, body %s", r.status, r.body);
    cr_assert(r.code == CURLE_HTTP2_STREAM || r.code == CURLE_RECV_ERROR || r.code == CURLE_HTTP2,
              "unexpected curl error %d: %s (%s)", r.code, curl_easy_strerror(r.code), r.error);
    cr_assert_neq(r.status, 200);
    /* The daemon is unharmed. */
    get(E2E_H2C, "/healthz", &r);
    assert_healthy(&r, CURL_HTTP_VERSION_2_0);
    get(E2E_HTTP1, "/healthz", &r);
    assert_healthy(&r, CURL_HTTP_VERSION_1_1);
    e2e_assert_stopped_clean(&dmn);
}

Test(server, huge_header_is_431_json, .timeout = 30)
{
    static const enum e2e_proto protos[] = {E2E_HTTP1, E2E_H2C};
    /* 20 KiB is over max_header_bytes (16 KiB) and under libh2o's own request
     * limit (8 KiB + 4 KiB per header), so the router sees it. */
    const size_t big = 20 * 1024, fits = 12 * 1024;
    char *line = malloc(big + 16);
    const char *headers[] = {line, NULL};
    struct e2e_resp r;

    cr_assert_not_null(line);
    e2e_assert_started(&dmn, NULL);
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        struct e2e_req req = {.proto = protos[i], .path = "/healthz", .headers = headers};

        memcpy(line, "X-Pad: ", 7);
        memset(line + 7, 'p', big);
        line[7 + big] = '\0';
        request(&req, &r);
        e2e_assert_error_json(&r, 431, "headers_too_large");

        line[7 + fits] = '\0';
        request(&req, &r);
        cr_assert_eq(r.status, 200, "a %zu-byte header was refused: %s", fits, r.body);
    }
    free(line);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- start-up ---- */

Test(server, address_in_use_exits_2, .timeout = 30)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    socklen_t len = sizeof(sa);
    char listen_arg[64], port_text[16];
    const char *args[] = {"serve", "--listen", listen_arg, "--threads", "1", "--data-dir", dmn.data_dir, NULL};
    const cJSON *level, *error, *detail;
    bool ok_level, ok_error, ok_detail;
    int fd, status = -1, rc;
    cJSON *rec;

    /* A listener without SO_REUSEPORT holds the port. */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(port_text, sizeof(port_text), "%u", ntohs(sa.sin_port));
    snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%s", port_text);

    rc = e2e_daemon_spawn(&dmn, args);
    cr_assert_eq(rc, 0, "%s", dmn.why);
    rc = e2e_daemon_wait(&dmn, 10000, &status);
    close(fd);
    cr_assert_eq(rc, 0, "adsmith kept running on a port in use");
    cr_assert_eq(status, 2, "exit status %d, expected 2", status);
    cr_assert_not(e2e_log_has(&dmn, "serving"));
    rc = e2e_log_find(&dmn, "cannot start the server", &rec);
    cr_assert_eq(rc, 0, "no \"cannot start the server\" record");
    level = cJSON_GetObjectItemCaseSensitive(rec, "level");
    error = cJSON_GetObjectItemCaseSensitive(rec, "error");
    detail = cJSON_GetObjectItemCaseSensitive(rec, "detail");
    ok_level = cJSON_IsString(level) && strcmp(level->valuestring, "error") == 0;
    ok_error = cJSON_IsString(error) && strcmp(error->valuestring, "config_invalid") == 0;
    ok_detail = cJSON_IsString(detail) && strstr(detail->valuestring, listen_arg) != NULL;
    cJSON_Delete(rec);
    cr_assert(ok_level, "the record is not at level error");
    cr_assert(ok_error, "the record's error is not config_invalid");
    cr_assert(ok_detail, "the record's detail does not name %s", listen_arg);
    rc = e2e_log_check(&dmn);
    cr_assert_eq(rc, 0, "%s", dmn.why);
}

/* SO_REUSEPORT must not let a second adsmith share the first one's port and
 * quietly take part of its connections. */
Test(server, second_daemon_on_the_same_port_exits_2, .timeout = 30)
{
    char listen_arg[64];
    const char *extra[] = {"--listen", listen_arg, NULL};
    cJSON *rec = NULL;
    bool named;
    int rc;

    e2e_assert_started(&dmn, NULL);
    snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", dmn.port);
    rc = e2e_daemon_init(&aux);
    cr_assert_eq(rc, 0, "%s", aux.why);
    rc = e2e_daemon_start(&aux, extra);
    cr_assert_eq(rc, -ECHILD, "a second daemon started on port %d", dmn.port);
    cr_assert_eq(aux.status, 2, "exit status %d, expected 2", aux.status);
    rc = e2e_log_find(&aux, "cannot start the server", &rec);
    cr_assert_eq(rc, 0, "no \"cannot start the server\" record");
    named = strstr(cJSON_GetObjectItemCaseSensitive(rec, "detail")->valuestring, "Address already in use") != NULL;
    cJSON_Delete(rec);
    cr_assert(named, "the record does not say the address is in use");
    e2e_assert_stopped_clean(&dmn);
}

Test(server, unknown_flag_exits_2, .timeout = 30)
{
    const char *args[] = {"serve", "--no-such-flag", "1", "--data-dir", dmn.data_dir, NULL};
    char text[4096];
    size_t len;
    int status = -1, rc;

    rc = e2e_daemon_spawn(&dmn, args);
    cr_assert_eq(rc, 0, "%s", dmn.why);
    rc = e2e_daemon_wait(&dmn, 10000, &status);
    cr_assert_eq(rc, 0, "adsmith kept running with an unknown flag");
    cr_assert_eq(status, 2, "exit status %d, expected 2", status);
    rc = e2e_file_read(dmn.log_path, text, sizeof(text), &len);
    cr_assert_eq(rc, 0);
    cr_assert_not_null(strstr(text, "--no-such-flag"), "stderr does not name the flag: %s", text);
    cr_assert_null(strstr(text, "\"ready\""), "it started anyway: %s", text);
}

/* ---- storage that can never be read (the rest of storage is in test_storage.c) ---- */

static const char *record_str(const cJSON *rec, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);

    return cJSON_IsString(v) ? v->valuestring : "";
}

Test(server, unreadable_meta_record_is_refused_with_exit_1, .timeout = 30)
{
    const char *args[] = {"serve", "--listen", "127.0.0.1:0", "--threads", "1", "--data-dir", dmn.data_dir, NULL};
    MDB_val key = {6, "schema"}, val = {13, "not msgpack!!"};
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    bool ok_error, ok_level;
    int status = -1, rc;
    cJSON *rec;

    /* An LMDB environment whose meta record is not adsmith's. */
    cr_assert_eq(mkdir(dmn.data_dir, 0700), 0, "mkdir: %s", strerror(errno));
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
    rc = mdb_env_open(env, dmn.data_dir, 0, 0600);
    cr_assert_eq(rc, 0, "mdb_env_open: %s", mdb_strerror(rc));
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
    cr_assert_eq(mdb_put(txn, dbi, &key, &val, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    rc = e2e_daemon_spawn(&dmn, args);
    cr_assert_eq(rc, 0, "%s", dmn.why);
    rc = e2e_daemon_wait(&dmn, 10000, &status);
    cr_assert_eq(rc, 0, "adsmith kept running on data it cannot read");
    cr_assert_eq(status, 1, "exit status %d, expected 1", status);
    cr_assert_not(e2e_log_has(&dmn, "serving"));
    rc = e2e_log_find(&dmn, "storage refused", &rec);
    cr_assert_eq(rc, 0, "no \"storage refused\" record");
    ok_error = strcmp(record_str(rec, "error"), "data_invalid") == 0;
    ok_level = strcmp(record_str(rec, "level"), "error") == 0;
    cJSON_Delete(rec);
    cr_assert(ok_error, "the record's error is not data_invalid");
    cr_assert(ok_level, "the record is not at level error");
    rc = e2e_log_check(&dmn);
    cr_assert_eq(rc, 0, "%s", dmn.why);
}

/* Runs `adsmith` with @p args in @p d to completion and returns its stdout in @p out. */
static void run_to_exit(struct e2e_daemon *d, const char *const args[], char *out, size_t cap)
{
    size_t len;
    int status = -1, rc;

    rc = e2e_daemon_spawn(d, args);
    cr_assert_eq(rc, 0, "%s", d->why);
    rc = e2e_daemon_wait(d, 10000, &status);
    cr_assert_eq(rc, 0, "adsmith did not exit within 10 s");
    cr_assert_eq(status, 0, "exit status %d", status);
    rc = e2e_file_read(d->out_path, out, cap, &len);
    cr_assert_eq(rc, 0, "cannot read stdout: %s", strerror(-rc));
}

Test(server, print_config_names_sources, .timeout = 30)
{
    const char *args[] = {"serve", "--listen", "127.0.0.1:0", "--max-body", "1KiB", "--print-config", NULL};
    char conf[E2E_PATH_MAX + 16], text[16384], again[16384];
    const char *args_file[] = {"serve", "--config", conf, "--print-config", NULL};
    size_t len;
    FILE *f;
    int rc;

    run_to_exit(&dmn, args, text, sizeof(text));
    /* Each line names its source in an inline comment that inih understands. */
    cr_assert_not_null(strstr(text, "\nlisten = 127.0.0.1:0    ; flag\n"), "stdout:\n%s", text);
    cr_assert_not_null(strstr(text, "\nmax_body = 1024    ; flag\n"), "stdout:\n%s", text);
    cr_assert_not_null(strstr(text, "\nmax_header_bytes = 16384    ; default\n"), "stdout:\n%s", text);
    /* It only prints: nothing was served or logged. */
    rc = e2e_file_read(dmn.log_path, again, sizeof(again), &len);
    cr_assert_eq(rc, 0);
    cr_assert_eq(len, 0, "stderr is not empty: %s", again);

    /* The output is itself a config file that loads to the same values. */
    snprintf(conf, sizeof(conf), "%s/printed.conf", dmn.dir);
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0 && fclose(f) == 0, 1);
    rc = e2e_daemon_init(&aux);
    cr_assert_eq(rc, 0, "%s", aux.why);
    run_to_exit(&aux, args_file, again, sizeof(again));
    cr_assert_not_null(strstr(again, "\nlisten = 127.0.0.1:0    ; file\n"), "stdout:\n%s", again);
    cr_assert_not_null(strstr(again, "\nmax_body = 1024    ; file\n"), "stdout:\n%s", again);
}

/* ---- concurrency ---- */

#define CONC_THREADS 8
#define CONC_REQUESTS 50

struct conc_worker {
    pthread_t tid;
    bool reuse; /* one HTTP/2 connection (via Upgrade) for all requests, or a new one (prior knowledge) each */
    int ok;
    long connects;
    char failure[512]; /* the first failure, "" when none */
};

static void *conc_main(void *arg)
{
    struct conc_worker *w = arg;
    struct e2e_resp *r = malloc(sizeof(*r));
    CURL *h = w->reuse ? curl_easy_init() : NULL;

    if (r == NULL || (w->reuse && h == NULL)) {
        snprintf(w->failure, sizeof(w->failure), "out of memory");
        goto out;
    }
    for (int i = 0; i < CONC_REQUESTS; i++) {
        struct e2e_req req = {.proto = w->reuse ? E2E_H2C_UPGRADE : E2E_H2C, .path = "/healthz", .handle = h};
        if (e2e_http(&dmn, &req, r) != 0 || r->code != CURLE_OK || r->status != 200 ||
            r->version != CURL_HTTP_VERSION_2_0 || strcmp(r->body, "{\"status\":\"ok\"}") != 0) {
            if (w->failure[0] == '\0')
                snprintf(w->failure, sizeof(w->failure),
                         "request %d: curl %d (%s), status %ld, version %ld, body %.100s", i, r->code, r->error,
                         r->status, r->version, r->body);
            continue;
        }
        w->ok++;
        w->connects += r->connects;
    }
out:
    curl_easy_cleanup(h);
    free(r);
    return NULL;
}

Test(server, concurrent_h2c_requests_are_all_counted, .timeout = 30)
{
    static struct conc_worker workers[CONC_THREADS];
    struct e2e_resp r;
    int ok = 0;

    e2e_assert_started(&dmn, NULL);
    for (int i = 0; i < CONC_THREADS; i++) {
        workers[i].reuse = i % 2 == 0;
        cr_assert_eq(pthread_create(&workers[i].tid, NULL, conc_main, &workers[i]), 0);
    }
    for (int i = 0; i < CONC_THREADS; i++)
        pthread_join(workers[i].tid, NULL);
    for (int i = 0; i < CONC_THREADS; i++) {
        long want = workers[i].reuse ? 1 : CONC_REQUESTS;
        cr_assert_str_empty(workers[i].failure, "thread %d: %s", i, workers[i].failure);
        cr_assert_eq(workers[i].connects, want, "thread %d opened %ld connections, expected %ld", i,
                     workers[i].connects, want);
        ok += workers[i].ok;
    }
    cr_assert_eq(ok, CONC_THREADS * CONC_REQUESTS);

    get_metrics(&r);
    cr_assert_eq(metric(r.body, "adsmith_http_requests_total{method=\"GET\",route=\"/healthz\",code=\"200\"}"),
                 CONC_THREADS * CONC_REQUESTS);
    cr_assert_eq(
        metric(r.body, "adsmith_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"+Inf\"}"),
        CONC_THREADS * CONC_REQUESTS);
    cr_assert_eq(metric(r.body, "adsmith_http_requests_in_flight"), 1);
    cr_assert_null(strstr(r.body, "adsmith_http_requests_total{method=\"\",route=\"unmatched\""),
                   "some requests went unmatched:\n%s", r.body);
    e2e_assert_stopped_clean(&dmn);
}
