/* The serving snapshot, the bandit and slot filling (service/variant/pick.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/camps.h"
#include "adsmith/doc.h"
#include "adsmith/variant.h"

static char dir[64];
static struct store *st;
static struct var_rec rec;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/adsmith-vpick-XXXXXX");
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

TestSuite(vpick, .init = setup, .fini = teardown);

static MDB_txn *begin(void)
{
    MDB_txn *txn;
    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, 0, &txn), 0);
    return txn;
}

static void put(const char *campaign, const char *segment, const char *locale, const char *title,
                char id[VAR_ID_LEN + 1])
{
    MDB_txn *txn = begin();

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.campaign, sizeof(rec.campaign), "%s", campaign);
    snprintf(rec.segment, sizeof(rec.segment), "%s", segment);
    snprintf(rec.locale, sizeof(rec.locale), "%s", locale);
    snprintf(rec.title, sizeof(rec.title), "%s", title);
    snprintf(rec.ai_label, sizeof(rec.ai_label), "AI-generated");
    rec.state = VAR_APPROVED;
    cr_assert_eq(var_put(txn, st, &rec, id), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
}

static struct vpick_set *build(void)
{
    struct vpick_set *v;
    MDB_txn *txn;

    cr_assert_eq(store_read_begin(st, &txn), 0);
    cr_assert_eq(vpick_build(txn, st, &v), 0);
    store_read_end(txn);
    return v;
}

static const struct vpick_variant *choose(const struct vpick_set *v, const char *campaign, const char *seg,
                                          const char *locale, struct vpick_rng *rng)
{
    struct cidx_str segs[1] = {{seg, seg != NULL ? strlen(seg) : 0}};
    return vpick_choose(v, campaign, segs, seg != NULL ? 1 : 0, (struct cidx_str){locale, strlen(locale)}, rng, 0,
                        NULL);
}

Test(vpick, beta_draws_have_the_posterior_mean)
{
    struct vpick_rng rng;
    struct vpick_set *v;
    char a[VAR_ID_LEN + 1];
    MDB_txn *txn;
    const struct vpick_variant *x;
    double sum = 0;

    vpick_rng_seed(&rng, 7);
    put("c1", "", "en", "A", a);
    txn = begin();
    /* 3 clicks in 100 impressions: Beta(4, 98), the Gamma path. */
    cr_assert_eq(var_stats_apply(txn, st, "c1", a, EVT_IMPRESSION, 100), 0);
    cr_assert_eq(var_stats_apply(txn, st, "c1", a, EVT_CLICK, 3), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    v = build();
    x = choose(v, "c1", NULL, "en", &rng);
    cr_assert_not_null(x);
    cr_assert_float_eq(x->alpha, 4.0, 1e-9);
    cr_assert_float_eq(x->beta, 98.0, 1e-9);
    for (int i = 0; i < 40000; i++)
        sum += vpick_sample(x, &rng);
    cr_assert_float_eq(sum / 40000, 4.0 / 102.0, 0.002);
    vpick_set_free(v);

    txn = begin();
    /* Large counts: the normal approximation. */
    cr_assert_eq(var_stats_apply(txn, st, "c1", a, EVT_IMPRESSION, 19900), 0);
    cr_assert_eq(var_stats_apply(txn, st, "c1", a, EVT_CLICK, 797), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    v = build();
    x = choose(v, "c1", NULL, "en", &rng);
    sum = 0;
    for (int i = 0; i < 40000; i++)
        sum += vpick_sample(x, &rng);
    cr_assert_float_eq(sum / 40000, 801.0 / 20002.0, 0.001);
    vpick_set_free(v);
}

/*
 * Three variants with true click rates of 2 %, 3 % and 4 %; 20,000 native
 * impressions, each click or not fed back into the stats database; the
 * snapshot rebuilt every 250 impressions (about what the 1 s refresh does at
 * a few hundred bids a second). The best variant must get the large majority
 * of the last 2,000 variant picks, and the control arm its share.
 */
Test(vpick, the_bandit_converges_to_the_better_variant)
{
    static const double ctr[3] = {0.02, 0.03, 0.04};
    char ids[3][VAR_ID_LEN + 1];
    struct vpick_rng rng, world;
    struct vpick_set *v = NULL;
    uint32_t control = 0, late[3] = {0, 0, 0}, late_total = 0;
    const int total = 20000;

    vpick_rng_seed(&rng, 42);
    vpick_rng_seed(&world, 4242);
    put("c1", "", "en", "Two percent", ids[0]);
    put("c1", "", "en", "Three percent", ids[1]);
    put("c1", "", "en", "Four percent", ids[2]);
    MDB_txn *txn = NULL;

    for (int i = 0; i < total; i++) {
        const struct vpick_variant *x;
        bool is_control;
        int k = -1;

        /* The snapshot sees the stats once the batch is committed, as the server's builder does. */
        if (i % 250 == 0) {
            if (txn != NULL)
                cr_assert_eq(mdb_txn_commit(txn), 0);
            vpick_set_free(v);
            v = build();
            txn = begin();
        }
        x = vpick_choose(v, "c1", NULL, 0, (struct cidx_str){"en-US", 5}, &rng, 10, &is_control);
        if (is_control) {
            cr_assert_null(x);
            control++;
            continue;
        }
        cr_assert_not_null(x);
        for (int j = 0; j < 3; j++)
            if (strcmp(x->id, ids[j]) == 0)
                k = j;
        cr_assert_geq(k, 0);
        cr_assert_eq(var_stats_apply(txn, st, "c1", x->id, EVT_IMPRESSION, 1), 0);
        if (vpick_uniform(&world) < ctr[k])
            cr_assert_eq(var_stats_apply(txn, st, "c1", x->id, EVT_CLICK, 1), 0);
        if (i >= total - 2000) {
            late[k]++;
            late_total++;
        }
    }
    cr_assert_eq(mdb_txn_commit(txn), 0);
    vpick_set_free(v);
    cr_log_info("last 2000 picks: 2 %% %u, 3 %% %u, 4 %% %u; control %u of %d", late[0], late[1], late[2], control,
                total);
    cr_assert_gt(late[2], late_total * 7 / 10, "the 4 %% variant got %u of the last %u picks (2 %%: %u, 3 %%: %u)",
                 late[2], late_total, late[0], late[1]);
    cr_assert_lt(late[0], late_total / 10, "the 2 %% variant is all but dropped (%u)", late[0]);
    cr_assert(control > (uint32_t)(total * 85 / 1000) && control < (uint32_t)(total * 115 / 1000), "control arm %u of %d",
              control, total);
}

Test(vpick, control_arm_and_base_without_variants)
{
    struct vpick_rng rng;
    struct vpick_set *v;
    bool is_control = false;

    vpick_rng_seed(&rng, 1);
    cr_assert_null(vpick_choose(NULL, "c1", NULL, 0, (struct cidx_str){"en", 2}, &rng, 10, &is_control));
    cr_assert(!is_control);
    put("c1", "", "en", "A", NULL);
    v = build();
    cr_assert_eq(vpick_set_count(v), 1);
    cr_assert_null(vpick_choose(v, "c2", NULL, 0, (struct cidx_str){"en", 2}, &rng, 0, &is_control));
    cr_assert_null(vpick_choose(v, "c1", NULL, 0, (struct cidx_str){"en", 2}, &rng, 100, &is_control));
    cr_assert(is_control);
    cr_assert_not_null(vpick_choose(v, "c1", NULL, 0, (struct cidx_str){"en", 2}, &rng, 0, &is_control));
    cr_assert(!is_control);
    vpick_set_free(v);
}

Test(vpick, only_approved_variants_serve)
{
    struct vpick_rng rng;
    struct vpick_set *v;
    char id[VAR_ID_LEN + 1];
    MDB_txn *txn;

    vpick_rng_seed(&rng, 1);
    put("c1", "", "en", "A", id);
    txn = begin();
    cr_assert_eq(var_set_state(txn, st, "c1", id, VAR_RETIRED, NULL, 0, 1), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    v = build();
    cr_assert_eq(vpick_set_count(v), 0);
    cr_assert_null(choose(v, "c1", NULL, "en", &rng));
    vpick_set_free(v);
}

static void put_campaign_locales(const char *id, const char *json)
{
    struct camps_rec cr = {.rev = 1};
    msgpack_zone zone;
    msgpack_object doc;
    msgpack_sbuffer sb;
    MDB_txn *txn = begin();

    msgpack_zone_init(&zone, 1024);
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(doc_parse(DOC_JSON, json, strlen(json), &zone, &doc, NULL), 0);
    cr_assert_eq(camps_pack_doc(&doc, &sb), 0);
    snprintf(cr.id, sizeof(cr.id), "%s", id);
    snprintf(cr.advertiser, sizeof(cr.advertiser), "adv");
    snprintf(cr.status, sizeof(cr.status), "active");
    cr.doc = sb.data;
    cr.doc_len = sb.size;
    cr_assert_eq(camps_put(txn, st, &cr, NULL), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&zone);
}

Test(vpick, locale_and_segment_choose_the_group)
{
    struct vpick_rng rng;
    struct vpick_set *v;
    char en[VAR_ID_LEN + 1], de[VAR_ID_LEN + 1], vip[VAR_ID_LEN + 1];
    int vip_seen = 0;

    vpick_rng_seed(&rng, 3);
    put_campaign_locales("c1", "{\"generation\":{\"locales\":[\"de\",\"en\"]}}");
    put("c1", "", "en", "Hello", en);
    put("c1", "", "de", "Hallo", de);
    put("c1", "vip", "en-GB", "Hello, VIP", vip);
    v = build();
    for (int i = 0; i < 200; i++) {
        cr_assert_str_eq(choose(v, "c1", NULL, "de-AT", &rng)->id, de, "same language");
        cr_assert_str_eq(choose(v, "c1", NULL, "EN", &rng)->id, en, "exact, any case; vip needs the segment");
        cr_assert_str_eq(choose(v, "c1", NULL, "fr", &rng)->id, de, "the campaign's first locale");
        cr_assert_str_eq(choose(v, "c1", NULL, "", &rng)->id, de, "no language: the first locale");
        cr_assert_str_eq(choose(v, "c1", "vip", "en-GB", &rng)->id, vip, "exact beats same language");
        vip_seen += strcmp(choose(v, "c1", "vip", "en-US", &rng)->id, vip) == 0;
    }
    cr_assert(vip_seen > 0 && vip_seen < 200, "en and en-GB compete for en-US (%d)", vip_seen);
    vpick_set_free(v);
}

/* ---- slot filling ---- */

static const char slots_json[] =
    "{\"city\":{\"source\":\"attributes.city\",\"max_length\":10,\"fallback\":\"your city\"},"
    "\"dp\":{\"source\":\"context.daypart\",\"max_length\":12,\"fallback\":\"today\"},"
    "\"os\":{\"source\":\"attributes.os\",\"max_length\":12,\"fallback\":\"\"},"
    "\"likes\":{\"source\":\"interests.top\",\"max_length\":16,\"fallback\":\"coffee\"}}";

static void fill(const char *tmpl, const char *city, int64_t now, bool html, char *out, size_t cap)
{
    static struct profile p;
    static char enc[PROF_ENCODED_MAX + 1];
    struct prof_view pv;
    struct buf b, e;
    msgpack_zone zone;
    msgpack_object slots;
    struct vpick_slot_ctx sc = {NULL, NULL, now};

    memset(&p, 0, sizeof(p));
    snprintf(p.id, sizeof(p.id), "u1");
    if (city != NULL) {
        snprintf(p.attr[PROF_CITY], sizeof(p.attr[PROF_CITY]), "%s", city);
        /* Two interests; the stronger one fills interests.top. */
        snprintf(p.interests[0].id, sizeof(p.interests[0].id), "tea");
        p.interests[0].weight = 1.5;
        snprintf(p.interests[1].id, sizeof(p.interests[1].id), "espresso");
        p.interests[1].weight = 4.0;
        p.ninterests = 2;
        buf_init(&e, enc, sizeof(enc));
        cr_assert_eq(prof_encode(&p, &e), 0);
        cr_assert_eq(prof_view_open(e.base, e.len, &pv), 0);
        sc.profile = &pv;
    }
    msgpack_zone_init(&zone, 2048);
    cr_assert_eq(doc_parse(DOC_JSON, slots_json, strlen(slots_json), &zone, &slots, NULL), 0);
    buf_init(&b, out, cap);
    vpick_fill(&b, (struct cidx_str){tmpl, strlen(tmpl)}, &slots, &sc, html);
    buf_put(&b, "", 1);
    cr_assert(!b.overflow);
    msgpack_zone_destroy(&zone);
}

Test(vpick, slots_fill_from_profile_and_context)
{
    char out[256];
    const int64_t day = 1763769600; /* 2025-11-22 00:00 UTC */

    fill("Hi {{city}}, good {{dp}}{{os}}!{{nope}}", "Lyon", day + 8 * 3600, false, out, sizeof(out));
    cr_assert_str_eq(out, "Hi Lyon, good morning!");
    fill("{{dp}}", NULL, day + 13 * 3600, false, out, sizeof(out));
    cr_assert_str_eq(out, "afternoon");
    fill("{{dp}}", NULL, day + 19 * 3600, false, out, sizeof(out));
    cr_assert_str_eq(out, "evening");
    fill("{{dp}}", NULL, day + 23 * 3600, false, out, sizeof(out));
    cr_assert_str_eq(out, "night");
    fill("in {{city}}", NULL, day, false, out, sizeof(out));
    cr_assert_str_eq(out, "in your city", "no profile: the fallback");
    fill("for {{likes}} lovers", "Lyon", day, false, out, sizeof(out));
    cr_assert_str_eq(out, "for espresso lovers", "the strongest interest");
    fill("for {{likes}} lovers", NULL, day, false, out, sizeof(out));
    cr_assert_str_eq(out, "for coffee lovers", "no profile: the fallback");
    fill("in {{city}}", "Llanfairpwllgwyngyll", day, false, out, sizeof(out));
    cr_assert_str_eq(out, "in your city", "longer than max_length: the fallback");
    fill("<p>{{city}}</p> {{unclosed", "A&B<>", day, true, out, sizeof(out));
    cr_assert_str_eq(out, "<p>A&amp;B&lt;&gt;</p> {{unclosed", "values escaped, the template as written");
}
