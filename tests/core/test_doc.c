#include <criterion/criterion.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/doc.h"

static msgpack_zone zone;
static struct ads_diag diag;

static void setup(void)
{
    cr_assert(msgpack_zone_init(&zone, 4096));
    memset(&diag, 0, sizeof(diag));
}

static void teardown(void)
{
    msgpack_zone_destroy(&zone);
}

TestSuite(doc, .init = setup, .fini = teardown);

static int parse_n(enum doc_fmt fmt, const char *body, size_t len, msgpack_object *o)
{
    return doc_parse(fmt, body, len, &zone, o, &diag);
}

static int parse_json(const char *text, msgpack_object *o)
{
    return parse_n(DOC_JSON, text, strlen(text), o);
}

static msgpack_object json_ok(const char *text)
{
    msgpack_object o;
    int r = parse_json(text, &o);

    cr_assert_eq(r, 0, "%s: %s", text, diag.message);
    return o;
}

/* Expects @p text to be refused; returns the message. */
static const char *json_bad(const char *text)
{
    msgpack_object o;
    int r = parse_json(text, &o);

    cr_assert_eq(r, ADS_EBAD_REQUEST, "accepted: %s", text);
    cr_assert_gt(strlen(diag.message), 10);
    return diag.message;
}

static int parse_mp(const msgpack_sbuffer *sb, msgpack_object *o)
{
    return parse_n(DOC_MSGPACK, sb->data, sb->size, o);
}

static void assert_has(const char *msg, const char *part)
{
    cr_assert(strstr(msg, part) != NULL, "\"%s\" does not contain \"%s\"", msg, part);
}

/* Same types, same values, same order; doubles compared bit for bit. */
static bool tree_eq(const msgpack_object *a, const msgpack_object *b)
{
    uint32_t k;

    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MSGPACK_OBJECT_NIL: return true;
    case MSGPACK_OBJECT_BOOLEAN: return a->via.boolean == b->via.boolean;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return a->via.u64 == b->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return a->via.i64 == b->via.i64;
    case MSGPACK_OBJECT_FLOAT64: return memcmp(&a->via.f64, &b->via.f64, sizeof(double)) == 0;
    case MSGPACK_OBJECT_STR:
        return a->via.str.size == b->via.str.size &&
               (a->via.str.size == 0 || memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return false;
        for (k = 0; k < a->via.array.size; k++)
            if (!tree_eq(&a->via.array.ptr[k], &b->via.array.ptr[k]))
                return false;
        return true;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size)
            return false;
        for (k = 0; k < a->via.map.size; k++)
            if (!tree_eq(&a->via.map.ptr[k].key, &b->via.map.ptr[k].key) ||
                !tree_eq(&a->via.map.ptr[k].val, &b->via.map.ptr[k].val))
                return false;
        return true;
    default: return false;
    }
}

static const msgpack_object *member(const msgpack_object *map, const char *key)
{
    cr_assert_eq(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t k = 0; k < map->via.map.size; k++) {
        const msgpack_object *kk = &map->via.map.ptr[k].key;
        if (kk->via.str.size == strlen(key) && memcmp(kk->via.str.ptr, key, kk->via.str.size) == 0)
            return &map->via.map.ptr[k].val;
    }
    cr_assert_fail("no member %s", key);
    return NULL;
}

static void assert_str(const msgpack_object *o, const char *bytes, size_t len)
{
    cr_assert_eq(o->type, MSGPACK_OBJECT_STR);
    cr_assert_eq(o->via.str.size, len);
    cr_assert(memcmp(o->via.str.ptr, bytes, len) == 0);
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* ---- both encodings give one tree ---- */

static const char sample_json[] = "{\"id\":\"r1\",\"n\":-5,\"u\":42,\"big\":18446744073709551615,\"f\":1.5,"
                                  "\"ok\":true,\"no\":false,\"nil\":null,\"arr\":[1,\"x\",[]],\"m\":{},"
                                  "\"s\":\"caf\\u00e9 \\ud83d\\ude00\"}";

static void pack_sample(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 11);
    pack_cstr(pk, "id");
    pack_cstr(pk, "r1");
    pack_cstr(pk, "n");
    msgpack_pack_int64(pk, -5);
    pack_cstr(pk, "u");
    msgpack_pack_uint8(pk, 42);
    pack_cstr(pk, "big");
    msgpack_pack_uint64(pk, UINT64_MAX);
    pack_cstr(pk, "f");
    msgpack_pack_double(pk, 1.5);
    pack_cstr(pk, "ok");
    msgpack_pack_true(pk);
    pack_cstr(pk, "no");
    msgpack_pack_false(pk);
    pack_cstr(pk, "nil");
    msgpack_pack_nil(pk);
    pack_cstr(pk, "arr");
    msgpack_pack_array(pk, 3);
    msgpack_pack_int8(pk, 1);
    pack_cstr(pk, "x");
    msgpack_pack_array(pk, 0);
    pack_cstr(pk, "m");
    msgpack_pack_map(pk, 0);
    pack_cstr(pk, "s");
    pack_cstr(pk, "caf\xc3\xa9 \xf0\x9f\x98\x80");
}

Test(doc, json_and_msgpack_give_the_same_tree)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_object j = json_ok(sample_json), m;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_sample(&pk);
    cr_assert_eq(parse_mp(&sb, &m), 0, "%s", diag.message);
    cr_assert(tree_eq(&j, &m));

    cr_assert_eq(member(&j, "n")->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    cr_assert_eq(member(&j, "big")->via.u64, UINT64_MAX);
    cr_assert_eq(member(&j, "f")->type, MSGPACK_OBJECT_FLOAT64);
    assert_str(member(&j, "s"), "caf\xc3\xa9 \xf0\x9f\x98\x80", 10);
    cr_assert_eq(member(&j, "m")->via.map.size, 0);

    /* A change anywhere shows. */
    json_ok("{}");
    msgpack_object other = json_ok("{\"id\":\"r2\"}");
    cr_assert(!tree_eq(&j, &other));
    msgpack_sbuffer_destroy(&sb);
}

Test(doc, tree_outlives_the_body)
{
    char *body = strdup("{\"key\":[\"value\",\"x\"]}");
    msgpack_object o;

    cr_assert_eq(parse_json(body, &o), 0);
    memset(body, 'z', strlen(body));
    free(body);
    assert_str(&o.via.map.ptr[0].key, "key", 3);
    assert_str(&o.via.map.ptr[0].val.via.array.ptr[0], "value", 5);

    /* MessagePack strings point into the zone's copy of the body, not the body. */
    char mp[] = "\x81\xa3key\xa5value";
    char *mbody = malloc(sizeof(mp) - 1);
    memcpy(mbody, mp, sizeof(mp) - 1);
    cr_assert_eq(parse_n(DOC_MSGPACK, mbody, sizeof(mp) - 1, &o), 0, "%s", diag.message);
    memset(mbody, 0, sizeof(mp) - 1);
    free(mbody);
    assert_str(&o.via.map.ptr[0].key, "key", 3);
    assert_str(&o.via.map.ptr[0].val, "value", 5);
}

/* ---- numbers ---- */

Test(doc, integers_and_floats)
{
    msgpack_object o = json_ok("[1, -1, 0, -0, 1.0, 1e2, 0.5, -2.5e-3, 1E+2, 123]");
    const msgpack_object *a = o.via.array.ptr;

    cr_assert_eq(o.via.array.size, 10);
    cr_assert_eq(a[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    cr_assert_eq(a[0].via.u64, 1);
    cr_assert_eq(a[1].type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    cr_assert_eq(a[1].via.i64, -1);
    cr_assert_eq(a[2].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    cr_assert_eq(a[3].type, MSGPACK_OBJECT_POSITIVE_INTEGER, "-0 is the integer 0");
    cr_assert_eq(a[3].via.u64, 0);
    cr_assert_eq(a[4].type, MSGPACK_OBJECT_FLOAT64, "1.0 is written as a float");
    cr_assert_eq(a[4].via.f64, 1.0);
    cr_assert_eq(a[5].type, MSGPACK_OBJECT_FLOAT64);
    cr_assert_eq(a[5].via.f64, 100.0);
    cr_assert_eq(a[6].via.f64, 0.5);
    cr_assert_eq(a[7].type, MSGPACK_OBJECT_FLOAT64);
    cr_assert_eq(a[7].via.f64, -2.5e-3);
    cr_assert_eq(a[8].type, MSGPACK_OBJECT_FLOAT64);
    cr_assert_eq(a[9].via.u64, 123);
}

Test(doc, big_integers_are_exact)
{
    msgpack_object o = json_ok("[9007199254740993, 18446744073709551615, -9223372036854775808,"
                               " 18446744073709551616, -9223372036854775809, \"9\", 12]");
    const msgpack_object *a = o.via.array.ptr;

    cr_assert_eq(a[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    cr_assert_eq(a[0].via.u64, 9007199254740993ull, "2^53 + 1 must not go through a double");
    cr_assert_eq(a[1].via.u64, UINT64_MAX);
    cr_assert_eq(a[2].type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    cr_assert_eq(a[2].via.i64, INT64_MIN);
    cr_assert_eq(a[3].type, MSGPACK_OBJECT_FLOAT64, "past 64 bits");
    cr_assert_eq(a[3].via.f64, 18446744073709551616.0);
    cr_assert_eq(a[4].type, MSGPACK_OBJECT_FLOAT64);
    /* Numbers inside strings do not throw the reading of the text out of step. */
    assert_str(&a[5], "9", 1);
    cr_assert_eq(a[6].via.u64, 12);
}

Test(doc, numbers_follow_keys_and_strings_with_digits_and_escapes)
{
    msgpack_object o = json_ok("{\"-1\":\"2 \\\" 3\",\"a\\\\\":-4,\"x\":[\"5\",6.5,7]}");

    cr_assert_eq(member(&o, "a\\")->via.i64, -4);
    const msgpack_object *x = member(&o, "x");
    cr_assert_eq(x->via.array.ptr[1].via.f64, 6.5);
    cr_assert_eq(x->via.array.ptr[2].via.u64, 7);
}

Test(doc, non_finite_numbers_are_refused)
{
    assert_has(json_bad("{\"a\":[1e400]}"), "too large");
    cr_assert_str_eq(diag.pointer, "/a/0");

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_object o;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_double(&pk, 1.0);
    msgpack_pack_double(&pk, NAN);
    cr_assert_eq(parse_mp(&sb, &o), ADS_EBAD_REQUEST);
    cr_assert_str_eq(diag.pointer, "/1");
    assert_has(diag.message, "not finite");

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_float(&pk, INFINITY);
    cr_assert_eq(parse_mp(&sb, &o), ADS_EBAD_REQUEST);
    msgpack_sbuffer_destroy(&sb);
}

Test(doc, msgpack_float32_becomes_float64)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_object o;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pack_cstr(&pk, "p");
    msgpack_pack_float(&pk, 0.25f);
    cr_assert_eq(parse_mp(&sb, &o), 0, "%s", diag.message);
    cr_assert_eq(o.via.map.ptr[0].val.type, MSGPACK_OBJECT_FLOAT64);
    cr_assert_eq(o.via.map.ptr[0].val.via.f64, 0.25);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- strings ---- */

Test(doc, string_escapes_and_surrogate_pairs)
{
    msgpack_object o = json_ok("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u4E2D\\ud83d\\ude00\", \"\"]");

    assert_str(&o.via.array.ptr[0], "a\"b\\c/d\b\f\n\r\t", 12);
    assert_str(&o.via.array.ptr[1], "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80", 9);
    assert_str(&o.via.array.ptr[2], "", 0);
}

Test(doc, invalid_utf8_is_refused_with_its_pointer)
{
    assert_has(json_bad("{\"a\":[\"ok\",\"x\xff\"]}"), "not valid UTF-8");
    cr_assert_str_eq(diag.pointer, "/a/1");
    json_bad("{\"a\":{\"b\":\"\xed\xa0\x80\"}}"); /* an encoded surrogate */
    cr_assert_str_eq(diag.pointer, "/a/b");
    json_bad("[\"\xc0\xaf\"]"); /* overlong '/' */
    cr_assert_str_eq(diag.pointer, "/0");
    json_bad("\"\xe6\x9c\""); /* truncated sequence at the root */
    cr_assert_str_eq(diag.pointer, "");
    assert_has(json_bad("{\"a\":{\"k\xc3\":1}}"), "a key in the map at /a");
    cr_assert_str_eq(diag.pointer, "/a");

    msgpack_object o;
    const char mp[] = "\x81\xa1s\x92\xa2ok\xa2\xff\xfe";
    cr_assert_eq(parse_n(DOC_MSGPACK, mp, sizeof(mp) - 1, &o), ADS_EBAD_REQUEST);
    cr_assert_str_eq(diag.pointer, "/s/1");
    assert_has(diag.message, "not valid UTF-8");
    const char mpkey[] = "\x81\xa1\x80\x01";
    cr_assert_eq(parse_n(DOC_MSGPACK, mpkey, sizeof(mpkey) - 1, &o), ADS_EBAD_REQUEST);
    assert_has(diag.message, "a key in the map at the root");
}

/* The eight-bytes-at-a-time paths: a bad byte is found wherever it sits. */
Test(doc, bad_bytes_are_found_at_every_position)
{
    char text[40], body[64];
    msgpack_object o;

    for (size_t at = 0; at < 21; at++) {
        memset(text, 'a', 21);
        text[21] = '\0';
        snprintf(body, sizeof(body), "[\"%s\"]", text);
        cr_assert_eq(parse_json(body, &o), 0, "%s", diag.message);
        cr_assert_eq(o.via.array.ptr[0].via.str.size, 21);

        body[2 + at] = (char)0xff;
        cr_assert_eq(parse_json(body, &o), ADS_EBAD_REQUEST, "0xff at %zu", at);
        assert_has(diag.message, "not valid UTF-8");
        body[2 + at] = '\x1f';
        cr_assert_eq(parse_json(body, &o), ADS_EBAD_REQUEST, "0x1f at %zu", at);
        assert_has(diag.message, "unexpected character");
        body[2 + at] = '\\';
        cr_assert_eq(parse_json(body, &o), ADS_EBAD_REQUEST, "backslash at %zu", at);
        body[2 + at] = '"';
        cr_assert_eq(parse_json(body, &o), ADS_EBAD_REQUEST, "quote at %zu", at);

        /* The same string as MessagePack: fixarray of one fixstr of 21 bytes. */
        body[0] = (char)0x91;
        body[1] = (char)(0xa0 | 21);
        memset(body + 2, 'a', 21);
        cr_assert_eq(parse_n(DOC_MSGPACK, body, 23, &o), 0, "%s", diag.message);
        body[2 + at] = '\0';
        cr_assert_eq(parse_n(DOC_MSGPACK, body, 23, &o), ADS_EBAD_REQUEST, "NUL at %zu", at);
        assert_has(diag.message, "U+0000");
        body[2 + at] = (char)0x80;
        cr_assert_eq(parse_n(DOC_MSGPACK, body, 23, &o), ADS_EBAD_REQUEST, "0x80 at %zu", at);
        assert_has(diag.message, "not valid UTF-8");
        body[2 + at] = 'a';
    }
    /* Long text with multi-byte characters, past the fast path and back. */
    msgpack_object l = json_ok("[\"abcdefgh\\u00e9abcdefgh\xc3\xa9"
                               "abcdefghijklmnop\xf0\x9f\x98\x80"
                               "xyz\"]");
    cr_assert_eq(l.via.array.ptr[0].via.str.size, 8 + 2 + 8 + 2 + 16 + 4 + 3);
}

Test(doc, nul_in_strings_is_refused)
{
    assert_has(json_bad("[\"a\\u0000b\"]"), "U+0000");
    assert_has(diag.message, "byte 3");
    static const char raw[] = "[\"a\0b\"]";
    msgpack_object o;
    cr_assert_eq(parse_n(DOC_JSON, raw, sizeof(raw) - 1, &o), ADS_EBAD_REQUEST);

    const char mp[] = "\x91\xa3x\0y";
    cr_assert_eq(parse_n(DOC_MSGPACK, mp, sizeof(mp) - 1, &o), ADS_EBAD_REQUEST);
    cr_assert_str_eq(diag.pointer, "/0");
    assert_has(diag.message, "U+0000");
}

Test(doc, json_that_cjson_would_let_through_is_refused)
{
    json_bad("[01]");
    json_bad("[-01]");
    json_bad("[1.]");
    json_bad("[1.e5]");
    json_bad("[\"\\uZZZZ\"]"); /* cJSON reads bad hex as U+0000 */
    json_bad("[\"a\tb\"]");    /* raw control character in a string */
    json_bad("[1,\x01 2]");    /* cJSON takes any byte <= 0x20 as whitespace */
    json_bad("[\"\\ud800\"]"); /* lone high surrogate */
    json_bad("[\"\\udc00\"]"); /* lone low surrogate */
    json_bad("[\"\\ud800\\u0041\"]");
    assert_has(json_bad("[1,0]x"), "unexpected data after the document at line 1, column 6 (byte 5)");
    /* Still fine: */
    json_ok("[0, -0.5, 1e-3, \"\\u0041\"]");
    json_ok("\xef\xbb\xbf{\"bom\":1}");
}

/* ---- malformed JSON ---- */

Test(doc, syntax_errors_say_where)
{
    cr_assert_str_eq(json_bad("{\n  \"a\" 1\n}"),
                     "the body is not valid JSON: unexpected character at line 2, column 7 (byte 8)");
    cr_assert_str_eq(diag.pointer, "");
    /* cJSON itself would point one past the 'x'. */
    assert_has(json_bad("{x:1}"), "line 1, column 2 (byte 1)");
    assert_has(json_bad("[1,]"), "(byte 3)");
    assert_has(json_bad("[1 2]"), "(byte 3)");
    assert_has(json_bad("{\"a\":1,}"), "(byte 7)");
    assert_has(json_bad("[\"a\\qb\"]"), "(byte 4)");
    assert_has(json_bad("nul"), "ends early");
    assert_has(json_bad("[truex]"), "(byte 5)");
}

Test(doc, truncated_json_ends_early)
{
    assert_has(json_bad("{\"a\":[1,2"),
               "the body is not valid JSON: the document ends early, at line 1, column 10 (byte 9)");
    assert_has(json_bad("[\"abc"), "ends early");
    assert_has(json_bad("{\"a\":"), "ends early");
    assert_has(json_bad("[1, "), "ends early");
    assert_has(json_bad("-"), "ends early");
    assert_has(json_bad("[\"\\u00"), "ends early");
    assert_has(json_bad(""), "empty");
    assert_has(json_bad(" \n "), "empty");
}

Test(doc, trailing_data_is_refused)
{
    msgpack_object o;

    assert_has(json_bad("{} x"), "unexpected data after the document at line 1, column 4 (byte 3)");
    json_bad("{}{}");
    json_bad("1 2");
    json_ok("{} \n\t\r ");
    cr_assert_eq(parse_n(DOC_JSON, "{}\0", 3, &o), ADS_EBAD_REQUEST);

    cr_assert_eq(parse_n(DOC_MSGPACK, "\x01\x02", 2, &o), ADS_EBAD_REQUEST);
    assert_has(diag.message, "unexpected data after the document at byte 1");
    cr_assert_eq(parse_n(DOC_MSGPACK, "\x90\xc0", 2, &o), ADS_EBAD_REQUEST);
}

/* ---- malformed MessagePack ---- */

Test(doc, truncated_msgpack_ends_early)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *pointer;
    } cases[] = {
        {"\x92\x01", 2, ""}, /* array of 2 holding 1 */
        {"\x82\xa1"
         "a\x01\xa1"
         "b",
         6, "/b"}, /* map whose last value is missing */
        {"\x82\xa1"
         "a\x01\xa1",
         5, ""}, /* a key cut short: its map's pointer */
        {"\x91\xa5"
         "ab",
         4, "/0"},                          /* str 5 with 2 bytes */
        {"\x91\xcd\x01", 3, "/0"},          /* uint 16 with 1 byte */
        {"\x81\xa1k\xcb\x00\x00", 6, "/k"}, /* float 64 with 2 bytes */
        {"\xda\x00", 2, ""},                /* str 16 without its length */
        {"\xdd\xff\xff\xff\xff", 5, ""},    /* 4 billion members announced in 5 bytes */
        {"\xdf\x0f\xff\xff\xff\x00", 6, ""},
    };
    msgpack_object o;

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        cr_assert_eq(parse_n(DOC_MSGPACK, cases[k].bytes, cases[k].len, &o), ADS_EBAD_REQUEST, "case %zu", k);
        assert_has(diag.message, "ends early");
        cr_assert_str_eq(diag.pointer, cases[k].pointer, "case %zu", k);
    }
    cr_assert_eq(parse_n(DOC_MSGPACK, "", 0, &o), ADS_EBAD_REQUEST);
    assert_has(diag.message, "empty");
    cr_assert_eq(parse_n(DOC_MSGPACK, "\x91\xc1", 2, &o), ADS_EBAD_REQUEST);
    assert_has(diag.message, "0xc1");
}

Test(doc, msgpack_bin_ext_and_non_string_keys_are_refused)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_object o;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    msgpack_pack_map(&pk, 2);
    pack_cstr(&pk, "ok");
    msgpack_pack_nil(&pk);
    pack_cstr(&pk, "id");
    msgpack_pack_bin_with_body(&pk, "ab", 2);
    cr_assert_eq(parse_mp(&sb, &o), ADS_EBAD_REQUEST);
    cr_assert_str_eq(diag.pointer, "/id");
    assert_has(diag.message, "bin or ext");

    /* Deep inside: [nil, {"x": 1, "a": [1, 2, bin]}] */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_map(&pk, 2);
    pack_cstr(&pk, "x");
    msgpack_pack_int(&pk, 1);
    pack_cstr(&pk, "a");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 2);
    msgpack_pack_bin_with_body(&pk, "", 0);
    cr_assert_eq(parse_mp(&sb, &o), ADS_EBAD_REQUEST);
    cr_assert_str_eq(diag.pointer, "/1/a/2");
    assert_has(diag.message, "the value at /1/a/2 is MessagePack bin or ext");

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_ext_with_body(&pk, "abcd", 4, 7); /* fixext 4 */
    cr_assert_eq(parse_mp(&sb, &o), ADS_EBAD_REQUEST);
    cr_assert_str_eq(diag.pointer, "/0");

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_ext_with_body(&pk, "abc", 3, 1); /* ext 8 */
    cr_assert_eq(parse_mp(&sb, &o), ADS_EBAD_REQUEST);
    cr_assert_str_eq(diag.pointer, "/1");

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pack_cstr(&pk, "m");
    msgpack_pack_map(&pk, 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 2);
    cr_assert_eq(parse_mp(&sb, &o), ADS_EBAD_REQUEST);
    assert_has(diag.message, "a key in the map at /m is not a string");
    cr_assert_str_eq(diag.pointer, "/m");

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_bin_with_body(&pk, "k", 1);
    msgpack_pack_int(&pk, 2);
    cr_assert_eq(parse_mp(&sb, &o), ADS_EBAD_REQUEST);
    assert_has(diag.message, "not a string");
    cr_assert_str_eq(diag.pointer, "");
    msgpack_sbuffer_destroy(&sb);
}

/* ---- limits ---- */

/* @p n nested arrays, "[[...]]", or objects, {"a":{"a":...}}. */
static char *nested_json(int n, bool objects)
{
    size_t cap = (size_t)n * 6 + 1, len = 0;
    char *s = malloc(cap);

    for (int k = 0; k < n; k++)
        len += (size_t)snprintf(s + len, cap - len, "%s", objects ? (k + 1 < n ? "{\"a\":" : "{") : "[");
    for (int k = 0; k < n; k++)
        s[len++] = objects ? '}' : ']';
    s[len] = '\0';
    return s;
}

static void repeat(char *out, size_t cap, const char *part, int n)
{
    struct buf b;

    buf_init(&b, out, cap);
    for (int k = 0; k < n; k++)
        buf_puts(&b, part);
    cr_assert(!b.overflow);
}

Test(doc, depth_limit_json)
{
    char want[128];
    char *ok = nested_json(DOC_MAX_DEPTH, false), *deep = nested_json(DOC_MAX_DEPTH + 1, false);
    msgpack_object o;

    cr_assert_eq(parse_json(ok, &o), 0, "%s", diag.message);
    assert_has(json_bad(deep), "deeper than 16 levels");
    repeat(want, sizeof(want), "/0", DOC_MAX_DEPTH);
    cr_assert_str_eq(diag.pointer, want);
    free(ok);
    free(deep);

    ok = nested_json(DOC_MAX_DEPTH, true);
    deep = nested_json(DOC_MAX_DEPTH + 1, true);
    cr_assert_eq(parse_json(ok, &o), 0, "%s", diag.message);
    json_bad(deep);
    repeat(want, sizeof(want), "/a", DOC_MAX_DEPTH);
    cr_assert_str_eq(diag.pointer, want);
    free(ok);
    free(deep);

    /* Past cJSON's own limit (1000) the recognizer names the byte. */
    deep = nested_json(1200, false);
    assert_has(json_bad(deep), "deeper than 16 levels, at line 1, column 17 (byte 16)");
    free(deep);
    deep = nested_json(1200, false);
    deep[1100] = 'x';
    assert_has(json_bad(deep), "deeper than 16 levels");
    free(deep);
}

Test(doc, depth_limit_msgpack)
{
    char body[DOC_MAX_DEPTH + 2], want[128];
    msgpack_object o;

    memset(body, 0x91, sizeof(body)); /* arrays of one */
    body[DOC_MAX_DEPTH - 1] = (char)0x90;
    cr_assert_eq(parse_n(DOC_MSGPACK, body, DOC_MAX_DEPTH, &o), 0, "%s", diag.message);

    body[DOC_MAX_DEPTH - 1] = (char)0x91;
    body[DOC_MAX_DEPTH] = (char)0x90;
    cr_assert_eq(parse_n(DOC_MSGPACK, body, DOC_MAX_DEPTH + 1, &o), ADS_EBAD_REQUEST);
    assert_has(diag.message, "deeper than 16 levels");
    repeat(want, sizeof(want), "/0", DOC_MAX_DEPTH);
    cr_assert_str_eq(diag.pointer, want);
}

Test(doc, node_limit_json)
{
    /* The root array and its members: DOC_MAX_NODES values in all is fine. */
    size_t n = DOC_MAX_NODES - 1, cap = 2 * (n + 1) + 8;
    char *s = malloc(cap);
    msgpack_object o;

    s[0] = '[';
    for (size_t k = 0; k < n; k++) {
        s[1 + 2 * k] = '0';
        s[2 + 2 * k] = ',';
    }
    s[2 * n] = ']';
    cr_assert_eq(parse_n(DOC_JSON, s, 2 * n + 1, &o), 0, "%s", diag.message);
    cr_assert_eq(o.via.array.size, n);

    s[2 * n] = ',';
    s[2 * n + 1] = '0';
    s[2 * n + 2] = ']';
    cr_assert_eq(parse_n(DOC_JSON, s, 2 * n + 3, &o), ADS_EBAD_REQUEST);
    assert_has(diag.message, "more than 200000 values");
    cr_assert_str_eq(diag.pointer, "/199999");
    free(s);
}

Test(doc, node_limit_msgpack)
{
    size_t n = DOC_MAX_NODES;
    char *s = calloc(n + 5, 1);
    msgpack_object o;

    s[0] = (char)0xdd;
    s[1] = 0;
    s[2] = (char)((n - 1) >> 16);
    s[3] = (char)((n - 1) >> 8);
    s[4] = (char)(n - 1);
    cr_assert_eq(parse_n(DOC_MSGPACK, s, 5 + n - 1, &o), 0, "%s", diag.message);
    cr_assert_eq(o.via.array.size, n - 1);

    s[2] = (char)(n >> 16);
    s[3] = (char)(n >> 8);
    s[4] = (char)n;
    cr_assert_eq(parse_n(DOC_MSGPACK, s, 5 + n, &o), ADS_EBAD_REQUEST);
    assert_has(diag.message, "more than 200000 values");
    cr_assert_str_eq(diag.pointer, "/199999");
    free(s);
}

/* ---- media types ---- */

static int ct(const char *s, enum doc_fmt *f)
{
    return doc_fmt_of_content_type(s, strlen(s), f);
}

Test(doc, content_type)
{
    enum doc_fmt f = DOC_MSGPACK;

    cr_assert_eq(doc_fmt_of_content_type(NULL, 0, &f), 0);
    cr_assert_eq(f, DOC_JSON);
    f = DOC_MSGPACK;
    cr_assert_eq(ct("application/json", &f), 0);
    cr_assert_eq(f, DOC_JSON);
    cr_assert_eq(ct("Application/JSON; charset=utf-8", &f), 0);
    cr_assert_eq(f, DOC_JSON);
    cr_assert_eq(ct(" text/json ", &f), 0);
    cr_assert_eq(f, DOC_JSON);
    cr_assert_eq(ct("application/vnd.api+json", &f), 0);
    cr_assert_eq(f, DOC_JSON);
    cr_assert_eq(ct("application/msgpack", &f), 0);
    cr_assert_eq(f, DOC_MSGPACK);
    f = DOC_JSON;
    cr_assert_eq(ct("application/X-MsgPack;v=1", &f), 0);
    cr_assert_eq(f, DOC_MSGPACK);
    f = DOC_JSON;
    cr_assert_eq(ct("application/vnd.msgpack", &f), 0);
    cr_assert_eq(f, DOC_MSGPACK);

    cr_assert_eq(ct("text/plain", &f), ADS_EUNSUPPORTED_MEDIA);
    cr_assert_eq(ct("application/+json", &f), ADS_EUNSUPPORTED_MEDIA);
    cr_assert_eq(ct("application/jsonx", &f), ADS_EUNSUPPORTED_MEDIA);
    cr_assert_eq(ct("application/json-seq", &f), ADS_EUNSUPPORTED_MEDIA);
    cr_assert_eq(ct("; charset=utf-8", &f), ADS_EUNSUPPORTED_MEDIA);
    /* Only len bytes are read. */
    cr_assert_eq(doc_fmt_of_content_type("application/msgpackXYZ", 19, &f), 0);
    cr_assert_eq(f, DOC_MSGPACK);

    cr_assert_str_eq(doc_content_type(DOC_JSON), "application/json");
    cr_assert_str_eq(doc_content_type(DOC_MSGPACK), "application/msgpack");
}

static enum doc_fmt acc(const char *s)
{
    return doc_fmt_of_accept(s, strlen(s));
}

Test(doc, accept)
{
    cr_assert_eq(doc_fmt_of_accept(NULL, 0), DOC_JSON);
    cr_assert_eq(acc("*/*"), DOC_JSON);
    cr_assert_eq(acc("application/json"), DOC_JSON);
    cr_assert_eq(acc("application/msgpack"), DOC_MSGPACK);
    cr_assert_eq(acc("Application/X-MSGPACK"), DOC_MSGPACK);
    cr_assert_eq(acc("application/json, application/msgpack"), DOC_MSGPACK, "equal q: MessagePack");
    cr_assert_eq(acc("application/msgpack;q=0.5, application/json"), DOC_JSON);
    cr_assert_eq(acc("application/msgpack ; Q=0.9 , application/json;q=0.8"), DOC_MSGPACK);
    cr_assert_eq(acc("application/json;q=0.8,application/vnd.msgpack;q=0.800"), DOC_MSGPACK);
    cr_assert_eq(acc("application/msgpack;q=0"), DOC_JSON, "q=0 means not acceptable");
    cr_assert_eq(acc("application/msgpack;q=0.001, */*"), DOC_MSGPACK);
    cr_assert_eq(acc("application/msgpack;q=0.3, application/ld+json;q=0.4"), DOC_JSON);
    cr_assert_eq(acc("application/msgpack;q=2"), DOC_JSON, "a q-value past 1 is not one");
    cr_assert_eq(acc("application/msgpack;q=junk, application/json;q=0.1"), DOC_JSON);
    cr_assert_eq(acc("text/html;level=\"a,b;q=0\", application/msgpack;q=1"), DOC_MSGPACK);
    cr_assert_eq(acc("application/json;x=\"application/msgpack, \\\"q\", application/msgpack;q=0.1"), DOC_JSON);
    cr_assert_eq(acc(" , ;;, =;q=, application/msgpack\t"), DOC_MSGPACK);
    cr_assert_eq(acc(",,,"), DOC_JSON);
    cr_assert_eq(acc("application/msgpack;q=\"0.5"), DOC_JSON, "an unterminated quote ends the header");
    /* Only len bytes are read: the q=0 past them does not count. */
    cr_assert_eq(doc_fmt_of_accept("application/msgpack;q=0", 19), DOC_MSGPACK);
}

/* ---- pointers ---- */

Test(doc, pointer_escaping)
{
    char mem[64];
    struct buf b;

    buf_init(&b, mem, sizeof(mem));
    doc_pointer_key(&b, "imp", 3);
    doc_pointer_index(&b, 12);
    doc_pointer_key(&b, "a/b~c", 5);
    doc_pointer_key(&b, "", 0);
    doc_pointer_key(&b, "~~//", 4);
    cr_assert_str_eq(mem, "/imp/12/a~1b~0c//~0~0~1~1");

    json_bad("{\"a/b~c\":[\"\xff\"]}");
    cr_assert_str_eq(diag.pointer, "/a~1b~0c/0");
}

/* ---- writing ---- */

/* One document with every kind of value, nested. */
static void write_sample(struct docw *w)
{
    docw_map(w, 9);
    docw_key(w, "id");
    docw_cstr(w, "r-1 \"quoted\" \\ caf\xc3\xa9");
    docw_key(w, "neg");
    docw_int(w, INT64_MIN);
    docw_key(w, "pos");
    docw_int(w, 7);
    docw_key(w, "big");
    docw_uint(w, UINT64_MAX);
    docw_key(w, "floats");
    docw_array(w, 5);
    docw_double(w, 0.1);
    docw_double(w, 2.0);
    docw_double(w, -1e300);
    docw_double(w, 0.1 + 0.2);
    docw_double(w, 5e-324);
    docw_array_end(w);
    docw_key(w, "flags");
    docw_array(w, 3);
    docw_bool(w, true);
    docw_bool(w, false);
    docw_nil(w);
    docw_array_end(w);
    docw_key(w, "nested");
    docw_map(w, 2);
    docw_key(w, "empty_map");
    docw_map(w, 0);
    docw_map_end(w);
    docw_key(w, "empty_array");
    docw_array(w, 0);
    docw_array_end(w);
    docw_map_end(w);
    docw_key(w, "a/b~c");
    docw_str(w, "without", 4); /* only len bytes */
    docw_key(w, "deep");
    for (int k = 0; k < DOC_MAX_DEPTH - 1; k++)
        docw_array(w, 1);
    docw_cstr(w, "bottom");
    for (int k = 0; k < DOC_MAX_DEPTH - 1; k++)
        docw_array_end(w);
    docw_map_end(w);
}

static const char sample_expected[] =
    "{\"id\":\"r-1 \\\"quoted\\\" \\\\ caf\\u00e9\",\"neg\":-9223372036854775808,\"pos\":7,"
    "\"big\":18446744073709551615,\"floats\":[0.1,2.0,-1e300,0.30000000000000004,5e-324],"
    "\"flags\":[true,false,null],\"nested\":{\"empty_map\":{},\"empty_array\":[]},\"a/b~c\":\"with\","
    "\"deep\":[[[[[[[[[[[[[[[\"bottom\"]]]]]]]]]]]]]]]}";

Test(doc, docw_json_round_trips)
{
    char mem[1024];
    struct buf b;
    struct docw w;
    msgpack_object out, expected;

    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, DOC_JSON, &b);
    write_sample(&w);
    cr_assert(!b.overflow);
    cr_assert_eq(w.depth, 0);

    cr_assert_eq(parse_n(DOC_JSON, b.base, b.len, &out), 0, "%s: %s", diag.message, mem);
    expected = json_ok(sample_expected);
    cr_assert(tree_eq(&out, &expected), "%s", mem);
    cr_assert_eq(member(&out, "floats")->via.array.ptr[1].type, MSGPACK_OBJECT_FLOAT64, "2.0 stays a float");
    cr_assert_eq(member(&out, "floats")->via.array.ptr[3].via.f64, 0.1 + 0.2);
    cr_assert_eq(member(&out, "neg")->via.i64, INT64_MIN);
    assert_str(member(&out, "id"), "r-1 \"quoted\" \\ caf\xc3\xa9", 20);
}

Test(doc, docw_json_text)
{
    char mem[256];
    struct buf b;
    struct docw w;

    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, DOC_JSON, &b);
    docw_map(&w, 3);
    docw_key(&w, "a");
    docw_array(&w, 3);
    docw_int(&w, -1);
    docw_double(&w, NAN);
    docw_double(&w, -0.0);
    docw_array_end(&w);
    docw_key(&w, "b\n");
    docw_str(&w, "x\xff", 2);
    docw_key(&w, "c");
    docw_double(&w, INFINITY);
    docw_map_end(&w);
    cr_assert(!b.overflow);
    cr_assert_str_eq(mem, "{\"a\":[-1,null,-0.0],\"b\\n\":\"x\xef\xbf\xbd\",\"c\":null}");
}

Test(doc, docw_msgpack_round_trips)
{
    char mem[1024], jmem[1024];
    struct buf b, jb;
    struct docw w;
    msgpack_object m, j;

    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, DOC_MSGPACK, &b);
    write_sample(&w);
    cr_assert(!b.overflow);
    cr_assert_eq(parse_n(DOC_MSGPACK, b.base, b.len, &m), 0, "%s", diag.message);

    buf_init(&jb, jmem, sizeof(jmem));
    docw_init(&w, DOC_JSON, &jb);
    write_sample(&w);
    cr_assert_eq(parse_n(DOC_JSON, jb.base, jb.len, &j), 0, "%s", diag.message);
    cr_assert(tree_eq(&m, &j));
    cr_assert_eq(member(&m, "big")->via.u64, UINT64_MAX);
    cr_assert_eq(member(&m, "floats")->via.array.ptr[0].via.f64, 0.1);

    /* The bytes are MessagePack as msgpack-c reads them: a fixmap of 9 first. */
    cr_assert_eq((unsigned char)mem[0], 0x89);
}

Test(doc, docw_overflow_sets_the_flag)
{
    char mem[16], big[512];
    struct buf b;
    struct docw w;

    /* Out of room. */
    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, DOC_JSON, &b);
    docw_array(&w, 1);
    docw_cstr(&w, "a string longer than the buffer");
    docw_array_end(&w);
    cr_assert(b.overflow);
    cr_assert_lt(b.len, sizeof(mem));

    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, DOC_MSGPACK, &b);
    docw_cstr(&w, "a string longer than the buffer");
    cr_assert(b.overflow);

    /* Nesting past DOC_MAX_DEPTH, in either encoding; nothing is written after. */
    for (int fmt = DOC_JSON; fmt <= DOC_MSGPACK; fmt++) {
        buf_init(&b, big, sizeof(big));
        docw_init(&w, (enum doc_fmt)fmt, &b);
        for (int k = 0; k < DOC_MAX_DEPTH; k++)
            docw_array(&w, 1);
        cr_assert(!b.overflow);
        size_t len = b.len;
        docw_array(&w, 0);
        cr_assert(b.overflow);
        cr_assert_eq(b.len, len);
        docw_nil(&w);
        docw_array_end(&w);
        cr_assert_eq(b.len, len);
    }
}

/* Each misuse writes a document that would not parse (or not as meant). */
static bool misuse(int which, enum doc_fmt fmt)
{
    char mem[256];
    struct buf b;
    struct docw w;

    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, fmt, &b);
    switch (which) {
    case 0: /* fewer values than announced */
        docw_array(&w, 2);
        docw_int(&w, 1);
        docw_array_end(&w);
        break;
    case 1: /* more values than announced */
        docw_array(&w, 1);
        docw_int(&w, 1);
        docw_int(&w, 2);
        docw_array_end(&w);
        break;
    case 2: /* a key in an array */
        docw_array(&w, 1);
        docw_key(&w, "k");
        break;
    case 3: /* a value where a key belongs */
        docw_map(&w, 1);
        docw_int(&w, 1);
        break;
    case 4: /* a key without its value */
        docw_map(&w, 1);
        docw_key(&w, "k");
        docw_map_end(&w);
        break;
    case 5: /* mismatched end */
        docw_map(&w, 0);
        docw_array_end(&w);
        break;
    case 6: /* two documents */
        docw_int(&w, 1);
        docw_int(&w, 2);
        break;
    case 7: /* an end with nothing open */ docw_map_end(&w); break;
    default: /* correct use */
        docw_map(&w, 1);
        docw_key(&w, "k");
        docw_int(&w, 1);
        docw_map_end(&w);
        break;
    }
    return b.overflow;
}

Test(doc, docw_misuse_sets_the_flag)
{
    for (int fmt = DOC_JSON; fmt <= DOC_MSGPACK; fmt++) {
        for (int k = 0; k < 8; k++)
            cr_assert(misuse(k, (enum doc_fmt)fmt), "misuse %d (fmt %d) not caught", k, fmt);
        cr_assert(!misuse(8, (enum doc_fmt)fmt));
    }
}
