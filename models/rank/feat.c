/*
 * The featurizer's configuration: per-field hash keys, crosses, the serving
 * schema "adsmith". The emitter itself is inline in rank_int.h.
 */
#include <stdio.h>
#include <string.h>

#include "rank_int.h"

uint64_t rank__hash_bytes(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;

    h ^= 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return rank__mix(h);
}

uint64_t rank__checksum(const unsigned char *p, size_t n, size_t zero_at)
{
    /* Four independent lanes so that the multiply chains overlap: a few MB
     * are checked at open in well under a millisecond. */
    uint64_t lane[4] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull, 0x082efa98ec4e6c89ull};
    size_t i = 0;

    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; k++) {
            uint64_t w = 0;
            if (i + 8 * (size_t)k != zero_at)
                memcpy(&w, p + i + 8 * k, 8);
            lane[k] = (lane[k] ^ w) * 0x9fb21c651e98df25ull;
            lane[k] ^= lane[k] >> 29;
        }
    }
    uint64_t h = (uint64_t)n;
    for (int k = 0; k < 4; k++)
        h = rank__mix(h ^ lane[k]);
    for (; i < n; i++)
        if (i < zero_at || i >= zero_at + 8)
            h = rank__mix(h ^ p[i] ^ ((uint64_t)i << 8));
    return h;
}

void rank__cfg_derive(struct rank_cfg *c)
{
    c->stride = 1 + c->k;
    memset(c->incross, 0, sizeof(c->incross));
    for (uint32_t f = 0; f < c->nfields; f++) {
        const char *name = c->fields[f].name;
        c->fkey[f] = rank__hash_bytes(name, strnlen(name, CTR_NAME_MAX), c->seed ^ (uint64_t)c->fields[f].kind);
        /* Every row touches these two per field: they sit side by side at the
         * start of the table (a few cache lines) instead of at hashed places.
         * A token hashed there shares the weight, as any collision would. */
        c->present[f] = (2 * f) & ((1u << c->bits) - 1);
        c->cont[f] = (2 * f + 1) & ((1u << c->bits) - 1);
    }
    for (uint32_t r = 0; r < c->ncross; r++) {
        c->incross[c->cross[r][0]] = 1;
        c->incross[c->cross[r][1]] = 1;
    }
}

uint64_t rank__schema_id(const struct rank_cfg *c)
{
    uint64_t h = rank__hash_bytes(c->schema, strnlen(c->schema, CTR_NAME_MAX), 0);

    for (uint32_t f = 0; f < c->nfields; f++) {
        h = rank__hash_bytes(c->fields[f].name, strnlen(c->fields[f].name, CTR_NAME_MAX), h);
        h = rank__mix(h ^ (uint64_t)c->fields[f].kind);
    }
    return h;
}

static int cfg_field(const struct rank_cfg *c, const char *name, size_t len)
{
    for (uint32_t f = 0; f < c->nfields; f++)
        if (strnlen(c->fields[f].name, CTR_NAME_MAX) == len && memcmp(c->fields[f].name, name, len) == 0)
            return (int)f;
    return -1;
}

int rank__cfg_crosses(struct rank_cfg *c, const char *spec, struct ads_diag *diag)
{
    const char *p = spec;

    c->ncross = 0;
    if (spec == NULL || *spec == '\0')
        return 0;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *star = memchr(p, '*', len);
        if (star == NULL)
            return ads_diag_set(diag, ADS_EINVAL, NULL, "cross \"%.*s\": write it as field*field", (int)len, p);
        int a = cfg_field(c, p, (size_t)(star - p));
        int b = cfg_field(c, star + 1, len - (size_t)(star - p) - 1);
        if (a < 0 || b < 0)
            return ads_diag_set(diag, ADS_EINVAL, NULL, "cross \"%.*s\": %s is not a field of schema %s", (int)len,
                                p, a < 0 ? "the first name" : "the second name", c->schema);
        if (a == b)
            return ads_diag_set(diag, ADS_EINVAL, NULL, "cross \"%.*s\": a field cannot be crossed with itself",
                                (int)len, p);
        if (c->ncross == RANK_MAX_CROSS)
            return ads_diag_set(diag, ADS_EINVAL, NULL, "more than %d crosses", RANK_MAX_CROSS);
        c->cross[c->ncross][0] = (uint32_t)a;
        c->cross[c->ncross][1] = (uint32_t)b;
        c->ncross++;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

struct field_def {
    const char *name;
    enum ctr_kind kind;
    enum rank_group group;
};

static const struct field_def adsmith_fields[] = {
#define RANK_FIELD_ROW_(e, name, kind, group) {name, kind, group},
    RANK_ADSMITH_FIELDS(RANK_FIELD_ROW_)
#undef RANK_FIELD_ROW_
};

void rank_schema_adsmith(struct ctr_schema *ret)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->id, sizeof(ret->id), "adsmith");
    ret->nfields = RANK_F_COUNT;
    for (uint32_t f = 0; f < RANK_F_COUNT; f++) {
        snprintf(ret->fields[f].name, sizeof(ret->fields[f].name), "%s", adsmith_fields[f].name);
        ret->fields[f].kind = adsmith_fields[f].kind;
    }
}

int rank_field_group(enum rank_field f)
{
    if ((unsigned)f >= RANK_F_COUNT)
        return -1;
    return (int)adsmith_fields[f].group;
}
