/*
 * adsmith-bench-index: the compiled campaign index (cidx) against a linear scan.
 *
 * Generates N active campaigns with varied targeting (seeded, so runs
 * compare), as JSON documents that go through doc_parse and
 * cidx_camp_from_doc like uploaded ones; builds the index; then answers Q
 * generated impressions with cidx_eligible() and with a straightforward scan
 * that evaluates the same rules on every campaign record, checks that both
 * agree on every query, and reports nanoseconds per lookup for each (the
 * index: median of the rounds; the scan, about 1000 times slower: timed while
 * checking, plus any further rounds asked for) and their ratio. Exits 1 on
 * any disagreement.
 *
 *   adsmith-bench-index [-n campaigns] [-q queries] [-r rounds] [-b scan rounds] [-s seed]
 *
 * Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID). Run it pinned
 * to one core: taskset -c 1 adsmith-bench-index
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adsmith/buf.h"
#include "adsmith/cidx.h"
#include "adsmith/doc.h"

/* ---- a seeded generator ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rnd(uint32_t n)
{
    return (uint32_t)(rng() % n);
}

static bool chance(double p)
{
    return (double)(rng() >> 11) * 0x1.0p-53 < p;
}

/* Skewed towards the start of a pool: popular values are popular. */
static uint32_t skewed(uint32_t n)
{
    double u = (double)(rng() >> 11) * 0x1.0p-53;
    uint32_t i = (uint32_t)(u * u * u * n);
    return i < n ? i : n - 1;
}

/* ---- value pools ---- */

static const char *const countries[] = {"US", "GB", "DE", "FR", "CA", "AU", "JP", "BR", "IN", "ES",
                                        "IT", "NL", "MX", "SE", "PL", "AT", "CH", "BE", "DK", "NO",
                                        "IE", "NZ", "SG", "KR", "AR", "CL", "CO", "ZA", "TR", "PT"};
#define NCOUNTRIES (sizeof(countries) / sizeof(countries[0]))
static const char *const us_states[] = {"CA", "TX", "NY", "FL", "IL", "PA", "OH", "GA", "NC", "MI",
                                        "NJ", "VA", "WA", "AZ", "MA", "TN", "IN", "MO", "MD", "WI"};
static const char *const devices[] = {"phone", "tablet", "desktop", "ctv", "other"};
static const char *const os_families[] = {"iOS", "Android", "Windows", "macOS", "Roku OS", "Tizen", "Linux"};
static const char *const os_versions[] = {"iOS 17.4",   "Android 14", "Windows 10", "macOS 14.1",
                                          "Roku OS 12", "Tizen 7.0",  "Linux"};
static const char *const languages[] = {"en", "de", "fr", "es", "pt-BR", "ja", "it", "nl", "sv", "pl", "en-GB", "ko"};
static const char *const req_languages[] = {"en-US", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja",
                                            "it-IT", "nl-NL", "sv-SE", "pl-PL", "en-GB", "ko-KR"};
static const char *const zones[] = {"UTC",
                                    "Europe/Berlin",
                                    "Europe/London",
                                    "America/New_York",
                                    "America/Chicago",
                                    "America/Los_Angeles",
                                    "America/Sao_Paulo",
                                    "Asia/Tokyo",
                                    "Asia/Kolkata",
                                    "Asia/Kathmandu",
                                    "Australia/Sydney",
                                    "Australia/Lord_Howe",
                                    "Europe/Paris",
                                    "Asia/Singapore",
                                    "Pacific/Auckland",
                                    "America/Denver"};
#define NZONES (sizeof(zones) / sizeof(zones[0]))
static const struct cidx_size banner_sizes[] = {{300, 250}, {728, 90},  {320, 50},  {160, 600},
                                                {300, 600}, {970, 250}, {320, 100}, {468, 60}};
static const struct cidx_size video_sizes[] = {{640, 360}, {1280, 720}, {1920, 1080}, {640, 480}};
static const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

#define NDOMAINS 2000
#define NBUNDLES 500
#define NSEGMENTS 500
#define NCATS 120
#define NDEALS 200
static char domain_pool[NDOMAINS][32];
static char bundle_pool[NBUNDLES][40];
static char segment_pool[NSEGMENTS][24];
static char cat_pool[NCATS][8];
static char deal_pool[NDEALS][24];

static void make_pools(void)
{
    for (int i = 0; i < NDOMAINS; i++)
        snprintf(domain_pool[i], sizeof(domain_pool[i]), "site%d.example%s", i, i % 3 ? "" : ".co");
    for (int i = 0; i < NBUNDLES; i++)
        snprintf(bundle_pool[i], sizeof(bundle_pool[i]), "com.publisher%d.app", i);
    for (int i = 0; i < NSEGMENTS; i++)
        snprintf(segment_pool[i], sizeof(segment_pool[i]), "seg-%d", i);
    for (int i = 0; i < NCATS; i++)
        snprintf(cat_pool[i], sizeof(cat_pool[i]), "%d", 100 + i * 7);
    for (int i = 0; i < NDEALS; i++)
        snprintf(deal_pool[i], sizeof(deal_pool[i]), "PMP-%04d", i);
}

/* ---- campaigns ---- */

#define DOC_CAP (64 * 1024)

/* Appends ,"name":[k distinct values of pool] (values picked skewed). */
static void json_pick(struct buf *b, const char *name, const char *(*val)(uint32_t), uint32_t pool, uint32_t k,
                      bool skew)
{
    uint32_t picked[64];
    uint32_t n = 0;

    buf_printf(b, "\"%s\":[", name);
    for (uint32_t tries = 0; n < k && n < 64 && tries < k * 20; tries++) {
        uint32_t v = skew ? skewed(pool) : rnd(pool);
        bool dup = false;
        for (uint32_t j = 0; j < n; j++)
            dup = dup || picked[j] == v;
        if (dup)
            continue;
        buf_printf(b, "%s\"%s\"", n ? "," : "", val(v));
        picked[n++] = v;
    }
    buf_puts(b, "]");
}

static const char *v_country(uint32_t i)
{
    return countries[i];
}
static const char *v_state(uint32_t i)
{
    static char s[8];
    snprintf(s, sizeof(s), "US-%s", us_states[i]);
    return s;
}
static const char *v_os(uint32_t i)
{
    return os_families[i];
}
static const char *v_lang(uint32_t i)
{
    return languages[i];
}
static const char *v_domain(uint32_t i)
{
    return domain_pool[i];
}
static const char *v_bundle(uint32_t i)
{
    return bundle_pool[i];
}
static const char *v_segment(uint32_t i)
{
    return segment_pool[i];
}
static const char *v_cat(uint32_t i)
{
    return cat_pool[i];
}
static const char *v_deal(uint32_t i)
{
    return deal_pool[i];
}
static const char *v_device(uint32_t i)
{
    return devices[i];
}

static void json_sizes(struct buf *b, const struct cidx_size *pool, uint32_t npool, uint32_t k)
{
    uint32_t start = rnd(npool);

    buf_puts(b, "[");
    for (uint32_t i = 0; i < k && i < npool; i++) {
        struct cidx_size s = pool[(start + i) % npool];
        buf_printf(b, "%s{\"w\":%u,\"h\":%u}", i ? "," : "", s.w, s.h);
    }
    buf_puts(b, "]");
}

/* Flights start and end on the hour, as marketers set them. */
static void gen_campaign(struct buf *b, uint32_t i, int64_t now)
{
    bool banner = chance(0.6), native = chance(0.4), video = chance(0.25), first = true;
    int64_t start = now - 86400 * (int64_t)(1 + rnd(30)), end = now + 3600 * (int64_t)(1 + rnd(60 * 24));
    struct buf *t = b;

    if (!banner && !native && !video)
        banner = true;
    if (chance(0.05)) {
        start = now + 3600 * (int64_t)(1 + rnd(100)); /* not started yet */
        end = start + 86400 * (int64_t)(1 + rnd(30));
    } else if (chance(0.05)) {
        start = now - 86400 * (int64_t)(2 + rnd(30)); /* over */
        end = now - 3600 * (int64_t)(1 + rnd(24));
    }
    buf_printf(b,
               "{\"id\":\"camp-%u\",\"advertiser\":\"adv-%u\",\"name\":\"Campaign %u\",\"status\":\"active\","
               "\"currency\":\"USD\",\"flight\":{\"start\":%lld,\"time_zone\":\"%s\"",
               i, i / 10, i, (long long)start, zones[rnd(NZONES)]);
    if (!chance(0.1))
        buf_printf(b, ",\"end\":%lld", (long long)end);
    buf_puts(b, "},\"targeting\":{");
    {
#define SEP() (first ? (first = false, "") : ",")
        if (chance(0.7)) {
            buf_puts(t, SEP());
            json_pick(t, "countries", v_country, NCOUNTRIES, 1 + rnd(5), true);
        }
        if (chance(0.1)) {
            buf_puts(t, SEP());
            json_pick(t, "regions", v_state, 20, 1 + rnd(5), false);
        }
        if (chance(0.5)) {
            buf_puts(t, SEP());
            json_pick(t, "devices", v_device, 5, 1 + rnd(3), false);
        }
        if (chance(0.3)) {
            buf_puts(t, SEP());
            json_pick(t, "os", v_os, 7, 1 + rnd(2), true);
        }
        if (chance(0.4)) {
            buf_puts(t, SEP());
            json_pick(t, "languages", v_lang, 12, 1 + rnd(3), true);
        }
        if (chance(0.5)) {
            bool inc = chance(0.5), exc = !inc || chance(0.5);
            buf_printf(t, "%s\"categories\":{\"taxonomy\":\"iab_content_2.2\"", SEP());
            if (inc) {
                buf_puts(t, ",");
                json_pick(t, "include", v_cat, NCATS, 1 + rnd(5), true);
            }
            if (exc) {
                buf_puts(t, ",");
                json_pick(t, "exclude", v_cat, NCATS, 1 + rnd(10), true);
            }
            buf_puts(t, "}");
        }
        if (chance(0.35)) {
            bool allow = chance(0.15);
            buf_printf(t, "%s\"domains\":{", SEP());
            json_pick(t, allow ? "allow" : "block", v_domain, NDOMAINS, allow ? 3 + rnd(30) : 5 + rnd(50), true);
            buf_puts(t, "}");
        }
        if (chance(0.13)) {
            bool allow = chance(0.25);
            buf_printf(t, "%s\"bundles\":{", SEP());
            json_pick(t, allow ? "allow" : "block", v_bundle, NBUNDLES, 1 + rnd(10), true);
            buf_puts(t, "}");
        }
        if (chance(0.5)) {
            bool inc = chance(0.8), exc = !inc || chance(0.3);
            buf_printf(t, "%s\"segments\":{", SEP());
            if (inc)
                json_pick(t, "include", v_segment, NSEGMENTS, 1 + rnd(5), true);
            if (exc)
                buf_printf(t, "%s\"exclude\":[\"adv-%u-buyers\",\"%s\"]", inc ? "," : "", i / 10,
                           segment_pool[rnd(NSEGMENTS)]);
            buf_puts(t, "}");
        }
        if (chance(0.2)) {
            uint32_t nwin = 1 + rnd(3);
            buf_printf(t, "%s\"dayparting\":[", SEP());
            for (uint32_t w = 0; w < nwin; w++) {
                uint32_t sh = rnd(20), eh = sh + 1 + rnd(24 - sh), d0 = rnd(7), nd = 1 + rnd(7);
                buf_printf(t, "%s{\"days\":[", w ? "," : "");
                for (uint32_t d = 0; d < nd; d++)
                    buf_printf(t, "%s\"%s\"", d ? "," : "", day_names[(d0 + d) % 7]);
                buf_printf(t, "],\"start_hour\":%u,\"end_hour\":%u}", sh, eh);
            }
            buf_puts(t, "]");
        }
        if (chance(0.3)) {
            buf_printf(t, "%s\"formats\":[", SEP());
            buf_printf(t, "%s%s%s", banner ? "\"banner\"" : "", banner && native ? "," : "",
                       native ? "\"native\"" : "");
            buf_printf(t, "%s%s]", (banner || native) && video ? "," : "", video ? "\"video\"" : "");
        }
        if ((banner || video) && chance(0.2)) {
            buf_printf(t, "%s\"sizes\":", SEP());
            if (banner && video)
                buf_puts(t, "[{\"w\":300,\"h\":250},{\"w\":640,\"h\":360},{\"w\":1280,\"h\":720}]");
            else if (video)
                json_sizes(t, video_sizes, 4, 1 + rnd(2));
            else
                json_sizes(t, banner_sizes, 8, 1 + rnd(3));
        }
        if (chance(0.1)) {
            buf_printf(t, "%s", SEP());
            json_pick(t, "deals", v_deal, NDEALS, 1 + rnd(3), true);
            if (chance(0.5))
                buf_puts(t, ",\"deals_only\":true");
        }
#undef SEP
    }
    buf_printf(b,
               "},\"bid\":{\"strategy\":\"max_cpm\",\"amount_micros\":%u},\"pacing\":\"even\","
               "\"budget\":{\"total_micros\":1000000000},\"frequency_caps\":{\"per_day\":%u},"
               "\"adomain\":[\"brand%u.example\"],\"creatives\":{",
               500000 + rnd(5000000), 1 + rnd(10), i / 10);
    {
        first = true;
        if (banner) {
            buf_puts(b, "\"banner\":{\"sizes\":");
            json_sizes(b, banner_sizes, 8, 1 + rnd(3));
            buf_puts(b, ",\"html_template\":\"<div>ad</div>\",\"click_url\":\"https://brand.example/\"}");
            first = false;
        }
        if (native) {
            buf_printf(b,
                       "%s\"native\":{\"title\":\"T\",\"sponsored_by\":\"B\",\"image\":{\"url\":"
                       "\"https://cdn.example/i.jpg\",\"w\":1200,\"h\":627},\"click_url\":\"https://brand.example/\"}",
                       first ? "" : ",");
            first = false;
        }
        if (video)
            buf_printf(b, "%s\"video\":{\"vast_url\":\"https://brand.example/vast.xml\",\"duration_s\":15}",
                       first ? "" : ",");
    }
    buf_puts(b, "}}");
}

/* ---- queries ---- */

struct bq {
    struct cidx_query q;
};

static struct cidx_str *list_pool;
static size_t list_used, list_cap;
static struct cidx_size *size_pool;
static size_t size_used, size_cap;
static char *text_pool;
static size_t text_used, text_cap;

static struct cidx_str pool_str(const char *s)
{
    size_t n = strlen(s);
    char *p;

    if (text_used + n > text_cap) {
        fprintf(stderr, "text pool exhausted\n");
        exit(2);
    }
    p = text_pool + text_used;
    memcpy(p, s, n);
    text_used += n;
    return (struct cidx_str){p, n};
}

static struct cidx_str *pool_list(uint32_t n)
{
    struct cidx_str *v = list_pool + list_used;

    if (list_used + n > list_cap) {
        fprintf(stderr, "list pool exhausted\n");
        exit(2);
    }
    list_used += n;
    return v;
}

static void gen_query(struct cidx_query *q, int64_t t0, int64_t span)
{
    static const double device_w[] = {0.55, 0.12, 0.25, 0.06, 0.02};
    double u = (double)(rng() >> 11) * 0x1.0p-53, acc = 0;
    uint32_t dev = 0, ci = chance(0.6) ? 0 : skewed(NCOUNTRIES), nseg, ncat;
    char tmp[96];

    memset(q, 0, sizeof(*q));
    for (dev = 0; dev < 4; dev++) {
        acc += device_w[dev];
        if (u < acc)
            break;
    }
    q->device = pool_str(devices[dev]);
    q->country = pool_str(countries[ci]);
    if (ci == 0 && chance(0.6))
        q->region = pool_str(us_states[skewed(20)]);
    if (dev <= 1)
        q->os = pool_str(os_versions[chance(0.5) ? 0 : 1]);
    else if (dev == 2)
        q->os = pool_str(os_versions[chance(0.7) ? 2 : chance(0.8) ? 3 : 6]);
    else if (dev == 3)
        q->os = pool_str(os_versions[chance(0.5) ? 4 : 5]);
    if (chance(0.9))
        q->language = pool_str(req_languages[ci == 0 ? 0 : skewed(12)]);
    if (dev >= 2 || chance(0.5)) {
        static const char *const sub[] = {"", "www.", "m.", "news."};
        snprintf(tmp, sizeof(tmp), "%s%s", sub[rnd(4)], domain_pool[skewed(NDOMAINS)]);
        q->domain = pool_str(tmp);
    } else {
        q->bundle = pool_str(bundle_pool[skewed(NBUNDLES)]);
    }
    ncat = rnd(5);
    if (ncat > 0) {
        struct cidx_str *v = pool_list(ncat);
        for (uint32_t i = 0; i < ncat; i++)
            v[i] = pool_str(cat_pool[skewed(NCATS)]);
        q->categories = v;
        q->ncategories = ncat;
        q->cattax = chance(0.85) ? CIDX_TAX_CONTENT_2_2 : CIDX_TAX_CONTENT_1_0;
    }
    nseg = chance(0.3) ? 0 : rnd(21);
    if (nseg > 0) {
        struct cidx_str *v = pool_list(nseg);
        for (uint32_t i = 0; i < nseg; i++) {
            if (chance(0.05)) {
                snprintf(tmp, sizeof(tmp), "adv-%u-buyers", rnd(1000));
                v[i] = pool_str(tmp);
            } else {
                v[i] = pool_str(segment_pool[skewed(NSEGMENTS)]);
            }
        }
        q->segments = v;
        q->nsegments = nseg;
    }
    if (chance(0.7) || dev == 3) {
        uint32_t n = 1 + rnd(3), start = skewed(8);
        struct cidx_size *v = size_pool + size_used;
        if (size_used + n > size_cap) {
            fprintf(stderr, "size pool exhausted\n");
            exit(2);
        }
        size_used += n;
        for (uint32_t i = 0; i < n; i++)
            v[i] = banner_sizes[(start + i) % 8];
        q->formats |= dev == 3 ? 0 : CIDX_FMT_BANNER;
        q->banner_sizes = v;
        q->nbanner_sizes = n;
    }
    if (chance(0.3))
        q->formats |= CIDX_FMT_NATIVE;
    if (chance(0.2) || dev == 3) {
        q->formats |= CIDX_FMT_VIDEO;
        if (chance(0.8))
            q->video_size = video_sizes[rnd(4)];
    }
    if (q->formats == 0)
        q->formats = CIDX_FMT_NATIVE;
    if (chance(0.1)) {
        uint32_t n = 1 + rnd(2);
        struct cidx_str *v = pool_list(n);
        for (uint32_t i = 0; i < n; i++)
            v[i] = pool_str(deal_pool[skewed(NDEALS)]);
        q->deals = v;
        q->ndeals = n;
        q->private_auction = chance(0.3);
    }
    q->now = t0 + (int64_t)(rng() % (uint64_t)span);
}

/* ---- the baseline: every rule, campaign by campaign ---- */

struct norm {
    char country[8], region[16], device[16], os[64], language[32], domain[256];
    size_t os_len, language_len, domain_len;
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static void copy_fold(char *dst, size_t cap, struct cidx_str s, char (*f)(char), size_t *ret_len)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;

    for (size_t i = 0; i < n; i++)
        dst[i] = f(s.ptr[i]);
    dst[n] = '\0';
    if (ret_len != NULL)
        *ret_len = n;
}

/* The queries stay within the lengths cidx looks up, so plain copies do. */
static void normalise(const struct cidx_query *q, struct norm *n)
{
    memset(n, 0, sizeof(*n));
    copy_fold(n->country, sizeof(n->country), q->country, upper, NULL);
    if (q->region.len > 0)
        snprintf(n->region, sizeof(n->region), "%s-%.*s", n->country, (int)q->region.len, q->region.ptr);
    copy_fold(n->device, sizeof(n->device), q->device, lower, NULL);
    copy_fold(n->os, sizeof(n->os), q->os, lower, &n->os_len);
    copy_fold(n->language, sizeof(n->language), q->language, lower, &n->language_len);
    copy_fold(n->domain, sizeof(n->domain), q->domain, lower, &n->domain_len);
}

static bool eq(const struct cidx_str *a, const char *b, size_t len)
{
    return a->len == len && memcmp(a->ptr, b, len) == 0;
}

static bool in(const struct cidx_list *l, const char *s, size_t len)
{
    for (uint32_t i = 0; i < l->n; i++) {
        if (eq(&l->v[i], s, len))
            return true;
    }
    return false;
}

static bool any_in(const struct cidx_list *l, const struct cidx_str *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (in(l, v[i].ptr, v[i].len))
            return true;
    }
    return false;
}

/* The domain or one of its parents is listed. */
static bool domain_listed(const struct cidx_list *l, const char *d, size_t n)
{
    for (uint32_t i = 0; i < l->n; i++) {
        size_t k = l->v[i].len;
        if (k <= n && memcmp(d + n - k, l->v[i].ptr, k) == 0 && (k == n || d[n - k - 1] == '.'))
            return true;
    }
    return false;
}

static bool size_in(const struct cidx_camp *c, struct cidx_size s)
{
    for (uint32_t i = 0; i < c->nsizes; i++) {
        if (c->sizes[i].w == s.w && c->sizes[i].h == s.h)
            return true;
    }
    return false;
}

/* Cheap tests first, each returning as soon as the campaign is out. */
static bool baseline_match(const struct cidx_camp *c, const struct cidx_query *q, const struct norm *n)
{
    static const char *const dev_names[] = {"phone", "tablet", "desktop", "ctv", "other"};
    bool ok;

    if (q->now < c->flight_start || q->now >= c->flight_end)
        return false;
    ok = false;
    if ((q->formats & CIDX_FMT_BANNER) != 0 && (c->formats & CIDX_FMT_BANNER) != 0) {
        for (uint32_t i = 0; i < q->nbanner_sizes && !ok; i++)
            ok = size_in(c, q->banner_sizes[i]);
    }
    if ((q->formats & CIDX_FMT_NATIVE) != 0 && (c->formats & CIDX_FMT_NATIVE) != 0)
        ok = true;
    if ((q->formats & CIDX_FMT_VIDEO) != 0 && (c->formats & CIDX_FMT_VIDEO) != 0 &&
        (!c->sizes_listed || (q->video_size.w != 0 && size_in(c, q->video_size))))
        ok = true;
    if (!ok)
        return false;
    if (c->devices != 0) {
        ok = false;
        for (int k = 0; k < 5; k++)
            ok = ok || ((c->devices & (1u << k)) != 0 && strcmp(n->device, dev_names[k]) == 0);
        if (!ok)
            return false;
    }
    if (c->countries.n > 0 && !in(&c->countries, n->country, strlen(n->country)))
        return false;
    if (c->regions.n > 0 && !in(&c->regions, n->region, strlen(n->region)))
        return false;
    if (c->os.n > 0) {
        ok = false;
        for (uint32_t i = 0; i < c->os.n && !ok; i++) {
            size_t k = c->os.v[i].len;
            ok = k <= n->os_len && memcmp(n->os, c->os.v[i].ptr, k) == 0 && (k == n->os_len || !alnum(n->os[k]));
        }
        if (!ok)
            return false;
    }
    if (c->languages.n > 0) {
        ok = false;
        for (uint32_t i = 0; i < c->languages.n && !ok; i++) {
            size_t k = c->languages.v[i].len;
            ok = k <= n->language_len && memcmp(n->language, c->languages.v[i].ptr, k) == 0 &&
                 (k == n->language_len || n->language[k] == '-');
        }
        if (!ok)
            return false;
    }
    if ((q->private_auction || c->deals_only) && !any_in(&c->deals, q->deals, q->ndeals))
        return false;
    if (c->cat_include.n > 0 &&
        (q->cattax != c->cat_taxonomy || !any_in(&c->cat_include, q->categories, q->ncategories)))
        return false;
    if (c->cat_exclude.n > 0 && q->cattax == c->cat_taxonomy && any_in(&c->cat_exclude, q->categories, q->ncategories))
        return false;
    if (c->seg_include.n > 0 && !any_in(&c->seg_include, q->segments, q->nsegments))
        return false;
    if (c->seg_exclude.n > 0 && any_in(&c->seg_exclude, q->segments, q->nsegments))
        return false;
    if (c->bundle_allow.n > 0 && !in(&c->bundle_allow, q->bundle.ptr, q->bundle.len))
        return false;
    if (c->bundle_block.n > 0 && q->bundle.len > 0 && in(&c->bundle_block, q->bundle.ptr, q->bundle.len))
        return false;
    if (c->domain_allow.n > 0 && (n->domain_len == 0 || !domain_listed(&c->domain_allow, n->domain, n->domain_len)))
        return false;
    if (c->domain_block.n > 0 && n->domain_len > 0 && domain_listed(&c->domain_block, n->domain, n->domain_len))
        return false;
    if (c->has_daypart) {
        int64_t local = q->now + tz_offset_at(c->zone, q->now);
        int64_t days = local / 86400;
        unsigned how = (unsigned)(((days + 3) % 7) * 24 + (local % 86400) / 3600);
        if ((c->daypart[how / 64] >> (how % 64) & 1) == 0)
            return false;
    }
    return true;
}

static uint32_t baseline(const struct cidx *ix, const struct cidx_query *q, uint64_t *out)
{
    struct norm n;
    uint32_t count = 0, total = cidx_count(ix);

    normalise(q, &n);
    memset(out, 0, cidx_words(ix) * sizeof(*out));
    for (uint32_t i = 0; i < total; i++) {
        if (baseline_match(cidx_camp(ix, i), q, &n)) {
            out[i / 64] |= 1ull << (i % 64);
            count++;
        }
    }
    return count;
}

/* ---- measuring ---- */

/* This thread's CPU time: on a shared machine the time other processes hold
 * the core is left out (their effect on the caches is not). */
static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void)
{
    fprintf(stderr, "usage: adsmith-bench-index [-n campaigns] [-q queries] [-r rounds] [-b scan rounds] [-s seed]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long ncamp = 10000, nq = 100000, rounds = 7, base_rounds = 1;
    unsigned long long seed = 1;
    const int64_t now = 1767225600; /* 2026-01-01 00:00Z */
    char *docbuf = malloc(DOC_CAP);
    struct cidx_builder *b;
    struct cidx *ix;
    struct cidx_query *qs;
    struct cidx_stats st;
    uint64_t *out, *ref;
    double t, build_s, times[64], base_times[64], idx_ns, base_ns, base_t = 0;
    uint64_t total = 0, sink = 0, mismatches = 0;
    size_t nw;
    int opt, rc, bad_docs = 0;

    while ((opt = getopt(argc, argv, "n:q:r:b:s:")) != -1) {
        char *end;
        switch (opt) {
        case 'n': ncamp = strtol(optarg, &end, 10); break;
        case 'q': nq = strtol(optarg, &end, 10); break;
        case 'r': rounds = strtol(optarg, &end, 10); break;
        case 'b': base_rounds = strtol(optarg, &end, 10); break;
        case 's': seed = strtoull(optarg, &end, 10); break;
        default: usage();
        }
        if (*end != '\0')
            usage();
    }
    if (ncamp < 1 || ncamp > CIDX_MAX_CAMPAIGNS || nq < 1 || nq > 10000000 || rounds < 1 || rounds > 64 ||
        base_rounds < 1 || base_rounds > 64)
        usage();
    if (docbuf == NULL)
        return 2;
    rng_state = seed;
    make_pools();

    /* Campaigns, through the same parsing as uploads. */
    t = now_s();
    if (cidx_builder_new(&b) != 0)
        return 2;
    for (long i = 0; i < ncamp; i++) {
        struct buf db;
        msgpack_zone zone;
        msgpack_object doc;
        struct ads_diag diag;
        struct cidx_camp *c;

        buf_init(&db, docbuf, DOC_CAP);
        gen_campaign(&db, (uint32_t)i, now);
        if (db.overflow || !msgpack_zone_init(&zone, 8192)) {
            fprintf(stderr, "campaign %ld: document too large\n", i);
            return 2;
        }
        rc = doc_parse(DOC_JSON, db.base, db.len, &zone, &doc, &diag);
        if (rc == 0)
            rc = cidx_camp_from_doc(&doc, &c, &diag);
        msgpack_zone_destroy(&zone);
        if (rc != 0) {
            if (bad_docs++ < 3)
                fprintf(stderr, "campaign %ld refused: %s at %s\n", i, diag.message, diag.pointer);
            continue;
        }
        if (cidx_builder_add(b, c) != 0)
            return 2;
    }
    if (bad_docs > 0) {
        fprintf(stderr, "%d generated campaigns were refused\n", bad_docs);
        return 1;
    }
    printf("campaigns: %ld generated and parsed in %.1f ms\n", ncamp, (now_s() - t) * 1e3);

    t = now_s();
    if ((rc = cidx_build(b, now, &ix)) != 0) {
        fprintf(stderr, "cidx_build: %s\n", ads_err_name(rc));
        return 1;
    }
    build_s = now_s() - t;
    cidx_builder_free(b);
    cidx_stats(ix, &st);
    printf("build: %.1f ms; %u campaigns, %u zones, %u values (%u bitsets, %u lists), %u slot sets, %.1f MiB; "
           "valid for %.1f h\n",
           build_s * 1e3, st.campaigns, st.zones, st.keys, st.dense, st.sparse, st.slot_sets,
           (double)st.bytes / (1 << 20), (double)(cidx_valid_until(ix) - now) / 3600);

    /* Queries, inside the index's validity (the bid path's normal case). */
    list_cap = (size_t)nq * 28;
    size_cap = (size_t)nq * 3;
    text_cap = (size_t)nq * 400;
    list_pool = malloc(sizeof(*list_pool) * list_cap);
    size_pool = malloc(sizeof(*size_pool) * size_cap);
    text_pool = malloc(text_cap);
    qs = malloc(sizeof(*qs) * (size_t)nq);
    nw = cidx_words(ix);
    out = calloc(nw + 1, sizeof(*out));
    ref = calloc(nw + 1, sizeof(*ref));
    if (list_pool == NULL || size_pool == NULL || text_pool == NULL || qs == NULL || out == NULL || ref == NULL)
        return 2;
    for (long i = 0; i < nq; i++)
        gen_query(&qs[i], now, cidx_valid_until(ix) - now);

    /* Agreement, query by query; the scan's first round is timed here. */
    for (long i = 0; i < nq; i++) {
        uint32_t a = cidx_eligible(ix, &qs[i], out), c;
        t = now_s();
        c = baseline(ix, &qs[i], ref);
        base_t += now_s() - t;
        total += a;
        if (a != c || memcmp(out, ref, nw * sizeof(*out)) != 0) {
            if (mismatches++ < 5) {
                for (size_t w = 0; w < nw; w++) {
                    uint64_t diff = out[w] ^ ref[w];
                    if (diff != 0) {
                        uint32_t ci = (uint32_t)(w * 64 + (unsigned)__builtin_ctzll(diff));
                        fprintf(stderr, "query %ld: campaign %u (%s): index %d, scan %d\n", i, ci,
                                cidx_camp(ix, ci)->id, (int)(out[w] >> (ci % 64) & 1), (int)(ref[w] >> (ci % 64) & 1));
                        break;
                    }
                }
            }
        }
    }

    for (int r = 0; r < rounds; r++) {
        t = now_s();
        for (long i = 0; i < nq; i++)
            sink += cidx_eligible(ix, &qs[i], out);
        times[r] = (now_s() - t) / (double)nq * 1e9;
    }
    base_times[0] = base_t / (double)nq * 1e9;
    for (long r = 1; r < base_rounds; r++) {
        t = now_s();
        for (long i = 0; i < nq; i++)
            sink += baseline(ix, &qs[i], ref);
        base_times[r] = (now_s() - t) / (double)nq * 1e9;
    }
    idx_ns = median(times, (int)rounds); /* sorts times */
    base_ns = median(base_times, (int)base_rounds);
    printf("queries: %ld, average eligible set %.1f campaigns (checksum %llu)\n", nq, (double)total / (double)nq,
           (unsigned long long)(sink % 1000));
    printf("index:    %8.0f ns per lookup (median of %ld rounds; min %.0f, max %.0f)\n", idx_ns, rounds, times[0],
           times[rounds - 1]);
    printf("baseline: %8.0f ns per lookup (linear scan, median of %ld rounds)\n", base_ns, base_rounds);
    printf("ratio:    %8.1fx\n", base_ns / idx_ns);
    printf("agreement: %s (%llu of %ld queries differ)\n", mismatches == 0 ? "every query" : "FAILED",
           (unsigned long long)mismatches, nq);

    cidx_free(ix);
    free(list_pool);
    free(size_pool);
    free(text_pool);
    free(qs);
    free(out);
    free(ref);
    free(docbuf);
    return mismatches == 0 ? 0 : 1;
}
