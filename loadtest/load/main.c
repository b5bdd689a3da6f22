/*
 * adsmith-load: the load harness (issue 8). See loadtest/README.md.
 *
 *   adsmith-load run [OPTIONS]           send a mix of requests, closed or open loop
 *   adsmith-load seed [OPTIONS]          create users and campaigns through the public API
 *   adsmith-load compare A.json B.json   print every figure of two reports with B/A
 *   adsmith-load gen KIND [--count N]    print generated bodies (JSON Lines, or MessagePack with --msgpack), or one
 * file each with --out DIR
 *
 * Exit status: 0 done; 1 the run or seed failed (a seed request was
 * refused, a connection could not be made, a report could not be written);
 * 2 usage, or the server cannot take the requested mix (the probe's answer).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"
#include "report.h"
#include "run.h"

static const char usage_text[] =
    "usage: adsmith-load run|seed|compare|gen [OPTIONS]\n"
    "\n"
    "  adsmith-load run [--url URL] [--mix K=W,...] [--rate R] [--duration S] ...\n"
    "  adsmith-load seed [--url URL] --users N --campaigns M [--seed S]\n"
    "  adsmith-load compare A.json B.json\n"
    "  adsmith-load gen KIND [--count N] [--out DIR] [--msgpack]\n"
    "\n"
    "  --url URL          http://HOST:PORT (h2c, prior knowledge) or https://HOST:PORT (TLS, ALPN h2);\n"
    "                     default http://127.0.0.1:8080\n"
    "  --connections N    connections in all (default 8)\n"
    "  --streams N        requests in flight per connection, 1-100 (default 16)\n"
    "  --threads N        client threads (default: one per --cpus entry, else 1)\n"
    "  --cpus LIST        pin the threads, e.g. 1 or 0-1 or 2,4\n"
    "  --duration S       measured seconds (default 10)\n"
    "  --warmup S         seconds sent first and not recorded (default 1; seed 0)\n"
    "  --rate R           open loop at R requests/s in all; absent: closed loop\n"
    "  --mix SPEC         kinds and weights (default events=60,users=20,user_get=20); kinds:\n"
    "                     healthz events users user_get campaigns campaign_edit bid score post_empty\n"
    "  --key KEY          API key (default: $ADSMITH_KEY)\n"
    "  --seed N           workload seed (default 1): the same seed replays the same bodies\n"
    "  --users N          users in the data set (default 10000)\n"
    "  --campaigns N      campaigns in the data set (default 100)\n"
    "  --batch N          events per POST /v1/events, 1-1000 (default 50)\n"
    "  --no-event-ids     events without \"id\" (by default every event has a new one, so the server\n"
    "                     keeps a deduplication record of each)\n"
    "  --zipf S           Zipf exponent of user and campaign activity (default 1.1)\n"
    "  --campaigns-only   seed: write the campaigns only (the users came in bulk: `gen seed_users` piped to\n"
    "                     `adsmith import users -`; --users still names the data set)\n"
    "  --msgpack          send bid, events and score bodies (and post_empty, the feedback's events and scores)\n"
    "                     as application/msgpack; answers stay JSON\n"
    "  --drain S          seconds to wait for answers after the end (default 5)\n"
    "  --no-probe         skip the first request of each kind that checks the server serves it\n"
    "  --no-feedback      bid: simulate the auction and the clicks but send no win notices or events back\n"
    "  --no-score-wins    bid: do not ask POST /v1/score for adsmith's pCTR of each won impression\n"
    "  --market-cpm X     bid: median of the simulated market's best other bid, CPM (default 2.0)\n"
    "  --click-logit X    bid: intercept of the hidden click model (default -4.2: CTR near 2 %)\n"
    "  --json FILE        write every figure as JSON\n"
    "  --plot FILE        latency percentile curve and throughput over time (.svg or .png; gnuplot)\n"
    "  --quiet            no text summary\n";

enum {
    OPT_URL = 256,
    OPT_CONNECTIONS,
    OPT_STREAMS,
    OPT_THREADS,
    OPT_CPUS,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_RATE,
    OPT_MIX,
    OPT_KEY,
    OPT_SEED,
    OPT_USERS,
    OPT_CAMPAIGNS,
    OPT_BATCH,
    OPT_NO_EVENT_IDS,
    OPT_ZIPF,
    OPT_DRAIN,
    OPT_NO_PROBE,
    OPT_NO_FEEDBACK,
    OPT_NO_SCORE_WINS,
    OPT_MARKET_CPM,
    OPT_CLICK_LOGIT,
    OPT_JSON,
    OPT_PLOT,
    OPT_QUIET,
    OPT_CAMPAIGNS_ONLY,
    OPT_MSGPACK,
    OPT_COUNT,
    OPT_OUT,
    OPT_HELP,
};

static const struct option options[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"streams", required_argument, NULL, OPT_STREAMS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"rate", required_argument, NULL, OPT_RATE},
    {"mix", required_argument, NULL, OPT_MIX},
    {"key", required_argument, NULL, OPT_KEY},
    {"seed", required_argument, NULL, OPT_SEED},
    {"users", required_argument, NULL, OPT_USERS},
    {"campaigns", required_argument, NULL, OPT_CAMPAIGNS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"no-event-ids", no_argument, NULL, OPT_NO_EVENT_IDS},
    {"zipf", required_argument, NULL, OPT_ZIPF},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"no-probe", no_argument, NULL, OPT_NO_PROBE},
    {"no-feedback", no_argument, NULL, OPT_NO_FEEDBACK},
    {"no-score-wins", no_argument, NULL, OPT_NO_SCORE_WINS},
    {"market-cpm", required_argument, NULL, OPT_MARKET_CPM},
    {"click-logit", required_argument, NULL, OPT_CLICK_LOGIT},
    {"json", required_argument, NULL, OPT_JSON},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"campaigns-only", no_argument, NULL, OPT_CAMPAIGNS_ONLY},
    {"msgpack", no_argument, NULL, OPT_MSGPACK},
    {"count", required_argument, NULL, OPT_COUNT},
    {"out", required_argument, NULL, OPT_OUT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct opts {
    const char *url, *cpus, *mix, *key, *json, *plot, *out;
    unsigned connections, streams, threads;
    double duration, warmup, rate, drain, zipf, market_cpm, click_logit;
    uint64_t seed, users, campaigns, count;
    unsigned batch;
    bool warmup_set, no_probe, quiet, no_event_ids, no_feedback, no_score_wins, campaigns_only, msgpack;
};

static int bad(const char *what, const char *value)
{
    fprintf(stderr, "adsmith-load: bad %s '%s'\n%s", what, value, usage_text);
    return 2;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

static int parse_double(const char *s, double max, double *ret)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

static int parse_mix(const char *spec, unsigned mix[LGEN_KINDS])
{
    char buf[512];
    if (strlen(spec) >= sizeof(buf))
        return -EINVAL;
    snprintf(buf, sizeof(buf), "%s", spec);
    memset(mix, 0, sizeof(unsigned) * LGEN_KINDS);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        uint64_t w = 1;
        if (eq) {
            *eq = '\0';
            if (parse_u64(eq + 1, 1000000, &w) < 0)
                return -EINVAL;
        }
        enum lgen_kind k;
        if (lgen_kind_parse(tok, &k) < 0 || k == LGEN_SEED_USER || k == LGEN_SEED_CAMPAIGN || k == LGEN_NOTICE ||
            k == LGEN_LOSS_NOTICE || k == LGEN_FEEDBACK)
            return -EINVAL;
        mix[k] = (unsigned)w;
    }
    return 0;
}

static void loadavg(double out[3])
{
    out[0] = out[1] = out[2] = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &out[0], &out[1], &out[2]) != 3)
            out[0] = out[1] = out[2] = 0;
        fclose(f);
    }
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){
        .url = "http://127.0.0.1:8080",
        .mix = "events=60,users=20,user_get=20",
        .connections = 8,
        .streams = 16,
        .duration = 10,
        .warmup = 1,
        .drain = 5,
        .zipf = 1.1,
        .market_cpm = 2.0,
        .click_logit = -4.2,
        .seed = 1,
        .users = 10000,
        .campaigns = 100,
        .batch = 50,
        .count = 10,
    };
    int c;
    uint64_t v;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case OPT_URL: o->url = optarg; break;
        case OPT_CONNECTIONS:
            if (parse_u64(optarg, LRUN_CONNECTIONS_MAX, &v) < 0 || v == 0)
                return bad("--connections", optarg);
            o->connections = (unsigned)v;
            break;
        case OPT_STREAMS:
            if (parse_u64(optarg, LCONN_STREAMS_MAX, &v) < 0 || v == 0)
                return bad("--streams (1-100: the server's limit)", optarg);
            o->streams = (unsigned)v;
            break;
        case OPT_THREADS:
            if (parse_u64(optarg, LRUN_THREADS_MAX, &v) < 0 || v == 0)
                return bad("--threads", optarg);
            o->threads = (unsigned)v;
            break;
        case OPT_CPUS: o->cpus = optarg; break;
        case OPT_DURATION:
            if (parse_double(optarg, LRUN_SERIES_MAX, &o->duration) < 0)
                return bad("--duration", optarg);
            break;
        case OPT_WARMUP:
            if (parse_double(optarg, 3600, &o->warmup) < 0)
                return bad("--warmup", optarg);
            o->warmup_set = true;
            break;
        case OPT_RATE:
            if (parse_double(optarg, 1e8, &o->rate) < 0 || o->rate == 0)
                return bad("--rate", optarg);
            break;
        case OPT_MIX: o->mix = optarg; break;
        case OPT_KEY: o->key = optarg; break;
        case OPT_SEED:
            if (parse_u64(optarg, UINT64_MAX, &o->seed) < 0)
                return bad("--seed", optarg);
            break;
        case OPT_USERS:
            if (parse_u64(optarg, LGEN_USERS_MAX, &o->users) < 0 || o->users == 0)
                return bad("--users", optarg);
            break;
        case OPT_CAMPAIGNS:
            if (parse_u64(optarg, LGEN_CAMPAIGNS_MAX, &o->campaigns) < 0)
                return bad("--campaigns", optarg);
            break;
        case OPT_BATCH:
            if (parse_u64(optarg, LGEN_BATCH_MAX, &v) < 0 || v == 0)
                return bad("--batch (1-1000)", optarg);
            o->batch = (unsigned)v;
            break;
        case OPT_ZIPF:
            if (parse_double(optarg, 10, &o->zipf) < 0 || o->zipf == 0)
                return bad("--zipf", optarg);
            break;
        case OPT_DRAIN:
            if (parse_double(optarg, 600, &o->drain) < 0)
                return bad("--drain", optarg);
            break;
        case OPT_NO_PROBE: o->no_probe = true; break;
        case OPT_NO_FEEDBACK: o->no_feedback = true; break;
        case OPT_NO_SCORE_WINS: o->no_score_wins = true; break;
        case OPT_MARKET_CPM:
            if (parse_double(optarg, 1000, &o->market_cpm) < 0)
                return bad("--market-cpm (0-1000)", optarg);
            break;
        case OPT_CLICK_LOGIT: {
            char *end;
            o->click_logit = strtod(optarg, &end);
            if (end == optarg || *end || !(o->click_logit >= -20 && o->click_logit <= 20))
                return bad("--click-logit (-20 to 20)", optarg);
            break;
        }
        case OPT_NO_EVENT_IDS: o->no_event_ids = true; break;
        case OPT_JSON: o->json = optarg; break;
        case OPT_PLOT: o->plot = optarg; break;
        case OPT_QUIET: o->quiet = true; break;
        case OPT_CAMPAIGNS_ONLY: o->campaigns_only = true; break;
        case OPT_MSGPACK: o->msgpack = true; break;
        case OPT_COUNT:
            if (parse_u64(optarg, LGEN_USERS_MAX, &o->count) < 0)
                return bad("--count", optarg);
            break;
        case OPT_OUT: o->out = optarg; break;
        case OPT_HELP: fputs(usage_text, stdout); exit(0);
        default: fputs(usage_text, stderr); return 2;
        }
    }
    return 0;
}

static int cmd_load(int argc, char **argv, bool seed_mode)
{
    struct opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc;
    if (optind != argc)
        return bad("argument", argv[optind]);
    struct lrun_cfg cfg = {
        .connections = o.connections,
        .streams = o.streams,
        .rate = seed_mode ? 0 : o.rate,
        .duration_s = seed_mode ? 0 : o.duration,
        .warmup_s = seed_mode ? 0 : o.warmup,
        .drain_s = o.drain,
        .seed_mode = seed_mode,
        .seed_users = o.campaigns_only ? 0 : o.users,
        .seed_campaigns = o.campaigns,
        .probe = !o.no_probe,
        .gen = {.seed = o.seed,
                .users = o.users,
                .campaigns = o.campaigns,
                .zipf_s = o.zipf,
                .batch = o.batch,
                .no_event_ids = o.no_event_ids},
    };
    cfg.feedback = !o.no_feedback;
    cfg.msgpack = o.msgpack;
    cfg.score_wins = !o.no_score_wins;
    sim_cfg_default(&cfg.sim, o.seed);
    cfg.sim.market_cpm = o.market_cpm;
    cfg.sim.base_logit = o.click_logit;
    if (o.cpus && lrun_parse_cpus(o.cpus, cfg.cpus, &cfg.ncpus) < 0)
        return bad("--cpus", o.cpus);
    cfg.threads = o.threads ? o.threads : (cfg.ncpus ? cfg.ncpus : 1);
    if (cfg.threads > cfg.connections)
        cfg.threads = cfg.connections;
    if (!seed_mode && parse_mix(o.mix, cfg.mix) < 0)
        return bad("--mix (KIND=WEIGHT,...; kinds: healthz events users user_get campaigns campaign_edit bid score "
                   "post_empty)",
                   o.mix);
    const char *key = o.key ? o.key : getenv("ADSMITH_KEY");
    struct lconn_target target;
    if (lconn_target_parse(o.url, key, &target) < 0)
        return bad("--url (http://HOST:PORT or https://HOST:PORT) or --key", o.url);
    cfg.target = &target;

    struct lrep_info info = {.command = seed_mode ? "seed" : "run",
                             .url = o.url,
                             .cpus = o.cpus ? o.cpus : "",
                             .cfg = &cfg,
                             .nprocs = sysconf(_SC_NPROCESSORS_ONLN)};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(info.started_at, sizeof(info.started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    loadavg(info.load_before);

    struct lrun_result *r = malloc(sizeof(*r));
    if (!r) {
        lconn_target_done(&target);
        return 1;
    }
    rc = lrun_execute(&cfg, r);
    loadavg(info.load_after);
    int status = 0;
    if (rc < 0) {
        fprintf(stderr, "adsmith-load: %s\n", r->why[0] ? r->why : strerror(-rc));
        status = (rc == -ENOTSUP || rc == -EACCES || rc == -EPROTO || rc == -EINVAL) ? 2 : 1;
    } else {
        if (!o.quiet)
            lrep_text(stdout, &info, r);
        if (o.json && (rc = lrep_json(o.json, &info, r)) < 0) {
            fprintf(stderr, "adsmith-load: cannot write %s: %s\n", o.json, strerror(-rc));
            status = 1;
        }
        char why[512];
        if (o.plot && lrep_plot(o.plot, &info, r, why, sizeof(why)) < 0) {
            fprintf(stderr, "adsmith-load: %s\n", why);
            status = 1;
        }
        if (seed_mode) {
            uint64_t want = cfg.seed_users + cfg.seed_campaigns;
            if (r->all.ok != want) {
                fprintf(stderr, "adsmith-load: seed: %" PRIu64 " of %" PRIu64 " writes succeeded%s%s\n", r->all.ok,
                        want, r->first_error[0] ? "; the first failure: " : "", r->first_error);
                status = 1;
            }
        }
    }
    lrun_result_free(r);
    free(r);
    lconn_target_done(&target);
    return status;
}

static int cmd_gen(int argc, char **argv)
{
    if (argc < 3)
        return bad("gen KIND", "");
    enum lgen_kind kind;
    if (lgen_kind_parse(argv[2], &kind) < 0)
        return bad("kind (healthz events users user_get campaigns campaign_edit bid score post_empty seed_users "
                   "seed_campaigns)",
                   argv[2]);
    struct opts o;
    int rc = parse_opts(argc - 1, argv + 1, &o);
    if (rc)
        return rc;
    struct lgen_cfg gc = {.seed = o.seed,
                          .users = o.users,
                          .campaigns = o.campaigns,
                          .zipf_s = o.zipf,
                          .batch = o.batch,
                          .no_event_ids = o.no_event_ids};
    struct lgen g;
    struct lgen_req req = {0};
    if (lgen_init(&g, &gc, 0) < 0)
        return bad("generator settings", "");
    if (o.out && mkdir(o.out, 0777) < 0 && errno != EEXIST) {
        fprintf(stderr, "adsmith-load: cannot create %s: %s\n", o.out, strerror(errno));
        return 1;
    }
    int status = 0;
    for (uint64_t i = 0; i < o.count && status == 0; i++) {
        if (lgen_make(&g, kind, i, (int64_t)time(NULL), &req) < 0) {
            fprintf(stderr, "adsmith-load: cannot generate %s (campaign kinds need --campaigns > 0)\n", argv[2]);
            status = 1;
            break;
        }
        if (o.msgpack && req.body.len) {
            /* MessagePack: the raw encodings one after another (a MessagePack stream), or one file each */
            struct lgen_buf mp = {0};
            if (lgen_msgpack_of(req.body.p, req.body.len, &mp) < 0) {
                lgen_buf_free(&mp);
                status = 1;
                break;
            }
            FILE *f = stdout;
            if (o.out) {
                char path[1024];
                snprintf(path, sizeof(path), "%s/%s-%06" PRIu64 ".msgpack", o.out, lgen_kind_name(kind), i);
                f = fopen(path, "wb");
            }
            if (!f || fwrite(mp.p, 1, mp.len, f) != mp.len)
                status = 1;
            if (f && f != stdout && fclose(f) != 0)
                status = 1;
            lgen_buf_free(&mp);
            continue;
        }
        const char *body = req.body.len ? req.body.p : "";
        if (!o.out) {
            if (req.body.len)
                printf("%s\n", body);
            else
                printf("%s %s\n", req.method, req.path);
            continue;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s-%06" PRIu64 ".json", o.out, lgen_kind_name(kind), i);
        FILE *f = fopen(path, "w");
        if (!f || fputs(body, f) < 0 || fputc('\n', f) == EOF) {
            fprintf(stderr, "adsmith-load: cannot write %s\n", path);
            status = 1;
        }
        if (f && fclose(f) != 0)
            status = 1;
    }
    lgen_buf_free(&req.body);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return cmd_load(argc, argv, false);
    if (strcmp(cmd, "seed") == 0)
        return cmd_load(argc, argv, true);
    if (strcmp(cmd, "gen") == 0)
        return cmd_gen(argc, argv);
    if (strcmp(cmd, "compare") == 0) {
        if (argc != 4) {
            fputs(usage_text, stderr);
            return 2;
        }
        char why[512];
        if (lrep_compare(argv[2], argv[3], stdout, why, sizeof(why)) < 0) {
            fprintf(stderr, "adsmith-load: %s\n", why);
            return 1;
        }
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    fprintf(stderr, "adsmith-load: unknown command '%s'\n%s", cmd, usage_text);
    return 2;
}
