#include "adsmith/keys.h"

#include <msgpack.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "adsmith/mpr.h"

#define KEYS_PREFIX "adsk_"
#define KEYS_PREFIX_LEN (sizeof(KEYS_PREFIX) - 1)
#define KEYS_RANDOM 32
#define KEYS_FORMAT 1

static const char *const keys_role_names[] = {"admin", "advertiser", "reader"};

const char *keys_role_name(enum keys_role role)
{
    return (unsigned)role < 3 ? keys_role_names[role] : "unknown";
}

int keys_role_parse(const char *name, enum keys_role *ret)
{
    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(name, keys_role_names[i]) == 0) {
            *ret = (enum keys_role)i;
            return 0;
        }
    }
    return ADS_EINVAL;
}

static void keys_base64url(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *out++ = abc[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        *out++ = abc[(acc << (6 - bits)) & 63];
    *out = '\0';
}

static void keys_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int keys_put(MDB_txn *txn, struct store *s, const unsigned char digest[SHA256_DIGEST_LENGTH],
                    const struct keys_info *info)
{
    MDB_val key = {SHA256_DIGEST_LENGTH, (void *)digest}, val;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint32(&pk, KEYS_FORMAT);
    msgpack_pack_str_with_body(&pk, info->who.id, strlen(info->who.id));
    msgpack_pack_str_with_body(&pk, keys_role_name(info->who.role), strlen(keys_role_name(info->who.role)));
    msgpack_pack_str_with_body(&pk, info->who.advertiser, strlen(info->who.advertiser));
    msgpack_pack_str_with_body(&pk, info->name, strlen(info->name));
    msgpack_pack_uint64(&pk, info->created_at);
    msgpack_pack_uint64(&pk, info->revoked_at);
    if (sb.data == NULL)
        return ADS_ENOMEM;
    val = (MDB_val){sb.size, sb.data};
    rc = mdb_put(txn, store_dbi(s, STORE_DB_KEYS), &key, &val, 0);
    msgpack_sbuffer_destroy(&sb);
    return store_err(rc);
}

/* Copies a stored string into @p dst (@p cap bytes, NUL included); ADS_EDATA_INVALID when it does not fit. */
static int keys_read_str(struct mpr *r, char *dst, size_t cap)
{
    const char *p;
    size_t n;
    int rc;

    if ((rc = mpr_str(r, &p, &n)) != 0)
        return rc;
    if (n >= cap)
        return ADS_EDATA_INVALID;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

static int keys_decode(const MDB_val *val, struct keys_info *ret)
{
    struct mpr r;
    char role[16];
    uint32_t n;
    uint64_t format;

    mpr_init(&r, val->mv_data, val->mv_size);
    if (mpr_array(&r, &n) != 0 || n < 7 || mpr_u64(&r, &format) != 0 || format != KEYS_FORMAT ||
        keys_read_str(&r, ret->who.id, sizeof(ret->who.id)) != 0 || keys_read_str(&r, role, sizeof(role)) != 0 ||
        keys_role_parse(role, &ret->who.role) != 0 ||
        keys_read_str(&r, ret->who.advertiser, sizeof(ret->who.advertiser)) != 0 ||
        keys_read_str(&r, ret->name, sizeof(ret->name)) != 0 || mpr_u64(&r, &ret->created_at) != 0 ||
        mpr_u64(&r, &ret->revoked_at) != 0)
        return ADS_EDATA_INVALID;
    return 0;
}

int keys_count(MDB_txn *txn, struct store *s, size_t *ret_n)
{
    MDB_stat st;
    int rc = mdb_stat(txn, store_dbi(s, STORE_DB_KEYS), &st);

    if (rc != 0)
        return store_err(rc);
    *ret_n = st.ms_entries;
    return 0;
}

int keys_create(MDB_txn *txn, struct store *s, enum keys_role role, const char *advertiser, const char *name,
                uint64_t now, struct ads_diag *diag, char ret_token[KEYS_TOKEN_LEN + 1], struct keys_info *ret_info)
{
    unsigned char raw[KEYS_RANDOM], digest[SHA256_DIGEST_LENGTH];
    struct keys_info info;
    size_t n = 0;
    int rc;

    memset(&info, 0, sizeof(info));
    if (advertiser == NULL)
        advertiser = "";
    if (name == NULL)
        name = "";
    if ((unsigned)role > KEYS_READER)
        return ads_diag_set(diag, ADS_EINVAL, "/role", "the role must be admin, advertiser or reader");
    if (role == KEYS_ADVERTISER && advertiser[0] == '\0')
        return ads_diag_set(diag, ADS_EINVAL, "/advertiser", "an advertiser key needs the advertiser id it may act for");
    if (role == KEYS_ADMIN && advertiser[0] != '\0')
        return ads_diag_set(diag, ADS_EINVAL, "/advertiser", "an admin key acts for every advertiser; drop the advertiser");
    if (advertiser[0] != '\0' && !camp_id_valid(advertiser, strlen(advertiser)))
        return ads_diag_set(diag, ADS_EINVAL, "/advertiser",
                            "the advertiser id must be 1-%d characters of A-Z a-z 0-9 _ . -", CAMP_ID_MAX);
    if (strlen(name) > KEYS_NAME_MAX)
        return ads_diag_set(diag, ADS_EINVAL, "/name", "the name is longer than %d bytes", KEYS_NAME_MAX);
    if ((rc = keys_count(txn, s, &n)) != 0)
        return rc;
    if (n >= KEYS_MAX)
        return ads_diag_set(diag, ADS_EQUOTA_EXCEEDED, "", "this data directory holds %d keys, the most allowed", KEYS_MAX);
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return ads_diag_set(diag, ADS_EINTERNAL, "", "getrandom() failed");
    memcpy(ret_token, KEYS_PREFIX, KEYS_PREFIX_LEN);
    keys_base64url(raw, sizeof(raw), ret_token + KEYS_PREFIX_LEN);
    OPENSSL_cleanse(raw, sizeof(raw));
    SHA256((const unsigned char *)ret_token, KEYS_TOKEN_LEN, digest);
    keys_hex(digest, KEYS_ID_LEN / 2, info.who.id);
    info.who.role = role;
    snprintf(info.who.advertiser, sizeof(info.who.advertiser), "%s", advertiser);
    snprintf(info.name, sizeof(info.name), "%s", name);
    info.created_at = now;
    if ((rc = keys_put(txn, s, digest, &info)) != 0)
        return ads_diag_set(diag, rc, "", "cannot store the key: %s", ads_err_message(rc));
    *ret_info = info;
    return 0;
}

int keys_authenticate(MDB_txn *txn, struct store *s, const char *token, size_t len, struct ads_diag *diag,
                      struct keys_principal *ret)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    MDB_val key = {SHA256_DIGEST_LENGTH, digest}, val;
    struct keys_info info;
    int rc;

    if (len != KEYS_TOKEN_LEN || memcmp(token, KEYS_PREFIX, KEYS_PREFIX_LEN) != 0)
        return ads_diag_set(diag, ADS_EUNAUTHORIZED, "",
                            "the API key is malformed: keys are \"adsk_\" and 43 more characters, sent as "
                            "Authorization: Bearer <key>");
    SHA256((const unsigned char *)token, len, digest);
    if ((rc = mdb_get(txn, store_dbi(s, STORE_DB_KEYS), &key, &val)) == MDB_NOTFOUND)
        return ads_diag_set(diag, ADS_EUNAUTHORIZED, "", "the API key is not known here");
    if (rc != 0)
        return store_err(rc);
    if (keys_decode(&val, &info) != 0)
        return ads_diag_set(diag, ADS_EDATA_INVALID, "", "the stored key record is unreadable");
    if (info.revoked_at != 0)
        return ads_diag_set(diag, ADS_EUNAUTHORIZED, "", "the API key %s was revoked", info.who.id);
    *ret = info.who;
    return 0;
}

int keys_each(MDB_txn *txn, struct store *s, int (*fn)(const struct keys_info *info, void *arg), void *arg)
{
    MDB_cursor *cur;
    MDB_val key, val;
    struct keys_info info;
    int rc, stop = 0;

    if ((rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_KEYS), &cur)) != 0)
        return store_err(rc);
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && stop == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (keys_decode(&val, &info) != 0) {
            rc = ADS_EDATA_INVALID;
            break;
        }
        stop = fn(&info, arg);
    }
    mdb_cursor_close(cur);
    if (rc == ADS_EDATA_INVALID)
        return rc;
    return rc == 0 || rc == MDB_NOTFOUND ? stop : store_err(rc);
}

int keys_revoke(MDB_txn *txn, struct store *s, const char *id, uint64_t now)
{
    MDB_cursor *cur;
    MDB_val key, val;
    struct keys_info info;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    int rc;

    if ((rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_KEYS), &cur)) != 0)
        return store_err(rc);
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (keys_decode(&val, &info) == 0 && strcmp(info.who.id, id) == 0 && key.mv_size == sizeof(digest))
            break;
    }
    if (rc == 0)
        memcpy(digest, key.mv_data, sizeof(digest));
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return ADS_ENOT_FOUND;
    if (rc != 0)
        return store_err(rc);
    if (info.revoked_at != 0)
        return 0;
    info.revoked_at = now > 0 ? now : 1;
    return keys_put(txn, s, digest, &info);
}
