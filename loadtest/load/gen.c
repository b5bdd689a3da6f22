/*
 * lgen: see gen.h. The tables below are what makes the traffic look like
 * an ad platform's: a geography where country, region, city, language, time
 * zone and currency agree; devices with their operating systems; segment
 * and interest vocabularies shared by profiles, events and campaigns, so
 * targeting can match.
 */
#include "gen.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(r, a) ((a)[lrng_below((r), COUNT(a))])

static const char *const kind_names[LGEN_KINDS] = {
    [LGEN_HEALTHZ] = "healthz",
    [LGEN_EVENTS] = "events",
    [LGEN_USERS] = "users",
    [LGEN_USER_GET] = "user_get",
    [LGEN_CAMPAIGNS] = "campaigns",
    [LGEN_CAMPAIGN_EDIT] = "campaign_edit",
    [LGEN_BID] = "bid",
    [LGEN_SCORE] = "score",
    [LGEN_SEED_USER] = "seed_users",
    [LGEN_SEED_CAMPAIGN] = "seed_campaigns",
    [LGEN_NOTICE] = "notice",
    [LGEN_FEEDBACK] = "feedback",
    [LGEN_WIN_SCORE] = "win_score",
    [LGEN_LOSS_NOTICE] = "loss_notice",
    [LGEN_POST_EMPTY] = "post_empty",
};

struct geo {
    const char *country, *country3, *region, *city, *language, *tz, *currency;
    double lat, lon;
};

/* Listed twice where a country is a larger market, so a uniform pick is skewed. */
static const struct geo geos[] = {
    {"US", "USA", "US-CA", "San Francisco", "en-US", "America/Los_Angeles", "USD", 37.77, -122.42},
    {"US", "USA", "US-NY", "New York", "en-US", "America/New_York", "USD", 40.71, -74.01},
    {"US", "USA", "US-TX", "Austin", "en-US", "America/Chicago", "USD", 30.27, -97.74},
    {"US", "USA", "US-IL", "Chicago", "es-US", "America/Chicago", "USD", 41.88, -87.63},
    {"DE", "DEU", "DE-BY", "Munich", "de-DE", "Europe/Berlin", "EUR", 48.14, 11.58},
    {"DE", "DEU", "DE-BE", "Berlin", "de-DE", "Europe/Berlin", "EUR", 52.52, 13.40},
    {"FR", "FRA", "FR-IDF", "Paris", "fr-FR", "Europe/Paris", "EUR", 48.86, 2.35},
    {"GB", "GBR", "GB-ENG", "London", "en-GB", "Europe/London", "GBP", 51.51, -0.13},
    {"BR", "BRA", "BR-SP", "S\xc3\xa3o Paulo", "pt-BR", "America/Sao_Paulo", "BRL", -23.55, -46.63},
    {"IN", "IND", "IN-MH", "Mumbai", "hi-IN", "Asia/Kolkata", "INR", 19.08, 72.88},
    {"JP", "JPN", "JP-13", "Tokyo", "ja-JP", "Asia/Tokyo", "JPY", 35.68, 139.69},
    {"CA", "CAN", "CA-ON", "Toronto", "en-CA", "America/Toronto", "CAD", 43.65, -79.38},
    {"ES", "ESP", "ES-MD", "Madrid", "es-ES", "Europe/Madrid", "EUR", 40.42, -3.70},
    {"IT", "ITA", "IT-25", "Milan", "it-IT", "Europe/Rome", "EUR", 45.46, 9.19},
    {"AU", "AUS", "AU-NSW", "Sydney", "en-AU", "Australia/Sydney", "AUD", -33.87, 151.21},
    {"MX", "MEX", "MX-CMX", "Mexico City", "es-MX", "America/Mexico_City", "MXN", 19.43, -99.13},
};

/* device class, OpenRTB devicetype, OS name, OS version, make, model, user agent */
struct device {
    const char *cls;
    int rtb_type;
    const char *os, *osv, *make, *model, *ua;
};

static const struct device devices[] = {
    {"phone", 4, "iOS", "18.1", "Apple", "iPhone15,2",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"},
    {"phone", 4, "iOS", "17.6", "Apple", "iPhone14,5",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"},
    {"phone", 4, "Android", "14", "samsung", "SM-S918B",
     "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile "
     "Safari/537.36"},
    {"phone", 4, "Android", "13", "Google", "Pixel 7",
     "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0 Mobile "
     "Safari/537.36"},
    {"phone", 4, "Android", "14", "Xiaomi", "23049PCD8G",
     "Mozilla/5.0 (Linux; Android 14; 23049PCD8G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile "
     "Safari/537.36"},
    {"tablet", 5, "iPadOS", "17.5", "Apple", "iPad13,18",
     "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"},
    {"tablet", 5, "Android", "13", "samsung", "SM-X710",
     "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36"},
    {"desktop", 2, "Windows", "11", "Microsoft", "PC",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"},
    {"desktop", 2, "Windows", "10", "Microsoft", "PC",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"},
    {"desktop", 2, "macOS", "14.4", "Apple", "Mac",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
     "Safari/605.1.15"},
    {"desktop", 2, "Linux", "6.1", "Unknown", "PC",
     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"},
    {"ctv", 3, "tvOS", "17.4", "Apple", "AppleTV14,1",
     "AppleCoreMedia/1.0.0.21L227 (Apple TV; U; CPU OS 17_4 like Mac OS X)"},
    {"ctv", 3, "Tizen", "7.0", "Samsung", "QN65Q80C",
     "Mozilla/5.0 (SMART-TV; LINUX; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/5.0 TV "
     "Safari/537.36"},
    {"other", 1, "KaiOS", "3.1", "Nokia", "2780",
     "Mozilla/5.0 (Mobile; Nokia_2780_Flip; rv:84.0) Gecko/84.0 Firefox/84.0 KAIOS/3.1"},
};

static const char *const age_bands[] = {"13-17", "18-24", "25-34", "25-34", "35-44", "35-44", "45-54", "55-64", "65+"};
static const char *const tiers[] = {"free", "basic", "silver", "gold", "platinum"};
static const char *const first_names[] = {"Ana",  "Ben",   "Chloe", "Dev",  "Emma",  "Farid", "Grace", "Hiro",
                                          "Ines", "Jonas", "Kofi",  "Lena", "Mateo", "Nora",  "Omar",  "Priya"};

static const char *const segments[] = {
    "outdoor-enthusiasts", "in-market-running-shoes", "high-ltv",
    "rpg-players",         "lapsed-buyers",           "new-parents",
    "travel-intenders",    "auto-intenders",          "foodies",
    "tech-early-adopters", "bargain-hunters",         "fitness",
    "casual-gamers",       "luxury-shoppers",         "students",
    "pet-owners",          "home-improvement",        "music-fans",
    "sports-fans",         "finance-savvy",
};

static const char *const interests[] = {
    "trail-running", "camping",      "smartwatches", "coffee",     "espresso-machines", "hiking-boots",
    "yoga",          "road-cycling", "rpg-games",    "strategy",   "city-trips",        "beach-holidays",
    "electric-cars", "suvs",         "recipes",      "vegan-food", "headphones",        "laptops",
    "smart-home",    "gardening",    "diy-tools",    "dog-food",   "cat-toys",          "sneakers",
    "watches",       "skincare",     "fragrance",    "football",   "basketball",        "index-funds",
};

static const char *const brands[] = {"Stridewell", "Emberfall", "Brewhaus", "Voltride", "Peakline",  "Nimbus",
                                     "Hearthly",   "Fernway",   "Lumen",    "Quillo",   "Tidewater", "Orbit"};
static const char *const products[] = {"trail runners", "season pass", "espresso grinder", "e-bike",
                                       "rain jacket",   "earbuds",     "cookware set",     "garden kit",
                                       "smartwatch",    "travel deal"};

struct size {
    int w, h;
};
static const struct size banner_sizes[] = {{300, 250}, {320, 50},  {728, 90}, {160, 600},
                                           {300, 600}, {970, 250}, {320, 100}};
static const struct size video_sizes[] = {{640, 360}, {640, 480}, {1280, 720}, {1920, 1080}};

static const char *const site_domains[] = {"laufen.example",  "outdoor-magazin.example", "sportnews.example",
                                           "foobar.example",  "citylife.example",        "techdaily.example",
                                           "recipes.example", "travelnotes.example",     "siteabcd.example"};
static const char *const app_bundles[] = {"com.example.weather", "com.example.rpg",   "com.example.news",
                                          "1234567890",          "com.example.chess", "com.example.fitness"};
static const char *const iab1_cats[] = {"IAB1",    "IAB2-1",   "IAB3-1",   "IAB7-39", "IAB8-5",
                                        "IAB9-30", "IAB15-10", "IAB17-33", "IAB18-3", "IAB19"};
static const char *const weekdays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* ---- buffer ---- */

void lgen_buf_reset(struct lgen_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->p)
        b->p[0] = '\0';
}

void lgen_buf_free(struct lgen_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/*
 * Bodies are built from many small formatted pieces, and glibc's vsnprintf
 * was about 40 % of the client's CPU (perf, post_empty at full speed). The
 * conversions the generators use (%s, %.Ns, %d, %u, %c, %%, %.Nf with N <= 6)
 * are written here directly, with %lu, %ld and %lx (PRIu64, PRId64 and PRIx64
 * here); a format with any other is left to vsnprintf.
 */
static bool fast_fmt(const char *fmt)
{
    for (const char *f = strchr(fmt, '%'); f != NULL; f = strchr(f + 2, '%')) {
        const char *c = f + 1;
        if (*c == '.' && c[1] >= '0' && c[1] <= '6' && (c[2] == 'f' || c[2] == 's')) {
            f += 2;
            continue;
        }
        if (*c == 'l' && (c[1] == 'u' || c[1] == 'd' || c[1] == 'x')) {
            f++;
            continue;
        }
        if (*c != 's' && *c != 'd' && *c != 'u' && *c != 'c' && *c != '%')
            return false;
    }
    return true;
}

static void put_hex(struct lgen_buf *b, unsigned long v)
{
    char t[16];
    int n = 0;

    do
        t[sizeof(t) - 1 - n++] = "0123456789abcdef"[v & 15];
    while ((v >>= 4) > 0);
    lgen_buf_append(b, t + sizeof(t) - n, (size_t)n);
}

static void put_uint(struct lgen_buf *b, unsigned long long v)
{
    char t[24];
    int n = 0;

    do
        t[sizeof(t) - 1 - n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    lgen_buf_append(b, t + sizeof(t) - n, (size_t)n);
}

/* %.Nf of a finite value below 1e15 in magnitude; others go to snprintf. */
static void put_fixed(struct lgen_buf *b, double v, int digits)
{
    static const double scale[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
    unsigned long long whole, frac, unit = (unsigned long long)scale[digits];
    double a = v < 0 ? -v : v;

    if (!(a < 1e15)) {
        char t[64];
        int n = snprintf(t, sizeof(t), "%.*f", digits, v);
        lgen_buf_append(b, t, n > 0 ? (size_t)n : 0);
        return;
    }
    whole = (unsigned long long)(a * scale[digits] + 0.5);
    frac = whole % unit;
    whole /= unit;
    if (v < 0 && (whole > 0 || frac > 0))
        lgen_buf_append(b, "-", 1);
    put_uint(b, whole);
    if (digits > 0) {
        char t[8];
        lgen_buf_append(b, ".", 1);
        for (int i = digits - 1; i >= 0; i--, frac /= 10)
            t[i] = (char)('0' + frac % 10);
        lgen_buf_append(b, t, (size_t)digits);
    }
}

void lgen_buf_printf(struct lgen_buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    if (fast_fmt(fmt)) {
        va_list ap;
        const char *f = fmt;
        va_start(ap, fmt);
        while (*f != '\0') {
            const char *pct = strchr(f, '%');
            size_t lit = pct != NULL ? (size_t)(pct - f) : strlen(f);
            int prec = -1;
            lgen_buf_append(b, f, lit);
            if (pct == NULL)
                break;
            f = pct + 1;
            if (*f == '.') {
                prec = f[1] - '0';
                f += 2;
            }
            if (*f == 'l') {
                f++;
                switch (*f++) {
                case 'u': put_uint(b, va_arg(ap, unsigned long)); break;
                case 'x': put_hex(b, va_arg(ap, unsigned long)); break;
                default: {
                    long v = va_arg(ap, long);
                    if (v < 0)
                        lgen_buf_append(b, "-", 1);
                    put_uint(b, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
                    break;
                }
                }
                continue;
            }
            switch (*f++) {
            case 's': {
                const char *str = va_arg(ap, const char *);
                size_t n = strlen(str);
                lgen_buf_append(b, str, prec >= 0 && (size_t)prec < n ? (size_t)prec : n);
                break;
            }
            case 'd': {
                int v = va_arg(ap, int);
                if (v < 0)
                    lgen_buf_append(b, "-", 1);
                put_uint(b, v < 0 ? (unsigned long long)(-(long long)v) : (unsigned long long)v);
                break;
            }
            case 'u': put_uint(b, va_arg(ap, unsigned)); break;
            case 'c': {
                char c = (char)va_arg(ap, int);
                lgen_buf_append(b, &c, 1);
                break;
            }
            case 'f': put_fixed(b, va_arg(ap, double), prec); break;
            default: lgen_buf_append(b, "%", 1); break;
            }
        }
        va_end(ap);
        return;
    }
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t want = b->cap ? b->cap * 2 : 4096;
        while (want < b->len + (size_t)n + 1)
            want *= 2;
        char *p = realloc(b->p, want);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = want;
    }
}

void lgen_buf_append(struct lgen_buf *b, const void *data, size_t len)
{
    if (b->oom)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t want = b->cap ? b->cap * 2 : 4096;
        while (want < b->len + len + 1)
            want *= 2;
        char *p = realloc(b->p, want);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = want;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

/* ---- MessagePack ---- */

static int mp_write(void *data, const char *buf, size_t len)
{
    struct lgen_buf *b = data;
    lgen_buf_append(b, buf, len);
    return b->oom ? -1 : 0;
}

/* Integral numbers (within +-2^53, where a double is exact) become integers, the others float 64. */
static void mp_value(msgpack_packer *pk, const cJSON *v)
{
    if (cJSON_IsObject(v)) {
        int n = cJSON_GetArraySize(v);
        msgpack_pack_map(pk, (size_t)n);
        for (const cJSON *c = v->child; c; c = c->next) {
            size_t kl = strlen(c->string);
            msgpack_pack_str(pk, kl);
            msgpack_pack_str_body(pk, c->string, kl);
            mp_value(pk, c);
        }
    } else if (cJSON_IsArray(v)) {
        msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(v));
        for (const cJSON *c = v->child; c; c = c->next)
            mp_value(pk, c);
    } else if (cJSON_IsString(v)) {
        size_t l = strlen(v->valuestring);
        msgpack_pack_str(pk, l);
        msgpack_pack_str_body(pk, v->valuestring, l);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) <= 9007199254740992.0)
            msgpack_pack_int64(pk, (int64_t)d);
        else
            msgpack_pack_double(pk, d);
    } else if (cJSON_IsTrue(v)) {
        msgpack_pack_true(pk);
    } else if (cJSON_IsFalse(v)) {
        msgpack_pack_false(pk);
    } else {
        msgpack_pack_nil(pk);
    }
}

int lgen_msgpack_of(const char *json, size_t len, struct lgen_buf *out)
{
    cJSON *doc = cJSON_ParseWithLength(json, len);
    if (!doc)
        return -EINVAL;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mp_write);
    mp_value(&pk, doc);
    cJSON_Delete(doc);
    return out->oom ? -ENOMEM : 0;
}

static cJSON *mp_to_json(const msgpack_object *o, unsigned depth)
{
    if (depth > 64)
        return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return cJSON_CreateNull();
    case MSGPACK_OBJECT_BOOLEAN: return cJSON_CreateBool(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return cJSON_CreateNumber((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return cJSON_CreateNumber((double)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return cJSON_CreateNumber(o->via.f64);
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: {
        const char *p = o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr : o->via.bin.ptr;
        uint32_t n = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : o->via.bin.size;
        char *tmp = malloc((size_t)n + 1);
        if (!tmp)
            return NULL;
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        cJSON *v = cJSON_CreateString(tmp);
        free(tmp);
        return v;
    }
    case MSGPACK_OBJECT_ARRAY: {
        cJSON *a = cJSON_CreateArray();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            cJSON *v = mp_to_json(&o->via.array.ptr[i], depth + 1);
            if (!v || !cJSON_AddItemToArray(a, v)) {
                cJSON_Delete(v);
                cJSON_Delete(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        cJSON *m = cJSON_CreateObject();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR) {
                cJSON_Delete(m);
                return NULL;
            }
            char key[256];
            snprintf(key, sizeof(key), "%.*s", (int)kv->key.via.str.size, kv->key.via.str.ptr);
            cJSON *v = mp_to_json(&kv->val, depth + 1);
            if (!v || !cJSON_AddItemToObject(m, key, v)) {
                cJSON_Delete(v);
                cJSON_Delete(m);
                return NULL;
            }
        }
        return m;
    }
    default: return NULL;
    }
}

cJSON *lgen_parse_answer(const char *p, size_t len)
{
    if (!len)
        return NULL;
    unsigned char c = (unsigned char)p[0];
    if ((c & 0xf0) != 0x80 && c != 0xde && c != 0xdf) /* not a MessagePack map: JSON */
        return cJSON_ParseWithLength(p, len);
    msgpack_zone zone;
    msgpack_object o;
    size_t off = 0;
    cJSON *j = NULL;
    if (!msgpack_zone_init(&zone, 4096))
        return NULL;
    if (msgpack_unpack(p, len, &off, &zone, &o) == MSGPACK_UNPACK_SUCCESS)
        j = mp_to_json(&o, 0);
    msgpack_zone_destroy(&zone);
    return j;
}

/* ---- names ---- */

const char *lgen_kind_name(enum lgen_kind kind)
{
    return (unsigned)kind < LGEN_KINDS ? kind_names[kind] : "?";
}

int lgen_kind_parse(const char *name, enum lgen_kind *ret_kind)
{
    for (unsigned k = 0; k < LGEN_KINDS; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *ret_kind = (enum lgen_kind)k;
            return 0;
        }
    }
    return -EINVAL;
}

void lgen_user_id(const struct lgen_cfg *cfg, uint64_t index, char out[LGEN_ID_MAX])
{
    snprintf(out, LGEN_ID_MAX, "u-%016" PRIx64, lrng_mix(index ^ lrng_mix(cfg->seed)));
}

/* The user's buyeruid alias: a different hash of the same index. */
static void buyeruid(const struct lgen_cfg *cfg, uint64_t index, char out[LGEN_ID_MAX])
{
    snprintf(out, LGEN_ID_MAX, "b%016" PRIx64 "%08" PRIx64, lrng_mix(index + lrng_mix(cfg->seed + 1)),
             lrng_mix(index) & 0xffffffffu);
}

/* The user's id5-sync.com alias (every third user has one). */
static uint64_t id5(const struct lgen_cfg *cfg, uint64_t index)
{
    return lrng_mix(index * 7 + 3 + lrng_mix(cfg->seed + 2));
}

void lgen_campaign_id(uint64_t index, char out[LGEN_ID_MAX])
{
    snprintf(out, LGEN_ID_MAX, "load-c-%05" PRIu64, index);
}

int lgen_init(struct lgen *g, const struct lgen_cfg *cfg, unsigned stream)
{
    if (cfg->users == 0 || cfg->users > LGEN_USERS_MAX || cfg->campaigns > LGEN_CAMPAIGNS_MAX || cfg->batch == 0 ||
        cfg->batch > LGEN_BATCH_MAX)
        return -EINVAL;
    memset(g, 0, sizeof(*g));
    g->cfg = *cfg;
    g->stream = stream;
    lrng_seed(&g->rng, lrng_mix(cfg->seed) ^ lrng_mix(0x10000u + stream));
    int rc = lzipf_init(&g->zusers, cfg->users, cfg->zipf_s);
    if (rc == 0 && cfg->campaigns)
        rc = lzipf_init(&g->zcampaigns, cfg->campaigns, cfg->zipf_s);
    return rc;
}

static uint64_t pick_user(struct lgen *g)
{
    return lzipf_draw(&g->zusers, &g->rng) - 1;
}

static uint64_t pick_campaign(struct lgen *g)
{
    return lzipf_draw(&g->zcampaigns, &g->rng) - 1;
}

/* Picks @p n distinct indices below @p range (n <= range, both small) into @p out. */
static void distinct(struct lrng *r, unsigned range, unsigned n, unsigned *out)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned v, j;
        do {
            v = (unsigned)lrng_below(r, range);
            for (j = 0; j < i && out[j] != v; j++)
                ;
        } while (j < i);
        out[i] = v;
    }
}

/* ---- profiles ---- */

int lgen_profile_doc(const struct lgen_cfg *cfg, uint64_t index, int64_t now, struct lrng *r, struct lgen_buf *b)
{
    char id[LGEN_ID_MAX], bu[LGEN_ID_MAX];
    unsigned pick[16];
    /* Where a user lives and what they use is stable per user; the rest varies per write. */
    struct lrng fixed;
    lrng_seed(&fixed, lrng_mix(index) ^ cfg->seed);
    const struct geo *geo = &PICK(&fixed, geos);
    const struct device *dev = &PICK(&fixed, devices);

    lgen_user_id(cfg, index, id);
    buyeruid(cfg, index, bu);
    lgen_buf_printf(b, "{\"id\":\"%s\",\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"%s\"}", id, bu);
    if (index % 3 == 0)
        lgen_buf_printf(b, ",{\"source\":\"id5-sync.com\",\"id\":\"ID5*%016" PRIx64 "\"}", id5(cfg, index));
    lgen_buf_printf(b,
                    "],\"attributes\":{\"country\":\"%s\",\"region\":\"%s\",\"city\":\"%s\",\"language\":\"%s\","
                    "\"device\":\"%s\",\"os\":\"%s %s\"",
                    geo->country, geo->region, geo->city, geo->language, dev->cls, dev->os, dev->osv);
    if (lrng_chance(r, 0.8))
        lgen_buf_printf(b, ",\"age_band\":\"%s\"", PICK(&fixed, age_bands));
    lgen_buf_printf(b, ",\"custom\":{\"loyalty_tier\":\"%s\",\"first_name\":\"%s\",\"visits\":\"%" PRIu64 "\"}}",
                    PICK(r, tiers), PICK(&fixed, first_names), lrng_below(r, 500));

    unsigned ns = (unsigned)lrng_below(r, 7);
    distinct(r, COUNT(segments), ns, pick);
    lgen_buf_printf(b, ",\"segments\":[");
    for (unsigned i = 0; i < ns; i++)
        lgen_buf_printf(b, "%s{\"id\":\"%s\",\"weight\":%.2f,\"last_seen\":%" PRId64 "}", i ? "," : "",
                        segments[pick[i]], 0.3 + 0.7 * lrng_unit(r), now - (int64_t)lrng_below(r, 30 * 86400));
    unsigned ni = (unsigned)lrng_below(r, 11);
    distinct(r, COUNT(interests), ni, pick);
    lgen_buf_printf(b, "],\"interests\":[");
    for (unsigned i = 0; i < ni; i++)
        lgen_buf_printf(b, "%s{\"id\":\"%s\",\"weight\":%.3f,\"updated_at\":%" PRId64 "}", i ? "," : "",
                        interests[pick[i]], 10.0 * lrng_unit(r), now - (int64_t)lrng_below(r, 14 * 86400));
    bool eu = strcmp(geo->currency, "EUR") == 0 || strcmp(geo->country, "GB") == 0;
    lgen_buf_printf(b,
                    "],\"consent\":{\"gdpr_applies\":%s,\"personalization\":%s,\"measurement\":true,"
                    "\"sale_opt_out\":%s}}",
                    eu ? "true" : "false", lrng_chance(r, 0.9) ? "true" : "false",
                    lrng_chance(r, 0.05) ? "true" : "false");
    return b->oom ? -ENOMEM : 0;
}

/* ---- campaigns ---- */

static void size_list(struct lgen_buf *b, const struct size *s, const unsigned *idx, unsigned n)
{
    lgen_buf_printf(b, "[");
    for (unsigned i = 0; i < n; i++)
        lgen_buf_printf(b, "%s{\"w\":%d,\"h\":%d}", i ? "," : "", s[idx[i]].w, s[idx[i]].h);
    lgen_buf_printf(b, "]");
}

int lgen_campaign_doc(const struct lgen_cfg *cfg, uint64_t index, int64_t now, struct lgen_buf *b)
{
    struct lrng rr, *r = &rr;
    lrng_seed(r, lrng_mix(index + 0x5eed) ^ cfg->seed);
    char id[LGEN_ID_MAX];
    lgen_campaign_id(index, id);

    /* The advertiser depends on the campaign's number alone (a campaign can
     * never move to another advertiser, so a seed with another --seed or
     * --campaigns must keep it); 1000 advertisers, Zipf 0.8, so the largest
     * holds about 6.5 % of the campaigns, within the default quota of 10,000
     * at the most campaigns (LGEN_CAMPAIGNS_MAX). */
    struct lrng ra;
    struct lzipf zadv;
    lrng_seed(&ra, lrng_mix(index) ^ 0xad7e);
    lzipf_init(&zadv, 1000, 0.8);
    uint64_t adv = lzipf_draw(&zadv, &ra) - 1;
    const char *brand = brands[lrng_mix(adv) % COUNT(brands)];
    const struct geo *home = &PICK(r, geos);
    const char *product = PICK(r, products);
    /* Start a day back (rounded to the hour, so the same seed gives the same document within an hour). */
    int64_t start = (now / 3600) * 3600 - 86400 * (1 + (int64_t)lrng_below(r, 30));

    lgen_buf_printf(b,
                    "{\"id\":\"%s\",\"advertiser\":\"load-adv-%03" PRIu64 "\",\"name\":\"%s %s, load campaign %" PRIu64
                    "\",\"status\":\"%s\",\"currency\":\"%s\",\"flight\":{\"start\":%" PRId64,
                    id, adv, brand, product, index, lrng_chance(r, 0.95) ? "active" : "paused", home->currency, start);
    if (lrng_chance(r, 0.8))
        lgen_buf_printf(b, ",\"end\":%" PRId64, start + 86400 * (30 + (int64_t)lrng_below(r, 90)));
    lgen_buf_printf(b, ",\"time_zone\":\"%s\"}", home->tz);

    /* Formats first: targeting and creatives both depend on them. */
    bool banner = lrng_chance(r, 0.7), native = lrng_chance(r, 0.6), video = lrng_chance(r, 0.25);
    if (!banner && !native && !video)
        banner = true;
    unsigned bs[8], nbs = 1 + (unsigned)lrng_below(r, 3);
    distinct(r, COUNT(banner_sizes), nbs, bs);

    lgen_buf_printf(b, ",\"targeting\":{");
    const char *sep = "";
    if (lrng_chance(r, 0.7)) {
        /* The home country as alpha-2, up to two more as alpha-3 (as the schema allows), none twice. */
        unsigned nc = 1 + (unsigned)lrng_below(r, 3);
        const char *seen[3] = {home->country};
        lgen_buf_printf(b, "\"countries\":[\"%s\"", home->country);
        for (unsigned i = 1; i < nc; i++) {
            const struct geo *g = &PICK(r, geos);
            bool dup = false;
            for (unsigned j = 0; j < i; j++)
                dup = dup || (seen[j] && strcmp(seen[j], g->country) == 0);
            seen[i] = g->country;
            if (!dup)
                lgen_buf_printf(b, ",\"%s\"", g->country3);
        }
        lgen_buf_printf(b, "]");
        sep = ",";
    }
    if (lrng_chance(r, 0.15)) {
        lgen_buf_printf(b, "%s\"regions\":[\"%s\"]", sep, home->region);
        sep = ",";
    }
    if (lrng_chance(r, 0.5)) {
        static const char *const classes[] = {"phone", "tablet", "desktop", "ctv", "other"};
        unsigned d[5], nd = 1 + (unsigned)lrng_below(r, 3);
        distinct(r, 5, nd, d);
        lgen_buf_printf(b, "%s\"devices\":[", sep);
        for (unsigned i = 0; i < nd; i++)
            lgen_buf_printf(b, "%s\"%s\"", i ? "," : "", classes[d[i]]);
        lgen_buf_printf(b, "]");
        sep = ",";
    }
    if (lrng_chance(r, 0.2)) {
        lgen_buf_printf(b, "%s\"os\":[\"iOS\",\"Android\"]", sep);
        sep = ",";
    }
    if (lrng_chance(r, 0.3)) {
        lgen_buf_printf(b, "%s\"languages\":[\"%.2s\"]", sep, home->language);
        sep = ",";
    }
    if (lrng_chance(r, 0.2)) {
        lgen_buf_printf(b, "%s\"categories\":{\"taxonomy\":\"iab_content_1.0\",\"exclude\":[\"IAB7-39\",\"IAB25\"]}",
                        sep);
        sep = ",";
    }
    if (lrng_chance(r, 0.15)) {
        lgen_buf_printf(b, "%s\"domains\":{\"block\":[\"%s\"]}", sep, PICK(r, site_domains));
        sep = ",";
    }
    if (lrng_chance(r, 0.1)) {
        lgen_buf_printf(b, "%s\"bundles\":{\"block\":[\"%s\"]}", sep, PICK(r, app_bundles));
        sep = ",";
    }
    if (lrng_chance(r, 0.4)) {
        unsigned s[4], nsg = 1 + (unsigned)lrng_below(r, 3);
        distinct(r, COUNT(segments), nsg + 1, s);
        lgen_buf_printf(b, "%s\"segments\":{\"include\":[", sep);
        for (unsigned i = 0; i < nsg; i++)
            lgen_buf_printf(b, "%s\"%s\"", i ? "," : "", segments[s[i]]);
        lgen_buf_printf(b, "]");
        if (lrng_chance(r, 0.3))
            lgen_buf_printf(b, ",\"exclude\":[\"%s\"]", segments[s[nsg]]);
        lgen_buf_printf(b, "}");
        sep = ",";
    }
    if (lrng_chance(r, 0.1)) {
        unsigned h = (unsigned)lrng_below(r, 12);
        lgen_buf_printf(b,
                        "%s\"dayparting\":[{\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"],\"start_hour\":%u,"
                        "\"end_hour\":%u},{\"days\":[\"%s\",\"sun\"],\"start_hour\":0,\"end_hour\":24}]",
                        sep, h, h + 6 + (unsigned)lrng_below(r, 7), weekdays[5]);
        sep = ",";
    }
    lgen_buf_printf(b, "%s\"formats\":[", sep);
    const char *fs = "";
    if (banner) {
        lgen_buf_printf(b, "\"banner\"");
        fs = ",";
    }
    if (native) {
        lgen_buf_printf(b, "%s\"native\"", fs);
        fs = ",";
    }
    if (video)
        lgen_buf_printf(b, "%s\"video\"", fs);
    lgen_buf_printf(b, "]");
    if (banner && lrng_chance(r, 0.3)) {
        lgen_buf_printf(b, ",\"sizes\":");
        size_list(b, banner_sizes, bs, nbs);
    }
    if (lrng_chance(r, 0.2)) {
        lgen_buf_printf(b, ",\"deals\":[\"DEAL-%02" PRIu64 "\",\"DEAL-%02" PRIu64 "\"]", lrng_below(r, 20),
                        20 + lrng_below(r, 20));
        if (lrng_chance(r, 0.25))
            lgen_buf_printf(b, ",\"deals_only\":true");
    }
    lgen_buf_printf(b, "}");

    unsigned strategy = (unsigned)lrng_below(r, 3);
    if (strategy == 0)
        lgen_buf_printf(b, ",\"bid\":{\"strategy\":\"max_cpm\",\"amount_micros\":%" PRIu64 "}",
                        500000 + lrng_below(r, 14500000));
    else
        lgen_buf_printf(
            b, ",\"bid\":{\"strategy\":\"%s\",\"amount_micros\":%" PRIu64 ",\"ceiling_cpm_micros\":%" PRIu64 "}",
            strategy == 1 ? "target_cpc" : "target_cpa",
            strategy == 1 ? 100000 + lrng_below(r, 2900000) : 5000000 + lrng_below(r, 75000000),
            5000000 + lrng_below(r, 25000000));
    uint64_t daily = (50 + lrng_below(r, 4950)) * UINT64_C(1000000);
    uint64_t total = daily * (10 + lrng_below(r, 90));
    unsigned bmode = (unsigned)lrng_below(r, 4);
    lgen_buf_printf(b, ",\"pacing\":\"%s\",\"budget\":{", lrng_chance(r, 0.7) ? "even" : "asap");
    if (bmode == 0)
        lgen_buf_printf(b, "\"daily_micros\":%" PRIu64 "}", daily);
    else if (bmode == 1)
        lgen_buf_printf(b, "\"total_micros\":%" PRIu64 "}", total);
    else
        lgen_buf_printf(b, "\"daily_micros\":%" PRIu64 ",\"total_micros\":%" PRIu64 "}", daily, total);
    if (lrng_chance(r, 0.7)) {
        uint64_t ph = 1 + lrng_below(r, 3), pd = ph * (1 + lrng_below(r, 4)), lt = pd * (2 + lrng_below(r, 9));
        lgen_buf_printf(
            b, ",\"frequency_caps\":{\"per_hour\":%" PRIu64 ",\"per_day\":%" PRIu64 ",\"lifetime\":%" PRIu64 "}", ph,
            pd, lt);
    }
    char lower[32];
    size_t bl = strlen(brand);
    for (size_t i = 0; i <= bl && i < sizeof(lower); i++)
        lower[i] = (char)(brand[i] >= 'A' && brand[i] <= 'Z' ? brand[i] + 32 : brand[i]);
    lower[sizeof(lower) - 1] = '\0';
    lgen_buf_printf(b, ",\"adomain\":[\"%s.example\"]", lower);
    if (lrng_chance(r, 0.5))
        lgen_buf_printf(b, ",\"creative_categories\":{\"taxonomy\":\"iab_content_1.0\",\"ids\":[\"%s\"]}",
                        PICK(r, iab1_cats));

    lgen_buf_printf(b, ",\"creatives\":{\"slots\":{\"city\":{\"source\":\"attributes.city\",\"max_length\":32,"
                       "\"fallback\":\"your city\"},\"name\":{\"source\":\"attributes.custom.first_name\","
                       "\"max_length\":20,\"fallback\":\"there\"}}");
    if (banner) {
        lgen_buf_printf(b, ",\"banner\":{\"sizes\":");
        size_list(b, banner_sizes, bs, nbs);
        lgen_buf_printf(b,
                        ",\"html_template\":\"<div class=\\\"ad\\\">\\n  <p>Hi {{name}}: %s %s, now in {{city}}.</p>\\n"
                        "  <a href=\\\"https://%s.example/c/%" PRIu64 "\\\">Shop now</a>\\n</div>\","
                        "\"click_url\":\"https://%s.example/c/%" PRIu64 "?utm_source=adsmith\"}",
                        brand, product, lower, index, lower, index);
    }
    if (native)
        lgen_buf_printf(b,
                        ",\"native\":{\"title\":\"%s %s for {{city}}\",\"description\":\"{{name}}, the %s %s is here: "
                        "free returns within 30 days.\",\"cta\":\"Shop now\",\"sponsored_by\":\"%s\","
                        "\"image\":{\"url\":\"https://cdn.%s.example/%" PRIu64 "/1200x627.jpg\",\"w\":1200,\"h\":627},"
                        "\"click_url\":\"https://%s.example/n/%" PRIu64 "\"}",
                        brand, product, brand, product, brand, lower, index, lower, index);
    if (video)
        lgen_buf_printf(b,
                        ",\"video\":{\"vast_url\":\"https://ads.%s.example/vast/%" PRIu64
                        ".xml\",\"duration_s\":%" PRIu64 ",\"skippable\":%s}",
                        lower, index, 6 + lrng_below(r, 25), lrng_chance(r, 0.5) ? "true" : "false");
    lgen_buf_printf(b, "}");

    bool generation = native && lrng_chance(r, 0.7);
    if (generation)
        lgen_buf_printf(b,
                        ",\"generation\":{\"facts\":[\"The %s %s ships free in %s.\",\"Free returns within 30 days.\"],"
                        "\"brand_voice\":\"Warm, direct and practical; second person; no exclamation marks.\","
                        "\"required_terms\":[\"%s\"],\"forbidden_terms\":[\"cheapest\",\"guaranteed\"],"
                        "\"locales\":[\"%s\"],\"variants\":%" PRIu64 ",\"ai_label\":\"AI-generated ad\","
                        "\"backend\":\"builtin\"}",
                        brand, product, home->city, brand, home->language, 1 + lrng_below(r, 6));
    if (generation || lrng_chance(r, 0.2)) {
        static const char *const periods[] = {"day", "week", "month"};
        lgen_buf_printf(
            b, ",\"token_package\":{\"grant\":{\"tokens\":%" PRIu64 ",\"period\":\"%s\",\"anchor\":%" PRId64 "}",
            (1 + lrng_below(r, 1000)) * UINT64_C(100000), PICK(r, periods), start);
        unsigned nt = (unsigned)lrng_below(r, 4);
        if (nt) {
            lgen_buf_printf(b, ",\"top_ups\":[");
            for (unsigned i = 0; i < nt; i++)
                lgen_buf_printf(b, "%s{\"id\":\"po-%" PRIu64 "-%u\",\"tokens\":%" PRIu64 ",\"at\":%" PRId64 "}",
                                i ? "," : "", index, i, (1 + lrng_below(r, 50)) * UINT64_C(100000),
                                start + (int64_t)lrng_below(r, 30 * 86400));
            lgen_buf_printf(b, "]");
        }
        lgen_buf_printf(b, ",\"limit\":\"%s\"", lrng_chance(r, 0.6) ? "hard" : "soft");
        if (lrng_chance(r, 0.5))
            lgen_buf_printf(b, ",\"alert_thresholds\":[50,80,100]");
        lgen_buf_printf(b, "}");
    }
    lgen_buf_printf(b, "}");
    return b->oom ? -ENOMEM : 0;
}

/* ---- traffic ---- */

static void events_body(struct lgen *g, int64_t now, struct lgen_buf *b)
{
    struct lrng *r = &g->rng;
    lgen_buf_printf(b, "{\"events\":[");
    for (unsigned i = 0; i < g->cfg.batch; i++) {
        uint64_t u = pick_user(g);
        char uid[LGEN_ID_MAX];
        double t = lrng_unit(r);
        const char *type = t < 0.85 ? "impression" : t < 0.95 ? "click" : t < 0.97 ? "conversion" : "custom";
        if (g->cfg.no_event_ids)
            lgen_buf_printf(b, "%s{\"type\":\"%s\"", i ? "," : "", type);
        else
            lgen_buf_printf(b, "%s{\"id\":\"ev-%" PRIx64 "-%u-%" PRIu64 "-%u\",\"type\":\"%s\"", i ? "," : "",
                            g->cfg.seed, g->stream, g->counter, i, type);
        if (lrng_chance(r, 0.1)) {
            buyeruid(&g->cfg, u, uid);
            lgen_buf_printf(b, ",\"user\":\"%s\",\"source\":\"buyeruid\"", uid);
        } else {
            lgen_user_id(&g->cfg, u, uid);
            lgen_buf_printf(b, ",\"user\":\"%s\"", uid);
        }
        lgen_buf_printf(b, ",\"ts\":%" PRId64, now - (int64_t)lrng_below(r, 600));
        if (type[1] == 'u') {
            static const char *const names[] = {"add_to_cart", "add_to_wishlist", "video_complete", "signup"};
            lgen_buf_printf(b, ",\"name\":\"%s\",\"weight\":%.2f", PICK(r, names), lrng_unit(r));
        } else if (g->cfg.campaigns) {
            char cid[LGEN_ID_MAX];
            lgen_campaign_id(pick_campaign(g), cid);
            lgen_buf_printf(b, ",\"campaign\":\"%s\",\"variant\":\"v%" PRIu64 "\"", cid, lrng_below(r, 6));
        }
        unsigned ni = 1 + (unsigned)lrng_below(r, 3), pick[3];
        distinct(r, COUNT(interests), ni, pick);
        lgen_buf_printf(b, ",\"interests\":[");
        for (unsigned k = 0; k < ni; k++)
            lgen_buf_printf(b, "%s\"%s\"", k ? "," : "", interests[pick[k]]);
        lgen_buf_printf(b, "]");
        if (type[0] == 'c' && type[1] == 'o')
            lgen_buf_printf(b, ",\"value\":%" PRIu64, (1 + lrng_below(r, 300)) * UINT64_C(1000000));
        lgen_buf_printf(b, "}");
    }
    lgen_buf_printf(b, "]}");
}

static void campaign_patch(struct lgen *g, struct lgen_buf *b)
{
    /* Edits that keep every generated campaign valid: the bid amount (within
     * the smallest range of any strategy) or the frequency caps, and always
     * the name, which carries the edit's number so no two bodies are equal. */
    struct lrng *r = &g->rng;
    lgen_buf_printf(b, "{\"name\":\"edited by adsmith-load, edit %u-%" PRIu64 "\"", g->stream, g->counter);
    if (lrng_chance(r, 0.5)) {
        lgen_buf_printf(b, ",\"bid\":{\"amount_micros\":%" PRIu64 "}}", 500000 + lrng_below(r, 2500000));
    } else {
        uint64_t ph = 1 + lrng_below(r, 3), pd = ph * (1 + lrng_below(r, 4));
        lgen_buf_printf(
            b, ",\"frequency_caps\":{\"per_hour\":%" PRIu64 ",\"per_day\":%" PRIu64 ",\"lifetime\":%" PRIu64 "}}", ph,
            pd, pd * 5);
    }
}

static void bid_imp(struct lgen *g, unsigned n, struct lgen_buf *b, struct lgen_imp_info *info)
{
    struct lrng *r = &g->rng;
    double floor = 0.05 + 4.95 * lrng_unit(r) * lrng_unit(r);
    floor = (double)(int64_t)(floor * 100 + 0.5) / 100; /* as printed */
    memset(info, 0, sizeof(*info));
    info->floor = floor;
    lgen_buf_printf(b, "{\"id\":\"%u\",\"bidfloor\":%.2f,\"bidfloorcur\":\"USD\"", n + 1, floor);
    if (lrng_chance(r, 0.5))
        lgen_buf_printf(b, ",\"tagid\":\"slot-%" PRIu64 "\"", lrng_below(r, 1000));
    if (lrng_chance(r, 0.5))
        lgen_buf_printf(b, ",\"secure\":1");
    double f = lrng_unit(r);
    if (f < 0.65) {
        const struct size *s = &PICK(r, banner_sizes);
        info->w = s->w;
        info->h = s->h;
        info->pos = (int)lrng_below(r, 4);
        lgen_buf_printf(b, ",\"banner\":{\"w\":%d,\"h\":%d,\"pos\":%d", s->w, s->h, info->pos);
        if (lrng_chance(r, 0.3)) {
            const struct size *s2 = &PICK(r, banner_sizes);
            lgen_buf_printf(b, ",\"format\":[{\"w\":%d,\"h\":%d},{\"w\":%d,\"h\":%d}]", s->w, s->h, s2->w, s2->h);
        }
        lgen_buf_printf(b, ",\"btype\":[4],\"battr\":[14],\"api\":[3,5]}");
    } else if (f < 0.85) {
        info->fmt = 1;
        lgen_buf_printf(
            b, ",\"native\":{\"ver\":\"1.2\",\"request\":\"{\\\"ver\\\":\\\"1.2\\\",\\\"context\\\":1,"
               "\\\"plcmttype\\\":1,\\\"assets\\\":[{\\\"id\\\":1,\\\"required\\\":1,\\\"title\\\":{\\\"len\\\":90}},"
               "{\\\"id\\\":2,\\\"required\\\":1,\\\"img\\\":{\\\"type\\\":3,\\\"w\\\":1200,\\\"h\\\":627}},"
               "{\\\"id\\\":3,\\\"data\\\":{\\\"type\\\":2,\\\"len\\\":140}}]}\"}");
    } else {
        const struct size *s = &PICK(r, video_sizes);
        info->fmt = 2;
        info->w = s->w;
        info->h = s->h;
        lgen_buf_printf(b,
                        ",\"video\":{\"mimes\":[\"video/mp4\",\"application/javascript\"],\"minduration\":5,"
                        "\"maxduration\":%d,\"protocols\":[2,3,5,6],\"w\":%d,\"h\":%d,\"startdelay\":0,"
                        "\"plcmt\":%" PRIu64 ",\"linearity\":1,\"skip\":%" PRIu64 ",\"api\":[1,2]}",
                        lrng_chance(r, 0.5) ? 30 : 60, s->w, s->h, 1 + lrng_below(r, 4), lrng_below(r, 2));
    }
    if (lrng_chance(r, 0.2)) {
        info->deal_floor = (double)(int64_t)(floor * 150 + 0.5) / 100;
        uint64_t pa = lrng_below(r, 2);
        snprintf(info->deal, sizeof(info->deal), "DEAL-%02" PRIu64, lrng_below(r, 40));
        lgen_buf_printf(b,
                        ",\"pmp\":{\"private_auction\":%" PRIu64 ",\"deals\":[{\"id\":\"%s\""
                        ",\"bidfloor\":%.2f,\"at\":1,\"wseat\":[\"adsmith\"]}]}",
                        pa, info->deal, info->deal_floor);
    }
    lgen_buf_printf(b, "}");
}

static void bid_body(struct lgen *g, int64_t now, struct lgen_buf *b, struct lgen_bid_info *info)
{
    struct lrng *r = &g->rng;
    uint64_t u = pick_user(g);
    struct lrng fixed;
    lrng_seed(&fixed, lrng_mix(u) ^ g->cfg.seed);
    const struct geo *geo = &PICK(&fixed, geos);
    const struct device *dev = &PICK(&fixed, devices);
    char uid[LGEN_ID_MAX], bu[LGEN_ID_MAX];
    lgen_user_id(&g->cfg, u, uid);
    buyeruid(&g->cfg, u, bu);

    memset(info, 0, sizeof(*info));
    info->user = u;
    info->devtype = dev->rtb_type;
    info->at = lrng_chance(r, 0.8) ? 1 : 2;
    /* The user's local hour: UTC plus the longitude's offset. */
    info->hour = (int)((((now / 3600) + (int64_t)(geo->lon / 15.0 + (geo->lon < 0 ? -0.5 : 0.5))) % 24 + 24) % 24);
    snprintf(info->auction, sizeof(info->auction), "br-%" PRIx64 "-%u-%" PRIu64, g->cfg.seed, g->stream, g->counter);
    lgen_buf_printf(b, "{\"id\":\"%s\",\"at\":%d,\"tmax\":%" PRIu64 ",\"cur\":[\"USD\"],\"imp\":[", info->auction,
                    info->at, 80 + lrng_below(r, 8) * 20);
    unsigned nimp = lrng_chance(r, 0.85) ? 1 : 2 + (unsigned)lrng_below(r, 2);
    info->nimp = nimp;
    for (unsigned i = 0; i < nimp; i++) {
        if (i)
            lgen_buf_printf(b, ",");
        bid_imp(g, i, b, &info->imp[i]);
    }
    lgen_buf_printf(b, "]");
    bool app = dev->rtb_type == 4 && lrng_chance(r, 0.6);
    info->app = app;
    if (app) {
        info->placement = (uint32_t)lrng_below(r, 500);
        const char *bundle = PICK(r, app_bundles);
        info->category = (uint32_t)lrng_below(r, COUNT(iab1_cats));
        snprintf(info->bundle, sizeof(info->bundle), "%s", bundle);
        lgen_buf_printf(b,
                        ",\"app\":{\"id\":\"app-%u\",\"bundle\":\"%s\",\"cat\":[\"%s\"],\"ver\":\"%" PRIu64 ".%" PRIu64
                        "\",\"publisher\":{\"id\":\"pub-%" PRIu64 "\"}}",
                        info->placement, bundle, iab1_cats[info->category], 1 + lrng_below(r, 9), lrng_below(r, 20),
                        lrng_below(r, 200));
    } else {
        info->placement = (uint32_t)lrng_below(r, 500);
        const char *dom = PICK(r, site_domains);
        uint64_t page = lrng_below(r, 100000);
        info->category = (uint32_t)lrng_below(r, COUNT(iab1_cats));
        snprintf(info->site, sizeof(info->site), "site-%u", info->placement);
        info->domain = dom;
        lgen_buf_printf(b,
                        ",\"site\":{\"id\":\"site-%u\",\"domain\":\"%s\",\"page\":\"https://%s/a/%" PRIu64
                        ".html\",\"cat\":[\"%s\"],\"publisher\":{\"id\":\"pub-%" PRIu64 "\"}}",
                        info->placement, dom, dom, page, iab1_cats[info->category], lrng_below(r, 200));
    }
    info->conn = 2 + (int)lrng_below(r, 5);
    info->os = dev->os;
    info->country3 = geo->country3;
    info->region = geo->region;
    info->cat = iab1_cats[info->category];
    lgen_buf_printf(
        b,
        ",\"device\":{\"ua\":\"%s\",\"ip\":\"%" PRIu64 ".%" PRIu64 ".%" PRIu64 ".%" PRIu64 "\",\"devicetype\":%d,"
        "\"make\":\"%s\",\"model\":\"%s\",\"os\":\"%s\",\"osv\":\"%s\",\"language\":\"%.2s\",\"js\":1,"
        "\"connectiontype\":%" PRIu64 ",\"geo\":{\"country\":\"%s\",\"region\":\"%s\",\"city\":\"%s\","
        "\"lat\":%.3f,\"lon\":%.3f,\"type\":2}",
        dev->ua, 11 + lrng_below(r, 200), lrng_below(r, 256), lrng_below(r, 256), 1 + lrng_below(r, 254), dev->rtb_type,
        dev->make, dev->model, dev->os, dev->osv, geo->language, (uint64_t)info->conn, geo->country3, geo->region + 3,
        geo->city, geo->lat + lrng_unit(r) / 10, geo->lon + lrng_unit(r) / 10);
    if (app && lrng_chance(r, 0.7))
        lgen_buf_printf(b, ",\"ifa\":\"%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-a%03" PRIx64 "-%012" PRIx64 "\"",
                        lrng_mix(u) & 0xffffffffu, lrng_mix(u + 1) & 0xffff, lrng_mix(u + 2) & 0xfff,
                        lrng_mix(u + 3) & 0xfff, lrng_mix(u + 4) & UINT64_C(0xffffffffffff));
    lgen_buf_printf(b, "}");
    /* Most requests name the user by the exchange's id (buyeruid); some by ours, some by an EID. */
    lgen_buf_printf(b, ",\"user\":{\"id\":\"x-%016" PRIx64 "\"", lrng_mix(u ^ 0xe8c4));
    double how = lrng_unit(r);
    if (how < 0.7)
        lgen_buf_printf(b, ",\"buyeruid\":\"%s\"", bu);
    else if (how < 0.85)
        lgen_buf_printf(b, ",\"ext\":{\"adsmith_uid\":\"%s\"}", uid);
    if (u % 3 == 0 && lrng_chance(r, 0.5))
        lgen_buf_printf(
            b, ",\"eids\":[{\"source\":\"id5-sync.com\",\"uids\":[{\"id\":\"ID5*%016" PRIx64 "\",\"atype\":1}]}]",
            id5(&g->cfg, u));
    bool eu = strcmp(geo->currency, "EUR") == 0 || strcmp(geo->country, "GB") == 0;
    if (eu)
        lgen_buf_printf(b, ",\"consent\":\"CP%016" PRIx64 "AAAA\"", lrng_next(r));
    lgen_buf_printf(b, "}");
    lgen_buf_printf(b, ",\"regs\":{\"coppa\":0,\"gdpr\":%d", eu ? 1 : 0);
    if (strcmp(geo->country, "US") == 0)
        lgen_buf_printf(b, ",\"us_privacy\":\"1Y%cN\"", lrng_chance(r, 0.1) ? 'Y' : 'N');
    lgen_buf_printf(b,
                    "},\"bcat\":[\"IAB25\",\"IAB26\"],\"badv\":[\"blocked-%" PRIu64
                    ".example\"],\"source\":{\"tid\":\"%016" PRIx64 "\"},\"ext\":{\"sent_at\":%" PRId64 "}}",
                    lrng_below(r, 50), lrng_next(r), now);
}

static const char *const fmt_names[] = {"banner", "native", "video"};

/* "context":{...} of impression @p imp of @p bi, as POST /v1/score takes it. */
static void score_context(const struct lgen_bid_info *bi, unsigned imp, struct lgen_buf *b)
{
    const struct lgen_imp_info *ii = &bi->imp[imp];
    lgen_buf_printf(b, "\"context\":{");
    if (bi->site[0])
        lgen_buf_printf(b, "\"site\":\"%s\",\"domain\":\"%s\",", bi->site, bi->domain ? bi->domain : "");
    else
        lgen_buf_printf(b, "\"app\":\"%s\",", bi->bundle);
    lgen_buf_printf(b, "\"category\":[\"%s\"],\"device\":%d,\"os\":\"%s\",\"country\":\"%s\",\"region\":\"%s\"",
                    bi->cat ? bi->cat : "IAB1", bi->devtype, bi->os ? bi->os : "", bi->country3 ? bi->country3 : "",
                    bi->region ? bi->region : "");
    lgen_buf_printf(b, ",\"format\":\"%s\",\"conn\":%d", fmt_names[ii->fmt], bi->conn);
    if (ii->w > 0 && ii->h > 0 && ii->fmt != 1)
        lgen_buf_printf(b, ",\"size\":\"%dx%d\"", ii->w, ii->h);
    if (ii->fmt == 0)
        lgen_buf_printf(b, ",\"pos\":%d", ii->pos);
    if (ii->deal[0])
        lgen_buf_printf(b, ",\"deal\":\"%s\"", ii->deal);
    lgen_buf_printf(b, "}");
}

int lgen_score_of(const struct lgen_cfg *cfg, const struct lgen_bid_info *bi, unsigned imp, const char *campaign,
                  struct lgen_buf *b)
{
    if (imp >= bi->nimp || imp >= LGEN_IMPS_MAX || bi->imp[imp].fmt < 0 || bi->imp[imp].fmt > 2)
        return -EINVAL;
    char uid[LGEN_ID_MAX];
    lgen_user_id(cfg, bi->user, uid);
    lgen_buf_printf(b, "{\"user\":{\"id\":\"%s\"},", uid);
    score_context(bi, imp, b);
    lgen_buf_printf(b, ",\"candidates\":[{\"campaign\":\"%s\",\"creative\":\"%s\"}]}", campaign,
                    fmt_names[bi->imp[imp].fmt]);
    return b->oom ? -ENOMEM : 0;
}

static void score_body(struct lgen *g, int64_t now, struct lgen_buf *b)
{
    /* A bid request's context (drawn, then thrown away) and 1-8 candidates (schemas/score-request.schema.json). */
    struct lrng *r = &g->rng;
    struct lgen_buf scratch = {0};
    struct lgen_bid_info bi;
    bid_body(g, now, &scratch, &bi);
    lgen_buf_free(&scratch);
    char uid[LGEN_ID_MAX];
    lgen_user_id(&g->cfg, bi.user, uid);
    lgen_buf_printf(b, "{\"user\":{\"id\":\"%s\"},", uid);
    score_context(&bi, (unsigned)lrng_below(r, bi.nimp), b);
    lgen_buf_printf(b, ",\"candidates\":[");
    unsigned n = 1 + (unsigned)lrng_below(r, 8);
    for (unsigned i = 0; i < n; i++) {
        char cid[LGEN_ID_MAX];
        lgen_campaign_id(g->cfg.campaigns ? pick_campaign(g) : i, cid);
        lgen_buf_printf(b, "%s{\"campaign\":\"%s\"}", i ? "," : "", cid);
    }
    lgen_buf_printf(b, "]}");
}

int lgen_make(struct lgen *g, enum lgen_kind kind, uint64_t index, int64_t now, struct lgen_req *req)
{
    char id[LGEN_ID_MAX];
    struct lgen_buf *b = &req->body;
    lgen_buf_reset(b);
    req->kind = kind;
    req->content_type = NULL;
    req->keep_response = kind == LGEN_BID;
    g->counter++;
    switch (kind) {
    case LGEN_HEALTHZ:
        req->method = "GET";
        snprintf(req->path, sizeof(req->path), "/healthz");
        return 0;
    case LGEN_USER_GET:
        req->method = "GET";
        lgen_user_id(&g->cfg, pick_user(g), id);
        snprintf(req->path, sizeof(req->path), "/v1/users/%s", id);
        return 0;
    case LGEN_CAMPAIGNS:
    case LGEN_CAMPAIGN_EDIT:
        if (!g->cfg.campaigns)
            return -EINVAL;
        lgen_campaign_id(pick_campaign(g), id);
        snprintf(req->path, sizeof(req->path), "/v1/campaigns/%s", id);
        if (kind == LGEN_CAMPAIGNS) {
            req->method = "GET";
            return 0;
        }
        req->method = "PATCH";
        req->content_type = "application/json"; /* the server takes a merge patch as application/json */
        campaign_patch(g, b);
        break;
    case LGEN_EVENTS:
        req->method = "POST";
        req->content_type = "application/json";
        snprintf(req->path, sizeof(req->path), "/v1/events");
        events_body(g, now, b);
        break;
    case LGEN_USERS:
    case LGEN_SEED_USER: {
        uint64_t u = kind == LGEN_USERS ? pick_user(g) : index;
        req->method = "PUT";
        req->content_type = "application/json";
        lgen_user_id(&g->cfg, u, id);
        snprintf(req->path, sizeof(req->path), "/v1/users/%s", id);
        lgen_profile_doc(&g->cfg, u, now, &g->rng, b);
        break;
    }
    case LGEN_SEED_CAMPAIGN:
        req->method = "PUT";
        req->content_type = "application/json";
        lgen_campaign_id(index, id);
        snprintf(req->path, sizeof(req->path), "/v1/campaigns/%s", id);
        lgen_campaign_doc(&g->cfg, index, now, b);
        break;
    case LGEN_BID:
        req->method = "POST";
        req->content_type = "application/json";
        snprintf(req->path, sizeof(req->path), "/openrtb2/bid");
        bid_body(g, now, b, &req->bid);
        break;
    case LGEN_POST_EMPTY:
        /* The same bodies as bid (same stream, same sizes), to a server that ignores them. */
        req->method = "POST";
        req->content_type = "application/json";
        snprintf(req->path, sizeof(req->path), "/");
        bid_body(g, now, b, &req->bid);
        break;
    case LGEN_SCORE:
        req->method = "POST";
        req->content_type = "application/json";
        snprintf(req->path, sizeof(req->path), "/v1/score");
        score_body(g, now, b);
        break;
    default: return -EINVAL;
    }
    return b->oom ? -ENOMEM : 0;
}
