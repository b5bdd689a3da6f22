#include "adsmith/wq.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define WQ_MAINTAIN_EVERY_NS 100000000ull

struct wq {
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_mutex_t report_lock; /* held while jobs are reported */
    pthread_cond_t wake;
    struct wq_job *head, *tail; /* under lock */
    uint32_t queued, max_jobs;  /* under lock; queued counts jobs until they are reported */
    bool stop;                  /* under lock */
    struct store *(*get_store)(void *arg);
    wq_maintain_fn maintain;
    void *arg;
    uint64_t last_maintain_ns;
    atomic_uint_fast64_t jobs, commits, retries;
};

static uint64_t wq_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Errors a job may return without having written anything. */
static bool wq_is_clean_failure(int rc)
{
    return rc == ADS_EINVAL || rc == ADS_ECONFLICT || rc == ADS_ENOT_FOUND;
}

/* A thread blocked in wq_run(); lives on its stack. A semaphore rather than a
 * condition variable, so that the writer wakes it without holding a lock the
 * woken thread would then have to wait for; glibc's sem_post() does not touch
 * the semaphore once the waiter can have returned (POSIX allows destroying a
 * semaphore as soon as no thread is blocked on it). */
struct wq_waiter {
    sem_t done;
};

/* Reports each job to its port, or wakes its wq_run() caller. A job counts
 * against max_jobs until here, so what waits plus what is being applied never
 * exceeds it. report_lock is held while messages go out: libh2o's send touches
 * the receiving loop's queue after queueing the message, and wq_quiesce() lets
 * a worker wait for that to end before it frees the queue. A wq_run() caller
 * may return (and its job's memory go) as soon as it is woken, so nothing of
 * the job is touched after that; its slot is given back first. */
static void wq_report(struct wq *q, struct wq_job *list)
{
    struct wq_job *wake = NULL;
    uint32_t n = 0;

    pthread_mutex_lock(&q->report_lock);
    while (list != NULL) {
        struct wq_job *job = list;
        list = job->next;
        n++;
        atomic_fetch_add_explicit(&q->jobs, 1, memory_order_relaxed);
        if (job->waiter != NULL) {
            job->next = wake;
            wake = job;
        } else {
            h2o_multithread_send_message(&job->port->rx, &job->msg);
        }
    }
    pthread_mutex_unlock(&q->report_lock);
    if (n > 0) {
        pthread_mutex_lock(&q->lock);
        q->queued -= n;
        pthread_mutex_unlock(&q->lock);
    }
    while (wake != NULL) {
        struct wq_waiter *w = wake->waiter;
        wake = wake->next;
        sem_post(&w->done);
    }
}

void wq_quiesce(struct wq *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->report_lock);
    pthread_mutex_unlock(&q->report_lock);
}

static bool wq_maintain_due(struct wq *q)
{
    return q->maintain != NULL && wq_now_ns() - q->last_maintain_ns >= WQ_MAINTAIN_EVERY_NS;
}

/* One job alone in its own transaction, after its group failed. */
static void wq_apply_alone(struct wq *q, struct store *s, struct wq_job *job)
{
    MDB_txn *txn;
    int rc;

    if ((rc = mdb_txn_begin(store_env(s), NULL, 0, &txn)) != 0) {
        job->rc = store_err(rc);
        return;
    }
    if ((job->rc = job->apply(job, txn, s)) != 0) {
        mdb_txn_abort(txn);
        return;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        job->rc = store_err(rc);
    else
        atomic_fetch_add_explicit(&q->commits, 1, memory_order_relaxed);
}

static void wq_apply_group(struct wq *q, struct store *s, struct wq_job *list)
{
    MDB_txn *txn;
    struct wq_job *job;
    bool failed = false;
    int rc;

    if ((rc = mdb_txn_begin(store_env(s), NULL, 0, &txn)) != 0) {
        for (job = list; job != NULL; job = job->next)
            job->rc = store_err(rc);
        return;
    }
    for (job = list; job != NULL && !failed; job = job->next) {
        job->rc = job->apply(job, txn, s);
        failed = job->rc != 0 && !wq_is_clean_failure(job->rc);
    }
    /* Maintenance rides along with a group when due; its failure only costs it its turn. */
    if (!failed && wq_maintain_due(q)) {
        q->last_maintain_ns = wq_now_ns();
        failed = q->maintain(txn, s, q->arg) != 0;
    }
    if (!failed) {
        if ((rc = mdb_txn_commit(txn)) == 0) {
            atomic_fetch_add_explicit(&q->commits, 1, memory_order_relaxed);
            return;
        }
    } else {
        mdb_txn_abort(txn);
    }
    atomic_fetch_add_explicit(&q->retries, 1, memory_order_relaxed);
    for (job = list; job != NULL; job = job->next)
        wq_apply_alone(q, s, job);
}

static void wq_maintain_alone(struct wq *q, struct store *s)
{
    MDB_txn *txn;

    q->last_maintain_ns = wq_now_ns();
    if (mdb_txn_begin(store_env(s), NULL, 0, &txn) != 0)
        return;
    if (q->maintain(txn, s, q->arg) != 0) {
        mdb_txn_abort(txn);
        return;
    }
    /* mdb_txn_commit() frees the transaction even when it fails. */
    if (mdb_txn_commit(txn) == 0)
        atomic_fetch_add_explicit(&q->commits, 1, memory_order_relaxed);
}

static void *wq_main(void *arg)
{
    struct wq *q = arg;
    struct wq_job *list;
    struct store *s;
    struct timespec until;
    bool stop;

    for (;;) {
        pthread_mutex_lock(&q->lock);
        if (q->head == NULL && !q->stop) {
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += (long)WQ_MAINTAIN_EVERY_NS;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&q->wake, &q->lock, &until);
        }
        list = q->head;
        q->head = q->tail = NULL;
        stop = q->stop;
        pthread_mutex_unlock(&q->lock);

        s = q->get_store(q->arg);
        if (list != NULL && s == NULL) {
            for (struct wq_job *job = list; job != NULL; job = job->next)
                job->rc = ADS_ENOT_READY;
        } else if (list != NULL) {
            wq_apply_group(q, s, list);
        } else if (s != NULL && wq_maintain_due(q)) {
            wq_maintain_alone(q, s);
        }
        wq_report(q, list);
        if (stop && list == NULL)
            return NULL;
    }
}

int wq_new(struct store *(*get_store)(void *arg), wq_maintain_fn maintain, void *arg, uint32_t max_jobs,
           struct wq **ret_wq)
{
    struct wq *q = calloc(1, sizeof(*q));
    pthread_condattr_t ca;
    int rc;

    if (q == NULL)
        return ADS_ENOMEM;
    q->get_store = get_store;
    q->maintain = maintain;
    q->arg = arg;
    q->max_jobs = max_jobs;
    q->last_maintain_ns = wq_now_ns();
    pthread_mutex_init(&q->lock, NULL);
    pthread_mutex_init(&q->report_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->wake, &ca);
    pthread_condattr_destroy(&ca);
    if ((rc = pthread_create(&q->tid, NULL, wq_main, q)) != 0) {
        pthread_cond_destroy(&q->wake);
        pthread_mutex_destroy(&q->report_lock);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return -rc;
    }
    *ret_wq = q;
    return 0;
}

void wq_free(struct wq *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->tid, NULL);
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->report_lock);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

/* Queues @p job under q->lock. 0, ADS_EOVERLOADED or ADS_ESHUTTING_DOWN. */
static int wq_enqueue_locked(struct wq *q, struct wq_port *port, struct wq_waiter *waiter, struct wq_job *job)
{
    if (q->queued >= q->max_jobs || q->stop)
        return q->stop ? ADS_ESHUTTING_DOWN : ADS_EOVERLOADED;
    job->port = port;
    job->waiter = waiter;
    job->next = NULL;
    job->rc = 0;
    job->msg = (h2o_multithread_message_t){{NULL, NULL}};
    if (q->tail != NULL)
        q->tail->next = job;
    else
        q->head = job;
    q->tail = job;
    q->queued++;
    pthread_cond_signal(&q->wake);
    return 0;
}

int wq_submit(struct wq *q, struct wq_port *port, struct wq_job *job)
{
    int rc;

    pthread_mutex_lock(&q->lock);
    rc = wq_enqueue_locked(q, port, NULL, job);
    pthread_mutex_unlock(&q->lock);
    if (rc != 0)
        return rc;
    port->pending++;
    return 0;
}

int wq_run(struct wq *q, struct wq_job *job)
{
    struct wq_waiter w;
    int rc;

    sem_init(&w.done, 0, 0);
    pthread_mutex_lock(&q->lock);
    rc = wq_enqueue_locked(q, NULL, &w, job);
    pthread_mutex_unlock(&q->lock);
    if (rc == 0) {
        while (sem_wait(&w.done) != 0)
            ; /* EINTR: a signal handler ran; the job is still ours to wait for */
        rc = job->rc;
    }
    sem_destroy(&w.done);
    return rc;
}

void wq_stats(struct wq *q, struct wq_stats *ret)
{
    ret->jobs = atomic_load_explicit(&q->jobs, memory_order_relaxed);
    ret->commits = atomic_load_explicit(&q->commits, memory_order_relaxed);
    ret->retries = atomic_load_explicit(&q->retries, memory_order_relaxed);
}

static void wq_port_on_messages(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    struct wq_port *port = H2O_STRUCT_FROM_MEMBER(struct wq_port, rx, rx);

    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        struct wq_job *job = H2O_STRUCT_FROM_MEMBER(struct wq_job, msg, m);
        h2o_linklist_unlink(&m->link);
        port->pending--;
        job->done(job);
    }
}

void wq_port_init(struct wq_port *port, h2o_multithread_queue_t *queue)
{
    port->pending = 0;
    h2o_multithread_register_receiver(queue, &port->rx, wq_port_on_messages);
}

void wq_port_dispose(struct wq_port *port)
{
    h2o_multithread_unregister_receiver(port->rx.queue, &port->rx);
}
