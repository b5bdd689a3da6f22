/*
 * End-to-end tests of `adsmith import users` and `adsmith export users`: the
 * real binary, run to completion on files in a private directory, its output
 * read back through `adsmith export users`.
 *
 * Interruptions are made deterministic without hooks in the program: a FIFO
 * the test writes to keeps an import waiting for input; a map too small
 * (--map-size 1MiB) stops one after some committed batches; and the test
 * holding LMDB's writer lock keeps the next one waiting while it is signalled.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <msgpack.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"

#define OUT_MAX (16 * 1024 * 1024)
#define LOG_MAX (256 * 1024)
#define RUN_TIMEOUT_MS 20000
#define BIG_N 1000 /* profiles of the file that overflows a 1 MiB map */

static struct e2e_daemon ws; /* the workspace: input files and data directories */
static struct e2e_daemon fg; /* runs one after another, each to completion */
static struct e2e_daemon bg; /* a run that goes on while others run */
static char *out_text, *log_text;

static void setup(void)
{
    int rc = e2e_daemon_init(&ws);

    cr_assert_eq(rc, 0, "e2e_daemon_init: %s", ws.why);
    out_text = malloc(OUT_MAX);
    log_text = malloc(LOG_MAX);
    cr_assert(out_text != NULL && log_text != NULL);
}

static void teardown(void)
{
    e2e_daemon_done(&bg);
    e2e_daemon_done(&fg);
    e2e_daemon_done(&ws);
    free(out_text);
    free(log_text);
}

TestSuite(import, .init = setup, .fini = teardown);

static void write_file(const char *name, const char *data, size_t len, const char *mode)
{
    FILE *f = fopen(e2e_path(&ws, name), mode);

    cr_assert_not_null(f, "cannot create %s: %s", name, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* Starts `adsmith @p args` in @p r (a fresh private directory for its stdout and stderr). */
static void spawn(struct e2e_daemon *r, const char *const args[])
{
    int rc;

    e2e_daemon_done(r);
    rc = e2e_daemon_init(r);
    cr_assert_eq(rc, 0, "e2e_daemon_init: %s", r->why);
    rc = e2e_daemon_spawn(r, args);
    cr_assert_eq(rc, 0, "cannot run adsmith: %s", r->why);
}

/* Waits for the run in @p r to exit. Its stdout goes to out_text, its stderr to log_text. */
static int finish(struct e2e_daemon *r)
{
    int status = -1, rc = e2e_daemon_wait(r, RUN_TIMEOUT_MS, &status);
    size_t len;

    cr_assert_eq(rc, 0, "adsmith did not exit within %d ms", RUN_TIMEOUT_MS);
    rc = e2e_file_read(r->log_path, log_text, LOG_MAX, &len);
    cr_assert_eq(rc, 0, "cannot read stderr: %s", strerror(-rc));
    rc = e2e_file_read(r->out_path, out_text, OUT_MAX, &len);
    cr_assert_eq(rc, 0, "cannot read stdout: %s", strerror(-rc));
    /* A sanitizer build reports through the status too; this names the report. */
    cr_assert_null(strstr(log_text, "Sanitizer"), "sanitizer report:\n%s", log_text);
    cr_assert_null(strstr(log_text, "runtime error:"), "sanitizer report:\n%s", log_text);
    return status;
}

static int run(const char *const args[])
{
    spawn(&fg, args);
    return finish(&fg);
}

static void assert_log_has(const char *text)
{
    cr_assert_not_null(strstr(log_text, text), "stderr lacks \"%s\":\n%s", text, log_text);
}

static void assert_log_lacks(const char *text)
{
    cr_assert_null(strstr(log_text, text), "stderr has \"%s\":\n%s", text, log_text);
}

/*
 * Runs `adsmith import users @p file --batch 10` into @p data, with up to two
 * more options; returns the exit status.
 */
static int import(const char *file, const char *data, const char *extra1, const char *extra2)
{
    const char *args[] = {
        "import", "users", e2e_path(&ws, file), "--data-dir", e2e_path(&ws, data), "--batch", "10", extra1,
        extra2,   NULL};

    return run(args);
}

/*
 * Exports @p data and returns every line parsed, as a JSON array the caller
 * deletes. With @p save_as, the output is also written to that file.
 */
static cJSON *export_all(const char *data, const char *save_as)
{
    const char *args[] = {"export", "users", "--data-dir", e2e_path(&ws, data), NULL};
    int status = run(args);
    cJSON *all = cJSON_CreateArray();
    char *line, *nl;

    cr_assert_eq(status, 0, "export exited with status %d:\n%s", status, log_text);
    if (save_as != NULL)
        write_file(save_as, out_text, strlen(out_text), "w");
    for (line = out_text; *line != '\0'; line = nl + 1) {
        cJSON *o;
        nl = strchr(line, '\n');
        cr_assert_not_null(nl, "the export does not end with a newline");
        *nl = '\0';
        o = cJSON_Parse(line);
        cr_assert_not_null(o, "the export wrote a line that is not JSON: %.300s", line);
        cJSON_AddItemToArray(all, o);
    }
    return all;
}

static int export_count(const char *data)
{
    cJSON *all = export_all(data, NULL);
    int n = cJSON_GetArraySize(all);

    cJSON_Delete(all);
    return n;
}

static cJSON *find_id(const cJSON *all, const char *id)
{
    const cJSON *o;

    cJSON_ArrayForEach(o, all)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (cJSON_IsString(v) && strcmp(v->valuestring, id) == 0)
            return (cJSON *)o;
    }
    return NULL;
}

/* Removes the timestamps the store sets, after checking they are there. */
static void drop_timestamps(cJSON *o)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "created_at");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "updated_at");

    cr_assert(cJSON_IsNumber(c) && c->valuedouble > 1.6e9, "created_at is not a recent time");
    cr_assert(cJSON_IsNumber(u) && u->valuedouble >= c->valuedouble, "updated_at is before created_at");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "created_at");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "updated_at");
}

static void assert_same_json(const cJSON *want, const cJSON *got)
{
    char *w = cJSON_PrintUnformatted(want), *g = cJSON_PrintUnformatted(got);
    bool same = cJSON_Compare(want, got, true);

    cr_assert(same, "profiles differ:\nwant %s\ngot  %s", w, g);
    free(w);
    free(g);
}

/* Three profiles exactly as the export renders them (minus the timestamps). */
static const char *const canon[] = {
    "{\"id\":\"alice\",\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"b-1\"},{\"source\":\"id5-sync.com\",\"id\":"
    "\"ID5*abc\"}],\"attributes\":{\"country\":\"US\",\"region\":\"CA\",\"city\":\"San Francisco\",\"language\":"
    "\"en\",\"device\":\"phone\",\"os\":\"ios\",\"age_band\":\"25-34\",\"custom\":{\"tier\":\"gold\",\"plan\":"
    "\"annual\"}},\"segments\":[{\"id\":\"s1\",\"weight\":0.5,\"last_seen\":1700000000},{\"id\":\"s2\",\"weight\":"
    "1.0,\"last_seen\":0}],\"interests\":[{\"id\":\"IAB1\",\"weight\":12.25,\"updated_at\":1700000100}],"
    "\"frequency\":[{\"campaign\":\"c1\",\"hour_start\":1700000000,\"hour\":1,\"day_start\":1699920000,\"day\":2,"
    "\"lifetime\":3,\"clicks\":1,\"conversions\":0,\"last_at\":1700000200}],\"recency\":{\"last_seen\":1700000300,"
    "\"last_impression\":1700000200,\"last_click\":0,\"last_conversion\":0},\"consent\":{\"gdpr_applies\":true,"
    "\"personalization\":false}}",
    "{\"id\":\"bob\",\"aliases\":[],\"attributes\":{\"city\":\"S\xc3\xa3o Paulo\",\"custom\":{\"note\":"
    "\"say \\\"hi\\\" \\\\ back/slash\"}},\"segments\":[],\"interests\":[],\"frequency\":[],\"recency\":"
    "{\"last_seen\":0,\"last_impression\":0,\"last_click\":0,\"last_conversion\":0},\"consent\":{}}",
    "{\"id\":\"carol/\xc3\xbc \xe2\x82\xac\",\"aliases\":[{\"source\":\"liveramp.com\",\"id\":\"XY-1\"}],"
    "\"attributes\":{\"country\":\"DEU\",\"age_band\":\"65+\"},\"segments\":[],\"interests\":[{\"id\":\"sports\","
    "\"weight\":999999.5,\"updated_at\":1}],\"frequency\":[],\"recency\":{\"last_seen\":1,\"last_impression\":0,"
    "\"last_click\":0,\"last_conversion\":2},\"consent\":{\"gdpr_applies\":false,\"personalization\":true,"
    "\"measurement\":true,\"sale_opt_out\":false}}",
};

/* Asserts that @p all holds exactly the canon profiles. */
static void assert_canon(cJSON *all)
{
    cr_assert_eq(cJSON_GetArraySize(all), 3, "the export has %d profiles, not 3", cJSON_GetArraySize(all));
    for (size_t i = 0; i < 3; i++) {
        cJSON *want = cJSON_Parse(canon[i]), *got;
        cr_assert_not_null(want, "canon[%zu] is not JSON", i);
        got = find_id(all, cJSON_GetObjectItemCaseSensitive(want, "id")->valuestring);
        cr_assert_not_null(got, "profile %zu is missing from the export", i);
        drop_timestamps(got);
        assert_same_json(want, got);
        cJSON_Delete(want);
    }
}

Test(import, jsonl_import_then_export_round_trips, .timeout = 30)
{
    char text[8192];
    cJSON *first;
    int status;

    /* Empty and blank lines are skipped, CRLF is accepted, the last line needs no newline. */
    snprintf(text, sizeof(text), "%s\n\n%s\r\n   \n%s", canon[0], canon[1], canon[2]);
    write_file("users.jsonl", text, strlen(text), "w");
    status = import("users.jsonl", "data", NULL, NULL);
    cr_assert_eq(status, 0, "import exited with status %d:\n%s", status, log_text);
    assert_log_has("imported 3 records (0 rejected)");
    first = export_all("data", "export.jsonl");
    assert_canon(first);
    cJSON_Delete(first);

    /* What export writes, import reads back to the same profiles. */
    status = import("export.jsonl", "data2", NULL, NULL);
    cr_assert_eq(status, 0, "re-import exited with status %d:\n%s", status, log_text);
    assert_log_has("imported 3 records (0 rejected)");
    first = export_all("data2", NULL);
    assert_canon(first);
    cJSON_Delete(first);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* {"id": id, "segments": [{"id": "s", "weight": float32 0.25}], "attributes": {"device": "ctv"}} */
static void pack_profile(msgpack_packer *pk, const char *id)
{
    msgpack_pack_map(pk, 3);
    pack_str(pk, "id");
    pack_str(pk, id);
    pack_str(pk, "segments");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    pack_str(pk, "id");
    pack_str(pk, "s");
    pack_str(pk, "weight");
    msgpack_pack_float(pk, 0.25f);
    pack_str(pk, "attributes");
    msgpack_pack_map(pk, 1);
    pack_str(pk, "device");
    pack_str(pk, "ctv");
}

static void assert_packed_profile(const cJSON *all, const char *id)
{
    const cJSON *o = find_id(all, id), *seg, *attrs;

    cr_assert_not_null(o, "%s is missing from the export", id);
    seg = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "segments"), 0);
    cr_assert_not_null(seg, "%s has no segment", id);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(seg, "weight")->valuedouble, 0.25);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(seg, "id")->valuestring, "s");
    attrs = cJSON_GetObjectItemCaseSensitive(o, "attributes");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(attrs, "device")->valuestring, "ctv");
}

Test(import, msgpack_stream_imports_by_extension_or_format, .timeout = 30)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    cJSON *all;
    int status;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_profile(&pk, "m1");
    pack_profile(&pk, "m2");
    pack_profile(&pk, "m3");
    write_file("users.msgpack", sb.data, sb.size, "w");
    write_file("users.bin", sb.data, sb.size, "w");
    msgpack_sbuffer_destroy(&sb);

    status = import("users.msgpack", "data", NULL, NULL);
    cr_assert_eq(status, 0, "import exited with status %d:\n%s", status, log_text);
    assert_log_has("(MessagePack)");
    assert_log_has("imported 3 records (0 rejected)");
    all = export_all("data", NULL);
    cr_assert_eq(cJSON_GetArraySize(all), 3);
    assert_packed_profile(all, "m1");
    assert_packed_profile(all, "m2");
    assert_packed_profile(all, "m3");
    cJSON_Delete(all);

    /* Another name needs --format; without it the bytes are read as JSON Lines and refused. */
    status = import("users.bin", "data2", "--format", "msgpack");
    cr_assert_eq(status, 0, "import --format msgpack exited with status %d:\n%s", status, log_text);
    assert_log_has("imported 3 records (0 rejected)");
    cr_assert_eq(export_count("data2"), 3);
    status = import("users.bin", "data3", NULL, NULL);
    cr_assert_eq(status, 1, "a MessagePack file read as JSON Lines exited with %d:\n%s", status, log_text);
    assert_log_has("imported 0 records");
}

Test(import, msgpack_bad_values_are_skipped_until_the_stream_breaks, .timeout = 30)
{
    static const char bin[] = {(char)0xc4, 0x01, 0x00};           /* bin 8 of one byte: not a profile */
    static const char cut[] = {(char)0x82, (char)0xa2, 'i', 'd'}; /* a map cut short at the end */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    cJSON *all;
    int status;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_profile(&pk, "ok1");
    msgpack_pack_map(&pk, 1); /* {"id": 5} */
    pack_str(&pk, "id");
    msgpack_pack_int(&pk, 5);
    pack_profile(&pk, "ok3");
    msgpack_sbuffer_write(&sb, bin, sizeof(bin));
    pack_profile(&pk, "ok5");
    msgpack_sbuffer_write(&sb, cut, sizeof(cut));
    write_file("bad.mpk", sb.data, sb.size, "w");
    msgpack_sbuffer_destroy(&sb);

    status = import("bad.mpk", "data", NULL, NULL);
    cr_assert_eq(status, 1, "import exited with status %d:\n%s", status, log_text);
    assert_log_has("record 2: /id: ");
    assert_log_has("record 4: ");
    assert_log_has("record 6: ");
    assert_log_has("cannot be read");
    assert_log_lacks("record 1:");
    assert_log_lacks("record 3:");
    assert_log_lacks("record 5:");
    assert_log_has("imported 3 records (3 rejected)");
    all = export_all("data", NULL);
    cr_assert_eq(cJSON_GetArraySize(all), 3);
    assert_packed_profile(all, "ok1");
    assert_packed_profile(all, "ok3");
    assert_packed_profile(all, "ok5");
    cJSON_Delete(all);
}

/* A text being built, for input files (the core's struct buf is sanitized in that build; this program is not). */
struct text {
    char *mem;
    size_t len, cap;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(t->mem + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < t->cap - t->len, "test input buffer too small");
    t->len += (size_t)n;
}

Test(import, bad_lines_are_reported_and_skipped, .timeout = 30)
{
    static const size_t big = 1100 * 1024; /* over the 1 MiB record limit */
    struct text t = {malloc(big + 4096), 0, big + 4096};
    char long_id[201], *filler = malloc(big + 1);
    cJSON *all;
    int status;

    cr_assert(t.mem != NULL && filler != NULL);
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    memset(filler, 'a', big);
    filler[big] = '\0';
    add(&t, "{\"id\":\"g1\",\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"shared\"}]}\n"); /* 1 */
    add(&t, "{\"id\":\"w2\",\"segments\":\"none\"}\n");                                     /* 2 */
    add(&t, "{\"segments\":[]}\n");                                                         /* 3 */
    add(&t, "{\"id\":\"%s\"}\n", long_id);                                                  /* 4 */
    add(&t, "{\"id\":\"b5\",\n");                                                           /* 5 */
    add(&t, "\n");                                                                          /* 6 */
    add(&t, "{\"id\":\"g7\"}\n");                                                           /* 7 */
    add(&t, "{\"id\":\"c8\",\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"shared\"}]}\n"); /* 8 */
    add(&t, "{\"id\":\"o9\",\"attributes\":{\"custom\":{\"k\":\"%s\"}}}\n", filler);        /* 9 */
    add(&t, "{\"id\":\"g10\"}\n");                                                          /* 10 */
    add(&t, "[1,2]\n");                                                                     /* 11 */
    write_file("bad.jsonl", t.mem, t.len, "w");
    free(filler);
    free(t.mem);

    status = import("bad.jsonl", "data", NULL, NULL);
    cr_assert_eq(status, 1, "an import with rejected records exited with status %d:\n%s", status, log_text);
    assert_log_has("line 2: /segments: ");
    assert_log_has("line 3: /id: is required");
    assert_log_has("line 4: /id: ");
    assert_log_has("line 5: ");
    assert_log_has("line 8: /aliases/0: ");
    assert_log_has("line 9: longer than");
    assert_log_has("line 11: ");
    assert_log_lacks("line 1:");
    assert_log_lacks("line 6:");
    assert_log_lacks("line 7:");
    assert_log_lacks("line 10:");
    assert_log_has("imported 3 records (7 rejected)");

    all = export_all("data", NULL);
    cr_assert_eq(cJSON_GetArraySize(all), 3, "the export has %d profiles, not 3", cJSON_GetArraySize(all));
    cr_assert_not_null(find_id(all, "g1"));
    cr_assert_not_null(find_id(all, "g7"));
    cr_assert_not_null(find_id(all, "g10"));
    cJSON_Delete(all);
}

/* @p n lines of profiles "user-0000".. with 20 long segments each (about 1.8 KB a line). */
static void write_big(const char *name, int from, int n, const char *mode)
{
    struct text t = {malloc((size_t)n * 2048), 0, (size_t)n * 2048};

    cr_assert_not_null(t.mem);
    for (int i = from; i < from + n; i++) {
        add(&t, "{\"id\":\"user-%04d\",\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"b-%04d\"}],\"segments\":[", i, i);
        for (int j = 0; j < 20; j++)
            add(&t,
                "%s{\"id\":\"segment-%03d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"weight\":0.5,\"last_seen\":1700000000}",
                j > 0 ? "," : "", j);
        add(&t, "]}\n");
    }
    write_file(name, t.mem, t.len, mode);
    free(t.mem);
}

/* Asserts that @p data holds users user-0000 .. user-(n-1), each once, and nothing else. */
static void assert_all_users(const char *data, int n)
{
    cJSON *all = export_all(data, NULL);
    bool *seen = calloc((size_t)n, 1);
    const cJSON *o;

    cr_assert_not_null(seen);
    cr_assert_eq(cJSON_GetArraySize(all), n, "the export has %d profiles, not %d", cJSON_GetArraySize(all), n);
    cJSON_ArrayForEach(o, all)
    {
        const char *id = cJSON_GetObjectItemCaseSensitive(o, "id")->valuestring;
        int k = -1;
        cr_assert_eq(sscanf(id, "user-%d", &k), 1, "unexpected id %s", id);
        cr_assert(k >= 0 && k < n && !seen[k], "id %s is out of range or repeated", id);
        seen[k] = true;
    }
    free(seen);
    cJSON_Delete(all);
}

/* Imports big.jsonl into @p data with a 1 MiB map: it stops after some batches. Returns how many it committed. */
static int import_until_map_full(const char *data)
{
    int status = import("big.jsonl", data, "--map-size", "1MiB"), n;

    cr_assert_eq(status, 1, "an import into a full map exited with status %d:\n%s", status, log_text);
    assert_log_has("map is full");
    assert_log_has("run the same command again");
    n = export_count(data);
    cr_assert(n > 0 && n < BIG_N && n % 10 == 0, "%d profiles were committed in batches of 10 out of %d", n, BIG_N);
    return n;
}

Test(import, interrupted_import_resumes_where_it_stopped, .timeout = 30)
{
    char file[E2E_PATH_MAX], data[E2E_PATH_MAX];
    const char *args[] = {"import", "users", file, "--data-dir", data, "--batch", "10", NULL};
    static char mem[LOG_MAX];
    char summary[64];
    MDB_env *env;
    MDB_txn *lock;
    uint64_t until;
    size_t len;
    int first, second, status, rc;

    snprintf(file, sizeof(file), "%s", e2e_path(&ws, "big.jsonl"));
    snprintf(data, sizeof(data), "%s", e2e_path(&ws, "data"));
    write_big("big.jsonl", 0, BIG_N, "w");
    first = import_until_map_full("data");

    /* Hold LMDB's writer lock, so the next run waits once it has opened the file. */
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, 64u << 20), 0);
    cr_assert_eq(mdb_env_open(env, data, 0, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &lock), 0);
    spawn(&bg, args);
    until = e2e_now_ms() + 10000;
    while (e2e_now_ms() < until) {
        if (e2e_file_read(bg.log_path, mem, sizeof(mem), &len) == 0 && strstr(mem, "importing ") != NULL)
            break;
        usleep(10000);
    }
    cr_assert_not_null(strstr(mem, "importing "), "the import did not start:\n%s", mem);
    cr_assert(e2e_daemon_running(&bg), "the import did not wait for the writer lock");
    rc = e2e_daemon_signal(&bg, SIGINT);
    cr_assert_eq(rc, 0);
    mdb_txn_abort(lock);
    mdb_env_close(env);
    status = finish(&bg);
    cr_assert_eq(status, 130, "an interrupted import exited with status %d:\n%s", status, log_text);
    assert_log_has("interrupted (SIGINT)");
    assert_log_has("run the same command again to resume");
    second = export_count("data");
    cr_assert(second >= first && second < BIG_N, "%d profiles after the interruption (%d before)", second, first);

    /* The next run goes on from the checkpoint and imports each remaining record once. */
    status = run(args);
    cr_assert_eq(status, 0, "the resumed import exited with status %d:\n%s", status, log_text);
    assert_log_has("resuming at byte ");
    snprintf(summary, sizeof(summary), "imported %d records (0 rejected)", BIG_N - second);
    assert_log_has(summary);
    assert_all_users("data", BIG_N);

    /* The checkpoint is gone: one more run imports the whole file again. */
    status = run(args);
    cr_assert_eq(status, 0, "exit status %d:\n%s", status, log_text);
    assert_log_lacks("resuming");
    snprintf(summary, sizeof(summary), "imported %d records (0 rejected)", BIG_N);
    assert_log_has(summary);
}

Test(import, changed_file_or_restart_starts_over, .timeout = 30)
{
    char summary[64];
    int status;

    write_big("big.jsonl", 0, BIG_N, "w");
    import_until_map_full("data");
    /* Appending changes the size and the modification time: the checkpoint no longer applies. */
    write_big("big.jsonl", BIG_N, 1, "a");
    status = import("big.jsonl", "data", NULL, NULL);
    cr_assert_eq(status, 0, "exit status %d:\n%s", status, log_text);
    assert_log_has("changed since an earlier import");
    assert_log_has("starting over");
    snprintf(summary, sizeof(summary), "imported %d records (0 rejected)", BIG_N + 1);
    assert_log_has(summary);
    assert_all_users("data", BIG_N + 1);

    write_big("big.jsonl", 0, BIG_N, "w");
    import_until_map_full("data2");
    status = import("big.jsonl", "data2", "--restart", NULL);
    cr_assert_eq(status, 0, "exit status %d:\n%s", status, log_text);
    assert_log_has("--restart: ignoring the checkpoint");
    assert_log_lacks("resuming");
    snprintf(summary, sizeof(summary), "imported %d records (0 rejected)", BIG_N);
    assert_log_has(summary);
    assert_all_users("data2", BIG_N);
}

Test(import, interrupt_while_waiting_on_a_pipe_commits_what_was_read, .timeout = 30)
{
    const char *args[] = {"import", "users", e2e_path(&ws, "fifo"), "--data-dir", e2e_path(&ws, "data"), "--batch",
                          "10",     NULL};
    char line[64];
    uint64_t until;
    int fd, n = 0, status;

    cr_assert_eq(mkfifo(e2e_path(&ws, "fifo"), 0600), 0, "mkfifo: %s", strerror(errno));
    spawn(&bg, args);
    fd = open(e2e_path(&ws, "fifo"), O_WRONLY | O_CLOEXEC); /* returns once the import opened it */
    cr_assert_geq(fd, 0, "open fifo: %s", strerror(errno));
    for (int i = 0; i < 25; i++) {
        int len = snprintf(line, sizeof(line), "{\"id\":\"p%02d\"}\n", i);
        cr_assert_eq(write(fd, line, (size_t)len), len);
    }
    /* Two batches commit at once; the rest when the pipe has been quiet for a second. */
    until = e2e_now_ms() + 10000;
    /* The import may not have created its environment yet: export would refuse. */
    while (e2e_now_ms() < until && access(e2e_path(&ws, "data/data.mdb"), F_OK) != 0)
        usleep(50000);
    while (e2e_now_ms() < until && (n = export_count("data")) < 20)
        usleep(50000);
    cr_assert_geq(n, 20, "only %d profiles were committed", n);
    cr_assert(e2e_daemon_running(&bg), "the import ended while its input was still open");

    cr_assert_eq(e2e_daemon_signal(&bg, SIGINT), 0);
    status = finish(&bg);
    close(fd);
    cr_assert_eq(status, 130, "an interrupted import exited with status %d:\n%s", status, log_text);
    assert_log_has("is a stream: this import cannot be resumed");
    assert_log_has("interrupted (SIGINT): 25 records are committed");
    cr_assert_eq(export_count("data"), 25);
}

Test(import, stdin_imports_without_a_checkpoint, .timeout = 30)
{
    const char *args[] = {"import", "users", "-", "--data-dir", e2e_path(&ws, "data"), NULL};
    int status = run(args); /* stdin is /dev/null */

    cr_assert_eq(status, 0, "exit status %d:\n%s", status, log_text);
    assert_log_has("standard input is a stream: this import cannot be resumed");
    assert_log_has("imported 0 records (0 rejected)");
    cr_assert_eq(export_count("data"), 0);
}

Test(import, usage_errors_exit_2, .timeout = 30)
{
    const char *none[] = {"import", NULL};
    const char *no_file[] = {"import", "users", NULL};
    const char *batch[] = {"import", "users", "f.jsonl", "--batch", "0", NULL};
    const char *format[] = {"import", "users", "f.jsonl", "--format", "xml", NULL};
    const char *unknown[] = {"import", "users", "f.jsonl", "--no-such-option", NULL};
    const char *exp_kind[] = {"export", "campaigns", NULL};
    const char *help[] = {"import", "--help", NULL};
    const char *exp_none[] = {"export", "users", "--data-dir", e2e_path(&ws, "nothing-here"), NULL};
    int status;

    cr_assert_eq(run(none), 2);
    cr_assert_eq(run(no_file), 2);
    cr_assert_eq(run(batch), 2);
    assert_log_has("--batch must be");
    cr_assert_eq(run(format), 2);
    assert_log_has("--format must be jsonl or msgpack");
    cr_assert_eq(run(unknown), 2);
    assert_log_has("--no-such-option");
    cr_assert_eq(run(exp_kind), 2);
    cr_assert_eq(run(help), 0);
    cr_assert_not_null(strstr(out_text, "usage: adsmith import users FILE"), "stdout:\n%s", out_text);
    /* Exporting a directory without data reports it, and creates nothing. */
    status = run(exp_none);
    cr_assert_eq(status, 1, "exit status %d:\n%s", status, log_text);
    assert_log_has("no adsmith data in");
    cr_assert_neq(access(e2e_path(&ws, "nothing-here"), F_OK), 0, "export created the data directory");
}
