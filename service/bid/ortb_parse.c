/*
 * Reading an OpenRTB BidRequest into struct ortb_req (include/adsmith/ortb.h).
 *
 * The body goes through doc_parse(), the service's one strict reader of JSON
 * and MessagePack (cJSON on a per-thread arena, then UTF-8, depth and node
 * checks), into a tree in the scratch's zone. This file then walks the
 * objects it needs once each: every object's members are sorted into slots
 * by name in one pass (the last of a repeated name wins, as JSON.parse
 * does), and the slots are read. Arrays of the normalised request come from
 * the same zone, so a parse allocates nothing once the zone's first chunk
 * is big enough.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/ortb.h"

struct ortb_scratch {
    msgpack_zone zone;
    struct ortb_req req;
};

int ortb_scratch_new(struct ortb_scratch **ret)
{
    struct ortb_scratch *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return ADS_ENOMEM;
    if (!msgpack_zone_init(&s->zone, ORTB_ZONE_CHUNK)) {
        free(s);
        return ADS_ENOMEM;
    }
    *ret = s;
    return 0;
}

void ortb_scratch_free(struct ortb_scratch *s)
{
    if (s == NULL)
        return;
    msgpack_zone_destroy(&s->zone);
    free(s);
}

const char *ortb_fault_name(enum ortb_fault f)
{
    static const char *const names[] = {
#define ORTB_FAULT_NAME_(name, str) str,
        ORTB_FAULT_MAP(ORTB_FAULT_NAME_)
#undef ORTB_FAULT_NAME_
    };
    if ((unsigned)f >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[f];
}

/* ---- reading values ---- */

typedef const msgpack_object *obj_t;

static bool is_map(obj_t o)
{
    return o != NULL && o->type == MSGPACK_OBJECT_MAP;
}

static bool is_array(obj_t o)
{
    return o != NULL && o->type == MSGPACK_OBJECT_ARRAY;
}

/* An integer, written as one or as an integral float; a boolean as 1/0. */
static bool get_int(obj_t o, int64_t *ret)
{
    if (o == NULL)
        return false;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return false;
        *ret = (int64_t)o->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *ret = o->via.i64; return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (o->via.f64 != floor(o->via.f64) || o->via.f64 < -9.0e18 || o->via.f64 > 9.0e18)
            return false;
        *ret = (int64_t)o->via.f64;
        return true;
    case MSGPACK_OBJECT_BOOLEAN: *ret = o->via.boolean ? 1 : 0; return true;
    default: return false;
    }
}

/* An integer that fits in int32 (anything else: absent). */
static bool get_i32(obj_t o, int32_t *ret)
{
    int64_t v;

    if (!get_int(o, &v) || v < INT32_MIN || v > INT32_MAX)
        return false;
    *ret = (int32_t)v;
    return true;
}

/* A 0/1 flag: -1 when absent or any other value. */
static int8_t get_flag(obj_t o)
{
    int64_t v;

    if (!get_int(o, &v) || (v != 0 && v != 1))
        return -1;
    return (int8_t)v;
}

static bool get_num(obj_t o, double *ret)
{
    if (o == NULL)
        return false;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *ret = (double)o->via.u64; return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *ret = (double)o->via.i64; return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *ret = o->via.f64; return true;
    default: return false;
    }
}

/* A string of at most @p max bytes; longer, or another type: absent. */
static bool get_str(obj_t o, size_t max, struct cidx_str *ret)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size > max)
        return false;
    ret->ptr = o->via.str.size > 0 ? o->via.str.ptr : NULL;
    ret->len = o->via.str.size;
    return true;
}

static void opt_str(obj_t o, struct cidx_str *ret)
{
    if (!get_str(o, ORTB_STR_MAX, ret)) {
        ret->ptr = NULL;
        ret->len = 0;
    }
}

/*
 * A floor in micro-units, rounded up: a number or a numeric string (the
 * unsafe reading of a floor sent as "0.50" would be no floor at all). A floor
 * that is present but unreadable ("abc", "0.5 USD", an object) is read as one
 * nothing meets, for the same reason: no bid rather than a bid under a floor
 * we could not read. NaN cannot come from doc_parse; a negative floor is 0; a
 * floor beyond what int64 micros hold is clamped, so that nothing meets it.
 */
#define ORTB_FLOOR_UNMEETABLE INT64_C(9000000000000000000)

static int64_t get_floor(obj_t o)
{
    double f;

    if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type == MSGPACK_OBJECT_STR) {
        char tmp[64], *end;
        size_t n = o->via.str.size;

        if (n == 0 || n >= sizeof(tmp))
            return ORTB_FLOOR_UNMEETABLE;
        memcpy(tmp, o->via.str.ptr, n);
        tmp[n] = '\0';
        errno = 0;
        f = strtod(tmp, &end);
        if (end != tmp + n || errno != 0 || !isfinite(f))
            return ORTB_FLOOR_UNMEETABLE;
    } else if (!get_num(o, &f)) {
        return ORTB_FLOOR_UNMEETABLE;
    }
    if (!(f > 0))
        return 0;
    f = ceil(f * 1e6 - 1e-6);
    if (f >= 9.0e18)
        return ORTB_FLOOR_UNMEETABLE;
    return f < 0 ? 0 : (int64_t)f;
}

/* ---- member slots ---- */

struct fld {
    const char *name;
    size_t len;
};

#define FLD(s)                                                                                                         \
    {                                                                                                                  \
        s, sizeof(s) - 1                                                                                               \
    }

/*
 * Sorts the members of @p map into @p out[nf] by name: out[j] is the value of
 * member fields[j].name, or NULL when absent or null. One pass over the map.
 */
static void slots(obj_t map, const struct fld *fields, size_t nf, obj_t *out)
{
    uint32_t i;
    size_t j;

    for (j = 0; j < nf; j++)
        out[j] = NULL;
    if (!is_map(map))
        return;
    for (i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        size_t klen;

        if (kv->key.type != MSGPACK_OBJECT_STR)
            continue;
        klen = kv->key.via.str.size;
        for (j = 0; j < nf; j++) {
            if (fields[j].len == klen && memcmp(fields[j].name, kv->key.via.str.ptr, klen) == 0) {
                out[j] = kv->val.type == MSGPACK_OBJECT_NIL ? NULL : &kv->val;
                break;
            }
        }
    }
}

/* One member by name (for ext objects, read once). */
static obj_t member(obj_t map, const char *name)
{
    struct fld f = {name, strlen(name)};
    obj_t v;

    slots(map, &f, 1, &v);
    return v;
}

/* ---- the parse context ---- */

struct pctx {
    msgpack_zone *zone;
    struct ads_diag *diag;
    enum ortb_fault fault;
    bool nomem;
};

static void *zalloc(struct pctx *c, size_t n)
{
    void *p;

    if (n == 0)
        return NULL;
    p = msgpack_zone_malloc(c->zone, n);
    if (p == NULL)
        c->nomem = true;
    return p;
}

__attribute__((format(printf, 4, 5))) static int refuse(struct pctx *c, enum ortb_fault f, const char *pointer,
                                                        const char *fmt, ...)
{
    va_list ap;
    char msg[sizeof(((struct ads_diag *)0)->message)];

    c->fault = f;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ads_diag_set(c->diag, ADS_EBAD_REQUEST, pointer, "%s", msg);
}

/* A list of strings (entries of another type, empty or longer than @p maxlen skipped), at most @p max kept. */
static void str_list(struct pctx *c, obj_t o, uint32_t max, size_t maxlen, struct ortb_strs *ret)
{
    struct cidx_str *v;
    uint32_t i, n = 0, total;

    memset(ret, 0, sizeof(*ret));
    if (!is_array(o) || o->via.array.size == 0)
        return;
    total = o->via.array.size;
    if ((v = zalloc(c, (total < max ? total : max) * sizeof(*v))) == NULL)
        return;
    for (i = 0; i < total; i++) {
        struct cidx_str s;
        if (!get_str(&o->via.array.ptr[i], maxlen, &s) || s.len == 0)
            continue;
        if (n == max) {
            ret->truncated = true;
            break;
        }
        v[n++] = s;
    }
    ret->v = v;
    ret->n = n;
}

/* A list of integers (other entries skipped), at most @p max kept. */
static void int_list(struct pctx *c, obj_t o, uint32_t max, struct ortb_ints *ret)
{
    int64_t *v;
    uint32_t i, n = 0, total;

    memset(ret, 0, sizeof(*ret));
    if (!is_array(o) || o->via.array.size == 0)
        return;
    total = o->via.array.size;
    if ((v = zalloc(c, (total < max ? total : max) * sizeof(*v))) == NULL)
        return;
    for (i = 0; i < total && n < max; i++) {
        int64_t x;
        if (get_int(&o->via.array.ptr[i], &x))
            v[n++] = x;
    }
    ret->v = v;
    ret->n = n;
}

static void default_usd(struct cidx_str *cur)
{
    if (cur->len == 0) {
        cur->ptr = "USD";
        cur->len = 3;
    }
}

/* ---- imp ---- */

static bool size_of(obj_t w, obj_t h, struct cidx_size *ret)
{
    int64_t x, y;

    if (!get_int(w, &x) || !get_int(h, &y) || x < 1 || x > 65535 || y < 1 || y > 65535)
        return false;
    ret->w = (uint16_t)x;
    ret->h = (uint16_t)y;
    return true;
}

enum { BN_FORMAT, BN_W, BN_H, BN_POS, BN_N };
static const struct fld banner_f[BN_N] = {FLD("format"), FLD("w"), FLD("h"), FLD("pos")};

static void read_banner(struct pctx *c, obj_t o, struct ortb_imp *imp)
{
    obj_t f[BN_N];
    struct cidx_size *sz;
    uint32_t i, n = 0;

    slots(o, banner_f, BN_N, f);
    if (!get_i32(f[BN_POS], &imp->pos) || imp->pos < 0)
        imp->pos = 0;
    if ((sz = zalloc(c, ORTB_MAX_FORMATS * sizeof(*sz))) == NULL)
        return;
    if (is_array(f[BN_FORMAT])) {
        for (i = 0; i < f[BN_FORMAT]->via.array.size && n < ORTB_MAX_FORMATS; i++) {
            obj_t wh[BN_N];
            slots(&f[BN_FORMAT]->via.array.ptr[i], banner_f, BN_N, wh);
            if (size_of(wh[BN_W], wh[BN_H], &sz[n]))
                n++;
        }
    }
    if (n == 0 && size_of(f[BN_W], f[BN_H], &sz[0]))
        n = 1;
    imp->formats = sz;
    imp->nformats = n;
}

enum { AV_W, AV_H, AV_MIMES, AV_PROTOCOLS, AV_POS, AV_N };
static const struct fld av_f[AV_N] = {FLD("w"), FLD("h"), FLD("mimes"), FLD("protocols"), FLD("pos")};

enum { DL_ID, DL_BIDFLOOR, DL_BIDFLOORCUR, DL_AT, DL_WSEAT, DL_N };
static const struct fld deal_f[DL_N] = {FLD("id"), FLD("bidfloor"), FLD("bidfloorcur"), FLD("at"), FLD("wseat")};

enum { PM_PRIVATE, PM_DEALS, PM_N };
static const struct fld pmp_f[PM_N] = {FLD("private_auction"), FLD("deals")};

static void read_pmp(struct pctx *c, obj_t o, struct ortb_imp *imp)
{
    obj_t f[PM_N];
    struct ortb_deal *d;
    struct cidx_str *ids;
    uint32_t i, n = 0, total;

    slots(o, pmp_f, PM_N, f);
    imp->private_auction = get_flag(f[PM_PRIVATE]);
    if (!is_array(f[PM_DEALS]) || f[PM_DEALS]->via.array.size == 0)
        return;
    total = f[PM_DEALS]->via.array.size;
    if (total > ORTB_MAX_DEALS)
        total = ORTB_MAX_DEALS;
    d = zalloc(c, total * sizeof(*d));
    ids = zalloc(c, total * sizeof(*ids));
    if (d == NULL || ids == NULL)
        return;
    for (i = 0; i < f[PM_DEALS]->via.array.size && n < total; i++) {
        obj_t g[DL_N];
        struct ortb_deal *x = &d[n];

        slots(&f[PM_DEALS]->via.array.ptr[i], deal_f, DL_N, g);
        memset(x, 0, sizeof(*x));
        if (!get_str(g[DL_ID], ORTB_ID_MAX, &x->id) || x->id.len == 0)
            continue; /* a deal must have an id to be bid on */
        x->bidfloor_micros = get_floor(g[DL_BIDFLOOR]);
        if (!get_str(g[DL_BIDFLOORCUR], 3, &x->bidfloorcur) || x->bidfloorcur.len != 3)
            x->bidfloorcur.len = 0;
        default_usd(&x->bidfloorcur);
        if (!get_i32(g[DL_AT], &x->at))
            x->at = 0;
        str_list(c, g[DL_WSEAT], ORTB_MAX_SEATS, ORTB_STR_MAX, &x->wseat);
        ids[n] = x->id;
        n++;
    }
    imp->deals = d;
    imp->deal_ids = ids;
    imp->ndeals = n;
}

enum {
    IM_ID,
    IM_TAGID,
    IM_BIDFLOOR,
    IM_BIDFLOORCUR,
    IM_SECURE,
    IM_INSTL,
    IM_BANNER,
    IM_VIDEO,
    IM_AUDIO,
    IM_NATIVE,
    IM_PMP,
    IM_EXT,
    IM_N
};
static const struct fld imp_f[IM_N] = {FLD("id"),     FLD("tagid"),  FLD("bidfloor"), FLD("bidfloorcur"),
                                       FLD("secure"), FLD("instl"),  FLD("banner"),   FLD("video"),
                                       FLD("audio"),  FLD("native"), FLD("pmp"),      FLD("ext")};

static int read_imp(struct pctx *c, obj_t o, uint32_t idx, struct ortb_imp *imp)
{
    obj_t f[IM_N];
    char ptr[32];

    snprintf(ptr, sizeof(ptr), "/imp/%u", idx);
    if (!is_map(o))
        return refuse(c, ORTB_F_IMP_NOT_OBJECT, ptr, "request.imp[%u] must be an object", idx);
    slots(o, imp_f, IM_N, f);
    snprintf(ptr, sizeof(ptr), "/imp/%u/id", idx);
    if (f[IM_ID] == NULL)
        return refuse(c, ORTB_F_IMP_ID_MISSING, ptr, "request.imp[%u] must have an id (a non-empty string)", idx);
    if (f[IM_ID]->type != MSGPACK_OBJECT_STR)
        return refuse(c, ORTB_F_IMP_ID_TYPE, ptr, "request.imp[%u].id must be a string", idx);
    if (f[IM_ID]->via.str.size == 0)
        return refuse(c, ORTB_F_IMP_ID_EMPTY, ptr, "request.imp[%u].id must not be empty", idx);
    if (f[IM_ID]->via.str.size > ORTB_ID_MAX)
        return refuse(c, ORTB_F_IMP_ID_TOO_LONG, ptr, "request.imp[%u].id is %u bytes long; at most %d are accepted",
                      idx, f[IM_ID]->via.str.size, ORTB_ID_MAX);
    get_str(f[IM_ID], ORTB_ID_MAX, &imp->id);

    opt_str(f[IM_TAGID], &imp->tagid);
    imp->bidfloor_micros = get_floor(f[IM_BIDFLOOR]);
    if (!get_str(f[IM_BIDFLOORCUR], 3, &imp->bidfloorcur) || imp->bidfloorcur.len != 3)
        imp->bidfloorcur.len = 0;
    default_usd(&imp->bidfloorcur);
    imp->secure = get_flag(f[IM_SECURE]);
    imp->instl = get_flag(f[IM_INSTL]);
    imp->private_auction = -1;

    if (is_map(f[IM_BANNER])) {
        imp->has_banner = true;
        read_banner(c, f[IM_BANNER], imp);
    }
    if (is_map(f[IM_VIDEO])) {
        obj_t v[AV_N];
        slots(f[IM_VIDEO], av_f, AV_N, v);
        imp->has_video = true;
        size_of(v[AV_W], v[AV_H], &imp->video_size);
        str_list(c, v[AV_MIMES], ORTB_MAX_MIMES, 255, &imp->video_mimes);
        int_list(c, v[AV_PROTOCOLS], ORTB_MAX_INTS, &imp->video_protocols);
        if (imp->pos == 0 && (!get_i32(v[AV_POS], &imp->pos) || imp->pos < 0))
            imp->pos = 0;
    }
    if (is_map(f[IM_AUDIO])) {
        obj_t v[AV_N];
        slots(f[IM_AUDIO], av_f, AV_N, v);
        imp->has_audio = true;
        str_list(c, v[AV_MIMES], ORTB_MAX_MIMES, 255, &imp->audio_mimes);
    }
    imp->has_native = is_map(f[IM_NATIVE]);
    if (is_map(f[IM_PMP]))
        read_pmp(c, f[IM_PMP], imp);
    imp->ext = is_map(f[IM_EXT]) ? f[IM_EXT] : NULL;
    return 0;
}

static int read_imps(struct pctx *c, obj_t o, struct ortb_req *r)
{
    struct ortb_imp *imps;
    uint32_t n, i, j;
    int rc;

    if (o == NULL)
        return refuse(c, ORTB_F_IMP_MISSING, "/imp",
                      "request.imp is missing; send an array of at least one impression object");
    if (!is_array(o))
        return refuse(c, ORTB_F_IMP_TYPE, "/imp", "request.imp must be an array of impression objects");
    n = o->via.array.size;
    if (n == 0)
        return refuse(c, ORTB_F_IMP_EMPTY, "/imp", "request.imp must contain at least one impression");
    if (n > ORTB_MAX_IMPS)
        return refuse(c, ORTB_F_IMP_TOO_MANY, "/imp", "request.imp has %u impressions; at most %d are accepted", n,
                      ORTB_MAX_IMPS);
    if ((imps = zalloc(c, n * sizeof(*imps))) == NULL)
        return ADS_ENOMEM;
    memset(imps, 0, n * sizeof(*imps));
    for (i = 0; i < n; i++) {
        if ((rc = read_imp(c, &o->via.array.ptr[i], i, &imps[i])) < 0)
            return rc;
        for (j = 0; j < i; j++) {
            if (imps[j].id.len == imps[i].id.len && memcmp(imps[j].id.ptr, imps[i].id.ptr, imps[i].id.len) == 0) {
                char ptr[32];
                snprintf(ptr, sizeof(ptr), "/imp/%u/id", i);
                return refuse(c, ORTB_F_IMP_ID_DUPLICATE, ptr,
                              "request.imp[%u].id repeats request.imp[%u].id; every impression needs its own id", i, j);
            }
        }
    }
    r->imps = imps;
    r->nimps = n;
    return 0;
}

/* ---- site / app ---- */

enum {
    ST_ID,
    ST_DOMAIN,
    ST_PAGE,
    ST_NAME,
    ST_BUNDLE,
    ST_CAT,
    ST_SECTIONCAT,
    ST_PAGECAT,
    ST_CATTAX,
    ST_PUBLISHER,
    ST_N
};
static const struct fld site_f[ST_N] = {FLD("id"),  FLD("domain"),     FLD("page"),    FLD("name"),   FLD("bundle"),
                                        FLD("cat"), FLD("sectioncat"), FLD("pagecat"), FLD("cattax"), FLD("publisher")};

static void read_site(struct pctx *c, obj_t o, struct ortb_site *s)
{
    obj_t f[ST_N];
    struct ortb_strs parts[3];
    struct cidx_str *v;
    uint32_t k, i, n = 0;
    bool truncated = false;

    if (!is_map(o))
        return;
    slots(o, site_f, ST_N, f);
    s->present = true;
    opt_str(f[ST_ID], &s->id);
    opt_str(f[ST_DOMAIN], &s->domain);
    opt_str(f[ST_PAGE], &s->page);
    opt_str(f[ST_NAME], &s->name);
    opt_str(f[ST_BUNDLE], &s->bundle);
    if (!get_i32(f[ST_CATTAX], &s->cattax))
        s->cattax = 1;
    opt_str(member(f[ST_PUBLISHER], "id"), &s->publisher_id);

    /* cat, sectioncat and pagecat share the taxonomy: one list, in that order. */
    str_list(c, f[ST_CAT], ORTB_MAX_CATS, CIDX_CATEGORY_MAX, &parts[0]);
    str_list(c, f[ST_SECTIONCAT], ORTB_MAX_CATS, CIDX_CATEGORY_MAX, &parts[1]);
    str_list(c, f[ST_PAGECAT], ORTB_MAX_CATS, CIDX_CATEGORY_MAX, &parts[2]);
    if (parts[0].n + parts[1].n + parts[2].n == 0)
        return;
    if ((v = zalloc(c, ORTB_MAX_CATS * sizeof(*v))) == NULL)
        return;
    for (k = 0; k < 3; k++) {
        truncated |= parts[k].truncated;
        for (i = 0; i < parts[k].n; i++) {
            if (n == ORTB_MAX_CATS) {
                truncated = true;
                break;
            }
            v[n++] = parts[k].v[i];
        }
    }
    s->cat.v = v;
    s->cat.n = n;
    s->cat.truncated = truncated;
}

/* ---- device, geo ---- */

enum { GE_COUNTRY, GE_REGION, GE_CITY, GE_ZIP, GE_METRO, GE_LAT, GE_LON, GE_TYPE, GE_UTCOFFSET, GE_N };
static const struct fld geo_f[GE_N] = {FLD("country"), FLD("region"), FLD("city"), FLD("zip"),      FLD("metro"),
                                       FLD("lat"),     FLD("lon"),    FLD("type"), FLD("utcoffset")};

static void read_geo(struct pctx *c, obj_t o, struct ortb_geo *g)
{
    obj_t f[GE_N];
    const char *cc2;
    int32_t off;

    if (!is_map(o))
        return;
    slots(o, geo_f, GE_N, f);
    opt_str(f[GE_COUNTRY], &g->country);
    opt_str(f[GE_REGION], &g->region);
    opt_str(f[GE_CITY], &g->city);
    opt_str(f[GE_ZIP], &g->zip);
    opt_str(f[GE_METRO], &g->metro);
    g->has_latlon =
        get_num(f[GE_LAT], &g->lat) && get_num(f[GE_LON], &g->lon) && fabs(g->lat) <= 90 && fabs(g->lon) <= 180;
    if (!g->has_latlon)
        g->lat = g->lon = 0;
    if (!get_i32(f[GE_TYPE], &g->type))
        g->type = 0;
    if (get_i32(f[GE_UTCOFFSET], &off) && off >= -24 * 60 && off <= 24 * 60) {
        g->utcoffset = off;
        g->has_utcoffset = true;
    }
    if ((cc2 = ortb_country_alpha2(g->country.ptr, g->country.len)) != NULL) {
        g->country2.ptr = cc2;
        g->country2.len = 2;
    }
    /* cidx needs "US-TX": build it from the alpha-2 country unless the region already is one. */
    if (g->region.len > 0 && g->region.len <= CIDX_REGION_MAX) {
        if (memchr(g->region.ptr, '-', g->region.len) != NULL) {
            g->region_code = g->region;
        } else if (cc2 != NULL && g->region.len <= CIDX_REGION_MAX - 3) {
            char *p = zalloc(c, 3 + g->region.len);
            if (p != NULL) {
                memcpy(p, cc2, 2);
                p[2] = '-';
                memcpy(p + 3, g->region.ptr, g->region.len);
                g->region_code.ptr = p;
                g->region_code.len = 3 + g->region.len;
            }
        }
    }
}

enum {
    DV_UA,
    DV_OS,
    DV_OSV,
    DV_LANGUAGE,
    DV_LANGB,
    DV_IP,
    DV_IPV6,
    DV_IFA,
    DV_MAKE,
    DV_MODEL,
    DV_DEVICETYPE,
    DV_CONNECTIONTYPE,
    DV_LMT,
    DV_DNT,
    DV_GEO,
    DV_EXT,
    DV_N
};
static const struct fld device_f[DV_N] = {FLD("ua"),    FLD("os"),    FLD("osv"),        FLD("language"),
                                          FLD("langb"), FLD("ip"),    FLD("ipv6"),       FLD("ifa"),
                                          FLD("make"),  FLD("model"), FLD("devicetype"), FLD("connectiontype"),
                                          FLD("lmt"),   FLD("dnt"),   FLD("geo"),        FLD("ext")};

static void read_device(struct pctx *c, obj_t o, struct ortb_req *r)
{
    obj_t f[DV_N];
    struct cidx_str langb;

    r->device.lmt = r->device.dnt = -1;
    if (!is_map(o))
        return;
    slots(o, device_f, DV_N, f);
    opt_str(f[DV_UA], &r->device.ua);
    opt_str(f[DV_OS], &r->device.os);
    opt_str(f[DV_OSV], &r->device.osv);
    opt_str(f[DV_LANGUAGE], &r->device.language);
    opt_str(f[DV_LANGB], &langb);
    if (langb.len > 0)
        r->device.language = langb;
    opt_str(f[DV_IP], &r->device.ip);
    opt_str(f[DV_IPV6], &r->device.ipv6);
    opt_str(f[DV_IFA], &r->device.ifa);
    opt_str(f[DV_MAKE], &r->device.make);
    opt_str(f[DV_MODEL], &r->device.model);
    if (!get_i32(f[DV_DEVICETYPE], &r->device.devicetype))
        r->device.devicetype = 0;
    if (!get_i32(f[DV_CONNECTIONTYPE], &r->device.connectiontype) || r->device.connectiontype < 0)
        r->device.connectiontype = 0;
    r->device.lmt = get_flag(f[DV_LMT]);
    r->device.dnt = get_flag(f[DV_DNT]);
    read_geo(c, f[DV_GEO], &r->device.geo);
    r->device.ext = is_map(f[DV_EXT]) ? f[DV_EXT] : NULL;

    r->device.os_full = r->device.os;
    if (r->device.os.len > 0 && r->device.osv.len > 0 && r->device.os.len + 1 + r->device.osv.len <= CIDX_OS_MAX) {
        char *p = zalloc(c, r->device.os.len + 1 + r->device.osv.len);
        if (p != NULL) {
            memcpy(p, r->device.os.ptr, r->device.os.len);
            p[r->device.os.len] = ' ';
            memcpy(p + r->device.os.len + 1, r->device.osv.ptr, r->device.osv.len);
            r->device.os_full.ptr = p;
            r->device.os_full.len = r->device.os.len + 1 + r->device.osv.len;
        }
    }
}

/* ---- user ---- */

enum { UI_ID, UI_ATYPE, UI_N };
static const struct fld uid_f[UI_N] = {FLD("id"), FLD("atype")};
enum { EI_SOURCE, EI_UIDS, EI_N };
static const struct fld eid_f[EI_N] = {FLD("source"), FLD("uids")};

static void read_eids(struct pctx *c, obj_t o, struct ortb_req *r)
{
    struct ortb_eid *e;
    uint32_t i, k, n = 0, total;

    if (!is_array(o) || o->via.array.size == 0)
        return;
    total = o->via.array.size < ORTB_MAX_EIDS ? o->via.array.size : ORTB_MAX_EIDS;
    if ((e = zalloc(c, total * sizeof(*e))) == NULL)
        return;
    for (i = 0; i < o->via.array.size && n < total; i++) {
        obj_t f[EI_N];
        struct ortb_eid *x = &e[n];

        slots(&o->via.array.ptr[i], eid_f, EI_N, f);
        memset(x, 0, sizeof(*x));
        opt_str(f[EI_SOURCE], &x->source);
        if (x->source.len == 0)
            continue;
        if (is_array(f[EI_UIDS])) {
            for (k = 0; k < f[EI_UIDS]->via.array.size && x->nuids < ORTB_MAX_UIDS; k++) {
                obj_t u[UI_N];
                slots(&f[EI_UIDS]->via.array.ptr[k], uid_f, UI_N, u);
                opt_str(u[UI_ID], &x->uid[x->nuids]);
                if (x->uid[x->nuids].len == 0)
                    continue;
                if (!get_i32(u[UI_ATYPE], &x->atype[x->nuids]))
                    x->atype[x->nuids] = 0;
                x->nuids++;
            }
        }
        n++;
    }
    r->user.eids = e;
    r->user.neids = n;
}

static void read_segments(struct pctx *c, obj_t data, struct ortb_req *r)
{
    struct cidx_str *v;
    uint32_t i, k, n = 0;
    bool truncated = false;

    if (!is_array(data) || data->via.array.size == 0)
        return;
    if ((v = zalloc(c, ORTB_MAX_SEGMENTS * sizeof(*v))) == NULL)
        return;
    for (i = 0; i < data->via.array.size && !truncated; i++) {
        obj_t seg = member(&data->via.array.ptr[i], "segment");
        if (!is_array(seg))
            continue;
        for (k = 0; k < seg->via.array.size; k++) {
            struct cidx_str s;
            opt_str(member(&seg->via.array.ptr[k], "id"), &s);
            if (s.len == 0)
                continue;
            if (n == ORTB_MAX_SEGMENTS) {
                truncated = true;
                break;
            }
            v[n++] = s;
        }
    }
    r->user.segments.v = v;
    r->user.segments.n = n;
    r->user.segments.truncated = truncated;
}

enum { US_ID, US_BUYERUID, US_CONSENT, US_EIDS, US_DATA, US_GEO, US_EXT, US_N };
static const struct fld user_f[US_N] = {FLD("id"),   FLD("buyeruid"), FLD("consent"), FLD("eids"),
                                        FLD("data"), FLD("geo"),      FLD("ext")};
enum { UX_CONSENT, UX_EIDS, UX_N };
static const struct fld user_ext_f[UX_N] = {FLD("consent"), FLD("eids")};

static void read_user(struct pctx *c, obj_t o, struct ortb_req *r)
{
    obj_t f[US_N], x[UX_N];

    if (!is_map(o))
        return;
    slots(o, user_f, US_N, f);
    slots(f[US_EXT], user_ext_f, UX_N, x);
    opt_str(f[US_ID], &r->user.id);
    opt_str(f[US_BUYERUID], &r->user.buyeruid);
    /* 2.6 places first; the 2.5 ext place when the 2.6 one is absent or unusable. */
    opt_str(f[US_CONSENT], &r->user.consent);
    if (r->user.consent.len == 0)
        opt_str(x[UX_CONSENT], &r->user.consent);
    read_eids(c, f[US_EIDS], r);
    if (r->user.neids == 0)
        read_eids(c, x[UX_EIDS], r);
    read_segments(c, f[US_DATA], r);
    read_geo(c, f[US_GEO], &r->user.geo);
    r->user.ext = is_map(f[US_EXT]) ? f[US_EXT] : NULL;
}

/* ---- regs, source ---- */

enum { RG_COPPA, RG_GDPR, RG_US_PRIVACY, RG_GPP, RG_GPP_SID, RG_EXT, RG_N };
static const struct fld regs_f[RG_N] = {FLD("coppa"), FLD("gdpr"),    FLD("us_privacy"),
                                        FLD("gpp"),   FLD("gpp_sid"), FLD("ext")};

static void read_regs(struct pctx *c, obj_t o, struct ortb_req *r)
{
    obj_t f[RG_N], x[RG_N];

    r->regs.coppa = r->regs.gdpr = -1;
    if (!is_map(o))
        return;
    slots(o, regs_f, RG_N, f);
    slots(f[RG_EXT], regs_f, RG_N, x);
    r->regs.coppa = get_flag(f[RG_COPPA]);
    if ((r->regs.gdpr = get_flag(f[RG_GDPR])) < 0)
        r->regs.gdpr = get_flag(x[RG_GDPR]);
    opt_str(f[RG_US_PRIVACY], &r->regs.us_privacy);
    if (r->regs.us_privacy.len == 0)
        opt_str(x[RG_US_PRIVACY], &r->regs.us_privacy);
    opt_str(f[RG_GPP], &r->regs.gpp);
    if (r->regs.gpp.len == 0)
        opt_str(x[RG_GPP], &r->regs.gpp);
    int_list(c, f[RG_GPP_SID], ORTB_MAX_INTS, &r->regs.gpp_sid);
    if (r->regs.gpp_sid.n == 0)
        int_list(c, x[RG_GPP_SID], ORTB_MAX_INTS, &r->regs.gpp_sid);
    r->regs.ext = is_map(f[RG_EXT]) ? f[RG_EXT] : NULL;
}

enum { SC_COMPLETE, SC_VER, SC_NODES, SC_N };
static const struct fld schain_f[SC_N] = {FLD("complete"), FLD("ver"), FLD("nodes")};
enum { SN_ASI, SN_SID, SN_RID, SN_NAME, SN_DOMAIN, SN_HP, SN_N };
static const struct fld snode_f[SN_N] = {FLD("asi"), FLD("sid"), FLD("rid"), FLD("name"), FLD("domain"), FLD("hp")};

static void read_schain(struct pctx *c, obj_t o, struct ortb_schain *s)
{
    obj_t f[SC_N];
    struct ortb_schain_node *nodes;
    uint32_t i, total;

    if (!is_map(o))
        return;
    slots(o, schain_f, SC_N, f);
    s->present = true;
    s->complete = get_flag(f[SC_COMPLETE]);
    opt_str(f[SC_VER], &s->ver);
    if (!is_array(f[SC_NODES]) || f[SC_NODES]->via.array.size == 0)
        return;
    total = f[SC_NODES]->via.array.size;
    if (total > ORTB_MAX_SCHAIN_NODES) {
        total = ORTB_MAX_SCHAIN_NODES;
        s->truncated = true;
    }
    if ((nodes = zalloc(c, total * sizeof(*nodes))) == NULL)
        return;
    for (i = 0; i < total; i++) {
        obj_t g[SN_N];
        slots(&f[SC_NODES]->via.array.ptr[i], snode_f, SN_N, g);
        opt_str(g[SN_ASI], &nodes[i].asi);
        opt_str(g[SN_SID], &nodes[i].sid);
        opt_str(g[SN_RID], &nodes[i].rid);
        opt_str(g[SN_NAME], &nodes[i].name);
        opt_str(g[SN_DOMAIN], &nodes[i].domain);
        nodes[i].hp = get_flag(g[SN_HP]);
    }
    s->nodes = nodes;
    s->nnodes = total;
}

enum { SR_TID, SR_SCHAIN, SR_EXT, SR_N };
static const struct fld source_f[SR_N] = {FLD("tid"), FLD("schain"), FLD("ext")};

static void read_source(struct pctx *c, obj_t o, struct ortb_req *r)
{
    obj_t f[SR_N], x[SR_N];

    r->source.schain.complete = -1;
    if (!is_map(o))
        return;
    slots(o, source_f, SR_N, f);
    slots(f[SR_EXT], source_f, SR_N, x);
    opt_str(f[SR_TID], &r->source.tid);
    if (r->source.tid.len == 0)
        opt_str(x[SR_TID], &r->source.tid);
    read_schain(c, is_map(f[SR_SCHAIN]) ? f[SR_SCHAIN] : x[SR_SCHAIN], &r->source.schain);
}

/* ---- the request ---- */

enum {
    RQ_ID,
    RQ_IMP,
    RQ_SITE,
    RQ_APP,
    RQ_DEVICE,
    RQ_USER,
    RQ_REGS,
    RQ_SOURCE,
    RQ_AT,
    RQ_TMAX,
    RQ_TEST,
    RQ_CUR,
    RQ_CATTAX,
    RQ_BCAT,
    RQ_BADV,
    RQ_BAPP,
    RQ_WSEAT,
    RQ_BSEAT,
    RQ_EXT,
    RQ_N
};
static const struct fld req_f[RQ_N] = {FLD("id"),   FLD("imp"),   FLD("site"),   FLD("app"),  FLD("device"),
                                       FLD("user"), FLD("regs"),  FLD("source"), FLD("at"),   FLD("tmax"),
                                       FLD("test"), FLD("cur"),   FLD("cattax"), FLD("bcat"), FLD("badv"),
                                       FLD("bapp"), FLD("wseat"), FLD("bseat"),  FLD("ext")};

static int read_req(struct pctx *c, obj_t root, struct ortb_req *r)
{
    obj_t f[RQ_N];
    int rc;

    if (!is_map(root))
        return refuse(c, ORTB_F_NOT_OBJECT, "", "the body must be a JSON object (an OpenRTB BidRequest)");
    slots(root, req_f, RQ_N, f);
    if (f[RQ_ID] == NULL)
        return refuse(c, ORTB_F_ID_MISSING, "/id", "request.id is missing; send the auction id as a string");
    if (f[RQ_ID]->type != MSGPACK_OBJECT_STR)
        return refuse(c, ORTB_F_ID_TYPE, "/id", "request.id must be a string");
    if (f[RQ_ID]->via.str.size == 0)
        return refuse(c, ORTB_F_ID_EMPTY, "/id", "request.id must not be empty");
    if (f[RQ_ID]->via.str.size > ORTB_ID_MAX)
        return refuse(c, ORTB_F_ID_TOO_LONG, "/id", "request.id is %u bytes long; at most %d are accepted",
                      f[RQ_ID]->via.str.size, ORTB_ID_MAX);
    get_str(f[RQ_ID], ORTB_ID_MAX, &r->id);
    if ((rc = read_imps(c, f[RQ_IMP], r)) < 0)
        return rc;

    read_site(c, f[RQ_SITE], &r->site);
    read_site(c, f[RQ_APP], &r->app);
    read_device(c, f[RQ_DEVICE], r);
    read_user(c, f[RQ_USER], r);
    read_regs(c, f[RQ_REGS], r);
    read_source(c, f[RQ_SOURCE], r);
    if (!get_i32(f[RQ_AT], &r->at) || r->at < 1)
        r->at = 2;
    if (!get_i32(f[RQ_TMAX], &r->tmax) || r->tmax < 0)
        r->tmax = 0;
    r->test = get_flag(f[RQ_TEST]) == 1 ? 1 : 0;
    str_list(c, f[RQ_CUR], ORTB_MAX_CURS, 3, &r->cur);
    if (!get_i32(f[RQ_CATTAX], &r->cattax))
        r->cattax = 1;
    str_list(c, f[RQ_BCAT], ORTB_MAX_BLOCKS, ORTB_STR_MAX, &r->bcat);
    str_list(c, f[RQ_BADV], ORTB_MAX_BLOCKS, ORTB_STR_MAX, &r->badv);
    str_list(c, f[RQ_BAPP], ORTB_MAX_BLOCKS, ORTB_STR_MAX, &r->bapp);
    r->blocks_truncated = r->bcat.truncated || r->badv.truncated || r->bapp.truncated;
    str_list(c, f[RQ_WSEAT], ORTB_MAX_SEATS, ORTB_STR_MAX, &r->wseat);
    str_list(c, f[RQ_BSEAT], ORTB_MAX_SEATS, ORTB_STR_MAX, &r->bseat);
    r->ext = is_map(f[RQ_EXT]) ? f[RQ_EXT] : NULL;
    return 0;
}

int ortb_parse(struct ortb_scratch *s, enum doc_fmt fmt, const char *body, size_t len, const struct ortb_req **ret_req,
               struct ads_diag *ret_diag, enum ortb_fault *ret_fault)
{
    struct pctx c;
    msgpack_object root;
    int rc;

    msgpack_zone_clear(&s->zone);
    memset(&s->req, 0, sizeof(s->req));
    memset(&c, 0, sizeof(c));
    c.zone = &s->zone;
    c.diag = ret_diag;
    c.fault = ORTB_F_NONE;

    rc = doc_parse(fmt, body, len, &s->zone, &root, ret_diag);
    if (rc == ADS_EBAD_REQUEST)
        c.fault = ORTB_F_NOT_JSON;
    else if (rc == 0)
        rc = read_req(&c, &root, &s->req);
    if (rc == 0 && c.nomem)
        rc = ads_diag_set(ret_diag, ADS_ENOMEM, NULL, "%s", ads_err_message(ADS_ENOMEM));
    if (rc == ADS_ENOMEM)
        c.fault = ORTB_F_NOMEM;
    if (rc < 0) {
        if (ret_fault != NULL)
            *ret_fault = c.fault;
        return rc;
    }
    *ret_req = &s->req;
    return 0;
}
