#include "toybid.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *code;
    double usd; /* USD per unit */
} rates[] = {{"USD", 1.0}, {"EUR", 1.08}, {"GBP", 1.27}, {"JPY", 0.0067}};

static double usd_per(const char *code)
{
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
        if (strcmp(rates[i].code, code) == 0)
            return rates[i].usd;
    return 0;
}

int toybid_fx(void *ctx, const char *from, const char *to, double *ret_rate)
{
    double f = usd_per(from), t = usd_per(to);

    (void)ctx;
    if (f == 0 || t == 0)
        return -1;
    *ret_rate = f / t;
    return 0;
}

static bool same(struct cidx_str a, const char *b)
{
    return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static bool listed(const struct ortb_strs *l, struct cidx_str s)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->v[i].len == s.len && memcmp(l->v[i].ptr, s.ptr, s.len) == 0)
            return true;
    return false;
}

static struct cidx_str lit(const char *s)
{
    struct cidx_str r = {s, strlen(s)};
    return r;
}

/* The floor in the response currency, rounded up generously; -1 when it cannot be converted. */
static int64_t toy_floor(int64_t micros, struct cidx_str from, struct cidx_str to)
{
    char f[4] = {0}, t[4] = {0};
    double rate;

    if (micros == 0)
        return 0;
    if (from.len != 3 || to.len != 3)
        return -1;
    memcpy(f, from.ptr, 3);
    memcpy(t, to.ptr, 3);
    if (toybid_fx(NULL, f, t, &rate) < 0)
        return -1;
    if ((double)micros * rate > 1e15)
        return -1; /* far beyond any price the toy bids */
    return (int64_t)ceil((double)micros * rate) + 1;
}

uint32_t toybid_answer(const struct ortb_req *req, struct toybid *t)
{
    struct cidx_str cur = {NULL, 0}, seat = lit("adsmith");
    uint32_t i, k, n = 0;

    memset(t, 0, sizeof(*t));
    t->resp.id = req->id;
    t->resp.nbr = ORTB_NBR_UNKNOWN;
    t->check.fx = toybid_fx;

    if (req->cur.n == 0) {
        cur = lit("USD");
    } else {
        for (i = 0; i < req->cur.n && cur.len == 0; i++) {
            char c[4] = {0};
            double r;
            if (req->cur.v[i].len == 3) {
                memcpy(c, req->cur.v[i].ptr, 3);
                if (toybid_fx(NULL, c, "USD", &r) == 0)
                    cur = req->cur.v[i];
            }
        }
    }
    if (req->wseat.n > 0 && !listed(&req->wseat, seat))
        seat = req->wseat.v[0];
    if (cur.len == 0 || listed(&req->bseat, seat) || req->blocks_truncated)
        return 0;
    t->check.cur = cur;
    t->check.seat = seat;
    t->adomain = lit("adsmith-demo.example");

    for (i = 0; i < req->nimps; i++) {
        const struct ortb_imp *imp = &req->imps[i];
        const struct ortb_deal *deal = NULL;
        struct ortb_bid *b = &t->bids[n];
        int64_t floor;

        for (k = 0; k < imp->ndeals && deal == NULL; k++)
            if (imp->deals[k].wseat.n == 0 || listed(&imp->deals[k].wseat, seat))
                deal = &imp->deals[k];
        if (deal == NULL && imp->private_auction == 1)
            continue;
        floor = deal != NULL ? toy_floor(deal->bidfloor_micros, deal->bidfloorcur, cur)
                             : toy_floor(imp->bidfloor_micros, imp->bidfloorcur, cur);
        if (floor < 0 || floor > INT64_C(1000000000000))
            continue;

        memset(b, 0, sizeof(*b));
        if (imp->has_banner) {
            b->mtype = 1;
            if (imp->nformats > 0) {
                b->w = imp->formats[0].w;
                b->h = imp->formats[0].h;
            }
        } else if (imp->has_video) {
            b->mtype = 2;
            b->w = imp->video_size.w;
            b->h = imp->video_size.h;
        } else if (imp->has_native) {
            b->mtype = 4;
        } else if (imp->has_audio) {
            b->mtype = 3;
        } else {
            continue;
        }
        snprintf(t->bid_ids[n], sizeof(t->bid_ids[n]), "b%u", i);
        b->id = lit(t->bid_ids[n]);
        b->impid = imp->id;
        b->price_micros = floor + 10000;
        b->adm = lit("<a href=\"https://adsmith-demo.example/?q=1&r=2\">Caf\xc3\xa9 \"deals\"\n</a>");
        b->crid = lit("creative-1");
        b->cid = lit("campaign-1");
        if (req->badv.n == 0) {
            b->adomain = &t->adomain;
            b->nadomain = 1;
        }
        if (deal != NULL)
            b->dealid = deal->id;
        b->nurl = lit("https://bid.adsmith.example/v1/notice/win?a=" ORTB_MACRO_AUCTION_ID
                      "&i=" ORTB_MACRO_AUCTION_IMP_ID "&p=" ORTB_MACRO_AUCTION_PRICE);
        b->burl =
            lit("https://bid.adsmith.example/v1/notice/bill?a=" ORTB_MACRO_AUCTION_ID "&p=" ORTB_MACRO_AUCTION_PRICE);
        b->lurl = lit("https://bid.adsmith.example/v1/notice/loss?a=" ORTB_MACRO_AUCTION_ID
                      "&r=" ORTB_MACRO_AUCTION_LOSS "&m=" ORTB_MACRO_AUCTION_MIN_TO_WIN);
        n++;
    }
    if (n == 0)
        return 0;
    t->seatbid.seat = seat;
    t->seatbid.bids = t->bids;
    t->seatbid.nbids = n;
    t->resp.bidid = lit("adsmith-resp-1");
    t->resp.cur = same(cur, "USD") ? (struct cidx_str){NULL, 0} : cur;
    t->resp.seatbids = &t->seatbid;
    t->resp.nseatbids = 1;
    return n;
}
