/* Variant records and their statistics in LMDB (variant.h). */
#include <stdio.h>
#include <string.h>

#include "adsmith/doc.h"
#include "adsmith/mpr.h"
#include "adsmith/variant.h"

#define VAR_REV_KEY "var_rev"
#define VAR_KEY_MAX (CIDX_ID_MAX + 1 + VAR_ID_LEN)
#define VAR_STATS_KEY_MAX (CIDX_ID_MAX + 1 + VAR_ID_LEN)

_Static_assert(VAR_LIST_MAX >= VAR_MAX_PER_CAMPAIGN, "var_tally reads a campaign in one var_list call");

static const char *const var_states[VAR_NSTATES] = {"pending", "approved", "rejected", "retired"};

const char *var_state_name(enum var_state st)
{
    return (unsigned)st < VAR_NSTATES ? var_states[st] : "unknown";
}

int var_state_parse(const char *name, enum var_state *ret)
{
    for (int i = 0; i < VAR_NSTATES; i++) {
        if (strcmp(name, var_states[i]) == 0) {
            *ret = (enum var_state)i;
            return 0;
        }
    }
    return ADS_EINVAL;
}

static bool var_is_id(const char *id)
{
    size_t n = strlen(id);

    if (n != VAR_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static bool var_campaign_ok(const char *campaign)
{
    size_t n = strlen(campaign);
    return n > 0 && n <= CIDX_ID_MAX;
}

/* Text a creative may show: UTF-8 without control characters, at most @p max bytes (the buffers bound it too). */
static bool var_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n > max || !doc_utf8_valid(s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static MDB_val var_key(char *mem, const char *campaign, const char *id)
{
    size_t c = strlen(campaign), i = strlen(id);

    memcpy(mem, campaign, c);
    mem[c] = '\0';
    memcpy(mem + c + 1, id, i);
    return (MDB_val){c + 1 + i, mem};
}

/* ---- the write counter ---- */

int var_revision(MDB_txn *txn, struct store *s, uint64_t *ret_rev)
{
    MDB_val key = {sizeof(VAR_REV_KEY) - 1, (void *)VAR_REV_KEY}, val;
    int rc = mdb_get(txn, store_dbi(s, STORE_DB_META), &key, &val);

    if (rc == MDB_NOTFOUND) {
        *ret_rev = 0;
        return 0;
    }
    if (rc != 0)
        return store_err(rc);
    if (val.mv_size != sizeof(uint64_t))
        return ADS_EDATA_INVALID;
    memcpy(ret_rev, val.mv_data, sizeof(uint64_t));
    return 0;
}

static int var_bump(MDB_txn *txn, struct store *s)
{
    MDB_val key = {sizeof(VAR_REV_KEY) - 1, (void *)VAR_REV_KEY}, val;
    uint64_t rev;
    int rc = var_revision(txn, s, &rev);

    if (rc != 0)
        return rc;
    rev++;
    val = (MDB_val){sizeof(rev), &rev};
    return store_err(mdb_put(txn, store_dbi(s, STORE_DB_META), &key, &val, 0));
}

/* ---- the record ---- */

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static int var_encode(const struct var_rec *r, msgpack_sbuffer *sb)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 11);
    msgpack_pack_uint32(&pk, VAR_FORMAT);
    msgpack_pack_uint32(&pk, r->state);
    pack_str(&pk, r->locale);
    pack_str(&pk, r->segment);
    pack_str(&pk, r->title);
    pack_str(&pk, r->description);
    pack_str(&pk, r->cta);
    pack_str(&pk, r->ai_label);
    msgpack_pack_array(&pk, 7);
    pack_str(&pk, r->prov.backend);
    pack_str(&pk, r->prov.model);
    pack_str(&pk, r->prov.prompt_version);
    pack_str(&pk, r->prov.request_id);
    msgpack_pack_uint64(&pk, r->prov.prompt_tokens);
    msgpack_pack_uint64(&pk, r->prov.completion_tokens);
    msgpack_pack_uint64(&pk, r->prov.created_at);
    msgpack_pack_array(&pk, r->nreasons);
    for (uint32_t i = 0; i < r->nreasons; i++)
        pack_str(&pk, r->reasons[i]);
    msgpack_pack_uint64(&pk, r->updated_at);
    if (sb->data == NULL) {
        msgpack_sbuffer_destroy(sb);
        return ADS_ENOMEM;
    }
    return 0;
}

static int rd_str(struct mpr *m, char *dst, size_t cap)
{
    const char *p;
    size_t n;

    if (mpr_str(m, &p, &n) != 0 || n >= cap)
        return ADS_EDATA_INVALID;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

/* Decodes @p val into @p r (campaign and id are the caller's). */
static int var_decode(const MDB_val *val, struct var_rec *r)
{
    struct mpr m;
    uint32_t n, np, nr;
    uint64_t fmt, st;

    mpr_init(&m, val->mv_data, val->mv_size);
    if (mpr_array(&m, &n) != 0 || n < 11 || mpr_u64(&m, &fmt) != 0)
        return ADS_EDATA_INVALID;
    if (fmt > VAR_FORMAT)
        return ADS_EDATA_TOO_NEW;
    if (mpr_u64(&m, &st) != 0 || st >= VAR_NSTATES)
        return ADS_EDATA_INVALID;
    r->state = (uint8_t)st;
    if (rd_str(&m, r->locale, sizeof(r->locale)) != 0 || rd_str(&m, r->segment, sizeof(r->segment)) != 0 ||
        rd_str(&m, r->title, sizeof(r->title)) != 0 || rd_str(&m, r->description, sizeof(r->description)) != 0 ||
        rd_str(&m, r->cta, sizeof(r->cta)) != 0 || rd_str(&m, r->ai_label, sizeof(r->ai_label)) != 0)
        return ADS_EDATA_INVALID;
    if (mpr_array(&m, &np) != 0 || np < 7 || rd_str(&m, r->prov.backend, sizeof(r->prov.backend)) != 0 ||
        rd_str(&m, r->prov.model, sizeof(r->prov.model)) != 0 ||
        rd_str(&m, r->prov.prompt_version, sizeof(r->prov.prompt_version)) != 0 ||
        rd_str(&m, r->prov.request_id, sizeof(r->prov.request_id)) != 0 || mpr_u64(&m, &r->prov.prompt_tokens) != 0 ||
        mpr_u64(&m, &r->prov.completion_tokens) != 0 || mpr_u64(&m, &r->prov.created_at) != 0)
        return ADS_EDATA_INVALID;
    for (uint32_t i = 7; i < np; i++)
        if (mpr_skip(&m) != 0)
            return ADS_EDATA_INVALID;
    if (mpr_array(&m, &nr) != 0 || nr > VAR_MAX_REASONS)
        return ADS_EDATA_INVALID;
    r->nreasons = nr;
    for (uint32_t i = 0; i < nr; i++)
        if (rd_str(&m, r->reasons[i], sizeof(r->reasons[i])) != 0)
            return ADS_EDATA_INVALID;
    if (mpr_u64(&m, &r->updated_at) != 0)
        return ADS_EDATA_INVALID;
    return 0;
}

static int var_check(const struct var_rec *r)
{
    if (!var_campaign_ok(r->campaign) || (r->id[0] != '\0' && !var_is_id(r->id)) || r->state >= VAR_NSTATES ||
        r->nreasons > VAR_MAX_REASONS)
        return ADS_EINVAL;
    if (!var_text_ok(r->locale, VAR_LOCALE_MAX) || r->locale[0] == '\0' || !var_text_ok(r->segment, VAR_SEGMENT_MAX) ||
        !var_text_ok(r->title, VAR_TITLE_MAX) || r->title[0] == '\0' || !var_text_ok(r->description, VAR_DESC_MAX) ||
        !var_text_ok(r->cta, VAR_CTA_MAX) || !var_text_ok(r->ai_label, VAR_LABEL_MAX) || r->ai_label[0] == '\0')
        return ADS_EINVAL;
    if (!var_text_ok(r->prov.backend, VAR_NAME_MAX) || !var_text_ok(r->prov.model, VAR_NAME_MAX) ||
        !var_text_ok(r->prov.prompt_version, VAR_NAME_MAX) || !var_text_ok(r->prov.request_id, VAR_NAME_MAX))
        return ADS_EINVAL;
    for (uint32_t i = 0; i < r->nreasons; i++)
        if (!var_text_ok(r->reasons[i], VAR_REASON_MAX) || r->reasons[i][0] == '\0')
            return ADS_EINVAL;
    return 0;
}

/* FNV-1a over the fields that make a variant what it is, each with its NUL as a separator. */
static void var_derive_id(const struct var_rec *r, char out[VAR_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    const char *parts[] = {r->campaign, r->segment, r->locale, r->title, r->description, r->cta};
    uint64_t h = 14695981039346656037ull;

    for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
        const unsigned char *p = (const unsigned char *)parts[k];
        do {
            h ^= *p;
            h *= 1099511628211ull;
        } while (*p++ != '\0');
    }
    for (int i = 0; i < VAR_ID_LEN; i++)
        out[i] = hex[(h >> (60 - 4 * i)) & 15];
    out[VAR_ID_LEN] = '\0';
}

static bool var_live(uint8_t state)
{
    return state == VAR_PENDING || state == VAR_APPROVED;
}

/* What the quota needs to know about a campaign's records. */
struct var_tally {
    const char *segment, *locale; /* the group being counted */
    const char *skip_id;          /* a record not to count (the one changing state) */
    uint32_t total, live_in_group;
};

static int var_tally_cb(void *ctx, const struct var_rec *r)
{
    struct var_tally *t = ctx;

    t->total++;
    if (t->skip_id != NULL && strcmp(r->id, t->skip_id) == 0)
        return 0;
    if (var_live(r->state) && strcmp(r->segment, t->segment) == 0 && strcmp(r->locale, t->locale) == 0)
        t->live_in_group++;
    return 0;
}

static int var_tally(MDB_txn *txn, struct store *s, const struct var_rec *r, const char *skip_id, struct var_tally *ret)
{
    struct var_tally t = {r->segment, r->locale, skip_id, 0, 0};
    int rc;

    /* VAR_LIST_MAX is VAR_MAX_PER_CAMPAIGN: one call sees every record of a campaign within its quota. */
    if ((rc = var_list(txn, s, r->campaign, NULL, VAR_LIST_MAX, var_tally_cb, &t, NULL)) != 0)
        return rc;
    *ret = t;
    return 0;
}

int var_put(MDB_txn *txn, struct store *s, const struct var_rec *rec, char *ret_id)
{
    char mem[VAR_KEY_MAX], id[VAR_ID_LEN + 1];
    struct var_tally t;
    msgpack_sbuffer sb;
    MDB_val key, val;
    int rc;

    if ((rc = var_check(rec)) != 0)
        return rc;
    if (rec->id[0] != '\0')
        memcpy(id, rec->id, sizeof(id));
    else
        var_derive_id(rec, id);
    key = var_key(mem, rec->campaign, id);
    rc = mdb_get(txn, store_dbi(s, STORE_DB_VARIANTS), &key, &val);
    if (rc == 0)
        return ADS_ECONFLICT;
    if (rc != MDB_NOTFOUND)
        return store_err(rc);
    if ((rc = var_tally(txn, s, rec, NULL, &t)) != 0)
        return rc;
    if (t.total >= VAR_MAX_PER_CAMPAIGN || (var_live(rec->state) && t.live_in_group >= VAR_MAX_PER_GROUP))
        return ADS_EQUOTA_EXCEEDED;
    if ((rc = var_encode(rec, &sb)) != 0)
        return rc;
    val = (MDB_val){sb.size, sb.data};
    rc = store_err(mdb_put(txn, store_dbi(s, STORE_DB_VARIANTS), &key, &val, MDB_NOOVERWRITE));
    msgpack_sbuffer_destroy(&sb);
    if (rc == 0)
        rc = var_bump(txn, s);
    if (rc == 0 && ret_id != NULL)
        memcpy(ret_id, id, VAR_ID_LEN + 1);
    return rc;
}

int var_get(MDB_txn *txn, struct store *s, const char *campaign, const char *id, struct var_rec *ret)
{
    char mem[VAR_KEY_MAX];
    MDB_val key, val;
    int rc;

    if (!var_campaign_ok(campaign) || !var_is_id(id))
        return ADS_ENOT_FOUND;
    key = var_key(mem, campaign, id);
    if ((rc = mdb_get(txn, store_dbi(s, STORE_DB_VARIANTS), &key, &val)) != 0)
        return rc == MDB_NOTFOUND ? ADS_ENOT_FOUND : store_err(rc);
    if ((rc = var_decode(&val, ret)) != 0)
        return rc;
    snprintf(ret->campaign, sizeof(ret->campaign), "%s", campaign);
    memcpy(ret->id, id, VAR_ID_LEN + 1);
    return 0;
}

int var_set_state(MDB_txn *txn, struct store *s, const char *campaign, const char *id, enum var_state state,
                  const char *const *reasons, uint32_t nreasons, uint64_t now)
{
    static __thread struct var_rec r;
    char mem[VAR_KEY_MAX];
    struct var_tally t;
    msgpack_sbuffer sb;
    MDB_val key, val;
    int rc;

    if ((unsigned)state >= VAR_NSTATES || nreasons > VAR_MAX_REASONS || (nreasons > 0 && reasons == NULL))
        return ADS_EINVAL;
    if ((rc = var_get(txn, s, campaign, id, &r)) != 0)
        return rc;
    for (uint32_t i = 0; i < nreasons; i++) {
        if (reasons[i] == NULL || reasons[i][0] == '\0' || !var_text_ok(reasons[i], VAR_REASON_MAX))
            return ADS_EINVAL;
        snprintf(r.reasons[i], sizeof(r.reasons[i]), "%s", reasons[i]);
    }
    if (var_live((uint8_t)state) && !var_live(r.state)) {
        if ((rc = var_tally(txn, s, &r, id, &t)) != 0)
            return rc;
        if (t.live_in_group >= VAR_MAX_PER_GROUP)
            return ADS_EQUOTA_EXCEEDED;
    }
    r.nreasons = nreasons;
    r.state = (uint8_t)state;
    r.updated_at = now;
    if ((rc = var_encode(&r, &sb)) != 0)
        return rc;
    key = var_key(mem, campaign, id);
    val = (MDB_val){sb.size, sb.data};
    rc = store_err(mdb_put(txn, store_dbi(s, STORE_DB_VARIANTS), &key, &val, 0));
    msgpack_sbuffer_destroy(&sb);
    return rc == 0 ? var_bump(txn, s) : rc;
}

int var_delete(MDB_txn *txn, struct store *s, const char *campaign, const char *id)
{
    char mem[VAR_KEY_MAX];
    MDB_val key;
    int rc;

    if (!var_campaign_ok(campaign) || !var_is_id(id))
        return ADS_ENOT_FOUND;
    key = var_key(mem, campaign, id);
    rc = mdb_del(txn, store_dbi(s, STORE_DB_VARIANTS), &key, NULL);
    if (rc == MDB_NOTFOUND)
        return ADS_ENOT_FOUND;
    return rc != 0 ? store_err(rc) : var_bump(txn, s);
}

int var_list(MDB_txn *txn, struct store *s, const char *campaign, const char *after, uint32_t limit, var_list_fn cb,
             void *ctx, uint32_t *ret_n)
{
    static __thread struct var_rec r;
    char mem[VAR_KEY_MAX];
    size_t clen = strlen(campaign);
    MDB_cursor *cur;
    MDB_val key, val;
    uint32_t n = 0;
    int rc, crc = 0;

    if (!var_campaign_ok(campaign) || limit == 0 || limit > VAR_LIST_MAX || cb == NULL ||
        (after != NULL && after[0] != '\0' && !var_is_id(after)))
        return ADS_EINVAL;
    key = var_key(mem, campaign, after != NULL ? after : "");
    if ((rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_VARIANTS), &cur)) != 0)
        return store_err(rc);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == 0 && after != NULL && after[0] != '\0' && key.mv_size == clen + 1 + VAR_ID_LEN &&
        memcmp(key.mv_data, mem, key.mv_size) == 0)
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    for (; rc == 0 && n < limit; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        const char *k = key.mv_data;
        if (key.mv_size != clen + 1 + VAR_ID_LEN || memcmp(k, campaign, clen) != 0 || k[clen] != '\0')
            break;
        if (var_decode(&val, &r) != 0)
            continue; /* an unreadable record is not the caller's to see; it still counts toward nothing */
        memcpy(r.campaign, campaign, clen + 1);
        memcpy(r.id, k + clen + 1, VAR_ID_LEN);
        r.id[VAR_ID_LEN] = '\0';
        n++;
        if ((crc = cb(ctx, &r)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (crc != 0)
        return crc;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_err(rc);
    if (ret_n != NULL)
        *ret_n = n;
    return 0;
}

struct var_counter {
    const char *segment, *locale;
    enum var_state state;
    uint32_t n;
};

static int var_count_cb(void *ctx, const struct var_rec *r)
{
    struct var_counter *c = ctx;

    if (r->state == c->state && (c->segment == NULL || strcmp(c->segment, r->segment) == 0) &&
        (c->locale == NULL || strcmp(c->locale, r->locale) == 0))
        c->n++;
    return 0;
}

int var_count(MDB_txn *txn, struct store *s, const char *campaign, const char *segment, const char *locale,
              enum var_state state, uint32_t *ret_n)
{
    struct var_counter c = {segment, locale, state, 0};
    int rc = var_list(txn, s, campaign, NULL, VAR_LIST_MAX, var_count_cb, &c, NULL);

    if (rc == 0)
        *ret_n = c.n;
    return rc;
}

/* ---- statistics ---- */

static MDB_val var_stats_key(char *mem, const char *campaign, const char *variant)
{
    return var_key(mem, campaign, variant);
}

int var_stats_get(MDB_txn *txn, struct store *s, const char *campaign, const char *variant, struct var_stats *ret)
{
    char mem[VAR_STATS_KEY_MAX];
    MDB_val key, val;
    struct mpr m;
    uint32_t n;
    uint64_t fmt;
    struct var_stats st;
    int rc;

    if (!var_campaign_ok(campaign) || (strcmp(variant, VAR_BASE) != 0 && !var_is_id(variant)))
        return ADS_EINVAL;
    key = var_stats_key(mem, campaign, variant);
    rc = mdb_get(txn, store_dbi(s, STORE_DB_STATS), &key, &val);
    if (rc == MDB_NOTFOUND) {
        *ret = (struct var_stats){0, 0, 0};
        return 0;
    }
    if (rc != 0)
        return store_err(rc);
    mpr_init(&m, val.mv_data, val.mv_size);
    if (mpr_array(&m, &n) != 0 || n < 4 || mpr_u64(&m, &fmt) != 0 || mpr_u64(&m, &st.impressions) != 0 ||
        mpr_u64(&m, &st.clicks) != 0 || mpr_u64(&m, &st.conversions) != 0)
        return ADS_EDATA_INVALID;
    *ret = st;
    return 0;
}

int var_stats_apply(MDB_txn *txn, struct store *s, const char *campaign, const char *variant, enum evt_type type,
                    uint64_t n)
{
    char mem[VAR_STATS_KEY_MAX];
    struct var_stats st;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    MDB_val key, val;
    int rc;

    if (!var_campaign_ok(campaign) || (strcmp(variant, VAR_BASE) != 0 && !var_is_id(variant)))
        return ADS_EINVAL;
    if (type != EVT_IMPRESSION && type != EVT_CLICK && type != EVT_CONVERSION)
        return 0;
    if (strcmp(variant, VAR_BASE) != 0) {
        key = var_key(mem, campaign, variant);
        if ((rc = mdb_get(txn, store_dbi(s, STORE_DB_VARIANTS), &key, &val)) != 0)
            return rc == MDB_NOTFOUND ? ADS_ENOT_FOUND : store_err(rc);
    }
    if ((rc = var_stats_get(txn, s, campaign, variant, &st)) != 0)
        return rc;
    if (type == EVT_IMPRESSION)
        st.impressions += n;
    else if (type == EVT_CLICK)
        st.clicks += n;
    else
        st.conversions += n;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_uint64(&pk, st.impressions);
    msgpack_pack_uint64(&pk, st.clicks);
    msgpack_pack_uint64(&pk, st.conversions);
    if (sb.data == NULL) {
        msgpack_sbuffer_destroy(&sb);
        return ADS_ENOMEM;
    }
    key = var_stats_key(mem, campaign, variant);
    val = (MDB_val){sb.size, sb.data};
    rc = store_err(mdb_put(txn, store_dbi(s, STORE_DB_STATS), &key, &val, 0));
    msgpack_sbuffer_destroy(&sb);
    return rc;
}
