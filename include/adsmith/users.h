/*
 * usr: user profiles in LMDB.
 *
 *   users    user id -> stored profile (profile.h)
 *   aliases  source "\0" alias id -> user id; kept in step with each profile's aliases
 *   events       event id -> 8-byte little-endian unix time it was first applied
 *                (the deduplication window; no user data)
 *   event_times  8-byte big-endian time, then the event id -> empty: the same
 *                records in time order, so expiring them never scans live ones
 *
 * Every function works inside a transaction the caller owns, so the write
 * queue can group many of them into one commit and the import can batch.
 * Write functions return a client-facing error (ADS_EINVAL, ADS_ECONFLICT,
 * ADS_ENOT_FOUND) only before their first write, as wq_job.apply requires.
 */
#ifndef ADSMITH_USERS_H
#define ADSMITH_USERS_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/event.h"
#include "adsmith/profile.h"
#include "adsmith/store.h"

/**
 * Finds the stored profile of user @p id (@p len bytes), or with @p source
 * (not NULL, not "") of the user holding alias (@p source, @p id).
 * *@p ret_val points into the map: valid until the transaction ends or writes.
 * @return 0, ADS_ENOT_FOUND, or an error from store_err().
 */
int usr_lookup(MDB_txn *txn, struct store *s, const char *source, const char *id, size_t len, MDB_val *ret_val);

/**
 * Replaces (or creates) profile @p p, keeping the stored created_at and
 * setting updated_at to @p now (both written back into @p p). Aliases no
 * longer listed are released.
 * @return 0 with *@p ret_created telling whether the user was new;
 *   ADS_ECONFLICT when an alias belongs to another user (@p ret_diag names it);
 *   an error from store_err().
 */
int usr_put(MDB_txn *txn, struct store *s, struct profile *p, uint64_t now, struct ads_diag *ret_diag,
            bool *ret_created);

/**
 * Merges @p patch into the stored profile of patch->val.id; the result is
 * written to @p ret_profile (which may not alias @p patch).
 * @return 0, ADS_ENOT_FOUND, ADS_ECONFLICT (as usr_put), or an error from store_err().
 */
int usr_patch(MDB_txn *txn, struct store *s, const struct prof_patch *patch, uint64_t now, struct ads_diag *ret_diag,
              struct profile *ret_profile);

/** Erases user @p id: the profile and all its aliases (its counters live in the profile). 0 or ADS_ENOT_FOUND. */
int usr_delete(MDB_txn *txn, struct store *s, const char *id, size_t len);

struct usr_ingest_result {
    uint32_t accepted;   /* applied */
    uint32_t duplicates; /* ids already applied within the window */
    uint32_t unresolved; /* named an alias that no profile holds */
};

/**
 * Applies a batch of validated events in order. An event naming a user id
 * that does not exist creates that profile. Events whose id was applied
 * within @p dedup_s seconds before @p now are skipped (0 disables).
 * @return 0 with *@p ret filled, or an error from store_err().
 */
int usr_ingest(MDB_txn *txn, struct store *s, const struct evt *events, size_t n, uint32_t half_life, uint32_t dedup_s,
               uint64_t now, struct usr_ingest_result *ret);

/**
 * Deletes up to @p max event-id records older than @p dedup_s seconds before
 * @p now, oldest first, so the work per call is bounded and no live record is
 * visited. @return 0 with *@p ret_deleted set (== @p max: more may be due), or
 * an error from store_err().
 */
int usr_sweep_events(MDB_txn *txn, struct store *s, uint64_t now, uint32_t dedup_s, size_t max, size_t *ret_deleted);

#endif
