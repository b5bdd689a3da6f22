/*
 * adsmith-test-ortb-resp: writes, for tests/bid/schema_check.js, the
 * BidResponses adsmith gives to each request in a folder (the fixtures), one
 * JSON line per response:
 *   {"fixture": NAME, "kind": "bid"|"nobid", "check": RULE, "response": {...}}
 * Bids come from the real decision (bid_decide, then bid_answer) over an
 * index of schemas/examples' campaigns and RESP_GEN_CAMPAIGNS generated ones
 * (tests/bid/bidfix.c), with a model trained on the spot and the rates
 * BIDFIX_FX (schema_check.js uses the same); "check" is ortb_check_bid()'s
 * verdict on the worst bid ("ok" when all pass). A few hand-made responses that
 * stress escaping and optional members follow, under the fixture name "-".
 *
 *   adsmith-test-ortb-resp FIXTURE_DIR
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/bid.h"
#include "adsmith/ortb.h"
#include "bidfix.h"

#define RESP_GEN_CAMPAIGNS 200
#define RESP_GEN_EXAMPLES 3

static const char *const examples[RESP_GEN_EXAMPLES] = {"campaign-demo.json", "campaign-game-ip.json",
                                                        "campaign-retail.json"};

/* The campaigns' documents, by id, for bid_answer(). */
static struct {
    char id[CIDX_ID_MAX + 1];
    char *json;
} docs[RESP_GEN_CAMPAIGNS + RESP_GEN_EXAMPLES];
static size_t ndocs;

static int doc_of(void *ctx, const char *id, msgpack_zone *zone, msgpack_object *ret)
{
    (void)ctx;
    for (size_t i = 0; i < ndocs; i++)
        if (strcmp(docs[i].id, id) == 0)
            return doc_parse(DOC_JSON, docs[i].json, strlen(docs[i].json), zone, ret, NULL);
    return ADS_ENOT_FOUND;
}

/* Adds campaign @p json to @p b and keeps its document; exits on failure. */
static void add(struct cidx_builder *b, char *json, const char *what)
{
    struct ads_diag diag = {{0}, {0}};
    msgpack_zone zone;
    msgpack_object doc;
    struct cidx_camp *c;

    if (json == NULL || !msgpack_zone_init(&zone, 8192) ||
        doc_parse(DOC_JSON, json, strlen(json), &zone, &doc, &diag) != 0 || cidx_camp_from_doc(&doc, &c, &diag) != 0) {
        fprintf(stderr, "%s: %s at %s\n", what, diag.message, diag.pointer);
        exit(1);
    }
    snprintf(docs[ndocs].id, sizeof(docs[ndocs].id), "%s", c->id);
    docs[ndocs++].json = json;
    msgpack_zone_destroy(&zone);
    if (cidx_builder_add(b, c) != 0)
        exit(1);
}

static struct cidx *build_index(void)
{
    struct cidx_builder *b;
    struct cidx *ix;

    if (cidx_builder_new(&b) != 0)
        exit(1);
    for (size_t i = 0; i < RESP_GEN_EXAMPLES; i++)
        add(b, bidfix_example(examples[i]), examples[i]);
    for (uint32_t i = 0; i < RESP_GEN_CAMPAIGNS; i++)
        add(b, bidfix_campaign(i), "generated campaign");
    if (cidx_build(b, BIDFIX_T0, &ix) != 0)
        exit(1);
    cidx_builder_free(b);
    return ix;
}

static char out[1 << 20];

static void emit(const char *name, const char *kind, const char *check, const struct ortb_resp *r)
{
    struct buf b;
    int rc;

    buf_init(&b, out, sizeof(out));
    rc = ortb_resp_write(r, DOC_JSON, &b);
    if (rc != 0) {
        fprintf(stderr, "%s: ortb_resp_write: %d\n", name, rc);
        exit(1);
    }
    printf("{\"fixture\":\"%s\",\"kind\":\"%s\",\"check\":\"%s\",\"response\":%s}\n", name, kind, check, b.base);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

#define S(lit) ((struct cidx_str){(lit), sizeof(lit) - 1})

static void handmade(void)
{
    static const char adm[] = "<script>var s = \"\\u2028 \xe2\x80\xa8 \x7f \x1f\";</script>\xf0\x9f\x98\x80 \xff bad";
    struct cidx_str adomain[2] = {S("a.example"), S("b.example")}, cat[2] = {S("IAB1-1"), S("596")};
    struct ortb_bid bids[2];
    struct ortb_seatbid sb[2];
    struct ortb_resp r;

    memset(bids, 0, sizeof(bids));
    bids[0].id = S("x1");
    bids[0].impid = S("imp-\"quoted\"/\\");
    bids[0].price_micros = 123456789;
    bids[0].adm = (struct cidx_str){adm, sizeof(adm) - 1};
    bids[0].adid = S("ad-1");
    bids[0].adomain = adomain;
    bids[0].nadomain = 2;
    bids[0].bundle = S("com.example");
    bids[0].cat = cat;
    bids[0].ncat = 2;
    bids[0].cattax = 7;
    bids[0].w = 65535;
    bids[0].h = 1;
    bids[0].mtype = 4;
    bids[0].dealid = S("deal-1");
    bids[0].nurl = S("https://n.example/w?p=" ORTB_MACRO_AUCTION_PRICE "&c=" ORTB_MACRO_AUCTION_CURRENCY);
    bids[1].id = S("x2");
    bids[1].impid = S("2");
    bids[1].price_micros = 1;
    memset(sb, 0, sizeof(sb));
    sb[0].seat = S("seat-1");
    sb[0].bids = &bids[0];
    sb[0].nbids = 1;
    sb[1].bids = &bids[1];
    sb[1].nbids = 1;
    memset(&r, 0, sizeof(r));
    r.id = S("hand-made");
    r.bidid = S("resp");
    r.cur = S("JPY");
    r.seatbids = sb;
    r.nseatbids = 2;
    emit("-", "bid", "ok", &r);
    memset(&r, 0, sizeof(r));
    r.id = S("hand-made-nobid");
    r.nbr = ORTB_NBR_TECHNICAL;
    emit("-", "nobid", "ok", &r);
}

int main(int argc, char **argv)
{
    static char body[1 << 20], mem[1 << 20];
    static const uint8_t key[BID_KEY_BYTES] = {7};
    static struct bid_result res;
    static struct bid_answer ans;
    char *names[256];
    size_t n = 0, i;
    struct ortb_scratch *s;
    struct bid_scratch *bs;
    struct rank_model *model;
    struct bid_fx fx;
    struct cidx *ix;
    struct dirent *e;
    DIR *d;
    const struct bid_opts opts = {85, 50000000, 10, 0.05, 0};
    uint32_t answered = 0;

    if (argc != 2 || (d = opendir(argv[1])) == NULL) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    while ((e = readdir(d)) != NULL && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_name);
    if (ortb_scratch_new(&s) != 0 || bid_scratch_new(&bs) != 0 || bid_fx_parse(BIDFIX_FX, &fx, NULL) != 0)
        return 1;
    if (bidfix_model(&model) != 0) {
        fprintf(stderr, "cannot train the test model\n");
        return 1;
    }
    ix = build_index();

    for (i = 0; i < n; i++) {
        char path[4096];
        const struct ortb_req *r;
        struct ads_diag diag;
        enum ortb_rule worst = ORTB_RULE_OK;
        struct bid_env env = {ix, model, NULL, NULL, NULL, &fx, &opts, BIDFIX_T0};
        struct buf b;
        msgpack_zone zone;
        size_t len;
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]);
        if ((f = fopen(path, "rb")) == NULL)
            return 1;
        len = fread(body, 1, sizeof(body), f);
        fclose(f);
        if (ortb_parse(s, DOC_JSON, body, len, &r, &diag, NULL) != 0) {
            fprintf(stderr, "%s: %s at %s\n", names[i], diag.message, diag.pointer);
            return 1;
        }
        if (bid_decide(bs, r, &env, &res) != 0) {
            fprintf(stderr, "%s: bid_decide failed\n", names[i]);
            return 1;
        }
        buf_init(&b, mem, sizeof(mem));
        if (!msgpack_zone_init(&zone, 8192))
            return 1;
        {
            struct bid_answer_ctx actx = {key, "https://bid.example.com", doc_of, NULL, &zone, NULL, BIDFIX_T0, &b};
            if (bid_answer(r, &res, &actx, &ans) != 0) {
                fprintf(stderr, "%s: bid_answer failed\n", names[i]);
                return 1;
            }
        }
        if (ans.resp.nseatbids > 0) {
            struct ortb_check_ctx chk = {ans.resp.cur, ans.seatbid.seat, bid_fx_rate, &fx};
            for (uint32_t k = 0; k < ans.seatbid.nbids && worst == ORTB_RULE_OK; k++)
                worst = ortb_check_bid(r, &ans.bids[k], &chk, &diag);
            if (worst != ORTB_RULE_OK)
                fprintf(stderr, "%s: %s\n", names[i], diag.message);
            emit(names[i], "bid", ortb_rule_name(worst), &ans.resp);
            answered++;
        }
        msgpack_zone_destroy(&zone);
        ans.resp.nseatbids = 0;
        ans.resp.nbr = res.npicks == 0 ? res.nbr : ORTB_NBR_UNMATCHED_USER;
        if (ans.resp.nbr < 0)
            ans.resp.nbr = ORTB_NBR_UNKNOWN;
        emit(names[i], "nobid", "ok", &ans.resp);
        free(names[i]);
    }
    fprintf(stderr, "resp_gen: %u of %zu fixtures answered with bids\n", answered, n);
    handmade();
    cidx_free(ix);
    rank_model_close(model);
    bid_scratch_free(bs);
    ortb_scratch_free(s);
    for (i = 0; i < ndocs; i++)
        free(docs[i].json);
    return 0;
}
