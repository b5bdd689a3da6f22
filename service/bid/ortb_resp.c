/*
 * Writing a BidResponse (through docw, so JSON or MessagePack with the same
 * escaping and bounds as every other response), and checking a bid against
 * the request it answers.
 */
#include <errno.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "adsmith/ortb.h"

/* ---- writing ---- */

static bool has(struct cidx_str s)
{
    return s.ptr != NULL && s.len > 0;
}

static void kv_str(struct docw *w, const char *key, struct cidx_str s)
{
    docw_key(w, key);
    docw_str(w, s.ptr, s.len);
}

static void kv_strs(struct docw *w, const char *key, const struct cidx_str *v, uint32_t n)
{
    docw_key(w, key);
    docw_array(w, n);
    for (uint32_t i = 0; i < n; i++)
        docw_str(w, v[i].ptr != NULL ? v[i].ptr : "", v[i].ptr != NULL ? v[i].len : 0);
    docw_array_end(w);
}

static bool bid_ok(const struct ortb_bid *b)
{
    return has(b->id) && has(b->impid) && b->price_micros > 0 && b->mtype >= 0 && b->mtype <= 4 &&
           (b->nadomain == 0 || b->adomain != NULL) && (b->ncat == 0 || b->cat != NULL);
}

static uint32_t bid_members(const struct ortb_bid *b)
{
    uint32_t n = 3; /* id, impid, price */

    n += has(b->adm) + has(b->adid) + has(b->crid) + has(b->cid) + has(b->dealid) + has(b->bundle);
    n += has(b->nurl) + has(b->burl) + has(b->lurl);
    n += (b->nadomain > 0) + (b->ncat > 0) + (b->cattax > 0) + (b->mtype > 0);
    n += (b->w > 0 && b->h > 0) ? 2 : 0;
    n += has(b->model) || has(b->variant);
    return n;
}

/*
 * A price in micro-units as a JSON number: micros / 10^6 as a double prints
 * back exactly (docw's shortest round-trip form) for every price below 2^53
 * micros, which is 9 billion currency units of CPM.
 */
static void write_bid(struct docw *w, const struct ortb_bid *b)
{
    docw_map(w, bid_members(b));
    kv_str(w, "id", b->id);
    kv_str(w, "impid", b->impid);
    docw_key(w, "price");
    docw_double(w, (double)b->price_micros / 1e6);
    if (has(b->adm))
        kv_str(w, "adm", b->adm);
    if (has(b->adid))
        kv_str(w, "adid", b->adid);
    if (b->nadomain > 0)
        kv_strs(w, "adomain", b->adomain, b->nadomain);
    if (has(b->bundle))
        kv_str(w, "bundle", b->bundle);
    if (has(b->cid))
        kv_str(w, "cid", b->cid);
    if (has(b->crid))
        kv_str(w, "crid", b->crid);
    if (b->ncat > 0)
        kv_strs(w, "cat", b->cat, b->ncat);
    if (b->cattax > 0) {
        docw_key(w, "cattax");
        docw_int(w, b->cattax);
    }
    if (has(b->dealid))
        kv_str(w, "dealid", b->dealid);
    if (b->w > 0 && b->h > 0) {
        docw_key(w, "w");
        docw_uint(w, b->w);
        docw_key(w, "h");
        docw_uint(w, b->h);
    }
    if (b->mtype > 0) {
        docw_key(w, "mtype");
        docw_int(w, b->mtype);
    }
    if (has(b->nurl))
        kv_str(w, "nurl", b->nurl);
    if (has(b->burl))
        kv_str(w, "burl", b->burl);
    if (has(b->lurl))
        kv_str(w, "lurl", b->lurl);
    if (has(b->model) || has(b->variant)) {
        docw_key(w, "ext");
        docw_map(w, 1);
        docw_key(w, "adsmith");
        docw_map(w, (uint32_t)(has(b->model) + has(b->variant)));
        if (has(b->model))
            kv_str(w, "model", b->model);
        if (has(b->variant))
            kv_str(w, "variant", b->variant);
        docw_map_end(w);
        docw_map_end(w);
    }
    docw_map_end(w);
}

int ortb_resp_write(const struct ortb_resp *r, enum doc_fmt fmt, struct buf *out)
{
    struct docw w;
    uint32_t n, i, k;
    bool nobid = r->nseatbids == 0;

    if (!has(r->id) || (!nobid && r->seatbids == NULL))
        return ADS_EINVAL;
    for (i = 0; i < r->nseatbids; i++) {
        const struct ortb_seatbid *sb = &r->seatbids[i];
        if (sb->nbids == 0 || sb->bids == NULL)
            return ADS_EINVAL;
        for (k = 0; k < sb->nbids; k++)
            if (!bid_ok(&sb->bids[k]))
                return ADS_EINVAL;
    }

    n = 1 + has(r->bidid) + has(r->cur) + (nobid ? (r->nbr >= 0) : 1);
    docw_init(&w, fmt, out);
    docw_map(&w, n);
    kv_str(&w, "id", r->id);
    if (has(r->bidid))
        kv_str(&w, "bidid", r->bidid);
    if (has(r->cur))
        kv_str(&w, "cur", r->cur);
    if (!nobid) {
        docw_key(&w, "seatbid");
        docw_array(&w, r->nseatbids);
        for (i = 0; i < r->nseatbids; i++) {
            const struct ortb_seatbid *sb = &r->seatbids[i];
            docw_map(&w, 1 + has(sb->seat));
            if (has(sb->seat))
                kv_str(&w, "seat", sb->seat);
            docw_key(&w, "bid");
            docw_array(&w, sb->nbids);
            for (k = 0; k < sb->nbids; k++)
                write_bid(&w, &sb->bids[k]);
            docw_array_end(&w);
            docw_map_end(&w);
        }
        docw_array_end(&w);
    } else if (r->nbr >= 0) {
        docw_key(&w, "nbr");
        docw_int(&w, r->nbr);
    }
    docw_map_end(&w);
    return out->overflow ? -ENOBUFS : 0;
}

int ortb_resp_nobid(struct cidx_str id, int32_t nbr, enum doc_fmt fmt, struct buf *out)
{
    struct ortb_resp r;

    memset(&r, 0, sizeof(r));
    r.id = id;
    r.nbr = nbr;
    return ortb_resp_write(&r, fmt, out);
}

/* ---- checking ---- */

const char *ortb_rule_name(enum ortb_rule r)
{
    static const char *const names[] = {
#define ORTB_RULE_NAME_(name, str) str,
        ORTB_RULE_MAP(ORTB_RULE_NAME_)
#undef ORTB_RULE_NAME_
    };
    if ((unsigned)r >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[r];
}

static bool eq(struct cidx_str a, struct cidx_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool eq_ci(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

static bool in_list(struct cidx_str s, const struct ortb_strs *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (eq(s, l->v[i]))
            return true;
    return false;
}

/* Whether @p dom is @p blocked or a subdomain of it, case-insensitive, one trailing dot ignored on each. */
static bool domain_blocked(struct cidx_str dom, struct cidx_str blocked)
{
    size_t dl = dom.len, bl = blocked.len;

    if (dl > 0 && dom.ptr[dl - 1] == '.')
        dl--;
    if (bl > 0 && blocked.ptr[bl - 1] == '.')
        bl--;
    if (bl == 0 || dl < bl || !eq_ci(dom.ptr + dl - bl, blocked.ptr, bl))
        return false;
    return dl == bl || dom.ptr[dl - bl - 1] == '.';
}

/* Whether category @p cat is @p blocked or, in IAB 1.0's "IABn-m" form, a child of it. */
static bool cat_blocked(struct cidx_str cat, struct cidx_str blocked, int32_t cattax)
{
    if (blocked.len == 0 || cat.len < blocked.len || !eq_ci(cat.ptr, blocked.ptr, blocked.len))
        return false;
    return cat.len == blocked.len || (cattax == 1 && cat.ptr[blocked.len] == '-');
}

__attribute__((format(printf, 4, 5))) static enum ortb_rule violated(struct ads_diag *d, enum ortb_rule r,
                                                                     const char *pointer, const char *fmt, ...)
{
    va_list ap;
    char msg[sizeof(((struct ads_diag *)0)->message)];

    if (d != NULL) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        ads_diag_set(d, ADS_EINVAL, pointer, "%s", msg);
    }
    return r;
}

/* The floor @p micros in @p from converted to @p to, rounded up; false when no rate is known. */
static bool convert_floor(const struct ortb_check_ctx *ctx, int64_t micros, struct cidx_str from, struct cidx_str to,
                          int64_t *ret)
{
    char f[4], t[4];
    double rate, v;

    if (micros == 0 || eq(from, to)) {
        *ret = micros;
        return true;
    }
    if (ctx->fx == NULL || from.len != 3 || to.len != 3)
        return false;
    /* Currency codes are read case-insensitively, as the bid decision reads them. */
    for (int i = 0; i < 3; i++) {
        f[i] = (char)toupper((unsigned char)from.ptr[i]);
        t[i] = (char)toupper((unsigned char)to.ptr[i]);
    }
    f[3] = t[3] = '\0';
    if (ctx->fx(ctx->fx_ctx, f, t, &rate) < 0 || !(rate > 0) || !isfinite(rate))
        return false;
    v = ceil((double)micros * rate - 1e-6);
    *ret = v >= 9.0e18 ? INT64_C(9000000000000000000) : (int64_t)v;
    return true;
}

#define PS(s) (int)((s).len > 64 ? 64 : (s).len), (s).ptr

enum ortb_rule ortb_check_bid(const struct ortb_req *req, const struct ortb_bid *bid, const struct ortb_check_ctx *ctx,
                              struct ads_diag *d)
{
    static const struct cidx_str usd = {"USD", 3};
    const struct ortb_imp *imp;
    const struct ortb_deal *deal = NULL;
    struct cidx_str cur = has(ctx->cur) ? ctx->cur : usd;
    int64_t floor_micros;
    int32_t i;
    uint32_t k, j;

    if (!has(bid->id))
        return violated(d, ORTB_RULE_BID_ID, "/id", "the bid has no id");
    if ((i = ortb_imp_find(req, bid->impid)) < 0)
        return violated(d, ORTB_RULE_IMPID, "/impid", "impid \"%.*s\" names no imp of the request", PS(bid->impid));
    imp = &req->imps[i];
    if (bid->price_micros <= 0)
        return violated(d, ORTB_RULE_PRICE, "/price", "the price must be above 0");

    if (req->cur.n > 0 ? !in_list(cur, &req->cur) : !eq(cur, usd))
        return violated(d, ORTB_RULE_CUR, "/cur", "currency %.*s is not among the request's cur", PS(cur));
    if (req->wseat.n > 0 && !in_list(ctx->seat, &req->wseat))
        return violated(d, ORTB_RULE_SEAT, "/seat", "seat \"%.*s\" is not in the request's wseat", PS(ctx->seat));
    if (has(ctx->seat) && in_list(ctx->seat, &req->bseat))
        return violated(d, ORTB_RULE_SEAT, "/seat", "seat \"%.*s\" is in the request's bseat", PS(ctx->seat));

    if (has(bid->dealid)) {
        for (k = 0; k < imp->ndeals; k++)
            if (eq(bid->dealid, imp->deals[k].id))
                deal = &imp->deals[k];
        if (deal == NULL)
            return violated(d, ORTB_RULE_DEAL, "/dealid", "dealid \"%.*s\" is not a deal of imp \"%.*s\"",
                            PS(bid->dealid), PS(imp->id));
        if (deal->wseat.n > 0 && !in_list(ctx->seat, &deal->wseat))
            return violated(d, ORTB_RULE_DEAL, "/dealid", "deal \"%.*s\" does not allow seat \"%.*s\"", PS(bid->dealid),
                            PS(ctx->seat));
    } else if (imp->private_auction == 1) {
        return violated(d, ORTB_RULE_DEAL, "/dealid", "imp \"%.*s\" is a private auction: a bid needs a dealid",
                        PS(imp->id));
    }

    if (deal != NULL) {
        if (!convert_floor(ctx, deal->bidfloor_micros, deal->bidfloorcur, cur, &floor_micros))
            return violated(d, ORTB_RULE_FLOOR_FX, "/price", "no rate from %.*s to %.*s for the deal's floor",
                            PS(deal->bidfloorcur), PS(cur));
    } else if (!convert_floor(ctx, imp->bidfloor_micros, imp->bidfloorcur, cur, &floor_micros)) {
        return violated(d, ORTB_RULE_FLOOR_FX, "/price", "no rate from %.*s to %.*s for the imp's floor",
                        PS(imp->bidfloorcur), PS(cur));
    }
    if (bid->price_micros < floor_micros)
        return violated(d, ORTB_RULE_FLOOR, "/price", "price %.6f is below the floor %.6f %.*s",
                        (double)bid->price_micros / 1e6, (double)floor_micros / 1e6, PS(cur));

    if ((bid->mtype == 1 && !imp->has_banner) || (bid->mtype == 2 && !imp->has_video) ||
        (bid->mtype == 3 && !imp->has_audio) || (bid->mtype == 4 && !imp->has_native) || bid->mtype < 0 ||
        bid->mtype > 4)
        return violated(d, ORTB_RULE_MTYPE, "/mtype", "imp \"%.*s\" does not offer mtype %d", PS(imp->id),
                        (int)bid->mtype);
    if ((bid->mtype == 1 ||
         (bid->mtype == 0 && imp->has_banner && !imp->has_video && !imp->has_audio && !imp->has_native)) &&
        imp->nformats > 0) {
        bool found = false;
        for (k = 0; k < imp->nformats && !found; k++)
            found = imp->formats[k].w == bid->w && imp->formats[k].h == bid->h;
        if (!found)
            return violated(d, ORTB_RULE_SIZE, "/w", "size %ux%u is not among imp \"%.*s\"'s formats", bid->w, bid->h,
                            PS(imp->id));
    }

    for (k = 0; k < bid->nadomain; k++)
        for (j = 0; j < req->badv.n; j++)
            if (domain_blocked(bid->adomain[k], req->badv.v[j]))
                return violated(d, ORTB_RULE_BADV, "/adomain", "adomain \"%.*s\" is blocked by badv \"%.*s\"",
                                PS(bid->adomain[k]), PS(req->badv.v[j]));
    if ((bid->cattax > 0 ? bid->cattax : 1) == req->cattax) {
        for (k = 0; k < bid->ncat; k++)
            for (j = 0; j < req->bcat.n; j++)
                if (cat_blocked(bid->cat[k], req->bcat.v[j], req->cattax))
                    return violated(d, ORTB_RULE_BCAT, "/cat", "cat \"%.*s\" is blocked by bcat \"%.*s\"",
                                    PS(bid->cat[k]), PS(req->bcat.v[j]));
    }
    if (has(bid->bundle) && in_list(bid->bundle, &req->bapp))
        return violated(d, ORTB_RULE_BAPP, "/bundle", "bundle \"%.*s\" is blocked by bapp", PS(bid->bundle));
    if (req->blocks_truncated)
        return violated(d, ORTB_RULE_BLOCKS_UNKNOWN, "",
                        "a block list of the request is longer than %d entries: no bid can be shown unblocked",
                        ORTB_MAX_BLOCKS);
    return ORTB_RULE_OK;
}
