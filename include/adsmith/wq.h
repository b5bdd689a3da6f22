/*
 * wq: the write queue. One writer thread applies the writes of every worker
 * in group commits: it takes all jobs queued since its last commit, applies
 * them in one LMDB write transaction, commits (one fsync for the group), and
 * only then reports each job back to the loop thread that submitted it. So a
 * reported success is durable, and durable writes cost one sync per group,
 * not per request.
 *
 * Reporting back goes through a port: an h2o multithread receiver that the
 * submitting loop thread owns. The port counts jobs in flight; a worker must
 * not dispose its port (or loop) while port->pending > 0.
 *
 * Plain threads without an event loop (generation workers) use wq_run()
 * instead: it queues the job into the same groups and blocks until the job's
 * outcome is durable, so many such threads share one commit.
 */
#ifndef ADSMITH_WQ_H
#define ADSMITH_WQ_H

#include <h2o.h>
#include <lmdb.h>
#include <stdint.h>

#include "adsmith/err.h"
#include "adsmith/store.h"

struct wq;
struct wq_waiter;

struct wq_port {
    h2o_multithread_receiver_t rx;
    size_t pending; /* jobs submitted through this port and not yet done; the port's thread only */
};

struct wq_job {
    /**
     * Runs on the writer thread inside the group's transaction. Returns 0, or
     * a client-facing error (ADS_EINVAL, ADS_ECONFLICT, ADS_ENOT_FOUND) found
     * before its first write: the group goes on without it. Any other error
     * means the transaction may hold part of this job: the group is aborted and
     * every job of it is applied again alone, in a transaction of its own.
     * May run more than once; each run starts from committed state.
     */
    int (*apply)(struct wq_job *job, MDB_txn *txn, struct store *s);
    /**
     * Runs on the port's thread once the job's outcome is durable (or failed); job->rc is it. May free the job.
     * Not called for jobs given to wq_run() (may be NULL there).
     */
    void (*done)(struct wq_job *job);
    int rc;
    struct wq_port *port;
    /* private */
    struct wq_job *next;
    h2o_multithread_message_t msg;
    struct wq_waiter *waiter; /* set by wq_run() */
};

/**
 * Periodic work run by the writer in a transaction of its own or of a group,
 * about every 100 ms (e.g. expiring deduplication records). Same error rules
 * as wq_job.apply, without the client-facing ones.
 */
typedef int (*wq_maintain_fn)(MDB_txn *txn, struct store *s, void *arg);

struct wq_stats {
    uint64_t jobs;    /* jobs applied and reported */
    uint64_t commits; /* write transactions committed */
    uint64_t retries; /* groups aborted and applied job by job */
};

/**
 * Starts the writer thread. @p get_store returns the store to write to, or
 * NULL while storage is not open (jobs then fail with ADS_ENOT_READY).
 * @p max_jobs bounds the queue (wq_submit() refuses beyond it).
 * @p maintain may be NULL. Block signals before calling: the thread inherits the mask.
 * @return 0, ADS_ENOMEM, or a negative errno from pthread_create.
 */
int wq_new(struct store *(*get_store)(void *arg), wq_maintain_fn maintain, void *arg, uint32_t max_jobs,
           struct wq **ret_wq);

/**
 * Applies the jobs still queued, stops the thread and frees the queue.
 * Ports must still be able to take messages until it returns. Accepts NULL.
 */
void wq_free(struct wq *q);

/**
 * Queues @p job (borrowed until its done callback), reporting to @p port.
 * Call on the port's thread.
 * @return 0, or ADS_EOVERLOADED when max_jobs are queued or being applied (the job is not taken).
 */
int wq_submit(struct wq *q, struct wq_port *port, struct wq_job *job);

/**
 * Queues @p job (borrowed until this returns) from any thread, without a port,
 * and blocks until the writer has applied it and its group's commit is durable
 * (or it failed). @p job->done is not called. Thread-safe; many threads may
 * wait at once, and their jobs then share group commits.
 * Must not be called from the writer thread (from an apply or maintain function).
 * @return the job's outcome (job->rc: 0 once durable, or the apply or commit
 *   error), or without queueing it ADS_EOVERLOADED when max_jobs are queued or
 *   being applied, ADS_ESHUTTING_DOWN once wq_free() has begun.
 */
int wq_run(struct wq *q, struct wq_job *job);

/** Counters since wq_new(). Thread-safe. */
void wq_stats(struct wq *q, struct wq_stats *ret_stats);

/**
 * Waits until no report is being sent. A worker calls it after its port's
 * pending count reached 0 and before it frees its loop's queue. Accepts NULL.
 */
void wq_quiesce(struct wq *q);

/** Registers @p port on the loop of @p queue (a context's multithread queue). */
void wq_port_init(struct wq_port *port, h2o_multithread_queue_t *queue);

/** Unregisters @p port. Only when port->pending is 0. */
void wq_port_dispose(struct wq_port *port);

#endif
