/*
 * adsmith-gen-profiles: writes COUNT synthetic user profiles to stdout, as
 * JSON Lines or a MessagePack stream, for `adsmith import users` benchmarks.
 *
 * Each profile looks like one an ad platform keeps: an id, one or two
 * aliases, demographic attributes with two custom pairs, 5 segments, 10
 * interests and 3 campaign frequency counters. Ids and alias ids are a
 * bijective hash of the profile's index, so they never repeat (no alias
 * conflicts) and arrive in random key order, as a real export would.
 * The same COUNT and --seed always give the same bytes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/doc.h"
#include "adsmith/profile.h"

#define GEN_OUT_MAX (256 * 1024)

static const char *const gen_countries[] = {"US", "DE", "FR", "GB", "BR", "IN", "JP", "CA", "ES", "IT"};
static const char *const gen_regions[] = {"CA", "NY", "TX", "BY", "IDF", "ENG", "SP", "MH", "13", "ON"};
static const char *const gen_cities[] = {"San Francisco", "New York",  "Austin", "Munich", "Paris",
                                         "London",        "São Paulo", "Mumbai", "Tokyo",  "Toronto"};
static const char *const gen_languages[] = {"en", "de", "fr", "en-GB", "pt-BR", "hi", "ja", "es"};
static const char *const gen_devices[] = {"phone", "tablet", "desktop", "ctv", "other"};
static const char *const gen_oses[] = {"ios", "android", "windows", "macos", "linux", "tvos"};
static const char *const gen_tiers[] = {"free", "basic", "premium"};

/* splitmix64's finalizer: a bijection on 64-bit values. */
static uint64_t gen_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct gen_rng {
    uint64_t s;
};

static uint64_t gen_next(struct gen_rng *r)
{
    r->s += 0x9e3779b97f4a7c15ull;
    return gen_mix(r->s);
}

static uint32_t gen_below(struct gen_rng *r, uint32_t n)
{
    return (uint32_t)(gen_next(r) % n);
}

#define GEN_PICK(r, list) (list)[gen_below((r), sizeof(list) / sizeof((list)[0]))]

/* Fills @p n distinct numbers below @p range into @p out. */
static void gen_distinct(struct gen_rng *r, uint32_t range, uint32_t n, uint32_t *out)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v, j;
        do {
            v = gen_below(r, range);
            for (j = 0; j < i && out[j] != v; j++)
                ;
        } while (j < i);
        out[i] = v;
    }
}

static void gen_profile(uint64_t index, uint64_t seed, uint64_t now, struct profile *p)
{
    struct gen_rng r = {gen_mix(index ^ gen_mix(seed))};
    uint32_t picks[16];

    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "u-%016" PRIx64, gen_mix(index ^ seed));
    p->naliases = 1 + gen_below(&r, 2);
    snprintf(p->aliases[0].source, sizeof(p->aliases[0].source), "buyeruid");
    snprintf(p->aliases[0].id, sizeof(p->aliases[0].id), "b%016" PRIx64 "%08" PRIx32, gen_mix(index + seed),
             (uint32_t)gen_next(&r));
    if (p->naliases == 2) {
        snprintf(p->aliases[1].source, sizeof(p->aliases[1].source), "id5-sync.com");
        snprintf(p->aliases[1].id, sizeof(p->aliases[1].id), "ID5*%016" PRIx64, gen_mix(~index ^ seed));
    }
    snprintf(p->attr[PROF_COUNTRY], sizeof(p->attr[0]), "%s", GEN_PICK(&r, gen_countries));
    snprintf(p->attr[PROF_REGION], sizeof(p->attr[0]), "%s", GEN_PICK(&r, gen_regions));
    snprintf(p->attr[PROF_CITY], sizeof(p->attr[0]), "%s", GEN_PICK(&r, gen_cities));
    snprintf(p->attr[PROF_LANGUAGE], sizeof(p->attr[0]), "%s", GEN_PICK(&r, gen_languages));
    snprintf(p->attr[PROF_DEVICE], sizeof(p->attr[0]), "%s", GEN_PICK(&r, gen_devices));
    snprintf(p->attr[PROF_OS], sizeof(p->attr[0]), "%s", GEN_PICK(&r, gen_oses));
    p->age_band = (uint8_t)(1 + gen_below(&r, PROF_AGE_COUNT - 1));
    p->ncustom = 2;
    snprintf(p->custom[0].key, sizeof(p->custom[0].key), "tier");
    snprintf(p->custom[0].val, sizeof(p->custom[0].val), "%s", GEN_PICK(&r, gen_tiers));
    snprintf(p->custom[1].key, sizeof(p->custom[1].key), "ltv_bucket");
    snprintf(p->custom[1].val, sizeof(p->custom[1].val), "%u", gen_below(&r, 10));

    p->nsegments = 5;
    gen_distinct(&r, 2000, 5, picks);
    for (uint32_t i = 0; i < 5; i++) {
        snprintf(p->segments[i].id, sizeof(p->segments[i].id), "seg-%u", picks[i]);
        p->segments[i].weight = (double)(1 + gen_below(&r, 100)) / 100.0;
        p->segments[i].at = now - gen_below(&r, 30 * 86400);
    }
    p->ninterests = 10;
    gen_distinct(&r, 400, 10, picks);
    for (uint32_t i = 0; i < 10; i++) {
        snprintf(p->interests[i].id, sizeof(p->interests[i].id), "IAB%u-%u", 1 + picks[i] / 20, picks[i] % 20);
        p->interests[i].weight = (double)gen_below(&r, 10000) / 100.0;
        p->interests[i].at = now - gen_below(&r, 14 * 86400);
    }
    p->nfreq = 3;
    gen_distinct(&r, 200, 3, picks);
    for (uint32_t i = 0; i < 3; i++) {
        struct prof_freq *q = &p->freq[i];
        snprintf(q->campaign, sizeof(q->campaign), "cmp-%u", picks[i]);
        q->hour_start = now - now % 3600;
        q->hour = gen_below(&r, 4);
        q->day_start = now - now % 86400;
        q->day = q->hour + gen_below(&r, 10);
        q->lifetime = q->day + gen_below(&r, 100);
        q->clicks = gen_below(&r, 3);
        q->conversions = q->clicks > 0 ? gen_below(&r, 2) : 0;
        q->last_at = now - gen_below(&r, 3600);
    }
    p->recency[PROF_LAST_SEEN] = now - gen_below(&r, 3600);
    p->recency[PROF_LAST_IMPRESSION] = now - gen_below(&r, 86400);
    p->recency[PROF_LAST_CLICK] = gen_below(&r, 2) ? now - gen_below(&r, 7 * 86400) : 0;
    p->consent_known = PROF_CONSENT_GDPR_APPLIES | PROF_CONSENT_PERSONALIZATION;
    p->consent = gen_below(&r, 4) ? PROF_CONSENT_PERSONALIZATION : 0;
}

static int gen_usage(void)
{
    fprintf(stderr, "usage: adsmith-gen-profiles [--format jsonl|msgpack] [--seed N] COUNT > FILE\n");
    return 2;
}

static int gen_parse_u64(const char *s, uint64_t *ret)
{
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    *ret = strtoull(s, &end, 10);
    return *end == '\0' ? 0 : -1;
}

int main(int argc, char **argv)
{
    static char obuf[1 << 20];
    enum doc_fmt fmt = DOC_JSON;
    uint64_t count = 0, seed = 1, now = 1767225600; /* 2026-01-01: fixed, so output is reproducible */
    bool have_count = false;
    struct profile *p;
    char *mem;
    int status = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "jsonl") == 0)
                fmt = DOC_JSON;
            else if (strcmp(argv[i], "msgpack") == 0)
                fmt = DOC_MSGPACK;
            else
                return gen_usage();
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            if (gen_parse_u64(argv[++i], &seed) != 0)
                return gen_usage();
        } else if (!have_count && gen_parse_u64(argv[i], &count) == 0) {
            have_count = true;
        } else {
            return gen_usage();
        }
    }
    if (!have_count)
        return gen_usage();
    if ((p = malloc(sizeof(*p))) == NULL || (mem = malloc(GEN_OUT_MAX)) == NULL) {
        fprintf(stderr, "adsmith-gen-profiles: out of memory\n");
        free(p);
        return 1;
    }
    setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
    for (uint64_t i = 0; i < count; i++) {
        struct docw w;
        struct buf b;

        gen_profile(i, seed, now, p);
        buf_init(&b, mem, GEN_OUT_MAX);
        docw_init(&w, fmt, &b);
        prof_render(p, &w);
        if (fmt == DOC_JSON)
            buf_put(&b, "\n", 1);
        if (b.overflow || fwrite(b.base, 1, b.len, stdout) != b.len) {
            fprintf(stderr, "adsmith-gen-profiles: cannot write profile %" PRIu64 "\n", i);
            status = 1;
            break;
        }
    }
    if (fflush(stdout) != 0)
        status = 1;
    free(mem);
    free(p);
    return status;
}
