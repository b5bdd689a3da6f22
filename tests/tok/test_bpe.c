/*
 * The BPE tokenizer: exact encodings over a hand-written vocabulary
 * (tests/tok/fixtures/hand.tiktoken, see make_fixtures.py), the pre-split,
 * round trips and the estimate bound over a trained vocabulary
 * (trained.tiktoken), malformed rank files refused with their line, long
 * pieces, invalid UTF-8 and concurrent use.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adsmith/err.h"
#include "adsmith/tok.h"

static struct tok *hand;
static struct tok *trained;
static struct ads_diag diag;

static struct tok *load_fixture(const char *name, const struct tok_opts *opts)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[1024];
    struct tok *t = NULL;
    int r;

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is set by meson");
    snprintf(path, sizeof(path), "%s/tests/tok/fixtures/%s", root, name);
    r = tok_load_opts(path, opts, &t, &diag);
    cr_assert_eq(r, 0, "loading %s: %d %s", path, r, diag.message);
    return t;
}

static void setup(void)
{
    hand = load_fixture("hand.tiktoken", NULL);
    trained = load_fixture("trained.tiktoken", NULL);
}

static void teardown(void)
{
    tok_free(hand);
    tok_free(trained);
    hand = trained = NULL;
}

TestSuite(encode, .init = setup, .fini = teardown);
TestSuite(load);
TestSuite(props, .init = setup, .fini = teardown);

/* Encodes @p s (len bytes) with @p t and checks the ids against @p want (n of them). */
static void check_ids(const struct tok *t, const char *s, size_t len, const uint32_t *want, size_t n)
{
    uint32_t ids[64];
    size_t got = 0;
    int r = tok_encode(t, s, len, ids, 64, &got);

    cr_assert_eq(r, 0, "encode \"%s\": %d", s, r);
    cr_assert_eq(got, n, "encode \"%s\": %zu ids, want %zu", s, got, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ids[i], want[i], "encode \"%s\": id %zu is %u, want %u", s, i, ids[i], want[i]);
    cr_assert_eq(tok_count(t, s, len), n);
}

#define CHECK(t, s, ...)                                                                                               \
    do {                                                                                                               \
        const uint32_t want_[] = {__VA_ARGS__};                                                                        \
        check_ids(t, s, sizeof(s) - 1, want_, sizeof(want_) / sizeof(want_[0]));                                       \
    } while (0)

/*
 * hand.tiktoken: byte b has rank b; then he 256, ll 257, hell 258, hello 259,
 * " w" 260, or 261, " wor" 262, ld 263, " world" 264, 你[:2] 265, 你 266,
 * 好[:2] 267, 好 268, 你好 269, aa 270, aaaa 271, bc 272, ab 273, 1234 274,
 * 12 275, 34 276, dA 277.
 */
Test(encode, whole_pieces)
{
    /* "hello" and " world" are pieces (letters with one leading non-letter) and tokens. */
    CHECK(hand, "hello world", 259, 264);
    CHECK(hand, "你好", 269);
}

Test(encode, merges_by_rank)
{
    /* hellohello: he (256) twice, then ll (257) twice, hell (258), hello (259); not a token itself. */
    CHECK(hand, "hellohello", 259, 259);
    /* 你好你: E4BD (265) twice, 你 (266) twice, E5A5 (267), 好 (268), 你好 (269), 你 left. */
    CHECK(hand, "你好你", 269, 266);
    /* abc: bc (272) ranks before ab (273), so a stays alone. */
    CHECK(hand, "abc", 97, 272);
    /* world: or (261), ld (263); "orld" is no token. */
    CHECK(hand, "world", 119, 261, 263);
}

Test(encode, ties_go_left)
{
    /* aaa: the pairs at 0 and 1 are both aa (270); the leftmost merges. */
    CHECK(hand, "aaa", 270, 97);
    /* aaaa is a token; aaaaa: aa at 0, aa at 2, then aaaa (271), a left. */
    CHECK(hand, "aaaa", 271);
    CHECK(hand, "aaaaa", 271, 97);
}

Test(encode, pre_split)
{
    /* Digits split in threes: 1234 is a token but the pieces are 123 and 4. */
    CHECK(hand, "1234", 275, '3', '4');
    /* Two spaces before a word: the first is its own piece (\s+(?!\S)), the second joins " world". */
    CHECK(hand, "hello  world", 259, ' ', 264);
    /* A contraction is its own piece: "'ll" never merges with "he". */
    CHECK(hand, "he'll", 256, '\'', 257);
    CHECK(hand, "HE'LL", 'H', 'E', '\'', 'L', 'L');
    /* A newline run after punctuation stays with it; text after a newline starts a new piece. */
    CHECK(hand, "ab.\n\nab", 273, '.', '\n', '\n', 273);
}

Test(encode, other_pattern)
{
    struct tok_opts opts = {.pattern = "[0-9]+|[^0-9]+"};
    struct tok *t = load_fixture("hand.tiktoken", &opts);

    /* One piece of digits now: the token 1234 itself. */
    CHECK(t, "1234", 274);
    tok_free(t);

    /* cl100k keeps a run of letters whole; o200k cuts it before a capital. */
    CHECK(hand, "xdAb", 'x', 277, 'b');
    opts.pattern = TOK_PATTERN_O200K;
    t = load_fixture("hand.tiktoken", &opts);
    CHECK(t, "xdAb", 'x', 'd', 'A', 'b');
    CHECK(t, "hello world", 259, 264);
    CHECK(t, "1234", 275, '3', '4');
    tok_free(t);
}

Test(encode, invalid_utf8)
{
    /* 0xff never matches the pattern: it is a piece of its own, and "world" another. */
    CHECK(hand, "hello\xffworld", 259, 0xff, 119, 261, 263);
    /* A truncated 你 (E4 BD) at the end: one piece, the token 265. */
    CHECK(hand, "ab\xe4\xbd", 273, 265);
    /* Overlong and surrogate encodings are invalid too. */
    CHECK(hand, "\xc0\xaf\xed\xa0\x80", 0xc0, 0xaf, 0xed, 0xa0, 0x80);
}

Test(encode, nobufs)
{
    uint32_t ids[2];
    size_t n = 0;

    /* hello, " world", then " hello": a space and hello. */
    cr_assert_eq(tok_encode(hand, "hello world hello", 17, ids, 2, &n), -ENOBUFS);
    cr_assert_eq(n, 4);
    cr_assert_eq(ids[0], 259);
    cr_assert_eq(ids[1], 264);
    cr_assert_eq(tok_encode(hand, "hello", 5, NULL, 0, &n), -ENOBUFS);
    cr_assert_eq(n, 1);
    cr_assert_eq(tok_encode(NULL, "hello", 5, ids, 2, &n), ADS_EINVAL);
    cr_assert_eq(tok_encode(hand, "", 0, ids, 2, &n), 0);
    cr_assert_eq(n, 0);
}

Test(encode, decode)
{
    const uint32_t ids[] = {259, 264, 269};
    char buf[32];
    size_t n = 0;

    cr_assert_eq(tok_decode(hand, ids, 3, buf, sizeof(buf), &n), 0);
    cr_assert_eq(n, 17);
    cr_assert_arr_eq(buf, "hello world你好", 17);
    cr_assert_eq(tok_decode(hand, ids, 3, buf, 5, &n), -ENOBUFS);
    cr_assert_eq(n, 17);
    const uint32_t bad[] = {278};
    cr_assert_eq(tok_decode(hand, bad, 1, buf, sizeof(buf), &n), ADS_EINVAL);
    cr_assert_eq(tok_vocab_size(hand), 278);
}

/* ---- malformed rank files ---- */

/* The 256 single bytes, rank = byte, as a rank file. */
static char *bytes_file(size_t extra, size_t *ret_len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc(256 * 16 + extra);
    size_t n = 0;

    cr_assert_not_null(s);
    for (int b = 0; b < 256; b++)
        n += (size_t)snprintf(s + n, 16, "%c%c== %d\n", b64[b >> 2], b64[(b & 3) << 4], b);
    *ret_len = n;
    return s;
}

static void refused(const char *tail, const char *want)
{
    size_t n;
    char *s = bytes_file(strlen(tail) + 1, &n);
    struct tok *t = NULL;
    int r;

    memcpy(s + n, tail, strlen(tail));
    r = tok_from_mem(s, n + strlen(tail), &t, &diag);
    free(s);
    cr_assert_eq(r, ADS_EINVAL, "\"%s\" gives %d", tail, r);
    cr_assert_null(t);
    cr_assert(strstr(diag.message, want) != NULL, "message \"%s\" lacks \"%s\"", diag.message, want);
}

Test(load, bytes_only)
{
    size_t n;
    char *s = bytes_file(0, &n);
    struct tok *t = NULL;
    uint32_t ids[8];
    size_t got;

    cr_assert_eq(tok_from_mem(s, n, &t, &diag), 0, "%s", diag.message);
    free(s);
    cr_assert_eq(tok_vocab_size(t), 256);
    cr_assert_eq(tok_encode(t, "hi!", 3, ids, 8, &got), 0);
    cr_assert_eq(got, 3);
    cr_assert_eq(ids[2], '!');
    tok_free(t);
    tok_free(NULL);

    /* CRLF line ends, blank lines, no newline at the end, ranks with gaps. */
    static const char more[] = "YWE= 300\r\n\r\n\nYWI= 1000";
    s = bytes_file(sizeof(more), &n);
    memcpy(s + n, more, sizeof(more) - 1);
    cr_assert_eq(tok_from_mem(s, n + sizeof(more) - 1, &t, &diag), 0, "%s", diag.message);
    free(s);
    cr_assert_eq(tok_vocab_size(t), 258);
    cr_assert_eq(tok_encode(t, "aab", 3, ids, 8, &got), 0);
    cr_assert_eq(got, 2);
    cr_assert_eq(ids[0], 300);
    cr_assert_eq(ids[1], 'b');
    cr_assert_eq(tok_encode(t, "ab", 2, ids, 8, &got), 0);
    cr_assert_eq(got, 1);
    cr_assert_eq(ids[0], 1000);
    tok_free(t);
}

Test(load, malformed_lines)
{
    /* The 256 bytes take lines 1..256. */
    refused("YWE=300\n", "line 257: expected");
    refused("YWE= 300\n\nYWI=\n", "line 259: expected");
    refused("YWE= 300\r\nYW!= 301\n", "line 258: the token is not valid padded base64");
    refused("YWE 300\n", "line 257: the token is not valid");
    refused("YWE=YWE= 300\n", "line 257: the token is not valid");
    refused("YWE= 3x\n", "line 257: the rank must be a decimal number");
    refused("YWE= -3\n", "line 257: the rank must be a decimal number");
    refused("YWE= 1000000\n", "line 257: the rank must be a decimal number below 1000000");
    refused("YWE= 99999999999999999999999\n", "line 257: the rank must");
    refused("YWE= 300\nYWI= 300\n", "line 258: rank 300 is given twice");
    refused("YWE= 5\n", "line 257: rank 5 is given twice");
    refused("YWE= 300\nYWE= 301\n", "line 258: the token is the same as rank 300's");
    refused("QQ== 300\n", "line 257: the token is the same as rank 65's");
}

Test(load, long_token)
{
    char line[512];
    size_t n = 0;

    /* 258 bytes of 'a' ("YWFh" is "aaa"): over the limit of 256. */
    for (int i = 0; i < 86; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "YWFh");
    snprintf(line + n, sizeof(line) - n, " 300\n");
    refused(line, "line 257: the token is longer than 256 bytes");
}

Test(load, missing_byte)
{
    size_t n;
    char *s = bytes_file(0, &n);
    struct tok *t = NULL;
    char *q;

    /* Blank out the line of 'A' (0x41, "QQ== 65"): line numbers stay, the byte is missing. */
    q = strstr(s, "QQ== 65\n");
    cr_assert_not_null(q);
    memset(q, '\n', 7);
    cr_assert_eq(tok_from_mem(s, n, &t, &diag), ADS_EINVAL);
    cr_assert(strstr(diag.message, "lacks the single byte 0x41") != NULL, "%s", diag.message);
    cr_assert_eq(tok_from_mem("", 0, &t, &diag), ADS_EINVAL);
    cr_assert(strstr(diag.message, "0x00") != NULL, "%s", diag.message);
    free(s);
}

Test(load, limits)
{
    struct tok *t = NULL;
    size_t big = TOK_MAX_FILE + 1u;
    char *s = calloc(big, 1);
    size_t lines = TOK_MAX_RANKS + 1u;
    char *many = malloc(lines * 2);

    cr_assert_not_null(s);
    cr_assert_eq(tok_from_mem(s, big, &t, &diag), ADS_EINVAL);
    cr_assert(strstr(diag.message, "larger than") != NULL, "%s", diag.message);
    free(s);
    cr_assert_not_null(many);
    for (size_t i = 0; i < lines; i++) {
        many[2 * i] = 'x';
        many[2 * i + 1] = '\n';
    }
    cr_assert_eq(tok_from_mem(many, lines * 2, &t, &diag), ADS_EINVAL);
    cr_assert(strstr(diag.message, "more than the limit") != NULL, "%s", diag.message);
    free(many);
}

Test(load, files_and_patterns)
{
    struct tok *t = NULL;
    struct tok_opts opts = {.pattern = "(unclosed"};
    char path[] = "/tmp/tok-test-XXXXXX";
    int fd;

    cr_assert_eq(tok_load("/nonexistent/ranks.tiktoken", &t, &diag), -ENOENT);
    cr_assert(strstr(diag.message, "/nonexistent/ranks.tiktoken") != NULL, "%s", diag.message);
    cr_assert_eq(tok_load("/tmp", &t, &diag), ADS_EINVAL);
    cr_assert(strstr(diag.message, "regular file") != NULL, "%s", diag.message);

    fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "QUFB 1\n", 7), 7);
    close(fd);
    cr_assert_eq(tok_load(path, &t, &diag), ADS_EINVAL);
    cr_assert(strstr(diag.message, path) != NULL && strstr(diag.message, "lacks the single byte") != NULL, "%s",
              diag.message);
    unlink(path);

    size_t n;
    char *s = bytes_file(0, &n);
    cr_assert_eq(tok_from_mem_opts(s, n, &opts, &t, &diag), ADS_EINVAL);
    cr_assert(strstr(diag.message, "does not compile") != NULL, "%s", diag.message);
    free(s);
    cr_assert_null(t);
}

/* ---- properties over the trained vocabulary ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static const char *const samples[] = {
    "Fresh coffee, roasted this morning, delivered to your door before you wake up.",
    "It's the best time of the year to travel; we've got deals you'll like.",
    "新鲜咖啡，今天早上烘焙，在你醒来之前送到你家门口。",
    "Mixed 中文 and English, numbers 1234567 and emoji 🎉🚀👩‍👩‍👧 too!",
    "  leading spaces\n\n\ttabs\r\n and trailing   ",
    "Ünïcödé àccents, Ελληνικά, русский, العربية, हिन्दी, 日本語のテキスト",
    "\xff\xfe invalid \xc3\x28 sequences \xe2\x82 mid-text \xf0\x9f\x98",
    "",
};

static void round_trip(const struct tok *t, const char *s, size_t len)
{
    size_t cap = len + 1;
    uint32_t *ids = malloc(cap * sizeof(*ids));
    char *back = malloc(len + 1);
    size_t n = 0, blen = 0;

    cr_assert(ids != NULL && back != NULL);
    cr_assert_eq(tok_encode(t, s, len, ids, cap, &n), 0);
    cr_assert(n <= tok_estimate(s, len), "%zu tokens for %zu bytes", n, len);
    cr_assert(n <= len);
    cr_assert_eq(tok_count(t, s, len), n);
    cr_assert_eq(tok_decode(t, ids, n, back, len + 1, &blen), 0);
    cr_assert_eq(blen, len);
    cr_assert(memcmp(back, s, len) == 0, "round trip of \"%.*s\"", (int)(len < 60 ? len : 60), s);
    free(ids);
    free(back);
}

Test(props, round_trip_and_bound)
{
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        round_trip(trained, samples[i], strlen(samples[i]));
    /* The trained vocabulary does compress its own kind of text. */
    cr_assert_lt(tok_count(trained, samples[0], strlen(samples[0])), strlen(samples[0]) / 2);
}

Test(props, random_bytes)
{
    char buf[600];

    for (int round = 0; round < 300; round++) {
        size_t len = rnd() % sizeof(buf);
        for (size_t i = 0; i < len; i++) {
            /* Mostly text-like bytes, sometimes anything. */
            uint32_t x = rnd();
            buf[i] = x % 4 == 0 ? (char)((x >> 8) & 0xff) : " aehlotsw\n,.'你好"[(x >> 8) % 16];
        }
        round_trip(trained, buf, len);
        round_trip(hand, buf, len);
    }
}

Test(props, estimate)
{
    cr_assert_eq(tok_estimate("anything", 8), 8);
    cr_assert_eq(tok_count(NULL, "anything", 8), 8);
    cr_assert_eq(tok_count(NULL, NULL, 0), 0);
    cr_assert_eq(tok_count(trained, NULL, 0), 0);
}

/*
 * A megabyte of one character is a single piece (or a few): merging it must
 * stay fast (O(n log n); the test's timeout is the check, generous for the
 * sanitizer build).
 */
Test(props, long_pieces, .timeout = 60)
{
    size_t len = 1u << 20;
    char *s = malloc(len);
    uint32_t *ids = malloc(len * sizeof(*ids));
    size_t n = 0;

    cr_assert(s != NULL && ids != NULL);
    memset(s, 'a', len);
    /* aaaa (271) 2^18 times. */
    cr_assert_eq(tok_encode(hand, s, len, ids, len, &n), 0);
    cr_assert_eq(n, len / 4);
    cr_assert_eq(ids[0], 271);
    cr_assert_eq(ids[n - 1], 271);
    /* A quarter of that for the other kinds of long runs: the sanitizer build is slow. */
    len /= 4;
    memset(s, ' ', len);
    round_trip(trained, s, len);
    memset(s, '\n', len);
    round_trip(trained, s, len);
    memset(s, '7', len);
    round_trip(trained, s, len);
    for (size_t i = 0; i + 3 <= len; i += 3)
        memcpy(s + i, "你", 3);
    round_trip(trained, s, len - len % 3);
    for (size_t i = 0; i < len; i++)
        s[i] = (char)(rnd() & 0xff);
    round_trip(trained, s, len);
    free(s);
    free(ids);
}

struct job {
    const struct tok *t;
    size_t n;
    uint32_t first_ids[16];
};

static void *worker(void *arg)
{
    struct job *j = arg;
    char text[4096];
    size_t len = 0;

    /* The samples over and over, as long as the next one fits. */
    for (size_t i = 0;; i++) {
        const char *s = samples[i % (sizeof(samples) / sizeof(samples[0]))];
        size_t l = strlen(s);
        if (len + l > sizeof(text))
            break;
        memcpy(text + len, s, l);
        len += l;
    }
    for (int k = 0; k < 200; k++) {
        uint32_t ids[4096];
        size_t n = 0;
        if (tok_encode(j->t, text, len, ids, 4096, &n) != 0 || (j->n != 0 && n != j->n))
            return NULL;
        j->n = n;
        memcpy(j->first_ids, ids, sizeof(j->first_ids));
    }
    return j;
}

Test(props, threads)
{
    pthread_t th[4];
    struct job jobs[4];

    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 4; i++) {
        jobs[i].t = trained;
        cr_assert_eq(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *res = NULL;
        pthread_join(th[i], &res);
        cr_assert_eq(res, &jobs[i], "thread %d saw different encodings", i);
        cr_assert_eq(jobs[i].n, jobs[0].n);
        cr_assert_arr_eq(jobs[i].first_ids, jobs[0].first_ids, sizeof(jobs[0].first_ids));
    }
}
