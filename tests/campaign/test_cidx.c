#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/cidx.h"
#include "adsmith/doc.h"
#include "adsmith/hold.h"

/* Campaigns are the shipped examples (schemas/examples), parsed by
 * doc_parse, with members replaced per test. */

#define T0 1767225600 /* 2026-01-01 00:00:00Z, a Thursday */

static char *read_example(const char *name)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[512];
    FILE *f;
    char *text;
    long len;

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is set by meson");
    snprintf(path, sizeof(path), "%s/schemas/examples/%s", root, name);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    text[len] = '\0';
    fclose(f);
    return text;
}

/* Parses a campaign document (JSON text) as the service does and makes its record. */
static int record_of(const char *json, struct cidx_camp **ret, struct ads_diag *diag)
{
    msgpack_zone zone;
    msgpack_object doc;
    int rc;

    cr_assert(msgpack_zone_init(&zone, 4096));
    rc = doc_parse(DOC_JSON, json, strlen(json), &zone, &doc, diag);
    cr_assert_eq(rc, 0, "doc_parse: %s", diag->message);
    rc = cidx_camp_from_doc(&doc, ret, diag);
    msgpack_zone_destroy(&zone);
    return rc;
}

/*
 * A record from example @p example with top-level members replaced: @p kv
 * holds pairs of member name and JSON text (NULL text: member removed),
 * ending with NULL. "targeting.X" replaces one member of targeting.
 */
static struct cidx_camp *make(const char *example, const char *const *kv)
{
    char *text = read_example(example);
    cJSON *doc = cJSON_Parse(text);
    struct ads_diag diag = {{0}, {0}};
    struct cidx_camp *c = NULL;
    char *out;

    cr_assert_not_null(doc);
    free(text);
    for (size_t i = 0; kv[i] != NULL; i += 2) {
        cJSON *parent = doc;
        const char *key = kv[i];
        if (strncmp(key, "targeting.", 10) == 0) {
            parent = cJSON_GetObjectItemCaseSensitive(doc, "targeting");
            if (parent == NULL) {
                parent = cJSON_CreateObject();
                cJSON_AddItemToObject(doc, "targeting", parent);
            }
            key += 10;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
        if (kv[i + 1] != NULL) {
            cJSON *v = cJSON_Parse(kv[i + 1]);
            cr_assert_not_null(v, "bad test JSON: %s", kv[i + 1]);
            cJSON_AddItemToObject(parent, key, v);
        }
    }
    out = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    cr_assert_eq(record_of(out, &c, &diag), 0, "cidx_camp_from_doc: %s at %s", diag.message, diag.pointer);
    free(out);
    return c;
}

/*
 * The game example (native and banner creatives, banner 300x250 and
 * 320x50) with id @p id, flight from 0 without end in UTC, no targeting but
 * what @p targeting (JSON or NULL) says.
 */
static struct cidx_camp *camp(const char *id, const char *targeting)
{
    char idj[96];
    const char *kv[] = {"id", idj, "flight", "{\"start\":0,\"time_zone\":\"UTC\"}", "targeting", targeting, NULL};

    snprintf(idj, sizeof(idj), "\"%s\"", id);
    return make("campaign-game-ip.json", kv);
}

static struct cidx *build_at(struct cidx_camp **cs, size_t n, int64_t now)
{
    struct cidx_builder *b;
    struct cidx *ix;

    cr_assert_eq(cidx_builder_new(&b), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(cidx_builder_add(b, cs[i]), 0);
    cr_assert_eq(cidx_build(b, now, &ix), 0);
    cidx_builder_free(b);
    return ix;
}

static struct cidx *build(struct cidx_camp **cs, size_t n)
{
    return build_at(cs, n, T0);
}

/* A query that every unrestricted game campaign matches: a native impression at T0. */
static struct cidx_query query(void)
{
    struct cidx_query q;

    memset(&q, 0, sizeof(q));
    q.formats = CIDX_FMT_NATIVE;
    q.now = T0;
    return q;
}

static struct cidx_str S(const char *s) {
    return (struct cidx_str){s, strlen(s)};
}

/* Eligible campaigns of a small index as a mask (bit i = campaign i). */
static uint64_t
eligible(const struct cidx *ix, const struct cidx_query *q)
{
    uint64_t out[CIDX_WORDS_MAX];
    uint32_t n;

    cr_assert_leq(cidx_count(ix), 64);
    memset(out, 0xa5, sizeof(out));
    n = cidx_eligible(ix, q, out);
    cr_assert_eq((uint32_t)__builtin_popcountll(out[0]), n, "the count matches the bits");
    return out[0];
}

#define B(i) (1ull << (i))

/* ---- records ---- */

Test(cidx_camp, examples_become_records)
{
    const char *none[] = {NULL};
    struct cidx_camp *r = make("campaign-retail.json", none), *g = make("campaign-game-ip.json", none);

    cr_expect_str_eq(r->id, "stridewell-winter-sale-25");
    cr_expect_str_eq(r->advertiser, "stridewell");
    cr_expect_str_eq(r->currency, "EUR");
    cr_expect_str_eq(r->time_zone, "Europe/Berlin");
    cr_expect_eq(r->status, CIDX_ACTIVE);
    cr_expect_eq(r->flight_start, 1765494000);
    cr_expect_eq(r->flight_end, 1766703600);
    cr_expect_eq(r->countries.n, 2);
    cr_expect_str_eq(r->countries.v[1].ptr, "AT");
    cr_expect_eq(r->regions.n, 4);
    cr_expect_eq(r->devices, CIDX_DEV_PHONE | CIDX_DEV_DESKTOP | CIDX_DEV_CTV);
    cr_expect_eq(r->cat_taxonomy, CIDX_TAX_CONTENT_3_0);
    cr_expect_eq(r->cat_include.n, 2);
    cr_expect_eq(r->cat_exclude.n, 0);
    cr_expect_eq(r->domain_allow.n, 3);
    cr_expect_eq(r->seg_include.n, 2);
    cr_expect_eq(r->seg_exclude.n, 1);
    cr_expect(r->has_daypart);
    /* Monday (day 0) 6-9 and 17-23: bits 6-8 and 17-22 */
    cr_expect_eq(r->daypart[0] & 0x1ffffff, (uint64_t)0x1c0 | (uint64_t)0x3f << 17);
    cr_expect_eq(r->formats, CIDX_FMT_VIDEO | CIDX_FMT_NATIVE);
    cr_expect(r->sizes_listed);
    cr_expect_eq(r->nsizes, 2);
    cr_expect_eq(r->sizes[1].w, 1920);
    cr_expect_eq(r->deals.n, 2);
    cr_expect_not(r->deals_only);
    cr_expect_eq(r->strategy, CIDX_TARGET_CPC);
    cr_expect_eq(r->bid_micros, 850000);
    cr_expect_eq(r->ceiling_cpm_micros, 12000000);
    cr_expect_eq(r->pacing, CIDX_PACING_ASAP);
    cr_expect_eq(r->daily_budget_micros, 3000000000);
    cr_expect_eq(r->cap_hour, 0);
    cr_expect_eq(r->cap_day, 3);
    cr_expect_eq(r->cap_lifetime, 12);
    cr_expect_eq(r->creative_taxonomy, CIDX_TAX_CONTENT_1_0);
    cr_expect_eq(r->creative_categories.n, 2);
    cr_expect_null(r->zone, "set by the build only");

    cr_expect_eq(g->os.n, 3);
    cr_expect_str_eq(g->os.v[0].ptr, "ios", "os is lower-cased");
    cr_expect_eq(g->os.v[0].len, 3);
    cr_expect_eq(g->formats, CIDX_FMT_NATIVE | CIDX_FMT_BANNER);
    cr_expect_eq(g->cat_exclude.n, 1);
    cr_expect_eq(g->bundle_block.n, 1);
    cr_expect_eq(g->domain_block.n, 2);
    cr_expect_eq(g->cap_hour, 2);
    cr_expect_eq(g->strategy, CIDX_MAX_CPM);
    cr_expect_not(g->has_daypart);
    cidx_camp_free(r);
    cidx_camp_free(g);
}

/* Every string of every list of @p a equals @p b's, and @p b's lie in b's own allocation. */
static void expect_same_lists(const struct cidx_camp *a, const struct cidx_camp *b)
{
    const struct cidx_list *la[] = {&a->adomain, &a->creative_categories, &a->countries, &a->regions, &a->os,
                                    &a->languages, &a->cat_include, &a->cat_exclude, &a->domain_allow,
                                    &a->domain_block, &a->bundle_allow, &a->bundle_block, &a->seg_include,
                                    &a->seg_exclude, &a->deals};
    const struct cidx_list *lb[] = {&b->adomain, &b->creative_categories, &b->countries, &b->regions, &b->os,
                                    &b->languages, &b->cat_include, &b->cat_exclude, &b->domain_allow,
                                    &b->domain_block, &b->bundle_allow, &b->bundle_block, &b->seg_include,
                                    &b->seg_exclude, &b->deals};
    const char *lo = (const char *)b, *hi = lo + b->bytes;

    for (size_t i = 0; i < sizeof(la) / sizeof(la[0]); i++) {
        cr_assert_eq(la[i]->n, lb[i]->n, "list %zu", i);
        for (uint32_t k = 0; k < la[i]->n; k++) {
            cr_expect_eq(la[i]->v[k].len, lb[i]->v[k].len);
            cr_expect_str_eq(la[i]->v[k].ptr, lb[i]->v[k].ptr, "list %zu entry %u", i, k);
            cr_expect(lb[i]->v[k].ptr >= lo && lb[i]->v[k].ptr < hi, "list %zu entry %u points outside the copy", i, k);
            cr_expect((const char *)&lb[i]->v[k] >= lo && (const char *)&lb[i]->v[k] < hi);
        }
    }
}

Test(cidx_camp, clone_owns_its_memory)
{
    const char *none[] = {NULL};
    const char *examples[] = {"campaign-retail.json", "campaign-game-ip.json", "campaign-demo.json"};

    for (size_t i = 0; i < 3; i++) {
        struct cidx_camp *a = make(examples[i], none), *ref = make(examples[i], none), *b = NULL;
        cr_assert_eq(cidx_camp_clone(a, &b), 0);
        /* Scribble over and free the original: the copy must not care. */
        memset(a, 0xa5, a->bytes);
        cidx_camp_free(a);
        cr_expect_str_eq(b->id, ref->id);
        cr_expect_eq(b->bytes, ref->bytes);
        cr_expect_eq(b->flight_end, ref->flight_end);
        cr_expect_eq(b->nsizes, ref->nsizes);
        cr_expect_eq(b->daypart[1], ref->daypart[1]);
        cr_expect_null(b->zone);
        expect_same_lists(ref, b);
        cidx_camp_free(ref);
        cidx_camp_free(b);
    }
}

Test(cidx_camp, formats_and_sizes_from_the_creatives)
{
    const char *kv1[] = {"targeting.formats", NULL, "targeting.sizes", NULL, NULL};
    const char *kv2[] = {"targeting.formats", NULL, NULL};
    struct cidx_camp *g = make("campaign-game-ip.json", kv1), *r = make("campaign-retail.json", kv2);

    cr_expect_eq(g->formats, CIDX_FMT_NATIVE | CIDX_FMT_BANNER, "the creatives present");
    cr_expect_not(g->sizes_listed);
    cr_expect_eq(g->nsizes, 2, "the banner creative's sizes");
    cr_expect_eq(g->sizes[0].w, 300);
    cr_expect_eq(g->sizes[0].h, 250);
    cr_expect_eq(r->formats, CIDX_FMT_NATIVE | CIDX_FMT_VIDEO);
    cidx_camp_free(g);
    cidx_camp_free(r);
}

Test(cidx_camp, malformed_documents_refused)
{
    static const char *const bad[] = {
        "[1,2]",
        "{\"id\":\"x\"}",
    };
    struct ads_diag diag = {{0}, {0}};
    struct cidx_camp *c = NULL;
    char *text = read_example("campaign-game-ip.json"), *big;
    cJSON *doc, *list;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(record_of(bad[i], &c, &diag), ADS_EINVAL, "%s", bad[i]);

    /* More countries than the schema allows. */
    doc = cJSON_Parse(text);
    list = cJSON_CreateArray();
    for (int i = 0; i < 251; i++)
        cJSON_AddItemToArray(list, cJSON_CreateString("US"));
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "targeting"), "countries", list);
    big = cJSON_PrintUnformatted(doc);
    cr_expect_eq(record_of(big, &c, &diag), ADS_EINVAL);
    cr_expect_str_eq(diag.pointer, "/targeting/countries");
    free(big);

    /* A value of the wrong type. */
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "targeting"), "countries",
                                           cJSON_CreateString("US"));
    big = cJSON_PrintUnformatted(doc);
    cr_expect_eq(record_of(big, &c, &diag), ADS_EINVAL);
    free(big);

    /* A daypart window that ends before it starts. */
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "targeting"), "countries");
    cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(doc, "targeting"), "dayparting",
                          cJSON_Parse("[{\"days\":[\"mon\"],\"start_hour\":9,\"end_hour\":9}]"));
    big = cJSON_PrintUnformatted(doc);
    cr_expect_eq(record_of(big, &c, &diag), ADS_EINVAL);
    cr_expect_str_eq(diag.pointer, "/targeting/dayparting");
    free(big);
    cJSON_Delete(doc);
    free(text);
    cr_expect_null(c);
}

/* ---- building ---- */

Test(cidx, only_active_campaigns_and_loadable_zones)
{
    const char *paused[] = {"status", "\"paused\"", NULL};
    const char *draft[] = {"status", "\"draft\"", NULL};
    const char *mars[] = {"flight", "{\"start\":0,\"time_zone\":\"Mars/Olympus_Mons\"}", NULL};
    struct cidx_camp *cs[] = {make("campaign-game-ip.json", paused), camp("a", NULL),
                              make("campaign-retail.json", draft), make("campaign-game-ip.json", mars),
                              camp("b", NULL)};
    struct cidx *ix = build(cs, 5);
    struct cidx_stats st;
    struct cidx_query q = query();

    cidx_stats(ix, &st);
    cr_expect_eq(cidx_count(ix), 2);
    cr_expect_eq(st.dropped_inactive, 2);
    cr_expect_eq(st.dropped_zone, 1);
    cr_expect_eq(st.zones, 1, "UTC; the unknown zone is not kept");
    cr_expect_str_eq(cidx_camp(ix, 0)->id, "a", "records keep the order they were added in");
    cr_expect_str_eq(cidx_camp(ix, 1)->id, "b");
    cr_expect_null(cidx_camp(ix, 2));
    cr_expect_not_null(cidx_camp(ix, 0)->zone);
    cr_expect_eq(cidx_words(ix), 1);
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    cidx_free(ix);
}

Test(cidx, builder_is_reusable_and_empty_index_works)
{
    struct cidx_builder *b;
    struct cidx *ix;
    struct cidx_query q = query();
    uint64_t out[1] = {0};

    cr_assert_eq(cidx_builder_new(&b), 0);
    cr_assert_eq(cidx_build(b, T0, &ix), 0);
    cr_expect_eq(cidx_count(ix), 0);
    cr_expect_eq(cidx_words(ix), 0);
    cr_expect_eq(cidx_eligible(ix, &q, out), 0);
    cidx_free(ix);
    cr_assert_eq(cidx_builder_add(b, camp("a", NULL)), 0);
    cr_assert_eq(cidx_build(b, T0, &ix), 0);
    cr_expect_eq(cidx_count(ix), 1);
    cidx_free(ix);
    cr_assert_eq(cidx_build(b, T0, &ix), 0);
    cr_expect_eq(cidx_count(ix), 0, "the records moved into the first index");
    cidx_free(ix);
    cr_assert_eq(cidx_builder_add(b, camp("left-in-builder", NULL)), 0);
    cidx_builder_free(b); /* frees it */
    cidx_free(NULL);
    cidx_camp_free(NULL);
    cidx_builder_free(NULL);
}

/* ---- one test per dimension ---- */

Test(cidx, countries)
{
    struct cidx_camp *cs[] = {camp("us-ca", "{\"countries\":[\"US\",\"CA\"]}"), camp("any", NULL),
                              camp("deu", "{\"countries\":[\"DEU\"]}")};
    struct cidx *ix = build(cs, 3);
    struct cidx_query q = query();

    cr_expect_eq(eligible(ix, &q), B(1), "no country: only the unrestricted campaign");
    q.country = S("US");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.country = S("ca");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1), "case-insensitive");
    q.country = S("DEU");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2), "alpha-3 against alpha-3");
    q.country = S("de");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2), "alpha-2 matches a campaign's alpha-3 code");
    q.country = S("USA");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1), "alpha-3 (as OpenRTB sends it) matches a campaign's alpha-2 code");
    q.country = S("XK");
    cr_expect_eq(eligible(ix, &q), B(1), "a code the table does not know matches only itself");
    q.country = S("USAA");
    cr_expect_eq(eligible(ix, &q), B(1), "too long: matches nothing");
    cidx_free(ix);
}

Test(cidx, regions)
{
    struct cidx_camp *cs[] = {camp("tx", "{\"regions\":[\"US-TX\",\"DE-BY\"]}"), camp("any", NULL),
                              camp("at9", "{\"regions\":[\"AT-9\"]}")};
    struct cidx *ix = build(cs, 3);
    struct cidx_query q = query();

    q.country = S("US");
    q.region = S("TX");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.country = S("de");
    q.region = S("by");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.country = S("AT");
    q.region = S("9");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    q.country = S("XX");
    q.region = S("US-TX");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1), "a full ISO 3166-2 code is used as is");
    q.country = S("USA");
    q.region = S("TX");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1), "an alpha-3 country is read as its alpha-2 code");
    q.country = S("US");
    q.region = S("CA");
    cr_expect_eq(eligible(ix, &q), B(1));
    q.region = S("");
    cr_expect_eq(eligible(ix, &q), B(1));
    cidx_free(ix);
}

Test(cidx, devices)
{
    struct cidx_camp *cs[] = {camp("mobile", "{\"devices\":[\"phone\",\"tablet\"]}"), camp("any", NULL),
                              camp("ctv", "{\"devices\":[\"ctv\"]}")};
    struct cidx *ix = build(cs, 3);
    struct cidx_query q = query();

    q.device = S("phone");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.device = S("Tablet");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.device = S("ctv");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    q.device = S("desktop");
    cr_expect_eq(eligible(ix, &q), B(1));
    q.device = S("toaster");
    cr_expect_eq(eligible(ix, &q), B(1));
    q.device = (struct cidx_str){NULL, 0};
    cr_expect_eq(eligible(ix, &q), B(1));
    cidx_free(ix);
}

Test(cidx, os_prefix_at_word_boundary)
{
    struct cidx_camp *cs[] = {camp("ios", "{\"os\":[\"iOS\"]}"), camp("any", NULL),
                              camp("android-win", "{\"os\":[\"Android\",\"Windows 10\"]}")};
    struct cidx *ix = build(cs, 3);
    struct cidx_query q = query();

    q.os = S("iOS 17.1");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.os = S("ios");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.os = S("IOS-17");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.os = S("iOSX");
    cr_expect_eq(eligible(ix, &q), B(1), "not at a word boundary");
    q.os = S("iPadOS 17");
    cr_expect_eq(eligible(ix, &q), B(1));
    q.os = S("Android 14");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    q.os = S("Windows 10 Pro");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2), "a campaign value of two words");
    q.os = S("Windows 11");
    cr_expect_eq(eligible(ix, &q), B(1));
    q.os = S("Windows 100");
    cr_expect_eq(eligible(ix, &q), B(1));
    q.os = S("Android with a very long build name that goes on and on and on");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2), "only the prefix matters");
    cidx_free(ix);
}

Test(cidx, languages)
{
    struct cidx_camp *cs[] = {camp("en", "{\"languages\":[\"en\"]}"), camp("any", NULL),
                              camp("pt-br", "{\"languages\":[\"pt-BR\",\"zh-Hant\"]}")};
    struct cidx *ix = build(cs, 3);
    struct cidx_query q = query();

    q.language = S("en");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.language = S("en-US");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.language = S("EN_gb");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.language = S("eng");
    cr_expect_eq(eligible(ix, &q), B(1), "a different language");
    q.language = S("pt-br");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    q.language = S("pt");
    cr_expect_eq(eligible(ix, &q), B(1), "a tag does not match its parent");
    q.language = S("zh-Hant-TW");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    q.language = S("en-a-very-long-tag-beyond-limits");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    cidx_free(ix);
}

Test(cidx, categories_include_exclude_and_taxonomy)
{
    struct cidx_camp *cs[] = {
        camp("inc", "{\"categories\":{\"taxonomy\":\"iab_content_2.2\",\"include\":[\"596\",\"680\"]}}"),
        camp("any", NULL),
        camp("exc", "{\"categories\":{\"taxonomy\":\"iab_content_2.2\",\"exclude\":[\"JLBCU7\"]}}"),
        camp("both",
             "{\"categories\":{\"taxonomy\":\"iab_content_1.0\",\"include\":[\"IAB9\"],\"exclude\":[\"IAB9-30\"]}}"),
    };
    struct cidx *ix = build(cs, 4);
    struct cidx_query q = query();
    struct cidx_str cats[3];

    q.categories = cats;
    q.cattax = CIDX_TAX_CONTENT_2_2;
    cats[0] = S("680");
    q.ncategories = 1;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2));
    cats[1] = S("JLBCU7");
    q.ncategories = 2;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1), "one excluded category blocks");
    cats[0] = S("1");
    q.ncategories = 1;
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    q.ncategories = 0;
    cr_expect_eq(eligible(ix, &q), B(1) | B(2), "no categories: include lists cannot match");

    /* The same ids in another taxonomy match nothing. */
    q.cattax = CIDX_TAX_CONTENT_3_0;
    cats[0] = S("680");
    cats[1] = S("JLBCU7");
    q.ncategories = 2;
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    q.cattax = CIDX_TAX_CONTENT_1_0;
    cats[0] = S("IAB9");
    q.ncategories = 1;
    cr_expect_eq(eligible(ix, &q), B(1) | B(2) | B(3));
    cats[1] = S("IAB9-30");
    q.ncategories = 2;
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    cidx_free(ix);
}

Test(cidx, domains_allow_block_and_subdomains)
{
    struct cidx_camp *cs[] = {camp("allow", "{\"domains\":{\"allow\":[\"example.com\",\"news.example.org\"]}}"),
                              camp("any", NULL), camp("block", "{\"domains\":{\"block\":[\"casino.example\"]}}")};
    struct cidx *ix = build(cs, 3);
    struct cidx_query q = query();
    char longdom[300];

    q.domain = S("example.com");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2));
    q.domain = S("www.sport.Example.COM.");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2), "subdomain, case and trailing dot");
    q.domain = S("badexample.com");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2), "only at label boundaries");
    q.domain = S("example.org");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2), "a parent of a listed domain does not match");
    q.domain = S("a.news.example.org");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2));
    q.domain = S("casino.example");
    cr_expect_eq(eligible(ix, &q), B(1));
    q.domain = S("poker.casino.example");
    cr_expect_eq(eligible(ix, &q), B(1), "a block covers subdomains");
    q.domain = S("notcasino.example");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    q.domain = (struct cidx_str){NULL, 0};
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    memset(longdom, 'a', sizeof(longdom));
    memcpy(longdom + sizeof(longdom) - 15, ".casino.example", 15);
    q.domain = (struct cidx_str){longdom, sizeof(longdom)};
    cr_expect_eq(eligible(ix, &q), B(1), "too long to look up: blocks apply, allows do not");
    /* At most CIDX_Q_MAX_LABELS labels are looked up. */
    memset(longdom, 0, sizeof(longdom));
    for (int i = 0; i < CIDX_Q_MAX_LABELS - 2; i++)
        memcpy(longdom + 2 * i, "a.", 2);
    memcpy(longdom + 2 * (CIDX_Q_MAX_LABELS - 2), "example.com", 11);
    q.domain = S(longdom);
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2), "32 labels: looked up");
    memmove(longdom + 2, longdom, strlen(longdom) + 1);
    memcpy(longdom, "a.", 2);
    q.domain = S(longdom);
    cr_expect_eq(eligible(ix, &q), B(1), "33 labels: too long to look up");
    cidx_free(ix);
}

Test(cidx, bundles_allow_block)
{
    struct cidx_camp *cs[] = {camp("allow", "{\"bundles\":{\"allow\":[\"com.example.game\",\"1234567890\"]}}"),
                              camp("any", NULL), camp("block", "{\"bundles\":{\"block\":[\"com.example.rival\"]}}")};
    struct cidx *ix = build(cs, 3);
    struct cidx_query q = query();

    q.bundle = S("com.example.game");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2));
    q.bundle = S("1234567890");
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2));
    q.bundle = S("com.example.rival");
    cr_expect_eq(eligible(ix, &q), B(1));
    q.bundle = S("com.example.gam");
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    q.bundle = (struct cidx_str){NULL, 0};
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    cidx_free(ix);
}

Test(cidx, segments_include_exclude)
{
    struct cidx_camp *cs[] = {camp("inc", "{\"segments\":{\"include\":[\"rpg\",\"lapsed\"]}}"), camp("any", NULL),
                              camp("exc", "{\"segments\":{\"exclude\":[\"buyers\"]}}"),
                              camp("both", "{\"segments\":{\"include\":[\"rpg\"],\"exclude\":[\"buyers\"]}}")};
    struct cidx *ix = build(cs, 4);
    struct cidx_query q = query();
    struct cidx_str segs[CIDX_Q_MAX_SEGMENTS + 1];
    char names[CIDX_Q_MAX_SEGMENTS + 1][16];

    q.segments = segs;
    segs[0] = S("lapsed");
    q.nsegments = 1;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2));
    segs[1] = S("rpg");
    q.nsegments = 2;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2) | B(3));
    segs[2] = S("buyers");
    q.nsegments = 3;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    segs[0] = S("RPG");
    q.nsegments = 1;
    cr_expect_eq(eligible(ix, &q), B(1) | B(2), "segment ids are exact");
    q.nsegments = 0;
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));

    /* More segments than are looked up: exclusions apply to be safe. */
    for (int i = 0; i <= CIDX_Q_MAX_SEGMENTS; i++) {
        snprintf(names[i], sizeof(names[i]), "s%d", i);
        segs[i] = S(names[i]);
    }
    segs[0] = S("rpg");
    q.nsegments = CIDX_Q_MAX_SEGMENTS;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2) | B(3));
    q.nsegments = CIDX_Q_MAX_SEGMENTS + 1;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    cidx_free(ix);
}

Test(cidx, formats_and_sizes)
{
    const char *video_any[] = {
        "id", "\"video-any\"", "targeting", NULL, "flight", "{\"start\":0,\"time_zone\":\"UTC\"}", NULL};
    const char *video_sized[] = {"id",        "\"video-sized\"",
                                 "flight",    "{\"start\":0,\"time_zone\":\"UTC\"}",
                                 "targeting", "{\"formats\":[\"video\"],\"sizes\":[{\"w\":640,\"h\":360}]}",
                                 NULL};
    struct cidx_camp *cs[] = {
        camp("banner-creative", "{\"formats\":[\"banner\"]}"), /* 300x250, 320x50 */
        camp("native", "{\"formats\":[\"native\"]}"),
        make("campaign-retail.json", video_any), /* video + native from the creatives */
        make("campaign-retail.json", video_sized),
        camp("banner-728", "{\"formats\":[\"banner\"],\"sizes\":[{\"w\":728,\"h\":90}]}"),
    };
    struct cidx *ix = build(cs, 5);
    struct cidx_query q = query();
    struct cidx_size sizes[2] = {{300, 250}, {728, 90}};

    cr_expect_eq(cs[2]->formats, CIDX_FMT_VIDEO | CIDX_FMT_NATIVE);
    q.formats = CIDX_FMT_NATIVE;
    cr_expect_eq(eligible(ix, &q), B(1) | B(2));
    q.formats = CIDX_FMT_BANNER;
    q.banner_sizes = sizes;
    q.nbanner_sizes = 1;
    cr_expect_eq(eligible(ix, &q), B(0));
    q.nbanner_sizes = 2;
    cr_expect_eq(eligible(ix, &q), B(0) | B(4));
    q.banner_sizes = &sizes[1];
    q.nbanner_sizes = 1;
    cr_expect_eq(eligible(ix, &q), B(4), "targeting.sizes replaces the creative's sizes");
    q.nbanner_sizes = 0;
    cr_expect_eq(eligible(ix, &q), 0, "a banner needs a size");
    q.formats = CIDX_FMT_VIDEO;
    cr_expect_eq(eligible(ix, &q), B(2), "unknown player size: only campaigns without sizes");
    q.video_size = (struct cidx_size){640, 360};
    cr_expect_eq(eligible(ix, &q), B(2) | B(3));
    q.video_size = (struct cidx_size){1280, 720};
    cr_expect_eq(eligible(ix, &q), B(2));
    q.formats = CIDX_FMT_VIDEO | CIDX_FMT_BANNER | CIDX_FMT_NATIVE;
    q.video_size = (struct cidx_size){640, 360};
    q.banner_sizes = sizes;
    q.nbanner_sizes = 1;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2) | B(3));
    q.formats = 0;
    cr_expect_eq(eligible(ix, &q), 0, "nothing offered");
    cidx_free(ix);
}

Test(cidx, deals)
{
    /* "POP" is listed by four campaigns: enough for a bitset in an index of
     * this size, so both representations of a deal are exercised. */
    struct cidx_camp *cs[] = {camp("only", "{\"deals\":[\"D1\",\"D2\"],\"deals_only\":true}"),
                              camp("any", NULL),
                              camp("open", "{\"deals\":[\"D3\"],\"deals_only\":false}"),
                              camp("pop1", "{\"deals\":[\"POP\"]}"),
                              camp("pop2", "{\"deals\":[\"POP\"]}"),
                              camp("pop3", "{\"deals\":[\"POP\"]}"),
                              camp("pop4", "{\"deals\":[\"POP\"]}")};
    struct cidx *ix = build(cs, 7);
    struct cidx_query q = query();
    struct cidx_str deals[3] = {S("D2"), S("D3"), S("POP")};
    struct cidx_stats st;
    const uint64_t pop = B(3) | B(4) | B(5) | B(6);

    cidx_stats(ix, &st);
    cr_assert_gt(st.dense, 0);
    cr_expect_eq(eligible(ix, &q), B(1) | B(2) | pop, "open auction without deals");
    q.deals = deals;
    q.ndeals = 1;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1) | B(2) | pop);
    q.deals = &deals[1];
    cr_expect_eq(eligible(ix, &q), B(1) | B(2) | pop);
    q.private_auction = true;
    cr_expect_eq(eligible(ix, &q), B(2), "a private auction needs a listed deal");
    q.deals = deals;
    q.ndeals = 2;
    cr_expect_eq(eligible(ix, &q), B(0) | B(2));
    q.deals = &deals[2];
    q.ndeals = 1;
    cr_expect_eq(eligible(ix, &q), pop, "a deal many campaigns list");
    q.ndeals = 0;
    cr_expect_eq(eligible(ix, &q), 0);
    cidx_free(ix);
}

Test(cidx, unrestricted_campaign_matches_everything)
{
    struct cidx_camp *cs[] = {camp("any", NULL)};
    struct cidx *ix = build(cs, 1);
    struct cidx_query q = query();
    struct cidx_str list[2] = {S("x"), S("y")};
    struct cidx_size sz = {300, 250};

    q.country = S("ZZ");
    q.region = S("Q");
    q.device = S("ctv");
    q.os = S("Plan 9");
    q.language = S("tlh");
    q.domain = S("example.net");
    q.bundle = S("b");
    q.cattax = CIDX_TAX_CONTENT_3_1;
    q.categories = list;
    q.ncategories = 2;
    q.segments = list;
    q.nsegments = 2;
    q.deals = list;
    q.ndeals = 2;
    cr_expect_eq(eligible(ix, &q), B(0));
    q.formats = CIDX_FMT_BANNER;
    q.banner_sizes = &sz;
    q.nbanner_sizes = 1;
    cr_expect_eq(eligible(ix, &q), B(0));
    memset(&q, 0, sizeof(q));
    q.formats = CIDX_FMT_NATIVE;
    q.now = T0 + 86400 * 3;
    cr_expect_eq(eligible(ix, &q), B(0), "an empty query");
    cidx_free(ix);
}

Test(cidx, lists_after_words_an_earlier_dimension_emptied)
{
    /* 200 campaigns, 4 words. Campaigns 0-63 target the US only, so for a
     * French request the whole first word is emptied by the country
     * dimension. "rare" and "gone" have too few campaigns for a bitset: they
     * are lists whose first entry (5, 6) lies in that emptied word and whose
     * second (130, 131) in a later one. */
    enum { N = 200 };
    static struct cidx_camp *cs[N];
    struct cidx *ix;
    struct cidx_query q = query();
    struct cidx_str segs[2] = {S("rare"), S("gone")};
    uint64_t out[CIDX_WORDS_MAX];
    struct cidx_stats st;
    uint32_t n;

    for (int i = 0; i < N; i++) {
        char id[16], t[128];
        snprintf(id, sizeof(id), "c%d", i);
        snprintf(t, sizeof(t), "{%s%s}", i < 64 ? "\"countries\":[\"US\"]" : "\"languages\":[\"fr\"]",
                 i == 5 || i == 130   ? ",\"segments\":{\"include\":[\"rare\"]}"
                 : i == 6 || i == 131 ? ",\"segments\":{\"exclude\":[\"gone\"]}"
                                      : "");
        cs[i] = camp(id, t);
    }
    ix = build(cs, N);
    cidx_stats(ix, &st);
    cr_assert_gt(st.sparse, 0);
    q.country = S("FR");
    q.language = S("fr");
    q.segments = segs;
    q.nsegments = 2;
    n = cidx_eligible(ix, &q, out);
    cr_expect_eq(out[0], 0);
    cr_expect_eq(out[1], ~0ull);
    cr_expect_eq(out[2], ~0ull & ~(1ull << (131 - 128)), "130 included by its list, 131 excluded by its list");
    cr_expect_eq(out[3], (1ull << (N - 192)) - 1);
    cr_expect_eq(n, N - 64 - 1);
    q.nsegments = 0;
    n = cidx_eligible(ix, &q, out);
    cr_expect_eq(out[2], ~0ull & ~(1ull << (130 - 128)), "without the segment, 130 is out and 131 in");
    cr_expect_eq(n, N - 64 - 1);
    cidx_free(ix);
}

/* Records from one parsed document, without going through cJSON each time. */
struct tmpl {
    msgpack_zone zone;
    msgpack_object doc;
};

static void tmpl_init(struct tmpl *t, const char *targeting)
{
    char idj[] = "\"t\"";
    const char *kv[] = {"id", idj, "flight", "{\"start\":0,\"time_zone\":\"UTC\"}", "targeting", targeting, NULL};
    char *text = read_example("campaign-game-ip.json");
    cJSON *doc = cJSON_Parse(text);
    struct ads_diag diag;
    char *out;

    free(text);
    for (size_t i = 0; kv[i] != NULL; i += 2) {
        cJSON_DeleteItemFromObjectCaseSensitive(doc, kv[i]);
        if (kv[i + 1] != NULL)
            cJSON_AddItemToObject(doc, kv[i], cJSON_Parse(kv[i + 1]));
    }
    out = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    cr_assert(msgpack_zone_init(&t->zone, 4096));
    cr_assert_eq(doc_parse(DOC_JSON, out, strlen(out), &t->zone, &t->doc, &diag), 0);
    free(out);
}

Test(cidx, more_campaigns_than_one_chunk)
{
    /* A query works through 16384 campaigns at a time; lists and bitsets
     * must line up across that boundary. */
    enum { N = 20000, PLAIN, US, EDGE_IN, EDGE_OUT };
    static const uint32_t edge_in[] = {5, 16383, 16384, 19999}, edge_out[] = {6, 16385};
    struct tmpl t[4];
    struct cidx_builder *b;
    struct cidx *ix;
    struct cidx_query q = query();
    struct cidx_str segs[2] = {S("edge"), S("edge-x")};
    static uint64_t out[CIDX_WORDS_MAX];
    static int kind[N];
    uint32_t n, expect = 0;

    tmpl_init(&t[0], NULL);
    tmpl_init(&t[1], "{\"countries\":[\"US\"]}");
    tmpl_init(&t[2], "{\"segments\":{\"include\":[\"edge\"]}}");
    tmpl_init(&t[3], "{\"segments\":{\"exclude\":[\"edge-x\"]}}");
    for (int i = 0; i < N; i++)
        kind[i] = i % 3 == 0 ? US : PLAIN;
    for (size_t i = 0; i < sizeof(edge_in) / sizeof(edge_in[0]); i++)
        kind[edge_in[i]] = EDGE_IN;
    for (size_t i = 0; i < sizeof(edge_out) / sizeof(edge_out[0]); i++)
        kind[edge_out[i]] = EDGE_OUT;
    cr_assert_eq(cidx_builder_new(&b), 0);
    for (int i = 0; i < N; i++) {
        struct cidx_camp *c;
        cr_assert_eq(cidx_camp_from_doc(&t[kind[i] - PLAIN].doc, &c, NULL), 0);
        cr_assert_eq(cidx_builder_add(b, c), 0);
    }
    cr_assert_eq(cidx_build(b, T0, &ix), 0);
    cidx_builder_free(b);
    for (int i = 0; i < 4; i++)
        msgpack_zone_destroy(&t[i].zone);
    cr_assert_eq(cidx_words(ix), (N + 63) / 64);

    q.country = S("FR");
    for (int pass = 0; pass < 2; pass++) {
        q.segments = segs;
        q.nsegments = pass == 0 ? 2 : 0;
        n = cidx_eligible(ix, &q, out);
        expect = 0;
        for (uint32_t i = 0; i < N; i++) {
            bool want = kind[i] == PLAIN || (kind[i] == EDGE_IN && pass == 0) || (kind[i] == EDGE_OUT && pass == 1);
            cr_assert_eq((out[i / 64] >> (i % 64) & 1) != 0, want, "pass %d, campaign %u", pass, i);
            expect += want;
        }
        cr_assert_eq(n, expect);
    }
    cidx_free(ix);
}

/* ---- time ---- */

Test(cidx, flight_boundaries_and_valid_until)
{
    const char *f1[] = {"id", "\"later\"", "targeting",
                        NULL, "flight",    "{\"start\":1767229200,\"end\":1767232800,\"time_zone\":\"UTC\"}",
                        NULL};
    const char *f2[] = {"id", "\"ending\"", "targeting",
                        NULL, "flight",     "{\"start\":0,\"end\":1767240000,\"time_zone\":\"UTC\"}",
                        NULL};
    const char *f3[] = {
        "id", "\"over\"", "targeting", NULL, "flight", "{\"start\":0,\"end\":1767225600,\"time_zone\":\"UTC\"}", NULL};
    struct cidx_camp *cs[] = {make("campaign-game-ip.json", f1), make("campaign-game-ip.json", f2),
                              make("campaign-game-ip.json", f3)};
    struct cidx *ix = build(cs, 3);
    struct cidx_query q = query();

    cr_expect_eq(cidx_built_at(ix), T0);
    cr_expect_eq(cidx_valid_until(ix), 1767229200, "the next flight start");
    q.now = T0;
    cr_expect_eq(eligible(ix, &q), B(1), "an end is exclusive: 'over' ended at T0");
    q.now = 1767229200 - 1;
    cr_expect_eq(eligible(ix, &q), B(1));
    /* From here on the index is past valid_until: the exact slow path answers. */
    q.now = 1767229200;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1), "a start is inclusive");
    q.now = 1767232800 - 1;
    cr_expect_eq(eligible(ix, &q), B(0) | B(1));
    q.now = 1767232800;
    cr_expect_eq(eligible(ix, &q), B(1));
    q.now = 1767240000;
    cr_expect_eq(eligible(ix, &q), 0);
    q.now = T0 - 1;
    cr_expect_eq(eligible(ix, &q), B(1) | B(2), "before the build, too");
    cidx_free(ix);

    /* Built inside the first flight, the next change is its end. */
    cs[0] = make("campaign-game-ip.json", f1);
    cs[1] = make("campaign-game-ip.json", f2);
    ix = build_at(cs, 2, 1767229200);
    cr_expect_eq(cidx_valid_until(ix), 1767232800);
    cidx_free(ix);

    /* Without flight changes, one precomputed week (from the slot's start). */
    cs[0] = camp("forever", NULL);
    ix = build_at(cs, 1, T0 + 100);
    cr_expect_eq(cidx_valid_until(ix), T0 + 7 * 86400);
    cidx_free(ix);
}

static struct cidx_camp *dayparted(const char *id, const char *zone, const char *targeting)
{
    char idj[96], flight[160];
    const char *kv[] = {"id", idj, "flight", flight, "targeting", targeting, NULL};

    snprintf(idj, sizeof(idj), "\"%s\"", id);
    snprintf(flight, sizeof(flight), "{\"start\":0,\"time_zone\":\"%s\"}", zone);
    return make("campaign-game-ip.json", kv);
}

Test(cidx, dayparting_in_the_campaign_zone_across_dst)
{
    /* Weekday mornings in Berlin, Sunday 3-4 in Berlin (the hour after the
     * spring switch), Monday 9-10 in Kolkata (+5:30) and Kathmandu (+5:45). */
    struct cidx_camp *cs[] = {
        dayparted(
            "berlin-am", "Europe/Berlin",
            "{\"dayparting\":[{\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"],\"start_hour\":6,\"end_hour\":9}]}"),
        dayparted("berlin-sun", "Europe/Berlin",
                  "{\"dayparting\":[{\"days\":[\"sun\"],\"start_hour\":3,\"end_hour\":4}]}"),
        dayparted("kolkata", "Asia/Kolkata",
                  "{\"dayparting\":[{\"days\":[\"mon\"],\"start_hour\":9,\"end_hour\":10}]}"),
        dayparted("kathmandu", "Asia/Kathmandu",
                  "{\"dayparting\":[{\"days\":[\"mon\"],\"start_hour\":9,\"end_hour\":10}]}"),
        camp("always", NULL),
    };
    /* Built on Saturday 2025-03-29 12:00Z: the week ahead holds the switch to
     * CEST (Sunday 2025-03-30 01:00Z). */
    const int64_t sat = 1743249600, sun = 1743292800 /* 2025-03-30 00:00Z */, mon = sun + 86400;
    struct cidx *ix = build_at(cs, 5, sat);
    struct cidx_query q = query();

    cr_assert_geq(cidx_valid_until(ix), mon + 7 * 3600, "no flight changes: a week");
    /* Sunday 3-4 local is 01:00-02:00Z after the switch (02:00-03:00 local does not exist). */
    q.now = sun + 3600 - 1;
    cr_expect_eq(eligible(ix, &q), B(4), "00:59:59Z is 01:59:59 CET");
    q.now = sun + 3600;
    cr_expect_eq(eligible(ix, &q), B(1) | B(4), "01:00Z is 03:00 CEST");
    q.now = sun + 2 * 3600 - 1;
    cr_expect_eq(eligible(ix, &q), B(1) | B(4));
    q.now = sun + 2 * 3600;
    cr_expect_eq(eligible(ix, &q), B(4), "02:00Z is 04:00 CEST");
    /* Monday 6-9 CEST is 04:00-07:00Z (in winter it was 05:00-08:00Z). */
    q.now = mon + 4 * 3600 - 1;
    cr_expect_eq(eligible(ix, &q) & B(0), 0);
    q.now = mon + 4 * 3600;
    cr_expect_eq(eligible(ix, &q) & B(0), B(0));
    q.now = mon + 7 * 3600 - 1;
    cr_expect_eq(eligible(ix, &q) & B(0), B(0));
    q.now = mon + 7 * 3600;
    cr_expect_eq(eligible(ix, &q) & B(0), 0);
    /* Monday 9-10 in Kolkata is 03:30-04:30Z; in Kathmandu 03:15-04:15Z. */
    q.now = mon + 3 * 3600 + 15 * 60 - 1;
    cr_expect_eq(eligible(ix, &q), B(4));
    q.now = mon + 3 * 3600 + 15 * 60;
    cr_expect_eq(eligible(ix, &q), B(3) | B(4));
    q.now = mon + 3 * 3600 + 30 * 60;
    cr_expect_eq(eligible(ix, &q), B(2) | B(3) | B(4));
    q.now = mon + 4 * 3600 + 15 * 60;
    cr_expect_eq(eligible(ix, &q), B(0) | B(2) | B(4), "Kathmandu's hour is over, Berlin's began");
    q.now = mon + 4 * 3600 + 30 * 60;
    cr_expect_eq(eligible(ix, &q), B(0) | B(4));
    cidx_free(ix);

    /* The same campaign in winter: Monday 2026-01-05, 6-9 CET is 05:00-08:00Z. */
    cs[0] = dayparted("berlin-am", "Europe/Berlin",
                      "{\"dayparting\":[{\"days\":[\"mon\"],\"start_hour\":6,\"end_hour\":9}]}");
    ix = build_at(cs, 1, T0);
    q.now = T0 + 4 * 86400 + 5 * 3600 - 1; /* 2026-01-05 05:00Z - 1 */
    cr_expect_eq(eligible(ix, &q), 0);
    q.now = T0 + 4 * 86400 + 5 * 3600;
    cr_expect_eq(eligible(ix, &q), B(0));
    q.now = T0 + 4 * 86400 + 8 * 3600 - 1;
    cr_expect_eq(eligible(ix, &q), B(0));
    q.now = T0 + 4 * 86400 + 8 * 3600;
    cr_expect_eq(eligible(ix, &q), 0);
    q.now = T0 + 11 * 86400 + 5 * 3600; /* the next Monday: past the precomputed week, slow path */
    cr_expect_eq(eligible(ix, &q), B(0));
    q.now -= 1;
    cr_expect_eq(eligible(ix, &q), 0);
    cidx_free(ix);
}

/* ---- fast and slow paths, against a reference, on random campaigns ---- */

static unsigned rnd_state = 12345;

static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % n;
}

static const char *const pool_country[] = {"US", "CA", "DE", "GB", "FR"};
static const char *const pool_seg[] = {"s0", "s1", "s2", "s3", "s4", "s5"};
static const char *const pool_dom[] = {"a.example", "b.example", "news.c.example"};
static const char *const pool_zone[] = {"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"};

static void rnd_list(char *out, size_t cap, const char *const *pool, unsigned n)
{
    size_t len = (size_t)snprintf(out, cap, "[");
    unsigned k = 1 + rnd(n), start = rnd(n);

    for (unsigned i = 0; i < k && i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s\"%s\"", i ? "," : "", pool[(start + i) % n]);
    snprintf(out + len, cap - len, "]");
}

static struct cidx_camp *rnd_camp(int i)
{
    char t[1024], a[256], b1[96], b2[160];
    const char *kv[8];
    size_t len = (size_t)snprintf(t, sizeof(t), "{");

    if (rnd(2)) {
        rnd_list(a, sizeof(a), pool_country, 5);
        len += (size_t)snprintf(t + len, sizeof(t) - len, "\"countries\":%s,", a);
    }
    if (rnd(3) == 0) {
        /* The pool's segments, common enough for bitsets, plus one of this
         * campaign's own, stored as a list. */
        rnd_list(a, sizeof(a), pool_seg, 6);
        a[strlen(a) - 1] = '\0';
        len += (size_t)snprintf(t + len, sizeof(t) - len, "\"segments\":{\"%s\":%s,\"u%d\"]},",
                                rnd(2) ? "include" : "exclude", a, i);
    }
    if (rnd(3) == 0) {
        rnd_list(a, sizeof(a), pool_dom, 3);
        len += (size_t)snprintf(t + len, sizeof(t) - len, "\"domains\":{\"%s\":%s},", rnd(2) ? "allow" : "block", a);
    }
    if (rnd(3) == 0)
        len +=
            (size_t)snprintf(t + len, sizeof(t) - len,
                             "\"dayparting\":[{\"days\":[\"mon\",\"thu\",\"sat\"],\"start_hour\":%u,\"end_hour\":%u}],",
                             rnd(12), 12 + rnd(12) + 1);
    snprintf(t + len, sizeof(t) - len, "\"formats\":[\"native\"]}");
    snprintf(b1, sizeof(b1), "\"r%d\"", i);
    snprintf(b2, sizeof(b2), "{\"start\":%d,\"end\":%d,\"time_zone\":\"%s\"}", T0 - 86400 + (int)rnd(3) * 86400,
             T0 + 86400 * (1 + (int)rnd(8)), pool_zone[rnd(4)]);
    kv[0] = "id";
    kv[1] = b1;
    kv[2] = "flight";
    kv[3] = b2;
    kv[4] = "targeting";
    kv[5] = t;
    kv[6] = NULL;
    return make("campaign-game-ip.json", kv);
}

static bool in_list(const struct cidx_list *l, const char *s, size_t n)
{
    for (uint32_t i = 0; i < l->n; i++) {
        if (l->v[i].len == n && memcmp(l->v[i].ptr, s, n) == 0)
            return true;
    }
    return false;
}

/* The rules of cidx.h for the members rnd_camp() uses, one campaign at a time. */
static bool reference(const struct cidx_camp *c, const struct cidx_query *q)
{
    bool seg_in = c->seg_include.n == 0, dom_ok = c->domain_allow.n == 0;

    if (q->now < c->flight_start || q->now >= c->flight_end)
        return false;
    if (c->has_daypart) {
        int64_t local = q->now + tz_offset_at(c->zone, q->now);
        int64_t days = local / 86400, how = ((days + 3) % 7) * 24 + (local % 86400) / 3600;
        if ((c->daypart[how / 64] >> (how % 64) & 1) == 0)
            return false;
    }
    if (c->countries.n > 0 && !in_list(&c->countries, q->country.ptr, q->country.len))
        return false;
    for (uint32_t i = 0; i < q->nsegments; i++) {
        if (in_list(&c->seg_exclude, q->segments[i].ptr, q->segments[i].len))
            return false;
        seg_in = seg_in || in_list(&c->seg_include, q->segments[i].ptr, q->segments[i].len);
    }
    for (size_t off = 0; off < q->domain.len;) {
        const char *p = q->domain.ptr + off;
        const char *dot = memchr(p, '.', q->domain.len - off);
        if (in_list(&c->domain_block, p, q->domain.len - off))
            return false;
        dom_ok = dom_ok || in_list(&c->domain_allow, p, q->domain.len - off);
        if (dot == NULL)
            break;
        off = (size_t)(dot - q->domain.ptr) + 1;
    }
    return seg_in && dom_ok;
}

Test(cidx, random_campaigns_agree_with_the_reference)
{
    enum { N = 300 };
    static struct cidx_camp *cs[N];
    static const char *const domains[] = {"", "a.example", "x.b.example", "news.c.example", "c.example", "z.example"};
    struct cidx *ix;
    struct cidx_query q;
    struct cidx_str segs[4];
    char own[16];
    uint64_t out[CIDX_WORDS_MAX];
    struct cidx_stats st;
    int checked = 0;

    for (int i = 0; i < N; i++)
        cs[i] = rnd_camp(i);
    ix = build(cs, N);
    cidx_stats(ix, &st);
    cr_assert_eq(cidx_count(ix), N);
    cr_expect_gt(st.dense, 0, "both representations are exercised");
    cr_expect_gt(st.sparse, 0);
    for (int k = 0; k < 600; k++) {
        uint32_t n, expect = 0;
        memset(&q, 0, sizeof(q));
        q.formats = CIDX_FMT_NATIVE;
        /* Half inside the precomputed window, half anywhere (mostly the slow path). */
        if (k % 2 == 0)
            q.now = T0 + (int64_t)rnd((unsigned)(cidx_valid_until(ix) - T0));
        else
            q.now = T0 + (int64_t)rnd(9 * 86400) - 86400;
        q.country = S(pool_country[rnd(5)]);
        q.domain = S(domains[rnd(6)]);
        q.segments = segs;
        q.nsegments = rnd(4);
        for (uint32_t s = 0; s < q.nsegments; s++)
            segs[s] = S(pool_seg[rnd(6)]);
        if (rnd(2)) {
            snprintf(own, sizeof(own), "u%u", rnd(N));
            segs[q.nsegments++] = S(own);
        }
        n = cidx_eligible(ix, &q, out);
        for (uint32_t i = 0; i < N; i++) {
            bool want = reference(cidx_camp(ix, i), &q), got = (out[i / 64] >> (i % 64) & 1) != 0;
            cr_assert_eq(got, want, "query %d, campaign %u (%s): index %d, reference %d", k, i, cidx_camp(ix, i)->id,
                         got, want);
            expect += want;
        }
        cr_assert_eq(n, expect);
        checked += n > 0;
    }
    cr_expect_gt(checked, 100, "most queries have eligible campaigns");
    cidx_free(ix);
}

/* ---- the holder (hold.h) publishing indexes ---- */

static void ix_free_any(void *ix)
{
    cidx_free(ix);
}

Test(hold, arguments_and_empty)
{
    struct hold *h;
    struct cidx_camp *cs[1];

    cr_expect_eq(hold_new(0, NULL, ix_free_any, &h), ADS_EINVAL);
    cr_expect_eq(hold_new(2, NULL, NULL, &h), ADS_EINVAL);
    cr_expect_eq(hold_new(HOLD_MAX_READERS + 1, NULL, ix_free_any, &h), ADS_EINVAL);
    cr_assert_eq(hold_new(2, NULL, ix_free_any, &h), 0);
    cr_expect_null(hold_enter(h, 1));
    hold_exit(h, 1);
    cs[0] = camp("a", NULL);
    hold_swap(h, build(cs, 1));
    cr_expect_eq(cidx_count(hold_enter(h, 0)), 1);
    hold_exit(h, 0);
    hold_swap(h, NULL);
    cr_expect_null(hold_enter(h, 0));
    hold_exit(h, 0);
    hold_free(h);
    hold_free(NULL);
}

enum { READERS = 4, SWAPS = 300 };

struct swap_test {
    struct hold *h;
    atomic_bool stop;
    atomic_uint_fast64_t queries, bad;
};

/*
 * Index g holds 1 + g % 5 campaigns with ids "g<g>-<i>", from a flight that
 * starts at g (so cidx_built_at - T0 = g and the generation is known).
 */
static struct cidx *generation(uint32_t g)
{
    struct cidx_builder *b;
    struct cidx *ix;

    cr_assert_eq(cidx_builder_new(&b), 0);
    for (uint32_t i = 0; i < 1 + g % 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "g%u-%u", g, i);
        cr_assert_eq(cidx_builder_add(b, camp(id, i % 2 ? "{\"countries\":[\"US\"]}" : NULL)), 0);
    }
    cr_assert_eq(cidx_build(b, T0 + g, &ix), 0);
    cidx_builder_free(b);
    return ix;
}

struct reader_arg {
    struct swap_test *t;
    uint32_t reader;
};

static void *reader_main(void *arg)
{
    struct reader_arg *ra = arg;
    struct swap_test *t = ra->t;
    uint64_t out[CIDX_WORDS_MAX];
    struct cidx_query q = query();

    q.country = S("US");
    while (!atomic_load(&t->stop)) {
        const struct cidx *ix = hold_enter(t->h, ra->reader);
        uint32_t g = (uint32_t)(cidx_built_at(ix) - T0), n = cidx_count(ix), got;
        char prefix[16];
        int plen = snprintf(prefix, sizeof(prefix), "g%u-", g);

        q.now = T0 + g;
        got = cidx_eligible(ix, &q, out);
        /* Every campaign matches (unrestricted, or US): the result must be
         * exactly this index's campaigns, all of this generation. */
        if (n != 1 + g % 5 || got != n || out[0] != (n == 64 ? ~0ull : (1ull << n) - 1))
            atomic_fetch_add(&t->bad, 1);
        for (uint32_t i = 0; i < n; i++) {
            if (strncmp(cidx_camp(ix, i)->id, prefix, (size_t)plen) != 0)
                atomic_fetch_add(&t->bad, 1);
        }
        hold_exit(t->h, ra->reader);
        atomic_fetch_add(&t->queries, 1);
    }
    return NULL;
}

Test(hold, swaps_under_concurrent_readers, .timeout = 120)
{
    struct swap_test t;
    struct reader_arg args[READERS];
    pthread_t tids[READERS];
    uint64_t before;

    cr_assert_eq(hold_new(READERS, generation(0), ix_free_any, &t.h), 0);
    atomic_init(&t.stop, false);
    atomic_init(&t.queries, 0);
    atomic_init(&t.bad, 0);
    for (uint32_t r = 0; r < READERS; r++) {
        args[r] = (struct reader_arg){&t, r};
        cr_assert_eq(pthread_create(&tids[r], NULL, reader_main, &args[r]), 0);
    }
    for (uint32_t g = 1; g <= SWAPS; g++) {
        struct cidx *next = generation(g);
        before = atomic_load(&t.queries);
        hold_swap(t.h, next);
        /* Let the readers run against each index a little. */
        for (int spin = 0; spin < 1000 && atomic_load(&t.queries) < before + READERS; spin++)
            sched_yield();
    }
    atomic_store(&t.stop, true);
    for (uint32_t r = 0; r < READERS; r++)
        pthread_join(tids[r], NULL);
    cr_expect_eq(atomic_load(&t.bad), 0, "every result belongs to one index");
    cr_expect_gt(atomic_load(&t.queries), (uint64_t)SWAPS, "the readers ran throughout");
    hold_free(t.h);
}
