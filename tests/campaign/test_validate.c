#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/campaign.h"
#include "adsmith/doc.h"
#include "adsmith/vrep.h"

static struct camp_validator *val;
static msgpack_zone zone;
static struct vrep rep;
static struct ads_diag diag;

static const char *const all_backends[] = {"builtin", "openai-compat"};
static const struct camp_rules rules = {all_backends, 2};

static void setup(void)
{
    cr_assert_eq(camp_validator_new(&val, &diag), 0, "%s at %s", diag.message, diag.pointer);
    cr_assert(msgpack_zone_init(&zone, 4096));
}

static void teardown(void)
{
    msgpack_zone_destroy(&zone);
    camp_validator_free(val);
}

TestSuite(campaign, .init = setup, .fini = teardown);

static char *read_example(const char *name)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[1024];
    char *text;
    FILE *f;
    long n;

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is not set (meson test sets it)");
    snprintf(path, sizeof(path), "%s/schemas/examples/%s", root, name);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = malloc((size_t)n + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

static cJSON *example(const char *name)
{
    char *text = read_example(name);
    cJSON *j = cJSON_Parse(text);

    cr_assert_not_null(j, "%s does not parse", name);
    free(text);
    return j;
}

/* Validates JSON @p text with @p r into the report; returns whether it is valid (and checks the return code). */
static bool validate_text(const char *text, const struct camp_rules *r)
{
    msgpack_object o;
    int rc;

    cr_assert_eq(doc_parse(DOC_JSON, text, strlen(text), &zone, &o, &diag), 0, "%s", diag.message);
    vrep_init(&rep);
    rc = camp_validate(val, &o, r, &rep);
    cr_assert_eq(rc == 0, vrep_ok(&rep), "return code %d with %zu problems", rc, rep.total);
    cr_assert(rc == 0 || rc == ADS_EINVAL);
    return rc == 0;
}

static bool validate(cJSON *doc, const struct camp_rules *r)
{
    char *text = cJSON_PrintUnformatted(doc);
    bool ok;

    cr_assert_not_null(text);
    ok = validate_text(text, r);
    free(text);
    return ok;
}

/* The parent of @p pointer ("/a/0/b") in @p doc, and in *ret_last its last reference token. */
static cJSON *parent_of(cJSON *doc, const char *pointer, char *ret_last, size_t cap)
{
    char tok[128];
    const char *p = pointer + 1;
    cJSON *at = doc;

    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        cr_assert_lt(n, sizeof(tok));
        memcpy(tok, p, n);
        tok[n] = '\0';
        if (slash == NULL) {
            snprintf(ret_last, cap, "%s", tok);
            return at;
        }
        at = cJSON_IsArray(at) ? cJSON_GetArrayItem(at, (int)strtol(tok, NULL, 10)) : cJSON_GetObjectItemCaseSensitive(at, tok);
        cr_assert_not_null(at, "%s: no %s", pointer, tok);
        p = slash + 1;
    }
}

/* Sets the value at @p pointer to the JSON text @p raw (written as is: "1.0" stays 1.0), or removes it (NULL). */
static void set(cJSON *doc, const char *pointer, const char *raw)
{
    char last[128];
    cJSON *parent = parent_of(doc, pointer, last, sizeof(last));

    if (cJSON_IsArray(parent)) {
        int i = (int)strtol(last, NULL, 10);
        if (raw == NULL)
            cJSON_DeleteItemFromArray(parent, i);
        else if (i < cJSON_GetArraySize(parent))
            cJSON_ReplaceItemInArray(parent, i, cJSON_CreateRaw(raw));
        else
            cJSON_AddItemToArray(parent, cJSON_CreateRaw(raw));
        return;
    }
    if (raw == NULL) {
        cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
        return;
    }
    if (cJSON_GetObjectItemCaseSensitive(parent, last) != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(parent, last, cJSON_CreateRaw(raw));
    else
        cJSON_AddItemToObject(parent, last, cJSON_CreateRaw(raw));
}

/* The problem at @p pointer with @p rule whose message contains @p part (else any at pointer and rule, else NULL). */
static const struct vrep_item *find(const char *pointer, const char *rule, const char *part)
{
    const struct vrep_item *any = NULL;

    for (size_t i = 0; i < rep.count; i++) {
        if (strcmp(rep.items[i].pointer, pointer) != 0 || strcmp(rep.items[i].rule, rule) != 0)
            continue;
        if (strstr(rep.items[i].message, part) != NULL)
            return &rep.items[i];
        any = &rep.items[i];
    }
    return any;
}

static void dump(void)
{
    for (size_t i = 0; i < rep.count; i++)
        fprintf(stderr, "  %s: %s (%s)\n", rep.items[i].pointer, rep.items[i].message, rep.items[i].rule);
}

/* Expects a problem at @p pointer with @p rule whose message contains @p part. */
static void has(const char *pointer, const char *rule, const char *part)
{
    const struct vrep_item *it = find(pointer, rule, part);

    if (it == NULL)
        dump();
    cr_assert_not_null(it, "no %s problem at '%s'", rule, pointer);
    cr_expect(strstr(it->message, part) != NULL, "%s: \"%s\" lacks \"%s\"", pointer, it->message, part);
}

static size_t count_rule(const char *rule)
{
    size_t n = 0;

    for (size_t i = 0; i < rep.count; i++)
        n += strcmp(rep.items[i].rule, rule) == 0;
    return n;
}

/* Expects exactly one problem, @p rule at @p pointer. */
static void only(const char *pointer, const char *rule, const char *part)
{
    if (rep.total != 1)
        dump();
    cr_expect_eq(rep.total, 1, "expected only %s at %s", rule, pointer);
    has(pointer, rule, part);
}

Test(campaign, examples_are_valid)
{
    static const char *const names[] = {"campaign-game-ip.json", "campaign-retail.json", "campaign-demo.json"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *text = read_example(names[i]);
        bool ok = validate_text(text, &rules);
        if (!ok)
            dump();
        cr_expect(ok, "%s: %zu problems", names[i], rep.total);
        free(text);
    }
}

Test(campaign, examples_valid_as_messagepack)
{
    char *text = read_example("campaign-game-ip.json");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_object o, back;

    cr_assert_eq(doc_parse(DOC_JSON, text, strlen(text), &zone, &o, &diag), 0);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    cr_assert_eq(msgpack_pack_object(&pk, o), 0);
    cr_assert_eq(doc_parse(DOC_MSGPACK, sb.data, sb.size, &zone, &back, &diag), 0, "%s", diag.message);
    vrep_init(&rep);
    cr_expect_eq(camp_validate(val, &back, &rules, &rep), 0);
    cr_expect_eq(rep.total, 0);
    msgpack_sbuffer_destroy(&sb);
    free(text);
}

/* A JSON string literal of @p times copies of @p piece, in @p out. */
static const char *repeated(char *out, size_t cap, const char *piece, int times)
{
    size_t len = 0, n = strlen(piece);

    cr_assert_lt((size_t)times * n + 3, cap);
    out[len++] = '"';
    for (int i = 0; i < times; i++, len += n)
        memcpy(out + len, piece, n);
    out[len++] = '"';
    out[len] = '\0';
    return out;
}

/* ---- every semantic rule, failing, at its pointer ---- */

Test(campaign, end_after_start)
{
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/flight/end", "1764547200");
    cr_expect_not(validate(d, &rules));
    only("/flight/end", "semantic:end_after_start", "is 1764547200, not after start (1764547200)");
    set(d, "/flight/end", "5");
    cr_expect_not(validate(d, &rules));
    only("/flight/end", "semantic:end_after_start", "must end after it starts");
    cJSON_Delete(d);
}

Test(campaign, daypart_end_after_start)
{
    cJSON *d = example("campaign-retail.json");

    set(d, "/targeting/dayparting/1/end_hour", "17");
    cr_expect_not(validate(d, &rules));
    only("/targeting/dayparting/1/end_hour", "semantic:daypart_end_after_start", "not after start_hour (17)");
    cJSON_Delete(d);
}

Test(campaign, daily_within_total)
{
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/budget/daily_micros", "600000000001");
    cr_expect_not(validate(d, &rules));
    only("/budget/daily_micros", "semantic:daily_within_total", "more than total_micros (600000000000)");
    cJSON_Delete(d);
}

Test(campaign, frequency_caps_order)
{
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/frequency_caps/per_hour", "50");
    set(d, "/frequency_caps/per_day", "41");
    cr_expect_not(validate(d, &rules));
    has("/frequency_caps/per_hour", "semantic:frequency_caps_order", "is 50, more than per_day (41)");
    has("/frequency_caps/per_day", "semantic:frequency_caps_order", "is 41, more than lifetime (40)");
    cr_expect_eq(rep.total, 2);
    /* Without per_day, per_hour is compared with lifetime. */
    set(d, "/frequency_caps/per_day", NULL);
    set(d, "/frequency_caps/per_hour", "41");
    cr_expect_not(validate(d, &rules));
    only("/frequency_caps/per_hour", "semantic:frequency_caps_order", "more than lifetime (40)");
    cJSON_Delete(d);
}

Test(campaign, currency_known)
{
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/currency", "\"XTS\"");
    cr_expect_not(validate(d, &rules));
    only("/currency", "semantic:currency_known", "is not an ISO 4217 currency code in use");
    cJSON_Delete(d);
}

Test(campaign, time_zone_known)
{
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/flight/time_zone", "\"Mars/Olympus_Mons\"");
    cr_expect_not(validate(d, &rules));
    only("/flight/time_zone", "semantic:time_zone_known", "is not a time zone of the server's tz database");
    cJSON_Delete(d);
}

Test(campaign, backend_configured)
{
    static const char *const builtin[] = {"builtin"};
    const struct camp_rules only_builtin = {builtin, 1}, none = {NULL, 0};
    cJSON *d = example("campaign-retail.json");

    set(d, "/generation/backend", "\"openai-compat\"");
    cr_expect(validate(d, &rules));
    cr_expect_not(validate(d, &only_builtin));
    only("/generation/backend", "semantic:backend_configured", "names no generator backend of this server; configured: builtin");
    cr_expect_not(validate(d, &none));
    only("/generation/backend", "semantic:backend_configured", "this server configures none");
    cr_expect_not(validate(d, NULL));
    cJSON_Delete(d);
}

Test(campaign, slot_declared)
{
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/creatives/native/title", "\"{{frist_name}}, {{frist_name}} and {{first_name}}\"");
    set(d, "/creatives/banner/html_template", "\"<p>{{realm}} {{ not a slot }}</p>\"");
    cr_expect_not(validate(d, &rules));
    has("/creatives/native/title", "semantic:slot_declared",
        "uses {{frist_name}}, which /creatives/slots does not declare (declared: first_name, city, main_class)");
    has("/creatives/banner/html_template", "semantic:slot_declared", "uses {{realm}}");
    has("/creatives/banner/html_template", "semantic:slot_declared", "uses {{ not a slot }}");
    cr_expect_eq(rep.total, 3, "one problem per undeclared name and string");
    set(d, "/creatives/slots", NULL);
    set(d, "/creatives/native/title", "\"Hi {{first_name}}\"");
    set(d, "/creatives/banner/html_template", "\"<p>hello</p>\"");
    set(d, "/creatives/native/description", "\"A {{main_class}} mount\"");
    cr_expect_not(validate(d, &rules));
    has("/creatives/native/title", "semantic:slot_declared", "but /creatives/slots declares no slots");
    has("/creatives/native/description", "semantic:slot_declared", "{{main_class}}");
    cr_expect_eq(rep.total, 2);
    cJSON_Delete(d);
}

Test(campaign, fallback_within_max_length)
{
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/creatives/slots/first_name/fallback", "\"Warden of the Ashen Crown\"");
    cr_expect_not(validate(d, &rules));
    only("/creatives/slots/first_name/fallback", "semantic:fallback_within_max_length",
         "is 25 bytes, more than this slot's max_length (20)");
    cJSON_Delete(d);
}

Test(campaign, format_has_creative)
{
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/targeting/formats/2", "\"video\"");
    cr_expect_not(validate(d, &rules));
    only("/targeting/formats/2", "semantic:format_has_creative", "targets video, but /creatives has no video creative");
    cJSON_Delete(d);
}

Test(campaign, top_up_ids_unique)
{
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/token_package/top_ups/1", "{\"id\": \"po-2025-200\", \"tokens\": 5, \"at\": 1765000001}");
    set(d, "/token_package/top_ups/2", "{\"id\": \"po-2025-118\", \"tokens\": 5, \"at\": 1765000002}");
    cr_expect_not(validate(d, &rules));
    only("/token_package/top_ups/2/id", "semantic:top_up_ids_unique", "repeats the id of top-up 0");
    cJSON_Delete(d);
}

Test(campaign, byte_length)
{
    char buf[512];
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/name", repeated(buf, sizeof(buf), "\xc3\xa9", 100));             /* 100 characters, 200 bytes */
    set(d, "/creatives/native/cta", repeated(buf, sizeof(buf), "\xc3\xa9", 13)); /* 13 characters, 26 bytes */
    set(d, "/targeting/os/1", repeated(buf, sizeof(buf), "\xf0\x9f\x98\x80", 9)); /* 9 characters, 36 bytes */
    cr_expect_not(validate(d, &rules));
    has("/name", "semantic:byte_length", "is 200 bytes of UTF-8; the most allowed is 128 bytes");
    has("/creatives/native/cta", "semantic:byte_length", "is 26 bytes of UTF-8; the most allowed is 25 bytes");
    has("/targeting/os/1", "semantic:byte_length", "is 36 bytes of UTF-8; the most allowed is 32 bytes");
    cr_expect_eq(rep.total, 3);
    cJSON_Delete(d);
}

Test(campaign, integer_form)
{
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/flight/start", "1764547200.0");
    set(d, "/bid/amount_micros", "4.5e6");
    set(d, "/token_package/alert_thresholds/0", "50.000");
    cr_expect_not(validate(d, &rules));
    has("/flight/start", "semantic:integer_form", "write 1764547200, not 1764547200.0");
    has("/bid/amount_micros", "semantic:integer_form", "write 4500000, not 4500000.0");
    has("/token_package/alert_thresholds/0", "semantic:integer_form", "write 50, not 50.0");
    cr_expect_eq(rep.total, 3);
    cJSON_Delete(d);
}

Test(campaign, duplicate_member)
{
    char *text = read_example("campaign-demo.json");
    char *at = strstr(text, "\"pacing\": \"even\"");
    char *dup;

    cr_assert_not_null(at);
    dup = malloc(strlen(text) + 64);
    cr_assert_not_null(dup);
    snprintf(dup, strlen(text) + 64, "%.*s\"pacing\": \"asap\", \"pacing\": \"bogus\", %s", (int)(at - text), text, at);
    cr_expect_not(validate_text(dup, &rules));
    only("/pacing", "semantic:duplicate_member", "appears 3 times in this object");
    free(dup);
    free(text);
}

/* ---- reporting ---- */

Test(campaign, the_schema_problem_is_not_repeated)
{
    char buf[512];
    cJSON *d = example("campaign-game-ip.json");

    set(d, "/name", repeated(buf, sizeof(buf), "\xc3\xa9", 129)); /* over maxLength, so no byte_length */
    set(d, "/flight/end", "1.5");        /* not an integer: no end_after_start, no integer_form */
    set(d, "/currency", "\"usd\"");      /* the pattern fails: no currency_known */
    set(d, "/frequency_caps/per_day", "\"6\""); /* a string: per_hour and lifetime are not compared through it */
    set(d, "/creatives/slots/first_name/fallback", "\"a\\u0001 very long fallback value\"");
    cr_expect_not(validate(d, &rules));
    has("/name", "schema:maxLength", "is 129 characters; the most allowed is 128");
    has("/flight/end", "schema:type", "must be an integer, not 1.5");
    has("/currency", "schema:pattern", "must match ^[A-Z]{3}$");
    has("/frequency_caps/per_day", "schema:type", "must be an integer, not a string");
    has("/creatives/slots/first_name/fallback", "schema:pattern", "must match");
    cr_expect_eq(rep.total, 5, "no semantic rule reads a value the schema refused");
    cr_expect_eq(rep.schema_total, 5);
    cJSON_Delete(d);
}

Test(campaign, several_problems_all_reported)
{
    cJSON *d = example("campaign-retail.json");

    set(d, "/status", "\"running\"");
    set(d, "/colour", "\"blue\"");
    set(d, "/bid/strategy", "\"max_cpm\"");
    set(d, "/flight/end", "1765494000");
    set(d, "/budget/daily_micros", "50000000000");
    set(d, "/currency", "\"ABC\"");
    set(d, "/targeting/deals", NULL);
    set(d, "/token_package/alert_thresholds/1", "75");
    set(d, "/creatives/native/title", "\"{{city}}\"");
    cr_expect_not(validate(d, &rules));
    has("/status", "schema:enum", "must be one of: draft, active, paused, archived");
    has("/colour", "schema:additionalProperties", "unknown member \"colour\"; allowed members: id, advertiser, name");
    has("/bid/ceiling_cpm_micros", "schema:false", "is not allowed when strategy is \"max_cpm\"");
    has("/targeting/deals", "schema:dependentRequired", "is required when deals_only is present");
    has("/token_package/alert_thresholds/1", "schema:uniqueItems", "repeats item 0 (75)");
    has("/flight/end", "semantic:end_after_start", "not after start");
    has("/budget/daily_micros", "semantic:daily_within_total", "more than total_micros");
    has("/currency", "semantic:currency_known", "ISO 4217");
    has("/creatives/native/title", "semantic:slot_declared", "{{city}}");
    cr_expect_eq(rep.total, 9);
    cr_expect_eq(rep.schema_total, 5);
    cJSON_Delete(d);
}

Test(campaign, more_problems_than_the_report_keeps)
{
    cJSON *d = example("campaign-game-ip.json");
    char key[32];

    for (int i = 0; i < VREP_MAX + 36; i++) {
        snprintf(key, sizeof(key), "/unknown_%03d", i);
        set(d, key, "1");
    }
    set(d, "/flight/end", "1");
    cr_expect_not(validate(d, &rules));
    cr_expect_eq(rep.total, VREP_MAX + 36, "every problem is counted");
    cr_expect_eq(rep.count, VREP_MAX, "only VREP_MAX are kept");
    cr_expect_eq(count_rule("schema:additionalProperties"), VREP_MAX);
    cr_expect_str_eq(rep.items[VREP_MAX - 1].pointer, "/unknown_063");
    cr_expect_eq(count_rule("semantic:end_after_start"), 0);
    cJSON_Delete(d);
}

Test(campaign, not_an_object)
{
    cr_expect_not(validate_text("[]", &rules));
    only("", "schema:type", "must be an object, not an array");
    cr_expect_not(validate_text("{}", &rules));
    has("/id", "schema:required", "is required: The campaign id");
    has("/creatives", "schema:required", "is required");
    cr_expect_eq(rep.total, 11, "the 11 required members, nothing else");
}

/* ---- currencies ---- */

Test(campaign, currencies)
{
    static const char *const known[] = {"USD", "EUR", "JPY", "GBP", "CHF", "AED", "ZWG", "XOF", "XCD", "VES"};
    static const char *const unknown[] = {"XTS", "XXX", "XAU", "XAG", "XDR", "BOV", "CHE", "USN",
                                          "HRK", "VEF", "usd", "ABC", "ZZZ", "AAA"};
    char code[4] = "AAA";
    int n = 0;

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        cr_expect(camp_currency_known(known[i], 3), "%s", known[i]);
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        cr_expect_not(camp_currency_known(unknown[i], 3), "%s", unknown[i]);
    cr_expect_not(camp_currency_known("USD", 2));
    cr_expect_not(camp_currency_known("USDX", 4));
    /* Every code the list holds is found (a list out of order would hide some from bsearch). */
    for (code[0] = 'A'; code[0] <= 'Z'; code[0]++)
        for (code[1] = 'A'; code[1] <= 'Z'; code[1]++)
            for (code[2] = 'A'; code[2] <= 'Z'; code[2]++)
                n += camp_currency_known(code, 3);
    cr_expect_eq(n, 160);
}

Test(campaign, schema_has_integers_only)
{
    /* semantic:integer_form takes any float the schema accepted for an integer written as a float. */
    cr_expect_null(strstr(camp_schema_json, "\"number\""), "the campaign schema gained a \"number\" type: revisit integer_form");
    cr_expect_not_null(strstr(camp_schema_json, "\"integer\""));
}

/* A slot may come from the request's context (the time of day), and only from the sources the schema lists. */
Test(campaign, slot_sources)
{
    cJSON *d = example("campaign-demo.json");

    set(d, "/creatives/slots/city/source", "\"context.daypart\"");
    cr_expect(validate(d, &rules));
    set(d, "/creatives/slots/city/source", "\"context.weather\"");
    cr_expect_not(validate(d, &rules));
    has("/creatives/slots/city/source", "schema:pattern", "");
    cJSON_Delete(d);
}
