/*
 * lgen: the requests adsmith-load sends. Every body is generated from a
 * seeded random stream, so no two requests of a run carry the same body,
 * and the same --seed replays the same workload.
 *
 * Users are numbered 0..users-1 and named by a hash of their number and the
 * seed ("u-<16 hex>"), so the data set `seed` writes and the traffic `run`
 * sends agree when both get the same --seed and --users. A user's activity
 * follows Zipf's law over its number: user 0 is the most active. Campaigns
 * are "load-c-<5 digits>", spread over 1000 advertisers "load-adv-<3 digits>"
 * (Zipf-distributed; a campaign's advertiser depends on its number only).
 *
 * Kinds that the daemon does not serve yet (bid: POST /openrtb2/bid, score:
 * POST /v1/score) generate their bodies all the same: the OpenRTB requests
 * are shaped like the files in ../shared/openrtb-examples/requests/. The /v1/score
 * body is provisional until schemas/ publishes that endpoint's schema.
 */
#ifndef ADSMITH_LOAD_GEN_H
#define ADSMITH_LOAD_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

enum lgen_kind {
    LGEN_HEALTHZ,       /* GET /healthz */
    LGEN_EVENTS,        /* POST /v1/events, a batch of `batch` events */
    LGEN_USERS,         /* PUT /v1/users/{id}, a whole profile */
    LGEN_USER_GET,      /* GET /v1/users/{id} */
    LGEN_CAMPAIGNS,     /* GET /v1/campaigns/{id} */
    LGEN_CAMPAIGN_EDIT, /* PATCH /v1/campaigns/{id}: bid amount, budget or name */
    LGEN_BID,           /* POST /openrtb2/bid, an OpenRTB 2.6 BidRequest */
    LGEN_SCORE,         /* POST /v1/score (provisional body) */
    LGEN_SEED_USER,     /* seed: PUT /v1/users/{id} of user `index` */
    LGEN_SEED_CAMPAIGN, /* seed: PUT /v1/campaigns/{id} of campaign `index` */
    LGEN_NOTICE,        /* feedback: GET of a won bid's nurl (made by the run from a bid answer, not by lgen_make) */
    LGEN_FEEDBACK,      /* feedback: POST /v1/events of the simulated impressions, clicks and conversions */
    LGEN_WIN_SCORE,     /* feedback: POST /v1/score of a won impression's context and campaign (adsmith's pCTR) */
    LGEN_LOSS_NOTICE,   /* feedback: GET of a lost bid's lurl, ${AUCTION_LOSS} = 102 (made by the run) */
    LGEN_POST_EMPTY,    /* POST / with a generated bid body: the empty server's baseline (bench-bid.sh) */
    LGEN_KINDS
};

#define LGEN_PATH_MAX 768 /* a notice URL of ours (about 300 bytes) with its signature fits */
#define LGEN_ID_MAX 40
#define LGEN_BATCH_MAX 1000 /* the server's limit on events per batch */
#define LGEN_USERS_MAX 1000000000ull
#define LGEN_CAMPAIGNS_MAX 99999ull

/** A growing byte buffer; a failed allocation sets `oom` and later appends do nothing. */
struct lgen_buf {
    char *p; /* NUL-terminated while len < cap; owned, freed by lgen_buf_free() */
    size_t len;
    size_t cap;
    bool oom;
};

void lgen_buf_reset(struct lgen_buf *b);
void lgen_buf_free(struct lgen_buf *b);
void lgen_buf_printf(struct lgen_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lgen_buf_append(struct lgen_buf *b, const void *data, size_t len);

struct lgen_cfg {
    uint64_t seed;      /* names users and drives every stream */
    uint64_t users;     /* users in the data set (>= 1) */
    uint64_t campaigns; /* campaigns in the data set (0: events name none, campaign kinds refuse) */
    double zipf_s;      /* exponent of user and campaign activity (default 1.1) */
    unsigned batch;     /* events per POST /v1/events, 1..LGEN_BATCH_MAX */
    bool no_event_ids;  /* send events without "id" (no deduplication records on the server) */
};

struct lgen {
    struct lgen_cfg cfg;
    struct lrng rng;
    struct lzipf zusers;
    struct lzipf zcampaigns;
    unsigned stream;  /* which generator of the run (a thread): part of every event id */
    uint64_t counter; /* requests made, part of every event and bid id */
};

#define LGEN_IMPS_MAX 3

/** What the generator chose for one impression of a bid request (the click simulator's features). */
struct lgen_imp_info {
    double floor;      /* CPM, USD */
    double deal_floor; /* 0 without a deal */
    int fmt;           /* 0 banner, 1 native, 2 video */
    int w, h, pos;
    char deal[16]; /* the deal's id, "" without one */
};

/** What the generator chose for a bid request. */
struct lgen_bid_info {
    uint64_t user;      /* user index */
    uint32_t placement; /* site or app number */
    uint32_t category;  /* index into the generator's content categories */
    bool app;
    int devtype;
    int hour; /* the user's local hour */
    int at;   /* auction type */
    unsigned nimp;
    struct lgen_imp_info imp[LGEN_IMPS_MAX]; /* impid "1", "2", ... */
    char auction[LGEN_ID_MAX + 24];          /* the request's id */
    /* the context as sent, for POST /v1/score of the same impression (static strings or copies) */
    char site[16];   /* "site-N", or "" for an app */
    char bundle[40]; /* the app's bundle, or "" for a site */
    const char *domain, *os, *country3, *region, *cat;
    int conn; /* connectiontype */
};

/** A won impression whose events wait for adsmith's score of it (LGEN_WIN_SCORE). */
struct lgen_win {
    char bid_id[LGEN_ID_MAX + 32];
    char campaign[64];
    char variant[64];
    uint64_t user;
    bool clicked, converted;
    int64_t value;  /* a conversion's value, micro-units */
    int64_t record; /* index of its record in the run's log, -1 when outside the measured window */
};

struct lgen_req {
    enum lgen_kind kind;
    const char *method; /* static string */
    char path[LGEN_PATH_MAX];
    const char *content_type; /* static string, NULL without a body */
    struct lgen_buf body;     /* len 0: no body; owned by the request, reused by the next lgen_make() */
    int64_t intended_ns;      /* set by the caller: when the request should have gone out */
    bool keep_response;       /* the connection keeps the whole response body in `response` */
    struct lgen_buf response; /* owned, reused; filled by the connection when keep_response */
    struct lgen_bid_info bid; /* LGEN_BID: what was generated */
    struct lgen_win win;      /* LGEN_WIN_SCORE: the impression scored */
};

/** The name of @p kind as --mix spells it ("events", "bid", ...). */
const char *lgen_kind_name(enum lgen_kind kind);

/** Finds the kind named @p name. @return 0 with it in @p ret_kind, or -EINVAL. */
int lgen_kind_parse(const char *name, enum lgen_kind *ret_kind);

/**
 * Prepares generator number @p stream of a run from @p cfg (copied).
 * @return 0, or -EINVAL when a figure in @p cfg is out of range.
 */
int lgen_init(struct lgen *g, const struct lgen_cfg *cfg, unsigned stream);

/**
 * Fills @p req with a new request of @p kind. @p index names the user or
 * campaign of the seed kinds and is ignored otherwise. @p now is the unix
 * time event and bid bodies are stamped with.
 * @return 0; -EINVAL for a campaign kind without campaigns; -ENOMEM.
 */
int lgen_make(struct lgen *g, enum lgen_kind kind, uint64_t index, int64_t now, struct lgen_req *req);

/**
 * Appends the POST /v1/score body that asks adsmith's pCTR of campaign
 * @p campaign on impression @p imp (0-based) of the bid request @p bi, in the
 * same context the bid request gave and for the same user.
 * @return 0, -EINVAL for an impression @p bi does not have, -ENOMEM.
 */
int lgen_score_of(const struct lgen_cfg *cfg, const struct lgen_bid_info *bi, unsigned imp, const char *campaign,
                  struct lgen_buf *b);

/**
 * Appends the MessagePack encoding of the JSON document @p json (@p len
 * bytes) to @p out: maps, arrays, strings, booleans and nil as such; numbers
 * with an integral value within +-2^53 as integers, others as float 64.
 * @return 0, -EINVAL when @p json does not parse, -ENOMEM.
 */
int lgen_msgpack_of(const char *json, size_t len, struct lgen_buf *out);

struct cJSON;
/**
 * Parses an answer body that is JSON or, when it starts like a MessagePack
 * map, MessagePack (the bid endpoint answers in the request's format).
 * @return a cJSON tree the caller frees with cJSON_Delete(), or NULL.
 */
struct cJSON *lgen_parse_answer(const char *p, size_t len);

/** Writes the id of user @p index into @p out. */
void lgen_user_id(const struct lgen_cfg *cfg, uint64_t index, char out[LGEN_ID_MAX]);

/** Writes the id of campaign @p index into @p out. */
void lgen_campaign_id(uint64_t index, char out[LGEN_ID_MAX]);

/**
 * Appends the campaign document of campaign @p index (valid against
 * schemas/campaign.schema.json and the service's semantic rules; the same
 * document for the same seed, index and @p now) to @p b.
 * @return 0 or -ENOMEM.
 */
int lgen_campaign_doc(const struct lgen_cfg *cfg, uint64_t index, int64_t now, struct lgen_buf *b);

/**
 * Appends a profile document of user @p index drawn from @p rng to @p b.
 * @return 0 or -ENOMEM.
 */
int lgen_profile_doc(const struct lgen_cfg *cfg, uint64_t index, int64_t now, struct lrng *rng, struct lgen_buf *b);

#endif
