/*
 * The checks every variant passes before it is stored.
 */
#include <stdlib.h>
#include <string.h>

#include "adsmith/doc.h"
#include "adsmith/gen.h"
#include "internal.h"

/*
 * Absolute claims. Chinese advertising law (广告法, art. 9 item 3) forbids
 * "国家级", "最高级", "最佳" and terms like them; the SAMR guidance and common
 * enforcement add the 最- superlatives, 第一, 唯一, 顶级, 极致 and 100%. US (FTC)
 * and EU (Directive 2005/29/EC) practice refuses unprovable absolute or
 * guarantee claims: "number one", "#1", "guaranteed", "risk-free", cure and
 * miracle claims. All in normalised form (lower case, half-width).
 */
static const char *const default_forbidden[] = {
    "最佳",
    "最好",
    "最优",
    "最强",
    "最高级",
    "最先进",
    "最低价",
    "最便宜",
    "最大",
    "国家级",
    "世界级",
    "全球级",
    "第一",
    "唯一",
    "顶级",
    "极致",
    "首选",
    "绝对",
    "万能",
    "独一无二",
    "史无前例",
    "100%",
    "best in the world",
    "world's best",
    "world\xe2\x80\x99s best",
    "best ever",
    "number one",
    "no. 1",
    "no.1",
    "#1",
    "guaranteed",
    "guarantee",
    "risk-free",
    "miracle",
    "cure",
    "cures",
    "lowest price",
    "clinically proven",
    NULL,
};

/* Claim words a fact must state before a variant may (claim heuristic). */
static const char *const superlatives[] = {
    "best",    "fastest",    "cheapest",  "lowest",   "highest", "greatest",  "most",          "only",
    "leading", "unbeatable", "unmatched", "ultimate", "perfect", "top-rated", "award-winning", "proven",
    "最",      "领先",       "冠军",      "独家",     "首个",    "首家",      "销量",          NULL,
};

static const char *const reason_names[] = {
    "ok",
    "invalid_utf8",
    "control_char",
    "empty",
    "too_long",
    "unknown_slot",
    "forbidden_term",
    "required_missing",
    "claim_outside_facts",
    "label_missing",
};

const char *gen_reason_name(enum gen_reason r)
{
    if ((size_t)r >= sizeof(reason_names) / sizeof(reason_names[0]))
        return "unknown";
    return reason_names[r];
}

const char *const *gen_default_forbidden(void)
{
    return default_forbidden;
}

static void fail(struct gen_verdict *v, enum gen_reason r, const char *field, const char *term, size_t n)
{
    v->reason = r;
    v->field = field;
    gen_copy_cut(v->term, sizeof(v->term), term, n);
}

static const struct gen_slot *find_slot(const struct gen_brief *b, const char *name, size_t n)
{
    for (uint32_t i = 0; i < b->n_slots; i++)
        if (strlen(b->slots[i].name) == n && memcmp(b->slots[i].name, name, n) == 0)
            return &b->slots[i];
    return NULL;
}

static bool slot_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > GEN_SLOT_NAME_MAX || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* The length of the {{name}} at s (0 when s does not start a well-formed one). */
static size_t slot_at(const char *s, const char **ret_name, size_t *ret_n)
{
    const char *end;

    if (s[0] != '{' || s[1] != '{')
        return 0;
    end = strstr(s + 2, "}}");
    if (end == NULL || !slot_name_ok(s + 2, (size_t)(end - s - 2)))
        return 0;
    *ret_name = s + 2;
    *ret_n = (size_t)(end - s - 2);
    return (size_t)(end - s) + 2;
}

/* Structure of one field: UTF-8, control characters, emptiness, slots, length. */
static bool check_field(const struct gen_brief *b, const char *name, const char *s, uint32_t limit, bool cut,
                        struct gen_verdict *v)
{
    size_t n = strlen(s), chars = 0;

    if (!doc_utf8_valid(s, n)) {
        fail(v, GEN_INVALID_UTF8, name, "", 0);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F) {
            fail(v, GEN_CONTROL_CHAR, name, "", 0);
            return false;
        }
    }
    if (n == 0) {
        fail(v, GEN_EMPTY, name, "", 0);
        return false;
    }
    for (size_t i = 0; i < n;) {
        const char *sn;
        size_t sl, len = slot_at(s + i, &sn, &sl);

        if (len > 0) {
            const struct gen_slot *slot = find_slot(b, sn, sl);

            if (slot == NULL) {
                fail(v, GEN_UNKNOWN_SLOT, name, s + i, len);
                return false;
            }
            chars += slot->max_length;
            i += len;
            continue;
        }
        if (s[i] == '{' && s[i + 1] == '{') {
            fail(v, GEN_UNKNOWN_SLOT, name, s + i, strnlen(s + i, 8));
            return false;
        }
        (void)gen_utf8_decode(s + i, n - i, &len);
        i += len;
        chars++;
    }
    if (cut || chars > limit) {
        fail(v, GEN_TOO_LONG, name, "", 0);
        return false;
    }
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Every number of normalised @p s must occur, as a whole number, in the facts. */
static bool numbers_in_facts(const char *s, const char *facts, struct gen_verdict *v, const char *field)
{
    for (size_t i = 0; s[i] != '\0';) {
        const char *sn;
        size_t sl, len = slot_at(s + i, &sn, &sl);
        char num[GEN_TERM_MAX + 1];
        size_t j = i;

        if (len > 0) {
            i += len;
            continue;
        }
        if (!is_digit(s[i])) {
            i++;
            continue;
        }
        while (is_digit(s[j]) || ((s[j] == '.' || s[j] == ',') && is_digit(s[j + 1])))
            j++;
        gen_copy_cut(num, sizeof(num), s + i, j - i);
        if (!gen_norm_contains(facts, num, true)) {
            fail(v, GEN_CLAIM_OUTSIDE_FACTS, field, num, strlen(num));
            return false;
        }
        i = j;
    }
    return true;
}

static bool blank(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s != ' ' && *s != '\t')
            return false;
    return true;
}

int gen_check(const struct gen_brief *b, const struct gen_text *t, struct gen_verdict *ret)
{
    static const char *const names[3] = {"title", "description", "cta"};
    const char *texts[3] = {t->title, t->description, t->cta};
    /* 0 (a brief not read by gen_brief_from_doc()) means the schema's maximum. */
    const uint32_t limits[3] = {b->limit_title != 0 ? b->limit_title : GEN_TITLE_CHARS,
                                b->limit_description != 0 ? b->limit_description : GEN_DESCRIPTION_CHARS,
                                b->limit_cta != 0 ? b->limit_cta : GEN_CTA_CHARS};
    const bool cuts[3] = {t->title_cut, t->description_cut, t->cta_cut};
    /* Normalised copies: folding never lengthens a character, so the raw sizes suffice. */
    char *norm[3], *facts;
    size_t facts_cap = (size_t)GEN_MAX_FACTS * (GEN_FACT_MAX + 2) + (size_t)GEN_MAX_REQUIRED * (GEN_TERM_MAX + 2) + 1;
    struct gen_verdict v = {.reason = GEN_OK, .field = "", .term = ""};
    char term[GEN_TERM_MAX + 1];

    for (int f = 0; f < 3; f++)
        if (!check_field(b, names[f], texts[f], limits[f], cuts[f], &v))
            goto done;

    norm[0] = malloc(GEN_TITLE_CAP);
    norm[1] = malloc(GEN_DESCRIPTION_CAP);
    norm[2] = malloc(GEN_CTA_CAP);
    facts = malloc(facts_cap);
    if (norm[0] == NULL || norm[1] == NULL || norm[2] == NULL || facts == NULL) {
        for (int f = 0; f < 3; f++)
            free(norm[f]);
        free(facts);
        return ADS_ENOMEM;
    }
    gen_norm(t->title, strlen(t->title), norm[0], GEN_TITLE_CAP);
    gen_norm(t->description, strlen(t->description), norm[1], GEN_DESCRIPTION_CAP);
    gen_norm(t->cta, strlen(t->cta), norm[2], GEN_CTA_CAP);
    {
        size_t o = 0;

        /* The claim heuristic's reference text: the facts, and the required
         * terms (a product name such as "Model 3" is no claim). */
        for (uint32_t i = 0; i < b->n_facts; i++) {
            o += gen_norm(b->facts[i], strlen(b->facts[i]), facts + o, facts_cap - o);
            if (o + 1 < facts_cap)
                facts[o++] = '\n';
        }
        for (uint32_t i = 0; i < b->n_required; i++) {
            o += gen_norm(b->required[i], strlen(b->required[i]), facts + o, facts_cap - o);
            if (o + 1 < facts_cap)
                facts[o++] = '\n';
        }
        facts[o] = '\0';
    }

    for (int f = 0; f < 3 && v.reason == GEN_OK; f++) {
        for (uint32_t i = 0; i < b->n_forbidden; i++) {
            gen_norm(b->forbidden[i], strlen(b->forbidden[i]), term, sizeof(term));
            if (gen_norm_contains(norm[f], term, false)) {
                fail(&v, GEN_FORBIDDEN_TERM, names[f], b->forbidden[i], strlen(b->forbidden[i]));
                break;
            }
        }
        for (size_t i = 0; v.reason == GEN_OK && default_forbidden[i] != NULL; i++) {
            if (gen_norm_contains(norm[f], default_forbidden[i], true))
                fail(&v, GEN_FORBIDDEN_TERM, names[f], default_forbidden[i], strlen(default_forbidden[i]));
        }
    }
    for (uint32_t i = 0; v.reason == GEN_OK && i < b->n_required; i++) {
        gen_norm(b->required[i], strlen(b->required[i]), term, sizeof(term));
        if (!gen_norm_contains(norm[0], term, false) && !gen_norm_contains(norm[1], term, false) &&
            !gen_norm_contains(norm[2], term, false))
            fail(&v, GEN_REQUIRED_MISSING, "", b->required[i], strlen(b->required[i]));
    }
    for (int f = 0; f < 3 && v.reason == GEN_OK; f++) {
        if (!numbers_in_facts(norm[f], facts, &v, names[f]))
            break;
        for (size_t i = 0; superlatives[i] != NULL; i++) {
            if (gen_norm_contains(norm[f], superlatives[i], true) && !gen_norm_contains(facts, superlatives[i], true)) {
                fail(&v, GEN_CLAIM_OUTSIDE_FACTS, names[f], superlatives[i], strlen(superlatives[i]));
                break;
            }
        }
    }
    if (v.reason == GEN_OK && (blank(b->ai_label) || strcmp(t->ai_label, b->ai_label) != 0))
        fail(&v, GEN_LABEL_MISSING, "ai_label", t->ai_label, strlen(t->ai_label));
    for (int f = 0; f < 3; f++)
        free(norm[f]);
    free(facts);
done:
    *ret = v;
    return 0;
}

size_t gen_text_chars(const struct gen_brief *b, const char *s)
{
    size_t n = strlen(s), chars = 0;

    for (size_t i = 0; i < n;) {
        const char *sn;
        size_t sl, len = slot_at(s + i, &sn, &sl);
        const struct gen_slot *slot = len > 0 ? find_slot(b, sn, sl) : NULL;

        if (slot != NULL) {
            chars += slot->max_length;
            i += len;
            continue;
        }
        (void)gen_utf8_decode(s + i, n - i, &len);
        i += len;
        chars++;
    }
    return chars;
}

bool gen_has_forbidden(const struct gen_brief *b, const char *s)
{
    size_t cap = strlen(s) + 1;
    char *norm = malloc(cap);
    char term[GEN_TERM_MAX + 1];
    bool found = false;

    if (norm == NULL)
        return true;
    gen_norm(s, cap - 1, norm, cap);
    for (uint32_t i = 0; !found && i < b->n_forbidden; i++) {
        gen_norm(b->forbidden[i], strlen(b->forbidden[i]), term, sizeof(term));
        found = gen_norm_contains(norm, term, false);
    }
    for (size_t i = 0; !found && default_forbidden[i] != NULL; i++)
        found = gen_norm_contains(norm, default_forbidden[i], true);
    free(norm);
    return found;
}
