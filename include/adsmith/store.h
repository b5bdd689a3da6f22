/*
 * store: the LMDB environment that holds all of adsmith's state.
 *
 * One environment (a directory holding data.mdb and lock.mdb) with the named
 * databases below. Values are versioned MessagePack; money is integer
 * micro-units. The `meta` database holds the record "schema":
 *
 *   msgpack map { "format": 1, "schema": STORE_SCHEMA_VERSION,
 *                 "created_at": unix seconds, "writer": "adsmith X.Y.Z" }
 *
 * A directory whose schema is newer than this build's STORE_SCHEMA_VERSION is
 * refused, so an old binary never misreads data a newer one wrote.
 */
#ifndef ADSMITH_STORE_H
#define ADSMITH_STORE_H

#include <lmdb.h>
#include <stdint.h>

#include "adsmith/err.h"

#define STORE_SCHEMA_VERSION 1
#define STORE_MAX_READERS 512

/* X(enum suffix, LMDB database name) */
#define STORE_DB_MAP(X)                                                                                                \
    X(META, "meta")                                                                                                    \
    X(USERS, "users")                                                                                                  \
    X(CAMPAIGNS, "campaigns")                                                                                          \
    X(VARIANTS, "variants")                                                                                            \
    X(LEDGER, "ledger")                                                                                                \
    X(SPEND, "spend")                                                                                                  \
    X(STATS, "stats")                                                                                                  \
    X(KEYS, "keys")                                                                                                    \
    X(ALIASES, "aliases")                                                                                              \
    X(EVENTS, "events")                                                                                                \
    X(EVENT_TIMES, "event_times")                                                                                      \
    X(CAMPAIGNS_BY_ADV, "campaigns_by_adv")

enum store_db {
#define STORE_DB_ENUM_(name, str) STORE_DB_##name,
    STORE_DB_MAP(STORE_DB_ENUM_)
#undef STORE_DB_ENUM_
        STORE_DB_COUNT
};

struct store;

/** What store_open() found and did, for the caller to log. */
struct store_open_info {
    int stale_readers_cleared; /* reader slots of dead processes freed by mdb_reader_check */
    int created;               /* 1 if the environment was new and the meta record written */
    uint32_t schema;           /* schema version found (or written) */
};

/**
 * Opens (creating if needed, parent directories included) the environment in @p dir
 * with a map of @p map_size bytes, clears stale reader slots, opens every named
 * database, and checks or writes the meta record.
 * @return 0 with *@p ret_store set (free with store_free()), or
 *   ADS_EDATA_TOO_NEW  the directory was written by a newer schema,
 *   ADS_EDATA_INVALID  the meta record is unreadable, or missing from an environment
 *                      that holds other data (not an adsmith directory),
 *   ADS_ESTORAGE       the directory cannot be created or opened (permissions, read-only, disk),
 *   ADS_ESTORAGE_FULL  the map is too small even for the meta record,
 *   ADS_ENOMEM.
 * On failure @p ret_diag says what happened and what to do.
 */
/* @p ret_diag and @p ret_info may be NULL. */
int store_open(const char *dir, uint64_t map_size, struct ads_diag *ret_diag, struct store_open_info *ret_info,
               struct store **ret_store);

/** Closes the environment. Accepts NULL. No transaction may be open. */
void store_free(struct store *s);

/** The LMDB environment, for modules that run their own transactions. Valid until store_free(). */
MDB_env *store_env(struct store *s);

/** The handle of a named database. Valid until store_free(). */
MDB_dbi store_dbi(const struct store *s, enum store_db db);

/** Name of a named database ("users", ...). */
const char *store_db_name(enum store_db db);

struct store_stats {
    uint64_t map_size; /* bytes */
    uint64_t map_used; /* bytes of the map in use (last page number + 1, times the page size) */
    uint32_t readers;  /* reader slots in use */
    uint32_t max_readers;
};

/** Reads the environment's usage. Thread-safe. Returns 0 or ADS_ESTORAGE. */
int store_stats(struct store *s, struct store_stats *ret_stats);

/**
 * Begins (or renews) this thread's read transaction: one per thread and store,
 * kept between calls so the bid path pays no allocation. Values read through
 * it stay valid until store_read_end(). Calls must not nest on one thread.
 * @return 0 with *@p ret_txn set, or an error from store_err().
 */
int store_read_begin(struct store *s, MDB_txn **ret_txn);

/** Ends the read started by store_read_begin() (resets it for the next renew). */
void store_read_end(MDB_txn *txn);

/** Maps an LMDB return code to an adsmith error code (MDB_MAP_FULL -> ADS_ESTORAGE_FULL, ...). */
int store_err(int mdb_rc);

#endif
