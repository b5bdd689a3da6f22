/*
 * ledger: the per-campaign token ledger (issue 7).
 *
 * Every generation attempt first reserves its worst case (prompt tokens counted
 * locally plus the maximum output tokens) against its campaign's token package,
 * in the same LMDB write transaction as the check; under a hard limit a
 * reservation that does not fit is refused and the attempt is not sent. After
 * the call the attempt settles with the usage the provider reported (or the
 * local count, flagged estimated), which is charged to the reservation's
 * period, and the reservation is released. Settlement is idempotent by
 * (request id, attempt). Stale reservations expire. Periods are computed from
 * the package's anchor in the campaign's time zone whenever they are needed;
 * nothing rolls them over.
 *
 * The hard limit is exact (zero tokens over it, whatever the concurrency)
 * provided that (1) every reservation is an upper bound of what its attempt
 * consumes, which the pipeline guarantees by reserving max output tokens plus a
 * conservative prompt count, and (2) every attempt ends (is cancelled) before
 * its reservation's ttl, so no reservation expires while its tokens are still
 * being spent. Usage above the reservation is still charged in full: tokens
 * spent are never dropped from the ledger, so a broken bound shows up as an
 * overrun rather than as missing usage. LMDB serialises write transactions, so
 * the check and the reservation are atomic without further locking.
 *
 * Token kinds are disjoint: prompt (uncached input), cached (input read from
 * the provider's cache), completion (visible output), reasoning (hidden
 * output). The tokens a settlement charges are their sum. struct ledger_use
 * takes the provider's figures the way OpenAI-compatible APIs report them
 * (cached inside prompt, reasoning inside completion) and splits them.
 *
 * Money: price rows give micro-units of the ledger's one currency per million
 * tokens of one kind and model, versioned by valid_from; a settlement at time t
 * uses, per kind, the row with the latest valid_from <= t (cached falls back to
 * prompt's price and reasoning to completion's when the model has no row for
 * them). Money per settlement and kind = tokens * price / 10^6 rounded half up.
 *
 * Database "ledger" layout (every value versioned MessagePack, format 1). Keys
 * start with a kind letter and ':' (which no campaign id holds); "\0" ends
 * ids and names inside keys; integers in keys are big-endian, so cursors walk
 * them in order.
 *   <campaign id>                          [1, tokens_total, period_start, tokens_period]
 *                                          (read by camps_usage_get(); settled tokens)
 *   "P:" cid "\0" start(u64)               a period: [1, reserved, prompt, cached, completion,
 *                                          reasoning, estimated, money, generations, refusals,
 *                                          unreserved, [threshold percentages raised]]
 *   "R:" request "\0" attempt(u32)         a reservation: [1, cid, period_start, tokens, model,
 *                                          expires_at, reserved_at]
 *   "X:" expires_at(u64) request "\0" attempt(u32)   expiry index of reservations (value empty)
 *   "S:" request "\0" attempt(u32)         a settlement, for idempotency: [1, cid, period_start,
 *                                          tokens, settled_at]
 *   "Y:" forget_at(u64) request "\0" attempt(u32)    expiry index of settlement records
 *   "M:" model "\0" kind(u8) valid_from(u64)         a price row: [1, micros_per_million, currency]
 *   "C:"                                   the ledger's currency: [1, currency]
 *   "D:" cid "\0" day(u32) model           daily rollup: [1, prompt, cached, completion, reasoning,
 *                                          money, generations, estimated]; day = local days
 *                                          since 1970-01-01 in the campaign's zone
 *   "A:" seq(u64)                          an alert: [1, cid, period_start, threshold, at,
 *                                          tokens, allowance]
 *   "Q:"                                   the last alert sequence number: [1, seq]
 */
#ifndef ADSMITH_LEDGER_H
#define ADSMITH_LEDGER_H

#include <lmdb.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/err.h"
#include "adsmith/store.h"
#include "adsmith/tz.h"

#define LEDGER_MAX_TOP_UPS 100
#define LEDGER_MAX_THRESHOLDS 10
#define LEDGER_ID_MAX 64                   /* campaign and request ids: 1-64 bytes, no NUL */
#define LEDGER_MODEL_MAX 64                /* model names: 1-64 bytes, no NUL */
#define LEDGER_TOKENS_MAX 1000000000000ull /* one reservation, one usage figure: at most 10^12 */
#define LEDGER_TTL_MAX (7 * 86400)         /* a reservation lives at most a week */
#define LEDGER_SETTLE_KEEP_S (8 * 86400)   /* settlement records are kept this long, for retries */
#define LEDGER_PRICE_MAX 1000000000000ull  /* micro-units per million tokens */
#define LEDGER_TIME_MAX 40000000000ll      /* unix seconds accepted (the schema's times end at 32503680000) */
#define LEDGER_RAISED_MAX 32 /* distinct thresholds a period remembers as alerted (past it: no more alerts) */

enum ledger_period_kind {
    LEDGER_DAY,
    LEDGER_WEEK,
    LEDGER_MONTH,
};

enum ledger_kind {
    LEDGER_PROMPT,     /* uncached input */
    LEDGER_CACHED,     /* input served from the provider's cache */
    LEDGER_COMPLETION, /* visible output */
    LEDGER_REASONING,  /* hidden reasoning output */
    LEDGER_KINDS
};

struct ledger_top_up {
    int64_t at;
    uint64_t tokens;
};

/** A campaign's token package, as ledger functions need it. Plain data; copy freely. */
struct ledger_pkg {
    uint64_t grant;
    enum ledger_period_kind period;
    int64_t anchor;
    bool hard;
    uint32_t n_top_ups, n_thresholds;
    struct ledger_top_up top_ups[LEDGER_MAX_TOP_UPS];
    uint32_t thresholds[LEDGER_MAX_THRESHOLDS]; /* percentages, ascending, unique */
    const struct tz
        *zone; /* required; borrowed (from a ledger_zones cache or the caller), must outlive the pkg's use */
};

/* ---- time zones and packages ---- */

/** A thread-safe cache of loaded time zones (a tz database has about 600). */
struct ledger_zones;

/** @return 0 with *@p ret (free with ledger_zones_free) or ADS_ENOMEM. */
int ledger_zones_new(struct ledger_zones **ret);

/** Frees the cache and every zone in it. Accepts NULL. No pkg using its zones may be used after. */
void ledger_zones_free(struct ledger_zones *zc);

/**
 * The zone named @p name, loaded once and kept until ledger_zones_free().
 * @return 0 with *@p ret (borrowed), ADS_ENOT_FOUND (unknown zone), ADS_EDATA_INVALID,
 *   ADS_EQUOTA_EXCEEDED (more than 1024 distinct zones asked for) or ADS_ENOMEM.
 */
int ledger_zones_get(struct ledger_zones *zc, const char *name, const struct tz **ret);

/**
 * Reads the token package and flight.time_zone of a validated campaign document
 * @p doc (a map as doc_parse() returns it) into *@p ret, its zone from @p zc.
 * Thresholds default to [80, 100]; they are sorted and de-duplicated.
 * @return 0, ADS_ENOT_FOUND when the campaign has no token_package,
 *   ADS_EINVAL when a member is missing or out of range (the document was not
 *   validated), or an error of ledger_zones_get().
 */
int ledger_pkg_from_doc(const msgpack_object *doc, struct ledger_zones *zc, struct ledger_pkg *ret);

/**
 * The period containing @p now: [*@p ret_start, *@p ret_end) in unix seconds.
 * Periods start at the anchor's local wall-clock time and repeat every day,
 * week (7 local calendar days) or month in the package's zone, so they follow
 * DST. A monthly period keeps the anchor's day of month, clamped to the last
 * day of shorter months (anchored on the 31st: Feb 28/29, Apr 30, then Mar 31).
 * A local start time that a DST gap skips is moved forward by the gap's length;
 * one that occurs twice is its first occurrence. Before the anchor: the first
 * period. Allocation-free; thread-safe.
 */
void ledger_period(const struct ledger_pkg *pkg, int64_t now, int64_t *ret_start, int64_t *ret_end);

/**
 * Tokens the period [@p start, @p end) allows at @p now: the grant plus the
 * top-ups that took effect in it by then (start <= at <= now, at < end; top-ups
 * dated before the anchor count in the first period).
 */
uint64_t ledger_allowance(const struct ledger_pkg *pkg, int64_t start, int64_t end, int64_t now);

/** The local calendar day (days since 1970-01-01) of @p t in the package's zone; rollups are keyed by it. */
int32_t ledger_local_day(const struct ledger_pkg *pkg, int64_t t);

/* ---- reserve, settle, expire ---- */

/** What ledger_reserve() decided. */
struct ledger_reservation {
    bool refused; /* hard limit: nothing reserved; the refusal is counted (and must be committed) */
    bool over;    /* soft limit: reserved although it goes past the allowance */
    int64_t period_start, period_end;
    uint64_t allowance; /* of the period */
    uint64_t used;      /* settled + reserved in the period after this call */
};

/**
 * Reserves @p tokens for attempt @p attempt of generation @p request_id of
 * campaign @p campaign_id, in the period containing @p now, until now + @p ttl_s.
 * Under a hard limit, when settled + reserved + @p tokens would exceed the
 * period's allowance, nothing is reserved, the period's refusal count goes up,
 * and the call still returns 0 with ret->refused set: the caller commits (so the
 * refusal is counted) and does not send the generation (ADS_ETOKEN_LIMIT for
 * its own caller). Writes only inside @p txn (a write transaction).
 * @return 0 with *@p ret set, or
 *   ADS_EINVAL     an id, model, tokens (1..10^12), ttl (1..LEDGER_TTL_MAX) or now out of range,
 *   ADS_ECONFLICT  this (request id, attempt) was already reserved or settled,
 *   ADS_EDATA_INVALID, or a storage error (the transaction must then be aborted).
 * ADS_EINVAL and ADS_ECONFLICT are returned before any write.
 */
int ledger_reserve(MDB_txn *txn, struct store *s, const char *campaign_id, const struct ledger_pkg *pkg,
                   const char *request_id, uint32_t attempt, uint64_t tokens, const char *model, int64_t now,
                   uint32_t ttl_s, struct ledger_reservation *ret);

/** A provider's usage report, OpenAI style: cached is part of prompt, reasoning part of completion. */
struct ledger_use {
    uint64_t prompt, cached, completion, reasoning;
    bool estimated; /* the local count, because the provider reported none or the stream broke off */
};

/** What ledger_settle() did. */
struct ledger_settlement {
    bool duplicate;  /* this (request id, attempt) was settled before: nothing changed */
    bool unreserved; /* no reservation was found (expired, or never made): charged to the period of now */
    int64_t period_start;
    uint64_t tokens;       /* charged (0 for a duplicate) */
    uint64_t released;     /* reserved tokens released */
    uint64_t money_micros; /* charged */
    uint32_t n_alerts;     /* thresholds crossed by this settlement (alerts written) */
    uint32_t alerts[LEDGER_MAX_THRESHOLDS + 1];
};

/**
 * Settles attempt @p attempt of @p request_id with usage @p use, at @p now:
 * charges the tokens to the period of the attempt's reservation (the period of
 * @p now when there is none), releases the reservation, adds money from the
 * price rows valid at @p now, updates the campaign record and the day's rollup,
 * and raises an alert for each threshold of @p pkg that the period's settled
 * tokens reach for the first time in that period (with a soft limit, 100 % is
 * always a threshold, so an overrun is always reported).
 * Usage above the reservation is charged in full. A second settle of the same
 * (request id, attempt) changes nothing and returns 0 with ret->duplicate set
 * (retries of a settlement whose outcome was lost are safe for
 * LEDGER_SETTLE_KEEP_S). Each attempt is its own charge: a different attempt
 * of the same request settles against its own reservation, or unreserved.
 * Settling after the reservation expired charges the usage unreserved (to the
 * period of @p now); the expired reservation was already released.
 * @return 0 with *@p ret set, or
 *   ADS_EINVAL     ids, model or figures out of range (cached > prompt, reasoning > completion, > 10^12),
 *   ADS_ECONFLICT  the reservation belongs to another campaign,
 *   ADS_EDATA_INVALID, or a storage error (abort the transaction).
 * ADS_EINVAL and ADS_ECONFLICT are returned before any write.
 */
int ledger_settle(MDB_txn *txn, struct store *s, const char *campaign_id, const struct ledger_pkg *pkg,
                  const char *request_id, uint32_t attempt, const struct ledger_use *use, const char *model,
                  int64_t now, struct ledger_settlement *ret);

/**
 * Releases up to @p max reservations that expired at or before @p now, and
 * forgets up to @p max settlement records older than LEDGER_SETTLE_KEEP_S.
 * Suits the write queue's maintain function. *@p ret_released (may be NULL)
 * counts the reservations released.
 * @return 0, ADS_EDATA_INVALID or a storage error.
 */
int ledger_expire(MDB_txn *txn, struct store *s, int64_t now, uint32_t max, uint32_t *ret_released);

/* ---- reading ---- */

/** A period's figures. */
struct ledger_usage {
    int64_t period_start, period_end;
    uint64_t allowance;
    bool hard;
    uint64_t reserved;             /* outstanding reservations */
    uint64_t tokens[LEDGER_KINDS]; /* settled, by kind */
    uint64_t settled;              /* sum of tokens[] */
    uint64_t remaining;            /* allowance - settled - reserved, or 0 */
    uint64_t overrun;              /* settled - allowance, or 0 */
    uint64_t estimated;            /* settlements with estimated usage */
    uint64_t money_micros;
    uint64_t generations; /* settlements */
    uint64_t refusals;    /* reservations refused by the hard limit */
    uint64_t unreserved;  /* settlements that found no reservation */
    uint32_t n_raised;    /* thresholds alerted in this period */
    uint32_t raised[LEDGER_RAISED_MAX];
};

/**
 * The figures of the period of @p pkg containing @p now for @p campaign_id
 * (zeros for a period nothing touched). Works in read and write transactions.
 * @return 0, ADS_EINVAL, ADS_EDATA_INVALID or a storage error.
 */
int ledger_usage(MDB_txn *txn, struct store *s, const char *campaign_id, const struct ledger_pkg *pkg, int64_t now,
                 struct ledger_usage *ret);

/** One daily rollup row. model points into the database (valid for the transaction). */
struct ledger_day {
    int32_t day; /* local days since 1970-01-01 */
    const char *model;
    size_t model_len;
    uint64_t tokens[LEDGER_KINDS];
    uint64_t money_micros, generations, estimated;
};

/**
 * Calls @p cb for each rollup row of @p campaign_id with @p from_day <= day <=
 * @p to_day, in (day, model) order, until it returns non-zero (which is then
 * returned).
 * @return 0, the callback's value, ADS_EINVAL, ADS_EDATA_INVALID or a storage error.
 */
int ledger_days(MDB_txn *txn, struct store *s, const char *campaign_id, int32_t from_day, int32_t to_day,
                int (*cb)(const struct ledger_day *d, void *arg), void *arg);

/** An alert: a threshold reached in a period. campaign_id points into the database (valid for the transaction). */
struct ledger_alert {
    uint64_t seq; /* ascending, from 1 */
    const char *campaign_id;
    size_t campaign_id_len;
    int64_t period_start;
    uint32_t threshold; /* percent */
    int64_t at;
    uint64_t tokens, allowance; /* settled tokens then, and the allowance */
};

/**
 * Calls @p cb for each alert with seq > @p after_seq, oldest first, at most
 * @p max of them, until it returns non-zero (returned). A notifier keeps the
 * last seq it handled.
 * @return 0, the callback's value, ADS_EDATA_INVALID or a storage error.
 */
int ledger_alerts(MDB_txn *txn, struct store *s, uint64_t after_seq, uint32_t max,
                  int (*cb)(const struct ledger_alert *a, void *arg), void *arg);

/* ---- prices ---- */

/**
 * Stores the price of @p kind tokens of @p model from @p valid_from on:
 * @p micros_per_million micro-units of @p currency (three capital letters) per
 * million tokens (0..LEDGER_PRICE_MAX). A row with the same (model, kind,
 * valid_from) is replaced. Settlements already made keep their money.
 * @return 0, ADS_EINVAL, ADS_ECONFLICT (@p currency differs from the ledger's
 *   currency, which the first row sets), or a storage error.
 */
int ledger_price_put(MDB_txn *txn, struct store *s, const char *model, enum ledger_kind kind, int64_t valid_from,
                     uint64_t micros_per_million, const char *currency);

/**
 * The price of @p kind tokens of @p model at @p t (the row with the latest
 * valid_from <= t; no fallback between kinds). @p ret_currency (4 bytes, may be
 * NULL) gets the currency.
 * @return 0, ADS_ENOT_FOUND, ADS_EINVAL, ADS_EDATA_INVALID or a storage error.
 */
int ledger_price_get(MDB_txn *txn, struct store *s, const char *model, enum ledger_kind kind, int64_t t,
                     uint64_t *ret_micros_per_million, char ret_currency[4]);

#endif
