/*
 * End-to-end tests of adsmith-load (issue 8) against the real daemon: seed a
 * small data set through the public API, run the harness for about two
 * seconds in closed and in open loop, and check its JSON report (requests
 * sent, no errors, percentiles in order, the open loop never ahead of its
 * schedule). Also: TLS with ALPN h2, a kind the daemon does not serve yet
 * refused with a message, a missing key refused before the run, and bid
 * traffic against the demo campaign with the simulated exchange and audience
 * (bids, wins, win notices the daemon charges, clicks posted back).
 * The harness is $ADSMITH_LOAD_BIN (meson sets it), else adsmith-load next
 * to $ADSMITH_BIN.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../e2e/daemon.h"

#define RUN_TIMEOUT_MS 60000
#define USERS "300"
#define CAMPAIGNS "24"

extern char **environ;

static struct e2e_daemon dmn;
static char url[64];
static char err_text[8192];

static void setup(void)
{
    int rc = e2e_daemon_init(&dmn);
    cr_assert_eq(rc, 0, "e2e_daemon_init: %s", dmn.why);
}

static void teardown(void)
{
    e2e_daemon_done(&dmn);
}

TestSuite(load, .init = setup, .fini = teardown, .timeout = 240);

static const char *load_bin(void)
{
    static char path[E2E_PATH_MAX];
    const char *bin = getenv("ADSMITH_LOAD_BIN");
    if (bin && bin[0])
        return bin;
    const char *daemon = getenv("ADSMITH_BIN");
    cr_assert_not_null(daemon, "ADSMITH_BIN is not set; run the tests through `meson test`");
    snprintf(path, sizeof(path), "%s", daemon);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof(path) - (size_t)(slash ? slash + 1 - path : 0), "adsmith-load");
    return path;
}

/* Runs adsmith-load with @p args (NULL-terminated, after the program name); stderr lands in err_text. */
static int load(const char *const *args)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = load_bin();
    for (size_t i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char out_path[E2E_PATH_MAX], err_path[E2E_PATH_MAX];
    snprintf(out_path, sizeof(out_path), "%s/load.out", dmn.dir);
    snprintf(err_path, sizeof(err_path), "%s/load.err", dmn.dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s: %s", argv[0], strerror(rc));
    int status = -1;
    uint64_t deadline = e2e_now_ms() + RUN_TIMEOUT_MS;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (e2e_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            cr_assert_fail("adsmith-load ran longer than %d ms", RUN_TIMEOUT_MS);
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    size_t len;
    err_text[0] = '\0';
    e2e_file_read(err_path, err_text, sizeof(err_text), &len);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static cJSON *report(const char *path)
{
    static char text[8 * 1024 * 1024];
    size_t len;
    int rc = e2e_file_read(path, text, sizeof(text), &len);
    cr_assert_eq(rc, 0, "cannot read the report %s: %s", path, strerror(-rc));
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j, "the report %s is not JSON", path);
    return j;
}

static double num(const cJSON *j, const char *a, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (c)
        x = cJSON_GetObjectItemCaseSensitive(x, c);
    cr_assert(cJSON_IsNumber(x), "report: %s.%s.%s is not a number", a, b ? b : "", c ? c : "");
    return x->valuedouble;
}

/* Percentiles of @p lat ("latency_us" object) in order, and positive. */
static void assert_ordered(const cJSON *lat, const char *what)
{
    static const char *const names[] = {"min", "p50", "p90", "p99", "p99.9", "max"};
    double prev = 0;
    for (unsigned i = 0; i < 6; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(lat, names[i]);
        cr_assert(cJSON_IsNumber(x), "%s: no %s", what, names[i]);
        cr_assert_geq(x->valuedouble, prev, "%s: %s = %f below the one before (%f)", what, names[i], x->valuedouble,
                      prev);
        prev = x->valuedouble;
    }
    cr_assert_gt(prev, 0, "%s: max latency is 0", what);
}

/* Checks what every good report holds; returns its summary's request count. */
static double check_report(const cJSON *j, const char *const *kinds)
{
    double requests = num(j, "summary", "requests", NULL);
    cr_assert_gt(requests, 0, "no requests were made");
    cr_assert_eq(num(j, "summary", "errors", NULL), 0, "errors in the run; first: %s",
                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "first_error")));
    cr_assert_eq(num(j, "summary", "ok", NULL), requests);
    cr_assert_eq(num(j, "summary", "unfinished", NULL), 0);
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(j, "all");
    assert_ordered(cJSON_GetObjectItemCaseSensitive(all, "latency_us"), "all");
    assert_ordered(cJSON_GetObjectItemCaseSensitive(all, "latency_uncorrected_us"), "all, uncorrected");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "kinds");
    double sum = 0;
    for (unsigned i = 0; kinds[i]; i++) {
        const cJSON *one = cJSON_GetObjectItemCaseSensitive(k, kinds[i]);
        cr_assert_not_null(one, "no requests of kind %s", kinds[i]);
        assert_ordered(cJSON_GetObjectItemCaseSensitive(one, "latency_us"), kinds[i]);
        sum += cJSON_GetObjectItemCaseSensitive(one, "requests")->valuedouble;
    }
    cr_assert_eq(sum, requests, "the kinds' requests do not add up to the total");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "timeseries");
    cr_assert(cJSON_IsArray(ts) && cJSON_GetArraySize(ts) >= 1, "no throughput time series");
    const cJSON *dist = cJSON_GetObjectItemCaseSensitive(j, "distribution");
    cr_assert(cJSON_IsArray(dist) && cJSON_GetArraySize(dist) >= 2, "no percentile curve");
    return requests;
}

static void start_and_seed(void)
{
    e2e_assert_started(&dmn, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", dmn.port);
    const char *key = e2e_admin_key(&dmn);
    cr_assert_not_null(key, "%s", dmn.why);
    setenv("ADSMITH_KEY", key, 1);
    const char *args[] = {"seed", "--url",         url, "--users",   USERS, "--campaigns", CAMPAIGNS, "--seed",
                          "8",    "--connections", "2", "--streams", "8",   "--quiet",     NULL};
    int st = load(args);
    cr_assert_eq(st, 0, "adsmith-load seed exited %d: %s", st, err_text);
}

Test(load, closed_loop_mix_against_the_daemon)
{
    start_and_seed();
    char json[E2E_PATH_MAX];
    snprintf(json, sizeof(json), "%s/closed.json", dmn.dir);
    const char *args[] = {"run",
                          "--url",
                          url,
                          "--users",
                          USERS,
                          "--campaigns",
                          CAMPAIGNS,
                          "--seed",
                          "8",
                          "--duration",
                          "2",
                          "--warmup",
                          "0.3",
                          "--connections",
                          "2",
                          "--streams",
                          "8",
                          "--batch",
                          "20",
                          "--mix",
                          "events=40,users=20,user_get=15,campaigns=15,campaign_edit=5,healthz=5",
                          "--json",
                          json,
                          "--quiet",
                          NULL};
    int st = load(args);
    cr_assert_eq(st, 0, "adsmith-load run exited %d: %s", st, err_text);
    cJSON *j = report(json);
    const char *const kinds[] = {"events", "users", "user_get", "campaigns", "campaign_edit", "healthz", NULL};
    check_report(j, kinds);
    cr_assert_str_eq(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "config"), "mode")),
        "closed");
    cJSON_Delete(j);
    e2e_assert_stopped_clean(&dmn);
}

Test(load, open_loop_keeps_to_its_schedule)
{
    start_and_seed();
    char json[E2E_PATH_MAX];
    snprintf(json, sizeof(json), "%s/open.json", dmn.dir);
    const char *args[] = {"run",
                          "--url",
                          url,
                          "--users",
                          USERS,
                          "--campaigns",
                          CAMPAIGNS,
                          "--seed",
                          "8",
                          "--duration",
                          "2",
                          "--warmup",
                          "0.3",
                          "--rate",
                          "400",
                          "--threads",
                          "2",
                          "--connections",
                          "2",
                          "--streams",
                          "8",
                          "--mix",
                          "events=50,user_get=30,campaigns=20",
                          "--json",
                          json,
                          "--quiet",
                          NULL};
    int st = load(args);
    cr_assert_eq(st, 0, "adsmith-load run exited %d: %s", st, err_text);
    cJSON *j = report(json);
    const char *const kinds[] = {"events", "user_get", "campaigns", NULL};
    double requests = check_report(j, kinds);
    /* An open loop sends by the clock: never more than rate x duration
     * (plus one per thread for the boundary), however fast the server is. */
    double sent = requests + num(j, "summary", "backlog", NULL);
    cr_assert_leq(sent, 400 * 2 + 2, "the open loop sent %f requests in 2 s at 400/s", sent);
    /* And it keeps up: within 1 % of the schedule (issue 8's target), counting what waited for a stream. */
    cr_assert_geq(sent, 400 * 2 * 0.99, "the open loop sent only %f of 800 requests", sent);
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(j, "all");
    /* Corrected latency runs from the intended send, never later than the actual one. */
    cr_assert_geq(num(all, "latency_us", "max", NULL), num(all, "latency_uncorrected_us", "max", NULL));
    cr_assert_geq(num(all, "latency_us", "mean", NULL), num(all, "latency_uncorrected_us", "mean", NULL));
    cr_assert_str_eq(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "config"), "mode")),
        "open");
    cJSON_Delete(j);
    e2e_assert_stopped_clean(&dmn);
}

Test(load, compare_prints_ratios)
{
    start_and_seed();
    char a[E2E_PATH_MAX], b[E2E_PATH_MAX];
    snprintf(a, sizeof(a), "%s/a.json", dmn.dir);
    snprintf(b, sizeof(b), "%s/b.json", dmn.dir);
    const char *run_a[] = {"run", "--url", url,       "--duration", "0.5", "--warmup", "0", "--connections",
                           "1",   "--mix", "healthz", "--json",     a,     "--quiet",  NULL};
    const char *run_b[] = {"run", "--url",         url, "--duration", "0.5",     "--warmup",
                           "0",   "--connections", "1", "--mix",      "healthz", "--rate",
                           "200", "--json",        b,   "--quiet",    NULL};
    cr_assert_eq(load(run_a), 0, "%s", err_text);
    cr_assert_eq(load(run_b), 0, "%s", err_text);
    const char *cmp[] = {"compare", a, b, NULL};
    cr_assert_eq(load(cmp), 0, "%s", err_text);
    char out_path[E2E_PATH_MAX], out[65536];
    size_t len;
    snprintf(out_path, sizeof(out_path), "%s/load.out", dmn.dir);
    cr_assert_eq(e2e_file_read(out_path, out, sizeof(out), &len), 0);
    cr_assert(strstr(out, "summary.throughput_rps") && strstr(out, "all.latency_us.p99 "), "compare printed:\n%s", out);
    e2e_assert_stopped_clean(&dmn);
}

Test(load, tls_with_alpn_h2)
{
    cr_assert_eq(e2e_tls_cert(&dmn), 0, "%s", dmn.why);
    const char *extra[] = {"--tls-cert", dmn.cert_path, "--tls-key", dmn.key_path, NULL};
    e2e_assert_started(&dmn, extra);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", dmn.port);
    char json[E2E_PATH_MAX];
    snprintf(json, sizeof(json), "%s/tls.json", dmn.dir);
    const char *args[] = {"run",     "--url",         url,  "--duration", "1", "--warmup",
                          "0.2",     "--connections", "2",  "--streams",  "8", "--mix",
                          "healthz", "--json",        json, "--quiet",    NULL};
    int st = load(args);
    cr_assert_eq(st, 0, "adsmith-load run over TLS exited %d: %s", st, err_text);
    cJSON *j = report(json);
    const char *const kinds[] = {"healthz", NULL};
    check_report(j, kinds);
    cJSON_Delete(j);
    e2e_assert_stopped_clean(&dmn);
}

/* The item of @p j at the dotted @p path ("business.wins"), or NULL. */
static const cJSON *at(const cJSON *j, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const cJSON *x = j;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && x; k = strtok_r(NULL, ".", &save))
        x = cJSON_GetObjectItemCaseSensitive(x, k);
    return x;
}

static double at_num(const cJSON *j, const char *path)
{
    const cJSON *x = at(j, path);
    cr_assert(cJSON_IsNumber(x), "report: %s is not a number", path);
    return x->valuedouble;
}

Test(load, bid_traffic_wins_pays_and_clicks_back)
{
    const char *extra[] = {"--demo", NULL};
    e2e_assert_started(&dmn, extra);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", dmn.port);
    const char *key = e2e_admin_key(&dmn);
    cr_assert_not_null(key, "%s", dmn.why);
    setenv("ADSMITH_KEY", key, 1);
    char json[E2E_PATH_MAX];
    snprintf(json, sizeof(json), "%s/bid.json", dmn.dir);
    /* A generous click model (--click-logit -1: CTR near 30 %) so that a short run has clicks to send; an open
     * loop at a rate the daemon's write path keeps up with, notices and events included. */
    const char *args[] = {"run", "--url",         url,   "--users",    "2000", "--campaigns", "0",   "--seed",
                          "8",   "--rate",        "500", "--duration", "2",    "--warmup",    "0.2", "--drain",
                          "20",  "--connections", "2",   "--streams",  "8",    "--mix",       "bid", "--click-logit",
                          "-1",  "--json",        json,  "--quiet",    NULL};
    int st = load(args);
    cr_assert_eq(st, 0, "adsmith-load run --mix bid exited %d: %s", st, err_text);
    cJSON *j = report(json);
    const char *const kinds[] = {"bid", NULL};
    double requests = check_report(j, kinds);
    cr_assert_eq(at_num(j, "business.auctions"), requests, "every bid request answered 200 or 204");
    double bids = at_num(j, "business.bids"), wins = at_num(j, "business.wins");
    cr_assert_gt(bids, 0, "the demo campaign never bid");
    cr_assert_gt(wins, 0, "no auction won");
    cr_assert_leq(wins, bids);
    cr_assert_eq(at_num(j, "business.unusable_bids"), 0, "bids the harness could not use");
    cr_assert_eq(at_num(j, "business.feedback_dropped"), 0);
    cr_assert_gt(at_num(j, "business.spend_micros"), 0);
    cr_assert_gt(at_num(j, "business.clicks"), 0, "no clicks on %f wins", wins);
    double auc = at_num(j, "business.oracle_auc");
    cr_assert(auc >= 0 && auc <= 1, "oracle AUC %f", auc);
    /* adsmith's pCTR of every won impression, from POST /v1/score of the same context, and its AUC on them. */
    double scored = at_num(j, "business.impressions_with_pctr");
    cr_assert_gt(scored, 0, "no won impression got adsmith's pCTR (score_failed %f)",
                 at_num(j, "business.score_failed"));
    double mine = at_num(j, "business.adsmith_auc"), same = at_num(j, "business.oracle_auc_same");
    cr_assert(mine >= 0 && mine <= 1 && same >= 0 && same <= 1, "AUCs %f %f", mine, same);
    double ws = at_num(j, "kinds.win_score.requests");
    cr_assert_eq(at_num(j, "kinds.win_score.ok"), ws, "a score request was refused: %s",
                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "first_error")));
    /* The win notices and the events went back, and the daemon took them all. */
    double notices = at_num(j, "kinds.notice.requests"), fb = at_num(j, "kinds.feedback.requests");
    cr_assert_gt(notices, 0);
    cr_assert_eq(at_num(j, "kinds.notice.ok"), notices, "a notice was refused: %s",
                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "first_error")));
    cr_assert_gt(fb, 0);
    cr_assert_eq(at_num(j, "kinds.feedback.ok"), fb, "an events batch was refused: %s",
                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "first_error")));
    /* Per-second percentiles in the time series. */
    const cJSON *sec = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "timeseries"), 0);
    cr_assert_gt(at_num(sec, "requests"), 0);
    cr_assert_leq(at_num(sec, "p50_us"), at_num(sec, "p99_us"));
    cr_assert_leq(at_num(sec, "p99_us"), at_num(sec, "max_us") * 1.04);
    cJSON_Delete(j);

    /* The daemon's side: the demo campaign was charged, and it counted the notices. */
    struct e2e_resp *r = calloc(1, sizeof(*r));
    cr_assert_not_null(r);
    struct e2e_req q = {.proto = E2E_HTTP1, .path = "/v1/campaigns/demo-coffee/usage"};
    cr_assert_eq(e2e_http(&dmn, &q, r), 0);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cJSON *u = cJSON_Parse(r->body);
    cr_assert_gt(at_num(u, "spend.total_micros"), 0, "the daemon charged nothing: %s", r->body);
    cr_assert_geq(at_num(u, "spend.impressions"), 1);
    cJSON_Delete(u);
    cr_assert_eq(e2e_http_get(&dmn, E2E_HTTP1, "/metrics", r), 0);
    double seen = 0;
    cr_assert_eq(e2e_metric(r->body,
                            "adsmith_http_requests_total{method=\"GET\",route=\"/v1/notice/{id}\",code=\"200\"}",
                            &seen),
                 0, "no notice count in /metrics");
    cr_assert_geq(seen, notices);
    free(r);
    e2e_assert_stopped_clean(&dmn);
}

/* --msgpack: bid, score and events bodies as MessagePack (the bid answers come back in it), and the loss
 * notices of lost auctions (lurl with ${AUCTION_LOSS} = 102), all taken by the daemon. */
Test(load, bid_traffic_in_msgpack_with_loss_notices)
{
    const char *extra[] = {"--demo", NULL};
    e2e_assert_started(&dmn, extra);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", dmn.port);
    const char *key = e2e_admin_key(&dmn);
    cr_assert_not_null(key, "%s", dmn.why);
    setenv("ADSMITH_KEY", key, 1);
    char json[E2E_PATH_MAX];
    snprintf(json, sizeof(json), "%s/bid-mp.json", dmn.dir);
    const char *args[] = {"run",
                          "--url",
                          url,
                          "--users",
                          "2000",
                          "--campaigns",
                          "0",
                          "--rate",
                          "400",
                          "--duration",
                          "1.5",
                          "--warmup",
                          "0.2",
                          "--drain",
                          "20",
                          "--connections",
                          "2",
                          "--streams",
                          "8",
                          "--mix",
                          "bid=8,score=1,events=1",
                          "--click-logit",
                          "-1",
                          "--msgpack",
                          "--json",
                          json,
                          "--quiet",
                          NULL};
    int st = load(args);
    cr_assert_eq(st, 0, "adsmith-load run --msgpack exited %d: %s", st, err_text);
    cJSON *j = report(json);
    const char *const kinds[] = {"bid", "score", "events", NULL};
    check_report(j, kinds);
    cr_assert(cJSON_IsTrue(at(j, "config.msgpack")));
    cr_assert_gt(at_num(j, "business.bids"), 0, "no bid read from the MessagePack answers");
    cr_assert_eq(at_num(j, "business.unusable_bids"), 0, "MessagePack bids the harness could not use");
    cr_assert_gt(at_num(j, "business.wins"), 0);
    cr_assert_gt(at_num(j, "business.losses"), 0, "no auction lost: no loss notices to check");
    const char *fbk[] = {"notice", "loss_notice", "win_score", "feedback"};
    for (size_t i = 0; i < sizeof(fbk) / sizeof(fbk[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "kinds.%s.requests", fbk[i]);
        double n = at_num(j, path);
        cr_assert_gt(n, 0, "no %s sent", fbk[i]);
        snprintf(path, sizeof(path), "kinds.%s.ok", fbk[i]);
        cr_assert_eq(at_num(j, path), n, "a %s was refused: %s", fbk[i],
                     cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "first_error")));
    }
    cJSON_Delete(j);
    e2e_assert_stopped_clean(&dmn);
}

/* Starts adsmith-empty (next to adsmith-load) with @p args (NULL-terminated, after the program name) and
 * returns the port it printed; *ret_pid is its process. */
static unsigned empty_start(const char *const *args, pid_t *ret_pid)
{
    char bin[E2E_PATH_MAX];
    snprintf(bin, sizeof(bin), "%s", load_bin());
    char *slash = strrchr(bin, '/');
    snprintf(slash ? slash + 1 : bin, sizeof(bin) - (size_t)(slash ? slash + 1 - bin : 0), "adsmith-empty");
    const char *argv[16];
    size_t n = 0;
    argv[n++] = bin;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    cr_assert_eq(rc, 0, "cannot run %s: %s", bin, strerror(rc));
    char line[64] = {0};
    size_t got_n = 0;
    while (got_n < sizeof(line) - 1 && !strchr(line, '\n')) {
        ssize_t got = read(fds[0], line + got_n, sizeof(line) - 1 - got_n);
        if (got <= 0)
            break;
        got_n += (size_t)got;
    }
    close(fds[0]);
    unsigned port = 0;
    int parsed = sscanf(line, "port %u", &port);
    if (parsed != 1 || port == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("adsmith-empty printed '%s'", line);
    }
    *ret_pid = pid;
    return port;
}

static void empty_stop(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
}

/* adsmith-empty (the baseline of loadtest/bench-bid.sh): a port on stdout, 200 to POST / with bid bodies. */
Test(load, empty_server_answers_post_empty)
{
    const char *eargs[] = {"--threads", "2", NULL};
    pid_t pid;
    unsigned port = empty_start(eargs, &pid);
    char eurl[64], json[E2E_PATH_MAX];
    snprintf(eurl, sizeof(eurl), "http://127.0.0.1:%u", port);
    snprintf(json, sizeof(json), "%s/empty.json", dmn.dir);
    const char *args[] = {"run",        "--url",    eurl,  "--users",       "1000", "--campaigns", "10", "--duration",
                          "0.5",        "--warmup", "0.1", "--connections", "2",    "--streams",   "8",  "--mix",
                          "post_empty", "--json",   json,  "--quiet",       NULL};
    int st = load(args);
    empty_stop(pid);
    cr_assert_eq(st, 0, "adsmith-load against adsmith-empty exited %d: %s", st, err_text);
    cJSON *j = report(json);
    const char *const kinds[] = {"post_empty", NULL};
    double requests = check_report(j, kinds);
    cr_assert_gt(requests, 100);
    cr_assert_gt(at_num(j, "kinds.post_empty.bytes_out"), requests * 300, "bid-sized bodies");
    cJSON_Delete(j);
}

/* The percentile-curve point of @p j's "distribution" nearest @p pct; *ret_uncorrected gets its uncorrected value. */
static double curve_at(const cJSON *j, double pct, double *ret_uncorrected)
{
    const cJSON *dist = cJSON_GetObjectItemCaseSensitive(j, "distribution"), *best = NULL, *e;
    double gap = 1e9;
    cJSON_ArrayForEach(e, dist)
    {
        double d = at_num(e, "percentile") - pct;
        if (d < 0)
            d = -d;
        if (d < gap) {
            gap = d;
            best = e;
        }
    }
    cr_assert(best != NULL && gap < 0.1, "no point near p%g in the percentile curve", pct);
    *ret_uncorrected = at_num(best, "uncorrected_us");
    return at_num(best, "latency_us");
}

/* Coordinated omission (issue 8): an open loop at 2,000/s for 3 s against adsmith-empty stalling once for
 * 300 ms in the middle. The 600 requests due during the stall wait 0-300 ms each (a stream is blocked, or
 * none is free and the client holds them back), so about 10 % of the 6,000 show it when latency runs from
 * the intended send: p95 near 150 ms, max >= 300 ms. From the actual send only the requests already in
 * flight when the stall began (at most --streams) saw it; the ones held back went after it, so the
 * uncorrected p95 stays low. A harness that measured from the actual send only would fail here. */
Test(load, open_loop_counts_a_server_stall_from_the_intended_send)
{
    const char *eargs[] = {"--stall-at-ms", "1500", "--stall-ms", "300", NULL};
    pid_t pid;
    unsigned port = empty_start(eargs, &pid);
    char eurl[64], json[E2E_PATH_MAX];
    snprintf(eurl, sizeof(eurl), "http://127.0.0.1:%u", port);
    snprintf(json, sizeof(json), "%s/stall.json", dmn.dir);
    /* The probe is the server's first request; the stall comes 1.5 s later, 1.2 s into the measured 3 s. */
    const char *args[] = {"run",    "--url",     eurl,         "--users",   "1000",     "--campaigns", "10",
                          "--rate", "2000",      "--duration", "3",         "--warmup", "0.3",         "--connections",
                          "1",      "--streams", "32",         "--threads", "1",        "--mix",       "post_empty",
                          "--json", json,        "--quiet",    NULL};
    int st = load(args);
    empty_stop(pid);
    cr_assert_eq(st, 0, "adsmith-load against a stalling adsmith-empty exited %d: %s", st, err_text);
    cJSON *j = report(json);
    const char *const kinds[] = {"post_empty", NULL};
    double requests = check_report(j, kinds);
    cr_assert_geq(requests, 5000, "%f requests: the open loop fell far behind 2,000/s", requests);
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(j, "all");
    double max = num(all, "latency_us", "max", NULL), max_unc = num(all, "latency_uncorrected_us", "max", NULL);
    double p95_unc, p95 = curve_at(j, 95, &p95_unc);
    /* Corrected: the stall whole (the request that triggered it waited 300 ms), and in about 10 % of requests. */
    cr_assert_geq(max, 297000, "corrected max %f us: the 300 ms stall is missing", max);
    cr_assert_geq(p95, 100000, "corrected p95 %f us: the ~10 %% of requests due during the stall are missing", p95);
    /* The requests in flight when the stall began did see it from their actual send... */
    cr_assert_geq(max_unc, 200000, "uncorrected max %f us: no request in flight during the stall?", max_unc);
    /* ...and the others were held back by the client (send lag) instead: the uncorrected p95 is far lower. */
    cr_assert_geq(num(all, "send_lag_us", "max", NULL), 200000, "the client never held a request back");
    cr_assert_leq(p95_unc, p95 / 3, "uncorrected p95 %f us against corrected %f us", p95_unc, p95);
    cJSON_Delete(j);
}

Test(load, unserved_kinds_and_missing_keys_are_refused_before_the_run)
{
    e2e_assert_started(&dmn, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", dmn.port);
    unsetenv("ADSMITH_KEY");
    const char *nokey[] = {"run", "--url", url, "--duration", "1", "--mix", "events", NULL};
    int st = load(nokey);
    cr_assert_eq(st, 2, "without a key: exit %d: %s", st, err_text);
    cr_assert(strstr(err_text, "API key") != NULL, "stderr: %s", err_text);

    const char *key = e2e_admin_key(&dmn);
    cr_assert_not_null(key, "%s", dmn.why);
    setenv("ADSMITH_KEY", key, 1);
    const char *bid[] = {"run", "--url", url, "--duration", "1", "--mix", "bid=10,healthz=1", NULL};
    st = load(bid);
    /* Until the daemon has POST /openrtb2/bid the harness refuses with a message; afterwards the run works. */
    if (st != 0) {
        cr_assert_eq(st, 2, "bid: exit %d: %s", st, err_text);
        cr_assert(strstr(err_text, "does not serve POST /openrtb2/bid yet") != NULL, "stderr: %s", err_text);
    }
    const char *bad[] = {"run", "--url", url, "--streams", "101", NULL};
    cr_assert_eq(load(bad), 2, "--streams 101 accepted: %s", err_text);
    e2e_assert_stopped_clean(&dmn);
}
