/*
 * End-to-end tests of the daemon's signals: SIGTERM and SIGINT drain and stop
 * (stop accepting, finish in-flight requests, close idle connections, exit 0
 * within shutdown_timeout_ms, 1 when the deadline cuts a connection off);
 * SIGHUP reloads and keeps serving.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

static struct e2e_daemon dmn;

static void setup(void)
{
    int rc = e2e_daemon_init(&dmn);

    cr_assert_eq(rc, 0, "e2e_daemon_init: %s", dmn.why);
}

static void teardown(void)
{
    e2e_daemon_done(&dmn);
}

TestSuite(shutdown, .init = setup, .fini = teardown);

static void start(const char *const extra[])
{
    int rc = e2e_daemon_start(&dmn, extra);

    cr_assert_eq(rc, 0, "adsmith did not start (%d): %s", rc, dmn.why);
}

/* Waits for the exit that a signal sent earlier began; asserts it is clean. */
static void assert_exits_cleanly(int timeout_ms)
{
    int status = -1, rc = e2e_daemon_wait(&dmn, timeout_ms, &status);

    cr_assert_eq(rc, 0, "adsmith still runs %d ms after the signal", timeout_ms);
    rc = e2e_log_check(&dmn);
    cr_assert_eq(rc, 0, "%s", dmn.why);
    cr_assert_eq(status, 0, "exit status %d, expected 0", status);
}

/* Asserts that the first record with "msg" @p msg has the string member @p key equal to @p want. */
static void assert_record_str(const char *msg, const char *key, const char *want)
{
    const cJSON *v;
    cJSON *rec;
    bool ok;
    int rc = e2e_log_find(&dmn, msg, &rec);

    cr_assert_eq(rc, 0, "no \"%s\" record", msg);
    v = cJSON_GetObjectItemCaseSensitive(rec, key);
    ok = cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
    cJSON_Delete(rec);
    cr_assert(ok, "the \"%s\" record's %s is not \"%s\"", msg, key, want);
}

/* Returns the number member @p key of the first record with "msg" @p msg. */
static double record_num(const char *msg, const char *key)
{
    const cJSON *v;
    cJSON *rec;
    double n;
    bool ok;
    int rc = e2e_log_find(&dmn, msg, &rec);

    cr_assert_eq(rc, 0, "no \"%s\" record", msg);
    v = cJSON_GetObjectItemCaseSensitive(rec, key);
    ok = cJSON_IsNumber(v);
    n = ok ? v->valuedouble : 0;
    cJSON_Delete(rec);
    cr_assert(ok, "the \"%s\" record has no number %s", msg, key);
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- a raw HTTP/1.1 client, to hold a connection exactly as the test wants ---- */

static int raw_connect(void)
{
    int fd = -1, rc = e2e_tcp_connect(dmn.port, &fd);

    cr_assert_eq(rc, 0, "connect to port %d: %s", dmn.port, strerror(-rc));
    return fd;
}

/* Copies the value of header @p name (searched in the head ending at @p eoh) into @p out; "" when absent. */
static void raw_header(const char *raw, const char *eoh, const char *name, char *out, size_t cap)
{
    char key[64];
    const char *v;

    snprintf(key, sizeof(key), "\r\n%s:", name);
    out[0] = '\0';
    if ((v = strcasestr(raw, key)) == NULL || v > eoh)
        return;
    v += strlen(key);
    while (*v == ' ')
        v++;
    snprintf(out, cap, "%.*s", (int)strcspn(v, "\r"), v);
}

/* Sends GET @p path on @p fd and reads the response into @p r: status,
 * Content-Type, body, and the Connection header as the captured header. */
static void raw_get(int fd, const char *path, struct e2e_resp *r)
{
    char req[256], raw[8192];
    const char *eoh;
    size_t len;
    int rc;

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    rc = e2e_tcp_send(fd, req, strlen(req));
    cr_assert_eq(rc, 0, "send: %s", strerror(-rc));
    rc = e2e_tcp_read_response(fd, 5000, raw, sizeof(raw), &len);
    cr_assert_eq(rc, 0, "no complete response to GET %s: %s", path, strerror(-rc));

    memset(r, 0, offsetof(struct e2e_resp, body));
    r->code = CURLE_OK;
    r->version = CURL_HTTP_VERSION_1_1;
    cr_assert_eq(sscanf(raw, "HTTP/1.1 %ld ", &r->status), 1, "no status line: %.200s", raw);
    eoh = strstr(raw, "\r\n\r\n");
    snprintf(r->body, sizeof(r->body), "%s", eoh + 4);
    r->body_len = strlen(r->body);
    raw_header(raw, eoh, "content-type", r->content_type, sizeof(r->content_type));
    raw_header(raw, eoh, "connection", r->header, sizeof(r->header));
    r->has_header = r->header[0] != '\0';
}

/* ---- stopping an idle daemon ---- */

static void stop_idle(int signo, const char *signame)
{
    uint64_t t0;
    int status = -1, rc, fd;

    start(NULL);
    t0 = e2e_now_ms();
    rc = e2e_daemon_stop(&dmn, signo, 5000, &status);
    cr_assert_eq(rc, 0, "adsmith still runs 5 s after %s", signame);
    cr_assert_lt(e2e_now_ms() - t0, 2000, "an idle daemon took %llu ms to stop",
                 (unsigned long long)(e2e_now_ms() - t0));
    rc = e2e_log_check(&dmn);
    cr_assert_eq(rc, 0, "%s", dmn.why);
    cr_assert_eq(status, 0, "exit status %d after %s", status, signame);
    assert_record_str("shutdown: draining", "signal", signame);
    assert_record_str("stopped", "level", "info");
    cr_assert_eq(record_num("stopped", "connections_cut"), 0);
    rc = e2e_tcp_connect(dmn.port, &fd);
    cr_assert_eq(rc, -ECONNREFUSED, "the port still accepts after exit (%d)", rc);
}

Test(shutdown, sigterm_stops_idle_daemon, .timeout = 30)
{
    stop_idle(SIGTERM, "SIGTERM");
}

Test(shutdown, sigint_stops_like_sigterm, .timeout = 30)
{
    stop_idle(SIGINT, "SIGINT");
}

/* Polls the log until it holds at least @p n records with "msg" @p msg. Returns 0 or -ETIMEDOUT. */
static int wait_records(const char *msg, int n, int timeout_ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;
    char needle[128], *text = malloc(1 << 20);
    int found = 0;

    cr_assert_not_null(text);
    snprintf(needle, sizeof(needle), "\"msg\":\"%s\"", msg);
    for (;;) {
        size_t len;
        found = 0;
        if (e2e_file_read(dmn.log_path, text, 1 << 20, &len) == 0) {
            for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
                found++;
        }
        if (found >= n || e2e_now_ms() >= deadline)
            break;
        sleep_ms(10);
    }
    free(text);
    return found >= n ? 0 : -ETIMEDOUT;
}

Test(shutdown, sigterm_while_storage_unavailable_exits_0, .timeout = 30)
{
    const char *extra[] = {"--storage-retry-ms", "100", NULL};
    uint64_t t0;
    int status = -1, rc;
    FILE *f;

    /* A regular file where the data directory should be: storage keeps
     * failing and a background thread keeps retrying. */
    f = fopen(dmn.data_dir, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fclose(f), 0);
    start(extra);
    cr_assert(e2e_log_has(&dmn, "storage unavailable"), "storage opened on a regular file");
    /* Stop only once the retry thread has run: a second failure record. */
    rc = wait_records("storage unavailable", 2, 5000);
    cr_assert_eq(rc, 0, "storage was not retried within 5 s");
    t0 = e2e_now_ms();
    rc = e2e_daemon_stop(&dmn, SIGTERM, 5000, &status);
    cr_assert_eq(rc, 0, "adsmith still runs 5 s after SIGTERM while retrying storage");
    cr_assert_lt(e2e_now_ms() - t0, 2000, "stopping took %llu ms", (unsigned long long)(e2e_now_ms() - t0));
    rc = e2e_log_check(&dmn);
    cr_assert_eq(rc, 0, "%s", dmn.why);
    cr_assert_eq(status, 0, "exit status %d", status);
    cr_assert(e2e_log_has(&dmn, "stopped"));
    cr_assert_not(e2e_log_has(&dmn, "storage open"));
}

/* ---- a request whose body is still uploading when SIGTERM arrives ---- */

#define UPLOAD_LEN 800
#define UPLOAD_HOLD_MS 300

struct upload {
    char body[UPLOAD_LEN];
    size_t off;
    bool signalled;
    int signal_rc;   /* kill(SIGTERM) */
    int draining_rc; /* the "shutdown: draining" record appeared */
    int refused_rc;  /* new connections were refused while the body was incomplete */
};

/* curl's read callback: the first half of the body, then (once that half is
 * out) SIGTERM to the daemon, a check that it stopped accepting, a pause,
 * and the second half. */
static size_t upload_read(char *buf, size_t size, size_t nitems, void *arg)
{
    struct upload *u = arg;
    size_t room = size * nitems, limit, n;

    if (u->off == UPLOAD_LEN / 2 && !u->signalled) {
        u->signalled = true;
        u->signal_rc = e2e_daemon_signal(&dmn, SIGTERM);
        u->draining_rc = e2e_log_wait(&dmn, "shutdown: draining", 5000);
        u->refused_rc = e2e_tcp_wait_refused(dmn.port, 5000);
        /* Not synchronisation: the drain must cope with a body that is slow to finish. */
        sleep_ms(UPLOAD_HOLD_MS);
    }
    limit = u->off < UPLOAD_LEN / 2 ? UPLOAD_LEN / 2 : UPLOAD_LEN;
    n = limit - u->off < room ? limit - u->off : room;
    memcpy(buf, u->body + u->off, n);
    u->off += n;
    return n;
}

static void inflight_upload(enum e2e_proto proto, long version)
{
    struct upload *u = calloc(1, sizeof(*u));
    struct e2e_resp *r = malloc(sizeof(*r));
    CURL *h = curl_easy_init();
    struct e2e_req warm = {.proto = proto, .path = "/healthz", .handle = h};
    struct e2e_req post = {
        .proto = proto, .path = "/healthz", .read_fn = upload_read, .read_arg = u, .body_len = UPLOAD_LEN, .handle = h};
    int rc;

    cr_assert(u != NULL && r != NULL && h != NULL);
    memset(u->body, 'u', sizeof(u->body));
    start(NULL);
    /* A first request on the same connection: it was accepted before the signal. */
    rc = e2e_http(&dmn, &warm, r);
    cr_assert_eq(rc, 0);
    cr_assert_eq(r->status, 200, "warm-up: curl %d (%s)", r->code, r->error);
    cr_assert_eq(r->version, version);

    rc = e2e_http(&dmn, &post, r);
    cr_assert_eq(rc, 0);
    cr_assert(u->signalled, "curl never asked for the second half of the body");
    cr_assert_eq(u->signal_rc, 0, "kill: %s", strerror(-u->signal_rc));
    cr_assert_eq(u->draining_rc, 0, "no \"shutdown: draining\" record within 5 s of SIGTERM");
    cr_assert_eq(u->refused_rc, 0, "new connections were still accepted 5 s into the drain");
    cr_assert_eq(u->off, UPLOAD_LEN);
    /* The request was answered in full, not dropped: POST /healthz reached routing. */
    cr_assert_eq(r->connects, 0, "the upload did not reuse the warm connection");
    cr_assert_eq(r->version, version);
    e2e_assert_error_json(r, 405, "method_not_allowed");

    curl_easy_cleanup(h);
    free(r);
    free(u);
    assert_exits_cleanly(10000);
    cr_assert_eq(record_num("stopped", "connections_cut"), 0);
}

Test(shutdown, inflight_h2_upload_is_answered, .timeout = 30)
{
    /* Upgrade rather than prior knowledge: the warm connection must be reused (see e2e_req.handle). */
    inflight_upload(E2E_H2C_UPGRADE, CURL_HTTP_VERSION_2_0);
}

Test(shutdown, inflight_http1_upload_is_answered, .timeout = 30)
{
    inflight_upload(E2E_HTTP1, CURL_HTTP_VERSION_1_1);
}

/* ---- connections that are idle or stalled ---- */

Test(shutdown, idle_keepalive_does_not_hold_shutdown, .timeout = 30)
{
    const char *extra[] = {"--idle-timeout-ms", "30000", NULL};
    struct e2e_resp r;
    uint64_t t0;
    int fd, rc;

    start(extra);
    fd = raw_connect();
    raw_get(fd, "/healthz", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.header, "keep-alive", "the connection is not kept alive before shutdown");

    t0 = e2e_now_ms();
    rc = e2e_daemon_signal(&dmn, SIGTERM);
    cr_assert_eq(rc, 0);
    /* The daemon closes the idle connection itself, long before idle_timeout_ms. */
    rc = e2e_tcp_wait_eof(fd, 3000);
    close(fd);
    cr_assert_eq(rc, 0, "the idle connection was still open 3 s after SIGTERM");
    assert_exits_cleanly(3000 - (int)(e2e_now_ms() - t0));
    cr_assert_lt(e2e_now_ms() - t0, 3000);
}

/* A TLS connection that never sends its ClientHello is neither idle HTTP/1.1
 * nor HTTP/2: it must not hold the drain until handshake_timeout_ms. */
Test(shutdown, silent_tls_connection_does_not_hold_shutdown, .timeout = 30)
{
    const char *extra[] = {"--tls-cert", dmn.cert_path, "--tls-key", dmn.key_path, "--handshake-timeout-ms", "30000",
                           NULL};
    uint64_t t0;
    int fd, rc;

    rc = e2e_tls_cert(&dmn);
    cr_assert_eq(rc, 0, "%s", dmn.why);
    start(extra);
    rc = e2e_tcp_connect(dmn.port, &fd);
    cr_assert_eq(rc, 0);
    t0 = e2e_now_ms();
    rc = e2e_daemon_signal(&dmn, SIGTERM);
    cr_assert_eq(rc, 0);
    rc = e2e_tcp_wait_eof(fd, 3000);
    close(fd);
    cr_assert_eq(rc, 0, "the silent TLS connection was still open 3 s after SIGTERM");
    assert_exits_cleanly(3000 - (int)(e2e_now_ms() - t0));
    cr_assert_eq(record_num("stopped", "connections_cut"), 0);
}

Test(shutdown, readyz_is_503_while_draining, .timeout = 30)
{
    const char *extra[] = {"--idle-timeout-ms", "30000", NULL};
    struct e2e_resp r;
    int fd, rc;

    start(extra);
    fd = raw_connect();
    raw_get(fd, "/readyz", &r);
    cr_assert_eq(r.status, 200, "body: %s", r.body);

    rc = e2e_daemon_signal(&dmn, SIGTERM);
    cr_assert_eq(rc, 0);
    /* Listeners close after the draining flag is set, so once connects are
     * refused /readyz must say so; the kept-alive connection can still ask
     * (idle connections get up to a second before they are closed). */
    rc = e2e_tcp_wait_refused(dmn.port, 2000);
    cr_assert_eq(rc, 0, "new connections were still accepted 2 s after SIGTERM");
    raw_get(fd, "/readyz", &r);
    e2e_assert_error_json(&r, 503, "shutting_down");
    cr_assert_str_eq(r.header, "close", "a response during the drain does not say Connection: close");
    rc = e2e_tcp_wait_eof(fd, 3000);
    close(fd);
    cr_assert_eq(rc, 0, "the connection stayed open after Connection: close");
    assert_exits_cleanly(5000);
}

Test(shutdown, deadline_cuts_stalled_upload_and_exits_1, .timeout = 30)
{
    static const char stalled[] = "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789";
    const char *extra[] = {"--shutdown-timeout-ms", "200", NULL};
    const cJSON *level;
    struct e2e_resp r;
    int fd, rc, status = -1;
    cJSON *rec;
    bool warn;

    start(extra);
    fd = raw_connect();
    raw_get(fd, "/healthz", &r);
    cr_assert_eq(r.status, 200);
    /* 10 of 100 body bytes, and no more: the drain can only end by the deadline
     * (200 ms), well before the one second it gives requests still being read. */
    rc = e2e_tcp_send(fd, stalled, sizeof(stalled) - 1);
    cr_assert_eq(rc, 0);
    rc = e2e_daemon_stop(&dmn, SIGTERM, 5000, &status);
    close(fd);
    cr_assert_eq(rc, 0, "adsmith still runs 5 s after SIGTERM with a 200 ms deadline");
    cr_assert_eq(status, 1, "exit status %d, expected 1 when the deadline cut a connection", status);
    rc = e2e_log_check(&dmn);
    cr_assert_eq(rc, 0, "%s", dmn.why);
    rc = e2e_log_find(&dmn, "stopped", &rec);
    cr_assert_eq(rc, 0, "no \"stopped\" record");
    level = cJSON_GetObjectItemCaseSensitive(rec, "level");
    warn = cJSON_IsString(level) && strcmp(level->valuestring, "warn") == 0;
    cJSON_Delete(rec);
    cr_assert(warn, "the \"stopped\" record after a cut-off is not a warning");
    cr_assert_geq(record_num("stopped", "connections_cut"), 1);
}

/* ---- SIGHUP ---- */

Test(shutdown, sighup_reloads_and_keeps_serving, .timeout = 30)
{
    struct e2e_resp r;
    double reloads = -1;
    int status = -1, rc;

    start(NULL);
    rc = e2e_daemon_signal(&dmn, SIGHUP);
    cr_assert_eq(rc, 0);
    rc = e2e_log_wait(&dmn, "reload", 5000);
    cr_assert_eq(rc, 0, "no \"reload\" record within 5 s of SIGHUP");
    cr_assert(e2e_daemon_running(&dmn), "SIGHUP stopped the daemon (status %d)", dmn.status);
    cr_assert_not(e2e_log_has(&dmn, "shutdown: draining"), "SIGHUP began a shutdown");

    rc = e2e_http_get(&dmn, E2E_HTTP1, "/healthz", &r);
    cr_assert_eq(rc, 0);
    cr_assert_eq(r.status, 200, "after SIGHUP: curl %d (%s)", r.code, r.error);
    rc = e2e_http_get(&dmn, E2E_HTTP1, "/metrics", &r);
    cr_assert_eq(rc, 0);
    cr_assert_eq(r.status, 200);
    rc = e2e_metric(r.body, "adsmith_reloads_total", &reloads);
    cr_assert_eq(rc, 0, "no adsmith_reloads_total in:\n%s", r.body);
    cr_assert_eq(reloads, 1);

    rc = e2e_daemon_stop(&dmn, SIGTERM, 10000, &status);
    cr_assert_eq(rc, 0);
    cr_assert_eq(status, 0);
    rc = e2e_log_check(&dmn);
    cr_assert_eq(rc, 0, "%s", dmn.why);
}
