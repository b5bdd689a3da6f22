#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "adsmith/gen.h"
#include "genfix.h"

static struct gen_brief brief;
static struct gen_backend *be;

static void setup(void)
{
    genfix_demo_brief(&brief);
    cr_assert_eq(gen_builtin_new(NULL, &be), 0);
}

static void teardown(void)
{
    gen_backend_free(be);
}

TestSuite(builtin, .init = setup, .fini = teardown);
TestSuite(prompt, .init = setup, .fini = teardown);

static struct gen_ask ask(const char *locale, uint64_t seed, uint32_t count)
{
    struct gen_ask a = {.count = count, .seed = seed};

    snprintf(a.locale, sizeof(a.locale), "%s", locale);
    snprintf(a.segment, sizeof(a.segment), "coffee_lovers");
    return a;
}

static size_t words(void *ctx, const char *s, size_t n)
{
    size_t w = 0;

    (void)ctx;
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && (i == 0 || s[i - 1] == ' '))
            w++;
    return w;
}

static void run_and_check(const char *locale, uint64_t seed, struct gen_text *t, size_t *n)
{
    struct gen_ask a = ask(locale, seed, 3);
    struct gen_usage u;
    struct ads_diag d;

    cr_assert_eq(gen_run(be, &brief, &a, NULL, NULL, t, GEN_MAX_VARIANTS, n, &u, &d), 0, "%s", d.message);
    cr_assert_eq(*n, 3);
    cr_assert(u.prompt > 0 && u.completion > 0);
    cr_assert(!u.estimated);
    for (size_t i = 0; i < *n; i++) {
        struct gen_verdict v;

        cr_assert_eq(gen_check(&brief, &t[i], &v), 0);
        cr_assert_eq(v.reason, GEN_OK, "%s variant %zu: %s %s '%s' | %s | %s | %s", locale, i,
                     gen_reason_name(v.reason), v.field, v.term, t[i].title, t[i].description, t[i].cta);
    }
}

Test(builtin, name)
{
    struct gen_backend *b2;

    cr_assert_str_eq(gen_backend_name(be), "builtin");
    cr_assert_eq(gen_builtin_new("Bad Name", &b2), ADS_EINVAL);
}

Test(builtin, demo_variants_pass_every_check)
{
    struct gen_text t[GEN_MAX_VARIANTS];
    size_t n;

    for (uint64_t seed = 1; seed <= 50; seed++) {
        run_and_check("en-US", seed, t, &n);
        run_and_check("zh-CN", seed, t, &n);
        run_and_check("fr", seed, t, &n);
    }
}

Test(builtin, deterministic_for_a_seed)
{
    struct gen_text a[GEN_MAX_VARIANTS], b[GEN_MAX_VARIANTS];
    size_t na, nb;
    bool differs = false;

    run_and_check("en-US", 42, a, &na);
    run_and_check("en-US", 42, b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(a, b, sizeof(a[0]) * na), 0);
    for (uint64_t seed = 43; seed < 60 && !differs; seed++) {
        run_and_check("en-US", seed, b, &nb);
        differs = memcmp(a, b, sizeof(a[0]) * na) != 0;
    }
    cr_assert(differs, "other seeds write other variants");
}

Test(builtin, variants_differ_within_a_run)
{
    struct gen_text t[GEN_MAX_VARIANTS];
    size_t n;

    run_and_check("en-US", 7, t, &n);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < i; k++)
            cr_assert(strcmp(t[i].title, t[k].title) != 0 || strcmp(t[i].description, t[k].description) != 0 ||
                      strcmp(t[i].cta, t[k].cta) != 0);
}

Test(builtin, zh_grammar_and_slots_kept)
{
    struct gen_text t[GEN_MAX_VARIANTS];
    size_t n;
    bool zh = false, slot = false;

    for (uint64_t seed = 1; seed <= 20; seed++) {
        run_and_check("zh-CN", seed, t, &n);
        for (size_t i = 0; i < n; i++) {
            zh = zh || (unsigned char)t[i].cta[0] >= 0xE0;
            slot = slot || strstr(t[i].title, "{{city}}") != NULL;
        }
    }
    cr_assert(zh, "zh locales get zh phrases");
    cr_assert(slot, "the base title's {{city}} is kept in some titles");
}

Test(builtin, tight_limits_are_respected)
{
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_ask a = ask("en-US", 3, 5);
    size_t n;

    brief.limit_title = 12;
    brief.limit_description = 60;
    brief.limit_cta = 4;
    cr_assert_eq(gen_run(be, &brief, &a, NULL, NULL, t, GEN_MAX_VARIANTS, &n, NULL, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        struct gen_verdict v;

        cr_assert_leq(gen_chars(t[i].title, strlen(t[i].title)), 12);
        cr_assert_leq(gen_chars(t[i].description, strlen(t[i].description)), 60);
        cr_assert_leq(gen_chars(t[i].cta, strlen(t[i].cta)), 4);
        cr_assert_eq(gen_check(&brief, &t[i], &v), 0);
        cr_assert_neq(v.reason, GEN_TOO_LONG);
    }
}

Test(builtin, facts_with_forbidden_terms_are_skipped)
{
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_ask a = ask("en-US", 9, 10);
    size_t n;

    snprintf(brief.facts[brief.n_facts++], sizeof(brief.facts[0]), "Voted the best in the world by our staff.");
    cr_assert_eq(gen_run(be, &brief, &a, NULL, NULL, t, GEN_MAX_VARIANTS, &n, NULL, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        struct gen_verdict v;

        cr_assert_null(strstr(t[i].description, "best in the world"));
        cr_assert_eq(gen_check(&brief, &t[i], &v), 0);
        cr_assert_eq(v.reason, GEN_OK, "%s %s", gen_reason_name(v.reason), v.term);
    }
}

Test(builtin, usage_uses_the_local_count)
{
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_ask a = ask("en-US", 1, 2);
    struct gen_usage bytes, w;
    size_t n;

    cr_assert_eq(gen_run(be, &brief, &a, NULL, NULL, t, GEN_MAX_VARIANTS, &n, &bytes, NULL), 0);
    cr_assert_eq(gen_run(be, &brief, &a, words, NULL, t, GEN_MAX_VARIANTS, &n, &w, NULL), 0);
    cr_assert_eq(bytes.completion, strlen(t[0].title) + strlen(t[0].description) + strlen(t[0].cta) +
                                       strlen(t[1].title) + strlen(t[1].description) + strlen(t[1].cta));
    cr_assert_lt(w.prompt, bytes.prompt);
    cr_assert_lt(w.completion, bytes.completion);
}

Test(builtin, bad_asks)
{
    struct gen_text t[2];
    struct gen_ask a = ask("en-US", 1, 0);
    size_t n;

    cr_assert_eq(gen_run(be, &brief, &a, NULL, NULL, t, 2, &n, NULL, NULL), ADS_EINVAL);
    a.count = GEN_MAX_VARIANTS + 1;
    cr_assert_eq(gen_run(be, &brief, &a, NULL, NULL, t, 2, &n, NULL, NULL), ADS_EINVAL);
    a.count = 5;
    cr_assert_eq(gen_run(be, &brief, &a, NULL, NULL, t, 2, &n, NULL, NULL), 0);
    cr_assert_eq(n, 2, "no more than cap are written");
}

Test(prompt, holds_the_brief_and_is_json)
{
    char mem[GEN_PROMPT_CAP];
    struct buf b;
    struct gen_ask a = ask("en-US", 1, 3);

    buf_init(&b, mem, sizeof(mem));
    cr_assert_eq(gen_prompt(&brief, &a, &b), 0);
    cr_assert(mem[0] == '[');
    cr_assert_not_null(strstr(mem, "\\\"variants\\\""));
    cr_assert_not_null(strstr(mem, "Beans are roasted every week."));
    cr_assert_not_null(strstr(mem, "{{city}}"));
    cr_assert_not_null(strstr(mem, "最佳"));
    cr_assert_not_null(strstr(mem, "Northwind"));
    buf_init(&b, mem, 100);
    cr_assert_eq(gen_prompt(&brief, &a, &b), ADS_EINVAL);
}
