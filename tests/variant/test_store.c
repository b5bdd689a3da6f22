/* Variant records and statistics against a real LMDB environment (service/variant/store.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/users.h"
#include "adsmith/variant.h"

static char dir[64];
static struct store *st;
static struct var_rec rec, got;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/adsmith-variant-XXXXXX");
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

TestSuite(variant_store, .init = setup, .fini = teardown);

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

static void mk(struct var_rec *r, const char *campaign, const char *segment, const char *locale, const char *title,
               enum var_state state)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->campaign, sizeof(r->campaign), "%s", campaign);
    snprintf(r->segment, sizeof(r->segment), "%s", segment);
    snprintf(r->locale, sizeof(r->locale), "%s", locale);
    snprintf(r->title, sizeof(r->title), "%s", title);
    snprintf(r->description, sizeof(r->description), "More about %s in {{city}}", title);
    snprintf(r->cta, sizeof(r->cta), "Shop now");
    snprintf(r->ai_label, sizeof(r->ai_label), "AI-generated");
    snprintf(r->prov.backend, sizeof(r->prov.backend), "builtin");
    snprintf(r->prov.model, sizeof(r->prov.model), "offline-1");
    snprintf(r->prov.prompt_version, sizeof(r->prov.prompt_version), "p3");
    snprintf(r->prov.request_id, sizeof(r->prov.request_id), "req-1");
    r->prov.prompt_tokens = 321;
    r->prov.completion_tokens = 54;
    r->prov.created_at = 1763800000;
    r->state = (uint8_t)state;
    r->updated_at = 1763800000;
}

static void put_ok(const struct var_rec *r, char id[VAR_ID_LEN + 1])
{
    MDB_txn *txn = begin();
    cr_assert_eq(var_put(txn, st, r, id), 0);
    commit(txn);
}

Test(variant_store, put_get_round_trips_every_field)
{
    char id[VAR_ID_LEN + 1];
    MDB_txn *txn;

    mk(&rec, "c1", "sports", "en-US", "Run further", VAR_PENDING);
    put_ok(&rec, id);
    cr_assert_eq(strlen(id), VAR_ID_LEN);
    cr_assert_eq(store_read_begin(st, &txn), 0);
    cr_assert_eq(var_get(txn, st, "c1", id, &got), 0);
    store_read_end(txn);
    cr_assert_str_eq(got.campaign, "c1");
    cr_assert_str_eq(got.id, id);
    cr_assert_eq(got.state, VAR_PENDING);
    cr_assert_str_eq(got.segment, "sports");
    cr_assert_str_eq(got.locale, "en-US");
    cr_assert_str_eq(got.title, "Run further");
    cr_assert_str_eq(got.description, "More about Run further in {{city}}");
    cr_assert_str_eq(got.cta, "Shop now");
    cr_assert_str_eq(got.ai_label, "AI-generated");
    cr_assert_str_eq(got.prov.backend, "builtin");
    cr_assert_str_eq(got.prov.model, "offline-1");
    cr_assert_str_eq(got.prov.prompt_version, "p3");
    cr_assert_str_eq(got.prov.request_id, "req-1");
    cr_assert_eq(got.prov.prompt_tokens, 321);
    cr_assert_eq(got.prov.completion_tokens, 54);
    cr_assert_eq(got.prov.created_at, 1763800000);
    cr_assert_eq(got.nreasons, 0);
}

Test(variant_store, same_text_is_the_same_id_and_conflicts)
{
    char id[VAR_ID_LEN + 1];
    MDB_txn *txn;

    mk(&rec, "c1", "", "en", "Hello", VAR_PENDING);
    put_ok(&rec, id);
    txn = begin();
    cr_assert_eq(var_put(txn, st, &rec, NULL), ADS_ECONFLICT);
    mdb_txn_abort(txn);
    /* The same text for another campaign is another variant. */
    mk(&rec, "c2", "", "en", "Hello", VAR_PENDING);
    put_ok(&rec, NULL);
}

Test(variant_store, bad_fields_are_refused)
{
    MDB_txn *txn = begin();

    mk(&rec, "c1", "", "en", "", VAR_PENDING);
    cr_assert_eq(var_put(txn, st, &rec, NULL), ADS_EINVAL, "empty title");
    mk(&rec, "c1", "", "", "T", VAR_PENDING);
    cr_assert_eq(var_put(txn, st, &rec, NULL), ADS_EINVAL, "empty locale");
    mk(&rec, "c1", "", "en", "T\nline", VAR_PENDING);
    cr_assert_eq(var_put(txn, st, &rec, NULL), ADS_EINVAL, "control character");
    mk(&rec, "c1", "", "en", "T", VAR_PENDING);
    snprintf(rec.id, sizeof(rec.id), "XYZ");
    cr_assert_eq(var_put(txn, st, &rec, NULL), ADS_EINVAL, "id not hex");
    mk(&rec, "", "", "en", "T", VAR_PENDING);
    cr_assert_eq(var_put(txn, st, &rec, NULL), ADS_EINVAL, "no campaign");
    mk(&rec, "c1", "", "en", "T", VAR_PENDING);
    rec.ai_label[0] = '\0';
    cr_assert_eq(var_put(txn, st, &rec, NULL), ADS_EINVAL, "no AI label");
    mdb_txn_abort(txn);
}

struct seen {
    uint32_t n;
    char ids[64][VAR_ID_LEN + 1];
};

static int collect(void *ctx, const struct var_rec *r)
{
    struct seen *s = ctx;
    cr_assert_str_eq(r->campaign, "c1");
    snprintf(s->ids[s->n++], VAR_ID_LEN + 1, "%s", r->id);
    return 0;
}

Test(variant_store, list_pages_in_id_order_within_the_campaign)
{
    struct seen a = {0}, b = {0};
    uint32_t n;
    MDB_txn *txn;
    char title[32];

    for (int i = 0; i < 7; i++) {
        snprintf(title, sizeof(title), "Title %d", i);
        mk(&rec, "c1", "", "en", title, VAR_PENDING);
        put_ok(&rec, NULL);
    }
    mk(&rec, "c0", "", "en", "other", VAR_PENDING);
    put_ok(&rec, NULL);
    mk(&rec, "c10", "", "en", "other", VAR_PENDING);
    put_ok(&rec, NULL);
    cr_assert_eq(store_read_begin(st, &txn), 0);
    cr_assert_eq(var_list(txn, st, "c1", NULL, 4, collect, &a, &n), 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(var_list(txn, st, "c1", a.ids[3], 4, collect, &b, &n), 0);
    cr_assert_eq(n, 3, "the rest, and nothing of c0 or c10");
    for (int i = 1; i < 4; i++)
        cr_assert(strcmp(a.ids[i - 1], a.ids[i]) < 0);
    cr_assert(strcmp(a.ids[3], b.ids[0]) < 0);
    cr_assert_eq(var_list(txn, st, "c1", NULL, 0, collect, &b, &n), ADS_EINVAL);
    cr_assert_eq(var_list(txn, st, "c1", NULL, VAR_LIST_MAX + 1, collect, &b, &n), ADS_EINVAL);
    store_read_end(txn);
}

Test(variant_store, state_changes_count_and_bump_the_revision)
{
    char id[VAR_ID_LEN + 1];
    const char *reasons[] = {"forbidden_term", "too_long"};
    uint64_t rev0, rev1;
    uint32_t n;
    MDB_txn *txn;

    mk(&rec, "c1", "", "de", "Hallo", VAR_PENDING);
    put_ok(&rec, id);
    mk(&rec, "c1", "", "de", "Guten Tag", VAR_PENDING);
    put_ok(&rec, NULL);
    cr_assert_eq(store_read_begin(st, &txn), 0);
    cr_assert_eq(var_revision(txn, st, &rev0), 0);
    cr_assert_eq(var_count(txn, st, "c1", "", "de", VAR_PENDING, &n), 0);
    cr_assert_eq(n, 2);
    store_read_end(txn);

    txn = begin();
    cr_assert_eq(var_set_state(txn, st, "c1", id, VAR_APPROVED, NULL, 0, 5), 0);
    commit(txn);
    txn = begin();
    cr_assert_eq(var_set_state(txn, st, "c1", "0123456789abcdef", VAR_APPROVED, NULL, 0, 5), ADS_ENOT_FOUND);
    mdb_txn_abort(txn);
    cr_assert_eq(store_read_begin(st, &txn), 0);
    cr_assert_eq(var_revision(txn, st, &rev1), 0);
    cr_assert_gt(rev1, rev0);
    cr_assert_eq(var_count(txn, st, "c1", "", "de", VAR_APPROVED, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(var_count(txn, st, "c1", NULL, NULL, VAR_PENDING, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(var_count(txn, st, "c1", "", "fr", VAR_APPROVED, &n), 0);
    cr_assert_eq(n, 0);
    store_read_end(txn);

    txn = begin();
    cr_assert_eq(var_set_state(txn, st, "c1", id, VAR_REJECTED, reasons, 2, 6), 0);
    commit(txn);
    cr_assert_eq(store_read_begin(st, &txn), 0);
    cr_assert_eq(var_get(txn, st, "c1", id, &got), 0);
    store_read_end(txn);
    cr_assert_eq(got.state, VAR_REJECTED);
    cr_assert_eq(got.nreasons, 2);
    cr_assert_str_eq(got.reasons[1], "too_long");
    cr_assert_eq(got.updated_at, 6);
}

Test(variant_store, live_variants_per_group_are_bounded)
{
    char title[32], id[VAR_ID_LEN + 1], first[VAR_ID_LEN + 1];
    MDB_txn *txn;

    for (int i = 0; i < VAR_MAX_PER_GROUP; i++) {
        snprintf(title, sizeof(title), "T%d", i);
        mk(&rec, "c1", "", "en", title, i % 2 ? VAR_APPROVED : VAR_PENDING);
        put_ok(&rec, i == 0 ? first : NULL);
    }
    txn = begin();
    mk(&rec, "c1", "", "en", "one too many", VAR_PENDING);
    cr_assert_eq(var_put(txn, st, &rec, NULL), ADS_EQUOTA_EXCEEDED);
    /* Another locale, or a rejected record, is not in that group's count. */
    mk(&rec, "c1", "", "fr", "Bonjour", VAR_PENDING);
    cr_assert_eq(var_put(txn, st, &rec, NULL), 0);
    mk(&rec, "c1", "", "en", "rejected at once", VAR_REJECTED);
    cr_assert_eq(var_put(txn, st, &rec, id), 0);
    /* ... but making it live again is. */
    cr_assert_eq(var_set_state(txn, st, "c1", id, VAR_APPROVED, NULL, 0, 1), ADS_EQUOTA_EXCEEDED);
    cr_assert_eq(var_set_state(txn, st, "c1", first, VAR_RETIRED, NULL, 0, 1), 0);
    cr_assert_eq(var_set_state(txn, st, "c1", id, VAR_APPROVED, NULL, 0, 1), 0);
    commit(txn);
}

Test(variant_store, records_per_campaign_are_bounded)
{
    char title[32];
    MDB_txn *txn = begin();
    int i;

    /* Rejected records fill the campaign's quota; live groups have their own. */
    for (i = 0; i < VAR_MAX_PER_CAMPAIGN; i++) {
        snprintf(title, sizeof(title), "R%d", i);
        mk(&rec, "c1", "", "en", title, VAR_REJECTED);
        cr_assert_eq(var_put(txn, st, &rec, NULL), 0, "record %d", i);
    }
    mk(&rec, "c1", "", "en", "past the quota", VAR_REJECTED);
    cr_assert_eq(var_put(txn, st, &rec, NULL), ADS_EQUOTA_EXCEEDED);
    mk(&rec, "c2", "", "en", "another campaign", VAR_REJECTED);
    cr_assert_eq(var_put(txn, st, &rec, NULL), 0);
    commit(txn);
}

Test(variant_store, stats_count_events_of_known_variants_and_base)
{
    char id[VAR_ID_LEN + 1];
    struct var_stats vs;
    MDB_txn *txn;

    mk(&rec, "c1", "", "en", "Hi", VAR_APPROVED);
    put_ok(&rec, id);
    txn = begin();
    cr_assert_eq(var_stats_apply(txn, st, "c1", id, EVT_IMPRESSION, 10), 0);
    cr_assert_eq(var_stats_apply(txn, st, "c1", id, EVT_CLICK, 2), 0);
    cr_assert_eq(var_stats_apply(txn, st, "c1", id, EVT_CONVERSION, 1), 0);
    cr_assert_eq(var_stats_apply(txn, st, "c1", id, EVT_CUSTOM, 1), 0);
    cr_assert_eq(var_stats_apply(txn, st, "c1", VAR_BASE, EVT_IMPRESSION, 3), 0);
    cr_assert_eq(var_stats_apply(txn, st, "c1", "0123456789abcdef", EVT_CLICK, 1), ADS_ENOT_FOUND);
    cr_assert_eq(var_stats_apply(txn, st, "c2", id, EVT_CLICK, 1), ADS_ENOT_FOUND, "not c2's variant");
    cr_assert_eq(var_stats_apply(txn, st, "c1", "made-up", EVT_CLICK, 1), ADS_EINVAL);
    commit(txn);
    cr_assert_eq(store_read_begin(st, &txn), 0);
    cr_assert_eq(var_stats_get(txn, st, "c1", id, &vs), 0);
    cr_assert_eq(vs.impressions, 10);
    cr_assert_eq(vs.clicks, 2);
    cr_assert_eq(vs.conversions, 1);
    cr_assert_eq(var_stats_get(txn, st, "c1", VAR_BASE, &vs), 0);
    cr_assert_eq(vs.impressions, 3);
    cr_assert_eq(vs.clicks, 0);
    store_read_end(txn);
}

Test(variant_store, events_naming_a_variant_update_its_stats)
{
    char id[VAR_ID_LEN + 1];
    struct usr_ingest_result res;
    struct var_stats vs;
    static struct evt e[3];
    MDB_txn *txn;

    mk(&rec, "c1", "", "en", "Hi", VAR_APPROVED);
    put_ok(&rec, id);
    for (int i = 0; i < 3; i++) {
        memset(&e[i], 0, sizeof(e[i]));
        e[i].type = i == 2 ? EVT_CLICK : EVT_IMPRESSION;
        e[i].ts = 1763800000;
        snprintf(e[i].user, sizeof(e[i].user), "u1");
        snprintf(e[i].campaign, sizeof(e[i].campaign), "c1");
        snprintf(e[i].variant, sizeof(e[i].variant), "%s", i == 1 ? "ffffffffffffffff" : id);
    }
    txn = begin();
    cr_assert_eq(usr_ingest(txn, st, e, 3, 86400, 0, 1763800000, &res), 0, "an unknown variant fails nothing");
    commit(txn);
    cr_assert_eq(res.accepted, 3);
    cr_assert_eq(store_read_begin(st, &txn), 0);
    cr_assert_eq(var_stats_get(txn, st, "c1", id, &vs), 0);
    store_read_end(txn);
    cr_assert_eq(vs.impressions, 1);
    cr_assert_eq(vs.clicks, 1);
}
