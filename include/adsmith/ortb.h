/*
 * ortb: the OpenRTB 2.5 / 2.6 layer of POST /openrtb2/bid (issue 6).
 *
 * Three jobs, none of which decides anything:
 *   1. ortb_parse() reads a BidRequest body (JSON, or MessagePack with the
 *      same shape) into a normalised, bounded struct ortb_req, reading each
 *      field from its 2.6 place and, when that is absent, from its 2.5 ext
 *      place (regs.ext.gdpr, regs.ext.us_privacy, regs.ext.gpp[_sid],
 *      user.ext.consent, user.ext.eids, source.ext.schain, source.ext.tid);
 *      ortb_imp_query() turns one impression into a struct cidx_query;
 *   2. ortb_resp_write() writes a BidResponse (or a no-bid with nbr);
 *   3. ortb_check_bid() says which OpenRTB rule a bid breaks, if any: for
 *      tests, the fuzzer and a debug path.
 *
 * Tolerance (OpenRTB 2.6 section 2.6 and the issue): unknown fields and
 * unknown enum values are ignored; null is read as absent; a field of the
 * wrong type is ignored as if absent, EXCEPT the required ones below; a list
 * entry of the wrong type (a format that is not an object, a deal without a
 * string id, a non-string in bcat) is skipped. A request is refused
 * (ADS_EBAD_REQUEST, 400) only when it is truly malformed, each case with a
 * stable reason (enum ortb_fault), a message and the JSON pointer:
 *   not JSON / not UTF-8 / nesting deeper than ORTB_MAX_DEPTH / more than
 *   DOC_MAX_NODES values (doc_parse()'s refusals, which also include a
 *   string holding U+0000 and a number beyond a double's range), the top
 *   level not an
 *   object, id missing, not a string, empty or longer than ORTB_ID_MAX, imp
 *   missing, not an array, empty or longer than ORTB_MAX_IMPS, an imp that
 *   is not an object, an imp id missing, not a string, empty or longer than
 *   ORTB_ID_MAX, two imps with the same id.
 *
 * Numbers: integers may be written as JSON integers or as floats with an
 * integral value (300.0); booleans count as 1/0 for the 0/1 flags. Floors
 * (imp.bidfloor, deal.bidfloor) are also read from a numeric string ("0.5"),
 * since ignoring a floor would be the unsafe way to tolerate it; a negative
 * floor is read as 0. Floors are kept in micro-units, rounded UP to the next
 * micro, so that a bid meeting the kept floor meets the sent one.
 *
 * Memory. Everything a parse produces lives in a struct ortb_scratch: one
 * msgpack_zone (the parsed tree and the normalised arrays) that is cleared,
 * not freed, by the next parse, and doc_parse()'s per-thread cJSON arena. A
 * body whose tree fits in ORTB_ZONE_CHUNK bytes is parsed without any malloc
 * (measured: 0 mallocs per parse for every fixture and for a 36 KB body of
 * 2,500 strings; 1 for an 85 KB one); larger bodies take extra zone chunks,
 * freed at the next parse. A scratch serves one thread at a time: keep one
 * per worker thread.
 *
 * Parser. doc_parse() (cJSON on a per-thread arena, plus strict RFC 8259
 * and UTF-8 checks and the conversion to msgpack_object) was chosen by
 * measurement: loadtest/bench_ortb.c puts ortb_parse() + ortb_imp_query()
 * at about 1.5 times a bare cJSON_Parse + cJSON_Delete of the same body
 * (3.7 us against 2.4 us for the 604-byte spec example, on a loaded
 * machine), and the walk of this file at about 10% of the total; the rest
 * is doc_parse(), which every other JSON body of the service goes through.
 *
 * Strings are struct cidx_str (ptr, len; NOT NUL-terminated; ptr NULL and
 * len 0 when absent), so that they pass into a struct cidx_query unchanged.
 * Every pointer in a struct ortb_req, and the request itself, is valid until
 * the next ortb_parse() on the same scratch or ortb_scratch_free().
 */
#ifndef ADSMITH_ORTB_H
#define ADSMITH_ORTB_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/buf.h"
#include "adsmith/cidx.h"
#include "adsmith/doc.h"
#include "adsmith/err.h"

/* ---- limits on what a request may carry ---- */

#define ORTB_MAX_DEPTH DOC_MAX_DEPTH /* nesting; deeper is refused (400) */
#define ORTB_ID_MAX 256              /* request.id, imp.id (longer: 400); deal.id (longer: deal skipped) */
#define ORTB_STR_MAX 8192            /* any other string, bytes; longer: read as absent */
#define ORTB_MAX_IMPS 64             /* imp entries; more: 400 */
#define ORTB_MAX_FORMATS 16          /* banner.format entries kept (= CIDX_Q_MAX_SIZES); the rest ignored */
#define ORTB_MAX_DEALS 16            /* pmp.deals kept per imp (= CIDX_Q_MAX_DEALS); the rest ignored */
#define ORTB_MAX_SEATS 64            /* wseat, bseat, deal.wseat entries kept */
#define ORTB_MAX_BLOCKS 512          /* bcat, badv, bapp entries kept; a longer list sets blocks_truncated */
#define ORTB_MAX_CATS 64             /* site/app cat + sectioncat + pagecat kept (see ortb_imp_query) */
#define ORTB_MAX_CURS 16             /* cur entries kept */
#define ORTB_MAX_MIMES 16            /* video/audio mimes kept */
#define ORTB_MAX_INTS 16             /* protocols, gpp_sid kept */
#define ORTB_MAX_EIDS 16             /* user eids kept */
#define ORTB_MAX_UIDS 4              /* uids kept per eid */
#define ORTB_MAX_SEGMENTS 64         /* user.data[].segment[].id kept, all data entries together */
#define ORTB_MAX_SCHAIN_NODES 16     /* schain nodes kept; a longer chain sets schain.truncated */

#define ORTB_ZONE_CHUNK (128u * 1024u) /* the scratch zone's first chunk, kept across parses */

/* ---- OpenRTB macros, for the notice URLs the caller builds ---- */

#define ORTB_MACRO_AUCTION_ID "${AUCTION_ID}"
#define ORTB_MACRO_AUCTION_BID_ID "${AUCTION_BID_ID}"
#define ORTB_MACRO_AUCTION_IMP_ID "${AUCTION_IMP_ID}"
#define ORTB_MACRO_AUCTION_SEAT_ID "${AUCTION_SEAT_ID}"
#define ORTB_MACRO_AUCTION_AD_ID "${AUCTION_AD_ID}"
#define ORTB_MACRO_AUCTION_PRICE "${AUCTION_PRICE}"
#define ORTB_MACRO_AUCTION_CURRENCY "${AUCTION_CURRENCY}"
#define ORTB_MACRO_AUCTION_MBR "${AUCTION_MBR}"
#define ORTB_MACRO_AUCTION_LOSS "${AUCTION_LOSS}"
#define ORTB_MACRO_AUCTION_MIN_TO_WIN "${AUCTION_MIN_TO_WIN}"
#define ORTB_MACRO_AUCTION_MULTIPLIER "${AUCTION_MULTIPLIER}"
#define ORTB_MACRO_AUCTION_IMP_TS "${AUCTION_IMP_TS}"

/* ---- why a request is refused ---- */

/* X(enum suffix, stable name). Append only; the name is the "reason" a client sees. */
#define ORTB_FAULT_MAP(X)                                                                                              \
    X(NONE, "none")                                                                                                    \
    X(NOT_JSON, "invalid_body")                                                                                        \
    X(NOT_OBJECT, "not_an_object")                                                                                     \
    X(ID_MISSING, "id_missing")                                                                                        \
    X(ID_TYPE, "id_not_string")                                                                                        \
    X(ID_EMPTY, "id_empty")                                                                                            \
    X(ID_TOO_LONG, "id_too_long")                                                                                      \
    X(IMP_MISSING, "imp_missing")                                                                                      \
    X(IMP_TYPE, "imp_not_array")                                                                                       \
    X(IMP_EMPTY, "imp_empty")                                                                                          \
    X(IMP_TOO_MANY, "imp_too_many")                                                                                    \
    X(IMP_NOT_OBJECT, "imp_not_object")                                                                                \
    X(IMP_ID_MISSING, "imp_id_missing")                                                                                \
    X(IMP_ID_TYPE, "imp_id_not_string")                                                                                \
    X(IMP_ID_EMPTY, "imp_id_empty")                                                                                    \
    X(IMP_ID_TOO_LONG, "imp_id_too_long")                                                                              \
    X(IMP_ID_DUPLICATE, "imp_id_duplicate")                                                                            \
    X(NOMEM, "out_of_memory")

enum ortb_fault {
#define ORTB_FAULT_ENUM_(name, str) ORTB_F_##name,
    ORTB_FAULT_MAP(ORTB_FAULT_ENUM_)
#undef ORTB_FAULT_ENUM_
};

/** Stable name of @p f ("imp_id_duplicate", ...); "unknown" out of range. Static. */
const char *ortb_fault_name(enum ortb_fault f);

/* ---- the normalised request ---- */

struct ortb_strs {
    const struct cidx_str *v;
    uint32_t n;
    bool truncated; /* the request held more than were kept */
};

struct ortb_ints {
    const int64_t *v;
    uint32_t n;
};

struct ortb_deal {
    struct cidx_str id;
    int64_t bidfloor_micros;     /* 0 when absent; 9e18 (nothing meets it) when present but unreadable */
    struct cidx_str bidfloorcur; /* "USD" when absent */
    int32_t at;                  /* 0: absent (the request's at applies) */
    struct ortb_strs wseat;      /* empty: any seat */
};

struct ortb_imp {
    struct cidx_str id, tagid;
    int64_t bidfloor_micros;     /* 0 when absent; 9e18 (nothing meets it) when present but unreadable */
    struct cidx_str bidfloorcur; /* "USD" when absent */
    int8_t secure;               /* -1 unknown, 0, 1 */
    int8_t instl;                /* -1 unknown, 0, 1 */
    int32_t pos;                 /* banner.pos, else video.pos (AdCOM placement position); 0 absent or unknown */

    bool has_banner;
    /* banner.format[] sizes (w, h in 1..65535), else banner.w/h when both given */
    const struct cidx_size *formats;
    uint32_t nformats;

    bool has_video;
    struct cidx_size video_size; /* 0x0 unknown */
    struct ortb_strs video_mimes;
    struct ortb_ints video_protocols;

    bool has_audio;
    struct ortb_strs audio_mimes;

    bool has_native;

    int8_t private_auction; /* -1 unknown (0 applies), 0, 1 */
    const struct ortb_deal *deals;
    const struct cidx_str *deal_ids; /* deals[i].id, contiguous for cidx_query */
    uint32_t ndeals;

    const msgpack_object *ext; /* NULL when absent */
};

struct ortb_geo {
    struct cidx_str country;  /* as sent: ISO-3166-1 alpha-3 in OpenRTB */
    struct cidx_str country2; /* alpha-2 of country (a known alpha-3, or an alpha-2 as sent); else absent */
    struct cidx_str region, city, zip, metro;
    struct cidx_str region_code; /* "CC-R" from country2 and region (or region as sent when it holds '-') */
    double lat, lon;
    bool has_latlon;
    int32_t type;      /* 0 absent */
    int32_t utcoffset; /* minutes; valid when has_utcoffset */
    bool has_utcoffset;
};

struct ortb_site {
    bool present;
    struct cidx_str id, domain, page, name, bundle; /* bundle: app only */
    struct ortb_strs cat;                           /* cat, then sectioncat, then pagecat */
    int32_t cattax;                                 /* as sent; 1 (IAB Content 1.0) when absent */
    struct cidx_str publisher_id;
};

struct ortb_eid {
    struct cidx_str source;
    struct cidx_str uid[ORTB_MAX_UIDS];
    int32_t atype[ORTB_MAX_UIDS]; /* 0 absent */
    uint32_t nuids;
};

struct ortb_schain_node {
    struct cidx_str asi, sid, rid, name, domain;
    int8_t hp; /* -1 absent */
};

struct ortb_schain {
    bool present;
    int8_t complete; /* -1 absent */
    struct cidx_str ver;
    const struct ortb_schain_node *nodes;
    uint32_t nnodes;
    bool truncated;
};

struct ortb_req {
    struct cidx_str id;
    const struct ortb_imp *imps;
    uint32_t nimps;

    struct ortb_site site, app; /* both may be present (a quirk some senders have) */

    struct {
        struct cidx_str ua, os, osv, language, ip, ipv6, ifa, make, model;
        /* "os osv" (e.g. "iOS 17.1") when both fit in CIDX_OS_MAX, else os: for cidx's os prefix match */
        struct cidx_str os_full;
        int32_t devicetype;     /* AdCOM device type; 0 absent */
        int32_t connectiontype; /* AdCOM connection type; 0 absent or unknown */
        int8_t lmt, dnt;        /* -1 absent */
        struct ortb_geo geo;
        const msgpack_object *ext;
    } device;

    struct {
        struct cidx_str id, buyeruid;
        struct cidx_str consent;     /* user.consent, else user.ext.consent */
        const struct ortb_eid *eids; /* user.eids, else user.ext.eids; entries without a source skipped */
        uint32_t neids;
        struct ortb_strs segments; /* user.data[].segment[].id */
        struct ortb_geo geo;
        const msgpack_object *ext;
    } user;

    struct {
        int8_t coppa;               /* -1 absent */
        int8_t gdpr;                /* regs.gdpr, else regs.ext.gdpr; -1 absent */
        struct cidx_str us_privacy; /* regs.us_privacy, else regs.ext.us_privacy */
        struct cidx_str gpp;        /* regs.gpp, else regs.ext.gpp */
        struct ortb_ints gpp_sid;   /* regs.gpp_sid, else regs.ext.gpp_sid */
        const msgpack_object *ext;
    } regs;

    struct {
        struct cidx_str tid;       /* source.tid, else source.ext.tid */
        struct ortb_schain schain; /* source.schain, else source.ext.schain */
    } source;

    int32_t at;                        /* 1 first price, 2 second price plus; 2 when absent */
    int32_t tmax;                      /* ms; 0 absent */
    int8_t test;                       /* 0 or 1 (absent: 0) */
    struct ortb_strs cur;              /* allowed currencies; empty: USD only */
    int32_t cattax;                    /* taxonomy of bcat; 1 when absent */
    struct ortb_strs bcat, badv, bapp; /* blocks; see blocks_truncated */
    bool blocks_truncated;             /* a block list was longer than ORTB_MAX_BLOCKS */
    struct ortb_strs wseat, bseat;
    const msgpack_object *ext;
};

/* ---- parsing ---- */

struct ortb_scratch;

/** A scratch for one thread's parses. @return 0 with *@p ret set, or ADS_ENOMEM. */
int ortb_scratch_new(struct ortb_scratch **ret);

/** Frees @p s (NULL allowed) and with it the last parsed request. */
void ortb_scratch_free(struct ortb_scratch *s);

/**
 * Parses a BidRequest of @p len bytes at @p body in @p fmt (see the file
 * comment for what is tolerated and what is refused). Invalidates the
 * request of the previous parse on @p s. @p body may go once this returns.
 * @p ret_diag and @p ret_fault may be NULL; they are written on failure.
 * @return 0 with *@p ret_req set; ADS_EBAD_REQUEST (400) with the reason in
 *   *@p ret_fault and the message and pointer in *@p ret_diag; ADS_ENOMEM.
 */
int ortb_parse(struct ortb_scratch *s, enum doc_fmt fmt, const char *body, size_t len, const struct ortb_req **ret_req,
               struct ads_diag *ret_diag, enum ortb_fault *ret_fault);

/**
 * cidx's taxonomy for an OpenRTB cattax value (AdCOM 1.0 List: Category
 * Taxonomies): 1 -> Content 1.0, 2 -> 2.0, 5 -> 2.1, 6 -> 2.2, 7 -> 3.0,
 * 9 -> 3.1; anything else (3 and 8 Ad Product, 4 Audience, 500+ vendor) ->
 * CIDX_TAX_NONE.
 */
enum cidx_taxonomy ortb_cattax_to_cidx(int64_t cattax);

/**
 * cidx's device name for an AdCOM device type: 1 (mobile/tablet, general) and
 * 4 -> "phone", 5 -> "tablet", 2 -> "desktop", 3 and 7 (set top box) -> "ctv",
 * 6 (connected device) and 8 (OOH) -> "other"; NULL for absent or unknown.
 */
const char *ortb_devicetype_name(int64_t devicetype);

/**
 * The ISO-3166-1 alpha-2 code of an alpha-3 code (@p len 3, case-insensitive),
 * or of an alpha-2 code (returned upper-cased); NULL when unknown. Static.
 */
const char *ortb_country_alpha2(const char *code, size_t len);

/**
 * Fills @p ret_q with impression @p imp of @p req at time @p now:
 *   country     device.geo.country, else user.geo.country, as alpha-2 when
 *               ortb_country_alpha2() knows it ("USA" -> "US"), else as
 *               sent (cidx compares campaign and request codes as alpha-2
 *               too, so a campaign that wrote "USA" matches);
 *   region      geo.region_code ("US-TX"), so region targeting works with
 *               an alpha-3 country;
 *   device      ortb_devicetype_name(device.devicetype);
 *   os          device.os_full ("iOS 17.1");
 *   language    device.language (device.langb when given: 2.6's BCP 47);
 *   domain      site.domain, else the host of site.page, else app.domain;
 *   bundle      app.bundle;
 *   categories  site's (else app's) cat + sectioncat + pagecat, in its
 *               cattax (absent: 1); a list longer than ORTB_MAX_CATS is
 *               passed with n > CIDX_Q_MAX_CATEGORIES, which cidx reads as
 *               matching every exclusion;
 *   segments    user.data[].segment[].id (the caller may replace them with
 *               the stored profile's segments);
 *   formats     banner (with its sizes), video (with its player size),
 *               native; audio has no cidx format;
 *   deals       the imp's deal ids, and pmp.private_auction.
 * The query points into @p req and lives as long as it.
 * @return 0, or ADS_EINVAL when @p imp >= req->nimps.
 */
int ortb_imp_query(const struct ortb_req *req, uint32_t imp, int64_t now, struct cidx_query *ret_q);

/** The index of the imp whose id is @p id, or -1. */
int32_t ortb_imp_find(const struct ortb_req *req, struct cidx_str id);

/* ---- the response ---- */

/** One bid. Strings with ptr NULL or len 0 are left out of the JSON. */
struct ortb_bid {
    struct cidx_str id;    /* required */
    struct cidx_str impid; /* required */
    int64_t price_micros;  /* CPM in micro-units of the response currency; > 0 */
    struct cidx_str adm, adid, crid, cid, dealid, bundle;
    const struct cidx_str *adomain;
    uint32_t nadomain;
    const struct cidx_str *cat;
    uint32_t ncat;
    int32_t cattax; /* taxonomy of cat; 0: left out (OpenRTB's default is 1) */
    uint16_t w, h;  /* 0: left out (both are written or neither) */
    int32_t mtype;  /* 1 banner, 2 video, 3 audio, 4 native; 0: left out */
    /* Notice URLs, written as given: the caller signs them and puts in the
     * OpenRTB macros (ORTB_MACRO_*) the exchange substitutes. */
    struct cidx_str nurl, burl, lurl;
    /* Written as ext {"adsmith": {"model": ...}} when not empty: the version
     * of the ranking model that priced the bid (issue 6: every bid traceable). */
    struct cidx_str model;
    struct cidx_str variant; /* ext.adsmith.variant when not empty: the served variant id, or "base" */
};

struct ortb_seatbid {
    struct cidx_str seat; /* left out when empty */
    const struct ortb_bid *bids;
    uint32_t nbids; /* >= 1 */
};

struct ortb_resp {
    struct cidx_str id;    /* the request's id; required */
    struct cidx_str bidid; /* left out when empty */
    struct cidx_str cur;   /* left out when empty (OpenRTB: USD) */
    const struct ortb_seatbid *seatbids;
    uint32_t nseatbids; /* 0: a no-bid */
    int32_t nbr;        /* no-bid reason (OpenRTB 3.0 list), written when nseatbids is 0 and nbr >= 0 */
};

/* No-bid reason codes (OpenRTB 2.5 section 5.24, continued by the OpenRTB 3.0
 * List: No-Bid Reason Codes, which keeps 0..10 and adds 11..17), the ones a
 * bidder uses. */
enum ortb_nbr {
    ORTB_NBR_UNKNOWN = 0,
    ORTB_NBR_TECHNICAL = 1,
    ORTB_NBR_INVALID_REQUEST = 2,
    ORTB_NBR_KNOWN_CRAWLER = 3,
    ORTB_NBR_SUSPECTED_NHT = 4,
    ORTB_NBR_PROXY = 5,
    ORTB_NBR_UNSUPPORTED_DEVICE = 6,
    ORTB_NBR_BLOCKED_PUBLISHER = 7,
    ORTB_NBR_UNMATCHED_USER = 8,
    ORTB_NBR_DAILY_USER_CAP = 9,
    ORTB_NBR_DAILY_DOMAIN_CAP = 10,
    ORTB_NBR_AUTH_MISSING = 11,
    ORTB_NBR_INSUFFICIENT_TIME = 15,
};

/**
 * Appends @p r as one BidResponse document in @p fmt to @p out. Prices are
 * written as JSON numbers equal to micros / 10^6, in the shortest form that
 * reads back exactly ("1.25", "0.03", "2.0"; below 0.0001 in exponent form,
 * "1e-05", still an exact JSON number); MessagePack gets a float 64.
 * @return 0; ADS_EINVAL when @p r breaks a rule above (a missing id or impid,
 *   a price <= 0, a seatbid without bids, an mtype out of 1..4; nothing useful
 *   is written then); -ENOBUFS when @p out overflowed.
 */
int ortb_resp_write(const struct ortb_resp *r, enum doc_fmt fmt, struct buf *out);

/** A no-bid body {"id":..., "nbr":...} (nbr < 0: left out). Same returns as ortb_resp_write(). */
int ortb_resp_nobid(struct cidx_str id, int32_t nbr, enum doc_fmt fmt, struct buf *out);

/* ---- checking a bid ---- */

/* X(enum suffix, stable name) */
#define ORTB_RULE_MAP(X)                                                                                               \
    X(OK, "ok")                                                                                                        \
    X(BID_ID, "bid_id_missing")                                                                                        \
    X(IMPID, "impid_unknown")                                                                                          \
    X(PRICE, "price_not_positive")                                                                                     \
    X(CUR, "cur_not_allowed")                                                                                          \
    X(SEAT, "seat_not_allowed")                                                                                        \
    X(DEAL, "deal_invalid")                                                                                            \
    X(FLOOR_FX, "floor_not_convertible")                                                                               \
    X(FLOOR, "price_below_floor")                                                                                      \
    X(MTYPE, "mtype_not_offered")                                                                                      \
    X(SIZE, "size_not_offered")                                                                                        \
    X(BADV, "adomain_blocked")                                                                                         \
    X(BCAT, "cat_blocked")                                                                                             \
    X(BAPP, "bundle_blocked")                                                                                          \
    X(BLOCKS_UNKNOWN, "block_list_too_long")

enum ortb_rule {
#define ORTB_RULE_ENUM_(name, str) ORTB_RULE_##name,
    ORTB_RULE_MAP(ORTB_RULE_ENUM_)
#undef ORTB_RULE_ENUM_
};

/** Stable name of @p r ("price_below_floor", ...); "unknown" out of range. Static. */
const char *ortb_rule_name(enum ortb_rule r);

/**
 * Currency conversion for floors: *@p ret_rate such that an amount in @p from
 * times the rate is the amount in @p to (both ISO-4217, 3 bytes, upper case).
 * @return 0, or negative when the pair is unknown.
 */
typedef int (*ortb_fx_fn)(void *ctx, const char *from, const char *to, double *ret_rate);

struct ortb_check_ctx {
    struct cidx_str cur;  /* the response's currency; empty: USD */
    struct cidx_str seat; /* the seatbid's seat; empty: none */
    ortb_fx_fn fx;        /* NULL: floors in another currency cannot be checked */
    void *fx_ctx;
};

/**
 * The first OpenRTB rule @p bid breaks as an answer to @p req, in this order:
 * bid id present; impid names an imp; price > 0; cur allowed (in req->cur, or
 * USD when that is empty); seat allowed (in wseat when given, not in bseat);
 * deal (dealid names one of the imp's deals whose wseat allows the seat;
 * required in a private auction); the floor (the deal's when dealid is set,
 * else the imp's) converted to the response currency through @p ctx->fx and
 * rounded up to the micro; mtype one the imp offers (1 banner, 2 video,
 * 3 audio, 4 native); size (a banner bid, by mtype 1 or, without mtype, an
 * imp offering only banner, must have a w x h among the imp's formats when
 * the imp lists any); no adomain blocked by badv (case-insensitive, a
 * blocked domain blocks its subdomains); no cat blocked by bcat when both
 * use the same taxonomy (an IAB 1.0 parent "IAB25" blocks "IAB25-3"); bundle
 * not in bapp; and, when any block list was truncated, BLOCKS_UNKNOWN for
 * any bid, since it cannot be shown to be unblocked.
 * @p ret_diag (may be NULL) gets a message and the bid's field on a violation.
 * @return ORTB_RULE_OK (0) or the rule.
 */
enum ortb_rule ortb_check_bid(const struct ortb_req *req, const struct ortb_bid *bid, const struct ortb_check_ctx *ctx,
                              struct ads_diag *ret_diag);

#endif
