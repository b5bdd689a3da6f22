/*
 * campaign: the campaign document (schemas/campaign.schema.json) and its
 * validation.
 *
 * A campaign is checked in two layers, and every problem of both is reported
 * (not only the first):
 *   1. the JSON Schema, compiled into the binary from
 *      schemas/campaign.schema.json and run by jsch: exactly what the schema
 *      accepts (the tests compare with ajv on a corpus of documents);
 *   2. the rules a schema cannot state, each with its rule name
 *      "semantic:<name>":
 *        end_after_start            flight end after start (at /flight/end)
 *        daypart_end_after_start    a daypart's end_hour after its start_hour
 *        daily_within_total         budget daily_micros at most total_micros
 *        frequency_caps_order       per_hour <= per_day <= lifetime (at the smaller cap)
 *        currency_known             an ISO 4217 currency in use (camp_currency_known)
 *        time_zone_known            a zone the tz database holds (tz_exists)
 *        backend_configured         generation.backend among camp_rules.backends
 *        slot_declared              every {{slot}} used in the banner template or a
 *                                   native text declared in creatives.slots
 *        fallback_within_max_length a slot's fallback (bytes) at most its max_length
 *        format_has_creative        a creative for every format in targeting.formats
 *        top_up_ids_unique          no top-up id twice
 *        byte_length                strings within the byte limits the schema's
 *                                   descriptions state (its maxLength counts characters)
 *        integer_form               integers written without fraction or exponent
 *                                   (1763800000, not 1763800000.0)
 *        duplicate_member           no member name twice in one object (JSON leaves
 *                                   that undefined; the schema sees the last one)
 *      Two rules of the issue are stated by the schema itself and so need no
 *      code: deals_only only with deals (dependentRequired), and generation
 *      field limits within the native creative's (their maximum).
 *   A semantic rule runs only where the schema found nothing wrong in the
 *   values it reads, so a problem is never reported twice; when the schema's
 *   problems overflow the report (VREP_MAX), the semantic rules are skipped.
 */
#ifndef ADSMITH_CAMPAIGN_H
#define ADSMITH_CAMPAIGN_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/err.h"
#include "adsmith/vrep.h"

#define CAMP_ID_MAX 64 /* bytes of a campaign or advertiser id */

/* Most bytes of one campaign document the CLI reads; the API takes up to max_body (256 KiB by default). */
#define CAMP_DOC_MAX (1024 * 1024)

/* The campaign schema's JSON text, embedded at build time (generated source). */
extern const char camp_schema_json[];
extern const size_t camp_schema_json_len;

/* The demo campaign (schemas/examples/campaign-demo.json), embedded likewise. */
extern const char camp_demo_json[];
extern const size_t camp_demo_json_len;

struct camp_validator;

/* What the semantic rules need to know about the server. */
struct camp_rules {
    const char *const *backends; /* names of the configured generator backends */
    size_t nbackends;
};

/**
 * Compiles the embedded schema. Fails only on a bug (an unsupported schema
 * construct) or out of memory; @p diag says which.
 */
int camp_validator_new(struct camp_validator **ret, struct ads_diag *diag);

void camp_validator_free(struct camp_validator *v);

/**
 * Validates the campaign @p doc (as doc_parse() returns it) against the schema
 * and then the semantic rules, adding every problem to @p rep (which the caller
 * has vrep_init()ed). @p rules (borrowed; may be NULL: no backends) says what
 * the server has configured. Thread-safe. Allocates nothing itself (bounded
 * stack); the time-zone rule calls tz_exists(), which reads the zone's file.
 * @return 0 when valid, ADS_EINVAL when not.
 */
int camp_validate(const struct camp_validator *v, const msgpack_object *doc, const struct camp_rules *rules,
                  struct vrep *rep);

/** Whether @p code (3 bytes) is an ISO 4217 currency code in current use. */
bool camp_currency_known(const char *code, size_t len);

/** Whether @p len bytes at @p s are a campaign or advertiser id: 1-CAMP_ID_MAX of A-Z a-z 0-9 _ . - (the schema's "key"). */
bool camp_id_valid(const char *s, size_t len);

#endif
