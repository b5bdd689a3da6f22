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
#include "sim.h"

#define LRUN_THREADS_MAX 64
#define LRUN_CONNECTIONS_MAX 4096
#define LRUN_SERIES_MAX 86400 /* seconds in the throughput series */
#define LRUN_WHY_MAX 1024
#define LRUN_FEEDBACK_MAX 65536 /* feedback requests queued per thread; more are dropped and counted */
#define LRUN_EVENTS_BATCH 100   /* feedback events per POST /v1/events */
/* The per-second latency histograms: 2^LRUN_SEC_SUB_BITS buckets per power of two (3 % wide). */
#define LRUN_SEC_SUB_BITS 5
#define LRUN_SEC_BUCKETS ((LHIST_MAX_BITS - LRUN_SEC_SUB_BITS + 1) << LRUN_SEC_SUB_BITS)

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
    /* Bid traffic (kind bid): the simulated exchange and audience. With `feedback`, won
     * impressions get their win notice and their impression, click and conversion events sent
     * back (kinds notice and feedback, measured apart from the mix). */
    bool feedback;
    bool score_wins; /* ask POST /v1/score for adsmith's pCTR of each won impression before its events go back */
    struct sim_cfg sim;
    bool msgpack; /* bid, events, score (and post_empty, feedback, win_score) bodies as application/msgpack */
};

/* `all` and the series cover the --mix; the feedback kinds (notice, feedback) are only in kind[]. */
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

/* One second of the measured mix (feedback excluded). */
struct lrun_sec {
    uint64_t requests, errors;
    uint64_t lat_sum_ns, lat_max_ns;
    uint32_t *hist; /* LRUN_SEC_BUCKETS counts; NULL until a request ends in that second; owned */
};

/** The latency at percentile @p p (0-100) in second @p e (within 3 %), 0 when it has none. */
uint64_t lrun_sec_percentile(const struct lrun_sec *e, double p);

/* What the bid traffic achieved, over the bid requests of the measured window. */
struct lrun_biz {
    uint64_t auctions;      /* bid requests answered 200 or 204 */
    uint64_t imps;          /* impressions offered in them */
    uint64_t answered_bids; /* answered 200 (with bids) */
    uint64_t bids;          /* bids in the answers */
    uint64_t bad_bids;      /* bids the harness could not use: unknown impid, no price or nurl, unparsable answer */
    uint64_t wins, losses;
    uint64_t spend_micros;   /* sum of the clearing prices / 1000 (CPM to one impression), micro-USD */
    uint64_t bid_cpm_micros; /* sum of the prices bid (CPM), micro-USD */
    uint64_t clicks, conversions;
    uint64_t imps_variant, clicks_variant, imps_control, clicks_control;
    uint64_t pctr_seen;        /* won impressions with adsmith's pCTR (ext.adsmith.pctr or POST /v1/score) */
    uint64_t score_failed;     /* POST /v1/score of a won impression that gave no score */
    uint64_t feedback_dropped; /* notices and events not sent: the queue was full or the URL unusable */
    uint64_t clicks_run;       /* clicks drawn over the whole run, warm-up included */
    bool tokens_known;         /* the daemon's /metrics has adsmith_gen_tokens_total, before and after */
    double tokens;             /* its growth over the whole run (every kind, the whole process) */
    struct sim_log log;        /* one record per won impression */
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
    struct lrun_biz biz;
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
