#include "adsmith/users.h"
#include "adsmith/variant.h"

#include <stdio.h>
#include <string.h>

#define USR_ALIAS_KEY_MAX (PROF_SOURCE_MAX + 1 + PROF_ID_MAX)

/* Each writing function needs one decoded profile (~40 KiB) besides its
 * arguments; none calls another, so one per thread serves them all without a
 * malloc per write (a bulk import makes millions). */
static __thread struct profile usr_scratch;

static MDB_val usr_val(const char *s, size_t len)
{
    return (MDB_val){len, (void *)s};
}

static MDB_val usr_alias_key(char *mem, const char *source, const char *id, size_t id_len)
{
    size_t slen = strlen(source);

    memcpy(mem, source, slen);
    mem[slen] = '\0';
    memcpy(mem + slen + 1, id, id_len);
    return usr_val(mem, slen + 1 + id_len);
}

int usr_lookup(MDB_txn *txn, struct store *s, const char *source, const char *id, size_t len, MDB_val *ret_val)
{
    char mem[USR_ALIAS_KEY_MAX];
    MDB_val key, owner;
    int rc;

    if (len == 0 || len > PROF_ID_MAX)
        return ADS_ENOT_FOUND;
    key = usr_val(id, len);
    if (source != NULL && source[0] != '\0') {
        if (strlen(source) > PROF_SOURCE_MAX)
            return ADS_ENOT_FOUND;
        key = usr_alias_key(mem, source, id, len);
        if ((rc = mdb_get(txn, store_dbi(s, STORE_DB_ALIASES), &key, &owner)) != 0)
            return rc == MDB_NOTFOUND ? ADS_ENOT_FOUND : store_err(rc);
        key = owner;
    }
    if ((rc = mdb_get(txn, store_dbi(s, STORE_DB_USERS), &key, ret_val)) != 0)
        return rc == MDB_NOTFOUND ? ADS_ENOT_FOUND : store_err(rc);
    return 0;
}

/* Reads the stored profile of @p id into @p ret. 0, ADS_ENOT_FOUND, or an error. */
static int usr_load(MDB_txn *txn, struct store *s, const char *id, struct profile *ret)
{
    MDB_val val;
    int rc;

    if ((rc = usr_lookup(txn, s, NULL, id, strlen(id), &val)) != 0)
        return rc;
    return prof_decode(val.mv_data, val.mv_size, ret);
}

static bool usr_has_alias(const struct profile *p, const struct prof_alias *a)
{
    for (uint32_t i = 0; p != NULL && i < p->naliases; i++) {
        if (strcmp(p->aliases[i].source, a->source) == 0 && strcmp(p->aliases[i].id, a->id) == 0)
            return true;
    }
    return false;
}

/* Fails with ADS_ECONFLICT when one of @p p's aliases belongs to another user. Writes nothing. */
static int usr_check_aliases(MDB_txn *txn, struct store *s, const struct profile *p, struct ads_diag *diag)
{
    char mem[USR_ALIAS_KEY_MAX];
    MDB_val key, owner;
    int rc;

    for (uint32_t i = 0; i < p->naliases; i++) {
        const struct prof_alias *a = &p->aliases[i];
        char ptr[32];

        key = usr_alias_key(mem, a->source, a->id, strlen(a->id));
        rc = mdb_get(txn, store_dbi(s, STORE_DB_ALIASES), &key, &owner);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            return store_err(rc);
        if (owner.mv_size == strlen(p->id) && memcmp(owner.mv_data, p->id, owner.mv_size) == 0)
            continue;
        snprintf(ptr, sizeof(ptr), "/aliases/%u", i);
        return ads_diag_set(diag, ADS_ECONFLICT, ptr,
                            "the alias %s \"%s\" already belongs to another user; delete or change that user's alias "
                            "first",
                            a->source, a->id);
    }
    return 0;
}

/* Encodes @p p and stores it under its id. */
static int usr_put_record(MDB_txn *txn, struct store *s, const struct profile *p)
{
    char enc_mem[PROF_ENCODED_MAX + 1];
    MDB_val key = usr_val(p->id, strlen(p->id)), val;
    struct buf enc;
    int rc;

    buf_init(&enc, enc_mem, sizeof(enc_mem));
    if ((rc = prof_encode(p, &enc)) != 0)
        return rc;
    val = usr_val(enc.base, enc.len);
    if ((rc = mdb_put(txn, store_dbi(s, STORE_DB_USERS), &key, &val, 0)) != 0)
        return store_err(rc);
    return 0;
}

/* Writes @p p over @p old (NULL: a new user): alias index first, then the profile. */
static int usr_write(MDB_txn *txn, struct store *s, const struct profile *p, const struct profile *old)
{
    char mem[USR_ALIAS_KEY_MAX];
    MDB_dbi aliases = store_dbi(s, STORE_DB_ALIASES);
    MDB_val key, idval = usr_val(p->id, strlen(p->id));
    int rc;

    for (uint32_t i = 0; old != NULL && i < old->naliases; i++) {
        const struct prof_alias *a = &old->aliases[i];
        if (usr_has_alias(p, a))
            continue;
        key = usr_alias_key(mem, a->source, a->id, strlen(a->id));
        if ((rc = mdb_del(txn, aliases, &key, NULL)) != 0 && rc != MDB_NOTFOUND)
            return store_err(rc);
    }
    for (uint32_t i = 0; i < p->naliases; i++) {
        const struct prof_alias *a = &p->aliases[i];
        if (usr_has_alias(old, a))
            continue;
        key = usr_alias_key(mem, a->source, a->id, strlen(a->id));
        if ((rc = mdb_put(txn, aliases, &key, &idval, 0)) != 0)
            return store_err(rc);
    }
    return usr_put_record(txn, s, p);
}

int usr_put(MDB_txn *txn, struct store *s, struct profile *p, uint64_t now, struct ads_diag *ret_diag,
            bool *ret_created)
{
    struct profile *old = &usr_scratch;
    int rc;

    rc = usr_load(txn, s, p->id, old);
    if (rc != 0 && rc != ADS_ENOT_FOUND)
        return rc;
    *ret_created = rc == ADS_ENOT_FOUND;
    p->created_at = *ret_created ? now : old->created_at;
    p->updated_at = now;
    if ((rc = usr_check_aliases(txn, s, p, ret_diag)) == 0)
        rc = usr_write(txn, s, p, *ret_created ? NULL : old);
    return rc;
}

int usr_patch(MDB_txn *txn, struct store *s, const struct prof_patch *patch, uint64_t now, struct ads_diag *ret_diag,
              struct profile *ret)
{
    struct profile *old = &usr_scratch;
    int rc;

    if ((rc = usr_load(txn, s, patch->val.id, old)) != 0)
        return rc;
    *ret = *old;
    prof_patch_apply(ret, patch);
    ret->updated_at = now;
    if ((rc = usr_check_aliases(txn, s, ret, ret_diag)) == 0)
        rc = usr_write(txn, s, ret, old);
    return rc;
}

int usr_delete(MDB_txn *txn, struct store *s, const char *id, size_t len)
{
    char mem[USR_ALIAS_KEY_MAX], idmem[PROF_ID_MAX + 1];
    struct profile *old = &usr_scratch;
    MDB_val key;
    int rc;

    if (len == 0 || len > PROF_ID_MAX)
        return ADS_ENOT_FOUND;
    memcpy(idmem, id, len);
    idmem[len] = '\0';
    if ((rc = usr_load(txn, s, idmem, old)) != 0)
        return rc;
    for (uint32_t i = 0; i < old->naliases; i++) {
        key = usr_alias_key(mem, old->aliases[i].source, old->aliases[i].id, strlen(old->aliases[i].id));
        if ((rc = mdb_del(txn, store_dbi(s, STORE_DB_ALIASES), &key, NULL)) != 0 && rc != MDB_NOTFOUND)
            return store_err(rc);
    }
    key = usr_val(id, len);
    rc = mdb_del(txn, store_dbi(s, STORE_DB_USERS), &key, NULL);
    return rc == 0 ? 0 : store_err(rc);
}

/* Whether event id @p e was applied within the window; if not, records it as applied now. */
static int usr_seen(MDB_txn *txn, struct store *s, const struct evt *e, uint32_t dedup_s, uint64_t now, bool *ret_seen)
{
    MDB_dbi dbi = store_dbi(s, STORE_DB_EVENTS);
    MDB_val key = usr_val(e->id, e->id_len), val;
    uint64_t at;
    int rc;

    rc = mdb_get(txn, dbi, &key, &val);
    if (rc == 0 && val.mv_size == sizeof(at)) {
        memcpy(&at, val.mv_data, sizeof(at));
        if (at + dedup_s > now) {
            *ret_seen = true;
            return 0;
        }
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        return store_err(rc);
    }
    val = usr_val((const char *)&now, sizeof(now));
    if ((rc = mdb_put(txn, dbi, &key, &val, 0)) != 0)
        return store_err(rc);
    /* The time-ordered twin, for usr_sweep_events(). */
    uint8_t tkey[8 + EVT_ID_MAX];
    for (int i = 0; i < 8; i++)
        tkey[i] = (uint8_t)(now >> (56 - 8 * i));
    memcpy(tkey + 8, e->id, e->id_len);
    key = (MDB_val){8 + (size_t)e->id_len, tkey};
    val = (MDB_val){0, NULL};
    if ((rc = mdb_put(txn, store_dbi(s, STORE_DB_EVENT_TIMES), &key, &val, 0)) != 0)
        return store_err(rc);
    *ret_seen = false;
    return 0;
}

static int usr_ingest_one(MDB_txn *txn, struct store *s, const struct evt *e, uint32_t half_life, uint32_t dedup_s,
                          uint64_t now, struct profile *p, struct usr_ingest_result *res)
{
    const char *id = e->user;
    MDB_val owner = {0, NULL}, val;
    char idmem[PROF_ID_MAX + 1];
    bool seen = false;
    int rc;

    if (e->source[0] != '\0') {
        char mem[USR_ALIAS_KEY_MAX];
        MDB_val key = usr_alias_key(mem, e->source, e->user, strlen(e->user));
        if ((rc = mdb_get(txn, store_dbi(s, STORE_DB_ALIASES), &key, &owner)) == MDB_NOTFOUND) {
            res->unresolved++;
            return 0;
        }
        if (rc != 0)
            return store_err(rc);
        if (owner.mv_size > PROF_ID_MAX)
            return ADS_EDATA_INVALID;
        memcpy(idmem, owner.mv_data, owner.mv_size);
        idmem[owner.mv_size] = '\0';
        id = idmem;
    }
    if (e->id_len > 0 && dedup_s > 0) {
        if ((rc = usr_seen(txn, s, e, dedup_s, now, &seen)) != 0)
            return rc;
        if (seen) {
            res->duplicates++;
            return 0;
        }
    }
    rc = usr_lookup(txn, s, NULL, id, strlen(id), &val);
    if (rc == ADS_ENOT_FOUND) {
        memset(p, 0, sizeof(*p));
        snprintf(p->id, sizeof(p->id), "%s", id);
        p->created_at = now;
    } else if (rc != 0) {
        return rc;
    } else if ((rc = prof_decode(val.mv_data, val.mv_size, p)) != 0) {
        return rc;
    }
    evt_apply(p, e, half_life);
    p->updated_at = now;
    /* Aliases are unchanged: only the profile record is rewritten. */
    if ((rc = usr_put_record(txn, s, p)) != 0)
        return rc;
    /* The served variant learns from the event. An id that names no variant of the campaign (deleted, or
     * never one) teaches nothing and does not fail the batch. */
    if (e->variant[0] != '\0' && e->campaign[0] != '\0') {
        rc = var_stats_apply(txn, s, e->campaign, e->variant, (enum evt_type)e->type, 1);
        if (rc != 0 && rc != ADS_ENOT_FOUND && rc != ADS_EINVAL)
            return rc;
    }
    res->accepted++;
    return 0;
}

int usr_ingest(MDB_txn *txn, struct store *s, const struct evt *events, size_t n, uint32_t half_life, uint32_t dedup_s,
               uint64_t now, struct usr_ingest_result *ret)
{
    struct usr_ingest_result res = {0, 0, 0};
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++)
        rc = usr_ingest_one(txn, s, &events[i], half_life, dedup_s, now, &usr_scratch, &res);
    if (rc == 0)
        *ret = res;
    return rc;
}

int usr_sweep_events(MDB_txn *txn, struct store *s, uint64_t now, uint32_t dedup_s, size_t max, size_t *ret_deleted)
{
    MDB_dbi ids = store_dbi(s, STORE_DB_EVENTS);
    MDB_cursor *cur;
    MDB_val key, val, idkey, idval;
    size_t deleted = 0;
    uint64_t at, stored;
    int rc;

    if ((rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_EVENT_TIMES), &cur)) != 0)
        return store_err(rc);
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == 0 && deleted < max) {
        const uint8_t *k = key.mv_data;
        if (key.mv_size < 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        at = 0;
        for (int i = 0; i < 8; i++)
            at = at << 8 | k[i];
        if (at + dedup_s > now)
            break; /* everything after is younger */
        /* The id's record goes too, unless the id was applied again later
         * (it then has a newer time and a newer twin). */
        idkey = (MDB_val){key.mv_size - 8, (void *)(k + 8)};
        rc = mdb_get(txn, ids, &idkey, &idval);
        if (rc == 0 && idval.mv_size == sizeof(stored) &&
            (memcpy(&stored, idval.mv_data, sizeof(stored)), stored == at))
            rc = mdb_del(txn, ids, &idkey, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        deleted++;
        /* After a delete, LMDB's MDB_NEXT yields the record that followed it. */
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_err(rc);
    *ret_deleted = deleted;
    return 0;
}
