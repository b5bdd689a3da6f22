/*
 * cidx: the compiled campaign index (issue 4, point 4).
 *
 * The bid path asks one question per impression: which active campaigns may
 * bid on it? The answer is a bitset with one bit per campaign of the index,
 * computed from precompiled per-value bitsets (about 2.4 us for 10,000
 * campaigns, some 200 times faster than testing each campaign), without
 * allocating and without locks.
 *
 * Life cycle, all off the bid path:
 *   1. cidx_camp_from_doc() turns each validated campaign document into a
 *      compact record (struct cidx_camp) that owns its memory;
 *   2. a builder collects the records (cidx_builder_add) and compiles them
 *      (cidx_build) at a time `now` into an immutable struct cidx;
 *   3. the owner publishes the index to the bid threads with a holder
 *      (hold.h), which swaps in a new one without blocking them, and
 *      rebuilds when the campaigns change and at the latest at
 *      cidx_valid_until().
 *
 * Matching rules (schemas/campaign.schema.json, "targeting"): members combine
 * with AND, values within a member with OR, an exclude or block list wins over
 * an include or allow list, and an absent member does not restrict. Per
 * dimension:
 *   country   ISO 3166-1 alpha-2 or alpha-3, case-insensitive: campaign and
 *             request codes are both compared as alpha-2 where the table
 *             (ortb_country_alpha2) knows them ("USA" matches "US"), else
 *             as written;
 *   region    "CC-R" built from the request's country (as alpha-2) and
 *             region ("US" or "USA" and "TX" make "US-TX"; a region already
 *             written "US-TX" is used as is);
 *   device    phone, tablet, desktop, ctv, other (case-insensitive);
 *   os        case-insensitive; a campaign value matches when the request's OS
 *             name starts with it and the next character is not a letter or a
 *             digit ("iOS" matches "iOS 17.1", not "iOSX");
 *   language  BCP 47, case-insensitive, "_" read as "-"; a campaign tag
 *             matches itself and its subtags ("en" matches "en-US");
 *   categories the request's ids in the request's taxonomy (q->cattax); a
 *             campaign's include and exclude lists only ever match ids of
 *             their own taxonomy (no mapping between taxonomies);
 *   domains   lower-cased, one trailing "." dropped; a listed domain matches
 *             itself and its subdomains;
 *   bundles   exact;
 *   segments  exact, against the user's segment ids;
 *   formats   the impression offers formats: banner (with its sizes) matches a
 *             campaign that bids on banner with one of those sizes; native
 *             matches a campaign that bids on native; video matches a campaign
 *             that bids on video and either lists no sizes or lists the player
 *             size (an unknown player size, 0x0, then matches nothing);
 *   deals     a deals_only campaign needs one of its deals in the impression;
 *             in a private auction (q->private_auction) every campaign does;
 *   flight    start <= now < end;
 *   dayparting the campaign's windows, in its own time zone, evaluated at the
 *             start of the 15-minute UTC slot that holds `now` (exact for
 *             every zone whose offsets and changes fall on quarter hours,
 *             which is every zone in use since the 1970s).
 *
 * Limits. Strings the request carries that are longer than the schema allows
 * of the values they are compared with match nothing (a bounded stack buffer
 * normalises them). Of the request's lists, only the first CIDX_Q_MAX_*
 * entries are looked up; for the exclude and block dimensions a longer list
 * (or a domain or bundle too long to look up) counts as matching every
 * exclusion, so that a long list can never be used to slip past a block.
 */
#ifndef ADSMITH_CIDX_H
#define ADSMITH_CIDX_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/err.h"
#include "adsmith/tz.h"

#define CIDX_MAX_CAMPAIGNS 100000 /* campaigns in one index */
#define CIDX_WORDS_MAX ((CIDX_MAX_CAMPAIGNS + 63) / 64)

#define CIDX_ID_MAX 64 /* campaign and advertiser ids, bytes */
#define CIDX_TZ_MAX 64 /* time zone name, bytes */

/* Longest values the schema allows, in bytes; longer request values match nothing. */
#define CIDX_COUNTRY_MAX 3
#define CIDX_REGION_MAX 6 /* "US-TX", "AT-9", "FR-75C" */
#define CIDX_OS_MAX 32
#define CIDX_LANGUAGE_MAX 16
#define CIDX_CATEGORY_MAX 16
#define CIDX_DOMAIN_MAX 253
#define CIDX_BUNDLE_MAX 128
#define CIDX_SEGMENT_MAX 64
#define CIDX_DEAL_MAX 64

/* Most entries of each request list that are looked up (see "Limits" above). */
#define CIDX_Q_MAX_CATEGORIES 32
#define CIDX_Q_MAX_SEGMENTS 64
#define CIDX_Q_MAX_SIZES 16
#define CIDX_Q_MAX_DEALS 16
#define CIDX_Q_MAX_LABELS 32 /* labels of a domain; a domain with more is too long to look up */

/* Dayparting resolution and the span an index precomputes. */
#define CIDX_SLOT_SECONDS 900
#define CIDX_WINDOW_SLOTS 672 /* one week */

enum cidx_status { CIDX_DRAFT, CIDX_ACTIVE, CIDX_PAUSED, CIDX_ARCHIVED };

enum cidx_format { CIDX_FMT_BANNER = 1u << 0, CIDX_FMT_NATIVE = 1u << 1, CIDX_FMT_VIDEO = 1u << 2 };

enum cidx_device {
    CIDX_DEV_PHONE = 1u << 0,
    CIDX_DEV_TABLET = 1u << 1,
    CIDX_DEV_DESKTOP = 1u << 2,
    CIDX_DEV_CTV = 1u << 3,
    CIDX_DEV_OTHER = 1u << 4,
};

/* The schema's taxonomy names, in order; CIDX_TAX_NONE: not given or unknown. */
enum cidx_taxonomy {
    CIDX_TAX_NONE,
    CIDX_TAX_CONTENT_1_0,
    CIDX_TAX_CONTENT_2_0,
    CIDX_TAX_CONTENT_2_1,
    CIDX_TAX_CONTENT_2_2,
    CIDX_TAX_CONTENT_3_0,
    CIDX_TAX_CONTENT_3_1,
};

enum cidx_strategy { CIDX_MAX_CPM, CIDX_TARGET_CPC, CIDX_TARGET_CPA };

enum cidx_pacing { CIDX_PACING_EVEN, CIDX_PACING_ASAP };

/** A string: @p len bytes at @p ptr. In a record also NUL-terminated; in a query not necessarily. */
struct cidx_str {
    const char *ptr;
    size_t len;
};

struct cidx_list {
    uint32_t n;
    const struct cidx_str *v;
};

struct cidx_size {
    uint16_t w, h;
};

#define CIDX_NO_END INT64_MAX /* flight_end of a campaign without an end */

/**
 * One campaign, as the index and the decision code need it. Strings are
 * NUL-terminated; every pointer points into the record's own allocation and
 * lives as long as the record (for a record in an index: as long as the index).
 * Absent lists have n = 0 and do not restrict. os and languages are
 * lower-cased, domains lower-cased; everything else is as the document wrote it.
 */
struct cidx_camp {
    char id[CIDX_ID_MAX + 1];
    char advertiser[CIDX_ID_MAX + 1];
    char currency[4];
    char time_zone[CIDX_TZ_MAX + 1];
    enum cidx_status status;
    int64_t flight_start, flight_end; /* unix seconds, end exclusive or CIDX_NO_END */

    enum cidx_strategy strategy;
    int64_t bid_micros;         /* CPM, CPC or CPA of the strategy */
    int64_t ceiling_cpm_micros; /* 0: none */
    enum cidx_pacing pacing;
    int64_t daily_budget_micros, total_budget_micros; /* 0: none */
    uint32_t cap_hour, cap_day, cap_lifetime;         /* frequency caps, 0: none */
    struct cidx_list adomain;
    enum cidx_taxonomy creative_taxonomy; /* CIDX_TAX_NONE when creative_categories is absent */
    struct cidx_list creative_categories;

    /* targeting */
    struct cidx_list countries, regions, os, languages;
    uint32_t devices; /* enum cidx_device bits; 0 = any */
    enum cidx_taxonomy cat_taxonomy;
    struct cidx_list cat_include, cat_exclude;
    struct cidx_list domain_allow, domain_block, bundle_allow, bundle_block;
    struct cidx_list seg_include, seg_exclude;
    struct cidx_list deals;
    bool deals_only;
    uint32_t formats;  /* enum cidx_format bits: targeting.formats, else the creatives present */
    bool sizes_listed; /* targeting.sizes given: video player sizes must match them too */
    uint32_t nsizes;   /* banner sizes: targeting.sizes, else the banner creative's */
    struct cidx_size sizes[32];
    bool has_daypart;
    uint64_t daypart[3]; /* bit day * 24 + hour of local time, Monday = day 0 */

    /* Set by cidx_build(): the loaded zone, owned by the index. NULL before. */
    const struct tz *zone;
    size_t bytes; /* of the record's one allocation */
};

/**
 * Makes a record from one campaign document (the map doc_parse() returns)
 * that passed camp_validate(). Unknown members are ignored; missing required
 * ones, wrong types and lists or strings beyond the schema's limits are
 * refused, so that an unvalidated document cannot make the index unbounded.
 * @return 0 with *@p ret set (free with cidx_camp_free), ADS_EINVAL (with
 *   @p ret_diag, which may be NULL, naming the member), or ADS_ENOMEM.
 */
int cidx_camp_from_doc(const msgpack_object *doc, struct cidx_camp **ret, struct ads_diag *ret_diag);

void cidx_camp_free(struct cidx_camp *c);

/**
 * A copy of @p c that owns its own memory, with no zone (a record in an index
 * may be cloned while readers use it: the copy only reads it). Lets an owner
 * keep compiled records across builds, since a build takes its records.
 * @return 0 with *@p ret set, or ADS_ENOMEM.
 */
int cidx_camp_clone(const struct cidx_camp *c, struct cidx_camp **ret);

/* ---- building ---- */

struct cidx_builder;
struct cidx;

int cidx_builder_new(struct cidx_builder **ret);

/** Frees the builder and every record still in it. */
void cidx_builder_free(struct cidx_builder *b);

/**
 * Adds @p c; the builder owns it from now on, whatever the result. A record
 * whose status is not active is freed at once and only counted (stats).
 * @return 0, ADS_EINVAL when CIDX_MAX_CAMPAIGNS records are already in
 *   (the record is freed), or ADS_ENOMEM (freed too).
 */
int cidx_builder_add(struct cidx_builder *b, struct cidx_camp *c);

/**
 * Compiles the records into an index valid from @p now (unix seconds) until
 * cidx_valid_until(). On success the records move into the index, in the
 * order they were added (campaigns whose time zone cannot be loaded are
 * dropped and counted), and the builder is empty again, ready for reuse; on
 * failure it is unchanged.
 * @return 0 with *@p ret set (free with cidx_free), or ADS_ENOMEM.
 */
int cidx_build(struct cidx_builder *b, int64_t now, struct cidx **ret);

void cidx_free(struct cidx *ix);

struct cidx_stats {
    uint32_t campaigns;        /* in the index */
    uint32_t dropped_inactive; /* added with a status other than active */
    uint32_t dropped_zone;     /* time zone not loadable */
    uint32_t zones;            /* distinct time zones */
    uint32_t keys;             /* distinct targeting values */
    uint32_t dense, sparse;    /* values stored as bitsets / as index lists */
    uint32_t slot_sets;        /* distinct time-slot bitsets of the window */
    size_t bytes;              /* memory held, records excluded */
};

void cidx_stats(const struct cidx *ix, struct cidx_stats *ret);

/** Campaigns in the index. */
uint32_t cidx_count(const struct cidx *ix);

/** 64-bit words of an eligibility bitset of @p ix: (count + 63) / 64, at most CIDX_WORDS_MAX. */
size_t cidx_words(const struct cidx *ix);

/** The @p i-th campaign (i < cidx_count()); valid as long as the index. */
const struct cidx_camp *cidx_camp(const struct cidx *ix, uint32_t i);

/* ---- prepared for the bid decision ---- */

#define CIDX_FEAT_CATEGORIES 8 /* creative categories of a campaign the ranking model sees */

/* Index of a creative token in struct cidx_feat. */
enum cidx_creative { CIDX_CREATIVE_BANNER, CIDX_CREATIVE_VIDEO, CIDX_CREATIVE_NATIVE, CIDX_CREATIVE_N };

/**
 * A campaign's candidate features for the ranking model (rank.h, "adsmith"
 * schema), hashed once by cidx_build() so that the bid path neither formats
 * nor hashes them: each token is ctr_hash(text, len, 0) of
 *   campaign      the id;
 *   advertiser    the advertiser id;
 *   creative      "<id>/banner", "<id>/video", "<id>/native" (enum cidx_creative);
 *   categories    the first CIDX_FEAT_CATEGORIES creative categories, as written.
 * Tokens do not depend on a model: one preparation serves every model version.
 */
struct cidx_feat {
    uint64_t campaign, advertiser;
    uint64_t creative[CIDX_CREATIVE_N];
    uint64_t categories[CIDX_FEAT_CATEGORIES];
    uint32_t ncategories;
};

/**
 * The prepared features of every campaign: cidx_count() entries, entry i for
 * cidx_camp(ix, i), in one dense array. Valid as long as the index.
 */
const struct cidx_feat *cidx_feats(const struct cidx *ix);

#define CIDX_SIZE_BITS 64 /* banner sizes of an index a brief can name as bits */

/**
 * What the bid decision reads of every candidate, copied from the campaign's
 * record into one cache line of a dense array (cidx_briefs()), so that a scan
 * over thousands of candidates reads memory in order instead of touching one
 * record each. Same meanings as in struct cidx_camp.
 */
struct cidx_brief {
    int64_t bid_micros, ceiling_cpm_micros;
    int64_t daily_budget_micros, total_budget_micros;
    char currency[4];
    uint8_t strategy;   /* enum cidx_strategy */
    uint8_t pacing;     /* enum cidx_pacing */
    uint8_t formats;    /* enum cidx_format bits */
    uint8_t capped;     /* 1: a frequency cap is set */
    uint8_t sizes_in;   /* 1: size_bits is exactly the record's banner sizes; 0: read the record's sizes */
    uint64_t size_bits; /* bit cidx_size_bit(w, h) set for each banner size of the campaign */
};

/** The brief of every campaign: cidx_count() entries, as cidx_feats(); valid as long as the index. */
const struct cidx_brief *cidx_briefs(const struct cidx *ix);

/**
 * The bit of banner size @p w x @p h in cidx_brief.size_bits (0..CIDX_SIZE_BITS-1),
 * or -1 when no campaign whose sizes_in is 1 has that size. The first
 * CIDX_SIZE_BITS distinct sizes of the index (in index order) have a bit.
 */
int cidx_size_bit(const struct cidx *ix, uint16_t w, uint16_t h);

/** The @p now the index was built for. */
int64_t cidx_built_at(const struct cidx *ix);

/**
 * The first instant at which the precomputed flight and dayparting state may
 * no longer hold: the earliest flight start or end after the build, and at
 * the latest the end of the precomputed week. The owner should rebuild by
 * then. Queries outside [built_at, valid_until) still answer exactly, on a
 * slower path that checks flight and dayparting campaign by campaign.
 */
int64_t cidx_valid_until(const struct cidx *ix);

/* ---- querying (the bid path) ---- */

/**
 * One impression's context. Every string is optional (ptr NULL or len 0 =
 * unknown: then only campaigns that do not restrict that dimension match).
 * Nothing is retained after cidx_eligible() returns.
 */
struct cidx_query {
    struct cidx_str country, region, device, os, language;
    struct cidx_str domain, bundle;
    enum cidx_taxonomy cattax;
    const struct cidx_str *categories;
    uint32_t ncategories;
    const struct cidx_str *segments; /* the user's segment ids */
    uint32_t nsegments;
    uint32_t formats; /* enum cidx_format bits offered */
    const struct cidx_size *banner_sizes;
    uint32_t nbanner_sizes;
    struct cidx_size video_size;  /* player size; 0x0 unknown */
    const struct cidx_str *deals; /* imp.pmp.deals[].id */
    uint32_t ndeals;
    bool private_auction;
    int64_t now; /* unix seconds */
};

/**
 * Fills @p out (cidx_words(ix) words, caller-provided) with the campaigns
 * eligible for @p q: bit i (word i / 64, bit i % 64) set for campaign i.
 * Thread-safe on a shared index; allocates nothing and takes no lock; uses
 * about 14 KiB of stack. Cost: a hash lookup per request value, then one
 * vectorised pass over the bitset per restricting dimension (about 2.4 us
 * for 10,000 campaigns; loadtest/bench_index.c measures it).
 * @return the number of bits set.
 */
uint32_t cidx_eligible(const struct cidx *ix, const struct cidx_query *q, uint64_t *out);

#endif
