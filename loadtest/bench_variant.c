/*
 * adsmith-bench-variant: the bid path's cost of choosing a native variant
 * (vpick_choose: control arm, locale and segment, Thompson draws) and
 * filling its personal slots (vpick_fill of title, description and cta),
 * per native bid, against the 0.5 us target of issue 7.
 *
 * Measured in the same run, each as the median over rounds of the mean CPU
 * ns of a timed loop (the kinds take turns within each round):
 *   base      filling the base creative's title, description and cta alone
 *             (what every native bid paid before variants);
 *   vN        vpick_choose among N approved variants of the request's
 *             locale + filling the chosen one (N = 1, 5, 20), posteriors
 *             as after a few thousand impressions each (the Gamma path);
 * then for 20 variants: fresh posteriors (Beta(1, 1)), large counts (the
 * normal approximation), and 20 variants spread over other locales and
 * segments with 5 in the request's group; then the choice alone (1, 5, 20)
 * and a variant's fill alone.
 * The store is a real LMDB environment in a temporary directory; the
 * snapshot is built with vpick_build().
 *
 *   adsmith-bench-variant [-r rounds] [-t ms_per_round]
 *
 * Run it pinned to one core: taskset -c 1 adsmith-bench-variant
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/camps.h"
#include "adsmith/doc.h"
#include "adsmith/variant.h"
#include "benchkit.h"

static struct store *st;
static struct vpick_set *set;
static struct vpick_rng rng;
static msgpack_object slots, native;
static struct vpick_slot_ctx sc;
static struct cidx_str segs[3] = {{"sports", 6}, {"outdoor", 7}, {"vip", 3}};
static char out[4096];
static volatile size_t sink;

static const char camp_json[] =
    "{\"creatives\":{\"slots\":{\"city\":{\"source\":\"attributes.city\",\"max_length\":32,"
    "\"fallback\":\"your city\"},\"dp\":{\"source\":\"context.daypart\",\"max_length\":12,\"fallback\":\"today\"}},"
    "\"native\":{\"title\":\"Autumn coffee in {{city}}\",\"description\":\"Our autumn blend is roasted this "
    "{{dp}} and delivered across {{city}} by tomorrow.\",\"cta\":\"Order now\"}},"
    "\"generation\":{\"locales\":[\"en\"]}}";

/* Stores campaign @p id with camp_json as its document (the snapshot compiles its slots from it). */
static void put_campaign(const char *id, const msgpack_object *doc)
{
    struct camps_rec cr = {.rev = 1};
    msgpack_sbuffer sb;
    MDB_txn *txn;

    msgpack_sbuffer_init(&sb);
    snprintf(cr.id, sizeof(cr.id), "%s", id);
    snprintf(cr.advertiser, sizeof(cr.advertiser), "adv");
    snprintf(cr.status, sizeof(cr.status), "active");
    if (camps_pack_doc(doc, &sb) != 0 || mdb_txn_begin(store_env(st), NULL, 0, &txn) != 0)
        exit(1);
    cr.doc = sb.data;
    cr.doc_len = sb.size;
    if (camps_put(txn, st, &cr, NULL) != 0 || mdb_txn_commit(txn) != 0)
        exit(1);
    msgpack_sbuffer_destroy(&sb);
}

static const char *const groups[5] = {"c1", "c5", "c20", "c20f", "c20n"};

static void put_variants(const char *campaign, int n, uint64_t imps, uint64_t clicks, bool spread)
{
    static struct var_rec r;
    MDB_txn *txn;
    char id[VAR_ID_LEN + 1];

    if (mdb_txn_begin(store_env(st), NULL, 0, &txn) != 0)
        exit(1);
    for (int i = 0; i < n; i++) {
        memset(&r, 0, sizeof(r));
        snprintf(r.campaign, sizeof(r.campaign), "%s", campaign);
        snprintf(r.locale, sizeof(r.locale), "%s", spread && i % 4 != 0 ? (i % 4 == 1 ? "de" : "fr") : "en");
        snprintf(r.segment, sizeof(r.segment), "%s", spread && i % 3 == 1 ? "vip" : "");
        snprintf(r.title, sizeof(r.title), "Variant %d: coffee for {{city}}", i);
        snprintf(r.description, sizeof(r.description),
                 "Variant %d: a fresh roast this {{dp}}, delivered across {{city}} by tomorrow.", i);
        snprintf(r.cta, sizeof(r.cta), "Try it");
        snprintf(r.ai_label, sizeof(r.ai_label), "AI-generated");
        r.state = VAR_APPROVED;
        if (var_put(txn, st, &r, id) != 0 ||
            var_stats_apply(txn, st, campaign, id, EVT_IMPRESSION, imps + (uint64_t)i * imps / 50) != 0 ||
            var_stats_apply(txn, st, campaign, id, EVT_CLICK, clicks + (uint64_t)i) != 0) {
            fprintf(stderr, "cannot store the variants\n");
            exit(1);
        }
    }
    if (mdb_txn_commit(txn) != 0)
        exit(1);
}

static void fill3(struct buf *b, struct cidx_str t, struct cidx_str d, struct cidx_str c)
{
    vpick_fill(b, t, &slots, &sc, false);
    vpick_fill(b, d, &slots, &sc, false);
    vpick_fill(b, c, &slots, &sc, false);
}

static void fill3v(struct buf *b, const struct vpick_variant *v)
{
    vpick_fill_variant(b, v, (struct cidx_str){v->title, v->title_len}, &sc, false);
    vpick_fill_variant(b, v, (struct cidx_str){v->description, v->description_len}, &sc, false);
    vpick_fill_variant(b, v, (struct cidx_str){v->cta, v->cta_len}, &sc, false);
}

static struct cidx_str s_of(const msgpack_object *o)
{
    return (struct cidx_str){o->via.str.ptr, o->via.str.size};
}

static int run_once(int which, const char *body, size_t len)
{
    struct buf b;
    const struct vpick_variant *v;
    const char *campaign = body;

    (void)len;
    buf_init(&b, out, sizeof(out));
    if (which == 0) {
        fill3(&b, s_of(doc_map_get(&native, "title")), s_of(doc_map_get(&native, "description")),
              s_of(doc_map_get(&native, "cta")));
    } else {
        campaign = ((const char *const *)(const void *)body)[which - 1];
        v = vpick_choose(set, campaign, segs, 3, (struct cidx_str){"en-US", 5}, &rng, 10, NULL);
        if (v != NULL)
            fill3v(&b, v);
        else
            fill3(&b, s_of(doc_map_get(&native, "title")), s_of(doc_map_get(&native, "description")),
                  s_of(doc_map_get(&native, "cta")));
    }
    if (b.overflow)
        return -1;
    sink += b.len;
    return 0;
}

/* The choice alone, among the groups in @p body (1, 5, 20 variants); kind 3: filling one variant alone. */
static int run_choose(int which, const char *body, size_t len)
{
    const char *const *camps = (const char *const *)(const void *)body;
    const struct vpick_variant *v;
    struct buf b;

    (void)len;
    if (which < 3) {
        v = vpick_choose(set, camps[which], segs, 3, (struct cidx_str){"en-US", 5}, &rng, 10, NULL);
        sink += v != NULL;
        return 0;
    }
    buf_init(&b, out, sizeof(out));
    v = vpick_choose(set, camps[0], segs, 3, (struct cidx_str){"en-US", 5}, &rng, 0, NULL);
    fill3v(&b, v);
    sink += b.len;
    return b.overflow ? -1 : 0;
}

int main(int argc, char **argv)
{
    char dir[64] = "/tmp/adsmith-bench-variant-XXXXXX", cmd[128];
    static struct profile p;
    static char enc[PROF_ENCODED_MAX + 1];
    struct prof_view pv;
    struct buf e;
    msgpack_zone zone;
    msgpack_object doc;
    MDB_txn *txn;
    int rounds = 21, opt;
    double ms = 20, v[4];
    const char *table1[3] = {groups[0], groups[1], groups[2]};
    const char *table2[3] = {groups[3], groups[4], "c20s"};

    while ((opt = getopt(argc, argv, "r:t:")) != -1) {
        if (opt == 'r')
            rounds = (int)strtol(optarg, NULL, 10);
        else if (opt == 't')
            ms = atof(optarg);
        else {
            fprintf(stderr, "usage: adsmith-bench-variant [-r rounds] [-t ms_per_round]\n");
            return 2;
        }
    }
    if (mkdtemp(dir) == NULL || store_open(dir, 256 << 20, NULL, NULL, &st) != 0) {
        fprintf(stderr, "cannot open a store in %s\n", dir);
        return 1;
    }
    msgpack_zone_init(&zone, 4096);
    if (doc_parse(DOC_JSON, camp_json, strlen(camp_json), &zone, &doc, NULL) != 0)
        return 1;
    slots = *doc_map_get(doc_map_get(&doc, "creatives"), "slots");
    native = *doc_map_get(doc_map_get(&doc, "creatives"), "native");
    for (int i = 0; i < 6; i++)
        put_campaign(i < 5 ? groups[i] : "c20s", &doc);
    put_variants("c1", 1, 4000, 120, false);
    put_variants("c5", 5, 4000, 120, false);
    put_variants("c20", 20, 4000, 120, false);
    put_variants("c20f", 20, 0, 0, false);
    put_variants("c20n", 20, 40000, 1200, false);
    put_variants("c20s", 20, 4000, 120, true);
    if (store_read_begin(st, &txn) != 0 || vpick_build(txn, st, &set) != 0) {
        fprintf(stderr, "cannot build the snapshot\n");
        return 1;
    }
    store_read_end(txn);
    vpick_rng_seed(&rng, 12345);

    memset(&p, 0, sizeof(p));
    snprintf(p.id, sizeof(p.id), "u1");
    snprintf(p.attr[PROF_CITY], sizeof(p.attr[PROF_CITY]), "Lyon");
    buf_init(&e, enc, sizeof(enc));
    if (prof_encode(&p, &e) != 0 || prof_view_open(e.base, e.len, &pv) != 0)
        return 1;
    sc = (struct vpick_slot_ctx){&pv, NULL, 1763800000};

    printf("ns per native bid (median of %d rounds, CPU time), control share 10 %%, target 500 ns\n", rounds);
    if (bk_measure(run_once, 4, (const char *)(const void *)table1, 0, rounds, ms, v) != 0)
        return 1;
    printf("%-44s %8.1f\n", "base creative fill alone (baseline)", v[0]);
    printf("%-44s %8.1f  (%+.1f over baseline)\n", "choose + fill, 1 variant", v[1], v[1] - v[0]);
    printf("%-44s %8.1f  (%+.1f)\n", "choose + fill, 5 variants", v[2], v[2] - v[0]);
    printf("%-44s %8.1f  (%+.1f)\n", "choose + fill, 20 variants", v[3], v[3] - v[0]);
    if (bk_measure(run_once, 4, (const char *)(const void *)table2, 0, rounds, ms, v) != 0)
        return 1;
    printf("%-44s %8.1f\n", "base creative fill alone (baseline)", v[0]);
    printf("%-44s %8.1f  (%+.1f)\n", "choose + fill, 20 fresh variants (Beta(1,1))", v[1], v[1] - v[0]);
    printf("%-44s %8.1f  (%+.1f)\n", "choose + fill, 20 variants, normal approx.", v[2], v[2] - v[0]);
    printf("%-44s %8.1f  (%+.1f)\n", "choose + fill, 20 spread, 5 in the group", v[3], v[3] - v[0]);
    if (bk_measure(run_choose, 4, (const char *)(const void *)table1, 0, rounds, ms, v) != 0)
        return 1;
    printf("%-44s %8.1f\n", "choose alone, 1 variant", v[0]);
    printf("%-44s %8.1f\n", "choose alone, 5 variants", v[1]);
    printf("%-44s %8.1f\n", "choose alone, 20 variants", v[2]);
    printf("%-44s %8.1f\n", "variant fill alone (compiled slots)", v[3]);

    vpick_set_free(set);
    msgpack_zone_destroy(&zone);
    store_free(st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? (int)(sink & 0) : 1;
}
