/*
 * End-to-end tests of user profiles and events (issue 3): the real daemon,
 * spoken to over h2c (HTTP/2 with prior knowledge) in JSON and MessagePack.
 * /v1/users/{id}: PUT (replace), PATCH (JSON Merge Patch), GET, DELETE
 * (erasure), aliases; POST /v1/events: counters, interests, deduplication,
 * all-or-nothing batches, decay. Each test starts its own daemon and ends
 * with a clean SIGTERM: exit 0 (a sanitizer build reports through it) and a
 * log of JSON records only.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

#define JSON "application/json"
#define MSGPACK "application/msgpack"

static struct e2e_daemon dmn;
static struct e2e_daemon aux; /* runs `adsmith export users` */
static struct e2e_resp rsp;   /* the latest response (64 KiB: kept off the stack) */

static void setup(void)
{
    int rc = e2e_daemon_init(&dmn);

    cr_assert_eq(rc, 0, "e2e_daemon_init: %s", dmn.why);
}

static void teardown(void)
{
    e2e_daemon_done(&aux);
    e2e_daemon_done(&dmn);
}

TestSuite(users, .init = setup, .fini = teardown);

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

/* ---- HTTP ---- */

/* Sends @p method @p path over h2c with @p len bytes of @p body in @p ctype (NULL: no
 * Content-Type) and Accept @p accept (NULL: none). The response is left in rsp. */
static void call(const char *method, const char *path, const char *ctype, const void *body, size_t len,
                 const char *accept)
{
    char ct[128], ac[128];
    const char *headers[3] = {NULL, NULL, NULL};
    size_t n = 0;
    struct e2e_req req = {
        .proto = E2E_H2C, .method = method, .path = path, .body = body, .body_len = len, .headers = headers};
    int rc;

    if (ctype != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        headers[n++] = ct;
    }
    if (accept != NULL) {
        snprintf(ac, sizeof(ac), "Accept: %s", accept);
        headers[n++] = ac;
    }
    rc = e2e_http(&dmn, &req, &rsp);
    cr_assert_eq(rc, 0, "cannot set up the request (%d)", rc);
    cr_assert_eq(rsp.code, CURLE_OK, "%s %s: %s (%s)", method, path, curl_easy_strerror(rsp.code), rsp.error);
    cr_assert_eq(rsp.version, CURL_HTTP_VERSION_2_0, "%s %s was not answered over HTTP/2", method, path);
    cr_assert_not(rsp.body_truncated, "%s %s: the response is larger than the test's buffer", method, path);
}

/* Like call() on /v1/users/@p id (already percent-encoded), with "?@p query" unless NULL. */
static void call_user(const char *method, const char *id, const char *query, const char *ctype, const void *body,
                      size_t len, const char *accept)
{
    char path[1024];

    snprintf(path, sizeof(path), "/v1/users/%s%s%s", id, query != NULL ? "?" : "", query != NULL ? query : "");
    call(method, path, ctype, body, len, accept);
}

/* call_user() with a NUL-terminated body, no query and no Accept. */
static void send_user(const char *method, const char *id, const char *ctype, const char *body)
{
    call_user(method, id, NULL, ctype, body, strlen(body), NULL);
}

static void send_events(const char *ctype, const char *body)
{
    call("POST", "/v1/events", ctype, body, strlen(body), NULL);
}

static void assert_status(long status, const char *what)
{
    cr_assert_eq(rsp.status, status, "%s: status %ld, expected %ld; body: %s", what, rsp.status, status, rsp.body);
}

/* Asserts an error response of @p status and @p code, and its pointer unless @p pointer is NULL. */
static void assert_error(long status, const char *code, const char *pointer)
{
    const cJSON *p;
    cJSON *doc;
    bool ok;

    e2e_assert_error_json(&rsp, status, code);
    if (pointer == NULL)
        return;
    doc = cJSON_Parse(rsp.body);
    p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "error"), "pointer");
    ok = cJSON_IsString(p) && strcmp(p->valuestring, pointer) == 0;
    cJSON_Delete(doc);
    cr_assert(ok, "error.pointer is not \"%s\": %s", pointer, rsp.body);
}

/* The JSON body of a response of @p status; the caller deletes it. */
static cJSON *rsp_json(long status, const char *what)
{
    cJSON *doc;

    assert_status(status, what);
    cr_assert_str_eq(rsp.content_type, JSON, "%s: Content-Type is '%s'", what, rsp.content_type);
    doc = cJSON_Parse(rsp.body);
    cr_assert_not_null(doc, "%s: the body is not JSON: %s", what, rsp.body);
    return doc;
}

static void put_json(const char *id, const char *json, long status)
{
    send_user("PUT", id, JSON, json);
    assert_status(status, "PUT");
}

static cJSON *get_json(const char *id, const char *query)
{
    call_user("GET", id, query, NULL, NULL, 0, NULL);
    return rsp_json(200, "GET");
}

/* The exact bytes GET answers for @p id: a write that must change nothing leaves them equal. */
static char *snapshot(const char *id)
{
    char *s;

    call_user("GET", id, NULL, NULL, NULL, 0, NULL);
    assert_status(200, "GET");
    s = strdup(rsp.body);
    cr_assert_not_null(s);
    return s;
}

static void assert_unchanged(const char *id, const char *snap, const char *after)
{
    call_user("GET", id, NULL, NULL, NULL, 0, NULL);
    assert_status(200, "GET");
    cr_assert_str_eq(rsp.body, snap, "the stored profile changed after %s", after);
}

static void assert_absent(const char *id, const char *query)
{
    call_user("GET", id, query, NULL, NULL, 0, NULL);
    assert_error(404, "not_found", NULL);
}

static void post_events(const char *json, double accepted, double duplicates, double unresolved)
{
    cJSON *doc;
    bool ok;

    send_events(JSON, json);
    doc = rsp_json(200, "POST /v1/events");
    ok = cJSON_GetArraySize(doc) == 3 &&
         cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "accepted")) == accepted &&
         cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "duplicates")) == duplicates &&
         cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "unresolved")) == unresolved;
    cJSON_Delete(doc);
    cr_assert(ok, "expected {\"accepted\":%g,\"duplicates\":%g,\"unresolved\":%g}, got %s", accepted, duplicates,
              unresolved, rsp.body);
}

/* ---- documents ---- */

/* Reads schemas/examples/@p name from the source tree; the caller frees it. */
static char *example_text(const char *name)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[1024], *text = malloc(E2E_BODY_MAX);
    size_t len;
    int rc;

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is not set (run through meson test)");
    cr_assert_not_null(text);
    snprintf(path, sizeof(path), "%s/schemas/examples/%s", root, name);
    rc = e2e_file_read(path, text, E2E_BODY_MAX, &len);
    cr_assert_eq(rc, 0, "cannot read %s (%d)", path, rc);
    return text;
}

static cJSON *example(const char *name)
{
    char *text = example_text(name);
    cJSON *doc = cJSON_Parse(text);

    cr_assert_not_null(doc, "schemas/examples/%s is not JSON", name);
    free(text);
    return doc;
}

/* Walks @p path ("a/0/b": keys, and indexes in arrays) from @p o; NULL when absent. */
static const cJSON *at(const cJSON *o, const char *path)
{
    char key[128];

    while (o != NULL && *path != '\0') {
        size_t n = strcspn(path, "/");
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        o = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, (int)strtol(key, NULL, 10))
                             : cJSON_GetObjectItemCaseSensitive(o, key);
        path += n + (path[n] == '/');
    }
    return o;
}

static double num(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);

    cr_assert(cJSON_IsNumber(v), "%s is not a number", path);
    return v->valuedouble;
}

/* The element of array @p list whose member @p key is the string @p val. */
static const cJSON *entry(const cJSON *doc, const char *list, const char *key, const char *val)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, at(doc, list))
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, key);
        if (cJSON_IsString(k) && strcmp(k->valuestring, val) == 0)
            return e;
    }
    cr_assert_fail("%s has no element with %s \"%s\"", list, key, val);
    return NULL;
}

/* Equality of JSON values with numbers compared exactly and members in any order. On a
 * difference, @p where (NULL: not wanted) gets the JSON pointer of the first one found. */
static bool json_same(const cJSON *a, const cJSON *b, char *where, size_t cap)
{
    size_t len = where != NULL ? strlen(where) : 0;
    const cJSON *x, *y;
    int i = 0;

    if (cJSON_IsNumber(a) || cJSON_IsNumber(b))
        return cJSON_IsNumber(a) && cJSON_IsNumber(b) && a->valuedouble == b->valuedouble;
    if (!(cJSON_IsObject(a) && cJSON_IsObject(b)) && !(cJSON_IsArray(a) && cJSON_IsArray(b)))
        return a != NULL && b != NULL && cJSON_Compare(a, b, true);
    y = b->child;
    cJSON_ArrayForEach(x, a)
    {
        const cJSON *other = cJSON_IsObject(a) ? cJSON_GetObjectItemCaseSensitive(b, x->string) : y;
        if (where != NULL && cJSON_IsObject(a))
            snprintf(where + len, cap - len, "/%s", x->string);
        else if (where != NULL)
            snprintf(where + len, cap - len, "/%d", i);
        if (!json_same(x, other, where, cap))
            return false;
        y = y != NULL ? y->next : NULL;
        i++;
    }
    if (where != NULL)
        where[len] = '\0';
    return cJSON_GetArraySize(a) == cJSON_GetArraySize(b);
}

/* Asserts @p want and @p got equal but for the server's created_at and updated_at. Deletes @p got. */
static void assert_same_profile(const cJSON *want, cJSON *got, const char *what)
{
    cJSON *w = cJSON_Duplicate(want, true);
    char where[512] = "", *a = NULL, *b = NULL;
    bool ok;

    cJSON_DeleteItemFromObjectCaseSensitive(w, "created_at");
    cJSON_DeleteItemFromObjectCaseSensitive(w, "updated_at");
    cJSON_DeleteItemFromObjectCaseSensitive(got, "created_at");
    cJSON_DeleteItemFromObjectCaseSensitive(got, "updated_at");
    ok = json_same(w, got, where, sizeof(where));
    if (!ok) {
        /* Show the values where they first differ, not two whole profiles. */
        char path[512];
        snprintf(path, sizeof(path), "%s", where[0] == '/' ? where + 1 : where);
        a = cJSON_PrintUnformatted(at(w, path));
        b = cJSON_PrintUnformatted(at(got, path));
    }
    cJSON_Delete(w);
    cJSON_Delete(got);
    cr_assert(ok, "%s: the profile differs at \"%s\": want %s, got %s", what, where, a != NULL ? a : "(nothing)",
              b != NULL ? b : "(nothing)");
}

/* JSON Merge Patch (RFC 7396) of object @p patch into object @p target, as the test's oracle. */
static void merge_patch(cJSON *target, const cJSON *patch)
{
    const cJSON *m;

    cJSON_ArrayForEach(m, patch)
    {
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(target, m->string);
        if (cJSON_IsObject(m)) {
            if (!cJSON_IsObject(cur)) {
                cJSON_DeleteItemFromObjectCaseSensitive(target, m->string);
                cur = cJSON_AddObjectToObject(target, m->string);
            }
            merge_patch(cur, m);
            continue;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(target, m->string);
        if (!cJSON_IsNull(m))
            cJSON_AddItemToObject(target, m->string, cJSON_Duplicate(m, true));
    }
}

/* Gives profile @p doc the id @p id and aliases of its own (the ids suffixed with it),
 * so that it can be stored beside another copy without an alias conflict. */
static void rename_profile(cJSON *doc, const char *id)
{
    cJSON *a;
    char alias[256];

    cJSON_DeleteItemFromObjectCaseSensitive(doc, "id");
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(doc, "aliases"))
    {
        snprintf(alias, sizeof(alias), "%s-%s", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "id")), id);
        cJSON_ReplaceItemInObjectCaseSensitive(a, "id", cJSON_CreateString(alias));
    }
}

/* ---- MessagePack ---- */

/* Packs JSON @p j: numbers without a fraction as integers, except weights, which stay floats. */
static void pack_json(msgpack_packer *pk, const cJSON *j, bool is_weight)
{
    const cJSON *c;

    if (cJSON_IsObject(j)) {
        msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(j));
        cJSON_ArrayForEach(c, j)
        {
            msgpack_pack_str_with_body(pk, c->string, strlen(c->string));
            pack_json(pk, c, strcmp(c->string, "weight") == 0);
        }
    } else if (cJSON_IsArray(j)) {
        msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(j));
        cJSON_ArrayForEach(c, j)
        {
            pack_json(pk, c, false);
        }
    } else if (cJSON_IsString(j)) {
        msgpack_pack_str_with_body(pk, j->valuestring, strlen(j->valuestring));
    } else if (cJSON_IsNumber(j) && !is_weight && j->valuedouble == floor(j->valuedouble) && j->valuedouble >= 0) {
        msgpack_pack_uint64(pk, (uint64_t)j->valuedouble);
    } else if (cJSON_IsNumber(j)) {
        msgpack_pack_double(pk, j->valuedouble);
    } else if (cJSON_IsBool(j)) {
        if (cJSON_IsTrue(j))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
    } else {
        msgpack_pack_nil(pk);
    }
}

static void pack_doc(const cJSON *doc, msgpack_sbuffer *sb)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    pack_json(&pk, doc, false);
}

/* Member @p key of MessagePack map @p map, or NULL. */
static const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; map != NULL && map->type == MSGPACK_OBJECT_MAP && i < map->via.map.size; i++) {
        const msgpack_object_str *k = &map->via.map.ptr[i].key.via.str;
        if (k->size == strlen(key) && memcmp(k->ptr, key, k->size) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

/* Unpacks a MessagePack response of @p status: exactly one value. Also checks, when the
 * body is a profile with segments, that weights travel as floats and times as integers. */
static cJSON *rsp_msgpack(long status, const char *what)
{
    msgpack_unpacked up;
    size_t off = 0;
    cJSON *doc;

    assert_status(status, what);
    cr_assert_str_eq(rsp.content_type, MSGPACK, "%s: Content-Type is '%s'", what, rsp.content_type);
    msgpack_unpacked_init(&up);
    cr_assert_eq(msgpack_unpack_next(&up, rsp.body, rsp.body_len, &off), MSGPACK_UNPACK_SUCCESS,
                 "%s: the body is not MessagePack", what);
    cr_assert_eq(off, rsp.body_len, "%s: %zu bytes follow the MessagePack value", what, rsp.body_len - off);
    const msgpack_object *segs = mp_get(&up.data, "segments");
    if (segs != NULL && segs->type == MSGPACK_OBJECT_ARRAY && segs->via.array.size > 0) {
        const msgpack_object *w = mp_get(&segs->via.array.ptr[0], "weight");
        const msgpack_object *t = mp_get(&segs->via.array.ptr[0], "last_seen");
        cr_assert(w != NULL && w->type == MSGPACK_OBJECT_FLOAT64, "%s: a weight is not a float 64", what);
        cr_assert(t != NULL && t->type == MSGPACK_OBJECT_POSITIVE_INTEGER, "%s: a time is not an integer", what);
    }
    doc = e2e_json_of_msgpack(&up.data);
    msgpack_unpacked_destroy(&up);
    cr_assert_not_null(doc);
    return doc;
}

/* ---- the examples ---- */

Test(users, examples_are_accepted_as_they_are, .timeout = 30)
{
    char *profile = example_text("profile.json"), *events = example_text("events.json");
    cJSON *want = example("profile.json"), *got;
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(want, "id"));
    const uint32_t hl = 604800; /* the default interest_half_life_s */
    double w;

    e2e_assert_started(&dmn, NULL);
    cr_assert_not_null(id, "the example profile has no id");
    put_json(id, profile, 201);
    assert_same_profile(want, get_json(id, NULL), "GET after PUT of the example");
    /* Its events: two name the user by id, one by buyeruid, one by its ID5 id. */
    post_events(events, 4, 0, 0);

    got = get_json(id, NULL);
    const cJSON *q = entry(got, "frequency", "campaign", "cmp-spring-trail-2025");
    /* The impression falls in the stored hour and day windows: both go on counting. */
    cr_assert_eq(num(q, "hour_start"), 1763798400);
    cr_assert_eq(num(q, "hour"), 3);
    cr_assert_eq(num(q, "day"), 6);
    cr_assert_eq(num(q, "lifetime"), 38);
    cr_assert_eq(num(q, "clicks"), 4);
    cr_assert_eq(num(q, "conversions"), 2);
    cr_assert_eq(num(q, "last_at"), 1763800415);
    cr_assert_eq(num(got, "recency/last_seen"), 1763800440);
    cr_assert_eq(num(got, "recency/last_impression"), 1763800020);
    cr_assert_eq(num(got, "recency/last_click"), 1763800031);
    cr_assert_eq(num(got, "recency/last_conversion"), 1763800415);
    /* trail-running: stored 6.35 at 1763799875, then +0.1, +1, +5 and the custom event's +0.5. */
    w = 6.35 * exp2(-145.0 / hl) + 0.1;
    w = w * exp2(-11.0 / hl) + 1.0;
    w = w * exp2(-384.0 / hl) + 5.0;
    w = w * exp2(-25.0 / hl) + 0.5;
    cr_assert_float_eq(num(entry(got, "interests", "id", "trail-running"), "weight"), w, 1e-9);
    cr_assert_eq(num(entry(got, "interests", "id", "trail-running"), "updated_at"), 1763800440);
    cr_assert_float_eq(num(entry(got, "interests", "id", "outdoor-gear"), "weight"), 0.1, 1e-12);
    cr_assert_float_eq(num(entry(got, "interests", "id", "hydration-packs"), "weight"), 0.5, 1e-12);
    /* Interests nobody touched keep their stored weight and time. */
    cr_assert_eq(num(entry(got, "interests", "id", "camping"), "weight"), 2.125);
    cr_assert_eq(num(entry(got, "interests", "id", "camping"), "updated_at"), 1763640000);
    cJSON_Delete(got);
    cJSON_Delete(want);
    free(profile);
    free(events);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- round trips ---- */

Test(users, json_round_trip, .timeout = 30)
{
    cJSON *want = example("profile.json"), *got;
    char *text = cJSON_Print(want), *raw;
    double created;

    e2e_assert_started(&dmn, NULL);
    /* A body "id" must be the path's. */
    send_user("PUT", "rt-json", JSON, text);
    assert_error(400, "invalid_argument", "/id");
    assert_absent("rt-json", NULL);
    cJSON_DeleteItemFromObjectCaseSensitive(want, "id");
    cJSON_AddStringToObject(want, "id", "rt-json");
    free(text);
    text = cJSON_Print(want);

    /* PUT answers 201 with the stored profile; GET returns the same document. */
    send_user("PUT", "rt-json", JSON, text);
    got = rsp_json(201, "first PUT");
    created = num(got, "created_at");
    cr_assert_gt(created, 0);
    cr_assert_eq(num(got, "updated_at"), created);
    assert_same_profile(want, got, "PUT's answer");
    assert_same_profile(want, get_json("rt-json", NULL), "GET after PUT");

    /* A GET's output, read-only times included, can be PUT back: 200, nothing changes. */
    raw = snapshot("rt-json");
    put_json("rt-json", raw, 200);
    got = get_json("rt-json", NULL);
    cr_assert_eq(num(got, "created_at"), created, "a replace changed created_at");
    cr_assert_geq(num(got, "updated_at"), created);
    assert_same_profile(want, got, "GET after PUT of a GET's output");

    /* A body without "id" takes the path's. */
    rename_profile(want, "rt-json-2");
    cJSON_DeleteItemFromObjectCaseSensitive(want, "id");
    free(text);
    text = cJSON_PrintUnformatted(want);
    put_json("rt-json-2", text, 201);
    cJSON_AddStringToObject(want, "id", "rt-json-2");
    assert_same_profile(want, get_json("rt-json-2", NULL), "GET after PUT without id");

    cJSON_Delete(want);
    free(text);
    free(raw);
    e2e_assert_stopped_clean(&dmn);
}

Test(users, msgpack_round_trip, .timeout = 30)
{
    cJSON *want = example("profile.json"), *batch = example("events.json");
    msgpack_sbuffer sb;
    char *text;

    e2e_assert_started(&dmn, NULL);
    cJSON_ReplaceItemInObjectCaseSensitive(want, "id", cJSON_CreateString("rt-mp"));
    pack_doc(want, &sb);

    /* MessagePack in, MessagePack out. */
    call_user("PUT", "rt-mp", NULL, MSGPACK, sb.data, sb.size, MSGPACK);
    assert_same_profile(want, rsp_msgpack(201, "PUT msgpack"), "PUT's MessagePack answer");
    call_user("GET", "rt-mp", NULL, NULL, NULL, 0, MSGPACK);
    assert_same_profile(want, rsp_msgpack(200, "GET msgpack"), "GET in MessagePack");
    /* The same profile read as JSON, and an Accept that prefers JSON. */
    assert_same_profile(want, get_json("rt-mp", NULL), "GET in JSON after a MessagePack PUT");
    call_user("GET", "rt-mp", NULL, NULL, NULL, 0, "application/json, application/msgpack;q=0.5");
    assert_same_profile(want, rsp_json(200, "GET preferring JSON"), "GET preferring JSON");
    /* Replacing it in MessagePack answers 200. */
    call_user("PUT", "rt-mp", NULL, MSGPACK, sb.data, sb.size, MSGPACK);
    assert_same_profile(want, rsp_msgpack(200, "second PUT msgpack"), "second PUT's MessagePack answer");
    msgpack_sbuffer_destroy(&sb);

    /* JSON in, MessagePack out. */
    rename_profile(want, "rt-mix");
    text = cJSON_PrintUnformatted(want);
    call_user("PUT", "rt-mix", NULL, JSON, text, strlen(text), MSGPACK);
    assert_same_profile(want, rsp_msgpack(201, "PUT json, accept msgpack"), "MessagePack answer to a JSON PUT");
    call_user("GET", "rt-mix", NULL, NULL, NULL, 0, "application/x-msgpack");
    assert_same_profile(want, rsp_msgpack(200, "GET x-msgpack"), "GET in MessagePack after a JSON PUT");
    free(text);

    /* MessagePack in, JSON out (no Accept). */
    rename_profile(want, "rt-mix-2");
    pack_doc(want, &sb);
    call_user("PUT", "rt-mix-2", NULL, MSGPACK, sb.data, sb.size, NULL);
    assert_same_profile(want, rsp_json(201, "PUT msgpack, no Accept"), "JSON answer to a MessagePack PUT");
    msgpack_sbuffer_destroy(&sb);

    /* An event batch in MessagePack, answered in MessagePack. */
    pack_doc(batch, &sb);
    call("POST", "/v1/events", MSGPACK, sb.data, sb.size, MSGPACK);
    /* The two events by id create the example's user; the two by alias find rt-mp. */
    cJSON *res = rsp_msgpack(200, "POST /v1/events in msgpack");
    cr_assert_eq(cJSON_GetArraySize(res), 3);
    cr_assert_eq(num(res, "accepted"), 4);
    cr_assert_eq(num(res, "duplicates"), 0);
    cr_assert_eq(num(res, "unresolved"), 0);
    cJSON_Delete(res);
    res = get_json("rt-mp", NULL);
    cr_assert_eq(num(entry(res, "frequency", "campaign", "cmp-spring-trail-2025"), "clicks"), 4);
    cJSON_Delete(res);
    msgpack_sbuffer_destroy(&sb);

    cJSON_Delete(want);
    cJSON_Delete(batch);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- ids and statuses ---- */

Test(users, put_status_get_404_and_ids, .timeout = 30)
{
    static const struct {
        const char *path; /* percent-encoded */
        const char *id;   /* decoded */
    } ids[] = {
        {"jane%20doe", "jane doe"},
        {"tenant%2Fuser-42", "tenant/user-42"},
        {"jos%C3%A9-%E7%94%A8%E6%88%B7", "jos\xc3\xa9-\xe7\x94\xa8\xe6\x88\xb7"},
        {"a%25b%3Fc%23d", "a%b?c#d"},
        {"q%22b%5Cc", "q\"b\\c"},
    };
    char id128[129], id129[130], body[512];
    cJSON *got;

    e2e_assert_started(&dmn, NULL);
    put_json("status-1", "{\"attributes\":{\"country\":\"FR\"}}", 201);
    put_json("status-1", "{\"attributes\":{\"country\":\"BE\"}}", 200);
    got = get_json("status-1", NULL);
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "attributes/country")), "BE", "the second PUT did not replace");
    cJSON_Delete(got);
    assert_absent("no-such-user", NULL);
    assert_absent("no-such-user", "source=buyeruid");
    /* An empty source is a mistake, not "no source". */
    call_user("GET", "status-1", "source=", NULL, NULL, 0, NULL);
    assert_error(400, "invalid_argument", NULL);

    /* Percent-encoded ids round trip, in the path and in the body. */
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        cJSON *doc = cJSON_CreateObject();
        char *text;
        cJSON_AddStringToObject(doc, "id", ids[i].id);
        cJSON_AddObjectToObject(doc, "attributes");
        cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(doc, "attributes"), "city", "Lyon");
        text = cJSON_PrintUnformatted(doc);
        put_json(ids[i].path, text, 201);
        got = get_json(ids[i].path, NULL);
        cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), ids[i].id, "id of %s", ids[i].path);
        cr_assert_str_eq(cJSON_GetStringValue(at(got, "attributes/city")), "Lyon");
        cJSON_Delete(got);
        free(text);
        cJSON_Delete(doc);
    }
    /* "a/b" with a real slash is another path: not the user "a/b". */
    call("GET", "/v1/users/tenant/user-42", NULL, NULL, 0, NULL);
    cr_assert_eq(rsp.status, 404, "/v1/users/tenant/user-42 answered %ld", rsp.status);

    /* 128 bytes is the limit of an id; 129 is refused. */
    memset(id128, 'i', 128);
    id128[128] = '\0';
    memset(id129, 'i', 129);
    id129[129] = '\0';
    snprintf(body, sizeof(body), "{\"id\":\"%s\"}", id128);
    put_json(id128, body, 201);
    got = get_json(id128, NULL);
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), id128);
    cJSON_Delete(got);
    send_user("PUT", id129, JSON, "{}");
    assert_error(400, "invalid_argument", NULL);
    call_user("GET", id129, NULL, NULL, NULL, 0, NULL);
    assert_error(400, "invalid_argument", NULL);
    /* 128 bytes of UTF-8 in fewer characters is fine too; a control character is not. */
    send_user("PUT", "bad%01id", JSON, "{}");
    assert_error(400, "invalid_argument", NULL);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- PATCH ---- */

static const char patch_base[] =
    "{\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-patch-1\"}],"
    "\"attributes\":{\"country\":\"DE\",\"region\":\"DE-BE\",\"city\":\"Berlin\",\"language\":\"de\","
    "\"device\":\"desktop\",\"os\":\"Linux\",\"age_band\":\"35-44\","
    "\"custom\":{\"tier\":\"silver\",\"plan\":\"free\",\"ref\":\"newsletter\"}},"
    "\"segments\":[{\"id\":\"s1\",\"weight\":0.5,\"last_seen\":1763700000},"
    "{\"id\":\"s2\",\"weight\":0.25,\"last_seen\":1763700100}],"
    "\"interests\":[{\"id\":\"cycling\",\"weight\":3.5,\"updated_at\":1763700000}],"
    "\"frequency\":[{\"campaign\":\"c1\",\"hour_start\":1763697600,\"hour\":1,\"day_start\":1763683200,\"day\":2,"
    "\"lifetime\":9,\"clicks\":1,\"conversions\":0,\"last_at\":1763699000}],"
    "\"recency\":{\"last_seen\":1763700100,\"last_impression\":1763699000,\"last_click\":1763600000,"
    "\"last_conversion\":0},"
    "\"consent\":{\"gdpr_applies\":true,\"personalization\":false,\"measurement\":true}}";

/* PATCHes u-patch with @p patch and checks the answer and a GET against the merge of @p want. */
static void patch_and_check(cJSON *want, const char *patch)
{
    cJSON *p = cJSON_Parse(patch);

    cr_assert_not_null(p);
    send_user("PATCH", "u-patch", JSON, patch);
    merge_patch(want, p);
    assert_same_profile(want, rsp_json(200, patch), patch);
    assert_same_profile(want, get_json("u-patch", NULL), patch);
    cJSON_Delete(p);
}

Test(users, patch_is_a_json_merge_patch, .timeout = 30)
{
    cJSON *want, *got;
    double created;
    char *snap;

    e2e_assert_started(&dmn, NULL);
    put_json("u-patch", patch_base, 201);
    want = get_json("u-patch", NULL);
    created = num(want, "created_at");

    /* Attributes merge; null deletes one; custom merges key by key and null deletes a key. */
    patch_and_check(want, "{\"attributes\":{\"city\":\"Hamburg\",\"region\":null,"
                          "\"custom\":{\"tier\":\"gold\",\"plan\":null,\"utm\":\"spring\"}}}");
    cr_assert_str_eq(cJSON_GetStringValue(at(want, "attributes/country")), "DE");
    cr_assert_null(at(want, "attributes/region"));
    cr_assert_null(at(want, "attributes/custom/plan"));
    /* Arrays are replaced whole, not merged element by element. */
    patch_and_check(want, "{\"segments\":[{\"id\":\"s3\",\"weight\":0.75,\"last_seen\":1763800000}]}");
    cr_assert_eq(cJSON_GetArraySize(at(want, "segments")), 1);
    patch_and_check(want, "{\"interests\":[]}");
    /* Consent merges flag by flag; null makes a flag unknown again. */
    patch_and_check(want, "{\"consent\":{\"personalization\":true,\"sale_opt_out\":false,\"measurement\":null}}");
    cr_assert(cJSON_IsTrue(at(want, "consent/gdpr_applies")));
    /* Recency merges member by member. */
    patch_and_check(want, "{\"recency\":{\"last_conversion\":1763750000}}");
    /* The whole custom map can go, and age_band alone. */
    patch_and_check(want, "{\"attributes\":{\"custom\":null,\"age_band\":null,\"device\":\"tablet\"}}");
    /* An "id" equal to the path's is allowed; an empty patch changes nothing but updated_at. */
    patch_and_check(want, "{\"id\":\"u-patch\"}");
    patch_and_check(want, "{}");
    /* null for a whole list empties it (the JSON face keeps the field, as []). */
    send_user("PATCH", "u-patch", JSON, "{\"segments\":null}");
    got = rsp_json(200, "PATCH segments null");
    cr_assert(cJSON_IsArray(at(got, "segments")) && cJSON_GetArraySize(at(got, "segments")) == 0, "%s", rsp.body);
    cJSON_Delete(got);
    cJSON_ReplaceItemInObjectCaseSensitive(want, "segments", cJSON_CreateArray());
    assert_same_profile(want, get_json("u-patch", NULL), "GET after PATCH segments null");
    /* Replacing the aliases releases the old one. */
    patch_and_check(want, "{\"aliases\":[{\"source\":\"id5-sync.com\",\"id\":\"ID5*patch\"}]}");
    assert_absent("bu-patch-1", "source=buyeruid");
    got = get_json("ID5%2Apatch", "source=id5-sync.com");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), "u-patch");
    cr_assert_eq(num(got, "created_at"), created, "PATCH changed created_at");
    cJSON_Delete(got);

    /* What a PATCH must refuse, leaving the profile as it was. */
    snap = snapshot("u-patch");
    send_user("PATCH", "u-patch", JSON, "{\"id\":\"someone-else\"}");
    assert_error(400, "invalid_argument", "/id");
    assert_unchanged("u-patch", snap, "a PATCH with another id");
    send_user("PATCH", "u-patch", JSON, "{\"attributes\":{\"age_band\":\"30-40\"}}");
    assert_error(400, "invalid_argument", "/attributes/age_band");
    assert_unchanged("u-patch", snap, "a PATCH with a bad age_band");
    send_user("PATCH", "u-patch", JSON, "{\"segments\":{\"id\":\"s4\"}}");
    assert_error(400, "invalid_argument", "/segments");
    assert_unchanged("u-patch", snap, "a PATCH with an object for an array");
    /* A PATCH does not create a user. */
    send_user("PATCH", "u-missing", JSON, "{\"attributes\":{\"city\":\"Bonn\"}}");
    assert_error(404, "not_found", NULL);
    assert_absent("u-missing", NULL);

    cJSON_Delete(want);
    free(snap);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- aliases ---- */

Test(users, aliases_resolve_conflict_and_release, .timeout = 30)
{
    const char *a = "{\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-1\"},"
                    "{\"source\":\"id5-sync.com\",\"id\":\"ID5*a1\"}],\"attributes\":{\"city\":\"Oslo\"}}";
    const char *b = "{\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-b\"},"
                    "{\"source\":\"id5-sync.com\",\"id\":\"ID5*a1\"}]}";
    const char *claim_bu1 = "{\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-1\"}]}";
    cJSON *got;
    char *snap_a, *snap_c;

    e2e_assert_started(&dmn, NULL);
    put_json("u-a", a, 201);
    got = get_json("bu-1", "source=buyeruid");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), "u-a");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "attributes/city")), "Oslo");
    cJSON_Delete(got);
    got = get_json("ID5%2Aa1", "source=id5-sync.com");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), "u-a");
    cJSON_Delete(got);
    /* An alias is no user id, and is scoped by its source. */
    assert_absent("bu-1", NULL);
    assert_absent("bu-1", "source=id5-sync.com");

    /* Another user claiming an alias that u-a holds: 409 naming it, and nothing written. */
    snap_a = snapshot("u-a");
    send_user("PUT", "u-b", JSON, b);
    assert_error(409, "conflict", "/aliases/1");
    assert_absent("u-b", NULL);
    assert_absent("bu-b", "source=buyeruid");
    assert_unchanged("u-a", snap_a, "a conflicting PUT of another user");
    got = get_json("ID5%2Aa1", "source=id5-sync.com");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), "u-a");
    cJSON_Delete(got);
    /* The same through PATCH of an existing user. */
    put_json("u-c", "{\"aliases\":[{\"source\":\"liveramp.com\",\"id\":\"bu-1\"}]}", 201);
    snap_c = snapshot("u-c");
    send_user("PATCH", "u-c", JSON, claim_bu1);
    assert_error(409, "conflict", "/aliases/0");
    assert_unchanged("u-c", snap_c, "a conflicting PATCH");
    assert_unchanged("u-a", snap_a, "a conflicting PATCH of another user");
    /* One user listing an alias twice is a plain 400. */
    put_json("u-d", "{\"aliases\":[{\"source\":\"s\",\"id\":\"x\"},{\"source\":\"s\",\"id\":\"x\"}]}", 400);
    assert_error(400, "invalid_argument", "/aliases/1");

    /* Replacing u-a's list releases what it no longer lists. */
    put_json("u-a", "{\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-2\"}]}", 200);
    assert_absent("bu-1", "source=buyeruid");
    assert_absent("ID5%2Aa1", "source=id5-sync.com");
    got = get_json("bu-2", "source=buyeruid");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), "u-a");
    cJSON_Delete(got);
    /* ... so another user may take it now. */
    put_json("u-b", b, 201);
    send_user("PATCH", "u-c", JSON, claim_bu1);
    assert_status(200, "PATCH claiming a released alias");
    got = get_json("bu-1", "source=buyeruid");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), "u-c");
    cJSON_Delete(got);
    got = get_json("ID5%2Aa1", "source=id5-sync.com");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), "u-b");
    cJSON_Delete(got);

    free(snap_a);
    free(snap_c);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- erasure ---- */

/* Runs `adsmith export users --data-dir <the test's data>` with the daemon stopped.
 * @return 0 with its standard output in @p out, or -ENOSYS when this adsmith has no such command. */
static int export_users(char *out, size_t cap)
{
    const char *args[] = {"export", "users", "--data-dir", dmn.data_dir, NULL};
    char err[4096];
    size_t len;
    int status = -1, rc;

    rc = e2e_daemon_init(&aux);
    cr_assert_eq(rc, 0, "%s", aux.why);
    rc = e2e_daemon_spawn(&aux, args);
    cr_assert_eq(rc, 0, "%s", aux.why);
    rc = e2e_daemon_wait(&aux, 20000, &status);
    cr_assert_eq(rc, 0, "adsmith export users did not finish within 20 s");
    if (e2e_file_read(aux.log_path, err, sizeof(err), &len) != 0)
        err[0] = '\0';
    if (status == 2 && strstr(err, "unknown command") != NULL)
        return -ENOSYS;
    cr_assert_eq(status, 0, "adsmith export users exited with %d: %s", status, err);
    rc = e2e_file_read(aux.out_path, out, cap, &len);
    cr_assert_eq(rc, 0, "cannot read the export (%d)", rc);
    return 0;
}

Test(users, delete_erases_profile_aliases_and_counters, .timeout = 30)
{
    char events[1024], *out;
    uint64_t t = now_s() - 60;
    cJSON *got;

    e2e_assert_started(&dmn, NULL);
    put_json("u-erase",
             "{\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-erase\"},"
             "{\"source\":\"id5-sync.com\",\"id\":\"ID5*erase\"}],\"attributes\":{\"city\":\"Quito\"}}",
             201);
    put_json("u-keep", "{\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-keep\"}]}", 201);
    snprintf(events, sizeof(events),
             "{\"events\":[{\"type\":\"impression\",\"user\":\"bu-erase\",\"source\":\"buyeruid\",\"ts\":%llu,"
             "\"campaign\":\"c-erase\",\"interests\":[\"erase-topic\"]}]}",
             (unsigned long long)t);
    post_events(events, 1, 0, 0);
    got = get_json("u-erase", NULL);
    cr_assert_eq(num(entry(got, "frequency", "campaign", "c-erase"), "lifetime"), 1);
    cJSON_Delete(got);

    call_user("DELETE", "u-erase", NULL, NULL, NULL, 0, NULL);
    assert_status(204, "DELETE");
    cr_assert_eq(rsp.body_len, 0, "DELETE answered a body: %s", rsp.body);
    assert_absent("u-erase", NULL);
    assert_absent("bu-erase", "source=buyeruid");
    assert_absent("ID5%2Aerase", "source=id5-sync.com");
    call_user("DELETE", "u-erase", NULL, NULL, NULL, 0, NULL);
    assert_error(404, "not_found", NULL);
    send_user("PATCH", "u-erase", JSON, "{}");
    assert_error(404, "not_found", NULL);
    /* Events for its former aliases find nobody. */
    post_events(events, 0, 0, 1);
    assert_absent("u-erase", NULL);

    /* DELETE by alias erases whoever holds it. */
    put_json("u-erase-2", "{\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-erase-2\"}]}", 201);
    call_user("DELETE", "bu-erase-2", "source=buyeruid", NULL, NULL, 0, NULL);
    assert_status(204, "DELETE by alias");
    assert_absent("u-erase-2", NULL);
    assert_absent("bu-erase-2", "source=buyeruid");
    call_user("DELETE", "bu-erase-2", "source=buyeruid", NULL, NULL, 0, NULL);
    assert_error(404, "not_found", NULL);

    /* The erased user's aliases are free again: a new user takes them without conflict. */
    put_json("u-reuse",
             "{\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-erase\"},"
             "{\"source\":\"id5-sync.com\",\"id\":\"ID5*erase\"}]}",
             201);
    got = get_json("bu-erase", "source=buyeruid");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), "u-reuse");
    cr_assert_eq(cJSON_GetArraySize(at(got, "frequency")), 0, "the erased user's counters came back");
    cr_assert_eq(cJSON_GetArraySize(at(got, "interests")), 0, "the erased user's interests came back");
    cJSON_Delete(got);
    call_user("DELETE", "u-reuse", NULL, NULL, NULL, 0, NULL);
    assert_status(204, "DELETE u-reuse");
    /* The kept user is untouched. */
    got = get_json("bu-keep", "source=buyeruid");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "id")), "u-keep");
    cJSON_Delete(got);
    e2e_assert_stopped_clean(&dmn);

    /* The store itself: an export holds the kept user and no trace of the erased ones. */
    out = malloc(E2E_BODY_MAX);
    cr_assert_not_null(out);
    if (export_users(out, E2E_BODY_MAX) == -ENOSYS) {
        cr_log_warn("adsmith has no `export users` command yet: the export check was skipped");
    } else {
        static const char *const gone[] = {"u-erase", "bu-erase",    "ID5*erase", "Quito",
                                           "c-erase", "erase-topic", "u-reuse"};
        cr_assert_not_null(strstr(out, "u-keep"), "the export lacks the kept user: %s", out);
        for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
            cr_assert_null(strstr(out, gone[i]), "the export still holds \"%s\": %s", gone[i], out);
    }
    free(out);
}

/* ---- bad input ---- */

Test(users, bad_input_is_refused_and_changes_nothing, .timeout = 30)
{
    static const struct {
        const char *body;
        const char *pointer;
    } invalid[] = {
        {"{\"attributes\":{\"country\":7}}", "/attributes/country"},
        {"{\"attributes\":{\"country\":\"us\"}}", "/attributes/country"},
        {"{\"attributes\":{\"device\":\"watch\"}}", "/attributes/device"},
        {"{\"attributes\":{\"custom\":{\"k\":5}}}", "/attributes/custom/k"},
        {"{\"segments\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\",\"weight\":\"high\"}]}", "/segments/2/weight"},
        {"{\"segments\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\",\"weight\":1.5}]}", "/segments/2/weight"},
        {"{\"segments\":[{\"id\":\"a\"},{\"id\":\"a\"}]}", "/segments/1/id"},
        {"{\"interests\":[{\"weight\":1}]}", "/interests/0/id"},
        {"{\"frequency\":[{\"campaign\":\"c\",\"hour\":-1}]}", "/frequency/0/hour"},
        {"{\"recency\":{\"last_seen\":1763800000000}}", "/recency/last_seen"},
        {"{\"recency\":{\"last_seen\":1763800000.5}}", "/recency/last_seen"},
        {"{\"consent\":{\"personalization\":\"yes\"}}", "/consent/personalization"},
        {"{\"aliases\":[{\"source\":\"buyeruid\"}]}", "/aliases/0/id"},
        {"{\"nickname\":\"kim\"}", "/nickname"},
        {"{\"attributes\":{\"shoe_size\":\"42\"}}", "/attributes/shoe_size"},
        {"[]", ""},
    };
    const char *extra[] = {"--max-body", "16KiB", NULL};
    static const char malformed_mp[] = "\x82\xa8segments"; /* a map of 2 cut short */
    char *snap, *big;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t n;

    e2e_assert_started(&dmn, extra);
    put_json("u-bad", patch_base, 201);
    snap = snapshot("u-bad");

    /* Malformed JSON and MessagePack: 400 bad_request. */
    send_user("PUT", "u-bad", JSON, "{\"attributes\":{");
    assert_error(400, "bad_request", NULL);
    assert_unchanged("u-bad", snap, "malformed JSON");
    send_user("PUT", "u-bad", JSON, "{\"a\":1} x");
    assert_error(400, "bad_request", NULL);
    call_user("PUT", "u-bad", NULL, MSGPACK, malformed_mp, sizeof(malformed_mp) - 1, NULL);
    assert_error(400, "bad_request", NULL);
    assert_unchanged("u-bad", snap, "malformed MessagePack");
    call_user("PATCH", "u-bad", NULL, MSGPACK, malformed_mp, sizeof(malformed_mp) - 1, NULL);
    assert_error(400, "bad_request", NULL);
    assert_unchanged("u-bad", snap, "a PATCH of malformed MessagePack");

    /* Well-formed but invalid, in both methods: 400 with the field's pointer. */
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        send_user("PUT", "u-bad", JSON, invalid[i].body);
        assert_error(400, "invalid_argument", invalid[i].pointer);
        assert_unchanged("u-bad", snap, invalid[i].body);
        send_user("PATCH", "u-bad", JSON, invalid[i].body);
        assert_error(400, "invalid_argument", invalid[i].pointer);
        assert_unchanged("u-bad", snap, invalid[i].body);
    }

    /* A wrong type in MessagePack gets the same pointer. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "attributes", 10);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "country", 7);
    msgpack_pack_int(&pk, 7);
    call_user("PUT", "u-bad", NULL, MSGPACK, sb.data, sb.size, NULL);
    assert_error(400, "invalid_argument", "/attributes/country");
    assert_unchanged("u-bad", snap, "a MessagePack body with a wrong type");
    msgpack_sbuffer_destroy(&sb);

    /* Lists over their limit: 65 segments. */
    big = malloc(8192);
    cr_assert_not_null(big);
    n = (size_t)snprintf(big, 8192, "{\"segments\":[");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(big + n, 8192 - n, "%s{\"id\":\"seg-%d\"}", i > 0 ? "," : "", i);
    snprintf(big + n, 8192 - n, "]}");
    send_user("PUT", "u-bad", JSON, big);
    assert_error(400, "invalid_argument", "/segments");
    assert_unchanged("u-bad", snap, "65 segments");
    free(big);

    /* A media type the service does not speak: 415. */
    send_user("PUT", "u-bad", "text/plain", "{}");
    assert_error(415, "unsupported_media_type", NULL);
    send_user("PATCH", "u-bad", "application/x-www-form-urlencoded", "city=Rome");
    assert_error(415, "unsupported_media_type", NULL);
    assert_unchanged("u-bad", snap, "an unsupported Content-Type");

    /* A body over max_body (16 KiB): 413, however valid it would be. */
    big = malloc(24 * 1024 + 64);
    cr_assert_not_null(big);
    n = (size_t)snprintf(big, 64, "{\"attributes\":{\"city\":\"");
    memset(big + n, ' ', 24 * 1024);
    snprintf(big + n + 24 * 1024, 64, "\"}}");
    send_user("PUT", "u-bad", JSON, big);
    assert_error(413, "body_too_large", NULL);
    assert_unchanged("u-bad", snap, "a body over max_body");
    free(big);

    /* None of it created the user it named either. */
    send_user("PUT", "u-bad-new", JSON, "{\"nickname\":\"kim\"}");
    assert_error(400, "invalid_argument", "/nickname");
    assert_absent("u-bad-new", NULL);
    free(snap);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- events ---- */

/* 05:01 UTC two days ago: every event of the tests below is in the past and in one UTC day. */
static uint64_t events_base(void)
{
    uint64_t day = now_s() - 2 * 86400;

    return day - day % 86400 + 5 * 3600 + 60;
}

Test(users, events_update_counters_recency_and_interests, .timeout = 30)
{
    const uint64_t t = events_base(), day = t - t % 86400, hl = 604800;
    char batch[2048], plain[512], *snap;
    cJSON *got;
    double w;

    e2e_assert_started(&dmn, NULL);
    snprintf(batch, sizeof(batch),
             "{\"events\":["
             "{\"id\":\"e1\",\"type\":\"impression\",\"user\":\"u-ev\",\"ts\":%llu,\"campaign\":\"c1\","
             "\"variant\":\"v1\",\"interests\":[\"shoes\"]},"
             "{\"id\":\"e2\",\"type\":\"impression\",\"user\":\"u-ev\",\"ts\":%llu,\"campaign\":\"c1\"},"
             "{\"id\":\"e3\",\"type\":\"click\",\"user\":\"u-ev\",\"ts\":%llu,\"campaign\":\"c1\","
             "\"interests\":[\"shoes\"]},"
             "{\"id\":\"e4\",\"type\":\"conversion\",\"user\":\"u-ev\",\"ts\":%llu,\"campaign\":\"c1\","
             "\"interests\":[\"shoes\"],\"value\":5000000},"
             "{\"id\":\"e5\",\"type\":\"impression\",\"user\":\"u-ev\",\"ts\":%llu,\"campaign\":\"c1\"},"
             "{\"id\":\"e6\",\"type\":\"impression\",\"user\":\"u-ev\",\"ts\":%llu,\"campaign\":\"c2\"},"
             "{\"id\":\"e7\",\"type\":\"custom\",\"name\":\"signup\",\"user\":\"u-ev\",\"ts\":%llu,"
             "\"campaign\":\"c3\"}]}",
             (unsigned long long)t, (unsigned long long)t + 10, (unsigned long long)t + 20, (unsigned long long)t + 30,
             (unsigned long long)t + 3600, (unsigned long long)t + 50, (unsigned long long)t + 60);

    /* The user does not exist yet: the first event creates it. */
    assert_absent("u-ev", NULL);
    post_events(batch, 7, 0, 0);
    got = get_json("u-ev", NULL);
    cr_assert_gt(num(got, "created_at"), 0);
    /* c1: two impressions in the 05:00 hour, then one at 06:01, which starts a new hour window. */
    const cJSON *c1 = entry(got, "frequency", "campaign", "c1");
    cr_assert_eq(num(c1, "hour_start"), (double)(day + 6 * 3600));
    cr_assert_eq(num(c1, "hour"), 1);
    cr_assert_eq(num(c1, "day_start"), (double)day);
    cr_assert_eq(num(c1, "day"), 3);
    cr_assert_eq(num(c1, "lifetime"), 3);
    cr_assert_eq(num(c1, "clicks"), 1);
    cr_assert_eq(num(c1, "conversions"), 1);
    cr_assert_eq(num(c1, "last_at"), (double)(t + 3600));
    const cJSON *c2 = entry(got, "frequency", "campaign", "c2");
    cr_assert_eq(num(c2, "hour_start"), (double)(day + 5 * 3600));
    cr_assert_eq(num(c2, "hour"), 1);
    cr_assert_eq(num(c2, "day"), 1);
    cr_assert_eq(num(c2, "lifetime"), 1);
    cr_assert_eq(num(c2, "clicks"), 0);
    /* A custom event counts for no campaign. */
    cr_assert_eq(cJSON_GetArraySize(at(got, "frequency")), 2, "frequency: %s", rsp.body);
    cr_assert_eq(num(got, "recency/last_seen"), (double)(t + 3600));
    cr_assert_eq(num(got, "recency/last_impression"), (double)(t + 3600));
    cr_assert_eq(num(got, "recency/last_click"), (double)(t + 20));
    cr_assert_eq(num(got, "recency/last_conversion"), (double)(t + 30));
    /* shoes: 0.1 (impression), decayed to the click and +1, decayed to the conversion and +5. */
    w = 0.1 * exp2(-20.0 / hl) + 1.0;
    w = w * exp2(-10.0 / hl) + 5.0;
    cr_assert_float_eq(num(entry(got, "interests", "id", "shoes"), "weight"), w, 1e-9);
    cr_assert_eq(num(entry(got, "interests", "id", "shoes"), "updated_at"), (double)(t + 30));
    cr_assert_eq(cJSON_GetArraySize(at(got, "interests")), 1);
    cJSON_Delete(got);

    /* The same batch again: every event is a duplicate and nothing changes. */
    snap = snapshot("u-ev");
    post_events(batch, 0, 7, 0);
    assert_unchanged("u-ev", snap, "a retried batch");
    free(snap);

    /* Events without an id are not deduplicated: each sending counts. */
    snprintf(plain, sizeof(plain),
             "{\"events\":[{\"type\":\"impression\",\"user\":\"u-ev\",\"ts\":%llu,\"campaign\":\"c2\"},"
             "{\"type\":\"impression\",\"user\":\"u-ev\",\"ts\":%llu,\"campaign\":\"c2\"}]}",
             (unsigned long long)t + 100, (unsigned long long)t + 110);
    post_events(plain, 2, 0, 0);
    post_events(plain, 2, 0, 0);
    got = get_json("u-ev", NULL);
    c2 = entry(got, "frequency", "campaign", "c2");
    cr_assert_eq(num(c2, "hour"), 5);
    cr_assert_eq(num(c2, "day"), 5);
    cr_assert_eq(num(c2, "lifetime"), 5);
    cr_assert_eq(num(entry(got, "frequency", "campaign", "c1"), "lifetime"), 3, "a duplicate was counted");
    cJSON_Delete(got);
    e2e_assert_stopped_clean(&dmn);
}

Test(users, events_resolve_aliases, .timeout = 30)
{
    char batch[1024];
    const uint64_t t = events_base();
    cJSON *got;

    e2e_assert_started(&dmn, NULL);
    put_json("u-al",
             "{\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-77\"},"
             "{\"source\":\"id5-sync.com\",\"id\":\"ID5*al\"}]}",
             201);
    snprintf(batch, sizeof(batch),
             "{\"events\":["
             "{\"id\":\"a1\",\"type\":\"click\",\"user\":\"bu-77\",\"source\":\"buyeruid\",\"ts\":%llu,"
             "\"campaign\":\"c9\"},"
             "{\"id\":\"a2\",\"type\":\"impression\",\"user\":\"ID5*al\",\"source\":\"id5-sync.com\",\"ts\":%llu,"
             "\"campaign\":\"c9\"},"
             "{\"id\":\"a3\",\"type\":\"impression\",\"user\":\"bu-nobody\",\"source\":\"buyeruid\",\"ts\":%llu,"
             "\"campaign\":\"c9\"}]}",
             (unsigned long long)t, (unsigned long long)t + 5, (unsigned long long)t + 6);
    post_events(batch, 2, 0, 1);
    got = get_json("u-al", NULL);
    const cJSON *c9 = entry(got, "frequency", "campaign", "c9");
    cr_assert_eq(num(c9, "clicks"), 1);
    cr_assert_eq(num(c9, "lifetime"), 1, "the unresolved impression was counted somewhere: %s", rsp.body);
    cr_assert_eq(num(got, "recency/last_seen"), (double)(t + 5));
    cJSON_Delete(got);
    /* An unknown alias creates nobody, under either name. */
    assert_absent("bu-nobody", NULL);
    assert_absent("bu-nobody", "source=buyeruid");
    e2e_assert_stopped_clean(&dmn);
}

/* Posts @p base with member @p key of event @p ev replaced by @p val (NULL: removed), and
 * checks that the batch is refused with @p pointer and leaves u-batch as @p snap. Takes @p val. */
static void bad_batch(const cJSON *base, int ev, const char *key, cJSON *val, const char *pointer, const char *snap)
{
    cJSON *doc = cJSON_Duplicate(base, true), *e = cJSON_GetArrayItem(at(doc, "events"), ev);
    char *text;

    cJSON_DeleteItemFromObjectCaseSensitive(e, key);
    if (val != NULL)
        cJSON_AddItemToObject(e, key, val);
    text = cJSON_PrintUnformatted(doc);
    send_events(JSON, text);
    assert_error(400, "invalid_argument", pointer);
    assert_unchanged("u-batch", snap, text);
    assert_absent("u-batch-new", NULL);
    free(text);
    cJSON_Delete(doc);
}

Test(users, events_bad_batch_is_refused_whole, .timeout = 30)
{
    const uint64_t t = events_base(), now = now_s();
    char text[2048], *snap;
    cJSON *base, *nine;

    e2e_assert_started(&dmn, NULL);
    put_json("u-batch", "{\"attributes\":{\"city\":\"Lima\"}}", 201);
    snap = snapshot("u-batch");
    snprintf(text, sizeof(text),
             "{\"events\":["
             "{\"id\":\"b0\",\"type\":\"impression\",\"user\":\"u-batch\",\"ts\":%llu,\"campaign\":\"c1\"},"
             "{\"id\":\"b1\",\"type\":\"click\",\"user\":\"u-batch\",\"ts\":%llu,\"campaign\":\"c1\","
             "\"interests\":[\"tea\"]},"
             "{\"id\":\"b2\",\"type\":\"impression\",\"user\":\"u-batch-new\",\"ts\":%llu,\"campaign\":\"c1\"},"
             "{\"id\":\"b3\",\"type\":\"conversion\",\"user\":\"u-batch\",\"ts\":%llu,\"campaign\":\"c1\"},"
             "{\"id\":\"b4\",\"type\":\"custom\",\"name\":\"share\",\"user\":\"u-batch\",\"ts\":%llu}]}",
             (unsigned long long)t, (unsigned long long)t + 1, (unsigned long long)t + 2, (unsigned long long)t + 3,
             (unsigned long long)t + 4);
    base = cJSON_Parse(text);
    cr_assert_not_null(base);

    /* An hour in the future (the tolerance is 300 s), and before 2000. */
    bad_batch(base, 3, "ts", cJSON_CreateNumber((double)(now + 3600)), "/events/3/ts", snap);
    bad_batch(base, 2, "ts", cJSON_CreateNumber(1000), "/events/2/ts", snap);
    bad_batch(base, 1, "ts", cJSON_CreateString("yesterday"), "/events/1/ts", snap);
    bad_batch(base, 1, "type", cJSON_CreateString("hover"), "/events/1/type", snap);
    bad_batch(base, 2, "user", NULL, "/events/2/user", snap);
    bad_batch(base, 0, "type", NULL, "/events/0/type", snap);
    bad_batch(base, 4, "name", NULL, "/events/4/name", snap);
    bad_batch(base, 1, "referrer", cJSON_CreateString("x"), "/events/1/referrer", snap);
    bad_batch(base, 3, "value", cJSON_CreateNumber(-5), "/events/3/value", snap);
    bad_batch(base, 1, "weight", cJSON_CreateNumber(101), "/events/1/weight", snap);
    nine = cJSON_CreateArray();
    for (int i = 0; i < 9; i++)
        cJSON_AddItemToArray(nine, cJSON_CreateString("topic"));
    bad_batch(base, 1, "interests", nine, "/events/1/interests", snap);

    /* An empty batch, and a body that is no batch. */
    send_events(JSON, "{\"events\":[]}");
    assert_error(400, "invalid_argument", "/events");
    send_events(JSON, "{\"events\":[{\"type\":");
    assert_error(400, "bad_request", NULL);
    send_events("text/csv", "type,user");
    assert_error(415, "unsupported_media_type", NULL);
    assert_unchanged("u-batch", snap, "refused batches");

    /* None of the refused batches recorded its event ids: the good batch counts in full. */
    post_events(text, 5, 0, 0);
    call_user("GET", "u-batch", NULL, NULL, NULL, 0, NULL);
    cJSON *got = rsp_json(200, "GET");
    cr_assert_eq(num(entry(got, "frequency", "campaign", "c1"), "lifetime"), 1);
    cr_assert_eq(num(entry(got, "frequency", "campaign", "c1"), "clicks"), 1);
    cr_assert_eq(num(entry(got, "frequency", "campaign", "c1"), "conversions"), 1);
    cJSON_Delete(got);
    got = get_json("u-batch-new", NULL);
    cr_assert_eq(num(entry(got, "frequency", "campaign", "c1"), "lifetime"), 1);
    cJSON_Delete(got);

    cJSON_Delete(base);
    free(snap);
    e2e_assert_stopped_clean(&dmn);
}

Test(users, interest_weights_decay_with_the_half_life, .timeout = 30)
{
    const char *extra[] = {"--interest-half-life-s", "60", NULL};
    const uint64_t now = now_s();
    char body[512];
    cJSON *got;

    e2e_assert_started(&dmn, extra);
    /* Stored 8 two half-lives ago; a click (weight 1) now: 8 / 4 + 1 = 3. */
    snprintf(body, sizeof(body),
             "{\"interests\":[{\"id\":\"golf\",\"weight\":8,\"updated_at\":%llu},"
             "{\"id\":\"chess\",\"weight\":5,\"updated_at\":%llu}]}",
             (unsigned long long)now - 120, (unsigned long long)now - 120);
    put_json("u-decay", body, 201);
    snprintf(body, sizeof(body),
             "{\"events\":[{\"id\":\"d1\",\"type\":\"click\",\"user\":\"u-decay\",\"ts\":%llu,"
             "\"campaign\":\"c-golf\",\"interests\":[\"golf\"]}]}",
             (unsigned long long)now);
    post_events(body, 1, 0, 0);
    got = get_json("u-decay", NULL);
    cr_assert_float_eq(num(entry(got, "interests", "id", "golf"), "weight"), 3.0, 1e-6, "%s", rsp.body);
    cr_assert_eq(num(entry(got, "interests", "id", "golf"), "updated_at"), (double)now);
    /* Stored weights are as of their updated_at: an interest no event touched is left as it was. */
    cr_assert_eq(num(entry(got, "interests", "id", "chess"), "weight"), 5);
    cr_assert_eq(num(entry(got, "interests", "id", "chess"), "updated_at"), (double)(now - 120));
    cJSON_Delete(got);

    /* A late event (ts before the stored time) adds its weight decayed to the stored time. */
    snprintf(body, sizeof(body),
             "{\"events\":[{\"type\":\"conversion\",\"user\":\"u-decay\",\"ts\":%llu,\"interests\":[\"golf\"]}]}",
             (unsigned long long)now - 60);
    post_events(body, 1, 0, 0);
    got = get_json("u-decay", NULL);
    cr_assert_float_eq(num(entry(got, "interests", "id", "golf"), "weight"), 3.0 + 5.0 / 2, 1e-6, "%s", rsp.body);
    cr_assert_eq(num(entry(got, "interests", "id", "golf"), "updated_at"), (double)now);
    cJSON_Delete(got);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- limits ---- */

/* A string of exactly @p len bytes: @p prefix (with %d as @p i), then 'x's. The caller frees it. */
static char *padded(size_t len, const char *prefix, int i)
{
    char *s = malloc(len + 1);
    int n;

    cr_assert_not_null(s);
    n = snprintf(s, len + 1, prefix, i);
    cr_assert(n >= 0 && (size_t)n <= len);
    memset(s + n, 'x', len - (size_t)n);
    s[len] = '\0';
    return s;
}

/* @p n copies of @p unit; the caller frees it. */
static char *repeat(const char *unit, size_t n)
{
    size_t len = strlen(unit);
    char *s = malloc(len * n + 1);

    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, unit, len);
    s[len * n] = '\0';
    return s;
}

/* Adds member @p key to @p o with the string @p s, and frees @p s. */
static void add_str(cJSON *o, const char *key, char *s)
{
    cJSON_AddStringToObject(o, key, s);
    free(s);
}

/* A profile with every list full and every string at its byte limit. Its weights are
 * short binary fractions, which cJSON prints exactly (it prints 15 digits whenever they
 * read back within an epsilon, which is not always the same double). */
static cJSON *profile_at_limits(void)
{
    cJSON *doc = cJSON_CreateObject(), *list, *attr, *custom, *e;
    char key[80];

    list = cJSON_AddArrayToObject(doc, "aliases");
    for (int i = 0; i < 16; i++) {
        e = cJSON_CreateObject();
        add_str(e, "source", padded(64, "src-%02d.example-", i));
        add_str(e, "id", padded(128, "alias-%02d-", i));
        cJSON_AddItemToArray(list, e);
    }
    attr = cJSON_AddObjectToObject(doc, "attributes");
    cJSON_AddStringToObject(attr, "country", "USA");
    add_str(attr, "region", padded(64, "region-", 0));
    add_str(attr, "city", repeat("\xc3\xa9", 32)); /* 32 characters, 64 bytes */
    cJSON_AddStringToObject(attr, "language", "en-US-x-abcdefgh");
    cJSON_AddStringToObject(attr, "device", "ctv");
    add_str(attr, "os", padded(64, "os-", 0));
    cJSON_AddStringToObject(attr, "age_band", "65+");
    custom = cJSON_AddObjectToObject(attr, "custom");
    for (int i = 0; i < 32; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        memset(key + 3, '_', 61);
        key[64] = '\0';
        add_str(custom, key, padded(256, "value-%02d-", i));
    }
    const char *lists[3] = {"segments", "interests", "frequency"};
    for (int l = 0; l < 3; l++) {
        list = cJSON_AddArrayToObject(doc, lists[l]);
        for (int i = 0; i < 64; i++) {
            e = cJSON_CreateObject();
            add_str(e, l == 2 ? "campaign" : "id", padded(64, "tag-%02d-", i));
            if (l == 0) {
                cJSON_AddNumberToObject(e, "weight", (i + 1) / 64.0);
                cJSON_AddNumberToObject(e, "last_seen", 32503680000.0);
            } else if (l == 1) {
                cJSON_AddNumberToObject(e, "weight", i == 0 ? 1e6 : (i + 1) * 15624.75);
                cJSON_AddNumberToObject(e, "updated_at", 32503680000.0);
            } else {
                static const char *const names[] = {"hour_start", "hour",   "day_start",   "day",
                                                    "lifetime",   "clicks", "conversions", "last_at"};
                for (size_t k = 0; k < 8; k++)
                    cJSON_AddNumberToObject(e, names[k], k % 2 == 0 && k != 4 && k != 6 ? 32503680000.0 : 4294967295.0);
            }
            cJSON_AddItemToArray(list, e);
        }
    }
    e = cJSON_AddObjectToObject(doc, "recency");
    cJSON_AddNumberToObject(e, "last_seen", 32503680000.0);
    cJSON_AddNumberToObject(e, "last_impression", 32503680000.0);
    cJSON_AddNumberToObject(e, "last_click", 0);
    cJSON_AddNumberToObject(e, "last_conversion", 1);
    e = cJSON_AddObjectToObject(doc, "consent");
    cJSON_AddTrueToObject(e, "gdpr_applies");
    cJSON_AddFalseToObject(e, "personalization");
    cJSON_AddTrueToObject(e, "measurement");
    cJSON_AddTrueToObject(e, "sale_opt_out");
    return doc;
}

/* PUTs a copy of @p doc in which member @p key of the object at @p parent ("" for the top;
 * "a/0/b" walks keys and indexes) is set to @p val (taken), or, when @p val is NULL, the
 * array there gets one more copy of its first element; expects 400 at @p pointer and no change. */
static void over_limit(const cJSON *doc, const char *id, const char *parent, const char *key, cJSON *val,
                       const char *pointer, const char *snap)
{
    cJSON *copy = cJSON_Duplicate(doc, true), *obj;
    char *text;

    obj = (cJSON *)at(copy, parent);
    cr_assert_not_null(obj, "no %s in the profile", parent);
    if (val == NULL) {
        cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, key);
        cJSON_AddItemToArray(list, cJSON_Duplicate(list->child, true));
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
        cJSON_AddItemToObject(obj, key, val);
    }
    text = cJSON_PrintUnformatted(copy);
    send_user("PUT", id, JSON, text);
    assert_error(400, "invalid_argument", pointer);
    assert_unchanged(id, snap, pointer);
    free(text);
    cJSON_Delete(copy);
}

/* A string value from padded() or repeat(), as a cJSON item. */
static cJSON *str_item(char *s)
{
    cJSON *v = cJSON_CreateString(s);

    free(s);
    return v;
}

Test(users, limits_hold_at_their_boundaries, .timeout = 30)
{
    cJSON *doc = profile_at_limits();
    char *path_id = repeat("%C3%A9", 64), *long_id = repeat("%C3%A9", 65), *text, *snap, *key0, *key65;
    msgpack_sbuffer sb;

    e2e_assert_started(&dmn, NULL);
    /* Everything at its limit is accepted and round trips, in both encodings. The id is
     * 64 two-byte characters: 128 bytes. */
    add_str(doc, "id", repeat("\xc3\xa9", 64));
    text = cJSON_PrintUnformatted(doc);
    put_json(path_id, text, 201);
    assert_same_profile(doc, get_json(path_id, NULL), "GET of a profile at every limit");
    call_user("GET", path_id, NULL, NULL, NULL, 0, MSGPACK);
    assert_same_profile(doc, rsp_msgpack(200, "GET msgpack at limits"), "GET in MessagePack at every limit");
    pack_doc(doc, &sb);
    call_user("PUT", path_id, NULL, MSGPACK, sb.data, sb.size, NULL);
    assert_status(200, "PUT msgpack at limits");
    msgpack_sbuffer_destroy(&sb);
    free(text);
    /* 65 two-byte characters are 130 bytes: over the limit of 128 bytes. */
    send_user("PUT", long_id, JSON, "{}");
    assert_error(400, "invalid_argument", NULL);

    /* One more of anything is refused with its pointer, and nothing changes. */
    snap = snapshot(path_id);
    key0 = padded(64, "k00", 0);
    memset(key0 + 3, '_', 61);
    over_limit(doc, path_id, "", "aliases", NULL, "/aliases", snap);
    over_limit(doc, path_id, "", "segments", NULL, "/segments", snap);
    over_limit(doc, path_id, "", "interests", NULL, "/interests", snap);
    over_limit(doc, path_id, "", "frequency", NULL, "/frequency", snap);
    over_limit(doc, path_id, "attributes/custom", "k-33", cJSON_CreateString("v"), "/attributes/custom", snap);
    /* One byte more of any string; a limit in bytes, so 33 two-byte characters are too many for 64. */
    over_limit(doc, path_id, "aliases/0", "source", str_item(padded(65, "src-", 0)), "/aliases/0/source", snap);
    over_limit(doc, path_id, "aliases/15", "id", str_item(padded(129, "alias-", 0)), "/aliases/15/id", snap);
    over_limit(doc, path_id, "attributes", "city", str_item(repeat("\xc3\xa9", 33)), "/attributes/city", snap);
    over_limit(doc, path_id, "attributes", "region", str_item(padded(65, "r", 0)), "/attributes/region", snap);
    over_limit(doc, path_id, "attributes", "language", cJSON_CreateString("en-US-x-abcdefghi"), "/attributes/language",
               snap);
    text = malloc(128);
    cr_assert_not_null(text);
    snprintf(text, 128, "/attributes/custom/%s", key0);
    over_limit(doc, path_id, "attributes/custom", key0, str_item(padded(257, "v", 0)), text, snap);
    free(text);
    over_limit(doc, path_id, "segments/63", "id", str_item(padded(65, "s", 0)), "/segments/63/id", snap);
    over_limit(doc, path_id, "segments/0", "weight", cJSON_CreateNumber(1.0000001), "/segments/0/weight", snap);
    over_limit(doc, path_id, "interests/0", "weight", cJSON_CreateNumber(1000001), "/interests/0/weight", snap);
    over_limit(doc, path_id, "frequency/0", "hour", cJSON_CreateNumber(4294967296.0), "/frequency/0/hour", snap);
    over_limit(doc, path_id, "recency", "last_seen", cJSON_CreateNumber(32503680001.0), "/recency/last_seen", snap);
    /* A custom key of 65 bytes. */
    key65 = padded(65, "key", 0);
    text = malloc(512);
    cr_assert_not_null(text);
    snprintf(text, 512, "{\"attributes\":{\"custom\":{\"%s\":\"v\"}}}", key65);
    send_user("PUT", path_id, JSON, text);
    assert_error(400, "invalid_argument", "/attributes/custom");
    assert_unchanged(path_id, snap, "a custom key of 65 bytes");
    free(text);
    free(key65);

    free(key0);
    free(snap);
    cJSON_Delete(doc);
    free(path_id);
    free(long_id);
    e2e_assert_stopped_clean(&dmn);
}

Test(users, event_limits_hold_at_their_boundaries, .timeout = 30)
{
    const size_t cap = 128 * 1024;
    const uint64_t t = events_base();
    char *batch = malloc(cap), *id64 = padded(64, "evt-", 0), *id65 = padded(65, "evt-", 0);
    size_t n;
    cJSON *got;

    cr_assert_not_null(batch);
    e2e_assert_started(&dmn, NULL);
    /* 1000 events is the largest batch. */
    for (int total = 1000; total <= 1001; total++) {
        n = (size_t)snprintf(batch, cap, "{\"events\":[");
        for (int i = 0; i < total; i++)
            n += (size_t)snprintf(batch + n, cap - n,
                                  "%s{\"type\":\"impression\",\"user\":\"u-many\",\"ts\":%llu,\"campaign\":\"c\"}",
                                  i > 0 ? "," : "", (unsigned long long)t + (unsigned)i % 60);
        cr_assert_lt(n + 3, cap);
        snprintf(batch + n, cap - n, "]}");
        if (total == 1000) {
            post_events(batch, 1000, 0, 0);
        } else {
            send_events(JSON, batch);
            assert_error(400, "invalid_argument", "/events");
        }
    }
    got = get_json("u-many", NULL);
    cr_assert_eq(num(entry(got, "frequency", "campaign", "c"), "lifetime"), 1000);
    cr_assert_eq(num(entry(got, "frequency", "campaign", "c"), "hour"), 1000);
    cJSON_Delete(got);

    /* An event id of 64 bytes is accepted; 65 is not. */
    snprintf(batch, cap, "{\"events\":[{\"id\":\"%s\",\"type\":\"click\",\"user\":\"u-many\",\"ts\":%llu}]}", id64,
             (unsigned long long)t);
    post_events(batch, 1, 0, 0);
    post_events(batch, 0, 1, 0);
    snprintf(batch, cap, "{\"events\":[{\"id\":\"%s\",\"type\":\"click\",\"user\":\"u-many\",\"ts\":%llu}]}", id65,
             (unsigned long long)t);
    send_events(JSON, batch);
    assert_error(400, "invalid_argument", "/events/0/id");
    free(batch);
    free(id64);
    free(id65);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- custom attributes past their limit ---- */

Test(users, patch_custom_overflow_drops_the_oldest_pairs, .timeout = 30)
{
    char *body = malloc(4096), key[16];
    size_t n;
    cJSON *got;

    cr_assert_not_null(body);
    e2e_assert_started(&dmn, NULL);
    /* 32 pairs stored in the order k00 .. k31; a PATCH adding two more makes the two oldest give way. */
    n = (size_t)snprintf(body, 4096, "{\"attributes\":{\"custom\":{");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(body + n, 4096 - n, "%s\"k%02d\":\"v\"", i > 0 ? "," : "", i);
    snprintf(body + n, 4096 - n, "}}}");
    put_json("u-custom", body, 201);
    send_user("PATCH", "u-custom", JSON, "{\"attributes\":{\"custom\":{\"n1\":\"x\",\"n2\":\"y\"}}}");
    assert_status(200, "PATCH");
    got = get_json("u-custom", NULL);
    cr_assert_eq(cJSON_GetArraySize(at(got, "attributes/custom")), 32);
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "attributes/custom/n1")), "x");
    cr_assert_str_eq(cJSON_GetStringValue(at(got, "attributes/custom/n2")), "y");
    cr_assert_null(at(got, "attributes/custom/k00"), "k00, the oldest pair, was kept");
    cr_assert_null(at(got, "attributes/custom/k01"), "k01, the second oldest pair, was kept");
    for (int i = 2; i < 32; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(at(got, "attributes/custom"), key),
                           "%s was dropped, though k01 is older: %s", key, rsp.body);
    }
    cJSON_Delete(got);
    free(body);
    e2e_assert_stopped_clean(&dmn);
}
