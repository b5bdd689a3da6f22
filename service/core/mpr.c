#include "adsmith/mpr.h"

#include <string.h>

#include "adsmith/err.h"

/*
 * Every reader decodes the header at the cursor into a struct val first, then
 * checks the type it wants. The decoder checks that the header, and for
 * everything but containers the payload, lies inside the input; it compares
 * remaining sizes rather than forming pointers past the end, so a length
 * field of 4 GiB cannot overflow a pointer.
 */
struct val {
    enum mpr_type type;
    size_t hdr;   /* bytes before the payload: tag, length field, ext type */
    uint32_t len; /* payload bytes; for an array its elements, for a map its pairs */
};

/*
 * The tags 0xc0..0xdf, the ones that are not fix-ranges. A length field, when
 * there is one, is big-endian and starts right after the tag; ext 8/16/32 put
 * their type byte after it (counted in hdr). fixlen is the payload size of
 * the tags that have no length field.
 */
struct tag {
    uint8_t type;
    uint8_t hdr;
    uint8_t lenw;
    uint8_t fixlen;
};

static const struct tag tags[32] = {
    {MPR_NIL, 1, 0, 0},     /* 0xc0 nil */
    {MPR_INVALID, 1, 0, 0}, /* 0xc1 never used */
    {MPR_BOOL, 1, 0, 0},    /* 0xc2 false */
    {MPR_BOOL, 1, 0, 0},    /* 0xc3 true */
    {MPR_BIN, 2, 1, 0},     /* 0xc4 bin 8 */
    {MPR_BIN, 3, 2, 0},     /* 0xc5 bin 16 */
    {MPR_BIN, 5, 4, 0},     /* 0xc6 bin 32 */
    {MPR_EXT, 3, 1, 0},     /* 0xc7 ext 8 */
    {MPR_EXT, 4, 2, 0},     /* 0xc8 ext 16 */
    {MPR_EXT, 6, 4, 0},     /* 0xc9 ext 32 */
    {MPR_FLOAT, 1, 0, 4},   /* 0xca float 32 */
    {MPR_FLOAT, 1, 0, 8},   /* 0xcb float 64 */
    {MPR_UINT, 1, 0, 1},    /* 0xcc uint 8 */
    {MPR_UINT, 1, 0, 2},    /* 0xcd uint 16 */
    {MPR_UINT, 1, 0, 4},    /* 0xce uint 32 */
    {MPR_UINT, 1, 0, 8},    /* 0xcf uint 64 */
    {MPR_INT, 1, 0, 1},     /* 0xd0 int 8 */
    {MPR_INT, 1, 0, 2},     /* 0xd1 int 16 */
    {MPR_INT, 1, 0, 4},     /* 0xd2 int 32 */
    {MPR_INT, 1, 0, 8},     /* 0xd3 int 64 */
    {MPR_EXT, 2, 0, 1},     /* 0xd4 fixext 1 */
    {MPR_EXT, 2, 0, 2},     /* 0xd5 fixext 2 */
    {MPR_EXT, 2, 0, 4},     /* 0xd6 fixext 4 */
    {MPR_EXT, 2, 0, 8},     /* 0xd7 fixext 8 */
    {MPR_EXT, 2, 0, 16},    /* 0xd8 fixext 16 */
    {MPR_STR, 2, 1, 0},     /* 0xd9 str 8 */
    {MPR_STR, 3, 2, 0},     /* 0xda str 16 */
    {MPR_STR, 5, 4, 0},     /* 0xdb str 32 */
    {MPR_ARRAY, 3, 2, 0},   /* 0xdc array 16 */
    {MPR_ARRAY, 5, 4, 0},   /* 0xdd array 32 */
    {MPR_MAP, 3, 2, 0},     /* 0xde map 16 */
    {MPR_MAP, 5, 4, 0},     /* 0xdf map 32 */
};

/* Shifts rather than a cast load: no alignment needed, any host byte order. */
static inline uint64_t load_be(const uint8_t *p, unsigned w)
{
    switch (w) {
    case 1: return p[0];
    case 2: return (uint64_t)p[0] << 8 | p[1];
    case 4: return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
    default: return load_be(p, 4) << 32 | load_be(p + 4, 4);
    }
}

static inline size_t avail(const struct mpr *r)
{
    return (size_t)(r->end - r->p);
}

static inline enum mpr_type type_of(uint8_t b)
{
    if (b <= 0x7f)
        return MPR_UINT;
    if (b <= 0x8f)
        return MPR_MAP;
    if (b <= 0x9f)
        return MPR_ARRAY;
    if (b <= 0xbf)
        return MPR_STR;
    if (b >= 0xe0)
        return MPR_INT;
    return (enum mpr_type)tags[b - 0xc0].type;
}

static inline int decode(const uint8_t *p, size_t n, struct val *v)
{
    const struct tag *t;
    uint8_t b;

    if (n == 0)
        return ADS_EDATA_INVALID;
    b = p[0];
    v->hdr = 1;
    if (b <= 0x7f || b >= 0xe0) {
        v->type = b <= 0x7f ? MPR_UINT : MPR_INT;
        v->len = 0;
        return 0;
    }
    if (b <= 0x9f) {
        v->type = b <= 0x8f ? MPR_MAP : MPR_ARRAY;
        v->len = b & 0x0f;
        return 0;
    }
    if (b <= 0xbf) {
        v->type = MPR_STR;
        v->len = b & 0x1f;
    } else {
        t = &tags[b - 0xc0];
        if (t->type == MPR_INVALID || n < t->hdr)
            return ADS_EDATA_INVALID;
        v->type = (enum mpr_type)t->type;
        v->hdr = t->hdr;
        v->len = t->lenw != 0 ? (uint32_t)load_be(p + 1, t->lenw) : t->fixlen;
    }
    /* A container's length counts values, not bytes; its readers check those one by one. */
    if (v->type != MPR_ARRAY && v->type != MPR_MAP && n - v->hdr < v->len)
        return ADS_EDATA_INVALID;
    return 0;
}

void mpr_init(struct mpr *r, const void *data, size_t len)
{
    r->p = data;
    /* NULL + 0 is undefined behaviour, so an empty input never adds. */
    r->end = len != 0 ? r->p + len : r->p;
}

enum mpr_type mpr_peek(const struct mpr *r)
{
    if (r->p == r->end)
        return MPR_END;
    return type_of(r->p[0]);
}

bool mpr_nil(struct mpr *r)
{
    if (r->p == r->end || r->p[0] != 0xc0)
        return false;
    r->p++;
    return true;
}

int mpr_bool(struct mpr *r, bool *ret)
{
    if (r->p == r->end || (r->p[0] != 0xc2 && r->p[0] != 0xc3))
        return ADS_EDATA_INVALID;
    *ret = r->p[0] == 0xc3;
    r->p++;
    return 0;
}

/*
 * The integer at the cursor as raw bits: an int-family value is sign-extended
 * to 64 bits (so its bits are its int64_t value), a uint-family value is
 * zero-extended. Does not move the cursor.
 */
static inline int int_at(const struct mpr *r, uint64_t *ret_bits, bool *ret_signed, size_t *ret_size)
{
    struct val v;
    uint64_t x;
    uint8_t b;

    if (decode(r->p, avail(r), &v) < 0 || (v.type != MPR_UINT && v.type != MPR_INT))
        return ADS_EDATA_INVALID;
    b = r->p[0];
    if (v.len == 0) {
        x = v.type == MPR_UINT ? b : (uint64_t)(int64_t)(int8_t)b;
    } else {
        x = load_be(r->p + 1, v.len);
        if (v.type == MPR_INT) {
            switch (v.len) {
            case 1: x = (uint64_t)(int64_t)(int8_t)x; break;
            case 2: x = (uint64_t)(int64_t)(int16_t)x; break;
            case 4: x = (uint64_t)(int64_t)(int32_t)x; break;
            default: break;
            }
        }
    }
    *ret_bits = x;
    *ret_signed = v.type == MPR_INT;
    *ret_size = v.hdr + v.len;
    return 0;
}

int mpr_u64(struct mpr *r, uint64_t *ret)
{
    uint64_t x;
    bool sgn;
    size_t size;

    if (int_at(r, &x, &sgn, &size) < 0 || (sgn && (int64_t)x < 0))
        return ADS_EDATA_INVALID;
    *ret = x;
    r->p += size;
    return 0;
}

int mpr_i64(struct mpr *r, int64_t *ret)
{
    uint64_t x;
    bool sgn;
    size_t size;

    if (int_at(r, &x, &sgn, &size) < 0 || (!sgn && x > INT64_MAX))
        return ADS_EDATA_INVALID;
    *ret = (int64_t)x;
    r->p += size;
    return 0;
}

int mpr_f64(struct mpr *r, double *ret)
{
    uint64_t x;
    bool sgn;
    size_t size;
    uint32_t u32;
    float f;
    double d;

    if (int_at(r, &x, &sgn, &size) == 0) {
        *ret = sgn ? (double)(int64_t)x : (double)x;
        r->p += size;
        return 0;
    }
    if (avail(r) >= 5 && r->p[0] == 0xca) {
        u32 = (uint32_t)load_be(r->p + 1, 4);
        memcpy(&f, &u32, sizeof(f));
        *ret = f;
        r->p += 5;
        return 0;
    }
    if (avail(r) >= 9 && r->p[0] == 0xcb) {
        x = load_be(r->p + 1, 8);
        memcpy(&d, &x, sizeof(d));
        *ret = d;
        r->p += 9;
        return 0;
    }
    return ADS_EDATA_INVALID;
}

static int blob(struct mpr *r, enum mpr_type type, const void **ret, size_t *ret_len)
{
    struct val v;

    if (decode(r->p, avail(r), &v) < 0 || v.type != type)
        return ADS_EDATA_INVALID;
    *ret = r->p + v.hdr;
    *ret_len = v.len;
    r->p += v.hdr + v.len;
    return 0;
}

int mpr_str(struct mpr *r, const char **ret, size_t *ret_len)
{
    return blob(r, MPR_STR, (const void **)ret, ret_len);
}

int mpr_bin(struct mpr *r, const void **ret, size_t *ret_len)
{
    return blob(r, MPR_BIN, ret, ret_len);
}

static int container(struct mpr *r, enum mpr_type type, uint32_t *ret_n)
{
    struct val v;

    if (decode(r->p, avail(r), &v) < 0 || v.type != type)
        return ADS_EDATA_INVALID;
    *ret_n = v.len;
    r->p += v.hdr;
    return 0;
}

int mpr_array(struct mpr *r, uint32_t *ret_n)
{
    return container(r, MPR_ARRAY, ret_n);
}

int mpr_map(struct mpr *r, uint32_t *ret_n)
{
    return container(r, MPR_MAP, ret_n);
}

/*
 * `pending` counts the values still to skip at the current level; entering a
 * container saves it on a stack and starts counting the container's values
 * (two per map pair). The stack bounds the nesting, and every value consumes
 * at least one byte, so a forged count of 2^32 stops at the end of the input.
 * The cursor is written only once the whole value has been skipped.
 */
int mpr_skip(struct mpr *r)
{
    uint64_t stack[MPR_MAX_DEPTH];
    unsigned depth = 0;
    uint64_t pending = 1;
    const uint8_t *p = r->p;
    struct val v;

    for (;;) {
        if (pending == 0) {
            if (depth == 0)
                break;
            pending = stack[--depth];
            continue;
        }
        if (decode(p, (size_t)(r->end - p), &v) < 0)
            return ADS_EDATA_INVALID;
        pending--;
        if (v.type != MPR_ARRAY && v.type != MPR_MAP) {
            p += v.hdr + v.len;
            continue;
        }
        if (depth == MPR_MAX_DEPTH)
            return ADS_EDATA_INVALID;
        p += v.hdr;
        stack[depth++] = pending;
        pending = v.type == MPR_MAP ? 2 * (uint64_t)v.len : v.len;
    }
    r->p = p;
    return 0;
}
