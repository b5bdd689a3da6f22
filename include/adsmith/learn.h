/*
 * lrn: online learning of the served ranking model from the service's own
 * impression and click events (config online_learning, off by default).
 *
 * Event batches reach the learner only after they are committed (the POST
 * /v1/events job's release, on the worker's thread): lrn_submit() hands it a
 * batch of impressions (an impression id and the model's features) and
 * clicks (the impression id they refer to) through a bounded queue; a full
 * queue drops the batch and counts it, never blocking ingest.
 *
 * One learner thread owns everything else:
 *   - pending impressions, keyed by impression id, waiting for their click
 *     (bounded by pending_max; beyond it the oldest is labelled negative
 *     early, and counted);
 *   - a click finds its impression and makes a positive example; an
 *     impression that waited window_s without a click makes a negative one;
 *   - each example is predicted with the current weights, then learned
 *     (FTRL-Proximal, rank_online.h): progressive validation, so the log
 *     loss, calibration (sum p / sum y) and AUC (over the last
 *     LRN_AUC_WINDOW examples) measure the model on examples it had not seen;
 *   - every publish_s, when it learned something, a snapshot model is
 *     published through mdl_publish() (requests pick it up lock-free);
 *   - when the model is reloaded from its file (SIGHUP, model:reload), the
 *     learner restarts from the reloaded weights (pending impressions stay).
 *
 * Time is the learner's monotonic clock at arrival, not the events' "ts":
 * a backfill of old events waits its window like live traffic.
 */
#ifndef ADSMITH_LEARN_H
#define ADSMITH_LEARN_H

#include <stdbool.h>
#include <stdint.h>

#include "adsmith/ctr.h"
#include "adsmith/err.h"
#include "adsmith/event.h"

struct mdl;
struct lrn;
struct lrn_batch;

#define LRN_AUC_WINDOW 10000    /* examples the windowed AUC is computed over */
#define LRN_QUEUE_MAX 100000    /* events submitted and not yet taken by the learner */
#define LRN_PENDING_MAX 10000000 /* largest pending_max accepted */

struct lrn_opts {
    uint32_t window_s;    /* an impression without a click after this long is a negative (>= 1) */
    uint32_t publish_s;   /* snapshot period (>= 1) */
    uint32_t pending_max; /* impressions waiting for a click (1..LRN_PENDING_MAX) */
};

/* ---- progressive validation ---- */

struct lrn_pv_ex {
    double p;
    double y;
};

/** Running metrics of predictions made before learning. Members are private. */
struct lrn_pv {
    uint64_t n, pos;
    double sum_loss, sum_p;
    uint32_t cap, len, next;
    struct lrn_pv_ex *ring, *scratch; /* the last cap examples; a copy to sort */
};

struct lrn_pv_summary {
    uint64_t examples, positives;
    double logloss;      /* mean log loss (p clamped to [1e-15, 1 - 1e-15]); 0 with no example */
    double calibration;  /* sum p / sum y; 0 with no positive */
    double auc;          /* ROC AUC over the last auc_examples examples (ties count half); 0.5 without both labels */
    uint32_t auc_examples;
};

/** Empty metrics with an AUC window of @p window examples (>= 1). 0 or ADS_ENOMEM. */
int lrn_pv_init(struct lrn_pv *pv, uint32_t window);
void lrn_pv_done(struct lrn_pv *pv);
/** Adds one example: prediction @p p of label @p y (0 or 1). */
void lrn_pv_add(struct lrn_pv *pv, double p, int y);
/** The metrics so far. O(window log window) for the AUC. */
void lrn_pv_get(struct lrn_pv *pv, struct lrn_pv_summary *ret);

/* ---- batches: what one committed request gives the learner ---- */

/** A batch for at most @p max_events events (1..EVT_MAX_BATCH). 0 or ADS_ENOMEM/ADS_EINVAL. */
int lrn_batch_new(uint32_t max_events, struct lrn_batch **ret);

/**
 * Adds an impression @p id (1..EVT_ID_MAX bytes, NUL-terminated) with its
 * @p n feature values (at most EVT_MAX_FEATURES; copied).
 * @return 0, ADS_EINVAL (id or count out of range), ADS_EOVERLOADED (batch full), ADS_ENOMEM.
 */
int lrn_batch_impression(struct lrn_batch *b, const char *id, const struct ctr_value *v, uint32_t n);

/** Adds a click on impression @p id. Same returns. */
int lrn_batch_click(struct lrn_batch *b, const char *id);

/** Events in @p b. */
uint32_t lrn_batch_count(const struct lrn_batch *b);

void lrn_batch_free(struct lrn_batch *b);

/* ---- the learner ---- */

struct lrn_stats {
    bool enabled;                 /* a learner exists (online_learning on) */
    char status[16];              /* "learning", or "stopped" (the model cannot be learned online: last_error) */
    uint64_t impressions, clicks; /* received after commit */
    uint64_t dropped;             /* events dropped: the queue was full */
    uint64_t pending;             /* impressions waiting for a click */
    uint64_t repeated;            /* impressions whose id was already pending (ignored) */
    uint64_t unmatched;           /* clicks with no pending impression: unknown, late, repeated (ignored) */
    uint64_t positives, negatives; /* examples learned */
    uint64_t early_negatives;     /* negatives labelled before their window: pending_max was reached */
    uint64_t publishes, publish_failures, resets;
    int64_t published_at;         /* unix seconds of the last publish; 0: none */
    char version[32];             /* of the last published model; "" before */
    char base_version[32];        /* the model the weights started from (the last reset) */
    struct lrn_pv_summary pv;     /* progressive validation since start */
    char last_error[256];
};

/**
 * A learner over the model @p m serves, with no thread yet (lrn_step() can
 * drive it). A model that cannot be learned online (FM) gives a learner
 * that drops every batch, with status "stopped" and the reason in
 * last_error.
 * @return 0, ADS_EINVAL (an option out of range), ADS_ENOMEM.
 */
int lrn_new(const struct lrn_opts *opts, struct mdl *m, struct lrn **ret, struct ads_diag *diag);

/** Starts the learner thread. Block signals first (the thread inherits the mask). 0 or a negative errno. */
int lrn_start(struct lrn *l);

/** Stops the thread (if started) and frees everything; queued batches are dropped. Accepts NULL. */
void lrn_free(struct lrn *l);

/**
 * Hands a committed batch to the learner (@p b is taken in every case).
 * Any thread; never blocks on the learner's work.
 * @return 0, or ADS_EOVERLOADED when LRN_QUEUE_MAX events are waiting (the batch is dropped and counted).
 */
int lrn_submit(struct lrn *l, struct lrn_batch *b);

/**
 * One round of the learner at monotonic time @p now_ms: takes the queued
 * batches and learns from them, turns expired impressions into negatives,
 * restarts from a reloaded model, and publishes a snapshot when publish_s
 * passed since the last one and something was learned. The thread calls it
 * every 100 ms or when woken; a test without a thread calls it itself (never both).
 */
void lrn_step(struct lrn *l, uint64_t now_ms);

/** A snapshot of the counters and metrics. Any thread. */
void lrn_stats(struct lrn *l, struct lrn_stats *ret);

#endif
