/* End to end: what the daemon does when its data directory cannot be opened. */
#include <criterion/criterion.h>
#include <errno.h>
#include <lmdb.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"

static struct e2e_daemon d;

static void setup(void)
{
    cr_assert_eq(e2e_daemon_init(&d), 0, "%s", d.why);
}

/* Runs even when an assertion failed: kills the daemon, removes its directory. */
static void teardown(void)
{
    e2e_daemon_done(&d);
}

TestSuite(storage, .init = setup, .fini = teardown);

static double metric(const char *series)
{
    struct e2e_resp *r = calloc(1, sizeof(*r));
    double v = -1;

    cr_assert_eq(e2e_http_get(&d, E2E_HTTP1, "/metrics", r), 0);
    cr_assert_eq(r->status, 200);
    cr_assert_eq(e2e_metric(r->body, series, &v), 0, "no %s in /metrics", series);
    free(r);
    return v;
}

Test(storage, unavailable_storage_serves_liveness_reports_why_and_recovers, .timeout = 30)
{
    struct e2e_resp *r = calloc(1, sizeof(*r));
    char blocker[E2E_PATH_MAX + 16], data_dir[E2E_PATH_MAX + 32];
    uint64_t until;
    int status;
    FILE *f;

    /* A regular file where the data directory's parent should be: mkdir fails
     * with ENOTDIR, as it would for a path on a volume not mounted yet. */
    snprintf(blocker, sizeof(blocker), "%s/blocker", d.dir);
    snprintf(data_dir, sizeof(data_dir), "%s/data", blocker);
    cr_assert_not_null(f = fopen(blocker, "w"));
    fclose(f);
    const char *args[] = {"--data-dir", data_dir, "--storage-retry-ms", "200", NULL};
    cr_assert_eq(e2e_daemon_start(&d, args), 0, "%s", d.why);

    cr_assert_eq(e2e_http_get(&d, E2E_H2C, "/healthz", r), 0);
    cr_assert_eq(r->status, 200, "liveness must not depend on storage");
    cr_assert_eq(e2e_http_get(&d, E2E_H2C, "/readyz", r), 0);
    e2e_assert_error_json(r, 503, "not_ready");
    cr_assert_not_null(strstr(r->body, "Not a directory"), "readyz does not say why: %s", r->body);
    cr_assert_eq(metric("adsmith_storage_open"), 0);
    cr_assert(e2e_log_has(&d, "storage unavailable"));

    /* Fix the cause: the daemon must notice on its own. */
    cr_assert_eq(unlink(blocker), 0);
    until = e2e_now_ms() + 5000;
    do {
        cr_assert_eq(e2e_http_get(&d, E2E_HTTP1, "/readyz", r), 0);
        if (r->status == 200)
            break;
        usleep(50000);
    } while (e2e_now_ms() < until);
    cr_assert_eq(r->status, 200, "storage did not recover: %s", r->body);
    cr_assert_eq(metric("adsmith_storage_open"), 1);
    cr_assert_gt(metric("adsmith_lmdb_map_used_bytes"), 0);
    cr_assert(e2e_log_has(&d, "storage open"));
    cr_assert_eq(access(data_dir, F_OK), 0, "the data directory was not created");

    cr_assert_eq(e2e_daemon_stop(&d, SIGTERM, 5000, &status), 0);
    cr_assert_eq(status, 0);
    cr_assert_eq(e2e_log_check(&d), 0, "%s", d.why);
    free(r);
}

/* Writes the meta record a future adsmith (schema 999) would leave behind. */
static void write_future_meta(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    MDB_val k = {6, "schema"}, v;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "schema", 6);
    msgpack_pack_uint32(&pk, 999);
    msgpack_pack_str_with_body(&pk, "writer", 6);
    msgpack_pack_str_with_body(&pk, "adsmith 9.9.9", 13);
    v.mv_size = sb.size;
    v.mv_data = sb.data;
    cr_assert_eq(mkdir(dir, 0750), 0);
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    msgpack_sbuffer_destroy(&sb);
}

static size_t meta_size(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {6, "schema"}, v;
    size_t n;

    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    cr_assert_eq(mdb_env_open(env, dir, MDB_RDONLY, 0640), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
    n = v.mv_size;
    cr_assert_null(memmem(v.mv_data, v.mv_size, "adsmith 0.", 10), "the meta record was rewritten");
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

Test(storage, a_directory_from_a_newer_schema_is_refused_and_left_alone, .timeout = 30)
{
    cJSON *rec = NULL;
    size_t before;

    write_future_meta(d.data_dir);
    before = meta_size(d.data_dir);
    cr_assert_eq(e2e_daemon_start(&d, NULL), -ECHILD, "the daemon served a directory it cannot read");
    cr_assert_eq(d.status, 1, "exit status %d", d.status);
    cr_assert_eq(e2e_log_find(&d, "storage refused", &rec), 0, "no 'storage refused' record");
    cr_assert_str_eq(cJSON_GetObjectItem(rec, "error")->valuestring, "data_version_too_new");
    cr_assert_not_null(strstr(cJSON_GetObjectItem(rec, "detail")->valuestring, "schema version 999"));
    cr_assert_not_null(strstr(cJSON_GetObjectItem(rec, "detail")->valuestring, "newer adsmith"));
    cr_assert_eq(meta_size(d.data_dir), before);
    cr_assert_eq(e2e_log_check(&d), 0, "%s", d.why);
    cJSON_Delete(rec);
}

/* The retry thread may find, once the directory appears, data this build can
 * never read: the daemon must then stop with status 1, not wait forever. */
Test(storage, a_refusal_found_by_a_retry_stops_the_daemon_with_status_1, .timeout = 30)
{
    char file[E2E_PATH_MAX + 16], prepared[E2E_PATH_MAX + 16], link[E2E_PATH_MAX + 16], next[E2E_PATH_MAX + 16];
    char prepared_data[E2E_PATH_MAX + 32], data_dir[E2E_PATH_MAX + 32];
    cJSON *rec = NULL;
    int status = -1;
    FILE *f;

    /* data_dir lies under a symbolic link that first points at a regular file
     * (ENOTDIR: storage unavailable), then, swapped atomically by rename(2), at
     * a directory holding a future schema's data. */
    snprintf(file, sizeof(file), "%s/file", d.dir);
    snprintf(prepared, sizeof(prepared), "%s/prepared", d.dir);
    snprintf(prepared_data, sizeof(prepared_data), "%s/data", prepared);
    snprintf(link, sizeof(link), "%s/link", d.dir);
    snprintf(next, sizeof(next), "%s/link.next", d.dir);
    snprintf(data_dir, sizeof(data_dir), "%s/data", link);
    cr_assert_not_null(f = fopen(file, "w"));
    fclose(f);
    cr_assert_eq(symlink(file, link), 0);
    cr_assert_eq(mkdir(prepared, 0750), 0);
    write_future_meta(prepared_data);

    const char *args[] = {"--data-dir", data_dir, "--storage-retry-ms", "200", NULL};
    cr_assert_eq(e2e_daemon_start(&d, args), 0, "%s", d.why);
    cr_assert(e2e_log_has(&d, "storage unavailable"));

    cr_assert_eq(symlink(prepared, next), 0);
    cr_assert_eq(rename(next, link), 0);
    cr_assert_eq(e2e_daemon_wait(&d, 10000, &status), 0, "the daemon kept running on data it cannot read");
    cr_assert_eq(status, 1, "exit status %d, expected 1", status);
    cr_assert_eq(e2e_log_find(&d, "storage refused", &rec), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(rec, "error")->valuestring, "data_version_too_new");
    cJSON_Delete(rec);
    cr_assert(e2e_log_has(&d, "stopped"), "the daemon did not shut down gracefully");
    cr_assert_eq(e2e_log_check(&d), 0, "%s", d.why);
}
