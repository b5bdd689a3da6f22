/*
 * A 2xx means committed: acknowledged writes survive a clean restart and a
 * SIGKILL in the middle of sustained event ingest, and batches are
 * all-or-nothing even then.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

static const char *const json_hdr[] = {"Content-Type: application/json", NULL};

static struct e2e_resp *resp_new(void)
{
    struct e2e_resp *r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    return r;
}

static int post_events(const struct e2e_daemon *d, CURL *h, const char *body, struct e2e_resp *r)
{
    struct e2e_req req = {.proto = E2E_H2C_UPGRADE,
                          .method = "POST",
                          .path = "/v1/events",
                          .body = body,
                          .body_len = strlen(body),
                          .headers = json_hdr,
                          .handle = h};
    return e2e_http(d, &req, r);
}

/* A batch of @p n impressions for user "crash-<batch>", each with its own id. */
static void batch_body(char *buf, size_t cap, unsigned batch, unsigned n)
{
    size_t len = (size_t)snprintf(buf, cap, "{\"events\":[");
    for (unsigned i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s{\"id\":\"b%u-e%u\",\"type\":\"impression\",\"user\":\"crash-%u\",\"ts\":1763800000,"
                                "\"campaign\":\"c1\",\"interests\":[\"i%u\"]}",
                                i ? "," : "", batch, i, batch, i % 4);
    snprintf(buf + len, cap - len, "]}");
}

/* The profile's lifetime impressions for c1, or 0 when the user does not exist. */
static unsigned lifetime_of(const struct e2e_daemon *d, unsigned batch, struct e2e_resp *r)
{
    char path[64];
    cJSON *doc, *f;
    unsigned n = 0;

    snprintf(path, sizeof(path), "/v1/users/crash-%u", batch);
    cr_assert_eq(e2e_http_get(d, E2E_H2C, path, r), 0);
    cr_assert_eq(r->code, CURLE_OK, "%s", r->error);
    if (r->status == 404)
        return 0;
    cr_assert_eq(r->status, 200, "%s", r->body);
    doc = cJSON_Parse(r->body);
    cr_assert_not_null(doc);
    f = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "frequency"), 0);
    cr_assert_not_null(f, "%s", r->body);
    n = (unsigned)cJSON_GetNumberValue(cJSON_GetObjectItem(f, "lifetime"));
    cJSON_Delete(doc);
    return n;
}

Test(durability, restart_keeps_every_acknowledged_write, .timeout = 30)
{
    struct e2e_daemon d;
    struct e2e_resp *r = resp_new();
    static char body[65536];

    cr_assert_eq(e2e_daemon_init(&d), 0, "%s", d.why);
    e2e_assert_started(&d, NULL);
    for (unsigned b = 0; b < 20; b++) {
        batch_body(body, sizeof(body), b, 5);
        cr_assert_eq(post_events(&d, NULL, body, r), 0);
        cr_assert_eq(r->status, 200, "%s", r->body);
    }
    e2e_assert_stopped_clean(&d);

    /* A second daemon on the same data directory. */
    d.pid = 0;
    d.reaped = false;
    e2e_assert_started(&d, NULL);
    for (unsigned b = 0; b < 20; b++)
        cr_assert_eq(lifetime_of(&d, b, r), 5, "batch %u", b);
    e2e_assert_stopped_clean(&d);
    e2e_daemon_done(&d);
    free(r);
}

#define CRASH_SENDERS 4
#define CRASH_MAX_BATCHES 100000
#define CRASH_BATCH 20

static struct e2e_daemon crash_d;
static atomic_uint next_batch;
static atomic_bool stop_sending;
static _Atomic unsigned char acked[CRASH_MAX_BATCHES];
static atomic_uint acked_count;

static void *sender(void *arg)
{
    char *body = malloc(16384);
    struct e2e_resp *r = malloc(sizeof(*r));
    CURL *h = curl_easy_init();

    (void)arg;
    while (!atomic_load(&stop_sending)) {
        unsigned b = atomic_fetch_add(&next_batch, 1);
        if (b >= CRASH_MAX_BATCHES)
            break;
        batch_body(body, 16384, b, CRASH_BATCH);
        if (post_events(&crash_d, h, body, r) != 0 || r->code != CURLE_OK)
            break; /* the daemon is gone */
        if (r->status == 200 && strstr(r->body, "\"accepted\":20") != NULL) {
            atomic_store(&acked[b], 1);
            atomic_fetch_add(&acked_count, 1);
        }
    }
    curl_easy_cleanup(h);
    free(body);
    free(r);
    return NULL;
}

Test(durability, sigkill_during_ingest_loses_no_acknowledged_batch, .timeout = 30)
{
    pthread_t tid[CRASH_SENDERS];
    struct e2e_resp *r = resp_new();
    unsigned sent, partial = 0;
    int status;

    cr_assert_eq(e2e_daemon_init(&crash_d), 0, "%s", crash_d.why);
    e2e_assert_started(&crash_d, NULL);
    for (int i = 0; i < CRASH_SENDERS; i++)
        cr_assert_eq(pthread_create(&tid[i], NULL, sender, NULL), 0);
    /* Let ingest run, then kill the daemon while requests are in flight. */
    for (int i = 0; i < 300 && atomic_load(&acked_count) < 200; i++)
        usleep(10000);
    usleep(200000);
    cr_assert_eq(e2e_daemon_signal(&crash_d, SIGKILL), 0);
    cr_assert_eq(e2e_daemon_wait(&crash_d, 5000, &status), 0);
    cr_assert_eq(status, 128 + SIGKILL);
    atomic_store(&stop_sending, true);
    for (int i = 0; i < CRASH_SENDERS; i++)
        pthread_join(tid[i], NULL);
    sent = atomic_load(&next_batch);
    if (sent > CRASH_MAX_BATCHES)
        sent = CRASH_MAX_BATCHES;
    cr_assert_gt(atomic_load(&acked_count), 100, "ingest must have been under way (%u batches acknowledged)",
                 atomic_load(&acked_count));

    /* The environment opens cleanly after the kill: the daemon becomes ready. */
    crash_d.pid = 0;
    crash_d.reaped = false;
    e2e_assert_started(&crash_d, NULL);
    cr_assert_eq(e2e_http_get(&crash_d, E2E_H2C, "/readyz", r), 0);
    cr_assert_eq(r->status, 200, "%s", r->body);
    for (unsigned b = 0; b < sent; b++) {
        unsigned n = lifetime_of(&crash_d, b, r);
        if (atomic_load(&acked[b]))
            cr_assert_eq(n, CRASH_BATCH, "acknowledged batch %u has %u of its %d events after the kill", b, n,
                         CRASH_BATCH);
        else
            partial += n != 0 && n != CRASH_BATCH;
    }
    cr_assert_eq(partial, 0, "%u unacknowledged batches were applied in part", partial);
    cr_log_info("batches sent %u, acknowledged %u", sent, atomic_load(&acked_count));
    e2e_assert_stopped_clean(&crash_d);
    e2e_daemon_done(&crash_d);
    free(r);
}

Test(durability, clients_gone_before_their_commit_are_harmless, .timeout = 30)
{
    static const char body[] =
        "{\"events\":[{\"type\":\"click\",\"user\":\"gone\",\"ts\":1763800000,\"campaign\":\"c1\"}]}";
    struct e2e_daemon d;
    struct e2e_resp *r = resp_new();
    char req[1024];
    int fd, n;

    cr_assert_eq(e2e_daemon_init(&d), 0, "%s", d.why);
    e2e_assert_started(&d, NULL);
    cr_assert_not_null(e2e_admin_key(&d), "%s", d.why);
    n = snprintf(req, sizeof(req),
                 "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: "
                 "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                 d.admin_key, sizeof(body) - 1, body);
    /* Each client sends a write and hangs up at once: its request is gone
     * while the write still waits for the writer thread. */
    for (int i = 0; i < 300; i++) {
        cr_assert_eq(e2e_tcp_connect(d.port, &fd), 0);
        cr_assert_eq(e2e_tcp_send(fd, req, (size_t)n), 0);
        close(fd);
    }
    cr_assert_eq(e2e_http_get(&d, E2E_H2C, "/v1/users/gone", r), 0);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_eq(e2e_http_get(&d, E2E_H2C, "/healthz", r), 0);
    cr_assert_eq(r->status, 200);
    e2e_assert_stopped_clean(&d);
    e2e_daemon_done(&d);
    free(r);
}
