/*
 * bench_read: the bid path's profile read, in nanoseconds.
 *
 *   adsmith-bench-read DIR [N]
 *
 * Fills DIR (a fresh LMDB directory) with N generated profiles (default
 * 1,000,000) unless it already holds them, then times random reads in one
 * thread, interleaving two loops over the same random keys:
 *   baseline  store_read_begin + mdb_get + store_read_end (LMDB alone)
 *   profile   the same, plus prof_view_open, a pass over the interests with
 *             decay, and one frequency-counter lookup (what the bidder does)
 * Prints the median of 5 rounds of each and their ratio. No heap allocation
 * happens inside the timed loops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adsmith/users.h"

#define ROUNDS 5
#define READS 1000000

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void gen_profile(struct profile *p, unsigned i, uint64_t now)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "user-%010u", i);
    snprintf(p->aliases[0].source, sizeof(p->aliases[0].source), "buyeruid");
    snprintf(p->aliases[0].id, sizeof(p->aliases[0].id), "bu-%08x", i * 2654435761u);
    p->naliases = 1;
    snprintf(p->attr[PROF_COUNTRY], sizeof(p->attr[0]), "USA");
    snprintf(p->attr[PROF_DEVICE], sizeof(p->attr[0]), "phone");
    snprintf(p->attr[PROF_OS], sizeof(p->attr[0]), "iOS");
    p->age_band = PROF_AGE_25_34;
    p->nsegments = 5;
    for (unsigned s = 0; s < 5; s++) {
        snprintf(p->segments[s].id, sizeof(p->segments[s].id), "seg-%u", (i + s * 7) % 200);
        p->segments[s].weight = 0.5;
        p->segments[s].at = now;
    }
    p->ninterests = 10;
    for (unsigned s = 0; s < 10; s++) {
        snprintf(p->interests[s].id, sizeof(p->interests[s].id), "iab-%u", (i + s * 13) % 400);
        p->interests[s].weight = 1.0 + s;
        p->interests[s].at = now - s * 3600;
    }
    p->nfreq = 3;
    for (unsigned f = 0; f < 3; f++) {
        snprintf(p->freq[f].campaign, sizeof(p->freq[f].campaign), "camp-%u", (i + f) % 50);
        p->freq[f].lifetime = f + 1;
        p->freq[f].last_at = now;
    }
}

static int fill(struct store *s, unsigned n)
{
    struct profile *p = malloc(sizeof(*p));
    uint64_t now = (uint64_t)time(NULL), t0 = now_ns();
    struct ads_diag d;
    MDB_txn *txn = NULL;
    bool created;
    int rc = 0;

    for (unsigned i = 0; i < n && rc == 0; i++) {
        if (txn == NULL && (rc = mdb_txn_begin(store_env(s), NULL, 0, &txn)) != 0)
            break;
        gen_profile(p, i, now);
        rc = usr_put(txn, s, p, now, &d, &created);
        if (rc == 0 && (i % 50000 == 49999 || i == n - 1)) {
            rc = mdb_txn_commit(txn);
            txn = NULL;
        }
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    free(p);
    fprintf(stderr, "filled %u profiles in %.1f s\n", n, (double)(now_ns() - t0) / 1e9);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, ROUNDS, sizeof(double), cmp_double);
    return v[ROUNDS / 2];
}

static volatile double sink;

/* One timed pass over @p keys; @p decode selects the profile loop. Returns ns per read. */
static double pass(struct store *s, char (*keys)[24], unsigned nkeys, bool decode)
{
    uint64_t t0 = now_ns(), now = (uint64_t)time(NULL);
    double acc = 0;

    for (unsigned k = 0; k < nkeys; k++) {
        MDB_txn *txn;
        MDB_val key = {strlen(keys[k]), keys[k]}, val;
        if (store_read_begin(s, &txn) != 0)
            abort();
        if (mdb_get(txn, store_dbi(s, STORE_DB_USERS), &key, &val) != 0)
            abort();
        if (decode) {
            struct prof_view v;
            struct prof_tag_ref t;
            struct prof_freq f;
            struct mpr it;
            if (prof_view_open(val.mv_data, val.mv_size, &v) != 0)
                abort();
            it = v.interests;
            for (uint32_t i = 0; i < v.ninterests; i++) {
                if (prof_view_next_tag(&it, &t) != 0)
                    abort();
                acc += prof_decay(t.weight, t.at, now, 604800);
            }
            if (prof_view_freq(&v, "camp-7", 6, &f) == 0)
                acc += (double)f.lifetime;
        } else {
            acc += (double)val.mv_size;
        }
        store_read_end(txn);
    }
    sink = acc;
    return (double)(now_ns() - t0) / nkeys;
}

int main(int argc, char **argv)
{
    unsigned n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 1000000;
    static char keys[READS][24];
    double base[ROUNDS], prof[ROUNDS], mb, mp;
    struct store *s;
    struct ads_diag d;
    MDB_stat ms;
    MDB_txn *txn;

    if (argc < 2 || n == 0) {
        fprintf(stderr, "usage: %s DIR [N]\n", argv[0]);
        return 2;
    }
    if (store_open(argv[1], 8ull << 30, &d, NULL, &s) != 0) {
        fprintf(stderr, "%s\n", d.message);
        return 1;
    }
    mdb_txn_begin(store_env(s), NULL, MDB_RDONLY, &txn);
    mdb_stat(txn, store_dbi(s, STORE_DB_USERS), &ms);
    mdb_txn_abort(txn);
    if (ms.ms_entries < n && fill(s, n) != 0) {
        fprintf(stderr, "fill failed\n");
        return 1;
    }
    for (unsigned k = 0; k < READS; k++)
        snprintf(keys[k], sizeof(keys[k]), "user-%010u", (unsigned)(next_rand() % n));
    pass(s, keys, READS, true); /* warm the page cache */
    for (int r = 0; r < ROUNDS; r++) {
        base[r] = pass(s, keys, READS, false);
        prof[r] = pass(s, keys, READS, true);
    }
    mb = median(base);
    mp = median(prof);
    printf("profiles %llu, random reads %d x %d rounds (median)\n",
           (unsigned long long)(ms.ms_entries > n ? ms.ms_entries : n), READS, ROUNDS);
    printf("lmdb get alone:          %7.0f ns\n", mb);
    printf("get + view + decay/freq: %7.0f ns  (%.2fx the LMDB get; decode adds %.0f ns)\n", mp, mp / mb, mp - mb);
    store_free(s);
    return 0;
}
