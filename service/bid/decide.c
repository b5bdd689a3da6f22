/* The bid decision (bid.h): eligibility, blocks, deals, floors, value, pacing and price. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/bid.h"
#include "adsmith/ctr.h"

/* A campaign currency's conversions for one request, looked up once instead of per candidate. */
struct cur_conv {
    char code[4];
    bool known;  /* the table converts it to the response currency */
    double rate; /* to the response currency */
    int64_t cap; /* opts->max_cpm_micros in this currency; -1: none or unknown */
};

#define CUR_CONV_MAX 8 /* currencies remembered per request; others are looked up each time */

struct bid_scratch {
    uint64_t words[CIDX_WORDS_MAX];
    struct cidx_str segments[CIDX_Q_MAX_SEGMENTS];
    struct cur_conv conv[CUR_CONV_MAX];
    uint32_t nconv;
};

int bid_scratch_new(struct bid_scratch **ret)
{
    struct bid_scratch *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return ADS_ENOMEM;
    *ret = s;
    return 0;
}

void bid_scratch_free(struct bid_scratch *s)
{
    free(s);
}

/* ---- currencies ---- */

int bid_fx_parse(const char *spec, struct bid_fx *ret, struct ads_diag *ret_diag)
{
    struct bid_fx fx = {.n = 1};
    const char *p = spec != NULL ? spec : "";

    memcpy(fx.v[0].code, "USD", 4);
    fx.v[0].usd = 1.0;
    while (*p != '\0') {
        char code[4];
        char *end;
        double usd;
        uint32_t k;

        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        for (k = 0; k < 3; k++) {
            if (p[k] < 'A' || p[k] > 'Z')
                return ads_diag_set(ret_diag, ADS_EINVAL, "", "a currency code is three capital letters: \"%.8s\"", p);
            code[k] = p[k];
        }
        code[3] = '\0';
        if (p[3] != '=')
            return ads_diag_set(ret_diag, ADS_EINVAL, "", "write each currency as CODE=USD_PER_UNIT, e.g. EUR=1.08");
        errno = 0;
        usd = strtod(p + 4, &end);
        if (end == p + 4 || errno != 0 || !isfinite(usd) || usd <= 0 || (*end != '\0' && *end != ',' && *end != ' '))
            return ads_diag_set(ret_diag, ADS_EINVAL, "", "the rate of %s must be a positive number", code);
        for (k = 0; k < fx.n && strcmp(fx.v[k].code, code) != 0; k++)
            ;
        if (k == fx.n) {
            if (fx.n == BID_FX_MAX)
                return ads_diag_set(ret_diag, ADS_EINVAL, "", "at most %d currencies", BID_FX_MAX);
            fx.n++;
        }
        memcpy(fx.v[k].code, code, 4);
        fx.v[k].usd = usd;
        p = end;
    }
    *ret = fx;
    return 0;
}

static double fx_usd(const struct bid_fx *fx, const char *code)
{
    for (uint32_t i = 0; i < fx->n; i++)
        if (memcmp(fx->v[i].code, code, 3) == 0)
            return fx->v[i].usd;
    return 0;
}

int bid_fx_rate(void *ctx, const char *from, const char *to, double *ret_rate)
{
    const struct bid_fx *fx = ctx;
    double f = fx_usd(fx, from), t = fx_usd(fx, to);

    if (f == 0 || t == 0)
        return ADS_ENOT_FOUND;
    *ret_rate = f / t;
    return 0;
}

/* @p s (3 bytes) as a code; false unless exactly three letters. */
static bool code3(struct cidx_str s, char out[4])
{
    if (s.len != 3)
        return false;
    for (int i = 0; i < 3; i++)
        out[i] = (char)toupper((unsigned char)s.ptr[i]);
    out[3] = '\0';
    return true;
}

/* ---- privacy ---- */

uint32_t bid_privacy(const struct ortb_req *req, const struct prof_view *profile)
{
    uint32_t why = 0;

    if (req->regs.coppa == 1)
        why |= BID_PRIV_COPPA;
    if (req->regs.gdpr == 1 && req->user.consent.len == 0)
        why |= BID_PRIV_GDPR;
    /* US Privacy string: version, notice, opt-out of sale, LSPA ("1YYN"). */
    if (req->regs.us_privacy.len >= 3 && req->regs.us_privacy.ptr[0] == '1' &&
        (req->regs.us_privacy.ptr[2] == 'Y' || req->regs.us_privacy.ptr[2] == 'y'))
        why |= BID_PRIV_USP;
    for (uint32_t i = 0; i < req->regs.gpp_sid.n; i++)
        if (req->regs.gpp_sid.v[i] >= 7 && req->regs.gpp_sid.v[i] <= 23)
            why |= BID_PRIV_GPP;
    if (req->device.lmt == 1 || req->device.dnt == 1)
        why |= BID_PRIV_LMT;
    if (profile != NULL) {
        if (((profile->consent_known & PROF_CONSENT_PERSONALIZATION) != 0 &&
             (profile->consent & PROF_CONSENT_PERSONALIZATION) == 0) ||
            ((profile->consent_known & PROF_CONSENT_SALE_OPT_OUT) != 0 &&
             (profile->consent & PROF_CONSENT_SALE_OPT_OUT) != 0))
            why |= BID_PRIV_PROFILE;
    }
    return why;
}

/* ---- blocks and seats ---- */

static bool str_eq(struct cidx_str a, const char *b)
{
    return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static bool seat_listed(const struct ortb_strs *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (str_eq(l->v[i], BID_SEAT))
            return true;
    return false;
}

/* Whether domain @p d is blocked by @p b: equal, or a subdomain of it, case-insensitive. */
static bool domain_blocked(const char *d, size_t dl, struct cidx_str b)
{
    while (b.len > 0 && b.ptr[b.len - 1] == '.')
        b.len--;
    if (b.len == 0 || b.len > dl || strncasecmp(d + dl - b.len, b.ptr, b.len) != 0)
        return false;
    return dl == b.len || d[dl - b.len - 1] == '.';
}

static bool camp_badv(const struct ortb_req *req, const struct cidx_camp *c)
{
    if (req->badv.n == 0)
        return false; /* without reading the record */
    for (uint32_t i = 0; i < c->adomain.n; i++)
        for (uint32_t k = 0; k < req->badv.n; k++)
            if (domain_blocked(c->adomain.v[i].ptr, c->adomain.v[i].len, req->badv.v[k]))
                return true;
    return false;
}

static bool cat_blocked(struct cidx_str cat, struct cidx_str b, bool iab1)
{
    if (cat.len == b.len && strncasecmp(cat.ptr, b.ptr, b.len) == 0)
        return true;
    /* IAB Content 1.0: "IAB25" blocks "IAB25-3". */
    return iab1 && cat.len > b.len && cat.ptr[b.len] == '-' && strncasecmp(cat.ptr, b.ptr, b.len) == 0;
}

static bool camp_bcat(const struct ortb_req *req, const struct cidx_camp *c)
{
    enum cidx_taxonomy tax = ortb_cattax_to_cidx(req->cattax);

    if (req->bcat.n == 0 || c->creative_categories.n == 0 || tax == CIDX_TAX_NONE || tax != c->creative_taxonomy)
        return false;
    for (uint32_t i = 0; i < c->creative_categories.n; i++) {
        struct cidx_str cat = {c->creative_categories.v[i].ptr, c->creative_categories.v[i].len};
        for (uint32_t k = 0; k < req->bcat.n; k++)
            if (cat_blocked(cat, req->bcat.v[k], tax == CIDX_TAX_CONTENT_1_0))
                return true;
    }
    return false;
}

/* ---- format ---- */

/* Whether banner size @p i of @p imp is one of @p c's: from the brief @p b when it knows, else the record. */
static bool has_size(const struct ortb_imp *imp, const int8_t *fbit, uint32_t i, const struct cidx_brief *b,
                     const struct cidx_camp *c)
{
    if (b->sizes_in && i < ORTB_MAX_FORMATS)
        return fbit[i] >= 0 && (b->size_bits >> fbit[i] & 1) != 0;
    for (uint32_t k = 0; k < c->nsizes; k++)
        if (imp->formats[i].w == c->sizes[k].w && imp->formats[i].h == c->sizes[k].h)
            return true;
    return false;
}

/* The format of campaign @p c (brief @p b); @p fbit: cidx_size_bit() of each banner size of @p imp. */
static bool pick_format(const struct ortb_imp *imp, const int8_t *fbit, const struct cidx_brief *b,
                        const struct cidx_camp *c, struct bid_pick *p)
{
    if (imp->has_banner && (b->formats & CIDX_FMT_BANNER) != 0) {
        for (uint32_t i = 0; i < imp->nformats; i++)
            if (has_size(imp, fbit, i, b, c)) {
                p->mtype = 1;
                p->w = imp->formats[i].w;
                p->h = imp->formats[i].h;
                return true;
            }
    }
    if (imp->has_video && (b->formats & CIDX_FMT_VIDEO) != 0) {
        p->mtype = 2;
        p->w = imp->video_size.w;
        p->h = imp->video_size.h;
        return true;
    }
    if (imp->has_native && (b->formats & CIDX_FMT_NATIVE) != 0) {
        p->mtype = 4;
        p->w = p->h = 0;
        return true;
    }
    return false;
}

/* ---- deals ---- */

static const struct ortb_deal *pick_deal(const struct ortb_imp *imp, const struct cidx_camp *c)
{
    for (uint32_t i = 0; i < imp->ndeals; i++) {
        const struct ortb_deal *d = &imp->deals[i];
        if (d->wseat.n > 0 && !seat_listed(&d->wseat))
            continue;
        for (uint32_t k = 0; k < c->deals.n; k++)
            if (c->deals.v[k].len == d->id.len && memcmp(c->deals.v[k].ptr, d->id.ptr, d->id.len) == 0)
                return d;
    }
    return NULL;
}

/* ---- money ---- */

/* @p micros converted at @p rate (when @p known), rounded up (floors) or down (values); -1 when unknown or huge. */
static int64_t convert_at(bool known, double rate, int64_t micros, bool up)
{
    double x;

    if (micros == 0)
        return 0;
    if (!known)
        return -1;
    x = (double)micros * rate;
    if (!(x < 1e15))
        return -1;
    /* The 1e-6 guards against a product such as 1.1 * 1e6 landing a hair above an integer. */
    return up ? (int64_t)ceil(x - 1e-6) : (int64_t)floor(x + 1e-6);
}

/* @p micros in @p from converted to @p to, as convert_at(). */
static int64_t convert(const struct bid_fx *fx, int64_t micros, const char *from, const char *to, bool up)
{
    double rate = 0;
    bool known = micros != 0 && bid_fx_rate((void *)fx, from, to, &rate) == 0;

    return convert_at(known, rate, micros, up);
}

/* The conversions of currency @p code into @p cur for this request (into *@p tmp when the memo is full). */
static const struct cur_conv *cur_conv(struct bid_scratch *s, const char *code, const char *cur,
                                       const struct bid_opts *o, const struct bid_fx *fx, struct cur_conv *tmp)
{
    struct cur_conv *cc = tmp;

    for (uint32_t i = 0; i < s->nconv; i++)
        if (memcmp(s->conv[i].code, code, 4) == 0)
            return &s->conv[i];
    if (s->nconv < CUR_CONV_MAX)
        cc = &s->conv[s->nconv++];
    memcpy(cc->code, code, 4);
    cc->known = bid_fx_rate((void *)fx, code, cur, &cc->rate) == 0;
    cc->cap = o->max_cpm_micros > 0 ? convert(fx, o->max_cpm_micros, "USD", code, false) : -1;
    return cc;
}

int64_t bid_day_start(const struct tz *zone, int64_t now)
{
    int64_t local = now + (zone != NULL ? tz_offset_at(zone, now) : 0);

    return now - ((local % 86400) + 86400) % 86400;
}

static double pacing_factor(const struct cidx_brief *c, const struct tz *zone, const struct bid_spend *sp, int64_t now)
{
    double gone, ratio;

    if (c->pacing != CIDX_PACING_EVEN || c->daily_budget_micros <= 0)
        return 1.0;
    /* The share of the campaign's local day gone, with at least 1/24 so the first hour can spend. */
    gone = (double)(now - bid_day_start(zone, now)) / 86400.0;
    if (gone < 1.0 / 24)
        gone = 1.0 / 24;
    ratio = ((double)sp->day_micros / (double)c->daily_budget_micros) / gone;
    if (ratio <= 1.0)
        return 1.0;
    return ratio >= 2.0 ? 0.0 : 2.0 - ratio;
}

static bool capped(const struct prof_view *pv, const struct cidx_camp *c, int64_t now)
{
    struct prof_freq f;
    uint64_t t = (uint64_t)now;

    if (pv == NULL || (c->cap_hour == 0 && c->cap_day == 0 && c->cap_lifetime == 0))
        return false;
    if (prof_view_freq(pv, c->id, strlen(c->id), &f) != 0)
        return false;
    if (c->cap_lifetime > 0 && f.lifetime >= c->cap_lifetime)
        return true;
    if (c->cap_day > 0 && f.day_start + 86400 > t && f.day >= c->cap_day)
        return true;
    return c->cap_hour > 0 && f.hour_start + 3600 > t && f.hour >= c->cap_hour;
}

/* ---- features ---- */

static void add_str(struct rank_req *r, uint32_t f, struct cidx_str s)
{
    if (s.len > 0)
        (void)rank_req_add(r, f, s.ptr, s.len);
}

static void add_int(struct rank_req *r, uint32_t f, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%lld", (long long)v);
    (void)rank_req_add(r, f, t, (size_t)n);
}

void bid_user_features(struct rank_req *r, const struct prof_view *pv, int64_t now)
{
    static const char *const names[PROF_NATTR] = {"country", "region", "city", "language", "device", "os"};
    struct mpr it;
    struct prof_tag_ref tag;
    char t[PROF_ATTR_MAX + 16];

    for (int a = 0; a < PROF_NATTR; a++) {
        if (pv->attr[a] == NULL)
            continue;
        int n = snprintf(t, sizeof(t), "%s=%.*s", names[a], (int)pv->attr_len[a], pv->attr[a]);
        if (n > 0 && (size_t)n < sizeof(t))
            (void)rank_req_add(r, RANK_F_ATTR, t, (size_t)n);
    }
    it = pv->segments;
    for (uint32_t i = 0; i < pv->nsegments && prof_view_next_tag(&it, &tag) == 0; i++)
        (void)rank_req_add(r, RANK_F_SEGMENT, tag.id, tag.id_len);
    it = pv->interests;
    for (uint32_t i = 0; i < pv->ninterests && prof_view_next_tag(&it, &tag) == 0; i++)
        (void)rank_req_add(r, RANK_F_INTEREST, tag.id, tag.id_len);
    if (pv->recency[PROF_LAST_SEEN] > 0 && (int64_t)pv->recency[PROF_LAST_SEEN] <= now)
        (void)rank_req_add_num(r, RANK_F_RECENCY, (double)(now - (int64_t)pv->recency[PROF_LAST_SEEN]));
}

static void context_features(struct rank_req *r, const struct ortb_req *req, const struct cidx_query *q, int64_t now)
{
    const struct ortb_site *src = req->site.present ? &req->site : &req->app;
    int64_t local = now;

    add_str(r, RANK_F_SITE, req->site.id);
    add_str(r, RANK_F_APP, req->app.bundle.len > 0 ? req->app.bundle : req->app.id);
    add_str(r, RANK_F_DOMAIN, q->domain);
    for (uint32_t i = 0; i < src->cat.n && i < 8; i++)
        add_str(r, RANK_F_CATEGORY, src->cat.v[i]);
    if (req->device.devicetype > 0)
        add_int(r, RANK_F_DEVICE, req->device.devicetype);
    add_str(r, RANK_F_OS, req->device.os);
    if (req->device.connectiontype > 0)
        add_int(r, RANK_F_CONN, req->device.connectiontype);
    add_str(r, RANK_F_COUNTRY, q->country);
    add_str(r, RANK_F_REGION, q->region);
    if (req->device.geo.has_utcoffset)
        local += (int64_t)req->device.geo.utcoffset * 60;
    add_int(r, RANK_F_HOUR, ((local % 86400) + 86400) % 86400 / 3600);
}

static void imp_features(struct rank_req *r, const struct ortb_imp *imp, const struct bid_pick *p)
{
    static const char *const fmt[] = {"", "banner", "video", "audio", "native"};
    char t[16];

    (void)rank_req_add(r, RANK_F_FORMAT, fmt[p->mtype], strlen(fmt[p->mtype]));
    if (p->w > 0 && p->h > 0) {
        int n = snprintf(t, sizeof(t), "%ux%u", (unsigned)p->w, (unsigned)p->h);
        (void)rank_req_add(r, RANK_F_SIZE, t, (size_t)n);
    }
    if (p->deal != NULL)
        add_str(r, RANK_F_DEAL, p->deal->id);
    if (imp->pos > 0)
        add_int(r, RANK_F_POS, imp->pos);
}

/* The candidate's features, from the tokens cidx_build() hashed (in the order the model was always given them). */
static void cand_features(struct rank_cand *c, const struct cidx_feat *f, int32_t mtype)
{
    int k = mtype == 1 ? CIDX_CREATIVE_BANNER : mtype == 2 ? CIDX_CREATIVE_VIDEO : CIDX_CREATIVE_NATIVE;

    rank_cand_init(c);
    (void)rank_cand_add_token(c, RANK_F_CAMPAIGN, f->campaign);
    (void)rank_cand_add_token(c, RANK_F_ADVERTISER, f->advertiser);
    (void)rank_cand_add_token(c, RANK_F_CREATIVE, f->creative[k]);
    for (uint32_t i = 0; i < f->ncategories; i++)
        (void)rank_cand_add_token(c, RANK_F_CAMP_CATEGORY, f->categories[i]);
}

/* ---- the decision ---- */

/* The value CPM of @p c before the caps: what the strategy makes of click probability @p p. */
static double raw_value(const struct cidx_brief *c, double p, const struct bid_opts *o)
{
    switch (c->strategy) {
    case CIDX_TARGET_CPC: return p * (double)c->bid_micros * 1000.0;
    case CIDX_TARGET_CPA: return p * o->cvr_prior * (double)c->bid_micros * 1000.0;
    default: return (double)c->bid_micros;
    }
}

/* The value CPM of @p c (its currency @p cc, micros) at click probability @p p, before pacing. */
static int64_t camp_value(const struct cidx_brief *c, double p, const struct bid_opts *o, const struct cur_conv *cc)
{
    double v = raw_value(c, p, o);

    if (!(v >= 0) || v > 1e15)
        return 0;
    if (c->ceiling_cpm_micros > 0 && v > (double)c->ceiling_cpm_micros)
        v = (double)c->ceiling_cpm_micros;
    if (cc->cap >= 0 && v > (double)cc->cap)
        v = (double)cc->cap;
    return (int64_t)floor(v);
}

/*
 * The most @p c can be worth in the response currency (micros, before
 * pacing) at any click probability, or INT64_MAX when that is not known
 * without the model. Exact for max_cpm (its value does not depend on p). For
 * the others it is the value at p = 1: the model's p is a probability (a
 * sigmoid, never above 1), and every step from p to the value (products,
 * caps, floor(), conversion) gives a lower input a result no higher, except
 * where a huge value is refused (camp_value() and convert_at() turn it into 0
 * or -1): then INT64_MAX.
 */
static int64_t value_bound(const struct cidx_brief *c, const struct bid_opts *o, const struct cur_conv *cc)
{
    int64_t v;

    if (c->strategy != CIDX_MAX_CPM && !(raw_value(c, 1.0, o) <= 1e15))
        return INT64_MAX;
    v = convert_at(cc->known, cc->rate, camp_value(c, 1.0, o, cc), false);
    return v < 0 && c->strategy != CIDX_MAX_CPM ? INT64_MAX : v;
}

/* The floor of @p imp (or @p deal) in @p cur, micros rounded up; -1 when it cannot be converted. */
static int64_t floor_in(const struct bid_fx *fx, const struct ortb_imp *imp, const struct ortb_deal *deal,
                        const char *cur)
{
    int64_t micros = deal != NULL ? deal->bidfloor_micros : imp->bidfloor_micros;
    struct cidx_str from = deal != NULL ? deal->bidfloorcur : imp->bidfloorcur;
    char code[4];

    if (micros == 0)
        return 0;
    if (!code3(from, code))
        return -1;
    return convert(fx, micros, code, cur, true);
}

/*
 * The request's features plus an impression's (format, size, deal), committed
 * once per distinct combination: the campaigns of one impression mostly share
 * one, so the request part is summed a few times per impression, not once
 * per candidate.
 */
#define IMP_REQ_CACHE 4

struct imp_req {
    int32_t mtype;
    uint16_t w, h;
    const struct ortb_deal *deal;
    struct rank_req r;
};

static const struct rank_req *committed(struct imp_req *cache, uint32_t *n, const struct rank_req *base,
                                        const struct ortb_imp *imp, const struct bid_pick *p)
{
    uint32_t k;

    for (k = 0; k < *n; k++)
        if (cache[k].mtype == p->mtype && cache[k].w == p->w && cache[k].h == p->h && cache[k].deal == p->deal)
            return &cache[k].r;
    k = *n < IMP_REQ_CACHE ? (*n)++ : IMP_REQ_CACHE - 1; /* full: the last slot is recycled */
    cache[k].mtype = p->mtype;
    cache[k].w = p->w;
    cache[k].h = p->h;
    cache[k].deal = p->deal;
    cache[k].r = *base;
    imp_features(&cache[k].r, imp, p);
    rank_req_commit(&cache[k].r);
    return &cache[k].r;
}

/* Decides impression @p i; true with *@p best filled when a campaign bids. */
static bool decide_imp(struct bid_scratch *s, const struct ortb_req *req, const struct bid_env *env,
                       const struct rank_req *base, uint32_t i, uint32_t nsegments, struct bid_result *res,
                       struct bid_pick *best)
{
    const struct ortb_imp *imp = &req->imps[i];
    const struct cidx_feat *feats = cidx_feats(env->ix);
    const struct cidx_brief *briefs = cidx_briefs(env->ix);
    struct imp_req cache[IMP_REQ_CACHE];
    uint32_t ncache = 0;
    struct cidx_query q;
    uint32_t nwords, elig, first = 0;
    int64_t open_floor = floor_in(env->fx, imp, NULL, res->cur); /* the floor without a deal */
    int8_t fbit[ORTB_MAX_FORMATS];
    bool found = false;

    for (uint32_t f = 0; f < imp->nformats && f < ORTB_MAX_FORMATS; f++)
        fbit[f] = (int8_t)cidx_size_bit(env->ix, imp->formats[f].w, imp->formats[f].h);

    if (ortb_imp_query(req, i, env->now, &q) != 0)
        return false;
    if (res->privacy != 0) {
        q.segments = NULL;
        q.nsegments = 0;
    } else if (env->profile != NULL) {
        q.segments = s->segments;
        q.nsegments = nsegments;
    }
    elig = cidx_eligible(env->ix, &q, s->words);
    res->eligible += elig;
    nwords = (uint32_t)cidx_words(env->ix);
    /* More eligible campaigns than the request may still score: start the scan at a campaign chosen by the
     * request id, so that the ones left out differ from request to request instead of always being the
     * last in the index. Otherwise scan in index order (ties go to the first). */
    if (env->opts->max_scored > 0 && elig > env->opts->max_scored - res->scored && nwords > 0)
        first = (uint32_t)(ctr_hash(req->id.ptr, req->id.len, i) % ((uint64_t)nwords * 64));
    /* Word first / 64 from bit first % 64, the other words, then that word's lower bits. */
    for (uint32_t k = 0; k <= nwords; k++) {
        uint32_t w = (first / 64 + k) % nwords, bit = first % 64;
        uint64_t low = bit == 0 ? 0 : (1ull << bit) - 1;
        uint64_t bits = s->words[w];

        if (k == 0)
            bits &= ~low;
        else if (k == nwords)
            bits &= low;
        while (bits != 0) {
            if (env->opts->max_scored > 0 && res->scored >= env->opts->max_scored)
                return found;
            uint32_t ci = w * 64 + (uint32_t)__builtin_ctzll(bits);
            const struct cidx_camp *c = cidx_camp(env->ix, ci); /* read only when a check needs more than b */
            const struct cidx_brief *b = &briefs[ci];
            struct bid_pick p = {.imp = i, .camp = c, .at = req->at == 1 ? 1 : 2};
            struct bid_spend sp = {0, 0};
            struct rank_cand cand;
            struct cur_conv cc_tmp;
            const struct cur_conv *cc;
            int64_t value, fl;
            double pace;

            bits &= bits - 1;
            if (camp_badv(req, c) || camp_bcat(req, c) || !pick_format(imp, fbit, b, c, &p))
                continue;
            p.deal = pick_deal(imp, c);
            if (p.deal == NULL && imp->private_auction == 1)
                continue;
            if (p.deal != NULL && p.deal->at > 0)
                p.at = p.deal->at == 1 ? 1 : p.deal->at == 3 ? 3 : 2;
            /* A fixed-price deal (at=3) names its price as the floor: without one there is no price to pay. */
            if (p.at == 3 && p.deal->bidfloor_micros <= 0)
                continue;
            if (env->spend != NULL && env->spend(env->spend_ctx, c, env->now, &sp) != 0)
                continue;
            if ((b->total_budget_micros > 0 && sp.total_micros >= b->total_budget_micros) ||
                (b->daily_budget_micros > 0 && sp.day_micros >= b->daily_budget_micros))
                continue;
            if (res->privacy == 0 && b->capped && capped(env->profile, c, env->now))
                continue;
            pace = pacing_factor(b, c->zone, &sp, env->now);
            if (pace <= 0)
                continue;

            cc = cur_conv(s, b->currency, res->cur, env->opts, env->fx, &cc_tmp);
            res->scored++;
            /* A candidate that cannot beat the best so far even at p = 1 is not run through the model: the
             * winner and its price are the ones scoring it would give (a tie keeps the best so far). */
            if (found) {
                int64_t bound = value_bound(b, env->opts, cc);
                if (bound != INT64_MAX && (int64_t)floor((double)bound * pace) <= best->value_micros) {
                    res->pruned++;
                    continue;
                }
            }
            cand_features(&cand, &feats[ci], p.mtype);
            p.p = rank_req_score(committed(cache, &ncache, base, imp, &p), &cand);

            value = camp_value(b, p.p, env->opts, cc);
            value = convert_at(cc->known, cc->rate, value, false);
            if (value <= 0)
                continue;
            value = (int64_t)floor((double)value * pace);
            fl = p.deal == NULL ? open_floor : floor_in(env->fx, imp, p.deal, res->cur);
            if (fl < 0 || value < fl || value <= 0)
                continue;
            p.value_micros = value;
            p.floor_micros = fl;
            if (p.at == 3)
                p.price_micros = fl;
            else
                p.price_micros = p.at == 1 ? value * (int64_t)env->opts->shading_pct / 100 : value;
            if (p.price_micros < fl)
                p.price_micros = fl;
            if (p.price_micros <= 0)
                p.price_micros = 1;
            if (!found || p.value_micros > best->value_micros) {
                *best = p;
                found = true;
            }
        }
    }
    return found;
}

int bid_decide(struct bid_scratch *s, const struct ortb_req *req, const struct bid_env *env, struct bid_result *ret)
{
    struct rank_req base;
    struct rank_info info;
    uint32_t nsegments = 0;
    bool cur_found = false;

    if (env->model == NULL || env->fx == NULL || env->opts == NULL)
        return ADS_EINVAL;
    memset(ret, 0, offsetof(struct bid_result, picks));
    ret->npicks = 0;
    ret->eligible = ret->scored = ret->pruned = 0;
    ret->nbr = ORTB_NBR_UNKNOWN;
    rank_model_info(env->model, &info);
    snprintf(ret->model_version, sizeof(ret->model_version), "%s", info.version);
    ret->privacy = bid_privacy(req, env->profile);
    s->nconv = 0;

    if (req->tmax > 0 && (uint32_t)req->tmax < env->opts->min_tmax_ms) {
        ret->nbr = ORTB_NBR_INSUFFICIENT_TIME;
        return 0;
    }
    if (req->blocks_truncated) {
        ret->nbr = ORTB_NBR_BLOCKED_PUBLISHER;
        return 0;
    }
    if ((req->wseat.n > 0 && !seat_listed(&req->wseat)) || seat_listed(&req->bseat)) {
        ret->nbr = ORTB_NBR_UNKNOWN;
        return 0;
    }
    if (req->cur.n == 0) {
        memcpy(ret->cur, "USD", 4);
        cur_found = true;
    }
    for (uint32_t i = 0; i < req->cur.n && !cur_found; i++)
        if (code3(req->cur.v[i], ret->cur) && fx_usd(env->fx, ret->cur) > 0)
            cur_found = true;
    if (!cur_found) {
        ret->cur[0] = '\0';
        return 0;
    }
    if (env->ix == NULL || cidx_count(env->ix) == 0)
        return 0;

    rank_req_begin(&base, env->model);
    if (ret->privacy == 0 && env->profile != NULL) {
        struct mpr it = env->profile->segments;
        struct prof_tag_ref tag;
        bid_user_features(&base, env->profile, env->now);
        while (nsegments < env->profile->nsegments && nsegments < CIDX_Q_MAX_SEGMENTS &&
               prof_view_next_tag(&it, &tag) == 0)
            s->segments[nsegments++] = (struct cidx_str){tag.id, tag.id_len};
    }

    for (uint32_t i = 0; i < req->nimps; i++) {
        struct cidx_query q;
        if (i == 0 && ortb_imp_query(req, 0, env->now, &q) == 0)
            context_features(&base, req, &q, env->now);
        if (decide_imp(s, req, env, &base, i, nsegments, ret, &ret->picks[ret->npicks]))
            ret->npicks++;
    }
    return 0;
}
