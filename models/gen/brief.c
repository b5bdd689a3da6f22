/*
 * The generation brief, read from a campaign document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/doc.h"
#include "adsmith/gen.h"
#include "internal.h"

/* Copies a string member into @p out (at most @p max bytes). */
static int get_str(const msgpack_object *o, const char *ptr, size_t max, bool required, char *out, struct ads_diag *d)
{
    if (o == NULL) {
        out[0] = '\0';
        if (required)
            return ads_diag_set(d, ADS_EINVAL, ptr, "%s is required", ptr);
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_STR)
        return ads_diag_set(d, ADS_EINVAL, ptr, "%s must be a string", ptr);
    if (o->via.str.size > max)
        return ads_diag_set(d, ADS_EINVAL, ptr, "%s is longer than %zu bytes", ptr, max);
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    if (memchr(out, '\0', o->via.str.size) != NULL || !doc_utf8_valid(out, o->via.str.size))
        return ads_diag_set(d, ADS_EINVAL, ptr, "%s is not valid text", ptr);
    return 0;
}

/* Reads an array of strings into rows of @p stride bytes. */
static int get_strs(const msgpack_object *o, const char *ptr, uint32_t max_n, size_t max_len, char *rows, size_t stride,
                    uint32_t *ret_n, struct ads_diag *d)
{
    *ret_n = 0;
    if (o == NULL)
        return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return ads_diag_set(d, ADS_EINVAL, ptr, "%s must be an array", ptr);
    if (o->via.array.size > max_n)
        return ads_diag_set(d, ADS_EINVAL, ptr, "%s has more than %u items", ptr, max_n);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        char p[128];
        int rc;

        snprintf(p, sizeof(p), "%s/%u", ptr, i);
        rc = get_str(&o->via.array.ptr[i], p, max_len, true, rows + (size_t)i * stride, d);
        if (rc < 0)
            return rc;
    }
    *ret_n = o->via.array.size;
    return 0;
}

static int get_uint(const msgpack_object *o, const char *ptr, uint32_t lo, uint32_t hi, uint32_t dflt, uint32_t *out,
                    struct ads_diag *d)
{
    if (o == NULL) {
        *out = dflt;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 < lo || o->via.u64 > hi)
        return ads_diag_set(d, ADS_EINVAL, ptr, "%s must be an integer from %u to %u", ptr, lo, hi);
    *out = (uint32_t)o->via.u64;
    return 0;
}

int gen_brief_from_doc(const msgpack_object *campaign_doc, struct gen_brief *ret, struct ads_diag *ret_diag)
{
    const msgpack_object *g = doc_map_get(campaign_doc, "generation");
    const msgpack_object *lim, *cr, *nat, *slots;
    struct gen_brief *b;
    int rc;

    if (g == NULL)
        return ads_diag_set(ret_diag, ADS_ENOT_FOUND, "/generation", "the campaign has no generation brief");
    if (g->type != MSGPACK_OBJECT_MAP)
        return ads_diag_set(ret_diag, ADS_EINVAL, "/generation", "/generation must be an object");
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return ADS_ENOMEM;

    rc = get_strs(doc_map_get(g, "facts"), "/generation/facts", GEN_MAX_FACTS, GEN_FACT_MAX, &b->facts[0][0],
                  sizeof(b->facts[0]), &b->n_facts, ret_diag);
    if (rc == 0 && b->n_facts == 0)
        rc = ads_diag_set(ret_diag, ADS_EINVAL, "/generation/facts", "/generation/facts needs at least one fact");
    if (rc == 0)
        rc = get_str(doc_map_get(g, "brand_voice"), "/generation/brand_voice", GEN_VOICE_MAX, true, b->voice, ret_diag);
    if (rc == 0)
        rc = get_strs(doc_map_get(g, "required_terms"), "/generation/required_terms", GEN_MAX_REQUIRED, GEN_TERM_MAX,
                      &b->required[0][0], sizeof(b->required[0]), &b->n_required, ret_diag);
    if (rc == 0)
        rc = get_strs(doc_map_get(g, "forbidden_terms"), "/generation/forbidden_terms", GEN_MAX_FORBIDDEN, GEN_TERM_MAX,
                      &b->forbidden[0][0], sizeof(b->forbidden[0]), &b->n_forbidden, ret_diag);
    if (rc == 0)
        rc = get_strs(doc_map_get(g, "locales"), "/generation/locales", GEN_MAX_LOCALES, GEN_LOCALE_MAX,
                      &b->locales[0][0], sizeof(b->locales[0]), &b->n_locales, ret_diag);
    if (rc == 0 && b->n_locales == 0)
        rc = ads_diag_set(ret_diag, ADS_EINVAL, "/generation/locales", "/generation/locales needs a locale");
    if (rc == 0)
        rc = get_uint(doc_map_get(g, "variants"), "/generation/variants", 1, GEN_MAX_VARIANTS, 0, &b->variants,
                      ret_diag);
    if (rc == 0 && b->variants == 0)
        rc = ads_diag_set(ret_diag, ADS_EINVAL, "/generation/variants", "/generation/variants is required");
    if (rc == 0)
        rc = get_str(doc_map_get(g, "ai_label"), "/generation/ai_label", GEN_LABEL_MAX, true, b->ai_label, ret_diag);
    if (rc == 0)
        rc =
            get_str(doc_map_get(g, "backend"), "/generation/backend", GEN_BACKEND_NAME_MAX, true, b->backend, ret_diag);
    lim = doc_map_get(g, "field_limits");
    if (rc == 0 && lim != NULL && lim->type != MSGPACK_OBJECT_MAP)
        rc = ads_diag_set(ret_diag, ADS_EINVAL, "/generation/field_limits", "field_limits must be an object");
    if (rc == 0)
        rc = get_uint(doc_map_get(lim, "title"), "/generation/field_limits/title", 1, GEN_TITLE_CHARS, GEN_TITLE_CHARS,
                      &b->limit_title, ret_diag);
    if (rc == 0)
        rc = get_uint(doc_map_get(lim, "description"), "/generation/field_limits/description", 1, GEN_DESCRIPTION_CHARS,
                      GEN_DESCRIPTION_CHARS, &b->limit_description, ret_diag);
    if (rc == 0)
        rc = get_uint(doc_map_get(lim, "cta"), "/generation/field_limits/cta", 1, GEN_CTA_CHARS, GEN_CTA_CHARS,
                      &b->limit_cta, ret_diag);

    cr = doc_map_get(campaign_doc, "creatives");
    nat = doc_map_get(cr, "native");
    if (rc == 0 && nat != NULL) {
        b->has_native = true;
        rc = get_str(doc_map_get(nat, "title"), "/creatives/native/title", GEN_TITLE_CAP - 1, true, b->base_title,
                     ret_diag);
        if (rc == 0)
            rc = get_str(doc_map_get(nat, "description"), "/creatives/native/description", GEN_DESCRIPTION_CAP - 1,
                         false, b->base_description, ret_diag);
        if (rc == 0)
            rc = get_str(doc_map_get(nat, "cta"), "/creatives/native/cta", GEN_CTA_CAP - 1, false, b->base_cta,
                         ret_diag);
    }
    slots = doc_map_get(cr, "slots");
    if (rc == 0 && slots != NULL) {
        if (slots->type != MSGPACK_OBJECT_MAP || slots->via.map.size > GEN_MAX_SLOTS)
            rc = ads_diag_set(ret_diag, ADS_EINVAL, "/creatives/slots", "slots must be an object of at most %d",
                              GEN_MAX_SLOTS);
        for (uint32_t i = 0; rc == 0 && i < slots->via.map.size; i++) {
            const msgpack_object_kv *kv = &slots->via.map.ptr[i];
            struct gen_slot *s = &b->slots[b->n_slots];

            if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size == 0 ||
                kv->key.via.str.size > GEN_SLOT_NAME_MAX) {
                rc = ads_diag_set(ret_diag, ADS_EINVAL, "/creatives/slots", "a slot name is 1-32 characters");
                break;
            }
            memcpy(s->name, kv->key.via.str.ptr, kv->key.via.str.size);
            s->name[kv->key.via.str.size] = '\0';
            rc = get_uint(doc_map_get(&kv->val, "max_length"), "/creatives/slots/max_length", 1, 64, 64, &s->max_length,
                          ret_diag);
            b->n_slots++;
        }
    }
    if (rc == 0)
        memcpy(ret, b, sizeof(*b));
    free(b);
    return rc;
}
