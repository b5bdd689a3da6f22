/*
 * rank: adsmith's compact click model (models/rank/): featurizer, trainer,
 * calibration, the model file and scoring. models/README.md documents the
 * family chosen, the file format and the measurements behind both.
 *
 * This header starts with the part the CLI (`adsmith train`, `adsmith eval`)
 * needs; the serving API (per-request user and context features computed
 * once, candidates scored with no allocation, model information for /metrics)
 * follows it.
 *
 * Threads: a struct rank_model is immutable once rank_model_open() returned,
 * and the library keeps no global mutable state, so any number of threads may
 * score one model at the same time, and one thread may open a new model and
 * close an old one while others still score a model they hold. Closing a model
 * that another thread still scores is the caller's error (hot reload keeps the
 * old one alive until its last reader is done).
 */
#ifndef ADSMITH_RANK_H
#define ADSMITH_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "adsmith/ctr.h"
#include "adsmith/err.h"

/* ---- training ---- */

struct rank_train_opts {
    uint64_t seed;      /* training is reproducible for a given seed */
    double neg_rate;    /* keep each negative with this probability (1: no downsampling); corrected in the model */
    uint32_t epochs;    /* 0: chosen on the validation split (early stopping), at most 50 */
    const char *family; /* NULL: the default family ("lr"); "lr" or "fm"; see models/README.md */
    /* Fields below were added after the first version; zero means the default. */
    uint32_t bits;       /* log2 of the hashed weight table: 10..24; 0: 18 */
    uint32_t fm_k;       /* factors per feature for "fm": 1..RANK_FM_K_MAX; 0: 4 */
    const char *crosses; /* "a*b,c*d": field pairs crossed (names of the schema); NULL: none */
    uint32_t folds;      /* validation: 0: 5-fold (contiguous blocks) up to 200,000 rows, else a holdout of the
                            last valid_frac rows; 1: that holdout always; 2..8: that many folds */
    double valid_frac;   /* the holdout: the last rows, (0, 0.5]; 0: 0.2 */
    double l1, l2, alpha; /* FTRL-Proximal; 0 for all three: chosen on the validation split */
    const char *source;   /* free text kept in the file as the training window ("criteo rows 0..3377") */
    int64_t trained_at;   /* unix seconds kept in the file; 0: none (keeps files byte-identical) */
    uint32_t min_count;   /* a token seen fewer times in training shares its field's "rare" weight; 0: chosen
                             by the validation (see models/README.md), 1: off, else 2..1000 */
};

struct rank_trainer;

/**
 * A trainer for rows of @p schema. @p opts may be NULL (defaults).
 * @return 0, ADS_EINVAL for an option out of range or a cross naming an
 *   unknown field (@p diag says which), ADS_ENOMEM.
 */
int rank_trainer_new(const struct ctr_schema *schema, const struct rank_train_opts *opts,
                     struct rank_trainer **ret, struct ads_diag *diag);

/**
 * Adds a training row (the trainer keeps its hashed features: training makes
 * several passes). Rows must come in time order: the last valid_frac of them
 * are the validation split. A negative may be dropped (opts.neg_rate).
 * @return 0, ADS_EINVAL (label not 0/1, or a field index outside the schema), ADS_ENOMEM.
 */
int rank_trainer_add(struct rank_trainer *t, const struct ctr_row *row);

/**
 * Trains on the rows added: hyper-parameters and epochs chosen on the
 * validation rows (opts.folds: cross-validation folds, or a holdout of the
 * newest rows scored by a model trained on the rows before it), Platt
 * calibration fitted on those out-of-sample scores, then the final model
 * trained on all rows with the chosen settings.
 * @p progress (may be NULL) is called with a fraction in [0,1].
 * @return 0, ADS_EINVAL (fewer than 10 rows, or no positive or no negative
 *   in either split), ADS_ENOMEM.
 */
int rank_trainer_fit(struct rank_trainer *t, void (*progress)(void *ctx, double frac), void *ctx,
                     struct ads_diag *diag);

/** Writes the trained model to @p path (via a temporary file, fsync and rename). ADS_EINVAL before fit. */
int rank_trainer_write(const struct rank_trainer *t, const char *path, struct ads_diag *diag);

void rank_trainer_free(struct rank_trainer *t);

/* ---- the model file ---- */

struct rank_model;

/**
 * Maps and checks a model file: magic, version, size, checksum, schema,
 * no NaN or infinite weight, golden predictions. Anything wrong is refused
 * with ADS_EDATA_INVALID and a sentence in @p diag; nothing is kept. A file
 * that cannot be opened gives its negative errno.
 */
int rank_model_open(const char *path, struct rank_model **ret, struct ads_diag *diag);

/**
 * Checks a model image already in memory (8-byte aligned, @p size bytes), as
 * rank_model_open() checks a file. The image is borrowed: it must outlive the
 * model. For the default model compiled into the binary.
 */
int rank_model_open_mem(const void *image, size_t size, struct rank_model **ret, struct ads_diag *diag);

/** Unmaps the model (a borrowed image stays). Accepts NULL. No thread may still score it. */
void rank_model_close(struct rank_model *m);

/**
 * Checks that rows of @p schema (a reader's) can be scored by @p m: same field
 * names and kinds in the same order. ADS_EDATA_INVALID with a sentence naming the first difference.
 */
int rank_model_check_schema(const struct rank_model *m, const struct ctr_schema *schema, struct ads_diag *diag);

/** Calibrated click probability of one row read by a ctr reader of the model's schema. */
double rank_model_predict_row(const struct rank_model *m, const struct ctr_row *row);

enum rank_type { RANK_TYPE_LR = 1, RANK_TYPE_FM = 2 };

/** What a model is, for /metrics, logs and bid traces. Strings point into the model (valid until close). */
struct rank_info {
    char version[32];      /* "lr-<16 hex digits of the checksum>": changes with any byte of the file */
    const char *schema;    /* the schema's id: "adsmith", "criteo", ... */
    uint64_t schema_id;    /* hash of the schema's id, field names and kinds */
    uint64_t hash_seed;
    enum rank_type type;
    const char *type_name; /* "lr" or "fm" */
    uint32_t bits, fm_k, nfields, ncrosses;
    uint64_t file_size;
    /* training window */
    const char *source;     /* opts.source at training */
    uint64_t first_line, last_line; /* ctr_row.line of the first and last training row */
    uint64_t rows, positives;       /* rows trained on (after downsampling) */
    int64_t trained_at;             /* 0: not recorded */
    double neg_rate;
    /* metrics snapshot on the validation split (model trained before it, calibrated) */
    uint64_t valid_rows, valid_positives;
    double valid_logloss, valid_auc, valid_calibration;
    double l1, l2, alpha;
    uint32_t epochs;
    uint32_t min_count; /* rare-token threshold (0: none) */
};

void rank_model_info(const struct rank_model *m, struct rank_info *ret);

/* ---- the serving schema "adsmith" ----
 *
 * The fields the service fills from a bid request, the user's profile and a
 * candidate; the ctr reader's "adsmith" format (JSON Lines of labelled
 * impressions) uses the same names. Categorical tokens are the texts as the
 * service sees them (ctr_hash(text, len, 0)); a field may hold several
 * tokens (segments, categories). Numbers: freq and recency.
 *
 * X(ENUM, "name", kind, group)
 */
#define RANK_ADSMITH_FIELDS(X)                                                                                         \
    /* user (profile): computed once per request */                                                                    \
    X(ATTR, "attr", CTR_CAT, RANK_GROUP_USER)             /* "key=value" profile attributes */                         \
    X(SEGMENT, "segment", CTR_CAT, RANK_GROUP_USER)       /* segment ids */                                            \
    X(INTEREST, "interest", CTR_CAT, RANK_GROUP_USER)     /* interest categories */                                    \
    X(FREQ, "freq", CTR_NUM, RANK_GROUP_USER)             /* ads shown to the user in the last 24 h */                 \
    X(RECENCY, "recency", CTR_NUM, RANK_GROUP_USER)       /* seconds since the user's last event */                    \
    /* request context: computed once per request */                                                                   \
    X(SITE, "site", CTR_CAT, RANK_GROUP_CONTEXT)          /* site id */                                                \
    X(APP, "app", CTR_CAT, RANK_GROUP_CONTEXT)            /* app id or bundle */                                       \
    X(DOMAIN, "domain", CTR_CAT, RANK_GROUP_CONTEXT)      /* site domain or app domain */                              \
    X(CATEGORY, "category", CTR_CAT, RANK_GROUP_CONTEXT)  /* content categories of the site or app */                 \
    X(DEVICE, "device", CTR_CAT, RANK_GROUP_CONTEXT)      /* device type (OpenRTB devicetype) */                       \
    X(OS, "os", CTR_CAT, RANK_GROUP_CONTEXT)              /* operating system */                                       \
    X(COUNTRY, "country", CTR_CAT, RANK_GROUP_CONTEXT)    /* geo country */                                            \
    X(REGION, "region", CTR_CAT, RANK_GROUP_CONTEXT)      /* geo region */                                             \
    X(HOUR, "hour", CTR_CAT, RANK_GROUP_CONTEXT)          /* hour of day "0".."23" in the user's time zone */          \
    X(FORMAT, "format", CTR_CAT, RANK_GROUP_CONTEXT)      /* "banner", "video", "native" */                            \
    X(SIZE, "size", CTR_CAT, RANK_GROUP_CONTEXT)          /* "WxH", e.g. "320x50" */                                   \
    X(POS, "pos", CTR_CAT, RANK_GROUP_CONTEXT)            /* ad position (OpenRTB pos) */                              \
    X(CONN, "conn", CTR_CAT, RANK_GROUP_CONTEXT)          /* connection type (OpenRTB connectiontype) */               \
    X(DEAL, "deal", CTR_CAT, RANK_GROUP_CONTEXT)          /* deal id, when the impression is offered in a deal */      \
    /* candidate: campaign and creative */                                                                             \
    X(CAMPAIGN, "campaign", CTR_CAT, RANK_GROUP_CANDIDATE)                                                             \
    X(ADVERTISER, "advertiser", CTR_CAT, RANK_GROUP_CANDIDATE)                                                         \
    X(CREATIVE, "creative", CTR_CAT, RANK_GROUP_CANDIDATE)                                                             \
    X(CAMP_CATEGORY, "camp_category", CTR_CAT, RANK_GROUP_CANDIDATE) /* the ad's categories */

enum rank_group { RANK_GROUP_USER = 0, RANK_GROUP_CONTEXT = 1, RANK_GROUP_CANDIDATE = 2 };

enum rank_field {
#define RANK_FIELD_ENUM_(e, name, kind, group) RANK_F_##e,
    RANK_ADSMITH_FIELDS(RANK_FIELD_ENUM_)
#undef RANK_FIELD_ENUM_
        RANK_F_COUNT
};

/** Fills @p ret with the "adsmith" schema (id "adsmith", fields in enum rank_field order). */
void rank_schema_adsmith(struct ctr_schema *ret);

/** The group of a field of the "adsmith" schema; -1 for a value out of range. */
int rank_field_group(enum rank_field f);

/* ---- serving ----
 *
 * Per request: rank_req_begin(), rank_req_add*() for every user and context
 * value, rank_req_commit() (the user and context part of the score is summed
 * here, once), then rank_req_score() for each candidate: only the candidate's
 * own features (and its crosses with the request) are looked up. Nothing
 * allocates; both structs are plain fixed-size values (a request pool, the
 * stack or a per-thread slot). Their members are private: use the functions.
 * Values beyond the limits are dropped and counted (rank_req_dropped()).
 * The scores equal rank_model_predict_row() on the same values.
 */
#define RANK_REQ_MAX 96  /* user and context values in one request */
#define RANK_CAND_MAX 16 /* values of one candidate */
#define RANK_FM_K_MAX 16

struct rank_req {
    const struct rank_model *m;
    uint32_t n, dropped, committed, pad_;
    double z;                  /* bias + linear part of the request's features */
    double s[RANK_FM_K_MAX];   /* FM: per-factor sums over the request's features */
    double q;                  /* FM: sum of squared factor terms */
    struct ctr_value v[RANK_REQ_MAX]; /* sorted by field at commit */
    uint8_t first[CTR_MAX_FIELDS], count[CTR_MAX_FIELDS]; /* after commit: v[first[f]..] hold field f */
};

/** A candidate's values, prepared once when a campaign/creative is loaded (model-independent). */
struct rank_cand {
    uint32_t n, dropped;
    struct ctr_value v[RANK_CAND_MAX];
};

/** Starts a request for model @p m (which must outlive the request's scoring). */
void rank_req_begin(struct rank_req *r, const struct rank_model *m);

/**
 * Adds a categorical token (@p len bytes of @p s) of field @p f of the model's
 * schema. For the "adsmith" schema @p f is an enum rank_field of the user or
 * context group. @return 0, ADS_EINVAL (unknown field, numeric field, after
 * commit), ADS_EOVERLOADED when RANK_REQ_MAX values are already there (the
 * value is dropped and counted; scoring still works).
 */
int rank_req_add(struct rank_req *r, uint32_t f, const char *s, size_t len);

/** As rank_req_add() for a token already hashed with ctr_hash(text, len, 0). */
int rank_req_add_token(struct rank_req *r, uint32_t f, uint64_t token);

/** Adds a number to numeric field @p f (NaN and infinities are ignored). Same returns. */
int rank_req_add_num(struct rank_req *r, uint32_t f, double x);

/** Sums the request's part of the score. Call once, after the last add. */
void rank_req_commit(struct rank_req *r);

/** Values dropped because a limit was reached (request and candidates are bounded). */
uint32_t rank_req_dropped(const struct rank_req *r);

/** Calibrated click probability of candidate @p c (may be NULL: no candidate features) in request @p r. */
double rank_req_score(const struct rank_req *r, const struct rank_cand *c);

/** Empties @p c. */
void rank_cand_init(struct rank_cand *c);

/**
 * Adds a categorical token of field @p f (e.g. RANK_F_CAMPAIGN) to @p c.
 * @return 0, ADS_EINVAL (field out of range), ADS_EOVERLOADED (full: dropped).
 */
int rank_cand_add(struct rank_cand *c, uint32_t f, const char *s, size_t len);

/** As rank_cand_add() for a token already hashed with ctr_hash(text, len, 0) (e.g. struct cidx_feat). */
int rank_cand_add_token(struct rank_cand *c, uint32_t f, uint64_t token);

#endif
