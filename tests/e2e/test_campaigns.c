/*
 * End-to-end tests of campaigns (issue 4): the real daemon, spoken to over
 * h2c (prior knowledge, fresh handles), HTTP/1.1 and h2c by Upgrade (one
 * reused connection), in JSON and MessagePack. /v1/campaigns/{id}: PUT
 * (create, replace, every problem listed), PATCH (JSON Merge Patch), GET
 * (ETag, 304), DELETE (archive), usage; the listing and its pages; tenancy of
 * advertiser and reader keys; the per-advertiser limit and max_body; the demo
 * seed; `adsmith campaigns validate`; writers racing on one id and on the
 * limit; and the compiled index: following writes within a second, and
 * answering for the time (flight, dayparting in the campaign's zone) and
 * place asked. The shipped examples (schemas/examples/campaign-*.json) are the
 * base documents. Each test starts its own daemon and ends with a clean
 * SIGTERM: exit 0 (a sanitizer build reports through it) and a log of JSON
 * records only.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define JSON "application/json"
#define MSGPACK "application/msgpack"
#define GAME "campaign-game-ip.json"
#define RETAIL "campaign-retail.json"
#define DEMO "campaign-demo.json"

static struct e2e_daemon dmn;
static struct e2e_daemon aux; /* a second daemon on dmn's data directory */
static struct e2e_resp rsp;   /* the latest response (64 KiB: kept off the stack) */

/* How call() reaches the daemon: the protocol, a handle to reuse (E2E_H2C_UPGRADE
 * only; NULL: a fresh handle per request), and the HTTP version every answer must
 * come in (0: not checked). */
static enum e2e_proto proto = E2E_H2C;
static CURL *conn;
static long want_version = CURL_HTTP_VERSION_2_0;

static void setup(void)
{
    int rc = e2e_daemon_init(&dmn);

    cr_assert_eq(rc, 0, "e2e_daemon_init: %s", dmn.why);
}

static void teardown(void)
{
    if (conn != NULL)
        curl_easy_cleanup(conn);
    conn = NULL;
    e2e_daemon_done(&aux);
    e2e_daemon_done(&dmn);
}

TestSuite(campaigns, .init = setup, .fini = teardown);

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- HTTP ---- */

/*
 * Sends @p method @p path to @p d with the API key @p key (NULL: the daemon's admin
 * key; "": no Authorization at all), @p len bytes of @p body in @p ctype (NULL: no
 * Content-Type), the extra header lines @p extra (NULL-terminated; NULL: none), and
 * captures the response header @p capture (NULL: none). The response is left in rsp.
 */
static void call_on(const struct e2e_daemon *d, const char *method, const char *path, const char *key,
                    const char *ctype, const void *body, size_t len, const char *const *extra, const char *capture)
{
    char auth[128], ct[128];
    const char *headers[10];
    size_t n = 0;
    struct e2e_req req = {.proto = proto,
                          .method = method,
                          .path = path,
                          .body = body,
                          .body_len = len,
                          .headers = headers,
                          .capture = capture,
                          .handle = conn,
                          .no_auth = key != NULL && key[0] == '\0'};
    int rc;

    if (key != NULL && key[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        headers[n++] = auth;
    }
    if (ctype != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        headers[n++] = ct;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 9; i++)
        headers[n++] = extra[i];
    headers[n] = NULL;
    rc = e2e_http(d, &req, &rsp);
    cr_assert_eq(rc, 0, "cannot set up %s %s (%d): %s", method, path, rc, d->why);
    if (rsp.code != CURLE_OK) {
        bool alive = e2e_daemon_running((struct e2e_daemon *)d);
        cr_assert_fail("%s %s: %s (%s)%s%s", method, path, curl_easy_strerror(rsp.code), rsp.error,
                       alive ? "" : "; the daemon died, status ",
                       alive ? "" : (d->status == 139 ? "139 (SIGSEGV)" : "!= 0"));
    }
    if (want_version != 0)
        cr_assert_eq(rsp.version, want_version, "%s %s was answered over HTTP version code %ld, not %ld", method, path,
                     rsp.version, want_version);
    cr_assert_not(rsp.body_truncated, "%s %s: the response is larger than the test's buffer", method, path);
}

static void call(const char *method, const char *path, const char *key, const char *ctype, const void *body, size_t len,
                 const char *const *extra, const char *capture)
{
    call_on(&dmn, method, path, key, ctype, body, len, extra, capture);
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

/* An entity-tag as RFC 9110 writes it: a quoted string, not weak. */
static void assert_etag(const char *what)
{
    size_t n = strlen(rsp.header);

    cr_assert(rsp.has_header, "%s: no ETag header", what);
    cr_assert(n >= 3 && rsp.header[0] == '"' && rsp.header[n - 1] == '"', "%s: ETag %s is not a quoted string", what,
              rsp.header);
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
static cJSON *at(const cJSON *o, const char *path)
{
    char key[128];

    while (o != NULL && *path != '\0') {
        size_t n = strcspn(path, "/");
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        o = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, (int)strtol(key, NULL, 10))
                             : cJSON_GetObjectItemCaseSensitive(o, key);
        path += n + (path[n] == '/');
    }
    return (cJSON *)o;
}

static double num(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);

    cr_assert(cJSON_IsNumber(v), "%s is not a number", path);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);

    cr_assert(cJSON_IsString(v), "%s is not a string", path);
    return v->valuestring;
}

/* Sets member @p path ("a/b", "a/0") of @p doc to @p val (taking it), replacing or adding it. */
static void set(cJSON *doc, const char *path, cJSON *val)
{
    char parent[256];
    const char *slash = strrchr(path, '/');
    cJSON *obj = doc;
    const char *name = path;

    if (slash != NULL) {
        snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
        obj = at(doc, parent);
        name = slash + 1;
    }
    if (cJSON_IsArray(obj)) {
        int i = (int)strtol(name, NULL, 10);
        cr_assert_lt(i, cJSON_GetArraySize(obj), "cannot set %s: the array is shorter", path);
        cJSON_ReplaceItemInArray(obj, i, val);
        return;
    }
    cr_assert(cJSON_IsObject(obj), "cannot set %s: its parent is neither an object nor an array", path);
    if (cJSON_GetObjectItemCaseSensitive(obj, name) != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(obj, name, val);
    else
        cJSON_AddItemToObject(obj, name, val);
}

static void set_str(cJSON *doc, const char *path, const char *v)
{
    set(doc, path, cJSON_CreateString(v));
}

static void set_num(cJSON *doc, const char *path, double v)
{
    set(doc, path, cJSON_CreateNumber(v));
}

/* The example @p name as campaign @p id of @p advertiser with @p status (NULL: as written). */
static cJSON *campaign(const char *name, const char *id, const char *advertiser, const char *status)
{
    cJSON *doc = example(name);

    set_str(doc, "id", id);
    if (advertiser != NULL)
        set_str(doc, "advertiser", advertiser);
    if (status != NULL)
        set_str(doc, "status", status);
    return doc;
}

static char *print(const cJSON *doc)
{
    char *s = cJSON_PrintUnformatted(doc);

    cr_assert_not_null(s);
    return s;
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

/* Asserts that @p got is @p want plus the server's created_at and updated_at, which must
 * be unix seconds in [@p t0, @p t1] (no check when @p t0 is 0). Does not take @p got. */
static void assert_same_campaign(const cJSON *want, const cJSON *got, uint64_t t0, uint64_t t1, const char *what)
{
    cJSON *g = cJSON_Duplicate(got, true), *w = cJSON_Duplicate(want, true);
    char where[512] = "", *a = NULL, *b = NULL;
    bool ok;

    cr_assert(cJSON_IsNumber(at(got, "created_at")) && cJSON_IsNumber(at(got, "updated_at")),
              "%s: created_at or updated_at is missing: %.300s", what, rsp.body);
    if (t0 != 0) {
        cr_assert(num(got, "created_at") >= (double)t0 - 1 && num(got, "updated_at") <= (double)t1 + 1,
                  "%s: created_at %.0f / updated_at %.0f are not within [%llu, %llu]", what, num(got, "created_at"),
                  num(got, "updated_at"), (unsigned long long)t0, (unsigned long long)t1);
    }
    cr_assert_geq(num(got, "updated_at"), num(got, "created_at"), "%s: updated_at is before created_at", what);
    cJSON_DeleteItemFromObjectCaseSensitive(g, "created_at");
    cJSON_DeleteItemFromObjectCaseSensitive(g, "updated_at");
    cJSON_DeleteItemFromObjectCaseSensitive(w, "created_at");
    cJSON_DeleteItemFromObjectCaseSensitive(w, "updated_at");
    ok = json_same(w, g, where, sizeof(where));
    if (!ok) {
        char path[512];
        snprintf(path, sizeof(path), "%s", where[0] == '/' ? where + 1 : where);
        a = cJSON_PrintUnformatted(at(w, path));
        b = cJSON_PrintUnformatted(at(g, path));
    }
    cJSON_Delete(w);
    cJSON_Delete(g);
    cr_assert(ok, "%s: the campaign differs at \"%s\": want %s, got %s", what, where, a != NULL ? a : "(nothing)",
              b != NULL ? b : "(nothing)");
}

/* ---- MessagePack ---- */

static void pack_json(msgpack_packer *pk, const cJSON *j)
{
    const cJSON *c;

    if (cJSON_IsObject(j)) {
        msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(j));
        cJSON_ArrayForEach(c, j)
        {
            msgpack_pack_str_with_body(pk, c->string, strlen(c->string));
            pack_json(pk, c);
        }
    } else if (cJSON_IsArray(j)) {
        msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(j));
        cJSON_ArrayForEach(c, j)
        {
            pack_json(pk, c);
        }
    } else if (cJSON_IsString(j)) {
        msgpack_pack_str_with_body(pk, j->valuestring, strlen(j->valuestring));
    } else if (cJSON_IsNumber(j) && j->valuedouble == floor(j->valuedouble) && j->valuedouble >= 0) {
        msgpack_pack_uint64(pk, (uint64_t)j->valuedouble);
    } else if (cJSON_IsNumber(j) && j->valuedouble == floor(j->valuedouble)) {
        msgpack_pack_int64(pk, (int64_t)j->valuedouble);
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
    pack_json(&pk, doc);
}

/* The MessagePack body of rsp (status 200, Content-Type application/msgpack) as JSON. */
static cJSON *rsp_msgpack(const char *what)
{
    msgpack_unpacked u;
    size_t off = 0;
    cJSON *j;

    assert_status(200, what);
    cr_assert_str_eq(rsp.content_type, MSGPACK, "%s: Content-Type is '%s'", what, rsp.content_type);
    msgpack_unpacked_init(&u);
    cr_assert_eq(msgpack_unpack_next(&u, rsp.body, rsp.body_len, &off), MSGPACK_UNPACK_SUCCESS,
                 "%s: the body is not MessagePack", what);
    cr_assert_eq(off, rsp.body_len, "%s: bytes after the MessagePack value", what);
    j = e2e_json_of_msgpack(&u.data);
    msgpack_unpacked_destroy(&u);
    cr_assert_not_null(j);
    return j;
}

/* ---- campaign requests ---- */

static void path_of(char *out, size_t cap, const char *id, const char *suffix)
{
    snprintf(out, cap, "/v1/campaigns/%.64s%s", id, suffix != NULL ? suffix : "");
}

/* PUT @p doc (JSON) as campaign @p id with @p key (NULL: admin), capturing @p capture. */
static void put_as(const char *key, const char *id, const cJSON *doc, const char *const *extra, const char *capture)
{
    char path[256], *text = print(doc);

    path_of(path, sizeof(path), id, NULL);
    call("PUT", path, key, JSON, text, strlen(text), extra, capture);
    free(text);
}

/* Creates or replaces campaign @p id as admin and asserts @p status. */
static void put_ok(const char *id, const cJSON *doc, long status)
{
    put_as(NULL, id, doc, NULL, "ETag");
    assert_status(status, "PUT");
    assert_etag("PUT");
}

static void patch_as(const char *key, const char *id, const char *patch, const char *const *extra, const char *capture)
{
    char path[256];

    path_of(path, sizeof(path), id, NULL);
    call("PATCH", path, key, JSON, patch, strlen(patch), extra, capture);
}

static void get_as(const char *key, const char *id, const char *const *extra)
{
    char path[256];

    path_of(path, sizeof(path), id, NULL);
    call("GET", path, key, NULL, NULL, 0, extra, "ETag");
}

static void delete_as(const char *key, const char *id, const char *const *extra)
{
    char path[256];

    path_of(path, sizeof(path), id, NULL);
    call("DELETE", path, key, NULL, NULL, 0, extra, "ETag");
}

static void usage_as(const char *key, const char *id)
{
    char path[256];

    path_of(path, sizeof(path), id, "/usage");
    call("GET", path, key, NULL, NULL, 0, NULL, NULL);
}

/* GET campaign @p id as admin: the parsed body; its ETag into @p etag (may be NULL). */
static cJSON *get_doc(const char *id, char etag[128])
{
    cJSON *doc;

    get_as(NULL, id, NULL);
    doc = rsp_json(200, "GET");
    assert_etag("GET");
    if (etag != NULL)
        snprintf(etag, 128, "%.100s", rsp.header);
    return doc;
}

static void assert_absent(const char *id)
{
    get_as(NULL, id, NULL);
    assert_error(404, "not_found", NULL);
}

/* The exact bytes and ETag GET answers for @p id: a write that must change nothing leaves both equal. */
struct snap {
    char *body;
    char etag[128];
};

static struct snap snapshot(const char *id)
{
    struct snap s;

    get_as(NULL, id, NULL);
    assert_status(200, "GET");
    assert_etag("GET");
    s.body = strdup(rsp.body);
    cr_assert_not_null(s.body);
    snprintf(s.etag, sizeof(s.etag), "%.100s", rsp.header);
    return s;
}

static void assert_unchanged(const char *id, const struct snap *s, const char *after)
{
    get_as(NULL, id, NULL);
    assert_status(200, "GET");
    cr_assert_str_eq(rsp.body, s->body, "the stored campaign changed after %s", after);
    cr_assert_str_eq(rsp.header, s->etag, "the ETag changed after %s", after);
}

/* GET /v1/campaigns?@p query with @p key: the parsed page. */
static cJSON *list_as(const char *key, const char *query)
{
    char path[512];

    snprintf(path, sizeof(path), "/v1/campaigns%s%s", query[0] != '\0' ? "?" : "", query);
    call("GET", path, key, NULL, NULL, 0, NULL, NULL);
    return rsp_json(200, path);
}

/* The ids of a page, comma-separated, e.g. "a,b,c". */
static void page_ids(const cJSON *page, char *out, size_t cap)
{
    const cJSON *c;
    size_t n = 0;

    out[0] = '\0';
    cr_assert(cJSON_IsArray(at(page, "campaigns")), "no campaigns array: %s", rsp.body);
    cJSON_ArrayForEach(c, at(page, "campaigns"))
    {
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n > 0 ? "," : "", str(c, "id"));
        cr_assert_lt(n, cap);
    }
}

/* Lists every page of @p query (limit included) and returns all ids joined, asserting next_cursor
 * appears exactly on the pages that are followed by another. */
static void list_all(const char *key, const char *query, char *out, size_t cap, int *ret_pages)
{
    char q[512], ids[1024], cursor[128] = "";
    size_t n = 0;
    int pages = 0;

    out[0] = '\0';
    for (;;) {
        cJSON *page;
        const cJSON *next;
        snprintf(q, sizeof(q), "%s%s%s", query, cursor[0] != '\0' ? "&cursor=" : "", cursor);
        page = list_as(key, q);
        page_ids(page, ids, sizeof(ids));
        pages++;
        cr_assert_lt(pages, 20, "paging does not end: %s", rsp.body);
        if (ids[0] != '\0')
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n > 0 ? "," : "", ids);
        next = cJSON_GetObjectItemCaseSensitive(page, "next_cursor");
        if (next == NULL) {
            cJSON_Delete(page);
            break;
        }
        cr_assert(cJSON_IsString(next) && next->valuestring[0] != '\0', "next_cursor is not a string: %s", rsp.body);
        cr_assert(ids[0] != '\0', "a page with next_cursor but no campaigns: %s", rsp.body);
        snprintf(cursor, sizeof(cursor), "%s", next->valuestring);
        cJSON_Delete(page);
    }
    *ret_pages = pages;
}

/* The problems of a 400 from PUT or PATCH, checked for shape; the caller deletes the result. */
static cJSON *problems(size_t want)
{
    const cJSON *err, *e;
    cJSON *doc;
    char prefix[128];
    int i = 0;

    e2e_assert_error_json(&rsp, 400, "invalid_argument");
    doc = cJSON_Parse(rsp.body);
    err = at(doc, "error");
    cr_assert_eq(num(err, "problems"), (double)want, "expected %zu problems: %s", want, rsp.body);
    cr_assert(cJSON_IsArray(at(err, "errors")), "error.errors is not an array: %s", rsp.body);
    cr_assert_eq(cJSON_GetArraySize(at(err, "errors")), (int)want, "error.errors does not list every problem: %s",
                 rsp.body);
    cJSON_ArrayForEach(e, at(err, "errors"))
    {
        cr_assert_eq(cJSON_GetArraySize(e), 3, "errors/%d is not {pointer, message, rule}: %s", i, rsp.body);
        cr_assert(cJSON_IsString(at(e, "pointer")) && cJSON_IsString(at(e, "rule")) &&
                      cJSON_IsString(at(e, "message")) && str(e, "message")[0] != '\0',
                  "errors/%d is not {pointer, message, rule} strings: %s", i, rsp.body);
        i++;
    }
    /* The top-level pointer and message are the first problem's. */
    cr_assert_str_eq(str(err, "pointer"), str(err, "errors/0/pointer"), "error.pointer is not the first problem's");
    snprintf(prefix, sizeof(prefix), "the campaign has %zu problem%s; the first: ", want, want == 1 ? "" : "s");
    cr_assert(strncmp(str(err, "message"), prefix, strlen(prefix)) == 0, "error.message does not start with '%s': %s",
              prefix, str(err, "message"));
    cr_assert(strstr(str(err, "message"), str(err, "errors/0/message")) != NULL,
              "error.message does not quote the first problem: %s", rsp.body);
    return doc;
}

/* The problem listed with @p pointer and @p rule; fails when there is none. */
static const cJSON *problem(const cJSON *doc, const char *pointer, const char *rule)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, at(doc, "error/errors"))
    {
        if (strcmp(str(e, "pointer"), pointer) == 0 && strcmp(str(e, "rule"), rule) == 0)
            return e;
    }
    cr_assert_fail("no problem at \"%s\" with rule %s in %s", pointer, rule, rsp.body);
    return NULL;
}

/* ---- the whole life of a campaign, over one protocol ---- */

static void lifecycle(void)
{
    cJSON *doc = campaign(GAME, "life-1", NULL, NULL), *got, *echo, *mp_doc;
    const char *inm[2] = {NULL, NULL};
    char etag1[128], etag2[128], etag3[128], hdr[200], *put_body;
    uint64_t t0 = now_s(), created;
    msgpack_sbuffer sb;

    /* Create: 201, Location, and the document echoed with the server's times. */
    put_as(NULL, "life-1", doc, NULL, "Location");
    assert_status(201, "PUT (create)");
    cr_assert(rsp.has_header, "a 201 without Location");
    cr_assert_str_eq(rsp.header, "/v1/campaigns/life-1");
    echo = rsp_json(201, "PUT (create)");
    assert_same_campaign(doc, echo, t0, now_s(), "PUT's echo");
    cr_assert_eq(num(echo, "created_at"), num(echo, "updated_at"), "a new campaign's times differ");
    created = (uint64_t)num(echo, "created_at");
    put_body = strdup(rsp.body);

    /* GET answers the same document with an ETag; HEAD the same without the body. */
    got = get_doc("life-1", etag1);
    cr_assert_str_eq(rsp.body, put_body, "GET does not answer what PUT echoed");
    cJSON_Delete(got);
    path_of(hdr, sizeof(hdr), "life-1", NULL);
    call("HEAD", hdr, NULL, NULL, NULL, 0, NULL, "ETag");
    assert_status(200, "HEAD");
    cr_assert_eq(rsp.body_len, 0, "HEAD answered a body");
    cr_assert_str_eq(rsp.header, etag1, "HEAD's ETag is not GET's");
    inm[0] = "If-None-Match: \"not-the-etag\"";
    get_as(NULL, "life-1", inm);
    assert_status(200, "GET If-None-Match: another ETag");

    /* Replace: 200 with a new ETag; created_at stays. */
    set_str(doc, "name", "Emberfall: Season 7, renamed");
    put_as(NULL, "life-1", doc, NULL, "ETag");
    assert_status(200, "PUT (replace)");
    assert_etag("PUT (replace)");
    snprintf(etag2, sizeof(etag2), "%.100s", rsp.header);
    cr_assert_str_neq(etag2, etag1, "a replace kept the ETag");
    cJSON_Delete(echo);
    echo = rsp_json(200, "PUT (replace)");
    assert_same_campaign(doc, echo, t0, now_s(), "PUT (replace)'s echo");
    cr_assert_eq(num(echo, "created_at"), (double)created, "a replace moved created_at");
    cJSON_Delete(echo);
    got = get_doc("life-1", etag3);
    cr_assert_str_eq(etag3, etag2, "GET's ETag is not the replace's");
    cr_assert_str_eq(str(got, "name"), "Emberfall: Season 7, renamed");

    /* What GET answers can be PUT back: the server's times sent are ignored. */
    set_num(got, "created_at", 5);
    set_num(got, "updated_at", 6);
    put_as(NULL, "life-1", got, NULL, NULL);
    assert_status(200, "PUT of GET's output");
    cJSON_Delete(got);
    got = rsp_json(200, "PUT of GET's output");
    cr_assert_eq(num(got, "created_at"), (double)created, "created_at sent by the client was stored");
    cr_assert_geq(num(got, "updated_at"), (double)created, "updated_at sent by the client was stored");
    cJSON_Delete(got);

    /* PATCH: a merge patch, 200 with a new ETag, the rest unchanged. */
    patch_as(NULL, "life-1", "{\"status\":\"paused\"}", NULL, "ETag");
    assert_status(200, "PATCH");
    assert_etag("PATCH");
    cr_assert_str_neq(rsp.header, etag2, "a PATCH kept the ETag");
    snprintf(etag3, sizeof(etag3), "%.100s", rsp.header);
    got = rsp_json(200, "PATCH");
    set_str(doc, "status", "paused");
    assert_same_campaign(doc, got, t0, now_s(), "PATCH's answer");
    cJSON_Delete(got);
    got = get_doc("life-1", etag1);
    assert_same_campaign(doc, got, t0, now_s(), "GET after PATCH");
    cr_assert_str_eq(etag1, etag3);
    cJSON_Delete(got);

    /* Usage of a campaign that never served: zeros next to its budget and package. */
    usage_as(NULL, "life-1");
    got = rsp_json(200, "usage");
    cr_assert_str_eq(str(got, "id"), "life-1");
    cr_assert_str_eq(str(got, "advertiser"), "lumen-forge-games");
    cr_assert_str_eq(str(got, "currency"), "USD");
    cr_assert_str_eq(str(got, "status"), "paused");
    cr_assert_eq(num(got, "spend/total_micros"), 0);
    cr_assert_eq(num(got, "spend/impressions"), 0);
    cr_assert_eq(num(got, "spend/budget_total_micros"), num(doc, "budget/total_micros"));
    cr_assert_eq(num(got, "spend/budget_daily_micros"), num(doc, "budget/daily_micros"));
    cr_assert_eq(num(got, "tokens/settled"), 0);
    cr_assert_eq(num(got, "tokens/reserved"), 0);
    cr_assert_eq(num(got, "tokens/allowance"), num(doc, "token_package/grant/tokens"));
    cr_assert(json_same(at(got, "tokens/package"), at(doc, "token_package"), NULL, 0),
              "usage's tokens.package is not the campaign's token_package: %s", rsp.body);
    cJSON_Delete(got);

    /* MessagePack in and out. */
    mp_doc = campaign(RETAIL, "life-mp", NULL, NULL);
    pack_doc(mp_doc, &sb);
    path_of(hdr, sizeof(hdr), "life-mp", NULL);
    call("PUT", hdr, NULL, MSGPACK, sb.data, sb.size, NULL, NULL);
    msgpack_sbuffer_destroy(&sb);
    got = rsp_json(201, "PUT (MessagePack)");
    assert_same_campaign(mp_doc, got, t0, now_s(), "PUT (MessagePack)'s JSON echo");
    cJSON_Delete(got);
    inm[0] = "Accept: application/msgpack";
    get_as(NULL, "life-mp", inm);
    assert_etag("GET (MessagePack)");
    got = rsp_msgpack("GET (MessagePack)");
    assert_same_campaign(mp_doc, got, t0, now_s(), "GET (MessagePack)");
    cJSON_Delete(got);
    cJSON_Delete(mp_doc);

    /* DELETE archives; again is still 200; the campaign stays, archived, and listed so. */
    delete_as(NULL, "life-1", NULL);
    got = rsp_json(200, "DELETE");
    assert_etag("DELETE");
    cr_assert_str_neq(rsp.header, etag3, "archiving kept the ETag");
    snprintf(etag2, sizeof(etag2), "%.100s", rsp.header);
    cr_assert_str_eq(str(got, "status"), "archived");
    cr_assert_str_eq(str(got, "id"), "life-1");
    free(put_body);
    put_body = strdup(rsp.body);
    cJSON_Delete(got);
    delete_as(NULL, "life-1", NULL);
    got = rsp_json(200, "DELETE (again)");
    cr_assert_str_eq(str(got, "status"), "archived");
    cr_assert_str_eq(rsp.header, etag2, "a repeated DELETE changed the ETag: it wrote");
    cr_assert_str_eq(rsp.body, put_body, "a repeated DELETE answers another document");
    cJSON_Delete(got);
    got = get_doc("life-1", NULL);
    set_str(doc, "status", "archived");
    assert_same_campaign(doc, got, t0, now_s(), "GET after DELETE");
    cJSON_Delete(got);
    got = list_as(NULL, "status=archived");
    page_ids(got, hdr, sizeof(hdr));
    cr_assert_str_eq(hdr, "life-1", "status=archived lists: %s", rsp.body);
    cJSON_Delete(got);
    got = list_as(NULL, "status=active");
    page_ids(got, hdr, sizeof(hdr));
    cr_assert_str_eq(hdr, "life-mp", "status=active lists: %s", rsp.body);
    cJSON_Delete(got);

    /* An archived campaign cannot change. */
    set_str(doc, "status", "active");
    put_as(NULL, "life-1", doc, NULL, NULL);
    assert_error(409, "conflict", NULL);
    patch_as(NULL, "life-1", "{\"status\":\"active\"}", NULL, NULL);
    assert_error(409, "conflict", NULL);
    got = get_doc("life-1", etag1);
    cr_assert_str_eq(str(got, "status"), "archived", "a write to an archived campaign went through");
    cJSON_Delete(got);

    /* A GET whose If-None-Match holds the current ETag (or is *) answers 304 with the ETag and no body. */
    snprintf(hdr, sizeof(hdr), "If-None-Match: %s", etag1);
    inm[0] = hdr;
    get_as(NULL, "life-1", inm);
    assert_status(304, "GET If-None-Match: the current ETag");
    cr_assert_eq(rsp.body_len, 0, "a 304 with a body: %s", rsp.body);
    cr_assert_str_eq(rsp.header, etag1, "the 304's ETag");
    inm[0] = "If-None-Match: *";
    get_as(NULL, "life-1", inm);
    assert_status(304, "GET If-None-Match: *");

    free(put_body);
    cJSON_Delete(doc);
}

Test(campaigns, lifecycle_over_h2c, .timeout = 30)
{
    double v = 0;

    e2e_assert_started(&dmn, NULL);
    lifecycle();
    call("GET", "/metrics", "", NULL, NULL, 0, NULL, NULL);
    assert_status(200, "GET /metrics");
    cr_assert_eq(e2e_metric(rsp.body,
                            "adsmith_http_requests_total{method=\"PUT\",route=\"/v1/campaigns/{id}\",code=\"201\"}",
                            &v),
                 0, "campaign PUTs are not counted by route: %.3000s", rsp.body);
    cr_assert_geq(v, 2);
    e2e_assert_stopped_clean(&dmn);
}

Test(campaigns, lifecycle_over_http1, .timeout = 30)
{
    proto = E2E_HTTP1;
    want_version = CURL_HTTP_VERSION_1_1;
    e2e_assert_started(&dmn, NULL);
    lifecycle();
    e2e_assert_stopped_clean(&dmn);
}

Test(campaigns, lifecycle_over_one_h2c_upgraded_connection, .timeout = 30)
{
    proto = E2E_H2C_UPGRADE;
    want_version = CURL_HTTP_VERSION_2_0;
    conn = curl_easy_init();
    cr_assert_not_null(conn);
    e2e_assert_started(&dmn, NULL);
    /* The first request upgrades the connection; every later one reuses it. */
    call("GET", "/healthz", "", NULL, NULL, 0, NULL, NULL);
    assert_status(200, "GET /healthz");
    lifecycle();
    call("GET", "/healthz", "", NULL, NULL, 0, NULL, NULL);
    cr_assert_eq(rsp.connects, 0, "the upgraded HTTP/2 connection was not kept");
    e2e_assert_stopped_clean(&dmn);
}

/* ---- documents the service refuses ---- */

Test(campaigns, path_id_must_be_the_documents_id, .timeout = 30)
{
    cJSON *doc = campaign(DEMO, "doc-id", NULL, NULL);
    char *text = print(doc);

    e2e_assert_started(&dmn, NULL);
    put_as(NULL, "path-id", doc, NULL, NULL);
    assert_error(400, "invalid_argument", "/id");
    assert_absent("path-id");
    assert_absent("doc-id");
    /* A path id outside A-Z a-z 0-9 _ . - is refused before anything else. */
    call("PUT", "/v1/campaigns/doc%20id", NULL, JSON, text, strlen(text), NULL, NULL);
    assert_error(400, "invalid_argument", NULL);
    call("GET", "/v1/campaigns/doc%2Fid", NULL, NULL, NULL, 0, NULL, NULL);
    cr_assert(rsp.status == 400 || rsp.status == 404, "GET of a path id with '/': %ld", rsp.status);
    /* 64 bytes is the longest id; 65 is refused. */
    call("PUT", "/v1/campaigns/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, JSON, text,
         strlen(text), NULL, NULL);
    assert_error(400, "invalid_argument", NULL);
    set_str(doc, "id", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    put_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", doc, 201);
    /* Only JSON and MessagePack bodies. */
    call("PUT", "/v1/campaigns/doc-id", NULL, "text/plain", text, strlen(text), NULL, NULL);
    assert_error(415, "unsupported_media_type", NULL);
    assert_absent("doc-id");
    /* DELETE and usage of a campaign that does not exist. */
    delete_as(NULL, "doc-id", NULL);
    assert_error(404, "not_found", NULL);
    usage_as(NULL, "doc-id");
    assert_error(404, "not_found", NULL);
    free(text);
    cJSON_Delete(doc);
    e2e_assert_stopped_clean(&dmn);
}

Test(campaigns, an_invalid_put_lists_every_problem_and_changes_nothing, .timeout = 30)
{
    cJSON *doc = campaign(GAME, "bad-1", NULL, NULL), *bad, *errs;
    struct snap before;

    e2e_assert_started(&dmn, NULL);
    put_ok("bad-1", doc, 201);
    before = snapshot("bad-1");

    /* Five problems, two of them semantic, one deep in an array, one missing member. */
    bad = cJSON_Duplicate(doc, true);
    set_str(bad, "name", "Renamed, but this must not be stored");
    set_num(bad, "flight/end", num(bad, "flight/start")); /* end must be after start */
    set_str(bad, "currency", "XYZ");                      /* the right shape, no such currency */
    set_str(bad, "pacing", "fast");                       /* not in the enum */
    set_str(bad, "targeting/countries/1", "ca");          /* lower case: the pattern fails */
    cJSON_DeleteItemFromObjectCaseSensitive(bad, "adomain");
    put_as(NULL, "bad-1", bad, NULL, NULL);
    errs = problems(5);
    problem(errs, "/flight/end", "semantic:end_after_start");
    problem(errs, "/currency", "semantic:currency_known");
    problem(errs, "/pacing", "schema:enum");
    problem(errs, "/targeting/countries/1", "schema:pattern");
    {
        const cJSON *e;
        bool found = false;
        cJSON_ArrayForEach(e, at(errs, "error/errors"))
        {
            found |= strcmp(str(e, "rule"), "schema:required") == 0 && strstr(str(e, "message"), "adomain") != NULL;
        }
        cr_assert(found, "the missing adomain is not reported as schema:required: %s", rsp.body);
    }
    cJSON_Delete(errs);
    assert_unchanged("bad-1", &before, "an invalid PUT");

    /* The same problems on a create store nothing either. */
    set_str(bad, "id", "bad-2");
    put_as(NULL, "bad-2", bad, NULL, NULL);
    cJSON_Delete(problems(5));
    assert_absent("bad-2");

    /* Not JSON at all, and not an object. */
    call("PUT", "/v1/campaigns/bad-1", NULL, JSON, "{\"id\":", 6, NULL, NULL);
    assert_error(400, "bad_request", NULL);
    call("PUT", "/v1/campaigns/bad-1", NULL, JSON, "[1,2]", 5, NULL, NULL);
    assert_error(400, "invalid_argument", NULL);
    assert_unchanged("bad-1", &before, "malformed PUTs");

    free(before.body);
    cJSON_Delete(bad);
    cJSON_Delete(doc);
    e2e_assert_stopped_clean(&dmn);
}

Test(campaigns, patch_merges_and_the_result_must_validate, .timeout = 30)
{
    cJSON *doc = campaign(GAME, "pat-1", NULL, NULL), *got, *errs;
    struct snap before;
    uint64_t t0 = now_s();

    e2e_assert_started(&dmn, NULL);
    put_ok("pat-1", doc, 201);
    before = snapshot("pat-1");

    /* A result that breaks a semantic rule: 400 listing it, nothing stored. */
    patch_as(NULL, "pat-1", "{\"flight\":{\"end\":1764547200}}", NULL, NULL);
    errs = problems(1);
    problem(errs, "/flight/end", "semantic:end_after_start");
    cJSON_Delete(errs);
    /* Two problems from one patch: a schema one and a semantic one. */
    patch_as(NULL, "pat-1", "{\"currency\":\"XYZ\",\"bid\":{\"strategy\":\"max_cpm\",\"ceiling_cpm_micros\":100}}",
             NULL, NULL);
    errs = problems(2);
    problem(errs, "/currency", "semantic:currency_known");
    cJSON_Delete(errs);
    /* Removing a required member. */
    patch_as(NULL, "pat-1", "{\"creatives\":null}", NULL, NULL);
    cJSON_Delete(problems(1));
    assert_unchanged("pat-1", &before, "invalid PATCHes");

    /* The id cannot change (400 /id), nor the advertiser (409); a PATCH body is an object. */
    patch_as(NULL, "pat-1", "{\"id\":\"pat-2\"}", NULL, NULL);
    assert_error(400, "invalid_argument", "/id");
    patch_as(NULL, "pat-1", "{\"advertiser\":\"someone-else\"}", NULL, NULL);
    assert_error(409, "conflict", "/advertiser");
    patch_as(NULL, "pat-1", "[{\"op\":\"replace\",\"path\":\"/status\",\"value\":\"paused\"}]", NULL, NULL);
    assert_error(400, "invalid_argument", NULL);
    assert_unchanged("pat-1", &before, "refused PATCHes");
    assert_absent("pat-2");

    /* null removes an optional member; objects merge member by member. */
    patch_as(NULL, "pat-1", "{\"frequency_caps\":null,\"budget\":{\"daily_micros\":1000000},\"name\":\"merged\"}", NULL,
             NULL);
    got = rsp_json(200, "PATCH");
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "frequency_caps");
    set_num(doc, "budget/daily_micros", 1000000);
    set_str(doc, "name", "merged");
    assert_same_campaign(doc, got, t0, now_s(), "the merged campaign");
    cJSON_Delete(got);
    got = get_doc("pat-1", NULL);
    assert_same_campaign(doc, got, t0, now_s(), "GET after PATCH");
    cJSON_Delete(got);

    /* PATCH of a campaign that does not exist. */
    patch_as(NULL, "nobody", "{\"status\":\"paused\"}", NULL, NULL);
    assert_error(404, "not_found", NULL);
    assert_absent("nobody");

    free(before.body);
    cJSON_Delete(doc);
    e2e_assert_stopped_clean(&dmn);
}

Test(campaigns, if_match_and_if_none_match_guard_writes, .timeout = 30)
{
    cJSON *doc = campaign(DEMO, "pre-1", NULL, NULL), *got;
    const char *h[2] = {NULL, NULL};
    char hdr[200], etag[128];
    struct snap before;

    e2e_assert_started(&dmn, NULL);
    /* If-None-Match: * creates only. */
    h[0] = "If-None-Match: *";
    put_as(NULL, "pre-1", doc, h, NULL);
    assert_status(201, "PUT If-None-Match: * (new)");
    before = snapshot("pre-1");
    set_str(doc, "name", "must not replace");
    put_as(NULL, "pre-1", doc, h, NULL);
    assert_error(412, "precondition_failed", NULL);
    assert_unchanged("pre-1", &before, "PUT If-None-Match: * on an existing campaign");

    /* If-Match must name the current ETag. */
    h[0] = "If-Match: \"stale\"";
    put_as(NULL, "pre-1", doc, h, NULL);
    assert_error(412, "precondition_failed", NULL);
    patch_as(NULL, "pre-1", "{\"status\":\"paused\"}", h, NULL);
    assert_error(412, "precondition_failed", NULL);
    delete_as(NULL, "pre-1", h);
    assert_error(412, "precondition_failed", NULL);
    assert_unchanged("pre-1", &before, "writes with a stale If-Match");
    h[0] = "If-Match: \"x\"";
    got = campaign(DEMO, "pre-new", NULL, NULL);
    put_as(NULL, "pre-new", got, h, NULL);
    cJSON_Delete(got);
    assert_error(412, "precondition_failed", NULL);
    assert_absent("pre-new");

    /* If-Match: * needs a stored campaign. */
    h[0] = "If-Match: *";
    got = campaign(DEMO, "pre-star", NULL, NULL);
    put_as(NULL, "pre-star", got, h, NULL);
    assert_error(412, "precondition_failed", NULL);
    assert_absent("pre-star");
    put_ok("pre-star", got, 201);
    put_as(NULL, "pre-star", got, h, NULL);
    assert_status(200, "PUT If-Match: * on a stored campaign");
    cJSON_Delete(got);

    /* The current ETag lets a write through, once: the next one with it is stale. */
    snprintf(hdr, sizeof(hdr), "If-Match: %s", before.etag);
    h[0] = hdr;
    put_as(NULL, "pre-1", doc, h, "ETag");
    assert_status(200, "PUT If-Match: current");
    snprintf(etag, sizeof(etag), "%.100s", rsp.header);
    patch_as(NULL, "pre-1", "{\"status\":\"paused\"}", h, NULL);
    assert_error(412, "precondition_failed", NULL);
    snprintf(hdr, sizeof(hdr), "If-Match: \"stale\", %s", etag);
    patch_as(NULL, "pre-1", "{\"status\":\"paused\"}", h, "ETag");
    assert_status(200, "PATCH If-Match: a list holding the current ETag");
    snprintf(hdr, sizeof(hdr), "If-Match: %.100s", rsp.header);
    delete_as(NULL, "pre-1", h);
    assert_status(200, "DELETE If-Match: current");
    got = get_doc("pre-1", NULL);
    cr_assert_str_eq(str(got, "status"), "archived");
    cr_assert_str_eq(str(got, "name"), "must not replace");
    cJSON_Delete(got);

    free(before.body);
    cJSON_Delete(doc);
    e2e_assert_stopped_clean(&dmn);
}

Test(campaigns, a_campaign_cannot_move_to_another_advertiser, .timeout = 30)
{
    cJSON *doc = campaign(DEMO, "mv-1", "first", NULL);
    struct snap before;

    e2e_assert_started(&dmn, NULL);
    put_ok("mv-1", doc, 201);
    before = snapshot("mv-1");
    set_str(doc, "advertiser", "second");
    put_as(NULL, "mv-1", doc, NULL, NULL);
    assert_error(409, "conflict", "/advertiser");
    assert_unchanged("mv-1", &before, "a PUT moving the campaign");
    free(before.body);
    cJSON_Delete(doc);
    e2e_assert_stopped_clean(&dmn);
}

Test(campaigns, an_advertiser_may_hold_only_so_many_live_campaigns, .timeout = 30)
{
    const char *args[] = {"--campaigns-per-advertiser", "2", NULL};
    cJSON *doc = campaign(DEMO, "q-1", "acme", NULL);

    e2e_assert_started(&dmn, args);
    put_ok("q-1", doc, 201);
    set_str(doc, "id", "q-2");
    put_ok("q-2", doc, 201);
    set_str(doc, "id", "q-3");
    put_as(NULL, "q-3", doc, NULL, NULL);
    assert_error(409, "quota_exceeded", NULL);
    assert_absent("q-3");
    /* Another advertiser has its own allowance; replacing counts nothing new. */
    set_str(doc, "advertiser", "other");
    put_ok("q-3", doc, 201);
    set_str(doc, "advertiser", "acme");
    set_str(doc, "id", "q-1");
    set_str(doc, "name", "replaced at the limit");
    put_ok("q-1", doc, 200);
    patch_as(NULL, "q-2", "{\"status\":\"paused\"}", NULL, NULL);
    assert_status(200, "PATCH at the limit");
    /* A campaign created archived does not count. */
    set_str(doc, "id", "q-arch");
    set_str(doc, "status", "archived");
    put_ok("q-arch", doc, 201);
    set_str(doc, "status", "active");
    /* Archiving one by PATCH makes room for exactly one, however often it is archived again. */
    patch_as(NULL, "q-2", "{\"status\":\"archived\"}", NULL, NULL);
    assert_status(200, "PATCH archived");
    delete_as(NULL, "q-2", NULL);
    assert_status(200, "DELETE of an archived campaign");
    delete_as(NULL, "q-2", NULL);
    assert_status(200, "DELETE of an archived campaign, again");
    set_str(doc, "id", "q-4");
    put_ok("q-4", doc, 201);
    set_str(doc, "id", "q-5");
    put_as(NULL, "q-5", doc, NULL, NULL);
    assert_error(409, "quota_exceeded", NULL);
    assert_absent("q-5");
    /* And DELETE makes room too. */
    delete_as(NULL, "q-4", NULL);
    assert_status(200, "DELETE");
    put_ok("q-5", doc, 201);
    set_str(doc, "id", "q-6");
    put_as(NULL, "q-6", doc, NULL, NULL);
    assert_error(409, "quota_exceeded", NULL);
    cJSON_Delete(doc);
    e2e_assert_stopped_clean(&dmn);
}

/* PUTs @p doc as @p id padded with blanks to exactly @p size bytes. */
static void put_padded(const char *id, const cJSON *doc, size_t size)
{
    char *text = print(doc), *body = malloc(size + 1), path[256];
    size_t n = strlen(text);

    cr_assert_not_null(body);
    cr_assert_lt(n, size);
    memcpy(body, text, n - 1); /* all but the closing brace */
    memset(body + n - 1, ' ', size - n);
    body[size - 1] = '}';
    path_of(path, sizeof(path), id, NULL);
    call("PUT", path, NULL, JSON, body, size, NULL, NULL);
    free(body);
    free(text);
}

Test(campaigns, bodies_over_max_body_get_413, .timeout = 30)
{
    const char *args[] = {"--max-body", "8KiB", NULL};
    cJSON *doc = campaign(GAME, "big-1", NULL, NULL);

    e2e_assert_started(&dmn, args);
    /* Exactly max_body is accepted; a byte more is not, over either protocol. */
    put_padded("big-1", doc, 8192);
    assert_status(201, "PUT of max_body bytes");
    set_str(doc, "id", "big-2");
    put_padded("big-2", doc, 8193);
    assert_error(413, "body_too_large", NULL);
    assert_absent("big-2");
    proto = E2E_HTTP1;
    want_version = CURL_HTTP_VERSION_1_1;
    put_padded("big-2", doc, 12000);
    assert_error(413, "body_too_large", NULL);
    assert_absent("big-2");
    /* Past twice max_body libh2o refuses it before reading it; still a JSON 413. */
    put_padded("big-2", doc, 20000);
    assert_error(413, "body_too_large", NULL);
    assert_absent("big-2");
    patch_as(NULL, "big-1", "{\"name\":\"x\"}", NULL, NULL);
    assert_status(200, "a small PATCH after a 413");
    cJSON_Delete(doc);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- the listing ---- */

Test(campaigns, the_list_pages_in_id_order_and_filters, .timeout = 30)
{
    static const struct {
        const char *id, *advertiser, *status;
    } set_up[] = {
        {"c-b2", "other", "paused"}, {"c-a1", "acme", "active"}, {"c-a3", "acme", "draft"},
        {"c-b1", "other", "active"}, {"c-a2", "acme", "paused"},
    };
    char ids[1024], etag[128];
    const cJSON *c;
    cJSON *page, *doc;
    int pages;

    e2e_assert_started(&dmn, NULL);
    page = list_as(NULL, "");
    cr_assert_eq(cJSON_GetArraySize(at(page, "campaigns")), 0, "a new data directory lists campaigns: %s", rsp.body);
    cr_assert_null(at(page, "next_cursor"), "next_cursor on an empty list");
    cJSON_Delete(page);
    for (size_t i = 0; i < sizeof(set_up) / sizeof(set_up[0]); i++) {
        doc = campaign(DEMO, set_up[i].id, set_up[i].advertiser, set_up[i].status);
        put_ok(set_up[i].id, doc, 201);
        cJSON_Delete(doc);
    }

    /* Everything, in id order, in pages of two: 2, 2, 1. */
    list_all(NULL, "limit=2", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "c-a1,c-a2,c-a3,c-b1,c-b2");
    cr_assert_eq(pages, 3);
    list_all(NULL, "", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "c-a1,c-a2,c-a3,c-b1,c-b2");
    cr_assert_eq(pages, 1);
    list_all(NULL, "limit=5", ids, sizeof(ids), &pages);
    cr_assert_eq(pages, 1, "a page holding the last campaign has a next_cursor");

    /* Summaries: exactly the seven members, and the ETag GET gives. */
    page = list_as(NULL, "limit=1");
    cr_assert_eq(cJSON_GetArraySize(at(page, "campaigns")), 1);
    c = at(page, "campaigns/0");
    cr_assert_eq(cJSON_GetArraySize(c), 7,
                 "a summary is not {id,advertiser,name,status,etag,created_at,updated_at}: %s", rsp.body);
    cr_assert_str_eq(str(c, "id"), "c-a1");
    cr_assert_str_eq(str(c, "advertiser"), "acme");
    cr_assert_str_eq(str(c, "status"), "active");
    cr_assert_str_eq(str(c, "name"), "Demo: Northwind Coffee autumn blend");
    cr_assert(num(c, "created_at") > 0 && num(c, "updated_at") >= num(c, "created_at"));
    cr_assert_str_eq(str(page, "next_cursor"), "c-a1", "the cursor of a page ending at c-a1");
    snprintf(ids, sizeof(ids), "%s", str(c, "etag"));
    doc = get_doc("c-a1", etag);
    cr_assert_str_eq(ids, etag, "the summary's etag is not GET's ETag");
    cJSON_Delete(doc);
    cJSON_Delete(page);

    /* Filters, alone, together and paged. */
    list_all(NULL, "status=paused", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "c-a2,c-b2");
    list_all(NULL, "status=paused&limit=1", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "c-a2,c-b2");
    cr_assert_eq(pages, 2);
    list_all(NULL, "advertiser=acme", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "c-a1,c-a2,c-a3");
    list_all(NULL, "advertiser=acme&limit=2", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "c-a1,c-a2,c-a3");
    cr_assert_eq(pages, 2);
    list_all(NULL, "advertiser=other&limit=2", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "c-b1,c-b2");
    cr_assert_eq(pages, 1, "a page ending at the advertiser's last campaign has a next_cursor");
    list_all(NULL, "advertiser=acme&status=draft", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "c-a3");
    list_all(NULL, "advertiser=nobody", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "");
    list_all(NULL, "status=archived", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "");
    delete_as(NULL, "c-b1", NULL);
    list_all(NULL, "status=archived", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "c-b1");
    list_all(NULL, "status=active", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "c-a1");
    e2e_assert_stopped_clean(&dmn);
}

Test(campaigns, the_list_refuses_bad_parameters, .timeout = 30)
{
    static const char *const bad[] = {
        "/v1/campaigns?status=running", "/v1/campaigns?status=ACTIVE", "/v1/campaigns?limit=0",
        "/v1/campaigns?limit=1001",     "/v1/campaigns?limit=abc",     "/v1/campaigns?limit=-1",
        "/v1/campaigns?limit=2x",       "/v1/campaigns?limit=+2",
    };

    e2e_assert_started(&dmn, NULL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call("GET", bad[i], NULL, NULL, NULL, 0, NULL, NULL);
        cr_assert_eq(rsp.status, 400, "GET %s: %ld %s", bad[i], rsp.status, rsp.body);
        assert_error(400, "invalid_argument", NULL);
    }
    call("GET", "/v1/campaigns?limit=1000&status=draft", NULL, NULL, NULL, 0, NULL, NULL);
    assert_status(200, "limit=1000");
    e2e_assert_stopped_clean(&dmn);
}

/* ---- tenancy ---- */

/* The error message of rsp with the campaign id @p id replaced by "{id}", for comparing two 404s. */
static void message_without(const char *id, char *out, size_t cap)
{
    cJSON *doc = cJSON_Parse(rsp.body);
    const char *m = cJSON_GetStringValue(at(doc, "error/message")), *p;
    size_t n = 0, idlen = strlen(id);

    cr_assert_not_null(m, "no error.message: %s", rsp.body);
    while (*m != '\0' && n + 5 < cap) {
        if ((p = strstr(m, id)) == m) {
            n += (size_t)snprintf(out + n, cap - n, "{id}");
            m += idlen;
        } else {
            out[n++] = *m++;
        }
    }
    out[n] = '\0';
    cJSON_Delete(doc);
}

Test(campaigns, an_advertiser_key_sees_only_its_advertisers_campaigns, .timeout = 30)
{
    char acme[64], missing[512], hidden[512], ids[512];
    cJSON *theirs = campaign(GAME, "o-1", "other", NULL), *ours = campaign(DEMO, "a-1", "acme", NULL), *doc, *page;
    struct snap before;
    int pages;

    e2e_assert_started(&dmn, NULL);
    cr_assert_eq(e2e_key_create(&dmn, "advertiser", "acme", acme), 0, "%s", dmn.why);
    put_ok("o-1", theirs, 201);
    put_ok("a-1", ours, 201);
    before = snapshot("o-1");

    /* Another advertiser's campaign answers 404, as a missing one does, on every route. */
    get_as(acme, "o-1", NULL);
    assert_error(404, "not_found", NULL);
    message_without("o-1", hidden, sizeof(hidden));
    get_as(acme, "o-0", NULL);
    assert_error(404, "not_found", NULL);
    message_without("o-0", missing, sizeof(missing));
    cr_assert_str_eq(hidden, missing, "GET tells a hidden campaign from a missing one: \"%s\" vs \"%s\"", hidden,
                     missing);
    usage_as(acme, "o-1");
    assert_error(404, "not_found", NULL);
    doc = campaign(GAME, "o-1", "acme", NULL); /* acme's own document under o-1's id */
    put_as(acme, "o-1", doc, NULL, NULL);
    assert_error(404, "not_found", NULL);
    cJSON_Delete(doc);
    patch_as(acme, "o-1", "{\"status\":\"paused\"}", NULL, NULL);
    assert_error(404, "not_found", NULL);
    delete_as(acme, "o-1", NULL);
    assert_error(404, "not_found", NULL);
    assert_unchanged("o-1", &before, "acme's writes to o-1");

    /* Writing a document of another advertiser: 403 at /advertiser, nothing stored. */
    doc = campaign(DEMO, "a-2", "other", NULL);
    put_as(acme, "a-2", doc, NULL, NULL);
    assert_error(403, "forbidden", "/advertiser");
    assert_absent("a-2");

    /* Its own campaigns: everything works. */
    set_str(doc, "advertiser", "acme");
    put_as(acme, "a-2", doc, NULL, NULL);
    assert_status(201, "acme creates a-2");
    get_as(acme, "a-1", NULL);
    assert_status(200, "acme reads a-1");
    usage_as(acme, "a-1");
    assert_status(200, "acme reads a-1's usage");
    patch_as(acme, "a-2", "{\"status\":\"paused\"}", NULL, NULL);
    assert_status(200, "acme patches a-2");
    delete_as(acme, "a-2", NULL);
    assert_status(200, "acme archives a-2");
    cJSON_Delete(doc);

    /* The list holds only acme's, whatever advertiser it asks for. */
    list_all(acme, "", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "a-1,a-2");
    list_all(acme, "advertiser=other", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "");
    list_all(acme, "advertiser=acme&limit=1", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "a-1,a-2");
    page = list_as(acme, "status=active");
    page_ids(page, ids, sizeof(ids));
    cr_assert_str_eq(ids, "a-1");
    cJSON_Delete(page);

    /* The admin sees everything. */
    list_all(NULL, "", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "a-1,a-2,o-1");
    list_all(NULL, "advertiser=other", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "o-1");

    /* PATCH and DELETE of a hidden campaign answer as for a missing one, word for word. */
    patch_as(acme, "o-1", "{\"status\":\"paused\"}", NULL, NULL);
    message_without("o-1", hidden, sizeof(hidden));
    patch_as(acme, "o-0", "{\"status\":\"paused\"}", NULL, NULL);
    message_without("o-0", missing, sizeof(missing));
    cr_assert_str_eq(hidden, missing, "PATCH tells a hidden campaign from a missing one: \"%s\" vs \"%s\"", hidden,
                     missing);
    delete_as(acme, "o-1", NULL);
    message_without("o-1", hidden, sizeof(hidden));
    delete_as(acme, "o-0", NULL);
    message_without("o-0", missing, sizeof(missing));
    cr_assert_str_eq(hidden, missing, "DELETE tells a hidden campaign from a missing one: \"%s\" vs \"%s\"", hidden,
                     missing);

    free(before.body);
    cJSON_Delete(theirs);
    cJSON_Delete(ours);
    e2e_assert_stopped_clean(&dmn);
}

Test(campaigns, a_reader_key_reads_but_never_writes, .timeout = 30)
{
    char reader[64], scoped[64], ids[512];
    cJSON *doc = campaign(DEMO, "r-1", "acme", NULL), *other = campaign(DEMO, "r-2", "other", NULL);
    struct snap before;
    int pages;

    e2e_assert_started(&dmn, NULL);
    cr_assert_eq(e2e_key_create(&dmn, "reader", NULL, reader), 0, "%s", dmn.why);
    cr_assert_eq(e2e_key_create(&dmn, "reader", "acme", scoped), 0, "%s", dmn.why);
    put_ok("r-1", doc, 201);
    put_ok("r-2", other, 201);
    before = snapshot("r-1");

    get_as(reader, "r-1", NULL);
    assert_status(200, "reader GET");
    cr_assert_str_eq(rsp.body, before.body);
    usage_as(reader, "r-2");
    assert_status(200, "reader usage");
    list_all(reader, "", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "r-1,r-2");

    set_str(doc, "name", "a reader's write");
    put_as(reader, "r-1", doc, NULL, NULL);
    assert_error(403, "forbidden", NULL);
    set_str(doc, "id", "r-3");
    put_as(reader, "r-3", doc, NULL, NULL);
    assert_error(403, "forbidden", NULL);
    patch_as(reader, "r-1", "{\"status\":\"paused\"}", NULL, NULL);
    assert_error(403, "forbidden", NULL);
    delete_as(reader, "r-1", NULL);
    assert_error(403, "forbidden", NULL);
    assert_unchanged("r-1", &before, "a reader's writes");
    assert_absent("r-3");

    /* A reader scoped to acme reads only acme's. */
    get_as(scoped, "r-1", NULL);
    assert_status(200, "scoped reader GET of its advertiser's");
    get_as(scoped, "r-2", NULL);
    assert_error(404, "not_found", NULL);
    usage_as(scoped, "r-2");
    assert_error(404, "not_found", NULL);
    list_all(scoped, "", ids, sizeof(ids), &pages);
    cr_assert_str_eq(ids, "r-1");
    patch_as(scoped, "r-1", "{\"status\":\"paused\"}", NULL, NULL);
    assert_error(403, "forbidden", NULL);

    free(before.body);
    cJSON_Delete(doc);
    cJSON_Delete(other);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- the demo seed ---- */

/* Waits up to @p ms for @p d's stdout to hold "demo admin key: " and copies the key. */
static bool demo_key(const struct e2e_daemon *d, int ms, char key[64])
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)ms;
    char out[4096];
    size_t len;

    for (;;) {
        const char *p;
        if (e2e_file_read(d->out_path, out, sizeof(out), &len) == 0 && (p = strstr(out, "demo admin key: ")) != NULL &&
            strchr(p, '\n') != NULL) {
            p += strlen("demo admin key: ");
            snprintf(key, 64, "%.*s", (int)strcspn(p, " \r\n"), p);
            return true;
        }
        if (e2e_now_ms() >= deadline)
            return false;
        sleep_ms(10);
    }
}

/* Whether data.mdb in @p dir holds the bytes of @p s. */
static bool data_has(const char *dir, const char *s)
{
    char path[E2E_PATH_MAX + 16];
    FILE *f;
    char *buf;
    size_t n;
    bool found;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, n, f), n);
    fclose(f);
    found = memmem(buf, n, s, strlen(s)) != NULL;
    free(buf);
    return found;
}

/* Whether the file @p path holds the string @p s. */
static bool file_has(const char *path, const char *s)
{
    static char text[1 << 20];
    size_t len = 0;
    int rc = e2e_file_read(path, text, sizeof(text), &len);

    cr_assert(rc == 0 || rc == -EFBIG, "cannot read %s (%d)", path, rc);
    return strstr(text, s) != NULL;
}

/* Polls GET /v1/admin/index on @p d with @p key until "campaigns" is @p n (true) or @p ms pass (false). */
static bool index_count_reaches(const struct e2e_daemon *d, const char *key, double n, int ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)ms;

    for (;;) {
        cJSON *st;
        bool ok;
        call_on(d, "GET", "/v1/admin/index", key, NULL, NULL, 0, NULL, NULL);
        st = rsp_json(200, "GET /v1/admin/index");
        ok = cJSON_IsNumber(at(st, "campaigns")) && at(st, "campaigns")->valuedouble == n;
        cJSON_Delete(st);
        if (ok)
            return true;
        if (e2e_now_ms() >= deadline)
            return false;
        sleep_ms(10);
    }
}

Test(campaigns, demo_seeds_a_key_and_a_campaign_once, .timeout = 30)
{
    const char *args[] = {"--demo", NULL};
    const char *list_args[] = {"keys", "list", "--json", "--data-dir", dmn.data_dir, NULL};
    char key[64], out[4096];
    cJSON *doc, *want = example(DEMO);
    int status = -1, lines = 0;

    e2e_assert_started(&dmn, args);
    cr_assert(demo_key(&dmn, 5000, key), "no \"demo admin key: \" line on stdout within 5 s");
    cr_assert_eq(strlen(key), 48, "the demo key '%s' is not adsk_ and 43 characters", key);
    cr_assert(strncmp(key, "adsk_", 5) == 0, "the demo key '%s' does not start with adsk_", key);
    cr_assert_eq(e2e_log_wait(&dmn, "demo campaign stored", 5000), 0, "no \"demo campaign stored\" record");
    cr_assert(e2e_log_has(&dmn, "demo key created"), "no \"demo key created\" record");
    get_as(key, "demo-coffee", NULL);
    doc = rsp_json(200, "GET demo-coffee with the demo key");
    cr_assert_str_eq(str(doc, "status"), "active");
    assert_same_campaign(want, doc, 0, 0, "the demo campaign");
    cJSON_Delete(doc);
    cr_assert(index_count_reaches(&dmn, key, 1, 5000), "the demo campaign is not in the index: %s", rsp.body);
    e2e_assert_stopped_clean(&dmn);
    cr_assert_not(file_has(dmn.log_path, key), "the demo key is in the JSON log");
    cr_assert_not(file_has(dmn.log_path, key + 5), "the demo key's secret part is in the JSON log");
    cr_assert_not(data_has(dmn.data_dir, key + 5), "the demo key is stored in plain text");

    /* A second start on the same data directory: no new key, the campaign as it was. */
    cr_assert_eq(e2e_daemon_init(&aux), 0, "%s", aux.why);
    snprintf(aux.data_dir, sizeof(aux.data_dir), "%s", dmn.data_dir);
    e2e_assert_started(&aux, args);
    cr_assert(index_count_reaches(&aux, key, 1, 5000), "the second start did not build its index: %s", rsp.body);
    call_on(&aux, "GET", "/v1/campaigns/demo-coffee", key, NULL, NULL, 0, NULL, NULL);
    assert_status(200, "GET demo-coffee after a restart");
    cr_assert_not(file_has(aux.out_path, "demo admin key"), "the second start printed a new key");
    cr_assert_not(e2e_log_has(&aux, "demo key created"), "the second start logged a new key");
    cr_assert_not(e2e_log_has(&aux, "demo campaign stored"), "the second start stored the campaign again");
    cr_assert_eq(e2e_run(&dmn, list_args, out, sizeof(out), NULL, 0, &status), 0, "%s", dmn.why);
    cr_assert_eq(status, 0);
    for (const char *p = out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    cr_assert_eq(lines, 1, "the data directory holds other keys than the demo key: %s", out);
    cr_assert_not(strstr(out, key + 5) != NULL, "keys list shows the key");
    e2e_assert_stopped_clean(&aux);
    cr_assert_not(file_has(aux.log_path, key + 5), "the demo key is in the second start's log");
    cJSON_Delete(want);
}

/* ---- adsmith campaigns validate ---- */

struct run {
    int status;
    char out[64 * 1024];
    char err[4096];
};

static struct run ran; /* the latest run */

/* Runs `adsmith campaigns validate ARGS...` (NULL-terminated); the outcome is left in ran. */
static void validate(const char *const *args)
{
    const char *argv[16];
    size_t n = 0;
    int rc;

    argv[n++] = "campaigns";
    argv[n++] = "validate";
    for (size_t i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    rc = e2e_run(&dmn, argv, ran.out, sizeof(ran.out), ran.err, sizeof(ran.err), &ran.status);
    cr_assert_eq(rc, 0, "cannot run adsmith campaigns validate: %s", dmn.why);
}

static void example_path(const char *name, char *out, size_t cap)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is not set (run through meson test)");
    snprintf(out, cap, "%s/schemas/examples/%s", root, name);
}

/* Writes @p text to <dir>/@p name; the path into @p out. */
static void write_file(const char *name, const char *text, char *out, size_t cap)
{
    FILE *f;

    snprintf(out, cap, "%s/%s", dmn.dir, name);
    f = fopen(out, "w");
    cr_assert_not_null(f, "cannot create %s", out);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

Test(campaigns, validate_checks_files_offline_as_the_api_does, .timeout = 30)
{
    char game[1024], retail[1024], demo[1024], broken[E2E_PATH_MAX + 32], missing[E2E_PATH_MAX + 32], want[2048];
    const char *all[] = {game, retail, demo, NULL}, *all_json[] = {"--json", game, retail, demo, NULL};
    const char *one[] = {"--json", broken, NULL}, *plain[] = {broken, NULL}, *mixed[] = {demo, broken, NULL};
    const char *nothing[] = {NULL}, *absent[] = {missing, NULL};
    cJSON *doc = campaign(GAME, "val-1", NULL, NULL), *cli, *api;
    const cJSON *a, *b;
    char *text;
    int lines = 0;

    example_path(GAME, game, sizeof(game));
    example_path(RETAIL, retail, sizeof(retail));
    example_path(DEMO, demo, sizeof(demo));

    /* The shipped examples are valid. */
    validate(all);
    cr_assert_eq(ran.status, 0, "the shipped examples are not valid (exit %d): %s %s", ran.status, ran.out, ran.err);
    for (int i = 0; i < 3; i++) {
        snprintf(want, sizeof(want), "%s: valid\n", all[i]);
        cr_assert_not_null(strstr(ran.out, want), "no '%s' in: %s", want, ran.out);
    }
    validate(all_json);
    cr_assert_eq(ran.status, 0, "exit %d: %s", ran.status, ran.err);
    for (const char *line = ran.out; *line != '\0'; line += strcspn(line, "\n") + 1, lines++) {
        cJSON *rec = cJSON_ParseWithLength(line, strcspn(line, "\n"));
        cr_assert_not_null(rec, "a --json line is not JSON: %.200s", line);
        cr_assert_str_eq(str(rec, "file"), all[lines]);
        cr_assert(cJSON_IsTrue(at(rec, "valid")), "%s is not valid: %.500s", all[lines], line);
        cr_assert_eq(num(rec, "problems"), 0);
        cr_assert_eq(cJSON_GetArraySize(at(rec, "errors")), 0);
        cJSON_Delete(rec);
        if (line[strcspn(line, "\n")] == '\0')
            break;
    }
    cr_assert_eq(lines, 3, "--json printed %d lines for 3 files: %s", lines, ran.out);

    /* A broken document: exit 1 and every problem, as the API lists them for the same bytes. */
    set_num(doc, "flight/end", num(doc, "flight/start"));
    set_str(doc, "currency", "XYZ");
    set_str(doc, "pacing", "fast");
    set_str(doc, "targeting/countries/1", "ca");
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "adomain");
    text = print(doc);
    write_file("broken.json", text, broken, sizeof(broken));
    validate(one);
    cr_assert_eq(ran.status, 1, "a broken document: exit %d: %s %s", ran.status, ran.out, ran.err);
    cli = cJSON_ParseWithLength(ran.out, strcspn(ran.out, "\n"));
    cr_assert_not_null(cli, "the --json line is not JSON: %s", ran.out);
    cr_assert_str_eq(str(cli, "file"), broken);
    cr_assert(cJSON_IsFalse(at(cli, "valid")), "the broken document is called valid: %s", ran.out);
    cr_assert_eq(num(cli, "problems"), 5, "%s", ran.out);

    e2e_assert_started(&dmn, NULL);
    call("PUT", "/v1/campaigns/val-1", NULL, JSON, text, strlen(text), NULL, NULL);
    api = problems(5);
    cr_assert_eq(cJSON_GetArraySize(at(cli, "errors")), cJSON_GetArraySize(at(api, "error/errors")));
    b = at(api, "error/errors")->child;
    cJSON_ArrayForEach(a, at(cli, "errors"))
    {
        cr_assert_str_eq(str(a, "pointer"), str(b, "pointer"), "the CLI and the API differ: %s vs %s", ran.out,
                         rsp.body);
        cr_assert_str_eq(str(a, "rule"), str(b, "rule"), "the CLI and the API differ: %s vs %s", ran.out, rsp.body);
        cr_assert_str_eq(str(a, "message"), str(b, "message"), "the CLI and the API differ: %s vs %s", ran.out,
                         rsp.body);
        b = b->next;
    }
    assert_absent("val-1");
    e2e_assert_stopped_clean(&dmn);

    /* Without --json: a count and one line per problem. */
    validate(plain);
    cr_assert_eq(ran.status, 1);
    snprintf(want, sizeof(want), "%s: 5 problems\n", broken);
    cr_assert(strncmp(ran.out, want, strlen(want)) == 0, "the report does not start with '%s': %s", want, ran.out);
    cr_assert_not_null(strstr(ran.out, "  /flight/end: "), "%s", ran.out);
    cr_assert_not_null(strstr(ran.out, "(semantic:end_after_start)\n"), "%s", ran.out);
    cr_assert_not_null(strstr(ran.out, "  /currency: "), "%s", ran.out);
    cr_assert_not_null(strstr(ran.out, "(semantic:currency_known)\n"), "%s", ran.out);

    /* One broken file among valid ones fails the run; the valid one is still reported valid. */
    validate(mixed);
    cr_assert_eq(ran.status, 1);
    snprintf(want, sizeof(want), "%s: valid\n", demo);
    cr_assert_not_null(strstr(ran.out, want), "%s", ran.out);
    /* No file is a usage error; a file that is not there is a failure. */
    validate(nothing);
    cr_assert_eq(ran.status, 2, "no FILE: exit %d", ran.status);
    snprintf(missing, sizeof(missing), "%s/no-such-file.json", dmn.dir);
    validate(absent);
    cr_assert_eq(ran.status, 1, "a missing file: exit %d", ran.status);

    free(text);
    cJSON_Delete(cli);
    cJSON_Delete(api);
    cJSON_Delete(doc);
}

/* ---- the compiled index follows writes ---- */

#define BANNER_CONTEXT "{\"formats\":[\"banner\"],\"banner_sizes\":[{\"w\":300,\"h\":250}]"

/* Whether POST /v1/admin/eligibility with @p context lists @p id; false while the index is not built. */
static bool eligible(const char *context, const char *id)
{
    const cJSON *e;
    cJSON *doc;
    bool found = false;

    call("POST", "/v1/admin/eligibility", NULL, JSON, context, strlen(context), NULL, NULL);
    if (rsp.status == 503)
        return false;
    doc = rsp_json(200, "POST /v1/admin/eligibility");
    cr_assert(cJSON_IsArray(at(doc, "eligible")) && cJSON_IsNumber(at(doc, "count")) &&
                  cJSON_IsNumber(at(doc, "revision")),
              "not {revision, count, eligible}: %s", rsp.body);
    cr_assert_eq(num(doc, "count"), cJSON_GetArraySize(at(doc, "eligible")), "count is not the list's length: %s",
                 rsp.body);
    cJSON_ArrayForEach(e, at(doc, "eligible"))
    {
        found |= cJSON_IsString(e) && strcmp(e->valuestring, id) == 0;
    }
    cJSON_Delete(doc);
    return found;
}

/* Polls eligibility every 10 ms until @p id is (@p want) eligible for @p context; returns the ms it took
 * from @p since, or fails after 3 s. */
static uint64_t until_eligible(const char *context, const char *id, bool want, uint64_t since)
{
    for (;;) {
        if (eligible(context, id) == want)
            return e2e_now_ms() - since;
        cr_assert_lt(e2e_now_ms() - since, 3000, "%s did not become %seligible within 3 s: %s", id, want ? "" : "in",
                     rsp.body);
        sleep_ms(10);
    }
}

static cJSON *index_stats(void)
{
    call("GET", "/v1/admin/index", NULL, NULL, NULL, 0, NULL, NULL);
    return rsp_json(200, "GET /v1/admin/index");
}

/* Readers that GET one campaign in a loop while the test writes. */
struct readers {
    pthread_t threads[3];
    atomic_bool stop;
    atomic_long ok, bad;
    atomic_long bad_status;
};

static void *reader_main(void *arg)
{
    struct readers *rd = arg;
    struct e2e_resp *r = malloc(sizeof(*r));
    struct e2e_req req = {.proto = E2E_H2C, .path = "/v1/campaigns/el-read"};

    if (r == NULL) {
        atomic_fetch_add(&rd->bad, 1);
        return NULL;
    }
    while (!atomic_load(&rd->stop)) {
        if (e2e_http(&dmn, &req, r) == 0 && r->code == CURLE_OK && r->status == 200 &&
            strstr(r->body, "\"el-read\"") != NULL) {
            atomic_fetch_add(&rd->ok, 1);
        } else {
            atomic_fetch_add(&rd->bad, 1);
            atomic_store(&rd->bad_status, r->status);
        }
    }
    free(r);
    return NULL;
}

Test(campaigns, the_index_follows_writes_within_a_second, .timeout = 30)
{
    char ctx_us[256], ctx_de[256];
    cJSON *doc = campaign(DEMO, "el-1", "acme", "active"), *de, *st;
    struct readers rd = {.stop = false};
    uint64_t t, took;
    double rev;

    snprintf(ctx_us, sizeof(ctx_us), "%s,\"country\":\"US\"}", BANNER_CONTEXT);
    snprintf(ctx_de, sizeof(ctx_de), "%s,\"country\":\"DE\"}", BANNER_CONTEXT);
    set_num(doc, "flight/start", (double)(now_s() - 3600));
    e2e_assert_started(&dmn, NULL);
    cr_assert_not_null(e2e_admin_key(&dmn), "%s", dmn.why); /* made once, before the readers share it */

    /* A draft the readers GET throughout, and an active campaign that targets only Germany. */
    de = cJSON_Duplicate(doc, true);
    set_str(de, "id", "el-read");
    set_str(de, "status", "draft");
    put_ok("el-read", de, 201);
    set_str(de, "id", "el-de");
    set_str(de, "status", "active");
    set(de, "targeting/countries", cJSON_CreateStringArray((const char *[]){"DE"}, 1));
    put_ok("el-de", de, 201);
    until_eligible(ctx_de, "el-de", true, e2e_now_ms());
    cr_assert_not(eligible(ctx_us, "el-de"), "a campaign targeting DE is eligible in the US");
    cr_assert_not(eligible(ctx_de, "el-read"), "a draft is eligible");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&rd.threads[i], NULL, reader_main, &rd), 0);

    /* Created active: eligible within a second of the PUT. */
    cr_assert_not(eligible(ctx_us, "el-1"), "el-1 is eligible before it exists");
    t = e2e_now_ms();
    put_ok("el-1", doc, 201);
    took = until_eligible(ctx_us, "el-1", true, t);
    cr_assert_leq(took, 1000, "el-1 became eligible %llu ms after its PUT", (unsigned long long)took);
    st = index_stats();
    cr_assert_eq(num(st, "campaigns"), 2, "the index does not hold the 2 active campaigns: %s", rsp.body);
    rev = num(st, "revision");
    cr_assert_geq(rev, 3, "revision %g after 3 campaign writes", rev);
    cJSON_Delete(st);

    /* Paused: out within a second; active again: back; archived: out for good. */
    t = e2e_now_ms();
    patch_as(NULL, "el-1", "{\"status\":\"paused\"}", NULL, NULL);
    assert_status(200, "PATCH paused");
    took = until_eligible(ctx_us, "el-1", false, t);
    cr_assert_leq(took, 1000, "el-1 stayed eligible %llu ms after it was paused", (unsigned long long)took);
    st = index_stats();
    cr_assert_eq(num(st, "campaigns"), 1, "%s", rsp.body);
    cr_assert_gt(num(st, "revision"), rev, "the revision did not move: %s", rsp.body);
    cJSON_Delete(st);
    t = e2e_now_ms();
    patch_as(NULL, "el-1", "{\"status\":\"active\"}", NULL, NULL);
    assert_status(200, "PATCH active");
    took = until_eligible(ctx_us, "el-1", true, t);
    cr_assert_leq(took, 1000, "el-1 became eligible again %llu ms after it was activated", (unsigned long long)took);
    t = e2e_now_ms();
    delete_as(NULL, "el-1", NULL);
    assert_status(200, "DELETE");
    took = until_eligible(ctx_us, "el-1", false, t);
    cr_assert_leq(took, 1000, "el-1 stayed eligible %llu ms after it was archived", (unsigned long long)took);

    /* A targeting edit of an active campaign: the index compiles it again (not its cached record). */
    t = e2e_now_ms();
    patch_as(NULL, "el-de", "{\"targeting\":{\"countries\":[\"US\"]}}", NULL, NULL);
    assert_status(200, "PATCH countries");
    took = until_eligible(ctx_us, "el-de", true, t);
    cr_assert_leq(took, 1000, "el-de was not eligible in the US %llu ms after its edit", (unsigned long long)took);
    cr_assert_not(eligible(ctx_de, "el-de"), "el-de is still eligible in DE after its edit");
    set(de, "targeting/countries", cJSON_CreateStringArray((const char *[]){"DE"}, 1));
    put_ok("el-de", de, 200);
    until_eligible(ctx_de, "el-de", true, e2e_now_ms());

    /* A replace that moves the flight into the future takes it out too. */
    set_num(de, "flight/start", (double)(now_s() + 86400));
    t = e2e_now_ms();
    put_ok("el-de", de, 200);
    took = until_eligible(ctx_de, "el-de", false, t);
    cr_assert_leq(took, 1000, "el-de stayed eligible %llu ms after its flight moved", (unsigned long long)took);

    atomic_store(&rd.stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(rd.threads[i], NULL);
    cr_assert_eq(atomic_load(&rd.bad), 0, "%ld concurrent GETs failed (last status %ld)", atomic_load(&rd.bad),
                 atomic_load(&rd.bad_status));
    cr_assert_gt(atomic_load(&rd.ok), 10, "the readers got only %ld answers", atomic_load(&rd.ok));

    /* The context is checked. */
    call("POST", "/v1/admin/eligibility", NULL, JSON, "{\"formats\":[\"audio\"]}", 21, NULL, NULL);
    assert_error(400, "invalid_argument", NULL);
    call("POST", "/v1/admin/eligibility", NULL, JSON, "[]", 2, NULL, NULL);
    assert_error(400, "invalid_argument", NULL);
    cJSON_Delete(de);
    cJSON_Delete(doc);
    e2e_assert_stopped_clean(&dmn);
}

Test(campaigns, demo_on_a_directory_with_keys_stores_only_the_campaign, .timeout = 30)
{
    const char *args[] = {"--demo", NULL};
    cJSON *doc;

    cr_assert_not_null(e2e_admin_key(&dmn), "%s", dmn.why); /* a key exists before the first start */
    e2e_assert_started(&dmn, args);
    cr_assert_eq(e2e_log_wait(&dmn, "demo campaign stored", 5000), 0, "no \"demo campaign stored\" record");
    get_as(NULL, "demo-coffee", NULL);
    doc = rsp_json(200, "GET demo-coffee");
    cr_assert_str_eq(str(doc, "status"), "active");
    cJSON_Delete(doc);
    cr_assert_not(file_has(dmn.out_path, "demo admin key"), "a demo key was made though keys exist");
    cr_assert_not(e2e_log_has(&dmn, "demo key created"), "a demo key was made though keys exist");
    e2e_assert_stopped_clean(&dmn);
}

/* ---- a stored campaign outlives a smaller max_body ---- */

Test(campaigns, a_stored_campaign_stays_readable_after_max_body_is_lowered, .timeout = 30)
{
    const char *small[] = {"--max-body", "8KiB", NULL};
    cJSON *doc = campaign(GAME, "large-1", NULL, NULL), *got, *list;
    cJSON *facts = cJSON_CreateArray(), *ups = cJSON_CreateArray();
    char text[320], *body;
    const char *key;

    /* About 40 KB of JSON, well within the default max_body (256 KiB) and the schema's limits. */
    for (int i = 0; i < 32; i++) {
        snprintf(text, sizeof(text), "fact %02d %0270d", i, 0);
        cJSON_AddItemToArray(facts, cJSON_CreateString(text));
    }
    set(doc, "generation/facts", facts);
    for (int i = 0; i < 100; i++) {
        cJSON *u = cJSON_CreateObject();
        snprintf(text, sizeof(text), "po-%03d-%057d", i, 0);
        cJSON_AddStringToObject(u, "id", text);
        cJSON_AddNumberToObject(u, "tokens", 1000);
        cJSON_AddNumberToObject(u, "at", 1765000000 + i);
        snprintf(text, sizeof(text), "note %03d %0119d", i, 0);
        cJSON_AddStringToObject(u, "note", text);
        cJSON_AddItemToArray(ups, u);
    }
    set(doc, "token_package/top_ups", ups);
    body = print(doc);
    cr_assert_gt(strlen(body), 32 * 1024, "the document is only %zu bytes", strlen(body));

    e2e_assert_started(&dmn, NULL);
    key = e2e_admin_key(&dmn);
    cr_assert_not_null(key, "%s", dmn.why);
    put_ok("large-1", doc, 201);
    e2e_assert_stopped_clean(&dmn);

    /* The same data directory served with max_body 8 KiB: the campaign is still there to read and change. */
    cr_assert_eq(e2e_daemon_init(&aux), 0, "%s", aux.why);
    snprintf(aux.data_dir, sizeof(aux.data_dir), "%s", dmn.data_dir);
    e2e_assert_started(&aux, small);
    call_on(&aux, "GET", "/v1/campaigns?status=active", key, NULL, NULL, 0, NULL, NULL);
    list = rsp_json(200, "list after the restart");
    cr_assert_str_eq(str(list, "campaigns/0/id"), "large-1");
    cJSON_Delete(list);
    call_on(&aux, "GET", "/v1/campaigns/large-1", key, NULL, NULL, 0, NULL, NULL);
    got = rsp_json(200, "GET of a campaign larger than the new max_body");
    assert_same_campaign(doc, got, 0, 0, "GET after the restart");
    cJSON_Delete(got);
    call_on(&aux, "PATCH", "/v1/campaigns/large-1", key, JSON, "{\"status\":\"paused\"}", 19, NULL, NULL);
    assert_status(200, "PATCH of a campaign larger than the new max_body");
    call_on(&aux, "GET", "/v1/campaigns/large-1/usage", key, NULL, NULL, 0, NULL, NULL);
    assert_status(200, "usage of a campaign larger than the new max_body");
    e2e_assert_stopped_clean(&aux);
    free(body);
    cJSON_Delete(doc);
}

/* ---- writers racing ---- */

#define RACERS 8

struct racer {
    pthread_t thread;
    pthread_barrier_t *start;
    const char *method, *path, *body, *header;
    long status; /* 0: the transfer failed */
};

static void *racer_main(void *arg)
{
    struct racer *rc = arg;
    struct e2e_resp *r = malloc(sizeof(*r));
    const char *headers[] = {"Content-Type: " JSON, rc->header, NULL};
    struct e2e_req req = {.proto = E2E_H2C,
                          .method = rc->method,
                          .path = rc->path,
                          .body = rc->body,
                          .body_len = strlen(rc->body),
                          .headers = headers};

    pthread_barrier_wait(rc->start);
    rc->status = 0;
    if (r != NULL && e2e_http(&dmn, &req, r) == 0 && r->code == CURLE_OK)
        rc->status = r->status;
    free(r);
    return NULL;
}

/* Sends RACERS requests at once: racer i gets @p paths[i] (or @p paths[0] for all when @p one_path), and
 * @p header. Counts the answers with status @p a and @p b into @p ret_a and @p ret_b; any other answer is
 * described in @p ret_other ("" when there was none). */
static void race(const char *method, char paths[][96], bool one_path, const char *const *bodies, const char *header,
                 long a, long b, int *ret_a, int *ret_b, char ret_other[256])
{
    struct racer rc[RACERS];
    pthread_barrier_t start;

    pthread_barrier_init(&start, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        rc[i] = (struct racer){
            .start = &start, .method = method, .path = paths[one_path ? 0 : i], .body = bodies[i], .header = header};
        cr_assert_eq(pthread_create(&rc[i].thread, NULL, racer_main, &rc[i]), 0);
    }
    *ret_a = *ret_b = 0;
    ret_other[0] = '\0';
    for (int i = 0; i < RACERS; i++) {
        pthread_join(rc[i].thread, NULL);
        if (rc[i].status != a && rc[i].status != b && ret_other[0] == '\0')
            snprintf(ret_other, 256, "racer %d: %s %s answered %ld, not %ld or %ld", i, method, rc[i].path,
                     rc[i].status, a, b);
        *ret_a += rc[i].status == a;
        *ret_b += rc[i].status == b;
    }
    pthread_barrier_destroy(&start);
}

/* GETs each of the @p n campaigns @p ids: each must answer 200 or 404 (never a stored document that cannot be read). */
static void assert_readable(char ids[][64], int n, const char *after)
{
    for (int i = 0; i < n; i++) {
        get_as(NULL, ids[i], NULL);
        cr_assert(rsp.status == 200 || rsp.status == 404, "after %s, GET %s answers %ld: %s", after, ids[i], rsp.status,
                  rsp.body);
    }
}

Test(campaigns, racing_writers_see_their_preconditions_and_the_limit, .timeout = 30)
{
    const char *args[] = {"--campaigns-per-advertiser", "3", NULL};
    char paths[RACERS][96], ids[RACERS][64], hdr[200], etag[128], adv[32], other[256], *texts[RACERS] = {NULL};
    const char *bodies[RACERS];
    cJSON *doc = campaign(DEMO, "race", "racer", NULL), *got;
    int ok, refused;

    e2e_assert_started(&dmn, args);
    cr_assert_not_null(e2e_admin_key(&dmn), "%s", dmn.why);

    /* Rounds, so that racing requests land in one writer group at least once. */
    for (int round = 0; round < 6; round++) {
        /* Eight creates of one id with If-None-Match: *: one 201, seven 412. */
        snprintf(ids[0], sizeof(ids[0]), "race-%d", round);
        snprintf(paths[0], sizeof(paths[0]), "/v1/campaigns/%.64s", ids[0]);
        snprintf(adv, sizeof(adv), "racer-%d", round);
        set_str(doc, "id", ids[0]);
        set_str(doc, "advertiser", adv);
        for (int i = 0; i < RACERS; i++) {
            char name[32];
            snprintf(name, sizeof(name), "racer %d", i);
            set_str(doc, "name", name);
            free(texts[i]);
            texts[i] = print(doc);
            bodies[i] = texts[i];
        }
        race("PUT", paths, true, bodies, "If-None-Match: *", 201, 412, &ok, &refused, other);
        assert_readable(ids, 1, "racing creates with If-None-Match: *");
        cr_assert_str_eq(other, "", "round %d: %s", round, other);
        cr_assert_eq(ok, 1, "round %d: %d creates with If-None-Match: * succeeded", round, ok);
        got = get_doc(ids[0], etag);
        cr_assert_eq(strncmp(str(got, "name"), "racer ", 6), 0);
        cJSON_Delete(got);

        /* Eight PATCHes with the same If-Match: one 200, seven 412; the winner's name is stored. */
        for (int i = 0; i < RACERS; i++) {
            free(texts[i]);
            texts[i] = malloc(64);
            cr_assert_not_null(texts[i]);
            snprintf(texts[i], 64, "{\"name\":\"patched by %d\"}", i);
            bodies[i] = texts[i];
        }
        snprintf(hdr, sizeof(hdr), "If-Match: %.100s", etag);
        race("PATCH", paths, true, bodies, hdr, 200, 412, &ok, &refused, other);
        cr_assert_str_eq(other, "", "round %d: %s", round, other);
        cr_assert_eq(ok, 1, "round %d: %d PATCHes with one If-Match succeeded", round, ok);
        got = get_doc(ids[0], NULL);
        cr_assert_eq(strncmp(str(got, "name"), "patched by ", 11), 0, "%s", rsp.body);
        cJSON_Delete(got);

        /* Eight creates of distinct ids for an advertiser that may hold 3 and holds 1: two 201, six 409. */
        for (int i = 0; i < RACERS; i++) {
            free(texts[i]);
            snprintf(ids[i], sizeof(ids[i]), "race-%d-q%d", round, i);
            set_str(doc, "id", ids[i]);
            texts[i] = print(doc);
            bodies[i] = texts[i];
            snprintf(paths[i], sizeof(paths[i]), "/v1/campaigns/%.64s", ids[i]);
        }
        race("PUT", paths, false, bodies, NULL, 201, 409, &ok, &refused, other);
        assert_readable(ids, RACERS, "racing creates");
        cr_assert_str_eq(other, "", "round %d: %s", round, other);
        cr_assert_eq(ok, 2, "round %d: %d creates succeeded where the limit left room for 2", round, ok);
        snprintf(hdr, sizeof(hdr), "advertiser=%s&status=active", adv);
        got = list_as(NULL, hdr);
        cr_assert_eq(cJSON_GetArraySize(at(got, "campaigns")), 3, "the advertiser holds: %s", rsp.body);
        cJSON_Delete(got);
    }

    for (int i = 0; i < RACERS; i++)
        free(texts[i]);
    cJSON_Delete(doc);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- eligibility at a given time and place ---- */

/* Unix seconds of @p y-@p mo-@p d @p h:@p mi UTC. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};

    return (int64_t)timegm(&tm);
}

/* Whether @p id is eligible for a native impression in @p country at @p now. */
static bool eligible_at(const char *id, const char *country, int64_t now)
{
    char ctx[256];

    snprintf(ctx, sizeof(ctx), "{\"formats\":[\"native\"],\"country\":\"%s\",\"now\":%lld}", country, (long long)now);
    return eligible(ctx, id);
}

Test(campaigns, eligibility_answers_for_the_time_and_place_asked, .timeout = 30)
{
    cJSON *dp = campaign(DEMO, "dp-1", NULL, NULL), *fl = campaign(DEMO, "fl-1", NULL, NULL), *win;
    const int64_t start = utc(2026, 1, 1, 0, 0), end = utc(2027, 1, 1, 0, 0);

    /* Berlin, weekdays 06-09 and Mondays 17-23 local time, Germany only. */
    set(dp, "flight", cJSON_Parse("{\"start\":1767225600,\"end\":1798761600,\"time_zone\":\"Europe/Berlin\"}"));
    win = cJSON_Parse("[{\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"],\"start_hour\":6,\"end_hour\":9},"
                      "{\"days\":[\"mon\"],\"start_hour\":17,\"end_hour\":23}]");
    set(dp, "targeting/dayparting", win);
    set(dp, "targeting/countries", cJSON_CreateStringArray((const char *[]){"DE"}, 1));
    /* No dayparting; a flight of [2026-01-01, 2027-01-01) UTC. */
    set_num(fl, "flight/start", (double)start);
    set_num(fl, "flight/end", (double)end);

    e2e_assert_started(&dmn, NULL);
    put_ok("dp-1", dp, 201);
    put_ok("fl-1", fl, 201);
    until_eligible("{\"formats\":[\"native\"],\"country\":\"DE\",\"now\":1795415400}", "dp-1", true, e2e_now_ms());

    /* Monday 2026-11-23, CET (UTC+1). */
    cr_assert(eligible_at("dp-1", "DE", utc(2026, 11, 23, 5, 30)), "06:30 Berlin is in the 06-09 window");
    cr_assert_not(eligible_at("dp-1", "DE", utc(2026, 11, 23, 4, 30)), "05:30 Berlin is before the window");
    cr_assert_not(eligible_at("dp-1", "DE", utc(2026, 11, 23, 8, 0)), "09:00 Berlin is past the window");
    cr_assert(eligible_at("dp-1", "DE", utc(2026, 11, 23, 16, 0)), "17:00 Berlin on a Monday is in the window");
    cr_assert_not(eligible_at("dp-1", "DE", utc(2026, 11, 23, 22, 0)), "23:00 Berlin is past the Monday window");
    cr_assert_not(eligible_at("dp-1", "DE", utc(2026, 11, 24, 16, 0)), "17:00 Berlin on a Tuesday has no window");
    cr_assert_not(eligible_at("dp-1", "DE", utc(2026, 11, 28, 6, 0)), "Saturday has no window");
    /* Monday 2026-06-01, CEST (UTC+2): the same local hours are an hour earlier in UTC. */
    cr_assert(eligible_at("dp-1", "DE", utc(2026, 6, 1, 4, 30)), "06:30 Berlin in summer is in the window");
    cr_assert_not(eligible_at("dp-1", "DE", utc(2026, 6, 1, 7, 0)), "09:00 Berlin in summer is past the window");
    /* Elsewhere, never. */
    cr_assert_not(eligible_at("dp-1", "US", utc(2026, 11, 23, 5, 30)), "a campaign for Germany is eligible in the US");

    /* The flight: start inclusive, end exclusive. */
    cr_assert_not(eligible_at("fl-1", "US", start - 1), "eligible before the flight");
    cr_assert(eligible_at("fl-1", "US", start), "not eligible at the flight's start");
    cr_assert(eligible_at("fl-1", "US", end - 1), "not eligible in the flight's last second");
    cr_assert_not(eligible_at("fl-1", "US", end), "eligible at the flight's end");

    cJSON_Delete(dp);
    cJSON_Delete(fl);
    e2e_assert_stopped_clean(&dmn);
}
