/*
 * `adsmith usage CAMPAIGN [--from T] [--to T] [--group G] [--csv] [OPTIONS]`:
 * the report of GET /v1/campaigns/{id}/usage (usage.h), read straight from
 * the data directory in a read transaction (a running daemon is not
 * disturbed: LMDB readers never block its writer).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adsmith/camps.h"
#include "adsmith/cli.h"
#include "adsmith/config.h"
#include "adsmith/usage.h"

extern char **environ;

static void usage_usage(FILE *out)
{
    fprintf(out,
            "usage: adsmith usage CAMPAIGN [--from UNIX] [--to UNIX] [--group day,model,kind|variant] [--csv] "
            "[OPTIONS]\n\n"
            "Prints what the campaign spent (money and tokens of the current token period), the token report\n"
            "between --from (default: the period's start) and --to (default: now) grouped as asked (default:\n"
            "day), and what the tokens bought: results of the generated variants next to the control arm,\n"
            "tokens per click and per conversion, CTR uplift with a 95%% interval. JSON, or with --csv the\n"
            "report's rows as CSV. The same document as GET /v1/campaigns/{id}/usage.\n\n"
            "OPTIONS are configuration settings, e.g. --data-dir DIR or --config FILE (see adsmith serve --help).\n"
            "exit status: 0 printed, 1 not found or unreadable, 2 usage error\n");
}

static bool usage_num(const char *s, int64_t *ret)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (*end != '\0' || end == s || v < 0)
        return false;
    *ret = v;
    return true;
}

int cli_usage(int argc, char **argv)
{
    struct usage_query uq = {.from = -1, .to = -1, .fmt = DOC_JSON};
    struct ads_diag d = {{0}, {0}};
    struct cfg cfg = {0};
    struct camps_rec rec;
    struct store *s = NULL;
    MDB_txn *txn = NULL;
    const char *id = NULL, *v;
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    char *mem = NULL;
    struct buf b;
    int nrest = 0, rc, status = 1;

    if (rest == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage_usage(stdout);
            free(rest);
            return 0;
        } else if ((v = cli_opt_value(argc, argv, &i, "--from")) != NULL) {
            if (!usage_num(v, &uq.from))
                goto bad;
        } else if ((v = cli_opt_value(argc, argv, &i, "--to")) != NULL) {
            if (!usage_num(v, &uq.to))
                goto bad;
        } else if ((v = cli_opt_value(argc, argv, &i, "--group")) != NULL) {
            if (usage_parse_group(v, &uq.group) != 0)
                goto bad;
        } else if (strcmp(argv[i], "--csv") == 0) {
            uq.csv = true;
        } else if (id == NULL && argv[i][0] != '-') {
            id = argv[i];
        } else {
            rest[nrest++] = argv[i];
        }
    }
    if (id == NULL)
        goto bad;
    if (cfg_load(&cfg, nrest, rest, environ, &d) != 0) {
        fprintf(stderr, "adsmith usage: %s%s%s\n", d.pointer, d.pointer[0] != '\0' ? ": " : "", d.message);
        status = 2;
        goto out;
    }
    if ((mem = malloc(USAGE_OUT_MAX)) == NULL)
        goto out;
    if ((rc = store_open(cfg.data_dir, cfg.map_size, &d, NULL, &s)) != 0) {
        fprintf(stderr, "adsmith usage: %s\n", d.message);
        goto out;
    }
    if ((rc = mdb_txn_begin(store_env(s), NULL, MDB_RDONLY, &txn)) != 0) {
        fprintf(stderr, "adsmith usage: cannot start a transaction: %s\n", mdb_strerror(rc));
        goto out;
    }
    if ((rc = camps_get(txn, s, id, &rec)) != 0) {
        fprintf(stderr, "adsmith usage: campaign %s: %s\n", id, ads_err_message(rc));
        goto out;
    }
    buf_init(&b, mem, USAGE_OUT_MAX);
    if ((rc = usage_report(txn, s, &rec, &uq, (int64_t)time(NULL), &b, &d)) != 0) {
        fprintf(stderr, "adsmith usage: %s\n", rc == ADS_EINVAL ? d.message : ads_err_message(rc));
        status = rc == ADS_EINVAL ? 2 : 1;
        goto out;
    }
    fwrite(b.base, 1, b.len, stdout);
    if (!uq.csv)
        putchar('\n');
    status = 0;
out:
    if (txn != NULL)
        mdb_txn_abort(txn);
    store_free(s);
    cfg_done(&cfg);
    free(mem);
    free(rest);
    return status;
bad:
    usage_usage(stderr);
    free(rest);
    return 2;
}
