/*
 * keys: API keys, their roles, and who a request speaks for.
 *
 * A key is "adsk_" followed by 43 characters of base64url (32 random bytes
 * from getrandom()), shown once when it is created. Only its SHA-256 is
 * stored (database "keys": key = the 32-byte digest, value = the record
 * below), so a copy of the data directory gives no one a usable key; the
 * digest suffices because a key has 256 bits of entropy (there is nothing
 * to brute-force, so a slow password hash would add cost and no safety).
 *
 * Record (MessagePack array): [1 (format), id str, role str, advertiser str
 * ("" unless role is advertiser, or a scoped reader), name str, created_at
 * uint, revoked_at uint (0: live)]. The id is 12 hex digits of the digest:
 * public, shown by `adsmith keys list`, used to revoke.
 *
 * Roles:
 *   admin       everything: users, events, every advertiser's campaigns, admin routes;
 *   advertiser  the campaigns of one advertiser (read, write, usage); other
 *               advertisers' campaigns answer 404, as if they did not exist;
 *   reader      read-only campaigns and usage, of one advertiser when scoped,
 *               of all otherwise; no user profiles.
 */
#ifndef ADSMITH_KEYS_H
#define ADSMITH_KEYS_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/campaign.h"
#include "adsmith/err.h"
#include "adsmith/store.h"

#define KEYS_TOKEN_LEN 48 /* "adsk_" + 43 */
#define KEYS_ID_LEN 12
#define KEYS_NAME_MAX 128 /* bytes of a key's name */
#define KEYS_MAX 10000    /* keys in one data directory, revoked ones included */

enum keys_role {
    KEYS_ADMIN,
    KEYS_ADVERTISER,
    KEYS_READER,
};

/* Who a request speaks for. */
struct keys_principal {
    enum keys_role role;
    char id[KEYS_ID_LEN + 1];
    char advertiser[CAMP_ID_MAX + 1]; /* "" when not scoped */
};

struct keys_info {
    struct keys_principal who;
    char name[KEYS_NAME_MAX + 1];
    uint64_t created_at;
    uint64_t revoked_at; /* 0: live */
};

/** "admin", "advertiser" or "reader". */
const char *keys_role_name(enum keys_role role);

/** The role named @p name; ADS_EINVAL for any other name. */
int keys_role_parse(const char *name, enum keys_role *ret);

/**
 * Creates a key in @p txn (a write transaction) and writes its text
 * (KEYS_TOKEN_LEN characters and a NUL) to @p ret_token. An advertiser key
 * needs @p advertiser (a campaign-id-shaped string); a reader key may have one;
 * an admin key must not. @p name may be NULL.
 * @return 0 with *@p ret_info filled; ADS_EINVAL (diag says which argument),
 *   ADS_EQUOTA_EXCEEDED past KEYS_MAX keys, or a storage error.
 */
int keys_create(MDB_txn *txn, struct store *s, enum keys_role role, const char *advertiser, const char *name,
                uint64_t now, struct ads_diag *diag, char ret_token[KEYS_TOKEN_LEN + 1], struct keys_info *ret_info);

/**
 * Who the key @p token (@p len bytes, as sent after "Bearer ") is, read in
 * @p txn. Constant work whatever the token: it is hashed, then looked up.
 * @return 0 with *@p ret set; ADS_EUNAUTHORIZED for an unknown, malformed or
 *   revoked key (diag says which, without echoing the key), or a storage error.
 */
int keys_authenticate(MDB_txn *txn, struct store *s, const char *token, size_t len, struct ads_diag *diag,
                      struct keys_principal *ret);

/** Revokes the key with id @p id. 0; ADS_ENOT_FOUND; or a storage error. Revoking twice is not an error. */
int keys_revoke(MDB_txn *txn, struct store *s, const char *id, uint64_t now);

/** Calls @p fn for every key (revoked ones included), in digest order; stops at fn's first non-zero return. */
int keys_each(MDB_txn *txn, struct store *s, int (*fn)(const struct keys_info *info, void *arg), void *arg);

/** Number of keys stored (revoked included). */
int keys_count(MDB_txn *txn, struct store *s, size_t *ret_n);

#endif
