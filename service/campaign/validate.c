/*
 * Campaign validation: the embedded JSON Schema (through jsch), then the rules
 * the schema cannot state. include/adsmith/campaign.h lists them.
 *
 * A semantic rule reads a few values at known places. It runs only when the
 * schema found nothing wrong at those places (nor inside them), which it
 * learns from the pointers of the schema's problems already in the report, so
 * that one mistake is reported once. Members are looked up as JSON.parse and
 * jsch see them: when a name appears twice, the last one counts (and
 * semantic:duplicate_member says so).
 */
#include "adsmith/campaign.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/buf.h"
#include "adsmith/doc.h"
#include "adsmith/jsch.h"
#include "adsmith/tz.h"

#define CAMP_PTR_MAX 256      /* pointers the rules build; longer ones are cut and then match nothing */
#define CAMP_DISTINCT_MAX 64  /* member names tracked per map by duplicate_member */
#define CAMP_DEDUP_MAX 256    /* maps up to this size hide all but the last of a name, as jsch does */

struct camp_validator {
    struct jsch *schema;
};

int camp_validator_new(struct camp_validator **ret, struct ads_diag *diag)
{
    struct camp_validator *v = calloc(1, sizeof(*v));
    int rc;

    if (v == NULL)
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory compiling the campaign schema");
    rc = jsch_compile(camp_schema_json, camp_schema_json_len, &v->schema, diag);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *ret = v;
    return 0;
}

void camp_validator_free(struct camp_validator *v)
{
    if (v == NULL)
        return;
    jsch_free(v->schema);
    free(v);
}

/*
 * Active ISO 4217 alphabetic codes (ISO 4217:2015 list one, as amended up to
 * 2025), sorted for bsearch. Left out: fund codes (BOV CHE CHW CLF COU MXV USN
 * UYI), units of account (UYW XDR XSU XUA, the bond units XBA-XBD), precious
 * metals (XAG XAU XPD XPT), the testing code XTS, XXX (no currency), and
 * withdrawn codes (HRK since the euro in 2023, and older ones such as VEF).
 * Codes in a changeover keep both names while either is in use (ANG/XCG,
 * SLL/SLE, ZWL/ZWG, CUC).
 */
static const char currencies[][4] = {
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK",
    "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD",
    "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN",
    "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON",
    "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN",
    "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU",
    "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
};

static int currency_cmp(const void *key, const void *elem)
{
    return memcmp(key, elem, 3);
}

bool camp_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > CAMP_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return false;
    }
    return true;
}

bool camp_currency_known(const char *code, size_t len)
{
    return len == 3 &&
           bsearch(code, currencies, sizeof(currencies) / sizeof(currencies[0]), sizeof(currencies[0]), currency_cmp) !=
               NULL;
}

/* ---- reading the document ---- */

/* A value and its JSON pointer. */
struct loc {
    const msgpack_object *v;
    size_t len;
    bool cut; /* the pointer did not fit: it names another value, so no rule trusts it */
    char ptr[CAMP_PTR_MAX];
};

struct sctx {
    struct vrep *rep;
    size_t schema_from, schema_to; /* the schema's problems: rep->items[from, to) */
    const struct camp_rules *rules;
    struct loc root;
};

/*
 * Whether member @p i of @p map is hidden by a later one of the same name
 * (JSON.parse keeps the last). Past CAMP_DEDUP_MAX members every member
 * counts, as in jsch, which keeps this linear per member.
 */
static bool hidden(const msgpack_object *map, uint32_t i)
{
    const msgpack_object *k = &map->via.map.ptr[i].key;

    if (k->type != MSGPACK_OBJECT_STR)
        return true;
    if (map->via.map.size > CAMP_DEDUP_MAX)
        return false;
    for (uint32_t j = i + 1; j < map->via.map.size; j++) {
        const msgpack_object *l = &map->via.map.ptr[j].key;
        if (l->type == MSGPACK_OBJECT_STR && l->via.str.size == k->via.str.size &&
            memcmp(l->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0)
            return true;
    }
    return false;
}

static void loc_child(const struct loc *parent, const msgpack_object *v, const char *key, size_t klen, size_t index,
                      struct loc *ret)
{
    struct buf b;

    buf_init(&b, ret->ptr, sizeof(ret->ptr));
    buf_put(&b, parent->ptr, parent->len);
    if (key != NULL)
        doc_pointer_key(&b, key, klen);
    else
        doc_pointer_index(&b, index);
    ret->v = v;
    ret->len = b.len;
    ret->cut = parent->cut || b.overflow;
}

/* The member @p key of @p parent's map, if there is one. */
static bool loc_key(const struct loc *parent, const char *key, struct loc *ret)
{
    const msgpack_object *v = doc_map_getn(parent->v, key, strlen(key));

    if (v == NULL)
        return false;
    loc_child(parent, v, key, strlen(key), 0, ret);
    return true;
}

/* Follows a "/"-separated path of member names from @p from. */
static bool loc_path(const struct loc *from, const char *path, struct loc *ret)
{
    struct loc tmp;
    const char *seg = path;

    *ret = *from;
    while (*seg != '\0') {
        const char *end = strchr(seg, '/');
        size_t n = end != NULL ? (size_t)(end - seg) : strlen(seg);
        const msgpack_object *v = doc_map_getn(ret->v, seg, n);
        if (v == NULL)
            return false;
        loc_child(ret, v, seg, n, 0, &tmp);
        *ret = tmp;
        seg += n + (end != NULL);
    }
    return true;
}

/* Whether a schema problem sits exactly at @p p (or, with @p below, inside it too). */
static bool flagged(const struct sctx *c, const struct loc *p, bool below)
{
    if (p->cut)
        return true; /* stay silent rather than guess */
    for (size_t i = c->schema_from; i < c->schema_to; i++) {
        const char *q = c->rep->items[i].pointer;
        if (strncmp(c->rep->items[i].rule, "schema:", 7) != 0 || strncmp(q, p->ptr, p->len) != 0)
            continue;
        if (q[p->len] == '\0' || (below && q[p->len] == '/'))
            return true;
    }
    return false;
}

/* Whether the schema passed @p p and everything in it: a rule may read it. */
static bool clean(const struct sctx *c, const struct loc *p)
{
    return !flagged(c, p, true);
}

/* Reads an integer the schema accepted (so 0 .. 10^15, possibly written as 1.0). */
static bool uint_of(const msgpack_object *o, uint64_t *ret)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *ret = o->via.u64;
        return true;
    }
    if ((o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) && o->via.f64 >= 0 &&
        o->via.f64 < 9.2e18 && trunc(o->via.f64) == o->via.f64) {
        *ret = (uint64_t)o->via.f64;
        return true;
    }
    return false;
}

/* An integer member of @p parent that passed the schema. */
static bool clean_uint(const struct sctx *c, const struct loc *parent, const char *key, struct loc *ret,
                       uint64_t *ret_val)
{
    return loc_key(parent, key, ret) && clean(c, ret) && uint_of(ret->v, ret_val);
}

/* A string at @p path below @p from that passed the schema. */
static bool clean_str(const struct sctx *c, const struct loc *from, const char *path, struct loc *ret)
{
    return loc_path(from, path, ret) && ret->v->type == MSGPACK_OBJECT_STR && clean(c, ret);
}

static void add(struct sctx *c, const struct loc *at, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add(struct sctx *c, const struct loc *at, const char *rule, const char *fmt, ...)
{
    char msg[VREP_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vrep_add(c->rep, rule, at->ptr, at->len, "%s", msg);
}

/* Calls @p fn for every item of the array, or member of the map, at @p path below the root. */
static void each(struct sctx *c, const char *path, void (*fn)(struct sctx *c, const struct loc *item))
{
    struct loc list, item;
    const msgpack_object *v;

    if (!loc_path(&c->root, path, &list))
        return;
    v = list.v;
    if (v->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            loc_child(&list, &v->via.array.ptr[i], NULL, 0, i, &item);
            fn(c, &item);
        }
    } else if (v->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < v->via.map.size; i++) {
            const msgpack_object *k = &v->via.map.ptr[i].key;
            if (hidden(v, i))
                continue;
            loc_child(&list, &v->via.map.ptr[i].val, k->via.str.ptr, k->via.str.size, 0, &item);
            fn(c, &item);
        }
    }
}

/* ---- the rules ---- */

static void r_end_after_start(struct sctx *c)
{
    struct loc flight, start, end;
    uint64_t s, e;

    if (loc_key(&c->root, "flight", &flight) && clean_uint(c, &flight, "start", &start, &s) &&
        clean_uint(c, &flight, "end", &end, &e) && e <= s)
        add(c, &end, "semantic:end_after_start", "is %llu, not after start (%llu); a flight must end after it starts",
            (unsigned long long)e, (unsigned long long)s);
}

static void r_daypart_one(struct sctx *c, const struct loc *part)
{
    struct loc start, end;
    uint64_t s, e;

    if (clean_uint(c, part, "start_hour", &start, &s) && clean_uint(c, part, "end_hour", &end, &e) && e <= s)
        add(c, &end, "semantic:daypart_end_after_start",
            "is %llu, not after start_hour (%llu); a window across midnight is written as two windows",
            (unsigned long long)e, (unsigned long long)s);
}

static void r_daypart_end_after_start(struct sctx *c)
{
    each(c, "targeting/dayparting", r_daypart_one);
}

static void r_daily_within_total(struct sctx *c)
{
    struct loc budget, daily, total;
    uint64_t d, t;

    if (loc_key(&c->root, "budget", &budget) && clean_uint(c, &budget, "daily_micros", &daily, &d) &&
        clean_uint(c, &budget, "total_micros", &total, &t) && d > t)
        add(c, &daily, "semantic:daily_within_total",
            "is %llu, more than total_micros (%llu); the daily budget cannot exceed the total", (unsigned long long)d,
            (unsigned long long)t);
}

static void r_frequency_caps_order(struct sctx *c)
{
    static const char *const windows[] = {"per_hour", "per_day", "lifetime"}; /* smallest window first */
    struct loc caps, at[3];
    uint64_t val[3];
    bool have[3];

    if (!loc_key(&c->root, "frequency_caps", &caps))
        return;
    for (size_t i = 0; i < 3; i++)
        have[i] = loc_key(&caps, windows[i], &at[i]) && clean(c, &at[i]) && uint_of(at[i].v, &val[i]);
    /* Each cap against the next larger window present (a present but broken one ends the comparison). */
    for (size_t i = 0; i < 2; i++) {
        size_t j = i + 1;
        struct loc tmp;
        if (!have[i])
            continue;
        while (j < 3 && !have[j] && !loc_key(&caps, windows[j], &tmp))
            j++;
        if (j < 3 && have[j] && val[i] > val[j])
            add(c, &at[i], "semantic:frequency_caps_order",
                "is %llu, more than %s (%llu); a smaller window's cap must not exceed a larger one's",
                (unsigned long long)val[i], windows[j], (unsigned long long)val[j]);
    }
}

static void r_currency_known(struct sctx *c)
{
    struct loc cur;

    if (clean_str(c, &c->root, "currency", &cur) && !camp_currency_known(cur.v->via.str.ptr, cur.v->via.str.size))
        add(c, &cur, "semantic:currency_known", "is not an ISO 4217 currency code in use (such as USD, EUR or JPY)");
}

static void r_time_zone_known(struct sctx *c)
{
    struct loc tz;
    char name[72];

    if (!clean_str(c, &c->root, "flight/time_zone", &tz) || tz.v->via.str.size >= sizeof(name))
        return;
    memcpy(name, tz.v->via.str.ptr, tz.v->via.str.size);
    name[tz.v->via.str.size] = '\0';
    if (!tz_exists(name))
        add(c, &tz, "semantic:time_zone_known",
            "is not a time zone of the server's tz database (such as Europe/Berlin, America/New_York or UTC)");
}

static void r_backend_configured(struct sctx *c)
{
    char list[160];
    struct loc be;
    struct buf b;

    if (!clean_str(c, &c->root, "generation/backend", &be))
        return;
    for (size_t i = 0; c->rules != NULL && i < c->rules->nbackends; i++) {
        const char *name = c->rules->backends[i];
        if (strlen(name) == be.v->via.str.size && memcmp(name, be.v->via.str.ptr, be.v->via.str.size) == 0)
            return;
    }
    if (c->rules == NULL || c->rules->nbackends == 0) {
        add(c, &be, "semantic:backend_configured", "names a generator backend, but this server configures none");
        return;
    }
    buf_init(&b, list, sizeof(list));
    for (size_t i = 0; i < c->rules->nbackends; i++)
        buf_printf(&b, "%s%s", i > 0 ? ", " : "", c->rules->backends[i]);
    add(c, &be, "semantic:backend_configured", "names no generator backend of this server; configured: %s%s", list,
        b.overflow ? ", ..." : "");
}

/* The strings that may use {{slot}}: the banner's template and the native creative's texts. */
static const char *const slot_users[] = {
    "creatives/banner/html_template", "creatives/native/title", "creatives/native/description",
    "creatives/native/cta",           "creatives/native/sponsored_by",
};

/* ", a, b" of the declared slot names, in @p b. */
static void slot_names(const msgpack_object *slots, struct buf *b)
{
    for (uint32_t i = 0; slots != NULL && i < slots->via.map.size; i++) {
        const msgpack_object *k = &slots->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR)
            buf_printf(b, "%s%.*s", b->len > 0 ? ", " : "", (int)k->via.str.size, k->via.str.ptr);
    }
}

static void r_slot_declared(struct sctx *c)
{
    const msgpack_object *slots = NULL;
    struct loc sl;
    char names[120];
    struct buf nb;

    if (loc_path(&c->root, "creatives/slots", &sl)) {
        if (sl.v->type != MSGPACK_OBJECT_MAP || flagged(c, &sl, false))
            return; /* the schema refused the slots as a whole (type, count) */
        slots = sl.v;
    }
    buf_init(&nb, names, sizeof(names));
    slot_names(slots, &nb);
    for (size_t u = 0; u < sizeof(slot_users) / sizeof(slot_users[0]); u++) {
        struct loc s;
        const char *text, *open, *close;
        size_t len;

        if (!clean_str(c, &c->root, slot_users[u], &s))
            continue;
        text = s.v->via.str.ptr;
        len = s.v->via.str.size;
        for (open = memmem(text, len, "{{", 2); open != NULL;
             open = memmem(open + 2, len - (size_t)(open + 2 - text), "{{", 2)) {
            const char *name = open + 2;
            size_t n;
            close = memmem(name, len - (size_t)(name - text), "}}", 2);
            if (close == NULL)
                break;
            n = (size_t)(close - name);
            /* A reference is {{name}} with no brace inside; report each undeclared name once per string. */
            if (n == 0 || n > 64 || memchr(name, '{', n) != NULL || memchr(name, '}', n) != NULL ||
                doc_map_getn(slots, name, n) != NULL || memmem(text, (size_t)(open - text) + n + 3, open, n + 4) != NULL)
                continue;
            if (nb.len == 0)
                add(c, &s, "semantic:slot_declared", "uses {{%.*s}}, but /creatives/slots declares no slots", (int)n,
                    name);
            else
                add(c, &s, "semantic:slot_declared", "uses {{%.*s}}, which /creatives/slots does not declare (declared: %s%s)",
                    (int)n, name, names, nb.overflow ? ", ..." : "");
        }
    }
}

static void r_fallback_one(struct sctx *c, const struct loc *slot)
{
    struct loc fallback, max;
    uint64_t m;

    if (clean_str(c, slot, "fallback", &fallback) && clean_uint(c, slot, "max_length", &max, &m) &&
        fallback.v->via.str.size > m)
        add(c, &fallback, "semantic:fallback_within_max_length",
            "is %u bytes, more than this slot's max_length (%llu); a fallback must fit where the value goes",
            fallback.v->via.str.size, (unsigned long long)m);
}

static void r_fallback_within_max_length(struct sctx *c)
{
    each(c, "creatives/slots", r_fallback_one);
}

static void r_format_one(struct sctx *c, const struct loc *format)
{
    const msgpack_object *creatives = doc_map_getn(c->root.v, "creatives", 9);
    const msgpack_object_str *f = &format->v->via.str;

    if (format->v->type != MSGPACK_OBJECT_STR || !clean(c, format) || creatives == NULL ||
        creatives->type != MSGPACK_OBJECT_MAP || doc_map_getn(creatives, f->ptr, f->size) != NULL)
        return;
    add(c, format, "semantic:format_has_creative", "targets %.*s, but /creatives has no %.*s creative", (int)f->size,
        f->ptr, (int)f->size, f->ptr);
}

static void r_format_has_creative(struct sctx *c)
{
    each(c, "targeting/formats", r_format_one);
}

static void r_top_up_ids_unique(struct sctx *c)
{
    struct loc list, a, b, ida, idb;

    if (!loc_path(&c->root, "token_package/top_ups", &list) || list.v->type != MSGPACK_OBJECT_ARRAY ||
        flagged(c, &list, false))
        return; /* absent, or refused as a whole (maxItems bounds the pairs compared here) */
    for (uint32_t j = 1; j < list.v->via.array.size; j++) {
        loc_child(&list, &list.v->via.array.ptr[j], NULL, 0, j, &b);
        if (!clean_str(c, &b, "id", &idb))
            continue;
        for (uint32_t i = 0; i < j; i++) {
            loc_child(&list, &list.v->via.array.ptr[i], NULL, 0, i, &a);
            if (!clean_str(c, &a, "id", &ida) || ida.v->via.str.size != idb.v->via.str.size ||
                memcmp(ida.v->via.str.ptr, idb.v->via.str.ptr, idb.v->via.str.size) != 0)
                continue;
            add(c, &idb, "semantic:top_up_ids_unique",
                "repeats the id of top-up %u; each top-up needs its own id (a replayed upload is recognised by it)", i);
            break;
        }
    }
}

/*
 * Strings whose limit the schema states in bytes (its maxLength, the same
 * number, counts characters). "*" is every item of an array or member of a map.
 */
static const struct {
    const char *path;
    uint32_t max;
} byte_limits[] = {
    {"name", 128},
    {"targeting/os/*", 32},
    {"targeting/segments/include/*", 64},
    {"targeting/segments/exclude/*", 64},
    {"targeting/deals/*", 64},
    {"creatives/slots/*/fallback", 64},
    {"creatives/banner/html_template", 32768},
    {"creatives/native/title", 90},
    {"creatives/native/description", 500},
    {"creatives/native/cta", 25},
    {"creatives/native/sponsored_by", 64},
    {"generation/facts/*", 280},
    {"generation/brand_voice", 1000},
    {"generation/required_terms/*", 64},
    {"generation/forbidden_terms/*", 64},
    {"generation/ai_label", 64},
    {"token_package/top_ups/*/note", 128},
};

/* Visits the strings at @p path (with "*" steps) below @p at and checks them against @p max bytes. */
static void bytes_walk(struct sctx *c, const struct loc *at, const char *path, uint32_t max)
{
    const char *slash = strchr(path, '/');
    size_t n = slash != NULL ? (size_t)(slash - path) : strlen(path);
    const msgpack_object *v = at->v;
    struct loc next;

    if (n == 1 && path[0] == '*') {
        for (uint32_t i = 0; v->type == MSGPACK_OBJECT_ARRAY && i < v->via.array.size; i++) {
            loc_child(at, &v->via.array.ptr[i], NULL, 0, i, &next);
            if (slash != NULL)
                bytes_walk(c, &next, slash + 1, max);
            else if (next.v->type == MSGPACK_OBJECT_STR && clean(c, &next) && next.v->via.str.size > max)
                add(c, &next, "semantic:byte_length",
                    "is %u bytes of UTF-8; the most allowed is %u bytes (characters outside ASCII take 2 to 4 bytes)",
                    next.v->via.str.size, max);
        }
        for (uint32_t i = 0; v->type == MSGPACK_OBJECT_MAP && i < v->via.map.size; i++) {
            const msgpack_object *k = &v->via.map.ptr[i].key;
            if (hidden(v, i))
                continue;
            loc_child(at, &v->via.map.ptr[i].val, k->via.str.ptr, k->via.str.size, 0, &next);
            if (slash != NULL)
                bytes_walk(c, &next, slash + 1, max);
        }
        return;
    }
    v = doc_map_getn(v, path, n);
    if (v == NULL)
        return;
    loc_child(at, v, path, n, 0, &next);
    if (slash != NULL)
        bytes_walk(c, &next, slash + 1, max);
    else if (v->type == MSGPACK_OBJECT_STR && clean(c, &next) && v->via.str.size > max)
        add(c, &next, "semantic:byte_length",
            "is %u bytes of UTF-8; the most allowed is %u bytes (characters outside ASCII take 2 to 4 bytes)",
            v->via.str.size, max);
}

static void r_byte_length(struct sctx *c)
{
    for (size_t i = 0; i < sizeof(byte_limits) / sizeof(byte_limits[0]); i++)
        bytes_walk(c, &c->root, byte_limits[i].path, byte_limits[i].max);
}

/* "1763800000.0": a float as a person may have written it. */
static void float_text(double d, char *out, size_t cap)
{
    size_t n;

    snprintf(out, cap, "%.15g", d);
    if (strtod(out, NULL) != d)
        snprintf(out, cap, "%.17g", d);
    n = strlen(out);
    if (strpbrk(out, ".en") == NULL && n + 3 <= cap)
        memcpy(out + n, ".0", 3);
}

/*
 * Every number the campaign schema allows is an integer (tests/campaign
 * checks that the schema has no "number" type), so any float that passed the
 * schema is an integer written with a fraction or exponent. Also reports
 * member names written twice in one object, which JSON leaves undefined.
 */
static void walk_forms(struct sctx *c, const struct loc *at, unsigned depth)
{
    const msgpack_object *v = at->v;
    struct loc next;

    if (depth > DOC_MAX_DEPTH || flagged(c, at, false))
        return; /* the schema refused this value as a whole */
    if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32) {
        char was[40];
        float_text(v->via.f64, was, sizeof(was));
        if (isfinite(v->via.f64) && trunc(v->via.f64) == v->via.f64 && fabs(v->via.f64) < 9.2e18)
            add(c, at, "semantic:integer_form", "write %lld, not %s (integers take no fraction or exponent)",
                (long long)v->via.f64, was);
    } else if (v->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            loc_child(at, &v->via.array.ptr[i], NULL, 0, i, &next);
            walk_forms(c, &next, depth + 1);
        }
    } else if (v->type == MSGPACK_OBJECT_MAP) {
        /* Distinct names, each with its count, in one pass (a campaign map has few names). */
        const msgpack_object *seen[CAMP_DISTINCT_MAX];
        uint32_t count[CAMP_DISTINCT_MAX], nseen = 0;

        for (uint32_t i = 0; i < v->via.map.size; i++) {
            const msgpack_object *k = &v->via.map.ptr[i].key;
            uint32_t s;
            if (k->type != MSGPACK_OBJECT_STR)
                continue;
            for (s = 0; s < nseen; s++) {
                if (seen[s]->via.str.size == k->via.str.size &&
                    memcmp(seen[s]->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0)
                    break;
            }
            if (s < nseen) {
                count[s]++;
            } else if (nseen < CAMP_DISTINCT_MAX) {
                seen[nseen] = k;
                count[nseen++] = 1;
            }
            if (hidden(v, i))
                continue; /* nobody reads it */
            loc_child(at, &v->via.map.ptr[i].val, k->via.str.ptr, k->via.str.size, 0, &next);
            walk_forms(c, &next, depth + 1);
        }
        for (uint32_t s = 0; s < nseen; s++) {
            if (count[s] < 2)
                continue;
            loc_child(at, NULL, seen[s]->via.str.ptr, seen[s]->via.str.size, 0, &next);
            add(c, &next, "semantic:duplicate_member",
                "appears %u times in this object; write it once (JSON parsers keep only the last)", count[s]);
        }
    }
}

static void r_forms(struct sctx *c)
{
    walk_forms(c, &c->root, 1);
}

static void (*const rules[])(struct sctx *c) = {
    r_end_after_start,     r_daypart_end_after_start, r_daily_within_total, r_frequency_caps_order,
    r_currency_known,      r_time_zone_known,         r_backend_configured, r_slot_declared,
    r_fallback_within_max_length, r_format_has_creative, r_top_up_ids_unique, r_byte_length,
    r_forms,
};

int camp_validate(const struct camp_validator *v, const msgpack_object *doc, const struct camp_rules *rules_in,
                  struct vrep *rep)
{
    struct sctx c;
    size_t before = rep->total;

    c.rep = rep;
    c.rules = rules_in;
    c.schema_from = rep->count;
    jsch_validate(v->schema, doc, rep);
    c.schema_to = rep->count;
    /* With problems beyond what the report keeps, "the schema passed here" cannot be told: stop. */
    if (rep->total - before == c.schema_to - c.schema_from) {
        c.root.v = doc;
        c.root.len = 0;
        c.root.cut = false;
        c.root.ptr[0] = '\0';
        for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
            rules[i](&c);
    }
    return rep->total == before ? 0 : ADS_EINVAL;
}
