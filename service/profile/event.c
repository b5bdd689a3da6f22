#include "adsmith/event.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adsmith/rank.h"
#include "fields.h"

static const char *const evt_type_names[EVT_NTYPES] = {"impression", "click", "conversion", "custom"};

/* What one event adds to each interest it names, by type, unless it says "weight". */
static const double evt_default_weight[EVT_NTYPES] = {0.1, 1.0, 5.0, 0.0};

#define EVT_MAX_VALUE 1000000000000000ll /* micro-units: a billion currency units */

const char *evt_type_name(enum evt_type t)
{
    return t < EVT_NTYPES ? evt_type_names[t] : "unknown";
}

enum {
    EVT_K_ID,
    EVT_K_TYPE,
    EVT_K_USER,
    EVT_K_SOURCE,
    EVT_K_TS,
    EVT_K_CAMPAIGN,
    EVT_K_VARIANT,
    EVT_K_NAME,
    EVT_K_INTERESTS,
    EVT_K_WEIGHT,
    EVT_K_VALUE,
    EVT_K_IMPRESSION_ID,
    EVT_K_FEATURES,
    EVT_NKEYS
};

static const char *const evt_keys[EVT_NKEYS] = {"id",      "type", "user",      "source", "ts",
                                                "campaign", "variant", "name", "interests", "weight",
                                                "value",   "impression_id", "features"};

/* The ranking model's serving schema, indexed by enum rank_field. */
static const struct {
    const char *name;
    enum ctr_kind kind;
} evt_feature_fields[] = {
#define EVT_FIELD_(e, name, kind, group) {name, kind},
    RANK_ADSMITH_FIELDS(EVT_FIELD_)
#undef EVT_FIELD_
};

#define EVT_NFEATURE_FIELDS (sizeof(evt_feature_fields) / sizeof(evt_feature_fields[0]))
_Static_assert(EVT_NFEATURE_FIELDS <= 32, "a field is marked seen in a 32-bit mask");

static int evt_feature_token(struct fld_ctx *c, const msgpack_object *o, uint32_t f, struct ctr_value *ret,
                             uint32_t *n)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 || o->via.str.size > EVT_FEATURE_TOKEN_MAX ||
        !fld_is_text(o->via.str.ptr, o->via.str.size))
        return fld_fail(c, "must be a string of 1 to %d bytes without control characters", EVT_FEATURE_TOKEN_MAX);
    if (*n == EVT_MAX_FEATURES)
        return fld_fail(c, "is one value too many: an impression carries at most %d feature values", EVT_MAX_FEATURES);
    ret[*n] = (struct ctr_value){.field = f, .kind = CTR_CAT, .token = ctr_hash(o->via.str.ptr, o->via.str.size, 0),
                                 .x = 1.0};
    (*n)++;
    return 0;
}

/* "features": {name: token | [tokens] | number}; values into @p ret (EVT_MAX_FEATURES of room). */
static int evt_parse_features(struct fld_ctx *c, const msgpack_object *o, struct ctr_value *ret, uint32_t *ret_n)
{
    uint32_t n = 0, seen = 0;
    int rc;

    if ((rc = fld_want(c, o, MSGPACK_OBJECT_MAP, "an object of feature names to values")) != 0)
        return rc;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        uint32_t f = 0;
        while (f < EVT_NFEATURE_FIELDS &&
               !(k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(evt_feature_fields[f].name) &&
                 memcmp(k->via.str.ptr, evt_feature_fields[f].name, k->via.str.size) == 0))
            f++;
        if (f == EVT_NFEATURE_FIELDS)
            return fld_fail(c, "\"%.*s\" is not a feature of the serving schema (rank.h RANK_ADSMITH_FIELDS: site, app, "
                               "domain, creative, ...)",
                            k->type == MSGPACK_OBJECT_STR ? (k->via.str.size > 32 ? 32 : (int)k->via.str.size) : 0,
                            k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "");
        size_t mark = fld_push_key(c, evt_feature_fields[f].name);
        if (seen & (1u << f))
            return fld_fail(c, "is given twice");
        seen |= 1u << f;
        if (evt_feature_fields[f].kind == CTR_NUM) {
            double x;
            if ((rc = fld_want(c, v, MSGPACK_OBJECT_FLOAT64, "a number")) != 0)
                return rc;
            x = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER   ? (double)v->via.u64
                : v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double)v->via.i64
                                                             : v->via.f64;
            if (!(fabs(x) <= EVT_FEATURE_NUM_MAX))
                return fld_fail(c, "must be a number from -%g to %g", EVT_FEATURE_NUM_MAX, EVT_FEATURE_NUM_MAX);
            if (n == EVT_MAX_FEATURES)
                return fld_fail(c, "is one value too many: an impression carries at most %d feature values",
                                EVT_MAX_FEATURES);
            ret[n++] = (struct ctr_value){.field = f, .kind = CTR_NUM, .x = x};
        } else if (v->type == MSGPACK_OBJECT_ARRAY) {
            if ((rc = fld_list(c, v, EVT_MAX_FEATURES)) != 0)
                return rc;
            for (uint32_t j = 0; j < v->via.array.size; j++) {
                size_t m2 = fld_push_index(c, j);
                if ((rc = evt_feature_token(c, &v->via.array.ptr[j], f, ret, &n)) != 0)
                    return rc;
                fld_pop(c, m2);
            }
        } else if ((rc = evt_feature_token(c, v, f, ret, &n)) != 0) {
            return rc;
        }
        fld_pop(c, mark);
    }
    *ret_n = n;
    return 0;
}

static int evt_parse_type(struct fld_ctx *c, const msgpack_object *o, struct evt *e)
{
    int rc;

    if ((rc = fld_want(c, o, MSGPACK_OBJECT_STR, "a string")) != 0)
        return rc;
    for (size_t t = 0; t < EVT_NTYPES; t++) {
        if (strlen(evt_type_names[t]) == o->via.str.size &&
            memcmp(evt_type_names[t], o->via.str.ptr, o->via.str.size) == 0) {
            e->type = (uint8_t)t;
            return 0;
        }
    }
    return fld_fail(c, "\"%.*s\" is not an event type; use impression, click, conversion or custom",
                    o->via.str.size > 32 ? 32 : (int)o->via.str.size, o->via.str.ptr);
}

static int evt_parse_interests(struct fld_ctx *c, const msgpack_object *o, struct evt *e)
{
    int rc;

    if ((rc = fld_list(c, o, EVT_MAX_INTERESTS)) != 0)
        return rc;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        size_t mark = fld_push_index(c, i);
        if ((rc = fld_str(c, &o->via.array.ptr[i], PROF_TAG_MAX, e->interests[i])) != 0)
            return rc;
        fld_pop(c, mark);
    }
    e->ninterests = (uint8_t)o->via.array.size;
    return 0;
}

static int evt_parse_one(struct fld_ctx *c, const msgpack_object *o, uint64_t now, struct evt *e)
{
    const msgpack_object *f[EVT_NKEYS];
    struct ctr_value feat[EVT_MAX_FEATURES];
    uint32_t nfeat;
    size_t mark;
    int rc = 0;

    memset(e, 0, sizeof(*e));
    if ((rc = fld_fields(c, o, evt_keys, EVT_NKEYS, f)) != 0)
        return rc;
    for (size_t k = EVT_K_TYPE; k <= EVT_K_TS; k++) {
        if (f[k] == NULL && k != EVT_K_SOURCE) {
            fld_push_key(c, evt_keys[k]);
            return fld_fail(c, "is required");
        }
    }
    for (size_t k = 0; k < EVT_NKEYS && rc == 0; k++) {
        if (f[k] == NULL)
            continue;
        mark = fld_push_key(c, evt_keys[k]);
        switch (k) {
        case EVT_K_ID:
            rc = fld_str(c, f[k], EVT_ID_MAX, e->id);
            e->id_len = (uint8_t)strlen(e->id);
            break;
        case EVT_K_TYPE: rc = evt_parse_type(c, f[k], e); break;
        case EVT_K_USER: rc = fld_str(c, f[k], PROF_ID_MAX, e->user); break;
        case EVT_K_SOURCE: rc = fld_str(c, f[k], PROF_SOURCE_MAX, e->source); break;
        case EVT_K_TS:
            if ((rc = fld_time(c, f[k], &e->ts)) == 0 && e->ts < EVT_MIN_TS)
                rc = fld_fail(c, "%llu is before 2000-01-01; send unix seconds", (unsigned long long)e->ts);
            else if (rc == 0 && e->ts > now + EVT_MAX_FUTURE_S)
                rc = fld_fail(c,
                              "%llu is %llu seconds in the future (the server's clock reads %llu); at most %d is "
                              "tolerated",
                              (unsigned long long)e->ts, (unsigned long long)(e->ts - now), (unsigned long long)now,
                              EVT_MAX_FUTURE_S);
            break;
        case EVT_K_CAMPAIGN: rc = fld_str(c, f[k], PROF_TAG_MAX, e->campaign); break;
        case EVT_K_VARIANT: rc = fld_str(c, f[k], PROF_TAG_MAX, e->variant); break;
        case EVT_K_NAME: rc = fld_str(c, f[k], PROF_TAG_MAX, e->name); break;
        case EVT_K_INTERESTS: rc = evt_parse_interests(c, f[k], e); break;
        case EVT_K_WEIGHT: rc = fld_number(c, f[k], EVT_MAX_WEIGHT, &e->weight); break;
        case EVT_K_VALUE:
            if (f[k]->type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[k]->via.u64 > (uint64_t)EVT_MAX_VALUE)
                rc = fld_fail(c, "must be an integer number of micro-units from 0 to %lld", EVT_MAX_VALUE);
            else
                e->value = (int64_t)f[k]->via.u64;
            break;
        case EVT_K_IMPRESSION_ID: rc = fld_str(c, f[k], EVT_ID_MAX, e->impression_id); break;
        case EVT_K_FEATURES:
            /* Checked here, whether or not a learner runs; the learner reads
             * them again from the document (evt_features_from_doc). */
            rc = evt_parse_features(c, f[k], feat, &nfeat);
            e->has_features = 1;
            break;
        default: break;
        }
        if (rc == 0)
            fld_pop(c, mark);
    }
    if (rc != 0)
        return rc;
    if (f[EVT_K_WEIGHT] == NULL)
        e->weight = evt_default_weight[e->type];
    if (e->type == EVT_CUSTOM && e->name[0] == '\0') {
        fld_push_key(c, "name");
        return fld_fail(c, "is required for a custom event");
    }
    if (e->impression_id[0] != '\0' && e->type != EVT_IMPRESSION && e->type != EVT_CLICK) {
        fld_push_key(c, "impression_id");
        return fld_fail(c, "is for impression and click events only");
    }
    if (e->has_features && e->type != EVT_IMPRESSION) {
        fld_push_key(c, "features");
        return fld_fail(c, "is for impression events only");
    }
    if (e->has_features && e->impression_id[0] == '\0' && e->id[0] == '\0') {
        fld_push_key(c, "features");
        return fld_fail(c, "needs an impression_id (or an id) for later clicks to refer to");
    }
    return 0;
}

size_t evt_batch_count(const msgpack_object *doc)
{
    if (doc->type != MSGPACK_OBJECT_MAP)
        return 0;
    for (uint32_t i = 0; i < doc->via.map.size; i++) {
        const msgpack_object_kv *kv = &doc->via.map.ptr[i];
        if (kv->key.via.str.size == 6 && memcmp(kv->key.via.str.ptr, "events", 6) == 0 &&
            kv->val.type == MSGPACK_OBJECT_ARRAY)
            return kv->val.via.array.size < EVT_MAX_BATCH ? kv->val.via.array.size : EVT_MAX_BATCH;
    }
    return 0;
}

int evt_batch_from_doc(const msgpack_object *doc, uint64_t now, struct evt *ret, size_t *ret_n,
                       struct ads_diag *ret_diag)
{
    static const char *const top[] = {"events"};
    const msgpack_object *f[1];
    struct fld_ctx c;
    int rc;

    fld_init(&c, ret_diag);
    if ((rc = fld_fields(&c, doc, top, 1, f)) != 0)
        return rc;
    if (f[0] == NULL)
        return fld_fail(&c, "the body must be {\"events\": [...]}");
    fld_push_key(&c, "events");
    if ((rc = fld_list(&c, f[0], EVT_MAX_BATCH)) != 0)
        return rc;
    if (f[0]->via.array.size == 0)
        return fld_fail(&c, "must hold at least one event");
    for (uint32_t i = 0; i < f[0]->via.array.size; i++) {
        size_t mark = fld_push_index(&c, i);
        if ((rc = evt_parse_one(&c, &f[0]->via.array.ptr[i], now, &ret[i])) != 0)
            return rc;
        fld_pop(&c, mark);
    }
    *ret_n = f[0]->via.array.size;
    return 0;
}

int evt_features_from_doc(const msgpack_object *doc, size_t i, struct ctr_value *ret, uint32_t *ret_n)
{
    const msgpack_object *list = NULL, *ev, *feat = NULL;
    struct ads_diag scratch;
    struct fld_ctx c;

    if (doc->type != MSGPACK_OBJECT_MAP)
        return ADS_EINVAL;
    for (uint32_t k = 0; k < doc->via.map.size; k++) {
        const msgpack_object_kv *kv = &doc->via.map.ptr[k];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 6 &&
            memcmp(kv->key.via.str.ptr, "events", 6) == 0)
            list = &kv->val;
    }
    if (list == NULL || list->type != MSGPACK_OBJECT_ARRAY || i >= list->via.array.size)
        return ADS_EINVAL;
    ev = &list->via.array.ptr[i];
    if (ev->type != MSGPACK_OBJECT_MAP)
        return ADS_EINVAL;
    for (uint32_t k = 0; k < ev->via.map.size; k++) {
        const msgpack_object_kv *kv = &ev->via.map.ptr[k];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 8 &&
            memcmp(kv->key.via.str.ptr, "features", 8) == 0)
            feat = &kv->val;
    }
    if (feat == NULL)
        return ADS_ENOT_FOUND;
    fld_init(&c, &scratch);
    return evt_parse_features(&c, feat, ret, ret_n);
}

static uint64_t evt_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static struct prof_freq *evt_freq_slot(struct profile *p, const char *campaign)
{
    uint32_t oldest = 0;

    for (uint32_t i = 0; i < p->nfreq; i++) {
        if (strcmp(p->freq[i].campaign, campaign) == 0)
            return &p->freq[i];
        if (p->freq[i].last_at < p->freq[oldest].last_at)
            oldest = i;
    }
    if (p->nfreq < PROF_MAX_FREQ)
        oldest = p->nfreq++;
    memset(&p->freq[oldest], 0, sizeof(p->freq[oldest]));
    snprintf(p->freq[oldest].campaign, sizeof(p->freq[oldest].campaign), "%s", campaign);
    return &p->freq[oldest];
}

/* Counts one impression at @p t into a fixed window of @p len seconds. */
static void evt_window_count(uint64_t t, uint64_t len, uint64_t *start, uint64_t *count)
{
    uint64_t s = t - t % len;

    if (s > *start) {
        *start = s;
        *count = 1;
    } else if (s == *start) {
        (*count)++;
    }
    /* An event from an earlier window than the current one counts only in lifetime. */
}

static void evt_add_interest(struct profile *p, const char *id, double inc, uint64_t t, uint32_t half_life)
{
    struct prof_tag *tag = NULL;
    uint32_t weakest = 0;
    double wmin = 0;

    for (uint32_t i = 0; i < p->ninterests; i++) {
        double w = prof_decay(p->interests[i].weight, p->interests[i].at, t, half_life);
        if (strcmp(p->interests[i].id, id) == 0) {
            tag = &p->interests[i];
            break;
        }
        if (i == 0 || w < wmin) {
            wmin = w;
            weakest = i;
        }
    }
    if (tag == NULL) {
        if (p->ninterests == PROF_MAX_INTERESTS && wmin >= inc)
            return; /* every kept interest outweighs this one */
        tag = &p->interests[p->ninterests < PROF_MAX_INTERESTS ? p->ninterests++ : weakest];
        snprintf(tag->id, sizeof(tag->id), "%s", id);
        tag->weight = inc;
        tag->at = t;
    } else if (t >= tag->at) {
        tag->weight = prof_decay(tag->weight, tag->at, t, half_life) + inc;
        tag->at = t;
    } else {
        /* A late event: its weight has decayed by the time of the stored one. */
        tag->weight += prof_decay(inc, t, tag->at, half_life);
    }
    if (tag->weight > PROF_MAX_WEIGHT)
        tag->weight = PROF_MAX_WEIGHT;
}

void evt_apply(struct profile *p, const struct evt *e, uint32_t half_life)
{
    static const int recency_of[EVT_NTYPES] = {PROF_LAST_IMPRESSION, PROF_LAST_CLICK, PROF_LAST_CONVERSION, -1};

    p->recency[PROF_LAST_SEEN] = evt_max(p->recency[PROF_LAST_SEEN], e->ts);
    if (recency_of[e->type] >= 0)
        p->recency[recency_of[e->type]] = evt_max(p->recency[recency_of[e->type]], e->ts);
    if (e->campaign[0] != '\0' && e->type != EVT_CUSTOM) {
        struct prof_freq *q = evt_freq_slot(p, e->campaign);
        switch (e->type) {
        case EVT_IMPRESSION:
            evt_window_count(e->ts, 3600, &q->hour_start, &q->hour);
            evt_window_count(e->ts, 86400, &q->day_start, &q->day);
            q->lifetime++;
            break;
        case EVT_CLICK: q->clicks++; break;
        case EVT_CONVERSION: q->conversions++; break;
        default: break;
        }
        q->last_at = evt_max(q->last_at, e->ts);
    }
    if (e->weight > 0) {
        for (uint8_t i = 0; i < e->ninterests; i++)
            evt_add_interest(p, e->interests[i], e->weight, e->ts, half_life);
    }
}
