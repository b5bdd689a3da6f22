#include "adsmith/camps.h"

#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "adsmith/doc.h"
#include "adsmith/mpr.h"

#define CAMPS_FORMAT 1
#define CAMPS_LIVE_PREFIX "camp_live"
#define CAMPS_REV_KEY "camp_rev"

static int camps_copy_str(struct mpr *r, char *dst, size_t cap)
{
    const char *p;
    size_t n;

    if (mpr_str(r, &p, &n) != 0 || n >= cap)
        return ADS_EDATA_INVALID;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

int camps_decode(const MDB_val *val, struct camps_rec *ret)
{
    struct mpr r;
    uint32_t n;
    uint64_t format;

    mpr_init(&r, val->mv_data, val->mv_size);
    if (mpr_array(&r, &n) != 0 || n < 8 || mpr_u64(&r, &format) != 0 || format != CAMPS_FORMAT ||
        mpr_u64(&r, &ret->rev) != 0 || mpr_u64(&r, &ret->created_at) != 0 || mpr_u64(&r, &ret->updated_at) != 0 ||
        camps_copy_str(&r, ret->advertiser, sizeof(ret->advertiser)) != 0 ||
        camps_copy_str(&r, ret->status, sizeof(ret->status)) != 0 ||
        camps_copy_str(&r, ret->name, sizeof(ret->name)) != 0 || mpr_bin(&r, &ret->doc, &ret->doc_len) != 0)
        return ADS_EDATA_INVALID;
    return 0;
}

int camps_get(MDB_txn *txn, struct store *s, const char *id, struct camps_rec *ret)
{
    size_t len = strlen(id);
    MDB_val key = {len, (void *)id}, val;
    int rc;

    if (len == 0 || len > CAMP_ID_MAX)
        return ADS_ENOT_FOUND;
    if ((rc = mdb_get(txn, store_dbi(s, STORE_DB_CAMPAIGNS), &key, &val)) != 0)
        return rc == MDB_NOTFOUND ? ADS_ENOT_FOUND : store_err(rc);
    if ((rc = camps_decode(&val, ret)) != 0)
        return rc;
    memcpy(ret->id, id, len + 1);
    return 0;
}

static MDB_val camps_live_key(char *mem, const char *advertiser)
{
    size_t n = strlen(advertiser);

    memcpy(mem, CAMPS_LIVE_PREFIX, sizeof(CAMPS_LIVE_PREFIX)); /* with its NUL as the separator */
    memcpy(mem + sizeof(CAMPS_LIVE_PREFIX), advertiser, n);
    return (MDB_val){sizeof(CAMPS_LIVE_PREFIX) + n, mem};
}

static int camps_counter_get(MDB_txn *txn, struct store *s, MDB_val key, uint64_t *ret)
{
    MDB_val val;
    int rc = mdb_get(txn, store_dbi(s, STORE_DB_META), &key, &val);

    if (rc == MDB_NOTFOUND) {
        *ret = 0;
        return 0;
    }
    if (rc != 0)
        return store_err(rc);
    if (val.mv_size != sizeof(*ret))
        return ADS_EDATA_INVALID;
    memcpy(ret, val.mv_data, sizeof(*ret));
    return 0;
}

static int camps_counter_add(MDB_txn *txn, struct store *s, MDB_val key, int64_t delta)
{
    uint64_t v;
    MDB_val val = {sizeof(v), &v};
    int rc;

    if ((rc = camps_counter_get(txn, s, key, &v)) != 0)
        return rc;
    v = delta < 0 && v < (uint64_t)-delta ? 0 : v + (uint64_t)delta;
    return store_err(mdb_put(txn, store_dbi(s, STORE_DB_META), &key, &val, 0));
}

int camps_live_count(MDB_txn *txn, struct store *s, const char *advertiser, uint64_t *ret_n)
{
    char mem[sizeof(CAMPS_LIVE_PREFIX) + CAMP_ID_MAX];

    return camps_counter_get(txn, s, camps_live_key(mem, advertiser), ret_n);
}

int camps_revision(MDB_txn *txn, struct store *s, uint64_t *ret_rev)
{
    return camps_counter_get(txn, s, (MDB_val){sizeof(CAMPS_REV_KEY) - 1, (void *)CAMPS_REV_KEY}, ret_rev);
}

int camps_put(MDB_txn *txn, struct store *s, const struct camps_rec *rec, const char *old_status)
{
    char mem[sizeof(CAMPS_LIVE_PREFIX) + CAMP_ID_MAX], akey[2 * CAMP_ID_MAX + 1];
    size_t id_len = strlen(rec->id), adv_len = strlen(rec->advertiser);
    MDB_val key = {id_len, (void *)rec->id}, val, empty = {0, NULL};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    bool was_live = old_status != NULL && strcmp(old_status, "archived") != 0;
    bool is_live = strcmp(rec->status, "archived") != 0;
    int rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 8);
    msgpack_pack_uint32(&pk, CAMPS_FORMAT);
    msgpack_pack_uint64(&pk, rec->rev);
    msgpack_pack_uint64(&pk, rec->created_at);
    msgpack_pack_uint64(&pk, rec->updated_at);
    msgpack_pack_str_with_body(&pk, rec->advertiser, adv_len);
    msgpack_pack_str_with_body(&pk, rec->status, strlen(rec->status));
    msgpack_pack_str_with_body(&pk, rec->name, strlen(rec->name));
    msgpack_pack_bin_with_body(&pk, rec->doc, rec->doc_len);
    if (sb.data == NULL)
        return ADS_ENOMEM;
    val = (MDB_val){sb.size, sb.data};
    rc = mdb_put(txn, store_dbi(s, STORE_DB_CAMPAIGNS), &key, &val, 0);
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0)
        return store_err(rc);
    if (old_status == NULL) {
        memcpy(akey, rec->advertiser, adv_len);
        akey[adv_len] = '\0';
        memcpy(akey + adv_len + 1, rec->id, id_len);
        key = (MDB_val){adv_len + 1 + id_len, akey};
        if ((rc = mdb_put(txn, store_dbi(s, STORE_DB_CAMPAIGNS_BY_ADV), &key, &empty, 0)) != 0)
            return store_err(rc);
    }
    if (was_live != is_live && (rc = camps_counter_add(txn, s, camps_live_key(mem, rec->advertiser), is_live ? 1 : -1)) != 0)
        return rc;
    return camps_counter_add(txn, s, (MDB_val){sizeof(CAMPS_REV_KEY) - 1, (void *)CAMPS_REV_KEY}, 1);
}

void camps_etag(const struct camps_rec *rec, char out[CAMPS_ETAG_MAX])
{
    snprintf(out, CAMPS_ETAG_MAX, "\"%llx-%llu\"", (unsigned long long)rec->created_at, (unsigned long long)rec->rev);
}

/* Reads [1, v0, v1, ...] of @p n counters from @p db at @p id into @p out (zeros when absent). */
static int camps_counters(MDB_txn *txn, struct store *s, enum store_db db, const char *id, uint64_t *out, uint32_t n)
{
    MDB_val key = {strlen(id), (void *)id}, val;
    struct mpr r;
    uint32_t len;
    uint64_t format;
    int rc = mdb_get(txn, store_dbi(s, db), &key, &val);

    memset(out, 0, n * sizeof(*out));
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return store_err(rc);
    mpr_init(&r, val.mv_data, val.mv_size);
    if (mpr_array(&r, &len) != 0 || len < n + 1 || mpr_u64(&r, &format) != 0 || format != 1)
        return ADS_EDATA_INVALID;
    for (uint32_t i = 0; i < n; i++) {
        if (mpr_u64(&r, &out[i]) != 0)
            return ADS_EDATA_INVALID;
    }
    return 0;
}

int camps_usage_get(MDB_txn *txn, struct store *s, const char *id, struct camps_usage *ret)
{
    uint64_t spend[4], ledger[3];
    int rc;

    if ((rc = camps_counters(txn, s, STORE_DB_SPEND, id, spend, 4)) != 0 ||
        (rc = camps_counters(txn, s, STORE_DB_LEDGER, id, ledger, 3)) != 0)
        return rc;
    *ret = (struct camps_usage){spend[0], spend[1], spend[2], spend[3], ledger[0], ledger[1], ledger[2]};
    return 0;
}

static void camps_copy_member(const msgpack_object *doc, const char *key, char *dst, size_t cap)
{
    const msgpack_object *v = doc_map_get(doc, key);
    size_t n = 0;

    if (v != NULL && v->type == MSGPACK_OBJECT_STR) {
        n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
        memcpy(dst, v->via.str.ptr, n);
    }
    dst[n] = '\0';
}

void camps_rec_from_doc(const msgpack_object *doc, struct camps_rec *rec)
{
    camps_copy_member(doc, "id", rec->id, sizeof(rec->id));
    camps_copy_member(doc, "advertiser", rec->advertiser, sizeof(rec->advertiser));
    camps_copy_member(doc, "status", rec->status, sizeof(rec->status));
    camps_copy_member(doc, "name", rec->name, sizeof(rec->name));
}

/* Whether map key @p k is one the server sets (created_at, updated_at). */
static bool camps_server_member(const msgpack_object *k)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == 10 &&
           (memcmp(k->via.str.ptr, "created_at", 10) == 0 || memcmp(k->via.str.ptr, "updated_at", 10) == 0);
}

int camps_pack_doc(const msgpack_object *doc, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    uint32_t n = 0;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    for (uint32_t i = 0; i < doc->via.map.size; i++)
        n += !camps_server_member(&doc->via.map.ptr[i].key);
    if (msgpack_pack_map(&pk, n) != 0)
        return ADS_ENOMEM;
    for (uint32_t i = 0; i < doc->via.map.size; i++) {
        if (camps_server_member(&doc->via.map.ptr[i].key))
            continue;
        if (msgpack_pack_object(&pk, doc->via.map.ptr[i].key) != 0 ||
            msgpack_pack_object(&pk, doc->via.map.ptr[i].val) != 0)
            return ADS_ENOMEM;
    }
    return 0;
}
