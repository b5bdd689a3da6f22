/*
 * Inputs come from msgpack-c's packer, an encoder independent of the reader
 * under test. Prefix tests copy into exactly-sized heap blocks so that the
 * sanitizer build catches any read past the end.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/err.h"
#include "adsmith/mpr.h"

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void setup(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void teardown(void)
{
    msgpack_sbuffer_destroy(&sb);
}

TestSuite(mpr, .init = setup, .fini = teardown);

static void reset(void)
{
    msgpack_sbuffer_clear(&sb);
}

static struct mpr reader(void)
{
    struct mpr r;

    mpr_init(&r, sb.data, sb.size);
    return r;
}

static size_t consumed(const struct mpr *r)
{
    return (size_t)(r->p - (const uint8_t *)sb.data);
}

static uint8_t tag(void)
{
    return (uint8_t)sb.data[0];
}

static char *pattern(size_t len)
{
    char *s = malloc(len ? len : 1);

    cr_assert_not_null(s);
    for (size_t i = 0; i < len; i++)
        s[i] = (char)('a' + i % 26);
    return s;
}

Test(mpr, uint_width_boundaries)
{
    static const struct {
        uint64_t v;
        size_t size;
        uint8_t tag;
    } cases[] = {
        {0, 1, 0x00},
        {127, 1, 0x7f},
        {128, 2, 0xcc},
        {255, 2, 0xcc},
        {256, 3, 0xcd},
        {65535, 3, 0xcd},
        {65536, 5, 0xce},
        {UINT32_MAX, 5, 0xce},
        {(uint64_t)UINT32_MAX + 1, 9, 0xcf},
        {INT64_MAX, 9, 0xcf},
        {(uint64_t)INT64_MAX + 1, 9, 0xcf},
        {UINT64_MAX, 9, 0xcf},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t u = 0;
        int64_t s = 0;
        double d = 0;
        struct mpr r;

        reset();
        msgpack_pack_uint64(&pk, cases[i].v);
        cr_assert_eq(sb.size, cases[i].size, "value %" PRIu64, cases[i].v);
        cr_assert_eq(tag(), cases[i].tag, "value %" PRIu64, cases[i].v);

        r = reader();
        cr_assert_eq(mpr_peek(&r), MPR_UINT);
        cr_assert_eq(mpr_u64(&r, &u), 0);
        cr_assert_eq(u, cases[i].v);
        cr_assert_eq(consumed(&r), sb.size);
        cr_assert_eq(mpr_peek(&r), MPR_END);

        r = reader();
        if (cases[i].v <= INT64_MAX) {
            cr_assert_eq(mpr_i64(&r, &s), 0, "value %" PRIu64, cases[i].v);
            cr_assert_eq((uint64_t)s, cases[i].v);
            cr_assert_eq(consumed(&r), sb.size);
        } else {
            cr_assert_eq(mpr_i64(&r, &s), ADS_EDATA_INVALID, "value %" PRIu64, cases[i].v);
            cr_assert_eq(consumed(&r), 0);
            cr_assert_eq(s, 0, "output written on failure");
        }

        r = reader();
        cr_assert_eq(mpr_f64(&r, &d), 0);
        cr_assert_eq(d, (double)cases[i].v);
        cr_assert_eq(consumed(&r), sb.size);
    }
}

Test(mpr, int_width_boundaries)
{
    static const struct {
        int64_t v;
        size_t size;
        uint8_t tag;
    } cases[] = {
        {-1, 1, 0xff},        {-32, 1, 0xe0},       {-33, 2, 0xd0},
        {-128, 2, 0xd0},      {-129, 3, 0xd1},      {-32768, 3, 0xd1},
        {-32769, 5, 0xd2},    {INT32_MIN, 5, 0xd2}, {(int64_t)INT32_MIN - 1, 9, 0xd3},
        {INT64_MIN, 9, 0xd3},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t u = 0;
        int64_t s = 0;
        double d = 0;
        struct mpr r;

        reset();
        msgpack_pack_int64(&pk, cases[i].v);
        cr_assert_eq(sb.size, cases[i].size, "value %" PRId64, cases[i].v);
        cr_assert_eq(tag(), cases[i].tag, "value %" PRId64, cases[i].v);

        r = reader();
        cr_assert_eq(mpr_peek(&r), MPR_INT);
        cr_assert_eq(mpr_i64(&r, &s), 0);
        cr_assert_eq(s, cases[i].v);
        cr_assert_eq(consumed(&r), sb.size);

        r = reader();
        cr_assert_eq(mpr_u64(&r, &u), ADS_EDATA_INVALID, "value %" PRId64, cases[i].v);
        cr_assert_eq(consumed(&r), 0);
        cr_assert_eq(u, 0, "output written on failure");

        r = reader();
        cr_assert_eq(mpr_f64(&r, &d), 0);
        cr_assert_eq(d, (double)cases[i].v);
        cr_assert_eq(consumed(&r), sb.size);
    }
}

Test(mpr, i64_refuses_uint64_max)
{
    int64_t s = 7;
    struct mpr r;

    msgpack_pack_uint64(&pk, UINT64_MAX);
    r = reader();
    cr_assert_eq(mpr_i64(&r, &s), ADS_EDATA_INVALID);
    cr_assert_eq(consumed(&r), 0);
    cr_assert_eq(s, 7);
}

Test(mpr, u64_refuses_minus_one)
{
    uint64_t u = 7;
    struct mpr r;

    msgpack_pack_int64(&pk, -1);
    r = reader();
    cr_assert_eq(mpr_u64(&r, &u), ADS_EDATA_INVALID);
    cr_assert_eq(consumed(&r), 0);
    cr_assert_eq(u, 7);
}

/* The int family may carry non-negative values; the uint family fixed widths may carry small ones. */
Test(mpr, fixed_width_encodings_of_small_values)
{
    uint64_t u;
    int64_t s;
    struct mpr r;

    msgpack_pack_fix_int8(&pk, 5);
    msgpack_pack_fix_int16(&pk, 300);
    msgpack_pack_fix_int32(&pk, 70000);
    msgpack_pack_fix_int64(&pk, INT64_MAX);
    msgpack_pack_fix_int16(&pk, -2);
    msgpack_pack_fix_uint8(&pk, 1);
    msgpack_pack_fix_uint16(&pk, 2);
    msgpack_pack_fix_uint32(&pk, 3);
    msgpack_pack_fix_uint64(&pk, 4);
    cr_assert_eq(sb.size, 2 + 3 + 5 + 9 + 3 + 2 + 3 + 5 + 9);
    r = reader();

    cr_assert_eq(mpr_peek(&r), MPR_INT);
    cr_assert_eq(mpr_u64(&r, &u), 0);
    cr_assert_eq(u, 5);
    cr_assert_eq(mpr_u64(&r, &u), 0);
    cr_assert_eq(u, 300);
    cr_assert_eq(mpr_i64(&r, &s), 0);
    cr_assert_eq(s, 70000);
    cr_assert_eq(mpr_u64(&r, &u), 0);
    cr_assert_eq(u, INT64_MAX);
    cr_assert_eq(mpr_i64(&r, &s), 0);
    cr_assert_eq(s, -2);
    for (uint64_t want = 1; want <= 4; want++) {
        cr_assert_eq(mpr_peek(&r), MPR_UINT);
        cr_assert_eq(mpr_i64(&r, &s), 0);
        cr_assert_eq(s, (int64_t)want);
    }
    cr_assert_eq(mpr_peek(&r), MPR_END);
}

Test(mpr, floats)
{
    static const float f32[] = {0.0f, -0.0f, 1.5f, 0.1f, -3.4028235e38f, 1e-45f};
    static const double f64[] = {0.0, 3.141592653589793, -1e300, 4.9e-324, 0.1};
    double d;
    uint64_t u = 9;
    struct mpr r;

    for (size_t i = 0; i < sizeof(f32) / sizeof(f32[0]); i++) {
        reset();
        msgpack_pack_float(&pk, f32[i]);
        cr_assert_eq(sb.size, 5);
        cr_assert_eq(tag(), 0xca);
        r = reader();
        cr_assert_eq(mpr_peek(&r), MPR_FLOAT);
        cr_assert_eq(mpr_u64(&r, &u), ADS_EDATA_INVALID);
        cr_assert_eq(u, 9);
        cr_assert_eq(consumed(&r), 0);
        cr_assert_eq(mpr_f64(&r, &d), 0);
        cr_assert_eq(d, (double)f32[i], "float %a", (double)f32[i]);
        cr_assert_eq(!!signbit(d), !!signbit(f32[i]));
        cr_assert_eq(consumed(&r), 5);
    }
    for (size_t i = 0; i < sizeof(f64) / sizeof(f64[0]); i++) {
        reset();
        msgpack_pack_double(&pk, f64[i]);
        cr_assert_eq(sb.size, 9);
        cr_assert_eq(tag(), 0xcb);
        r = reader();
        cr_assert_eq(mpr_peek(&r), MPR_FLOAT);
        cr_assert_eq(mpr_f64(&r, &d), 0);
        cr_assert_eq(d, f64[i], "double %a", f64[i]);
        cr_assert_eq(consumed(&r), 9);
    }

    reset();
    msgpack_pack_double(&pk, NAN);
    r = reader();
    cr_assert_eq(mpr_f64(&r, &d), 0);
    cr_assert(isnan(d));
}

Test(mpr, str_lengths)
{
    static const struct {
        size_t len;
        size_t hdr;
        uint8_t tag;
    } cases[] = {
        {0, 1, 0xa0}, {31, 1, 0xbf}, {32, 2, 0xd9}, {255, 2, 0xd9}, {256, 3, 0xda}, {65535, 3, 0xda}, {65536, 5, 0xdb},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = pattern(cases[i].len);
        const char *got = NULL;
        size_t got_len = 1234567;
        struct mpr r;

        reset();
        msgpack_pack_str_with_body(&pk, s, cases[i].len);
        cr_assert_eq(sb.size, cases[i].hdr + cases[i].len);
        cr_assert_eq(tag(), cases[i].tag, "len %zu", cases[i].len);

        r = reader();
        cr_assert_eq(mpr_peek(&r), MPR_STR);
        cr_assert_eq(mpr_str(&r, &got, &got_len), 0, "len %zu", cases[i].len);
        cr_assert_eq(got_len, cases[i].len);
        cr_assert_eq(got, sb.data + cases[i].hdr, "must point into the input");
        cr_assert_eq(memcmp(got, s, got_len), 0);
        cr_assert_eq(consumed(&r), sb.size);

        r = reader();
        cr_assert_eq(mpr_skip(&r), 0);
        cr_assert_eq(consumed(&r), sb.size);
        free(s);
    }
}

static const struct {
    uint32_t n;
    size_t hdr;
    uint8_t array_tag;
    uint8_t map_tag;
} container_cases[] = {
    {0, 1, 0x90, 0x80}, {15, 1, 0x9f, 0x8f}, {16, 3, 0xdc, 0xde}, {65535, 3, 0xdc, 0xde}, {65536, 5, 0xdd, 0xdf},
};

Test(mpr, arrays)
{
    for (size_t i = 0; i < sizeof(container_cases) / sizeof(container_cases[0]); i++) {
        uint32_t n = container_cases[i].n, got_n = 0;
        struct mpr r;

        reset();
        msgpack_pack_array(&pk, n);
        for (uint32_t k = 0; k < n; k++)
            msgpack_pack_uint32(&pk, k);
        msgpack_pack_nil(&pk); /* after the array, to see that skip stops before it */
        cr_assert_eq(tag(), container_cases[i].array_tag, "n %u", n);

        r = reader();
        cr_assert_eq(mpr_peek(&r), MPR_ARRAY);
        cr_assert_eq(mpr_map(&r, &got_n), ADS_EDATA_INVALID);
        cr_assert_eq(consumed(&r), 0);
        cr_assert_eq(mpr_array(&r, &got_n), 0);
        cr_assert_eq(got_n, n);
        cr_assert_eq(consumed(&r), container_cases[i].hdr);
        for (uint32_t k = 0; k < n; k++) {
            uint64_t u;
            cr_assert_eq(mpr_u64(&r, &u), 0);
            cr_assert_eq(u, k);
        }
        cr_assert(mpr_nil(&r));
        cr_assert_eq(mpr_peek(&r), MPR_END);

        r = reader();
        cr_assert_eq(mpr_skip(&r), 0, "n %u", n);
        cr_assert_eq(consumed(&r), sb.size - 1);
        cr_assert(mpr_nil(&r));
    }
}

Test(mpr, maps)
{
    for (size_t i = 0; i < sizeof(container_cases) / sizeof(container_cases[0]); i++) {
        uint32_t n = container_cases[i].n, got_n = 0;
        struct mpr r;

        reset();
        msgpack_pack_map(&pk, n);
        for (uint32_t k = 0; k < n; k++) {
            msgpack_pack_uint32(&pk, k);
            msgpack_pack_str_with_body(&pk, "v", 1);
        }
        msgpack_pack_true(&pk);
        cr_assert_eq(tag(), container_cases[i].map_tag, "n %u", n);

        r = reader();
        cr_assert_eq(mpr_peek(&r), MPR_MAP);
        cr_assert_eq(mpr_array(&r, &got_n), ADS_EDATA_INVALID);
        cr_assert_eq(consumed(&r), 0);
        cr_assert_eq(mpr_map(&r, &got_n), 0);
        cr_assert_eq(got_n, n);
        cr_assert_eq(consumed(&r), container_cases[i].hdr);
        for (uint32_t k = 0; k < n; k++) {
            uint64_t u;
            const char *s;
            size_t len;
            cr_assert_eq(mpr_u64(&r, &u), 0);
            cr_assert_eq(u, k);
            cr_assert_eq(mpr_str(&r, &s, &len), 0);
            cr_assert_eq(len, 1);
            cr_assert_eq(s[0], 'v');
        }

        r = reader();
        cr_assert_eq(mpr_skip(&r), 0, "n %u", n);
        cr_assert_eq(consumed(&r), sb.size - 1, "a map of n pairs is 2n values");
        cr_assert_eq(mpr_peek(&r), MPR_BOOL);
    }
}

Test(mpr, nil_and_bool)
{
    bool b = false;
    struct mpr r;

    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_false(&pk);
    cr_assert_eq(sb.size, 3);
    r = reader();

    cr_assert_eq(mpr_peek(&r), MPR_NIL);
    cr_assert_eq(mpr_bool(&r, &b), ADS_EDATA_INVALID);
    cr_assert_eq(consumed(&r), 0);
    cr_assert(mpr_nil(&r));
    cr_assert_eq(consumed(&r), 1);

    cr_assert_eq(mpr_peek(&r), MPR_BOOL);
    cr_assert(!mpr_nil(&r));
    cr_assert_eq(consumed(&r), 1);
    cr_assert_eq(mpr_bool(&r, &b), 0);
    cr_assert(b);
    cr_assert_eq(mpr_bool(&r, &b), 0);
    cr_assert(!b);

    cr_assert_eq(mpr_peek(&r), MPR_END);
    cr_assert(!mpr_nil(&r));
    cr_assert_eq(mpr_bool(&r, &b), ADS_EDATA_INVALID);
    cr_assert_eq(consumed(&r), 3);
}

/* Every reader of another type refuses a value, changes neither cursor nor output. */
static void assert_all_readers_refuse(struct mpr *r, enum mpr_type type)
{
    const uint8_t *at = r->p;
    uint64_t u = 11;
    int64_t s = 12;
    double d = 13;
    bool b = true;
    const char *str = "untouched";
    size_t len = 14;
    uint32_t n = 15;

    if (type != MPR_UINT && type != MPR_INT) {
        cr_assert_eq(mpr_u64(r, &u), ADS_EDATA_INVALID);
        cr_assert_eq(mpr_i64(r, &s), ADS_EDATA_INVALID);
    }
    if (type != MPR_UINT && type != MPR_INT && type != MPR_FLOAT)
        cr_assert_eq(mpr_f64(r, &d), ADS_EDATA_INVALID);
    if (type != MPR_BOOL)
        cr_assert_eq(mpr_bool(r, &b), ADS_EDATA_INVALID);
    if (type != MPR_NIL)
        cr_assert(!mpr_nil(r));
    if (type != MPR_STR)
        cr_assert_eq(mpr_str(r, &str, &len), ADS_EDATA_INVALID);
    if (type != MPR_ARRAY)
        cr_assert_eq(mpr_array(r, &n), ADS_EDATA_INVALID);
    if (type != MPR_MAP)
        cr_assert_eq(mpr_map(r, &n), ADS_EDATA_INVALID);
    cr_assert_eq(r->p, at, "cursor moved on a type mismatch");
    cr_assert_eq(u, 11);
    cr_assert_eq(s, 12);
    cr_assert_eq(d, 13);
    cr_assert(b);
    cr_assert_str_eq(str, "untouched");
    cr_assert_eq(len, 14);
    cr_assert_eq(n, 15);
}

Test(mpr, type_mismatch_leaves_cursor)
{
    static const enum mpr_type order[] = {MPR_STR,  MPR_UINT,  MPR_INT, MPR_FLOAT, MPR_NIL,
                                          MPR_BOOL, MPR_ARRAY, MPR_MAP, MPR_BIN,   MPR_EXT};
    struct mpr r;

    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_uint8(&pk, 200);
    msgpack_pack_int8(&pk, -100);
    msgpack_pack_double(&pk, 2.5);
    msgpack_pack_nil(&pk);
    msgpack_pack_false(&pk);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_bin_with_body(&pk, "b", 1);
    msgpack_pack_ext_with_body(&pk, "e", 1, 3);
    r = reader();
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        cr_assert_eq(mpr_peek(&r), order[i], "value %zu", i);
        assert_all_readers_refuse(&r, order[i]);
        cr_assert_eq(mpr_skip(&r), 0);
    }
    cr_assert_eq(mpr_peek(&r), MPR_END);
}

Test(mpr, empty_input)
{
    struct mpr r;

    mpr_init(&r, NULL, 0);
    cr_assert_eq(mpr_peek(&r), MPR_END);
    assert_all_readers_refuse(&r, MPR_END);
    cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID);
    cr_assert_eq(r.p, r.end);
}

Test(mpr, c1_refused)
{
    static const uint8_t lone[] = {0xc1};
    static const uint8_t nested[] = {0x92, 0x01, 0xc1};
    static const uint8_t in_map[] = {0x81, 0xc1, 0x01};
    struct mpr r;

    mpr_init(&r, lone, sizeof(lone));
    cr_assert_eq(mpr_peek(&r), MPR_INVALID);
    assert_all_readers_refuse(&r, MPR_INVALID);
    cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID);
    cr_assert_eq(r.p, lone);

    mpr_init(&r, nested, sizeof(nested));
    cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID);
    cr_assert_eq(r.p, nested);

    mpr_init(&r, in_map, sizeof(in_map));
    cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID);
    cr_assert_eq(r.p, in_map);
}

/* Reads the one value at the cursor with the reader for its type; bin and ext have only skip. */
static int read_one(struct mpr *r)
{
    uint64_t u;
    int64_t s;
    double d;
    bool b;
    const char *str;
    size_t len;
    uint32_t n;

    switch (mpr_peek(r)) {
    case MPR_UINT: return mpr_u64(r, &u);
    case MPR_INT: return mpr_i64(r, &s);
    case MPR_FLOAT: return mpr_f64(r, &d);
    case MPR_BOOL: return mpr_bool(r, &b);
    case MPR_NIL: return mpr_nil(r) ? 0 : ADS_EDATA_INVALID;
    case MPR_STR: return mpr_str(r, &str, &len);
    case MPR_ARRAY: return mpr_array(r, &n);
    case MPR_MAP: return mpr_map(r, &n);
    default: return mpr_skip(r);
    }
}

/* Copies @p len bytes into a block of exactly that size (NULL for 0), so any overread is caught. */
static uint8_t *exact_copy(const void *data, size_t len)
{
    uint8_t *c;

    if (len == 0)
        return NULL;
    c = malloc(len);
    cr_assert_not_null(c);
    memcpy(c, data, len);
    return c;
}

/* Packs one of each multi-byte scalar encoding, value @p which; returns false past the last. */
static bool pack_sample(int which)
{
    static char body[70000];

    memset(body, 'z', sizeof(body));
    switch (which) {
    case 0: msgpack_pack_uint8(&pk, 200); break;
    case 1: msgpack_pack_uint16(&pk, 60000); break;
    case 2: msgpack_pack_uint32(&pk, 4000000000u); break;
    case 3: msgpack_pack_uint64(&pk, UINT64_MAX); break;
    case 4: msgpack_pack_int8(&pk, -100); break;
    case 5: msgpack_pack_int16(&pk, -30000); break;
    case 6: msgpack_pack_int32(&pk, INT32_MIN); break;
    case 7: msgpack_pack_int64(&pk, INT64_MIN); break;
    case 8: msgpack_pack_float(&pk, 1.25f); break;
    case 9: msgpack_pack_double(&pk, -2.5); break;
    case 10: msgpack_pack_str_with_body(&pk, body, 5); break;
    case 11: msgpack_pack_str_with_body(&pk, body, 40); break;
    case 12: msgpack_pack_str_with_body(&pk, body, 300); break;
    case 13: msgpack_pack_str_with_body(&pk, body, 66000); break;
    case 14: msgpack_pack_bin_with_body(&pk, body, 3); break;
    case 15: msgpack_pack_bin_with_body(&pk, body, 300); break;
    case 16: msgpack_pack_bin_with_body(&pk, body, 66000); break;
    case 17: msgpack_pack_ext_with_body(&pk, body, 1, 1); break;
    case 18: msgpack_pack_ext_with_body(&pk, body, 2, 1); break;
    case 19: msgpack_pack_ext_with_body(&pk, body, 4, 1); break;
    case 20: msgpack_pack_ext_with_body(&pk, body, 8, 1); break;
    case 21: msgpack_pack_ext_with_body(&pk, body, 16, 1); break;
    case 22: msgpack_pack_ext_with_body(&pk, body, 3, -1); break;
    case 23: msgpack_pack_ext_with_body(&pk, body, 300, 2); break;
    case 24: msgpack_pack_ext_with_body(&pk, body, 66000, 3); break;
    case 25: msgpack_pack_true(&pk); break;
    case 26: msgpack_pack_nil(&pk); break;
    case 27: msgpack_pack_uint8(&pk, 7); break;
    case 28: msgpack_pack_int8(&pk, -7); break;
    default: return false;
    }
    return true;
}

/*
 * Every proper prefix of a value is refused by its reader and by mpr_skip,
 * with the cursor left where it was; the whole value is accepted and consumed
 * exactly. Large bodies are cut only around the header and the last bytes.
 */
Test(mpr, truncated_scalars_refused)
{
    for (int which = 0; pack_sample(which); which++) {
        size_t size = sb.size;

        for (size_t k = 0; k <= size; k++) {
            uint8_t *c;
            struct mpr r;
            int want = k == size ? 0 : ADS_EDATA_INVALID;

            if (k > 8 && k + 8 < size)
                continue;
            c = exact_copy(sb.data, k);
            mpr_init(&r, c, k);
            cr_assert_eq(read_one(&r), want, "sample %d prefix %zu", which, k);
            cr_assert_eq((size_t)(r.p - c), k == size ? size : 0, "sample %d prefix %zu", which, k);
            mpr_init(&r, c, k);
            cr_assert_eq(mpr_skip(&r), want, "sample %d prefix %zu", which, k);
            cr_assert_eq((size_t)(r.p - c), k == size ? size : 0);
            free(c);
        }
        reset();
    }
}

Test(mpr, truncated_container_headers_refused)
{
    static const uint32_t counts[] = {16, 65536};

    for (size_t i = 0; i < 2; i++) {
        for (int is_map = 0; is_map < 2; is_map++) {
            size_t hdr = counts[i] == 16 ? 3 : 5;
            uint32_t n = 0;

            reset();
            if (is_map)
                msgpack_pack_map(&pk, counts[i]);
            else
                msgpack_pack_array(&pk, counts[i]);
            cr_assert_eq(sb.size, hdr);
            for (size_t k = 0; k <= hdr; k++) {
                uint8_t *c = exact_copy(sb.data, k);
                struct mpr r;
                int ret;

                mpr_init(&r, c, k);
                ret = is_map ? mpr_map(&r, &n) : mpr_array(&r, &n);
                cr_assert_eq(ret, k == hdr ? 0 : ADS_EDATA_INVALID, "prefix %zu", k);
                cr_assert_eq((size_t)(r.p - c), k == hdr ? hdr : 0);
                /* The elements are missing, so skip fails even on the full header. */
                mpr_init(&r, c, k);
                cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID);
                cr_assert_eq(r.p, c);
                free(c);
            }
            cr_assert_eq(n, counts[i]);
        }
    }
}

/* One document holding every encoding, nested; all its prefixes are refused by mpr_skip. */
Test(mpr, truncated_document_refused)
{
    struct mpr r;
    size_t size;
    uint8_t *c;

    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "scalars", 7);
    msgpack_pack_array(&pk, 29);
    for (int which = 0; pack_sample(which); which++)
        ;
    msgpack_pack_str_with_body(&pk, "wide", 4);
    msgpack_pack_array(&pk, 16);
    for (int i = 0; i < 16; i++) {
        msgpack_pack_map(&pk, 16);
        for (int j = 0; j < 16; j++) {
            msgpack_pack_int32(&pk, -j);
            msgpack_pack_array(&pk, 0);
        }
    }
    msgpack_pack_str_with_body(&pk, "deep", 4);
    for (int i = 0; i < 10; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 0);
    size = sb.size;

    c = exact_copy(sb.data, size);
    mpr_init(&r, c, size);
    cr_assert_eq(mpr_skip(&r), 0);
    cr_assert_eq(r.p, r.end);
    free(c);

    /* Every prefix of the small part, and around the large bodies' ends. */
    for (size_t k = 0; k < size; k++) {
        c = exact_copy(sb.data, k);
        mpr_init(&r, c, k);
        cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID, "prefix %zu of %zu", k, size);
        cr_assert_eq(r.p, c);
        free(c);
        if (k > 200 && k + 4000 < size)
            k += 997;
    }
}

Test(mpr, forged_lengths_refused)
{
    /* str 32 and bin 32 claiming 4 GiB - 1, array 32 and map 32 claiming 2^32 - 1 values. */
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b'};
    static const uint8_t bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xfb, 0x01, 0x00};
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
    const char *s = NULL;
    size_t len = 0;
    uint32_t n = 0;
    struct mpr r;

    mpr_init(&r, str32, sizeof(str32));
    cr_assert_eq(mpr_str(&r, &s, &len), ADS_EDATA_INVALID);
    cr_assert_null(s);
    cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID);
    cr_assert_eq(r.p, str32);

    mpr_init(&r, bin32, sizeof(bin32));
    cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID);
    cr_assert_eq(r.p, bin32);

    mpr_init(&r, ext32, sizeof(ext32));
    cr_assert_eq(mpr_peek(&r), MPR_EXT);
    cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID);
    cr_assert_eq(r.p, ext32);

    mpr_init(&r, arr32, sizeof(arr32));
    cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID);
    cr_assert_eq(r.p, arr32);
    cr_assert_eq(mpr_array(&r, &n), 0, "the header itself is complete");
    cr_assert_eq(n, UINT32_MAX);

    mpr_init(&r, map32, sizeof(map32));
    cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID);
    cr_assert_eq(r.p, map32);
}

Test(mpr, skip_nested_containers)
{
    uint64_t u = 0;
    uint32_t n;
    const char *s;
    size_t len;
    struct mpr r;

    /* [1, {"a": [nil, true, {"b": "str"}], "c": {}}, [], "x", bin, ext, [[[]]]] 42 */
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "b", 1);
    msgpack_pack_str_with_body(&pk, "str", 3);
    msgpack_pack_str_with_body(&pk, "c", 1);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_bin_with_body(&pk, "\x01\x02", 2);
    msgpack_pack_ext_with_body(&pk, "\x03\x04\x05", 3, 9);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_uint8(&pk, 42);

    r = reader();
    cr_assert_eq(mpr_skip(&r), 0);
    cr_assert_eq(consumed(&r), sb.size - 1);
    cr_assert_eq(mpr_u64(&r, &u), 0);
    cr_assert_eq(u, 42);

    /* Skipping inside: the map's first value, then the rest element by element. */
    r = reader();
    cr_assert_eq(mpr_array(&r, &n), 0);
    cr_assert_eq(mpr_skip(&r), 0);
    cr_assert_eq(mpr_map(&r, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(mpr_str(&r, &s, &len), 0);
    cr_assert_eq(mpr_skip(&r), 0);
    cr_assert_eq(mpr_str(&r, &s, &len), 0);
    cr_assert_eq(len, 1);
    cr_assert_eq(s[0], 'c');
    for (int i = 0; i < 6; i++)
        cr_assert_eq(mpr_skip(&r), 0);
    cr_assert_eq(mpr_u64(&r, &u), 0);
    cr_assert_eq(u, 42);
}

/* @p depth containers, each holding the next (alternating arrays and maps), the innermost holding @p leaf values. */
static void pack_nested(int depth, int leaf)
{
    for (int i = 0; i < depth - 1; i++) {
        if (i % 2 == 0) {
            msgpack_pack_array(&pk, 1);
        } else {
            msgpack_pack_map(&pk, 1);
            msgpack_pack_str_with_body(&pk, "k", 1);
        }
    }
    msgpack_pack_array(&pk, (size_t)leaf);
    for (int i = 0; i < leaf; i++)
        msgpack_pack_int8(&pk, -1);
}

Test(mpr, skip_depth_limit)
{
    for (int leaf = 0; leaf <= 1; leaf++) {
        struct mpr r;

        reset();
        pack_nested(MPR_MAX_DEPTH, leaf);
        msgpack_pack_nil(&pk);
        r = reader();
        cr_assert_eq(mpr_skip(&r), 0, "depth %d, leaf %d", MPR_MAX_DEPTH, leaf);
        cr_assert_eq(consumed(&r), sb.size - 1);

        reset();
        pack_nested(MPR_MAX_DEPTH + 1, leaf);
        r = reader();
        cr_assert_eq(mpr_skip(&r), ADS_EDATA_INVALID, "depth %d, leaf %d", MPR_MAX_DEPTH + 1, leaf);
        cr_assert_eq(consumed(&r), 0);
    }
}

/* Depth is nesting, not the number of containers: siblings close before the next opens. */
Test(mpr, skip_depth_counts_nesting_not_siblings)
{
    struct mpr r;

    msgpack_pack_array(&pk, 3);
    for (int i = 0; i < 3; i++)
        pack_nested(MPR_MAX_DEPTH - 1, 2);
    r = reader();
    cr_assert_eq(mpr_skip(&r), 0);
    cr_assert_eq(consumed(&r), sb.size);
}

Test(mpr, skip_ext_and_bin)
{
    static const struct {
        bool ext;
        size_t len;
        size_t hdr;
        uint8_t tag;
    } cases[] = {
        {true, 1, 2, 0xd4},    {true, 2, 2, 0xd5},     {true, 4, 2, 0xd6},      {true, 8, 2, 0xd7},
        {true, 16, 2, 0xd8},   {true, 0, 3, 0xc7},     {true, 3, 3, 0xc7},      {true, 255, 3, 0xc7},
        {true, 256, 4, 0xc8},  {true, 65535, 4, 0xc8}, {true, 65536, 6, 0xc9},  {false, 0, 2, 0xc4},
        {false, 255, 2, 0xc4}, {false, 256, 3, 0xc5},  {false, 65535, 3, 0xc5}, {false, 65536, 5, 0xc6},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* The body is made of bytes that would be tags (0xc1, 0xdd): skip must not look inside. */
        char *body = malloc(cases[i].len ? cases[i].len : 1);
        uint64_t u = 0;
        struct mpr r;

        cr_assert_not_null(body);
        for (size_t k = 0; k < cases[i].len; k++)
            body[k] = (char)(k % 2 ? 0xc1 : 0xdd);
        reset();
        if (cases[i].ext)
            msgpack_pack_ext_with_body(&pk, body, cases[i].len, 5);
        else
            msgpack_pack_bin_with_body(&pk, body, cases[i].len);
        msgpack_pack_uint8(&pk, 7);
        cr_assert_eq(tag(), cases[i].tag, "case %zu", i);
        cr_assert_eq(sb.size, cases[i].hdr + cases[i].len + 1, "case %zu", i);

        r = reader();
        cr_assert_eq(mpr_peek(&r), cases[i].ext ? MPR_EXT : MPR_BIN);
        cr_assert_eq(mpr_skip(&r), 0, "case %zu", i);
        cr_assert_eq(consumed(&r), sb.size - 1, "case %zu", i);
        cr_assert_eq(mpr_u64(&r, &u), 0);
        cr_assert_eq(u, 7);
        free(body);
    }
}
