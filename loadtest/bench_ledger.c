/*
 * adsmith-bench-ledger: reserve+settle pairs per second of the token ledger.
 *
 *   adsmith-bench-ledger [-r rounds] [-n pairs] [-t threads] [-d seconds] [DIR]
 *
 * Three configurations, each the median over rounds of pairs per second
 * (wall clock), on a fresh LMDB environment under DIR (default /tmp; the
 * environment is created in a new directory there and removed after):
 *   txn     every pair inside one big write transaction (commit excluded):
 *           the CPU cost of the ledger's records per pair.
 *   wq_run  -t threads (default 64), each reserving and then settling through
 *           wq_run(), so pairs share the writer's group commits (fsync'd
 *           commits, as the daemon runs), for -d seconds per round.
 *   op_txn  one thread, one fsync'd write transaction per operation: the
 *           baseline a ledger without group commit would have.
 * Every pair reserves 1000 tokens and settles 600 prompt + 300 completion, with
 * prices for the model, against 16 campaigns with a hard limit that is never
 * reached. Run it pinned, e.g. taskset -c 1 adsmith-bench-ledger.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adsmith/ledger.h"
#include "adsmith/wq.h"

#define BENCH_CAMPAIGNS 16
#define BENCH_MAX_THREADS 1024
#define BENCH_MAX_ROUNDS 31

static struct store *st;
static struct ledger_pkg pkg;
static const int64_t now0 = 1767225600 + 3600; /* 2026-01-01T01:00Z */
static atomic_uint_fast64_t next_req;
static atomic_bool stop_flag;

static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), bench_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One reserve or settle, as a write-queue job or called directly. */
struct op {
    struct wq_job base;
    bool settling;
    char cid[16], req[24];
    struct ledger_reservation res;
    struct ledger_settlement set;
};

static int op_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct op *o = (struct op *)wj;
    static const struct ledger_use use = {.prompt = 600, .cached = 100, .completion = 300, .reasoning = 50};

    if (o->settling)
        return ledger_settle(txn, s, o->cid, &pkg, o->req, 1, &use, "bench-model", now0, &o->set);
    return ledger_reserve(txn, s, o->cid, &pkg, o->req, 1, 1000, "bench-model", now0, 600, &o->res);
}

static void op_init(struct op *o)
{
    uint64_t n = atomic_fetch_add(&next_req, 1);

    memset(o, 0, sizeof(*o));
    o->base.apply = op_apply;
    snprintf(o->cid, sizeof(o->cid), "camp%02u", (unsigned)(n % BENCH_CAMPAIGNS));
    snprintf(o->req, sizeof(o->req), "r%llu", (unsigned long long)n);
}

static int pair_in(MDB_txn *txn)
{
    struct op o;
    int rc;

    op_init(&o);
    if ((rc = op_apply(&o.base, txn, st)) != 0 || o.res.refused)
        return rc != 0 ? rc : ADS_ETOKEN_LIMIT;
    o.settling = true;
    return op_apply(&o.base, txn, st);
}

static double bench_txn(long pairs)
{
    MDB_txn *txn;
    double t0, dt;

    if (mdb_txn_begin(store_env(st), NULL, 0, &txn) != 0)
        return -1;
    t0 = bench_now();
    for (long i = 0; i < pairs; i++) {
        if (pair_in(txn) != 0) {
            mdb_txn_abort(txn);
            return -1;
        }
    }
    dt = bench_now() - t0;
    if (mdb_txn_commit(txn) != 0)
        return -1;
    return (double)pairs / dt;
}

static double bench_op_txn(double seconds)
{
    double t0 = bench_now(), t;
    long pairs = 0;

    do {
        struct op o;
        MDB_txn *txn;
        for (int step = 0; step < 2; step++) {
            if (step == 0)
                op_init(&o);
            else
                o.settling = true;
            if (mdb_txn_begin(store_env(st), NULL, 0, &txn) != 0 || op_apply(&o.base, txn, st) != 0 ||
                mdb_txn_commit(txn) != 0)
                return -1;
        }
        pairs++;
        t = bench_now();
    } while (t - t0 < seconds);
    return (double)pairs / (t - t0);
}

struct worker {
    pthread_t tid;
    struct wq *q;
    long pairs;
    int rc;
};

static void *bench_worker(void *arg)
{
    struct worker *w = arg;
    struct op o;

    while (!atomic_load(&stop_flag)) {
        op_init(&o);
        if ((w->rc = wq_run(w->q, &o.base)) != 0 || o.res.refused)
            break;
        o.settling = true;
        if ((w->rc = wq_run(w->q, &o.base)) != 0)
            break;
        w->pairs++;
    }
    return NULL;
}

static struct store *bench_store(void *arg)
{
    (void)arg;
    return st;
}

static double bench_wq(int threads, double seconds, double *ret_jobs_per_commit)
{
    static struct worker ws[BENCH_MAX_THREADS];
    struct wq_stats s0, s1;
    struct wq *q;
    double t0, dt;
    long pairs = 0;

    if (wq_new(bench_store, NULL, NULL, (uint32_t)threads * 2, &q) != 0)
        return -1;
    wq_stats(q, &s0);
    atomic_store(&stop_flag, false);
    t0 = bench_now();
    for (int i = 0; i < threads; i++) {
        ws[i] = (struct worker){.q = q};
        if (pthread_create(&ws[i].tid, NULL, bench_worker, &ws[i]) != 0)
            return -1;
    }
    while (bench_now() - t0 < seconds) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop_flag, true);
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].tid, NULL);
        if (ws[i].rc != 0) {
            fprintf(stderr, "wq_run: %s\n", ads_err_name(ws[i].rc));
            wq_free(q);
            return -1;
        }
        pairs += ws[i].pairs;
    }
    dt = bench_now() - t0;
    wq_stats(q, &s1);
    wq_free(q);
    *ret_jobs_per_commit = (double)(s1.jobs - s0.jobs) / (double)(s1.commits - s0.commits + (s1.commits == s0.commits));
    return (double)pairs / dt;
}

static int bench_prices(void)
{
    MDB_txn *txn;
    int rc;

    if (mdb_txn_begin(store_env(st), NULL, 0, &txn) != 0)
        return -1;
    rc = ledger_price_put(txn, st, "bench-model", LEDGER_PROMPT, 0, 2500000, "USD");
    if (rc == 0)
        rc = ledger_price_put(txn, st, "bench-model", LEDGER_COMPLETION, 0, 10000000, "USD");
    if (rc == 0)
        rc = ledger_price_put(txn, st, "bench-model", LEDGER_CACHED, 0, 1250000, "USD");
    if (rc != 0) {
        mdb_txn_abort(txn);
        return -1;
    }
    return mdb_txn_commit(txn) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int rounds = 5, threads = 64, opt;
    long pairs = 20000;
    double seconds = 2, v_txn[BENCH_MAX_ROUNDS], v_wq[BENCH_MAX_ROUNDS], v_op[BENCH_MAX_ROUNDS],
           v_jpc[BENCH_MAX_ROUNDS];
    const char *parent = "/tmp";
    char dir[512], cmd[600];
    struct ledger_zones *zc;
    int rc;

    while ((opt = getopt(argc, argv, "r:n:t:d:")) != -1) {
        switch (opt) {
        case 'r': rounds = (int)strtol(optarg, NULL, 10); break;
        case 'n': pairs = strtol(optarg, NULL, 10); break;
        case 't': threads = (int)strtol(optarg, NULL, 10); break;
        case 'd': seconds = strtod(optarg, NULL); break;
        default:
            fprintf(stderr, "usage: %s [-r rounds] [-n pairs] [-t threads] [-d seconds] [DIR]\n", argv[0]);
            return 2;
        }
    }
    if (optind < argc)
        parent = argv[optind];
    if (rounds < 1 || rounds > BENCH_MAX_ROUNDS || pairs < 1 || threads < 1 || threads > BENCH_MAX_THREADS ||
        seconds <= 0) {
        fprintf(stderr, "rounds 1..%d, pairs >= 1, threads 1..%d, seconds > 0\n", BENCH_MAX_ROUNDS, BENCH_MAX_THREADS);
        return 2;
    }
    snprintf(dir, sizeof(dir), "%s/adsmith-bench-ledger-XXXXXX", parent);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    if ((rc = store_open(dir, (uint64_t)8 << 30, NULL, NULL, &st)) != 0 || (rc = ledger_zones_new(&zc)) != 0 ||
        (rc = ledger_zones_get(zc, "UTC", &pkg.zone)) != 0 || (rc = bench_prices()) != 0) {
        fprintf(stderr, "setup: %s\n", ads_err_name(rc));
        return 1;
    }
    pkg.grant = LEDGER_TOKENS_MAX;
    pkg.period = LEDGER_MONTH;
    pkg.anchor = now0 - 3600;
    pkg.hard = true;
    pkg.thresholds[0] = 80;
    pkg.thresholds[1] = 100;
    pkg.n_thresholds = 2;

    for (int r = 0; r < rounds; r++) {
        v_txn[r] = bench_txn(pairs);
        v_wq[r] = bench_wq(threads, seconds, &v_jpc[r]);
        v_op[r] = bench_op_txn(seconds / 2);
        if (v_txn[r] < 0 || v_wq[r] < 0 || v_op[r] < 0) {
            fprintf(stderr, "round %d failed\n", r);
            return 1;
        }
    }
    printf("reserve+settle pairs per second, median of %d rounds (%llu pairs in all):\n", rounds,
           (unsigned long long)atomic_load(&next_req));
    printf("  txn     one transaction, %ld pairs:     %10.0f\n", pairs, bench_median(v_txn, rounds));
    printf("  wq_run  %d threads, group commits:     %10.0f  (%.1f jobs per commit)\n", threads,
           bench_median(v_wq, rounds), bench_median(v_jpc, rounds));
    printf("  op_txn  one fsync'd transaction per op: %10.0f\n", bench_median(v_op, rounds));
    ledger_zones_free(zc);
    store_free(st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
