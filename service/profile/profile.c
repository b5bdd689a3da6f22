#include "adsmith/profile.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fields.h"

/* ---- validation of the JSON face ----
 *
 * The parser walks the document once, building the JSON pointer of the value
 * it is looking at in `ptr`, so the first rule broken is reported with its
 * field. It never trusts a count or a length before checking it. */

static const char *const prof_attr_names[PROF_NATTR] = {"country", "region", "city", "language", "device", "os"};
static const char *const prof_age_names[PROF_AGE_COUNT] = {"",      "13-17", "18-24", "25-34",
                                                           "35-44", "45-54", "55-64", "65+"};
static const char *const prof_devices[] = {"phone", "tablet", "desktop", "ctv", "other"};
static const char *const prof_recency_names[PROF_NRECENCY] = {"last_seen", "last_impression", "last_click",
                                                              "last_conversion"};
static const struct {
    const char *name;
    uint32_t bit;
} prof_consent_names[] = {
    {"gdpr_applies", PROF_CONSENT_GDPR_APPLIES},
    {"personalization", PROF_CONSENT_PERSONALIZATION},
    {"measurement", PROF_CONSENT_MEASUREMENT},
    {"sale_opt_out", PROF_CONSENT_SALE_OPT_OUT},
};
#define PROF_NCONSENT (sizeof(prof_consent_names) / sizeof(prof_consent_names[0]))

static int prof_parse_aliases(struct fld_ctx *c, const msgpack_object *o, struct profile *p)
{
    static const char *const names[] = {"source", "id"};
    const msgpack_object *f[2];
    int rc;

    if ((rc = fld_list(c, o, PROF_MAX_ALIASES)) != 0)
        return rc;
    p->naliases = 0;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        struct prof_alias *a = &p->aliases[i];
        size_t mark = fld_push_index(c, i);
        if ((rc = fld_fields(c, &o->via.array.ptr[i], names, 2, f)) != 0)
            return rc;
        for (size_t k = 0; k < 2; k++) {
            if (f[k] == NULL) {
                fld_push_key(c, names[k]);
                return fld_fail(c, "is required");
            }
        }
        size_t m2 = fld_push_key(c, "source");
        if ((rc = fld_str(c, f[0], PROF_SOURCE_MAX, a->source)) != 0)
            return rc;
        fld_pop(c, m2);
        fld_push_key(c, "id");
        if ((rc = fld_str(c, f[1], PROF_ID_MAX, a->id)) != 0)
            return rc;
        fld_pop(c, m2);
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(p->aliases[j].source, a->source) == 0 && strcmp(p->aliases[j].id, a->id) == 0)
                return fld_fail(c, "repeats an earlier alias");
        }
        fld_pop(c, mark);
        p->naliases++;
    }
    return 0;
}

static bool prof_is_token(const char *s, size_t len, bool upper_only)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = upper_only ? (ch >= 'A' && ch <= 'Z')
                             : ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                                ch == '_' || ch == '.' || ch == '-');
        if (!ok)
            return false;
    }
    return true;
}

static int prof_parse_attr(struct fld_ctx *c, enum prof_attr a, const msgpack_object *o, struct profile *p)
{
    char *dst = p->attr[a];
    int rc;

    if ((rc = fld_str(c, o, PROF_ATTR_MAX, dst)) != 0)
        return rc;
    switch (a) {
    case PROF_COUNTRY:
        if ((o->via.str.size != 2 && o->via.str.size != 3) || !prof_is_token(dst, o->via.str.size, true))
            return fld_fail(c, "must be an ISO 3166-1 country code in capitals (\"USA\" or \"US\"), not \"%s\"", dst);
        break;
    case PROF_LANGUAGE:
        if (o->via.str.size > 16 || !prof_is_token(dst, o->via.str.size, false))
            return fld_fail(c, "must be a BCP 47 language tag such as \"en\" or \"pt-BR\", not \"%s\"", dst);
        break;
    case PROF_DEVICE:
        for (size_t i = 0; i < sizeof(prof_devices) / sizeof(prof_devices[0]); i++) {
            if (strcmp(dst, prof_devices[i]) == 0)
                return 0;
        }
        return fld_fail(c, "must be one of phone, tablet, desktop, ctv, other; not \"%s\"", dst);
    default: break;
    }
    return 0;
}

static int prof_parse_custom(struct fld_ctx *c, const msgpack_object *o, struct profile *p, struct prof_patch *pp)
{
    int rc;

    if ((rc = fld_want(c, o, MSGPACK_OBJECT_MAP, "an object")) != 0)
        return rc;
    if (o->via.map.size > PROF_MAX_CUSTOM)
        return fld_fail(c, "has %u keys; the limit is %d", o->via.map.size, PROF_MAX_CUSTOM);
    p->ncustom = 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_str *k = &o->via.map.ptr[i].key.via.str;
        const msgpack_object *v = &o->via.map.ptr[i].val;
        char key[PROF_CUSTOM_KEY_MAX + 1];
        size_t mark;

        if (k->size == 0 || k->size > PROF_CUSTOM_KEY_MAX || !prof_is_token(k->ptr, k->size, false))
            return fld_fail(c, "has a key that is not 1-64 characters of A-Z a-z 0-9 _ . -");
        memcpy(key, k->ptr, k->size);
        key[k->size] = '\0';
        for (uint32_t j = 0; j < i; j++) {
            const msgpack_object_str *kj = &o->via.map.ptr[j].key.via.str;
            if (kj->size == k->size && memcmp(kj->ptr, k->ptr, k->size) == 0)
                return fld_fail(c, "has the key \"%s\" twice", key);
        }
        mark = fld_push_key(c, key);
        if (v->type == MSGPACK_OBJECT_NIL && pp != NULL) {
            memcpy(pp->custom_unset[pp->ncustom_unset++], key, k->size + 1);
        } else if (v->type != MSGPACK_OBJECT_NIL) {
            if ((rc = fld_str(c, v, PROF_CUSTOM_VAL_MAX, p->custom[p->ncustom].val)) != 0)
                return rc;
            memcpy(p->custom[p->ncustom++].key, key, k->size + 1);
        }
        fld_pop(c, mark);
    }
    return 0;
}

static int prof_parse_attributes(struct fld_ctx *c, const msgpack_object *o, struct profile *p, struct prof_patch *pp)
{
    static const char *const names[] = {"country", "region", "city", "language", "device", "os", "age_band", "custom"};
    const msgpack_object *f[8];
    int rc;

    if ((rc = fld_fields(c, o, names, 8, f)) != 0)
        return rc;
    for (size_t i = 0; i < 8; i++) {
        size_t mark;
        if (f[i] == NULL)
            continue;
        mark = fld_push_key(c, names[i]);
        if (f[i]->type == MSGPACK_OBJECT_NIL) {
            if (pp != NULL && i < 7)
                pp->attr_unset |= 1u << i;
            else if (pp != NULL)
                pp->custom_replace = 1;
        } else if (i < PROF_NATTR) {
            if ((rc = prof_parse_attr(c, (enum prof_attr)i, f[i], p)) != 0)
                return rc;
            if (pp != NULL)
                pp->attr_set |= 1u << i;
        } else if (i == PROF_NATTR) {
            char band[16];
            size_t b;
            if ((rc = fld_want(c, f[i], MSGPACK_OBJECT_STR, "a string")) != 0)
                return rc;
            for (b = 1; b < PROF_AGE_COUNT; b++) {
                if (strlen(prof_age_names[b]) == f[i]->via.str.size &&
                    memcmp(prof_age_names[b], f[i]->via.str.ptr, f[i]->via.str.size) == 0)
                    break;
            }
            if (b == PROF_AGE_COUNT) {
                snprintf(band, sizeof(band), "%.*s", (int)(f[i]->via.str.size > 12 ? 12 : f[i]->via.str.size),
                         f[i]->via.str.ptr);
                return fld_fail(c, "must be one of 13-17, 18-24, 25-34, 35-44, 45-54, 55-64, 65+; not \"%s\"", band);
            }
            p->age_band = (uint8_t)b;
            if (pp != NULL)
                pp->attr_set |= 1u << PROF_NATTR;
        } else if ((rc = prof_parse_custom(c, f[i], p, pp)) != 0) {
            return rc;
        }
        fld_pop(c, mark);
    }
    return 0;
}

/* segments [{id, weight, last_seen}] and interests [{id, weight, updated_at}] */
static int prof_parse_tags(struct fld_ctx *c, const msgpack_object *o, const char *at_name, uint32_t max_n,
                           double max_weight, struct prof_tag *tags, uint32_t *ret_n)
{
    const char *const names[] = {"id", "weight", at_name};
    const msgpack_object *f[3];
    int rc;

    if ((rc = fld_list(c, o, max_n)) != 0)
        return rc;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        struct prof_tag *t = &tags[i];
        size_t mark = fld_push_index(c, i), m2;

        if ((rc = fld_fields(c, &o->via.array.ptr[i], names, 3, f)) != 0)
            return rc;
        m2 = fld_push_key(c, "id");
        if (f[0] == NULL)
            return fld_fail(c, "is required");
        if ((rc = fld_str(c, f[0], PROF_TAG_MAX, t->id)) != 0)
            return rc;
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(tags[j].id, t->id) == 0)
                return fld_fail(c, "repeats \"%s\"", t->id);
        }
        fld_pop(c, m2);
        t->weight = 1.0;
        t->at = 0;
        if (f[1] != NULL) {
            fld_push_key(c, "weight");
            if ((rc = fld_number(c, f[1], max_weight, &t->weight)) != 0)
                return rc;
            fld_pop(c, m2);
        }
        if (f[2] != NULL) {
            fld_push_key(c, at_name);
            if ((rc = fld_time(c, f[2], &t->at)) != 0)
                return rc;
            fld_pop(c, m2);
        }
        fld_pop(c, mark);
    }
    *ret_n = o->via.array.size;
    return 0;
}

static int prof_parse_freq(struct fld_ctx *c, const msgpack_object *o, struct profile *p)
{
    static const char *const names[] = {"campaign", "hour_start", "hour",        "day_start", "day",
                                        "lifetime", "clicks",     "conversions", "last_at"};
    const msgpack_object *f[9];
    int rc;

    if ((rc = fld_list(c, o, PROF_MAX_FREQ)) != 0)
        return rc;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        struct prof_freq *q = &p->freq[i];
        uint64_t *vals[8] = {&q->hour_start, &q->hour,   &q->day_start,   &q->day,
                             &q->lifetime,   &q->clicks, &q->conversions, &q->last_at};
        size_t mark = fld_push_index(c, i), m2;

        memset(q, 0, sizeof(*q));
        if ((rc = fld_fields(c, &o->via.array.ptr[i], names, 9, f)) != 0)
            return rc;
        m2 = fld_push_key(c, "campaign");
        if (f[0] == NULL)
            return fld_fail(c, "is required");
        if ((rc = fld_str(c, f[0], PROF_TAG_MAX, q->campaign)) != 0)
            return rc;
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(p->freq[j].campaign, q->campaign) == 0)
                return fld_fail(c, "repeats \"%s\"", q->campaign);
        }
        fld_pop(c, m2);
        for (size_t k = 1; k < 9; k++) {
            if (f[k] == NULL)
                continue;
            fld_push_key(c, names[k]);
            bool is_time = k == 1 || k == 3 || k == 8;
            if ((rc = is_time ? fld_time(c, f[k], vals[k - 1]) : fld_count(c, f[k], vals[k - 1])) != 0)
                return rc;
            fld_pop(c, m2);
        }
        fld_pop(c, mark);
    }
    p->nfreq = o->via.array.size;
    return 0;
}

static int prof_parse_recency(struct fld_ctx *c, const msgpack_object *o, struct profile *p, struct prof_patch *pp)
{
    const msgpack_object *f[PROF_NRECENCY];
    int rc;

    if ((rc = fld_fields(c, o, prof_recency_names, PROF_NRECENCY, f)) != 0)
        return rc;
    for (size_t i = 0; i < PROF_NRECENCY; i++) {
        if (f[i] == NULL)
            continue;
        size_t mark = fld_push_key(c, prof_recency_names[i]);
        if (f[i]->type == MSGPACK_OBJECT_NIL)
            p->recency[i] = 0;
        else if ((rc = fld_time(c, f[i], &p->recency[i])) != 0)
            return rc;
        if (pp != NULL)
            pp->recency_set |= 1u << i;
        fld_pop(c, mark);
    }
    return 0;
}

static int prof_parse_consent(struct fld_ctx *c, const msgpack_object *o, struct profile *p, struct prof_patch *pp)
{
    const char *names[PROF_NCONSENT];
    const msgpack_object *f[PROF_NCONSENT];
    int rc;

    for (size_t i = 0; i < PROF_NCONSENT; i++)
        names[i] = prof_consent_names[i].name;
    if ((rc = fld_fields(c, o, names, PROF_NCONSENT, f)) != 0)
        return rc;
    for (size_t i = 0; i < PROF_NCONSENT; i++) {
        uint32_t bit = prof_consent_names[i].bit;
        if (f[i] == NULL)
            continue;
        size_t mark = fld_push_key(c, names[i]);
        if (f[i]->type == MSGPACK_OBJECT_NIL) {
            if (pp != NULL)
                pp->consent_unset |= bit;
        } else {
            if ((rc = fld_want(c, f[i], MSGPACK_OBJECT_BOOLEAN, "true or false")) != 0)
                return rc;
            p->consent_known |= bit;
            if (f[i]->via.boolean)
                p->consent |= bit;
            if (pp != NULL)
                pp->consent_set |= bit;
        }
        fld_pop(c, mark);
    }
    return 0;
}

int prof_check_id(const char *id, size_t len)
{
    if (len == 0 || len > PROF_ID_MAX || !fld_is_text(id, len) || !doc_utf8_valid(id, len))
        return ADS_EINVAL;
    return 0;
}

enum {
    PROF_K_ID,
    PROF_K_ALIASES,
    PROF_K_ATTRIBUTES,
    PROF_K_SEGMENTS,
    PROF_K_INTERESTS,
    PROF_K_FREQUENCY,
    PROF_K_RECENCY,
    PROF_K_CONSENT,
    PROF_K_CREATED,
    PROF_K_UPDATED,
    PROF_NKEYS
};

static const char *const prof_top_names[PROF_NKEYS] = {
    "id",        "aliases", "attributes", "segments",   "interests",
    "frequency", "recency", "consent",    "created_at", "updated_at",
};

/* The one parser behind PUT (pp == NULL) and PATCH (pp != NULL). */
static int prof_parse(struct fld_ctx *c, const msgpack_object *doc, const char *path_id, size_t path_id_len,
                      struct profile *p, struct prof_patch *pp)
{
    static const uint32_t list_field[PROF_NKEYS] = {
        [PROF_K_ALIASES] = PROF_F_ALIASES,     [PROF_K_ATTRIBUTES] = PROF_F_ATTRIBUTES,
        [PROF_K_SEGMENTS] = PROF_F_SEGMENTS,   [PROF_K_INTERESTS] = PROF_F_INTERESTS,
        [PROF_K_FREQUENCY] = PROF_F_FREQUENCY, [PROF_K_RECENCY] = PROF_F_RECENCY,
        [PROF_K_CONSENT] = PROF_F_CONSENT,
    };
    const msgpack_object *f[PROF_NKEYS];
    int rc = 0;

    memset(p, 0, sizeof(*p));
    if (prof_check_id(path_id, path_id_len) != 0)
        return ads_diag_set(c->diag, ADS_EINVAL, "",
                            "the user id in the path must be 1-%d bytes without control characters", PROF_ID_MAX);
    memcpy(p->id, path_id, path_id_len);
    p->id[path_id_len] = '\0';
    if (doc->type != MSGPACK_OBJECT_MAP)
        return ads_diag_set(c->diag, ADS_EINVAL, "", "the body must be a profile object, not %s", fld_type_name(doc));
    if ((rc = fld_fields(c, doc, prof_top_names, PROF_NKEYS, f)) != 0)
        return rc;
    for (size_t k = 0; k < PROF_NKEYS && rc == 0; k++) {
        const msgpack_object *o = f[k];
        size_t mark;
        if (o == NULL || k == PROF_K_CREATED || k == PROF_K_UPDATED)
            continue;
        mark = fld_push_key(c, prof_top_names[k]);
        if (k == PROF_K_ID) {
            if (o->type != MSGPACK_OBJECT_STR || o->via.str.size != path_id_len ||
                memcmp(o->via.str.ptr, path_id, path_id_len) != 0)
                rc = fld_fail(c, "must equal the id in the path (\"%s\"), or be left out", p->id);
        } else if (o->type == MSGPACK_OBJECT_NIL) {
            /* null: PUT leaves the field empty; PATCH clears it. */
            if (pp != NULL)
                pp->fields |= list_field[k];
            if (pp != NULL && k == PROF_K_ATTRIBUTES)
                pp->custom_replace = 1;
        } else {
            switch (k) {
            case PROF_K_ALIASES: rc = prof_parse_aliases(c, o, p); break;
            case PROF_K_ATTRIBUTES: rc = prof_parse_attributes(c, o, p, pp); break;
            case PROF_K_SEGMENTS:
                rc = prof_parse_tags(c, o, "last_seen", PROF_MAX_SEGMENTS, 1.0, p->segments, &p->nsegments);
                break;
            case PROF_K_INTERESTS:
                rc = prof_parse_tags(c, o, "updated_at", PROF_MAX_INTERESTS, PROF_MAX_WEIGHT, p->interests,
                                     &p->ninterests);
                break;
            case PROF_K_FREQUENCY: rc = prof_parse_freq(c, o, p); break;
            case PROF_K_RECENCY: rc = prof_parse_recency(c, o, p, pp); break;
            case PROF_K_CONSENT: rc = prof_parse_consent(c, o, p, pp); break;
            default: break;
            }
            /* Lists replace the stored field whole; objects merge (their own bits say what). */
            if (pp != NULL &&
                (k == PROF_K_ALIASES || k == PROF_K_SEGMENTS || k == PROF_K_INTERESTS || k == PROF_K_FREQUENCY))
                pp->fields |= list_field[k];
        }
        if (rc == 0)
            fld_pop(c, mark);
    }
    return rc;
}

int prof_from_doc(const msgpack_object *doc, const char *path_id, size_t path_id_len, struct profile *ret,
                  struct ads_diag *ret_diag)
{
    struct fld_ctx c;
    fld_init(&c, ret_diag);
    return prof_parse(&c, doc, path_id, path_id_len, ret, NULL);
}

int prof_patch_from_doc(const msgpack_object *doc, const char *path_id, size_t path_id_len, struct prof_patch *ret,
                        struct ads_diag *ret_diag)
{
    struct fld_ctx c;
    fld_init(&c, ret_diag);
    memset(ret, 0, offsetof(struct prof_patch, val));
    return prof_parse(&c, doc, path_id, path_id_len, &ret->val, ret);
}

/* Deletes keeping the order, so custom[0] stays the oldest pair. */
static void prof_custom_del(struct profile *p, const char *key)
{
    for (uint32_t i = 0; i < p->ncustom; i++) {
        if (strcmp(p->custom[i].key, key) == 0) {
            memmove(&p->custom[i], &p->custom[i + 1], sizeof(p->custom[0]) * (p->ncustom - i - 1));
            p->ncustom--;
            return;
        }
    }
}

void prof_patch_apply(struct profile *p, const struct prof_patch *pp)
{
    const struct profile *v = &pp->val;

    if (pp->fields & PROF_F_ALIASES) {
        p->naliases = v->naliases;
        memcpy(p->aliases, v->aliases, sizeof(v->aliases[0]) * v->naliases);
    }
    if (pp->fields & PROF_F_SEGMENTS) {
        p->nsegments = v->nsegments;
        memcpy(p->segments, v->segments, sizeof(v->segments[0]) * v->nsegments);
    }
    if (pp->fields & PROF_F_INTERESTS) {
        p->ninterests = v->ninterests;
        memcpy(p->interests, v->interests, sizeof(v->interests[0]) * v->ninterests);
    }
    if (pp->fields & PROF_F_FREQUENCY) {
        p->nfreq = v->nfreq;
        memcpy(p->freq, v->freq, sizeof(v->freq[0]) * v->nfreq);
    }
    if (pp->fields & PROF_F_ATTRIBUTES) {
        memset(p->attr, 0, sizeof(p->attr));
        p->age_band = PROF_AGE_UNKNOWN;
    }
    if (pp->custom_replace)
        p->ncustom = 0;
    for (size_t a = 0; a < PROF_NATTR; a++) {
        if (pp->attr_unset & (1u << a))
            p->attr[a][0] = '\0';
        if (pp->attr_set & (1u << a))
            memcpy(p->attr[a], v->attr[a], sizeof(p->attr[a]));
    }
    if (pp->attr_unset & (1u << PROF_NATTR))
        p->age_band = PROF_AGE_UNKNOWN;
    if (pp->attr_set & (1u << PROF_NATTR))
        p->age_band = v->age_band;
    for (uint32_t i = 0; i < pp->ncustom_unset; i++)
        prof_custom_del(p, pp->custom_unset[i]);
    for (uint32_t i = 0; i < v->ncustom; i++) {
        prof_custom_del(p, v->custom[i].key);
        /* The patch alone holds at most PROF_MAX_CUSTOM; merged with stored pairs the
         * oldest stored pair gives way, so a PATCH never fails on the sum. */
        if (p->ncustom == PROF_MAX_CUSTOM)
            prof_custom_del(p, p->custom[0].key);
        p->custom[p->ncustom++] = v->custom[i];
    }
    if (pp->fields & PROF_F_RECENCY)
        memset(p->recency, 0, sizeof(p->recency));
    for (size_t i = 0; i < PROF_NRECENCY; i++) {
        if (pp->recency_set & (1u << i))
            p->recency[i] = v->recency[i];
    }
    if (pp->fields & PROF_F_CONSENT)
        p->consent_known = p->consent = 0;
    p->consent_known &= ~pp->consent_unset;
    p->consent &= ~pp->consent_unset;
    p->consent_known |= pp->consent_set;
    p->consent = (p->consent & ~pp->consent_set) | (v->consent & pp->consent_set);
}

double prof_decay(double w, uint64_t at, uint64_t now, uint32_t half_life)
{
    if (now <= at)
        return w;
    return w * exp2(-(double)(now - at) / (double)half_life);
}

/* ---- stored encoding ----
 *
 * What the bid path reads comes first; each list is wrapped in a bin whose
 * length lets a reader step over the list without walking it. */

#define PROF_NFIELDS 13
#define PROF_LIST_MAX 12288 /* the largest list at its limits (frequency: ~8.9 KiB) */

static int prof_pack_write(void *data, const char *bytes, size_t len)
{
    buf_put(data, bytes, len);
    return 0;
}

static void prof_pack_str(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static void prof_pack_tags(msgpack_packer *pk, const struct prof_tag *tags, uint32_t n)
{
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_array(pk, 3);
        prof_pack_str(pk, tags[i].id);
        msgpack_pack_double(pk, tags[i].weight);
        msgpack_pack_uint64(pk, tags[i].at);
    }
}

static void prof_pack_freq(msgpack_packer *pk, const struct prof_freq *freq, uint32_t n)
{
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct prof_freq *q = &freq[i];
        const uint64_t vals[8] = {q->hour_start, q->hour,   q->day_start,   q->day,
                                  q->lifetime,   q->clicks, q->conversions, q->last_at};
        msgpack_pack_array(pk, 9);
        prof_pack_str(pk, q->campaign);
        for (size_t k = 0; k < 8; k++)
            msgpack_pack_uint64(pk, vals[k]);
    }
}

/* Packs one list (by the function given) as a bin. */
static void prof_pack_wrapped(msgpack_packer *pk, const struct profile *p, int which, bool *overflow)
{
    char mem[PROF_LIST_MAX];
    struct buf lb;
    msgpack_packer lpk;

    buf_init(&lb, mem, sizeof(mem));
    msgpack_packer_init(&lpk, &lb, prof_pack_write);
    if (which == 0)
        prof_pack_tags(&lpk, p->interests, p->ninterests);
    else if (which == 1)
        prof_pack_freq(&lpk, p->freq, p->nfreq);
    else
        prof_pack_tags(&lpk, p->segments, p->nsegments);
    *overflow |= lb.overflow;
    msgpack_pack_bin(pk, lb.len);
    msgpack_pack_bin_body(pk, lb.base, lb.len);
}

int prof_encode(const struct profile *p, struct buf *out)
{
    msgpack_packer pk;
    bool overflow = false;

    msgpack_packer_init(&pk, out, prof_pack_write);
    msgpack_pack_array(&pk, PROF_NFIELDS);
    msgpack_pack_uint32(&pk, PROF_FORMAT);
    prof_pack_str(&pk, p->id);
    msgpack_pack_uint64(&pk, p->updated_at);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, p->consent_known);
    msgpack_pack_uint32(&pk, p->consent);
    msgpack_pack_array(&pk, PROF_NRECENCY);
    for (size_t i = 0; i < PROF_NRECENCY; i++)
        msgpack_pack_uint64(&pk, p->recency[i]);
    msgpack_pack_array(&pk, PROF_NATTR);
    for (size_t a = 0; a < PROF_NATTR; a++) {
        if (p->attr[a][0] == '\0')
            msgpack_pack_nil(&pk);
        else
            prof_pack_str(&pk, p->attr[a]);
    }
    msgpack_pack_uint8(&pk, p->age_band);
    for (int which = 0; which < 3; which++)
        prof_pack_wrapped(&pk, p, which, &overflow);
    msgpack_pack_uint64(&pk, p->created_at);
    msgpack_pack_array(&pk, p->naliases);
    for (uint32_t i = 0; i < p->naliases; i++) {
        msgpack_pack_array(&pk, 2);
        prof_pack_str(&pk, p->aliases[i].source);
        prof_pack_str(&pk, p->aliases[i].id);
    }
    msgpack_pack_map(&pk, p->ncustom);
    for (uint32_t i = 0; i < p->ncustom; i++) {
        prof_pack_str(&pk, p->custom[i].key);
        prof_pack_str(&pk, p->custom[i].val);
    }
    return out->overflow || overflow ? ADS_EINTERNAL : 0;
}

/* Reads a str into a fixed field of max bytes (plus NUL). */
static int prof_read_str(struct mpr *r, char *dst, size_t max)
{
    const char *s;
    size_t len;

    if (mpr_str(r, &s, &len) != 0 || len > max)
        return ADS_EDATA_INVALID;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

/* Opens an element [a, b, ...] of at least @p width values; returns how many extra to skip after. */
static int prof_read_tuple(struct mpr *r, uint32_t width, uint32_t *ret_extra)
{
    uint32_t n;
    if (mpr_array(r, &n) != 0 || n < width)
        return ADS_EDATA_INVALID;
    *ret_extra = n - width;
    return 0;
}

static int prof_skip_n(struct mpr *r, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (mpr_skip(r) != 0)
            return ADS_EDATA_INVALID;
    }
    return 0;
}

/* Opens a bin-wrapped list: *@p ret_it iterates its @p *ret_n elements (at most @p max). */
static int prof_read_wrapped(struct mpr *r, uint32_t max, struct mpr *ret_it, uint32_t *ret_n)
{
    const void *body;
    size_t len;

    if (mpr_bin(r, &body, &len) != 0)
        return ADS_EDATA_INVALID;
    mpr_init(ret_it, body, len);
    if (mpr_array(ret_it, ret_n) != 0 || *ret_n > max)
        return ADS_EDATA_INVALID;
    return 0;
}

/*
 * The hot part, shared by prof_decode and prof_view_open: format, id,
 * updated_at, consent, recency, attributes, age band and the three list
 * cursors. Strings point into the input.
 */
static int prof_read_hot(struct mpr *r, struct prof_view *v)
{
    uint32_t nfields, extra;
    uint64_t format, known, val, age;

    if (mpr_array(r, &nfields) != 0 || nfields < PROF_NFIELDS || mpr_u64(r, &format) != 0)
        return ADS_EDATA_INVALID;
    if (format > PROF_FORMAT)
        return ADS_EDATA_TOO_NEW;
    if (format != PROF_FORMAT || mpr_str(r, &v->id, &v->id_len) != 0 || v->id_len > PROF_ID_MAX ||
        mpr_u64(r, &v->updated_at) != 0)
        return ADS_EDATA_INVALID;
    if (prof_read_tuple(r, 2, &extra) != 0 || mpr_u64(r, &known) != 0 || mpr_u64(r, &val) != 0 || known > UINT32_MAX ||
        val > UINT32_MAX || prof_skip_n(r, extra) != 0)
        return ADS_EDATA_INVALID;
    v->consent_known = (uint32_t)known;
    v->consent = (uint32_t)val;
    if (prof_read_tuple(r, PROF_NRECENCY, &extra) != 0)
        return ADS_EDATA_INVALID;
    for (size_t i = 0; i < PROF_NRECENCY; i++) {
        if (mpr_u64(r, &v->recency[i]) != 0)
            return ADS_EDATA_INVALID;
    }
    if (prof_skip_n(r, extra) != 0 || prof_read_tuple(r, PROF_NATTR, &extra) != 0)
        return ADS_EDATA_INVALID;
    for (size_t a = 0; a < PROF_NATTR; a++) {
        v->attr[a] = NULL;
        v->attr_len[a] = 0;
        if (!mpr_nil(r) && (mpr_str(r, &v->attr[a], &v->attr_len[a]) != 0 || v->attr_len[a] > PROF_ATTR_MAX))
            return ADS_EDATA_INVALID;
    }
    if (prof_skip_n(r, extra) != 0 || mpr_u64(r, &age) != 0 || age >= PROF_AGE_COUNT)
        return ADS_EDATA_INVALID;
    v->age_band = (uint8_t)age;
    if (prof_read_wrapped(r, PROF_MAX_INTERESTS, &v->interests, &v->ninterests) != 0 ||
        prof_read_wrapped(r, PROF_MAX_FREQ, &v->freq, &v->nfreq) != 0 ||
        prof_read_wrapped(r, PROF_MAX_SEGMENTS, &v->segments, &v->nsegments) != 0)
        return ADS_EDATA_INVALID;
    return 0;
}

static int prof_read_tag(struct mpr *r, struct prof_tag_ref *t)
{
    uint32_t extra;

    if (prof_read_tuple(r, 3, &extra) != 0 || mpr_str(r, &t->id, &t->id_len) != 0 || t->id_len > PROF_TAG_MAX ||
        mpr_f64(r, &t->weight) != 0 || mpr_u64(r, &t->at) != 0)
        return ADS_EDATA_INVALID;
    return prof_skip_n(r, extra);
}

/* Reads a frequency entry; with @p want (not NULL), skips the counters of any other campaign. */
static int prof_read_freq(struct mpr *r, const char *want, size_t want_len, const char **ret_campaign, size_t *ret_len,
                          struct prof_freq *q, bool *ret_match)
{
    uint64_t *vals[8] = {&q->hour_start, &q->hour,   &q->day_start,   &q->day,
                         &q->lifetime,   &q->clicks, &q->conversions, &q->last_at};
    uint32_t extra;

    if (prof_read_tuple(r, 9, &extra) != 0 || mpr_str(r, ret_campaign, ret_len) != 0 || *ret_len > PROF_TAG_MAX)
        return ADS_EDATA_INVALID;
    *ret_match = want == NULL || (*ret_len == want_len && memcmp(*ret_campaign, want, want_len) == 0);
    if (!*ret_match)
        return prof_skip_n(r, 8 + extra);
    for (size_t k = 0; k < 8; k++) {
        if (mpr_u64(r, vals[k]) != 0)
            return ADS_EDATA_INVALID;
    }
    return prof_skip_n(r, extra);
}

static void prof_copy(char *dst, const char *s, size_t len)
{
    memcpy(dst, s, len);
    dst[len] = '\0';
}

int prof_decode(const void *data, size_t len, struct profile *p)
{
    struct prof_view v;
    struct mpr r;
    uint32_t n, extra;
    const char *s;
    size_t slen;
    bool match;
    int rc;

    mpr_init(&r, data, len);
    if ((rc = prof_read_hot(&r, &v)) != 0)
        return rc;
    prof_copy(p->id, v.id, v.id_len);
    p->updated_at = v.updated_at;
    p->consent_known = v.consent_known;
    p->consent = v.consent;
    memcpy(p->recency, v.recency, sizeof(p->recency));
    for (size_t a = 0; a < PROF_NATTR; a++)
        prof_copy(p->attr[a], v.attr[a] != NULL ? v.attr[a] : "", v.attr_len[a]);
    p->age_band = v.age_band;

    struct mpr *its[2] = {&v.interests, &v.segments};
    struct prof_tag *lists[2] = {p->interests, p->segments};
    uint32_t counts[2] = {v.ninterests, v.nsegments};
    for (size_t l = 0; l < 2; l++) {
        for (uint32_t i = 0; i < counts[l]; i++) {
            struct prof_tag_ref t;
            if (prof_read_tag(its[l], &t) != 0)
                return ADS_EDATA_INVALID;
            prof_copy(lists[l][i].id, t.id, t.id_len);
            lists[l][i].weight = t.weight;
            lists[l][i].at = t.at;
        }
    }
    p->ninterests = v.ninterests;
    p->nsegments = v.nsegments;
    for (uint32_t i = 0; i < v.nfreq; i++) {
        if (prof_read_freq(&v.freq, NULL, 0, &s, &slen, &p->freq[i], &match) != 0)
            return ADS_EDATA_INVALID;
        prof_copy(p->freq[i].campaign, s, slen);
    }
    p->nfreq = v.nfreq;

    if (mpr_u64(&r, &p->created_at) != 0 || mpr_array(&r, &n) != 0 || n > PROF_MAX_ALIASES)
        return ADS_EDATA_INVALID;
    p->naliases = n;
    for (uint32_t i = 0; i < n; i++) {
        if (prof_read_tuple(&r, 2, &extra) != 0 || prof_read_str(&r, p->aliases[i].source, PROF_SOURCE_MAX) != 0 ||
            prof_read_str(&r, p->aliases[i].id, PROF_ID_MAX) != 0 || prof_skip_n(&r, extra) != 0)
            return ADS_EDATA_INVALID;
    }
    if (mpr_map(&r, &n) != 0 || n > PROF_MAX_CUSTOM)
        return ADS_EDATA_INVALID;
    p->ncustom = n;
    for (uint32_t i = 0; i < n; i++) {
        if (prof_read_str(&r, p->custom[i].key, PROF_CUSTOM_KEY_MAX) != 0 ||
            prof_read_str(&r, p->custom[i].val, PROF_CUSTOM_VAL_MAX) != 0)
            return ADS_EDATA_INVALID;
    }
    return 0;
}

/* The hot part of a typical profile spans a few hundred bytes. */
#define PROF_PREFETCH_BYTES 512

int prof_view_open(const void *data, size_t len, struct prof_view *v)
{
    struct mpr r;

    /* A record read at random is rarely cached; asking for all of its hot
     * cache lines at once overlaps their misses instead of taking them one by
     * one as the walk reaches each line. */
    for (size_t off = 64; off < len && off < PROF_PREFETCH_BYTES; off += 64)
        __builtin_prefetch((const char *)data + off);
    mpr_init(&r, data, len);
    return prof_read_hot(&r, v);
}

int prof_view_next_tag(struct mpr *it, struct prof_tag_ref *ret)
{
    return prof_read_tag(it, ret);
}

int prof_view_freq(const struct prof_view *v, const char *campaign, size_t len, struct prof_freq *ret)
{
    struct mpr it = v->freq;
    struct prof_freq q;
    const char *s;
    size_t slen;
    bool match;

    for (uint32_t i = 0; i < v->nfreq; i++) {
        if (prof_read_freq(&it, campaign, len, &s, &slen, &q, &match) != 0)
            return ADS_EDATA_INVALID;
        if (match) {
            q.campaign[0] = '\0';
            *ret = q;
            return 0;
        }
    }
    return ADS_ENOT_FOUND;
}

/* ---- the JSON face ---- */

void prof_render(const struct profile *p, struct docw *w)
{
    uint32_t nattr = p->age_band != PROF_AGE_UNKNOWN ? 1 : 0;
    uint32_t nconsent = 0;

    for (size_t a = 0; a < PROF_NATTR; a++)
        nattr += p->attr[a][0] != '\0';
    nattr += p->ncustom > 0;
    for (size_t i = 0; i < PROF_NCONSENT; i++)
        nconsent += (p->consent_known & prof_consent_names[i].bit) != 0;

    docw_map(w, 10);
    docw_key(w, "id");
    docw_cstr(w, p->id);
    docw_key(w, "aliases");
    docw_array(w, p->naliases);
    for (uint32_t i = 0; i < p->naliases; i++) {
        docw_map(w, 2);
        docw_key(w, "source");
        docw_cstr(w, p->aliases[i].source);
        docw_key(w, "id");
        docw_cstr(w, p->aliases[i].id);
        docw_map_end(w);
    }
    docw_array_end(w);

    docw_key(w, "attributes");
    docw_map(w, nattr);
    for (size_t a = 0; a < PROF_NATTR; a++) {
        if (p->attr[a][0] != '\0') {
            docw_key(w, prof_attr_names[a]);
            docw_cstr(w, p->attr[a]);
        }
    }
    if (p->age_band != PROF_AGE_UNKNOWN) {
        docw_key(w, "age_band");
        docw_cstr(w, prof_age_names[p->age_band]);
    }
    if (p->ncustom > 0) {
        docw_key(w, "custom");
        docw_map(w, p->ncustom);
        for (uint32_t i = 0; i < p->ncustom; i++) {
            docw_key(w, p->custom[i].key);
            docw_cstr(w, p->custom[i].val);
        }
        docw_map_end(w);
    }
    docw_map_end(w);

    const char *list_names[2] = {"segments", "interests"};
    const char *at_names[2] = {"last_seen", "updated_at"};
    const struct prof_tag *lists[2] = {p->segments, p->interests};
    const uint32_t counts[2] = {p->nsegments, p->ninterests};
    for (size_t l = 0; l < 2; l++) {
        docw_key(w, list_names[l]);
        docw_array(w, counts[l]);
        for (uint32_t i = 0; i < counts[l]; i++) {
            docw_map(w, 3);
            docw_key(w, "id");
            docw_cstr(w, lists[l][i].id);
            docw_key(w, "weight");
            docw_double(w, lists[l][i].weight);
            docw_key(w, at_names[l]);
            docw_uint(w, lists[l][i].at);
            docw_map_end(w);
        }
        docw_array_end(w);
    }

    docw_key(w, "frequency");
    docw_array(w, p->nfreq);
    for (uint32_t i = 0; i < p->nfreq; i++) {
        const struct prof_freq *q = &p->freq[i];
        const uint64_t vals[8] = {q->hour_start, q->hour,   q->day_start,   q->day,
                                  q->lifetime,   q->clicks, q->conversions, q->last_at};
        static const char *const names[8] = {"hour_start", "hour",   "day_start",   "day",
                                             "lifetime",   "clicks", "conversions", "last_at"};
        docw_map(w, 9);
        docw_key(w, "campaign");
        docw_cstr(w, q->campaign);
        for (size_t k = 0; k < 8; k++) {
            docw_key(w, names[k]);
            docw_uint(w, vals[k]);
        }
        docw_map_end(w);
    }
    docw_array_end(w);

    docw_key(w, "recency");
    docw_map(w, PROF_NRECENCY);
    for (size_t i = 0; i < PROF_NRECENCY; i++) {
        docw_key(w, prof_recency_names[i]);
        docw_uint(w, p->recency[i]);
    }
    docw_map_end(w);

    docw_key(w, "consent");
    docw_map(w, nconsent);
    for (size_t i = 0; i < PROF_NCONSENT; i++) {
        if (p->consent_known & prof_consent_names[i].bit) {
            docw_key(w, prof_consent_names[i].name);
            docw_bool(w, (p->consent & prof_consent_names[i].bit) != 0);
        }
    }
    docw_map_end(w);

    docw_key(w, "created_at");
    docw_uint(w, p->created_at);
    docw_key(w, "updated_at");
    docw_uint(w, p->updated_at);
    docw_map_end(w);
}
