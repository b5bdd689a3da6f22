/*
 * score: POST /v1/score (issue 6) for platforms that run their own auction.
 * No HTTP, no logging, no writes.
 *
 * A request (schemas/score-request.schema.json) names a user (a stored
 * profile by id or alias, or an inline profile in the shape PUT /v1/users
 * takes), an impression's context in the fields of the ranking model's
 * "adsmith" serving schema (rank.h), optional privacy signals, and up to
 * SCORE_MAX_CANDIDATES candidates (a campaign id and optionally a creative
 * format). The answer (schemas/score-response.schema.json) gives every
 * candidate, in the order sent, the served model's calibrated click
 * probability and its rank among the candidates scored.
 *
 * Features are the bid path's (service/bid/decide.c), so that a candidate
 * scores here what it would score in a bid request with the same context:
 *   user       with a profile in use: "key=value" attributes (country,
 *              region, city, language, device, os), segment ids, interest
 *              ids, seconds since the user was last seen;
 *   context    site, app, domain, up to SCORE_MAX_CATEGORIES categories,
 *              device (OpenRTB devicetype, as its decimal text), os,
 *              country (as alpha-2 when ortb_country_alpha2() knows it),
 *              region ("CC-R" built from the country unless it holds a
 *              '-'), hour of day (context.hour, else of context.ts or the
 *              server's clock, shifted by context.utcoffset minutes), pos
 *              and conn (OpenRTB integers, as decimal text), deal;
 *   impression the candidate's creative format ("banner", "video",
 *              "native") and, for banner and video, context.size;
 *   candidate  campaign id, advertiser, "<campaign>/<format>", the first
 *              CIDX_FEAT_CATEGORIES creative categories (cidx_feats()).
 *
 * Privacy: the profile (stored or inline) is not used at all, and the answer
 * is contextual only, when bid_privacy() would say so for a bid request with
 * the same signals: coppa=1, gdpr=1 without a consent string, us_privacy
 * opting out of sale, lmt=1 or dnt=1, or a profile whose consent says no
 * personalisation or opts out of sale.
 *
 * Eligibility of a candidate (reason when not eligible):
 *   "unknown_campaign"  no campaign has that id: score null;
 *   "not_active"        stored, but not in the compiled index (paused, draft,
 *                       archived, flight over, or not compiled yet): score null;
 *   "no_creative"       the campaign has no creative of the format asked for
 *                       (or of any format, when none was asked): score null;
 *   "not_targeted"      the campaign's targeting (cidx_eligible()) excludes the
 *                       context, the user's segments or the format: scored
 *                       (the model does not know targeting), eligible false.
 * Budgets, pacing, frequency caps and floors are the bid path's, not applied
 * here: a platform asking for scores prices on its own.
 *
 * Ranks: candidates with a score are ranked 1 (highest) to n; equal scores
 * keep the order they were sent in. Candidates without a score have no rank.
 */
#ifndef ADSMITH_SCORE_H
#define ADSMITH_SCORE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/cidx.h"
#include "adsmith/doc.h"
#include "adsmith/err.h"
#include "adsmith/profile.h"
#include "adsmith/rank.h"

#define SCORE_MAX_CANDIDATES 1000 /* candidates in one request; more: ADS_EBODY_TOO_LARGE (413) */
#define SCORE_MAX_CATEGORIES 8    /* context categories (the bid path uses as many) */
#define SCORE_TOKEN_MAX 256       /* bytes of a context string (site, app, domain, os, category, region) */
#define SCORE_DEAL_MAX 64         /* bytes of a deal id */

/* What a candidate asks for: a creative format, or none (SCORE_CREATIVE_ANY). */
#define SCORE_CREATIVE_ANY (-1)

enum score_reason {
    SCORE_OK,
    SCORE_UNKNOWN_CAMPAIGN,
    SCORE_NOT_ACTIVE,
    SCORE_NO_CREATIVE,
    SCORE_NOT_TARGETED,
};

/** "unknown_campaign", ...; "" for SCORE_OK. Static. */
const char *score_reason_name(enum score_reason r);

/** A parsed request; strings point into the document it was parsed from. Opaque. */
struct score_req;

/** Allocates an empty request (about 110 KiB: an inline profile and SCORE_MAX_CANDIDATES). 0 or ADS_ENOMEM. */
int score_req_new(struct score_req **ret);

/** Accepts NULL. */
void score_req_free(struct score_req *q);

/**
 * Validates document @p doc (doc_parse()'s tree; it must outlive @p q's use)
 * and fills @p q. Unknown members are refused.
 * @return 0; ADS_EINVAL with @p ret_diag (may be NULL) giving the JSON
 *   pointer of the offending member ("/candidates/3/campaign",
 *   "/user/profile/segments/0/id") and what to send instead;
 *   ADS_EBODY_TOO_LARGE (pointer "/candidates") for more than
 *   SCORE_MAX_CANDIDATES candidates.
 */
int score_req_parse(struct score_req *q, const msgpack_object *doc, struct ads_diag *ret_diag);

/** The stored user the request names: *@p ret_id (NULL: none, an inline profile or no user) and its alias source (NULL:
 * the id itself). Point into the document. */
void score_req_user(const struct score_req *q, const char **ret_id, size_t *ret_len, const char **ret_source,
                    size_t *ret_source_len);

/**
 * Whether the campaign id @p id exists in storage at all (any status); lets
 * score_run() tell "not_active" from "unknown_campaign".
 */
typedef bool (*score_exists_fn)(void *ctx, const char *id);

struct score_env {
    const struct cidx *ix;           /* the index; NULL: no campaign is active */
    const struct rank_model *model;  /* of the "adsmith" serving schema */
    const struct prof_view *profile; /* the stored profile of the named user, or NULL; ignored with an inline one */
    score_exists_fn exists;          /* NULL: every campaign outside the index is "unknown_campaign" */
    void *exists_ctx;
    int64_t now; /* unix seconds */
};

struct score_item {
    int32_t index;            /* of the campaign in env->ix; -1: not in it */
    int32_t creative;         /* enum cidx_creative scored, or SCORE_CREATIVE_ANY when none */
    enum score_reason reason; /* SCORE_OK: eligible */
    bool scored;              /* false: score and rank are null */
    double score;             /* calibrated click probability */
    uint32_t rank;            /* 1 = best, among the scored */
};

struct score_result {
    char model_version[32];
    bool user_found;  /* a stored profile was given (env->profile), or an inline one */
    bool contextual;  /* privacy: the profile was not used */
    uint32_t privacy; /* enum bid_privacy bits (bid.h); 0 when the profile could be used */
    uint32_t n;       /* candidates, as sent */
    uint32_t nscored;
    struct score_item items[SCORE_MAX_CANDIDATES];
};

/**
 * Scores every candidate of @p q (see the file comment). Allocates about
 * 40 KiB of scratch for the call; costs one pass over the index's campaigns (to find the candidates by id),
 * one eligibility query per creative format asked for, and one model score
 * per candidate.
 * @return 0 with *@p ret filled (ret->items[i] for candidate i),
 *   ADS_EINVAL when @p env has no model, or ADS_ENOMEM.
 */
int score_run(const struct score_req *q, const struct score_env *env, struct score_result *ret);

/**
 * Writes the answer (schemas/score-response.schema.json) with @p w:
 * {"model","user_found","contextual","scored","scores":[{"campaign","creative",
 * "score","rank","eligible","reason"?}]}, scores in the order sent.
 * Candidate ids are read from @p q's document, which must still be alive.
 */
void score_write(const struct score_req *q, const struct score_result *res, struct docw *w);

#endif
