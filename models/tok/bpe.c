/*
 * The byte-level BPE tokenizer (tok.h): the rank-file reader, the pre-split
 * with PCRE2 and the pair merging.
 *
 * Tokens live in one byte arena; an open-addressing table maps a token's
 * bytes to its rank and an array maps a rank back to its bytes. Merging a
 * piece uses a min-heap of candidate pairs keyed by (rank, start) over a
 * doubly linked list of parts, so a piece of n bytes costs O(n log n) whatever
 * its content (the scan-for-the-minimum loop of the reference implementation
 * is quadratic, which a megabyte of one letter, a single piece, would expose).
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adsmith/tok.h"

#define NO_RANK UINT32_MAX
/* Pieces up to this many bytes are merged in stack memory. */
#define SMALL_PIECE 128

struct ent {
    uint32_t hash;
    uint32_t off; /* into tok->arena */
    uint32_t rank;
    uint32_t len; /* 0: empty slot */
};

struct tok {
    unsigned char *arena;
    struct ent *tab;
    uint32_t mask;
    uint32_t ntokens;
    uint32_t max_len;
    uint32_t nranks;    /* highest rank + 1 */
    uint32_t *rank_ent; /* rank -> index into tab, NO_RANK when the rank is unused */
    uint32_t byte_rank[256];
    pcre2_code *re;
};

/* A fast hash of a short byte string (tokens are at most 256 bytes). */
static inline uint32_t hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    uint64_t w;

    while (n >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* memcmp for short strings without the call: most tokens are under 8 bytes. */
static inline int same_bytes(const unsigned char *a, const unsigned char *b, size_t n)
{
    uint64_t x, y;

    while (n >= 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y)
            return 0;
        a += 8;
        b += 8;
        n -= 8;
    }
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return 0;
    }
    return 1;
}

/* The slot holding these bytes, or the empty slot where they would go. */
static inline uint32_t find_slot(const struct tok *t, const unsigned char *p, size_t n, uint32_t h)
{
    uint32_t i = h & t->mask;

    for (;;) {
        const struct ent *e = &t->tab[i];
        if (e->len == 0)
            return i;
        if (e->hash == h && e->len == n && same_bytes(t->arena + e->off, p, n))
            return i;
        i = (i + 1) & t->mask;
    }
}

static inline uint32_t rank_of(const struct tok *t, const unsigned char *p, size_t n)
{
    uint32_t i;

    if (n == 1)
        return t->byte_rank[p[0]];
    if (n > t->max_len)
        return NO_RANK;
    i = find_slot(t, p, n, hash_bytes(p, n));
    return t->tab[i].len == 0 ? NO_RANK : t->tab[i].rank;
}

/* ---- the rank file ---- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Strict standard base64 with padding. @return the number of bytes decoded
 * into @p out (at most @p cap), or -1 when malformed, -2 when too long.
 */
static long b64_decode(const unsigned char *s, size_t n, unsigned char *out, size_t cap)
{
    size_t o = 0;

    if (n == 0 || n % 4 != 0)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad > 0)
                return -1; /* data after padding */
            v[k] = b64_value(s[i + k]);
            if (v[k] < 0)
                return -1;
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        unsigned char b[3] = {(unsigned char)(x >> 16), (unsigned char)(x >> 8), (unsigned char)x};
        for (int k = 0; k < 3 - pad; k++) {
            if (o == cap)
                return -2;
            out[o++] = b[k];
        }
    }
    return (long)o;
}

void tok_free(struct tok *t)
{
    if (t == NULL)
        return;
    pcre2_code_free(t->re);
    free(t->arena);
    free(t->tab);
    free(t->rank_ent);
    free(t);
}

size_t tok_vocab_size(const struct tok *t)
{
    return t == NULL ? 0 : t->ntokens;
}

static int compile_pattern(struct tok *t, const char *pattern, struct ads_diag *ret_diag)
{
    int errcode;
    PCRE2_SIZE erroff;
    size_t plen = strnlen(pattern, TOK_MAX_PATTERN + 1);

    if (plen > TOK_MAX_PATTERN)
        return ads_diag_set(ret_diag, ADS_EINVAL, NULL, "the pre-split pattern is longer than %u bytes",
                            TOK_MAX_PATTERN);
    /*
     * MATCH_INVALID_UTF: text that is not valid UTF-8 is searched as is, its
     * invalid sequences simply never match; the encoder turns them into pieces
     * of their own. UCP: \s and friends follow Unicode, as in tiktoken.
     */
    t->re = pcre2_compile((PCRE2_SPTR)pattern, plen, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &errcode, &erroff,
                          NULL);
    if (t->re == NULL) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", errcode);
        return ads_diag_set(ret_diag, ADS_EINVAL, NULL, "the pre-split pattern does not compile at offset %zu: %s",
                            (size_t)erroff, (const char *)msg);
    }
    /* JIT when the platform has it; pcre2_match uses it by itself. */
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
    return 0;
}

/* Counts the non-blank lines of the file, each a token. */
static size_t count_lines(const unsigned char *p, size_t len)
{
    size_t n = 0;
    size_t i = 0;

    while (i < len) {
        const unsigned char *nl = memchr(p + i, '\n', len - i);
        size_t end = nl == NULL ? len : (size_t)(nl - p);
        size_t e = end;
        if (e > i && p[e - 1] == '\r')
            e--;
        if (e > i)
            n++;
        i = end + 1;
    }
    return n;
}

static int parse_ranks(struct tok *t, const unsigned char *p, size_t len, struct ads_diag *ret_diag)
{
    size_t ntok = count_lines(p, len);
    size_t cap = 1024;
    size_t arena_len = 0;
    size_t i = 0;
    size_t line = 0;
    uint32_t max_rank = 0;
    unsigned char *seen = NULL; /* bitmap of the ranks met */
    int r = 0;

    if (ntok > TOK_MAX_RANKS)
        return ads_diag_set(ret_diag, ADS_EINVAL, NULL, "the rank file has %zu tokens, more than the limit of %u", ntok,
                            TOK_MAX_RANKS);
    while (cap < ntok * 2)
        cap *= 2;
    t->tab = calloc(cap, sizeof(*t->tab));
    t->arena = malloc(len / 4 * 3 + 4);
    seen = calloc(TOK_MAX_RANKS / 8 + 1, 1);
    if (t->tab == NULL || t->arena == NULL || seen == NULL) {
        r = ADS_ENOMEM;
        goto out;
    }
    t->mask = (uint32_t)(cap - 1);
    for (int b = 0; b < 256; b++)
        t->byte_rank[b] = NO_RANK;

    while (i < len) {
        const unsigned char *nl = memchr(p + i, '\n', len - i);
        size_t end = nl == NULL ? len : (size_t)(nl - p);
        size_t e = end;
        const unsigned char *sp;
        unsigned char tokb[TOK_MAX_TOKEN_BYTES];
        uint64_t rank = 0;
        long n;

        line++;
        if (e > i && p[e - 1] == '\r')
            e--;
        if (e == i) {
            i = end + 1;
            continue;
        }
        sp = memchr(p + i, ' ', e - i);
        if (sp == NULL || sp == p + i || sp + 1 == p + e) {
            r = ads_diag_set(ret_diag, ADS_EINVAL, NULL, "line %zu: expected `<base64 token> <rank>`", line);
            goto out;
        }
        for (const unsigned char *d = sp + 1; d < p + e; d++) {
            if (*d < '0' || *d > '9' || rank >= TOK_MAX_RANKS) {
                r = ads_diag_set(ret_diag, ADS_EINVAL, NULL, "line %zu: the rank must be a decimal number below %u",
                                 line, TOK_MAX_RANKS);
                goto out;
            }
            rank = rank * 10 + (uint64_t)(*d - '0');
        }
        if (rank >= TOK_MAX_RANKS) {
            r = ads_diag_set(ret_diag, ADS_EINVAL, NULL, "line %zu: the rank must be a decimal number below %u", line,
                             TOK_MAX_RANKS);
            goto out;
        }
        n = b64_decode(p + i, (size_t)(sp - (p + i)), tokb, sizeof(tokb));
        if (n == -2) {
            r = ads_diag_set(ret_diag, ADS_EINVAL, NULL, "line %zu: the token is longer than %u bytes", line,
                             TOK_MAX_TOKEN_BYTES);
            goto out;
        }
        if (n <= 0) {
            r = ads_diag_set(ret_diag, ADS_EINVAL, NULL, "line %zu: the token is not valid padded base64", line);
            goto out;
        }
        if (seen[rank / 8] & (1u << (rank % 8))) {
            r = ads_diag_set(ret_diag, ADS_EINVAL, NULL, "line %zu: rank %u is given twice", line, (unsigned)rank);
            goto out;
        }
        seen[rank / 8] |= (unsigned char)(1u << (rank % 8));

        uint32_t h = hash_bytes(tokb, (size_t)n);
        uint32_t slot = find_slot(t, tokb, (size_t)n, h);
        if (t->tab[slot].len != 0) {
            r = ads_diag_set(ret_diag, ADS_EINVAL, NULL, "line %zu: the token is the same as rank %u's", line,
                             t->tab[slot].rank);
            goto out;
        }
        memcpy(t->arena + arena_len, tokb, (size_t)n);
        t->tab[slot] = (struct ent){.hash = h, .off = (uint32_t)arena_len, .rank = (uint32_t)rank, .len = (uint32_t)n};
        arena_len += (size_t)n;
        if (n == 1)
            t->byte_rank[tokb[0]] = (uint32_t)rank;
        if ((uint32_t)n > t->max_len)
            t->max_len = (uint32_t)n;
        if (rank > max_rank)
            max_rank = (uint32_t)rank;
        t->ntokens++;
        i = end + 1;
    }
    for (int b = 0; b < 256; b++) {
        if (t->byte_rank[b] == NO_RANK) {
            r = ads_diag_set(ret_diag, ADS_EINVAL, NULL,
                             "the rank file lacks the single byte 0x%02x: every one of the 256 bytes must be a token",
                             b);
            goto out;
        }
    }
    t->nranks = max_rank + 1;
    t->rank_ent = malloc((size_t)t->nranks * sizeof(*t->rank_ent));
    if (t->rank_ent == NULL) {
        r = ADS_ENOMEM;
        goto out;
    }
    for (uint32_t k = 0; k < t->nranks; k++)
        t->rank_ent[k] = NO_RANK;
    for (uint32_t k = 0; k <= t->mask; k++) {
        if (t->tab[k].len != 0)
            t->rank_ent[t->tab[k].rank] = k;
    }
out:
    free(seen);
    return r;
}

int tok_from_mem_opts(const void *data, size_t len, const struct tok_opts *opts, struct tok **ret,
                      struct ads_diag *ret_diag)
{
    struct tok *t;
    int r;

    if (data == NULL && len > 0)
        return ads_diag_set(ret_diag, ADS_EINVAL, NULL, "no rank file data");
    if (len > TOK_MAX_FILE)
        return ads_diag_set(ret_diag, ADS_EINVAL, NULL, "the rank file is larger than %u bytes", TOK_MAX_FILE);
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ADS_ENOMEM;
    r = parse_ranks(t, data, len, ret_diag);
    if (r == 0)
        r = compile_pattern(t, opts != NULL && opts->pattern != NULL ? opts->pattern : TOK_PATTERN_CL100K, ret_diag);
    if (r < 0) {
        tok_free(t);
        return r;
    }
    *ret = t;
    return 0;
}

int tok_from_mem(const void *data, size_t len, struct tok **ret, struct ads_diag *ret_diag)
{
    return tok_from_mem_opts(data, len, NULL, ret, ret_diag);
}

int tok_load_opts(const char *path, const struct tok_opts *opts, struct tok **ret, struct ads_diag *ret_diag)
{
    FILE *f;
    struct stat st;
    char *buf = NULL;
    size_t got;
    int r;

    if (path == NULL)
        return ads_diag_set(ret_diag, ADS_EINVAL, NULL, "no rank file path");
    f = fopen(path, "rb");
    if (f == NULL) {
        r = -errno;
        return ads_diag_set(ret_diag, r, NULL, "%s: cannot open the rank file: %s", path, strerror(-r));
    }
    if (fstat(fileno(f), &st) != 0) {
        r = -errno;
        fclose(f);
        return ads_diag_set(ret_diag, r, NULL, "%s: %s", path, strerror(-r));
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)TOK_MAX_FILE) {
        fclose(f);
        return ads_diag_set(ret_diag, ADS_EINVAL, NULL, "%s: the rank file must be a regular file of at most %u bytes",
                            path, TOK_MAX_FILE);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fclose(f);
        return ADS_ENOMEM;
    }
    got = fread(buf, 1, (size_t)st.st_size + 1, f);
    if (ferror(f) || got > (size_t)st.st_size) {
        r = ferror(f) ? -EIO : ADS_EINVAL;
        fclose(f);
        free(buf);
        return ads_diag_set(ret_diag, r, NULL, "%s: the rank file could not be read whole", path);
    }
    fclose(f);
    r = tok_from_mem_opts(buf, got, opts, ret, ret_diag);
    free(buf);
    if (r < 0 && ret_diag != NULL) {
        char msg[sizeof(ret_diag->message)];
        memcpy(msg, ret_diag->message, sizeof(msg));
        msg[sizeof(msg) - 1] = '\0';
        ads_diag_set(ret_diag, r, NULL, "%s: %s", path, msg);
    }
    return r;
}

int tok_load(const char *path, struct tok **ret, struct ads_diag *ret_diag)
{
    return tok_load_opts(path, NULL, ret, ret_diag);
}

/* ---- encoding ---- */

struct out {
    uint32_t *ids;
    size_t cap;
    size_t n;
};

static void emit(struct out *o, uint32_t id)
{
    if (o->n < o->cap)
        o->ids[o->n] = id;
    o->n++;
}

/* A candidate merge: parts starting at `start` and the next one, ending at `end`. */
struct cand {
    uint32_t rank;
    uint32_t start;
    uint32_t end;
};

static int cand_less(const struct cand *a, const struct cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->start < b->start);
}

static void heap_push(struct cand *h, size_t *n, struct cand c)
{
    size_t i = (*n)++;

    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!cand_less(&c, &h[up]))
            break;
        h[i] = h[up];
        i = up;
    }
    h[i] = c;
}

static struct cand heap_pop(struct cand *h, size_t *n)
{
    struct cand top = h[0];
    struct cand last = h[--(*n)];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c]))
            c++;
        if (!cand_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

static void push_pair(const struct tok *t, const unsigned char *p, struct cand *h, size_t *nh, uint32_t start,
                      uint32_t end)
{
    uint32_t r = rank_of(t, p + start, end - start);

    if (r != NO_RANK)
        heap_push(h, nh, (struct cand){.rank = r, .start = start, .end = end});
}

/*
 * Merges one piece of n >= 2 bytes. nxt[i] is where the part starting at i
 * ends (the next part's start), prv[i] the previous part's start; a start
 * that has been merged away has nxt[i] == 0. The heap holds at most one entry
 * per initial pair plus two per merge, so 3n entries suffice; an entry whose
 * two parts changed since it was pushed is recognised and dropped when popped.
 */
static void merge_piece(const struct tok *t, const unsigned char *p, uint32_t n, uint32_t *nxt, uint32_t *prv,
                        struct cand *h, struct out *o)
{
    size_t nh = 0;

    for (uint32_t i = 0; i < n; i++) {
        nxt[i] = i + 1;
        prv[i] = i == 0 ? 0 : i - 1;
    }
    for (uint32_t i = 0; i + 1 < n; i++)
        push_pair(t, p, h, &nh, i, i + 2);
    while (nh > 0) {
        struct cand c = heap_pop(h, &nh);
        uint32_t j = nxt[c.start];
        if (j == 0 || j >= n || nxt[j] != c.end)
            continue; /* stale */
        nxt[c.start] = c.end;
        nxt[j] = 0;
        if (c.end < n)
            prv[c.end] = c.start;
        if (c.start > 0)
            push_pair(t, p, h, &nh, prv[c.start], c.end);
        if (c.end < n)
            push_pair(t, p, h, &nh, c.start, nxt[c.end]);
    }
    for (uint32_t i = 0; i < n; i = nxt[i])
        emit(o, rank_of(t, p + i, nxt[i] - i));
}

static int encode_piece(const struct tok *t, const unsigned char *p, size_t n, struct out *o)
{
    uint32_t r;

    if (n == 0)
        return 0;
    r = rank_of(t, p, n);
    if (r != NO_RANK) {
        emit(o, r);
        return 0;
    }
    if (n <= SMALL_PIECE) {
        uint32_t nxt[SMALL_PIECE], prv[SMALL_PIECE];
        struct cand h[3 * SMALL_PIECE];
        merge_piece(t, p, (uint32_t)n, nxt, prv, h, o);
        return 0;
    }
    if (n > UINT32_MAX / 2)
        return ADS_ENOMEM;
    uint32_t *nxt = malloc(n * sizeof(*nxt));
    uint32_t *prv = malloc(n * sizeof(*prv));
    struct cand *h = malloc(3 * n * sizeof(*h));
    int rc = 0;
    if (nxt == NULL || prv == NULL || h == NULL)
        rc = ADS_ENOMEM;
    else
        merge_piece(t, p, (uint32_t)n, nxt, prv, h, o);
    free(nxt);
    free(prv);
    free(h);
    return rc;
}

/* Skips UTF-8 continuation bytes, so that a search starts on a character (or an invalid byte). */
static size_t next_start(const unsigned char *p, size_t len, size_t i)
{
    i++;
    while (i < len && (p[i] & 0xc0) == 0x80)
        i++;
    return i;
}

static int encode_all(const struct tok *t, const char *text, size_t len, struct out *o)
{
    const unsigned char *p = (const unsigned char *)text;
    pcre2_match_data *md;
    size_t gap = 0;  /* first byte not yet encoded */
    size_t from = 0; /* where the next search starts */
    int r = 0;

    if (len == 0)
        return 0;
    md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (md == NULL)
        return ADS_ENOMEM;
    while (gap < len && r == 0) {
        int rc = from < len ? pcre2_match(t->re, (PCRE2_SPTR)p, len, from, 0, md, NULL) : PCRE2_ERROR_NOMATCH;
        if (rc < 0) {
            /*
             * No match, or a limit of the matcher: the rest of the text is
             * one piece. Its tokens are still tokens of its bytes, so counts
             * stay within tok_estimate.
             */
            r = encode_piece(t, p + gap, len - gap, o);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) {
            /* An empty match (only a caller's pattern can): its bytes stay in the gap. */
            from = next_start(p, len, ms);
            continue;
        }
        if (ms > gap)
            r = encode_piece(t, p + gap, ms - gap, o);
        if (r == 0)
            r = encode_piece(t, p + ms, me - ms, o);
        gap = from = me;
    }
    pcre2_match_data_free(md);
    return r;
}

int tok_encode(const struct tok *t, const char *text, size_t len, uint32_t *ret_ids, size_t cap, size_t *ret_n)
{
    struct out o = {.ids = ret_ids, .cap = ret_ids == NULL ? 0 : cap, .n = 0};
    int r;

    if (t == NULL || ret_n == NULL || (text == NULL && len > 0))
        return ADS_EINVAL;
    r = encode_all(t, text, len, &o);
    if (r < 0)
        return r;
    *ret_n = o.n;
    return o.n > o.cap ? -ENOBUFS : 0;
}

size_t tok_estimate(const char *text, size_t len)
{
    (void)text;
    return len;
}

size_t tok_count(const struct tok *t, const char *text, size_t len)
{
    struct out o = {.ids = NULL, .cap = 0, .n = 0};

    if (t == NULL || (text == NULL && len > 0))
        return tok_estimate(text, len);
    if (encode_all(t, text, len, &o) < 0)
        return tok_estimate(text, len);
    return o.n;
}

int tok_decode(const struct tok *t, const uint32_t *ids, size_t n, char *ret_buf, size_t cap, size_t *ret_len)
{
    size_t total = 0;

    if (t == NULL || ret_len == NULL || (ids == NULL && n > 0))
        return ADS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= t->nranks || t->rank_ent[ids[i]] == NO_RANK)
            return ADS_EINVAL;
        const struct ent *e = &t->tab[t->rank_ent[ids[i]]];
        if (ret_buf != NULL && total + e->len <= cap)
            memcpy(ret_buf + total, t->arena + e->off, e->len);
        total += e->len;
    }
    *ret_len = total;
    return total > (ret_buf == NULL ? 0 : cap) ? -ENOBUFS : 0;
}
