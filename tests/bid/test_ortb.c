#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/ortb.h"
#include "toybid.h"

/* Requests are the fixtures in tests/bid/fixtures (see SOURCES.md there), and
 * small documents written here. */

static struct ortb_scratch *scr;

static void setup(void)
{
    cr_assert_eq(ortb_scratch_new(&scr), 0);
}

static void teardown(void)
{
    ortb_scratch_free(scr);
}

TestSuite(ortb, .init = setup, .fini = teardown);

static char *read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long len;

    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    text[len] = '\0';
    fclose(f);
    *ret_len = (size_t)len;
    return text;
}

static const char *fixture_dir(void)
{
    static char dir[512];
    const char *root = getenv("ADSMITH_SOURCE_ROOT");

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is set by meson");
    snprintf(dir, sizeof(dir), "%s/tests/bid/fixtures", root);
    return dir;
}

static char *fixture(const char *name, size_t *ret_len)
{
    char path[768];

    snprintf(path, sizeof(path), "%s/%s", fixture_dir(), name);
    return read_file(path, ret_len);
}

/* Names of every fixture, sorted; returns how many. */
static size_t fixture_names(char names[][128], size_t max)
{
    DIR *d = opendir(fixture_dir());
    struct dirent *e;
    size_t n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 5 && l < 128 && strcmp(e->d_name + l - 5, ".json") == 0 && n < max)
            memcpy(names[n++], e->d_name, l + 1);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
    return n;
}

static const struct ortb_req *parse_ok(const char *json)
{
    const struct ortb_req *r = NULL;
    struct ads_diag d;
    enum ortb_fault f = ORTB_F_NONE;
    int rc = ortb_parse(scr, DOC_JSON, json, strlen(json), &r, &d, &f);

    cr_assert_eq(rc, 0, "parse failed (%s): %s at '%s'", ortb_fault_name(f), d.message, d.pointer);
    return r;
}

static void parse_bad(const char *json, size_t len, enum ortb_fault want, const char *pointer)
{
    const struct ortb_req *r = NULL;
    struct ads_diag d;
    enum ortb_fault f = ORTB_F_NONE;
    int rc = ortb_parse(scr, DOC_JSON, json, len, &r, &d, &f);

    cr_assert_eq(rc, ADS_EBAD_REQUEST, "expected 400 for %.80s", json);
    cr_assert_eq(f, want, "fault %s, wanted %s (%s)", ortb_fault_name(f), ortb_fault_name(want), d.message);
    cr_assert_str_eq(d.pointer, pointer, "pointer of %s", ortb_fault_name(f));
    cr_assert_gt(strlen(d.message), 10, "a message a person can act on");
}

static bool str_is(struct cidx_str s, const char *lit)
{
    return s.len == strlen(lit) && (s.len == 0 || memcmp(s.ptr, lit, s.len) == 0);
}

#define assert_str(s, lit) cr_assert(str_is((s), (lit)), "%s is '%.*s', wanted '%s'", #s, (int)(s).len, (s).ptr, (lit))

/* ---- every fixture ---- */

Test(ortb, every_fixture_parses_in_both_encodings)
{
    static char names[64][128];
    size_t n = fixture_names(names, 64), i;

    cr_assert_geq(n, 28);
    for (i = 0; i < n; i++) {
        size_t len;
        char *body = fixture(names[i], &len);
        const struct ortb_req *r = NULL;
        struct ads_diag d;
        enum ortb_fault f;
        msgpack_zone zone;
        msgpack_object doc;
        static char mp[65536];
        struct buf b;
        struct docw w;
        char id[ORTB_ID_MAX + 1];
        uint32_t nimps;

        cr_assert_eq(ortb_parse(scr, DOC_JSON, body, len, &r, &d, &f), 0, "%s: %s at %s", names[i], d.message,
                     d.pointer);
        cr_assert_gt(r->nimps, 0);
        cr_assert_gt(r->id.len, 0);
        for (uint32_t k = 0; k < r->nimps; k++) {
            struct cidx_query q;
            cr_assert_eq(ortb_imp_query(r, k, 1767225600, &q), 0);
        }
        memcpy(id, r->id.ptr, r->id.len);
        id[r->id.len] = '\0';
        nimps = r->nimps;

        /* The same document as MessagePack reads the same. */
        msgpack_zone_init(&zone, 4096);
        cr_assert_eq(doc_parse(DOC_JSON, body, len, &zone, &doc, &d), 0);
        buf_init(&b, mp, sizeof(mp));
        docw_init(&w, DOC_MSGPACK, &b);
        docw_object(&w, &doc);
        cr_assert(!b.overflow);
        cr_assert_eq(ortb_parse(scr, DOC_MSGPACK, b.base, b.len, &r, &d, &f), 0, "%s as msgpack: %s", names[i],
                     d.message);
        cr_assert(str_is(r->id, id));
        cr_assert_eq(r->nimps, nimps);
        msgpack_zone_destroy(&zone);
        free(body);
    }
}

Test(ortb, fixture_simple_banner)
{
    size_t len;
    char *body = fixture("iab-2.6-spec_simple-banner.json", &len);
    const struct ortb_req *r;
    struct ads_diag d;

    cr_assert_eq(ortb_parse(scr, DOC_JSON, body, len, &r, &d, NULL), 0);
    assert_str(r->id, "80ce30c53c16e6ede735f123ef6e32361bfc7b22");
    cr_assert_eq(r->nimps, 1);
    assert_str(r->imps[0].id, "1");
    cr_assert_eq(r->imps[0].bidfloor_micros, 30000);
    assert_str(r->imps[0].bidfloorcur, "USD");
    cr_assert(r->imps[0].has_banner);
    cr_assert_eq(r->imps[0].nformats, 1);
    cr_assert_eq(r->imps[0].formats[0].w, 300);
    cr_assert_eq(r->imps[0].formats[0].h, 250);
    cr_assert_eq(r->at, 1);
    cr_assert_eq(r->cur.n, 1);
    assert_str(r->cur.v[0], "USD");
    free(body);
}

Test(ortb, fixture_smaato_25_privacy_and_26_eids)
{
    size_t len;
    char *body = fixture("pbs_smaato_simple-banner-eids.json", &len);
    const struct ortb_req *r;
    struct ads_diag d;

    cr_assert_eq(ortb_parse(scr, DOC_JSON, body, len, &r, &d, NULL), 0);
    cr_assert_eq(r->regs.coppa, 1);
    cr_assert_eq(r->regs.gdpr, 1);
    assert_str(r->regs.us_privacy, "uspConsentString");
    assert_str(r->regs.gpp, "gppString");
    cr_assert_eq(r->regs.gpp_sid.n, 1);
    cr_assert_eq(r->regs.gpp_sid.v[0], 7);
    assert_str(r->user.consent, "gdprConsentString");
    cr_assert_eq(r->user.neids, 1);
    assert_str(r->user.eids[0].source, "adserver.org");
    assert_str(r->user.eids[0].uid[0], "1234");
    cr_assert_eq(r->user.eids[0].atype[0], 1);
    cr_assert_eq(r->imps[0].instl, 1);
    cr_assert_eq(r->imps[0].nformats, 2);
    cr_assert_eq(r->imps[0].bidfloor_micros, 1230);
    assert_str(r->device.language, "en");
    cr_assert_eq(r->device.dnt, 0);
    assert_str(r->site.publisher_id, "1100042525");
    free(body);
}

Test(ortb, fixture_ttd_25_schain_and_eids)
{
    size_t len;
    char *body = fixture("pbs_thetradedesk_prebidjs_response_video_parsing.json", &len);
    const struct ortb_req *r;
    struct ads_diag d;

    cr_assert_eq(ortb_parse(scr, DOC_JSON, body, len, &r, &d, NULL), 0);
    cr_assert(r->source.schain.present);
    cr_assert_eq(r->source.schain.complete, 1);
    cr_assert_eq(r->source.schain.nnodes, 1);
    assert_str(r->source.schain.nodes[0].asi, "example.com");
    cr_assert_eq(r->source.schain.nodes[0].hp, 1);
    cr_assert_eq(r->user.neids, 1);
    assert_str(r->user.eids[0].source, "criteo.com");
    cr_assert(r->imps[0].has_video);
    cr_assert_eq(r->imps[0].video_size.w, 400);
    cr_assert_eq(r->imps[0].video_size.h, 225);
    cr_assert_eq(r->imps[0].bidfloor_micros, 3350700);
    free(body);
}

Test(ortb, fixture_mobile_app_and_dooh_deals)
{
    size_t len;
    char *body = fixture("iab-2.6-spec_mobile-app.json", &len);
    const struct ortb_req *r;
    struct cidx_query q;

    cr_assert_eq(ortb_parse(scr, DOC_JSON, body, len, &r, NULL, NULL), 0);
    cr_assert(r->app.present);
    cr_assert(!r->site.present);
    assert_str(r->app.bundle, "12345");
    cr_assert_eq(r->app.cat.n, 2);
    cr_assert_eq(r->device.devicetype, 1);
    cr_assert_eq(ortb_imp_query(r, 0, 1, &q), 0);
    assert_str(q.device, "phone");
    assert_str(q.bundle, "12345");
    cr_assert_eq(q.cattax, CIDX_TAX_CONTENT_1_0);
    cr_assert_eq(q.ncategories, 2);
    assert_str(q.categories[1], "IAB15-10");
    cr_assert_eq(r->badv.n, 3);
    assert_str(r->badv.v[2], "heywire.com");
    cr_assert_eq(r->bcat.n, 5);
    free(body);

    body = fixture("iab-2.6-impl_dooh-banner-gbp-deals.json", &len);
    cr_assert_eq(ortb_parse(scr, DOC_JSON, body, len, &r, NULL, NULL), 0);
    assert_str(r->imps[0].bidfloorcur, "GBP");
    cr_assert_eq(r->imps[0].bidfloor_micros, 5000000);
    cr_assert_eq(r->imps[0].ndeals, 3);
    cr_assert_eq(r->imps[0].private_auction, 0);
    assert_str(r->imps[0].deals[1].id, "333");
    cr_assert_eq(r->imps[0].deals[1].bidfloor_micros, 3000000);
    assert_str(r->imps[0].deals[1].bidfloorcur, "USD"); /* deal.bidfloorcur absent: its default */
    cr_assert_eq(ortb_imp_query(r, 0, 1, &q), 0);
    cr_assert_eq(q.ndeals, 3);
    assert_str(q.deals[2], "444");
    assert_str(q.device, "other"); /* 8, OOH */
    cr_assert(!q.private_auction);
    free(body);
}

/* ---- 2.5 ext place vs 2.6 place ---- */

Test(ortb, privacy_fields_read_from_26_place)
{
    const struct ortb_req *r =
        parse_ok("{\"id\":\"a\",\"imp\":[{\"id\":\"1\"}],"
                 "\"regs\":{\"gdpr\":1,\"us_privacy\":\"1YNN\",\"gpp\":\"DBAA\",\"gpp_sid\":[2,6]},"
                 "\"user\":{\"consent\":\"CPc26\",\"eids\":[{\"source\":\"id5-sync.com\",\"uids\":[{\"id\":\"ID5\","
                 "\"atype\":1}]}]},"
                 "\"source\":{\"tid\":\"t1\",\"schain\":{\"complete\":1,\"ver\":\"1.0\",\"nodes\":[{\"asi\":\"ex.com\","
                 "\"sid\":\"1\",\"hp\":1}]}}}");

    cr_assert_eq(r->regs.gdpr, 1);
    assert_str(r->regs.us_privacy, "1YNN");
    assert_str(r->regs.gpp, "DBAA");
    cr_assert_eq(r->regs.gpp_sid.n, 2);
    assert_str(r->user.consent, "CPc26");
    cr_assert_eq(r->user.neids, 1);
    assert_str(r->user.eids[0].source, "id5-sync.com");
    assert_str(r->source.tid, "t1");
    cr_assert_eq(r->source.schain.nnodes, 1);
    assert_str(r->source.schain.nodes[0].asi, "ex.com");
}

Test(ortb, privacy_fields_read_from_25_ext_place)
{
    const struct ortb_req *r =
        parse_ok("{\"id\":\"a\",\"imp\":[{\"id\":\"1\"}],"
                 "\"regs\":{\"ext\":{\"gdpr\":0,\"us_privacy\":\"1YYN\",\"gpp\":\"DBAB\",\"gpp_sid\":[7]}},"
                 "\"user\":{\"ext\":{\"consent\":\"CPc25\",\"eids\":[{\"source\":\"a.com\",\"uids\":[{\"id\":\"U\"}]},"
                 "{\"source\":\"b.com\",\"uids\":[{\"id\":\"V\"}]}]}},"
                 "\"source\":{\"ext\":{\"schain\":{\"complete\":0,\"ver\":\"1.0\",\"nodes\":[{\"asi\":\"x.com\","
                 "\"sid\":\"2\"}]}}}}");

    cr_assert_eq(r->regs.gdpr, 0);
    assert_str(r->regs.us_privacy, "1YYN");
    assert_str(r->regs.gpp, "DBAB");
    cr_assert_eq(r->regs.gpp_sid.n, 1);
    cr_assert_eq(r->regs.gpp_sid.v[0], 7);
    assert_str(r->user.consent, "CPc25");
    cr_assert_eq(r->user.neids, 2);
    assert_str(r->user.eids[1].source, "b.com");
    cr_assert(r->source.schain.present);
    cr_assert_eq(r->source.schain.complete, 0);
    assert_str(r->source.schain.nodes[0].asi, "x.com");
    cr_assert_eq(r->source.schain.nodes[0].hp, -1);
}

Test(ortb, the_26_place_wins_over_the_25_place)
{
    const struct ortb_req *r = parse_ok(
        "{\"id\":\"a\",\"imp\":[{\"id\":\"1\"}],"
        "\"regs\":{\"gdpr\":1,\"us_privacy\":\"1YNN\",\"ext\":{\"gdpr\":0,\"us_privacy\":\"1NNN\"}},"
        "\"user\":{\"consent\":\"new\",\"eids\":[{\"source\":\"new.com\",\"uids\":[{\"id\":\"N\"}]}],"
        "\"ext\":{\"consent\":\"old\",\"eids\":[{\"source\":\"old.com\",\"uids\":[{\"id\":\"O\"}]}]}},"
        "\"source\":{\"schain\":{\"complete\":1,\"ver\":\"1.0\",\"nodes\":[{\"asi\":\"new.com\",\"sid\":\"1\"}]},"
        "\"ext\":{\"schain\":{\"complete\":0,\"ver\":\"1.0\",\"nodes\":[{\"asi\":\"old.com\",\"sid\":\"1\"}]}}}}");

    cr_assert_eq(r->regs.gdpr, 1);
    assert_str(r->regs.us_privacy, "1YNN");
    assert_str(r->user.consent, "new");
    assert_str(r->user.eids[0].source, "new.com");
    assert_str(r->source.schain.nodes[0].asi, "new.com");
}

/* ---- null and wrong types ---- */

#define BAD(json, fault, ptr) parse_bad(json, sizeof(json) - 1, fault, ptr)

Test(ortb, null_is_absent)
{
    const struct ortb_req *r = parse_ok(
        "{\"id\":\"a\",\"imp\":[{\"id\":\"1\",\"bidfloor\":null,\"banner\":null,\"pmp\":null,\"tagid\":null}],"
        "\"site\":null,\"app\":null,\"device\":{\"geo\":null,\"ua\":null,\"devicetype\":null},"
        "\"regs\":{\"gdpr\":null,\"ext\":{\"gdpr\":1}},\"user\":{\"consent\":null,\"ext\":{\"consent\":\"C\"}},"
        "\"source\":{\"schain\":null,\"ext\":{\"schain\":{\"nodes\":[]}}},"
        "\"cur\":null,\"bcat\":[null,\"IAB1\"],\"test\":null,\"at\":null,\"tmax\":null}");

    cr_assert_eq(r->imps[0].bidfloor_micros, 0);
    cr_assert(!r->imps[0].has_banner);
    cr_assert_eq(r->imps[0].tagid.len, 0);
    cr_assert(!r->site.present);
    cr_assert(!r->app.present);
    cr_assert_eq(r->device.ua.len, 0);
    cr_assert_eq(r->device.devicetype, 0);
    cr_assert_eq(r->regs.gdpr, 1, "a null 2.6 field lets the 2.5 one through");
    assert_str(r->user.consent, "C");
    cr_assert(r->source.schain.present);
    cr_assert_eq(r->cur.n, 0);
    cr_assert_eq(r->bcat.n, 1);
    cr_assert_eq(r->at, 2);
    cr_assert_eq(r->tmax, 0);
    cr_assert_eq(r->test, 0);

    BAD("{\"id\":null,\"imp\":[{\"id\":\"1\"}]}", ORTB_F_ID_MISSING, "/id");
    BAD("{\"id\":\"a\",\"imp\":null}", ORTB_F_IMP_MISSING, "/imp");
    BAD("{\"id\":\"a\",\"imp\":[{\"id\":null}]}", ORTB_F_IMP_ID_MISSING, "/imp/0/id");
}

Test(ortb, unreadable_floor_is_one_nothing_meets)
{
    const struct ortb_req *r = parse_ok("{\"id\":\"a\",\"imp\":[{\"id\":\"1\",\"bidfloor\":\"0.5 USD\"},"
                                        "{\"id\":\"2\",\"bidfloor\":null},{\"id\":\"3\",\"bidfloor\":[1]}]}");

    cr_assert_geq(r->imps[0].bidfloor_micros, INT64_C(9000000000000000000));
    cr_assert_eq(r->imps[1].bidfloor_micros, 0, "null is absent");
    cr_assert_geq(r->imps[2].bidfloor_micros, INT64_C(9000000000000000000));
}

Test(ortb, wrong_type_on_optional_field_is_ignored)
{
    const struct ortb_req *r =
        parse_ok("{\"id\":\"a\",\"imp\":[{\"id\":\"1\",\"bidfloor\":\"0.25\",\"secure\":\"1\",\"instl\":true,"
                 "\"banner\":{\"format\":{\"w\":300,\"h\":250},\"w\":\"300\",\"h\":250},"
                 "\"video\":[1],\"native\":\"{}\",\"pmp\":{\"private_auction\":\"yes\",\"deals\":[{\"id\":5},\"x\",{"
                 "\"id\":\"d\","
                 "\"bidfloor\":{\"v\":1},\"wseat\":\"s\"}]}}],"
                 "\"site\":\"example.com\",\"device\":{\"devicetype\":\"4\",\"geo\":[],\"lmt\":2,\"os\":7},"
                 "\"regs\":{\"gdpr\":\"1\",\"coppa\":true},\"user\":{\"eids\":{\"source\":\"x\"},\"consent\":1},"
                 "\"tmax\":\"100\",\"at\":1.0,\"cur\":\"USD\",\"bcat\":\"IAB1\",\"badv\":[1,\"ok.com\"],\"test\":7,"
                 "\"cattax\":\"2\",\"wseat\":[{}]}");
    const struct ortb_imp *im = &r->imps[0];

    cr_assert_eq(im->bidfloor_micros, 250000, "a floor is also read from a numeric string");
    cr_assert_eq(im->secure, -1);
    cr_assert_eq(im->instl, 1);
    cr_assert(im->has_banner);
    cr_assert_eq(im->nformats, 0);
    cr_assert(!im->has_video);
    cr_assert(!im->has_native);
    cr_assert_eq(im->private_auction, -1);
    cr_assert_eq(im->ndeals, 1);
    assert_str(im->deals[0].id, "d");
    cr_assert_geq(im->deals[0].bidfloor_micros, INT64_C(9000000000000000000),
                  "a floor present but unreadable is one nothing meets");
    cr_assert_eq(im->deals[0].wseat.n, 0);
    cr_assert(!r->site.present);
    cr_assert_eq(r->device.devicetype, 0);
    cr_assert_eq(r->device.lmt, -1);
    cr_assert_eq(r->device.os.len, 0);
    cr_assert_eq(r->regs.gdpr, -1);
    cr_assert_eq(r->regs.coppa, 1, "true counts as 1");
    cr_assert_eq(r->user.neids, 0);
    cr_assert_eq(r->user.consent.len, 0);
    cr_assert_eq(r->tmax, 0);
    cr_assert_eq(r->at, 1);
    cr_assert_eq(r->cur.n, 0);
    cr_assert_eq(r->bcat.n, 0);
    cr_assert_eq(r->badv.n, 1);
    cr_assert_eq(r->test, 0);
    cr_assert_eq(r->cattax, 1);
    cr_assert_eq(r->wseat.n, 0);
}

Test(ortb, unknown_fields_and_enum_values_are_tolerated)
{
    const struct ortb_req *r =
        parse_ok("{\"id\":\"a\",\"future\":{\"x\":[1,2,{\"y\":null}]},\"imp\":[{\"id\":\"1\",\"rwdd\":1,\"banner\":"
                 "{\"format\":[{\"w\":300,\"h\":250,\"ext\":{}},{\"wratio\":16,\"hratio\":9},{\"w\":0,\"h\":5},{\"w\":"
                 "70000,\"h\":1}]}}],"
                 "\"device\":{\"devicetype\":99,\"geo\":{\"country\":\"XYZ\",\"region\":\"TX\",\"type\":42}},\"at\":7,"
                 "\"cattax\":500}");
    struct cidx_query q;

    cr_assert_eq(r->imps[0].nformats, 1);
    cr_assert_eq(r->device.devicetype, 99);
    cr_assert_eq(r->at, 7);
    cr_assert_eq(ortb_imp_query(r, 0, 1, &q), 0);
    cr_assert_null(q.device.ptr);
    assert_str(q.country, "XYZ");
    cr_assert_eq(q.region.len, 0, "no alpha-2 for XYZ: no region code");
    cr_assert_eq(ortb_cattax_to_cidx(r->cattax), CIDX_TAX_NONE);
}

/* ---- the 400 cases ---- */

Test(ortb, malformed_requests_are_refused_with_a_pointer)
{
    BAD("", ORTB_F_NOT_JSON, "");
    BAD("{\"id\":\"a\",", ORTB_F_NOT_JSON, "");
    BAD("{\"id\":\"a\",\"imp\":[{\"id\":\"1\"}]} x", ORTB_F_NOT_JSON, "");
    BAD("{\"id\":\"\xff\",\"imp\":[{\"id\":\"1\"}]}", ORTB_F_NOT_JSON, "/id");
    BAD("{\"id\":\"a\",\"imp\":[{\"id\":\"1\",\"tagid\":\"\xc3\x28\"}]}", ORTB_F_NOT_JSON, "/imp/0/tagid");
    BAD("[{\"id\":\"a\"}]", ORTB_F_NOT_OBJECT, "");
    BAD("\"id\"", ORTB_F_NOT_OBJECT, "");
    BAD("{\"imp\":[{\"id\":\"1\"}]}", ORTB_F_ID_MISSING, "/id");
    BAD("{\"id\":12,\"imp\":[{\"id\":\"1\"}]}", ORTB_F_ID_TYPE, "/id");
    BAD("{\"id\":\"\",\"imp\":[{\"id\":\"1\"}]}", ORTB_F_ID_EMPTY, "/id");
    BAD("{\"id\":\"a\"}", ORTB_F_IMP_MISSING, "/imp");
    BAD("{\"id\":\"a\",\"imp\":{\"id\":\"1\"}}", ORTB_F_IMP_TYPE, "/imp");
    BAD("{\"id\":\"a\",\"imp\":[]}", ORTB_F_IMP_EMPTY, "/imp");
    BAD("{\"id\":\"a\",\"imp\":[{\"id\":\"1\"},7]}", ORTB_F_IMP_NOT_OBJECT, "/imp/1");
    BAD("{\"id\":\"a\",\"imp\":[{\"banner\":{}}]}", ORTB_F_IMP_ID_MISSING, "/imp/0/id");
    BAD("{\"id\":\"a\",\"imp\":[{\"id\":1}]}", ORTB_F_IMP_ID_TYPE, "/imp/0/id");
    BAD("{\"id\":\"a\",\"imp\":[{\"id\":\"\"}]}", ORTB_F_IMP_ID_EMPTY, "/imp/0/id");
    BAD("{\"id\":\"a\",\"imp\":[{\"id\":\"1\"},{\"id\":\"2\"},{\"id\":\"1\"}]}", ORTB_F_IMP_ID_DUPLICATE, "/imp/2/id");
}

Test(ortb, fault_names_are_stable)
{
    cr_assert_str_eq(ortb_fault_name(ORTB_F_IMP_ID_DUPLICATE), "imp_id_duplicate");
    cr_assert_str_eq(ortb_fault_name(ORTB_F_NOT_JSON), "invalid_body");
    cr_assert_str_eq(ortb_fault_name((enum ortb_fault)999), "unknown");
    cr_assert_str_eq(ortb_rule_name(ORTB_RULE_FLOOR), "price_below_floor");
    cr_assert_str_eq(ortb_rule_name((enum ortb_rule)999), "unknown");
}

/* ---- limits ---- */

/* A request whose one imp carries @p imp_members, and @p top_members at the top. */
static char *build(const char *top_members, const char *imp_members)
{
    size_t n = strlen(top_members) + strlen(imp_members) + 64;
    char *s = malloc(n);

    cr_assert_not_null(s);
    snprintf(s, n, "{\"id\":\"a\",\"imp\":[{\"id\":\"1\"%s]%s}", imp_members, top_members);
    return s;
}

/* A JSON array of @p n strings made by @p fmt with the index. */
static char *str_array(uint32_t n, const char *fmt)
{
    size_t cap = (size_t)n * 48 + 8, len = 1;
    char *s = malloc(cap);

    cr_assert_not_null(s);
    s[0] = '[';
    for (uint32_t i = 0; i < n; i++) {
        len += (size_t)snprintf(s + len, cap - len, "%s\"", i > 0 ? "," : "");
        len += (size_t)snprintf(s + len, cap - len, fmt, i);
        len += (size_t)snprintf(s + len, cap - len, "\"");
    }
    snprintf(s + len, cap - len, "]");
    return s;
}

Test(ortb, limit_imps)
{
    char body[16384];
    size_t len;

    for (int total = ORTB_MAX_IMPS; total <= ORTB_MAX_IMPS + 1; total++) {
        len = (size_t)snprintf(body, sizeof(body), "{\"id\":\"a\",\"imp\":[");
        for (int i = 0; i < total; i++)
            len += (size_t)snprintf(body + len, sizeof(body) - len, "%s{\"id\":\"i%d\"}", i ? "," : "", i);
        len += (size_t)snprintf(body + len, sizeof(body) - len, "]}");
        if (total == ORTB_MAX_IMPS)
            cr_assert_eq(parse_ok(body)->nimps, ORTB_MAX_IMPS);
        else
            parse_bad(body, len, ORTB_F_IMP_TOO_MANY, "/imp");
    }
}

Test(ortb, limit_ids)
{
    char id[ORTB_ID_MAX + 2], body[1024];
    size_t len;

    memset(id, 'x', sizeof(id));
    id[ORTB_ID_MAX] = '\0';
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"imp\":[{\"id\":\"%s\"}]}", id, id);
    cr_assert_eq(parse_ok(body)->id.len, ORTB_ID_MAX);
    id[ORTB_ID_MAX] = 'x';
    id[ORTB_ID_MAX + 1] = '\0';
    len = (size_t)snprintf(body, sizeof(body), "{\"id\":\"%s\",\"imp\":[{\"id\":\"1\"}]}", id);
    parse_bad(body, len, ORTB_F_ID_TOO_LONG, "/id");
    len = (size_t)snprintf(body, sizeof(body), "{\"id\":\"a\",\"imp\":[{\"id\":\"1\"},{\"id\":\"%s\"}]}", id);
    parse_bad(body, len, ORTB_F_IMP_ID_TOO_LONG, "/imp/1/id");
    /* A deal id too long is skipped, not refused. */
    len = (size_t)snprintf(
        body, sizeof(body),
        "{\"id\":\"a\",\"imp\":[{\"id\":\"1\",\"pmp\":{\"deals\":[{\"id\":\"%s\"},{\"id\":\"ok\"}]}}]}", id);
    cr_assert_eq(parse_ok(body)->imps[0].ndeals, 1);
}

Test(ortb, limit_strings)
{
    size_t n = ORTB_STR_MAX + 1;
    char *big = malloc(n + 1), *body = malloc(2 * n + 256);
    const struct ortb_req *r;

    memset(big, 'u', n);
    big[n] = '\0';
    snprintf(body, 2 * n + 256, "{\"id\":\"a\",\"imp\":[{\"id\":\"1\"}],\"device\":{\"ua\":\"%s\",\"ip\":\"%.*s\"}}",
             big, ORTB_STR_MAX, big);
    r = parse_ok(body);
    cr_assert_eq(r->device.ua.len, 0, "a string over ORTB_STR_MAX is read as absent");
    cr_assert_eq(r->device.ip.len, ORTB_STR_MAX);
    free(big);
    free(body);
}

Test(ortb, limit_depth)
{
    char body[512];
    size_t len;
    int depth;

    /* The root is depth 1, imp 2, imp[0] 3, ext 4: nest ORTB_MAX_DEPTH - 4 more arrays, then one too many. */
    for (depth = ORTB_MAX_DEPTH - 4; depth <= ORTB_MAX_DEPTH - 3; depth++) {
        len = (size_t)snprintf(body, sizeof(body), "{\"id\":\"a\",\"imp\":[{\"id\":\"1\",\"ext\":{\"x\":");
        for (int i = 0; i < depth; i++)
            body[len++] = '[';
        for (int i = 0; i < depth; i++)
            body[len++] = ']';
        len += (size_t)snprintf(body + len, sizeof(body) - len, "}}]}");
        if (depth == ORTB_MAX_DEPTH - 4)
            parse_ok(body);
        else
            parse_bad(body, len, ORTB_F_NOT_JSON, "/imp/0/ext/x/0/0/0/0/0/0/0/0/0/0/0/0");
    }
}

Test(ortb, limit_lists)
{
    char *bcat = str_array(ORTB_MAX_BLOCKS + 1, "IAB%u"), *cur = str_array(ORTB_MAX_CURS + 4, "C%02u");
    char *cats = str_array(ORTB_MAX_CATS + 6, "IAB%u"), *seats = str_array(ORTB_MAX_SEATS + 1, "s%u");
    char *top = malloc(32768), *imp = malloc(16384), *body;
    size_t len = 0;
    const struct ortb_req *r;
    struct cidx_query q;

    snprintf(top, 32768, ",\"bcat\":%s,\"cur\":%s,\"site\":{\"cat\":%s},\"wseat\":%s", bcat, cur, cats, seats);
    len = (size_t)snprintf(imp, 16384, ",\"banner\":{\"format\":[");
    for (int i = 0; i < ORTB_MAX_FORMATS + 4; i++)
        len += (size_t)snprintf(imp + len, 16384 - len, "%s{\"w\":%d,\"h\":50}", i ? "," : "", 100 + i);
    len += (size_t)snprintf(imp + len, 16384 - len, "]},\"pmp\":{\"deals\":[");
    for (int i = 0; i < ORTB_MAX_DEALS + 4; i++)
        len += (size_t)snprintf(imp + len, 16384 - len, "%s{\"id\":\"d%d\"}", i ? "," : "", i);
    snprintf(imp + len, 16384 - len, "]}}");
    body = build(top, imp);
    r = parse_ok(body);

    cr_assert_eq(r->bcat.n, ORTB_MAX_BLOCKS);
    cr_assert(r->bcat.truncated);
    cr_assert(r->blocks_truncated);
    cr_assert_eq(r->cur.n, ORTB_MAX_CURS);
    cr_assert_eq(r->wseat.n, ORTB_MAX_SEATS);
    cr_assert_eq(r->site.cat.n, ORTB_MAX_CATS);
    cr_assert(r->site.cat.truncated);
    cr_assert_eq(r->imps[0].nformats, ORTB_MAX_FORMATS);
    cr_assert_eq(r->imps[0].formats[ORTB_MAX_FORMATS - 1].w, 100 + ORTB_MAX_FORMATS - 1);
    cr_assert_eq(r->imps[0].ndeals, ORTB_MAX_DEALS);
    cr_assert_eq(ortb_imp_query(r, 0, 1, &q), 0);
    cr_assert_gt(q.ncategories, CIDX_Q_MAX_CATEGORIES, "a cut list reads as too long to cidx");
    cr_assert_eq(q.nbanner_sizes, ORTB_MAX_FORMATS);
    cr_assert_eq(q.ndeals, ORTB_MAX_DEALS);
    free(bcat);
    free(cur);
    free(cats);
    free(seats);
    free(top);
    free(imp);
    free(body);
}

Test(ortb, limit_user_lists)
{
    char top[16384];
    size_t len = 0;
    const struct ortb_req *r;

    len += (size_t)snprintf(top + len, sizeof(top) - len, ",\"user\":{\"eids\":[");
    for (int i = 0; i < ORTB_MAX_EIDS + 3; i++)
        len += (size_t)snprintf(top + len, sizeof(top) - len,
                                "%s{\"source\":\"s%d\",\"uids\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"},"
                                "{\"id\":\"d\"},{\"id\":\"e\"}]}",
                                i ? "," : "", i);
    len += (size_t)snprintf(top + len, sizeof(top) - len, "],\"data\":[{\"segment\":[");
    for (int i = 0; i < ORTB_MAX_SEGMENTS + 3; i++)
        len += (size_t)snprintf(top + len, sizeof(top) - len, "%s{\"id\":\"g%d\"}", i ? "," : "", i);
    len += (size_t)snprintf(top + len, sizeof(top) - len, "]}]},\"source\":{\"schain\":{\"nodes\":[");
    for (int i = 0; i < ORTB_MAX_SCHAIN_NODES + 1; i++)
        len += (size_t)snprintf(top + len, sizeof(top) - len, "%s{\"asi\":\"a%d\",\"sid\":\"1\"}", i ? "," : "", i);
    snprintf(top + len, sizeof(top) - len, "]}}");
    char *body = build(top, "}");
    r = parse_ok(body);
    cr_assert_eq(r->user.neids, ORTB_MAX_EIDS);
    cr_assert_eq(r->user.eids[0].nuids, ORTB_MAX_UIDS);
    cr_assert_eq(r->user.segments.n, ORTB_MAX_SEGMENTS);
    cr_assert(r->user.segments.truncated);
    cr_assert_eq(r->source.schain.nnodes, ORTB_MAX_SCHAIN_NODES);
    cr_assert(r->source.schain.truncated);
    free(body);
}

/* ---- the cidx query ---- */

Test(ortb, query_maps_every_dimension)
{
    const struct ortb_req *r = parse_ok(
        "{\"id\":\"a\",\"imp\":[{\"id\":\"1\",\"banner\":{\"w\":728,\"h\":90},\"native\":{\"request\":\"{}\"},"
        "\"video\":{\"w\":640,\"h\":360,\"mimes\":[\"video/mp4\"],\"protocols\":[2,3,7]},"
        "\"pmp\":{\"private_auction\":1,\"deals\":[{\"id\":\"D1\",\"bidfloor\":2,\"bidfloorcur\":\"EUR\",\"at\":3}]}},"
        "{\"id\":\"2\",\"audio\":{\"mimes\":[\"audio/mp4\"]}}],"
        "\"site\":{\"page\":\"https://user@www.Example.com:8443/path?q\",\"cat\":[\"596\"],\"sectioncat\":[\"597\"],"
        "\"cattax\":7},\"app\":{\"bundle\":\"com.example.app\",\"domain\":\"app.example\"},"
        "\"device\":{\"devicetype\":5,\"os\":\"iOS\",\"osv\":\"17.1\",\"language\":\"en\",\"langb\":\"en-GB\","
        "\"geo\":{\"country\":\"usa\",\"region\":\"TX\",\"city\":\"Austin\",\"lat\":30.2,\"lon\":-97.7,\"utcoffset\":-"
        "360}},"
        "\"user\":{\"data\":[{\"segment\":[{\"id\":\"s1\"},{\"id\":\"s2\"}]},{\"segment\":[{\"id\":\"s3\"}]}]}}");
    struct cidx_query q;

    cr_assert_eq(ortb_imp_query(r, 0, 1767225600, &q), 0);
    assert_str(q.country, "US");
    assert_str(r->device.geo.country, "usa");
    assert_str(q.region, "US-TX");
    assert_str(q.device, "tablet");
    assert_str(q.os, "iOS 17.1");
    assert_str(q.language, "en-GB");
    assert_str(q.domain, "www.Example.com");
    assert_str(q.bundle, "com.example.app");
    cr_assert_eq(q.cattax, CIDX_TAX_CONTENT_3_0);
    cr_assert_eq(q.ncategories, 2);
    assert_str(q.categories[1], "597");
    cr_assert_eq(q.nsegments, 3);
    assert_str(q.segments[2], "s3");
    cr_assert_eq(q.formats, CIDX_FMT_BANNER | CIDX_FMT_NATIVE | CIDX_FMT_VIDEO);
    cr_assert_eq(q.nbanner_sizes, 1);
    cr_assert_eq(q.banner_sizes[0].w, 728);
    cr_assert_eq(q.video_size.w, 640);
    cr_assert_eq(q.video_size.h, 360);
    cr_assert_eq(q.ndeals, 1);
    assert_str(q.deals[0], "D1");
    cr_assert(q.private_auction);
    cr_assert_eq(q.now, 1767225600);
    cr_assert_eq(r->imps[0].deals[0].at, 3);
    cr_assert_eq(r->imps[0].deals[0].bidfloor_micros, 2000000);
    assert_str(r->imps[0].deals[0].bidfloorcur, "EUR");
    cr_assert_eq(r->imps[0].video_protocols.n, 3);
    cr_assert(r->device.geo.has_latlon);
    cr_assert(r->device.geo.has_utcoffset);
    cr_assert_eq(r->device.geo.utcoffset, -360);
    assert_str(r->device.geo.country2, "US");

    cr_assert_eq(ortb_imp_query(r, 1, 1, &q), 0);
    cr_assert_eq(q.formats, 0, "audio has no cidx format");
    cr_assert(r->imps[1].has_audio);
    cr_assert_eq(ortb_imp_query(r, 2, 1, &q), ADS_EINVAL);
    cr_assert_eq(ortb_imp_find(r, (struct cidx_str){"2", 1}), 1);
    cr_assert_eq(ortb_imp_find(r, (struct cidx_str){"3", 1}), -1);
}

Test(ortb, query_tables)
{
    static const struct {
        int64_t v;
        const char *name;
    } dt[] = {{1, "phone"}, {2, "desktop"}, {3, "ctv"},   {4, "phone"}, {5, "tablet"},
              {6, "other"}, {7, "ctv"},     {8, "other"}, {0, NULL},    {9, NULL}};
    for (size_t i = 0; i < sizeof(dt) / sizeof(dt[0]); i++) {
        const char *got = ortb_devicetype_name(dt[i].v);
        if (dt[i].name == NULL)
            cr_assert_null(got);
        else
            cr_assert_str_eq(got, dt[i].name);
    }
    cr_assert_eq(ortb_cattax_to_cidx(1), CIDX_TAX_CONTENT_1_0);
    cr_assert_eq(ortb_cattax_to_cidx(2), CIDX_TAX_CONTENT_2_0);
    cr_assert_eq(ortb_cattax_to_cidx(3), CIDX_TAX_NONE);
    cr_assert_eq(ortb_cattax_to_cidx(4), CIDX_TAX_NONE);
    cr_assert_eq(ortb_cattax_to_cidx(5), CIDX_TAX_CONTENT_2_1);
    cr_assert_eq(ortb_cattax_to_cidx(6), CIDX_TAX_CONTENT_2_2);
    cr_assert_eq(ortb_cattax_to_cidx(7), CIDX_TAX_CONTENT_3_0);
    cr_assert_eq(ortb_cattax_to_cidx(8), CIDX_TAX_NONE);
    cr_assert_eq(ortb_cattax_to_cidx(9), CIDX_TAX_CONTENT_3_1);
    cr_assert_eq(ortb_cattax_to_cidx(500), CIDX_TAX_NONE);
    cr_assert_str_eq(ortb_country_alpha2("USA", 3), "US");
    cr_assert_str_eq(ortb_country_alpha2("gbr", 3), "GB");
    cr_assert_str_eq(ortb_country_alpha2("DEU", 3), "DE");
    cr_assert_str_eq(ortb_country_alpha2("ZWE", 3), "ZW");
    cr_assert_str_eq(ortb_country_alpha2("ABW", 3), "AW");
    cr_assert_str_eq(ortb_country_alpha2("fr", 2), "FR");
    cr_assert_null(ortb_country_alpha2("XYZ", 3));
    cr_assert_null(ortb_country_alpha2("QQ", 2));
    cr_assert_null(ortb_country_alpha2("US1", 3));
    cr_assert_null(ortb_country_alpha2("USAA", 4));
}

/* ---- the response ---- */

static cJSON *write_json(const struct ortb_resp *resp, char *mem, size_t cap)
{
    struct buf b;
    cJSON *j;

    buf_init(&b, mem, cap);
    cr_assert_eq(ortb_resp_write(resp, DOC_JSON, &b), 0);
    j = cJSON_Parse(b.base);
    cr_assert_not_null(j, "not JSON: %s", b.base);
    return j;
}

#define SI(lit)                                                                                                        \
    {                                                                                                                  \
        (lit), sizeof(lit) - 1                                                                                         \
    }
#define S(lit) ((struct cidx_str)SI(lit))

Test(ortb, response_round_trips_through_cjson)
{
    static const struct cidx_str adomain[] = {SI("brand.example"), SI("shop.example")};
    static const struct cidx_str cat[] = {SI("IAB2")};
    struct ortb_bid bid = {
        .id = S("b1"),
        .impid = S("imp\"1"),
        .price_micros = 1250000,
        .adm = S("<div class=\"ad\">Caf\xc3\xa9\n\x01</div>"),
        .crid = S("cr-9"),
        .cid = S("camp-3"),
        .dealid = S("D1"),
        .adomain = adomain,
        .nadomain = 2,
        .cat = cat,
        .ncat = 1,
        .cattax = 1,
        .w = 300,
        .h = 250,
        .mtype = 1,
        .nurl = S("https://a.example/win?p=${AUCTION_PRICE}&id=${AUCTION_ID}"),
        .burl = S("https://a.example/bill?p=${AUCTION_PRICE}"),
        .lurl = S("https://a.example/loss?r=${AUCTION_LOSS}"),
    };
    struct ortb_bid bid2 = {.id = S("b2"), .impid = S("2"), .price_micros = 1};
    struct ortb_bid bids[2] = {bid, bid2};
    struct ortb_seatbid sb = {.seat = S("adsmith"), .bids = bids, .nbids = 2};
    struct ortb_resp resp = {.id = S("req-1"), .bidid = S("r1"), .cur = S("EUR"), .seatbids = &sb, .nseatbids = 1};
    static char mem[8192];
    cJSON *j = write_json(&resp, mem, sizeof(mem)), *b, *b2;

    cr_assert_str_eq(cJSON_GetObjectItem(j, "id")->valuestring, "req-1");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "bidid")->valuestring, "r1");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "cur")->valuestring, "EUR");
    cr_assert_null(cJSON_GetObjectItem(j, "nbr"));
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "seatbid"), 0), "seat")->valuestring,
                     "adsmith");
    b = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "seatbid"), 0), "bid"), 0);
    b2 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "seatbid"), 0), "bid"), 1);
    cr_assert_str_eq(cJSON_GetObjectItem(b, "id")->valuestring, "b1");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "impid")->valuestring, "imp\"1");
    cr_assert_eq(cJSON_GetObjectItem(b, "price")->valuedouble, 1.25);
    cr_assert(strstr(mem, "\"price\":1.25") != NULL, "a decimal price: %s", mem);
    cr_assert(strstr(mem, "\"price\":1e-06") != NULL, "%s", mem);
    cr_assert_str_eq(cJSON_GetObjectItem(b, "adm")->valuestring, "<div class=\"ad\">Caf\xc3\xa9\n\x01</div>");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "crid")->valuestring, "cr-9");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "cid")->valuestring, "camp-3");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "dealid")->valuestring, "D1");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(b, "adomain")), 2);
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "adomain"), 1)->valuestring, "shop.example");
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "cat"), 0)->valuestring, "IAB2");
    cr_assert_eq(cJSON_GetObjectItem(b, "cattax")->valueint, 1);
    cr_assert_eq(cJSON_GetObjectItem(b, "w")->valueint, 300);
    cr_assert_eq(cJSON_GetObjectItem(b, "h")->valueint, 250);
    cr_assert_eq(cJSON_GetObjectItem(b, "mtype")->valueint, 1);
    cr_assert_str_eq(cJSON_GetObjectItem(b, "nurl")->valuestring,
                     "https://a.example/win?p=${AUCTION_PRICE}&id=${AUCTION_ID}");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "burl")->valuestring, "https://a.example/bill?p=${AUCTION_PRICE}");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "lurl")->valuestring, "https://a.example/loss?r=${AUCTION_LOSS}");
    cr_assert_eq(cJSON_GetArraySize(b2), 3, "only id, impid and price when nothing else is set");
    cJSON_Delete(j);
}

Test(ortb, response_prices_are_exact_decimals)
{
    static const int64_t micros[] = {1, 10, 999999, 1000000, 1500000, 30000, 1230, 123456789, 4999999999999};
    /* docw's shortest round-trip form: exponent form below 0.0001, which is still an exact JSON number. */
    static const char *const text[] = {"",     "1e-05",   "0.999999",   "1.0",           "1.5",
                                       "0.03", "0.00123", "123.456789", "4999999.999999"};
    for (size_t i = 1; i < sizeof(micros) / sizeof(micros[0]); i++) {
        struct ortb_bid bid = {.id = S("b"), .impid = S("i"), .price_micros = micros[i]};
        struct ortb_seatbid sb = {.bids = &bid, .nbids = 1};
        struct ortb_resp resp = {.id = S("r"), .seatbids = &sb, .nseatbids = 1};
        char mem[512], want[64];
        struct buf b;

        buf_init(&b, mem, sizeof(mem));
        cr_assert_eq(ortb_resp_write(&resp, DOC_JSON, &b), 0);
        snprintf(want, sizeof(want), "\"price\":%s", text[i]);
        cr_assert(strstr(mem, want) != NULL, "%lld micros: %s", (long long)micros[i], mem);
    }
}

Test(ortb, response_nobid_msgpack_and_errors)
{
    char mem[256];
    struct buf b;
    cJSON *j;
    msgpack_zone zone;
    msgpack_object doc;
    struct ortb_bid bid = {.id = S("b"), .impid = S("i"), .price_micros = 5};
    struct ortb_seatbid sb = {.bids = &bid, .nbids = 1};
    struct ortb_resp resp = {.id = S("r"), .seatbids = &sb, .nseatbids = 1};

    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(ortb_resp_nobid(S("req-9"), ORTB_NBR_UNSUPPORTED_DEVICE, DOC_JSON, &b), 0);
    j = cJSON_Parse(mem);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "id")->valuestring, "req-9");
    cr_assert_eq(cJSON_GetObjectItem(j, "nbr")->valueint, 6);
    cr_assert_null(cJSON_GetObjectItem(j, "seatbid"));
    cJSON_Delete(j);
    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(ortb_resp_nobid(S("req-9"), -1, DOC_JSON, &b), 0);
    cr_assert_str_eq(mem, "{\"id\":\"req-9\"}");

    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(ortb_resp_write(&resp, DOC_MSGPACK, &b), 0);
    msgpack_zone_init(&zone, 1024);
    cr_assert_eq(doc_parse(DOC_MSGPACK, b.base, b.len, &zone, &doc, NULL), 0);
    cr_assert_eq(doc.type, MSGPACK_OBJECT_MAP);
    const msgpack_object *seatbid = doc_map_get(&doc, "seatbid");
    cr_assert_not_null(seatbid);
    cr_assert_eq(seatbid->type, MSGPACK_OBJECT_ARRAY);
    const msgpack_object *price =
        doc_map_get(&doc_map_get(&seatbid->via.array.ptr[0], "bid")->via.array.ptr[0], "price");
    cr_assert_eq(price->type, MSGPACK_OBJECT_FLOAT64);
    cr_assert_eq(price->via.f64, 0.000005);
    msgpack_zone_destroy(&zone);

    buf_init(&b, mem, 16);
    cr_assert_eq(ortb_resp_write(&resp, DOC_JSON, &b), -ENOBUFS);
    buf_init(&b, mem, sizeof(mem));
    bid.price_micros = 0;
    cr_assert_eq(ortb_resp_write(&resp, DOC_JSON, &b), ADS_EINVAL);
    bid.price_micros = 5;
    bid.impid = (struct cidx_str){NULL, 0};
    cr_assert_eq(ortb_resp_write(&resp, DOC_JSON, &b), ADS_EINVAL);
    bid.impid = S("i");
    bid.mtype = 5;
    cr_assert_eq(ortb_resp_write(&resp, DOC_JSON, &b), ADS_EINVAL);
    bid.mtype = 0;
    sb.nbids = 0;
    cr_assert_eq(ortb_resp_write(&resp, DOC_JSON, &b), ADS_EINVAL);
    resp.nseatbids = 0;
    resp.id = (struct cidx_str){NULL, 0};
    cr_assert_eq(ortb_resp_write(&resp, DOC_JSON, &b), ADS_EINVAL);
}

/* ---- the bid check ---- */

static const char check_req[] =
    "{\"id\":\"a\",\"cur\":[\"USD\",\"EUR\"],\"bcat\":[\"IAB25\",\"IAB7-39\"],\"badv\":[\"blocked.com\"],"
    "\"bapp\":[\"com.blocked\"],\"bseat\":[\"badseat\"],\"imp\":["
    "{\"id\":\"1\",\"bidfloor\":1.5,\"banner\":{\"format\":[{\"w\":300,\"h\":250},{\"w\":728,\"h\":90}]}},"
    "{\"id\":\"2\",\"bidfloor\":2,\"bidfloorcur\":\"GBP\",\"video\":{\"w\":640,\"h\":480}},"
    "{\"id\":\"3\",\"pmp\":{\"private_auction\":1,\"deals\":[{\"id\":\"D1\",\"bidfloor\":3,\"wseat\":[\"seatA\"]},"
    "{\"id\":\"D2\",\"bidfloor\":1}]},\"native\":{\"request\":\"{}\"}}]}";

static enum ortb_rule check(const struct ortb_req *r, const struct ortb_bid *bid, const char *cur, const char *seat)
{
    struct ortb_check_ctx ctx = {.fx = toybid_fx};
    struct ads_diag d;
    enum ortb_rule rule;

    if (cur != NULL)
        ctx.cur = (struct cidx_str){cur, strlen(cur)};
    if (seat != NULL)
        ctx.seat = (struct cidx_str){seat, strlen(seat)};
    memset(&d, 0, sizeof(d));
    rule = ortb_check_bid(r, bid, &ctx, &d);
    if (rule != ORTB_RULE_OK)
        cr_assert_gt(strlen(d.message), 5, "a message for %s", ortb_rule_name(rule));
    return rule;
}

Test(ortb, check_bid_rules)
{
    const struct ortb_req *r = parse_ok(check_req);
    static const struct cidx_str dom_ok[] = {SI("brand.com")}, dom_bad[] = {SI("ads.Blocked.COM.")},
                                 dom_near[] = {SI("notblocked.com")};
    static const struct cidx_str cat_bad[] = {SI("IAB25-3")}, cat_bad2[] = {SI("IAB7-39")}, cat_ok[] = {SI("IAB7-3")};
    struct ortb_bid b = {.id = S("b"), .impid = S("1"), .price_micros = 1500000, .w = 300, .h = 250, .mtype = 1};

    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_OK);
    b.id.len = 0;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_BID_ID);
    b.id = S("b");
    b.impid = S("9");
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_IMPID);
    b.impid = S("1");
    b.price_micros = 0;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_PRICE);
    b.price_micros = 1499999;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_FLOOR);
    b.price_micros = 1500000;
    cr_assert_eq(check(r, &b, "GBP", NULL), ORTB_RULE_CUR);
    /* 1.5 USD is 1.388889 EUR at the toy rate of 1.08 USD per EUR. */
    b.price_micros = 1388888;
    cr_assert_eq(check(r, &b, "EUR", NULL), ORTB_RULE_FLOOR);
    b.price_micros = 1388889;
    cr_assert_eq(check(r, &b, "EUR", NULL), ORTB_RULE_OK);
    b.price_micros = 1500000;
    cr_assert_eq(check(r, &b, NULL, "badseat"), ORTB_RULE_SEAT);
    b.w = 320;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_SIZE);
    b.mtype = 0;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_SIZE, "a banner-only imp: size checked without mtype");
    b.w = 728;
    b.h = 90;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_OK);
    b.mtype = 2;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_MTYPE);
    b.mtype = 1;
    b.adomain = dom_bad;
    b.nadomain = 1;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_BADV, "a subdomain, any case, a trailing dot");
    b.adomain = dom_near;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_OK, "notblocked.com is not a subdomain of blocked.com");
    b.adomain = dom_ok;
    b.cat = cat_bad;
    b.ncat = 1;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_BCAT, "IAB25 blocks its child IAB25-3");
    b.cat = cat_bad2;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_BCAT);
    b.cattax = 7;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_OK, "another taxonomy: not comparable");
    b.cattax = 0;
    b.cat = cat_ok;
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_OK, "IAB7-3 is not IAB7-39");
    b.bundle = S("com.blocked");
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_BAPP);
    b.bundle = S("com.fine");
    b.dealid = S("D1");
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_DEAL, "imp 1 has no deals");

    /* Imp 2: a floor of 2 GBP = 2.54 USD at the toy rate. */
    struct ortb_bid v = {.id = S("v"), .impid = S("2"), .price_micros = 2539999, .mtype = 2};
    cr_assert_eq(check(r, &v, NULL, NULL), ORTB_RULE_FLOOR);
    v.price_micros = 2540000;
    cr_assert_eq(check(r, &v, NULL, NULL), ORTB_RULE_OK);
    v.mtype = 0;
    v.w = 1;
    v.h = 1;
    cr_assert_eq(check(r, &v, NULL, NULL), ORTB_RULE_OK, "the size rule is for banners");
    struct ortb_check_ctx nofx = {.fx = NULL};
    cr_assert_eq(ortb_check_bid(r, &v, &nofx, NULL), ORTB_RULE_FLOOR_FX);

    /* Imp 3: private auction; D1 for seatA only. */
    struct ortb_bid n = {.id = S("n"), .impid = S("3"), .price_micros = 5000000, .mtype = 4};
    cr_assert_eq(check(r, &n, NULL, NULL), ORTB_RULE_DEAL, "a private auction needs a deal");
    n.dealid = S("D1");
    cr_assert_eq(check(r, &n, NULL, "seatB"), ORTB_RULE_DEAL, "D1 is for seatA");
    cr_assert_eq(check(r, &n, NULL, "seatA"), ORTB_RULE_OK);
    n.price_micros = 2999999;
    cr_assert_eq(check(r, &n, NULL, "seatA"), ORTB_RULE_FLOOR, "the deal's floor");
    n.dealid = S("D2");
    n.price_micros = 1000000;
    cr_assert_eq(check(r, &n, NULL, "seatB"), ORTB_RULE_OK);
    n.dealid = S("D3");
    cr_assert_eq(check(r, &n, NULL, NULL), ORTB_RULE_DEAL);
}

Test(ortb, check_bid_defaults_and_truncated_blocks)
{
    const struct ortb_req *r = parse_ok("{\"id\":\"a\",\"wseat\":[\"w1\"],\"imp\":[{\"id\":\"1\",\"audio\":{}}]}");
    struct ortb_bid b = {.id = S("b"), .impid = S("1"), .price_micros = 1, .mtype = 3};

    cr_assert_eq(check(r, &b, NULL, "w1"), ORTB_RULE_OK);
    cr_assert_eq(check(r, &b, "USD", "w1"), ORTB_RULE_OK);
    cr_assert_eq(check(r, &b, "EUR", "w1"), ORTB_RULE_CUR, "no cur: USD only");
    cr_assert_eq(check(r, &b, NULL, "w2"), ORTB_RULE_SEAT);
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_SEAT, "wseat given: a seat is needed");

    char *badv = str_array(ORTB_MAX_BLOCKS + 1, "d%u.example"), top[32768], *body;
    snprintf(top, sizeof(top), ",\"badv\":%s", badv);
    body = build(top, ",\"audio\":{}}");
    r = parse_ok(body);
    cr_assert_eq(check(r, &b, NULL, NULL), ORTB_RULE_BLOCKS_UNKNOWN);
    free(badv);
    free(body);
}

/* ---- conformance: every fixture gets a valid answer ---- */

static void answer_and_check(const struct ortb_req *r, const char *what)
{
    static struct toybid t;
    static char mem[1 << 16];
    struct buf b;
    uint32_t n = toybid_answer(r, &t);
    struct ads_diag d;
    cJSON *j;

    for (uint32_t i = 0; i < n; i++) {
        enum ortb_rule rule = ortb_check_bid(r, &t.bids[i], &t.check, &d);
        cr_assert_eq(rule, ORTB_RULE_OK, "%s: bid %u breaks %s: %s", what, i, ortb_rule_name(rule), d.message);
    }
    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(ortb_resp_write(&t.resp, DOC_JSON, &b), 0, "%s", what);
    j = cJSON_ParseWithLength(b.base, b.len);
    cr_assert_not_null(j, "%s: %s", what, mem);
    cJSON_Delete(j);
}

Test(ortb, every_fixture_gets_valid_bids)
{
    static char names[64][128];
    size_t n = fixture_names(names, 64), bids = 0;

    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *body = fixture(names[i], &len);
        const struct ortb_req *r;
        static struct toybid t;

        cr_assert_eq(ortb_parse(scr, DOC_JSON, body, len, &r, NULL, NULL), 0);
        answer_and_check(r, names[i]);
        bids += toybid_answer(r, &t);
        free(body);
    }
    cr_assert_geq(bids, 20, "the fixtures give real bids to check (%zu)", bids);
}

/* ---- a mutated corpus ---- */

static uint64_t rng_state = 0x5eed0006;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *const splices[] = {"null",
                                      "0",
                                      "-1",
                                      "1e308",
                                      "\"\"",
                                      "[]",
                                      "{}",
                                      "\"x\"",
                                      "true",
                                      "[null]",
                                      "{\"id\":\"1\"}",
                                      "\"IAB25\"",
                                      "99999999999999999999",
                                      "0.5"};

/* One mutation of @p src (len bytes) into @p out (cap bytes): flip, delete, duplicate or splice. */
static size_t mutate(const char *src, size_t len, char *out, size_t cap)
{
    size_t at = len > 0 ? rng() % len : 0, n;

    switch (rng() % 5) {
    case 0: /* flip a byte */
        memcpy(out, src, len);
        out[at] = (char)(rng() & 0xff);
        return len;
    case 1: /* delete a run */
        n = 1 + rng() % 8;
        if (at + n > len)
            n = len - at;
        memcpy(out, src, at);
        memcpy(out + at, src + at + n, len - at - n);
        return len - n;
    case 2: /* duplicate a run */
        n = 1 + rng() % 32;
        if (at + n > len)
            n = len - at;
        if (len + n > cap)
            return len;
        memcpy(out, src, at + n);
        memcpy(out + at + n, src + at, len - at);
        return len + n;
    default: { /* splice a value after a ':' */
        const char *v = splices[rng() % (sizeof(splices) / sizeof(splices[0]))];
        size_t vl = strlen(v), end;
        const char *colon = memchr(src + at, ':', len - at);
        if (colon == NULL || len + vl > cap)
            return (memcpy(out, src, len), len);
        at = (size_t)(colon - src) + 1;
        for (end = at; end < len && src[end] != ',' && src[end] != '}' && src[end] != ']'; end++)
            ;
        memcpy(out, src, at);
        memcpy(out + at, v, vl);
        memcpy(out + at + vl, src + end, len - end);
        return at + vl + len - end;
    }
    }
}

Test(ortb, mutated_requests_never_crash_nor_yield_invalid_bids, .timeout = 60)
{
    static char names[64][128];
    static char a[1 << 16], b2[1 << 16];
    size_t n = fixture_names(names, 64), parsed = 0, refused = 0;

    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *body = fixture(names[i], &len);

        for (int round = 0; round < 300; round++) {
            size_t l = len;
            const struct ortb_req *r;
            enum ortb_fault f;
            struct ads_diag d;
            int rc;

            memcpy(a, body, len);
            for (int k = 1 + (int)(rng() % 4); k > 0; k--) {
                l = mutate(a, l, b2, sizeof(b2));
                memcpy(a, b2, l);
            }
            rc = ortb_parse(scr, DOC_JSON, a, l, &r, &d, &f);
            if (rc == 0) {
                parsed++;
                for (uint32_t k = 0; k < r->nimps; k++) {
                    struct cidx_query q;
                    cr_assert_eq(ortb_imp_query(r, k, 1, &q), 0);
                }
                answer_and_check(r, names[i]);
            } else {
                cr_assert_eq(rc, ADS_EBAD_REQUEST);
                cr_assert_neq(f, ORTB_F_NONE);
                refused++;
            }
        }
        free(body);
    }
    cr_assert_gt(parsed, 1000, "parsed %zu, refused %zu", parsed, refused);
    cr_assert_gt(refused, 1000, "parsed %zu, refused %zu", parsed, refused);
}

/* ---- the query against a real campaign index ---- */

/* The game example campaign with id @p id, flight from 0 in UTC, and only the @p targeting given (JSON). */
static struct cidx_camp *campaign(const char *id, const char *targeting)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[512], *text, *out;
    size_t len;
    cJSON *doc, *t;
    msgpack_zone zone;
    msgpack_object o;
    struct ads_diag d;
    struct cidx_camp *c = NULL;

    snprintf(path, sizeof(path), "%s/schemas/examples/campaign-game-ip.json", root);
    text = read_file(path, &len);
    doc = cJSON_Parse(text);
    cr_assert_not_null(doc);
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "id", cJSON_CreateString(id));
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "flight", cJSON_Parse("{\"start\":0,\"time_zone\":\"UTC\"}"));
    t = cJSON_Parse(targeting);
    cr_assert_not_null(t, "bad test JSON %s", targeting);
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "targeting", t);
    out = cJSON_PrintUnformatted(doc);
    msgpack_zone_init(&zone, 4096);
    cr_assert_eq(doc_parse(DOC_JSON, out, strlen(out), &zone, &o, &d), 0);
    cr_assert_eq(cidx_camp_from_doc(&o, &c, &d), 0, "%s: %s at %s", id, d.message, d.pointer);
    msgpack_zone_destroy(&zone);
    cJSON_Delete(doc);
    free(out);
    free(text);
    return c;
}

Test(ortb, query_selects_campaigns_in_a_real_index)
{
    static const struct {
        const char *id, *targeting;
        bool want;
    } cs[] = {
        {"any", "{}", true},
        {"us", "{\"countries\":[\"US\"]}", true},
        {"de", "{\"countries\":[\"DE\"]}", false},
        {"tx", "{\"regions\":[\"US-TX\"]}", true},
        {"ca", "{\"regions\":[\"US-CA\"]}", false},
        {"tablet", "{\"devices\":[\"tablet\"]}", true},
        {"phone", "{\"devices\":[\"phone\"]}", false},
        {"ios17", "{\"os\":[\"iOS 17\"]}", true},
        {"android", "{\"os\":[\"Android\"]}", false},
        {"en", "{\"languages\":[\"en\"]}", true},
        {"fr", "{\"languages\":[\"fr\"]}", false},
        {"cat", "{\"categories\":{\"taxonomy\":\"iab_content_3.0\",\"include\":[\"596\"]}}", true},
        {"catx", "{\"categories\":{\"taxonomy\":\"iab_content_3.0\",\"exclude\":[\"596\"]}}", false},
        {"dom", "{\"domains\":{\"allow\":[\"example.com\"]}}", true},
        {"domx", "{\"domains\":{\"block\":[\"example.com\"]}}", false},
        {"seg", "{\"segments\":{\"include\":[\"s2\"]}}", true},
        {"deal", "{\"deals\":[\"D1\"],\"deals_only\":true}", true},
        {"deal2", "{\"deals\":[\"D2\"],\"deals_only\":true}", false},
        {"banner", "{\"formats\":[\"banner\"],\"sizes\":[{\"w\":300,\"h\":250}]}", true},
        {"banner2", "{\"formats\":[\"banner\"],\"sizes\":[{\"w\":320,\"h\":50}]}", false},
    };
    const size_t n = sizeof(cs) / sizeof(cs[0]);
    const struct ortb_req *r = parse_ok(
        "{\"id\":\"a\",\"imp\":[{\"id\":\"1\",\"native\":{\"request\":\"{}\"},\"banner\":{\"w\":300,\"h\":250},"
        "\"pmp\":{\"private_auction\":0,\"deals\":[{\"id\":\"D1\"}]}},"
        "{\"id\":\"2\",\"native\":{\"request\":\"{}\"},\"pmp\":{\"private_auction\":1,\"deals\":[{\"id\":\"D1\"}]}}],"
        "\"site\":{\"page\":\"https://www.example.com/a\",\"cat\":[\"596\"],\"cattax\":7},"
        "\"device\":{\"devicetype\":5,\"os\":\"iOS\",\"osv\":\"17.1\",\"language\":\"en\","
        "\"geo\":{\"country\":\"USA\",\"region\":\"TX\"}},"
        "\"user\":{\"data\":[{\"segment\":[{\"id\":\"s1\"},{\"id\":\"s2\"}]}]}}");
    struct cidx_camp *camps[32];
    struct cidx_builder *b;
    struct cidx *ix;
    struct cidx_query q;
    static uint64_t bits[CIDX_WORDS_MAX];
    size_t i;

    cr_assert_eq(cidx_builder_new(&b), 0);
    for (i = 0; i < n; i++) {
        camps[i] = campaign(cs[i].id, cs[i].targeting);
        cr_assert_eq(cidx_builder_add(b, camps[i]), 0);
    }
    cr_assert_eq(cidx_build(b, 1767225600, &ix), 0);
    cidx_builder_free(b);
    cr_assert_eq(cidx_count(ix), n);
    cr_assert_eq(ortb_imp_query(r, 0, 1767225600, &q), 0);
    cidx_eligible(ix, &q, bits);
    for (i = 0; i < n; i++) {
        const struct cidx_camp *c = cidx_camp(ix, (uint32_t)i);
        bool got = (bits[i / 64] >> (i % 64)) & 1;
        bool want = false;
        for (size_t k = 0; k < n; k++)
            if (strcmp(cs[k].id, c->id) == 0)
                want = cs[k].want;
        cr_assert_eq(got, want, "campaign %s: eligible %d, wanted %d", c->id, got, want);
    }
    /* Imp 2 is a private auction: only the campaign with its deal may bid. */
    cr_assert_eq(ortb_imp_query(r, 1, 1767225600, &q), 0);
    cr_assert_eq(cidx_eligible(ix, &q, bits), 1);
    for (i = 0; i < n; i++)
        if ((bits[i / 64] >> (i % 64)) & 1)
            cr_assert_str_eq(cidx_camp(ix, (uint32_t)i)->id, "deal");
    cidx_free(ix);
}

/* The placement position and connection type reach the ranking model (as in POST /v1/score). */
Test(ortb, position_and_connection_type)
{
    const struct ortb_req *r =
        parse_ok("{\"id\":\"a\",\"imp\":[{\"id\":\"1\",\"banner\":{\"w\":300,\"h\":250,\"pos\":3}},"
                 "{\"id\":\"2\",\"video\":{\"w\":640,\"h\":360,\"pos\":7}},"
                 "{\"id\":\"3\",\"banner\":{\"w\":300,\"h\":250,\"pos\":-2}},{\"id\":\"4\","
                 "\"native\":{}}],\"device\":{\"connectiontype\":6}}");

    cr_assert_eq(r->imps[0].pos, 3);
    cr_assert_eq(r->imps[1].pos, 7, "video.pos when there is no banner");
    cr_assert_eq(r->imps[2].pos, 0, "a negative position is no position");
    cr_assert_eq(r->imps[3].pos, 0);
    cr_assert_eq(r->device.connectiontype, 6);
    r = parse_ok(
        "{\"id\":\"a\",\"imp\":[{\"id\":\"1\",\"banner\":{\"pos\":\"top\"}}],\"device\":{\"connectiontype\":null}}");
    cr_assert_eq(r->imps[0].pos, 0, "a position of the wrong type is ignored");
    cr_assert_eq(r->device.connectiontype, 0);
}
