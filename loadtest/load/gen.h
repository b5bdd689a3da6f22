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
    LGEN_KINDS
};

#define LGEN_PATH_MAX 256
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

struct lgen_req {
    enum lgen_kind kind;
    const char *method; /* static string */
    char path[LGEN_PATH_MAX];
    const char *content_type; /* static string, NULL without a body */
    struct lgen_buf body;     /* len 0: no body; owned by the request, reused by the next lgen_make() */
    int64_t intended_ns;      /* set by the caller: when the request should have gone out */
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
