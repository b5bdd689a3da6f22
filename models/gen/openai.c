/*
 * The OpenAI-compatible chat-completions backend: one libcurl easy handle per
 * attempt, JSON or SSE answers, retries with backoff, and a circuit breaker.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "adsmith/gen.h"
#include "internal.h"

#define BODY_CAP (256 * 1024) /* the whole answer, or the first bytes of a stream kept for errors */
#define LINE_CAP (64 * 1024)  /* one SSE line */
#define CONTENT_CAP (256 * 1024)
#define URL_MAX 512
#define MODEL_MAX 128
#define KEY_MAX 512

struct gen_openai {
    char url[URL_MAX + 32];
    char model[MODEL_MAX + 1];
    char auth[KEY_MAX + 32];
    struct gen_openai_cfg cfg; /* numbers and flags; its strings are not kept */
    pthread_mutex_t mu;
    /* Breaker state and counters, under mu. */
    uint32_t consecutive;
    bool open, probing;
    uint64_t opened_at_ms;
    uint64_t rng;
    uint64_t requests, failures, refused;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

int gen_openai_make(const struct gen_openai_cfg *cfg, struct gen_openai **ret)
{
    struct gen_openai *o;
    size_t ul;

    if (cfg->base_url == NULL || cfg->model == NULL || cfg->base_url[0] == '\0' || cfg->model[0] == '\0' ||
        strlen(cfg->base_url) > URL_MAX || strlen(cfg->model) > MODEL_MAX || cfg->retries > 10 ||
        (cfg->api_key != NULL && (strlen(cfg->api_key) > KEY_MAX || strpbrk(cfg->api_key, "\r\n") != NULL)))
        return ADS_EINVAL;
    o = calloc(1, sizeof(*o));
    if (o == NULL)
        return ADS_ENOMEM;
    ul = strlen(cfg->base_url);
    while (ul > 0 && cfg->base_url[ul - 1] == '/')
        ul--;
    snprintf(o->url, sizeof(o->url), "%.*s/chat/completions", (int)ul, cfg->base_url);
    snprintf(o->model, sizeof(o->model), "%s", cfg->model);
    if (cfg->api_key != NULL && cfg->api_key[0] != '\0')
        snprintf(o->auth, sizeof(o->auth), "Authorization: Bearer %s", cfg->api_key);
    o->cfg = *cfg;
    o->cfg.name = o->cfg.base_url = o->cfg.model = o->cfg.api_key = NULL;
    if (o->cfg.timeout_ms == 0)
        o->cfg.timeout_ms = 30000;
    if (o->cfg.backoff_base_ms == 0)
        o->cfg.backoff_base_ms = 200;
    if (o->cfg.backoff_max_ms == 0)
        o->cfg.backoff_max_ms = 10000;
    if (o->cfg.retry_after_max_ms == 0)
        o->cfg.retry_after_max_ms = 30000;
    o->rng = now_ms() ^ (uint64_t)(uintptr_t)o;
    pthread_mutex_init(&o->mu, NULL);
    *ret = o;
    return 0;
}

void gen_openai_free(struct gen_openai *o)
{
    if (o == NULL)
        return;
    pthread_mutex_destroy(&o->mu);
    free(o);
}

void gen_openai_stats(struct gen_openai *o, struct gen_backend_stats *ret)
{
    pthread_mutex_lock(&o->mu);
    ret->requests = o->requests;
    ret->failures = o->failures;
    ret->refused = o->refused;
    ret->open = o->open;
    pthread_mutex_unlock(&o->mu);
}

/* ---- one attempt ---- */

struct xfer {
    bool stream;
    char *body;
    size_t body_len;
    char *line;
    size_t line_len;
    bool line_too_big;
    char *content;
    size_t content_len;
    bool content_too_big;
    bool done, finished, stream_error, have_usage;
    struct gen_usage usage;
    int64_t retry_after_ms; /* -1: none */
};

static uint64_t num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e15)
        return 0;
    return (uint64_t)v->valuedouble;
}

static bool read_usage(const cJSON *root, struct gen_usage *ret)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");

    if (!cJSON_IsObject(u))
        return false;
    ret->prompt = num(u, "prompt_tokens");
    ret->completion = num(u, "completion_tokens");
    ret->cached = num(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details"), "cached_tokens");
    ret->reasoning = num(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens_details"), "reasoning_tokens");
    ret->estimated = false;
    return true;
}

static void add_content(struct xfer *x, const char *s, size_t n)
{
    if (x->content_len + n >= CONTENT_CAP) {
        x->content_too_big = true;
        return;
    }
    memcpy(x->content + x->content_len, s, n);
    x->content_len += n;
    x->content[x->content_len] = '\0';
}

/* One SSE line (without its line break). Only "data:" fields matter here. */
static void sse_line(struct xfer *x, char *line, size_t n)
{
    cJSON *root;
    const cJSON *choice, *delta, *c, *fr;

    if (n < 5 || memcmp(line, "data:", 5) != 0)
        return;
    line += 5;
    n -= 5;
    if (n > 0 && line[0] == ' ') {
        line++;
        n--;
    }
    if (n == 6 && memcmp(line, "[DONE]", 6) == 0) {
        x->done = true;
        return;
    }
    root = cJSON_ParseWithLength(line, n);
    if (root == NULL) {
        x->stream_error = true;
        return;
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "error") != NULL)
        x->stream_error = true;
    choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
    delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    c = cJSON_GetObjectItemCaseSensitive(delta, "content");
    if (cJSON_IsString(c) && c->valuestring != NULL)
        add_content(x, c->valuestring, strlen(c->valuestring));
    fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
    if (cJSON_IsString(fr))
        x->finished = true;
    if (read_usage(root, &x->usage))
        x->have_usage = true;
    cJSON_Delete(root);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t n = size * nmemb;

    if (x->body_len + n < BODY_CAP) {
        memcpy(x->body + x->body_len, data, n);
        x->body_len += n;
        x->body[x->body_len] = '\0';
    } else if (!x->stream) {
        return 0; /* an answer larger than any we accept: abort the transfer */
    }
    if (!x->stream)
        return n;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            size_t len = x->line_len;

            if (len > 0 && x->line[len - 1] == '\r')
                len--;
            if (!x->line_too_big)
                sse_line(x, x->line, len);
            x->line_len = 0;
            x->line_too_big = false;
        } else if (x->line_len + 1 < LINE_CAP) {
            x->line[x->line_len++] = data[i];
        } else {
            x->line_too_big = true;
        }
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t n = size * nmemb;
    char h[64];
    unsigned long v;
    int ms = 0;

    if (n >= sizeof(h))
        return n;
    memcpy(h, data, n);
    h[n] = '\0';
    if (strncasecmp(h, "retry-after-ms:", 15) == 0)
        ms = 15;
    else if (strncasecmp(h, "retry-after:", 12) == 0)
        ms = -12;
    if (ms != 0) {
        char *end;
        const char *p = h + (ms > 0 ? ms : -ms);

        while (*p == ' ')
            p++;
        v = strtoul(p, &end, 10);
        if (end != p && v < 86400000UL && (*end == '\r' || *end == '\n' || *end == '\0' || *end == ' ' || *end == '.'))
            x->retry_after_ms = ms > 0 ? (int64_t)v : (int64_t)v * 1000;
    }
    return n;
}

enum outcome {
    OUT_OK,
    OUT_RETRY,      /* 429, 408, 5xx: nothing was charged */
    OUT_TRANSPORT,  /* timeout, connection or stream broken: retryable, maybe charged */
    OUT_FATAL,      /* another status: not retried, does not open the breaker */
    OUT_BAD_ANSWER, /* 200 but not what we asked for */
};

struct attempt_ctx {
    struct gen_openai *o;
    const char *req;
    size_t req_len;
    size_t (*count)(void *ctx, const char *s, size_t n);
    void *count_ctx;
    size_t prompt_est; /* local count of the messages */
};

static size_t cnt(const struct attempt_ctx *ac, const char *s, size_t n)
{
    return ac->count != NULL ? ac->count(ac->count_ctx, s, n) : n;
}

static void usage_add(struct gen_usage *sum, const struct gen_usage *u)
{
    sum->prompt += u->prompt;
    sum->cached += u->cached;
    sum->completion += u->completion;
    sum->reasoning += u->reasoning;
    sum->estimated = sum->estimated || u->estimated;
}

/* Charges what an attempt that got the request through spent: the provider's
 * figures when it sent them, else the local count of the prompt and of the
 * answer received so far. */
static void charge(const struct attempt_ctx *ac, const struct xfer *x, struct gen_usage *sum)
{
    struct gen_usage u = {0};

    if (x->have_usage) {
        u = x->usage;
    } else {
        u.prompt = ac->prompt_est;
        u.completion = cnt(ac, x->content, x->content_len);
        u.estimated = true;
    }
    usage_add(sum, &u);
}

static enum outcome attempt(const struct attempt_ctx *ac, struct xfer *x, struct gen_usage *sum, struct ads_diag *diag)
{
    struct gen_openai *o = ac->o;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL, *tmp;
    CURLcode cc;
    long status = 0, req_size = 0;
    enum outcome out;

    if (h == NULL) {
        ads_diag_set(diag, ADS_EUPSTREAM, NULL, "cannot start a request");
        return OUT_FATAL;
    }
    x->body_len = x->line_len = x->content_len = 0;
    x->body[0] = x->content[0] = '\0';
    x->line_too_big = x->content_too_big = x->done = x->finished = x->stream_error = x->have_usage = false;
    memset(&x->usage, 0, sizeof(x->usage));
    x->retry_after_ms = -1;

    const char *lines[] = {"Content-Type: application/json",
                           x->stream ? "Accept: text/event-stream" : "Accept: application/json",
                           "Expect:", o->auth[0] != '\0' ? o->auth : NULL};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (lines[i] == NULL)
            continue;
        tmp = curl_slist_append(hdrs, lines[i]);
        if (tmp == NULL) {
            curl_slist_free_all(hdrs);
            curl_easy_cleanup(h);
            ads_diag_set(diag, ADS_EUPSTREAM, NULL, "out of memory for a request");
            return OUT_FATAL;
        }
        hdrs = tmp;
    }
    curl_easy_setopt(h, CURLOPT_URL, o->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, ac->req);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ac->req_len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)o->cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->cfg.timeout_ms < 10000 ? o->cfg.timeout_ms : 10000));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);

    pthread_mutex_lock(&o->mu);
    o->requests++;
    pthread_mutex_unlock(&o->mu);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &req_size);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);

    if (cc == CURLE_OK && status == 200) {
        if (!x->stream)
            return OUT_OK;
        if (x->stream_error || x->content_too_big || !(x->done || x->finished)) {
            charge(ac, x, sum);
            ads_diag_set(diag, ADS_EUPSTREAM, NULL, "the answer stream ended early or carried an error");
            return x->stream_error || x->content_too_big ? OUT_BAD_ANSWER : OUT_TRANSPORT;
        }
        return OUT_OK;
    }
    if (status != 0 && status != 200) {
        if (status == 429 || status == 408 || status >= 500) {
            ads_diag_set(diag, ADS_EUPSTREAM, NULL, "the provider answered HTTP %ld", status);
            out = OUT_RETRY;
        } else {
            ads_diag_set(diag, ADS_EUPSTREAM, NULL, "the provider refused the request: HTTP %ld", status);
            out = OUT_FATAL;
        }
        return out;
    }
    /* A transfer error: the request may have reached the model, so charge it
     * when it was sent (or when an answer began). */
    if (cc == CURLE_WRITE_ERROR) {
        charge(ac, x, sum);
        ads_diag_set(diag, ADS_EUPSTREAM, NULL, "the answer is larger than %d bytes", BODY_CAP);
        return OUT_BAD_ANSWER;
    }
    if (req_size > 0 || status == 200)
        charge(ac, x, sum);
    ads_diag_set(diag, ADS_EUPSTREAM, NULL, "%s: %s",
                 cc == CURLE_OPERATION_TIMEDOUT ? "the provider timed out" : "the request failed",
                 curl_easy_strerror(cc));
    return OUT_TRANSPORT;
}

static int build_request(const struct gen_openai *o, const struct gen_brief *b, const struct gen_ask *a,
                         struct buf *out, size_t *ret_prompt_off, size_t *ret_prompt_len)
{
    uint32_t max_out = a->max_output_tokens != 0 ? a->max_output_tokens : 400 * a->count;
    int rc;

    buf_puts(out, "{");
    buf_json_kv(out, "model", o->model);
    buf_puts(out, ",\"messages\":");
    *ret_prompt_off = out->len;
    rc = gen_prompt(b, a, out);
    if (rc < 0)
        return rc;
    *ret_prompt_len = out->len - *ret_prompt_off;
    buf_printf(out, ",\"%s\":%u", o->cfg.max_completion_tokens ? "max_completion_tokens" : "max_tokens", max_out);
    if (o->cfg.temperature >= 0)
        buf_printf(out, ",\"temperature\":%.3g", o->cfg.temperature);
    /* Some providers take the seed as a 32-bit integer. */
    buf_printf(out, ",\"seed\":%llu", (unsigned long long)(a->seed & 0x7FFFFFFFULL));
    if (o->cfg.json_mode)
        buf_puts(out, ",\"response_format\":{\"type\":\"json_object\"}");
    if (o->cfg.stream)
        buf_puts(out, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    else
        buf_puts(out, ",\"stream\":false");
    buf_puts(out, "}");
    return out->overflow ? ADS_EINVAL : 0;
}

/* The content of a non-streamed answer: choices[0].message.content. */
static int json_content(struct xfer *x, struct ads_diag *diag)
{
    cJSON *root = cJSON_ParseWithLength(x->body, x->body_len);
    const cJSON *c;

    if (root == NULL)
        return ads_diag_set(diag, ADS_EUPSTREAM, NULL, "the provider's answer is not JSON");
    if (read_usage(root, &x->usage))
        x->have_usage = true;
    c = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0),
                                         "message"),
        "content");
    if (!cJSON_IsString(c) || c->valuestring == NULL) {
        cJSON_Delete(root);
        return ads_diag_set(diag, ADS_EUPSTREAM, NULL, "the provider's answer has no choices[0].message.content");
    }
    add_content(x, c->valuestring, strlen(c->valuestring));
    cJSON_Delete(root);
    return x->content_too_big ? ads_diag_set(diag, ADS_EUPSTREAM, NULL, "the answer is too long") : 0;
}

static uint64_t backoff(struct gen_openai *o, uint32_t attempt_no, int64_t retry_after_ms)
{
    uint64_t d = o->cfg.backoff_base_ms, r;

    if (retry_after_ms >= 0)
        return (uint64_t)retry_after_ms < o->cfg.retry_after_max_ms ? (uint64_t)retry_after_ms
                                                                    : o->cfg.retry_after_max_ms;
    for (uint32_t i = 0; i < attempt_no && d < o->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > o->cfg.backoff_max_ms)
        d = o->cfg.backoff_max_ms;
    pthread_mutex_lock(&o->mu);
    o->rng = o->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    r = o->rng >> 33;
    pthread_mutex_unlock(&o->mu);
    return d / 2 + (d / 2 + 1 > 0 ? r % (d / 2 + 1) : 0); /* full jitter over [d/2, d] */
}

int gen_openai_run(struct gen_openai *o, const struct gen_brief *b, const struct gen_ask *a,
                   size_t (*count)(void *ctx, const char *s, size_t n), void *count_ctx, struct gen_text *ret_texts,
                   size_t cap, size_t *ret_n, struct gen_usage *ret_usage, struct ads_diag *ret_diag)
{
    size_t req_cap = GEN_PROMPT_CAP + 4096, poff = 0, plen = 0;
    char *req = malloc(req_cap);
    struct xfer x = {.stream = o->cfg.stream};
    struct gen_usage sum = {0};
    struct attempt_ctx ac = {.o = o, .count = count, .count_ctx = count_ctx};
    struct buf rb;
    bool probe = false, availability_failure = false;
    uint32_t tries;
    enum outcome out = OUT_FATAL;
    int rc;

    x.body = malloc(BODY_CAP);
    x.line = malloc(LINE_CAP);
    x.content = malloc(CONTENT_CAP);
    if (req == NULL || x.body == NULL || x.line == NULL || x.content == NULL) {
        rc = ADS_ENOMEM;
        goto out;
    }
    buf_init(&rb, req, req_cap);
    rc = build_request(o, b, a, &rb, &poff, &plen);
    if (rc < 0) {
        ads_diag_set(ret_diag, rc, NULL, "the request does not fit");
        goto out;
    }
    ac.req = req;
    ac.req_len = rb.len;
    ac.prompt_est = cnt(&ac, req + poff, plen);

    /* The breaker: open refuses until the cooldown has passed, then lets one
     * probe (a single attempt) through; its outcome closes or reopens it. */
    pthread_mutex_lock(&o->mu);
    if (o->open) {
        if (o->probing || now_ms() < o->opened_at_ms + o->cfg.breaker_cooldown_ms) {
            o->refused++;
            pthread_mutex_unlock(&o->mu);
            rc = ads_diag_set(ret_diag, ADS_EUPSTREAM_UNAVAILABLE, NULL,
                              "the generator backend is failing; calls resume after a cooldown");
            goto out;
        }
        o->probing = true;
        probe = true;
    }
    pthread_mutex_unlock(&o->mu);

    tries = probe ? 1 : o->cfg.retries + 1;
    for (uint32_t i = 0; i < tries; i++) {
        if (i > 0)
            sleep_ms(backoff(o, i - 1, x.retry_after_ms));
        out = attempt(&ac, &x, &sum, ret_diag);
        if (out != OUT_RETRY && out != OUT_TRANSPORT)
            break;
    }
    if (out == OUT_OK) {
        if (!x.stream)
            rc = json_content(&x, ret_diag);
        if (rc == 0 || x.content_len > 0 || x.have_usage)
            charge(&ac, &x, &sum);
        if (rc == 0)
            rc = gen_parse_answer(x.content, x.content_len, b, a->count, ret_texts, cap, ret_n, ret_diag);
    } else {
        rc = ADS_EUPSTREAM;
        availability_failure = out == OUT_RETRY || out == OUT_TRANSPORT;
    }

    pthread_mutex_lock(&o->mu);
    if (availability_failure) {
        o->failures++;
        o->consecutive++;
        if (probe || (o->cfg.breaker_failures > 0 && o->consecutive >= o->cfg.breaker_failures)) {
            o->open = true;
            o->opened_at_ms = now_ms();
        }
    } else {
        if (rc < 0)
            o->failures++;
        o->consecutive = 0;
        o->open = false;
    }
    if (probe)
        o->probing = false;
    pthread_mutex_unlock(&o->mu);
out:
    if (ret_usage != NULL)
        *ret_usage = sum;
    free(req);
    free(x.body);
    free(x.line);
    free(x.content);
    return rc;
}
