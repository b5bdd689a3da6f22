/*
 * var / vpick: AI-written ad variants (issue 7): their storage and click
 * statistics in LMDB (var_), and their serving on the bid path (vpick_):
 * an immutable snapshot of the approved variants with their Beta
 * posteriors, Thompson sampling with a control arm, and slot filling.
 *
 * A variant rewrites the text fields of a campaign's native creative
 * (title, description, cta); banner and video keep their base creative.
 * Variants are written per (campaign, segment, locale) by the generation
 * pipeline; segment "" means every user.
 *
 * Storage. Database "variants", key = campaign id, a NUL, the variant id
 * (VAR_ID_LEN lower-case hex digits). Value, MessagePack array:
 *   [0] format (VAR_FORMAT) [1] state (enum var_state) [2] locale [3] segment
 *   [4] title [5] description [6] cta [7] ai_label
 *   [8] provenance [backend, model, prompt_version, request_id,
 *       prompt_tokens, completion_tokens, created_at]
 *   [9] reasons [code, ...] (why a check rejected it) [10] updated_at
 * A reader accepts longer arrays (later formats append) and refuses newer formats.
 * Meta record "var_rev": uint64 bumped by every variant write, so the serving
 * snapshot's builder knows when to rebuild (it also rebuilds when campaigns
 * change: their slots and locales are compiled into it).
 *
 * Statistics. Database "stats", key = campaign id, a NUL, then the variant
 * id or "base" (VAR_BASE: the control arm, the base creative). Value:
 * [1, impressions, clicks, conversions] (uint64).
 */
#ifndef ADSMITH_VARIANT_H
#define ADSMITH_VARIANT_H

#include <lmdb.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/buf.h"
#include "adsmith/cidx.h"
#include "adsmith/err.h"
#include "adsmith/event.h"
#include "adsmith/profile.h"
#include "adsmith/store.h"
#include "adsmith/tz.h"

#define VAR_FORMAT 1
#define VAR_ID_LEN 16     /* hex digits of a variant id */
#define VAR_BASE "base"   /* the control arm's name in stats, notices and bids */
#define VAR_LOCALE_MAX 16 /* BCP 47 tag, bytes (as the campaign schema) */
#define VAR_SEGMENT_MAX PROF_TAG_MAX
/* Text fields, bytes: the native creative's limits are characters (gen.h), up to 4 bytes each. */
#define VAR_TITLE_MAX (4 * 90)
#define VAR_DESC_MAX (4 * 500)
#define VAR_CTA_MAX (4 * 25)
#define VAR_LABEL_MAX 64
#define VAR_NAME_MAX 64   /* provenance strings: backend, model, prompt_version, request_id */
#define VAR_REASON_MAX 32 /* one check reason code, bytes */
#define VAR_MAX_REASONS 8
#define VAR_MAX_PER_GROUP 20      /* live (pending or approved) variants per (campaign, segment, locale) */
#define VAR_MAX_PER_CAMPAIGN 1024 /* records of a campaign, every state (20 x 16 locales x a few segments) */
#define VAR_LIST_MAX 1024         /* most records var_list() visits per call */

enum var_state { VAR_PENDING, VAR_APPROVED, VAR_REJECTED, VAR_RETIRED, VAR_NSTATES };

struct var_provenance {
    char backend[VAR_NAME_MAX + 1];
    char model[VAR_NAME_MAX + 1];
    char prompt_version[VAR_NAME_MAX + 1];
    char request_id[VAR_NAME_MAX + 1];
    uint64_t prompt_tokens, completion_tokens;
    uint64_t created_at; /* unix seconds */
};

/** A variant record. Strings are NUL-terminated. */
struct var_rec {
    char campaign[CIDX_ID_MAX + 1];
    char id[VAR_ID_LEN + 1]; /* "" on var_put(): derived from the text */
    uint8_t state;           /* enum var_state */
    char locale[VAR_LOCALE_MAX + 1];
    char segment[VAR_SEGMENT_MAX + 1]; /* "" = every user */
    char title[VAR_TITLE_MAX + 1];
    char description[VAR_DESC_MAX + 1]; /* "" = none */
    char cta[VAR_CTA_MAX + 1];          /* "" = none */
    char ai_label[VAR_LABEL_MAX + 1];
    struct var_provenance prov;
    uint32_t nreasons;
    char reasons[VAR_MAX_REASONS][VAR_REASON_MAX + 1];
    uint64_t updated_at;
};

/** "pending", "approved", "rejected", "retired". Static. */
const char *var_state_name(enum var_state s);

/** The state named @p name. 0 or ADS_EINVAL. */
int var_state_parse(const char *name, enum var_state *ret);

/**
 * Stores a new variant. @p rec->id empty: the id is derived from the
 * campaign, segment, locale and text (the same text twice is the same id).
 * Checks: campaign id 1..CIDX_ID_MAX, id of VAR_ID_LEN hex digits, a known
 * state, locale and segment within limits, a non-empty title and ai_label,
 * no control characters in text.
 * @return 0 with @p ret_id (VAR_ID_LEN + 1 bytes, may be NULL) set;
 *   ADS_EINVAL (bad field), ADS_ECONFLICT (the id exists),
 *   ADS_EQUOTA_EXCEEDED (VAR_MAX_PER_CAMPAIGN records, or a live variant
 *   beyond VAR_MAX_PER_GROUP in its segment and locale), or a storage error.
 */
int var_put(MDB_txn *txn, struct store *s, const struct var_rec *rec, char *ret_id);

/** Reads variant @p id of @p campaign into @p ret. 0, ADS_ENOT_FOUND, ADS_EDATA_INVALID or a storage error. */
int var_get(MDB_txn *txn, struct store *s, const char *campaign, const char *id, struct var_rec *ret);

/**
 * Changes a variant's state (and its reasons: @p reasons may be NULL when
 * @p nreasons is 0). Making a variant live again counts against
 * VAR_MAX_PER_GROUP. @return 0, ADS_ENOT_FOUND, ADS_EINVAL,
 * ADS_EQUOTA_EXCEEDED or a storage error.
 */
int var_set_state(MDB_txn *txn, struct store *s, const char *campaign, const char *id, enum var_state state,
                  const char *const *reasons, uint32_t nreasons, uint64_t now);

/** Deletes a variant (its statistics stay). 0, ADS_ENOT_FOUND or a storage error. */
int var_delete(MDB_txn *txn, struct store *s, const char *campaign, const char *id);

/** Called per record; the record is valid during the call only. Non-zero stops var_list() with that value. */
typedef int (*var_list_fn)(void *ctx, const struct var_rec *rec);

/**
 * Visits @p campaign's variants in id order, starting after id @p after
 * (NULL or "": from the first), at most @p limit (1..VAR_LIST_MAX).
 * @return 0 with *@p ret_n (may be NULL) = records visited (== limit: more
 *   may follow), ADS_EINVAL, a storage error, or what @p cb returned.
 */
int var_list(MDB_txn *txn, struct store *s, const char *campaign, const char *after, uint32_t limit, var_list_fn cb,
             void *ctx, uint32_t *ret_n);

/**
 * Counts @p campaign's variants in @p state for @p segment and @p locale
 * (each NULL: any). @return 0 with *@p ret_n, or a storage error.
 */
int var_count(MDB_txn *txn, struct store *s, const char *campaign, const char *segment, const char *locale,
              enum var_state state, uint32_t *ret_n);

/** The variants write counter ("var_rev"; 0 before the first write). 0 or a storage error. */
int var_revision(MDB_txn *txn, struct store *s, uint64_t *ret_rev);

struct var_stats {
    uint64_t impressions, clicks, conversions;
};

/**
 * Adds @p n events of @p type (impression, click, conversion; custom is
 * ignored) to the statistics of @p variant of @p campaign (a variant id or
 * VAR_BASE). A variant id must name a stored variant of the campaign, so a
 * client cannot grow the database with made-up ids.
 * @return 0, ADS_EINVAL (malformed id), ADS_ENOT_FOUND (no such variant), or a storage error.
 */
int var_stats_apply(MDB_txn *txn, struct store *s, const char *campaign, const char *variant, enum evt_type type,
                    uint64_t n);

/** Reads the statistics (all 0 when there are none yet). 0, ADS_EDATA_INVALID or a storage error. */
int var_stats_get(MDB_txn *txn, struct store *s, const char *campaign, const char *variant, struct var_stats *ret);

/* ---- serving: the snapshot, the bandit, slot filling ---- */

#define VPICK_MAX_SLOTS 16 /* a campaign's slots (the campaign schema's limit) */
#define VPICK_SLOT_NAME_MAX 32

/** A campaign's creatives.slots, compiled when the snapshot is built. */
struct vpick_slots {
    uint32_t n;
    struct {
        char name[VPICK_SLOT_NAME_MAX + 1];
        uint8_t name_len, fallback_len;
        int8_t source; /* enum prof_attr, PROF_NATTR for context.daypart, -1: none known (the fallback) */
        int64_t max_length;
        char fallback[VAR_LABEL_MAX + 1];
    } v[VPICK_MAX_SLOTS];
};

/** One approved variant in a snapshot. Strings are NUL-terminated and live as long as the snapshot. */
struct vpick_variant {
    char id[VAR_ID_LEN + 1];
    const char *title, *description, *cta, *ai_label; /* description, cta: "" when none */
    const char *segment, *locale;
    uint32_t title_len, description_len, cta_len;
    uint32_t segment_len, locale_len, primary_len; /* primary_len: of the language subtag */
    char locale_lc[VAR_LOCALE_MAX + 1];            /* lower case, for matching */
    const struct vpick_slots *slots;               /* its campaign's, as of the build */
    double alpha, beta;                            /* Beta posterior: clicks + 1, impressions - clicks + 1 */
    double g_d[2], g_c[2];                         /* Marsaglia-Tsang constants of Gamma(alpha), Gamma(beta) */
    double mean, sd;                               /* of the posterior, for the normal approximation */
};

/** The approved variants of every campaign that has some, immutable once built. */
struct vpick_set;

/**
 * Builds a snapshot from the store: every approved variant with its
 * statistics; the fallback locale of a campaign is the first of its
 * generation.locales. @return 0 with *@p ret (free with vpick_set_free()),
 * ADS_ENOMEM or a storage error.
 */
int vpick_build(MDB_txn *txn, struct store *s, struct vpick_set **ret);

void vpick_set_free(struct vpick_set *v);

/** Approved variants in @p v (all campaigns). */
size_t vpick_set_count(const struct vpick_set *v);

/** The per-thread random state: xorshift64*. Seed with any value (0 is replaced). */
struct vpick_rng {
    uint64_t s;
};

void vpick_rng_seed(struct vpick_rng *r, uint64_t seed);

/** A uniform double in [0, 1). */
double vpick_uniform(struct vpick_rng *r);

/** One draw from Beta(@p v->alpha, @p v->beta) (exported for tests and the benchmark). */
double vpick_sample(const struct vpick_variant *v, struct vpick_rng *r);

#define VPICK_MAX_SEGS 64 /* user segments vpick_choose() reads */
#define VPICK_MAX_DRAWS 6 /* Thompson draws per choice: for the variants of highest upper bound (mean + 2 sd) */

/**
 * Chooses what native creative @p campaign serves to this request: with
 * probability @p control_pct / 100 the base creative (the control arm);
 * otherwise the approved variant for the request's locale (exact tag, else
 * the same primary language, else the campaign's fallback locale, else any)
 * and one of @p segs (or segment "") whose Thompson draw is the highest.
 * To bound the cost, only the VPICK_MAX_DRAWS variants of that group with
 * the highest upper bound (posterior mean + 2 sd, ranked when the snapshot
 * is built) are drawn for: a variant outside them would rarely win a draw.
 * @p v may be NULL. Wait-free; allocates nothing.
 * @return the variant, or NULL for the base creative (control arm, or
 *   nothing approved); *@p ret_control tells whether the control arm was
 *   drawn (may be NULL).
 */
const struct vpick_variant *vpick_choose(const struct vpick_set *v, const char *campaign, const struct cidx_str *segs,
                                         uint32_t nsegs, struct cidx_str locale, struct vpick_rng *rng,
                                         uint32_t control_pct, bool *ret_control);

/** What personal slots are filled from. */
struct vpick_slot_ctx {
    const struct prof_view *profile; /* NULL (or contextual request): fallbacks */
    const struct tz *zone;           /* the campaign's time zone, for context.daypart; NULL: UTC */
    int64_t now;                     /* unix seconds */
};

/**
 * Appends @p t with each {{slot}} replaced by its value: the slot's source
 * (attributes.country, .region, .city, .language, .device, .os from the
 * profile; context.daypart: "morning" 5-12, "afternoon" 12-17, "evening"
 * 17-22, "night" otherwise, in the campaign's zone) when known and no
 * longer than max_length, else its fallback; "" for an undeclared slot.
 * @p slots is the campaign's creatives.slots map (may be NULL).
 * @p html: values are HTML-escaped.
 */
void vpick_fill(struct buf *b, struct cidx_str t, const msgpack_object *slots, const struct vpick_slot_ctx *ctx,
                bool html);

/**
 * vpick_fill() of text @p t of variant @p v (its title, description or cta)
 * with the slots of its campaign compiled into the snapshot: the same values,
 * without reading the campaign document.
 */
void vpick_fill_variant(struct buf *b, const struct vpick_variant *v, struct cidx_str t,
                        const struct vpick_slot_ctx *ctx, bool html);

/** Appends @p n bytes of @p s HTML-escaped (< > & " '). */
void vpick_html_escape(struct buf *b, const char *s, size_t n);

/* ---- the builder thread ---- */

struct app;
struct vpick_cache;

/**
 * Starts a thread that builds the snapshot whenever the variants write
 * counter changes, and at least every @p refresh_ms (statistics), and
 * publishes it to @p readers request threads through a hold.
 * @return 0, ADS_EINVAL, ADS_ENOMEM or a negative errno.
 */
int vpick_cache_new(struct app *app, unsigned readers, uint32_t refresh_ms, struct vpick_cache **ret);

/** Stops the thread and frees everything. Accepts NULL. After the request threads stopped. */
void vpick_cache_free(struct vpick_cache *c);

/** The current snapshot (NULL before the first build) for reader @p reader; pair with vpick_exit(). */
const struct vpick_set *vpick_enter(struct vpick_cache *c, unsigned reader);
void vpick_exit(struct vpick_cache *c, unsigned reader);

/** Snapshots published so far. Any thread. */
uint64_t vpick_builds(struct vpick_cache *c);

#endif
