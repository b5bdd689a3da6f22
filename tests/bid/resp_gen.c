/*
 * adsmith-test-ortb-resp: writes, for tests/bid/schema_check.js, the
 * BidResponses adsmith gives to each request in a folder (the fixtures), one
 * JSON line per response:
 *   {"fixture": NAME, "kind": "bid"|"nobid", "check": RULE, "response": {...}}
 * Bids come from tests/bid/toybid.c; "check" is ortb_check_bid()'s verdict
 * on the worst bid ("ok" when all pass). A few hand-made responses that
 * stress escaping and optional members follow, under the fixture name "-".
 *
 *   adsmith-test-ortb-resp FIXTURE_DIR
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/ortb.h"
#include "toybid.h"

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
    static char body[1 << 20];
    char *names[256];
    size_t n = 0, i;
    struct ortb_scratch *s;
    struct dirent *e;
    DIR *d;

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
    if (ortb_scratch_new(&s) != 0)
        return 1;

    for (i = 0; i < n; i++) {
        static struct toybid t;
        char path[4096];
        const struct ortb_req *r;
        struct ads_diag diag;
        enum ortb_rule worst = ORTB_RULE_OK;
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
        if (toybid_answer(r, &t) > 0) {
            for (uint32_t k = 0; k < t.seatbid.nbids && worst == ORTB_RULE_OK; k++)
                worst = ortb_check_bid(r, &t.bids[k], &t.check, NULL);
            emit(names[i], "bid", ortb_rule_name(worst), &t.resp);
        }
        t.resp.nseatbids = 0;
        t.resp.nbr = ORTB_NBR_UNMATCHED_USER;
        emit(names[i], "nobid", "ok", &t.resp);
        free(names[i]);
    }
    handmade();
    ortb_scratch_free(s);
    return 0;
}
