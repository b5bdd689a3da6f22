/*
 * adsmith-bench-tok: the tokenizer's speed, and its ids for comparisons.
 *
 *   adsmith-bench-tok [-r rounds] [-t ms_per_round] [-p cl100k|o200k] [RANKFILE]
 *       Measures tok_count and tok_encode on a few KB of prompt-like text
 *       (a generation brief in English with some Chinese, numbers and
 *       punctuation), as the median over rounds of the mean of a timed loop
 *       (thread CPU time), and prints ns per call, ns per token and tokens per
 *       second. RANKFILE defaults to tests/tok/fixtures/trained.tiktoken.
 *       Run it pinned: taskset -c 1 adsmith-bench-tok RANKFILE
 *
 *   adsmith-bench-tok -i [-p cl100k|o200k] RANKFILE < items
 *       Reads items separated by NUL bytes from stdin and prints, for each,
 *       one line of its token ids separated by spaces (tests/tok/compare.js).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/tok.h"
#include "benchkit.h"

static const char *const brief[] = {
    "You write short display ads for a marketing campaign. Campaign: \"Summer Coffee Club\" by Brew & Co. "
    "Audience: urban commuters aged 25-44 who buy coffee at least 3 times a week. ",
    "Product facts: single-origin beans roasted every Monday; delivery in 24 hours; first bag 20% off; "
    "cancel any time. Do not claim health benefits. Do not mention competitors. ",
    "Write a headline of at most 40 characters and a body of at most 120 characters. Tone: warm, direct, a "
    "little playful. Include the phrase \"first bag 20% off\". End with the label [AI-generated]. ",
    "User context: city=Berlin, device=mobile, time_of_day=morning, interests=[\"running\", \"podcasts\"], "
    "last_purchase=2026-10-02, language=en. ",
    "Also write the Chinese version: 夏季咖啡俱乐部，每周一新鲜烘焙，24小时内送达，首袋八折，随时取消。"
    "语气温暖、直接，略带俏皮。\n\n",
    "Return JSON: {\"headline\": \"...\", \"body\": \"...\", \"headline_zh\": \"...\", \"body_zh\": \"...\"}\n",
};

static const struct tok *tk;
static uint32_t ids[1 << 16];
static volatile size_t sink;

static int run_once(int which, const char *body, size_t len)
{
    size_t n = 0;

    if (which == 0) {
        sink += tok_count(tk, body, len);
        return 0;
    }
    if (tok_encode(tk, body, len, ids, sizeof(ids) / sizeof(ids[0]), &n) != 0)
        return -1;
    sink += n;
    return 0;
}

static int print_ids(const struct tok *t)
{
    size_t cap = 1 << 20, len = 0;
    char *in = malloc(cap);
    uint32_t *out = NULL;

    if (in == NULL)
        return 1;
    for (;;) {
        size_t got = fread(in + len, 1, cap - len, stdin);
        len += got;
        if (got == 0)
            break;
        if (len == cap) {
            char *bigger = realloc(in, cap * 2);
            if (bigger == NULL)
                return 1;
            in = bigger;
            cap *= 2;
        }
    }
    out = malloc((len + 1) * sizeof(*out));
    if (out == NULL)
        return 1;
    for (size_t i = 0; i < len;) {
        const char *z = memchr(in + i, '\0', len - i);
        size_t end = z == NULL ? len : (size_t)(z - in);
        size_t n = 0;
        if (tok_encode(t, in + i, end - i, out, len + 1, &n) != 0)
            return 1;
        for (size_t k = 0; k < n; k++)
            printf(k == 0 ? "%u" : " %u", out[k]);
        putchar('\n');
        i = end + 1;
    }
    free(out);
    free(in);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = "tests/tok/fixtures/trained.tiktoken";
    struct tok_opts opts = {.pattern = NULL};
    struct ads_diag diag = {{0}, {0}};
    struct tok *t = NULL;
    int rounds = 31, opt, mode_ids = 0;
    double ms = 20, res[2];
    char text[8192];
    size_t len = 0, ntok;

    while ((opt = getopt(argc, argv, "r:t:p:i")) != -1) {
        switch (opt) {
        case 'r': rounds = (int)strtol(optarg, NULL, 10); break;
        case 't': ms = strtod(optarg, NULL); break;
        case 'i': mode_ids = 1; break;
        case 'p':
            if (strcmp(optarg, "o200k") == 0)
                opts.pattern = TOK_PATTERN_O200K;
            else if (strcmp(optarg, "cl100k") != 0) {
                fprintf(stderr, "-p takes cl100k or o200k\n");
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: %s [-r rounds] [-t ms] [-p cl100k|o200k] [-i] [RANKFILE]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > BK_MAX_ROUNDS)
        rounds = 31;
    if (optind < argc)
        path = argv[optind];
    if (tok_load_opts(path, &opts, &t, &diag) != 0) {
        fprintf(stderr, "%s\n", diag.message);
        return 1;
    }
    if (mode_ids) {
        int r = print_ids(t);
        tok_free(t);
        return r;
    }
    /* The brief twice: about 2 KB of text per copy. */
    for (int copy = 0; copy < 2; copy++) {
        for (size_t i = 0; i < sizeof(brief) / sizeof(brief[0]); i++) {
            size_t l = strlen(brief[i]);
            if (len + l > sizeof(text))
                break;
            memcpy(text + len, brief[i], l);
            len += l;
        }
    }
    tk = t;
    ntok = tok_count(t, text, len);
    if (bk_measure(run_once, 2, text, len, rounds, ms, res) != 0) {
        fprintf(stderr, "encoding failed\n");
        tok_free(t);
        return 1;
    }
    printf("rank file %s (%zu tokens), text %zu bytes -> %zu tokens (%.2f bytes/token), estimate %zu\n", path,
           tok_vocab_size(t), len, ntok, (double)len / (double)ntok, tok_estimate(text, len));
    printf("%-11s %12s %10s %14s %10s\n", "", "ns/call", "ns/token", "tokens/s", "MB/s");
    for (int k = 0; k < 2; k++)
        printf("%-11s %12.0f %10.1f %14.0f %10.1f\n", k == 0 ? "tok_count" : "tok_encode", res[k],
               res[k] / (double)ntok, (double)ntok * 1e9 / res[k], (double)len * 1e3 / res[k]);
    tok_free(t);
    return 0;
}
