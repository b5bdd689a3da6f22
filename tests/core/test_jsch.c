#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/campaign.h"
#include "adsmith/doc.h"
#include "adsmith/jsch.h"
#include "adsmith/vrep.h"

static msgpack_zone zone;
static struct vrep rep;
static struct ads_diag diag;

static void setup(void)
{
    cr_assert(msgpack_zone_init(&zone, 4096));
    vrep_init(&rep);
    memset(&diag, 0, sizeof(diag));
}

static void teardown(void)
{
    msgpack_zone_destroy(&zone);
}

TestSuite(jsch, .init = setup, .fini = teardown);

static struct jsch *compile(const char *schema)
{
    struct jsch *s = NULL;
    int rc = jsch_compile(schema, strlen(schema), &s, &diag);

    cr_assert_eq(rc, 0, "schema refused: %s at '%s'", diag.message, diag.pointer);
    cr_assert_not_null(s);
    return s;
}

/* Expects @p schema to be refused at @p pointer with a message containing @p part. */
static void refused(const char *schema, const char *pointer, const char *part)
{
    struct jsch *s = NULL;
    int rc = jsch_compile(schema, strlen(schema), &s, &diag);

    cr_assert_eq(rc, ADS_EINVAL, "accepted: %s", schema);
    cr_expect_null(s);
    cr_expect_str_eq(diag.pointer, pointer, "%s: pointer '%s' (%s)", schema, diag.pointer, diag.message);
    cr_expect(strstr(diag.message, part) != NULL, "%s: \"%s\" lacks \"%s\"", schema, diag.message, part);
}

static msgpack_object parse(const char *json)
{
    msgpack_object o;
    int rc = doc_parse(DOC_JSON, json, strlen(json), &zone, &o, &diag);

    cr_assert_eq(rc, 0, "%s: %s", json, diag.message);
    return o;
}

/* Validates @p json (the report starts empty); returns whether it is valid, checking it agrees with the report. */
static bool check(const struct jsch *s, const char *json)
{
    msgpack_object o = parse(json);
    int rc;

    vrep_init(&rep);
    rc = jsch_validate(s, &o, &rep);
    cr_assert(rc == 0 || rc == ADS_EINVAL);
    cr_assert_eq(rc == 0, rep.total == 0, "%s: rc %d with %zu problems", json, rc, rep.total);
    return rc == 0;
}

static const struct vrep_item *find(const char *pointer, const char *rule)
{
    for (size_t i = 0; i < rep.count; i++) {
        if (strcmp(rep.items[i].pointer, pointer) == 0 && strcmp(rep.items[i].rule, rule) == 0)
            return &rep.items[i];
    }
    return NULL;
}

static void dump(void)
{
    for (size_t i = 0; i < rep.count; i++)
        fprintf(stderr, "  %s: %s (%s)\n", rep.items[i].pointer, rep.items[i].message, rep.items[i].rule);
}

/* Expects a problem at @p pointer with @p rule whose message contains @p part. */
static void has(const char *pointer, const char *rule, const char *part)
{
    const struct vrep_item *it = find(pointer, rule);

    if (it == NULL)
        dump();
    cr_assert_not_null(it, "no %s problem at '%s'", rule, pointer);
    cr_expect(strstr(it->message, part) != NULL, "%s: \"%s\" lacks \"%s\"", pointer, it->message, part);
}

/* ---- one schema with every supported keyword ---- */

static const char every_keyword[] =
    "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\","
    " \"$id\": \"https://adsmith.invalid/test.json\", \"title\": \"test\", \"description\": \"A test.\","
    " \"$comment\": \"every keyword\", \"type\": \"object\", \"required\": [\"id\", \"kind\"],"
    " \"additionalProperties\": false, \"dependentRequired\": {\"end\": [\"start\"]},"
    " \"minProperties\": 2, \"maxProperties\": 16,"
    " \"properties\": {"
    "  \"id\": {\"description\": \"An id: 1-8 letters a-z\", \"type\": \"string\", \"minLength\": 1,"
    "          \"maxLength\": 8, \"pattern\": \"^[a-z]+$\"},"
    "  \"kind\": {\"enum\": [\"alpha\", \"beta\", 3, null]},"
    "  \"version\": {\"const\": \"v1\", \"default\": \"v1\", \"readOnly\": true, \"examples\": [\"v1\"]},"
    "  \"start\": {\"$ref\": \"#/$defs/time\"},"
    "  \"end\": {\"description\": \"When it ends.\", \"$ref\": \"#/$defs/time\"},"
    "  \"score\": {\"type\": \"number\", \"exclusiveMinimum\": 0, \"exclusiveMaximum\": 1},"
    "  \"count\": {\"type\": [\"integer\", \"null\"], \"minimum\": -5, \"maximum\": 10},"
    "  \"tags\": {\"type\": \"array\", \"minItems\": 1, \"maxItems\": 3, \"uniqueItems\": true,"
    "            \"items\": {\"type\": \"string\", \"maxLength\": 3}},"
    "  \"labels\": {\"type\": \"object\", \"minProperties\": 1, \"maxProperties\": 2,"
    "              \"propertyNames\": {\"pattern\": \"^[a-z]{1,4}$\"}, \"additionalProperties\": {\"type\": \"boolean\"}},"
    "  \"choice\": {\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]},"
    "  \"one\": {\"oneOf\": [{\"type\": \"integer\"}, {\"minimum\": 5}]},"
    "  \"all\": {\"allOf\": [{\"type\": \"integer\"}, {\"minimum\": 2}]},"
    "  \"nope\": {\"not\": {\"description\": \"a string\", \"type\": \"string\"}},"
    "  \"mode\": {\"type\": \"object\", \"if\": {\"properties\": {\"m\": {\"const\": \"a\"}}, \"required\": [\"m\"]},"
    "            \"then\": {\"required\": [\"a\"], \"properties\": {\"b\": false}}, \"else\": {\"required\": [\"b\"]}},"
    "  \"any\": true, \"never\": false},"
    " \"$defs\": {\"time\": {\"description\": \"Unix seconds\", \"type\": \"integer\", \"minimum\": 0,"
    "                      \"maximum\": 32503680000}}}";

Test(jsch, every_keyword_valid)
{
    struct jsch *s = compile(every_keyword);

    cr_expect(check(s, "{\"id\": \"abc\", \"kind\": \"alpha\", \"version\": \"v1\", \"start\": 0, \"end\": 1.0e3,"
                       " \"score\": 0.5, \"count\": null, \"tags\": [\"a\", \"b\"], \"labels\": {\"x\": true},"
                       " \"choice\": 3, \"one\": 1, \"all\": 2, \"nope\": 1, \"mode\": {\"m\": \"a\", \"a\": 1},"
                       " \"any\": {\"x\": [1]}}"));
    cr_expect(check(s, "{\"id\": \"a\", \"kind\": null, \"count\": -5, \"choice\": \"s\", \"one\": 6.5,"
                       " \"mode\": {\"m\": \"b\", \"b\": 0}}"));
    cr_expect(check(s, "{\"id\": \"a\", \"kind\": 3.0}"), "3.0 equals the enum's 3");
    jsch_free(s);
}

Test(jsch, every_keyword_every_problem)
{
    struct jsch *s = compile(every_keyword);

    cr_assert_not(check(s, "{\"id\": \"ABCDEFGHIJ\", \"kind\": \"gamma\", \"version\": \"v2\", \"end\": 5,"
                           " \"score\": 1, \"count\": 1.5, \"tags\": [\"a\", \"a\", \"abcd\"],"
                           " \"labels\": {\"ok\": true, \"TOOLONG\": true, \"x\": \"no\"}, \"choice\": true,"
                           " \"one\": 7, \"all\": 1.5, \"nope\": \"s\", \"mode\": {\"m\": \"a\", \"b\": 1},"
                           " \"never\": 1, \"colour\": 1, \"a/b\": 1}"));
    has("/id", "schema:maxLength", "is 10 characters; the most allowed is 8");
    has("/id", "schema:pattern", "must match ^[a-z]+$ (An id: 1-8 letters a-z)");
    has("/kind", "schema:enum", "must be one of: alpha, beta, 3, null");
    has("/version", "schema:const", "must be \"v1\"");
    has("/start", "schema:dependentRequired", "is required when end is present");
    has("/score", "schema:exclusiveMaximum", "is 1; it must be less than 1");
    has("/count", "schema:type", "must be an integer or null, not 1.5");
    has("/tags/1", "schema:uniqueItems", "repeats item 0 (\"a\")");
    has("/tags/2", "schema:maxLength", "is 4 characters");
    has("/labels", "schema:maxProperties", "has 3 members; the most allowed is 2");
    has("/labels/TOOLONG", "schema:propertyNames", "the name \"TOOLONG\" is not allowed here: it must match");
    has("/labels/x", "schema:type", "must be a boolean, not a string");
    has("/choice", "schema:anyOf", "matches none of the 2 allowed forms: (1) must be a string, not a boolean; (2)");
    has("/one", "schema:oneOf", "matches alternatives 1 and 2 of 2; it must match exactly one");
    has("/all", "schema:type", "must be an integer, not 1.5");
    has("/all", "schema:minimum", "is 1.5; the least allowed is 2");
    has("/nope", "schema:not", "is not allowed here: it must not be a string");
    has("/mode/a", "schema:required", "is required when m is \"a\"");
    has("/mode/b", "schema:false", "is not allowed when m is \"a\"");
    has("/never", "schema:false", "is not allowed here");
    has("/colour", "schema:additionalProperties", "unknown member \"colour\"; allowed members: id, kind, version");
    has("/a~1b", "schema:additionalProperties", "unknown member \"a/b\"");
    cr_expect_eq(rep.total, 22, "every problem once, and no branch leaking out of anyOf/oneOf/not/if");
    cr_expect_eq(rep.count, 22);
    cr_expect_eq(rep.schema_total, 22);
    jsch_free(s);
}

Test(jsch, required_min_properties_and_else)
{
    struct jsch *s = compile(every_keyword);

    cr_assert_not(check(s, "{\"id\": \"a\", \"labels\": {}, \"tags\": [], \"mode\": {\"m\": \"b\"}}"));
    has("/kind", "schema:required", "is required");
    has("/labels", "schema:minProperties", "has 0 members; it needs at least 1");
    has("/tags", "schema:minItems", "has 0 items; it needs at least 1");
    has("/mode/b", "schema:required", "is required");
    cr_expect_eq(rep.total, 4);

    cr_assert_not(check(s, "{\"id\": \"\"}"));
    has("/id", "schema:minLength", "must not be empty");
    has("/id", "schema:pattern", "must match");
    has("/kind", "schema:required", "is required");
    has("", "schema:minProperties", "has 1 member; it needs at least 2 of: id, kind");

    cr_assert_not(check(s, "[1]"));
    has("", "schema:type", "must be an object, not an array");
    cr_expect_eq(rep.total, 1, "keywords of other types do not apply");
    jsch_free(s);
}

Test(jsch, pointers_are_escaped)
{
    struct jsch *s = compile("{\"additionalProperties\": {\"type\": \"integer\"}}");

    cr_assert_not(check(s, "{\"a/b\": \"x\", \"t~\": \"y\", \"\": \"z\", \"ok\": 1}"));
    has("/a~1b", "schema:type", "must be an integer");
    has("/t~0", "schema:type", "must be an integer");
    has("/", "schema:type", "must be an integer");
    cr_expect_eq(rep.total, 3);
    jsch_free(s);
}

Test(jsch, boolean_schemas)
{
    struct jsch *yes = compile("true"), *no = compile("false");

    cr_expect(check(yes, "{\"anything\": [1, 2.5, null]}"));
    cr_expect_not(check(no, "1"));
    has("", "schema:false", "is not allowed here");
    jsch_free(yes);
    jsch_free(no);
}

/* ---- numbers ---- */

Test(jsch, integers_are_numbers_without_fraction)
{
    struct jsch *s = compile("{\"type\": \"integer\"}");

    cr_expect(check(s, "1"));
    cr_expect(check(s, "1.0"));
    cr_expect(check(s, "1e3"));
    cr_expect(check(s, "-0.0"));
    cr_expect(check(s, "18446744073709551615"));
    cr_expect(check(s, "-9223372036854775808"));
    cr_expect_not(check(s, "1.5"));
    has("", "schema:type", "must be an integer, not 1.5");
    cr_expect_not(check(s, "\"1\""));
    has("", "schema:type", "must be an integer, not a string");
    jsch_free(s);
}

Test(jsch, bounds_compare_exactly)
{
    struct jsch *max = compile("{\"maximum\": 10}"), *min = compile("{\"minimum\": -9223372036854775808}");
    struct jsch *big = compile("{\"minimum\": 9007199254740993}"), *frac = compile("{\"maximum\": 1.5}");

    cr_expect_not(check(max, "18446744073709551615"), "a uint64 past 2^63 is not below 10");
    has("", "schema:maximum", "is 18446744073709551615; the most allowed is 10");
    cr_expect(check(max, "10.0"));
    cr_expect(check(max, "-18446744073709551616"));
    cr_expect(check(min, "-9223372036854775808"));
    cr_expect_not(check(min, "-9223372036854775809.5e3"));
    cr_expect_not(check(big, "9007199254740992"), "2^53 is below 2^53 + 1 (no rounding through double)");
    cr_expect(check(big, "9007199254740993"));
    cr_expect(check(frac, "1"));
    cr_expect_not(check(frac, "2"));
    cr_expect_not(check(frac, "1.5000000001"));
    jsch_free(max);
    jsch_free(min);
    jsch_free(big);
    jsch_free(frac);
}

/* ---- strings ---- */

Test(jsch, lengths_count_code_points)
{
    struct jsch *s = compile("{\"maxLength\": 3, \"minLength\": 2}");

    cr_expect(check(s, "\"\xc3\xa9\xc3\xa9\xc3\xa9\""), "3 characters in 6 bytes");
    cr_expect(check(s, "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\""), "2 characters in 8 bytes");
    cr_expect_not(check(s, "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\""));
    has("", "schema:maxLength", "is 4 characters; the most allowed is 3");
    cr_expect_not(check(s, "\"a\""));
    has("", "schema:minLength", "is 1 character; the least allowed is 2");
    jsch_free(s);
}

/* ---- equality ---- */

Test(jsch, unique_items_and_enum_use_json_equality)
{
    struct jsch *u = compile("{\"uniqueItems\": true}");
    struct jsch *e = compile("{\"enum\": [{\"a\": 1, \"b\": [1, 2]}, \"x\"]}");

    cr_expect_not(check(u, "[1, 1.0]"));
    has("/1", "schema:uniqueItems", "repeats item 0");
    cr_expect_not(check(u, "[0, -0.0]"));
    cr_expect_not(check(u, "[{\"a\": 1, \"b\": [1, 2]}, {\"b\": [1, 2.0], \"a\": 1}]"), "key order does not matter");
    cr_expect(check(u, "[\"1\", 1, true, null, [1], {\"a\": 1}, {\"a\": 1, \"b\": 2}, [1, 2]]"));
    cr_expect_not(check(u, "[\"x\", \"y\", \"x\", \"x\"]"));
    has("/2", "schema:uniqueItems", "repeats item 0");
    has("/3", "schema:uniqueItems", "repeats item 0");
    cr_expect_eq(rep.total, 2);
    cr_expect(check(e, "{\"b\": [1.0, 2], \"a\": 1}"));
    cr_expect_not(check(e, "{\"a\": 1, \"b\": [2, 1]}"));
    cr_expect_not(check(e, "{\"a\": 1, \"b\": [1, 2], \"c\": null}"));
    jsch_free(u);
    jsch_free(e);
}

Test(jsch, duplicate_members_last_wins)
{
    struct jsch *s = compile("{\"properties\": {\"a\": {\"type\": \"integer\"}}, \"maxProperties\": 1}");

    cr_expect(check(s, "{\"a\": \"x\", \"a\": 1}"), "JSON.parse keeps the last member, and so does ajv");
    cr_expect_not(check(s, "{\"a\": 1, \"a\": \"x\"}"));
    has("/a", "schema:type", "must be an integer");
    cr_expect_eq(rep.total, 1);
    jsch_free(s);
}

Test(jsch, messagepack_documents)
{
    struct jsch *s = compile("{\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"integer\", \"maximum\": 3}}}");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_object o;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "n", 1);
    msgpack_pack_float(&pk, 4.0f);
    cr_assert_eq(doc_parse(DOC_MSGPACK, sb.data, sb.size, &zone, &o, &diag), 0, "%s", diag.message);
    vrep_init(&rep);
    cr_expect_eq(jsch_validate(s, &o, &rep), ADS_EINVAL);
    has("/n", "schema:maximum", "is 4; the most allowed is 3");
    cr_expect_eq(rep.total, 1, "a float 4.0 is an integer");
    msgpack_sbuffer_destroy(&sb);
    jsch_free(s);
}

/* ---- patterns ---- */

static struct jsch *pattern_schema(const char *pattern)
{
    char text[512];

    snprintf(text, sizeof(text), "{\"pattern\": \"%s\"}", pattern);
    return compile(text);
}

static const struct {
    const char *pattern; /* JSON string contents */
    const char *input;   /* JSON text */
    bool match;
} regex_cases[] = {
    {"abc", "\"xxabcxx\"", true}, /* a search, not a full match */
    {"^abc$", "\"xabc\"", false},
    {"^abc", "\"abcx\"", true},
    {"c$", "\"abc\"", true},
    {"^$", "\"\"", true},
    {"^$", "\"a\"", false},
    {"a.c", "\"a\xf0\x9f\x98\x80" "c\"", true}, /* . is one code point, an astral one too */
    {"^..$", "\"\xf0\x9f\x98\x80\"", false},
    {"^.$", "\"\\n\"", false},
    {"^\\\\d{3}$", "\"123\"", true},
    {"^\\\\d{3}$", "\"12a\"", false},
    {"^\\\\w+$", "\"a_Z9\"", true},
    {"^\\\\w$", "\"\xc3\xa9\"", false},
    {"^\\\\s$", "\"\\u00a0\"", true},
    {"^\\\\D\\\\W\\\\S$", "\"a-b\"", true},
    {"^\\\\D$", "\"5\"", false},
    {"^[a-c]+$", "\"abcab\"", true},
    {"^[a-c]+$", "\"abd\"", false},
    {"^[^a-c]$", "\"d\"", true},
    {"^[^a-c]$", "\"a\"", false},
    {"^[\\\\-.]+$", "\"-.-\"", true},
    {"^[-a]+$", "\"a-\"", true},
    {"^[\\\\d_]+$", "\"1_2\"", true},
    {"^[^\\\\u0000-\\\\u001F\\\\u007F]*$", "\"h\xc3\xa9llo\"", true},
    {"^[^\\\\u0000-\\\\u001F\\\\u007F]*$", "\"a\\u0001\"", false},
    {"^[^\\\\u0000-\\\\u001F\\\\u007F]*$", "\"a\\u007f\"", false},
    {"^\\\\u0041\\\\x42$", "\"AB\"", true},
    {"^\\\\u{1F600}$", "\"\xf0\x9f\x98\x80\"", true},
    {"^\\\\uD83D\\\\uDE00$", "\"\xf0\x9f\x98\x80\"", true},
    {"^\\\\t\\\\n\\\\r\\\\f\\\\v\\\\cA$", "\"\\t\\n\\r\\f\\u000b\\u0001\"", true},
    {"^[\\\\b]$", "\"\\b\"", true},
    {"^\\\\$\\\\^\\\\.\\\\*\\\\+\\\\?\\\\(\\\\)\\\\[\\\\]\\\\{\\\\}\\\\|\\\\/\\\\\\\\$", "\"$^.*+?()[]{}|/\\\\\"", true},
    {"^(ab|cd)+$", "\"abcdab\"", true},
    {"^(ab|cd)+$", "\"abc\"", false},
    {"^(?:ab){2}$", "\"abab\"", true},
    {"^(?:ab){2}$", "\"ab\"", false},
    {"^a{2,3}$", "\"aaa\"", true},
    {"^a{2,3}$", "\"aaaa\"", false},
    {"^a{2,}$", "\"aaaaa\"", true},
    {"^a{2,}$", "\"a\"", false},
    {"^(a|b){0,2}c$", "\"abc\"", true},
    {"^(a|b){0,2}c$", "\"abac\"", false},
    {"^a*?b$", "\"aab\"", true},
    {"^colou?r$", "\"color\"", true},
    {"b|^a", "\"xb\"", true},
    {"b|^a", "\"xa\"", false},
    {"^(a|ab)(c|bcd)(d*)$", "\"abcd\"", true}, /* needs backtracking */
    {"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$", "\"a-b.example.com\"", true},
    {"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$", "\"a-.example\"", false},
    {"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$", "\"America/Argentina/Buenos_Aires\"", true},
    {"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$", "\"a/b/c/d\"", false},
};

Test(jsch, regex_constructs)
{
    for (size_t i = 0; i < sizeof(regex_cases) / sizeof(regex_cases[0]); i++) {
        struct jsch *s = pattern_schema(regex_cases[i].pattern);
        bool ok = check(s, regex_cases[i].input);

        cr_expect_eq(ok, regex_cases[i].match, "/%s/ on %s: expected %s", regex_cases[i].pattern,
                     regex_cases[i].input, regex_cases[i].match ? "a match" : "none");
        if (!ok)
            has("", "schema:pattern", "must match");
        jsch_free(s);
    }
}

Test(jsch, regex_refused_syntax)
{
    static const struct {
        const char *pattern;
        const char *part;
    } cases[] = {
        {"\\\\bword", "word boundary"},
        {"a(?=b)", "lookaround"},
        {"(?<n>a)", "named groups"},
        {"(a)\\\\1", "backreference"},
        {"\\\\p{L}", "property"},
        {"a\\\\-b", "only inside [...]"},
        {"\\\\e", "invalid escape"},
        {"\\\\x4", "hex digits"},
        {"a{", "incomplete quantifier"},
        {"a{,2}", "incomplete quantifier"},
        {"a{3,1}", "out of order"},
        {"{", "lone {"},
        {"]", "lone ]"},
        {"*a", "nothing to repeat"},
        {"a**", "nothing to repeat"},
        {"^*", "cannot be repeated"},
        {"[z-a]", "out of order"},
        {"[\\\\d-z]", "cannot start or end"},
        {"[ab", "missing its ]"},
        {"(ab", "missing its )"},
        {"ab)", "without its ("},
        {"(a*)*", "empty string"},
        {"(ab){1001}", "more than 1000"},
    };
    char text[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "{\"properties\": {\"x\": {\"pattern\": \"%s\"}}}", cases[i].pattern);
        refused(text, "/properties/x/pattern", cases[i].part);
    }
}

Test(jsch, regex_step_limit_reports)
{
    struct jsch *s = pattern_schema("^(a+)+$");

    cr_expect_not(check(s, "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\""), "exponential backtracking is cut short");
    has("", "schema:pattern", "too long or complex to check");
    cr_expect(check(s, "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""));
    jsch_free(s);
}

Test(jsch, long_strings_match_in_linear_time)
{
    struct jsch *s = pattern_schema("^[^\\\\u0000-\\\\u001F\\\\u007F]*$");
    size_t n = 200000;
    char *doc = malloc(n + 3);

    cr_assert_not_null(doc);
    memset(doc, 'x', n + 2);
    doc[0] = '"';
    doc[n + 1] = '"';
    doc[n + 2] = '\0';
    cr_expect(check(s, doc));
    free(doc);
    jsch_free(s);
}

/* ---- refusing what is not supported ---- */

Test(jsch, compile_refusals)
{
    refused("{\"properties\": {\"a\": {\"format\": \"email\"}}}", "/properties/a/format", "\"format\" is not supported");
    refused("{\"$ref\": \"other.json#/x\"}", "/$ref", "#/$defs/NAME");
    refused("{\"$ref\": \"#/$defs/missing\"}", "/$ref", "names no member");
    refused("{\"properties\": {\"a\": {\"$defs\": {}}}}", "/properties/a/$defs", "only at the root");
    refused("{\"items\": [{}]}", "/items", "prefixItems");
    refused("{\"type\": \"float\"}", "/type", "type must be");
    refused("{\"type\": [\"string\", \"string\"]}", "/type", "twice");
    refused("{\"$schema\": \"http://json-schema.org/draft-07/schema#\"}", "/$schema", "2020-12");
    refused("{\"minLength\": -1}", "/minLength", "non-negative integer");
    refused("{\"required\": [\"a\", \"a\"]}", "/required", "twice");
    refused("{\"anyOf\": []}", "/anyOf", "non-empty array");
    refused("{\"properties\": 1}", "/properties", "object of schemas");
    refused("{\"enum\": 1}", "/enum", "array");
    refused("{\"$defs\": {\"a\": {\"$ref\": \"#/$defs/b\"}, \"b\": {\"allOf\": [{\"$ref\": \"#/$defs/a\"}]}},"
            " \"$ref\": \"#/$defs/a\"}",
            "/$defs/a", "cycle");
    refused("{\"$defs\": {\"a\": {\"not\": {\"$ref\": \"#/$defs/a\"}}}}", "/$defs/a/not", "cycle");
    refused("[]", "", "object or a boolean");
    refused("{", "", "not valid JSON");
}

Test(jsch, recursion_through_properties_is_fine)
{
    struct jsch *s = compile("{\"$defs\": {\"node\": {\"type\": \"object\", \"properties\":"
                             " {\"child\": {\"$ref\": \"#/$defs/node\"}}}}, \"$ref\": \"#/$defs/node\"}");

    cr_expect(check(s, "{\"child\": {\"child\": {}}}"));
    cr_expect_not(check(s, "{\"child\": {\"child\": {\"child\": 1}}}"));
    has("/child/child/child", "schema:type", "must be an object, not an integer");
    jsch_free(s);
}

/* ---- the campaign schema ---- */

Test(jsch, campaign_schema_compiles_and_accepts_the_examples)
{
    static const char *const examples[] = {"campaign-game-ip.json", "campaign-retail.json"};
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    struct jsch *s;
    char path[1024];

    cr_assert_eq(jsch_compile(camp_schema_json, camp_schema_json_len, &s, &diag), 0, "%s at %s", diag.message,
                 diag.pointer);
    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is not set (meson test sets it)");
    for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
        static char text[65536];
        FILE *f;
        size_t n;
        snprintf(path, sizeof(path), "%s/schemas/examples/%s", root, examples[i]);
        f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = '\0';
        cr_expect(check(s, text), "%s", examples[i]);
    }
    cr_expect_not(check(s, "{\"id\": \"x\", \"status\": \"running\", \"currency\": \"usd\"}"));
    has("/status", "schema:enum", "must be one of: draft, active, paused, archived");
    has("/currency", "schema:pattern", "must match ^[A-Z]{3}$ (ISO 4217 alphabetic currency code)");
    has("/flight", "schema:required", "is required: When the campaign may serve");
    jsch_free(s);
}
