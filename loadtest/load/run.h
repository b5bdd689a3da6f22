/*
 * lrun: the load engine of adsmith-load. Threads (each pinned to a chosen
 * core) own their connections and an epoll loop; nothing is shared while
 * requests run, and the per-thread figures are merged at the end.
 *
 * Closed loop (rate 0): every connection keeps `streams` requests in
 * flight; latency runs from the moment a request is submitted.
 *
 * Open loop (rate > 0): each thread has a schedule of intended send times,
 * rate / threads per second, evenly spaced. A request goes out at its
 * intended time when a stream is free, or as soon as one frees up; its
 * latency is measured from the intended time, so time spent waiting behind
 * a slow server counts (the correction for coordinated omission that Gil
 * Tene described and wrk2 applies). The latency from the actual send is
 * kept as well ("uncorrected"), to show the difference.
 *
 * Seed mode sends every LGEN_SEED_USER and LGEN_SEED_CAMPAIGN request once,
 * closed loop, and ends when all are answered.
 */
#ifndef ADSMITH_LOAD_RUN_H
#define ADSMITH_LOAD_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "gen.h"
#include "hist.h"

#define LRUN_THREADS_MAX 64
#define LRUN_CONNECTIONS_MAX 4096
#define LRUN_SERIES_MAX 86400 /* seconds in the throughput series */
#define LRUN_WHY_MAX 1024

struct lrun_cfg {
    struct lconn_target *target;
    unsigned connections;       /* 1..LRUN_CONNECTIONS_MAX, spread over the threads */
    unsigned streams;           /* per connection, 1..LCONN_STREAMS_MAX */
    unsigned threads;           /* 1..LRUN_THREADS_MAX, <= connections */
    int cpus[LRUN_THREADS_MAX]; /* thread i runs on cpus[i % ncpus]; ncpus 0: not pinned */
    unsigned ncpus;
    double rate;              /* requests/s in all (open loop), 0: closed loop */
    double duration_s;        /* measured part; seed mode: a time limit, 0 none */
    double warmup_s;          /* before it, not recorded */
    double drain_s;           /* how long to wait for answers after the end */
    unsigned mix[LGEN_KINDS]; /* relative weights of the kinds sent */
    struct lgen_cfg gen;
    bool seed_mode;
    uint64_t seed_users, seed_campaigns;
    bool probe; /* send one request of each kind first and refuse the run on a bad answer */
};

struct lrun_stats {
    struct lhist lat;      /* from the intended send time (open loop), else from the send */
    struct lhist lat_sent; /* from the actual send */
    struct lhist lag;      /* intended send to actual send: time a request waited in the client */
    uint64_t requests;     /* answered or failed, within the measured window */
    uint64_t ok;           /* 2xx */
    uint64_t errors;       /* non-2xx plus transport */
    uint64_t transport;    /* connection broke, stream reset */
    uint64_t status[600];
    uint64_t bytes_out, bytes_in; /* bodies */
};

struct lrun_sec {
    uint64_t requests, errors;
    uint64_t lat_sum_ns, lat_max_ns;
};

struct lrun_result {
    struct lrun_stats all;
    struct lrun_stats kind[LGEN_KINDS];
    struct lrun_sec *series; /* one entry per measured second; owned, freed by lrun_result_free() */
    unsigned nseries;
    double measured_s;   /* length of the measured window */
    uint64_t backlog;    /* open loop: requests due before the end that never went out */
    uint64_t unfinished; /* in flight when the drain time ran out */
    uint64_t connects;   /* connections opened, reconnects included */
    uint64_t conn_failures;
    char first_error[LCONN_HEAD_MAX + 128]; /* the first non-2xx answer: request line, status, body head */
    char why[LRUN_WHY_MAX];                 /* why lrun_execute() refused or failed */
};

/**
 * Runs the load described by @p cfg and fills @p ret (zeroed first).
 * @return 0; -EINVAL for a bad configuration; -ENOTSUP when the probe found
 *         a kind the server does not serve (404); -EACCES when it refused
 *         the key; -EPROTO for another bad probe answer; -ECONNREFUSED and
 *         other -errno when connecting failed. ret->why says which and why.
 */
int lrun_execute(const struct lrun_cfg *cfg, struct lrun_result *ret);

/** Frees what lrun_execute() allocated in @p r. */
void lrun_result_free(struct lrun_result *r);

/** Parses a CPU list ("1", "0-1", "0,2-3") into @p cpus. @return 0 with the count in @p ret_n, or -EINVAL. */
int lrun_parse_cpus(const char *s, int cpus[LRUN_THREADS_MAX], unsigned *ret_n);

#endif
