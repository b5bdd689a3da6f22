/*
 * vgen: the variant pipeline. Background threads that write AI variants of
 * campaigns' native text, meter every token against the campaign's token
 * package, check the output and store it. Never runs on a request thread.
 *
 * One generation (a job: campaign, segment, locale) goes:
 *   1. read the campaign: its brief (gen.h) and token package (ledger.h);
 *   2. build the prompt (gen_prompt) and count it with the local tokenizer
 *      (tok.h; without a rank file, one token per byte: an upper bound);
 *   3. reserve prompt + gen_max_output_tokens in a write transaction through
 *      the write queue (ledger_reserve): a hard limit refuses, and then
 *      nothing is sent;
 *   4. call the backend (gen_run) with no transaction open;
 *   5. settle the attempt with the reported usage (or the local count,
 *      flagged estimated) and store the variants in one write transaction:
 *      a variant that fails a check is stored as rejected with its reason, a
 *      passing one as approved (generation.approval "auto", the default) or
 *      pending ("manual").
 * A failed call is retried up to gen_retries times, each attempt reserved and
 * settled on its own (the ledger is idempotent by request id and attempt), so
 * a retry can never spend tokens that were not reserved first.
 *
 * Jobs come from POST /v1/campaigns/{id}/variants:generate (vgen_request) and
 * from a scanner that, whenever campaigns or variants change (and once a
 * minute), queues every (active campaign, segment, locale) with fewer live
 * variants than its brief asks for. Segments: "" (every user) plus the first
 * VGEN_MAX_SEGMENTS of the campaign's targeting.segments.include.
 * The queue is bounded (VGEN_QUEUE_MAX); a key already queued or running is
 * not queued twice, and a key that failed waits VGEN_BACKOFF_S (one refused by
 * the hard limit: until its period ends) before the scanner tries it again.
 */
#ifndef ADSMITH_VGEN_H
#define ADSMITH_VGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/err.h"

#define VGEN_MAX_ENDPOINTS 8
#define VGEN_MAX_SEGMENTS 4
#define VGEN_QUEUE_MAX 1024
#define VGEN_BACKOFF_S 60
#define VGEN_METER_CAMPAIGNS 1000 /* campaigns /metrics names; the rest are summed as campaign="_other" */
#define VGEN_MSG_OVERHEAD 16      /* tokens a chat format adds around two messages; counted on top of the prompt */

struct store;
struct wq;
struct vgen;

/** One OpenAI-compatible backend of the gen_endpoints setting. */
struct vgen_endpoint {
    char name[33];
    char base_url[513];
    char model[129];
    char key_env[65]; /* "" = no key */
};

/**
 * Parses gen_endpoints: "NAME=BASE_URL|MODEL|KEY_ENV", comma-separated (at
 * most VGEN_MAX_ENDPOINTS; "" is none). NAME as a campaign's backend (a
 * lower-case letter, then a-z 0-9 _ -; not "builtin"; no name twice),
 * BASE_URL http:// or https://, MODEL 1-128 bytes, KEY_ENV an environment
 * variable name or empty.
 * @return 0 with *@p ret_n set, or ADS_EINVAL with @p ret_diag saying what to fix.
 */
int vgen_endpoints_parse(const char *spec, struct vgen_endpoint *ret, size_t cap, size_t *ret_n,
                         struct ads_diag *ret_diag);

struct vgen_cfg {
    const char *endpoints; /* gen_endpoints */
    const char *tokenizer; /* rank file path; NULL or "": the byte-count estimate */
    uint32_t workers, timeout_ms, retries, max_output_tokens, reservation_ttl_s;
    bool stream;
    uint32_t scan_ms; /* how often the scanner looks for changes; 0: 1000 */
};

/**
 * Loads the tokenizer, creates the backends and starts the workers and the
 * scanner. @p get_store returns the open store or NULL (the pipeline then
 * waits). Writes go through @p q (wq_run()). Block signals before calling.
 * @return 0; ADS_ECONFIG with @p ret_diag (a bad endpoint list, an unreadable
 *   tokenizer file); ADS_ENOMEM; a negative errno from pthread_create.
 */
int vgen_new(const struct vgen_cfg *cfg, struct store *(*get_store)(void *arg), void *arg, struct wq *q,
             struct vgen **ret, struct ads_diag *ret_diag);

/** Stops the threads (a call in flight finishes first) and frees. Accepts NULL. */
void vgen_free(struct vgen *g);

/**
 * Queues generation for @p campaign: one job per (segment, locale) of its
 * brief, or only @p locale / @p segment when not NULL. Jobs ask for what is
 * missing up to the brief's count, or @p count more when non-zero (1-20).
 * Reads the campaign in its own read transaction.
 * @return 0 with *@p ret_jobs (jobs queued; keys already queued or running
 *   are not counted); ADS_ENOT_FOUND (no such campaign); ADS_EINVAL with
 *   @p ret_diag (no generation brief, a locale or segment it does not
 *   list, a bad count); ADS_ETOKEN_LIMIT with @p ret_diag (a hard limit
 *   whose period has less left than a generation reserves at least);
 *   ADS_EOVERLOADED (queue full); ADS_ENOT_READY.
 */
int vgen_request(struct vgen *g, const char *campaign, const char *locale, const char *segment, uint32_t count,
                 uint32_t *ret_jobs, struct ads_diag *ret_diag);

/** Names of the backends campaigns may use ("builtin" first), for validation. Valid until vgen_free(). */
const char *const *vgen_backend_names(const struct vgen *g, size_t *ret_n);

struct vgen_stats {
    uint64_t queued;                      /* jobs waiting now */
    uint64_t jobs;                        /* jobs finished */
    uint64_t calls;                       /* backend calls (attempts) made */
    uint64_t failed;                      /* jobs that ended without variants */
    uint64_t refused;                     /* jobs refused by a hard token limit (nothing sent) */
    uint64_t approved, pending, rejected; /* variants stored, by state */
    uint64_t tokens[4];                   /* settled tokens: prompt, cached, completion, reasoning */
    uint64_t estimated;                   /* settlements flagged estimated */
};

/** Counters since vgen_new(). Thread-safe. */
void vgen_stats(struct vgen *g, struct vgen_stats *ret);

/**
 * Calls @p cb with each campaign's tokens settled since vgen_new(), by kind
 * (prompt, cached, completion, reasoning); past VGEN_METER_CAMPAIGNS campaigns
 * the rest are summed under "_other". Thread-safe; @p cb must not call vgen.
 */
void vgen_each_meter(struct vgen *g, void (*cb)(void *arg, const char *campaign, const uint64_t tokens[4]), void *arg);

#endif
