#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "adsmith/gen.h"
#include "genfix.h"

static struct gen_brief brief;
static struct genfix_double dbl;

static void setup(void)
{
    genfix_demo_brief(&brief);
    genfix_double_start(&dbl);
}

static void teardown(void)
{
    genfix_double_stop(&dbl);
}

TestSuite(openai, .init = setup, .fini = teardown, .timeout = 60);

static struct gen_openai_cfg cfg(const char *model, bool stream)
{
    struct gen_openai_cfg c = {
        .name = "double",
        .base_url = dbl.base_url,
        .model = model,
        .api_key = "test-key",
        .timeout_ms = 2000,
        .retries = 2,
        .backoff_base_ms = 10,
        .backoff_max_ms = 50,
        .retry_after_max_ms = 100,
        .stream = stream,
        .json_mode = true,
        .temperature = 0.7,
    };
    return c;
}

static struct gen_ask ask(void)
{
    struct gen_ask a = {.locale = "en-US", .segment = "coffee_lovers", .count = 3, .seed = 11};

    return a;
}

static int run(struct gen_backend *be, struct gen_text *t, size_t *n, struct gen_usage *u, struct ads_diag *d)
{
    struct gen_ask a = ask();

    memset(u, 0xAB, sizeof(*u));
    return gen_run(be, &brief, &a, NULL, NULL, t, GEN_MAX_VARIANTS, n, u, d);
}

static struct gen_backend *backend(struct gen_openai_cfg c)
{
    struct gen_backend *be;

    cr_assert_eq(gen_openai_new(&c, &be), 0);
    return be;
}

static void all_pass(const struct gen_text *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct gen_verdict v;

        cr_assert_eq(gen_check(&brief, &t[i], &v), 0);
        cr_assert_eq(v.reason, GEN_OK, "variant %zu: %s %s %s", i, gen_reason_name(v.reason), v.field, v.term);
        cr_assert_str_eq(t[i].ai_label, "AI-generated");
    }
}

Test(openai, ok_json)
{
    struct gen_backend *be = backend(cfg("ok", false));
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    size_t n;
    char last[GEN_PROMPT_CAP + 8192];
    cJSON *req;

    cr_assert_eq(run(be, t, &n, &u, &d), 0, "%s", d.message);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(t[0].title, "Northwind autumn blend");
    cr_assert_str_eq(t[1].title, "Meet Northwind, roasted for {{city}}");
    all_pass(t, n);
    cr_assert_eq(u.prompt, 321);
    cr_assert_eq(u.completion, 87);
    cr_assert_eq(u.cached, 128);
    cr_assert_eq(u.reasoning, 9);
    cr_assert(!u.estimated);
    cr_assert_eq(genfix_double_count(&dbl, "ok"), 1);
    cr_assert_str_eq(gen_backend_name(be), "double");

    /* The request as the provider saw it. */
    cr_assert_eq(genfix_double_get(&dbl, "/last", last, sizeof(last)), 200);
    req = cJSON_Parse(last);
    cr_assert_not_null(req);
    cr_assert_str_eq(cJSON_GetObjectItem(req, "model")->valuestring, "ok");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(req, "messages")), 2);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(req, "response_format"), "type")->valuestring,
                     "json_object");
    cr_assert_eq(cJSON_GetObjectItem(req, "max_tokens")->valueint, 1200);
    cr_assert_eq(cJSON_GetObjectItem(req, "seed")->valueint, 11);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(req, "stream")));
    cr_assert_null(cJSON_GetObjectItem(req, "stream_options"));
    cJSON_Delete(req);
    gen_backend_free(be);
}

Test(openai, ok_stream_with_usage)
{
    struct gen_backend *be = backend(cfg("ok", true));
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    size_t n;
    char last[GEN_PROMPT_CAP + 8192];
    cJSON *req;

    cr_assert_eq(run(be, t, &n, &u, &d), 0, "%s", d.message);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(t[2].cta, "Try it today");
    all_pass(t, n);
    cr_assert_eq(u.prompt, 321);
    cr_assert_eq(u.completion, 87);
    cr_assert(!u.estimated);
    cr_assert_eq(genfix_double_get(&dbl, "/last", last, sizeof(last)), 200);
    req = cJSON_Parse(last);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(req, "stream")));
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(req, "stream_options"), "include_usage")));
    cJSON_Delete(req);
    gen_backend_free(be);
}

Test(openai, missing_usage_is_estimated)
{
    for (int stream = 0; stream < 2; stream++) {
        struct gen_backend *be = backend(cfg("ok-no-usage", stream));
        struct gen_text t[GEN_MAX_VARIANTS];
        struct gen_usage u;
        struct ads_diag d;
        size_t n;

        cr_assert_eq(run(be, t, &n, &u, &d), 0, "%s", d.message);
        cr_assert_eq(n, 3);
        cr_assert(u.estimated);
        cr_assert_gt(u.prompt, 500, "the prompt's bytes, as no tokenizer was given");
        cr_assert_gt(u.completion, 100);
        cr_assert_eq(u.cached, 0);
        gen_backend_free(be);
    }
}

Test(openai, fenced_json_is_tolerated)
{
    struct gen_backend *be = backend(cfg("fenced", false));
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    size_t n;

    cr_assert_eq(run(be, t, &n, &u, &d), 0, "%s", d.message);
    cr_assert_eq(n, 1);
    all_pass(t, n);
    gen_backend_free(be);
}

Test(openai, http_500_is_retried_then_fails)
{
    struct gen_backend *be = backend(cfg("http-500", false));
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    size_t n = 77;

    cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM);
    cr_assert_eq(n, 77, "ret_n is written only on success");
    cr_assert_eq(genfix_double_count(&dbl, "http-500"), 3, "retries + 1 requests");
    cr_assert_eq(u.prompt + u.completion, 0, "an error status costs nothing");
    cr_assert_not_null(strstr(d.message, "500"));
    gen_backend_free(be);
}

Test(openai, http_400_is_not_retried)
{
    struct gen_backend *be = backend(cfg("http-400", false));
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    size_t n;

    cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM);
    cr_assert_eq(genfix_double_count(&dbl, "http-400"), 1);
    gen_backend_free(be);
}

Test(openai, wrong_key_is_refused)
{
    struct gen_openai_cfg c = cfg("ok", false);
    struct gen_backend *be;
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    size_t n;

    c.api_key = "wrong";
    be = backend(c);
    cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM);
    cr_assert_not_null(strstr(d.message, "401"));
    gen_backend_free(be);
}

Test(openai, http_429_then_ok)
{
    struct gen_backend *be = backend(cfg("http-429-then-ok", true));
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    size_t n;

    cr_assert_eq(run(be, t, &n, &u, &d), 0, "%s", d.message);
    cr_assert_eq(n, 3);
    cr_assert_eq(genfix_double_count(&dbl, "http-429-then-ok"), 2);
    cr_assert_eq(u.prompt, 321);
    gen_backend_free(be);
}

Test(openai, slow_answer_times_out)
{
    struct gen_openai_cfg c = cfg("slow", false);
    struct gen_backend *be;
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    size_t n;

    c.timeout_ms = 300;
    c.retries = 0;
    be = backend(c);
    cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM);
    cr_assert_not_null(strstr(d.message, "timed out"), "%s", d.message);
    cr_assert(u.estimated, "a request that reached the provider is charged its prompt");
    cr_assert_gt(u.prompt, 0);
    gen_backend_free(be);
}

Test(openai, broken_stream_charges_estimated_usage)
{
    for (int stream = 1; stream >= 0; stream--) {
        struct gen_openai_cfg c = cfg("broken-stream", stream);
        struct gen_backend *be;
        struct gen_text t[GEN_MAX_VARIANTS];
        struct gen_usage u;
        struct ads_diag d;
        size_t n;

        c.retries = 0;
        be = backend(c);
        cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM);
        cr_assert(u.estimated);
        cr_assert_gt(u.prompt, 0);
        if (stream)
            cr_assert_gt(u.completion, 0, "the content that arrived is charged");
        gen_backend_free(be);
    }
}

Test(openai, broken_stream_retries_add_up)
{
    struct gen_openai_cfg c = cfg("broken-stream", true);
    struct gen_backend *be;
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage one, three;
    struct ads_diag d;
    size_t n;

    c.retries = 0;
    be = backend(c);
    cr_assert_eq(run(be, t, &n, &one, &d), ADS_EUPSTREAM);
    gen_backend_free(be);
    c.retries = 2;
    be = backend(c);
    cr_assert_eq(run(be, t, &n, &three, &d), ADS_EUPSTREAM);
    cr_assert_eq(three.prompt, 3 * one.prompt);
    cr_assert_eq(three.completion, 3 * one.completion);
    cr_assert_eq(genfix_double_count(&dbl, "broken-stream"), 4);
    gen_backend_free(be);
}

Test(openai, unparsable_answers)
{
    const char *models[] = {"bad-json", "wrong-types"};

    for (size_t i = 0; i < 2; i++) {
        struct gen_backend *be = backend(cfg(models[i], i == 1));
        struct gen_text t[GEN_MAX_VARIANTS];
        struct gen_usage u;
        struct ads_diag d;
        size_t n;

        cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM, "%s", models[i]);
        cr_assert_eq(genfix_double_count(&dbl, models[i]), 1, "not retried");
        cr_assert_eq(u.prompt, 321, "the tokens were spent all the same");
        gen_backend_free(be);
    }
}

Test(openai, forbidden_answer_is_rejected_by_the_checks)
{
    struct gen_backend *be = backend(cfg("forbidden", true));
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    struct gen_verdict v;
    size_t n;

    cr_assert_eq(run(be, t, &n, &u, &d), 0, "%s", d.message);
    cr_assert_eq(n, 1);
    cr_assert_eq(gen_check(&brief, &t[0], &v), 0);
    cr_assert_eq(v.reason, GEN_FORBIDDEN_TERM);
    cr_assert_str_eq(v.term, "最佳");
    cr_assert_str_eq(v.field, "title");
    gen_backend_free(be);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

Test(openai, breaker_opens_refuses_and_half_opens)
{
    struct gen_openai_cfg c = cfg("fail-3-then-ok", false);
    struct gen_backend *be;
    struct gen_backend_stats st;
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    size_t n;

    c.retries = 0;
    c.breaker_failures = 2;
    c.breaker_cooldown_ms = 300;
    be = backend(c);
    cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM);
    cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM);
    /* Open: refused without a request. */
    cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM_UNAVAILABLE);
    cr_assert_eq(u.prompt + u.completion, 0);
    cr_assert_eq(genfix_double_count(&dbl, "fail-3-then-ok"), 2);
    gen_backend_stats(be, &st);
    cr_assert(st.open);
    cr_assert_eq(st.refused, 1);
    cr_assert_eq(st.requests, 2);
    /* Half-open after the cooldown: one probe; it fails, so the breaker opens again. */
    sleep_ms(350);
    cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM);
    cr_assert_eq(genfix_double_count(&dbl, "fail-3-then-ok"), 3);
    cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM_UNAVAILABLE);
    cr_assert_eq(genfix_double_count(&dbl, "fail-3-then-ok"), 3);
    /* The next probe succeeds and closes it. */
    sleep_ms(350);
    cr_assert_eq(run(be, t, &n, &u, &d), 0, "%s", d.message);
    cr_assert_eq(run(be, t, &n, &u, &d), 0, "%s", d.message);
    cr_assert_eq(genfix_double_count(&dbl, "fail-3-then-ok"), 5);
    gen_backend_stats(be, &st);
    cr_assert(!st.open);
    gen_backend_free(be);
}

Test(openai, unreachable_provider)
{
    struct gen_openai_cfg c = cfg("ok", false);
    struct gen_backend *be;
    struct gen_text t[GEN_MAX_VARIANTS];
    struct gen_usage u;
    struct ads_diag d;
    size_t n;

    c.base_url = "http://127.0.0.1:1/v1";
    c.retries = 1;
    be = backend(c);
    cr_assert_eq(run(be, t, &n, &u, &d), ADS_EUPSTREAM);
    cr_assert_eq(u.prompt + u.completion, 0, "nothing reached a model");
    gen_backend_free(be);
}

Test(openai, bad_configs)
{
    struct gen_openai_cfg c = cfg("ok", false);
    struct gen_backend *be;

    c.name = "Bad";
    cr_assert_eq(gen_openai_new(&c, &be), ADS_EINVAL);
    c = cfg("", false);
    cr_assert_eq(gen_openai_new(&c, &be), ADS_EINVAL);
    c = cfg("ok", false);
    c.retries = 11;
    cr_assert_eq(gen_openai_new(&c, &be), ADS_EINVAL);
    c = cfg("ok", false);
    c.api_key = "a\r\nX-Injected: 1";
    cr_assert_eq(gen_openai_new(&c, &be), ADS_EINVAL);
}
