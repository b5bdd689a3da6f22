#include <criterion/criterion.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adsmith/store.h"

static char dir[64];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof(dir), "/tmp/adsmith-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Opens the environment with plain LMDB, as another tool (or an older build) would. */
static MDB_env *raw_open(void)
{
    MDB_env *env;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0640), 0);
    return env;
}

static void raw_put_meta(const void *data, size_t len)
{
    MDB_env *env = raw_open();
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {6, "schema"}, v = {len, (void *)data};

    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

TestSuite(store, .init = mkdir_tmp, .fini = rm_tmp);

Test(store, creates_every_named_database_and_the_meta_record)
{
    struct store *s;
    struct store_open_info info;
    struct ads_diag d;
    char sub[128];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {6, "schema"}, v;

    snprintf(sub, sizeof(sub), "%s/a/b/c", dir);
    cr_assert_eq(store_open(sub, 8u << 20, &d, &info, &s), 0, "%s", d.message);
    cr_assert_eq(info.created, 1);
    cr_assert_eq(info.schema, STORE_SCHEMA_VERSION);
    store_free(s);

    snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/a/b/c");
    env = raw_open();
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    for (int i = 0; i < STORE_DB_COUNT; i++)
        cr_assert_eq(mdb_dbi_open(txn, store_db_name((enum store_db)i), 0, &dbi), 0, "no database %s",
                     store_db_name((enum store_db)i));
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
    cr_assert_gt(v.mv_size, 20);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    dir[strlen(dir) - 6] = '\0';
}

Test(store, reopen_keeps_data_and_does_not_rewrite_meta)
{
    struct store *s;
    struct store_open_info info;
    MDB_txn *txn;
    MDB_val k = {3, "u:1"}, v = {5, "hello"}, got;

    cr_assert_eq(store_open(dir, 8u << 20, NULL, &info, &s), 0);
    cr_assert_eq(mdb_txn_begin(store_env(s), NULL, 0, &txn), 0);
    cr_assert_eq(mdb_put(txn, store_dbi(s, STORE_DB_USERS), &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    store_free(s);

    cr_assert_eq(store_open(dir, 8u << 20, NULL, &info, &s), 0);
    cr_assert_eq(info.created, 0);
    cr_assert_eq(mdb_txn_begin(store_env(s), NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_get(txn, store_dbi(s, STORE_DB_USERS), &k, &got), 0);
    cr_assert_eq(got.mv_size, 5);
    cr_assert_eq(memcmp(got.mv_data, "hello", 5), 0);
    mdb_txn_abort(txn);
    store_free(s);
}

Test(store, refuses_a_directory_written_by_a_newer_schema_and_leaves_it_alone)
{
    struct store *s = NULL;
    struct ads_diag d;
    msgpack_sbuffer sb;
    msgpack_packer pk;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "format", 6);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_str_with_body(&pk, "schema", 6);
    msgpack_pack_uint32(&pk, 999);
    msgpack_pack_str_with_body(&pk, "writer", 6);
    msgpack_pack_str_with_body(&pk, "adsmith 9.0.0", 13);
    raw_put_meta(sb.data, sb.size);

    cr_assert_eq(store_open(dir, 8u << 20, &d, NULL, &s), ADS_EDATA_TOO_NEW);
    cr_assert_null(s);
    cr_assert_not_null(strstr(d.message, "schema version 999"), "%s", d.message);
    cr_assert_not_null(strstr(d.message, "adsmith 9.0.0"), "%s", d.message);
    cr_assert_not_null(strstr(d.message, "newer adsmith"), "%s", d.message);

    /* A second attempt sees the same record: the refusal changed nothing. */
    cr_assert_eq(store_open(dir, 8u << 20, &d, NULL, &s), ADS_EDATA_TOO_NEW);
    msgpack_sbuffer_destroy(&sb);
}

Test(store, refuses_an_unreadable_meta_record)
{
    struct store *s = NULL;
    struct ads_diag d;

    raw_put_meta("not msgpack \xc1", 13);
    cr_assert_eq(store_open(dir, 8u << 20, &d, NULL, &s), ADS_EDATA_INVALID);
    cr_assert_not_null(strstr(d.message, "unreadable"), "%s", d.message);
}

/* Opens the environment in a child process that then says so on the pipe
 * @p ready and waits until the pipe @p hold is closed by the parent (if hold
 * != NULL), or dies by SIGKILL inside a read transaction (if hold == NULL). */
static pid_t child_open(const int *hold, int ready)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        char c;
        if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 32) != 0 || mdb_env_open(env, dir, 0, 0640) != 0 ||
            mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
            _exit(3);
        if (hold != NULL) {
            mdb_txn_abort(txn);
            close(hold[1]);
            if (write(ready, "r", 1) != 1)
                _exit(5);
            while (read(hold[0], &c, 1) > 0)
                ;
            _exit(0);
        }
        raise(SIGKILL);
        _exit(4);
    }
    return pid;
}

Test(store, refuses_an_environment_of_another_program_and_leaves_it_alone)
{
    struct store *s = NULL;
    struct ads_diag d;
    MDB_env *env = raw_open();
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {3, "key"}, v = {5, "value"};
    MDB_stat st;

    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    cr_assert_eq(store_open(dir, 8u << 20, &d, NULL, &s), ADS_EDATA_INVALID);
    cr_assert_null(s);
    cr_assert_not_null(strstr(d.message, "without adsmith's meta record"), "%s", d.message);
    env = raw_open();
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    cr_assert_eq(mdb_stat(txn, dbi, &st), 0);
    cr_assert_eq(st.ms_entries, 1, "store_open added databases to a foreign environment");
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

Test(store, clears_reader_slots_of_dead_processes)
{
    struct store *s;
    struct store_open_info info;
    pid_t holder, crasher;
    int status, pipefd[2], ready[2];
    char c;

    cr_assert_eq(store_open(dir, 8u << 20, NULL, &info, &s), 0);
    store_free(s);
    /* LMDB resets the reader table when the first process opens the
     * environment, so a stale slot survives only while another process (a
     * second daemon, mdb_stat) keeps it open: the holder plays that part. */
    cr_assert_eq(pipe(pipefd), 0);
    cr_assert_eq(pipe(ready), 0);
    holder = child_open(pipefd, ready[1]);
    close(pipefd[0]);
    cr_assert_eq(read(ready[0], &c, 1), 1, "the holder did not open the environment");
    crasher = child_open(NULL, -1);
    cr_assert_eq(waitpid(crasher, &status, 0), crasher);
    cr_assert(WIFSIGNALED(status), "child exited with %d instead of dying", WEXITSTATUS(status));
    cr_assert_eq(store_open(dir, 8u << 20, NULL, &info, &s), 0);
    cr_assert_eq(info.stale_readers_cleared, 1);
    store_free(s);
    close(pipefd[1]);
    cr_assert_eq(waitpid(holder, &status, 0), holder);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "holder failed: %d", status);
}

Test(store, a_full_map_reports_storage_full)
{
    struct store *s;
    struct store_stats st;
    MDB_txn *txn;
    char val[4000];
    int rc = 0;

    memset(val, 'x', sizeof(val));
    cr_assert_eq(store_open(dir, 1u << 20, NULL, NULL, &s), 0);
    cr_assert_eq(store_stats(s, &st), 0);
    cr_assert_eq(st.map_size, 1u << 20);
    cr_assert_gt(st.map_used, 0);
    cr_assert_lt(st.map_used, st.map_size);
    cr_assert_eq(st.max_readers, STORE_MAX_READERS);
    cr_assert_eq(mdb_txn_begin(store_env(s), NULL, 0, &txn), 0);
    for (int i = 0; i < 10000 && rc == 0; i++) {
        char key[16];
        MDB_val k = {(size_t)snprintf(key, sizeof(key), "k%d", i), key}, v = {sizeof(val), val};
        rc = mdb_put(txn, store_dbi(s, STORE_DB_STATS), &k, &v, 0);
    }
    cr_assert_eq(rc, MDB_MAP_FULL);
    cr_assert_eq(store_err(rc), ADS_ESTORAGE_FULL);
    mdb_txn_abort(txn);
    store_free(s);
}

Test(store, an_impossible_directory_is_a_clear_error)
{
    struct store *s;
    struct ads_diag d;

    cr_assert_eq(store_open("/etc/passwd/data", 8u << 20, &d, NULL, &s), ADS_ESTORAGE);
    cr_assert_not_null(strstr(d.message, "cannot create data directory /etc/passwd/data"), "%s", d.message);
    store_free(NULL);
}
