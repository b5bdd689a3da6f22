/*
 * jsch: the JSON Schema subset of include/adsmith/jsch.h.
 *
 * Compiling turns the schema's JSON into a graph of struct jnode, one per
 * schema object, with every $ref resolved to the node of its definition, and
 * every pattern into a small program for a backtracking matcher. All of it
 * lives in one msgpack_zone (the parsed schema text too: enum and const values
 * point into it), freed at once by jsch_free().
 *
 * Validating walks the document and the graph together. The JSON pointer of
 * the current value is kept in a buffer on the stack; subschemas whose errors
 * must not leak (anyOf, oneOf, not, if, propertyNames) are evaluated in a
 * silent mode that stops at the first failure, or in a mode that keeps only
 * the first problem, to quote it in the one message reported instead.
 */
#include "adsmith/jsch.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/buf.h"
#include "adsmith/doc.h"

#define JSCH_PTR_MAX 1024    /* bytes of the pointer kept while validating; deeper parts are cut */
#define JSCH_EVAL_DEPTH 160  /* nested subschema evaluations (a safety net: cycles are refused) */
#define JSCH_DEDUP_MAX 256   /* maps up to this size get JSON.parse's "the last duplicate wins" */
#define JSCH_UNIQUE_MAX 1024 /* most items uniqueItems compares pairwise */
#define JSCH_HINT_MAX 120    /* longest description quoted whole as a hint */
#define JSCH_EQ_BUDGET 50000000 /* work units of JSON equality (enum, const, uniqueItems) per validation */
#define JSCH_SCHEMA_PTR 512  /* bytes of a pointer into the schema, for compile diagnostics */

#define RE_MAX_NODES 2048   /* parse-tree nodes of one pattern */
#define RE_MAX_RANGES 1024  /* character-class ranges of one pattern */
#define RE_MAX_CODE 4096    /* instructions of one pattern, repetitions expanded */
#define RE_MAX_REPEAT 1000  /* most copies of a repeated group */
#define RE_MAX_GROUPS 64    /* nesting of groups */
#define RE_STACK 1024       /* backtracking choices held at once */
#define RE_STEPS_BASE 1000000 /* matcher steps per string, plus RE_STEPS_PER_BYTE per byte */
#define RE_STEPS_PER_BYTE 16
#define RE_INF UINT32_MAX   /* no upper bound */

/* ======================================================================
 * Regular expressions: ECMAScript syntax with the u flag, matched anywhere.
 * ====================================================================== */

enum re_op { RE_CHAR, RE_ANY, RE_CLASS, RE_BOL, RE_EOL, RE_SPLIT, RE_JMP, RE_REP, RE_MATCH };

struct re_insn {
    uint8_t op;
    bool negate; /* RE_CLASS: matches what the ranges do not */
    uint32_t a;  /* CHAR: code point; CLASS: first range; SPLIT, JMP: target; REP: min */
    uint32_t b;  /* CLASS: range count; SPLIT: the choice kept for backtracking; REP: max (RE_INF) */
};

struct re_range {
    uint32_t lo, hi;
};

struct jre {
    const struct re_insn *code; /* RE_REP is followed by the one-character instruction it repeats */
    const struct re_range *ranges;
    uint32_t ncode;
};

enum rn_kind { RN_CHAR, RN_ANY, RN_CLASS, RN_BOL, RN_EOL, RN_CAT, RN_ALT, RN_REPEAT };

struct rnode {
    uint8_t kind;
    bool negate;
    uint32_t a, b; /* CHAR: code point a; CLASS: ranges [a, a + b); REPEAT: min a, max b */
    int32_t child; /* CAT, ALT: first child; REPEAT: the node repeated */
    int32_t next;  /* next child of the same CAT or ALT; -1 ends the list */
    uint32_t at;   /* byte offset in the pattern, for diagnostics */
};

/* Working memory of one pattern's compilation (heap, compile time only). */
struct re_parse {
    const unsigned char *s;
    size_t len, pos;
    int groups;
    const char *err; /* static text; NULL while all is well */
    size_t err_at;
    uint32_t nnodes, nranges, ncode;
    struct rnode nodes[RE_MAX_NODES];
    struct re_range ranges[RE_MAX_RANGES];
    struct re_insn code[RE_MAX_CODE];
};

/* The code point at @p pos of a string (@p len bytes); bytes that are not UTF-8 read as U+FFFD, one at a time. */
static size_t re_decode(const unsigned char *s, size_t len, size_t pos, uint32_t *ret_cp)
{
    size_t n = buf_utf8_seq_len(s + pos, len - pos);
    uint32_t cp;

    if (n == 0) {
        *ret_cp = 0xfffd;
        return 1;
    }
    cp = n == 1 ? s[pos] : (uint32_t)(s[pos] & (0x7f >> n));
    for (size_t i = 1; i < n; i++)
        cp = (cp << 6) | (s[pos + i] & 0x3f);
    *ret_cp = cp;
    return n;
}

static int32_t rp_fail(struct re_parse *p, const char *why)
{
    if (p->err == NULL) {
        p->err = why;
        p->err_at = p->pos;
    }
    return -1;
}

static bool rp_at(const struct re_parse *p, char c)
{
    return p->pos < p->len && p->s[p->pos] == (unsigned char)c;
}

static uint32_t rp_take(struct re_parse *p)
{
    uint32_t cp;

    p->pos += re_decode(p->s, p->len, p->pos, &cp);
    return cp;
}

static int32_t rp_new(struct re_parse *p, uint8_t kind)
{
    struct rnode *n;

    if (p->nnodes == RE_MAX_NODES)
        return rp_fail(p, "the pattern is too long");
    n = &p->nodes[p->nnodes];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->child = -1;
    n->next = -1;
    n->at = (uint32_t)p->pos;
    return (int32_t)p->nnodes++;
}

static bool rp_range(struct re_parse *p, uint32_t lo, uint32_t hi)
{
    if (p->nranges == RE_MAX_RANGES) {
        rp_fail(p, "the pattern's character classes are too large");
        return false;
    }
    p->ranges[p->nranges++] = (struct re_range){lo, hi};
    return true;
}

/* Adds the ranges of \d \D \w \W \s \S (without the i flag these are ASCII, except \s). */
static bool rp_set(struct re_parse *p, char set)
{
    static const struct re_range digit[] = {{'0', '9'}};
    static const struct re_range word[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
    static const struct re_range space[] = {{0x09, 0x0d}, {0x20, 0x20},     {0xa0, 0xa0},     {0x1680, 0x1680},
                                            {0x2000, 0x200a}, {0x2028, 0x2029}, {0x202f, 0x202f}, {0x205f, 0x205f},
                                            {0x3000, 0x3000}, {0xfeff, 0xfeff}};
    const struct re_range *r;
    size_t n;
    uint32_t from = 0;

    switch (set) {
    case 'd': case 'D': r = digit; n = sizeof(digit) / sizeof(digit[0]); break;
    case 'w': case 'W': r = word; n = sizeof(word) / sizeof(word[0]); break;
    default: r = space; n = sizeof(space) / sizeof(space[0]); break;
    }
    if (set == 'd' || set == 'w' || set == 's') {
        for (size_t i = 0; i < n; i++) {
            if (!rp_range(p, r[i].lo, r[i].hi))
                return false;
        }
        return true;
    }
    /* The complement, as the gaps between the sorted ranges. */
    for (size_t i = 0; i < n; i++) {
        if (r[i].lo > from && !rp_range(p, from, r[i].lo - 1))
            return false;
        from = r[i].hi + 1;
    }
    return rp_range(p, from, 0x10ffff);
}

static int rp_hex(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* Exactly @p n hex digits. */
static bool rp_hexn(struct re_parse *p, int n, uint32_t *ret)
{
    uint32_t v = 0;

    for (int i = 0; i < n; i++) {
        int d = p->pos < p->len ? rp_hex(p->s[p->pos]) : -1;
        if (d < 0) {
            rp_fail(p, "a \\x or \\u escape needs hex digits (\\x41, \\u0041, \\u{1F600})");
            return false;
        }
        v = v * 16 + (uint32_t)d;
        p->pos++;
    }
    *ret = v;
    return true;
}

/* After "\u": XXXX (a surrogate pair of two such escapes makes one code point) or {X...}. */
static bool rp_unicode(struct re_parse *p, uint32_t *ret)
{
    uint32_t v = 0, lo;
    size_t save;

    if (rp_at(p, '{')) {
        int digits = 0;
        p->pos++;
        while (p->pos < p->len && rp_hex(p->s[p->pos]) >= 0) {
            v = v * 16 + (uint32_t)rp_hex(p->s[p->pos++]);
            if (v > 0x10ffff) {
                rp_fail(p, "\\u{...} is past U+10FFFF");
                return false;
            }
            digits++;
        }
        if (digits == 0 || !rp_at(p, '}')) {
            rp_fail(p, "\\u{ needs hex digits and a closing }");
            return false;
        }
        p->pos++;
        *ret = v;
        return true;
    }
    if (!rp_hexn(p, 4, &v))
        return false;
    save = p->pos;
    if (v >= 0xd800 && v <= 0xdbff && p->pos + 1 < p->len && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
        p->pos += 2;
        if (p->pos + 4 <= p->len && rp_hexn(p, 4, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
            *ret = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
            return true;
        }
        p->err = NULL;
        p->pos = save;
    }
    *ret = v;
    return true;
}

/*
 * One escape, the backslash already read: a code point (*ret_cp) or a class
 * (*ret_set is one of d D w W s S). The u flag makes every other escape of an
 * ordinary character an error, as in JavaScript.
 */
static bool rp_escape(struct re_parse *p, bool in_class, uint32_t *ret_cp, char *ret_set)
{
    uint32_t c;

    *ret_set = 0;
    if (p->pos >= p->len) {
        rp_fail(p, "the pattern ends with a lone \\");
        return false;
    }
    c = rp_take(p);
    switch (c) {
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S': *ret_set = (char)c; return true;
    case 'f': *ret_cp = 0x0c; return true;
    case 'n': *ret_cp = 0x0a; return true;
    case 'r': *ret_cp = 0x0d; return true;
    case 't': *ret_cp = 0x09; return true;
    case 'v': *ret_cp = 0x0b; return true;
    case 'x': return rp_hexn(p, 2, ret_cp);
    case 'u': return rp_unicode(p, ret_cp);
    case 'c':
        if (p->pos < p->len && ((p->s[p->pos] | 0x20) >= 'a' && (p->s[p->pos] | 0x20) <= 'z')) {
            *ret_cp = p->s[p->pos++] % 32;
            return true;
        }
        rp_fail(p, "\\c must be followed by a letter");
        return false;
    case '0':
        if (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            rp_fail(p, "\\0 followed by a digit is not allowed with the u flag");
            return false;
        }
        *ret_cp = 0;
        return true;
    case 'b':
        if (in_class) {
            *ret_cp = 0x08;
            return true;
        }
        rp_fail(p, "\\b (word boundary) is not supported");
        return false;
    case 'B': rp_fail(p, "\\B (word boundary) is not supported"); return false;
    case '-':
        if (in_class) {
            *ret_cp = '-';
            return true;
        }
        rp_fail(p, "\\- is allowed only inside [...] with the u flag; write - outside a class");
        return false;
    case 'k': rp_fail(p, "named backreferences (\\k<...>) are not supported"); return false;
    case 'p': case 'P': rp_fail(p, "Unicode property escapes (\\p{...}) are not supported"); return false;
    default: break;
    }
    if (c >= '1' && c <= '9') {
        rp_fail(p, "backreferences (\\1 ...) are not supported");
        return false;
    }
    if (c < 0x80 && strchr("^$\\.*+?()[]{}|/", (int)c) != NULL) {
        *ret_cp = c;
        return true;
    }
    rp_fail(p, "invalid escape: with the u flag, \\ may only precede ^ $ \\ . * + ? ( ) [ ] { } | / or start "
               "an escape such as \\n, \\d or \\u0041");
    return false;
}

static bool rp_class_atom(struct re_parse *p, uint32_t *ret_cp, char *ret_set)
{
    if (rp_at(p, '\\')) {
        p->pos++;
        return rp_escape(p, true, ret_cp, ret_set);
    }
    *ret_set = 0;
    *ret_cp = rp_take(p);
    return true;
}

/* After "[". */
static int32_t rp_class(struct re_parse *p)
{
    int32_t n = rp_new(p, RN_CLASS);
    uint32_t first = p->nranges, lo, hi;
    char set, set2;

    if (n < 0)
        return -1;
    if (rp_at(p, '^')) {
        p->nodes[n].negate = true;
        p->pos++;
    }
    for (;;) {
        if (p->pos >= p->len)
            return rp_fail(p, "a character class [...] is missing its ]");
        if (rp_at(p, ']')) {
            p->pos++;
            break;
        }
        if (!rp_class_atom(p, &lo, &set))
            return -1;
        if (rp_at(p, '-') && p->pos + 1 < p->len && p->s[p->pos + 1] != ']') {
            p->pos++;
            if (!rp_class_atom(p, &hi, &set2))
                return -1;
            if (set != 0 || set2 != 0)
                return rp_fail(p, "a range in [...] cannot start or end with \\d, \\w or \\s");
            if (lo > hi)
                return rp_fail(p, "a range in [...] is out of order");
            if (!rp_range(p, lo, hi))
                return -1;
        } else if (set != 0) {
            if (!rp_set(p, set))
                return -1;
        } else if (!rp_range(p, lo, lo)) {
            return -1;
        }
    }
    p->nodes[n].a = first;
    p->nodes[n].b = p->nranges - first;
    return n;
}

static int32_t rp_disj(struct re_parse *p);

static int32_t rp_atom(struct re_parse *p)
{
    uint32_t c, cp;
    int32_t n;
    char set;

    c = rp_take(p);
    switch (c) {
    case '(':
        if (rp_at(p, '?')) {
            if (p->pos + 1 < p->len && p->s[p->pos + 1] == ':')
                p->pos += 2;
            else
                return rp_fail(p, "lookarounds and named groups ((?=, (?!, (?<) are not supported");
        }
        if (++p->groups > RE_MAX_GROUPS)
            return rp_fail(p, "groups are nested too deeply");
        n = rp_disj(p);
        if (n < 0)
            return -1;
        if (!rp_at(p, ')'))
            return rp_fail(p, "a group ( is missing its )");
        p->pos++;
        p->groups--;
        return n;
    case '.': return rp_new(p, RN_ANY);
    case '[': return rp_class(p);
    case '\\':
        if (!rp_escape(p, false, &cp, &set))
            return -1;
        if (set != 0) {
            n = rp_new(p, RN_CLASS);
            if (n < 0)
                return -1;
            p->nodes[n].a = p->nranges;
            if (!rp_set(p, set))
                return -1;
            p->nodes[n].b = p->nranges - p->nodes[n].a;
            return n;
        }
        c = cp;
        break;
    case '*': case '+': case '?': return rp_fail(p, "nothing to repeat before *, + or ?");
    case '{': case '}': return rp_fail(p, "a lone { or } (write \\{ or \\} for the character)");
    case ']': return rp_fail(p, "a lone ] (write \\] for the character)");
    default: break;
    }
    n = rp_new(p, RN_CHAR);
    if (n >= 0)
        p->nodes[n].a = c;
    return n;
}

static bool rp_quant_next(const struct re_parse *p)
{
    return rp_at(p, '*') || rp_at(p, '+') || rp_at(p, '?') || rp_at(p, '{');
}

static bool rp_number(struct re_parse *p, uint32_t *ret)
{
    uint64_t v = 0;
    bool any = false;

    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        v = v * 10 + (p->s[p->pos++] - '0');
        if (v > RE_INF - 1)
            v = RE_INF - 1; /* no string is that long: saturating changes no result */
        any = true;
    }
    *ret = (uint32_t)v;
    return any;
}

/* A quantifier at p->pos (rp_quant_next() said there is one). */
static bool rp_quant(struct re_parse *p, uint32_t *ret_min, uint32_t *ret_max)
{
    uint32_t c = rp_take(p);

    if (c == '*' || c == '+' || c == '?') {
        *ret_min = c == '+' ? 1 : 0;
        *ret_max = c == '?' ? 1 : RE_INF;
        return true;
    }
    if (!rp_number(p, ret_min)) {
        rp_fail(p, "an incomplete quantifier {n}, {n,} or {n,m} (write \\{ for the character)");
        return false;
    }
    *ret_max = *ret_min;
    if (rp_at(p, ',')) {
        p->pos++;
        if (!rp_number(p, ret_max))
            *ret_max = RE_INF;
    }
    if (!rp_at(p, '}')) {
        rp_fail(p, "an incomplete quantifier {n}, {n,} or {n,m} (write \\{ for the character)");
        return false;
    }
    p->pos++;
    if (*ret_min > *ret_max) {
        rp_fail(p, "the numbers of a quantifier {n,m} are out of order");
        return false;
    }
    return true;
}

static int32_t rp_term(struct re_parse *p)
{
    uint32_t min, max;
    int32_t atom, rep;

    if (rp_at(p, '^') || rp_at(p, '$')) {
        atom = rp_new(p, rp_at(p, '^') ? RN_BOL : RN_EOL);
        p->pos++;
        if (atom >= 0 && rp_quant_next(p))
            return rp_fail(p, "^ and $ cannot be repeated");
        return atom;
    }
    atom = rp_atom(p);
    if (atom < 0 || !rp_quant_next(p))
        return atom;
    rep = rp_new(p, RN_REPEAT);
    if (rep < 0 || !rp_quant(p, &min, &max))
        return -1;
    p->nodes[rep].child = atom;
    p->nodes[rep].a = min;
    p->nodes[rep].b = max;
    /* Lazy or greedy makes no difference to whether a match exists (no captures are read). */
    if (rp_at(p, '?'))
        p->pos++;
    if (rp_quant_next(p))
        return rp_fail(p, "nothing to repeat: a quantifier follows a quantifier");
    return rep;
}

static int32_t rp_alt(struct re_parse *p)
{
    int32_t cat = rp_new(p, RN_CAT), last = -1, t;

    if (cat < 0)
        return -1;
    while (p->pos < p->len && !rp_at(p, '|') && !rp_at(p, ')')) {
        t = rp_term(p);
        if (t < 0)
            return -1;
        if (last < 0)
            p->nodes[cat].child = t;
        else
            p->nodes[last].next = t;
        last = t;
    }
    return cat;
}

static int32_t rp_disj(struct re_parse *p)
{
    int32_t first = rp_alt(p), alt, last, n;

    if (first < 0 || !rp_at(p, '|'))
        return first;
    alt = rp_new(p, RN_ALT);
    if (alt < 0)
        return -1;
    p->nodes[alt].child = first;
    last = first;
    while (rp_at(p, '|')) {
        p->pos++;
        n = rp_alt(p);
        if (n < 0)
            return -1;
        p->nodes[last].next = n;
        last = n;
    }
    return alt;
}

/* The node itself, or the one node a group or sequence of one holds. */
static int32_t rg_unwrap(const struct re_parse *p, int32_t n)
{
    while (p->nodes[n].kind == RN_CAT && p->nodes[n].child >= 0 && p->nodes[p->nodes[n].child].next < 0)
        n = p->nodes[n].child;
    return n;
}

static bool rg_single(const struct re_parse *p, int32_t n)
{
    uint8_t k = p->nodes[rg_unwrap(p, n)].kind;

    return k == RN_CHAR || k == RN_ANY || k == RN_CLASS;
}

/* Whether @p n can match the empty string. */
static bool rg_nullable(const struct re_parse *p, int32_t n)
{
    const struct rnode *r = &p->nodes[n];

    switch (r->kind) {
    case RN_CHAR: case RN_ANY: case RN_CLASS: return false;
    case RN_BOL: case RN_EOL: return true;
    case RN_REPEAT: return r->a == 0 || rg_nullable(p, r->child);
    case RN_CAT:
        for (int32_t c = r->child; c >= 0; c = p->nodes[c].next) {
            if (!rg_nullable(p, c))
                return false;
        }
        return true;
    default:
        for (int32_t c = r->child; c >= 0; c = p->nodes[c].next) {
            if (rg_nullable(p, c))
                return true;
        }
        return false;
    }
}

static uint32_t rg_emit(struct re_parse *p, uint8_t op, uint32_t a, uint32_t b)
{
    if (p->ncode == RE_MAX_CODE) {
        rp_fail(p, "the pattern is too large once its repetitions are written out");
        return 0;
    }
    p->code[p->ncode] = (struct re_insn){.op = op, .a = a, .b = b};
    return p->ncode++;
}

/* Points every instruction of the chain @p head (linked through @p field a or b) at the current end. */
static void rg_patch(struct re_parse *p, uint32_t head, bool field_b)
{
    while (head != RE_INF) {
        uint32_t *slot = field_b ? &p->code[head].b : &p->code[head].a;
        uint32_t next = *slot;
        *slot = p->ncode;
        head = next;
    }
}

static bool rg_node(struct re_parse *p, int32_t n);

static bool rg_repeat(struct re_parse *p, const struct rnode *r)
{
    int32_t child = rg_unwrap(p, r->child);
    uint32_t pending = RE_INF, at;

    if (rg_single(p, child)) {
        rg_emit(p, RE_REP, r->a, r->b);
        return rg_node(p, child);
    }
    if (r->a > RE_MAX_REPEAT || (r->b != RE_INF && r->b > RE_MAX_REPEAT)) {
        p->err_at = r->at;
        rp_fail(p, "a group is repeated more than 1000 times");
        return false;
    }
    if (r->b == RE_INF && rg_nullable(p, child)) {
        p->err_at = r->at;
        rp_fail(p, "a group that can match the empty string is repeated without bound; not supported");
        return false;
    }
    for (uint32_t i = 0; i < r->a; i++) {
        if (!rg_node(p, child))
            return false;
    }
    if (r->b == RE_INF) {
        at = rg_emit(p, RE_SPLIT, p->ncode + 1, 0);
        if (!rg_node(p, child))
            return false;
        rg_emit(p, RE_JMP, at, 0);
        p->code[at].b = p->ncode;
        return p->err == NULL;
    }
    for (uint32_t i = r->a; i < r->b && p->err == NULL; i++) {
        at = rg_emit(p, RE_SPLIT, p->ncode + 1, pending);
        pending = at;
        if (!rg_node(p, child))
            return false;
    }
    if (p->err == NULL)
        rg_patch(p, pending, true);
    return p->err == NULL;
}

static bool rg_node(struct re_parse *p, int32_t n)
{
    const struct rnode *r = &p->nodes[n];
    uint32_t pending = RE_INF, split;

    switch (r->kind) {
    case RN_CHAR: rg_emit(p, RE_CHAR, r->a, 0); break;
    case RN_ANY: rg_emit(p, RE_ANY, 0, 0); break;
    case RN_CLASS:
        split = rg_emit(p, RE_CLASS, r->a, r->b);
        p->code[split].negate = r->negate;
        break;
    case RN_BOL: rg_emit(p, RE_BOL, 0, 0); break;
    case RN_EOL: rg_emit(p, RE_EOL, 0, 0); break;
    case RN_CAT:
        for (int32_t c = r->child; c >= 0 && p->err == NULL; c = p->nodes[c].next)
            rg_node(p, c);
        break;
    case RN_ALT:
        for (int32_t c = r->child; c >= 0 && p->err == NULL; c = p->nodes[c].next) {
            if (p->nodes[c].next < 0) {
                rg_node(p, c);
                break;
            }
            split = rg_emit(p, RE_SPLIT, p->ncode + 1, 0);
            rg_node(p, c);
            pending = rg_emit(p, RE_JMP, pending, 0);
            p->code[split].b = p->ncode;
        }
        if (p->err == NULL)
            rg_patch(p, pending, false);
        break;
    default: return rg_repeat(p, r);
    }
    return p->err == NULL;
}

/* Compiles @p len bytes of pattern into @p zone. NULL with *@p ret_err (static) and *@p ret_at on failure. */
static struct jre *re_compile(const char *src, size_t len, msgpack_zone *zone, const char **ret_err, size_t *ret_at,
                              bool *ret_nomem)
{
    struct re_parse *p = calloc(1, sizeof(*p));
    struct jre *re = NULL;
    int32_t root;

    *ret_nomem = false;
    if (p == NULL) {
        *ret_nomem = true;
        return NULL;
    }
    p->s = (const unsigned char *)src;
    p->len = len;
    root = rp_disj(p);
    if (root >= 0 && p->pos < p->len)
        rp_fail(p, "a ) without its (");
    if (root >= 0 && p->err == NULL && rg_node(p, root))
        rg_emit(p, RE_MATCH, 0, 0);
    if (p->err != NULL) {
        *ret_err = p->err;
        *ret_at = p->err_at;
        free(p);
        return NULL;
    }
    re = msgpack_zone_malloc(zone, sizeof(*re));
    struct re_insn *code = msgpack_zone_malloc(zone, p->ncode * sizeof(*code));
    struct re_range *ranges = msgpack_zone_malloc(zone, (p->nranges + 1) * sizeof(*ranges));
    if (re == NULL || code == NULL || ranges == NULL) {
        *ret_nomem = true;
        free(p);
        return NULL;
    }
    memcpy(code, p->code, p->ncode * sizeof(*code));
    memcpy(ranges, p->ranges, p->nranges * sizeof(*ranges));
    re->code = code;
    re->ranges = ranges;
    re->ncode = p->ncode;
    free(p);
    return re;
}

static bool re_atom(const struct jre *re, const struct re_insn *in, uint32_t cp)
{
    bool hit = false;

    switch (in->op) {
    case RE_CHAR: return cp == in->a;
    case RE_ANY: return cp != 0x0a && cp != 0x0d && cp != 0x2028 && cp != 0x2029;
    default:
        for (uint32_t i = 0; i < in->b && !hit; i++)
            hit = cp >= re->ranges[in->a + i].lo && cp <= re->ranges[in->a + i].hi;
        return hit != in->negate;
    }
}

/* The start of the code point that ends at @p pos, not before @p floor. */
static size_t re_back(const unsigned char *s, size_t len, size_t pos, size_t floor)
{
    size_t q = pos - 1;
    uint32_t cp;

    while (q > floor && pos - q < 4 && (s[q] & 0xc0) == 0x80)
        q--;
    if (re_decode(s, len, q, &cp) != pos - q)
        q = pos - 1;
    return q;
}

struct re_frame {
    uint32_t pc;
    bool rep;     /* a repetition that can give back characters, down to floor */
    size_t pos;   /* SPLIT: where to resume; REP: the end last tried */
    size_t floor; /* REP: the end after its minimum count */
};

/* From @p start: 1 matches, 0 does not, -1 gave up (step or backtracking limit). */
static int re_run(const struct jre *re, const unsigned char *s, size_t len, size_t start, uint64_t *steps,
                  uint64_t max_steps)
{
    struct re_frame stack[RE_STACK];
    size_t sp = 0, pos = start, n;
    uint32_t pc = 0, cp;

    for (;;) {
        const struct re_insn *in = &re->code[pc];
        bool failed = false;

        if (++*steps > max_steps)
            return -1;
        switch (in->op) {
        case RE_CHAR: case RE_ANY: case RE_CLASS:
            failed = pos >= len;
            if (!failed) {
                n = re_decode(s, len, pos, &cp);
                failed = !re_atom(re, in, cp);
                if (!failed) {
                    pos += n;
                    pc++;
                }
            }
            break;
        case RE_BOL: failed = pos != 0; pc++; break;
        case RE_EOL: failed = pos != len; pc++; break;
        case RE_JMP: pc = in->a; break;
        case RE_SPLIT:
            if (sp == RE_STACK)
                return -1;
            stack[sp++] = (struct re_frame){.pc = in->b, .pos = pos};
            pc = in->a;
            break;
        case RE_REP: {
            size_t end = pos, floor = pos;
            uint32_t k = 0;
            while (k < in->b && end < len) {
                n = re_decode(s, len, end, &cp);
                if (!re_atom(re, in + 1, cp))
                    break;
                end += n;
                if (++k == in->a)
                    floor = end;
                if (++*steps > max_steps)
                    return -1;
            }
            failed = k < in->a;
            if (!failed && end > floor) {
                if (sp == RE_STACK)
                    return -1;
                stack[sp++] = (struct re_frame){.pc = pc + 2, .rep = true, .pos = end, .floor = floor};
            }
            pos = end;
            pc += 2;
            break;
        }
        default: return 1;
        }
        if (!failed)
            continue;
        if (sp == 0)
            return 0;
        struct re_frame *f = &stack[sp - 1];
        if (!f->rep) {
            pc = f->pc;
            pos = f->pos;
            sp--;
        } else {
            pos = re_back(s, len, f->pos, f->floor);
            pc = f->pc;
            f->pos = pos;
            if (pos <= f->floor)
                sp--;
        }
    }
}

/* Whether @p re matches somewhere in @p s: 1, 0, or -1 when it gave up. */
static int re_search(const struct jre *re, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    uint64_t steps = 0, max_steps = RE_STEPS_BASE + RE_STEPS_PER_BYTE * (uint64_t)len;
    size_t start = 0;
    uint32_t cp;
    int r;

    for (;;) {
        r = re_run(re, s, len, start, &steps, max_steps);
        if (r != 0 || re->code[0].op == RE_BOL || start >= len)
            return r;
        start += re_decode(s, len, start, &cp);
    }
}

/* ======================================================================
 * The compiled schema.
 * ====================================================================== */

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_OBJECT = 1 << 2,
    T_ARRAY = 1 << 3,
    T_NUMBER = 1 << 4,
    T_STRING = 1 << 5,
    T_INTEGER = 1 << 6,
};

struct jnode;

struct jprop {
    const char *name;
    uint32_t len;
    struct jnode *node;
};

struct jdep {
    const char *name;
    uint32_t len;
    const msgpack_object *req; /* strings */
    uint32_t nreq;
};

struct jnode {
    int8_t boolean; /* -1: a schema object; 0: false; 1: true */
    uint8_t types;  /* T_*; 0 when there is no "type" */
    const char *where; /* this schema's pointer, for compile diagnostics */
    const char *hint;  /* a short form of "description", or NULL */
    uint32_t hint_len;
    struct jnode *ref;

    bool has_enum;
    const msgpack_object *enum_vals;
    uint32_t nenum;
    const msgpack_object *const_val;

    struct jprop *props;
    uint32_t nprops;
    const msgpack_object *required;
    uint32_t nrequired;
    struct jdep *deps;
    uint32_t ndeps;
    struct jnode *additional;
    struct jnode *names;
    int64_t min_props, max_props; /* -1: absent, as for every bound below */

    struct jnode *items;
    int64_t min_items, max_items;
    bool unique;

    int64_t min_len, max_len;
    const struct jre *pattern;
    const char *pattern_src;
    uint32_t pattern_len;

    const msgpack_object *minimum, *maximum, *xminimum, *xmaximum;

    struct jnode **all_of, **any_of, **one_of;
    uint32_t nall, nany, none;
    struct jnode *not_, *if_, *then_, *else_;
    const char *cond; /* with if_: "strategy is \"max_cpm\"", for messages from then_ */

    struct jnode *next_all; /* every node, for the cycle check */
    uint8_t color;
};

struct jsch {
    msgpack_zone *zone;
    struct jnode *root;
};

/* ---- numbers and JSON equality, shared by compiling and validating ---- */

static bool is_number(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
           o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32;
}

static bool is_float(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32;
}

/* A negative-integer object holding a value >= 0 (which msgpack-c does not produce) reads as positive. */
static bool is_neg_int(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 < 0;
}

/* Integer @p x against double @p d, exactly: -1, 0 or 1 as x <, ==, > d. */
static int cmp_int_double(const msgpack_object *x, double d)
{
    double t = trunc(d);

    if (!is_neg_int(x)) {
        uint64_t u = x->via.u64, tu;
        if (d < 0)
            return 1;
        if (d >= 18446744073709551616.0)
            return -1;
        tu = (uint64_t)t;
        if (u != tu)
            return u < tu ? -1 : 1;
        return d > t ? -1 : 0;
    }
    int64_t v = x->via.i64, ti;
    if (d >= 0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    ti = (int64_t)t;
    if (v != ti)
        return v < ti ? -1 : 1;
    return d < t ? 1 : 0;
}

/* Two numbers compared by value, exactly (1 == 1.0; no rounding through double). */
static int num_cmp(const msgpack_object *a, const msgpack_object *b)
{
    if (is_float(a) && is_float(b))
        return a->via.f64 < b->via.f64 ? -1 : a->via.f64 > b->via.f64 ? 1 : 0;
    if (is_float(b))
        return cmp_int_double(a, b->via.f64);
    if (is_float(a))
        return -cmp_int_double(b, a->via.f64);
    if (is_neg_int(a) != is_neg_int(b))
        return is_neg_int(a) ? -1 : 1;
    if (is_neg_int(a))
        return a->via.i64 < b->via.i64 ? -1 : a->via.i64 > b->via.i64 ? 1 : 0;
    return a->via.u64 < b->via.u64 ? -1 : a->via.u64 > b->via.u64 ? 1 : 0;
}

static bool is_integral(const msgpack_object *o)
{
    if (!is_float(o))
        return is_number(o);
    return isfinite(o->via.f64) && trunc(o->via.f64) == o->via.f64;
}

static bool str_eq(const msgpack_object *k, const char *s, size_t len)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == len && memcmp(k->via.str.ptr, s, len) == 0;
}

static bool key_eq(const msgpack_object *a, const msgpack_object *b)
{
    return a->type == MSGPACK_OBJECT_STR && str_eq(b, a->via.str.ptr, a->via.str.size);
}

/*
 * Whether member @p i is hidden by a later member of the same name. JSON.parse
 * (and so ajv) keeps the last of duplicate names; maps past JSCH_DEDUP_MAX are
 * taken as they are, every member checked.
 */
static bool shadowed(const msgpack_object_map *m, uint32_t i)
{
    if (m->size > JSCH_DEDUP_MAX)
        return false;
    for (uint32_t j = i + 1; j < m->size; j++) {
        if (key_eq(&m->ptr[i].key, &m->ptr[j].key))
            return true;
    }
    return false;
}

static uint32_t distinct_members(const msgpack_object_map *m)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < m->size; i++)
        n += !shadowed(m, i);
    return n;
}

/* The value of the last member named @p s (@p len bytes), or NULL. */
static const msgpack_object *map_find(const msgpack_object_map *m, const char *s, size_t len)
{
    for (uint32_t i = m->size; i-- > 0;) {
        if (str_eq(&m->ptr[i].key, s, len))
            return &m->ptr[i].val;
    }
    return NULL;
}

/*
 * JSON equality: numbers by value, strings by bytes, maps whatever the order of
 * their members. 1 equal, 0 not, -1 when *@p budget (units of work: values
 * and member names compared) ran out, which callers report rather than guess:
 * uniqueItems over many large objects would otherwise cost the square of the
 * document's size.
 */
static int json_eq(const msgpack_object *a, const msgpack_object *b, uint64_t *budget)
{
    const msgpack_object_map *ma = &a->via.map, *mb = &b->via.map;
    bool same_order;
    int r;

    if (*budget == 0)
        return -1;
    --*budget;
    if (is_number(a) && is_number(b))
        return num_cmp(a, b) == 0;
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case MSGPACK_OBJECT_NIL: return 1;
    case MSGPACK_OBJECT_BOOLEAN: return a->via.boolean == b->via.boolean;
    case MSGPACK_OBJECT_STR: return str_eq(b, a->via.str.ptr, a->via.str.size);
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return 0;
        for (uint32_t i = 0; i < a->via.array.size; i++) {
            r = json_eq(&a->via.array.ptr[i], &b->via.array.ptr[i], budget);
            if (r != 1)
                return r;
        }
        return 1;
    case MSGPACK_OBJECT_MAP:
        /* Members in the same order (the usual case) compare pairwise. */
        same_order = ma->size == mb->size;
        for (uint32_t i = 0; same_order && i < ma->size; i++)
            same_order = key_eq(&ma->ptr[i].key, &mb->ptr[i].key);
        /* Finding duplicate names (shadowed, distinct_members) is quadratic up to JSCH_DEDUP_MAX members. */
        if (*budget < 2 * (uint64_t)JSCH_DEDUP_MAX * JSCH_DEDUP_MAX)
            return -1;
        *budget -= (uint64_t)ma->size * (ma->size > JSCH_DEDUP_MAX ? 1 : ma->size);
        if (same_order) {
            for (uint32_t i = 0; i < ma->size; i++) {
                if (shadowed(ma, i))
                    continue; /* so is mb's, at the same place */
                r = json_eq(&ma->ptr[i].val, &mb->ptr[i].val, budget);
                if (r != 1)
                    return r;
            }
            return 1;
        }
        *budget -= (uint64_t)ma->size * (ma->size > JSCH_DEDUP_MAX ? 1 : ma->size) +
                   (uint64_t)mb->size * (mb->size > JSCH_DEDUP_MAX ? 1 : mb->size);
        if (distinct_members(ma) != distinct_members(mb))
            return 0;
        for (uint32_t i = 0; i < ma->size; i++) {
            const msgpack_object *k = &ma->ptr[i].key, *v;
            if (k->type != MSGPACK_OBJECT_STR || shadowed(ma, i))
                continue;
            if (*budget < mb->size)
                return -1;
            *budget -= mb->size;
            v = map_find(mb, k->via.str.ptr, k->via.str.size);
            if (v == NULL)
                return 0;
            r = json_eq(&ma->ptr[i].val, v, budget);
            if (r != 1)
                return r;
        }
        return 1;
    default: return 0; /* bin and ext are no JSON values */
    }
}

/* ======================================================================
 * Compiling.
 * ====================================================================== */

struct cctx {
    msgpack_zone *zone;
    struct ads_diag *diag;
    int rc;
    struct buf ptr;
    char ptr_mem[JSCH_SCHEMA_PTR];
    const msgpack_object_map *defs; /* the root's $defs */
    struct jnode **def_nodes;       /* one per member of defs */
    struct jnode *all;
};

static int c_fail(struct cctx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int c_fail(struct cctx *cx, const char *fmt, ...)
{
    va_list ap;

    if (cx->rc != 0)
        return cx->rc;
    cx->rc = ADS_EINVAL;
    if (cx->diag != NULL) {
        va_start(ap, fmt);
        vsnprintf(cx->diag->message, sizeof(cx->diag->message), fmt, ap);
        va_end(ap);
        snprintf(cx->diag->pointer, sizeof(cx->diag->pointer), "%s", cx->ptr.base);
    }
    return cx->rc;
}

static void *c_alloc(struct cctx *cx, size_t n)
{
    void *p = msgpack_zone_malloc(cx->zone, n == 0 ? 1 : n);

    if (p == NULL) {
        cx->rc = ADS_ENOMEM;
        if (cx->diag != NULL)
            ads_diag_set(cx->diag, ADS_ENOMEM, NULL, "out of memory compiling the schema");
        return NULL;
    }
    memset(p, 0, n == 0 ? 1 : n);
    return p;
}

static char *c_strdup(struct cctx *cx, const char *s, size_t n)
{
    char *d = c_alloc(cx, n + 1);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static struct jnode *c_node(struct cctx *cx)
{
    struct jnode *n = c_alloc(cx, sizeof(*n));

    if (n == NULL)
        return NULL;
    n->boolean = -1;
    n->min_props = n->max_props = n->min_items = n->max_items = n->min_len = n->max_len = -1;
    n->next_all = cx->all;
    cx->all = n;
    return n;
}

static size_t c_push(struct cctx *cx, const char *key, size_t len)
{
    size_t mark = cx->ptr.len;

    doc_pointer_key(&cx->ptr, key, len);
    return mark;
}

static size_t c_push_index(struct cctx *cx, size_t i)
{
    size_t mark = cx->ptr.len;

    doc_pointer_index(&cx->ptr, i);
    return mark;
}

static void c_pop(struct cctx *cx, size_t mark)
{
    cx->ptr.len = mark;
    cx->ptr.base[mark] = '\0';
    cx->ptr.overflow = false;
}

/*
 * A short form of a description, to quote in messages: the whole text when it
 * is short, else its start up to the first ": ", " (", ". " or ", " (the
 * subject of the sentence: "ISO 4217 alphabetic currency code (three ..." gives
 * "ISO 4217 alphabetic currency code"); none when that is still long.
 */
static void c_hint(struct jnode *n, const char *d, size_t len)
{
    static const char *const cuts[] = {": ", " (", ". ", ", "};
    size_t cut = len;

    while (len > 0 && (d[len - 1] == '.' || d[len - 1] == ' '))
        len--;
    if (len <= JSCH_HINT_MAX) {
        n->hint = d;
        n->hint_len = (uint32_t)len;
        return;
    }
    for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
        const char *at = memmem(d, len, cuts[c], 2);
        /* "e.g. " and "i.e. " do not end a sentence. */
        while (at != NULL && c == 2 && at - d >= 3 && (memcmp(at - 3, "e.g", 3) == 0 || memcmp(at - 3, "i.e", 3) == 0))
            at = memmem(at + 2, len - (size_t)(at + 2 - d), cuts[c], 2);
        if (at != NULL && (size_t)(at - d) < cut)
            cut = (size_t)(at - d);
    }
    if (cut >= 8 && cut <= JSCH_HINT_MAX) {
        n->hint = d;
        n->hint_len = (uint32_t)cut;
    }
}

static struct jnode *c_schema(struct cctx *cx, const msgpack_object *o);
static int c_into(struct cctx *cx, struct jnode *n, const msgpack_object *o, bool root);

static int c_count(struct cctx *cx, const msgpack_object *v, const char *kw, int64_t *ret)
{
    if (!is_integral(v) || (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) || (is_float(v) && v->via.f64 < 0))
        return c_fail(cx, "%s must be a non-negative integer", kw);
    if (is_float(v))
        *ret = v->via.f64 >= 9.2e18 ? INT64_MAX : (int64_t)v->via.f64;
    else
        *ret = v->via.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v->via.u64;
    return 0;
}

static int c_strings(struct cctx *cx, const msgpack_object *v, const char *kw)
{
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return c_fail(cx, "%s must be an array of strings", kw);
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        if (v->via.array.ptr[i].type != MSGPACK_OBJECT_STR)
            return c_fail(cx, "%s must be an array of strings", kw);
        for (uint32_t j = 0; j < i; j++) {
            uint64_t budget = UINT64_MAX;
            if (json_eq(&v->via.array.ptr[i], &v->via.array.ptr[j], &budget) == 1)
                return c_fail(cx, "%s lists \"%.*s\" twice", kw, (int)v->via.array.ptr[i].via.str.size,
                              v->via.array.ptr[i].via.str.ptr);
        }
    }
    return 0;
}

static int c_type_name(struct cctx *cx, const msgpack_object *v, uint8_t *bits)
{
    static const struct {
        const char *name;
        uint8_t bit;
    } names[] = {{"null", T_NULL},     {"boolean", T_BOOLEAN}, {"object", T_OBJECT}, {"array", T_ARRAY},
                 {"number", T_NUMBER}, {"string", T_STRING},   {"integer", T_INTEGER}};

    for (size_t i = 0; v->type == MSGPACK_OBJECT_STR && i < sizeof(names) / sizeof(names[0]); i++) {
        if (str_eq(v, names[i].name, strlen(names[i].name))) {
            if (*bits & names[i].bit)
                return c_fail(cx, "type lists \"%s\" twice", names[i].name);
            *bits |= names[i].bit;
            return 0;
        }
    }
    return c_fail(cx, "type must be null, boolean, object, array, number, string or integer (or a list of them)");
}

static int kw_type(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return c_type_name(cx, v, &n->types);
    if (v->via.array.size == 0)
        return c_fail(cx, "type must not be an empty list");
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        if (c_type_name(cx, &v->via.array.ptr[i], &n->types) != 0)
            return cx->rc;
    }
    return 0;
}

static int kw_enum(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return c_fail(cx, "enum must be an array");
    n->has_enum = true;
    n->enum_vals = v->via.array.ptr;
    n->nenum = v->via.array.size;
    return 0;
}

static int kw_const(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    (void)cx;
    n->const_val = v;
    return 0;
}

static int kw_annotation_str(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    (void)n;
    if (v->type != MSGPACK_OBJECT_STR)
        return c_fail(cx, "must be a string");
    return 0;
}

static int kw_description(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    if (v->type != MSGPACK_OBJECT_STR)
        return c_fail(cx, "description must be a string");
    c_hint(n, v->via.str.ptr, v->via.str.size);
    return 0;
}

static int kw_any(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    (void)cx;
    (void)n;
    (void)v;
    return 0;
}

static int kw_bool(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    (void)n;
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return c_fail(cx, "must be true or false");
    return 0;
}

static int kw_examples(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    (void)n;
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return c_fail(cx, "examples must be an array");
    return 0;
}

static int kw_ref(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    static const char prefix[] = "#/$defs/";
    char name[256];
    size_t len = 0;

    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size < sizeof(prefix) ||
        memcmp(v->via.str.ptr, prefix, sizeof(prefix) - 1) != 0)
        return c_fail(cx, "only local references of the form \"#/$defs/NAME\" are supported");
    /* The rest is one RFC 6901 reference token: ~1 is "/", ~0 is "~". */
    for (size_t i = sizeof(prefix) - 1; i < v->via.str.size; i++) {
        char ch = v->via.str.ptr[i];
        if (ch == '/' || ch == '%' || len + 1 >= sizeof(name))
            return c_fail(cx, "only local references of the form \"#/$defs/NAME\" are supported");
        if (ch == '~') {
            if (i + 1 >= v->via.str.size || (v->via.str.ptr[i + 1] != '0' && v->via.str.ptr[i + 1] != '1'))
                return c_fail(cx, "$ref has a ~ not followed by 0 or 1");
            ch = v->via.str.ptr[++i] == '0' ? '~' : '/';
        }
        name[len++] = ch;
    }
    for (uint32_t i = 0; cx->defs != NULL && i < cx->defs->size; i++) {
        if (str_eq(&cx->defs->ptr[i].key, name, len)) {
            n->ref = cx->def_nodes[i];
            return 0;
        }
    }
    return c_fail(cx, "$ref \"%.*s\" names no member of the root's $defs", (int)v->via.str.size, v->via.str.ptr);
}

static int kw_properties(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    if (v->type != MSGPACK_OBJECT_MAP)
        return c_fail(cx, "properties must be an object of schemas");
    n->props = c_alloc(cx, v->via.map.size * sizeof(*n->props));
    if (n->props == NULL)
        return cx->rc;
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *k = &v->via.map.ptr[i].key;
        size_t mark = c_push(cx, k->via.str.ptr, k->via.str.size);
        if (shadowed(&v->via.map, i))
            return c_fail(cx, "properties names \"%.*s\" twice", (int)k->via.str.size, k->via.str.ptr);
        n->props[i].name = k->via.str.ptr;
        n->props[i].len = k->via.str.size;
        n->props[i].node = c_schema(cx, &v->via.map.ptr[i].val);
        if (n->props[i].node == NULL)
            return cx->rc;
        c_pop(cx, mark);
    }
    n->nprops = v->via.map.size;
    return 0;
}

static int kw_required(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    if (c_strings(cx, v, "required") != 0)
        return cx->rc;
    n->required = v->via.array.ptr;
    n->nrequired = v->via.array.size;
    return 0;
}

static int kw_dependent_required(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    if (v->type != MSGPACK_OBJECT_MAP)
        return c_fail(cx, "dependentRequired must be an object of string arrays");
    n->deps = c_alloc(cx, v->via.map.size * sizeof(*n->deps));
    if (n->deps == NULL)
        return cx->rc;
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *k = &v->via.map.ptr[i].key, *val = &v->via.map.ptr[i].val;
        size_t mark = c_push(cx, k->via.str.ptr, k->via.str.size);
        if (c_strings(cx, val, "each member of dependentRequired") != 0)
            return cx->rc;
        c_pop(cx, mark);
        n->deps[i] = (struct jdep){k->via.str.ptr, k->via.str.size, val->via.array.ptr, val->via.array.size};
    }
    n->ndeps = v->via.map.size;
    return 0;
}

static int kw_sub(struct cctx *cx, struct jnode **slot, const msgpack_object *v)
{
    *slot = c_schema(cx, v);
    return *slot == NULL ? cx->rc : 0;
}

static int kw_additional(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return kw_sub(cx, &n->additional, v);
}

static int kw_property_names(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return kw_sub(cx, &n->names, v);
}

static int kw_items(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    if (v->type == MSGPACK_OBJECT_ARRAY)
        return c_fail(cx, "items must be one schema (an array of schemas is prefixItems, not supported)");
    return kw_sub(cx, &n->items, v);
}

static int kw_not(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return kw_sub(cx, &n->not_, v);
}

static int kw_if(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return kw_sub(cx, &n->if_, v);
}

static int kw_then(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return kw_sub(cx, &n->then_, v);
}

static int kw_else(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return kw_sub(cx, &n->else_, v);
}

static int c_list(struct cctx *cx, const msgpack_object *v, const char *kw, struct jnode ***ret, uint32_t *ret_n)
{
    struct jnode **list;

    if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size == 0)
        return c_fail(cx, "%s must be a non-empty array of schemas", kw);
    list = c_alloc(cx, v->via.array.size * sizeof(*list));
    if (list == NULL)
        return cx->rc;
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        size_t mark = c_push_index(cx, i);
        list[i] = c_schema(cx, &v->via.array.ptr[i]);
        if (list[i] == NULL)
            return cx->rc;
        c_pop(cx, mark);
    }
    *ret = list;
    *ret_n = v->via.array.size;
    return 0;
}

static int kw_all_of(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_list(cx, v, "allOf", &n->all_of, &n->nall);
}

static int kw_any_of(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_list(cx, v, "anyOf", &n->any_of, &n->nany);
}

static int kw_one_of(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_list(cx, v, "oneOf", &n->one_of, &n->none);
}

static int kw_min_properties(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_count(cx, v, "minProperties", &n->min_props);
}

static int kw_max_properties(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_count(cx, v, "maxProperties", &n->max_props);
}

static int kw_min_items(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_count(cx, v, "minItems", &n->min_items);
}

static int kw_max_items(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_count(cx, v, "maxItems", &n->max_items);
}

static int kw_min_length(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_count(cx, v, "minLength", &n->min_len);
}

static int kw_max_length(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_count(cx, v, "maxLength", &n->max_len);
}

static int kw_unique_items(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return c_fail(cx, "uniqueItems must be true or false");
    n->unique = v->via.boolean;
    return 0;
}

static int c_bound(struct cctx *cx, const msgpack_object *v, const char *kw, const msgpack_object **slot)
{
    if (!is_number(v))
        return c_fail(cx, "%s must be a number", kw);
    *slot = v;
    return 0;
}

static int kw_minimum(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_bound(cx, v, "minimum", &n->minimum);
}

static int kw_maximum(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_bound(cx, v, "maximum", &n->maximum);
}

static int kw_xminimum(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_bound(cx, v, "exclusiveMinimum", &n->xminimum);
}

static int kw_xmaximum(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    return c_bound(cx, v, "exclusiveMaximum", &n->xmaximum);
}

static int kw_pattern(struct cctx *cx, struct jnode *n, const msgpack_object *v)
{
    const char *why = NULL;
    size_t at = 0;
    bool nomem;

    if (v->type != MSGPACK_OBJECT_STR)
        return c_fail(cx, "pattern must be a string");
    n->pattern = re_compile(v->via.str.ptr, v->via.str.size, cx->zone, &why, &at, &nomem);
    if (nomem) {
        cx->rc = ADS_ENOMEM;
        return cx->rc;
    }
    if (n->pattern == NULL)
        return c_fail(cx, "pattern /%.*s/ is not supported at offset %zu: %s", (int)v->via.str.size, v->via.str.ptr,
                      at, why);
    n->pattern_src = v->via.str.ptr;
    n->pattern_len = v->via.str.size;
    return 0;
}

/* Keywords that only the root may hold are handled by c_into. */
static const struct {
    const char *name;
    int (*fn)(struct cctx *cx, struct jnode *n, const msgpack_object *v);
} keywords[] = {
    {"title", kw_annotation_str},
    {"description", kw_description},
    {"$comment", kw_annotation_str},
    {"default", kw_any},
    {"examples", kw_examples},
    {"readOnly", kw_bool},
    {"$ref", kw_ref},
    {"type", kw_type},
    {"enum", kw_enum},
    {"const", kw_const},
    {"properties", kw_properties},
    {"required", kw_required},
    {"additionalProperties", kw_additional},
    {"dependentRequired", kw_dependent_required},
    {"minProperties", kw_min_properties},
    {"maxProperties", kw_max_properties},
    {"propertyNames", kw_property_names},
    {"items", kw_items},
    {"minItems", kw_min_items},
    {"maxItems", kw_max_items},
    {"uniqueItems", kw_unique_items},
    {"minLength", kw_min_length},
    {"maxLength", kw_max_length},
    {"pattern", kw_pattern},
    {"minimum", kw_minimum},
    {"maximum", kw_maximum},
    {"exclusiveMinimum", kw_xminimum},
    {"exclusiveMaximum", kw_xmaximum},
    {"allOf", kw_all_of},
    {"anyOf", kw_any_of},
    {"oneOf", kw_one_of},
    {"not", kw_not},
    {"if", kw_if},
    {"then", kw_then},
    {"else", kw_else},
};

/* For messages from "then": the condition of "if" when it is members equal to constants. */
static void c_cond(struct cctx *cx, struct jnode *n)
{
    char mem[160];
    struct buf b;

    if (n->if_ == NULL || n->if_->nprops == 0)
        return;
    buf_init(&b, mem, sizeof(mem));
    for (uint32_t i = 0; i < n->if_->nprops; i++) {
        const struct jnode *p = n->if_->props[i].node;
        if (p->const_val == NULL || p->const_val->type != MSGPACK_OBJECT_STR)
            return;
        buf_printf(&b, "%s%.*s is ", i > 0 ? " and " : "", (int)n->if_->props[i].len, n->if_->props[i].name);
        buf_json_str(&b, p->const_val->via.str.ptr, p->const_val->via.str.size);
    }
    if (!b.overflow)
        n->cond = c_strdup(cx, b.base, b.len);
}

static int c_into(struct cctx *cx, struct jnode *n, const msgpack_object *o, bool root)
{
    n->where = c_strdup(cx, cx->ptr.base, cx->ptr.len);
    if (n->where == NULL)
        return cx->rc;
    if (o->type == MSGPACK_OBJECT_BOOLEAN) {
        n->boolean = o->via.boolean ? 1 : 0;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_MAP)
        return c_fail(cx, "a schema must be an object or a boolean");
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        size_t mark = c_push(cx, k->via.str.ptr, k->via.str.size), j;

        if (shadowed(&o->via.map, i))
            return c_fail(cx, "the keyword appears twice");
        if (str_eq(k, "$schema", 7) || str_eq(k, "$id", 3) || str_eq(k, "$defs", 5)) {
            if (!root)
                return c_fail(cx, "%.*s is supported only at the root of the schema", (int)k->via.str.size,
                              k->via.str.ptr);
            if (str_eq(k, "$schema", 7) && !str_eq(v, "https://json-schema.org/draft/2020-12/schema", 44))
                return c_fail(cx, "$schema must be \"https://json-schema.org/draft/2020-12/schema\"");
            if (str_eq(k, "$id", 3) && v->type != MSGPACK_OBJECT_STR)
                return c_fail(cx, "$id must be a string");
            c_pop(cx, mark);
            continue; /* $defs were compiled first, by jsch_compile */
        }
        for (j = 0; j < sizeof(keywords) / sizeof(keywords[0]); j++) {
            if (str_eq(k, keywords[j].name, strlen(keywords[j].name)))
                break;
        }
        if (j == sizeof(keywords) / sizeof(keywords[0]))
            return c_fail(cx, "the keyword \"%.*s\" is not supported (see include/adsmith/jsch.h for the subset)",
                          (int)k->via.str.size, k->via.str.ptr);
        if (keywords[j].fn(cx, n, v) != 0)
            return cx->rc;
        c_pop(cx, mark);
    }
    c_cond(cx, n);
    return cx->rc;
}

static struct jnode *c_schema(struct cctx *cx, const msgpack_object *o)
{
    struct jnode *n = c_node(cx);

    if (n == NULL || c_into(cx, n, o, false) != 0)
        return NULL;
    return n;
}

/*
 * Refuses a cycle of subschemas applied to the same value ($ref, allOf, anyOf,
 * oneOf, not, if, then, else), which would never end; cycles through
 * properties or items are fine, as they descend into the document.
 */
static int c_cycles(struct cctx *cx, struct jnode *n)
{
    struct jnode *const single[] = {n->ref, n->not_, n->if_, n->then_, n->else_};
    struct jnode **const lists[] = {n->all_of, n->any_of, n->one_of};
    const uint32_t counts[] = {n->nall, n->nany, n->none};

    if (n->color == 2)
        return 0;
    if (n->color == 1) {
        snprintf(cx->ptr.base, cx->ptr.cap, "%s", n->where);
        return c_fail(cx, "a $ref cycle comes back here without descending into the document");
    }
    n->color = 1;
    for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
        if (single[i] != NULL && c_cycles(cx, single[i]) != 0)
            return cx->rc;
    }
    for (size_t l = 0; l < 3; l++) {
        for (uint32_t i = 0; i < counts[l]; i++) {
            if (c_cycles(cx, lists[l][i]) != 0)
                return cx->rc;
        }
    }
    n->color = 2;
    return 0;
}

int jsch_compile(const char *json, size_t len, struct jsch **ret, struct ads_diag *diag)
{
    struct cctx cx = {.diag = diag};
    struct ads_diag pd;
    msgpack_object root;
    const msgpack_object *defs = NULL;
    struct jsch *s;
    int rc;

    buf_init(&cx.ptr, cx.ptr_mem, sizeof(cx.ptr_mem));
    cx.zone = msgpack_zone_new(16384);
    if (cx.zone == NULL)
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory compiling the schema");
    rc = doc_parse(DOC_JSON, json, len, cx.zone, &root, &pd);
    if (rc == ADS_ENOMEM) {
        msgpack_zone_free(cx.zone);
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory compiling the schema");
    }
    if (rc != 0) {
        msgpack_zone_free(cx.zone);
        return ads_diag_set(diag, ADS_EINVAL, pd.pointer, "the schema is not valid JSON: %s", pd.message);
    }
    if (root.type == MSGPACK_OBJECT_MAP)
        defs = map_find(&root.via.map, "$defs", 5);
    if (defs != NULL && defs->type != MSGPACK_OBJECT_MAP) {
        c_push(&cx, "$defs", 5);
        c_fail(&cx, "$defs must be an object of schemas");
    }
    /* Definitions get their nodes first, so that a $ref can point at one not compiled yet. */
    if (cx.rc == 0 && defs != NULL) {
        cx.defs = &defs->via.map;
        cx.def_nodes = c_alloc(&cx, defs->via.map.size * sizeof(*cx.def_nodes));
        for (uint32_t i = 0; cx.rc == 0 && i < defs->via.map.size; i++)
            cx.def_nodes[i] = c_node(&cx);
        for (uint32_t i = 0; cx.rc == 0 && i < defs->via.map.size; i++) {
            const msgpack_object *k = &defs->via.map.ptr[i].key;
            size_t mark = c_push(&cx, "$defs", 5);
            c_push(&cx, k->via.str.ptr, k->via.str.size);
            if (shadowed(cx.defs, i))
                c_fail(&cx, "$defs names \"%.*s\" twice", (int)k->via.str.size, k->via.str.ptr);
            else if (c_into(&cx, cx.def_nodes[i], &defs->via.map.ptr[i].val, false) == 0)
                c_pop(&cx, mark);
        }
    }
    s = cx.rc == 0 ? c_alloc(&cx, sizeof(*s)) : NULL;
    if (s != NULL)
        s->root = c_node(&cx);
    if (s != NULL && s->root != NULL)
        c_into(&cx, s->root, &root, true);
    for (struct jnode *n = cx.all; cx.rc == 0 && n != NULL; n = n->next_all)
        c_cycles(&cx, n);
    if (cx.rc != 0) {
        rc = cx.rc;
        msgpack_zone_free(cx.zone);
        return rc;
    }
    /* The jsch handle lives in its own zone: freeing the zone frees it too. */
    s->zone = cx.zone;
    *ret = s;
    return 0;
}

void jsch_free(struct jsch *s)
{
    if (s != NULL)
        msgpack_zone_free(s->zone);
}

/* ======================================================================
 * Validating.
 * ====================================================================== */

enum jmode {
    JM_REPORT, /* every problem goes to the report */
    JM_SILENT, /* only valid or not; stops at the first problem */
    JM_FIRST,  /* keeps the first problem's message and pointer (for anyOf, propertyNames); stops there */
};

struct vctx {
    struct vrep *rep;
    enum jmode mode;
    unsigned depth;
    const char *cond; /* while evaluating a "then": its "if" in words, or NULL */
    uint64_t eq_budget; /* what json_eq may still do */
    struct buf ptr;
    char ptr_mem[JSCH_PTR_MAX];
    /* JM_FIRST */
    bool first_set;
    size_t first_base; /* pointer length where the capture started */
    const char *first_rule;
    char first_msg[VREP_MESSAGE_MAX];
    char first_ptr[96];
};

static bool ev(struct vctx *c, const struct jnode *n, const msgpack_object *o);

/* Drops a UTF-8 sequence cut short at the end of @p s (vsnprintf cuts on bytes). */
static void utf8_trim(char *s)
{
    size_t len = strlen(s), i = len;

    while (i > 0 && len - i < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
        i--;
    if (i > 0 && ((unsigned char)s[i - 1] & 0x80) != 0) {
        if (buf_utf8_seq_len((const unsigned char *)s + i - 1, len - i + 1) != len - i + 1)
            s[i - 1] = '\0';
    } else if (i < len) {
        s[i] = '\0';
    }
}

static void problem(struct vctx *c, const char *rule, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void problem(struct vctx *c, const char *rule, const char *fmt, ...)
{
    char msg[VREP_MESSAGE_MAX];
    va_list ap;

    if (c->mode == JM_SILENT || (c->mode == JM_FIRST && c->first_set))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_trim(msg);
    if (c->mode == JM_FIRST) {
        c->first_set = true;
        c->first_rule = rule;
        memcpy(c->first_msg, msg, sizeof(msg));
        snprintf(c->first_ptr, sizeof(c->first_ptr), "%s", c->ptr.base + c->first_base);
        utf8_trim(c->first_ptr);
        return;
    }
    vrep_add(c->rep, rule, c->ptr.base, c->ptr.len, "%s", msg);
}

static bool stop(const struct vctx *c)
{
    return c->mode != JM_REPORT;
}

static size_t push_key(struct vctx *c, const char *key, size_t len)
{
    size_t mark = c->ptr.len;

    doc_pointer_key(&c->ptr, key, len);
    return mark;
}

static size_t push_index(struct vctx *c, size_t i)
{
    size_t mark = c->ptr.len;

    doc_pointer_index(&c->ptr, i);
    return mark;
}

static void pop(struct vctx *c, size_t mark)
{
    c->ptr.len = mark;
    c->ptr.base[mark] = '\0';
    c->ptr.overflow = false;
}

/* A string for a message: quoted and escaped as in JSON, cut after @p max bytes. */
static void put_quoted(struct buf *b, const char *s, size_t len, size_t max)
{
    size_t keep = len;

    if (keep > max) {
        keep = max;
        while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80)
            keep--;
    }
    buf_json_str(b, s, keep);
    if (keep < len && !b->overflow && b->len > 0) {
        b->len--; /* before the closing quote */
        buf_puts(b, "...\"");
    }
}

static void put_double(struct buf *b, double d)
{
    char tmp[40];

    snprintf(tmp, sizeof(tmp), "%.15g", d);
    if (strtod(tmp, NULL) != d)
        snprintf(tmp, sizeof(tmp), "%.17g", d);
    buf_puts(b, tmp);
}

static void put_number(struct buf *b, const msgpack_object *o)
{
    if (is_float(o))
        put_double(b, o->via.f64);
    else if (is_neg_int(o))
        buf_printf(b, "%lld", (long long)o->via.i64);
    else
        buf_printf(b, "%llu", (unsigned long long)o->via.u64);
}

/* A value for a message: JSON, short; strings unquoted when @p bare. */
static void put_value(struct buf *b, const msgpack_object *o, bool bare)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: buf_puts(b, "null"); break;
    case MSGPACK_OBJECT_BOOLEAN: buf_puts(b, o->via.boolean ? "true" : "false"); break;
    case MSGPACK_OBJECT_STR:
        if (bare && o->via.str.size <= 40 && memchr(o->via.str.ptr, '"', o->via.str.size) == NULL)
            buf_put(b, o->via.str.ptr, o->via.str.size);
        else
            put_quoted(b, o->via.str.ptr, o->via.str.size, 40);
        break;
    case MSGPACK_OBJECT_ARRAY: buf_printf(b, "an array of %u items", o->via.array.size); break;
    case MSGPACK_OBJECT_MAP: buf_printf(b, "an object of %u members", o->via.map.size); break;
    default:
        if (is_number(o))
            put_number(b, o);
        else
            buf_puts(b, "binary data");
        break;
    }
}

static const char *type_article(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "null";
    case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
    case MSGPACK_OBJECT_STR: return "a string";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "an object";
    default: return is_number(o) ? (is_integral(o) ? "an integer" : "a number") : "binary data";
    }
}

static uint8_t type_bits(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return T_NULL;
    case MSGPACK_OBJECT_BOOLEAN: return T_BOOLEAN;
    case MSGPACK_OBJECT_STR: return T_STRING;
    case MSGPACK_OBJECT_ARRAY: return T_ARRAY;
    case MSGPACK_OBJECT_MAP: return T_OBJECT;
    default:
        if (!is_number(o))
            return 0;
        return is_integral(o) ? T_NUMBER | T_INTEGER : T_NUMBER;
    }
}

/* Appends the description's short form, when reporting (nested messages stay short). */
static void put_hint(struct buf *b, const struct vctx *c, const struct jnode *n, const char *sep)
{
    if (c->mode != JM_REPORT)
        return;
    if (n->hint == NULL && n->ref != NULL)
        n = n->ref;
    if (n->hint == NULL)
        return;
    if (sep != NULL) {
        buf_puts(b, sep);
        buf_put(b, n->hint, n->hint_len);
    } else if (memchr(n->hint, '(', n->hint_len) != NULL) {
        buf_puts(b, "; ");
        buf_put(b, n->hint, n->hint_len);
    } else {
        buf_puts(b, " (");
        buf_put(b, n->hint, n->hint_len);
        buf_puts(b, ")");
    }
}

/* Whether @p o is none of the node's types (then reported). */
static bool type_mismatch(struct vctx *c, const struct jnode *n, const msgpack_object *o)
{
    static const struct {
        uint8_t bit;
        const char *text;
    } names[] = {{T_STRING, "a string"},   {T_INTEGER, "an integer"}, {T_NUMBER, "a number"}, {T_BOOLEAN, "a boolean"},
                 {T_OBJECT, "an object"}, {T_ARRAY, "an array"},     {T_NULL, "null"}};
    char mem[VREP_MESSAGE_MAX];
    struct buf b;
    uint8_t want = n->types, have = type_bits(o);
    unsigned k = 0, total = 0;

    if ((want & have) != 0)
        return false;
    if (c->mode == JM_SILENT)
        return true;
    if (want & T_NUMBER)
        want &= (uint8_t)~T_INTEGER;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        total += (want & names[i].bit) != 0;
    buf_init(&b, mem, sizeof(mem));
    buf_puts(&b, "must be ");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((want & names[i].bit) == 0)
            continue;
        buf_puts(&b, k == 0 ? "" : k + 1 == total ? " or " : ", ");
        buf_puts(&b, names[i].text);
        k++;
    }
    buf_puts(&b, ", not ");
    if (is_number(o) && (want & T_INTEGER)) {
        put_number(&b, o);
    } else {
        buf_puts(&b, type_article(o));
    }
    problem(c, "schema:type", "%s", mem);
    return true;
}

static void ev_enum_problem(struct vctx *c, const struct jnode *n)
{
    char mem[VREP_MESSAGE_MAX];
    struct buf b;

    if (c->mode == JM_SILENT)
        return;
    buf_init(&b, mem, sizeof(mem));
    buf_puts(&b, "must be one of: ");
    for (uint32_t i = 0; i < n->nenum; i++) {
        if (b.len > 160) {
            buf_printf(&b, ", ... (%u values in all)", n->nenum);
            break;
        }
        if (i > 0)
            buf_puts(&b, ", ");
        put_value(&b, &n->enum_vals[i], true);
    }
    problem(c, "schema:enum", "%s", mem);
}

/* Code points of valid UTF-8 (every byte that does not continue a sequence). */
static size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

static bool ev_string(struct vctx *c, const struct jnode *n, const msgpack_object *o)
{
    const char *s = o->via.str.ptr;
    size_t len = o->via.str.size, chars;
    char mem[VREP_MESSAGE_MAX];
    struct buf b;
    bool ok = true;
    int r;

    if (n->min_len >= 0 || n->max_len >= 0) {
        chars = utf8_count(s, len);
        if (n->min_len >= 0 && chars < (uint64_t)n->min_len) {
            ok = false;
            if (chars == 0)
                problem(c, "schema:minLength", "must not be empty (at least %lld character%s)",
                        (long long)n->min_len, n->min_len == 1 ? "" : "s");
            else
                problem(c, "schema:minLength", "is %zu character%s; the least allowed is %lld", chars,
                        chars == 1 ? "" : "s", (long long)n->min_len);
            if (stop(c))
                return false;
        }
        if (n->max_len >= 0 && chars > (uint64_t)n->max_len) {
            ok = false;
            problem(c, "schema:maxLength", "is %zu characters; the most allowed is %lld", chars, (long long)n->max_len);
            if (stop(c))
                return false;
        }
    }
    if (n->pattern != NULL) {
        r = re_search(n->pattern, s, len);
        if (r != 1) {
            ok = false;
            buf_init(&b, mem, sizeof(mem));
            if (r < 0) {
                buf_printf(&b, "is too long or complex to check against the pattern %.*s; shorten it",
                           (int)n->pattern_len, n->pattern_src);
            } else {
                buf_printf(&b, "must match %.*s", (int)n->pattern_len, n->pattern_src);
                put_hint(&b, c, n, NULL);
            }
            problem(c, "schema:pattern", "%s", mem);
        }
    }
    return ok;
}

static bool ev_number(struct vctx *c, const struct jnode *n, const msgpack_object *o)
{
    static const struct {
        const char *rule;
        int bad_cmp; /* the comparison of value and bound that fails */
        bool or_equal;
        const char *text;
    } bounds[] = {
        {"schema:minimum", -1, false, "the least allowed is"},
        {"schema:maximum", 1, false, "the most allowed is"},
        {"schema:exclusiveMinimum", -1, true, "it must be more than"},
        {"schema:exclusiveMaximum", 1, true, "it must be less than"},
    };
    const msgpack_object *vals[] = {n->minimum, n->maximum, n->xminimum, n->xmaximum};
    char mem[VREP_MESSAGE_MAX];
    struct buf b;
    bool ok = true;

    for (size_t i = 0; i < 4; i++) {
        int r;
        if (vals[i] == NULL)
            continue;
        r = num_cmp(o, vals[i]);
        if (r != bounds[i].bad_cmp && !(bounds[i].or_equal && r == 0))
            continue;
        ok = false;
        buf_init(&b, mem, sizeof(mem));
        buf_puts(&b, "is ");
        put_number(&b, o);
        buf_printf(&b, "; %s ", bounds[i].text);
        put_number(&b, vals[i]);
        problem(c, bounds[i].rule, "%s", mem);
        if (stop(c))
            return false;
    }
    return ok;
}

static const struct jnode *find_prop(const struct jnode *n, const char *s, size_t len)
{
    for (uint32_t i = 0; i < n->nprops; i++) {
        if (n->props[i].len == len && memcmp(n->props[i].name, s, len) == 0)
            return n->props[i].node;
    }
    return NULL;
}

/* ", a, b, c" of the property names, while there is room. */
static void put_prop_names(struct buf *b, const struct jnode *n, size_t room)
{
    for (uint32_t i = 0; i < n->nprops; i++) {
        if (b->len + n->props[i].len + 2 > room) {
            buf_puts(b, ", ...");
            return;
        }
        buf_puts(b, i > 0 ? ", " : "");
        buf_put(b, n->props[i].name, n->props[i].len);
    }
}

static bool ev_required(struct vctx *c, const struct jnode *n, const msgpack_object_map *m)
{
    char mem[VREP_MESSAGE_MAX];
    struct buf b;
    bool ok = true;

    for (uint32_t i = 0; i < n->nrequired; i++) {
        const msgpack_object_str *name = &n->required[i].via.str;
        const struct jnode *p;
        size_t mark;

        if (map_find(m, name->ptr, name->size) != NULL)
            continue;
        ok = false;
        buf_init(&b, mem, sizeof(mem));
        buf_puts(&b, "is required");
        if (c->cond != NULL)
            buf_printf(&b, " when %s", c->cond);
        p = find_prop(n, name->ptr, name->size);
        if (p != NULL)
            put_hint(&b, c, p, ": ");
        mark = push_key(c, name->ptr, name->size);
        problem(c, "schema:required", "%s", mem);
        pop(c, mark);
        if (stop(c))
            return false;
    }
    for (uint32_t d = 0; d < n->ndeps; d++) {
        const struct jdep *dep = &n->deps[d];
        if (map_find(m, dep->name, dep->len) == NULL)
            continue;
        for (uint32_t i = 0; i < dep->nreq; i++) {
            const msgpack_object_str *name = &dep->req[i].via.str;
            size_t mark;
            if (map_find(m, name->ptr, name->size) != NULL)
                continue;
            ok = false;
            buf_init(&b, mem, sizeof(mem));
            buf_puts(&b, "is required when ");
            buf_put(&b, dep->name, dep->len);
            buf_puts(&b, " is present");
            mark = push_key(c, name->ptr, name->size);
            problem(c, "schema:dependentRequired", "%s", mem);
            pop(c, mark);
            if (stop(c))
                return false;
        }
    }
    return ok;
}

static bool ev_member_count(struct vctx *c, const struct jnode *n, const msgpack_object_map *m)
{
    uint32_t count;
    char mem[VREP_MESSAGE_MAX];
    struct buf b;

    if (n->min_props < 0 && n->max_props < 0)
        return true;
    count = distinct_members(m);
    if (n->min_props >= 0 && count < (uint64_t)n->min_props) {
        buf_init(&b, mem, sizeof(mem));
        buf_printf(&b, "has %u member%s; it needs at least %lld", count, count == 1 ? "" : "s",
                   (long long)n->min_props);
        if (n->nprops > 0) {
            buf_puts(&b, " of: ");
            put_prop_names(&b, n, sizeof(mem) - 8);
        }
        problem(c, "schema:minProperties", "%s", mem);
        return false;
    }
    if (n->max_props >= 0 && count > (uint64_t)n->max_props) {
        problem(c, "schema:maxProperties", "has %u members; the most allowed is %lld", count, (long long)n->max_props);
        return false;
    }
    return true;
}

static void unknown_member(struct vctx *c, const struct jnode *n, const msgpack_object_str *k)
{
    char mem[VREP_MESSAGE_MAX];
    struct buf b;

    if (c->mode == JM_SILENT)
        return;
    buf_init(&b, mem, sizeof(mem));
    buf_puts(&b, "unknown member ");
    put_quoted(&b, k->ptr, k->size, 48);
    if (n->nprops == 0) {
        buf_puts(&b, "; this object takes no members");
    } else {
        buf_puts(&b, "; allowed members: ");
        put_prop_names(&b, n, sizeof(mem) - 8);
    }
    problem(c, "schema:additionalProperties", "%s", mem);
}

/* propertyNames: the name checked as a string; one problem at the member, quoting the first reason. */
static bool ev_name(struct vctx *c, const struct jnode *n, const msgpack_object *key)
{
    enum jmode mode = c->mode;
    char mem[VREP_MESSAGE_MAX];
    struct buf b;
    bool ok;

    if (mode == JM_REPORT) {
        c->mode = JM_FIRST;
        c->first_set = false;
        c->first_base = c->ptr.len;
    } else {
        c->mode = JM_SILENT;
    }
    ok = ev(c, n->names, key);
    c->mode = mode;
    if (ok || mode == JM_SILENT)
        return ok;
    buf_init(&b, mem, sizeof(mem));
    buf_puts(&b, "the name ");
    put_quoted(&b, key->via.str.ptr, key->via.str.size, 48);
    buf_puts(&b, " is not allowed here");
    if (mode == JM_REPORT && c->first_set)
        buf_printf(&b, ": it %s", c->first_msg);
    problem(c, "schema:propertyNames", "%s", mem);
    return false;
}

static bool ev_object(struct vctx *c, const struct jnode *n, const msgpack_object *o)
{
    const msgpack_object_map *m = &o->via.map;
    bool ok = true;

    if ((n->nrequired > 0 || n->ndeps > 0) && !ev_required(c, n, m)) {
        ok = false;
        if (stop(c))
            return false;
    }
    if (!ev_member_count(c, n, m)) {
        ok = false;
        if (stop(c))
            return false;
    }
    if (n->nprops == 0 && n->additional == NULL && n->names == NULL)
        return ok;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        const struct jnode *p;
        size_t mark;
        bool r = true;

        if (k->type != MSGPACK_OBJECT_STR || shadowed(m, i))
            continue;
        mark = push_key(c, k->via.str.ptr, k->via.str.size);
        p = find_prop(n, k->via.str.ptr, k->via.str.size);
        if (p == NULL)
            p = n->additional;
        if (p != NULL && p->boolean == 0 && p == n->additional) {
            unknown_member(c, n, &k->via.str);
            r = false;
        } else if (p != NULL) {
            r = ev(c, p, &m->ptr[i].val);
        }
        if ((r || !stop(c)) && n->names != NULL)
            r = ev_name(c, n, k) && r;
        pop(c, mark);
        if (!r) {
            ok = false;
            if (stop(c))
                return false;
        }
    }
    return ok;
}

static bool ev_unique(struct vctx *c, const struct jnode *n, const msgpack_object_array *a)
{
    char mem[VREP_MESSAGE_MAX];
    struct buf b;
    bool ok = true;

    if (a->size > JSCH_UNIQUE_MAX) {
        /* Too many to compare pairwise; when maxItems already refused the array that says enough. */
        if (n->max_items >= 0 && a->size > (uint64_t)n->max_items)
            return false;
        problem(c, "schema:uniqueItems", "has %u items, more than the %d that can be checked for repeats", a->size,
                JSCH_UNIQUE_MAX);
        return false;
    }
    for (uint32_t j = 1; j < a->size; j++) {
        for (uint32_t i = 0; i < j; i++) {
            size_t mark;
            int same = json_eq(&a->ptr[i], &a->ptr[j], &c->eq_budget);
            if (same < 0) {
                problem(c, "schema:uniqueItems", "has items too many or too large to check for repeats");
                return false;
            }
            if (same == 0)
                continue;
            ok = false;
            if (c->mode == JM_SILENT)
                return false;
            buf_init(&b, mem, sizeof(mem));
            buf_printf(&b, "repeats item %u (", i);
            put_value(&b, &a->ptr[j], false);
            buf_puts(&b, "); no value may appear twice");
            mark = push_index(c, j);
            problem(c, "schema:uniqueItems", "%s", mem);
            pop(c, mark);
            if (stop(c))
                return false;
            break;
        }
    }
    return ok;
}

static bool ev_array(struct vctx *c, const struct jnode *n, const msgpack_object *o)
{
    const msgpack_object_array *a = &o->via.array;
    bool ok = true;

    if (n->min_items >= 0 && a->size < (uint64_t)n->min_items) {
        ok = false;
        problem(c, "schema:minItems", "has %u item%s; it needs at least %lld", a->size, a->size == 1 ? "" : "s",
                (long long)n->min_items);
        if (stop(c))
            return false;
    }
    if (n->max_items >= 0 && a->size > (uint64_t)n->max_items) {
        ok = false;
        problem(c, "schema:maxItems", "has %u items; the most allowed is %lld", a->size, (long long)n->max_items);
        if (stop(c))
            return false;
    }
    for (uint32_t i = 0; n->items != NULL && i < a->size; i++) {
        size_t mark = push_index(c, i);
        bool r = ev(c, n->items, &a->ptr[i]);
        pop(c, mark);
        if (!r) {
            ok = false;
            if (stop(c))
                return false;
        }
    }
    if (n->unique && !ev_unique(c, n, a))
        ok = false;
    return ok;
}

/* Runs @p n on @p o silently: valid or not. */
static bool ev_silent(struct vctx *c, const struct jnode *n, const msgpack_object *o)
{
    enum jmode mode = c->mode;
    bool ok;

    c->mode = JM_SILENT;
    ok = ev(c, n, o);
    c->mode = mode;
    return ok;
}

/*
 * anyOf and oneOf: one problem at the value, never the branches' own. When
 * reporting and no branch matched, each branch is run again keeping its first
 * problem, so that the message can say what each alternative lacks.
 */
static bool ev_alternatives(struct vctx *c, const struct jnode *n, const msgpack_object *o, bool one)
{
    struct jnode *const *br = one ? n->one_of : n->any_of;
    uint32_t nb = one ? n->none : n->nany, matched = 0, which[2] = {0, 0}, shown;
    const char *rule = one ? "schema:oneOf" : "schema:anyOf";
    char mem[VREP_MESSAGE_MAX], parts[3][VREP_MESSAGE_MAX + 100], names[3][96];
    struct buf b;
    bool all_required = true;

    for (uint32_t i = 0; i < nb && matched < 2; i++) {
        if (ev_silent(c, br[i], o)) {
            if (!one)
                return true;
            which[matched++] = i;
        }
    }
    if (matched == 1)
        return true;
    if (matched == 2) {
        problem(c, rule, "matches alternatives %u and %u of %u; it must match exactly one", which[0] + 1,
                which[1] + 1, nb);
        return false;
    }
    if (c->mode != JM_REPORT) {
        problem(c, rule, "matches none of the %u allowed forms", nb);
        return false;
    }
    shown = nb < 3 ? nb : 3;
    for (uint32_t i = 0; i < shown; i++) {
        c->mode = JM_FIRST;
        c->first_set = false;
        c->first_base = c->ptr.len;
        ev(c, br[i], o);
        c->mode = JM_REPORT;
        if (!c->first_set)
            snprintf(parts[i], sizeof(parts[i]), "does not match");
        else if (c->first_ptr[0] != '\0')
            snprintf(parts[i], sizeof(parts[i]), "%s %s", c->first_ptr, c->first_msg);
        else
            snprintf(parts[i], sizeof(parts[i]), "%s", c->first_msg);
        /* Alternatives that each require a member read best as a list of those members. */
        all_required = all_required && c->first_set && strcmp(c->first_rule, "schema:required") == 0 &&
                       c->first_ptr[0] == '/' && strchr(c->first_ptr + 1, '/') == NULL;
        snprintf(names[i], sizeof(names[i]), "%s", all_required ? c->first_ptr + 1 : "");
    }
    buf_init(&b, mem, sizeof(mem));
    if (all_required && shown == nb) {
        buf_puts(&b, one ? "needs exactly one of the members " : "needs at least one of the members ");
        for (uint32_t i = 0; i < shown; i++)
            buf_printf(&b, "%s%s", i == 0 ? "" : i + 1 == shown ? " or " : ", ", names[i]);
    } else {
        buf_printf(&b, "matches none of the %u allowed forms%s: ", nb, one ? " (exactly one must match)" : "");
        for (uint32_t i = 0; i < shown; i++)
            buf_printf(&b, "%s(%u) %s", i == 0 ? "" : "; ", i + 1, parts[i]);
        if (shown < nb)
            buf_puts(&b, "; ...");
    }
    problem(c, rule, "%s", mem);
    return false;
}

static bool ev_applicators(struct vctx *c, const struct jnode *n, const msgpack_object *o)
{
    bool ok = true;

    for (uint32_t i = 0; i < n->nall; i++) {
        if (!ev(c, n->all_of[i], o)) {
            ok = false;
            if (stop(c))
                return false;
        }
    }
    if (n->nany > 0 && !ev_alternatives(c, n, o, false)) {
        ok = false;
        if (stop(c))
            return false;
    }
    if (n->none > 0 && !ev_alternatives(c, n, o, true)) {
        ok = false;
        if (stop(c))
            return false;
    }
    if (n->not_ != NULL && ev_silent(c, n->not_, o)) {
        char mem[VREP_MESSAGE_MAX];
        struct buf b;
        ok = false;
        buf_init(&b, mem, sizeof(mem));
        buf_puts(&b, "is not allowed here");
        put_hint(&b, c, n->not_, ": it must not be ");
        problem(c, "schema:not", "%s", mem);
        if (stop(c))
            return false;
    }
    if (n->if_ != NULL && (n->then_ != NULL || n->else_ != NULL)) {
        const char *cond = c->cond;
        bool r = true;
        if (ev_silent(c, n->if_, o)) {
            if (n->then_ != NULL) {
                c->cond = n->cond;
                r = ev(c, n->then_, o);
            }
        } else if (n->else_ != NULL) {
            c->cond = NULL;
            r = ev(c, n->else_, o);
        }
        c->cond = cond;
        ok = ok && r;
    }
    return ok;
}

static bool ev(struct vctx *c, const struct jnode *n, const msgpack_object *o)
{
    bool ok = true;

    if (n->boolean == 1)
        return true;
    if (n->boolean == 0) {
        if (c->cond != NULL)
            problem(c, "schema:false", "is not allowed when %s", c->cond);
        else
            problem(c, "schema:false", "is not allowed here");
        return false;
    }
    if (c->depth >= JSCH_EVAL_DEPTH) {
        problem(c, "schema:depth", "is nested too deeply to check");
        return false;
    }
    c->depth++;
    if (n->ref != NULL && !ev(c, n->ref, o)) {
        ok = false;
        if (stop(c))
            goto out;
    }
    if (n->types != 0 && type_mismatch(c, n, o)) {
        ok = false;
        if (stop(c))
            goto out;
    }
    if (n->has_enum) {
        int found = 0;
        for (uint32_t i = 0; i < n->nenum && found == 0; i++)
            found = json_eq(o, &n->enum_vals[i], &c->eq_budget);
        if (found != 1) {
            ok = false;
            if (found < 0)
                problem(c, "schema:enum", "is too large to compare with the allowed values");
            else
                ev_enum_problem(c, n);
            if (stop(c))
                goto out;
        }
    }
    if (n->const_val != NULL) {
        int same = json_eq(o, n->const_val, &c->eq_budget);
        if (same != 1) {
            char mem[VREP_MESSAGE_MAX];
            struct buf b;
            ok = false;
            buf_init(&b, mem, sizeof(mem));
            if (same < 0) {
                buf_puts(&b, "is too large to compare with the value it must be");
            } else {
                buf_puts(&b, "must be ");
                put_value(&b, n->const_val, false);
            }
            problem(c, "schema:const", "%s", mem);
            if (stop(c))
                goto out;
        }
    }
    switch (o->type) {
    case MSGPACK_OBJECT_STR: ok = ev_string(c, n, o) && ok; break;
    case MSGPACK_OBJECT_MAP: ok = ev_object(c, n, o) && ok; break;
    case MSGPACK_OBJECT_ARRAY: ok = ev_array(c, n, o) && ok; break;
    default:
        if (is_number(o))
            ok = ev_number(c, n, o) && ok;
        break;
    }
    if (!ok && stop(c))
        goto out;
    ok = ev_applicators(c, n, o) && ok;
out:
    c->depth--;
    return ok;
}

int jsch_validate(const struct jsch *s, const msgpack_object *root, struct vrep *rep)
{
    struct vctx c;

    c.rep = rep;
    c.mode = JM_REPORT;
    c.depth = 0;
    c.cond = NULL;
    c.eq_budget = JSCH_EQ_BUDGET;
    c.first_set = false;
    c.first_base = 0;
    c.first_rule = NULL;
    buf_init(&c.ptr, c.ptr_mem, sizeof(c.ptr_mem));
    return ev(&c, s->root, root) ? 0 : ADS_EINVAL;
}
