#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "adsmith/profile.h"

static msgpack_zone zone;

static void setup(void)
{
    msgpack_zone_init(&zone, 4096);
}

static void teardown(void)
{
    msgpack_zone_destroy(&zone);
}

TestSuite(profile, .init = setup, .fini = teardown);

static msgpack_object parse(const char *json)
{
    msgpack_object o;
    struct ads_diag d;
    cr_assert_eq(doc_parse(DOC_JSON, json, strlen(json), &zone, &o, &d), 0, "fixture JSON: %s", d.message);
    return o;
}

static int put(const char *json, struct profile *p, struct ads_diag *d)
{
    msgpack_object o = parse(json);
    return prof_from_doc(&o, "u1", 2, p, d);
}

static const char full[] =
    "{\"id\":\"u1\",\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"b-9\"}],"
    "\"attributes\":{\"country\":\"USA\",\"region\":\"CA\",\"city\":\"San Jose\",\"language\":\"en\","
    "\"device\":\"phone\",\"os\":\"iOS\",\"age_band\":\"25-34\",\"custom\":{\"plan\":\"pro\",\"tier\":\"2\"}},"
    "\"segments\":[{\"id\":\"s1\",\"weight\":0.5,\"last_seen\":1763800000}],"
    "\"interests\":[{\"id\":\"sports\",\"weight\":2.25,\"updated_at\":1763800000}],"
    "\"frequency\":[{\"campaign\":\"c1\",\"hour_start\":1763798400,\"hour\":2,\"day_start\":1763769600,\"day\":3,"
    "\"lifetime\":9,\"clicks\":1,\"conversions\":0,\"last_at\":1763800000}],"
    "\"recency\":{\"last_seen\":1763800000,\"last_impression\":1763800000,\"last_click\":5,\"last_conversion\":0},"
    "\"consent\":{\"gdpr_applies\":true,\"personalization\":false}}";

Test(profile, encode_decode_round_trip)
{
    static struct profile p, q;
    struct ads_diag d;
    char mem[PROF_ENCODED_MAX + 1];
    struct buf b;

    cr_assert_eq(put(full, &p, &d), 0, "%s at %s", d.message, d.pointer);
    p.created_at = 11;
    p.updated_at = 12;
    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(prof_encode(&p, &b), 0);
    cr_assert_eq(prof_decode(b.base, b.len, &q), 0);
    cr_assert_str_eq(q.id, "u1");
    cr_assert_eq(q.created_at, 11);
    cr_assert_eq(q.updated_at, 12);
    cr_assert_eq(q.naliases, 1);
    cr_assert_str_eq(q.aliases[0].source, "buyeruid");
    cr_assert_str_eq(q.attr[PROF_COUNTRY], "USA");
    cr_assert_str_eq(q.attr[PROF_CITY], "San Jose");
    cr_assert_eq(q.age_band, PROF_AGE_25_34);
    cr_assert_eq(q.ncustom, 2);
    cr_assert_str_eq(q.custom[1].val, "2");
    cr_assert_eq(q.segments[0].weight, 0.5);
    cr_assert_eq(q.interests[0].weight, 2.25);
    cr_assert_eq(q.freq[0].lifetime, 9);
    cr_assert_eq(q.freq[0].day_start, 1763769600);
    cr_assert_eq(q.recency[PROF_LAST_CLICK], 5);
    cr_assert_eq(q.consent_known, PROF_CONSENT_GDPR_APPLIES | PROF_CONSENT_PERSONALIZATION);
    cr_assert_eq(q.consent, PROF_CONSENT_GDPR_APPLIES);
}

Test(profile, view_reads_in_place)
{
    static struct profile p;
    struct ads_diag d;
    char mem[PROF_ENCODED_MAX + 1];
    struct buf b;
    struct prof_view v;
    struct prof_tag_ref t;
    struct prof_freq f;
    struct mpr it;

    cr_assert_eq(put(full, &p, &d), 0);
    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(prof_encode(&p, &b), 0);
    cr_assert_eq(prof_view_open(b.base, b.len, &v), 0);
    cr_assert_eq(v.id_len, 2);
    cr_assert(v.id >= mem && v.id < mem + b.len, "the id must point into the encoding");
    cr_assert_eq(v.attr_len[PROF_OS], 3);
    cr_assert_not_null(v.attr[PROF_COUNTRY]);
    cr_assert_eq(memcmp(v.attr[PROF_COUNTRY], "USA", 3), 0);
    cr_assert_eq(v.ninterests, 1);
    it = v.interests;
    cr_assert_eq(prof_view_next_tag(&it, &t), 0);
    cr_assert_eq(t.id_len, 6);
    cr_assert_eq(memcmp(t.id, "sports", 6), 0);
    cr_assert_eq(t.weight, 2.25);
    cr_assert_eq(prof_view_freq(&v, "c1", 2, &f), 0);
    cr_assert_eq(f.hour, 2);
    cr_assert_eq(prof_view_freq(&v, "c2", 2, &f), ADS_ENOT_FOUND);
}

Test(profile, decode_refuses_garbage_and_newer_formats)
{
    static struct profile p;
    struct ads_diag d;
    char mem[PROF_ENCODED_MAX + 1];
    struct buf b;
    struct prof_view v;

    cr_assert_eq(put(full, &p, &d), 0);
    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(prof_encode(&p, &b), 0);
    /* Every truncation is refused, never read past. The view reads only the
     * hot part, which ends where the segments list does. */
    cr_assert_eq(prof_view_open(b.base, b.len, &v), 0);
    size_t hot = (size_t)((const char *)v.segments.end - mem);
    cr_assert_lt(hot, b.len);
    for (size_t n = 0; n < b.len; n++) {
        cr_assert_neq(prof_decode(b.base, n, &p), 0, "prefix of %zu bytes accepted", n);
        if (n < hot)
            cr_assert_neq(prof_view_open(b.base, n, &v), 0, "prefix of %zu bytes opened", n);
    }
    mem[1] = PROF_FORMAT + 1; /* after the fixarray header, [0] format as a positive fixint */
    cr_assert_eq((unsigned char)mem[0], 0x90 | 13);
    cr_assert_eq(prof_decode(b.base, b.len, &p), ADS_EDATA_TOO_NEW);
    cr_assert_eq(prof_decode("\xc1", 1, &p), ADS_EDATA_INVALID);
}

Test(profile, errors_name_the_field)
{
    static const struct {
        const char *json, *pointer, *words;
    } cases[] = {
        {"{\"attributes\":{\"country\":\"usa\"}}", "/attributes/country", "ISO 3166-1"},
        {"{\"attributes\":{\"device\":\"toaster\"}}", "/attributes/device", "phone"},
        {"{\"attributes\":{\"age_band\":\"30\"}}", "/attributes/age_band", "25-34"},
        {"{\"attributes\":{\"custom\":{\"bad key\":\"v\"}}}", "/attributes/custom", "key"},
        {"{\"segments\":[{\"id\":\"a\"},{\"id\":\"b\",\"weight\":2}]}", "/segments/1/weight", "from 0 to 1"},
        {"{\"segments\":[{\"id\":\"a\"},{\"id\":\"a\"}]}", "/segments/1/id", "repeats"},
        {"{\"interests\":[{\"weight\":1}]}", "/interests/0/id", "required"},
        {"{\"interests\":[{\"id\":\"x\",\"updated_at\":1763800000000}]}", "/interests/0/updated_at", "seconds"},
        {"{\"aliases\":[{\"source\":\"s\"}]}", "/aliases/0/id", "required"},
        {"{\"nickname\":\"x\"}", "/nickname", "not a known field"},
        {"{\"id\":\"u2\"}", "/id", "must equal"},
        {"{\"consent\":{\"personalization\":\"yes\"}}", "/consent/personalization", "true or false"},
        {"{\"frequency\":[{\"campaign\":\"c\",\"hour\":-1}]}", "/frequency/0/hour", "count"},
        {"[]", "", "profile object"},
    };
    static struct profile p;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ads_diag d = {{0}, {0}};
        cr_assert_eq(put(cases[i].json, &p, &d), ADS_EINVAL, "accepted %s", cases[i].json);
        cr_assert_str_eq(d.pointer, cases[i].pointer, "%s: pointer %s", cases[i].json, d.pointer);
        cr_assert_not_null(strstr(d.message, cases[i].words), "%s: message '%s'", cases[i].json, d.message);
    }
}

Test(profile, limits)
{
    static struct profile p;
    static char json[65536];
    struct ads_diag d;
    struct buf b;

    buf_init(&b, json, sizeof(json));
    buf_puts(&b, "{\"segments\":[");
    for (int i = 0; i <= PROF_MAX_SEGMENTS; i++)
        buf_printf(&b, "%s{\"id\":\"s%d\"}", i ? "," : "", i);
    buf_puts(&b, "]}");
    cr_assert_eq(put(json, &p, &d), ADS_EINVAL);
    cr_assert_str_eq(d.pointer, "/segments");

    buf_init(&b, json, sizeof(json));
    buf_printf(&b, "{\"attributes\":{\"city\":\"%0*d\"}}", PROF_ATTR_MAX + 1, 0);
    cr_assert_eq(put(json, &p, &d), ADS_EINVAL);
    cr_assert_str_eq(d.pointer, "/attributes/city");

    char id[PROF_ID_MAX + 2];
    memset(id, 'x', sizeof(id));
    cr_assert_eq(prof_check_id(id, PROF_ID_MAX), 0);
    cr_assert_eq(prof_check_id(id, PROF_ID_MAX + 1), ADS_EINVAL);
    cr_assert_eq(prof_check_id("a\nb", 3), ADS_EINVAL);
    cr_assert_eq(prof_check_id("\xff\xfe", 2), ADS_EINVAL, "ids are UTF-8");
    cr_assert_eq(prof_check_id("caf\xc3\xa9", 5), 0);
    cr_assert_eq(prof_check_id("", 0), ADS_EINVAL);
}

Test(profile, patch_merges)
{
    static struct profile p;
    static struct prof_patch pp;
    struct ads_diag d;
    msgpack_object o;

    cr_assert_eq(put(full, &p, &d), 0);
    o = parse("{\"attributes\":{\"city\":null,\"os\":\"Android\",\"custom\":{\"plan\":null,\"new\":\"1\"}},"
              "\"segments\":[],\"consent\":{\"measurement\":true,\"gdpr_applies\":null}}");
    cr_assert_eq(prof_patch_from_doc(&o, "u1", 2, &pp, &d), 0, "%s at %s", d.message, d.pointer);
    prof_patch_apply(&p, &pp);
    cr_assert_str_eq(p.attr[PROF_CITY], "");
    cr_assert_str_eq(p.attr[PROF_OS], "Android");
    cr_assert_str_eq(p.attr[PROF_COUNTRY], "USA", "untouched attributes stay");
    cr_assert_eq(p.ncustom, 2);
    for (uint32_t i = 0; i < p.ncustom; i++)
        cr_assert_str_neq(p.custom[i].key, "plan");
    cr_assert_eq(p.nsegments, 0, "arrays replace whole");
    cr_assert_eq(p.ninterests, 1, "absent fields stay");
    cr_assert_eq(p.consent_known, PROF_CONSENT_PERSONALIZATION | PROF_CONSENT_MEASUREMENT);
    cr_assert_eq(p.consent, PROF_CONSENT_MEASUREMENT);

    o = parse("{\"attributes\":null,\"recency\":null}");
    cr_assert_eq(prof_patch_from_doc(&o, "u1", 2, &pp, &d), 0);
    prof_patch_apply(&p, &pp);
    cr_assert_str_eq(p.attr[PROF_COUNTRY], "");
    cr_assert_eq(p.ncustom, 0);
    cr_assert_eq(p.age_band, PROF_AGE_UNKNOWN);
    cr_assert_eq(p.recency[PROF_LAST_SEEN], 0);
}

Test(profile, decay_halves_per_half_life)
{
    cr_assert_float_eq(prof_decay(8.0, 100, 100 + 60, 60), 4.0, 1e-12);
    cr_assert_float_eq(prof_decay(8.0, 100, 100 + 180, 60), 1.0, 1e-12);
    cr_assert_eq(prof_decay(8.0, 100, 50, 60), 8.0, "no growth backwards in time");
}

Test(profile, render_parses_back_in_both_encodings)
{
    static struct profile p, q;
    static char mem[262144];
    enum doc_fmt fmts[2] = {DOC_JSON, DOC_MSGPACK};
    struct ads_diag d;
    struct docw w;
    struct buf b;
    msgpack_object o;

    cr_assert_eq(put(full, &p, &d), 0);
    for (size_t f = 0; f < 2; f++) {
        buf_init(&b, mem, sizeof(mem));
        docw_init(&w, fmts[f], &b);
        prof_render(&p, &w);
        cr_assert(!b.overflow);
        cr_assert_eq(doc_parse(fmts[f], b.base, b.len, &zone, &o, &d), 0, "%s", d.message);
        cr_assert_eq(prof_from_doc(&o, "u1", 2, &q, &d), 0, "rendered profile refused: %s at %s", d.message, d.pointer);
        q.created_at = p.created_at;
        q.updated_at = p.updated_at;
        cr_assert_eq(memcmp(&p, &q, sizeof(p)), 0, "format %zu: the rendered profile differs", f);
    }
}
