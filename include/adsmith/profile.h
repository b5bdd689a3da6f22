/*
 * prof: the user profile: its limits, its JSON face, its stored encoding, and
 * the in-place view the bid path reads.
 *
 * JSON face (schemas/profile.schema.json; MessagePack clients send the same
 * map): id, aliases[{source,id}], attributes{country, region, city, language,
 * device, os, age_band, custom{k:v}}, segments[{id,weight,last_seen}],
 * interests[{id,weight,updated_at}], frequency[{campaign, hour_start, hour,
 * day_start, day, lifetime, clicks, conversions, last_at}], recency{last_seen,
 * last_impression, last_click, last_conversion}, consent{gdpr_applies,
 * personalization, measurement, sale_opt_out}, and the read-only created_at,
 * updated_at. Times are unix seconds; 0 means never.
 *
 * Stored encoding (LMDB "users", key = the user id), version PROF_FORMAT.
 * One MessagePack array, positional, with what the bid path reads first; each
 * list is a bin holding a MessagePack array, so a reader steps over a list
 * without walking it:
 *
 *   [0]  format        uint  PROF_FORMAT
 *   [1]  id            str
 *   [2]  updated_at    uint
 *   [3]  consent       array of 2 uint: known bits, value bits (enum prof_consent_bit)
 *   [4]  recency       array of 4 uint: last_seen, last_impression, last_click, last_conversion
 *   [5]  attributes    array of 6 (str | nil): country, region, city, language, device, os
 *   [6]  age_band      uint  enum prof_age_band (0 = unknown)
 *   [7]  interests     bin: array of [id str, weight float64, updated_at uint]
 *   [8]  frequency     bin: array of [campaign str, hour_start uint, hour uint, day_start uint,
 *                                      day uint, lifetime uint, clicks uint, conversions uint, last_at uint]
 *   [9]  segments      bin: array of [id str, weight float64, last_seen uint]
 *   [10] created_at    uint
 *   [11] aliases       array of [source str, id str]
 *   [12] custom        map str -> str
 *
 * A reader accepts arrays longer than it knows (later formats append) and
 * refuses a format newer than PROF_FORMAT.
 *
 * Interest weights decay: a weight w stored at time t0 is worth
 * w * 2^-((t - t0) / half_life) at time t. Stored weights are as of their
 * updated_at; events first decay, then add.
 */
#ifndef ADSMITH_PROFILE_H
#define ADSMITH_PROFILE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/buf.h"
#include "adsmith/doc.h"
#include "adsmith/err.h"
#include "adsmith/mpr.h"

#define PROF_FORMAT 1

/* Limits; every one is documented in schemas/profile.schema.json and README. */
#define PROF_ID_MAX 128    /* user id and alias id, bytes */
#define PROF_SOURCE_MAX 64 /* alias source ("buyeruid", an EID source domain) */
#define PROF_MAX_ALIASES 16
#define PROF_ATTR_MAX 64 /* region, city, os; country is 2-3 letters, language <= 16, device a name */
#define PROF_MAX_CUSTOM 32
#define PROF_CUSTOM_KEY_MAX 64
#define PROF_CUSTOM_VAL_MAX 256
#define PROF_TAG_MAX 64 /* segment, interest and campaign ids */
#define PROF_MAX_SEGMENTS 64
#define PROF_MAX_INTERESTS 64
#define PROF_MAX_FREQ 64 /* campaigns with counters; the least recently used is dropped beyond */
#define PROF_MAX_WEIGHT 1.0e6

/* Encoded size bound: every field at its limit, with MessagePack headers. */
#define PROF_ENCODED_MAX 65536

enum prof_attr { PROF_COUNTRY, PROF_REGION, PROF_CITY, PROF_LANGUAGE, PROF_DEVICE, PROF_OS, PROF_NATTR };

enum prof_age_band {
    PROF_AGE_UNKNOWN,
    PROF_AGE_13_17,
    PROF_AGE_18_24,
    PROF_AGE_25_34,
    PROF_AGE_35_44,
    PROF_AGE_45_54,
    PROF_AGE_55_64,
    PROF_AGE_65_PLUS,
    PROF_AGE_COUNT
};

enum prof_consent_bit {
    PROF_CONSENT_GDPR_APPLIES = 1u << 0,
    PROF_CONSENT_PERSONALIZATION = 1u << 1,
    PROF_CONSENT_MEASUREMENT = 1u << 2,
    PROF_CONSENT_SALE_OPT_OUT = 1u << 3,
};

enum prof_recency { PROF_LAST_SEEN, PROF_LAST_IMPRESSION, PROF_LAST_CLICK, PROF_LAST_CONVERSION, PROF_NRECENCY };

struct prof_alias {
    char source[PROF_SOURCE_MAX + 1];
    char id[PROF_ID_MAX + 1];
};

struct prof_custom {
    char key[PROF_CUSTOM_KEY_MAX + 1];
    char val[PROF_CUSTOM_VAL_MAX + 1];
};

struct prof_tag {
    char id[PROF_TAG_MAX + 1];
    double weight;
    uint64_t at; /* segments: last_seen; interests: updated_at */
};

struct prof_freq {
    char campaign[PROF_TAG_MAX + 1];
    uint64_t hour_start, hour, day_start, day, lifetime, clicks, conversions, last_at;
};

/* A whole profile, decoded. About 40 KiB: keep it off small stacks. Strings are NUL-terminated. */
struct profile {
    char id[PROF_ID_MAX + 1];
    uint64_t created_at, updated_at;
    uint32_t naliases, ncustom, nsegments, ninterests, nfreq;
    struct prof_alias aliases[PROF_MAX_ALIASES];
    char attr[PROF_NATTR][PROF_ATTR_MAX + 1]; /* "" = unknown */
    uint8_t age_band;                         /* enum prof_age_band */
    struct prof_custom custom[PROF_MAX_CUSTOM];
    struct prof_tag segments[PROF_MAX_SEGMENTS];
    struct prof_tag interests[PROF_MAX_INTERESTS];
    struct prof_freq freq[PROF_MAX_FREQ];
    uint64_t recency[PROF_NRECENCY];
    uint32_t consent_known, consent; /* enum prof_consent_bit */
};

/* Which top-level fields a document carried (PATCH applies only those). */
enum prof_field {
    PROF_F_ALIASES = 1u << 0,
    PROF_F_ATTRIBUTES = 1u << 1,
    PROF_F_SEGMENTS = 1u << 2,
    PROF_F_INTERESTS = 1u << 3,
    PROF_F_FREQUENCY = 1u << 4,
    PROF_F_RECENCY = 1u << 5,
    PROF_F_CONSENT = 1u << 6,
};

/**
 * A PATCH body (JSON Merge Patch, RFC 7396): objects merge key by key, null
 * deletes a key (or empties a whole field), arrays replace the field whole.
 */
struct prof_patch {
    uint32_t fields;     /* enum prof_field: fields present (arrays replaced, or null = cleared) */
    uint32_t attr_set;   /* bit per enum prof_attr, plus bit PROF_NATTR for age_band: value given */
    uint32_t attr_unset; /* same bits: null given */
    uint32_t recency_set, consent_set, consent_unset; /* recency per enum prof_recency; consent per bit */
    uint32_t custom_replace;                          /* attributes.custom was null: drop all custom pairs first */
    uint32_t ncustom_unset;
    char custom_unset[PROF_MAX_CUSTOM][PROF_CUSTOM_KEY_MAX + 1];
    struct profile val; /* the values given; custom[] holds the pairs to set */
};

/**
 * Validates a profile document (the JSON face, as parsed by doc_parse) for
 * `PUT /v1/users/{id}` and fills @p ret (all fields; absent ones empty).
 * @p path_id (@p path_id_len bytes) is the id from the URL; a body "id" must
 * equal it. created_at and updated_at are accepted and ignored (the store sets
 * them), so a GET's output can be PUT back.
 * @return 0, or ADS_EINVAL with @p ret_diag naming the field (JSON pointer) and
 *   the rule it broke. @p ret is clobbered on failure.
 */
int prof_from_doc(const msgpack_object *doc, const char *path_id, size_t path_id_len, struct profile *ret,
                  struct ads_diag *ret_diag);

/** Like prof_from_doc(), for a PATCH body. */
int prof_patch_from_doc(const msgpack_object *doc, const char *path_id, size_t path_id_len, struct prof_patch *ret,
                        struct ads_diag *ret_diag);

/** Applies @p patch to @p p (the stored profile) in place. */
void prof_patch_apply(struct profile *p, const struct prof_patch *patch);

/** Checks a user id (path or body): 1..PROF_ID_MAX bytes of UTF-8 without control characters. 0 or ADS_EINVAL. */
int prof_check_id(const char *id, size_t len);

/**
 * Encodes @p p in the stored format into @p out (a buffer of at least
 * PROF_ENCODED_MAX + 1 bytes). @return 0, or ADS_EINTERNAL if it did not fit
 * (a bug: the limits above bound the size).
 */
int prof_encode(const struct profile *p, struct buf *out);

/**
 * Decodes the stored format into @p ret. @return 0, ADS_EDATA_TOO_NEW for a
 * newer format, or ADS_EDATA_INVALID for bytes that are not a profile.
 */
int prof_decode(const void *data, size_t len, struct profile *ret);

/** Writes the JSON face of @p p (as GET returns it) with @p w. */
void prof_render(const struct profile *p, struct docw *w);

/** Interest weight @p w stored at @p at, decayed to @p now with @p half_life seconds (> 0). */
double prof_decay(double w, uint64_t at, uint64_t now, uint32_t half_life);

/* ---- the bid path: reading a stored profile in place ---- */

/**
 * A stored profile opened in place: strings point into the stored bytes
 * (for LMDB, valid until the read transaction ends). Opening walks the
 * encoding once and allocates nothing.
 */
struct prof_view {
    const char *id;
    size_t id_len;
    uint64_t updated_at;
    const char *attr[PROF_NATTR]; /* NULL when unknown */
    size_t attr_len[PROF_NATTR];
    uint8_t age_band;
    uint32_t nsegments, ninterests, nfreq;
    struct mpr segments, interests, freq; /* cursors at the first element of each list */
    uint64_t recency[PROF_NRECENCY];
    uint32_t consent_known, consent;
};

/** One list entry read through a view. */
struct prof_tag_ref {
    const char *id;
    size_t id_len;
    double weight;
    uint64_t at;
};

/** Opens @p len bytes of a stored profile. 0, ADS_EDATA_TOO_NEW or ADS_EDATA_INVALID. */
int prof_view_open(const void *data, size_t len, struct prof_view *ret);

/**
 * Reads the next entry of a segments or interests list: pass a copy of
 * view->segments or view->interests as @p it and call once per element
 * (nsegments / ninterests times). 0 or ADS_EDATA_INVALID.
 */
int prof_view_next_tag(struct mpr *it, struct prof_tag_ref *ret);

/**
 * Looks up the frequency counters of @p campaign (@p len bytes) through the view.
 * @return 0 with *@p ret filled (campaign left empty), ADS_ENOT_FOUND, or ADS_EDATA_INVALID.
 */
int prof_view_freq(const struct prof_view *v, const char *campaign, size_t len, struct prof_freq *ret);

#endif
