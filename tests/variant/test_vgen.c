/* vgen: the gen_endpoints setting (the pipeline itself runs end to end in tests/e2e/test_variants.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "adsmith/vgen.h"

static struct vgen_endpoint ep[VGEN_MAX_ENDPOINTS];
static size_t n;
static struct ads_diag diag;

static int parse(const char *spec)
{
    memset(&diag, 0, sizeof(diag));
    n = 99;
    return vgen_endpoints_parse(spec, ep, VGEN_MAX_ENDPOINTS, &n, &diag);
}

Test(vgen, endpoints_are_read_with_their_fields)
{
    cr_assert_eq(parse(" deepseek=https://api.deepseek.com/v1|deepseek-chat|DEEPSEEK_API_KEY ,"
                       "local=http://127.0.0.1:8000/v1|qwen2.5-7b|"),
                 0, "%s", diag.message);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ep[0].name, "deepseek");
    cr_assert_str_eq(ep[0].base_url, "https://api.deepseek.com/v1");
    cr_assert_str_eq(ep[0].model, "deepseek-chat");
    cr_assert_str_eq(ep[0].key_env, "DEEPSEEK_API_KEY");
    cr_assert_str_eq(ep[1].name, "local");
    cr_assert_str_eq(ep[1].key_env, "");
    cr_assert_eq(parse(""), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(parse(NULL), 0);
    cr_assert_eq(n, 0);
}

Test(vgen, bad_endpoints_are_refused_with_a_reason)
{
    static const struct {
        const char *spec, *says;
    } bad[] = {
        {"deepseek=https://x/v1|m", "NAME=BASE_URL|MODEL|KEY_ENV"},
        {"builtin=https://x/v1|m|", "not \"builtin\""},
        {"Big=https://x/v1|m|", "starting with a"},
        {"a=ftp://x|m|", "http:// or https://"},
        {"a=https://x/v1||", "model name"},
        {"a=https://x/v1|m|BAD-NAME", "environment variable"},
        {"a=https://x/v1|m|,a=https://y/v1|m|", "listed twice"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(parse(bad[i].spec), ADS_EINVAL, "%s was accepted", bad[i].spec);
        cr_assert(strstr(diag.message, bad[i].says) != NULL, "%s: %s", bad[i].spec, diag.message);
        cr_assert_str_eq(diag.pointer, "/gen_endpoints");
        cr_assert_eq(n, 99, "ret_n written on failure");
    }
}

Test(vgen, at_most_the_capacity)
{
    char spec[1024] = "";
    size_t len = 0;

    for (int i = 0; i <= VGEN_MAX_ENDPOINTS; i++)
        len += (size_t)snprintf(spec + len, sizeof(spec) - len, "%sb%d=https://x/v1|m|", i > 0 ? "," : "", i);
    cr_assert_eq(parse(spec), ADS_EINVAL);
    cr_assert(strstr(diag.message, "at most") != NULL, "%s", diag.message);
}
