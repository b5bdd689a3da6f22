/*
 * Unit tests of POST /v1/score's module (service/bid/score.c): a real LMDB
 * store (campaigns and a user written through their own modules), a real
 * index compiled from campaign documents, and the embedded default model
 * (mdl_start() without a file). Expected scores are computed independently
 * through rank.h from the feature texts.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "adsmith/camps.h"
#include "adsmith/cidx.h"
#include "adsmith/ctr.h"
#include "adsmith/doc.h"
#include "adsmith/mdl.h"
#include "adsmith/score.h"
#include "adsmith/store.h"
#include "adsmith/users.h"

#define T0 1767268800 /* 2026-01-01 12:00:00Z */

static char dir[64];
static struct store *st;
static struct mdl *md;
static const struct rank_model *model;
static struct cidx *ix;
static struct score_req *sq;
static struct score_result res;
static msgpack_zone zone;
static MDB_txn *rtxn;
static struct prof_view user_view;

/* ---- fixtures ---- */

static char *read_source(const char *rel)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[512];
    FILE *f;
    char *text;
    long len;

    snprintf(path, sizeof(path), "%s/%s", root != NULL ? root : ".", rel);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    text[len] = '\0';
    fclose(f);
    return text;
}

/* The demo campaign as @p id of @p advertiser with @p status, flight from 0, and targeting member @p tkey = @p tval. */
static char *camp_json(const char *id, const char *advertiser, const char *status, const char *tkey, const char *tval)
{
    char *text = read_source("schemas/examples/campaign-demo.json");
    cJSON *doc = cJSON_Parse(text), *t;
    char *out;

    cr_assert_not_null(doc);
    free(text);
    cJSON_ReplaceItemInObject(doc, "id", cJSON_CreateString(id));
    cJSON_ReplaceItemInObject(doc, "advertiser", cJSON_CreateString(advertiser));
    cJSON_ReplaceItemInObject(doc, "status", cJSON_CreateString(status));
    cJSON_ReplaceItemInObject(doc, "flight", cJSON_Parse("{\"start\":0,\"time_zone\":\"UTC\"}"));
    t = cJSON_GetObjectItemCaseSensitive(doc, "targeting");
    if (tkey != NULL)
        cJSON_AddItemToObject(t, tkey, cJSON_Parse(tval));
    out = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return out;
}

static void parse_json(const char *json, msgpack_object *ret)
{
    struct ads_diag d = {{0}, {0}};

    cr_assert_eq(doc_parse(DOC_JSON, json, strlen(json), &zone, ret, &d), 0, "%s: %s", json, d.message);
}

/* Stores the campaign in LMDB and, when active, adds it to @p b. */
static void add_campaign(MDB_txn *txn, struct cidx_builder *b, const char *json)
{
    struct ads_diag d = {{0}, {0}};
    msgpack_object doc;
    struct camps_rec rec;
    msgpack_sbuffer sb;
    struct cidx_camp *c = NULL;

    parse_json(json, &doc);
    memset(&rec, 0, sizeof(rec));
    camps_rec_from_doc(&doc, &rec);
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(camps_pack_doc(&doc, &sb), 0);
    rec.doc = sb.data;
    rec.doc_len = sb.size;
    rec.rev = 1;
    rec.created_at = rec.updated_at = T0;
    cr_assert_eq(camps_put(txn, st, &rec, NULL), 0);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_eq(cidx_camp_from_doc(&doc, &c, &d), 0, "%s at %s", d.message, d.pointer);
    cr_assert_eq(cidx_builder_add(b, c), 0);
}

static const char user_json[] = "{\"id\":\"u1\",\"aliases\":[{\"source\":\"buyeruid\",\"id\":\"bu-1\"}],"
                                "\"attributes\":{\"country\":\"US\",\"city\":\"Austin\",\"os\":\"iOS\"},"
                                "\"segments\":[{\"id\":\"coffee-lovers\",\"weight\":0.9,\"last_seen\":1767000000}],"
                                "\"interests\":[{\"id\":\"IAB8\",\"weight\":3,\"updated_at\":1767000000}],"
                                "\"recency\":{\"last_seen\":1767268000}}";

static void setup(void)
{
    struct ads_diag d = {{0}, {0}};
    struct cidx_builder *b;
    MDB_txn *txn;
    msgpack_object doc;
    struct profile *p = calloc(1, sizeof(*p));
    bool created;
    MDB_val v;
    char *j;

    cr_assert(msgpack_zone_init(&zone, 1 << 16));
    snprintf(dir, sizeof(dir), "/tmp/adsmith-test-score-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(store_open(dir, 64 << 20, NULL, NULL, &st), 0);
    cr_assert_eq(mdl_start(NULL, 1, &md, &d), 0, "the embedded model: %s", d.message);
    model = mdl_enter(md, 0);
    cr_assert_eq(score_req_new(&sq), 0);

    cr_assert_eq(mdb_txn_begin(store_env(st), NULL, 0, &txn), 0);
    cr_assert_eq(cidx_builder_new(&b), 0);
    add_campaign(txn, b, j = camp_json("c1", "demo", "active", NULL, NULL));
    free(j);
    add_campaign(txn, b, j = camp_json("c2", "acme", "active", "countries", "[\"US\"]"));
    free(j);
    add_campaign(txn, b, j = camp_json("c3", "acme", "paused", NULL, NULL));
    free(j);
    add_campaign(txn, b, j = camp_json("c4", "demo", "active", "segments", "{\"include\":[\"coffee-lovers\"]}"));
    free(j);
    cr_assert_eq(cidx_build(b, T0, &ix), 0);
    cr_assert_eq(cidx_count(ix), 3, "c1, c2 and c4 are active");
    cidx_builder_free(b);

    cr_assert(p != NULL);
    parse_json(user_json, &doc);
    cr_assert_eq(prof_from_doc(&doc, "u1", 2, p, &d), 0, "%s at %s", d.message, d.pointer);
    cr_assert_eq(usr_put(txn, st, p, T0, &d, &created), 0, "%s", d.message);
    free(p);
    cr_assert_eq(mdb_txn_commit(txn), 0);

    cr_assert_eq(store_read_begin(st, &rtxn), 0);
    cr_assert_eq(usr_lookup(rtxn, st, NULL, "u1", 2, &v), 0);
    cr_assert_eq(prof_view_open(v.mv_data, v.mv_size, &user_view), 0);
}

static void teardown(void)
{
    char cmd[128];

    store_read_end(rtxn);
    score_req_free(sq);
    cidx_free(ix);
    mdl_exit(md, 0);
    mdl_stop(md);
    store_free(st);
    msgpack_zone_destroy(&zone);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(score, .init = setup, .fini = teardown);

static bool exists_cb(void *ctx, const char *id)
{
    struct camps_rec rec;

    (void)ctx;
    return camps_get(rtxn, st, id, &rec) == 0;
}

/* Parses @p json; with @p with_user the stored profile u1 is the one the handler would have found. */
static void run(const char *json, bool with_user)
{
    struct ads_diag d = {{0}, {0}};
    msgpack_object doc;
    struct score_env env = {ix, model, with_user ? &user_view : NULL, exists_cb, NULL, T0};

    parse_json(json, &doc);
    cr_assert_eq(score_req_parse(sq, &doc, &d), 0, "%s at %s", d.message, d.pointer);
    cr_assert_eq(score_run(sq, &env, &res), 0);
}

/* The parse error of @p json: its code, and @p pointer. */
static void refused(const char *json, int code, const char *pointer)
{
    struct ads_diag d = {{0}, {0}};
    msgpack_object doc;

    parse_json(json, &doc);
    cr_assert_eq(score_req_parse(sq, &doc, &d), code, "%s", json);
    cr_assert_str_eq(d.pointer, pointer, "%s: %s", json, d.message);
    cr_assert_neq(d.message[0], '\0', "a message a person can act on");
}

/* ---- the expected scores, through rank.h ---- */

static void req_add(struct rank_req *r, enum rank_field f, const char *s)
{
    cr_assert_eq(rank_req_add(r, f, s, strlen(s)), 0);
}

/* The context of CTX below, and the user u1 when @p user. */
static double expected(bool user, const char *campaign, const char *advertiser, const char *creative)
{
    struct rank_req r;
    struct rank_cand c;
    char t[96];

    rank_req_begin(&r, model);
    if (user) {
        req_add(&r, RANK_F_ATTR, "country=US");
        req_add(&r, RANK_F_ATTR, "city=Austin");
        req_add(&r, RANK_F_ATTR, "os=iOS");
        req_add(&r, RANK_F_SEGMENT, "coffee-lovers");
        req_add(&r, RANK_F_INTEREST, "IAB8");
        cr_assert_eq(rank_req_add_num(&r, RANK_F_RECENCY, 800), 0);
    }
    req_add(&r, RANK_F_SITE, "s1");
    req_add(&r, RANK_F_DOMAIN, "news.example.com");
    req_add(&r, RANK_F_CATEGORY, "IAB12");
    req_add(&r, RANK_F_DEVICE, "4");
    req_add(&r, RANK_F_OS, "iOS");
    req_add(&r, RANK_F_COUNTRY, "US");   /* "USA" as alpha-2 */
    req_add(&r, RANK_F_REGION, "US-TX"); /* "TX" with the country */
    req_add(&r, RANK_F_HOUR, "6");       /* 12:00Z at -360 minutes */
    req_add(&r, RANK_F_POS, "1");
    req_add(&r, RANK_F_CONN, "2");
    req_add(&r, RANK_F_FORMAT, creative);
    if (strcmp(creative, "native") != 0)
        req_add(&r, RANK_F_SIZE, "300x250");
    rank_req_commit(&r);
    rank_cand_init(&c);
    cr_assert_eq(rank_cand_add(&c, RANK_F_CAMPAIGN, campaign, strlen(campaign)), 0);
    cr_assert_eq(rank_cand_add(&c, RANK_F_ADVERTISER, advertiser, strlen(advertiser)), 0);
    snprintf(t, sizeof(t), "%s/%s", campaign, creative);
    cr_assert_eq(rank_cand_add(&c, RANK_F_CREATIVE, t, strlen(t)), 0);
    cr_assert_eq(rank_cand_add(&c, RANK_F_CAMP_CATEGORY, "210", 3), 0);
    return rank_req_score(&r, &c);
}

#define CTX                                                                                                            \
    "\"context\":{\"site\":\"s1\",\"domain\":\"news.example.com\",\"category\":[\"IAB12\"],\"device\":4,"              \
    "\"os\":\"iOS\",\"country\":\"USA\",\"region\":\"TX\",\"utcoffset\":-360,\"format\":\"banner\","                   \
    "\"size\":\"300x250\",\"pos\":1,\"conn\":2}"

Test(score, equals_the_model_on_the_same_features)
{
    run("{\"user\":{\"id\":\"u1\"}," CTX ",\"candidates\":[{\"campaign\":\"c1\"},{\"campaign\":\"c2\"},"
        "{\"campaign\":\"c1\",\"creative\":\"native\"},{\"campaign\":\"c4\"}]}",
        true);
    cr_assert_eq(res.n, 4);
    cr_assert(res.user_found);
    cr_assert(!res.contextual);
    cr_assert(res.items[0].scored && res.items[1].scored && res.items[2].scored && res.items[3].scored);
    cr_assert_float_eq(res.items[0].score, expected(true, "c1", "demo", "banner"), 1e-12);
    cr_assert_float_eq(res.items[1].score, expected(true, "c2", "acme", "banner"), 1e-12);
    cr_assert_float_eq(res.items[2].score, expected(true, "c1", "demo", "native"), 1e-12);
    cr_assert_float_eq(res.items[3].score, expected(true, "c4", "demo", "banner"), 1e-12);
    cr_assert_eq(res.items[2].creative, CIDX_CREATIVE_NATIVE);
    for (uint32_t i = 0; i < 4; i++) {
        cr_assert(res.items[i].score > 0 && res.items[i].score < 1);
        cr_assert_eq(res.items[i].reason, SCORE_OK, "candidate %u: %s", i, score_reason_name(res.items[i].reason));
    }
}

Test(score, ranks_follow_scores_and_ties_keep_the_order_sent)
{
    bool seen[6] = {false}; /* by rank, 1..5 */

    run("{" CTX ",\"candidates\":[{\"campaign\":\"c1\"},{\"campaign\":\"c2\"},{\"campaign\":\"c1\"},"
        "{\"campaign\":\"c1\",\"creative\":\"native\"},{\"campaign\":\"c4\"}]}",
        false);
    cr_assert_eq(res.nscored, 5);
    for (uint32_t i = 0; i < 5; i++) {
        cr_assert(res.items[i].rank >= 1 && res.items[i].rank <= 5);
        cr_assert(!seen[res.items[i].rank], "ranks are distinct");
        seen[res.items[i].rank] = true;
        for (uint32_t k = 0; k < 5; k++) {
            if (res.items[k].score > res.items[i].score)
                cr_assert_lt(res.items[k].rank, res.items[i].rank, "a higher score ranks first");
            if (res.items[k].score == res.items[i].score && k < i)
                cr_assert_lt(res.items[k].rank, res.items[i].rank, "a tie keeps the order sent");
        }
    }
    /* Candidates 0 and 2 are the same: equal scores, the first sent ranks first. */
    cr_assert_float_eq(res.items[0].score, res.items[2].score, 0);
    cr_assert_lt(res.items[0].rank, res.items[2].rank);
}

static struct ctr_value tok(uint32_t f, const char *text)
{
    return (struct ctr_value){.field = f, .kind = CTR_CAT, .token = ctr_hash(text, strlen(text), 0), .x = 1};
}

/*
 * The embedded model was trained without profiles (Avazu), so user features
 * move nothing in it: a model trained here on a segment that doubles the
 * click rate shows that the privacy gate is what keeps them out.
 */
static struct rank_model *user_model(void)
{
    const struct rank_train_opts o = {
        .seed = 1, .l1 = 0.1, .l2 = 1, .alpha = 0.1, .epochs = 3, .bits = 10, .folds = 1, .min_count = 1};
    struct ctr_schema *schema = calloc(1, sizeof(*schema));
    struct ctr_row *row = calloc(1, sizeof(*row));
    struct rank_trainer *t = NULL;
    struct rank_model *m = NULL;
    struct ads_diag d = {{0}, {0}};
    char path[64];
    int fd;

    cr_assert(schema != NULL && row != NULL);
    rank_schema_adsmith(schema);
    cr_assert_eq(rank_trainer_new(schema, &o, &t, &d), 0, "%s", d.message);
    for (uint32_t i = 0; i < 800; i++) {
        bool fan = i % 2 == 0;
        row->n = 0;
        row->line = i + 1;
        if (fan)
            row->v[row->n++] = tok(RANK_F_SEGMENT, "coffee-lovers");
        row->v[row->n++] = tok(RANK_F_CAMPAIGN, "c1");
        row->label = (fan ? i % 3 == 0 : i % 9 == 1) ? 1.0f : 0.0f;
        cr_assert_eq(rank_trainer_add(t, row), 0);
    }
    cr_assert_eq(rank_trainer_fit(t, NULL, NULL, &d), 0, "%s", d.message);
    snprintf(path, sizeof(path), "/tmp/adsmith-test-score-model-XXXXXX");
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(rank_trainer_write(t, path, &d), 0, "%s", d.message);
    cr_assert_eq(rank_model_open(path, &m, &d), 0, "%s", d.message);
    unlink(path);
    rank_trainer_free(t);
    free(schema);
    free(row);
    return m;
}

Test(score, gdpr_without_consent_is_contextual_with_a_model_that_weighs_the_profile)
{
    const struct rank_model *embedded = model;
    struct rank_model *um = user_model();
    double with_profile, without;

    model = um;
    run("{\"user\":{\"id\":\"u1\"}," CTX ",\"candidates\":[{\"campaign\":\"c1\"}]}", true);
    with_profile = res.items[0].score;
    run("{" CTX ",\"candidates\":[{\"campaign\":\"c1\"}]}", false);
    without = res.items[0].score;
    cr_assert_gt(with_profile, without * 1.2, "the segment raises the score when the profile may be used");
    run("{\"user\":{\"id\":\"u1\"}," CTX ",\"privacy\":{\"gdpr\":1},\"candidates\":[{\"campaign\":\"c1\"}]}", true);
    cr_assert(res.contextual);
    cr_assert_float_eq(res.items[0].score, without, 0, "gdpr=1 without consent: the profile changes nothing");
    run("{\"user\":{\"id\":\"u1\"}," CTX ",\"privacy\":{\"dnt\":1},\"candidates\":[{\"campaign\":\"c1\"}]}", true);
    cr_assert_float_eq(res.items[0].score, without, 0);
    model = embedded;
    rank_model_close(um);
}

Test(score, gdpr_without_consent_is_contextual)
{
    double with_profile, without;

    run("{\"user\":{\"id\":\"u1\"}," CTX ",\"candidates\":[{\"campaign\":\"c1\"}]}", true);
    with_profile = res.items[0].score;
    run("{" CTX ",\"candidates\":[{\"campaign\":\"c1\"}]}", false);
    without = res.items[0].score;
    cr_assert_float_eq(with_profile, expected(true, "c1", "demo", "banner"), 1e-12);
    cr_assert_float_eq(without, expected(false, "c1", "demo", "banner"), 1e-12);

    run("{\"user\":{\"id\":\"u1\"}," CTX ",\"privacy\":{\"gdpr\":1},\"candidates\":[{\"campaign\":\"c1\"},"
        "{\"campaign\":\"c4\"}]}",
        true);
    cr_assert(res.contextual);
    cr_assert(res.user_found);
    cr_assert_float_eq(res.items[0].score, without, 0, "gdpr=1 without consent: the profile changes nothing");
    /* c4 targets the user's segment: contextual, the segment is not known, so it is not targeted. */
    cr_assert_eq(res.items[1].reason, SCORE_NOT_TARGETED);

    run("{\"user\":{\"id\":\"u1\"}," CTX
        ",\"privacy\":{\"gdpr\":1,\"consent\":\"CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA\"},"
        "\"candidates\":[{\"campaign\":\"c1\"},{\"campaign\":\"c4\"}]}",
        true);
    cr_assert(!res.contextual);
    cr_assert_float_eq(res.items[0].score, with_profile, 0, "with a consent string the profile is used");
    cr_assert_eq(res.items[1].reason, SCORE_OK);

    run("{\"user\":{\"id\":\"u1\"}," CTX
        ",\"privacy\":{\"us_privacy\":\"1YYN\"},\"candidates\":[{\"campaign\":\"c1\"}]}",
        true);
    cr_assert(res.contextual);
    cr_assert_float_eq(res.items[0].score, without, 0);
    run("{\"user\":{\"id\":\"u1\"}," CTX ",\"privacy\":{\"coppa\":1},\"candidates\":[{\"campaign\":\"c1\"}]}", true);
    cr_assert(res.contextual);
    run("{\"user\":{\"id\":\"u1\"}," CTX ",\"privacy\":{\"lmt\":1},\"candidates\":[{\"campaign\":\"c1\"}]}", true);
    cr_assert(res.contextual);
}

Test(score, inline_profile_scores_as_the_stored_one)
{
    char json[2048];
    double stored;

    run("{\"user\":{\"id\":\"u1\"}," CTX ",\"candidates\":[{\"campaign\":\"c1\"}]}", true);
    stored = res.items[0].score;
    snprintf(json, sizeof(json), "{\"user\":{\"profile\":%s}," CTX ",\"candidates\":[{\"campaign\":\"c1\"}]}",
             user_json);
    run(json, false);
    cr_assert(res.user_found);
    cr_assert_float_eq(res.items[0].score, stored, 0);

    /* A profile whose consent says no personalisation is not used. */
    run("{\"user\":{\"profile\":{\"attributes\":{\"country\":\"US\",\"city\":\"Austin\",\"os\":\"iOS\"},"
        "\"consent\":{\"personalization\":false}}}," CTX ",\"candidates\":[{\"campaign\":\"c1\"}]}",
        false);
    cr_assert(res.contextual);
    cr_assert_float_eq(res.items[0].score, expected(false, "c1", "demo", "banner"), 1e-12);
}

Test(score, reasons)
{
    run("{" CTX ",\"candidates\":[{\"campaign\":\"nope\"},{\"campaign\":\"c3\"},"
        "{\"campaign\":\"c1\",\"creative\":\"video\"},{\"campaign\":\"c2\"},{\"campaign\":\"c1\"}]}",
        false);
    cr_assert_eq(res.items[0].reason, SCORE_UNKNOWN_CAMPAIGN);
    cr_assert(!res.items[0].scored);
    cr_assert_eq(res.items[1].reason, SCORE_NOT_ACTIVE, "c3 is stored, paused");
    cr_assert(!res.items[1].scored);
    cr_assert_eq(res.items[2].reason, SCORE_NO_CREATIVE, "the demo campaign has no video");
    cr_assert(!res.items[2].scored);
    cr_assert_eq(res.items[3].reason, SCORE_OK, "c2 targets the US");
    cr_assert_eq(res.items[4].reason, SCORE_OK);
    cr_assert_eq(res.nscored, 2);
    cr_assert_str_eq(score_reason_name(SCORE_UNKNOWN_CAMPAIGN), "unknown_campaign");

    run("{\"context\":{\"country\":\"DE\",\"format\":\"banner\",\"size\":\"300x250\"},"
        "\"candidates\":[{\"campaign\":\"c2\"},{\"campaign\":\"c1\"}]}",
        false);
    cr_assert_eq(res.items[0].reason, SCORE_NOT_TARGETED, "c2 targets the US only");
    cr_assert(res.items[0].scored, "a campaign out of targeting is still scored");
    cr_assert_eq(res.items[1].reason, SCORE_OK);

    /* A banner size the campaign lacks is outside its targeting; without a size the format alone counts. */
    run("{\"context\":{\"size\":\"970x250\"},\"candidates\":[{\"campaign\":\"c1\",\"creative\":\"banner\"}]}", false);
    cr_assert_eq(res.items[0].reason, SCORE_NOT_TARGETED);
    run("{\"candidates\":[{\"campaign\":\"c1\"}]}", false);
    cr_assert_eq(res.items[0].reason, SCORE_OK);
    cr_assert_eq(res.items[0].creative, CIDX_CREATIVE_BANNER, "the first format the campaign has");

    /* Without an exists callback, anything outside the index is unknown. */
    {
        struct score_env env = {ix, model, NULL, NULL, NULL, T0};
        cr_assert_eq(score_run(sq, &env, &res), 0);
        env.model = NULL;
        cr_assert_eq(score_run(sq, &env, &res), ADS_EINVAL);
    }
}

Test(score, errors_point_at_the_field)
{
    refused("[]", ADS_EINVAL, "");
    refused("{}", ADS_EINVAL, "/candidates");
    refused("{\"candidates\":[]}", ADS_EINVAL, "/candidates");
    refused("{\"candidates\":[{\"campaign\":\"a\"},{\"campaign\":\"b\"},{\"campaign\":\"c\"},{\"campaign\":7}]}",
            ADS_EINVAL, "/candidates/3/campaign");
    refused("{\"candidates\":[{\"creative\":\"banner\"}]}", ADS_EINVAL, "/candidates/0/campaign");
    refused("{\"candidates\":[{\"campaign\":\"a\",\"creative\":\"audio\"}]}", ADS_EINVAL, "/candidates/0/creative");
    refused("{\"candidates\":[{\"campaign\":\"a\",\"bid\":1}]}", ADS_EINVAL, "/candidates/0/bid");
    refused("{\"candidates\":[{\"campaign\":\"a\"}],\"extra\":1}", ADS_EINVAL, "/extra");
    refused("{\"candidates\":[{\"campaign\":\"a\"}],\"context\":{\"hour\":24}}", ADS_EINVAL, "/context/hour");
    refused("{\"candidates\":[{\"campaign\":\"a\"}],\"context\":{\"size\":\"300-250\"}}", ADS_EINVAL, "/context/size");
    refused("{\"candidates\":[{\"campaign\":\"a\"}],\"context\":{\"device\":1.5}}", ADS_EINVAL, "/context/device");
    refused("{\"candidates\":[{\"campaign\":\"a\"}],\"context\":{\"a/b\":1}}", ADS_EINVAL, "/context/a~1b");
    refused("{\"candidates\":[{\"campaign\":\"a\"}],\"context\":{\"category\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\","
            "\"7\",\"8\",\"9\"]}}",
            ADS_EINVAL, "/context/category");
    refused("{\"candidates\":[{\"campaign\":\"a\"}],\"privacy\":{\"gdpr\":2}}", ADS_EINVAL, "/privacy/gdpr");
    refused("{\"candidates\":[{\"campaign\":\"a\"}],\"user\":{}}", ADS_EINVAL, "/user");
    refused("{\"candidates\":[{\"campaign\":\"a\"}],\"user\":{\"id\":\"u\",\"profile\":{}}}", ADS_EINVAL, "/user");
    refused("{\"candidates\":[{\"campaign\":\"a\"}],\"user\":{\"profile\":{\"segments\":[{\"id\":5}]}}}", ADS_EINVAL,
            "/user/profile/segments/0/id");
}

Test(score, candidate_limit)
{
    size_t cap = 32 + (SCORE_MAX_CANDIDATES + 1) * 20;
    char *json = malloc(cap);
    size_t len;

    cr_assert_not_null(json);
    /* Exactly the limit: accepted and scored. */
    len = (size_t)snprintf(json, cap, "{\"candidates\":[");
    for (int i = 0; i < SCORE_MAX_CANDIDATES; i++)
        len += (size_t)snprintf(json + len, cap - len, "%s{\"campaign\":\"c%d\"}", i > 0 ? "," : "", i % 5);
    snprintf(json + len, cap - len, "]}");
    run(json, false);
    cr_assert_eq(res.n, SCORE_MAX_CANDIDATES);
    cr_assert_eq(res.nscored, SCORE_MAX_CANDIDATES / 5 * 3, "c1, c2 and c4 of every five");
    cr_assert_eq(res.items[995].reason, SCORE_UNKNOWN_CAMPAIGN, "c0 does not exist");
    cr_assert_eq(res.items[998].reason, SCORE_NOT_ACTIVE, "c3 is paused");
    cr_assert(res.items[999].scored, "c4");
    free(json);
}

Test(score, one_over_the_limit)
{
    size_t cap = 32 + (SCORE_MAX_CANDIDATES + 1) * 20;
    char *json = malloc(cap);
    size_t len;

    cr_assert_not_null(json);
    len = (size_t)snprintf(json, cap, "{\"candidates\":[");
    for (int i = 0; i <= SCORE_MAX_CANDIDATES; i++)
        len += (size_t)snprintf(json + len, cap - len, "%s{\"campaign\":\"c1\"}", i > 0 ? "," : "");
    snprintf(json + len, cap - len, "]}");
    refused(json, ADS_EBODY_TOO_LARGE, "/candidates");
    free(json);
}
