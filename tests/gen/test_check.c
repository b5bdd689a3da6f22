#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "adsmith/gen.h"
#include "genfix.h"

static struct gen_brief brief;

static void setup(void)
{
    genfix_demo_brief(&brief);
}

/* A variant of the demo brief that passes every check. */
static void good(struct gen_text *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->title, sizeof(t->title), "Northwind autumn blend, roasted for {{city}}");
    snprintf(t->description, sizeof(t->description), "The autumn blend has caramel and hazelnut notes. %s",
             "The first bag ships free.");
    snprintf(t->cta, sizeof(t->cta), "Order now");
    snprintf(t->ai_label, sizeof(t->ai_label), "AI-generated");
}

static enum gen_reason verdict(const struct gen_text *t, struct gen_verdict *v)
{
    cr_assert_eq(gen_check(&brief, t, v), 0);
    return v->reason;
}

TestSuite(check, .init = setup);
TestSuite(brief, .init = setup);

Test(check, good_variant_passes)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    cr_assert_eq(verdict(&t, &v), GEN_OK, "%s %s %s", gen_reason_name(v.reason), v.field, v.term);
    cr_assert_str_eq(gen_reason_name(v.reason), "ok");
}

Test(check, invalid_utf8)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    memcpy(t.cta, "Order \xC3\x28", 9);
    cr_assert_eq(verdict(&t, &v), GEN_INVALID_UTF8);
    cr_assert_str_eq(v.field, "cta");
    cr_assert_str_eq(gen_reason_name(v.reason), "invalid_utf8");
}

Test(check, control_char_and_empty)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    snprintf(t.title, sizeof(t.title), "Northwind\tcoffee");
    cr_assert_eq(verdict(&t, &v), GEN_CONTROL_CHAR);
    good(&t);
    t.description[0] = '\0';
    cr_assert_eq(verdict(&t, &v), GEN_EMPTY);
    cr_assert_str_eq(v.field, "description");
}

Test(check, too_long_counts_characters_not_bytes)
{
    struct gen_text t;
    struct gen_verdict v;
    char s[GEN_CTA_CAP];

    good(&t);
    /* 25 CJK characters: 75 bytes, within the cta limit of 25 characters. */
    for (int i = 0; i < 26; i++)
        memcpy(s + 3 * i, "咖", 3);
    s[78] = '\0';
    snprintf(t.cta, sizeof(t.cta), "%.*s", 75, s);
    cr_assert_eq(verdict(&t, &v), GEN_OK, "%s", gen_reason_name(v.reason));
    snprintf(t.cta, sizeof(t.cta), "%s", s);
    cr_assert_eq(verdict(&t, &v), GEN_TOO_LONG);
    cr_assert_str_eq(v.field, "cta");
}

Test(check, slot_counts_as_its_max_length)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    /* 57 characters of text + {{city}} (max_length 32) = 89 <= 90. */
    snprintf(t.title, sizeof(t.title), "Northwind %.*s{{city}}", 47,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    cr_assert_eq(verdict(&t, &v), GEN_OK, "%s", gen_reason_name(v.reason));
    snprintf(t.title, sizeof(t.title), "Northwind %.*s{{city}}", 49,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    cr_assert_eq(verdict(&t, &v), GEN_TOO_LONG);
}

Test(check, cut_field_is_too_long)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    t.description_cut = true;
    cr_assert_eq(verdict(&t, &v), GEN_TOO_LONG);
    cr_assert_str_eq(v.field, "description");
}

Test(check, unknown_slot)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    snprintf(t.title, sizeof(t.title), "Northwind for {{first_name}}");
    cr_assert_eq(verdict(&t, &v), GEN_UNKNOWN_SLOT);
    cr_assert_str_eq(v.term, "{{first_name}}");
    snprintf(t.title, sizeof(t.title), "Northwind for {{city");
    cr_assert_eq(verdict(&t, &v), GEN_UNKNOWN_SLOT);
}

Test(check, forbidden_default_term_inside_a_sentence)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    snprintf(t.description, sizeof(t.description), "这是今年秋天最佳的Northwind咖啡。");
    cr_assert_eq(verdict(&t, &v), GEN_FORBIDDEN_TERM);
    cr_assert_str_eq(v.term, "最佳");
    cr_assert_str_eq(v.field, "description");
    cr_assert_str_eq(gen_reason_name(v.reason), "forbidden_term");
}

Test(check, forbidden_full_width_and_case)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    snprintf(t.cta, sizeof(t.cta), "ＧＵＡＲＡＮＴＥＥＤ");
    cr_assert_eq(verdict(&t, &v), GEN_FORBIDDEN_TERM);
    cr_assert_str_eq(v.term, "guaranteed");
    good(&t);
    snprintf(t.title, sizeof(t.title), "Northwind is #1");
    cr_assert_eq(verdict(&t, &v), GEN_FORBIDDEN_TERM);
    good(&t);
    snprintf(t.title, sizeof(t.title), "Northwind: １００％ arabica");
    cr_assert_eq(verdict(&t, &v), GEN_FORBIDDEN_TERM);
    cr_assert_str_eq(v.term, "100%");
}

Test(check, default_terms_respect_ascii_word_edges)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    /* "cure" is a default term; "secure" is not a cure claim. */
    snprintf(t.cta, sizeof(t.cta), "Secure yours");
    cr_assert_eq(verdict(&t, &v), GEN_OK, "%s %s", gen_reason_name(v.reason), v.term);
}

Test(check, brief_forbidden_terms)
{
    struct gen_text t;
    struct gen_verdict v;

    snprintf(brief.forbidden[0], sizeof(brief.forbidden[0]), "Cheap");
    brief.n_forbidden = 1;
    good(&t);
    snprintf(t.cta, sizeof(t.cta), "So CHEAPer");
    cr_assert_eq(verdict(&t, &v), GEN_FORBIDDEN_TERM);
    cr_assert_str_eq(v.term, "Cheap");
}

Test(check, required_missing_and_full_width_match)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    snprintf(t.title, sizeof(t.title), "Autumn blend, roasted for {{city}}");
    cr_assert_eq(verdict(&t, &v), GEN_REQUIRED_MISSING);
    cr_assert_str_eq(v.term, "Northwind");
    snprintf(t.title, sizeof(t.title), "ＮＯＲＴＨＷＩＮＤ autumn blend");
    cr_assert_eq(verdict(&t, &v), GEN_OK, "%s", gen_reason_name(v.reason));
}

Test(check, claims_outside_facts)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    snprintf(t.description, sizeof(t.description), "Northwind beans, now 20 percent off.");
    cr_assert_eq(verdict(&t, &v), GEN_CLAIM_OUTSIDE_FACTS);
    cr_assert_str_eq(v.term, "20");
    good(&t);
    snprintf(t.description, sizeof(t.description), "The fastest roast in town.");
    cr_assert_eq(verdict(&t, &v), GEN_CLAIM_OUTSIDE_FACTS);
    cr_assert_str_eq(v.term, "fastest");
    cr_assert_str_eq(gen_reason_name(v.reason), "claim_outside_facts");
    /* A number a fact states is fine. */
    snprintf(brief.facts[brief.n_facts++], sizeof(brief.facts[0]), "A bag holds 250 g of beans.");
    snprintf(t.description, sizeof(t.description), "250 g of Northwind beans.");
    cr_assert_eq(verdict(&t, &v), GEN_OK, "%s %s", gen_reason_name(v.reason), v.term);
    snprintf(t.description, sizeof(t.description), "25 g of Northwind beans.");
    cr_assert_eq(verdict(&t, &v), GEN_CLAIM_OUTSIDE_FACTS);
    /* Numbers and words of a required term are no claim. */
    snprintf(brief.required[brief.n_required++], sizeof(brief.required[0]), "Blend 7");
    snprintf(t.description, sizeof(t.description), "Northwind Blend 7, roasted every week.");
    cr_assert_eq(verdict(&t, &v), GEN_OK, "%s %s", gen_reason_name(v.reason), v.term);
}

Test(check, zero_limits_mean_the_schema_maxima)
{
    struct gen_text t;
    struct gen_verdict v;

    brief.limit_title = brief.limit_description = brief.limit_cta = 0;
    good(&t);
    cr_assert_eq(verdict(&t, &v), GEN_OK, "%s", gen_reason_name(v.reason));
}

Test(check, label_missing)
{
    struct gen_text t;
    struct gen_verdict v;

    good(&t);
    snprintf(t.ai_label, sizeof(t.ai_label), "Written by hand");
    cr_assert_eq(verdict(&t, &v), GEN_LABEL_MISSING);
    good(&t);
    snprintf(brief.ai_label, sizeof(brief.ai_label), "  ");
    snprintf(t.ai_label, sizeof(t.ai_label), "  ");
    cr_assert_eq(verdict(&t, &v), GEN_LABEL_MISSING);
    cr_assert_str_eq(gen_reason_name(v.reason), "label_missing");
}

Test(norm, full_width_and_case)
{
    char out[128];

    gen_norm("ＮＯＲＴＨＷＩＮＤ　Coffee", strlen("ＮＯＲＴＨＷＩＮＤ　Coffee"), out, sizeof(out));
    cr_assert_str_eq(out, "northwind coffee");
    gen_norm("ÉCLAIR ΚΑΦΕΣ КОФЕ", strlen("ÉCLAIR ΚΑΦΕΣ КОФЕ"), out, sizeof(out));
    cr_assert_str_eq(out, "éclair καφεσ кофе");
    cr_assert_eq(gen_norm("abcdef", 6, out, 4), 3);
    cr_assert_str_eq(out, "abc");
    cr_assert_eq(gen_chars("最佳ab", strlen("最佳ab")), 4);
}

Test(brief, demo_brief_fields)
{
    cr_assert_eq(brief.n_facts, 3);
    cr_assert_str_eq(brief.required[0], "Northwind");
    cr_assert_eq(brief.limit_title, 90);
    cr_assert_eq(brief.limit_description, 500);
    cr_assert_eq(brief.limit_cta, 25);
    cr_assert_eq(brief.variants, 3);
    cr_assert_str_eq(brief.backend, "builtin");
    cr_assert_str_eq(brief.ai_label, "AI-generated");
    cr_assert(brief.has_native);
    cr_assert_str_eq(brief.base_cta, "Order now");
    cr_assert_eq(brief.n_slots, 1);
    cr_assert_str_eq(brief.slots[0].name, "city");
    cr_assert_eq(brief.slots[0].max_length, 32);
}

Test(brief, absent_and_bad_generation)
{
    struct gen_brief *b = malloc(sizeof(*b));

    cr_assert_eq(genfix_brief_of_json("{\"id\":\"x\"}", b), ADS_ENOT_FOUND);
    cr_assert_eq(genfix_brief_of_json("{\"generation\":{\"facts\":[\"a\"],\"brand_voice\":\"v\",\"locales\":[\"en\"],"
                                      "\"variants\":30,\"ai_label\":\"AI\",\"backend\":\"builtin\"}}",
                                      b),
                 ADS_EINVAL);
    cr_assert_eq(genfix_brief_of_json("{\"generation\":{\"facts\":[\"a\"],\"brand_voice\":\"v\",\"locales\":[\"en\"],"
                                      "\"variants\":2,\"ai_label\":\"AI\",\"backend\":\"builtin\","
                                      "\"field_limits\":{\"cta\":10}}}",
                                      b),
                 0);
    cr_assert_eq(b->limit_cta, 10);
    cr_assert_eq(b->limit_title, 90);
    cr_assert(!b->has_native);
    free(b);
}

/* Writes @p term with ASCII letters upper-cased (odd @p k) and ASCII made full-width (k & 2). */
static void disguise(const char *term, unsigned k, char *out, size_t cap)
{
    size_t o = 0;

    for (const char *p = term; *p != '\0' && o + 4 < cap; p++) {
        unsigned char c = (unsigned char)*p;

        if ((k & 1) && c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 32);
        if ((k & 2) && c >= 0x21 && c <= 0x7E) {
            unsigned cp = c + 0xFEE0u;

            out[o++] = (char)(0xE0 | (cp >> 12));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else if ((k & 2) && c == ' ') {
            memcpy(out + o, "\xE3\x80\x80", 3); /* U+3000 */
            o += 3;
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

Test(check, no_default_term_gets_through_in_any_disguise)
{
    const char *const *terms = gen_default_forbidden();

    for (size_t i = 0; terms[i] != NULL; i++) {
        for (unsigned k = 0; k < 4; k++) {
            for (int f = 0; f < 3; f++) {
                struct gen_text t;
                struct gen_verdict v;
                char d[256];

                disguise(terms[i], k, d, sizeof(d));
                good(&t);
                if (f == 0)
                    snprintf(t.title, sizeof(t.title), "Northwind %s blend", d);
                else if (f == 1)
                    snprintf(t.description, sizeof(t.description), "Beans are roasted every week, %s.", d);
                else {
                    cr_assert_lt(strlen(d), sizeof(t.cta));
                    memcpy(t.cta, d, strlen(d) + 1);
                }
                cr_assert_eq(verdict(&t, &v), GEN_FORBIDDEN_TERM, "'%s' as '%s' in field %d: %s", terms[i], d, f,
                             gen_reason_name(v.reason));
            }
        }
    }
}
