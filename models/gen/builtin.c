/*
 * The builtin generator: variants composed from the brief with a small
 * grammar of its own, deterministic for (brief, ask), no network.
 *
 * It never invents a claim: descriptions are the brief's facts, verbatim,
 * after an optional neutral frame ("Good to know: "); titles combine the
 * required terms with an opener, the base title or a fact; the cta is the
 * base creative's or a stock phrase. Facts or base texts holding a forbidden
 * term are skipped. Every field is built to its limit: a candidate that does
 * not fit is passed over, and a part that does not fit is left out.
 */
#include <stdio.h>
#include <string.h>

#include "adsmith/buf.h"
#include "adsmith/gen.h"
#include "internal.h"

struct grammar {
    const char *const *openers; /* title openers, followed by the required terms */
    const char *const *frames;  /* prefixes of the first fact in the description */
    const char *const *ctas;
    const char *colon; /* between the terms and a fact or base title */
    const char *space; /* between facts (zh: none, see fact_sep()) */
};

static const char *const en_openers[] = {"Meet", "Say hello to", "Discover", "Try", "Taste", NULL};
static const char *const en_frames[] = {"", "Good to know: ", "Here's the thing: ", "Plus: ", NULL};
static const char *const en_ctas[] = {"Order now", "Shop now", "Try it today", "Get yours", "Learn more", NULL};
static const char *const zh_openers[] = {"认识", "来试试", "发现", "品味", NULL};
static const char *const zh_frames[] = {"", "小贴士：", "好消息：", "告诉你：", NULL};
static const char *const zh_ctas[] = {"立即购买", "马上下单", "了解更多", "立即体验", NULL};

static const struct grammar en = {en_openers, en_frames, en_ctas, ": ", " "};
static const struct grammar zh = {zh_openers, zh_frames, zh_ctas, "：", ""};

static size_t list_len(const char *const *l)
{
    size_t n = 0;

    while (l[n] != NULL)
        n++;
    return n;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t fnv(const char *s, uint64_t h)
{
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001B3ULL;
    }
    return h;
}

/* a + b + c into out; an overlong result is cut and then never fits a field. */
static void join3(char *out, size_t cap, const char *a, const char *b, const char *c)
{
    struct buf o;

    buf_init(&o, out, cap);
    buf_puts(&o, a);
    buf_puts(&o, b);
    buf_puts(&o, c);
}

static bool fits(const struct gen_brief *b, const char *s, uint32_t limit, size_t cap)
{
    return strlen(s) < cap && gen_text_chars(b, s) <= limit;
}

/* A fact without its final full stop, for use in a title. */
static void fact_clause(const char *fact, char *out, size_t cap)
{
    size_t n = strlen(fact);

    if (n > 0 && fact[n - 1] == '.')
        n--;
    else if (n >= 3 && memcmp(fact + n - 3, "。", 3) == 0)
        n -= 3;
    gen_copy_cut(out, cap, fact, n);
}

static void make_title(const struct gen_brief *b, const struct grammar *g, const char *terms, uint64_t *rng,
                       const char *fact, char *out, size_t cap)
{
    char cand[4][GEN_TITLE_CAP * 2];
    char clause[GEN_FACT_MAX + 1];
    size_t nc = 0, start;

    fact_clause(fact, clause, sizeof(clause));
    if (terms[0] != '\0') {
        const char *op = g->openers[splitmix(rng) % list_len(g->openers)];

        join3(cand[nc++], sizeof(cand[0]), op, g == &en ? " " : "", terms);
        if (b->has_native && !gen_has_forbidden(b, b->base_title))
            join3(cand[nc++], sizeof(cand[0]), terms, g->colon, b->base_title);
        join3(cand[nc++], sizeof(cand[0]), terms, g->colon, clause);
    } else {
        if (b->has_native && !gen_has_forbidden(b, b->base_title))
            join3(cand[nc++], sizeof(cand[0]), b->base_title, "", "");
        join3(cand[nc++], sizeof(cand[0]), clause, "", "");
    }
    start = (size_t)(splitmix(rng) % nc);
    for (size_t k = 0; k < nc; k++) {
        const char *c = cand[(start + k) % nc];

        if (fits(b, c, b->limit_title, cap)) {
            snprintf(out, cap, "%s", c);
            return;
        }
    }
    /* Nothing fits a very tight limit: the first characters of the shortest candidate. */
    {
        const char *c = cand[nc - 1];
        size_t keep = 0, n = strlen(c);
        uint32_t chars = 0;

        for (size_t k = 0; k < nc; k++)
            if (strlen(cand[k]) < strlen(c))
                c = cand[k];
        n = strlen(c);
        while (keep < n && chars < b->limit_title) {
            size_t len;

            (void)gen_utf8_decode(c + keep, n - keep, &len);
            keep += len;
            chars++;
        }
        gen_copy_cut(out, cap, c, keep);
    }
}

static void append_if_fits(const struct gen_brief *b, char *out, size_t cap, const char *sep, const char *s,
                           uint32_t limit)
{
    char tmp[GEN_DESCRIPTION_CAP * 2];

    join3(tmp, sizeof(tmp), out, out[0] != '\0' ? sep : "", s);
    if (fits(b, tmp, limit, cap))
        snprintf(out, cap, "%s", tmp);
}

/* The separator before the next fact: a space in en; in zh none, unless the
 * text so far ends in ASCII (a fact written in a Latin script). */
static const char *fact_sep(const struct grammar *g, const char *out)
{
    size_t n = strlen(out);

    if (g->space[0] != '\0')
        return g->space;
    return n > 0 && (unsigned char)out[n - 1] < 0x80 ? " " : "";
}

static void make_description(const struct gen_brief *b, const struct grammar *g, const char *lead, uint64_t *rng,
                             const uint32_t *order, uint32_t n_order, char *out, size_t cap)
{
    const char *frame = g->frames[splitmix(rng) % list_len(g->frames)];
    char first[GEN_FACT_MAX + 64];
    /* Two facts or more when there are, all of them at times. */
    uint32_t use = n_order <= 2 ? n_order : 2 + (uint32_t)(splitmix(rng) % (n_order - 1));

    out[0] = '\0';
    if (lead[0] != '\0')
        append_if_fits(b, out, cap, "", lead, b->limit_description);
    for (uint32_t k = 0; k < use; k++) {
        const char *fact = b->facts[order[k]];

        if (k == 0) {
            join3(first, sizeof(first), frame, fact, "");
            append_if_fits(b, out, cap, fact_sep(g, out), first, b->limit_description);
            if (out[0] == '\0')
                append_if_fits(b, out, cap, "", fact, b->limit_description);
        } else {
            append_if_fits(b, out, cap, fact_sep(g, out), fact, b->limit_description);
        }
    }
}

static void make_cta(const struct gen_brief *b, const struct grammar *g, uint64_t *rng, char *out, size_t cap)
{
    const char *cand[8];
    size_t nc = 0, start;

    for (size_t i = 0; g->ctas[i] != NULL && nc < 7; i++)
        cand[nc++] = g->ctas[i];
    if (b->has_native && b->base_cta[0] != '\0' && !gen_has_forbidden(b, b->base_cta))
        cand[nc++] = b->base_cta;
    start = (size_t)(splitmix(rng) % nc);
    for (size_t k = 0; k < nc; k++) {
        if (fits(b, cand[(start + k) % nc], b->limit_cta, cap)) {
            snprintf(out, cap, "%s", cand[(start + k) % nc]);
            return;
        }
    }
    /* A limit below every phrase: cut the first one at a character boundary. */
    {
        size_t keep = 0, n = strlen(cand[0]);
        uint32_t chars = 0;

        while (keep < n && chars < b->limit_cta) {
            size_t len;

            (void)gen_utf8_decode(cand[0] + keep, n - keep, &len);
            keep += len;
            chars++;
        }
        gen_copy_cut(out, cap, cand[0], keep);
    }
}

static void make_one(const struct gen_brief *b, const struct grammar *g, const char *terms, uint64_t seed,
                     struct gen_text *t)
{
    uint64_t rng = seed;
    uint32_t order[GEN_MAX_FACTS], n = 0;
    char lead[GEN_MAX_REQUIRED * (GEN_TERM_MAX + 1) + 8];
    bool terms_in_title = true;

    for (uint32_t i = 0; i < b->n_facts; i++)
        if (!gen_has_forbidden(b, b->facts[i]))
            order[n++] = i;
    for (uint32_t i = n; i > 1; i--) { /* Fisher-Yates */
        uint32_t j = (uint32_t)(splitmix(&rng) % i), x = order[i - 1];

        order[i - 1] = order[j];
        order[j] = x;
    }
    memset(t, 0, sizeof(*t));
    make_title(b, g, terms, &rng, n > 0 ? b->facts[order[n > 1 ? 1 : 0]] : "", t->title, sizeof(t->title));
    for (uint32_t i = 0; i < b->n_required; i++)
        if (strstr(t->title, b->required[i]) == NULL)
            terms_in_title = false;
    lead[0] = '\0';
    if (!terms_in_title)
        join3(lead, sizeof(lead), terms, g == &en ? "." : "。", "");
    make_description(b, g, lead, &rng, order, n, t->description, sizeof(t->description));
    if (t->description[0] == '\0' && b->has_native && !gen_has_forbidden(b, b->base_description))
        append_if_fits(b, t->description, sizeof(t->description), "", b->base_description, b->limit_description);
    make_cta(b, g, &rng, t->cta, sizeof(t->cta));
}

int gen_builtin_run(const struct gen_brief *b, const struct gen_ask *a, struct gen_text *ret_texts, size_t cap,
                    size_t *ret_n)
{
    const struct grammar *g = strncmp(a->locale, "zh", 2) == 0 ? &zh : &en;
    char terms[GEN_MAX_REQUIRED * (GEN_TERM_MAX + 1) + 1];
    uint64_t base = a->seed ^ fnv(a->locale, 0xCBF29CE484222325ULL) ^ (fnv(a->segment, 0x84222325ULL) << 1);
    size_t want = a->count < cap ? a->count : cap;

    struct buf tb;

    buf_init(&tb, terms, sizeof(terms));
    for (uint32_t i = 0; i < b->n_required; i++) {
        if (i > 0)
            buf_puts(&tb, " ");
        buf_puts(&tb, b->required[i]);
    }
    for (size_t i = 0; i < want; i++) {
        uint64_t s = base + (uint64_t)i * 0x2545F4914F6CDD1DULL;

        /* Reroll a few times for a title and a description unlike the
         * earlier ones; the grammar is small, so a long run may still repeat. */
        for (int tries = 0; tries < 8; tries++, s = s * 6364136223846793005ULL + 1442695040888963407ULL) {
            bool dup = false;

            make_one(b, g, terms, s, &ret_texts[i]);
            for (size_t k = 0; k < i && !dup; k++)
                dup = strcmp(ret_texts[k].title, ret_texts[i].title) == 0 ||
                      strcmp(ret_texts[k].description, ret_texts[i].description) == 0;
            if (!dup)
                break;
        }
        snprintf(ret_texts[i].ai_label, sizeof(ret_texts[i].ai_label), "%s", b->ai_label);
    }
    *ret_n = want;
    return 0;
}
