/*
 * `adsmith keys create|list|revoke`: API keys in a data directory, written
 * straight to LMDB (a running daemon sees a new or revoked key on its next
 * request: it reads keys per request).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adsmith/cli.h"
#include "adsmith/config.h"
#include "adsmith/doc.h"
#include "adsmith/keys.h"
#include "adsmith/store.h"

extern char **environ;

static void keys_usage(FILE *out)
{
    fprintf(out,
            "usage: adsmith keys create --role admin|advertiser|reader [--advertiser ID] [--name TEXT] [OPTIONS]\n"
            "       adsmith keys list [--json] [OPTIONS]\n"
            "       adsmith keys revoke KEY_ID [OPTIONS]\n\n"
            "create prints the new key alone on stdout (it is shown once; only its SHA-256 is stored).\n"
            "An advertiser key needs --advertiser; a reader key may have one (it then reads only that\n"
            "advertiser's campaigns). list shows ids, never keys; revoke takes an id from list.\n\n"
            "OPTIONS are configuration settings, e.g. --data-dir DIR or --config FILE (see adsmith serve --help).\n");
}

struct keys_cmd {
    const char *verb;
    const char *role, *advertiser, *name, *id;
    bool json, help;
    char **rest;
    int nrest;
};

/* 0, or 2 after explaining the usage error. */
static int keys_parse(int argc, char **argv, struct keys_cmd *c)
{
    const char *v;

    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        c->help = argc >= 1;
        return argc >= 1 ? 0 : 2;
    }
    c->verb = argv[0];
    if (strcmp(c->verb, "create") != 0 && strcmp(c->verb, "list") != 0 && strcmp(c->verb, "revoke") != 0) {
        fprintf(stderr, "adsmith keys: unknown action '%s'; expected create, list or revoke\n", c->verb);
        return 2;
    }
    if ((c->rest = calloc((size_t)argc + 1, sizeof(*c->rest))) == NULL) {
        fprintf(stderr, "adsmith keys: out of memory\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if ((v = cli_opt_value(argc, argv, &i, "--role")) != NULL)
            c->role = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--advertiser")) != NULL)
            c->advertiser = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--name")) != NULL)
            c->name = v;
        else if (strcmp(argv[i], "--json") == 0)
            c->json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            c->help = true;
        else if (strcmp(c->verb, "revoke") == 0 && c->id == NULL && argv[i][0] != '-')
            c->id = argv[i];
        else
            c->rest[c->nrest++] = argv[i];
    }
    if (strcmp(c->verb, "create") == 0 && (c->role == NULL || c->role[0] == '\0') && !c->help) {
        fprintf(stderr, "adsmith keys create: --role admin|advertiser|reader is required\n");
        return 2;
    }
    if (strcmp(c->verb, "revoke") == 0 && c->id == NULL && !c->help) {
        fprintf(stderr, "adsmith keys revoke: which key? give its id (adsmith keys list shows them)\n");
        return 2;
    }
    return 0;
}

static int keys_print(const struct keys_info *k, void *arg)
{
    const bool *json = arg;

    if (*json) {
        char mem[1024];
        struct buf b;
        struct docw w;

        buf_init(&b, mem, sizeof(mem));
        docw_init(&w, DOC_JSON, &b);
        docw_map(&w, 6);
        docw_key(&w, "id");
        docw_cstr(&w, k->who.id);
        docw_key(&w, "role");
        docw_cstr(&w, keys_role_name(k->who.role));
        docw_key(&w, "advertiser");
        docw_cstr(&w, k->who.advertiser);
        docw_key(&w, "name");
        docw_cstr(&w, k->name);
        docw_key(&w, "created_at");
        docw_uint(&w, k->created_at);
        docw_key(&w, "revoked_at");
        docw_uint(&w, k->revoked_at);
        docw_map_end(&w);
        printf("%.*s\n", (int)b.len, b.base);
    } else {
        printf("%-12s  %-10s  %-20s  %-8s  %s\n", k->who.id, keys_role_name(k->who.role),
               k->who.advertiser[0] != '\0' ? k->who.advertiser : "-", k->revoked_at != 0 ? "revoked" : "live",
               k->name);
    }
    return 0;
}

int cli_keys(int argc, char **argv)
{
    struct keys_cmd c = {0};
    struct ads_diag d = {{0}, {0}};
    struct cfg cfg = {0};
    struct store *s = NULL;
    MDB_txn *txn = NULL;
    int rc, status = 1;
    bool write;

    if ((rc = keys_parse(argc, argv, &c)) != 0 || c.help) {
        keys_usage(rc != 0 ? stderr : stdout);
        free(c.rest);
        return rc;
    }
    if (cfg_load(&cfg, c.nrest, c.rest, environ, &d) != 0) {
        fprintf(stderr, "adsmith keys: %s%s%s (see adsmith keys --help)\n", d.pointer, d.pointer[0] != '\0' ? ": " : "",
                d.message);
        free(c.rest);
        return 2;
    }
    write = strcmp(c.verb, "list") != 0;
    if ((rc = store_open(cfg.data_dir, cfg.map_size, &d, NULL, &s)) != 0) {
        fprintf(stderr, "adsmith keys: %s\n", d.message);
        goto out;
    }
    if ((rc = mdb_txn_begin(store_env(s), NULL, write ? 0 : MDB_RDONLY, &txn)) != 0) {
        fprintf(stderr, "adsmith keys: cannot start a transaction: %s\n", mdb_strerror(rc));
        goto out;
    }
    if (strcmp(c.verb, "create") == 0) {
        char token[KEYS_TOKEN_LEN + 1];
        struct keys_info info;
        enum keys_role role;

        if (keys_role_parse(c.role, &role) != 0) {
            fprintf(stderr, "adsmith keys create: --role must be admin, advertiser or reader, not '%s'\n", c.role);
            status = 2;
            goto out;
        }
        if ((rc = keys_create(txn, s, role, c.advertiser, c.name, (uint64_t)time(NULL), &d, token, &info)) != 0) {
            fprintf(stderr, "adsmith keys create: %s\n", d.message);
            status = rc == ADS_EINVAL ? 2 : 1;
            goto out;
        }
        if ((rc = mdb_txn_commit(txn)) != 0) {
            txn = NULL;
            fprintf(stderr, "adsmith keys create: cannot commit: %s\n", mdb_strerror(rc));
            goto out;
        }
        txn = NULL;
        printf("%s\n", token);
        fprintf(stderr, "created %s key %s%s%s in %s\n", keys_role_name(role), info.who.id,
                info.who.advertiser[0] != '\0' ? " for advertiser " : "", info.who.advertiser, cfg.data_dir);
        status = 0;
    } else if (strcmp(c.verb, "list") == 0) {
        if (!c.json)
            printf("%-12s  %-10s  %-20s  %-8s  %s\n", "ID", "ROLE", "ADVERTISER", "STATE", "NAME");
        if ((rc = keys_each(txn, s, keys_print, &c.json)) != 0) {
            fprintf(stderr, "adsmith keys list: %s\n", ads_err_message(rc));
            goto out;
        }
        status = 0;
    } else {
        if ((rc = keys_revoke(txn, s, c.id, (uint64_t)time(NULL))) != 0) {
            fprintf(stderr, "adsmith keys revoke: %s\n",
                    rc == ADS_ENOT_FOUND ? "no key has this id (adsmith keys list shows them)" : ads_err_message(rc));
            goto out;
        }
        if ((rc = mdb_txn_commit(txn)) != 0) {
            txn = NULL;
            fprintf(stderr, "adsmith keys revoke: cannot commit: %s\n", mdb_strerror(rc));
            goto out;
        }
        txn = NULL;
        fprintf(stderr, "revoked key %s\n", c.id);
        status = 0;
    }

out:
    if (txn != NULL)
        mdb_txn_abort(txn);
    store_free(s);
    cfg_done(&cfg);
    free(c.rest);
    return status;
}
