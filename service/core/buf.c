#include "adsmith/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void buf_init(struct buf *b, char *mem, size_t cap)
{
    b->base = mem;
    b->len = 0;
    b->cap = cap;
    b->overflow = false;
    b->base[0] = '\0';
}

void buf_put(struct buf *b, const char *s, size_t len)
{
    size_t room = b->cap - 1 - b->len;

    if (len > room) {
        len = room;
        b->overflow = true;
    }
    memcpy(b->base + b->len, s, len);
    b->len += len;
    b->base[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    size_t room = b->cap - b->len;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(b->base + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->overflow = true;
        b->base[b->len] = '\0';
        return;
    }
    if ((size_t)n >= room) {
        b->overflow = true;
        b->len = b->cap - 1;
        return;
    }
    b->len += (size_t)n;
}

size_t buf_utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n, i;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Reject overlong forms, surrogates and values past U+10FFFF. */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void buf_json_str(struct buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n;

    buf_put(b, "\"", 1);
    while (i < len && !b->overflow) {
        unsigned char c = p[i];
        size_t run = i;

        /* Printable ASCII other than '"' and '\\' is copied as it stands, a run at a time. */
        while (run < len && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            buf_put(b, s + i, run - i);
            i = run;
            continue;
        }
        switch (c) {
        case '"':
            buf_put(b, "\\\"", 2);
            i++;
            continue;
        case '\\':
            buf_put(b, "\\\\", 2);
            i++;
            continue;
        case '\n':
            buf_put(b, "\\n", 2);
            i++;
            continue;
        case '\r':
            buf_put(b, "\\r", 2);
            i++;
            continue;
        case '\t':
            buf_put(b, "\\t", 2);
            i++;
            continue;
        default: break;
        }
        if (c < 0x20 || c == 0x7f) {
            buf_printf(b, "\\u%04x", c);
            i++;
            continue;
        }
        if ((n = buf_utf8_seq_len(p + i, len - i)) == 0) {
            buf_put(b, "\xef\xbf\xbd", 3);
            i++;
            continue;
        }
        buf_put(b, s + i, n);
        i += n;
    }
    buf_put(b, "\"", 1);
}

void buf_json_kv(struct buf *b, const char *key, const char *val)
{
    buf_json_str(b, key, strlen(key));
    buf_put(b, ":", 1);
    buf_json_str(b, val, strlen(val));
}
