#include "fields.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "adsmith/doc.h"

void fld_init(struct fld_ctx *c, struct ads_diag *diag)
{
    c->diag = diag;
    c->depth = 0;
}

static size_t fld_push(struct fld_ctx *c, const char *key, size_t index)
{
    size_t mark = c->depth;

    /* Past the last step the pointer stays at its deepest recorded prefix. */
    if (c->depth < FLD_MAX_DEPTH)
        c->steps[c->depth++] = (struct fld_step){key, index};
    return mark;
}

size_t fld_push_key(struct fld_ctx *c, const char *key)
{
    return fld_push(c, key, 0);
}

size_t fld_push_index(struct fld_ctx *c, size_t i)
{
    return fld_push(c, NULL, i);
}

void fld_pop(struct fld_ctx *c, size_t mark)
{
    c->depth = mark;
}

int fld_fail(struct fld_ctx *c, const char *fmt, ...)
{
    struct buf b;
    va_list ap;

    if (c->diag == NULL)
        return ADS_EINVAL;
    va_start(ap, fmt);
    vsnprintf(c->diag->message, sizeof(c->diag->message), fmt, ap);
    va_end(ap);
    buf_init(&b, c->diag->pointer, sizeof(c->diag->pointer));
    for (size_t i = 0; i < c->depth; i++) {
        if (c->steps[i].key != NULL)
            doc_pointer_key(&b, c->steps[i].key, strlen(c->steps[i].key));
        else
            doc_pointer_index(&b, c->steps[i].index);
    }
    return ADS_EINVAL;
}

const char *fld_type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "null";
    case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "a number";
    case MSGPACK_OBJECT_STR: return "a string";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "an object";
    default: return "binary data";
    }
}

int fld_want(struct fld_ctx *c, const msgpack_object *o, msgpack_object_type t, const char *what)
{
    if (o->type == t)
        return 0;
    if (t == MSGPACK_OBJECT_FLOAT64 &&
        (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
         o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
        return 0;
    return fld_fail(c, "must be %s, not %s", what, fld_type_name(o));
}

bool fld_is_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

int fld_str(struct fld_ctx *c, const msgpack_object *o, size_t max, char *dst)
{
    int rc;

    if ((rc = fld_want(c, o, MSGPACK_OBJECT_STR, "a string")) != 0)
        return rc;
    if (o->via.str.size == 0)
        return fld_fail(c, "must not be empty");
    if (o->via.str.size > max)
        return fld_fail(c, "is %u bytes long; the limit is %zu", o->via.str.size, max);
    if (!fld_is_text(o->via.str.ptr, o->via.str.size))
        return fld_fail(c, "must not contain control characters");
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return 0;
}

int fld_time(struct fld_ctx *c, const msgpack_object *o, uint64_t *ret)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > FLD_MAX_TIME)
        return fld_fail(c, "must be a unix time in seconds (an integer from 0 to %llu)", FLD_MAX_TIME);
    *ret = o->via.u64;
    return 0;
}

int fld_count(struct fld_ctx *c, const msgpack_object *o, uint64_t *ret)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
        return fld_fail(c, "must be a count (an integer from 0 to 4294967295)");
    *ret = o->via.u64;
    return 0;
}

int fld_number(struct fld_ctx *c, const msgpack_object *o, double max, double *ret)
{
    double v;
    int rc;

    if ((rc = fld_want(c, o, MSGPACK_OBJECT_FLOAT64, "a number")) != 0)
        return rc;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: v = (double)o->via.u64; break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: v = (double)o->via.i64; break;
    default: v = o->via.f64; break;
    }
    if (!(v >= 0 && v <= max))
        return fld_fail(c, "must be a number from 0 to %g", max);
    *ret = v;
    return 0;
}

int fld_list(struct fld_ctx *c, const msgpack_object *o, uint32_t max)
{
    int rc;

    if ((rc = fld_want(c, o, MSGPACK_OBJECT_ARRAY, "an array")) != 0)
        return rc;
    if (o->via.array.size > max)
        return fld_fail(c, "has %u entries; the limit is %u", o->via.array.size, max);
    return 0;
}

int fld_fields(struct fld_ctx *c, const msgpack_object *o, const char *const *names, size_t n,
               const msgpack_object **seen)
{
    int rc;

    if ((rc = fld_want(c, o, MSGPACK_OBJECT_MAP, "an object")) != 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        seen[i] = NULL;
    for (uint32_t k = 0; k < o->via.map.size; k++) {
        const msgpack_object_str *key = &o->via.map.ptr[k].key.via.str;
        char name[72];
        size_t i;

        for (i = 0; i < n; i++) {
            if (strlen(names[i]) == key->size && memcmp(names[i], key->ptr, key->size) == 0)
                break;
        }
        if (i < n && seen[i] == NULL) {
            seen[i] = &o->via.map.ptr[k].val;
            continue;
        }
        snprintf(name, sizeof(name), "%.*s", key->size > 64 ? 64 : (int)key->size, key->ptr);
        fld_push_key(c, name);
        if (i == n)
            return fld_fail(c, "\"%s\" is not a known field here; see the JSON Schemas in schemas/", name);
        return fld_fail(c, "\"%s\" appears twice", name);
    }
    return 0;
}
