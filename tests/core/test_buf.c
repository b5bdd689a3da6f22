#include <criterion/criterion.h>
#include <string.h>

#include "adsmith/buf.h"

Test(buf, appends_and_stops_at_capacity)
{
    char mem[8];
    struct buf b;

    buf_init(&b, mem, sizeof(mem));
    buf_puts(&b, "abc");
    buf_printf(&b, "%d", 42);
    cr_assert_str_eq(mem, "abc42");
    cr_assert(!b.overflow);
    buf_puts(&b, "xyz");
    cr_assert(b.overflow);
    cr_assert_eq(b.len, 7);
    cr_assert_str_eq(mem, "abc42xy");
    buf_printf(&b, "%s", "more");
    cr_assert_str_eq(mem, "abc42xy");
}

Test(buf, printf_overflow_keeps_terminator)
{
    char mem[5];
    struct buf b;

    buf_init(&b, mem, sizeof(mem));
    buf_printf(&b, "%s", "123456789");
    cr_assert(b.overflow);
    cr_assert_eq(b.len, 4);
    cr_assert_eq(mem[4], '\0');
}

static const char *json(const char *s, size_t len)
{
    static char mem[256];
    struct buf b;
    buf_init(&b, mem, sizeof(mem));
    buf_json_str(&b, s, len);
    return mem;
}

Test(buf, json_escapes_quotes_backslashes_and_controls)
{
    cr_assert_str_eq(json("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    cr_assert_str_eq(json("l1\nl2\tx\r", 8), "\"l1\\nl2\\tx\\r\"");
    cr_assert_str_eq(json("\x01\x1f\x7f", 3), "\"\\u0001\\u001f\\u007f\"");
    cr_assert_str_eq(json("nul\0x", 5), "\"nul\\u0000x\"");
}

Test(buf, json_keeps_valid_utf8_and_replaces_invalid_bytes)
{
    static const char mixed[] = "caf\xc3\xa9 \xe6\x9c\x80\xe4\xbd\xb3 \xf0\x9f\x98\x80";
    cr_assert_str_eq(json(mixed, sizeof(mixed) - 1),
                     "\"caf\xc3\xa9 \xe6\x9c\x80\xe4\xbd\xb3 \xf0\x9f\x98\x80\"");
    /* lone continuation byte, overlong '/', truncated sequence, UTF-16 surrogate */
    cr_assert_str_eq(json("\x80", 1), "\"\xef\xbf\xbd\"");
    cr_assert_str_eq(json("\xc0\xaf", 2), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    cr_assert_str_eq(json("\xe6\x9c", 2), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    cr_assert_str_eq(json("\xed\xa0\x80", 3), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
}

Test(buf, json_kv)
{
    char mem[64];
    struct buf b;

    buf_init(&b, mem, sizeof(mem));
    buf_json_kv(&b, "code", "not_found");
    cr_assert_str_eq(mem, "\"code\":\"not_found\"");
}
