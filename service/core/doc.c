#include "adsmith/doc.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- media types ---- */

enum media_kind {
    MEDIA_OTHER,
    MEDIA_JSON,
    MEDIA_MSGPACK,
};

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Shrinks [*s, *s + *n) to drop optional whitespace at both ends. */
static void trim_ows(const char **s, size_t *n)
{
    while (*n > 0 && is_ows((*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_ows((*s)[*n - 1]))
        (*n)--;
}

static bool eq_ci(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* The family of a bare media type (no parameters, already trimmed). */
static enum media_kind media_kind_of(const char *t, size_t n)
{
    static const char app[] = "application/";
    static const char plus_json[] = "+json";
    const size_t app_len = sizeof(app) - 1, pj_len = sizeof(plus_json) - 1;

    if (eq_ci(t, n, "application/json") || eq_ci(t, n, "text/json"))
        return MEDIA_JSON;
    if (eq_ci(t, n, "application/msgpack") || eq_ci(t, n, "application/x-msgpack") ||
        eq_ci(t, n, "application/vnd.msgpack"))
        return MEDIA_MSGPACK;
    /* application/<something>+json, as application/vnd.api+json or application/ld+json. */
    if (n > app_len + pj_len && strncasecmp(t, app, app_len) == 0 &&
        strncasecmp(t + n - pj_len, plus_json, pj_len) == 0)
        return MEDIA_JSON;
    return MEDIA_OTHER;
}

int doc_fmt_of_content_type(const char *ct, size_t len, enum doc_fmt *ret_fmt)
{
    const char *t = ct;
    size_t n = len;
    const char *semi;

    trim_ows(&t, &n);
    if (n == 0) {
        *ret_fmt = DOC_JSON;
        return 0;
    }
    semi = memchr(t, ';', n);
    if (semi != NULL)
        n = (size_t)(semi - t);
    trim_ows(&t, &n);
    switch (media_kind_of(t, n)) {
    case MEDIA_JSON: *ret_fmt = DOC_JSON; return 0;
    case MEDIA_MSGPACK: *ret_fmt = DOC_MSGPACK; return 0;
    case MEDIA_OTHER: break;
    }
    return ADS_EUNSUPPORTED_MEDIA;
}

/*
 * A qvalue (RFC 9110 12.4.2: "0" [ "." 0*3DIGIT ] or "1" [ "." 0*3"0" ]) in
 * thousandths, or -1 when it is not one.
 */
static int parse_qvalue(const char *s, size_t n)
{
    int q, scale = 100;
    size_t i;

    if (n == 0 || (s[0] != '0' && s[0] != '1'))
        return -1;
    q = (s[0] - '0') * 1000;
    if (n == 1)
        return q;
    if (s[1] != '.' || n > 5)
        return -1;
    for (i = 2; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        q += (s[i] - '0') * scale;
        scale /= 10;
    }
    return q <= 1000 ? q : -1;
}

enum doc_fmt doc_fmt_of_accept(const char *accept, size_t len)
{
    int q_json = -1, q_msgpack = -1;
    size_t i = 0;

    /* One media range per turn: type, then ";name=value" parameters, up to a
     * comma. Quoted parameter values may hold commas and semicolons. Anything
     * malformed ends the current range at the next separator; nothing reads
     * past len. */
    while (i < len) {
        const char *type = accept + i;
        size_t type_len, start = i;
        int q = 1000;

        while (i < len && accept[i] != ',' && accept[i] != ';')
            i++;
        type_len = i - start;
        trim_ows(&type, &type_len);

        while (i < len && accept[i] == ';') {
            const char *name, *val;
            size_t name_len, val_len;

            i++;
            start = i;
            while (i < len && accept[i] != '=' && accept[i] != ';' && accept[i] != ',')
                i++;
            name = accept + start;
            name_len = i - start;
            trim_ows(&name, &name_len);
            if (i >= len || accept[i] != '=')
                continue;
            i++;
            while (i < len && is_ows(accept[i]))
                i++;
            if (i < len && accept[i] == '"') {
                i++;
                while (i < len && accept[i] != '"') {
                    if (accept[i] == '\\' && i + 1 < len)
                        i++;
                    i++;
                }
                if (i < len)
                    i++;
                val = NULL;
                val_len = 0;
            } else {
                start = i;
                while (i < len && accept[i] != ';' && accept[i] != ',')
                    i++;
                val = accept + start;
                val_len = i - start;
                trim_ows(&val, &val_len);
            }
            if (eq_ci(name, name_len, "q"))
                q = val != NULL ? parse_qvalue(val, val_len) : -1;
            /* Junk after a quoted value runs to the next separator. */
            while (i < len && accept[i] != ';' && accept[i] != ',')
                i++;
        }
        if (i < len)
            i++; /* the comma */

        if (q < 0)
            continue; /* an unreadable q-value: ignore the range rather than guess */
        switch (media_kind_of(type, type_len)) {
        case MEDIA_JSON:
            if (q > q_json)
                q_json = q;
            break;
        case MEDIA_MSGPACK:
            if (q > q_msgpack)
                q_msgpack = q;
            break;
        case MEDIA_OTHER: break;
        }
    }
    /* q=0 means "not acceptable", so a MessagePack type needs q > 0. */
    return q_msgpack > 0 && q_msgpack >= q_json ? DOC_MSGPACK : DOC_JSON;
}

const char *doc_content_type(enum doc_fmt fmt)
{
    return fmt == DOC_MSGPACK ? "application/msgpack" : "application/json";
}

/* ---- pointers ---- */

void doc_pointer_key(struct buf *b, const char *key, size_t len)
{
    size_t i, run = 0;

    buf_put(b, "/", 1);
    for (i = 0; i < len; i++) {
        if (key[i] != '~' && key[i] != '/')
            continue;
        buf_put(b, key + run, i - run);
        buf_put(b, key[i] == '~' ? "~0" : "~1", 2);
        run = i + 1;
    }
    buf_put(b, key + run, len - run);
}

void doc_pointer_index(struct buf *b, size_t index)
{
    buf_printf(b, "/%zu", index);
}

/*
 * The path from the root to the value being read: one step per enclosing
 * container. Keys point into memory that lives while the parse runs (cJSON's
 * tree, or the MessagePack body), so a pointer is formatted before returning.
 */
struct doc_step {
    const char *key; /* NULL: an array index */
    size_t key_len;
    size_t index;
};

struct doc_path {
    struct doc_step step[DOC_MAX_DEPTH];
};

static void path_format(const struct doc_path *p, uint32_t n, char *out, size_t cap)
{
    struct buf b;
    uint32_t i;

    buf_init(&b, out, cap);
    for (i = 0; i < n; i++) {
        if (p->step[i].key != NULL)
            doc_pointer_key(&b, p->step[i].key, p->step[i].key_len);
        else
            doc_pointer_index(&b, p->step[i].index);
    }
}

/* The pointer of the value reached by the first @p n steps of @p p, and the
 * way a message names it: "/imp/0/id", or "the root" for "". */
struct place {
    char ptr[sizeof(((struct ads_diag *)0)->pointer)];
};

static const char *place_of(struct place *pl, const struct doc_path *p, uint32_t n)
{
    path_format(p, n, pl->ptr, sizeof(pl->ptr));
    return pl->ptr[0] != '\0' ? pl->ptr : "the root";
}

static int nomem(struct ads_diag *d)
{
    return ads_diag_set(d, ADS_ENOMEM, NULL, "%s", ads_err_message(ADS_ENOMEM));
}

/* ---- text checks shared by both encodings ---- */

/*
 * Eight bytes at a time, for the common case of plain ASCII text. The tests
 * may report a byte that is not there (then the caller looks byte by byte),
 * never miss one that is.
 */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static uint64_t load8(const unsigned char *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof(w));
    return w;
}

/* Non-zero if a byte of @p w is below @p n (n <= 0x80). */
static uint64_t byte_below(uint64_t w, unsigned n)
{
    return (w - ONES * n) & ~w & HIGHS;
}

/* Non-zero if a byte of @p w equals @p c. */
static uint64_t byte_is(uint64_t w, unsigned char c)
{
    return byte_below(w ^ (ONES * c), 1);
}

/* Whether every byte of @p w is ASCII other than NUL. */
static bool ascii8(uint64_t w)
{
    return ((w & HIGHS) | byte_is(w, 0)) == 0;
}

/*
 * Whether @p s holds valid UTF-8 (no overlong forms, surrogates or values
 * past U+10FFFF) and no U+0000. Strings feed ids, LMDB keys and C APIs, where
 * an embedded NUL would silently cut them short. *ret_bad gets the offset of
 * the first bad byte.
 */
static bool text_ok(const unsigned char *s, size_t len, size_t *ret_bad)
{
    size_t i = 0, n;

    for (;;) {
        /* Most text is ASCII: skip eight bytes at a time while none is 0 or
         * >= 0x80, then byte by byte up to the one that is. */
        while (len - i >= 8 && ascii8(load8(s + i)))
            i += 8;
        while (i < len && s[i] >= 0x01 && s[i] < 0x80)
            i++;
        if (i >= len)
            return true;
        if (s[i] == 0 || (n = buf_utf8_seq_len(s + i, len - i)) == 0) {
            *ret_bad = i;
            return false;
        }
        i += n;
    }
}

bool doc_utf8_valid(const char *s, size_t len)
{
    size_t bad;
    return text_ok((const unsigned char *)s, len, &bad);
}

/* A string (or, if @p is_key, a key of the map) at the first @p n steps of @p p failed text_ok() at @p bad. */
static int text_fail(struct ads_diag *d, const struct doc_path *p, uint32_t n, const unsigned char *s, size_t bad,
                     bool is_key)
{
    struct place pl;
    const char *at = place_of(&pl, p, n);

    return ads_diag_set(d, ADS_EBAD_REQUEST, pl.ptr, "%s %s %s (byte %zu of the %s)",
                        is_key ? "a key in the map at" : "the string at", at,
                        s[bad] == 0 ? "contains U+0000, which is not accepted" : "is not valid UTF-8", bad,
                        is_key ? "key" : "string");
}

/* ---- JSON ---- */

/*
 * cJSON 1.7 is lenient where RFC 8259 is not: it takes leading zeros ("01"),
 * "1." and raw control characters, treats every byte <= 0x20 as whitespace,
 * decodes "\uZZZZ" (bad hex) as U+0000, keeps only the text before a U+0000
 * and does not check UTF-8. It also keeps no positions. So a document is
 * parsed with cJSON, and then:
 *  - the tree is converted with UTF-8, depth and node checks (which know the
 *    pointer of each value);
 *  - one forward scan over the source text (struct jlex) checks what cJSON let
 *    through, and gives the exact text of each number, met in document order
 *    as the conversion meets them, so integers are read exactly rather than
 *    through a double;
 *  - when cJSON refuses the text, a strict recognizer (json_locate) finds
 *    where and why, for the message: cJSON reports no reason and its offsets
 *    are approximate (one past a non-string key, the start of an unterminated
 *    string).
 */

enum jerr {
    JE_NONE,
    JE_UNEXPECTED, /* a character that cannot be there */
    JE_EOF,        /* the text ends inside the document */
    JE_NUL,        /* \u0000 in a string */
    JE_DEEP,       /* nesting deeper than DOC_MAX_DEPTH (recognizer only) */
    JE_LONGNUM,    /* a number cJSON cannot read (more than 63 characters) */
    JE_TRAILING,   /* data after the document */
};

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_json_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_number_char(unsigned char c)
{
    return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Whether no byte of @p w ends a run of plain JSON string text ('"', '\\', a control character). */
static bool plain8(uint64_t w)
{
    return (byte_is(w, '"') | byte_is(w, '\\') | byte_below(w, 0x20)) == 0;
}

static int hex4(const unsigned char *s)
{
    int v = 0, k;

    for (k = 0; k < 4; k++) {
        unsigned char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/*
 * Scans the JSON string that starts with the quote at *pos, strictly; on
 * success *pos is one past the closing quote, on failure it is where the
 * error is.
 */
static enum jerr scan_string(const unsigned char *s, size_t len, size_t *pos)
{
    size_t i = *pos + 1;

    for (;;) {
        unsigned char c;

        /* Skip eight bytes at a time while none is '"', '\\' or below 0x20,
         * then byte by byte up to the one that is. */
        while (len - i >= 8 && plain8(load8(s + i)))
            i += 8;
        while (i < len && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20)
            i++;
        if (i >= len) {
            *pos = len;
            return JE_EOF;
        }
        c = s[i];
        if (c == '"') {
            *pos = i + 1;
            return JE_NONE;
        }
        if (c < 0x20) {
            *pos = i;
            return JE_UNEXPECTED;
        }
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= len) {
            *pos = len;
            return JE_EOF;
        }
        c = s[i + 1];
        if (c != 'u') {
            if (memchr("\"\\/bfnrt", c, 8) == NULL) {
                *pos = i + 1;
                return JE_UNEXPECTED;
            }
            i += 2;
            continue;
        }
        {
            int cp, lo;

            if (len - i < 6) {
                *pos = len;
                return JE_EOF;
            }
            if ((cp = hex4(s + i + 2)) < 0 || (cp >= 0xdc00 && cp <= 0xdfff)) {
                *pos = i;
                return JE_UNEXPECTED;
            }
            if (cp == 0) {
                *pos = i;
                return JE_NUL;
            }
            if (cp < 0xd800 || cp > 0xdbff) {
                i += 6;
                continue;
            }
            /* A high surrogate must be followed by an escaped low one. */
            if (len - i < 12) {
                *pos = len;
                return JE_EOF;
            }
            if (s[i + 6] != '\\' || s[i + 7] != 'u' || (lo = hex4(s + i + 8)) < 0xdc00 || lo > 0xdfff) {
                *pos = i + 6;
                return JE_UNEXPECTED;
            }
            i += 12;
        }
    }
}

/*
 * Scans the number at *pos against RFC 8259's grammar; on success *pos is one
 * past it and *ret_integral tells whether it has neither fraction nor
 * exponent.
 */
static enum jerr scan_number(const unsigned char *s, size_t len, size_t *pos, bool *ret_integral)
{
    size_t i = *pos;
    bool integral = true;

    if (s[i] == '-')
        i++;
    if (i >= len)
        goto eof;
    if (s[i] == '0') {
        i++;
    } else if (is_digit(s[i])) {
        while (i < len && is_digit(s[i]))
            i++;
    } else {
        goto unexpected;
    }
    if (i < len && s[i] == '.') {
        integral = false;
        i++;
        if (i >= len)
            goto eof;
        if (!is_digit(s[i]))
            goto unexpected;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        integral = false;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len)
            goto eof;
        if (!is_digit(s[i]))
            goto unexpected;
        while (i < len && is_digit(s[i]))
            i++;
    }
    /* cJSON reads the longest run of these; "01" or "1.2.3" must not pass. */
    if (i < len && is_number_char(s[i]))
        goto unexpected;
    *pos = i;
    *ret_integral = integral;
    return JE_NONE;
eof:
    *pos = len;
    return JE_EOF;
unexpected:
    *pos = i;
    return JE_UNEXPECTED;
}

static enum jerr scan_word(const unsigned char *s, size_t len, size_t *pos, const char *word)
{
    size_t i = *pos, k;

    for (k = 0; word[k] != '\0'; k++, i++) {
        if (i >= len) {
            *pos = len;
            return JE_EOF;
        }
        if (s[i] != (unsigned char)word[k]) {
            *pos = i;
            return JE_UNEXPECTED;
        }
    }
    *pos = i;
    return JE_NONE;
}

/* cJSON skips a UTF-8 byte order mark, but only in a text longer than 4 bytes. */
static size_t bom_len(const unsigned char *s, size_t len)
{
    return len > 4 && memcmp(s, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

/*
 * The strict recognizer, run only once cJSON has refused the text: returns
 * the first error and its offset. JE_NONE means the text is fine by RFC
 * 8259, so cJSON failed for want of memory.
 */
static enum jerr json_locate(const unsigned char *s, size_t len, size_t *ret_pos)
{
    enum { V_VALUE, V_FIRST_ELEM, V_FIRST_KEY, V_KEY, V_COLON, V_AFTER } st = V_VALUE;
    bool is_obj[DOC_MAX_DEPTH + 1];
    uint32_t depth = 0;
    size_t i = bom_len(s, len), start;
    enum jerr e;
    bool integral;

    is_obj[0] = false;
    for (;;) {
        unsigned char c;

        while (i < len && is_json_ws(s[i]))
            i++;
        if (st == V_AFTER && depth == 0) {
            *ret_pos = i;
            return i < len ? JE_TRAILING : JE_NONE;
        }
        if (i >= len) {
            *ret_pos = len;
            return JE_EOF;
        }
        c = s[i];
        e = JE_NONE;
        switch (st) {
        case V_FIRST_ELEM:
            if (c == ']') {
                depth--;
                i++;
                st = V_AFTER;
                break;
            }
            /* fall through */
        case V_VALUE:
            st = V_AFTER;
            if (c == '[' || c == '{') {
                if (depth == DOC_MAX_DEPTH) {
                    e = JE_DEEP;
                    break;
                }
                is_obj[++depth] = c == '{';
                st = c == '{' ? V_FIRST_KEY : V_FIRST_ELEM;
                i++;
            } else if (c == '"') {
                e = scan_string(s, len, &i);
            } else if (c == '-' || is_digit(c)) {
                start = i;
                e = scan_number(s, len, &i, &integral);
                if (e == JE_NONE && i - start > 63) {
                    i = start;
                    e = JE_LONGNUM;
                }
            } else if (c == 't') {
                e = scan_word(s, len, &i, "true");
            } else if (c == 'f') {
                e = scan_word(s, len, &i, "false");
            } else if (c == 'n') {
                e = scan_word(s, len, &i, "null");
            } else {
                e = JE_UNEXPECTED;
            }
            break;
        case V_FIRST_KEY:
            if (c == '}') {
                depth--;
                i++;
                st = V_AFTER;
                break;
            }
            /* fall through */
        case V_KEY:
            st = V_COLON;
            e = c == '"' ? scan_string(s, len, &i) : JE_UNEXPECTED;
            break;
        case V_COLON:
            st = V_VALUE;
            if (c == ':')
                i++;
            else
                e = JE_UNEXPECTED;
            break;
        case V_AFTER:
            if (c == ',') {
                st = is_obj[depth] ? V_KEY : V_VALUE;
                i++;
            } else if (c == (is_obj[depth] ? '}' : ']')) {
                depth--;
                i++;
            } else {
                e = JE_UNEXPECTED;
            }
            break;
        }
        if (e != JE_NONE) {
            *ret_pos = i;
            return e;
        }
    }
}

static int json_fail(struct ads_diag *d, const char *body, size_t pos, enum jerr e)
{
    size_t line = 1, col = 1, i;

    for (i = 0; i < pos; i++) {
        if (body[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    switch (e) {
    case JE_EOF:
        return ads_diag_set(d, ADS_EBAD_REQUEST, NULL,
                            "the body is not valid JSON: the document ends early, at line %zu, column %zu (byte %zu)",
                            line, col, pos);
    case JE_NUL:
        return ads_diag_set(d, ADS_EBAD_REQUEST, NULL,
                            "strings must not contain U+0000: \\u0000 at line %zu, column %zu (byte %zu)", line, col,
                            pos);
    case JE_DEEP:
        return ads_diag_set(
            d, ADS_EBAD_REQUEST, NULL,
            "the body nests arrays and objects deeper than %d levels, at line %zu, column %zu (byte %zu)",
            DOC_MAX_DEPTH, line, col, pos);
    case JE_LONGNUM:
        return ads_diag_set(d, ADS_EBAD_REQUEST, NULL,
                            "the number at line %zu, column %zu (byte %zu) is longer than 63 characters", line, col,
                            pos);
    case JE_TRAILING:
        return ads_diag_set(
            d, ADS_EBAD_REQUEST, NULL,
            "the body is not valid JSON: unexpected data after the document at line %zu, column %zu (byte %zu)", line,
            col, pos);
    case JE_NONE:
    case JE_UNEXPECTED: break;
    }
    return ads_diag_set(d, ADS_EBAD_REQUEST, NULL,
                        "the body is not valid JSON: unexpected character at line %zu, column %zu (byte %zu)", line,
                        col, pos);
}

/* A forward cursor over the source text of a document cJSON accepted. */
struct jlex {
    const unsigned char *s;
    size_t len; /* end of the document (cJSON's end) */
    size_t pos;
};

/*
 * Moves to the start of the next number outside strings (or to the end, if
 * none), checking strings and control characters on the way. Everything else
 * (punctuation, true, false, null) cJSON has checked.
 */
static enum jerr jlex_skip(struct jlex *lx)
{
    size_t i = lx->pos;
    enum jerr e;

    while (i < lx->len) {
        unsigned char c = lx->s[i];

        if (c == '-' || is_digit(c))
            break;
        if (c == '"') {
            if ((e = scan_string(lx->s, lx->len, &i)) != JE_NONE) {
                lx->pos = i;
                return e;
            }
            continue;
        }
        if (c < 0x20 && !is_json_ws(c)) {
            lx->pos = i;
            return JE_UNEXPECTED;
        }
        i++;
    }
    lx->pos = i;
    return JE_NONE;
}

/* The next number's text: [*ret_start, lx->pos). */
static enum jerr jlex_number(struct jlex *lx, size_t *ret_start, bool *ret_integral)
{
    enum jerr e;

    if ((e = jlex_skip(lx)) != JE_NONE)
        return e;
    if (lx->pos >= lx->len)
        return JE_UNEXPECTED; /* cJSON saw a number the scan did not: cannot happen */
    *ret_start = lx->pos;
    return scan_number(lx->s, lx->len, &lx->pos, ret_integral);
}

/* Reads "-?[0-9]+" exactly; false when it does not fit in 64 bits. */
static bool int_of_text(const unsigned char *s, size_t n, msgpack_object *o)
{
    bool neg = s[0] == '-';
    uint64_t mag = 0;
    size_t i;

    for (i = neg ? 1 : 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (mag > (UINT64_MAX - d) / 10)
            return false;
        mag = mag * 10 + d;
    }
    if (!neg || mag == 0) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = mag;
        return true;
    }
    if (mag > (uint64_t)INT64_MAX + 1)
        return false;
    o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
    o->via.i64 = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    return true;
}

struct jconv {
    msgpack_zone *zone;
    struct ads_diag *diag;
    const char *body;
    struct jlex lx;
    struct doc_path path;
    size_t nodes;
};

static int conv_str(struct jconv *cx, const char *s, msgpack_object *o, uint32_t depth, bool is_key)
{
    size_t n = strlen(s), bad;
    char *copy;

    if (!text_ok((const unsigned char *)s, n, &bad))
        return text_fail(cx->diag, &cx->path, depth, (const unsigned char *)s, bad, is_key);
    o->type = MSGPACK_OBJECT_STR;
    o->via.str.size = (uint32_t)n;
    if (n == 0) {
        o->via.str.ptr = "";
        return 0;
    }
    if ((copy = msgpack_zone_malloc_no_align(cx->zone, n)) == NULL)
        return nomem(cx->diag);
    memcpy(copy, s, n);
    o->via.str.ptr = copy;
    return 0;
}

static int conv_number(struct jconv *cx, const cJSON *it, msgpack_object *o, uint32_t depth)
{
    size_t start;
    bool integral;
    enum jerr e;

    if ((e = jlex_number(&cx->lx, &start, &integral)) != JE_NONE)
        return json_fail(cx->diag, cx->body, cx->lx.pos, e);
    if (integral && int_of_text(cx->lx.s + start, cx->lx.pos - start, o))
        return 0;
    if (!isfinite(it->valuedouble)) {
        struct place pl;
        const char *at = place_of(&pl, &cx->path, depth);
        return ads_diag_set(cx->diag, ADS_EBAD_REQUEST, pl.ptr, "the number at %s is too large for a double", at);
    }
    o->type = MSGPACK_OBJECT_FLOAT64;
    o->via.f64 = it->valuedouble;
    return 0;
}

static int conv_value(struct jconv *cx, const cJSON *it, msgpack_object *o, uint32_t depth);

/* Arrays and objects: @p depth containers enclose this one. */
static int conv_container(struct jconv *cx, const cJSON *it, msgpack_object *o, uint32_t depth)
{
    bool is_obj = (it->type & 0xff) == cJSON_Object;
    struct doc_step *step = &cx->path.step[depth];
    const cJSON *c;
    size_t n = 0, k;
    int r;

    if (depth + 1 > DOC_MAX_DEPTH) {
        struct place pl;
        const char *at = place_of(&pl, &cx->path, depth);
        return ads_diag_set(cx->diag, ADS_EBAD_REQUEST, pl.ptr,
                            "the value at %s nests arrays and objects deeper than %d levels", at, DOC_MAX_DEPTH);
    }
    /* cJSON built all n members already, so the array below costs at most a
     * fraction of what cJSON took; the node limit is checked member by member,
     * in document order, as for MessagePack. */
    for (c = it->child; c != NULL; c = c->next)
        n++;

    if (is_obj) {
        msgpack_object_kv *kv = NULL;

        if (n > 0 && (kv = msgpack_zone_malloc(cx->zone, n * sizeof(*kv))) == NULL)
            return nomem(cx->diag);
        o->type = MSGPACK_OBJECT_MAP;
        o->via.map.size = (uint32_t)n;
        o->via.map.ptr = kv;
        for (c = it->child, k = 0; c != NULL; c = c->next, k++) {
            if ((r = conv_str(cx, c->string, &kv[k].key, depth, true)) < 0)
                return r;
            step->key = kv[k].key.via.str.ptr;
            step->key_len = kv[k].key.via.str.size;
            if ((r = conv_value(cx, c, &kv[k].val, depth + 1)) < 0)
                return r;
        }
    } else {
        msgpack_object *a = NULL;

        if (n > 0 && (a = msgpack_zone_malloc(cx->zone, n * sizeof(*a))) == NULL)
            return nomem(cx->diag);
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = (uint32_t)n;
        o->via.array.ptr = a;
        step->key = NULL;
        for (c = it->child, k = 0; c != NULL; c = c->next, k++) {
            step->index = k;
            if ((r = conv_value(cx, c, &a[k], depth + 1)) < 0)
                return r;
        }
    }
    return 0;
}

/* Converts @p it, reached by the first @p depth steps of cx->path. */
static int conv_value(struct jconv *cx, const cJSON *it, msgpack_object *o, uint32_t depth)
{
    if (++cx->nodes > DOC_MAX_NODES) {
        struct place pl;
        const char *at = place_of(&pl, &cx->path, depth);
        return ads_diag_set(cx->diag, ADS_EBAD_REQUEST, pl.ptr,
                            "the document holds more than %d values; the value at %s is one too many", DOC_MAX_NODES,
                            at);
    }
    switch (it->type & 0xff) {
    case cJSON_False:
    case cJSON_True:
        o->type = MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = (it->type & 0xff) == cJSON_True;
        return 0;
    case cJSON_NULL: o->type = MSGPACK_OBJECT_NIL; return 0;
    case cJSON_Number: return conv_number(cx, it, o, depth);
    case cJSON_String: return conv_str(cx, it->valuestring, o, depth, false);
    case cJSON_Array:
    case cJSON_Object: return conv_container(cx, it, o, depth);
    default:
        /* cJSON's parser makes no other kind (Raw, Invalid). */
        return ads_diag_set(cx->diag, ADS_EBAD_REQUEST, NULL, "the body holds a JSON value that cannot be read");
    }
}

/*
 * cJSON mallocs every node and string of a document, and doc_parse frees them
 * all moments later: on a 1.7 KB profile half the parse time went to malloc
 * and free. While a parse runs, each thread hands cJSON a bump arena instead
 * (what does not fit still comes from malloc); the arena is reset by the next
 * parse. Outside a parse the hooks pass straight to malloc and free, so other
 * cJSON users in the process (tests) are unaffected.
 */
#define DOC_ARENA_SIZE (1u << 20)

struct doc_arena {
    char *base;
    size_t used;
    bool active;
};

static __thread struct doc_arena doc_arena;
static pthread_once_t doc_hooks_once = PTHREAD_ONCE_INIT;
static pthread_key_t doc_arena_key; /* frees a thread's arena when it exits */

static void *doc_arena_malloc(size_t n)
{
    struct doc_arena *a = &doc_arena;

    n = (n + 15) & ~(size_t)15;
    if (a->active && n <= DOC_ARENA_SIZE - a->used) {
        void *p = a->base + a->used;
        a->used += n;
        return p;
    }
    return malloc(n);
}

static void doc_arena_free(void *p)
{
    struct doc_arena *a = &doc_arena;

    if (a->base != NULL && (char *)p >= a->base && (char *)p < a->base + DOC_ARENA_SIZE)
        return;
    free(p);
}

static void doc_arena_release(void *base)
{
    free(base);
}

static void doc_hooks_install(void)
{
    cJSON_Hooks hooks = {doc_arena_malloc, doc_arena_free};

    pthread_key_create(&doc_arena_key, doc_arena_release);
    cJSON_InitHooks(&hooks);
}

/* Starts using this thread's arena; without memory for one, cJSON keeps using malloc. */
static void doc_arena_begin(void)
{
    struct doc_arena *a = &doc_arena;

    pthread_once(&doc_hooks_once, doc_hooks_install);
    if (a->base == NULL && (a->base = malloc(DOC_ARENA_SIZE)) != NULL)
        pthread_setspecific(doc_arena_key, a->base);
    a->used = 0;
    a->active = a->base != NULL;
}

static void doc_arena_end(void)
{
    doc_arena.active = false;
}

static int parse_json(const char *body, size_t len, msgpack_zone *zone, msgpack_object *ret_root, struct ads_diag *d)
{
    const unsigned char *s = (const unsigned char *)body;
    const char *end = NULL;
    struct jconv cx;
    msgpack_object root;
    size_t pos, i;
    enum jerr e;
    cJSON *tree;
    int r;

    i = 0;
    while (i < len && is_json_ws(s[i]))
        i++;
    if (i == len)
        return ads_diag_set(d, ADS_EBAD_REQUEST, NULL, "the body is empty; send a JSON document");

    /* cJSON reports the end through @p end, never through its global error
     * pointer, which other threads overwrite. */
    doc_arena_begin();
    tree = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    doc_arena_end();
    if (tree == NULL) {
        if ((e = json_locate(s, len, &pos)) == JE_NONE)
            return nomem(d);
        return json_fail(d, body, pos, e);
    }
    pos = (size_t)(end - body);
    i = pos;
    while (i < len && is_json_ws(s[i]))
        i++;
    if (i < len) {
        cJSON_Delete(tree);
        return json_fail(d, body, i, JE_TRAILING);
    }

    memset(&cx, 0, sizeof(cx));
    cx.zone = zone;
    cx.diag = d;
    cx.body = body;
    cx.lx.s = s;
    cx.lx.len = pos;
    cx.lx.pos = bom_len(s, len);
    r = conv_value(&cx, tree, &root, 0);
    cJSON_Delete(tree);
    if (r < 0)
        return r;
    if ((e = jlex_skip(&cx.lx)) != JE_NONE || cx.lx.pos < pos)
        return json_fail(d, body, cx.lx.pos, e != JE_NONE ? e : JE_UNEXPECTED);
    *ret_root = root;
    return 0;
}

/* ---- MessagePack ---- */

/*
 * msgpack-c's unpacker allocates an array or map of the declared size before
 * reading its members, so five bytes ("\xdd\xff\xff\xff\xff") would ask for
 * 96 GiB, and it references strings in the input instead of copying them. So
 * a body is first scanned here, without allocating: every declared length is
 * checked against the bytes left (each value takes at least one), and so are
 * depth, node count, types, map keys, UTF-8 and floats, with the pointer of
 * the value at fault. Only then is it copied into the zone and unpacked there,
 * so that the tree lives exactly as long as the zone.
 */

struct mp_frame {
    uint32_t count; /* members (pairs, for a map) */
    uint32_t left;  /* members still to read */
    bool is_map;
    bool key_next; /* map: the next value read is a key */
    const char *key;
    size_t key_len;
};

struct mp_scan {
    const unsigned char *s;
    size_t len;
    struct ads_diag *diag;
    struct mp_frame st[DOC_MAX_DEPTH + 1]; /* st[1..depth] are open */
    uint32_t depth;
    bool has_f32;
};

static uint64_t be_read(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    size_t k;

    for (k = 0; k < n; k++)
        v = (v << 8) | p[k];
    return v;
}

/* The path to the value being read (@p n = depth) or to its map (@p n = depth - 1). */
static const char *mp_place(const struct mp_scan *sc, struct place *pl, struct doc_path *p, uint32_t n)
{
    uint32_t k;

    for (k = 1; k <= n; k++) {
        const struct mp_frame *f = &sc->st[k];
        p->step[k - 1].key = f->is_map ? f->key : NULL;
        p->step[k - 1].key_len = f->is_map ? f->key_len : 0;
        /* The innermost frame has not counted the value being read yet; the
         * others counted the container that is open below them. */
        p->step[k - 1].index = f->count - f->left - (k < sc->depth ? 1 : 0);
    }
    return place_of(pl, p, n);
}

/* What one header byte announces. */
enum mp_kind {
    MK_SCALAR,
    MK_F32,
    MK_F64,
    MK_STR,
    MK_ARRAY,
    MK_MAP,
    MK_BINEXT,
    MK_NEVER,
};

/* Classifies header byte @p c: @p ret_extra bytes follow it, of which the
 * last @p ret_lenb (if any) hold a big-endian length or count. */
static enum mp_kind mp_header(unsigned char c, size_t *ret_extra, size_t *ret_lenb, uint32_t *ret_inline)
{
    *ret_extra = 0;
    *ret_lenb = 0;
    *ret_inline = 0;
    if (c <= 0x7f || c >= 0xe0)
        return MK_SCALAR; /* fixint */
    if (c <= 0x8f) {
        *ret_inline = c & 0x0f;
        return MK_MAP;
    }
    if (c <= 0x9f) {
        *ret_inline = c & 0x0f;
        return MK_ARRAY;
    }
    if (c <= 0xbf) {
        *ret_inline = c & 0x1f;
        return MK_STR;
    }
    switch (c) {
    case 0xc0: /* nil */
    case 0xc2: /* false */
    case 0xc3: /* true */ return MK_SCALAR;
    case 0xca: *ret_extra = 4; return MK_F32;
    case 0xcb: *ret_extra = 8; return MK_F64;
    case 0xcc:
    case 0xd0: *ret_extra = 1; return MK_SCALAR;
    case 0xcd:
    case 0xd1: *ret_extra = 2; return MK_SCALAR;
    case 0xce:
    case 0xd2: *ret_extra = 4; return MK_SCALAR;
    case 0xcf:
    case 0xd3: *ret_extra = 8; return MK_SCALAR;
    case 0xd9: *ret_extra = *ret_lenb = 1; return MK_STR;
    case 0xda: *ret_extra = *ret_lenb = 2; return MK_STR;
    case 0xdb: *ret_extra = *ret_lenb = 4; return MK_STR;
    case 0xdc: *ret_extra = *ret_lenb = 2; return MK_ARRAY;
    case 0xdd: *ret_extra = *ret_lenb = 4; return MK_ARRAY;
    case 0xde: *ret_extra = *ret_lenb = 2; return MK_MAP;
    case 0xdf: *ret_extra = *ret_lenb = 4; return MK_MAP;
    case 0xc1: return MK_NEVER;
    default: return MK_BINEXT; /* 0xc4..0xc9 bin and ext, 0xd4..0xd8 fixext */
    }
}

static int mp_check(struct mp_scan *sc)
{
    const unsigned char *s = sc->s;
    size_t i = 0, nodes = 0;
    struct doc_path path;
    struct place pl;
    const char *at;

    sc->depth = 0;
    for (;;) {
        struct mp_frame *top;
        size_t extra, lenb, start = i, bad;
        uint32_t inl, count, here;
        enum mp_kind kind;
        bool is_key;

        while (sc->depth > 0 && sc->st[sc->depth].left == 0)
            sc->depth--;
        if (sc->depth == 0 && nodes > 0)
            break;
        top = &sc->st[sc->depth];
        is_key = sc->depth > 0 && top->is_map && top->key_next;
        here = sc->depth - (is_key ? 1 : 0); /* a key's errors are its map's */

        if (i >= sc->len) {
            at = mp_place(sc, &pl, &path, here);
            return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, pl.ptr,
                                "the body is not valid MessagePack: it ends early (byte %zu), in the value at %s", i,
                                at);
        }
        kind = mp_header(s[i], &extra, &lenb, &inl);
        if (kind == MK_NEVER) {
            at = mp_place(sc, &pl, &path, here);
            return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, pl.ptr,
                                "the body is not valid MessagePack: byte %zu is 0xc1, which MessagePack never uses "
                                "(in the value at %s)",
                                i, at);
        }
        if (is_key && kind != MK_STR) {
            at = mp_place(sc, &pl, &path, here);
            return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, pl.ptr,
                                "a key in the map at %s is not a string; map keys must be str", at);
        }
        if (kind == MK_BINEXT) {
            at = mp_place(sc, &pl, &path, here);
            return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, pl.ptr,
                                "the value at %s is MessagePack bin or ext; send text and ids as str", at);
        }
        if (!is_key && ++nodes > DOC_MAX_NODES) {
            at = mp_place(sc, &pl, &path, here);
            return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, pl.ptr,
                                "the document holds more than %d values; the value at %s is one too many",
                                DOC_MAX_NODES, at);
        }
        if (sc->len - i - 1 < extra) {
            at = mp_place(sc, &pl, &path, here);
            return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, pl.ptr,
                                "the body is not valid MessagePack: it ends early, in the value at %s (byte %zu)", at,
                                start);
        }
        count = lenb > 0 ? (uint32_t)be_read(s + i + 1 + extra - lenb, lenb) : inl;
        i += 1 + extra;

        switch (kind) {
        case MK_F32:
        case MK_F64:
            sc->has_f32 |= kind == MK_F32;
            if (kind == MK_F32 ? ((be_read(s + start + 1, 4) >> 23) & 0xff) == 0xff
                               : ((be_read(s + start + 1, 8) >> 52) & 0x7ff) == 0x7ff) {
                at = mp_place(sc, &pl, &path, here);
                return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, pl.ptr,
                                    "the number at %s is not finite (NaN and infinity are not accepted)", at);
            }
            break;
        case MK_STR:
            if (count > sc->len - i) {
                at = mp_place(sc, &pl, &path, here);
                return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, pl.ptr,
                                    "the body is not valid MessagePack: it ends early, in the string at %s (byte %zu)",
                                    at, start);
            }
            if (!text_ok(s + i, count, &bad)) {
                mp_place(sc, &pl, &path, here);
                return text_fail(sc->diag, &path, here, s + i, bad, is_key);
            }
            if (is_key) {
                top->key = (const char *)s + i;
                top->key_len = count;
            }
            i += count;
            break;
        case MK_ARRAY:
        case MK_MAP:
            /* Every member takes at least one byte, so a count the rest of
             * the body cannot hold means it was cut short (or lies). */
            if ((uint64_t)count * (kind == MK_MAP ? 2 : 1) > sc->len - i) {
                at = mp_place(sc, &pl, &path, here);
                return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, pl.ptr,
                                    "the body is not valid MessagePack: it ends early, in the %s at %s (byte %zu), "
                                    "which announces %" PRIu32 " members",
                                    kind == MK_MAP ? "map" : "array", at, start, count);
            }
            if (sc->depth + 1 > DOC_MAX_DEPTH) {
                at = mp_place(sc, &pl, &path, here);
                return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, pl.ptr,
                                    "the value at %s nests arrays and maps deeper than %d levels", at, DOC_MAX_DEPTH);
            }
            break;
        case MK_SCALAR:
        case MK_BINEXT:
        case MK_NEVER: break;
        }

        /* The value is read: account for it in its container, then open it. */
        if (sc->depth > 0) {
            if (top->is_map)
                top->key_next = !is_key;
            if (!is_key)
                top->left--;
        }
        if (kind == MK_ARRAY || kind == MK_MAP) {
            struct mp_frame *f = &sc->st[++sc->depth];
            f->count = f->left = count;
            f->is_map = kind == MK_MAP;
            f->key_next = f->is_map;
            f->key = NULL;
            f->key_len = 0;
        }
    }
    if (i < sc->len)
        return ads_diag_set(sc->diag, ADS_EBAD_REQUEST, NULL,
                            "the body is not valid MessagePack: unexpected data after the document at byte %zu", i);
    return 0;
}

/* msgpack-c keeps float 32 apart; both encodings give FLOAT64 here. */
static void mp_widen_floats(msgpack_object *o)
{
    uint32_t k;

    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32: o->type = MSGPACK_OBJECT_FLOAT64; break;
    case MSGPACK_OBJECT_ARRAY:
        for (k = 0; k < o->via.array.size; k++)
            mp_widen_floats(&o->via.array.ptr[k]);
        break;
    case MSGPACK_OBJECT_MAP:
        for (k = 0; k < o->via.map.size; k++)
            mp_widen_floats(&o->via.map.ptr[k].val);
        break;
    default: break;
    }
}

static int parse_msgpack(const char *body, size_t len, msgpack_zone *zone, msgpack_object *ret_root, struct ads_diag *d)
{
    struct mp_scan sc;
    msgpack_object root;
    size_t off = 0;
    char *copy;
    int r;

    if (len == 0)
        return ads_diag_set(d, ADS_EBAD_REQUEST, NULL, "the body is empty; send a MessagePack document");
    sc.s = (const unsigned char *)body;
    sc.len = len;
    sc.diag = d;
    sc.has_f32 = false;
    if ((r = mp_check(&sc)) < 0)
        return r;

    if ((copy = msgpack_zone_malloc_no_align(zone, len)) == NULL)
        return nomem(d);
    memcpy(copy, body, len);
    switch (msgpack_unpack(copy, len, &off, zone, &root)) {
    case MSGPACK_UNPACK_SUCCESS: break;
    case MSGPACK_UNPACK_NOMEM_ERROR: return nomem(d);
    default:
        /* The scan accepts only what the unpacker reads in full. */
        return ads_diag_set(d, ADS_EBAD_REQUEST, NULL, "the body is not valid MessagePack");
    }
    if (sc.has_f32)
        mp_widen_floats(&root);
    *ret_root = root;
    return 0;
}

int doc_parse(enum doc_fmt fmt, const char *body, size_t len, msgpack_zone *zone, msgpack_object *ret_root,
              struct ads_diag *ret_diag)
{
    if (fmt == DOC_MSGPACK)
        return parse_msgpack(body, len, zone, ret_root, ret_diag);
    return parse_json(body, len, zone, ret_root, ret_diag);
}

/* ---- writing ---- */

/*
 * A call that does not fit the open container (a key where a value belongs,
 * more members than announced, a close that does not match) is a bug in the
 * caller; like a container nested too deep it sets out->overflow, and from
 * then on every call does nothing, so the broken document is never sent.
 */

static int w_write(void *data, const char *p, size_t n)
{
    buf_put(data, p, n);
    return 0;
}

static void w_bug(struct docw *w)
{
    w->out->overflow = true;
}

void docw_init(struct docw *w, enum doc_fmt fmt, struct buf *out)
{
    memset(w, 0, sizeof(*w));
    w->fmt = fmt;
    w->out = out;
    msgpack_packer_init(&w->pk, out, w_write);
}

/* Accounts for one value (not a key) about to be written and writes what
 * goes before it; false when nothing may be written. */
static bool w_value(struct docw *w)
{
    uint32_t d = w->depth;

    if (w->out->overflow)
        return false;
    if (d == 0) {
        if (w->need_comma[0]) { /* a second document */
            w_bug(w);
            return false;
        }
        w->need_comma[0] = true;
        return true;
    }
    if (w->in_map[d]) {
        if (w->want_key[d]) {
            w_bug(w);
            return false;
        }
        w->want_key[d] = true; /* docw_key() counted the pair and wrote the colon */
        return true;
    }
    if (w->left[d] == 0) {
        w_bug(w);
        return false;
    }
    w->left[d]--;
    if (w->fmt == DOC_JSON && w->need_comma[d])
        buf_put(w->out, ",", 1);
    w->need_comma[d] = true;
    return true;
}

static void w_open(struct docw *w, uint32_t n, bool map)
{
    uint32_t d;

    if (!w_value(w))
        return;
    if (w->depth == DOC_MAX_DEPTH) {
        w_bug(w);
        return;
    }
    d = ++w->depth;
    w->need_comma[d] = false;
    w->in_map[d] = map;
    w->want_key[d] = map;
    w->left[d] = n;
    if (w->fmt == DOC_JSON)
        buf_put(w->out, map ? "{" : "[", 1);
    else if (map)
        msgpack_pack_map(&w->pk, n);
    else
        msgpack_pack_array(&w->pk, n);
}

static void w_close(struct docw *w, bool map)
{
    uint32_t d = w->depth;

    if (w->out->overflow)
        return;
    if (d == 0 || w->in_map[d] != map || w->left[d] != 0 || (map && !w->want_key[d])) {
        w_bug(w);
        return;
    }
    w->depth--;
    if (w->fmt == DOC_JSON)
        buf_put(w->out, map ? "}" : "]", 1);
}

void docw_map(struct docw *w, uint32_t n)
{
    w_open(w, n, true);
}

void docw_map_end(struct docw *w)
{
    w_close(w, true);
}

void docw_array(struct docw *w, uint32_t n)
{
    w_open(w, n, false);
}

void docw_array_end(struct docw *w)
{
    w_close(w, false);
}

void docw_key(struct docw *w, const char *key)
{
    docw_keyn(w, key, strlen(key));
}

void docw_keyn(struct docw *w, const char *key, size_t n)
{
    uint32_t d = w->depth;

    if (w->out->overflow)
        return;
    if (d == 0 || !w->in_map[d] || !w->want_key[d] || w->left[d] == 0) {
        w_bug(w);
        return;
    }
    w->left[d]--;
    w->want_key[d] = false;
    if (w->fmt == DOC_MSGPACK) {
        msgpack_pack_str_with_body(&w->pk, key, n);
        return;
    }
    if (w->need_comma[d])
        buf_put(w->out, ",", 1);
    w->need_comma[d] = true;
    buf_json_str(w->out, key, n);
    buf_put(w->out, ":", 1);
}

void docw_str(struct docw *w, const char *s, size_t len)
{
    if (!w_value(w))
        return;
    if (w->fmt == DOC_JSON)
        buf_json_str(w->out, s, len);
    else
        msgpack_pack_str_with_body(&w->pk, s, len);
}

void docw_cstr(struct docw *w, const char *s)
{
    docw_str(w, s, strlen(s));
}

void docw_int(struct docw *w, int64_t v)
{
    if (!w_value(w))
        return;
    if (w->fmt == DOC_JSON)
        buf_printf(w->out, "%" PRId64, v);
    else
        msgpack_pack_int64(&w->pk, v);
}

void docw_uint(struct docw *w, uint64_t v)
{
    if (!w_value(w))
        return;
    if (w->fmt == DOC_JSON)
        buf_printf(w->out, "%" PRIu64, v);
    else
        msgpack_pack_uint64(&w->pk, v);
}

/*
 * The shortest of "%.15g" and "%.17g" that reads back as the same double, with
 * ".0" added when it would otherwise read as an integer: doc_parse() makes
 * FLOAT64 only of numbers with a fraction or an exponent.
 */
static void w_json_double(struct buf *b, double v)
{
    char tmp[40];
    int n;

    if (!isfinite(v)) {
        buf_put(b, "null", 4);
        return;
    }
    n = snprintf(tmp, sizeof(tmp), "%.15g", v);
    if (strtod(tmp, NULL) != v)
        n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof(tmp) - 2) {
        b->overflow = true;
        return;
    }
    if (strpbrk(tmp, ".eE") == NULL) {
        memcpy(tmp + n, ".0", 3);
        n += 2;
    }
    buf_put(b, tmp, (size_t)n);
}

void docw_double(struct docw *w, double v)
{
    if (!w_value(w))
        return;
    if (w->fmt == DOC_JSON)
        w_json_double(w->out, v);
    else
        msgpack_pack_double(&w->pk, v);
}

void docw_bool(struct docw *w, bool v)
{
    if (!w_value(w))
        return;
    if (w->fmt == DOC_JSON)
        buf_puts(w->out, v ? "true" : "false");
    else if (v)
        msgpack_pack_true(&w->pk);
    else
        msgpack_pack_false(&w->pk);
}

void docw_nil(struct docw *w)
{
    if (!w_value(w))
        return;
    if (w->fmt == DOC_JSON)
        buf_put(w->out, "null", 4);
    else
        msgpack_pack_nil(&w->pk);
}

void docw_object(struct docw *w, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: docw_nil(w); return;
    case MSGPACK_OBJECT_BOOLEAN: docw_bool(w, o->via.boolean); return;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: docw_uint(w, o->via.u64); return;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: docw_int(w, o->via.i64); return;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: docw_double(w, o->via.f64); return;
    case MSGPACK_OBJECT_STR: docw_str(w, o->via.str.ptr, o->via.str.size); return;
    case MSGPACK_OBJECT_ARRAY:
        docw_array(w, o->via.array.size);
        for (uint32_t i = 0; i < o->via.array.size; i++)
            docw_object(w, &o->via.array.ptr[i]);
        docw_array_end(w);
        return;
    case MSGPACK_OBJECT_MAP:
        docw_map(w, o->via.map.size);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR) {
                w_bug(w);
                return;
            }
            docw_keyn(w, kv->key.via.str.ptr, kv->key.via.str.size);
            docw_object(w, &kv->val);
        }
        docw_map_end(w);
        return;
    default: w_bug(w); return; /* bin and ext never come out of doc_parse() */
    }
}

const msgpack_object *doc_map_getn(const msgpack_object *map, const char *key, size_t n)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    /* The last of a repeated name, as JSON.parse() and the schema validator read it. */
    for (uint32_t i = map->via.map.size; i-- > 0;) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

const msgpack_object *doc_map_get(const msgpack_object *map, const char *key)
{
    return doc_map_getn(map, key, strlen(key));
}

static bool doc_key_eq(const msgpack_object *a, const msgpack_object *b)
{
    return a->type == MSGPACK_OBJECT_STR && b->type == MSGPACK_OBJECT_STR && a->via.str.size == b->via.str.size &&
           memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0;
}

int doc_merge_patch(msgpack_zone *zone, const msgpack_object *target, const msgpack_object *patch,
                    msgpack_object *ret)
{
    const msgpack_object_map *t, *p;
    msgpack_object_kv *out;
    uint32_t n = 0;
    static const msgpack_object_map empty = {0, NULL};

    if (patch->type != MSGPACK_OBJECT_MAP) {
        *ret = *patch;
        return 0;
    }
    t = target != NULL && target->type == MSGPACK_OBJECT_MAP ? &target->via.map : &empty;
    p = &patch->via.map;
    if ((size_t)t->size + p->size > UINT32_MAX / 2)
        return ADS_EINVAL;
    out = msgpack_zone_malloc(zone, ((size_t)t->size + p->size + 1) * sizeof(*out));
    if (out == NULL)
        return ADS_ENOMEM;
    /* The target's members in their order, each replaced, merged or removed by the patch. */
    for (uint32_t i = 0; i < t->size; i++) {
        const msgpack_object *pv = NULL;
        for (uint32_t j = 0; j < p->size; j++) {
            if (doc_key_eq(&t->ptr[i].key, &p->ptr[j].key))
                pv = &p->ptr[j].val;
        }
        if (pv == NULL) {
            out[n++] = t->ptr[i];
        } else if (pv->type != MSGPACK_OBJECT_NIL) {
            int rc;
            out[n].key = t->ptr[i].key;
            if ((rc = doc_merge_patch(zone, &t->ptr[i].val, pv, &out[n].val)) != 0)
                return rc;
            n++;
        }
    }
    /* Then the patch's new members (the last of a repeated key wins, as in JSON.parse()). */
    for (uint32_t j = 0; j < p->size; j++) {
        bool seen = false;
        int rc;
        for (uint32_t i = 0; i < t->size && !seen; i++)
            seen = doc_key_eq(&t->ptr[i].key, &p->ptr[j].key);
        for (uint32_t k = j + 1; k < p->size && !seen; k++)
            seen = doc_key_eq(&p->ptr[k].key, &p->ptr[j].key);
        if (seen || p->ptr[j].val.type == MSGPACK_OBJECT_NIL)
            continue;
        out[n].key = p->ptr[j].key;
        if ((rc = doc_merge_patch(zone, NULL, &p->ptr[j].val, &out[n].val)) != 0)
            return rc;
        n++;
    }
    ret->type = MSGPACK_OBJECT_MAP;
    ret->via.map.size = n;
    ret->via.map.ptr = out;
    return 0;
}
