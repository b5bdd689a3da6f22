/*
 * rank_online: FTRL-Proximal state over a served LR model, so that the
 * service can go on learning from its own impressions and clicks
 * (service/model/learn.c) and publish snapshots in the model file format.
 *
 * A struct rank_online is made from a model (rank.h) of type LR: it copies
 * the model's feature configuration, calibration, golden rows and FTRL
 * settings (L1, L2, alpha as chosen at training), and sets the FTRL state of
 * every weight so that the FTRL solution is exactly the model's weight (the
 * file keeps weights, not z and n: models/README.md "Online learning" gives
 * the approximation). Updates go through the same featurizer as training and
 * serving (rank__emit), so an online model scores like a trained one.
 *
 * Predictions and updates use the model's calibrated probability
 * p = sigma(a*z + b): the loss is the log loss of what is served, and the
 * calibration (a, b) stays fixed; only the weights and the bias learn.
 *
 * Not thread-safe: one thread owns a struct rank_online (the learner's).
 */
#ifndef ADSMITH_RANK_ONLINE_H
#define ADSMITH_RANK_ONLINE_H

#include <stddef.h>
#include <stdint.h>

#include "adsmith/ctr.h"
#include "adsmith/err.h"
#include "adsmith/rank.h"

struct rank_online;

/**
 * FTRL state initialised from @p m (borrowed for the call only).
 * @return 0; ADS_EINVAL with @p diag when the model is not LR (FM factors are
 *   not learned online); ADS_ENOMEM (16 bytes per weight: 2^bits buckets).
 */
int rank_online_new(const struct rank_model *m, struct rank_online **ret, struct ads_diag *diag);

void rank_online_free(struct rank_online *o);

/**
 * Calibrated click probability of a row of @p n values (fields of the
 * model's schema; invalid values are skipped, as everywhere) with the
 * current weights. At most CTR_MAX_VALUES values are read. Changes nothing
 * but @p o's scratch space.
 */
double rank_online_predict(struct rank_online *o, const struct ctr_value *v, uint32_t n);

/**
 * One FTRL-Proximal step on the example (@p v, @p n, @p label 0 or 1): the
 * prediction is made first with the current weights and returned in
 * *@p ret_p (progressive validation: the example is scored before it is
 * learned), then every weight the example touches and the bias are updated.
 * @return 0, or ADS_EINVAL for a label other than 0/1.
 */
int rank_online_update(struct rank_online *o, const struct ctr_value *v, uint32_t n, int label, double *ret_p);

/** Examples learned since rank_online_new(). */
uint64_t rank_online_examples(const struct rank_online *o);

/** The current weight of bucket @p i (2^bits of them; i == 2^bits: the bias), and its FTRL state. For tests. */
double rank_online_weight(const struct rank_online *o, size_t i, double *ret_z, double *ret_n);

/** The FTRL settings in use (the model's, or the defaults when the file holds none). */
void rank_online_params(const struct rank_online *o, double *ret_alpha, double *ret_l1, double *ret_l2);

/** What a snapshot records besides the weights. */
struct rank_online_meta {
    int64_t trained_at;       /* unix seconds of the snapshot */
    uint64_t valid_rows, valid_positives; /* progressive validation so far */
    double valid_logloss, valid_auc, valid_calibration;
};

/**
 * Builds a model from the current weights: the base model's schema,
 * features, calibration and golden rows (their predictions recomputed), with
 * rows = base rows + examples learned, the source text "online <base version>
 * +<examples>", and @p meta. Its rank_info.version is "lr-online-<16 hex
 * digits of the checksum>". The model owns its image: rank_model_close()
 * frees both. Takes a few ms for 2^16 weights (every weight is written and
 * checked as rank_model_open() checks a file).
 * @return 0, ADS_ENOMEM, or ADS_EDATA_INVALID (a weight went non-finite).
 */
int rank_online_model(const struct rank_online *o, const struct rank_online_meta *meta, struct rank_model **ret,
                      struct ads_diag *diag);

#endif
