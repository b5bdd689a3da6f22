/*
 * ledger periods: packages read from campaign documents, and the calendar
 * arithmetic that cuts time into a package's periods in its campaign's zone.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/doc.h"
#include "adsmith/ledger.h"

#define LEDGER_ZONES_MAX 1024
#define LEDGER_ZONE_NAME_MAX 64
#define LEDGER_DAY_S 86400

struct ledger_zone_ent {
    char name[LEDGER_ZONE_NAME_MAX + 1];
    struct tz *zone;
};

struct ledger_zones {
    pthread_mutex_t lock;
    struct ledger_zone_ent *ents; /* under lock; entries never move once their zone is handed out */
    uint32_t n, cap;
};

int ledger_zones_new(struct ledger_zones **ret)
{
    struct ledger_zones *zc = calloc(1, sizeof(*zc));

    if (zc == NULL)
        return ADS_ENOMEM;
    pthread_mutex_init(&zc->lock, NULL);
    *ret = zc;
    return 0;
}

void ledger_zones_free(struct ledger_zones *zc)
{
    if (zc == NULL)
        return;
    for (uint32_t i = 0; i < zc->n; i++)
        tz_free(zc->ents[i].zone);
    free(zc->ents);
    pthread_mutex_destroy(&zc->lock);
    free(zc);
}

int ledger_zones_get(struct ledger_zones *zc, const char *name, const struct tz **ret)
{
    struct tz *z;
    size_t len = strnlen(name, LEDGER_ZONE_NAME_MAX + 1);
    int rc = 0;

    if (len == 0 || len > LEDGER_ZONE_NAME_MAX)
        return ADS_ENOT_FOUND;
    pthread_mutex_lock(&zc->lock);
    for (uint32_t i = 0; i < zc->n; i++) {
        if (strcmp(zc->ents[i].name, name) == 0) {
            *ret = zc->ents[i].zone;
            pthread_mutex_unlock(&zc->lock);
            return 0;
        }
    }
    if (zc->n >= LEDGER_ZONES_MAX) {
        rc = ADS_EQUOTA_EXCEEDED;
    } else if (zc->n == zc->cap) {
        /* Entries hold pointers to zones, not the zones, so growing the array moves nothing handed out. */
        uint32_t cap = zc->cap == 0 ? 16 : zc->cap * 2;
        struct ledger_zone_ent *ents = realloc(zc->ents, cap * sizeof(*ents));
        if (ents == NULL) {
            rc = ADS_ENOMEM;
        } else {
            zc->ents = ents;
            zc->cap = cap;
        }
    }
    if (rc == 0 && (rc = tz_load(name, &z)) == 0) {
        memcpy(zc->ents[zc->n].name, name, len + 1);
        zc->ents[zc->n].zone = z;
        zc->n++;
        *ret = z;
    }
    pthread_mutex_unlock(&zc->lock);
    return rc;
}

/* ---- reading the package ---- */

static int ledger_doc_u64(const msgpack_object *map, const char *key, uint64_t max, uint64_t *ret)
{
    const msgpack_object *v = doc_map_get(map, key);

    if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > max)
        return ADS_EINVAL;
    *ret = v->via.u64;
    return 0;
}

static bool ledger_doc_str_is(const msgpack_object *v, const char *s)
{
    size_t n = strlen(s);

    return v != NULL && v->type == MSGPACK_OBJECT_STR && v->via.str.size == n && memcmp(v->via.str.ptr, s, n) == 0;
}

static int ledger_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

int ledger_pkg_from_doc(const msgpack_object *doc, struct ledger_zones *zc, struct ledger_pkg *ret)
{
    const msgpack_object *tp = doc_map_get(doc, "token_package"), *grant, *period, *limit, *ups, *th, *flight, *zn;
    char zname[LEDGER_ZONE_NAME_MAX + 1];
    struct ledger_pkg pkg;
    uint64_t v;
    int rc;

    if (tp == NULL)
        return ADS_ENOT_FOUND;
    memset(&pkg, 0, sizeof(pkg));
    grant = doc_map_get(tp, "grant");
    if (grant == NULL || tp->type != MSGPACK_OBJECT_MAP || grant->type != MSGPACK_OBJECT_MAP)
        return ADS_EINVAL;
    if ((rc = ledger_doc_u64(grant, "tokens", LEDGER_TOKENS_MAX, &pkg.grant)) != 0 || pkg.grant == 0 ||
        (rc = ledger_doc_u64(grant, "anchor", LEDGER_TIME_MAX, &v)) != 0)
        return ADS_EINVAL;
    pkg.anchor = (int64_t)v;
    period = doc_map_get(grant, "period");
    if (ledger_doc_str_is(period, "day"))
        pkg.period = LEDGER_DAY;
    else if (ledger_doc_str_is(period, "week"))
        pkg.period = LEDGER_WEEK;
    else if (ledger_doc_str_is(period, "month"))
        pkg.period = LEDGER_MONTH;
    else
        return ADS_EINVAL;
    limit = doc_map_get(tp, "limit");
    if (ledger_doc_str_is(limit, "hard"))
        pkg.hard = true;
    else if (!ledger_doc_str_is(limit, "soft"))
        return ADS_EINVAL;
    if ((ups = doc_map_get(tp, "top_ups")) != NULL) {
        if (ups->type != MSGPACK_OBJECT_ARRAY || ups->via.array.size > LEDGER_MAX_TOP_UPS)
            return ADS_EINVAL;
        for (uint32_t i = 0; i < ups->via.array.size; i++) {
            const msgpack_object *u = &ups->via.array.ptr[i];
            if (u->type != MSGPACK_OBJECT_MAP ||
                ledger_doc_u64(u, "tokens", LEDGER_TOKENS_MAX, &pkg.top_ups[i].tokens) != 0 ||
                ledger_doc_u64(u, "at", LEDGER_TIME_MAX, &v) != 0)
                return ADS_EINVAL;
            pkg.top_ups[i].at = (int64_t)v;
        }
        pkg.n_top_ups = ups->via.array.size;
    }
    if ((th = doc_map_get(tp, "alert_thresholds")) != NULL) {
        if (th->type != MSGPACK_OBJECT_ARRAY || th->via.array.size > LEDGER_MAX_THRESHOLDS)
            return ADS_EINVAL;
        for (uint32_t i = 0; i < th->via.array.size; i++) {
            const msgpack_object *t = &th->via.array.ptr[i];
            if (t->type != MSGPACK_OBJECT_POSITIVE_INTEGER || t->via.u64 < 1 || t->via.u64 > 1000)
                return ADS_EINVAL;
            pkg.thresholds[i] = (uint32_t)t->via.u64;
        }
        pkg.n_thresholds = th->via.array.size;
    } else {
        pkg.thresholds[0] = 80;
        pkg.thresholds[1] = 100;
        pkg.n_thresholds = 2;
    }
    qsort(pkg.thresholds, pkg.n_thresholds, sizeof(pkg.thresholds[0]), ledger_cmp_u32);
    if (pkg.n_thresholds > 1) {
        uint32_t n = 1;
        for (uint32_t i = 1; i < pkg.n_thresholds; i++) {
            if (pkg.thresholds[i] != pkg.thresholds[n - 1])
                pkg.thresholds[n++] = pkg.thresholds[i];
        }
        pkg.n_thresholds = n;
    }
    flight = doc_map_get(doc, "flight");
    zn = doc_map_get(flight, "time_zone");
    if (zn == NULL || zn->type != MSGPACK_OBJECT_STR || zn->via.str.size == 0 ||
        zn->via.str.size > LEDGER_ZONE_NAME_MAX)
        return ADS_EINVAL;
    memcpy(zname, zn->via.str.ptr, zn->via.str.size);
    zname[zn->via.str.size] = '\0';
    if ((rc = ledger_zones_get(zc, zname, &pkg.zone)) != 0)
        return rc;
    *ret = pkg;
    return 0;
}

/* ---- calendar ---- */

static int64_t ledger_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d, counted in
 * 400-year cycles of 146097 days with the year starting in March, so that the
 * leap day is the cycle year's last day. */
static int64_t ledger_days_of(int64_t y, int m, int d)
{
    int64_t yy = m <= 2 ? y - 1 : y;
    int64_t cycle = ledger_floor_div(yy, 400);
    int64_t yoc = yy - cycle * 400;            /* year of cycle, 0..399 */
    int64_t mar = m > 2 ? m - 3 : m + 9;       /* months since March */
    int64_t doy = (153 * mar + 2) / 5 + d - 1; /* day of the March-based year */
    int64_t doc = yoc * 365 + yoc / 4 - yoc / 100 + doy;

    return cycle * 146097 + doc - 719468; /* 719468: days from 0000-03-01 to 1970-01-01 */
}

/* The inverse of ledger_days_of(). */
static void ledger_date_of(int64_t days, int64_t *ret_y, int *ret_m, int *ret_d)
{
    int64_t z = days + 719468;
    int64_t cycle = ledger_floor_div(z, 146097);
    int64_t doc = z - cycle * 146097;
    int64_t yoc = (doc - doc / 1460 + doc / 36524 - doc / 146096) / 365;
    int64_t doy = doc - (365 * yoc + yoc / 4 - yoc / 100);
    int64_t mar = (5 * doy + 2) / 153;
    int m = (int)(mar < 10 ? mar + 3 : mar - 9);

    *ret_d = (int)(doy - (153 * mar + 2) / 5 + 1);
    *ret_m = m;
    *ret_y = yoc + cycle * 400 + (m <= 2);
}

static int ledger_month_days(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : len[m - 1];
}

/* The instant whose wall-clock time in @p z is @p local (seconds since the
 * local epoch). The offsets a day before and a day after are the candidates;
 * a time both fit (a DST fold) is taken at its first occurrence, a time none
 * fits (a DST gap) is read with the offset before the gap, which moves it
 * forward by the gap's length. */
static int64_t ledger_utc_of_local(const struct tz *z, int64_t local)
{
    int32_t before = tz_offset_at(z, local - LEDGER_DAY_S), after = tz_offset_at(z, local + LEDGER_DAY_S);
    bool b_ok = tz_offset_at(z, local - before) == before, a_ok = tz_offset_at(z, local - after) == after;

    if (b_ok && a_ok)
        return local - (before > after ? before : after);
    if (a_ok)
        return local - after;
    return local - before;
}

static int64_t ledger_local_of(const struct tz *z, int64_t t)
{
    return t + tz_offset_at(z, t);
}

/* Start of period @p k (k >= 0) of @p pkg. */
static int64_t ledger_period_start(const struct ledger_pkg *pkg, int64_t k)
{
    int64_t la, aday, tod, y, total;
    int m, d;

    if (k == 0)
        return pkg->anchor;
    la = ledger_local_of(pkg->zone, pkg->anchor);
    aday = ledger_floor_div(la, LEDGER_DAY_S);
    tod = la - aday * LEDGER_DAY_S;
    switch (pkg->period) {
    case LEDGER_DAY: return ledger_utc_of_local(pkg->zone, (aday + k) * LEDGER_DAY_S + tod);
    case LEDGER_WEEK: return ledger_utc_of_local(pkg->zone, (aday + 7 * k) * LEDGER_DAY_S + tod);
    case LEDGER_MONTH:
    default:
        ledger_date_of(aday, &y, &m, &d);
        total = y * 12 + (m - 1) + k;
        y = ledger_floor_div(total, 12);
        m = (int)(total - y * 12) + 1;
        if (d > ledger_month_days(y, m))
            d = ledger_month_days(y, m);
        return ledger_utc_of_local(pkg->zone, ledger_days_of(y, m, d) * LEDGER_DAY_S + tod);
    }
}

void ledger_period(const struct ledger_pkg *pkg, int64_t now, int64_t *ret_start, int64_t *ret_end)
{
    int64_t k = 0;

    if (now > pkg->anchor) {
        int64_t aday = ledger_floor_div(ledger_local_of(pkg->zone, pkg->anchor), LEDGER_DAY_S);
        int64_t nday = ledger_floor_div(ledger_local_of(pkg->zone, now), LEDGER_DAY_S);
        int64_t ay, ny;
        int am, ad, nm, nd;

        /* An estimate from the local dates, off by at most one, then corrected. */
        if (pkg->period == LEDGER_DAY) {
            k = nday - aday;
        } else if (pkg->period == LEDGER_WEEK) {
            k = (nday - aday) / 7;
        } else {
            ledger_date_of(aday, &ay, &am, &ad);
            ledger_date_of(nday, &ny, &nm, &nd);
            k = (ny * 12 + nm) - (ay * 12 + am);
        }
        if (k < 0)
            k = 0;
        while (k > 0 && ledger_period_start(pkg, k) > now)
            k--;
        while (ledger_period_start(pkg, k + 1) <= now)
            k++;
    }
    *ret_start = ledger_period_start(pkg, k);
    *ret_end = ledger_period_start(pkg, k + 1);
}

uint64_t ledger_allowance(const struct ledger_pkg *pkg, int64_t start, int64_t end, int64_t now)
{
    uint64_t sum = pkg->grant;
    bool first = start <= pkg->anchor;

    for (uint32_t i = 0; i < pkg->n_top_ups; i++) {
        int64_t at = pkg->top_ups[i].at;
        if ((at >= start || first) && at < end && at <= now)
            sum += pkg->top_ups[i].tokens;
    }
    return sum;
}

int32_t ledger_local_day(const struct ledger_pkg *pkg, int64_t t)
{
    return (int32_t)ledger_floor_div(ledger_local_of(pkg->zone, t), LEDGER_DAY_S);
}
