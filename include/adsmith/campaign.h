/*
 * campaign: the campaign document (schemas/campaign.schema.json) and its
 * validation.
 *
 * A campaign is checked in two layers, and every problem of both is reported
 * (not only the first):
 *   1. the JSON Schema, compiled into the binary from
 *      schemas/campaign.schema.json and run by jsch: exactly what the schema
 *      accepts (the tests compare with ajv on a corpus of documents);
 *   2. the rules a schema cannot state (rule names "semantic:<name>"): flight
 *      end after start; daypart end after start; daily budget at most the
 *      total; frequency caps hour <= day <= lifetime; a known ISO 4217 currency;
 *      a time zone the tz database holds; a configured generator backend;
 *      every {{slot}} used in a template or text declared in creatives.slots;
 *      a slot's fallback no longer than its max_length; a creative for every
 *      targeted format; unique top-up ids; deals_only only with deals;
 *      generation field limits within the native creative's; strings within
 *      their byte limits (the schema's maxLength counts characters); integers
 *      written without a fraction or exponent.
 *   Semantic rules run only on the parts that passed the schema, so a
 *   problem is never reported twice.
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
 * has vrep_init()ed). Thread-safe; no heap allocation.
 * @return 0 when valid, ADS_EINVAL when not.
 */
int camp_validate(const struct camp_validator *v, const msgpack_object *doc, const struct camp_rules *rules,
                  struct vrep *rep);

/** Whether @p code (3 bytes) is an ISO 4217 currency code in current use. */
bool camp_currency_known(const char *code, size_t len);

#endif
