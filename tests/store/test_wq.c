#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/wq.h"

static char dir[64];
static struct store *st;
static h2o_evloop_t *loop;
static h2o_multithread_queue_t *queue;
static struct wq_port port;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/adsmith-wq-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(store_open(dir, 64 << 20, NULL, NULL, &st), 0);
    loop = h2o_evloop_create();
    queue = h2o_multithread_create_queue(loop);
    wq_port_init(&port, queue);
}

static void teardown(void)
{
    char cmd[128];

    wq_port_dispose(&port);
    h2o_multithread_destroy_queue(queue);
    free(queue); /* libh2o 2.2.5's evloop build does not free it */
    h2o_evloop_destroy(loop);
    store_free(st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(wq, .init = setup, .fini = teardown);

struct put_job {
    struct wq_job base;
    int key;
    int fail; /* returned by apply, once */
    int runs; /* apply calls */
    int done; /* done calls */
};

static int put_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct put_job *j = (struct put_job *)wj;
    char k[16];
    MDB_val key, val = {sizeof(j->key), &j->key};
    int rc;

    j->runs++;
    if (j->fail == ADS_ECONFLICT)
        return ADS_ECONFLICT; /* a clean failure: before any write */
    key = (MDB_val){(size_t)snprintf(k, sizeof(k), "k%d", j->key), k};
    if ((rc = mdb_put(txn, store_dbi(s, STORE_DB_STATS), &key, &val, 0)) != 0)
        return store_err(rc);
    if (j->fail != 0) {
        rc = j->fail; /* after a write, the first time: the group is redone job by job */
        j->fail = 0;
        return rc;
    }
    return 0;
}

static void put_done(struct wq_job *wj)
{
    ((struct put_job *)wj)->done++;
}

static struct store *get_store(void *arg)
{
    (void)arg;
    return st;
}

static void run_until_done(struct put_job *jobs, int n)
{
    for (int spins = 0; port.pending > 0 && spins < 1000; spins++)
        h2o_evloop_run(loop, 100);
    cr_assert_eq(port.pending, 0, "every job reports back");
    for (int i = 0; i < n; i++)
        cr_assert_eq(jobs[i].done, 1, "job %d reported %d times", i, jobs[i].done);
}

static bool stored(int key)
{
    MDB_txn *txn;
    MDB_val k, v;
    char kb[16];
    int rc;

    k = (MDB_val){(size_t)snprintf(kb, sizeof(kb), "k%d", key), kb};
    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, MDB_RDONLY, &txn), 0);
    rc = mdb_get(txn, store_dbi(st, STORE_DB_STATS), &k, &v);
    mdb_txn_abort(txn);
    return rc == 0;
}

static void init_jobs(struct put_job *jobs, int n)
{
    memset(jobs, 0, sizeof(*jobs) * (size_t)n);
    for (int i = 0; i < n; i++) {
        jobs[i].base.apply = put_apply;
        jobs[i].base.done = put_done;
        jobs[i].key = i;
    }
}

Test(wq, groups_many_jobs_per_commit)
{
    static struct put_job jobs[200];
    struct wq *q;
    struct wq_stats stats;

    init_jobs(jobs, 200);
    cr_assert_eq(wq_new(get_store, NULL, NULL, 1000, &q), 0);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(wq_submit(q, &port, &jobs[i].base), 0);
    run_until_done(jobs, 200);
    wq_stats(q, &stats);
    cr_assert_eq(stats.jobs, 200);
    cr_assert_lt(stats.commits, 200, "jobs queued together share commits (%llu commits)",
                 (unsigned long long)stats.commits);
    wq_free(q);
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(jobs[i].base.rc, 0);
        cr_assert(stored(i), "job %d is durable", i);
    }
}

Test(wq, a_failed_job_does_not_sink_its_group)
{
    static struct put_job jobs[6];
    struct wq *q;

    init_jobs(jobs, 6);
    jobs[1].fail = ADS_ECONFLICT;
    jobs[3].fail = ADS_ESTORAGE; /* fails after writing, the first time only */
    cr_assert_eq(wq_new(get_store, NULL, NULL, 100, &q), 0);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(wq_submit(q, &port, &jobs[i].base), 0);
    run_until_done(jobs, 6);
    wq_free(q);
    cr_assert_eq(jobs[1].base.rc, ADS_ECONFLICT);
    cr_assert(!stored(1));
    for (int i = 0; i < 6; i++) {
        if (i == 1)
            continue;
        cr_assert_eq(jobs[i].base.rc, 0, "job %d: %d", i, jobs[i].base.rc);
        cr_assert(stored(i), "job %d is durable", i);
    }
}

Test(wq, refuses_beyond_max_jobs)
{
    static struct put_job jobs[64];
    struct wq *q;
    int refused = 0;

    init_jobs(jobs, 64);
    cr_assert_eq(wq_new(get_store, NULL, NULL, 4, &q), 0);
    for (int i = 0; i < 64; i++) {
        int rc = wq_submit(q, &port, &jobs[i].base);
        cr_assert(rc == 0 || rc == ADS_EOVERLOADED);
        if (rc != 0) {
            refused++;
            jobs[i].done = 1; /* never queued: never reported */
        }
    }
    cr_assert_gt(refused, 0, "a queue of 4 refuses some of 64 jobs submitted at once");
    run_until_done(jobs, 64);
    wq_free(q);
}

static struct store *no_store(void *arg)
{
    (void)arg;
    return NULL;
}

Test(wq, jobs_fail_not_ready_without_storage)
{
    static struct put_job jobs[1];
    struct wq *q;

    init_jobs(jobs, 1);
    cr_assert_eq(wq_new(no_store, NULL, NULL, 4, &q), 0);
    cr_assert_eq(wq_submit(q, &port, &jobs[0].base), 0);
    run_until_done(jobs, 1);
    wq_free(q);
    cr_assert_eq(jobs[0].base.rc, ADS_ENOT_READY);
}

/* wq_run(): plain threads, each blocking on its own jobs. */
#define RUN_THREADS 32
#define RUN_PER_THREAD 20

struct run_arg {
    struct wq *q;
    struct put_job *jobs; /* RUN_PER_THREAD of them */
};

static void *run_thread(void *p)
{
    struct run_arg *a = p;

    for (int i = 0; i < RUN_PER_THREAD; i++)
        a->jobs[i].done = wq_run(a->q, &a->jobs[i].base); /* done holds wq_run's return here */
    return NULL;
}

Test(wq, run_blocks_until_durable_and_shares_commits)
{
    static struct put_job jobs[RUN_THREADS * RUN_PER_THREAD];
    struct run_arg args[RUN_THREADS];
    pthread_t tids[RUN_THREADS];
    struct wq_stats stats;
    struct wq *q;
    int n = RUN_THREADS * RUN_PER_THREAD;

    init_jobs(jobs, n);
    for (int i = 0; i < n; i++)
        jobs[i].base.done = NULL; /* wq_run() never calls it */
    jobs[5].fail = ADS_ECONFLICT;
    jobs[77].fail = ADS_ESTORAGE; /* fails after writing, once: its group is redone job by job */
    cr_assert_eq(wq_new(get_store, NULL, NULL, 1000, &q), 0);
    for (int t = 0; t < RUN_THREADS; t++) {
        args[t] = (struct run_arg){q, &jobs[t * RUN_PER_THREAD]};
        cr_assert_eq(pthread_create(&tids[t], NULL, run_thread, &args[t]), 0);
    }
    for (int t = 0; t < RUN_THREADS; t++)
        pthread_join(tids[t], NULL);
    wq_stats(q, &stats);
    cr_assert_eq(stats.jobs, (uint64_t)n);
    cr_assert_lt(stats.commits, (uint64_t)n, "waiting threads share commits (%llu commits for %d jobs)",
                 (unsigned long long)stats.commits, n);
    for (int i = 0; i < n; i++) {
        int want = i == 5 ? ADS_ECONFLICT : 0;
        cr_assert_eq(jobs[i].done, want, "job %d: wq_run returned %d", i, jobs[i].done);
        cr_assert_eq(jobs[i].base.rc, want);
        /* wq_run returned, so the outcome is committed: visible to a new reader before wq_free. */
        cr_assert_eq(stored(i), want == 0, "job %d", i);
    }
    wq_free(q);
}

Test(wq, run_refuses_when_full)
{
    static struct put_job jobs[1];
    struct wq *q;

    init_jobs(jobs, 1);
    jobs[0].base.done = NULL;
    cr_assert_eq(wq_new(get_store, NULL, NULL, 0, &q), 0); /* a queue that takes nothing */
    cr_assert_eq(wq_run(q, &jobs[0].base), ADS_EOVERLOADED);
    cr_assert_eq(jobs[0].runs, 0);
    wq_free(q);
}
