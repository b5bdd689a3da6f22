#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/users.h"

static char dir[64];
static struct store *st;
static struct profile p, q;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/adsmith-users-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(store_open(dir, 64 << 20, NULL, NULL, &st), 0);
}

static void teardown(void)
{
    char cmd[128];
    store_free(st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(users, .init = setup, .fini = teardown);

static MDB_txn *begin(void)
{
    MDB_txn *txn;
    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, 0, &txn), 0);
    return txn;
}

static void commit(MDB_txn *txn)
{
    cr_assert_eq(mdb_txn_commit(txn), 0);
}

static void mk(struct profile *x, const char *id, const char *buyeruid)
{
    memset(x, 0, sizeof(*x));
    snprintf(x->id, sizeof(x->id), "%s", id);
    if (buyeruid != NULL) {
        snprintf(x->aliases[0].source, sizeof(x->aliases[0].source), "buyeruid");
        snprintf(x->aliases[0].id, sizeof(x->aliases[0].id), "%s", buyeruid);
        x->naliases = 1;
    }
}

static int lookup(const char *source, const char *id, struct profile *ret)
{
    MDB_txn *txn;
    MDB_val val;
    int rc;

    cr_assert_eq(store_read_begin(st, &txn), 0);
    if ((rc = usr_lookup(txn, st, source, id, strlen(id), &val)) == 0)
        cr_assert_eq(prof_decode(val.mv_data, val.mv_size, ret), 0);
    store_read_end(txn);
    return rc;
}

Test(users, put_keeps_created_at_and_resolves_aliases)
{
    struct ads_diag d;
    bool created;
    MDB_txn *txn = begin();

    mk(&p, "u1", "b-1");
    cr_assert_eq(usr_put(txn, st, &p, 100, &d, &created), 0);
    cr_assert(created);
    commit(txn);
    txn = begin();
    mk(&p, "u1", "b-2");
    cr_assert_eq(usr_put(txn, st, &p, 200, &d, &created), 0);
    cr_assert(!created);
    commit(txn);
    cr_assert_eq(lookup(NULL, "u1", &q), 0);
    cr_assert_eq(q.created_at, 100);
    cr_assert_eq(q.updated_at, 200);
    cr_assert_eq(lookup("buyeruid", "b-2", &q), 0);
    cr_assert_str_eq(q.id, "u1");
    cr_assert_eq(lookup("buyeruid", "b-1", &q), ADS_ENOT_FOUND, "a replaced alias is released");
}

Test(users, alias_conflict_writes_nothing)
{
    struct ads_diag d = {{0}, {0}};
    bool created;
    MDB_txn *txn = begin();

    mk(&p, "u1", "b-1");
    cr_assert_eq(usr_put(txn, st, &p, 100, &d, &created), 0);
    commit(txn);
    txn = begin();
    mk(&p, "u2", "b-1");
    cr_assert_eq(usr_put(txn, st, &p, 100, &d, &created), ADS_ECONFLICT);
    cr_assert_str_eq(d.pointer, "/aliases/0");
    commit(txn);
    cr_assert_eq(lookup(NULL, "u2", &q), ADS_ENOT_FOUND);
    cr_assert_eq(lookup("buyeruid", "b-1", &q), 0);
    cr_assert_str_eq(q.id, "u1");
}

Test(users, delete_erases_profile_and_aliases)
{
    struct ads_diag d;
    bool created;
    MDB_txn *txn = begin();
    MDB_stat ms;

    mk(&p, "u1", "b-1");
    cr_assert_eq(usr_put(txn, st, &p, 100, &d, &created), 0);
    commit(txn);
    txn = begin();
    cr_assert_eq(usr_delete(txn, st, "u1", 2), 0);
    cr_assert_eq(usr_delete(txn, st, "u1", 2), ADS_ENOT_FOUND);
    cr_assert_eq(mdb_stat(txn, store_dbi(st, STORE_DB_ALIASES), &ms), 0);
    cr_assert_eq(ms.ms_entries, 0, "no alias is left behind");
    cr_assert_eq(mdb_stat(txn, store_dbi(st, STORE_DB_USERS), &ms), 0);
    cr_assert_eq(ms.ms_entries, 0);
    commit(txn);
}

static struct evt ev(const char *id, const char *user, const char *source, uint64_t ts)
{
    struct evt e;
    memset(&e, 0, sizeof(e));
    e.type = EVT_IMPRESSION;
    snprintf(e.id, sizeof(e.id), "%s", id);
    e.id_len = (uint8_t)strlen(e.id);
    snprintf(e.user, sizeof(e.user), "%s", user);
    snprintf(e.source, sizeof(e.source), "%s", source);
    snprintf(e.campaign, sizeof(e.campaign), "c1");
    e.ts = ts;
    return e;
}

Test(users, ingest_dedups_within_the_window)
{
    struct evt evs[3] = {ev("e1", "u1", "", 1000), ev("e2", "u1", "", 1001), ev("e1", "u1", "", 1002)};
    struct usr_ingest_result res;
    MDB_txn *txn = begin();

    cr_assert_eq(usr_ingest(txn, st, evs, 3, 3600, 600, 2000, &res), 0);
    cr_assert_eq(res.accepted, 2);
    cr_assert_eq(res.duplicates, 1, "a repeated id within one batch counts once");
    cr_assert_eq(usr_ingest(txn, st, evs, 2, 3600, 600, 2100, &res), 0);
    cr_assert_eq(res.duplicates, 2, "a retried batch is not counted twice");
    cr_assert_eq(usr_ingest(txn, st, evs, 1, 3600, 600, 2000 + 600, &res), 0);
    cr_assert_eq(res.accepted, 1, "past the window the id counts again");
    commit(txn);
    cr_assert_eq(lookup(NULL, "u1", &q), 0);
    cr_assert_eq(q.freq[0].lifetime, 3);
    cr_assert_eq(q.created_at, 2000, "the first event created the profile");
}

Test(users, ingest_resolves_aliases)
{
    struct evt evs[2] = {ev("", "b-1", "buyeruid", 1000), ev("", "nobody", "buyeruid", 1000)};
    struct usr_ingest_result res;
    struct ads_diag d;
    bool created;
    MDB_txn *txn = begin();

    mk(&p, "u1", "b-1");
    cr_assert_eq(usr_put(txn, st, &p, 100, &d, &created), 0);
    cr_assert_eq(usr_ingest(txn, st, evs, 2, 3600, 600, 2000, &res), 0);
    cr_assert_eq(res.accepted, 1);
    cr_assert_eq(res.unresolved, 1);
    commit(txn);
    cr_assert_eq(lookup(NULL, "u1", &q), 0);
    cr_assert_eq(q.recency[PROF_LAST_IMPRESSION], 1000);
    cr_assert_eq(q.naliases, 1, "events keep the aliases");
}

Test(users, sweep_expires_old_ids_oldest_first)
{
    struct evt evs[10];
    struct usr_ingest_result res;
    size_t deleted, total = 0;
    MDB_txn *txn = begin();
    MDB_stat ms;
    char id[8];

    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "e%d", i);
        evs[i] = ev(id, "u1", "", 1000);
    }
    cr_assert_eq(usr_ingest(txn, st, evs, 5, 3600, 600, 1000, &res), 0);
    cr_assert_eq(usr_ingest(txn, st, evs + 5, 5, 3600, 600, 1500, &res), 0);
    /* e0 comes back after its window: its record is renewed, not swept. */
    cr_assert_eq(usr_ingest(txn, st, evs, 1, 3600, 600, 1650, &res), 0);
    cr_assert_eq(res.accepted, 1);
    /* At 1700 the five from 1000 have expired; slices of 3 take them in two calls. */
    cr_assert_eq(usr_sweep_events(txn, st, 1700, 600, 3, &deleted), 0);
    cr_assert_eq(deleted, 3);
    total += deleted;
    cr_assert_eq(usr_sweep_events(txn, st, 1700, 600, 3, &deleted), 0);
    cr_assert_eq(deleted, 2, "the sweep stops at the first record still inside the window");
    total += deleted;
    cr_assert_eq(usr_sweep_events(txn, st, 1700, 600, 3, &deleted), 0);
    cr_assert_eq(deleted, 0);
    cr_assert_eq(total, 5);
    cr_assert_eq(mdb_stat(txn, store_dbi(st, STORE_DB_EVENTS), &ms), 0);
    cr_assert_eq(ms.ms_entries, 6, "e5-e9 and the renewed e0 remain");
    cr_assert_eq(usr_ingest(txn, st, evs, 1, 3600, 600, 1700, &res), 0);
    cr_assert_eq(res.duplicates, 1, "the renewed e0 still deduplicates");
    commit(txn);
}

Test(users, read_transaction_is_reused_per_thread)
{
    MDB_txn *a, *b;

    cr_assert_eq(store_read_begin(st, &a), 0);
    store_read_end(a);
    cr_assert_eq(store_read_begin(st, &b), 0);
    store_read_end(b);
    cr_assert_eq(a, b, "the second read renews the first transaction");
}
