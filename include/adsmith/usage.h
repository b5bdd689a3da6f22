/*
 * usage: a campaign's usage and results report, shared by
 * GET /v1/campaigns/{id}/usage and `adsmith usage`.
 *
 * It holds: money spent (the spend record); the current token period
 * (ledger_usage: allowance, reserved, settled by kind, money, generations,
 * refusals, estimated settlements, alerts raised); a report of the daily token
 * rollups between from and to (the campaign's time zone cuts the days),
 * grouped by any of day, model and kind, or per variant (each variant carries
 * the tokens of the generation that wrote it, shared evenly by the variants
 * that generation wrote); and what the tokens bought: impressions, clicks and
 * conversions of the generated variants and of the control arm (the base
 * creative), tokens per click and per conversion, and the CTR uplift of
 * generated variants over the control with a 95 % interval.
 */
#ifndef ADSMITH_USAGE_H
#define ADSMITH_USAGE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "adsmith/buf.h"
#include "adsmith/doc.h"
#include "adsmith/err.h"
#include "adsmith/store.h"

#define USAGE_MAX_DAYS 366  /* longest from..to */
#define USAGE_MAX_ROWS 4096 /* report rows; past it the report says truncated */
/* Output a report can need at most (JSON, the largest encoding); size out's buffer with it. */
#define USAGE_OUT_MAX (64 * 1024 + USAGE_MAX_ROWS * 200 + 1024 * 256)

enum { USAGE_G_DAY = 1, USAGE_G_MODEL = 2, USAGE_G_KIND = 4, USAGE_G_VARIANT = 8 };

struct camps_rec;

struct usage_query {
    int64_t from, to; /* unix seconds; -1: from the current token period's start (or 30 days back), to now */
    unsigned group;   /* USAGE_G_* bits; 0: day */
    bool csv;         /* the report's rows as CSV (RFC 4180) instead of the whole document */
    enum doc_fmt fmt; /* JSON or MessagePack, when not csv */
};

/** Parses "day,model,kind" or "variant" into USAGE_G_* bits. 0 or ADS_EINVAL. */
int usage_parse_group(const char *s, unsigned *ret);

/**
 * Writes the report of campaign @p rec (read in @p txn) as of @p now into @p out.
 * @return 0; ADS_EINVAL with @p ret_diag (a bad group or range); -ENOBUFS when
 *   @p out is smaller than USAGE_OUT_MAX needs; ADS_EDATA_INVALID; ADS_ENOMEM;
 *   a storage error.
 */
int usage_report(MDB_txn *txn, struct store *s, const struct camps_rec *rec, const struct usage_query *uq, int64_t now,
                 struct buf *out, struct ads_diag *ret_diag);

#endif
