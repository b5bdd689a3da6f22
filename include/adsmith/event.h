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
 *
 * A batch is validated whole before anything is written: one bad event fails
 * the batch with the pointer /events/N/field.
 */
#ifndef ADSMITH_EVENT_H
#define ADSMITH_EVENT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/err.h"
#include "adsmith/profile.h"

#define EVT_MAX_BATCH 1000
#define EVT_ID_MAX 64
#define EVT_MAX_INTERESTS 8
#define EVT_MIN_TS 946684800 /* 2000-01-01 */
#define EVT_MAX_FUTURE_S 300 /* tolerated clock skew */
#define EVT_MAX_WEIGHT 100.0

enum evt_type { EVT_IMPRESSION, EVT_CLICK, EVT_CONVERSION, EVT_CUSTOM, EVT_NTYPES };

struct evt {
    uint8_t type; /* enum evt_type */
    uint8_t id_len, ninterests;
    char id[EVT_ID_MAX + 1];
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
 * Applies one event to profile @p p at its own timestamp: recency, the
 * campaign's frequency counters (impressions per hour, day and lifetime;
 * clicks; conversions), and interest weights (decayed with @p half_life
 * seconds, then increased). When the profile already tracks PROF_MAX_FREQ
 * campaigns the least recently active one is dropped; likewise for interests
 * the weakest (after decay) makes room.
 */
void evt_apply(struct profile *p, const struct evt *e, uint32_t half_life);

#endif
