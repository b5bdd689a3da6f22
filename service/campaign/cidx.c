#include "adsmith/cidx.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adsmith/ctr.h"
#include "adsmith/doc.h"
#include "adsmith/ortb.h" /* ortb_country_alpha2: ISO 3166-1 alpha-3 to alpha-2 */

/* ==== records: from a campaign document ====
 *
 * A record is one allocation: the struct, then an arena holding its lists and
 * strings. The document is walked twice by the same code: first with an arena
 * that only counts (every allocation returns NULL and nothing is written),
 * then with one of exactly that size, so the record never grows or moves.
 *
 * The document passed the schema, but nothing here trusts that: every member
 * is type-checked and every list and string bounded by the schema's limits,
 * so the index stays bounded whatever it is given. */

#define CC_TIME_MAX 32503680000ll /* the schema's latest time (year 3000) */

/* The schema's list limits (schemas/campaign.schema.json). */
#define CC_MAX_COUNTRIES 250
#define CC_MAX_REGIONS 500
#define CC_MAX_OS 16
#define CC_MAX_LANGUAGES 32
#define CC_MAX_CATEGORIES 200
#define CC_MAX_DOMAINS 1000
#define CC_MAX_BUNDLES 1000
#define CC_MAX_SEGMENTS 100
#define CC_MAX_DEALS 100
#define CC_MAX_DAYPARTS 28
#define CC_MAX_SIZES 32
#define CC_MAX_BANNER_SIZES 16
#define CC_MAX_ADOMAIN 8
#define CC_MAX_CREATIVE_CATS 16

enum cc_fold { CC_AS_IS, CC_LOWER, CC_UPPER };

struct cc_ctx {
    char *base; /* NULL while counting */
    size_t used;
    struct ads_diag *diag;
};

static void *cc_alloc(struct cc_ctx *x, size_t n, size_t align)
{
    void *p;

    x->used = (x->used + align - 1) & ~(align - 1);
    p = x->base != NULL ? x->base + x->used : NULL;
    x->used += n;
    return p;
}

static int cc_fail(struct cc_ctx *x, const char *ptr, const char *what)
{
    return ads_diag_set(x->diag, ADS_EINVAL, ptr, "%s", what);
}

static char cc_fold_char(char ch, enum cc_fold fold)
{
    if (fold == CC_LOWER && ch >= 'A' && ch <= 'Z')
        return (char)(ch - 'A' + 'a');
    if (fold == CC_UPPER && ch >= 'a' && ch <= 'z')
        return (char)(ch - 'a' + 'A');
    return ch;
}

/* Checks a string member of 1..max bytes. */
static int cc_str(struct cc_ctx *x, const msgpack_object *o, size_t max, const char *ptr)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 || o->via.str.size > max)
        return cc_fail(x, ptr, "must be a non-empty string within the schema's length limit");
    return 0;
}

/* Copies a checked string into a fixed buffer of at least max + 1 bytes. */
static int cc_fixed(struct cc_ctx *x, const msgpack_object *o, size_t max, const char *ptr, char *dst)
{
    int rc;

    if ((rc = cc_str(x, o, max, ptr)) != 0)
        return rc;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return 0;
}

static int cc_uint(struct cc_ctx *x, const msgpack_object *o, uint64_t min, uint64_t max, const char *ptr,
                   uint64_t *ret)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 < min || o->via.u64 > max)
        return cc_fail(x, ptr, "must be an integer within the schema's range");
    *ret = o->via.u64;
    return 0;
}

/* The index of @p o among @p names, or -1. */
static int cc_enum(const msgpack_object *o, const char *const *names, int n)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR)
        return -1;
    for (int i = 0; i < n; i++) {
        if (strlen(names[i]) == o->via.str.size && memcmp(names[i], o->via.str.ptr, o->via.str.size) == 0)
            return i;
    }
    return -1;
}

/* A list of strings (absent: empty list). */
static int cc_list(struct cc_ctx *x, const msgpack_object *o, uint32_t max_n, size_t max_len, enum cc_fold fold,
                   const char *ptr, struct cidx_list *ret)
{
    struct cidx_str *v;
    int rc;

    ret->n = 0;
    ret->v = NULL;
    if (o == NULL)
        return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > max_n)
        return cc_fail(x, ptr, "must be an array within the schema's length limit");
    v = cc_alloc(x, sizeof(*v) * o->via.array.size, alignof(struct cidx_str));
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *s = &o->via.array.ptr[i];
        char *dst;
        if ((rc = cc_str(x, s, max_len, ptr)) != 0)
            return rc;
        dst = cc_alloc(x, s->via.str.size + 1, 1);
        if (dst == NULL)
            continue;
        for (uint32_t k = 0; k < s->via.str.size; k++)
            dst[k] = cc_fold_char(s->via.str.ptr[k], fold);
        dst[s->via.str.size] = '\0';
        v[i] = (struct cidx_str){dst, s->via.str.size};
    }
    ret->n = o->via.array.size;
    ret->v = v;
    return 0;
}

static const char *const cc_taxonomies[] = {"iab_content_1.0", "iab_content_2.0", "iab_content_2.1",
                                            "iab_content_2.2", "iab_content_3.0", "iab_content_3.1"};

static int cc_taxonomy(struct cc_ctx *x, const msgpack_object *o, const char *ptr, enum cidx_taxonomy *ret)
{
    int t = cc_enum(o, cc_taxonomies, 6);

    if (t < 0)
        return cc_fail(x, ptr, "must be one of the schema's taxonomies");
    *ret = (enum cidx_taxonomy)(CIDX_TAX_CONTENT_1_0 + t);
    return 0;
}

static int cc_sizes(struct cc_ctx *x, const msgpack_object *o, uint32_t max_n, const char *ptr, struct cidx_camp *c)
{
    int rc;

    if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 || o->via.array.size > max_n)
        return cc_fail(x, ptr, "must be an array of 1 to 32 sizes");
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        uint64_t w = 0, h = 0;
        if ((rc = cc_uint(x, doc_map_get(&o->via.array.ptr[i], "w"), 1, 8192, ptr, &w)) != 0 ||
            (rc = cc_uint(x, doc_map_get(&o->via.array.ptr[i], "h"), 1, 8192, ptr, &h)) != 0)
            return rc;
        c->sizes[i] = (struct cidx_size){(uint16_t)w, (uint16_t)h};
    }
    c->nsizes = o->via.array.size;
    return 0;
}

static int cc_dayparting(struct cc_ctx *x, const msgpack_object *o, struct cidx_camp *c)
{
    static const char *const days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    const char *ptr = "/targeting/dayparting";
    int rc;

    if (o == NULL)
        return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 || o->via.array.size > CC_MAX_DAYPARTS)
        return cc_fail(x, ptr, "must be an array of 1 to 28 windows");
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *w = &o->via.array.ptr[i], *d = doc_map_get(w, "days");
        uint64_t start = 0, end = 0;
        if ((rc = cc_uint(x, doc_map_get(w, "start_hour"), 0, 23, ptr, &start)) != 0 ||
            (rc = cc_uint(x, doc_map_get(w, "end_hour"), 1, 24, ptr, &end)) != 0)
            return rc;
        if (end <= start)
            return cc_fail(x, ptr, "has a window whose end_hour is not after its start_hour");
        if (d == NULL || d->type != MSGPACK_OBJECT_ARRAY || d->via.array.size == 0 || d->via.array.size > 7)
            return cc_fail(x, ptr, "has a window without 1 to 7 days");
        for (uint32_t k = 0; k < d->via.array.size; k++) {
            int day = cc_enum(&d->via.array.ptr[k], days, 7);
            if (day < 0)
                return cc_fail(x, ptr, "has a day that is not mon, tue, wed, thu, fri, sat or sun");
            for (uint64_t hr = start; hr < end; hr++) {
                unsigned bit = (unsigned)day * 24 + (unsigned)hr;
                c->daypart[bit / 64] |= 1ull << (bit % 64);
            }
        }
    }
    c->has_daypart = true;
    return 0;
}

static int cc_formats(struct cc_ctx *x, const msgpack_object *targeting, const msgpack_object *creatives,
                      struct cidx_camp *c)
{
    static const char *const names[] = {"banner", "native", "video"};
    const msgpack_object *f = doc_map_get(targeting, "formats"), *banner = doc_map_get(creatives, "banner");
    const msgpack_object *sizes = doc_map_get(targeting, "sizes");
    int rc;

    c->formats = 0;
    if (f != NULL) {
        if (f->type != MSGPACK_OBJECT_ARRAY || f->via.array.size == 0 || f->via.array.size > 3)
            return cc_fail(x, "/targeting/formats", "must be an array of 1 to 3 formats");
        for (uint32_t i = 0; i < f->via.array.size; i++) {
            int k = cc_enum(&f->via.array.ptr[i], names, 3);
            if (k < 0)
                return cc_fail(x, "/targeting/formats", "has a format that is not banner, native or video");
            c->formats |= 1u << k;
        }
    } else {
        for (int k = 0; k < 3; k++) {
            if (doc_map_get(creatives, names[k]) != NULL)
                c->formats |= 1u << k;
        }
    }
    if (sizes != NULL) {
        c->sizes_listed = true;
        return cc_sizes(x, sizes, CC_MAX_SIZES, "/targeting/sizes", c);
    }
    /* Without targeting.sizes, banner bids on the banner creative's sizes (a
     * banner format without a banner creative then matches nothing). */
    if ((c->formats & CIDX_FMT_BANNER) != 0 && banner != NULL &&
        (rc = cc_sizes(x, doc_map_get(banner, "sizes"), CC_MAX_BANNER_SIZES, "/creatives/banner/sizes", c)) != 0)
        return rc;
    return 0;
}

static int cc_pair(struct cc_ctx *x, const msgpack_object *t, const char *member, const char *a, const char *b,
                   uint32_t max_n, size_t max_len, enum cc_fold fold, struct cidx_list *ret_a, struct cidx_list *ret_b)
{
    const msgpack_object *o = doc_map_get(t, member);
    char ptr[64];
    int rc;

    if (o == NULL)
        return 0;
    snprintf(ptr, sizeof(ptr), "/targeting/%s", member);
    if (o->type != MSGPACK_OBJECT_MAP)
        return cc_fail(x, ptr, "must be an object");
    snprintf(ptr, sizeof(ptr), "/targeting/%s/%s", member, a);
    if ((rc = cc_list(x, doc_map_get(o, a), max_n, max_len, fold, ptr, ret_a)) != 0)
        return rc;
    snprintf(ptr, sizeof(ptr), "/targeting/%s/%s", member, b);
    return cc_list(x, doc_map_get(o, b), max_n, max_len, fold, ptr, ret_b);
}

static int cc_targeting(struct cc_ctx *x, const msgpack_object *t, struct cidx_camp *c)
{
    static const char *const devices[] = {"phone", "tablet", "desktop", "ctv", "other"};
    const msgpack_object *o;
    int rc;

    if (t != NULL && t->type != MSGPACK_OBJECT_MAP)
        return cc_fail(x, "/targeting", "must be an object");
    if ((rc = cc_list(x, doc_map_get(t, "countries"), CC_MAX_COUNTRIES, CIDX_COUNTRY_MAX, CC_UPPER, "/targeting/countries",
                      &c->countries)) != 0 ||
        (rc = cc_list(x, doc_map_get(t, "regions"), CC_MAX_REGIONS, CIDX_REGION_MAX, CC_UPPER, "/targeting/regions",
                      &c->regions)) != 0 ||
        (rc = cc_list(x, doc_map_get(t, "os"), CC_MAX_OS, CIDX_OS_MAX, CC_LOWER, "/targeting/os", &c->os)) != 0 ||
        (rc = cc_list(x, doc_map_get(t, "languages"), CC_MAX_LANGUAGES, CIDX_LANGUAGE_MAX, CC_LOWER, "/targeting/languages",
                      &c->languages)) != 0 ||
        (rc = cc_pair(x, t, "domains", "allow", "block", CC_MAX_DOMAINS, CIDX_DOMAIN_MAX, CC_LOWER, &c->domain_allow,
                      &c->domain_block)) != 0 ||
        (rc = cc_pair(x, t, "bundles", "allow", "block", CC_MAX_BUNDLES, CIDX_BUNDLE_MAX, CC_AS_IS, &c->bundle_allow,
                      &c->bundle_block)) != 0 ||
        (rc = cc_pair(x, t, "segments", "include", "exclude", CC_MAX_SEGMENTS, CIDX_SEGMENT_MAX, CC_AS_IS,
                      &c->seg_include, &c->seg_exclude)) != 0 ||
        (rc = cc_pair(x, t, "categories", "include", "exclude", CC_MAX_CATEGORIES, CIDX_CATEGORY_MAX, CC_AS_IS,
                      &c->cat_include, &c->cat_exclude)) != 0 ||
        (rc = cc_list(x, doc_map_get(t, "deals"), CC_MAX_DEALS, CIDX_DEAL_MAX, CC_AS_IS, "/targeting/deals", &c->deals)) !=
            0)
        return rc;
    if ((o = doc_map_get(t, "categories")) != NULL &&
        (rc = cc_taxonomy(x, doc_map_get(o, "taxonomy"), "/targeting/categories/taxonomy", &c->cat_taxonomy)) != 0)
        return rc;
    if ((o = doc_map_get(t, "devices")) != NULL) {
        if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 || o->via.array.size > 5)
            return cc_fail(x, "/targeting/devices", "must be an array of 1 to 5 device classes");
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            int k = cc_enum(&o->via.array.ptr[i], devices, 5);
            if (k < 0)
                return cc_fail(x, "/targeting/devices", "has a device class the schema does not name");
            c->devices |= 1u << k;
        }
    }
    if ((o = doc_map_get(t, "deals_only")) != NULL) {
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return cc_fail(x, "/targeting/deals_only", "must be a boolean");
        c->deals_only = o->via.boolean;
    }
    return cc_dayparting(x, doc_map_get(t, "dayparting"), c);
}

static int cc_money(struct cc_ctx *x, const msgpack_object *parent, const char *member, uint64_t max, const char *ptr,
                    int64_t *ret)
{
    const msgpack_object *o = doc_map_get(parent, member);
    uint64_t v = 0;
    int rc;

    *ret = 0;
    if (o == NULL)
        return 0;
    if ((rc = cc_uint(x, o, 1, max, ptr, &v)) != 0)
        return rc;
    *ret = (int64_t)v;
    return 0;
}

static int cc_caps(struct cc_ctx *x, const msgpack_object *o, struct cidx_camp *c)
{
    static const char *const names[] = {"per_hour", "per_day", "lifetime"};
    uint32_t *dst[] = {&c->cap_hour, &c->cap_day, &c->cap_lifetime};
    int rc;

    if (o == NULL)
        return 0;
    for (int i = 0; i < 3; i++) {
        uint64_t v = 0;
        if (doc_map_get(o, names[i]) == NULL)
            continue;
        if ((rc = cc_uint(x, doc_map_get(o, names[i]), 1, 1000000, "/frequency_caps", &v)) != 0)
            return rc;
        *dst[i] = (uint32_t)v;
    }
    return 0;
}

static int cc_parse(struct cc_ctx *x, const msgpack_object *doc, struct cidx_camp *c)
{
    static const char *const statuses[] = {"draft", "active", "paused", "archived"};
    static const char *const strategies[] = {"max_cpm", "target_cpc", "target_cpa"};
    static const char *const pacings[] = {"even", "asap"};
    const msgpack_object *flight, *bid, *o;
    uint64_t v = 0;
    int k, rc;

    if (doc == NULL || doc->type != MSGPACK_OBJECT_MAP)
        return cc_fail(x, "", "must be an object");
    if ((rc = cc_fixed(x, doc_map_get(doc, "id"), CIDX_ID_MAX, "/id", c->id)) != 0 ||
        (rc = cc_fixed(x, doc_map_get(doc, "advertiser"), CIDX_ID_MAX, "/advertiser", c->advertiser)) != 0 ||
        (rc = cc_fixed(x, doc_map_get(doc, "currency"), 3, "/currency", c->currency)) != 0)
        return rc;
    if ((k = cc_enum(doc_map_get(doc, "status"), statuses, 4)) < 0)
        return cc_fail(x, "/status", "must be draft, active, paused or archived");
    c->status = (enum cidx_status)k;

    flight = doc_map_get(doc, "flight");
    if ((rc = cc_uint(x, doc_map_get(flight, "start"), 0, CC_TIME_MAX, "/flight/start", &v)) != 0)
        return rc;
    c->flight_start = (int64_t)v;
    c->flight_end = CIDX_NO_END;
    if ((o = doc_map_get(flight, "end")) != NULL) {
        if ((rc = cc_uint(x, o, 0, CC_TIME_MAX, "/flight/end", &v)) != 0)
            return rc;
        c->flight_end = (int64_t)v;
    }
    if ((rc = cc_fixed(x, doc_map_get(flight, "time_zone"), CIDX_TZ_MAX, "/flight/time_zone", c->time_zone)) != 0)
        return rc;

    bid = doc_map_get(doc, "bid");
    if ((k = cc_enum(doc_map_get(bid, "strategy"), strategies, 3)) < 0)
        return cc_fail(x, "/bid/strategy", "must be max_cpm, target_cpc or target_cpa");
    c->strategy = (enum cidx_strategy)k;
    if ((rc = cc_uint(x, doc_map_get(bid, "amount_micros"), 1, 1000000000000ull, "/bid/amount_micros", &v)) != 0)
        return rc;
    c->bid_micros = (int64_t)v;
    if ((rc = cc_money(x, bid, "ceiling_cpm_micros", 1000000000000ull, "/bid/ceiling_cpm_micros",
                       &c->ceiling_cpm_micros)) != 0)
        return rc;
    if ((k = cc_enum(doc_map_get(doc, "pacing"), pacings, 2)) < 0)
        return cc_fail(x, "/pacing", "must be even or asap");
    c->pacing = (enum cidx_pacing)k;
    o = doc_map_get(doc, "budget");
    if ((rc = cc_money(x, o, "daily_micros", 1000000000000000ull, "/budget/daily_micros", &c->daily_budget_micros)) !=
            0 ||
        (rc = cc_money(x, o, "total_micros", 1000000000000000ull, "/budget/total_micros", &c->total_budget_micros)) !=
            0)
        return rc;
    if ((rc = cc_caps(x, doc_map_get(doc, "frequency_caps"), c)) != 0)
        return rc;
    if ((rc = cc_list(x, doc_map_get(doc, "adomain"), CC_MAX_ADOMAIN, CIDX_DOMAIN_MAX, CC_LOWER, "/adomain", &c->adomain)) !=
        0)
        return rc;
    if ((o = doc_map_get(doc, "creative_categories")) != NULL &&
        ((rc = cc_taxonomy(x, doc_map_get(o, "taxonomy"), "/creative_categories/taxonomy", &c->creative_taxonomy)) != 0 ||
         (rc = cc_list(x, doc_map_get(o, "ids"), CC_MAX_CREATIVE_CATS, CIDX_CATEGORY_MAX, CC_AS_IS,
                       "/creative_categories/ids", &c->creative_categories)) != 0))
        return rc;
    if ((o = doc_map_get(doc, "creatives")) == NULL || o->type != MSGPACK_OBJECT_MAP)
        return cc_fail(x, "/creatives", "must be an object");
    if ((rc = cc_targeting(x, doc_map_get(doc, "targeting"), c)) != 0)
        return rc;
    return cc_formats(x, doc_map_get(doc, "targeting"), o, c);
}

int cidx_camp_from_doc(const msgpack_object *doc, struct cidx_camp **ret, struct ads_diag *ret_diag)
{
    struct cc_ctx x = {NULL, 0, ret_diag};
    struct cidx_camp scratch, *c;
    int rc;

    memset(&scratch, 0, sizeof(scratch));
    if ((rc = cc_parse(&x, doc, &scratch)) != 0)
        return rc;
    c = calloc(1, sizeof(*c) + x.used);
    if (c == NULL)
        return ADS_ENOMEM;
    /* The arena starts right after the struct, whose alignment suits every
     * allocation the walk makes (pointers and bytes). */
    x = (struct cc_ctx){(char *)(c + 1), 0, ret_diag};
    if ((rc = cc_parse(&x, doc, c)) != 0) {
        free(c);
        return rc;
    }
    c->bytes = sizeof(*c) + x.used;
    *ret = c;
    return 0;
}

void cidx_camp_free(struct cidx_camp *c)
{
    free(c);
}

/* Every list of a record: what a copy must point at its own memory. */
static const size_t cc_list_offsets[] = {
    offsetof(struct cidx_camp, adomain),      offsetof(struct cidx_camp, creative_categories),
    offsetof(struct cidx_camp, countries),    offsetof(struct cidx_camp, regions),
    offsetof(struct cidx_camp, os),           offsetof(struct cidx_camp, languages),
    offsetof(struct cidx_camp, cat_include),  offsetof(struct cidx_camp, cat_exclude),
    offsetof(struct cidx_camp, domain_allow), offsetof(struct cidx_camp, domain_block),
    offsetof(struct cidx_camp, bundle_allow), offsetof(struct cidx_camp, bundle_block),
    offsetof(struct cidx_camp, seg_include),  offsetof(struct cidx_camp, seg_exclude),
    offsetof(struct cidx_camp, deals),
};

int cidx_camp_clone(const struct cidx_camp *c, struct cidx_camp **ret)
{
    struct cidx_camp *n = malloc(c->bytes);
    const char *from = (const char *)c;

    if (n == NULL)
        return ADS_ENOMEM;
    memcpy(n, c, c->bytes);
    n->zone = NULL;
    /* Lists and strings live in the arena after the struct: same offsets in the copy. */
    for (size_t i = 0; i < sizeof(cc_list_offsets) / sizeof(cc_list_offsets[0]); i++) {
        struct cidx_list *l = (struct cidx_list *)((char *)n + cc_list_offsets[i]);
        struct cidx_str *v;
        if (l->n == 0) {
            l->v = NULL;
            continue;
        }
        v = (struct cidx_str *)((char *)n + ((const char *)l->v - from));
        for (uint32_t k = 0; k < l->n; k++)
            v[k].ptr = (const char *)n + (v[k].ptr - from);
        l->v = v;
    }
    *ret = n;
    return 0;
}

/* ==== the index ====
 *
 * Every targeting dimension maps values to the campaigns that list them; a
 * query looks up the request's values and combines the campaign sets of all
 * dimensions. All values live in one open-addressing hash table whose key
 * is a "value space" byte followed by the normalised value. Segments,
 * categories, domains and bundles are looked up once for both of their
 * lists: each entry has an include (allow) posting and an exclude (block)
 * posting.
 *
 * A posting is a bitset (one bit per campaign) when it has at least
 * `threshold` campaigns, else a sorted list of campaign numbers. The
 * threshold is half the number of words of a bitset, so a bitset never takes
 * more than 16 bytes per campaign in it: memory stays linear in what the
 * campaigns list. (Lower thresholds, trading memory for fewer lists, made no
 * measurable difference to queries in loadtest/bench_index.c.)
 *
 * Per dimension one more bitset ("other"): for include dimensions the
 * campaigns that do not restrict it, for exclude dimensions the campaigns
 * that have a list. The bitset postings of include dimensions (but formats
 * and deals) already contain that dimension's unrestricted campaigns, so a
 * request value that hits one needs no second bitset.
 *
 * A query evaluates one dimension at a time over chunks of up to IX_CHUNK
 * words (all of them, up to 16384 campaigns): long, branch-free loops the
 * compiler vectorises.
 *
 * Time: flight and dayparting are folded into one bitset per 15-minute slot
 * of the week that starts at the build's slot ("slot sets", consecutive equal
 * ones shared), each computed with the zone offset at that slot's start, so
 * DST changes inside the week are already accounted for. The index is exact
 * until the next flight start or end or the end of that week (valid_until). */

enum ix_space { S_FORMAT = 1, S_COUNTRY, S_DEVICE, S_OS, S_LANG, S_REGION, S_DEAL, S_SEG, S_CAT, S_DOM, S_BUN };

enum ix_dim {
    /* include dimensions, in the order the query applies them */
    D_FORMAT,
    D_COUNTRY,
    D_DEVICE,
    D_OS,
    D_LANG,
    D_REGION,
    D_CAT_INC,
    D_SEG_INC,
    D_DOM_ALLOW,
    D_BUN_ALLOW,
    D_DEAL,
    /* exclude dimensions */
    D_SEG_EXC,
    D_CAT_EXC,
    D_DOM_BLOCK,
    D_BUN_BLOCK,
    D_N
};
#define D_FIRST_EXCLUDE D_SEG_EXC

static const uint8_t ix_dim_space[D_N] = {S_FORMAT, S_COUNTRY, S_DEVICE, S_OS,  S_LANG, S_REGION, S_CAT, S_SEG,
                                          S_DOM,    S_BUN,     S_DEAL,   S_SEG, S_CAT,  S_DOM,    S_BUN};

static unsigned ix_dim_side(enum ix_dim d)
{
    return d >= D_FIRST_EXCLUDE ? 1 : 0;
}

/* Include dimensions whose bitset postings hold the unrestricted campaigns. */
static bool ix_dim_merged(enum ix_dim d)
{
    return d != D_FORMAT && d != D_DEAL && d < D_FIRST_EXCLUDE;
}

/* Format keys: a tag, then width and height (2 bytes each) where given. */
#define FK_BANNER 'B'
#define FK_NATIVE 'N'
#define FK_VIDEO_ANY 'V'
#define FK_VIDEO_SIZE 'W'

#define IX_KEY_MAX (2 + CIDX_DOMAIN_MAX) /* space byte, taxonomy byte, value */
#define IX_INLINE_KEY 32                 /* keys up to this long live in their entry */
#define IX_CHUNK 256                     /* words a query evaluates at a time (16384 campaigns) */
#define IX_PAD 4                         /* bitsets are padded to a multiple of this many words */

struct ix_post {
    uint32_t count; /* campaigns */
    uint32_t off;   /* bitset: first word in dense[]; list: first index in sparse[] */
};

/* One cache line: a lookup that hits reads its slot and its entry, and,
 * for keys longer than IX_INLINE_KEY, the key in keys[]. */
struct ix_entry {
    uint64_t hash;
    struct ix_post post[2]; /* include (allow), exclude (block) */
    uint32_t key_len;
    uint32_t key_off; /* in keys[], for long keys */
    unsigned char key[IX_INLINE_KEY];
};

/* Per entry, while building only. */
struct ix_aux {
    uint32_t last[2]; /* last campaign counted or written + 1 */
    uint32_t fill[2]; /* list entries written */
};

struct ix_slot {
    uint32_t hash32;
    uint32_t entry; /* index + 1; 0 = empty */
};

struct cidx {
    int64_t built_at, valid_until, slot0;
    uint32_t n, threshold;
    size_t nwords, stride; /* stride: nwords rounded up to IX_PAD, the size of every bitset */
    struct cidx_camp **camps;
    struct cidx_feat *feats;                   /* cidx_feats(): one per campaign, dense */
    struct cidx_brief *briefs;                 /* cidx_briefs(): one per campaign, dense, cache-line aligned */
    struct cidx_size size_tab[CIDX_SIZE_BITS]; /* the sizes of cidx_size_bit(), in bit order */
    uint32_t nsize_tab;
    struct tz **zones;
    uint32_t nzones;
    struct ix_slot *table;
    uint32_t mask;
    struct ix_entry *entries;
    struct ix_aux *aux; /* build only */
    uint32_t nentries, entries_cap;
    char *keys;
    size_t keys_len, keys_cap;
    uint64_t *dense;
    uint32_t *sparse;
    uint64_t *other; /* D_N bitsets */
    uint32_t restricted[D_N];
    uint64_t *present; /* every campaign of the index */
    uint64_t *slot_sets;
    uint16_t slot_map[CIDX_WINDOW_SLOTS];
    struct cidx_stats stats;
    uint64_t seed;
};

struct cidx_builder {
    struct cidx_camp **v;
    uint32_t n, cap;
    uint32_t dropped_inactive;
};

static int64_t ix_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* A fast hash of short keys, 8 bytes at a time, seeded per index so that
 * collisions cannot be prepared in advance. */
static uint64_t ix_hash(uint64_t seed, const unsigned char *p, size_t n)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);

    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t v = 0;
        memcpy(&v, p, n);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return h;
}

/* Key comparison for the short keys of the index, inline rather than a
 * library call: the lengths are already known to be equal. */
static bool ix_key_eq(const unsigned char *a, const unsigned char *b, size_t n)
{
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y)
            return false;
    }
    for (; n > 0; n--) {
        if (*a++ != *b++)
            return false;
    }
    return true;
}

/* Looks up @p key, whose ix_hash() is @p h. */
static const struct ix_entry *ix_find_hashed(const struct cidx *ix, uint64_t h, const unsigned char *key, size_t len)
{
    uint32_t i = (uint32_t)h & ix->mask;

    if (ix->table == NULL)
        return NULL;
    for (;;) {
        const struct ix_slot *s = &ix->table[i];
        if (s->entry == 0)
            return NULL;
        if (s->hash32 == (uint32_t)(h >> 32)) {
            const struct ix_entry *e = &ix->entries[s->entry - 1];
            if (e->hash == h && e->key_len == len &&
                ix_key_eq(len <= IX_INLINE_KEY ? e->key : (const unsigned char *)ix->keys + e->key_off, key, len))
                return e;
        }
        i = (i + 1) & ix->mask;
    }
}

static const struct ix_entry *ix_find(const struct cidx *ix, const unsigned char *key, size_t len)
{
    return ix_find_hashed(ix, ix_hash(ix->seed, key, len), key, len);
}

/* Day of the week (Monday = 0) * 24 + hour of the local time at @p t. */
static unsigned ix_hour_of_week(const struct tz *z, int64_t t)
{
    int64_t local = t + tz_offset_at(z, t);
    int64_t days = ix_floor_div(local, 86400);
    int64_t dow = ((days + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
    return (unsigned)(dow * 24 + (local - days * 86400) / 3600);
}

static bool ix_daypart_at(const struct cidx_camp *c, unsigned how)
{
    return (c->daypart[how / 64] >> (how % 64) & 1) != 0;
}

/* ---- the builder ---- */

int cidx_builder_new(struct cidx_builder **ret)
{
    struct cidx_builder *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return ADS_ENOMEM;
    *ret = b;
    return 0;
}

void cidx_builder_free(struct cidx_builder *b)
{
    if (b == NULL)
        return;
    for (uint32_t i = 0; i < b->n; i++)
        cidx_camp_free(b->v[i]);
    free(b->v);
    free(b);
}

int cidx_builder_add(struct cidx_builder *b, struct cidx_camp *c)
{
    if (c->status != CIDX_ACTIVE) {
        b->dropped_inactive++;
        cidx_camp_free(c);
        return 0;
    }
    if (b->n >= CIDX_MAX_CAMPAIGNS) {
        cidx_camp_free(c);
        return ADS_EINVAL;
    }
    if (b->n == b->cap) {
        uint32_t cap = b->cap == 0 ? 64 : b->cap * 2;
        struct cidx_camp **v = realloc(b->v, sizeof(*v) * cap);
        if (v == NULL) {
            cidx_camp_free(c);
            return ADS_ENOMEM;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = c;
    return 0;
}

/* ---- compiling ---- */

struct ix_zone {
    const char *name;
    struct tz *tz; /* NULL: not loadable */
    uint8_t how[CIDX_WINDOW_SLOTS];
};

struct ix_build {
    struct cidx *ix;
    struct ix_zone *zones;
    uint32_t nzones;
    uint32_t *ztable; /* zone index + 1, by name hash */
    uint32_t tsize;
    uint32_t *zone_of;   /* per record added */
    uint32_t *kept_zone; /* per campaign of the index */
    int pass;            /* 1: count, 2: fill */
    int rc;
};

static int ix_table_grow(struct cidx *ix)
{
    uint32_t size = ix->table == NULL ? 1024 : (ix->mask + 1) * 2;
    struct ix_slot *t = calloc(size, sizeof(*t));

    if (t == NULL)
        return ADS_ENOMEM;
    for (uint32_t e = 0; e < ix->nentries; e++) {
        uint32_t i = (uint32_t)ix->entries[e].hash & (size - 1);
        while (t[i].entry != 0)
            i = (i + 1) & (size - 1);
        t[i] = (struct ix_slot){(uint32_t)(ix->entries[e].hash >> 32), e + 1};
    }
    free(ix->table);
    ix->table = t;
    ix->mask = size - 1;
    return 0;
}

static struct ix_entry *ix_insert(struct cidx *ix, const unsigned char *key, size_t len)
{
    struct ix_entry *e = (struct ix_entry *)ix_find(ix, key, len);
    uint64_t h;
    uint32_t i;

    if (e != NULL)
        return e;
    /* Load factor at most one half: lookups of absent keys, frequent on the
     * bid path, stay short. */
    if ((ix->nentries + 1) * 2 > ix->mask + 1 && ix_table_grow(ix) != 0)
        return NULL;
    if (ix->nentries == ix->entries_cap) {
        uint32_t cap = ix->entries_cap == 0 ? 1024 : ix->entries_cap * 2;
        struct ix_entry *v = realloc(ix->entries, sizeof(*v) * cap);
        struct ix_aux *a;
        if (v == NULL)
            return NULL;
        ix->entries = v;
        if ((a = realloc(ix->aux, sizeof(*a) * cap)) == NULL)
            return NULL;
        ix->aux = a;
        ix->entries_cap = cap;
    }
    if (len > IX_INLINE_KEY && ix->keys_len + len > ix->keys_cap) {
        size_t cap = ix->keys_cap == 0 ? 65536 : ix->keys_cap * 2;
        char *k;
        while (cap < ix->keys_len + len)
            cap *= 2;
        if ((k = realloc(ix->keys, cap)) == NULL)
            return NULL;
        ix->keys = k;
        ix->keys_cap = cap;
    }
    h = ix_hash(ix->seed, key, len);
    e = &ix->entries[ix->nentries];
    memset(e, 0, sizeof(*e));
    memset(&ix->aux[ix->nentries], 0, sizeof(*ix->aux));
    e->hash = h;
    e->key_len = (uint32_t)len;
    if (len <= IX_INLINE_KEY) {
        memcpy(e->key, key, len);
    } else {
        e->key_off = (uint32_t)ix->keys_len;
        memcpy(ix->keys + ix->keys_len, key, len);
        ix->keys_len += len;
    }
    i = (uint32_t)h & ix->mask;
    while (ix->table[i].entry != 0)
        i = (i + 1) & ix->mask;
    ix->table[i] = (struct ix_slot){(uint32_t)(h >> 32), ++ix->nentries};
    return e;
}

/* Records that campaign @p ci lists value @p val in dimension @p dim. */
static void ix_key(struct ix_build *bd, enum ix_dim dim, uint8_t tax, const char *val, size_t len, uint32_t ci)
{
    struct cidx *ix = bd->ix;
    unsigned side = ix_dim_side(dim);
    unsigned char key[IX_KEY_MAX];
    struct ix_entry *e;
    struct ix_aux *a;
    struct ix_post *p;
    size_t n = 0;

    if (bd->rc != 0 || len > CIDX_DOMAIN_MAX)
        return;
    key[n++] = ix_dim_space[dim];
    if (tax != 0)
        key[n++] = tax;
    memcpy(key + n, val, len);
    n += len;
    if (bd->pass == 1) {
        if ((e = ix_insert(ix, key, n)) == NULL) {
            bd->rc = ADS_ENOMEM;
            return;
        }
        a = &ix->aux[e - ix->entries];
        if (a->last[side] != ci + 1) {
            a->last[side] = ci + 1;
            e->post[side].count++;
        }
        return;
    }
    e = (struct ix_entry *)ix_find(ix, key, n);
    a = &ix->aux[e - ix->entries];
    if (a->last[side] == ci + 1)
        return; /* the campaign listed the value twice */
    a->last[side] = ci + 1;
    p = &e->post[side];
    if (p->count >= ix->threshold)
        ix->dense[p->off + ci / 64] |= 1ull << (ci % 64);
    else
        ix->sparse[p->off + a->fill[side]++] = ci;
}

static void ix_keys_list(struct ix_build *bd, enum ix_dim dim, uint8_t tax, const struct cidx_list *l, uint32_t ci)
{
    for (uint32_t i = 0; i < l->n; i++)
        ix_key(bd, dim, tax, l->v[i].ptr, l->v[i].len, ci);
}

static void ix_key_size(struct ix_build *bd, char tag, struct cidx_size s, uint32_t ci)
{
    char k[5] = {tag, (char)(s.w >> 8), (char)(s.w & 0xff), (char)(s.h >> 8), (char)(s.h & 0xff)};
    ix_key(bd, D_FORMAT, 0, k, 5, ci);
}

static void ix_other(struct ix_build *bd, enum ix_dim d, uint32_t ci)
{
    if (bd->pass == 2)
        bd->ix->other[(size_t)d * bd->ix->stride + ci / 64] |= 1ull << (ci % 64);
}

static void ix_restricted(struct ix_build *bd, enum ix_dim d)
{
    if (bd->pass == 2)
        bd->ix->restricted[d]++;
}

/* Include dimension: a list restricts it, no list leaves the campaign in the
 * dimension's unrestricted set. */
static void ix_include(struct ix_build *bd, enum ix_dim d, uint8_t tax, const struct cidx_list *l, uint32_t ci)
{
    if (l->n == 0) {
        ix_other(bd, d, ci);
        return;
    }
    ix_restricted(bd, d);
    ix_keys_list(bd, d, tax, l, ci);
}

/* The alpha-2 code of a three-letter country code the table knows; NULL for
 * anything else (two-letter codes are used as written: no lookup). */
static const char *ix_alpha2(const char *code, size_t len)
{
    return code != NULL && len == 3 ? ortb_country_alpha2(code, len) : NULL;
}

/* Countries are keyed by their alpha-2 code where ISO 3166-1 gives one, so a
 * campaign that wrote "USA" and a request that sent "US" (or the reverse)
 * meet; a code the table does not know is keyed as written. */
static void ix_countries(struct ix_build *bd, const struct cidx_list *l, uint32_t ci)
{
    if (l->n == 0) {
        ix_other(bd, D_COUNTRY, ci);
        return;
    }
    ix_restricted(bd, D_COUNTRY);
    for (uint32_t i = 0; i < l->n; i++) {
        const char *a2 = ix_alpha2(l->v[i].ptr, l->v[i].len);
        if (a2 != NULL)
            ix_key(bd, D_COUNTRY, 0, a2, 2, ci);
        else
            ix_key(bd, D_COUNTRY, 0, l->v[i].ptr, l->v[i].len, ci);
    }
}

/* Exclude dimension: the "other" set is the campaigns with a list. */
static void ix_exclude(struct ix_build *bd, enum ix_dim d, uint8_t tax, const struct cidx_list *l, uint32_t ci)
{
    if (l->n == 0)
        return;
    ix_other(bd, d, ci);
    ix_restricted(bd, d);
    ix_keys_list(bd, d, tax, l, ci);
}

static void ix_campaign_keys(struct ix_build *bd, const struct cidx_camp *c, uint32_t ci)
{
    static const char *const devices[] = {"phone", "tablet", "desktop", "ctv", "other"};
    uint8_t tax = (uint8_t)c->cat_taxonomy;

    ix_countries(bd, &c->countries, ci);
    ix_include(bd, D_REGION, 0, &c->regions, ci);
    ix_include(bd, D_OS, 0, &c->os, ci);
    ix_include(bd, D_LANG, 0, &c->languages, ci);
    ix_include(bd, D_CAT_INC, tax, &c->cat_include, ci);
    ix_include(bd, D_DOM_ALLOW, 0, &c->domain_allow, ci);
    ix_include(bd, D_BUN_ALLOW, 0, &c->bundle_allow, ci);
    ix_include(bd, D_SEG_INC, 0, &c->seg_include, ci);
    ix_exclude(bd, D_CAT_EXC, tax, &c->cat_exclude, ci);
    ix_exclude(bd, D_DOM_BLOCK, 0, &c->domain_block, ci);
    ix_exclude(bd, D_BUN_BLOCK, 0, &c->bundle_block, ci);
    ix_exclude(bd, D_SEG_EXC, 0, &c->seg_exclude, ci);

    if (c->devices == 0) {
        ix_other(bd, D_DEVICE, ci);
    } else {
        ix_restricted(bd, D_DEVICE);
        for (int k = 0; k < 5; k++) {
            if ((c->devices & (1u << k)) != 0)
                ix_key(bd, D_DEVICE, 0, devices[k], strlen(devices[k]), ci);
        }
    }

    /* Deals: every listed deal is a key (a private auction needs one); only
     * deals_only campaigns restrict the open auction. */
    if (c->deals_only)
        ix_restricted(bd, D_DEAL);
    else
        ix_other(bd, D_DEAL, ci);
    ix_keys_list(bd, D_DEAL, 0, &c->deals, ci);

    /* Formats: every campaign is restricted (it bids on some formats only). */
    ix_restricted(bd, D_FORMAT);
    if ((c->formats & CIDX_FMT_BANNER) != 0) {
        for (uint32_t i = 0; i < c->nsizes; i++)
            ix_key_size(bd, FK_BANNER, c->sizes[i], ci);
    }
    if ((c->formats & CIDX_FMT_NATIVE) != 0) {
        char k = FK_NATIVE;
        ix_key(bd, D_FORMAT, 0, &k, 1, ci);
    }
    if ((c->formats & CIDX_FMT_VIDEO) != 0) {
        if (!c->sizes_listed) {
            char k = FK_VIDEO_ANY;
            ix_key(bd, D_FORMAT, 0, &k, 1, ci);
        } else {
            for (uint32_t i = 0; i < c->nsizes; i++)
                ix_key_size(bd, FK_VIDEO_SIZE, c->sizes[i], ci);
        }
    }
}

static int ix_zone_table_grow(struct ix_build *bd)
{
    uint32_t size = bd->tsize == 0 ? 256 : bd->tsize * 2;
    uint32_t *t = calloc(size, sizeof(*t));

    if (t == NULL)
        return ADS_ENOMEM;
    for (uint32_t z = 0; z < bd->nzones; z++) {
        const char *name = bd->zones[z].name;
        uint32_t h = (uint32_t)ix_hash(0, (const unsigned char *)name, strlen(name)) & (size - 1);
        while (t[h] != 0)
            h = (h + 1) & (size - 1);
        t[h] = z + 1;
    }
    free(bd->ztable);
    bd->ztable = t;
    bd->tsize = size;
    return 0;
}

/* Loads each distinct zone once, with its hour of the week at every slot of
 * the window. zone_of[i] is the zone of record i. */
static int ix_load_zones(struct ix_build *bd, const struct cidx_builder *b)
{
    uint32_t cap = 0;
    int rc;

    if ((bd->zone_of = calloc(b->n + 1, sizeof(*bd->zone_of))) == NULL || (rc = ix_zone_table_grow(bd)) != 0)
        return ADS_ENOMEM;
    for (uint32_t i = 0; i < b->n; i++) {
        const char *name = b->v[i]->time_zone;
        uint32_t h = (uint32_t)ix_hash(0, (const unsigned char *)name, strlen(name)) & (bd->tsize - 1);
        struct ix_zone *z;
        while (bd->ztable[h] != 0 && strcmp(bd->zones[bd->ztable[h] - 1].name, name) != 0)
            h = (h + 1) & (bd->tsize - 1);
        if (bd->ztable[h] != 0) {
            bd->zone_of[i] = bd->ztable[h] - 1;
            continue;
        }
        if (bd->nzones == cap) {
            uint32_t ncap = cap == 0 ? 64 : cap * 2;
            struct ix_zone *v = realloc(bd->zones, sizeof(*v) * ncap);
            if (v == NULL)
                return ADS_ENOMEM;
            bd->zones = v;
            cap = ncap;
        }
        z = &bd->zones[bd->nzones];
        memset(z, 0, sizeof(*z));
        z->name = name;
        rc = tz_load(name, &z->tz);
        if (rc == ADS_ENOMEM)
            return rc;
        if (rc != 0)
            z->tz = NULL; /* unknown or malformed: its campaigns are dropped */
        if (z->tz != NULL) {
            for (uint32_t k = 0; k < CIDX_WINDOW_SLOTS; k++)
                z->how[k] = (uint8_t)ix_hour_of_week(z->tz, (bd->ix->slot0 + k) * CIDX_SLOT_SECONDS);
        }
        bd->zone_of[i] = bd->nzones++;
        if (bd->nzones * 2 > bd->tsize) {
            if (ix_zone_table_grow(bd) != 0)
                return ADS_ENOMEM;
        } else {
            bd->ztable[h] = bd->nzones;
        }
    }
    return 0;
}

static void ix_build_done(struct ix_build *bd)
{
    for (uint32_t z = 0; z < bd->nzones; z++)
        tz_free(bd->zones[z].tz);
    free(bd->zones);
    free(bd->ztable);
    free(bd->zone_of);
    free(bd->kept_zone);
}

static int ix_slot_sets(struct cidx *ix, const struct ix_build *bd)
{
    size_t sw = ix->stride;
    uint64_t *base = calloc(sw + 1, sizeof(*base));
    uint32_t *dayparted = malloc(sizeof(*dayparted) * (ix->n + 1));
    uint32_t nd = 0, nsets = 0;
    int64_t now = ix->built_at;

    ix->slot_sets = malloc(sizeof(uint64_t) * (sw * CIDX_WINDOW_SLOTS + 1));
    if (base == NULL || dayparted == NULL || ix->slot_sets == NULL) {
        free(base);
        free(dayparted);
        return ADS_ENOMEM;
    }
    for (uint32_t i = 0; i < ix->n; i++) {
        const struct cidx_camp *c = ix->camps[i];
        if (now < c->flight_start || now >= c->flight_end)
            continue;
        if (c->has_daypart)
            dayparted[nd++] = i;
        else
            base[i / 64] |= 1ull << (i % 64);
    }
    for (uint32_t k = 0; k < CIDX_WINDOW_SLOTS; k++) {
        uint64_t *set = ix->slot_sets + (size_t)nsets * sw;
        memcpy(set, base, sw * sizeof(*set));
        for (uint32_t j = 0; j < nd; j++) {
            uint32_t i = dayparted[j];
            if (ix_daypart_at(ix->camps[i], bd->zones[bd->kept_zone[i]].how[k]))
                set[i / 64] |= 1ull << (i % 64);
        }
        if (nsets > 0 && memcmp(set, set - sw, sw * sizeof(*set)) == 0) {
            ix->slot_map[k] = (uint16_t)(nsets - 1);
        } else {
            ix->slot_map[k] = (uint16_t)nsets;
            nsets++;
        }
    }
    free(base);
    free(dayparted);
    if (nsets < CIDX_WINDOW_SLOTS) {
        uint64_t *shrunk = realloc(ix->slot_sets, sizeof(uint64_t) * (sw * nsets + 1));
        if (shrunk != NULL)
            ix->slot_sets = shrunk;
    }
    ix->stats.slot_sets = nsets;
    ix->stats.bytes += sizeof(uint64_t) * sw * nsets;
    return 0;
}

static uint64_t ix_seed(const void *p)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ix_hash((uint64_t)(uintptr_t)p, (const unsigned char *)&ts, sizeof(ts));
}

void cidx_free(struct cidx *ix)
{
    if (ix == NULL)
        return;
    for (uint32_t i = 0; i < ix->n; i++)
        cidx_camp_free(ix->camps[i]);
    for (uint32_t z = 0; z < ix->nzones; z++)
        tz_free(ix->zones[z]);
    free(ix->camps);
    free(ix->feats);
    free(ix->briefs);
    free(ix->zones);
    free(ix->table);
    free(ix->entries);
    free(ix->aux);
    free(ix->keys);
    free(ix->dense);
    free(ix->sparse);
    free(ix->other);
    free(ix->present);
    free(ix->slot_sets);
    free(ix);
}

/* Points the index at the records whose zone loaded (borrowed until the
 * build succeeds) and moves the loaded zones into it. */
static int ix_collect(struct cidx *ix, struct ix_build *bd, const struct cidx_builder *b)
{
    bd->kept_zone = malloc(sizeof(*bd->kept_zone) * (b->n + 1));
    ix->camps = malloc(sizeof(*ix->camps) * (b->n + 1));
    ix->zones = malloc(sizeof(*ix->zones) * (bd->nzones + 1));
    if (bd->kept_zone == NULL || ix->camps == NULL || ix->zones == NULL)
        return ADS_ENOMEM;
    for (uint32_t z = 0; z < bd->nzones; z++) {
        if (bd->zones[z].tz != NULL)
            ix->zones[ix->nzones++] = bd->zones[z].tz;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        struct cidx_camp *c = b->v[i];
        uint32_t z = bd->zone_of[i];
        if (bd->zones[z].tz == NULL) {
            ix->stats.dropped_zone++;
            continue;
        }
        c->zone = bd->zones[z].tz;
        bd->kept_zone[ix->n] = z;
        ix->camps[ix->n++] = c;
    }
    for (uint32_t z = 0; z < bd->nzones; z++)
        bd->zones[z].tz = NULL; /* the index owns them */
    return 0;
}

/* The include dimension whose postings live on side 0 of a value space. */
static enum ix_dim ix_space_include(uint8_t space)
{
    for (int d = 0; d < D_FIRST_EXCLUDE; d++) {
        if (ix_dim_space[d] == space)
            return (enum ix_dim)d;
    }
    return D_N;
}

static int ix_compile(struct cidx *ix, struct ix_build *bd)
{
    size_t sw = ix->stride, ndense = 0, nsparse = 0;

    bd->ix = ix;
    bd->pass = 1;
    for (uint32_t i = 0; i < ix->n && bd->rc == 0; i++)
        ix_campaign_keys(bd, ix->camps[i], i);
    if (bd->rc != 0)
        return bd->rc;
    for (uint32_t e = 0; e < ix->nentries; e++) {
        struct ix_entry *en = &ix->entries[e];
        for (int s = 0; s < 2; s++) {
            struct ix_post *p = &en->post[s];
            if (p->count == 0)
                continue;
            if (p->count >= ix->threshold) {
                p->off = (uint32_t)ndense;
                ndense += sw;
                ix->stats.dense++;
            } else {
                p->off = (uint32_t)nsparse;
                nsparse += p->count;
                ix->stats.sparse++;
            }
            if (ndense > UINT32_MAX || nsparse > UINT32_MAX)
                return ADS_ENOMEM;
            ix->aux[e].last[s] = 0;
        }
    }
    ix->dense = calloc(ndense + 1, sizeof(*ix->dense));
    ix->sparse = malloc(sizeof(*ix->sparse) * (nsparse + 1));
    ix->other = calloc((size_t)D_N * sw + 1, sizeof(*ix->other));
    ix->present = calloc(sw + 1, sizeof(*ix->present));
    if (ix->dense == NULL || ix->sparse == NULL || ix->other == NULL || ix->present == NULL)
        return ADS_ENOMEM;
    bd->pass = 2;
    for (uint32_t i = 0; i < ix->n; i++) {
        ix_campaign_keys(bd, ix->camps[i], i);
        ix->present[i / 64] |= 1ull << (i % 64);
    }
    /* Bitset postings of include dimensions absorb the unrestricted set. */
    for (uint32_t e = 0; e < ix->nentries; e++) {
        const struct ix_entry *en = &ix->entries[e];
        enum ix_dim d = ix_space_include(en->key_len <= IX_INLINE_KEY ? en->key[0] : (uint8_t)ix->keys[en->key_off]);
        if (d != D_N && ix_dim_merged(d) && en->post[0].count >= ix->threshold) {
            uint64_t *bits = ix->dense + en->post[0].off;
            const uint64_t *u = ix->other + (size_t)d * sw;
            for (size_t w = 0; w < sw; w++)
                bits[w] |= u[w];
        }
    }
    free(ix->aux);
    ix->aux = NULL;
    if (ix->nentries > 0) {
        /* Entries on cache-line boundaries: one line per lookup that hits. */
        void *mem;
        if (posix_memalign(&mem, 64, sizeof(struct ix_entry) * ix->nentries) != 0)
            return ADS_ENOMEM;
        memcpy(mem, ix->entries, sizeof(struct ix_entry) * ix->nentries);
        free(ix->entries);
        ix->entries = mem;
        ix->entries_cap = ix->nentries;
    }
    ix->stats.keys = ix->nentries;
    ix->stats.bytes += sizeof(uint64_t) * (ndense + (size_t)D_N * sw + sw) + sizeof(uint32_t) * nsparse +
                       sizeof(struct ix_entry) * ix->entries_cap + sizeof(struct ix_slot) * (ix->mask + 1) +
                       ix->keys_cap;
    return 0;
}

/* Hashes each campaign's model tokens once (struct cidx_feat) and copies
 * what the bid path reads of every candidate (struct cidx_brief), in dense
 * arrays next to the records: the bid path reads them in index order instead
 * of formatting and hashing strings and touching a record per candidate. */
static int ix_prepare(struct cidx *ix)
{
    static const char *const fmt[CIDX_CREATIVE_N] = {"banner", "video", "native"};
    void *mem;

    _Static_assert(sizeof(struct cidx_brief) <= 64, "a brief fits a cache line");
    ix->feats = calloc(ix->n + 1, sizeof(*ix->feats));
    if (ix->feats == NULL || posix_memalign(&mem, 64, sizeof(*ix->briefs) * (ix->n + 1)) != 0)
        return ADS_ENOMEM;
    ix->briefs = mem;
    for (uint32_t i = 0; i < ix->n; i++) {
        const struct cidx_camp *c = ix->camps[i];
        struct cidx_feat *f = &ix->feats[i];
        struct cidx_brief *b = &ix->briefs[i];
        size_t idl = strlen(c->id);
        char t[CIDX_ID_MAX + 16];

        f->campaign = ctr_hash(c->id, idl, 0);
        f->advertiser = ctr_hash(c->advertiser, strlen(c->advertiser), 0);
        for (int k = 0; k < CIDX_CREATIVE_N; k++) {
            int n = snprintf(t, sizeof(t), "%s/%s", c->id, fmt[k]);
            f->creative[k] = ctr_hash(t, (size_t)n, 0);
        }
        for (uint32_t k = 0; k < c->creative_categories.n && k < CIDX_FEAT_CATEGORIES; k++)
            f->categories[f->ncategories++] =
                ctr_hash(c->creative_categories.v[k].ptr, c->creative_categories.v[k].len, 0);
        memset(b, 0, sizeof(*b));
        b->bid_micros = c->bid_micros;
        b->ceiling_cpm_micros = c->ceiling_cpm_micros;
        b->daily_budget_micros = c->daily_budget_micros;
        b->total_budget_micros = c->total_budget_micros;
        memcpy(b->currency, c->currency, sizeof(b->currency));
        b->strategy = (uint8_t)c->strategy;
        b->pacing = (uint8_t)c->pacing;
        b->formats = (uint8_t)c->formats;
        b->capped = c->cap_hour != 0 || c->cap_day != 0 || c->cap_lifetime != 0;
        b->sizes_in = 1;
        for (uint32_t k = 0; k < c->nsizes; k++) {
            int bit = cidx_size_bit(ix, c->sizes[k].w, c->sizes[k].h);
            if (bit < 0 && ix->nsize_tab < CIDX_SIZE_BITS) {
                bit = (int)ix->nsize_tab;
                ix->size_tab[ix->nsize_tab++] = c->sizes[k];
            }
            if (bit < 0)
                b->sizes_in = 0;
            else
                b->size_bits |= 1ull << bit;
        }
    }
    ix->stats.bytes += (sizeof(*ix->feats) + sizeof(*ix->briefs)) * ix->n;
    return 0;
}

int cidx_build(struct cidx_builder *b, int64_t now, struct cidx **ret)
{
    struct ix_build bd;
    struct cidx *ix = calloc(1, sizeof(*ix));
    int rc;

    memset(&bd, 0, sizeof(bd));
    if (ix == NULL)
        return ADS_ENOMEM;
    ix->built_at = now;
    ix->slot0 = ix_floor_div(now, CIDX_SLOT_SECONDS);
    ix->seed = ix_seed(ix);
    bd.ix = ix;
    if ((rc = ix_load_zones(&bd, b)) == 0 && (rc = ix_collect(ix, &bd, b)) == 0) {
        ix->nwords = (ix->n + 63) / 64;
        ix->stride = (ix->nwords + IX_PAD - 1) / IX_PAD * IX_PAD;
        ix->threshold = (uint32_t)(ix->nwords / 2 > 4 ? ix->nwords / 2 : 4);
        ix->stats.campaigns = ix->n;
        if ((rc = ix_compile(ix, &bd)) == 0 && (rc = ix_slot_sets(ix, &bd)) == 0)
            rc = ix_prepare(ix);
    }
    ix_build_done(&bd);
    if (rc != 0) {
        /* The records stay the builder's, as they were. */
        for (uint32_t i = 0; i < ix->n; i++)
            ix->camps[i]->zone = NULL;
        ix->n = 0;
        cidx_free(ix);
        return rc;
    }
    /* Success: the index owns the records it kept; the others go. */
    for (uint32_t i = 0; i < b->n; i++) {
        if (b->v[i]->zone == NULL)
            cidx_camp_free(b->v[i]);
    }
    ix->stats.zones = ix->nzones;
    ix->stats.dropped_inactive = b->dropped_inactive;
    b->n = 0;
    b->dropped_inactive = 0;
    ix->valid_until = (ix->slot0 + CIDX_WINDOW_SLOTS) * CIDX_SLOT_SECONDS;
    for (uint32_t i = 0; i < ix->n; i++) {
        const struct cidx_camp *c = ix->camps[i];
        if (c->flight_start > now && c->flight_start < ix->valid_until)
            ix->valid_until = c->flight_start;
        if (c->flight_end > now && c->flight_end < ix->valid_until)
            ix->valid_until = c->flight_end;
    }
    ix->stats.bytes += sizeof(*ix) + sizeof(*ix->camps) * ix->n;
    *ret = ix;
    return 0;
}

void cidx_stats(const struct cidx *ix, struct cidx_stats *ret)
{
    *ret = ix->stats;
}

uint32_t cidx_count(const struct cidx *ix)
{
    return ix->n;
}

size_t cidx_words(const struct cidx *ix)
{
    return ix->nwords;
}

const struct cidx_camp *cidx_camp(const struct cidx *ix, uint32_t i)
{
    return i < ix->n ? ix->camps[i] : NULL;
}

const struct cidx_feat *cidx_feats(const struct cidx *ix)
{
    return ix->feats;
}

const struct cidx_brief *cidx_briefs(const struct cidx *ix)
{
    return ix->briefs;
}

int cidx_size_bit(const struct cidx *ix, uint16_t w, uint16_t h)
{
    for (uint32_t i = 0; i < ix->nsize_tab; i++)
        if (ix->size_tab[i].w == w && ix->size_tab[i].h == h)
            return (int)i;
    return -1;
}

int64_t cidx_built_at(const struct cidx *ix)
{
    return ix->built_at;
}

int64_t cidx_valid_until(const struct cidx *ix)
{
    return ix->valid_until;
}

/* ==== the query ====
 *
 * The request's values are looked up first; each hit becomes a term of its
 * dimension: a bitset, or a sorted list of campaign numbers with a cursor.
 * Then, one chunk of words at a time, each dimension's OR of its terms is
 * ANDed into the result (or its complement, for the exclusions). Lists are
 * walked once in all (their cursors only move forward). Everything lives on
 * the stack; Q_MAX_TERMS bounds the terms the request limits allow. */

#define Q_MAX_LABELS CIDX_Q_MAX_LABELS

/* Per dimension one "other" set, plus one hit per value looked up: formats
 * (sizes, native, video twice), country, device, os (a prefix per word
 * boundary), language (a prefix per subtag), region, deals; and for each
 * value of a paired space (categories, segments, parent domains, bundle) both
 * of its postings. q_add_bits() and q_add_post() never meet the bound. */
#define Q_MAX_TERMS                                                                                                    \
    (D_N + (CIDX_Q_MAX_SIZES + 3) + 1 + 1 + CIDX_OS_MAX + (CIDX_LANGUAGE_MAX / 2 + 1) + 1 + CIDX_Q_MAX_DEALS +         \
     2 * (CIDX_Q_MAX_CATEGORIES + CIDX_Q_MAX_SEGMENTS + Q_MAX_LABELS + 1))
#define Q_MAX_HITS CIDX_Q_MAX_SEGMENTS /* the longest list of one space looked up */

struct q_list {
    const uint32_t *v;
    uint32_t n, cur;
};

struct q_dim {
    uint16_t dense_first, ndense;
    uint16_t list_first, nlists;
    bool exclude;
};

struct q_ctx {
    const struct cidx *ix;
    uint32_t ndense, nlists, ndims;
    bool empty; /* an include dimension has no term: nothing is eligible */
    struct q_dim dims[D_N];
    const uint64_t *dense[Q_MAX_TERMS];
    struct q_list lists[Q_MAX_TERMS];
    const struct ix_entry *hits[Q_MAX_HITS];
    uint32_t nhits;
    unsigned char key[IX_KEY_MAX];
};

static const uint64_t *q_other(const struct q_ctx *qc, enum ix_dim d)
{
    return qc->ix->other + (size_t)d * qc->ix->stride;
}

static void q_dim_begin(struct q_ctx *qc, enum ix_dim d)
{
    struct q_dim *qd = &qc->dims[qc->ndims++];

    qd->dense_first = (uint16_t)qc->ndense;
    qd->list_first = (uint16_t)qc->nlists;
    qd->ndense = qd->nlists = 0;
    qd->exclude = d >= D_FIRST_EXCLUDE;
}

static void q_add_bits(struct q_ctx *qc, const uint64_t *bits)
{
    if (qc->ndense < Q_MAX_TERMS) {
        qc->dense[qc->ndense++] = bits;
        qc->dims[qc->ndims - 1].ndense++;
    }
}

static void q_add_post(struct q_ctx *qc, const struct ix_post *p)
{
    if (p->count == 0)
        return;
    if (p->count >= qc->ix->threshold) {
        q_add_bits(qc, qc->ix->dense + p->off);
    } else if (qc->nlists < Q_MAX_TERMS) {
        qc->lists[qc->nlists++] = (struct q_list){qc->ix->sparse + p->off, p->count, 0};
        qc->dims[qc->ndims - 1].nlists++;
    }
}

/* Closes a dimension. An include dimension without a bitset hit gets its
 * unrestricted set (bitset hits of merged dimensions hold it already); one
 * left without any term empties the result. An exclusion that matched
 * nothing is dropped. */
static void q_dim_end(struct q_ctx *qc, enum ix_dim d, bool with_other)
{
    struct q_dim *qd = &qc->dims[qc->ndims - 1];

    if (d < D_FIRST_EXCLUDE) {
        if (with_other && (qd->ndense == 0 || !ix_dim_merged(d)))
            q_add_bits(qc, q_other(qc, d));
        if (qd->ndense == 0 && qd->nlists == 0)
            qc->empty = true;
    } else if (qd->ndense == 0 && qd->nlists == 0) {
        qc->ndims--;
    }
}

/* Writes the key of value @p val of value space @p space into qc->key;
 * returns its length, 0 when no key can be that long. */
static size_t q_key(struct q_ctx *qc, uint8_t space, uint8_t tax, const char *val, size_t len)
{
    size_t n = 0;

    if (len == 0 || len > CIDX_DOMAIN_MAX)
        return 0;
    qc->key[n++] = space;
    if (tax != 0)
        qc->key[n++] = tax;
    memcpy(qc->key + n, val, len);
    return n + len;
}

/* Looks up value @p val of value space @p space; NULL when absent. */
static const struct ix_entry *q_find(struct q_ctx *qc, uint8_t space, uint8_t tax, const char *val, size_t len)
{
    size_t n = q_key(qc, space, tax, val, len);

    return n == 0 ? NULL : ix_find(qc->ix, qc->key, n);
}

static void q_lookup(struct q_ctx *qc, enum ix_dim d, const char *val, size_t len)
{
    const struct ix_entry *e = q_find(qc, ix_dim_space[d], 0, val, len);

    if (e != NULL)
        q_add_post(qc, &e->post[0]);
}

/* Copies @p s folded to case into @p dst (cap bytes); 0 when it does not fit. */
static size_t q_fold(char *dst, size_t cap, struct cidx_str s, enum cc_fold fold)
{
    if (s.ptr == NULL || s.len == 0 || s.len > cap)
        return 0;
    for (size_t i = 0; i < s.len; i++)
        dst[i] = cc_fold_char(s.ptr[i], fold);
    return s.len;
}

static bool q_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static void q_simple(struct q_ctx *qc, enum ix_dim d, struct cidx_str v, size_t max, enum cc_fold fold)
{
    char buf[CIDX_BUNDLE_MAX];
    size_t n;

    q_dim_begin(qc, d);
    if ((n = q_fold(buf, max, v, fold)) > 0)
        q_lookup(qc, d, buf, n);
    q_dim_end(qc, d, true);
}

/* The request's country, keyed as the build keys campaign countries (ix_countries). */
static void q_country(struct q_ctx *qc, const struct cidx_query *q)
{
    const char *a2 = ix_alpha2(q->country.ptr, q->country.len);

    if (a2 != NULL)
        q_simple(qc, D_COUNTRY, (struct cidx_str){a2, 2}, CIDX_COUNTRY_MAX, CC_UPPER);
    else
        q_simple(qc, D_COUNTRY, q->country, CIDX_COUNTRY_MAX, CC_UPPER);
}

static void q_region(struct q_ctx *qc, const struct cidx_query *q)
{
    char buf[CIDX_REGION_MAX];
    char cc[CIDX_COUNTRY_MAX];
    const char *a2 = ix_alpha2(q->country.ptr, q->country.len);
    struct cidx_str country = a2 != NULL ? (struct cidx_str){a2, 2} : q->country; /* "USA" and "TX" make "US-TX" */
    size_t n = 0;

    q_dim_begin(qc, D_REGION);
    if (q->region.ptr != NULL && q->region.len > 0) {
        if (memchr(q->region.ptr, '-', q->region.len) != NULL) {
            n = q_fold(buf, sizeof(buf), q->region, CC_UPPER); /* already "US-TX" */
        } else if (q_fold(cc, sizeof(cc), country, CC_UPPER) == 2 && q->region.len <= CIDX_REGION_MAX - 3) {
            memcpy(buf, cc, 2);
            buf[2] = '-';
            n = 3 + q_fold(buf + 3, sizeof(buf) - 3, q->region, CC_UPPER);
        }
        if (n > 0)
            q_lookup(qc, D_REGION, buf, n);
    }
    q_dim_end(qc, D_REGION, true);
}

static void q_os(struct q_ctx *qc, const struct cidx_query *q)
{
    char buf[CIDX_OS_MAX + 1];
    size_t n;

    q_dim_begin(qc, D_OS);
    if (q->os.ptr != NULL && q->os.len > 0) {
        /* Only prefixes of up to CIDX_OS_MAX bytes can match, and one more
         * byte tells whether a prefix ends at a word boundary. */
        n = q->os.len < sizeof(buf) ? q->os.len : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = cc_fold_char(q->os.ptr[i], CC_LOWER);
        for (size_t k = 1; k <= n && k <= CIDX_OS_MAX; k++) {
            if (k == q->os.len || !q_alnum(buf[k]))
                q_lookup(qc, D_OS, buf, k);
        }
    }
    q_dim_end(qc, D_OS, true);
}

static void q_language(struct q_ctx *qc, const struct cidx_query *q)
{
    char buf[CIDX_LANGUAGE_MAX];
    size_t n;

    q_dim_begin(qc, D_LANG);
    if (q->language.ptr != NULL && q->language.len > 0) {
        n = q->language.len < sizeof(buf) ? q->language.len : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = q->language.ptr[i] == '_' ? '-' : cc_fold_char(q->language.ptr[i], CC_LOWER);
        for (size_t k = 1; k <= n; k++) {
            bool boundary = k == q->language.len ||
                            (k < n ? buf[k] == '-' : q->language.ptr[k] == '-' || q->language.ptr[k] == '_');
            if (boundary)
                q_lookup(qc, D_LANG, buf, k);
        }
    }
    q_dim_end(qc, D_LANG, true);
}

/* The hashes of a list's keys, and a prefetch of their table slots: issued
 * before the other dimensions are looked up, so that the cache misses of a
 * long list (a user's segments) overlap each other and that work. */
static void q_prefetch(struct q_ctx *qc, uint8_t space, uint8_t tax, const struct cidx_str *v, uint32_t n, uint64_t *h)
{
    const struct cidx *ix = qc->ix;

    for (uint32_t i = 0; i < n; i++) {
        size_t len = v[i].ptr != NULL ? q_key(qc, space, tax, v[i].ptr, v[i].len) : 0;
        h[i] = len > 0 ? ix_hash(ix->seed, qc->key, len) : 0;
        __builtin_prefetch(&ix->table[(uint32_t)h[i] & ix->mask]);
    }
}

/* Looks up the first @p n values of a list in @p space, whose q_prefetch()
 * hashes are @p h, into qc->hits. The slots are read first and the entries
 * they point to prefetched, again so that the misses overlap. */
static void q_hits(struct q_ctx *qc, uint8_t space, uint8_t tax, const struct cidx_str *v, uint32_t n,
                   const uint64_t *h)
{
    const struct cidx *ix = qc->ix;

    qc->nhits = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct ix_slot *slot = &ix->table[(uint32_t)h[i] & ix->mask];
        if (slot->entry != 0)
            __builtin_prefetch(&ix->entries[slot->entry - 1]);
    }
    for (uint32_t i = 0; i < n && qc->nhits < Q_MAX_HITS; i++) {
        size_t len = v[i].ptr != NULL ? q_key(qc, space, tax, v[i].ptr, v[i].len) : 0;
        const struct ix_entry *e = len > 0 ? ix_find_hashed(ix, h[i], qc->key, len) : NULL;
        if (e != NULL)
            qc->hits[qc->nhits++] = e;
    }
}

/* The include and the exclude dimension of a paired space, from qc->hits.
 * @p too_many: the request's list was longer than looked up, or its value
 * could not be looked up; then every campaign with an exclusion is out. */
static void q_pair(struct q_ctx *qc, enum ix_dim inc, enum ix_dim exc, bool include_given, bool too_many)
{
    if (qc->ix->restricted[inc] > 0) {
        q_dim_begin(qc, inc);
        for (uint32_t i = 0; i < qc->nhits && include_given; i++)
            q_add_post(qc, &qc->hits[i]->post[0]);
        q_dim_end(qc, inc, true);
    }
    if (qc->ix->restricted[exc] > 0) {
        q_dim_begin(qc, exc);
        if (too_many) {
            q_add_bits(qc, q_other(qc, exc));
        } else {
            for (uint32_t i = 0; i < qc->nhits; i++)
                q_add_post(qc, &qc->hits[i]->post[1]);
        }
        q_dim_end(qc, exc, false);
    }
}

static void q_list_pair(struct q_ctx *qc, enum ix_dim inc, enum ix_dim exc, uint8_t tax, const struct cidx_str *v,
                        uint32_t n, uint32_t max, const uint64_t *h)
{
    if (qc->ix->restricted[inc] == 0 && qc->ix->restricted[exc] == 0)
        return;
    q_hits(qc, ix_dim_space[inc], tax, v, n < max ? n : max, h);
    q_pair(qc, inc, exc, true, n > max);
}

/* Looks up the domain and each parent domain of at least two labels. */
static void q_domain(struct q_ctx *qc, const struct cidx_query *q)
{
    char buf[CIDX_DOMAIN_MAX];
    struct cidx_str dom = q->domain;
    size_t n = 0, start = 0;
    bool given = dom.ptr != NULL && dom.len > 0, too_long = false;

    if (qc->ix->restricted[D_DOM_ALLOW] == 0 && qc->ix->restricted[D_DOM_BLOCK] == 0)
        return;
    qc->nhits = 0;
    if (given && dom.ptr[dom.len - 1] == '.')
        dom.len--;
    if (given && (n = q_fold(buf, sizeof(buf), dom, CC_LOWER)) == 0)
        too_long = true;
    if (n > 0) {
        uint32_t labels = 1;
        for (size_t i = 0; i < n; i++)
            labels += buf[i] == '.';
        if (labels > Q_MAX_LABELS) {
            too_long = true;
            n = 0;
        }
    }
    while (n > 0) {
        const char *dot = memchr(buf + start, '.', n - start);
        const struct ix_entry *e;
        if (dot == NULL)
            break; /* a single label is never a listed domain */
        if ((e = q_find(qc, S_DOM, 0, buf + start, n - start)) != NULL && qc->nhits < Q_MAX_HITS)
            qc->hits[qc->nhits++] = e;
        start = (size_t)(dot - buf) + 1;
    }
    /* Without a domain there are no hits: allow lists cannot match and the
     * block dimension is dropped. */
    q_pair(qc, D_DOM_ALLOW, D_DOM_BLOCK, !too_long, too_long);
}

static void q_bundle(struct q_ctx *qc, const struct cidx_query *q)
{
    bool given = q->bundle.ptr != NULL && q->bundle.len > 0, too_long = q->bundle.len > CIDX_BUNDLE_MAX;
    const struct ix_entry *e;

    if (qc->ix->restricted[D_BUN_ALLOW] == 0 && qc->ix->restricted[D_BUN_BLOCK] == 0)
        return;
    qc->nhits = 0;
    if (given && !too_long && (e = q_find(qc, S_BUN, 0, q->bundle.ptr, q->bundle.len)) != NULL)
        qc->hits[qc->nhits++] = e;
    q_pair(qc, D_BUN_ALLOW, D_BUN_BLOCK, true, given && too_long);
}

static void q_size_key(char *k, char tag, struct cidx_size s)
{
    k[0] = tag;
    k[1] = (char)(s.w >> 8);
    k[2] = (char)(s.w & 0xff);
    k[3] = (char)(s.h >> 8);
    k[4] = (char)(s.h & 0xff);
}

static void q_formats(struct q_ctx *qc, const struct cidx_query *q)
{
    char k[5];

    q_dim_begin(qc, D_FORMAT);
    if ((q->formats & CIDX_FMT_BANNER) != 0) {
        for (uint32_t i = 0; i < q->nbanner_sizes && i < CIDX_Q_MAX_SIZES; i++) {
            q_size_key(k, FK_BANNER, q->banner_sizes[i]);
            q_lookup(qc, D_FORMAT, k, 5);
        }
    }
    if ((q->formats & CIDX_FMT_NATIVE) != 0) {
        k[0] = FK_NATIVE;
        q_lookup(qc, D_FORMAT, k, 1);
    }
    if ((q->formats & CIDX_FMT_VIDEO) != 0) {
        k[0] = FK_VIDEO_ANY;
        q_lookup(qc, D_FORMAT, k, 1);
        if (q->video_size.w != 0 && q->video_size.h != 0) {
            q_size_key(k, FK_VIDEO_SIZE, q->video_size);
            q_lookup(qc, D_FORMAT, k, 5);
        }
    }
    q_dim_end(qc, D_FORMAT, false);
}

static void q_deals(struct q_ctx *qc, const struct cidx_query *q)
{
    if (qc->ix->restricted[D_DEAL] == 0 && !q->private_auction)
        return;
    q_dim_begin(qc, D_DEAL);
    for (uint32_t i = 0; i < q->ndeals && i < CIDX_Q_MAX_DEALS; i++) {
        if (q->deals[i].ptr != NULL && q->deals[i].len <= CIDX_DEAL_MAX)
            q_lookup(qc, D_DEAL, q->deals[i].ptr, q->deals[i].len);
    }
    /* In the open auction the campaigns that are not deals_only bid too. */
    q_dim_end(qc, D_DEAL, !q->private_auction);
}

/* Builds the terms of every dimension that restricts some campaign (an
 * include dimension no campaign restricts passes everything). */
static void q_prepare(struct q_ctx *qc, const struct cidx_query *q)
{
    const struct cidx *ix = qc->ix;
    uint8_t tax = (uint8_t)q->cattax;
    /* Ids of another taxonomy than a campaign's match none of its lists. */
    uint32_t ncat = tax == 0 ? 0 : q->ncategories, nseg = q->nsegments;
    uint64_t cat_h[CIDX_Q_MAX_CATEGORIES], seg_h[CIDX_Q_MAX_SEGMENTS];

    qc->ndense = qc->nlists = qc->ndims = 0;
    qc->empty = false;
    if (ix->restricted[D_CAT_INC] > 0 || ix->restricted[D_CAT_EXC] > 0)
        q_prefetch(qc, S_CAT, tax, q->categories, ncat < CIDX_Q_MAX_CATEGORIES ? ncat : CIDX_Q_MAX_CATEGORIES, cat_h);
    if (ix->restricted[D_SEG_INC] > 0 || ix->restricted[D_SEG_EXC] > 0)
        q_prefetch(qc, S_SEG, 0, q->segments, nseg < CIDX_Q_MAX_SEGMENTS ? nseg : CIDX_Q_MAX_SEGMENTS, seg_h);
    q_formats(qc, q);
    if (ix->restricted[D_COUNTRY] > 0)
        q_country(qc, q);
    if (ix->restricted[D_DEVICE] > 0)
        q_simple(qc, D_DEVICE, q->device, 8, CC_LOWER);
    if (ix->restricted[D_OS] > 0)
        q_os(qc, q);
    if (ix->restricted[D_LANG] > 0)
        q_language(qc, q);
    if (ix->restricted[D_REGION] > 0)
        q_region(qc, q);
    q_list_pair(qc, D_CAT_INC, D_CAT_EXC, tax, q->categories, ncat, CIDX_Q_MAX_CATEGORIES, cat_h);
    q_list_pair(qc, D_SEG_INC, D_SEG_EXC, 0, q->segments, nseg, CIDX_Q_MAX_SEGMENTS, seg_h);
    q_domain(qc, q);
    q_bundle(qc, q);
    q_deals(qc, q);
}

/* Word loops over a whole number of IX_PAD-word groups (bitsets are padded),
 * on pointers that do not alias: the shape GCC vectorises at -O2. */
static void q_and(uint64_t *restrict r, const uint64_t *restrict p, size_t len)
{
    for (size_t j = 0; j < len; j += IX_PAD) {
        for (size_t k = 0; k < IX_PAD; k++)
            r[j + k] &= p[j + k];
    }
}

static void q_andnot(uint64_t *restrict r, const uint64_t *restrict p, size_t len)
{
    for (size_t j = 0; j < len; j += IX_PAD) {
        for (size_t k = 0; k < IX_PAD; k++)
            r[j + k] &= ~p[j + k];
    }
}

static void q_and_or(uint64_t *restrict r, const uint64_t *restrict p, const uint64_t *restrict p2, size_t len)
{
    for (size_t j = 0; j < len; j += IX_PAD) {
        for (size_t k = 0; k < IX_PAD; k++)
            r[j + k] &= p[j + k] | p2[j + k];
    }
}

static void q_copy(uint64_t *restrict r, const uint64_t *restrict p, size_t len)
{
    for (size_t j = 0; j < len; j += IX_PAD) {
        for (size_t k = 0; k < IX_PAD; k++)
            r[j + k] = p[j + k];
    }
}

static void q_zero(uint64_t *r, size_t len)
{
    for (size_t j = 0; j < len; j += IX_PAD) {
        for (size_t k = 0; k < IX_PAD; k++)
            r[j + k] = 0;
    }
}

static void q_or(uint64_t *restrict acc, const uint64_t *restrict p, size_t len)
{
    for (size_t j = 0; j < len; j += IX_PAD) {
        for (size_t k = 0; k < IX_PAD; k++)
            acc[j + k] |= p[j + k];
    }
}

static unsigned q_popcount(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

/* Sets (or, with @p clear, clears) in acc (words from w0 on) the list
 * entries below campaign @p hi. */
static void q_scatter(struct q_ctx *qc, const struct q_dim *qd, size_t w0, uint32_t hi, uint64_t *acc, bool clear)
{
    for (uint32_t t = qd->list_first; t < (uint32_t)qd->list_first + qd->nlists; t++) {
        struct q_list *l = &qc->lists[t];
        while (l->cur < l->n && l->v[l->cur] < hi) {
            uint32_t i = l->v[l->cur++];
            if (clear)
                acc[i / 64 - w0] &= ~(1ull << (i % 64));
            else
                acc[i / 64 - w0] |= 1ull << (i % 64);
        }
    }
}

/* ANDs every dimension into r, the words [w0, w0 + len) of the result (len a
 * multiple of IX_PAD), dimension by dimension: long loops the compiler
 * vectorises. An exclusion removes its bitsets and clears its list entries
 * in r directly; an include dimension of one or two bitsets is ANDed
 * directly; only other include dimensions OR their terms in an accumulator. */
static inline __attribute__((always_inline)) void q_chunk(struct q_ctx *qc, size_t w0, size_t len,
                                                          uint64_t *restrict r)
{
    uint64_t acc[IX_CHUNK];
    uint32_t hi = (uint32_t)((w0 + len) * 64);

    for (uint32_t d = 0; d < qc->ndims; d++) {
        const struct q_dim *qd = &qc->dims[d];
        const uint64_t *const *dense = &qc->dense[qd->dense_first];
        if (qd->exclude) {
            for (uint32_t t = 0; t < qd->ndense; t++)
                q_andnot(r, dense[t] + w0, len);
            q_scatter(qc, qd, w0, hi, r, true);
        } else if (qd->nlists == 0 && qd->ndense == 1) {
            q_and(r, dense[0] + w0, len);
        } else if (qd->nlists == 0 && qd->ndense == 2) {
            q_and_or(r, dense[0] + w0, dense[1] + w0, len);
        } else {
            if (qd->ndense == 0)
                q_zero(acc, len);
            else
                q_copy(acc, dense[0] + w0, len);
            for (uint32_t t = 1; t < qd->ndense; t++)
                q_or(acc, dense[t] + w0, len);
            q_scatter(qc, qd, w0, hi, acc, false);
            q_and(r, acc, len);
        }
    }
}

/* Cloned for AVX2 where the CPU has it (chosen once, at load): the word
 * loops inlined here then handle four words per instruction instead of two. */
__attribute__((target_clones("avx2", "default"))) static uint32_t q_run(struct q_ctx *qc, const uint64_t *base,
                                                                         uint64_t *out)
{
    size_t nw = qc->ix->nwords, stride = qc->ix->stride;
    uint64_t r[IX_CHUNK];
    uint32_t count = 0;

    for (size_t w0 = 0; w0 < stride; w0 += IX_CHUNK) {
        size_t len = stride - w0 < IX_CHUNK ? stride - w0 : IX_CHUNK;
        size_t keep = nw - w0 < len ? nw - w0 : len;
        q_copy(r, base + w0, len);
        q_chunk(qc, w0, len, r);
        memcpy(out + w0, r, keep * sizeof(*r));
        for (size_t j = 0; j < keep; j++) {
            if (r[j] != 0)
                count += q_popcount(r[j]);
        }
    }
    return count;
}

/* Flight and dayparting of one campaign at @p now, as the slot sets encode
 * them: for the queries that fall outside the precomputed window. */
static bool q_time_ok(const struct cidx_camp *c, int64_t now)
{
    int64_t slot_start = ix_floor_div(now, CIDX_SLOT_SECONDS) * CIDX_SLOT_SECONDS;

    if (now < c->flight_start || now >= c->flight_end)
        return false;
    return !c->has_daypart || ix_daypart_at(c, ix_hour_of_week(c->zone, slot_start));
}

uint32_t cidx_eligible(const struct cidx *ix, const struct cidx_query *q, uint64_t *out)
{
    struct q_ctx qc;
    uint32_t count;

    if (ix->n == 0)
        return 0;
    qc.ix = ix;
    q_prepare(&qc, q);
    if (qc.empty) {
        memset(out, 0, ix->nwords * sizeof(*out));
        return 0;
    }
    if (q->now >= ix->built_at && q->now < ix->valid_until) {
        int64_t k = ix_floor_div(q->now, CIDX_SLOT_SECONDS) - ix->slot0;
        return q_run(&qc, ix->slot_sets + (size_t)ix->slot_map[k] * ix->stride, out);
    }
    count = q_run(&qc, ix->present, out);
    for (size_t w = 0; w < ix->nwords; w++) {
        uint64_t bits = out[w];
        while (bits != 0) {
            unsigned b = (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (!q_time_ok(ix->camps[w * 64 + b], q->now)) {
                out[w] &= ~(1ull << b);
                count--;
            }
        }
    }
    return count;
}
