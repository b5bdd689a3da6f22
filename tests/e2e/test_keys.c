/*
 * End-to-end tests of API keys (issue 4): `adsmith keys create|list|revoke`
 * against a data directory, keys stored only as SHA-256, and what the daemon
 * does with the Authorization header: 401 with WWW-Authenticate without a
 * usable key, 403 for a role a route does not admit, nothing needed on
 * /healthz and /metrics, and a revoked key refused on the next request.
 * Each test that starts a daemon ends with a clean SIGTERM: exit 0 and a log
 * of JSON records only.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

#define JSON "application/json"
#define KEY_LEN 48 /* "adsk_" and 43 characters of base64url */

static struct e2e_daemon dmn;
static struct e2e_resp rsp; /* the latest response (64 KiB: kept off the stack) */

static void setup(void)
{
    int rc = e2e_daemon_init(&dmn);

    cr_assert_eq(rc, 0, "e2e_daemon_init: %s", dmn.why);
}

static void teardown(void)
{
    e2e_daemon_done(&dmn);
}

TestSuite(keys, .init = setup, .fini = teardown);

/* ---- the CLI ---- */

struct run {
    int status;
    char out[8192];
    char err[4096];
};

static struct run ran; /* the latest run */

/* Runs `adsmith keys ARGS... --data-dir <data>` (NULL-terminated @p args); the outcome is left in ran. */
static void keys(const char *const *args)
{
    const char *argv[32];
    size_t n = 0;
    int rc;

    argv[n++] = "keys";
    for (size_t i = 0; args[i] != NULL && n < 28; i++)
        argv[n++] = args[i];
    argv[n++] = "--data-dir";
    argv[n++] = dmn.data_dir;
    argv[n] = NULL;
    rc = e2e_run(&dmn, argv, ran.out, sizeof(ran.out), ran.err, sizeof(ran.err), &ran.status);
    cr_assert_eq(rc, 0, "cannot run adsmith keys %s: %s", args[0], dmn.why);
}

static bool key_shaped(const char *k)
{
    if (strlen(k) != KEY_LEN || strncmp(k, "adsk_", 5) != 0)
        return false;
    for (const char *p = k + 5; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    }
    return true;
}

/* The id `keys create` reported on stderr ("created <role> key <id> ..."). */
static void created_id(char id[16])
{
    const char *p = strstr(ran.err, " key ");

    cr_assert_not_null(p, "keys create said nothing about the key's id: %s", ran.err);
    p += 5;
    snprintf(id, 16, "%.*s", (int)strspn(p, "0123456789abcdef"), p);
    cr_assert_eq(strlen(id), 12, "the key id '%s' is not 12 hex digits: %s", id, ran.err);
}

/* Creates a key of @p role (for @p advertiser unless NULL, named @p name unless NULL): the key, and its id. */
static void create(const char *role, const char *advertiser, const char *name, char key[64], char id[16])
{
    const char *args[8] = {"create", "--role", role, NULL, NULL, NULL, NULL, NULL};
    size_t n = 3;

    if (advertiser != NULL) {
        args[n++] = "--advertiser";
        args[n++] = advertiser;
    }
    if (name != NULL) {
        args[n++] = "--name";
        args[n++] = name;
    }
    keys(args);
    cr_assert_eq(ran.status, 0, "keys create --role %s exited %d: %s", role, ran.status, ran.err);
    /* stdout is the key alone, on one line. */
    cr_assert(strlen(ran.out) == KEY_LEN + 1 && ran.out[KEY_LEN] == '\n', "stdout is not the key alone: '%s'", ran.out);
    snprintf(key, 64, "%.*s", KEY_LEN, ran.out);
    cr_assert(key_shaped(key), "'%s' is not adsk_ and 43 characters of base64url", key);
    created_id(id);
}

/* The SHA-256 of @p key, as 64 hex digits, by the openssl tool (the test's own oracle). */
static void sha256_hex(const char *key, char hex[65])
{
    char path[E2E_PATH_MAX + 16], cmd[2 * E2E_PATH_MAX];
    FILE *f, *p;
    size_t n;

    snprintf(path, sizeof(path), "%s/key.txt", dmn.dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(key, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -r '%s'", path);
    p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run openssl dgst");
    n = fread(hex, 1, 64, p);
    hex[n] = '\0';
    pclose(p);
    remove(path);
    cr_assert_eq(n, 64, "openssl dgst printed '%s'", hex);
}

/* ---- HTTP ---- */

/* GET @p path over h2c with the header line @p auth (NULL: none at all). */
static void get_with(const char *path, const char *auth, const char *capture)
{
    const char *headers[2] = {auth, NULL};
    struct e2e_req req = {.proto = E2E_H2C, .path = path, .headers = headers, .capture = capture, .no_auth = true};
    int rc = e2e_http(&dmn, &req, &rsp);

    cr_assert_eq(rc, 0);
    cr_assert_eq(rsp.code, CURLE_OK, "GET %s: %s (%s)", path, curl_easy_strerror(rsp.code), rsp.error);
}

/* Sends @p method @p path with API key @p key (NULL: none) and a JSON @p body (NULL: none). */
static void call(const char *method, const char *path, const char *key, const char *body, const char *capture)
{
    char auth[128];
    const char *headers[3] = {NULL, NULL, NULL};
    size_t n = 0;
    struct e2e_req req = {.proto = E2E_H2C,
                          .method = method,
                          .path = path,
                          .body = body,
                          .body_len = body != NULL ? strlen(body) : 0,
                          .headers = headers,
                          .capture = capture,
                          .no_auth = key == NULL};
    int rc;

    if (key != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        headers[n++] = auth;
    }
    if (body != NULL)
        headers[n++] = "Content-Type: " JSON;
    rc = e2e_http(&dmn, &req, &rsp);
    cr_assert_eq(rc, 0);
    cr_assert_eq(rsp.code, CURLE_OK, "%s %s: %s (%s)", method, path, curl_easy_strerror(rsp.code), rsp.error);
    cr_assert_eq(rsp.version, CURL_HTTP_VERSION_2_0, "%s %s was not answered over HTTP/2", method, path);
}

static void assert_status(long status, const char *what)
{
    cr_assert_eq(rsp.status, status, "%s: status %ld, expected %ld; body: %s", what, rsp.status, status, rsp.body);
}

/* Asserts a 401 unauthorized carrying a Bearer challenge (call with capture "WWW-Authenticate"). */
static void assert_401(const char *what)
{
    cr_assert_eq(rsp.status, 401, "%s: status %ld, expected 401; body: %s", what, rsp.status, rsp.body);
    e2e_assert_error_json(&rsp, 401, "unauthorized");
    cr_assert(rsp.has_header, "%s: a 401 without WWW-Authenticate", what);
    cr_assert(strncmp(rsp.header, "Bearer", 6) == 0, "%s: WWW-Authenticate is '%s', not a Bearer challenge", what,
              rsp.header);
}

/* A small valid campaign of @p advertiser as @p id, from the shipped demo example. */
static char *campaign_text(const char *id, const char *advertiser)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[1024], *text = malloc(E2E_BODY_MAX), *out;
    cJSON *doc;
    size_t len;

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is not set (run through meson test)");
    cr_assert_not_null(text);
    snprintf(path, sizeof(path), "%s/schemas/examples/campaign-demo.json", root);
    cr_assert_eq(e2e_file_read(path, text, E2E_BODY_MAX, &len), 0, "cannot read %s", path);
    doc = cJSON_Parse(text);
    cr_assert_not_null(doc);
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "id", cJSON_CreateString(id));
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "advertiser", cJSON_CreateString(advertiser));
    out = cJSON_PrintUnformatted(doc);
    cr_assert_not_null(out);
    cJSON_Delete(doc);
    free(text);
    return out;
}

/* ---- keys create ---- */

Test(keys, create_prints_the_key_alone_for_each_role, .timeout = 30)
{
    char k1[64], k2[64], k3[64], k4[64], id[16];

    create("admin", NULL, NULL, k1, id);
    create("advertiser", "acme", "acme's pipeline", k2, id);
    create("reader", NULL, NULL, k3, id);
    create("reader", "acme", NULL, k4, id);
    cr_assert_str_neq(k1, k2);
    cr_assert_str_neq(k1, k3);
    cr_assert_str_neq(k2, k3);
    cr_assert_str_neq(k3, k4);
}

Test(keys, create_refuses_what_makes_no_sense_with_exit_2, .timeout = 30)
{
    static const char *const cases[][6] = {
        {"create", NULL},
        {"create", "--role", "advertiser", NULL},
        {"create", "--role", "admin", "--advertiser", "acme", NULL},
        {"create", "--role", "owner", NULL},
        {"create", "--role", "advertiser", "--advertiser", "not an id", NULL},
        {"frobnicate", NULL},
        {"revoke", NULL},
        {"create", "--role", "reader", "--name",
         "a name of 129 bytes "
         "............................................................................................................"
         ".",
         NULL},
    };
    const char *list[] = {"list", "--json", NULL};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        keys(cases[i]);
        cr_assert_eq(ran.status, 2, "keys %s %s %s %s exited %d, expected 2 (usage)", cases[i][0],
                     cases[i][1] != NULL ? cases[i][1] : "", cases[i][1] != NULL && cases[i][2] ? cases[i][2] : "",
                     cases[i][1] != NULL && cases[i][2] && cases[i][3] ? cases[i][3] : "", ran.status);
        cr_assert_str_eq(ran.out, "", "case %zu printed on stdout: %s", i, ran.out);
        cr_assert_neq(ran.err[0], '\0', "case %zu exited 2 without saying why", i);
    }
    /* None of them stored a key. */
    keys(list);
    cr_assert_eq(ran.status, 0, "keys list exited %d: %s", ran.status, ran.err);
    cr_assert_str_eq(ran.out, "", "refused creates stored keys: %s", ran.out);
}

/* ---- keys list ---- */

Test(keys, list_shows_ids_roles_and_advertisers_never_keys, .timeout = 30)
{
    const char *plain[] = {"list", NULL}, *json[] = {"list", "--json", NULL};
    char k[3][64], id[3][16], hex[65];
    const char *want_role[3] = {"admin", "advertiser", "reader"}, *want_adv[3] = {"", "acme", "acme"};
    const char *line;
    int n = 0;

    create("admin", NULL, "ops", k[0], id[0]);
    create("advertiser", "acme", "acme ingest", k[1], id[1]);
    create("reader", "acme", NULL, k[2], id[2]);

    /* The id is the first 12 hex digits of the key's SHA-256. */
    for (int i = 0; i < 3; i++) {
        sha256_hex(k[i], hex);
        cr_assert(strncmp(hex, id[i], 12) == 0, "key id %s is not the start of its SHA-256 %s", id[i], hex);
    }

    keys(plain);
    cr_assert_eq(ran.status, 0, "keys list exited %d: %s", ran.status, ran.err);
    for (int i = 0; i < 3; i++) {
        const char *row = strstr(ran.out, id[i]);
        char want[128];
        cr_assert_not_null(row, "keys list does not show %s: %s", id[i], ran.out);
        snprintf(want, sizeof(want), "%.*s", (int)strcspn(row, "\n"), row);
        cr_assert_not_null(strstr(want, want_role[i]), "the row of %s does not say %s: %s", id[i], want_role[i], want);
        if (want_adv[i][0] != '\0')
            cr_assert_not_null(strstr(want, want_adv[i]), "the row of %s does not say %s: %s", id[i], want_adv[i],
                               want);
        cr_assert_not_null(strstr(want, "live"), "the row of %s does not say live: %s", id[i], want);
        cr_assert_null(strstr(ran.out, k[i] + 5), "keys list shows a key: %s", ran.out);
    }
    cr_assert_not_null(strstr(ran.out, "acme ingest"), "the key's name is not listed: %s", ran.out);

    keys(json);
    cr_assert_eq(ran.status, 0, "keys list --json exited %d: %s", ran.status, ran.err);
    for (line = ran.out; *line != '\0'; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] == '\n')) {
        cJSON *rec = cJSON_ParseWithLength(line, strcspn(line, "\n"));
        const char *rid;
        int i;
        cr_assert_not_null(rec, "keys list --json printed a line that is not JSON: %.200s", line);
        rid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "id"));
        cr_assert_not_null(rid, "no id: %.200s", line);
        for (i = 0; i < 3 && strcmp(rid, id[i]) != 0; i++)
            ;
        cr_assert_lt(i, 3, "keys list --json shows an id no key has: %s", rid);
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "role")), want_role[i]);
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "advertiser")), want_adv[i]);
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(rec, "created_at")) &&
                      cJSON_GetObjectItemCaseSensitive(rec, "created_at")->valuedouble >= (double)time(NULL) - 60,
                  "created_at is not a recent time: %.200s", line);
        cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec, "revoked_at")), 0);
        cJSON_Delete(rec);
        n++;
    }
    cr_assert_eq(n, 3, "keys list --json printed %d records for 3 keys: %s", n, ran.out);
    for (int i = 0; i < 3; i++)
        cr_assert_null(strstr(ran.out, k[i] + 5), "keys list --json shows a key: %s", ran.out);
}

/* ---- stored hashed ---- */

/* Whether any regular file under @p dir holds the @p len bytes at @p needle. */
static bool dir_holds(const char *dir, const void *needle, size_t len)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    bool found = false;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && !found; i++) {
        char path[E2E_PATH_MAX + 32];
        FILE *f;
        char *buf;
        size_t n;
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        f = fopen(path, "rb");
        if (f == NULL) {
            cr_assert_eq(i, 1, "cannot open %s", path); /* data.mdb must exist */
            continue;
        }
        fseek(f, 0, SEEK_END);
        n = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(n + 1);
        cr_assert_not_null(buf);
        cr_assert_eq(fread(buf, 1, n, f), n, "cannot read %s", path);
        fclose(f);
        found = n >= len && memmem(buf, n, needle, len) != NULL;
        free(buf);
    }
    return found;
}

Test(keys, keys_are_stored_as_sha256_only, .timeout = 30)
{
    char k[3][64], id[16], hex[65];
    unsigned char digest[32];

    create("admin", NULL, NULL, k[0], id);
    create("advertiser", "acme", NULL, k[1], id);
    create("reader", NULL, NULL, k[2], id);
    for (int i = 0; i < 3; i++) {
        cr_assert_not(dir_holds(dmn.data_dir, k[i], KEY_LEN), "the key %d is stored in plain text", i);
        cr_assert_not(dir_holds(dmn.data_dir, k[i] + 5, KEY_LEN - 5), "the secret part of key %d is stored", i);
        /* What is stored is the SHA-256: its 32 bytes are there. */
        sha256_hex(k[i], hex);
        for (int b = 0; b < 32; b++) {
            unsigned v;
            sscanf(hex + 2 * b, "%2x", &v);
            digest[b] = (unsigned char)v;
        }
        cr_assert(dir_holds(dmn.data_dir, digest, sizeof(digest)), "the SHA-256 of key %d is not in data.mdb", i);
    }
}

/* ---- the daemon and the Authorization header ---- */

Test(keys, every_v1_route_needs_a_key, .timeout = 30)
{
    static const struct {
        const char *method, *path, *body;
    } routes[] = {
        {"GET", "/v1/campaigns", NULL},
        {"GET", "/v1/campaigns/c-1", NULL},
        {"PUT", "/v1/campaigns/c-1", "{}"},
        {"PATCH", "/v1/campaigns/c-1", "{}"},
        {"DELETE", "/v1/campaigns/c-1", NULL},
        {"GET", "/v1/campaigns/c-1/usage", NULL},
        {"GET", "/v1/users/u-1", NULL},
        {"PUT", "/v1/users/u-1", "{}"},
        {"POST", "/v1/events", "{\"events\":[]}"},
        {"GET", "/v1/admin/index", NULL},
        {"POST", "/v1/admin/eligibility", "{}"},
    };
    char admin[64], revoked[64], id[16], bearer[128];
    const char *revoke[] = {"revoke", id, NULL};
    const char *bad_auth[] = {
        NULL, /* none at all: filled below */
        "Authorization: Basic YWRtaW46YWRtaW4=",
        "Authorization: Bearer",
        "Authorization: Bearer adsk_short",
        "Authorization: Bearer adsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* well-formed, unknown */
        "Authorization: Bearer xxxx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Authorization: adsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        bearer, /* a revoked key */
    };
    const char *log_args[] = {"--access-log", NULL};
    double v;

    create("admin", NULL, NULL, admin, id);
    create("admin", NULL, NULL, revoked, id);
    keys(revoke);
    cr_assert_eq(ran.status, 0, "keys revoke exited %d: %s", ran.status, ran.err);
    snprintf(bearer, sizeof(bearer), "Authorization: Bearer %s", revoked);
    e2e_assert_started(&dmn, log_args);

    for (size_t r = 0; r < sizeof(routes) / sizeof(routes[0]); r++) {
        for (size_t a = 0; a < sizeof(bad_auth) / sizeof(bad_auth[0]); a++) {
            const char *headers[3] = {bad_auth[a], routes[r].body != NULL ? "Content-Type: " JSON : NULL, NULL};
            struct e2e_req req = {.proto = E2E_H2C,
                                  .method = routes[r].method,
                                  .path = routes[r].path,
                                  .body = routes[r].body,
                                  .body_len = routes[r].body != NULL ? strlen(routes[r].body) : 0,
                                  .headers = bad_auth[a] != NULL ? headers : headers + 1,
                                  .capture = "WWW-Authenticate",
                                  .no_auth = true};
            char what[256];
            cr_assert_eq(e2e_http(&dmn, &req, &rsp), 0);
            cr_assert_eq(rsp.code, CURLE_OK, "%s", rsp.error);
            snprintf(what, sizeof(what), "%s %s with %s", routes[r].method, routes[r].path,
                     bad_auth[a] != NULL ? bad_auth[a] : "no Authorization");
            assert_401(what);
        }
    }

    /* The challenge says what went wrong: no key at all, or a key that is not valid. */
    get_with("/v1/campaigns", NULL, "WWW-Authenticate");
    assert_401("GET /v1/campaigns without a key");
    cr_assert_str_eq(rsp.header, "Bearer realm=\"adsmith\"");
    get_with("/v1/campaigns", bad_auth[4], "WWW-Authenticate");
    assert_401("GET /v1/campaigns with an unknown key");
    cr_assert_not_null(strstr(rsp.header, "error=\"invalid_token\""), "WWW-Authenticate: %s", rsp.header);
    /* The same over HTTP/1.1. */
    {
        struct e2e_req req = {
            .proto = E2E_HTTP1, .path = "/v1/campaigns/c-1", .capture = "WWW-Authenticate", .no_auth = true};
        cr_assert_eq(e2e_http(&dmn, &req, &rsp), 0);
        cr_assert_eq(rsp.code, CURLE_OK, "%s", rsp.error);
        cr_assert_eq(rsp.version, CURL_HTTP_VERSION_1_1);
        assert_401("GET over HTTP/1.1 without a key");
    }

    /* A usable key gets through on the same routes (whatever they then answer). */
    call("GET", "/v1/campaigns", admin, NULL, NULL);
    assert_status(200, "GET /v1/campaigns with an admin key");
    call("GET", "/v1/admin/index", admin, NULL, NULL);
    assert_status(200, "GET /v1/admin/index with an admin key");
    /* The scheme is case-insensitive (RFC 9110, 11.1). */
    snprintf(bearer, sizeof(bearer), "Authorization: bearer %s", admin);
    get_with("/v1/campaigns", bearer, NULL);
    assert_status(200, "Authorization: bearer <key>");

    /* Open routes need no key. */
    get_with("/healthz", NULL, NULL);
    assert_status(200, "GET /healthz without a key");
    get_with("/metrics", NULL, NULL);
    assert_status(200, "GET /metrics without a key");
    cr_assert_eq(
        e2e_metric(rsp.body, "adsmith_http_requests_total{method=\"GET\",route=\"/v1/campaigns\",code=\"401\"}", &v), 0,
        "no 401 counted for GET /v1/campaigns: %.2000s", rsp.body);
    cr_assert_geq(v, (double)(sizeof(bad_auth) / sizeof(bad_auth[0])));

    e2e_assert_stopped_clean(&dmn);
    {
        char text[1 << 16];
        size_t len;
        int rc = e2e_file_read(dmn.log_path, text, sizeof(text), &len);
        cr_assert(rc == 0 || rc == -EFBIG);
        cr_assert_null(strstr(text, admin + 5), "an API key is in the log");
        cr_assert_null(strstr(text, revoked + 5), "an API key is in the log");
    }
}

Test(keys, roles_limit_what_a_key_may_do, .timeout = 30)
{
    static const struct {
        const char *method, *path, *body;
    } admin_only[] = {
        {"GET", "/v1/users/x", NULL},
        {"PUT", "/v1/users/x", "{}"},
        {"PATCH", "/v1/users/x", "{}"},
        {"DELETE", "/v1/users/x", NULL},
        {"POST", "/v1/events", "{\"events\":[]}"},
        {"GET", "/v1/admin/index", NULL},
        {"POST", "/v1/admin/eligibility", "{}"},
    };
    char admin[64], adv[64], reader[64], id[16];
    const char *not_admin[2] = {adv, reader};
    char *doc = campaign_text("k-1", "acme");

    create("admin", NULL, NULL, admin, id);
    create("advertiser", "acme", NULL, adv, id);
    create("reader", NULL, NULL, reader, id);
    e2e_assert_started(&dmn, NULL);

    /* Users, events and admin routes: admin keys only (403 forbidden, not 401). */
    for (size_t k = 0; k < 2; k++) {
        for (size_t r = 0; r < sizeof(admin_only) / sizeof(admin_only[0]); r++) {
            call(admin_only[r].method, admin_only[r].path, not_admin[k], admin_only[r].body, NULL);
            cr_assert_eq(rsp.status, 403, "%s %s with a%s key: %ld %s", admin_only[r].method, admin_only[r].path,
                         k == 0 ? "n advertiser" : " reader", rsp.status, rsp.body);
            e2e_assert_error_json(&rsp, 403, "forbidden");
        }
    }
    call("GET", "/v1/users/x", admin, NULL, NULL);
    assert_status(404, "GET /v1/users/x with the admin key");

    /* Campaign writes: admin and advertiser; reads: all three. */
    call("PUT", "/v1/campaigns/k-1", reader, doc, NULL);
    e2e_assert_error_json(&rsp, 403, "forbidden");
    call("PUT", "/v1/campaigns/k-1", adv, doc, NULL);
    assert_status(201, "PUT with the advertiser key");
    call("GET", "/v1/campaigns/k-1", reader, NULL, NULL);
    assert_status(200, "GET with the reader key");
    call("GET", "/v1/campaigns/k-1", admin, NULL, NULL);
    assert_status(200, "GET with the admin key");
    call("PATCH", "/v1/campaigns/k-1", admin, "{\"status\":\"paused\"}", NULL);
    assert_status(200, "PATCH with the admin key");
    free(doc);
    e2e_assert_stopped_clean(&dmn);
}

/* ---- keys revoke ---- */

Test(keys, a_revoked_key_is_refused_on_the_next_request, .timeout = 30)
{
    char adv[64], id[16], other[64], other_id[16];
    const char *revoke[] = {"revoke", id, NULL}, *unknown[] = {"revoke", "0123456789ab", NULL};
    const char *list[] = {"list", "--json", NULL};
    char *doc = campaign_text("rv-1", "acme");

    create("advertiser", "acme", NULL, adv, id);
    create("advertiser", "acme", NULL, other, other_id);
    e2e_assert_started(&dmn, NULL);
    call("PUT", "/v1/campaigns/rv-1", adv, doc, NULL);
    assert_status(201, "PUT before the revocation");

    /* A key created while the daemon runs works at once. */
    {
        char late[64], late_id[16];
        create("reader", "acme", NULL, late, late_id);
        call("GET", "/v1/campaigns/rv-1", late, NULL, NULL);
        assert_status(200, "GET with a key made while the daemon runs");
    }

    keys(revoke);
    cr_assert_eq(ran.status, 0, "keys revoke exited %d: %s", ran.status, ran.err);
    call("GET", "/v1/campaigns/rv-1", adv, NULL, "WWW-Authenticate");
    assert_401("GET with the revoked key");
    call("PATCH", "/v1/campaigns/rv-1", adv, "{\"status\":\"paused\"}", "WWW-Authenticate");
    assert_401("PATCH with the revoked key");
    /* The other key of the same advertiser is untouched. */
    call("GET", "/v1/campaigns/rv-1", other, NULL, NULL);
    assert_status(200, "GET with the other key");
    cr_assert_null(strstr(rsp.body, "\"paused\""), "the revoked key's PATCH went through: %s", rsp.body);

    /* Revoking again is fine; an unknown id is a failure (1), not a usage error. */
    keys(revoke);
    cr_assert_eq(ran.status, 0, "revoking twice exited %d: %s", ran.status, ran.err);
    keys(unknown);
    cr_assert_eq(ran.status, 1, "revoking an unknown id exited %d: %s", ran.status, ran.err);
    keys(list);
    cr_assert_eq(ran.status, 0);
    {
        const char *row = strstr(ran.out, id);
        cJSON *rec;
        cr_assert_not_null(row, "the revoked key is no longer listed: %s", ran.out);
        while (row > ran.out && row[-1] != '\n')
            row--;
        rec = cJSON_ParseWithLength(row, strcspn(row, "\n"));
        cr_assert_not_null(rec);
        cr_assert_gt(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec, "revoked_at")), 0,
                     "the revoked key has no revoked_at: %s", ran.out);
        cJSON_Delete(rec);
    }
    free(doc);
    e2e_assert_stopped_clean(&dmn);
}
