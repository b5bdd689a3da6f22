/*
 * evt: the events that update profiles: `POST /v1/events` batches.
 *
 * JSON face (schemas/event.schema.json): {"events": [event, ...]} with each
 * event {id?, type, user, source?, ts, campaign?, variant?, name?, interests?,
 * weight?, value?}:
 *   type       "impression" | "click" | "conversion" | "custom" (custom needs "name")
 *   user       the profile id, or with "source" an alias id of that source
 *   ts         unix seconds, no earlier than EVT_MIN_TS and no later than
 *              EVT_MAX_FUTURE_S past the server's clock
 *   id         optional; events with an id are counted once within the
 *              deduplication window (event_dedup_s), however often they are sent
 *   interests  interest ids the event's ad is about; each gains the type's
 *              weight (impression 0.1, click 1, conversion 5, custom 0) or "weight"
 *   value      a conversion's value in micro-units of the campaign currency
 *   impression_id  impression and click events: the impression a click refers
 *              to (online learning pairs them; an impression without it is
 *              known by its "id")
 *   features   impression events: the ranking model's features of the
 *              impression, {name: token | [tokens] | number} with the names
 *              of the "adsmith" serving schema (rank.h RANK_ADSMITH_FIELDS);
 *              read by the online learner (learn.h), ignored otherwise
 *
 * A batch is validated whole before anything is written: one bad event fails
 * the batch with the pointer /events/N/field.
 */
#ifndef ADSMITH_EVENT_H
#define ADSMITH_EVENT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/ctr.h"
#include "adsmith/err.h"
#include "adsmith/profile.h"

#define EVT_MAX_BATCH 1000
#define EVT_ID_MAX 64
#define EVT_MAX_INTERESTS 8
#define EVT_MIN_TS 946684800 /* 2000-01-01 */
#define EVT_MAX_FUTURE_S 300 /* tolerated clock skew */
#define EVT_MAX_WEIGHT 100.0
#define EVT_MAX_FEATURES 64       /* feature values of one impression, all fields together */
#define EVT_FEATURE_TOKEN_MAX 128 /* bytes of one categorical feature value */
#define EVT_FEATURE_NUM_MAX 1e12  /* largest magnitude of a numeric feature */

enum evt_type { EVT_IMPRESSION, EVT_CLICK, EVT_CONVERSION, EVT_CUSTOM, EVT_NTYPES };

struct evt {
    uint8_t type; /* enum evt_type */
    uint8_t id_len, ninterests;
    uint8_t has_features; /* the event carried "features": evt_features_from_doc() reads them */
    char id[EVT_ID_MAX + 1];
    char impression_id[EVT_ID_MAX + 1]; /* "" when absent */
    char user[PROF_ID_MAX + 1];
    char source[PROF_SOURCE_MAX + 1]; /* "" = user is the profile id */
    char campaign[PROF_TAG_MAX + 1];
    char variant[PROF_TAG_MAX + 1];
    char name[PROF_TAG_MAX + 1];
    char interests[EVT_MAX_INTERESTS][PROF_TAG_MAX + 1];
    double weight; /* increment for each interest */
    int64_t value; /* micro-units */
    uint64_t ts;
};

/** Name of an event type ("impression", ...). Static. */
const char *evt_type_name(enum evt_type t);

/** How many events @p doc holds, if it has the batch's shape (else 0), capped at EVT_MAX_BATCH. */
size_t evt_batch_count(const msgpack_object *doc);

/**
 * Validates an events document into @p ret (room for evt_batch_count(doc) events, at least 1).
 * @p now is the server's unix time, for the future-timestamp check.
 * @return 0 with *@p ret_n set, or ADS_EINVAL with @p ret_diag naming the
 *   event and field (e.g. "/events/3/ts").
 */
int evt_batch_from_doc(const msgpack_object *doc, uint64_t now, struct evt *ret, size_t *ret_n,
                       struct ads_diag *ret_diag);

/**
 * The "features" of event @p i of a document evt_batch_from_doc() accepted,
 * as values of the "adsmith" serving schema (field = enum rank_field; a
 * token is ctr_hash(text, len, 0) with x = 1; a number is x), into @p ret
 * (room for EVT_MAX_FEATURES).
 * @return 0 with *@p ret_n set; ADS_ENOT_FOUND when the event has none;
 *   ADS_EINVAL for a document that was not accepted.
 */
int evt_features_from_doc(const msgpack_object *doc, size_t i, struct ctr_value *ret, uint32_t *ret_n);

/**
 * Applies one event to profile @p p at its own timestamp: recency, the
 * campaign's frequency counters (impressions per hour, day and lifetime;
 * clicks; conversions), and interest weights (decayed with @p half_life
 * seconds, then increased). When the profile already tracks PROF_MAX_FREQ
 * campaigns the least recently active one is dropped; likewise for interests
 * the weakest (after decay) makes room.
 */
void evt_apply(struct profile *p, const struct evt *e, uint32_t half_life);

#endif
