/*
 * ledger: reservations, settlements, expiry, prices and the figures read back.
 * The record layout is in ledger.h.
 */
#include <string.h>

#include "adsmith/ledger.h"
#include "adsmith/mpr.h"

#define LEDGER_FORMAT 1
#define LEDGER_KEY_MAX 160
#define LEDGER_VAL_MAX 512
#define LEDGER_MILLION 1000000u

/* Products of token counts and prices or percentages need more than 64 bits. */
__extension__ typedef unsigned __int128 ledger_u128;

/* ---- small helpers: keys, a bounded packer ---- */

struct lkey {
    uint8_t b[LEDGER_KEY_MAX];
    size_t n;
};

static void lk_init(struct lkey *k, char tag)
{
    k->b[0] = (uint8_t)tag;
    k->b[1] = ':';
    k->n = 2;
}

/* Sizes are bounded by the callers' checks (ids and names of at most 64 bytes), so keys always fit. */
static void lk_bytes(struct lkey *k, const void *p, size_t n)
{
    memcpy(k->b + k->n, p, n);
    k->n += n;
}

static void lk_str0(struct lkey *k, const char *s)
{
    lk_bytes(k, s, strlen(s) + 1);
}

static void lk_u64(struct lkey *k, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        k->b[k->n++] = (uint8_t)(v >> (i * 8));
}

static void lk_u32(struct lkey *k, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        k->b[k->n++] = (uint8_t)(v >> (i * 8));
}

static uint64_t lk_get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t lk_get_u32(const uint8_t *p)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++)
        v = v << 8 | p[i];
    return v;
}

static MDB_val lk_val(struct lkey *k)
{
    return (MDB_val){k->n, k->b};
}

struct lval {
    char b[LEDGER_VAL_MAX];
    size_t n;
    bool over;
    msgpack_packer pk;
};

static int lval_write(void *data, const char *buf, size_t len)
{
    struct lval *v = data;

    if (len > sizeof(v->b) - v->n) {
        v->over = true;
        return -1;
    }
    memcpy(v->b + v->n, buf, len);
    v->n += len;
    return 0;
}

static void lval_init(struct lval *v, uint32_t n_fields)
{
    v->n = 0;
    v->over = false;
    msgpack_packer_init(&v->pk, v, lval_write);
    msgpack_pack_array(&v->pk, n_fields + 1);
    msgpack_pack_uint64(&v->pk, LEDGER_FORMAT);
}

static void lval_str(struct lval *v, const char *s, size_t n)
{
    msgpack_pack_str(&v->pk, n);
    msgpack_pack_str_body(&v->pk, s, n);
}

/* Writes @p v at @p k. With MDB_NOOVERWRITE, an existing key is ADS_ECONFLICT and nothing is written. */
static int lval_put_flags(MDB_txn *txn, struct store *s, struct lkey *k, struct lval *v, unsigned flags)
{
    MDB_val key = lk_val(k), val = {v->n, v->b};
    int rc;

    if (v->over)
        return ADS_EINTERNAL; /* a record outgrew LEDGER_VAL_MAX: a bug, not data */
    if ((rc = mdb_put(txn, store_dbi(s, STORE_DB_LEDGER), &key, &val, flags)) == MDB_KEYEXIST)
        return ADS_ECONFLICT;
    if (rc != 0)
        return store_err(rc);
    return 0;
}

static int lval_put(MDB_txn *txn, struct store *s, struct lkey *k, struct lval *v)
{
    return lval_put_flags(txn, s, k, v, 0);
}

/* Reads key @p k: 0 with @p r over the value after its format, ADS_ENOT_FOUND, or an error. */
static int lrec_get(MDB_txn *txn, struct store *s, struct lkey *k, struct mpr *r, uint32_t *ret_fields)
{
    MDB_val key = lk_val(k), val;
    uint64_t format;
    uint32_t n;
    int rc = mdb_get(txn, store_dbi(s, STORE_DB_LEDGER), &key, &val);

    if (rc == MDB_NOTFOUND)
        return ADS_ENOT_FOUND;
    if (rc != 0)
        return store_err(rc);
    mpr_init(r, val.mv_data, val.mv_size);
    if (mpr_array(r, &n) != 0 || n < 1 || mpr_u64(r, &format) != 0 || format != LEDGER_FORMAT)
        return ADS_EDATA_INVALID;
    *ret_fields = n - 1;
    return 0;
}

static int ldel(MDB_txn *txn, struct store *s, struct lkey *k)
{
    MDB_val key = lk_val(k);
    int rc = mdb_del(txn, store_dbi(s, STORE_DB_LEDGER), &key, NULL);

    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

static bool ledger_name_ok(const char *s, size_t max)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, max + 1);
    return n >= 1 && n <= max;
}

static bool ledger_time_ok(int64_t t)
{
    return t >= 0 && t <= LEDGER_TIME_MAX;
}

static int64_t ledger_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* ---- period records ---- */

struct lperiod {
    uint64_t reserved, tok[LEDGER_KINDS], estimated, money, generations, refusals, unreserved;
    uint32_t n_raised;
    uint32_t raised[LEDGER_RAISED_MAX];
};

static void lkey_period(struct lkey *k, const char *cid, int64_t start)
{
    lk_init(k, 'P');
    lk_str0(k, cid);
    lk_u64(k, (uint64_t)start);
}

static int lperiod_get(MDB_txn *txn, struct store *s, const char *cid, int64_t start, struct lperiod *p)
{
    struct lkey k;
    struct mpr r;
    uint32_t n, m;
    uint64_t *fields[] = {&p->reserved,
                          &p->tok[LEDGER_PROMPT],
                          &p->tok[LEDGER_CACHED],
                          &p->tok[LEDGER_COMPLETION],
                          &p->tok[LEDGER_REASONING],
                          &p->estimated,
                          &p->money,
                          &p->generations,
                          &p->refusals,
                          &p->unreserved};
    const uint32_t n_fields = sizeof(fields) / sizeof(fields[0]);
    int rc;

    memset(p, 0, sizeof(*p));
    lkey_period(&k, cid, start);
    if ((rc = lrec_get(txn, s, &k, &r, &n)) == ADS_ENOT_FOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (n < n_fields + 1)
        return ADS_EDATA_INVALID;
    for (uint32_t i = 0; i < n_fields; i++) {
        if (mpr_u64(&r, fields[i]) != 0)
            return ADS_EDATA_INVALID;
    }
    if (mpr_array(&r, &m) != 0 || m > LEDGER_RAISED_MAX)
        return ADS_EDATA_INVALID;
    for (uint32_t i = 0; i < m; i++) {
        uint64_t t;
        if (mpr_u64(&r, &t) != 0 || t > UINT32_MAX)
            return ADS_EDATA_INVALID;
        p->raised[i] = (uint32_t)t;
    }
    p->n_raised = m;
    return 0;
}

static int lperiod_put(MDB_txn *txn, struct store *s, const char *cid, int64_t start, const struct lperiod *p)
{
    struct lkey k;
    struct lval v;
    const uint64_t fields[] = {p->reserved,
                               p->tok[LEDGER_PROMPT],
                               p->tok[LEDGER_CACHED],
                               p->tok[LEDGER_COMPLETION],
                               p->tok[LEDGER_REASONING],
                               p->estimated,
                               p->money,
                               p->generations,
                               p->refusals,
                               p->unreserved};
    const uint32_t n_fields = sizeof(fields) / sizeof(fields[0]);

    lkey_period(&k, cid, start);
    lval_init(&v, n_fields + 1);
    for (uint32_t i = 0; i < n_fields; i++)
        msgpack_pack_uint64(&v.pk, fields[i]);
    msgpack_pack_array(&v.pk, p->n_raised);
    for (uint32_t i = 0; i < p->n_raised; i++)
        msgpack_pack_uint32(&v.pk, p->raised[i]);
    return lval_put(txn, s, &k, &v);
}

static uint64_t lperiod_settled(const struct lperiod *p)
{
    uint64_t sum = 0;

    for (int i = 0; i < LEDGER_KINDS; i++)
        sum += p->tok[i];
    return sum;
}

/* ---- reservations ---- */

struct lresv {
    char cid[LEDGER_ID_MAX + 1];
    int64_t period_start, expires_at;
    uint64_t tokens;
};

static void lkey_attempt(struct lkey *k, char tag, const char *request_id, uint32_t attempt)
{
    lk_init(k, tag);
    lk_str0(k, request_id);
    lk_u32(k, attempt);
}

static void lkey_expiry(struct lkey *k, char tag, int64_t at, const char *request_id, uint32_t attempt)
{
    lk_init(k, tag);
    lk_u64(k, (uint64_t)at);
    lk_str0(k, request_id);
    lk_u32(k, attempt);
}

static int lresv_get(MDB_txn *txn, struct store *s, const char *request_id, uint32_t attempt, struct lresv *ret)
{
    struct lkey k;
    struct mpr r;
    const char *cid, *model;
    size_t cid_len, model_len;
    uint64_t start, tokens, expires;
    uint32_t n;
    int rc;

    lkey_attempt(&k, 'R', request_id, attempt);
    if ((rc = lrec_get(txn, s, &k, &r, &n)) != 0)
        return rc;
    if (n < 5 || mpr_str(&r, &cid, &cid_len) != 0 || cid_len == 0 || cid_len > LEDGER_ID_MAX ||
        mpr_u64(&r, &start) != 0 || mpr_u64(&r, &tokens) != 0 || mpr_str(&r, &model, &model_len) != 0 ||
        mpr_u64(&r, &expires) != 0)
        return ADS_EDATA_INVALID;
    memcpy(ret->cid, cid, cid_len);
    ret->cid[cid_len] = '\0';
    ret->period_start = ledger_i64(start);
    ret->tokens = tokens;
    ret->expires_at = ledger_i64(expires);
    return 0;
}

static int lexists(MDB_txn *txn, struct store *s, struct lkey *k, bool *ret)
{
    MDB_val key = lk_val(k), val;
    int rc = mdb_get(txn, store_dbi(s, STORE_DB_LEDGER), &key, &val);

    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_err(rc);
    *ret = rc == 0;
    return 0;
}

int ledger_reserve(MDB_txn *txn, struct store *s, const char *campaign_id, const struct ledger_pkg *pkg,
                   const char *request_id, uint32_t attempt, uint64_t tokens, const char *model, int64_t now,
                   uint32_t ttl_s, struct ledger_reservation *ret)
{
    struct ledger_reservation res = {0};
    struct lperiod p;
    struct lkey k;
    struct lval v;
    bool seen = false;
    uint64_t settled;
    int rc;

    if (!ledger_name_ok(campaign_id, LEDGER_ID_MAX) || !ledger_name_ok(request_id, LEDGER_ID_MAX) ||
        !ledger_name_ok(model, LEDGER_MODEL_MAX) || tokens == 0 || tokens > LEDGER_TOKENS_MAX || ttl_s == 0 ||
        ttl_s > LEDGER_TTL_MAX || !ledger_time_ok(now))
        return ADS_EINVAL;
    lkey_attempt(&k, 'S', request_id, attempt);
    if ((rc = lexists(txn, s, &k, &seen)) != 0)
        return rc;
    if (seen)
        return ADS_ECONFLICT;
    ledger_period(pkg, now, &res.period_start, &res.period_end);
    res.allowance = ledger_allowance(pkg, res.period_start, res.period_end, now);
    if ((rc = lperiod_get(txn, s, campaign_id, res.period_start, &p)) != 0)
        return rc;
    settled = lperiod_settled(&p);
    if (pkg->hard && (settled + p.reserved > res.allowance || tokens > res.allowance - settled - p.reserved)) {
        lkey_attempt(&k, 'R', request_id, attempt);
        if ((rc = lexists(txn, s, &k, &seen)) != 0)
            return rc;
        if (seen)
            return ADS_ECONFLICT;
        /* Refused: counted, and reported as success so that the caller commits the count. */
        p.refusals++;
        if ((rc = lperiod_put(txn, s, campaign_id, res.period_start, &p)) != 0)
            return rc;
        res.refused = true;
        res.used = settled + p.reserved;
        *ret = res;
        return 0;
    }
    /* The reservation first, without overwriting: an attempt reserved before is refused before anything is written. */
    lkey_attempt(&k, 'R', request_id, attempt);
    lval_init(&v, 6);
    lval_str(&v, campaign_id, strlen(campaign_id));
    msgpack_pack_uint64(&v.pk, (uint64_t)res.period_start);
    msgpack_pack_uint64(&v.pk, tokens);
    lval_str(&v, model, strlen(model));
    msgpack_pack_uint64(&v.pk, (uint64_t)(now + ttl_s));
    msgpack_pack_uint64(&v.pk, (uint64_t)now);
    if ((rc = lval_put_flags(txn, s, &k, &v, MDB_NOOVERWRITE)) != 0)
        return rc;
    p.reserved += tokens;
    res.used = settled + p.reserved;
    res.over = res.used > res.allowance;
    if ((rc = lperiod_put(txn, s, campaign_id, res.period_start, &p)) != 0)
        return rc;
    lkey_expiry(&k, 'X', now + ttl_s, request_id, attempt);
    v.n = 0; /* index entries carry no value */
    if ((rc = lval_put(txn, s, &k, &v)) != 0)
        return rc;
    *ret = res;
    return 0;
}

/* ---- prices ---- */

static void lkey_price(struct lkey *k, const char *model, enum ledger_kind kind, int64_t valid_from)
{
    lk_init(k, 'M');
    lk_str0(k, model);
    k->b[k->n++] = (uint8_t)kind;
    lk_u64(k, (uint64_t)valid_from);
}

static bool ledger_currency_ok(const char *c)
{
    return c != NULL && strnlen(c, 4) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' && c[2] >= 'A' &&
           c[2] <= 'Z';
}

int ledger_price_put(MDB_txn *txn, struct store *s, const char *model, enum ledger_kind kind, int64_t valid_from,
                     uint64_t micros_per_million, const char *currency)
{
    struct lkey k;
    struct lval v;
    struct mpr r;
    const char *cur;
    size_t cur_len;
    uint32_t n;
    int rc;

    if (!ledger_name_ok(model, LEDGER_MODEL_MAX) || (unsigned)kind >= LEDGER_KINDS || !ledger_time_ok(valid_from) ||
        micros_per_million > LEDGER_PRICE_MAX || !ledger_currency_ok(currency))
        return ADS_EINVAL;
    lk_init(&k, 'C');
    rc = lrec_get(txn, s, &k, &r, &n);
    if (rc == ADS_ENOT_FOUND) {
        lval_init(&v, 1);
        lval_str(&v, currency, 3);
        if ((rc = lval_put(txn, s, &k, &v)) != 0)
            return rc;
    } else if (rc != 0) {
        return rc;
    } else if (n < 1 || mpr_str(&r, &cur, &cur_len) != 0) {
        return ADS_EDATA_INVALID;
    } else if (cur_len != 3 || memcmp(cur, currency, 3) != 0) {
        return ADS_ECONFLICT;
    }
    lkey_price(&k, model, kind, valid_from);
    lval_init(&v, 2);
    msgpack_pack_uint64(&v.pk, micros_per_million);
    lval_str(&v, currency, 3);
    return lval_put(txn, s, &k, &v);
}

/* The price row of (@p model, @p kind) valid at @p t, through cursor @p c: 0, ADS_ENOT_FOUND or an error. */
static int ledger_price_at(MDB_cursor *c, const char *model, enum ledger_kind kind, int64_t t, uint64_t *ret_price,
                           char ret_currency[4])
{
    struct lkey k;
    MDB_val key, val;
    struct mpr r;
    uint64_t format, price;
    const char *cur;
    size_t cur_len, prefix;
    uint32_t n;
    int rc;

    /* The first row after t, then one back: the latest row at or before t, if it is this model's and kind's. */
    lkey_price(&k, model, kind, t + 1);
    prefix = k.n - 8;
    key = lk_val(&k);
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(c, &key, &val, MDB_LAST);
    else if (rc == 0)
        rc = mdb_cursor_get(c, &key, &val, MDB_PREV);
    if (rc == MDB_NOTFOUND || (rc == 0 && (key.mv_size != prefix + 8 || memcmp(key.mv_data, k.b, prefix) != 0)))
        return ADS_ENOT_FOUND;
    if (rc != 0)
        return store_err(rc);
    mpr_init(&r, val.mv_data, val.mv_size);
    if (mpr_array(&r, &n) != 0 || n < 3 || mpr_u64(&r, &format) != 0 || format != LEDGER_FORMAT ||
        mpr_u64(&r, &price) != 0 || mpr_str(&r, &cur, &cur_len) != 0 || cur_len != 3)
        return ADS_EDATA_INVALID;
    *ret_price = price;
    if (ret_currency != NULL) {
        memcpy(ret_currency, cur, 3);
        ret_currency[3] = '\0';
    }
    return 0;
}

int ledger_price_get(MDB_txn *txn, struct store *s, const char *model, enum ledger_kind kind, int64_t t,
                     uint64_t *ret_micros_per_million, char ret_currency[4])
{
    MDB_cursor *c;
    int rc;

    if (!ledger_name_ok(model, LEDGER_MODEL_MAX) || (unsigned)kind >= LEDGER_KINDS || !ledger_time_ok(t))
        return ADS_EINVAL;
    if ((rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_LEDGER), &c)) != 0)
        return store_err(rc);
    rc = ledger_price_at(c, model, kind, t, ret_micros_per_million, ret_currency);
    mdb_cursor_close(c);
    return rc;
}

/* Money for @p tok of each kind at @p t, through one cursor; a kind without a price row costs what its fallback
 * (cached: prompt, reasoning: completion) costs, or nothing. */
static int ledger_money(MDB_txn *txn, struct store *s, const char *model, const uint64_t tok[LEDGER_KINDS], int64_t t,
                        uint64_t *ret)
{
    static const enum ledger_kind order[LEDGER_KINDS] = {LEDGER_PROMPT, LEDGER_COMPLETION, LEDGER_CACHED,
                                                         LEDGER_REASONING};
    uint64_t price[LEDGER_KINDS] = {0}, money = 0;
    bool found[LEDGER_KINDS] = {false};
    MDB_cursor *c = NULL;
    int rc = 0;

    for (int i = 0; i < LEDGER_KINDS && rc == 0; i++) {
        enum ledger_kind kind = order[i];
        enum ledger_kind base = kind == LEDGER_CACHED ? LEDGER_PROMPT : LEDGER_COMPLETION;
        bool needed = tok[kind] > 0 || (kind == LEDGER_PROMPT && tok[LEDGER_CACHED] > 0) ||
                      (kind == LEDGER_COMPLETION && tok[LEDGER_REASONING] > 0);
        if (!needed)
            continue;
        if (c == NULL && (rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_LEDGER), &c)) != 0)
            return store_err(rc);
        rc = ledger_price_at(c, model, kind, t, &price[kind], NULL);
        found[kind] = rc == 0;
        if (rc == ADS_ENOT_FOUND) {
            rc = 0;
            if ((kind == LEDGER_CACHED || kind == LEDGER_REASONING) && found[base])
                price[kind] = price[base];
        }
    }
    if (c != NULL)
        mdb_cursor_close(c);
    if (rc != 0)
        return rc;
    /* tokens <= 10^12 and price <= 10^12: the product needs 128 bits. */
    for (int i = 0; i < LEDGER_KINDS; i++)
        money += (uint64_t)(((ledger_u128)tok[i] * price[i] + LEDGER_MILLION / 2) / LEDGER_MILLION);
    *ret = money;
    return 0;
}

/* ---- settlement ---- */

/* The campaign record camps_usage_get() reads: [1, tokens_total, period_start, tokens_period]. */
static int ledger_summary_add(MDB_txn *txn, struct store *s, const char *cid, int64_t period_start, uint64_t tokens)
{
    MDB_val key = {strlen(cid), (void *)cid}, val;
    struct lkey k;
    struct lval v;
    struct mpr r;
    uint64_t format, total = 0, start = 0, in_period = 0;
    uint32_t n;
    int rc = mdb_get(txn, store_dbi(s, STORE_DB_LEDGER), &key, &val);

    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_err(rc);
    if (rc == 0) {
        mpr_init(&r, val.mv_data, val.mv_size);
        if (mpr_array(&r, &n) != 0 || n < 4 || mpr_u64(&r, &format) != 0 || format != LEDGER_FORMAT ||
            mpr_u64(&r, &total) != 0 || mpr_u64(&r, &start) != 0 || mpr_u64(&r, &in_period) != 0)
            return ADS_EDATA_INVALID;
    }
    total += tokens;
    if ((uint64_t)period_start > start) {
        start = (uint64_t)period_start;
        in_period = 0;
    }
    if ((uint64_t)period_start == start)
        in_period += tokens;
    /* The key is the bare campaign id (no kind prefix), as camps_usage_get() expects. */
    k.n = strlen(cid);
    memcpy(k.b, cid, k.n);
    lval_init(&v, 3);
    msgpack_pack_uint64(&v.pk, total);
    msgpack_pack_uint64(&v.pk, start);
    msgpack_pack_uint64(&v.pk, in_period);
    return lval_put(txn, s, &k, &v);
}

static void lkey_day(struct lkey *k, const char *cid, int32_t day, const char *model, size_t model_len)
{
    lk_init(k, 'D');
    lk_str0(k, cid);
    lk_u32(k, (uint32_t)day ^ 0x80000000u); /* biased, so that days before 1970 sort first */
    lk_bytes(k, model, model_len);
}

static int ledger_day_add(MDB_txn *txn, struct store *s, const char *cid, int32_t day, const char *model,
                          const uint64_t tok[LEDGER_KINDS], uint64_t money, bool estimated)
{
    struct lkey k;
    struct lval v;
    struct mpr r;
    uint64_t f[LEDGER_KINDS + 3] = {0};
    uint32_t n;
    int rc;

    lkey_day(&k, cid, day, model, strlen(model));
    rc = lrec_get(txn, s, &k, &r, &n);
    if (rc == 0) {
        if (n < LEDGER_KINDS + 3)
            return ADS_EDATA_INVALID;
        for (int i = 0; i < LEDGER_KINDS + 3; i++) {
            if (mpr_u64(&r, &f[i]) != 0)
                return ADS_EDATA_INVALID;
        }
    } else if (rc != ADS_ENOT_FOUND) {
        return rc;
    }
    for (int i = 0; i < LEDGER_KINDS; i++)
        f[i] += tok[i];
    f[LEDGER_KINDS] += money;
    f[LEDGER_KINDS + 1]++;
    f[LEDGER_KINDS + 2] += estimated;
    lval_init(&v, LEDGER_KINDS + 3);
    for (int i = 0; i < LEDGER_KINDS + 3; i++)
        msgpack_pack_uint64(&v.pk, f[i]);
    return lval_put(txn, s, &k, &v);
}

static int ledger_alert_add(MDB_txn *txn, struct store *s, const char *cid, int64_t period_start, uint32_t threshold,
                            int64_t at, uint64_t tokens, uint64_t allowance)
{
    struct lkey k;
    struct lval v;
    struct mpr r;
    uint64_t seq = 0;
    uint32_t n;
    int rc;

    lk_init(&k, 'Q');
    rc = lrec_get(txn, s, &k, &r, &n);
    if (rc == 0 && (n < 1 || mpr_u64(&r, &seq) != 0))
        return ADS_EDATA_INVALID;
    if (rc != 0 && rc != ADS_ENOT_FOUND)
        return rc;
    seq++;
    lval_init(&v, 1);
    msgpack_pack_uint64(&v.pk, seq);
    if ((rc = lval_put(txn, s, &k, &v)) != 0)
        return rc;
    lk_init(&k, 'A');
    lk_u64(&k, seq);
    lval_init(&v, 6);
    lval_str(&v, cid, strlen(cid));
    msgpack_pack_uint64(&v.pk, (uint64_t)period_start);
    msgpack_pack_uint32(&v.pk, threshold);
    msgpack_pack_uint64(&v.pk, (uint64_t)at);
    msgpack_pack_uint64(&v.pk, tokens);
    msgpack_pack_uint64(&v.pk, allowance);
    return lval_put(txn, s, &k, &v);
}

static bool ledger_raised(const struct lperiod *p, uint32_t t)
{
    for (uint32_t i = 0; i < p->n_raised; i++) {
        if (p->raised[i] == t)
            return true;
    }
    return false;
}

/* Raises each threshold of @p pkg (and 100 % under a soft limit) that the period's settled tokens reach for the first
 * time in the period. */
static int ledger_thresholds(MDB_txn *txn, struct store *s, const char *cid, const struct ledger_pkg *pkg,
                             int64_t period_start, uint64_t allowance, int64_t now, struct lperiod *p,
                             struct ledger_settlement *res)
{
    uint32_t list[LEDGER_MAX_THRESHOLDS + 1];
    uint32_t n = pkg->n_thresholds;
    uint64_t settled = lperiod_settled(p);
    int rc;

    memcpy(list, pkg->thresholds, n * sizeof(list[0]));
    if (!pkg->hard) {
        bool has100 = false;
        for (uint32_t i = 0; i < n; i++)
            has100 |= list[i] == 100;
        if (!has100)
            list[n++] = 100;
    }
    for (uint32_t i = 0; i < n; i++) {
        /* settled <= 10^12 * many and allowance <= 101 * 10^12: 128-bit products, no overflow. */
        if ((ledger_u128)settled * 100 < (ledger_u128)list[i] * allowance || ledger_raised(p, list[i]) ||
            p->n_raised >= LEDGER_RAISED_MAX)
            continue;
        p->raised[p->n_raised++] = list[i];
        if ((rc = ledger_alert_add(txn, s, cid, period_start, list[i], now, settled, allowance)) != 0)
            return rc;
        res->alerts[res->n_alerts++] = list[i];
    }
    return 0;
}

int ledger_settle(MDB_txn *txn, struct store *s, const char *campaign_id, const struct ledger_pkg *pkg,
                  const char *request_id, uint32_t attempt, const struct ledger_use *use, const char *model,
                  int64_t now, struct ledger_settlement *ret)
{
    struct ledger_settlement res = {0};
    struct lresv rv;
    struct lperiod p;
    struct lkey k;
    struct lval v;
    uint64_t tok[LEDGER_KINDS], allowance;
    int64_t start, end;
    int rc;

    if (!ledger_name_ok(campaign_id, LEDGER_ID_MAX) || !ledger_name_ok(request_id, LEDGER_ID_MAX) ||
        !ledger_name_ok(model, LEDGER_MODEL_MAX) || !ledger_time_ok(now) || use->prompt > LEDGER_TOKENS_MAX ||
        use->completion > LEDGER_TOKENS_MAX || use->cached > use->prompt || use->reasoning > use->completion)
        return ADS_EINVAL;
    rc = lresv_get(txn, s, request_id, attempt, &rv);
    if (rc == 0 && strcmp(rv.cid, campaign_id) != 0)
        return ADS_ECONFLICT;
    if (rc == 0) {
        res.period_start = rv.period_start;
        res.released = rv.tokens;
    } else if (rc == ADS_ENOT_FOUND) {
        res.unreserved = true;
        ledger_period(pkg, now, &res.period_start, &end);
    } else {
        return rc;
    }
    tok[LEDGER_PROMPT] = use->prompt - use->cached;
    tok[LEDGER_CACHED] = use->cached;
    tok[LEDGER_COMPLETION] = use->completion - use->reasoning;
    tok[LEDGER_REASONING] = use->reasoning;
    for (int i = 0; i < LEDGER_KINDS; i++)
        res.tokens += tok[i];
    /* The settlement record first, without overwriting: a retried settlement stops here, having written nothing. */
    lkey_attempt(&k, 'S', request_id, attempt);
    lval_init(&v, 4);
    lval_str(&v, campaign_id, strlen(campaign_id));
    msgpack_pack_uint64(&v.pk, (uint64_t)res.period_start);
    msgpack_pack_uint64(&v.pk, res.tokens);
    msgpack_pack_uint64(&v.pk, (uint64_t)now);
    if ((rc = lval_put_flags(txn, s, &k, &v, MDB_NOOVERWRITE)) == ADS_ECONFLICT) {
        *ret = (struct ledger_settlement){.duplicate = true};
        return 0;
    }
    if (rc != 0)
        return rc;
    lkey_expiry(&k, 'Y', now + LEDGER_SETTLE_KEEP_S, request_id, attempt);
    v.n = 0; /* index entries carry no value */
    if ((rc = lval_put(txn, s, &k, &v)) != 0)
        return rc;
    if (!res.unreserved) {
        lkey_attempt(&k, 'R', request_id, attempt);
        if ((rc = ldel(txn, s, &k)) != 0)
            return rc;
        lkey_expiry(&k, 'X', rv.expires_at, request_id, attempt);
        if ((rc = ldel(txn, s, &k)) != 0)
            return rc;
    }
    if ((rc = ledger_money(txn, s, model, tok, now, &res.money_micros)) != 0 ||
        (rc = lperiod_get(txn, s, campaign_id, res.period_start, &p)) != 0)
        return rc;
    p.reserved = p.reserved > res.released ? p.reserved - res.released : 0;
    for (int i = 0; i < LEDGER_KINDS; i++)
        p.tok[i] += tok[i];
    p.estimated += use->estimated;
    p.money += res.money_micros;
    p.generations++;
    p.unreserved += res.unreserved;
    /* The allowance of the period the charge lands in (the reservation's, even if now is past it). */
    ledger_period(pkg, res.period_start, &start, &end);
    allowance = ledger_allowance(pkg, res.period_start, end, now);
    if ((rc = ledger_thresholds(txn, s, campaign_id, pkg, res.period_start, allowance, now, &p, &res)) != 0 ||
        (rc = lperiod_put(txn, s, campaign_id, res.period_start, &p)) != 0 ||
        (rc = ledger_summary_add(txn, s, campaign_id, res.period_start, res.tokens)) != 0 ||
        (rc = ledger_day_add(txn, s, campaign_id, ledger_local_day(pkg, now), model, tok, res.money_micros,
                             use->estimated)) != 0)
        return rc;
    *ret = res;
    return 0;
}

/* ---- expiry ---- */

/* The first index entry of @p tag due at or before @p now, copied to @p ret (the index key's time, request id and
 * attempt). 0, ADS_ENOT_FOUND when none is due, or an error. */
static int ledger_next_due(MDB_txn *txn, struct store *s, char tag, int64_t now, struct lkey *ret_key,
                           char ret_req[LEDGER_ID_MAX + 1], uint32_t *ret_attempt)
{
    MDB_cursor *c;
    MDB_val key, val;
    struct lkey k;
    const uint8_t *p;
    size_t req_len;
    int rc;

    lk_init(&k, tag);
    key = lk_val(&k);
    if ((rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_LEDGER), &c)) != 0)
        return store_err(rc);
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND || (rc == 0 && (key.mv_size < 2 || memcmp(key.mv_data, k.b, 2) != 0))) {
        mdb_cursor_close(c);
        return ADS_ENOT_FOUND;
    }
    if (rc != 0) {
        mdb_cursor_close(c);
        return store_err(rc);
    }
    p = key.mv_data;
    /* tag ':' at(8) request '\0' attempt(4) */
    if (key.mv_size < 2 + 8 + 2 + 4 || key.mv_size > LEDGER_KEY_MAX || p[key.mv_size - 5] != '\0') {
        mdb_cursor_close(c);
        return ADS_EDATA_INVALID;
    }
    if ((int64_t)lk_get_u64(p + 2) > now) {
        mdb_cursor_close(c);
        return ADS_ENOT_FOUND;
    }
    req_len = key.mv_size - 2 - 8 - 5;
    if (req_len == 0 || req_len > LEDGER_ID_MAX || memchr(p + 10, '\0', req_len) != NULL) {
        mdb_cursor_close(c);
        return ADS_EDATA_INVALID;
    }
    memcpy(ret_req, p + 10, req_len);
    ret_req[req_len] = '\0';
    *ret_attempt = lk_get_u32(p + key.mv_size - 4);
    memcpy(ret_key->b, p, key.mv_size);
    ret_key->n = key.mv_size;
    mdb_cursor_close(c);
    return 0;
}

int ledger_expire(MDB_txn *txn, struct store *s, int64_t now, uint32_t max, uint32_t *ret_released)
{
    char req[LEDGER_ID_MAX + 1];
    struct lkey k, rk;
    struct lresv rv;
    struct lperiod p;
    uint32_t attempt, released = 0;
    int rc;

    for (uint32_t i = 0; i < max; i++) {
        if ((rc = ledger_next_due(txn, s, 'X', now, &k, req, &attempt)) == ADS_ENOT_FOUND)
            break;
        if (rc != 0)
            return rc;
        rc = lresv_get(txn, s, req, attempt, &rv);
        if (rc == 0) {
            if ((rc = lperiod_get(txn, s, rv.cid, rv.period_start, &p)) != 0)
                return rc;
            p.reserved = p.reserved > rv.tokens ? p.reserved - rv.tokens : 0;
            if ((rc = lperiod_put(txn, s, rv.cid, rv.period_start, &p)) != 0)
                return rc;
            lkey_attempt(&rk, 'R', req, attempt);
            if ((rc = ldel(txn, s, &rk)) != 0)
                return rc;
            released++;
        } else if (rc != ADS_ENOT_FOUND) {
            return rc;
        }
        if ((rc = ldel(txn, s, &k)) != 0)
            return rc;
    }
    for (uint32_t i = 0; i < max; i++) {
        if ((rc = ledger_next_due(txn, s, 'Y', now, &k, req, &attempt)) == ADS_ENOT_FOUND)
            break;
        if (rc != 0)
            return rc;
        lkey_attempt(&rk, 'S', req, attempt);
        if ((rc = ldel(txn, s, &rk)) != 0 || (rc = ldel(txn, s, &k)) != 0)
            return rc;
    }
    if (ret_released != NULL)
        *ret_released = released;
    return 0;
}

/* ---- reading ---- */

int ledger_usage(MDB_txn *txn, struct store *s, const char *campaign_id, const struct ledger_pkg *pkg, int64_t now,
                 struct ledger_usage *ret)
{
    struct ledger_usage u = {0};
    struct lperiod p;
    int rc;

    if (!ledger_name_ok(campaign_id, LEDGER_ID_MAX) || !ledger_time_ok(now))
        return ADS_EINVAL;
    ledger_period(pkg, now, &u.period_start, &u.period_end);
    if ((rc = lperiod_get(txn, s, campaign_id, u.period_start, &p)) != 0)
        return rc;
    u.allowance = ledger_allowance(pkg, u.period_start, u.period_end, now);
    u.hard = pkg->hard;
    u.reserved = p.reserved;
    memcpy(u.tokens, p.tok, sizeof(u.tokens));
    u.settled = lperiod_settled(&p);
    u.remaining = u.settled + u.reserved < u.allowance ? u.allowance - u.settled - u.reserved : 0;
    u.overrun = u.settled > u.allowance ? u.settled - u.allowance : 0;
    u.estimated = p.estimated;
    u.money_micros = p.money;
    u.generations = p.generations;
    u.refusals = p.refusals;
    u.unreserved = p.unreserved;
    u.n_raised = p.n_raised;
    memcpy(u.raised, p.raised, sizeof(u.raised));
    *ret = u;
    return 0;
}

int ledger_days(MDB_txn *txn, struct store *s, const char *campaign_id, int32_t from_day, int32_t to_day,
                int (*cb)(const struct ledger_day *d, void *arg), void *arg)
{
    struct lkey k;
    MDB_cursor *c;
    MDB_val key, val;
    struct mpr r;
    struct ledger_day d;
    uint64_t format, f[LEDGER_KINDS + 3];
    size_t prefix;
    uint32_t n;
    int rc;

    if (!ledger_name_ok(campaign_id, LEDGER_ID_MAX))
        return ADS_EINVAL;
    if (from_day > to_day)
        return 0;
    lkey_day(&k, campaign_id, from_day, "", 0);
    prefix = k.n - 4;
    key = lk_val(&k);
    if ((rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_LEDGER), &c)) != 0)
        return store_err(rc);
    for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        const uint8_t *p = key.mv_data;
        bool ok;
        if (key.mv_size < prefix + 4 || memcmp(p, k.b, prefix) != 0)
            break;
        d.day = (int32_t)(lk_get_u32(p + prefix) ^ 0x80000000u);
        if (d.day > to_day)
            break;
        d.model = (const char *)p + prefix + 4;
        d.model_len = key.mv_size - prefix - 4;
        mpr_init(&r, val.mv_data, val.mv_size);
        ok = mpr_array(&r, &n) == 0 && n >= LEDGER_KINDS + 4 && mpr_u64(&r, &format) == 0 && format == LEDGER_FORMAT;
        for (int i = 0; i < LEDGER_KINDS + 3 && ok; i++)
            ok = mpr_u64(&r, &f[i]) == 0;
        if (!ok) {
            mdb_cursor_close(c);
            return ADS_EDATA_INVALID;
        }
        memcpy(d.tokens, f, sizeof(d.tokens));
        d.money_micros = f[LEDGER_KINDS];
        d.generations = f[LEDGER_KINDS + 1];
        d.estimated = f[LEDGER_KINDS + 2];
        if ((rc = cb(&d, arg)) != 0) {
            mdb_cursor_close(c);
            return rc;
        }
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

int ledger_alerts(MDB_txn *txn, struct store *s, uint64_t after_seq, uint32_t max,
                  int (*cb)(const struct ledger_alert *a, void *arg), void *arg)
{
    struct lkey k;
    MDB_cursor *c;
    MDB_val key, val;
    struct mpr r;
    struct ledger_alert a;
    uint64_t format, start, threshold, at;
    uint32_t n, seen = 0;
    int rc;

    if (after_seq == UINT64_MAX)
        return 0;
    lk_init(&k, 'A');
    lk_u64(&k, after_seq + 1);
    key = lk_val(&k);
    if ((rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_LEDGER), &c)) != 0)
        return store_err(rc);
    for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == 0 && seen < max;
         rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        const uint8_t *p = key.mv_data;
        if (key.mv_size != 10 || memcmp(p, "A:", 2) != 0)
            break;
        a.seq = lk_get_u64(p + 2);
        mpr_init(&r, val.mv_data, val.mv_size);
        if (mpr_array(&r, &n) != 0 || n < 7 || mpr_u64(&r, &format) != 0 || format != LEDGER_FORMAT ||
            mpr_str(&r, &a.campaign_id, &a.campaign_id_len) != 0 || mpr_u64(&r, &start) != 0 ||
            mpr_u64(&r, &threshold) != 0 || threshold > UINT32_MAX || mpr_u64(&r, &at) != 0 ||
            mpr_u64(&r, &a.tokens) != 0 || mpr_u64(&r, &a.allowance) != 0) {
            mdb_cursor_close(c);
            return ADS_EDATA_INVALID;
        }
        a.period_start = ledger_i64(start);
        a.threshold = (uint32_t)threshold;
        a.at = ledger_i64(at);
        seen++;
        if ((rc = cb(&a, arg)) != 0) {
            mdb_cursor_close(c);
            return rc;
        }
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_err(rc);
}
