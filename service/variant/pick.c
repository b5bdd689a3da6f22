/* The serving side of variants (variant.h): the snapshot, Thompson sampling, slot filling. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/camps.h"
#include "adsmith/doc.h"
#include "adsmith/variant.h"

/*
 * Beta draws: Beta(a, b) = X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b),
 * each by Marsaglia and Tsang's method (a >= 1 always holds: a = clicks + 1).
 * Its normal deviates come from a table of 1024 quantiles (one lookup per
 * deviate, tails cut at 3.3 sigma): the draw is a little narrower than the
 * exact posterior, which only makes the bandit explore slightly less. For a
 * shape of VPICK_WH_MIN or more the method's proposal d (1 + c z)^3 is taken
 * without its accept step: that is the Wilson-Hilferty approximation, whose
 * error at shape 10 is already far below the posterior's own spread, and it
 * saves a uniform and the occasional log. Once both parameters exceed
 * VPICK_NORMAL_MIN the posterior is close to normal and is drawn as
 * mean + sd * z, one lookup.
 */
#define VPICK_NTAB 1024 /* 8 KiB: stays in L1 */
#define VPICK_WH_MIN 10.0
#define VPICK_NORMAL_MIN 30.0

static double vpick_ztab[VPICK_NTAB];
static pthread_once_t vpick_ztab_once = PTHREAD_ONCE_INIT;

static void vpick_ztab_init(void)
{
    for (int i = 0; i < VPICK_NTAB; i++) {
        double p = (i + 0.5) / VPICK_NTAB, lo = -9, hi = 9;
        for (int k = 0; k < 60; k++) {
            double mid = 0.5 * (lo + hi);
            if (0.5 * erfc(-mid / sqrt(2.0)) < p)
                lo = mid;
            else
                hi = mid;
        }
        vpick_ztab[i] = 0.5 * (lo + hi);
    }
}

void vpick_rng_seed(struct vpick_rng *r, uint64_t seed)
{
    pthread_once(&vpick_ztab_once, vpick_ztab_init);
    /* splitmix64 of the seed, so that nearby seeds start far apart; never 0. */
    seed += 0x9e3779b97f4a7c15ull;
    seed = (seed ^ (seed >> 30)) * 0xbf58476d1ce4e5b9ull;
    seed = (seed ^ (seed >> 27)) * 0x94d049bb133111ebull;
    seed ^= seed >> 31;
    r->s = seed != 0 ? seed : 0x2545f4914f6cdd1dull;
}

static inline uint64_t vpick_next(struct vpick_rng *r)
{
    uint64_t x = r->s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

double vpick_uniform(struct vpick_rng *r)
{
    return (double)(vpick_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double vpick_normal(struct vpick_rng *r)
{
    return vpick_ztab[vpick_next(r) >> 54];
}

static double vpick_gamma(double d, double c, struct vpick_rng *r)
{
    if (d >= VPICK_WH_MIN) {
        double v = 1.0 + c * vpick_normal(r);
        return v > 0 ? d * v * v * v : 0;
    }
    for (;;) {
        double z = vpick_normal(r), v = 1.0 + c * z, u, z2;
        if (v <= 0)
            continue;
        v = v * v * v;
        u = vpick_uniform(r);
        z2 = z * z;
        if (u < 1.0 - 0.0331 * z2 * z2)
            return d * v;
        if (u > 0 && log(u) < 0.5 * z2 + d * (1.0 - v + log(v)))
            return d * v;
    }
}

double vpick_sample(const struct vpick_variant *v, struct vpick_rng *r)
{
    double x, y;

    if (v->alpha > VPICK_NORMAL_MIN && v->beta > VPICK_NORMAL_MIN) {
        x = v->mean + v->sd * vpick_normal(r);
        return x < 0 ? 0 : x > 1 ? 1 : x;
    }
    x = vpick_gamma(v->g_d[0], v->g_c[0], r);
    y = vpick_gamma(v->g_d[1], v->g_c[1], r);
    return x + y > 0 ? x / (x + y) : v->mean;
}

/* ---- the snapshot ---- */

static struct cidx_str str_of(const msgpack_object *o)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR)
        return (struct cidx_str){NULL, 0};
    return (struct cidx_str){o->via.str.ptr, o->via.str.size};
}

static int64_t int_of(const msgpack_object *o)
{
    if (o == NULL)
        return 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
        return (int64_t)o->via.f64;
    return 0;
}

struct vpick_camp {
    char id[CIDX_ID_MAX + 1];
    char fallback[VAR_LOCALE_MAX + 1]; /* generation.locales[0]; "" unknown */
    uint32_t first, n;                 /* its variants: vars[first .. first + n) */
    struct vpick_slots *slots;         /* owned */
};

struct vpick_set {
    struct vpick_camp *camps;
    size_t ncamps, capcamps;
    struct vpick_variant *vars;
    size_t nvars, capvars;
};

void vpick_set_free(struct vpick_set *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->nvars; i++)
        free((void *)v->vars[i].title); /* one allocation holds every string of a variant */
    free(v->vars);
    for (size_t i = 0; i < v->ncamps; i++)
        free(v->camps[i].slots);
    free(v->camps);
    free(v);
}

size_t vpick_set_count(const struct vpick_set *v)
{
    return v != NULL ? v->nvars : 0;
}

static size_t primary_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] != '-' && s[i] != '_')
        i++;
    return i;
}

static void vpick_posterior(struct vpick_variant *v, const struct var_stats *st)
{
    uint64_t clicks = st->clicks < st->impressions ? st->clicks : st->impressions;
    double a = (double)clicks + 1.0, b = (double)(st->impressions - clicks) + 1.0;

    v->alpha = a;
    v->beta = b;
    v->mean = a / (a + b);
    v->sd = sqrt(a * b / ((a + b) * (a + b) * (a + b + 1.0)));
    v->g_d[0] = a - 1.0 / 3.0;
    v->g_c[0] = 1.0 / sqrt(9.0 * v->g_d[0]);
    v->g_d[1] = b - 1.0 / 3.0;
    v->g_c[1] = 1.0 / sqrt(9.0 * v->g_d[1]);
}

static char *vpick_strs(const struct var_rec *r, const char **ret_ptrs)
{
    const char *src[6] = {r->title, r->description, r->cta, r->ai_label, r->segment, r->locale};
    size_t len[6], total = 0;
    char *mem, *p;

    for (int i = 0; i < 6; i++)
        total += (len[i] = strlen(src[i])) + 1;
    if ((mem = malloc(total)) == NULL)
        return NULL;
    p = mem;
    for (int i = 0; i < 6; i++) {
        memcpy(p, src[i], len[i] + 1);
        ret_ptrs[i] = p;
        p += len[i] + 1;
    }
    return mem;
}

struct vpick_builder {
    MDB_txn *txn;
    struct store *s;
    struct vpick_set *set;
    const struct vpick_slots *slots; /* of the campaign being read */
};

static int8_t source_kind(struct cidx_str src);

static int vpick_add(struct vpick_builder *b, const struct var_rec *r)
{
    struct vpick_set *v = b->set;
    struct vpick_variant *x;
    struct var_stats st;
    const char *p[6];
    int rc;

    if (v->nvars == v->capvars) {
        size_t cap = v->capvars ? v->capvars * 2 : 64;
        struct vpick_variant *n = realloc(v->vars, cap * sizeof(*n));
        if (n == NULL)
            return ADS_ENOMEM;
        v->vars = n;
        v->capvars = cap;
    }
    if ((rc = var_stats_get(b->txn, b->s, r->campaign, r->id, &st)) != 0)
        st = (struct var_stats){0, 0, 0}; /* unreadable statistics: a fresh posterior */
    x = &v->vars[v->nvars];
    memset(x, 0, sizeof(*x));
    if (vpick_strs(r, p) == NULL)
        return ADS_ENOMEM;
    memcpy(x->id, r->id, sizeof(x->id));
    x->title = p[0];
    x->description = p[1];
    x->cta = p[2];
    x->ai_label = p[3];
    x->segment = p[4];
    x->locale = p[5];
    x->title_len = (uint32_t)strlen(x->title);
    x->description_len = (uint32_t)strlen(x->description);
    x->cta_len = (uint32_t)strlen(x->cta);
    x->segment_len = (uint32_t)strlen(x->segment);
    x->locale_len = (uint32_t)strlen(x->locale);
    for (uint32_t i = 0; i < x->locale_len; i++)
        x->locale_lc[i] = (char)tolower((unsigned char)x->locale[i]);
    x->primary_len = (uint32_t)primary_len(x->locale_lc, x->locale_len);
    x->slots = b->slots;
    vpick_posterior(x, &st);
    v->nvars++;
    return 0;
}

/* What the snapshot needs of the campaign document: the first of generation.locales (the fallback locale)
 * and creatives.slots. */
static void vpick_campaign(MDB_txn *txn, struct store *s, struct vpick_camp *c)
{
    struct camps_rec rec;
    msgpack_zone zone;
    msgpack_object doc;
    const msgpack_object *gen, *loc, *cr, *slots;
    size_t off = 0;

    c->fallback[0] = '\0';
    if (camps_get(txn, s, c->id, &rec) != 0)
        return;
    msgpack_zone_init(&zone, 4096);
    if (msgpack_unpack(rec.doc, rec.doc_len, &off, &zone, &doc) != MSGPACK_UNPACK_SUCCESS) {
        msgpack_zone_destroy(&zone);
        return;
    }
    if ((gen = doc_map_get(&doc, "generation")) != NULL && (loc = doc_map_get(gen, "locales")) != NULL &&
        loc->type == MSGPACK_OBJECT_ARRAY && loc->via.array.size > 0 &&
        loc->via.array.ptr[0].type == MSGPACK_OBJECT_STR && loc->via.array.ptr[0].via.str.size <= VAR_LOCALE_MAX) {
        memcpy(c->fallback, loc->via.array.ptr[0].via.str.ptr, loc->via.array.ptr[0].via.str.size);
        c->fallback[loc->via.array.ptr[0].via.str.size] = '\0';
    }
    if ((cr = doc_map_get(&doc, "creatives")) != NULL && (slots = doc_map_get(cr, "slots")) != NULL &&
        slots->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < slots->via.map.size && c->slots->n < VPICK_MAX_SLOTS; i++) {
            const msgpack_object *k = &slots->via.map.ptr[i].key, *sl = &slots->via.map.ptr[i].val;
            struct cidx_str fb = str_of(doc_map_get(sl, "fallback"));
            uint32_t j = c->slots->n;
            if (k->type != MSGPACK_OBJECT_STR || k->via.str.size > VPICK_SLOT_NAME_MAX || fb.len > VAR_LABEL_MAX)
                continue;
            memcpy(c->slots->v[j].name, k->via.str.ptr, k->via.str.size);
            c->slots->v[j].name_len = (uint8_t)k->via.str.size;
            c->slots->v[j].source = source_kind(str_of(doc_map_get(sl, "source")));
            c->slots->v[j].max_length = int_of(doc_map_get(sl, "max_length"));
            if (fb.len > 0)
                memcpy(c->slots->v[j].fallback, fb.ptr, fb.len);
            c->slots->v[j].fallback_len = (uint8_t)fb.len;
            c->slots->n++;
        }
    }
    msgpack_zone_destroy(&zone);
}

static int vpick_camp_cb(void *ctx, const struct var_rec *r)
{
    struct vpick_builder *b = ctx;
    return r->state == VAR_APPROVED ? vpick_add(b, r) : 0;
}

/* Highest upper bound (mean + 2 sd) first: vpick_choose() draws for the first VPICK_MAX_DRAWS that fit. */
static int by_ucb(const void *a, const void *b)
{
    const struct vpick_variant *x = a, *y = b;
    double ux = x->mean + 2 * x->sd, uy = y->mean + 2 * y->sd;

    return ux > uy ? -1 : ux < uy ? 1 : strcmp(x->id, y->id);
}

int vpick_build(MDB_txn *txn, struct store *s, struct vpick_set **ret)
{
    struct vpick_builder b = {txn, s, NULL, NULL};
    MDB_cursor *cur;
    MDB_val key, val;
    char last[CIDX_ID_MAX + 1] = "";
    int rc;

    pthread_once(&vpick_ztab_once, vpick_ztab_init);
    if ((b.set = calloc(1, sizeof(*b.set))) == NULL)
        return ADS_ENOMEM;
    if ((rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_VARIANTS), &cur)) != 0) {
        vpick_set_free(b.set);
        return store_err(rc);
    }
    /* Walk the campaigns that have variants: each key starts with its campaign id and a NUL. */
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;) {
        const char *k = key.mv_data;
        const char *nul = memchr(k, '\0', key.mv_size);
        size_t clen = nul != NULL ? (size_t)(nul - k) : key.mv_size;
        struct vpick_camp *c;
        char next[CIDX_ID_MAX + 2];

        if (nul == NULL || clen == 0 || clen > CIDX_ID_MAX || (clen == strlen(last) && memcmp(k, last, clen) == 0)) {
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            continue;
        }
        memcpy(last, k, clen);
        last[clen] = '\0';
        if (b.set->ncamps == b.set->capcamps) {
            size_t cap = b.set->capcamps ? b.set->capcamps * 2 : 16;
            struct vpick_camp *n = realloc(b.set->camps, cap * sizeof(*n));
            if (n == NULL) {
                rc = ADS_ENOMEM;
                break;
            }
            b.set->camps = n;
            b.set->capcamps = cap;
        }
        c = &b.set->camps[b.set->ncamps];
        memset(c, 0, sizeof(*c));
        memcpy(c->id, last, clen + 1);
        c->first = (uint32_t)b.set->nvars;
        if ((c->slots = calloc(1, sizeof(*c->slots))) == NULL) {
            rc = ADS_ENOMEM;
            break;
        }
        vpick_campaign(txn, s, c);
        b.slots = c->slots;
        if ((rc = var_list(txn, s, last, NULL, VAR_LIST_MAX, vpick_camp_cb, &b, NULL)) != 0) {
            free(c->slots);
            break;
        }
        c->n = (uint32_t)(b.set->nvars - c->first);
        if (c->n > 0) {
            qsort(b.set->vars + c->first, c->n, sizeof(b.set->vars[0]), by_ucb);
            b.set->ncamps++;
        } else {
            free(c->slots);
        }
        /* On to the first key past this campaign's: its id followed by NUL + 1. */
        memcpy(next, last, clen);
        next[clen] = '\x01';
        key = (MDB_val){clen + 1, next};
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        vpick_set_free(b.set);
        return rc < 0 ? rc : store_err(rc);
    }
    *ret = b.set;
    return 0;
}

/* ---- choosing ---- */

static const struct vpick_camp *vpick_find(const struct vpick_set *v, const char *campaign)
{
    size_t lo = 0, hi = v->ncamps;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(v->camps[mid].id, campaign);
        if (c == 0)
            return &v->camps[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool segment_ok(const struct vpick_variant *x, const struct cidx_str *segs, uint32_t nsegs)
{
    if (x->segment_len == 0)
        return true;
    for (uint32_t i = 0; i < nsegs; i++)
        if (segs[i].len == x->segment_len && memcmp(segs[i].ptr, x->segment, x->segment_len) == 0)
            return true;
    return false;
}

/* How well variant @p x fits the request's locale @p lc (lower case, @p n bytes, primary subtag @p pn bytes):
 * 0 exact, 1 same language, 2 the campaign's fallback, 3 another. */
static int locale_level(const struct vpick_variant *x, const char *lc, size_t n, size_t pn, const char *fallback)
{
    if (n > 0) {
        if (x->locale_len == n && memcmp(x->locale_lc, lc, n) == 0)
            return 0;
        if (x->primary_len == pn && memcmp(x->locale_lc, lc, pn) == 0)
            return 1;
    }
    return strcmp(x->locale, fallback) == 0 ? 2 : 3;
}

const struct vpick_variant *vpick_choose(const struct vpick_set *v, const char *campaign, const struct cidx_str *segs,
                                         uint32_t nsegs, struct cidx_str locale, struct vpick_rng *rng,
                                         uint32_t control_pct, bool *ret_control)
{
    const struct vpick_camp *c;
    const struct vpick_variant *best = NULL;
    uint8_t level[VAR_LIST_MAX];
    char lc[VAR_LOCALE_MAX + 1];
    size_t n = 0, pn;
    int top = 4;
    double best_x = -1;

    if (ret_control != NULL)
        *ret_control = false;
    if (v == NULL || (c = vpick_find(v, campaign)) == NULL)
        return NULL;
    if (control_pct > 0 && vpick_uniform(rng) * 100.0 < (double)control_pct) {
        if (ret_control != NULL)
            *ret_control = true;
        return NULL;
    }
    if (nsegs > VPICK_MAX_SEGS)
        nsegs = VPICK_MAX_SEGS;
    /* A longer tag than any variant's can still share its language: keep the primary subtag. */
    for (; n < locale.len && n < VAR_LOCALE_MAX; n++)
        lc[n] = (char)tolower((unsigned char)locale.ptr[n]);
    pn = primary_len(lc, n);
    if (locale.len > VAR_LOCALE_MAX)
        n = pn; /* not an exact match for anything */
    for (uint32_t i = 0; i < c->n && i < VAR_LIST_MAX; i++) {
        const struct vpick_variant *x = &v->vars[c->first + i];
        level[i] = segment_ok(x, segs, nsegs) ? (uint8_t)locale_level(x, lc, n, pn, c->fallback) : 4;
        if (level[i] < top)
            top = level[i];
    }
    if (top == 4)
        return NULL;
    for (uint32_t i = 0, draws = 0; i < c->n && i < VAR_LIST_MAX && draws < VPICK_MAX_DRAWS; i++) {
        const struct vpick_variant *x = &v->vars[c->first + i];
        double d;
        if (level[i] != top)
            continue;
        draws++;
        d = vpick_sample(x, rng);
        if (d > best_x) {
            best_x = d;
            best = x;
        }
    }
    return best;
}

/* ---- slot filling ---- */

void vpick_html_escape(struct buf *b, const char *s, size_t n)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        const char *e;
        switch (s[i]) {
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '&': e = "&amp;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default: continue;
        }
        buf_put(b, s + run, i - run);
        buf_puts(b, e);
        run = i + 1;
    }
    buf_put(b, s + run, n - run);
}

/* The part of the day at @p now in @p zone (NULL: UTC). */
static const char *daypart(const struct tz *zone, int64_t now)
{
    int64_t local = now + (zone != NULL ? tz_offset_at(zone, now) : 0);
    int64_t hour = ((local % 86400) + 86400) % 86400 / 3600;

    return hour >= 5 && hour < 12    ? "morning"
           : hour >= 12 && hour < 17 ? "afternoon"
           : hour >= 17 && hour < 22 ? "evening"
                                     : "night";
}

#define SOURCE_DAYPART PROF_NATTR           /* context.daypart */
#define SOURCE_TOP_INTEREST (PROF_NATTR + 1) /* interests.top */

/* The id of the profile's interest of the highest stored weight, or {NULL, 0}. */
static struct cidx_str top_interest(const struct prof_view *pv)
{
    struct cidx_str best = {NULL, 0};
    struct mpr it = pv->interests;
    struct prof_tag_ref t;
    double w = 0;

    for (uint32_t i = 0; i < pv->ninterests && prof_view_next_tag(&it, &t) == 0; i++) {
        if (t.id_len > 0 && t.weight > w) {
            w = t.weight;
            best = (struct cidx_str){t.id, t.id_len};
        }
    }
    return best;
}

/* The value of a slot whose source is @p src (source_kind()) in this context: its source's value when known and
 * no longer than @p max, else @p fb. */
static struct cidx_str source_value(int8_t src, int64_t max, struct cidx_str fb, const struct vpick_slot_ctx *ctx)
{
    const struct prof_view *pv = ctx != NULL ? ctx->profile : NULL;

    if (src == SOURCE_TOP_INTEREST && pv != NULL) {
        struct cidx_str v = top_interest(pv);
        if (v.ptr != NULL && (int64_t)v.len <= max)
            return v;
    } else if (src == SOURCE_DAYPART && ctx != NULL) {
        const char *d = daypart(ctx->zone, ctx->now);
        size_t n = strlen(d);
        if ((int64_t)n <= max)
            return (struct cidx_str){d, n};
    } else if (src >= 0 && src < PROF_NATTR && pv != NULL && pv->attr[src] != NULL && pv->attr_len[src] > 0 &&
               (int64_t)pv->attr_len[src] <= max) {
        return (struct cidx_str){pv->attr[src], pv->attr_len[src]};
    }
    return fb.ptr != NULL ? fb : (struct cidx_str){"", 0};
}

#define LIT(s) s, sizeof(s) - 1

/* enum prof_attr of a slot source "attributes.NAME", SOURCE_DAYPART, SOURCE_TOP_INTEREST, else -1. */
static int8_t source_kind(struct cidx_str src)
{
    static const struct {
        const char *name;
        size_t len;
    } attrs[PROF_NATTR] = {{LIT("country")},  {LIT("region")}, {LIT("city")},
                           {LIT("language")}, {LIT("device")}, {LIT("os")}};

    if (src.len == sizeof("context.daypart") - 1 && memcmp(src.ptr, LIT("context.daypart")) == 0)
        return SOURCE_DAYPART;
    if (src.len == sizeof("interests.top") - 1 && memcmp(src.ptr, LIT("interests.top")) == 0)
        return SOURCE_TOP_INTEREST;
    if (src.len > 11 && memcmp(src.ptr, LIT("attributes.")) == 0) {
        for (int k = 0; k < PROF_NATTR; k++)
            if (src.len - 11 == attrs[k].len && memcmp(src.ptr + 11, attrs[k].name, attrs[k].len) == 0)
                return (int8_t)k;
    }
    return -1;
}

/* The value of slot @p name (@p n bytes) of the campaign document's @p slots. */
static struct cidx_str slot_value(const void *slots_, const char *name, size_t n, const struct vpick_slot_ctx *ctx)
{
    const msgpack_object *slots = slots_;
    const msgpack_object *slot = slots != NULL ? doc_map_getn(slots, name, n) : NULL;

    if (slot == NULL)
        return (struct cidx_str){"", 0};
    return source_value(source_kind(str_of(doc_map_getn(slot, LIT("source")))),
                        int_of(doc_map_getn(slot, LIT("max_length"))), str_of(doc_map_getn(slot, LIT("fallback"))),
                        ctx);
}

/* The value of slot @p name (@p n bytes) of compiled slots. */
static struct cidx_str compiled_value(const void *slots_, const char *name, size_t n, const struct vpick_slot_ctx *ctx)
{
    const struct vpick_slots *slots = slots_;

    for (uint32_t i = 0; slots != NULL && i < slots->n; i++) {
        if (slots->v[i].name_len == n && memcmp(slots->v[i].name, name, n) == 0)
            return source_value(slots->v[i].source, slots->v[i].max_length,
                                (struct cidx_str){slots->v[i].fallback, slots->v[i].fallback_len}, ctx);
    }
    return (struct cidx_str){"", 0};
}

/* The first "cc" in [p, end), or NULL. memchr instead of memmem: glibc's memmem pays a setup per call that
 * costs more than a short template's whole scan. */
static const char *find2(const char *p, const char *end, char c)
{
    while (p < end && (p = memchr(p, c, (size_t)(end - p))) != NULL) {
        if (p + 1 < end && p[1] == c)
            return p;
        p++;
    }
    return NULL;
}

typedef struct cidx_str (*slot_fn)(const void *slots, const char *name, size_t n, const struct vpick_slot_ctx *ctx);

static void fill_with(struct buf *b, struct cidx_str t, slot_fn value, const void *slots,
                      const struct vpick_slot_ctx *ctx, bool html)
{
    const char *end = t.ptr + t.len;
    size_t i = 0;

    while (i < t.len) {
        const char *open = find2(t.ptr + i, end, '{');
        const char *close;
        struct cidx_str v;

        if (open == NULL || (close = find2(open + 2, end, '}')) == NULL) {
            buf_put(b, t.ptr + i, t.len - i);
            return;
        }
        buf_put(b, t.ptr + i, (size_t)(open - (t.ptr + i)));
        v = value(slots, open + 2, (size_t)(close - open - 2), ctx);
        if (html)
            vpick_html_escape(b, v.ptr, v.len);
        else
            buf_put(b, v.ptr, v.len);
        i = (size_t)(close + 2 - t.ptr);
    }
}

void vpick_fill(struct buf *b, struct cidx_str t, const msgpack_object *slots, const struct vpick_slot_ctx *ctx,
                bool html)
{
    fill_with(b, t, slot_value, slots, ctx, html);
}

void vpick_fill_variant(struct buf *b, const struct vpick_variant *v, struct cidx_str t,
                        const struct vpick_slot_ctx *ctx, bool html)
{
    fill_with(b, t, compiled_value, v->slots, ctx, html);
}
