/*
 * bid: the bid decision of POST /openrtb2/bid (issue 6), and the signed
 * notice parameters of the bids it makes. No HTTP, no logging, no writes.
 *
 * bid_decide() answers one parsed request (ortb.h) from the compiled
 * campaign index (cidx.h), the served ranking model (rank.h), the user's
 * stored profile (a prof_view, or none) and the campaigns' spend (through a
 * callback, so that the caller decides where spend is read from). Per
 * request, in this order:
 *
 *   tmax      a request whose tmax (ms) is below opts->min_tmax_ms cannot be
 *             answered in time: no bid, nbr 15 (insufficient auction time);
 *   blocks    a block list longer than ORTB_MAX_BLOCKS (req->blocks_truncated)
 *             cannot be honoured: no bid, nbr 7 (blocked publisher or site);
 *   seat      our seat (BID_SEAT) must be in wseat when given and not in bseat;
 *   currency  the response currency is the first of req->cur the currency
 *             table knows (USD when cur is empty); none known: no bid;
 *   privacy   bid_privacy(): regs.coppa=1, gdpr=1 without a consent string,
 *             us_privacy with opt-out of sale ("1Y" then 'Y'), a GPP section
 *             list naming a US national or state section (7..23: adsmith does
 *             not decode GPP strings, so it reads them as an opt-out), device
 *             lmt=1 or dnt=1, or a stored profile whose consent says no
 *             personalisation or sale opt-out => contextual only: the profile
 *             is not used at all (no user features, no segments in the index
 *             query; the request's own user.data segments are dropped too).
 *
 * Then per impression: the index query (ortb_imp_query(); segments are the
 * profile's when one is used), then for each eligible campaign:
 *   badv      no adomain of the campaign blocked (a blocked domain blocks its
 *             subdomains, case-insensitive);
 *   bcat      no creative category blocked when bcat uses the campaign's
 *             taxonomy (an IAB 1.0 parent "IAB25" blocks "IAB25-3");
 *   format    banner when offered with a size the campaign has (the first such
 *             size of the imp), else video (player size when given), else
 *             native; audio is never answered (no audio creatives);
 *   deal      the first imp deal the campaign lists whose wseat admits our
 *             seat: its floor, currency and at apply, and the bid carries its
 *             dealid; in a private auction a bid needs such a deal; a deal
 *             with at=3 (fixed price) bids exactly its floor, and without a
 *             floor it is not bid on;
 *   budget    total spend < total budget, today's spend (the campaign's local day, bid_day_start) < daily budget;
 *   caps      with a profile in use: the campaign's hourly, daily and lifetime
 *             impression counters below its caps (without a profile caps
 *             cannot be checked and do not restrict);
 *   value     p = the model's calibrated click probability for the request,
 *             the imp (format, size, deal, position) and the candidate (campaign,
 *             advertiser, creative "<campaign>/<format>", categories); the
 *             value CPM is, in the campaign's currency:
 *               max_cpm     amount (the model ranks, it does not price);
 *               target_cpc  p x amount x 1000;
 *               target_cpa  p x opts->cvr_prior x amount x 1000;
 *             capped by the campaign's ceiling_cpm (when set) and by
 *             opts->max_cpm_micros (converted from USD);
 *   pacing    "even": the share of today's budget spent ahead of the share of
 *             the day gone (ratio r) scales the value by max(0, 2 - r) when
 *             r > 1 (0 at twice ahead: no bid); "asap" and no daily budget: 1;
 *   price     the value converted to the response currency; first price
 *             (at=1) shaded by opts->shading_pct percent; raised to the floor
 *             (converted from bidfloorcur, rounded up to the micro) when the
 *             unshaded value reaches it, else no bid; never above the value.
 * The best campaign of an impression is the one of highest value (ties: the
 * first in the index). An impression without one gets no bid.
 *
 * Cost: every eligible candidate is checked and valued, so a request's cost
 * grows with its imps times the eligible campaigns. The model's click
 * probability is only computed for a candidate that might beat the best of
 * the impression so far: its value at p = 1 (exact for max_cpm, an upper
 * bound for the others) must exceed the best value; the others are counted
 * in scored and pruned, and the outcome is the one scoring every candidate
 * gives. The candidates' model features are hashed once per index
 * (cidx_feats()). opts->max_scored bounds the cost: once that many
 * candidates were scored (pruned ones included) the request's remaining ones
 * are skipped, and an
 * impression with more eligible campaigns than the request may still score
 * has its scan start at a place chosen by the request id (then ties go to
 * the first in that order), so that no campaign is always the one left out.
 *
 * nbr of a request without bids: the first reason above that stopped it, or
 * 0 (unknown: nothing matched) when no request-level reason applied.
 */
#ifndef ADSMITH_BID_H
#define ADSMITH_BID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "adsmith/buf.h"
#include "adsmith/cidx.h"
#include "adsmith/err.h"
#include "adsmith/ortb.h"
#include "adsmith/profile.h"
#include "adsmith/rank.h"
#include "adsmith/variant.h"

struct tz;

#define BID_SEAT "adsmith" /* the seat adsmith bids as */
#define BID_FX_MAX 32      /* currencies in a table */

/* ---- currencies ---- */

struct bid_fx {
    uint32_t n;
    struct {
        char code[4];
        double usd; /* USD per unit */
    } v[BID_FX_MAX];
};

/**
 * Parses a currency table "EUR=1.08,GBP=1.27" (USD per unit; USD = 1 is
 * always in). Codes are three capital letters; rates finite and > 0.
 * @return 0 with *@p ret filled, or ADS_EINVAL with @p ret_diag (may be NULL).
 */
int bid_fx_parse(const char *spec, struct bid_fx *ret, struct ads_diag *ret_diag);

/** An ortb_fx_fn over a struct bid_fx (@p ctx): the rate from @p from to @p to. 0 or ADS_ENOT_FOUND. */
int bid_fx_rate(void *ctx, const char *from, const char *to, double *ret_rate);

/* ---- the decision ---- */

struct bid_opts {
    uint32_t shading_pct;   /* first-price bids are value x shading_pct / 100; 1..100 */
    int64_t max_cpm_micros; /* the most any bid pays, USD micros per 1000; 0: no cap */
    uint32_t min_tmax_ms;   /* a request with 0 < tmax < this is not answered (nbr 15) */
    double cvr_prior;       /* conversions per click assumed for target_cpa (no pCVR model yet) */
    uint32_t max_scored;    /* candidates scored per request, all imps together; 0: no limit (see bid_decide) */
};

/** A campaign's spend, in micro-units of its currency. */
struct bid_spend {
    int64_t total_micros;
    int64_t day_micros; /* spent in the campaign's local day that holds `now` (bid_day_start) */
};

/**
 * Start (unix seconds) of the day that holds @p now in @p zone (NULL: UTC):
 * the day a campaign's daily budget and even pacing count in. The offset at
 * @p now is used, so on a day that changes to or from summer time the day
 * starts an hour off for the hours before the change.
 */
int64_t bid_day_start(const struct tz *zone, int64_t now);

struct rank_req;

/**
 * Adds the user part of the ranking model's features from profile @p pv at
 * @p now: its attributes, segments, interests and recency. The bid decision
 * and POST /v1/score (score.h) use it, so a user scores alike in both.
 */
void bid_user_features(struct rank_req *r, const struct prof_view *pv, int64_t now);

/** Reads the spend of @p c at @p now. 0, or negative: the campaign does not bid. */
typedef int (*bid_spend_fn)(void *ctx, const struct cidx_camp *c, int64_t now, struct bid_spend *ret);

struct bid_env {
    const struct cidx *ix;           /* the index; NULL: nothing to bid with */
    const struct rank_model *model;  /* the model, of the "adsmith" serving schema */
    const struct prof_view *profile; /* the user's stored profile, or NULL */
    bid_spend_fn spend;              /* NULL: no spend yet */
    void *spend_ctx;
    const struct bid_fx *fx;
    const struct bid_opts *opts;
    int64_t now; /* unix seconds */
};

/* Why a request is answered from context only (bits of bid_privacy()). */
enum bid_privacy {
    BID_PRIV_COPPA = 1u << 0,
    BID_PRIV_GDPR = 1u << 1,    /* gdpr=1 and no consent string */
    BID_PRIV_USP = 1u << 2,     /* us_privacy opt-out of sale */
    BID_PRIV_GPP = 1u << 3,     /* a US GPP section (not decoded) */
    BID_PRIV_LMT = 1u << 4,     /* device.lmt or device.dnt */
    BID_PRIV_PROFILE = 1u << 5, /* the stored profile's consent */
};

/** The enum bid_privacy bits that apply to @p req (and @p profile, may be NULL); 0: the profile may be used. */
uint32_t bid_privacy(const struct ortb_req *req, const struct prof_view *profile);

/** One bid the decision makes. Pointers point into the request or the index. */
struct bid_pick {
    uint32_t imp;                 /* index in req->imps */
    const struct cidx_camp *camp; /* in the index */
    int32_t mtype;                /* 1 banner, 2 video, 4 native */
    uint16_t w, h;                /* 0x0: none */
    const struct ortb_deal *deal; /* NULL: open auction */
    int32_t at;                   /* the auction type that applied (1 first price, 2 second, 3 fixed deal price) */
    double p;                     /* the model's click probability */
    int64_t value_micros;         /* the value CPM, response currency */
    int64_t price_micros;         /* the bid, response currency; > 0 */
    int64_t floor_micros;         /* the floor that applied, response currency */
};

struct bid_result {
    char cur[4];     /* the response currency */
    uint32_t npicks; /* bids, at most one per imp */
    struct bid_pick picks[ORTB_MAX_IMPS];
    int32_t nbr;            /* when npicks is 0 */
    uint32_t privacy;       /* enum bid_privacy bits; != 0: contextual only */
    uint32_t eligible;      /* campaigns the index found, all imps together */
    uint32_t scored;        /* candidates past every check before the value (what max_scored counts) */
    uint32_t pruned;        /* of those, not run through the model: they could not beat the best */
    char model_version[32]; /* rank_info.version of env->model */
};

/** Per-thread memory of the decision (the eligibility bitset). */
struct bid_scratch;

int bid_scratch_new(struct bid_scratch **ret);
void bid_scratch_free(struct bid_scratch *s);

/**
 * Decides the bids for @p req (see the file comment). Reads @p env; writes
 * nothing else. @p s serves one thread at a time.
 * @return 0 with *@p ret filled (npicks may be 0, with nbr), or ADS_EINVAL
 *   when @p env lacks the model, the currency table or the options.
 */
int bid_decide(struct bid_scratch *s, const struct ortb_req *req, const struct bid_env *env, struct bid_result *ret);

/* ---- signed notices ---- */

#define BID_KEY_BYTES 32
#define BID_SIG_HEX 64

enum bid_notice_kind { BID_NOTICE_WIN, BID_NOTICE_BILL, BID_NOTICE_LOSS };

/**
 * What a notice URL carries, besides the price the exchange fills in. All
 * strings are NUL-terminated. Query parameters: a auction (request) id, b bid
 * id, i imp id, c campaign id, cc campaign currency, cur response currency,
 * bp our bid (micros), u the user id (empty when the bid was contextual), m
 * the model version, t test (0/1), ts the bid time (unix seconds), vr the
 * native creative served (a variant id, or "base" for the base creative;
 * left out when empty: no variant snapshot, or not native); then, not
 * signed, p=${AUCTION_PRICE} (win, bill) or l=${AUCTION_LOSS} (loss), then sig.
 */
struct bid_notice {
    enum bid_notice_kind kind;
    char auction[ORTB_ID_MAX + 1];
    char bid[ORTB_ID_MAX + 1];
    char imp[ORTB_ID_MAX + 1];
    char campaign[CIDX_ID_MAX + 1];
    char camp_cur[4], cur[4];
    int64_t bid_micros;
    char user[PROF_ID_MAX + 1];
    char model[32];
    int test;
    int64_t ts;
    char variant[VAR_ID_LEN + 1];    /* "" (signed as before the field existed), a variant id, or VAR_BASE */
    char time_zone[CIDX_TZ_MAX + 1]; /* the campaign's zone, which cuts its budget days; "" (signed as before): UTC */
};

/** "win", "bill", "loss". Static. */
const char *bid_notice_kind_name(enum bid_notice_kind k);

/**
 * The signature of @p n under @p key: HMAC-SHA256 over "adsmith-notice-1",
 * the kind and every signed parameter above, each on its own line (vr only
 * when not empty, so notices written before it existed still verify), as 64
 * lower-case hex digits and a NUL in @p ret_hex.
 */
void bid_notice_sign(const uint8_t key[BID_KEY_BYTES], const struct bid_notice *n, char ret_hex[BID_SIG_HEX + 1]);

/** Whether @p sig (@p len bytes) is @p n's signature; compares in constant time. */
bool bid_notice_verify(const uint8_t key[BID_KEY_BYTES], const struct bid_notice *n, const char *sig, size_t len);

/**
 * Appends the notice URL of @p n to @p out: @p base (e.g.
 * "https://bid.example.com"), "/v1/notice/KIND?", the parameters
 * percent-encoded, the price macro and the signature.
 * @return 0, or -ENOBUFS when @p out overflowed.
 */
int bid_notice_url(const uint8_t key[BID_KEY_BYTES], const char *base, const struct bid_notice *n, struct buf *out);

/**
 * Reads a price as a notice carries it ("1.25", "0.000001"; at most 6
 * decimals are used, more are rounded down) into micro-units.
 * @return 0, or ADS_EINVAL (not a non-negative decimal, or above 10^12 units).
 */
int bid_price_parse(const char *s, int64_t *ret_micros);

/* ---- the answer ---- */

/**
 * Finds the stored document of campaign @p id (a map, as uploaded).
 * @return 0 with *@p ret_doc set (valid until the caller's read ends), or negative (the bid is dropped).
 */
typedef int (*bid_doc_fn)(void *ctx, const char *id, msgpack_zone *zone, msgpack_object *ret_doc);

struct bid_answer_ctx {
    const uint8_t *key;      /* BID_KEY_BYTES: the notice key */
    const char *notice_base; /* "https://bid.example.com": notice URLs start with it */
    bid_doc_fn doc;
    void *doc_ctx;
    msgpack_zone *zone;              /* for the documents */
    const struct prof_view *profile; /* personal slots are filled from it; NULL (or contextual): fallbacks */
    int64_t now;
    struct buf *mem; /* ids, markup and URLs are written here; must outlive the response */
};

/** What native bids choose their variant from (variant.h); see bid_answer_variants(). */
struct bid_variant_ctx {
    const struct vpick_set *set; /* approved variants; NULL: every bid serves its base creative */
    struct vpick_rng *rng;       /* the calling thread's own */
    uint32_t control_pct;        /* share (0..100) of native bids that serve the base creative (control arm) */
};

struct bid_answer {
    struct ortb_bid bids[ORTB_MAX_IMPS];
    /* Per bid: the native creative served, as its notices carry it ("" none, a variant id, VAR_BASE). */
    char variant[ORTB_MAX_IMPS][VAR_ID_LEN + 1];
    struct ortb_seatbid seatbid;
    struct ortb_resp resp; /* the answer: bids, or a no-bid with nbr */
};

/**
 * Makes the BidResponse of @p res for @p req: per pick a bid with id
 * "<request id>-<imp index>", impid, price, adm (the campaign's base creative
 * of the pick's format with its personal slots filled and HTML-escaped:
 * banner html_template; native as a Native 1.2 response JSON with title,
 * image, sponsored-by, description, cta (data asset 5) and link; video as a
 * VAST 4.0 wrapper of vast_url),
 * adomain, crid "<campaign>/<format>", cid, cat and cattax, w/h, mtype,
 * dealid, nurl/burl/lurl (bid_notice_url(), user id only when the profile
 * was used) and ext.adsmith.model. A pick whose document cannot be read, or
 * whose markup holds "http://" in a secure imp, is dropped. cur is written
 * unless USD.
 *
 * Variants (bid_answer_variants() with a snapshot), a native bid asks vpick_choose() (the user's
 * segments when the profile is used, the request's device.language) what to
 * serve. A generated variant replaces the title, description and cta (its
 * {{slot}}s filled like the base creative's), its AI label is appended to the
 * sponsored-by data asset ("Brand · AI-generated"; Native 1.2 has no
 * disclosure asset type), its crid is "<campaign>/native/<variant id>", and
 * ret->variant and the notices (vr) carry its id; the control arm and a
 * campaign without approved variants serve the base creative, with "base".
 * @return 0 (ret->resp may be a no-bid), or -ENOBUFS when ctx->mem was too small.
 */
int bid_answer(const struct ortb_req *req, const struct bid_result *res, const struct bid_answer_ctx *ctx,
               struct bid_answer *ret);

/** bid_answer() with variants for native bids (@p vctx may be NULL: as bid_answer()). */
int bid_answer_variants(const struct ortb_req *req, const struct bid_result *res, const struct bid_answer_ctx *ctx,
                        const struct bid_variant_ctx *vctx, struct bid_answer *ret);

#endif
