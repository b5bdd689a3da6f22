/* POST /v1/score's module (score.h): a request in, calibrated scores and ranks out. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/bid.h"
#include "adsmith/ctr.h"
#include "adsmith/ortb.h"
#include "adsmith/score.h"

#define SCORE_TABLE_SLOTS                                                                                              \
    2048 /* open-addressing table of candidate ids: a power of two >= 2 x SCORE_MAX_CANDIDATES                         \
          */
#define SCORE_TS_MAX 32503680000LL /* the year 3000, as the profile's times */

_Static_assert(SCORE_TABLE_SLOTS >= 2 * SCORE_MAX_CANDIDATES, "the id table must stay at most half full");

struct score_cand {
    struct cidx_str campaign;
    int32_t creative; /* enum cidx_creative or SCORE_CREATIVE_ANY */
};

struct score_req {
    /* user */
    struct cidx_str user_id, user_source;
    bool has_profile;
    struct profile profile; /* the inline one, decoded; then encoded into enc and opened as view */
    char enc[PROF_ENCODED_MAX + 1];
    struct prof_view view;

    /* context */
    struct cidx_str site, app, domain, os, country, region, language, deal;
    struct cidx_str categories[SCORE_MAX_CATEGORIES];
    uint32_t ncategories;
    int64_t cattax;
    int32_t device, pos, conn; /* -1: not given */
    int32_t hour;              /* -1: from ts or the clock */
    int64_t ts;                /* 0: the clock */
    int32_t utcoffset;         /* minutes */
    int32_t format;            /* enum cidx_creative, or SCORE_CREATIVE_ANY */
    uint16_t w, h;             /* context.size; 0x0 none */
    char country2[3], region_code[CIDX_REGION_MAX + 1];

    /* privacy: enum bid_privacy bits the request's signals raise */
    uint32_t privacy;

    uint32_t ncand;
    struct score_cand cand[SCORE_MAX_CANDIDATES];
};

/* Per-call memory of score_run(): in the result, so that a request stays const. */
struct score_scratch {
    int32_t slot[SCORE_TABLE_SLOTS]; /* first candidate of an id, -1 empty */
    uint64_t hash[SCORE_TABLE_SLOTS];
    int32_t next_same[SCORE_MAX_CANDIDATES]; /* next candidate with the same campaign id, -1 */
    uint64_t words[CIDX_WORDS_MAX];
};

static const char *const creative_names[CIDX_CREATIVE_N] = {"banner", "video", "native"};

const char *score_reason_name(enum score_reason r)
{
    switch (r) {
    case SCORE_UNKNOWN_CAMPAIGN: return "unknown_campaign";
    case SCORE_NOT_ACTIVE: return "not_active";
    case SCORE_NO_CREATIVE: return "no_creative";
    case SCORE_NOT_TARGETED: return "not_targeted";
    default: return "";
    }
}

int score_req_new(struct score_req **ret)
{
    struct score_req *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return ADS_ENOMEM;
    *ret = q;
    return 0;
}

void score_req_free(struct score_req *q)
{
    free(q);
}

void score_req_user(const struct score_req *q, const char **ret_id, size_t *ret_len, const char **ret_source,
                    size_t *ret_source_len)
{
    *ret_id = q->user_id.len > 0 ? q->user_id.ptr : NULL;
    *ret_len = q->user_id.len;
    *ret_source = q->user_source.len > 0 ? q->user_source.ptr : NULL;
    *ret_source_len = q->user_source.len;
}

/* ---- parsing ---- */

static bool key_is(const msgpack_object *k, const char *name)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) &&
           memcmp(k->via.str.ptr, name, k->via.str.size) == 0;
}

static int fail(struct ads_diag *d, const char *pointer, const char *fmt, const char *arg)
{
    return ads_diag_set(d, ADS_EINVAL, pointer, fmt, arg);
}

/* A string of 1..@p max bytes without control characters (doc_parse() already checked UTF-8). */
static int get_str(const msgpack_object *v, size_t max, const char *ptr, struct cidx_str *ret, struct ads_diag *d)
{
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 || v->via.str.size > max)
        return ads_diag_set(d, ADS_EINVAL, ptr, "must be a string of 1 to %zu bytes", max);
    for (uint32_t i = 0; i < v->via.str.size; i++)
        if ((unsigned char)v->via.str.ptr[i] < 0x20 || v->via.str.ptr[i] == 0x7f)
            return fail(d, ptr, "must not hold control characters%s", "");
    *ret = (struct cidx_str){v->via.str.ptr, v->via.str.size};
    return 0;
}

/* An integer in [lo, hi], written as an integer. */
static int get_int(const msgpack_object *v, int64_t lo, int64_t hi, const char *ptr, int64_t *ret, struct ads_diag *d)
{
    int64_t x;

    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= (uint64_t)INT64_MAX)
        x = (int64_t)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        x = v->via.i64;
    else
        return ads_diag_set(d, ADS_EINVAL, ptr, "must be an integer from %lld to %lld (no fraction or exponent)",
                            (long long)lo, (long long)hi);
    if (x < lo || x > hi)
        return ads_diag_set(d, ADS_EINVAL, ptr, "must be from %lld to %lld", (long long)lo, (long long)hi);
    *ret = x;
    return 0;
}

static int get_i32(const msgpack_object *v, int64_t lo, int64_t hi, const char *ptr, int32_t *ret, struct ads_diag *d)
{
    int64_t x = 0;
    int rc = get_int(v, lo, hi, ptr, &x, d);

    if (rc == 0)
        *ret = (int32_t)x;
    return rc;
}

static int creative_of(const msgpack_object *v, const char *ptr, int32_t *ret, struct ads_diag *d)
{
    for (int32_t k = 0; k < CIDX_CREATIVE_N; k++)
        if (v->type == MSGPACK_OBJECT_STR && v->via.str.size == strlen(creative_names[k]) &&
            memcmp(v->via.str.ptr, creative_names[k], v->via.str.size) == 0) {
            *ret = k;
            return 0;
        }
    return fail(d, ptr, "must be \"banner\", \"video\" or \"native\"%s", "");
}

/* "WxH" with 1..65535 each. */
static int size_of(const msgpack_object *v, const char *ptr, uint16_t *ret_w, uint16_t *ret_h, struct ads_diag *d)
{
    char t[16];
    unsigned long w, h;
    char *end;

    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size < 3 || v->via.str.size >= sizeof(t))
        return fail(d, ptr, "must be a size \"WxH\", e.g. \"300x250\"%s", "");
    memcpy(t, v->via.str.ptr, v->via.str.size);
    t[v->via.str.size] = '\0';
    if (!isdigit((unsigned char)t[0]))
        return fail(d, ptr, "must be a size \"WxH\", e.g. \"300x250\"%s", "");
    w = strtoul(t, &end, 10);
    if (*end != 'x' || !isdigit((unsigned char)end[1]))
        return fail(d, ptr, "must be a size \"WxH\", e.g. \"300x250\"%s", "");
    h = strtoul(end + 1, &end, 10);
    if (*end != '\0' || w == 0 || h == 0 || w > 65535 || h > 65535)
        return fail(d, ptr, "must be a size \"WxH\" with W and H from 1 to 65535%s", "");
    *ret_w = (uint16_t)w;
    *ret_h = (uint16_t)h;
    return 0;
}

static int parse_user(struct score_req *q, const msgpack_object *u, struct ads_diag *d)
{
    const msgpack_object *id = NULL, *source = NULL, *profile = NULL;
    struct buf b;
    int rc;

    if (u->type != MSGPACK_OBJECT_MAP)
        return fail(d, "/user", "must be an object: {\"id\": \"...\"} or {\"profile\": {...}}%s", "");
    for (uint32_t i = 0; i < u->via.map.size; i++) {
        const msgpack_object *k = &u->via.map.ptr[i].key, *v = &u->via.map.ptr[i].val;
        if (key_is(k, "id"))
            id = v;
        else if (key_is(k, "source"))
            source = v;
        else if (key_is(k, "profile"))
            profile = v;
        else
            return ads_diag_set(d, ADS_EINVAL, "/user", "has an unknown member \"%.*s\"; allowed: id, source, profile",
                                (int)(k->via.str.size > 64 ? 64 : k->via.str.size), k->via.str.ptr);
    }
    if ((id != NULL) == (profile != NULL))
        return fail(d, "/user", "must hold either \"id\" (a stored user) or \"profile\" (an inline one)%s", "");
    if (source != NULL && id == NULL)
        return fail(d, "/user/source", "goes with \"id\" (the id is an alias of that source)%s", "");
    if (id != NULL) {
        if ((rc = get_str(id, PROF_ID_MAX, "/user/id", &q->user_id, d)) != 0)
            return rc;
        if (source != NULL && (rc = get_str(source, PROF_SOURCE_MAX, "/user/source", &q->user_source, d)) != 0)
            return rc;
        return 0;
    }
    /* An inline profile: the PUT /v1/users document; its id, when given, names it (never looked up). */
    {
        const msgpack_object *pid = doc_map_get(profile, "id");
        const char *name = "inline";
        size_t len = 6;
        if (pid != NULL && pid->type == MSGPACK_OBJECT_STR && prof_check_id(pid->via.str.ptr, pid->via.str.size) == 0) {
            name = pid->via.str.ptr;
            len = pid->via.str.size;
        }
        if ((rc = prof_from_doc(profile, name, len, &q->profile, d)) != 0) {
            char inner[sizeof(d->pointer)];
            if (d != NULL) {
                snprintf(inner, sizeof(inner), "%s", d->pointer);
                snprintf(d->pointer, sizeof(d->pointer), "/user/profile%.110s", inner);
            }
            return rc;
        }
    }
    buf_init(&b, q->enc, sizeof(q->enc));
    if ((rc = prof_encode(&q->profile, &b)) != 0 || b.overflow || (rc = prof_view_open(b.base, b.len, &q->view)) != 0)
        return ads_diag_set(d, rc != 0 ? rc : ADS_EINTERNAL, "/user/profile", "the profile could not be encoded");
    q->has_profile = true;
    return 0;
}

static int parse_categories(struct score_req *q, const msgpack_object *v, struct ads_diag *d)
{
    char ptr[48];

    if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > SCORE_MAX_CATEGORIES)
        return ads_diag_set(d, ADS_EINVAL, "/context/category", "must be an array of at most %d category ids",
                            SCORE_MAX_CATEGORIES);
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        int rc;
        snprintf(ptr, sizeof(ptr), "/context/category/%u", i);
        if ((rc = get_str(&v->via.array.ptr[i], CIDX_CATEGORY_MAX, ptr, &q->categories[i], d)) != 0)
            return rc;
    }
    q->ncategories = v->via.array.size;
    return 0;
}

/* Country as alpha-2 when known (the bid path's q->country), region as "CC-R" (its q->region). */
static void normalise_geo(struct score_req *q)
{
    const char *cc2 = q->country.len > 0 ? ortb_country_alpha2(q->country.ptr, q->country.len) : NULL;

    if (cc2 != NULL) {
        memcpy(q->country2, cc2, 2);
        q->country2[2] = '\0';
        q->country = (struct cidx_str){q->country2, 2};
    }
    if (q->region.len == 0)
        return;
    if (memchr(q->region.ptr, '-', q->region.len) != NULL)
        return;
    if (cc2 != NULL && q->region.len <= CIDX_REGION_MAX - 3) {
        memcpy(q->region_code, cc2, 2);
        q->region_code[2] = '-';
        memcpy(q->region_code + 3, q->region.ptr, q->region.len);
        q->region = (struct cidx_str){q->region_code, 3 + q->region.len};
    }
}

static int parse_context(struct score_req *q, const msgpack_object *c, struct ads_diag *d)
{
    static const char *const names = "site, app, domain, category, cattax, device, os, country, region, language, "
                                     "hour, ts, utcoffset, format, size, pos, conn, deal";
    char ptr[48];
    int rc = 0;

    if (c->type != MSGPACK_OBJECT_MAP)
        return fail(d, "/context", "must be an object of context fields (%s)", names);
    for (uint32_t i = 0; i < c->via.map.size && rc == 0; i++) {
        const msgpack_object *k = &c->via.map.ptr[i].key, *v = &c->via.map.ptr[i].val;
        struct buf pb;

        buf_init(&pb, ptr, sizeof(ptr));
        buf_puts(&pb, "/context");
        doc_pointer_key(&pb, k->via.str.ptr, k->via.str.size > 32 ? 32 : k->via.str.size);
        if (key_is(k, "site"))
            rc = get_str(v, SCORE_TOKEN_MAX, ptr, &q->site, d);
        else if (key_is(k, "app"))
            rc = get_str(v, SCORE_TOKEN_MAX, ptr, &q->app, d);
        else if (key_is(k, "domain"))
            rc = get_str(v, CIDX_DOMAIN_MAX, ptr, &q->domain, d);
        else if (key_is(k, "category"))
            rc = parse_categories(q, v, d);
        else if (key_is(k, "cattax"))
            rc = get_int(v, 1, 1000, ptr, &q->cattax, d);
        else if (key_is(k, "device"))
            rc = get_i32(v, 1, 8, ptr, &q->device, d);
        else if (key_is(k, "os"))
            rc = get_str(v, CIDX_OS_MAX, ptr, &q->os, d);
        else if (key_is(k, "country")) {
            rc = get_str(v, CIDX_COUNTRY_MAX, ptr, &q->country, d);
            if (rc == 0 && q->country.len < 2)
                rc = fail(d, ptr, "must be an ISO 3166-1 alpha-2 or alpha-3 code%s", "");
        } else if (key_is(k, "region"))
            rc = get_str(v, PROF_ATTR_MAX, ptr, &q->region, d);
        else if (key_is(k, "language"))
            rc = get_str(v, CIDX_LANGUAGE_MAX, ptr, &q->language, d);
        else if (key_is(k, "hour"))
            rc = get_i32(v, 0, 23, ptr, &q->hour, d);
        else if (key_is(k, "ts"))
            rc = get_int(v, 1, SCORE_TS_MAX, ptr, &q->ts, d);
        else if (key_is(k, "utcoffset"))
            rc = get_i32(v, -24 * 60, 24 * 60, ptr, &q->utcoffset, d);
        else if (key_is(k, "format"))
            rc = creative_of(v, ptr, &q->format, d);
        else if (key_is(k, "size"))
            rc = size_of(v, ptr, &q->w, &q->h, d);
        else if (key_is(k, "pos"))
            rc = get_i32(v, 0, 7, ptr, &q->pos, d);
        else if (key_is(k, "conn"))
            rc = get_i32(v, 0, 7, ptr, &q->conn, d);
        else if (key_is(k, "deal"))
            rc = get_str(v, SCORE_DEAL_MAX, ptr, &q->deal, d);
        else
            rc = fail(d, ptr, "is not a context field; allowed: %s", names);
    }
    if (rc == 0)
        normalise_geo(q);
    return rc;
}

static int parse_privacy(struct score_req *q, const msgpack_object *p, struct ads_diag *d)
{
    int32_t gdpr = 0, coppa = 0, lmt = 0, dnt = 0;
    struct cidx_str consent = {NULL, 0}, usp = {NULL, 0};
    char ptr[48];
    int rc = 0;

    if (p->type != MSGPACK_OBJECT_MAP)
        return fail(d, "/privacy", "must be an object: gdpr, consent, us_privacy, coppa, lmt, dnt%s", "");
    for (uint32_t i = 0; i < p->via.map.size && rc == 0; i++) {
        const msgpack_object *k = &p->via.map.ptr[i].key, *v = &p->via.map.ptr[i].val;
        struct buf pb;
        buf_init(&pb, ptr, sizeof(ptr));
        buf_puts(&pb, "/privacy");
        doc_pointer_key(&pb, k->via.str.ptr, k->via.str.size > 32 ? 32 : k->via.str.size);
        if (key_is(k, "gdpr"))
            rc = get_i32(v, 0, 1, ptr, &gdpr, d);
        else if (key_is(k, "coppa"))
            rc = get_i32(v, 0, 1, ptr, &coppa, d);
        else if (key_is(k, "lmt"))
            rc = get_i32(v, 0, 1, ptr, &lmt, d);
        else if (key_is(k, "dnt"))
            rc = get_i32(v, 0, 1, ptr, &dnt, d);
        else if (key_is(k, "consent"))
            rc = v->type == MSGPACK_OBJECT_STR && v->via.str.size <= 4096
                     ? (consent = (struct cidx_str){v->via.str.ptr, v->via.str.size}, 0)
                     : fail(d, ptr, "must be the TCF consent string (at most 4096 bytes)%s", "");
        else if (key_is(k, "us_privacy"))
            rc = v->type == MSGPACK_OBJECT_STR && v->via.str.size == 4
                     ? (usp = (struct cidx_str){v->via.str.ptr, v->via.str.size}, 0)
                     : fail(d, ptr, "must be a 4-character US Privacy string, e.g. \"1YNN\"%s", "");
        else
            rc = fail(d, ptr, "is not a privacy signal; allowed: gdpr, consent, us_privacy, coppa, lmt, dnt%s", "");
    }
    if (rc != 0)
        return rc;
    /* The bid path's rules (bid_privacy()), on the same signals. */
    if (coppa == 1)
        q->privacy |= BID_PRIV_COPPA;
    if (gdpr == 1 && consent.len == 0)
        q->privacy |= BID_PRIV_GDPR;
    if (usp.len >= 3 && usp.ptr[0] == '1' && (usp.ptr[2] == 'Y' || usp.ptr[2] == 'y'))
        q->privacy |= BID_PRIV_USP;
    if (lmt == 1 || dnt == 1)
        q->privacy |= BID_PRIV_LMT;
    return 0;
}

static int parse_candidates(struct score_req *q, const msgpack_object *l, struct ads_diag *d)
{
    char ptr[64];

    if (l->type != MSGPACK_OBJECT_ARRAY || l->via.array.size == 0)
        return ads_diag_set(d, ADS_EINVAL, "/candidates",
                            "must be an array of 1 to %d candidates {\"campaign\": \"id\", \"creative\": \"banner\"}",
                            SCORE_MAX_CANDIDATES);
    if (l->via.array.size > SCORE_MAX_CANDIDATES)
        return ads_diag_set(d, ADS_EBODY_TOO_LARGE, "/candidates",
                            "has %u candidates; at most %d per request: split the list", l->via.array.size,
                            SCORE_MAX_CANDIDATES);
    for (uint32_t i = 0; i < l->via.array.size; i++) {
        const msgpack_object *c = &l->via.array.ptr[i];
        struct score_cand *sc = &q->cand[i];
        bool have_id = false;
        int rc;

        sc->creative = SCORE_CREATIVE_ANY;
        snprintf(ptr, sizeof(ptr), "/candidates/%u", i);
        if (c->type != MSGPACK_OBJECT_MAP)
            return fail(d, ptr, "must be an object {\"campaign\": \"id\", \"creative\": \"banner\"}%s", "");
        for (uint32_t k = 0; k < c->via.map.size; k++) {
            const msgpack_object *key = &c->via.map.ptr[k].key, *v = &c->via.map.ptr[k].val;
            if (key_is(key, "campaign")) {
                snprintf(ptr, sizeof(ptr), "/candidates/%u/campaign", i);
                if ((rc = get_str(v, CIDX_ID_MAX, ptr, &sc->campaign, d)) != 0)
                    return rc;
                have_id = true;
            } else if (key_is(key, "creative")) {
                snprintf(ptr, sizeof(ptr), "/candidates/%u/creative", i);
                if ((rc = creative_of(v, ptr, &sc->creative, d)) != 0)
                    return rc;
            } else {
                snprintf(ptr, sizeof(ptr), "/candidates/%u/%.*s", i,
                         (int)(key->via.str.size > 32 ? 32 : key->via.str.size), key->via.str.ptr);
                return fail(d, ptr, "is not a candidate member; allowed: campaign, creative%s", "");
            }
        }
        if (!have_id) {
            snprintf(ptr, sizeof(ptr), "/candidates/%u/campaign", i);
            return fail(d, ptr, "is required: the campaign id to score%s", "");
        }
    }
    q->ncand = l->via.array.size;
    return 0;
}

int score_req_parse(struct score_req *q, const msgpack_object *doc, struct ads_diag *ret_diag)
{
    const msgpack_object *user = NULL, *context = NULL, *privacy = NULL, *cands = NULL;
    int rc;

    memset(q, 0, offsetof(struct score_req, profile));
    memset(&q->site, 0, offsetof(struct score_req, cand) - offsetof(struct score_req, site));
    q->device = q->pos = q->conn = q->hour = -1;
    q->format = SCORE_CREATIVE_ANY;
    q->cattax = 1; /* OpenRTB 2.6's default: IAB Content Category Taxonomy 1.0 */
    if (doc->type != MSGPACK_OBJECT_MAP)
        return fail(ret_diag, "", "the body must be an object: {\"user\", \"context\", \"candidates\", \"privacy\"}%s",
                    "");
    for (uint32_t i = 0; i < doc->via.map.size; i++) {
        const msgpack_object *k = &doc->via.map.ptr[i].key, *v = &doc->via.map.ptr[i].val;
        if (key_is(k, "user"))
            user = v;
        else if (key_is(k, "context"))
            context = v;
        else if (key_is(k, "privacy"))
            privacy = v;
        else if (key_is(k, "candidates"))
            cands = v;
        else {
            char ptr[48];
            struct buf pb;
            buf_init(&pb, ptr, sizeof(ptr));
            doc_pointer_key(&pb, k->via.str.ptr, k->via.str.size > 32 ? 32 : k->via.str.size);
            return fail(ret_diag, ptr,
                        "is not a member of a score request; allowed: user, context, privacy, "
                        "candidates%s",
                        "");
        }
    }
    if (cands == NULL)
        return fail(ret_diag, "/candidates", "is required: a list of {\"campaign\": \"id\"}%s", "");
    if ((rc = parse_candidates(q, cands, ret_diag)) != 0)
        return rc;
    if (user != NULL && (rc = parse_user(q, user, ret_diag)) != 0)
        return rc;
    if (context != NULL && (rc = parse_context(q, context, ret_diag)) != 0)
        return rc;
    if (privacy != NULL && (rc = parse_privacy(q, privacy, ret_diag)) != 0)
        return rc;
    return 0;
}

/* ---- features ---- */

static void add_str(struct rank_req *r, uint32_t f, struct cidx_str s)
{
    if (s.len > 0)
        (void)rank_req_add(r, f, s.ptr, s.len);
}

static void add_int(struct rank_req *r, uint32_t f, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%lld", (long long)v);
    (void)rank_req_add(r, f, t, (size_t)n);
}

static void context_features(struct rank_req *r, const struct score_req *q, int64_t now)
{
    int64_t local = (q->ts > 0 ? q->ts : now) + (int64_t)q->utcoffset * 60;

    add_str(r, RANK_F_SITE, q->site);
    add_str(r, RANK_F_APP, q->app);
    add_str(r, RANK_F_DOMAIN, q->domain);
    for (uint32_t i = 0; i < q->ncategories; i++)
        add_str(r, RANK_F_CATEGORY, q->categories[i]);
    if (q->device > 0)
        add_int(r, RANK_F_DEVICE, q->device);
    add_str(r, RANK_F_OS, q->os);
    add_str(r, RANK_F_COUNTRY, q->country);
    add_str(r, RANK_F_REGION, q->region);
    add_int(r, RANK_F_HOUR, q->hour >= 0 ? q->hour : ((local % 86400) + 86400) % 86400 / 3600);
    if (q->pos >= 0)
        add_int(r, RANK_F_POS, q->pos);
    if (q->conn >= 0)
        add_int(r, RANK_F_CONN, q->conn);
    add_str(r, RANK_F_DEAL, q->deal);
}

/* The request part with the impression features of creative format @p k. */
static void imp_features(struct rank_req *r, const struct score_req *q, int32_t k)
{
    char t[16];

    (void)rank_req_add(r, RANK_F_FORMAT, creative_names[k], strlen(creative_names[k]));
    if (k != CIDX_CREATIVE_NATIVE && q->w > 0 && q->h > 0) {
        int n = snprintf(t, sizeof(t), "%ux%u", (unsigned)q->w, (unsigned)q->h);
        (void)rank_req_add(r, RANK_F_SIZE, t, (size_t)n);
    }
}

static void cand_features(struct rank_cand *c, const struct cidx_feat *f, int32_t k)
{
    rank_cand_init(c);
    (void)rank_cand_add_token(c, RANK_F_CAMPAIGN, f->campaign);
    (void)rank_cand_add_token(c, RANK_F_ADVERTISER, f->advertiser);
    (void)rank_cand_add_token(c, RANK_F_CREATIVE, f->creative[k]);
    for (uint32_t i = 0; i < f->ncategories; i++)
        (void)rank_cand_add_token(c, RANK_F_CAMP_CATEGORY, f->categories[i]);
}

/* ---- scoring ---- */

static const uint32_t fmt_bit[CIDX_CREATIVE_N] = {CIDX_FMT_BANNER, CIDX_FMT_VIDEO, CIDX_FMT_NATIVE};

/* The format candidate @p sc is scored with for campaign brief @p b: the one asked for, else the context's, else
 * the first the campaign has; SCORE_CREATIVE_ANY when it has none of them. */
static int32_t pick_creative(const struct score_req *q, const struct score_cand *sc, const struct cidx_brief *b)
{
    if (sc->creative != SCORE_CREATIVE_ANY)
        return (b->formats & fmt_bit[sc->creative]) != 0 ? sc->creative : SCORE_CREATIVE_ANY;
    if (q->format != SCORE_CREATIVE_ANY && (b->formats & fmt_bit[q->format]) != 0)
        return q->format;
    for (int32_t k = 0; k < CIDX_CREATIVE_N; k++)
        if ((b->formats & fmt_bit[k]) != 0)
            return k;
    return SCORE_CREATIVE_ANY;
}

/* Finds each candidate's campaign in the index: one pass over the index's hashed ids (cidx_feats()). */
static void find_campaigns(const struct score_req *q, const struct cidx *ix, struct score_scratch *s,
                           struct score_result *res)
{
    const uint32_t mask = SCORE_TABLE_SLOTS - 1;
    const struct cidx_feat *feats;
    uint32_t n;

    for (uint32_t i = 0; i < SCORE_TABLE_SLOTS; i++)
        s->slot[i] = -1;
    for (uint32_t i = 0; i < q->ncand; i++) {
        uint64_t h = ctr_hash(q->cand[i].campaign.ptr, q->cand[i].campaign.len, 0);
        uint32_t k = (uint32_t)h & mask;

        res->items[i].index = -1;
        s->next_same[i] = -1;
        /* Probe; an equal id joins the first candidate's chain. */
        while (s->slot[k] >= 0) {
            const struct cidx_str *o = &q->cand[s->slot[k]].campaign;
            if (s->hash[k] == h && o->len == q->cand[i].campaign.len &&
                memcmp(o->ptr, q->cand[i].campaign.ptr, o->len) == 0)
                break;
            k = (k + 1) & mask;
        }
        if (s->slot[k] >= 0) {
            int32_t j = s->slot[k];
            while (s->next_same[j] >= 0)
                j = s->next_same[j];
            s->next_same[j] = (int32_t)i;
        } else {
            s->slot[k] = (int32_t)i;
            s->hash[k] = h;
        }
    }
    if (ix == NULL)
        return;
    feats = cidx_feats(ix);
    n = cidx_count(ix);
    for (uint32_t ci = 0; ci < n; ci++) {
        uint64_t h = feats[ci].campaign;
        uint32_t k = (uint32_t)h & mask;

        for (; s->slot[k] >= 0; k = (k + 1) & mask) {
            const struct cidx_str *o = &q->cand[s->slot[k]].campaign;
            const struct cidx_camp *c;
            if (s->hash[k] != h)
                continue;
            c = cidx_camp(ix, ci);
            if (strlen(c->id) != o->len || memcmp(c->id, o->ptr, o->len) != 0)
                continue;
            for (int32_t j = s->slot[k]; j >= 0; j = s->next_same[j])
                res->items[j].index = (int32_t)ci;
            break;
        }
    }
}

/* The index query of the context, for creative format @p k and (for banner and video) size @p w x @p h. */
static void context_query(const struct score_req *q, const struct cidx_str *segs, uint32_t nsegs, int32_t k, uint16_t w,
                          uint16_t h, int64_t now, struct cidx_query *ret, struct cidx_size *size)
{
    const char *dev = q->device > 0 ? ortb_devicetype_name(q->device) : NULL;

    memset(ret, 0, sizeof(*ret));
    ret->country = q->country;
    ret->region = q->region;
    if (dev != NULL)
        ret->device = (struct cidx_str){dev, strlen(dev)};
    ret->os = q->os;
    ret->language = q->language;
    ret->domain = q->domain;
    ret->bundle = q->app;
    if (q->ncategories > 0) {
        ret->cattax = ortb_cattax_to_cidx(q->cattax);
        ret->categories = q->categories;
        ret->ncategories = q->ncategories;
    }
    ret->segments = segs;
    ret->nsegments = nsegs;
    ret->formats = fmt_bit[k];
    size->w = w;
    size->h = h;
    if (k == CIDX_CREATIVE_BANNER) {
        ret->banner_sizes = size;
        ret->nbanner_sizes = w > 0 ? 1 : 0;
    } else if (k == CIDX_CREATIVE_VIDEO) {
        ret->video_size = *size;
    }
    if (q->deal.len > 0) {
        ret->deals = &q->deal;
        ret->ndeals = 1;
    }
    ret->now = q->ts > 0 ? q->ts : now;
}

/*
 * The size a candidate's targeting is checked with: the context's, else
 * (the platform did not say) one the campaign has, so that the format
 * dimension only asks whether the campaign has a creative of that format.
 */
static void check_size(const struct score_req *q, const struct cidx_camp *c, int32_t k, uint16_t *w, uint16_t *h)
{
    *w = *h = 0;
    if (k == CIDX_CREATIVE_NATIVE)
        return;
    if (q->w > 0) {
        *w = q->w;
        *h = q->h;
    } else if (c->nsizes > 0 && (k == CIDX_CREATIVE_BANNER || c->sizes_listed)) {
        *w = c->sizes[0].w;
        *h = c->sizes[0].h;
    }
}

/* Marks the candidates whose campaign's targeting excludes the context: one query per (format, size) in use. */
static void check_targeting(const struct score_req *q, const struct score_env *env, const struct cidx_str *segs,
                            uint32_t nsegs, struct score_scratch *s, struct score_result *res)
{
    /* done[i]: candidate i's (format, size) was queried; reuses next_same as the mark (the table is done). */
    for (uint32_t i = 0; i < q->ncand; i++)
        s->next_same[i] = res->items[i].reason == SCORE_OK ? 0 : 1;
    for (uint32_t i = 0; i < q->ncand; i++) {
        struct cidx_query cq;
        struct cidx_size sz;
        uint16_t w, h;
        int32_t k = res->items[i].creative;

        if (s->next_same[i] != 0)
            continue;
        check_size(q, cidx_camp(env->ix, (uint32_t)res->items[i].index), k, &w, &h);
        context_query(q, segs, nsegs, k, w, h, env->now, &cq, &sz);
        (void)cidx_eligible(env->ix, &cq, s->words);
        for (uint32_t j = i; j < q->ncand; j++) {
            uint16_t w2, h2;
            uint32_t ci;
            if (s->next_same[j] != 0 || res->items[j].creative != k)
                continue;
            ci = (uint32_t)res->items[j].index;
            check_size(q, cidx_camp(env->ix, ci), k, &w2, &h2);
            if (w2 != w || h2 != h)
                continue;
            s->next_same[j] = 1;
            if ((s->words[ci / 64] >> (ci % 64) & 1) == 0)
                res->items[j].reason = SCORE_NOT_TARGETED;
        }
    }
}

/* Ranks: insertion of each scored candidate's position by descending score, stable on the order sent. */
static void assign_ranks(const struct score_req *q, struct score_scratch *s, struct score_result *res)
{
    int32_t *order = s->slot; /* the id table is no longer needed */
    uint32_t n = 0;

    for (uint32_t i = 0; i < q->ncand; i++) {
        uint32_t at;
        if (!res->items[i].scored)
            continue;
        at = n;
        while (at > 0 && res->items[order[at - 1]].score < res->items[i].score) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = (int32_t)i;
        n++;
    }
    for (uint32_t r = 0; r < n; r++)
        res->items[order[r]].rank = r + 1;
    res->nscored = n;
}

int score_run(const struct score_req *q, const struct score_env *env, struct score_result *ret)
{
    struct score_scratch *s;
    const struct prof_view *pv = q->has_profile ? &q->view : env->profile;
    struct rank_req base, perfmt[CIDX_CREATIVE_N];
    bool committed[CIDX_CREATIVE_N] = {false, false, false};
    struct cidx_str segs[CIDX_Q_MAX_SEGMENTS];
    uint32_t nsegs = 0;
    struct rank_info info;
    const struct cidx_feat *feats = NULL;
    const struct cidx_brief *briefs = NULL;

    if (env->model == NULL)
        return ADS_EINVAL;
    s = malloc(sizeof(*s));
    if (s == NULL)
        return ADS_ENOMEM;
    rank_model_info(env->model, &info);
    snprintf(ret->model_version, sizeof(ret->model_version), "%s", info.version);
    ret->user_found = pv != NULL;
    ret->privacy = q->privacy;
    if (pv != NULL &&
        (((pv->consent_known & PROF_CONSENT_PERSONALIZATION) != 0 &&
          (pv->consent & PROF_CONSENT_PERSONALIZATION) == 0) ||
         ((pv->consent_known & PROF_CONSENT_SALE_OPT_OUT) != 0 && (pv->consent & PROF_CONSENT_SALE_OPT_OUT) != 0)))
        ret->privacy |= BID_PRIV_PROFILE;
    ret->contextual = ret->privacy != 0;
    if (ret->contextual)
        pv = NULL;
    ret->n = q->ncand;
    ret->nscored = 0;

    rank_req_begin(&base, env->model);
    if (pv != NULL) {
        struct mpr it = pv->segments;
        struct prof_tag_ref tag;
        bid_user_features(&base, pv, env->now);
        while (nsegs < pv->nsegments && nsegs < CIDX_Q_MAX_SEGMENTS && prof_view_next_tag(&it, &tag) == 0)
            segs[nsegs++] = (struct cidx_str){tag.id, tag.id_len};
    }
    context_features(&base, q, env->now);

    find_campaigns(q, env->ix, s, ret);
    if (env->ix != NULL) {
        feats = cidx_feats(env->ix);
        briefs = cidx_briefs(env->ix);
    }
    for (uint32_t i = 0; i < q->ncand; i++) {
        struct score_item *it = &ret->items[i];
        it->creative = q->cand[i].creative;
        it->scored = false;
        it->score = 0;
        it->rank = 0;
        it->reason = SCORE_OK;
        if (it->index < 0) {
            char id[CIDX_ID_MAX + 1];
            memcpy(id, q->cand[i].campaign.ptr, q->cand[i].campaign.len);
            id[q->cand[i].campaign.len] = '\0';
            it->reason =
                env->exists != NULL && env->exists(env->exists_ctx, id) ? SCORE_NOT_ACTIVE : SCORE_UNKNOWN_CAMPAIGN;
            continue;
        }
        it->creative = pick_creative(q, &q->cand[i], &briefs[it->index]);
        if (it->creative == SCORE_CREATIVE_ANY) {
            it->creative = q->cand[i].creative;
            it->reason = SCORE_NO_CREATIVE;
        }
    }
    if (env->ix != NULL)
        check_targeting(q, env, segs, nsegs, s, ret);
    for (uint32_t i = 0; i < q->ncand; i++) {
        struct score_item *it = &ret->items[i];
        struct rank_cand cand;
        int32_t k = it->creative;

        if (it->index < 0 || it->reason == SCORE_NO_CREATIVE)
            continue;
        if (!committed[k]) {
            perfmt[k] = base;
            imp_features(&perfmt[k], q, k);
            rank_req_commit(&perfmt[k]);
            committed[k] = true;
        }
        cand_features(&cand, &feats[it->index], k);
        it->score = rank_req_score(&perfmt[k], &cand);
        it->scored = true;
    }
    assign_ranks(q, s, ret);
    free(s);
    return 0;
}

/* ---- the answer ---- */

void score_write(const struct score_req *q, const struct score_result *res, struct docw *w)
{
    docw_map(w, 5);
    docw_key(w, "model");
    docw_cstr(w, res->model_version);
    docw_key(w, "user_found");
    docw_bool(w, res->user_found);
    docw_key(w, "contextual");
    docw_bool(w, res->contextual);
    docw_key(w, "scored");
    docw_uint(w, res->nscored);
    docw_key(w, "scores");
    docw_array(w, res->n);
    for (uint32_t i = 0; i < res->n; i++) {
        const struct score_item *it = &res->items[i];
        bool eligible = it->reason == SCORE_OK;

        docw_map(w, eligible ? 5 : 6);
        docw_key(w, "campaign");
        docw_str(w, q->cand[i].campaign.ptr, q->cand[i].campaign.len);
        docw_key(w, "creative");
        if (it->creative >= 0)
            docw_cstr(w, creative_names[it->creative]);
        else
            docw_nil(w);
        docw_key(w, "score");
        if (it->scored)
            docw_double(w, it->score);
        else
            docw_nil(w);
        docw_key(w, "rank");
        if (it->scored)
            docw_uint(w, it->rank);
        else
            docw_nil(w);
        docw_key(w, "eligible");
        docw_bool(w, eligible);
        if (!eligible) {
            docw_key(w, "reason");
            docw_cstr(w, score_reason_name(it->reason));
        }
        docw_map_end(w);
    }
    docw_array_end(w);
    docw_map_end(w);
}
