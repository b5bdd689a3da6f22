/*
 * Text normalisation for term matching, and character counts.
 */
#include <string.h>

#include "adsmith/buf.h"
#include "adsmith/gen.h"
#include "internal.h"

uint32_t gen_utf8_decode(const char *s, size_t avail, size_t *ret_len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = buf_utf8_seq_len(u, avail);

    if (n == 0) {
        *ret_len = 1;
        return 0xFFFD;
    }
    *ret_len = n;
    switch (n) {
    case 1: return u[0];
    case 2: return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    case 3: return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    default:
        return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) | ((uint32_t)(u[2] & 0x3F) << 6) |
               (u[3] & 0x3F);
    }
}

size_t gen_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Simple one-to-one lower-casing of the scripts ads are mostly written in.
 * Full Unicode case folding (ß -> ss, final sigma) is left out on purpose:
 * it changes lengths and buys little for matching product names. */
static uint32_t fold(uint32_t c)
{
    if (c >= 0xFF01 && c <= 0xFF5E)
        c -= 0xFEE0; /* full-width ASCII */
    else if (c == 0x3000)
        c = ' ';
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c < 0x80)
        return c;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7))
        return c + 32;
    if (c >= 0x100 && c <= 0x17F) {
        if ((c <= 0x137 || (c >= 0x14A && c <= 0x177)) && c % 2 == 0)
            return c + 1;
        if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && c % 2 == 1)
            return c + 1;
        if (c == 0x178)
            return 0xFF;
        return c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32; /* Greek capitals */
    if (c >= 0x410 && c <= 0x42F)
        return c + 32; /* Cyrillic А-Я */
    if (c >= 0x400 && c <= 0x40F)
        return c + 80; /* Cyrillic Ѐ-Џ */
    return c;
}

size_t gen_norm(const char *s, size_t n, char *out, size_t cap)
{
    size_t i = 0, o = 0;

    if (cap == 0)
        return 0;
    while (i < n) {
        size_t len;
        const unsigned char *u = (const unsigned char *)s + i;
        char enc[4];
        size_t elen;

        if (buf_utf8_seq_len(u, n - i) == 0) {
            enc[0] = s[i];
            elen = 1;
            len = 1;
        } else {
            elen = gen_utf8_encode(fold(gen_utf8_decode(s + i, n - i, &len)), enc);
        }
        if (o + elen >= cap)
            break;
        memcpy(out + o, enc, elen);
        o += elen;
        i += len;
    }
    out[o] = '\0';
    return o;
}

size_t gen_chars(const char *s, size_t n)
{
    size_t i = 0, c = 0;

    while (i < n) {
        size_t len;

        (void)gen_utf8_decode(s + i, n - i, &len);
        i += len;
        c++;
    }
    return c;
}

static bool is_alnum_ascii(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool gen_norm_contains(const char *hay, const char *needle, bool word)
{
    size_t nl = strlen(needle);
    const char *p = hay;

    if (nl == 0)
        return false;
    while ((p = strstr(p, needle)) != NULL) {
        bool ok = true;

        if (word && is_alnum_ascii(needle[0]) && p > hay && is_alnum_ascii(p[-1]))
            ok = false;
        if (word && is_alnum_ascii(needle[nl - 1]) && is_alnum_ascii(p[nl]))
            ok = false;
        if (ok)
            return true;
        p++;
    }
    return false;
}

bool gen_copy_cut(char *out, size_t cap, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t len;

        (void)gen_utf8_decode(s + i, n - i, &len);
        if (i + len > cap - 1)
            break;
        i += len;
    }
    memcpy(out, s, i);
    out[i] = '\0';
    return i == n;
}
