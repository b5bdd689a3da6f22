/*
 * camps: campaigns in LMDB.
 *
 * Database "campaigns": key = campaign id, value = MessagePack array
 *   [1 (format), rev uint, created_at uint, updated_at uint, advertiser str,
 *    status str, name str, doc bin]
 * where doc is the campaign document as MessagePack, without the server-set
 * created_at and updated_at (they are in the record). rev counts writes from 1.
 * Database "campaigns_by_adv": key = advertiser "\0" id, value empty: an
 * advertiser's campaigns in id order, for listing.
 * Meta record "camp_live\0" advertiser: uint64, the advertiser's campaigns that
 * are not archived (the per-advertiser limit counts these).
 * Meta record "camp_rev": uint64, bumped by every campaign write, so readers
 * (the index builder) can tell cheaply whether anything changed.
 *
 * Campaigns are never removed: DELETE archives, and spend and token ledgers
 * stay keyed by the campaign id.
 */
#ifndef ADSMITH_CAMPS_H
#define ADSMITH_CAMPS_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/campaign.h"
#include "adsmith/store.h"

#define CAMPS_ETAG_MAX 48

struct camps_rec {
    char id[CAMP_ID_MAX + 1];
    char advertiser[CAMP_ID_MAX + 1];
    char status[16];
    char name[129];
    uint64_t rev, created_at, updated_at;
    const void *doc; /* MessagePack; points into LMDB's page (valid for the transaction) */
    size_t doc_len;
};

/** Reads campaign @p id. 0, ADS_ENOT_FOUND, ADS_EDATA_INVALID or a storage error. */
int camps_get(MDB_txn *txn, struct store *s, const char *id, struct camps_rec *ret);

/** Decodes a stored record (for cursors over the campaigns database). */
int camps_decode(const MDB_val *val, struct camps_rec *ret);

/**
 * Writes @p rec (id, advertiser, status, name, rev, times and doc set by the
 * caller) and keeps the advertiser listing and live count right, given the
 * status it had before (@p old_status; NULL for a new campaign).
 */
int camps_put(MDB_txn *txn, struct store *s, const struct camps_rec *rec, const char *old_status);

/**
 * Fills @p rec's id, advertiser, status and name from a validated campaign
 * document (each "" when absent; cut to its field). Nothing else of @p rec changes.
 */
void camps_rec_from_doc(const msgpack_object *doc, struct camps_rec *rec);

/**
 * Appends @p doc (a map) to @p sb (initialised by the caller, and empty) as
 * MessagePack, without the server-set created_at and updated_at.
 * @return 0 or ADS_ENOMEM.
 */
int camps_pack_doc(const msgpack_object *doc, msgpack_sbuffer *sb);

/** Campaigns of @p advertiser that are not archived. */
int camps_live_count(MDB_txn *txn, struct store *s, const char *advertiser, uint64_t *ret_n);

/** The campaign write counter (0 before the first write). */
int camps_revision(MDB_txn *txn, struct store *s, uint64_t *ret_rev);

/*
 * What a campaign has spent. Written by the notice and generation paths
 * (issues 6 and 7) in the same transactions as the events that cause them:
 * database "spend", key = campaign id, value [1, total_micros, day_start,
 * day_micros, impressions]; database "ledger", key = campaign id, value
 * [1, tokens_total, period_start, tokens_period]. Absent records read as 0.
 */
struct camps_usage {
    uint64_t spend_total_micros, spend_day_start, spend_day_micros, impressions;
    uint64_t tokens_total, tokens_period_start, tokens_period;
};

int camps_usage_get(MDB_txn *txn, struct store *s, const char *id, struct camps_usage *ret);

/** The ETag of a record: a quoted string (RFC 9110 entity-tag) in @p out. */
void camps_etag(const struct camps_rec *rec, char out[CAMPS_ETAG_MAX]);

#endif
