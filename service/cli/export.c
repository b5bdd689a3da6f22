/*
 * `adsmith export users`: every stored profile as JSON Lines on stdout, one
 * read transaction (a consistent snapshot), in id order. Each line is the
 * profile's JSON face as GET /v1/users/{id} returns it, so the output can be
 * loaded again with `adsmith import users FILE`.
 */
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adsmith/cli.h"
#include "adsmith/config.h"
#include "adsmith/doc.h"
#include "adsmith/profile.h"
#include "adsmith/store.h"

extern char **environ;

/* A profile at every limit renders well below this (the HTTP handler's bound is 512 KiB). */
#define EXP_RENDER_MAX (1024 * 1024)
#define EXP_STDOUT_BUF (1024 * 1024)
#define EXP_SHOW_ERRORS 20

static void exp_usage(FILE *out)
{
    fprintf(out, "usage: adsmith export users [OPTIONS]\n\n"
                 "Writes every user profile to standard output as JSON Lines: one profile per line,\n"
                 "as GET /v1/users/{id} returns it, in id order, from one consistent snapshot. The\n"
                 "output can be loaded with `adsmith import users FILE`. The daemon may keep running.\n\n"
                 "options:\n"
                 "  --data-dir DIR, --map-size SIZE, --config FILE\n"
                 "      and every other setting of `adsmith serve --help`, from flags, ADSMITH_*\n"
                 "      environment variables or the config file\n");
}

/* Writes every profile of @p txn. 0 when all were written, 1 when some were not (explained). */
static int exp_users(struct store *s, MDB_txn *txn, struct profile *p, char *mem, uint64_t *ret_n)
{
    MDB_cursor *cur;
    MDB_val key, val;
    uint64_t n = 0, bad = 0;
    int rc;

    if ((rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_USERS), &cur)) != 0) {
        fprintf(stderr, "adsmith export: cannot read the users database: %s\n", mdb_strerror(rc));
        return 1;
    }
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        struct docw w;
        struct buf b;
        int prc = prof_decode(val.mv_data, val.mv_size, p);

        if (prc == 0) {
            buf_init(&b, mem, EXP_RENDER_MAX);
            docw_init(&w, DOC_JSON, &b);
            prof_render(p, &w);
            buf_put(&b, "\n", 1);
            if (b.overflow)
                prc = ADS_EINTERNAL;
        }
        if (prc != 0) {
            if (bad++ < EXP_SHOW_ERRORS)
                fprintf(stderr, "adsmith export: user \"%.*s\" is not exported: %s (%s)\n",
                        (int)(key.mv_size > 200 ? 200 : key.mv_size), (const char *)key.mv_data,
                        prc == ADS_EINTERNAL ? "the profile does not fit the output buffer" : ads_err_message(prc),
                        ads_err_name(prc));
            continue;
        }
        if (fwrite(b.base, 1, b.len, stdout) != b.len)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        fprintf(stderr, "adsmith export: reading the users database failed after %" PRIu64 " profiles: %s\n", n,
                mdb_strerror(rc));
        return 1;
    }
    *ret_n = n;
    if (bad > 0) {
        fprintf(stderr, "adsmith export: %" PRIu64 " profiles could not be exported\n", bad);
        return 1;
    }
    return 0;
}

int cli_export(int argc, char **argv)
{
    struct ads_diag d = {{0}, {0}};
    struct store *s = NULL;
    struct profile *p = NULL;
    struct cfg cfg;
    struct stat st;
    MDB_txn *txn = NULL;
    static char obuf[EXP_STDOUT_BUF]; /* stdout's buffer: must outlive every write to stdout */
    char *mem = NULL, *path = NULL;
    uint64_t n = 0;
    int rc, status = 1;

    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        exp_usage(stdout);
        return 0;
    }
    if (argc < 1 || strcmp(argv[0], "users") != 0) {
        fprintf(stderr, "adsmith export: expected `adsmith export users [OPTIONS]`\n");
        return 2;
    }
    if ((rc = cfg_load(&cfg, argc - 1, argv + 1, environ, &d)) != 0) {
        fprintf(stderr, "adsmith export: %s%s%s (see adsmith export --help)\n", d.pointer,
                d.pointer[0] != '\0' ? ": " : "", d.message);
        return 2;
    }
    if (cfg.want_help) {
        exp_usage(stdout);
        cfg_done(&cfg);
        return 0;
    }
    /* store_open() would create an empty environment where there is none. */
    if ((path = malloc(strlen(cfg.data_dir) + sizeof("/data.mdb"))) == NULL) {
        fprintf(stderr, "adsmith export: out of memory\n");
        goto out;
    }
    snprintf(path, strlen(cfg.data_dir) + sizeof("/data.mdb"), "%s/data.mdb", cfg.data_dir);
    if (stat(path, &st) != 0) {
        fprintf(stderr, "adsmith export: no adsmith data in %s (%s: %s)\n", cfg.data_dir, path, strerror(errno));
        goto out;
    }
    if ((p = malloc(sizeof(*p))) == NULL || (mem = malloc(EXP_RENDER_MAX)) == NULL) {
        fprintf(stderr, "adsmith export: out of memory\n");
        goto out;
    }
    setvbuf(stdout, obuf, _IOFBF, EXP_STDOUT_BUF);
    if ((rc = store_open(cfg.data_dir, cfg.map_size, &d, NULL, &s)) != 0) {
        fprintf(stderr, "adsmith export: %s\n", d.message);
        goto out;
    }
    if ((rc = mdb_txn_begin(store_env(s), NULL, MDB_RDONLY, &txn)) != 0) {
        fprintf(stderr, "adsmith export: cannot start a read transaction: %s\n", mdb_strerror(rc));
        goto out;
    }
    status = exp_users(s, txn, p, mem, &n);
    mdb_txn_abort(txn);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "adsmith export: cannot write to standard output: %s\n", strerror(errno));
        status = 1;
    } else if (status == 0) {
        fprintf(stderr, "exported %" PRIu64 " user profiles from %s\n", n, cfg.data_dir);
    }

out:
    store_free(s);
    free(mem);
    free(p);
    free(path);
    cfg_done(&cfg);
    return status;
}
