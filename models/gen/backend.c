/*
 * Backend handles, the prompt, the answer parser and gen_run().
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/gen.h"
#include "internal.h"

enum kind { KIND_BUILTIN, KIND_OPENAI };

struct gen_backend {
    enum kind kind;
    char name[GEN_BACKEND_NAME_MAX + 1];
    struct gen_openai *oa;
};

static bool name_ok(const char *n)
{
    size_t len = strlen(n);

    if (len == 0 || len > GEN_BACKEND_NAME_MAX || n[0] < 'a' || n[0] > 'z')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_' || n[i] == '-'))
            return false;
    return true;
}

int gen_builtin_new(const char *name, struct gen_backend **ret)
{
    struct gen_backend *be;

    if (name == NULL)
        name = "builtin";
    if (!name_ok(name))
        return ADS_EINVAL;
    be = calloc(1, sizeof(*be));
    if (be == NULL)
        return ADS_ENOMEM;
    be->kind = KIND_BUILTIN;
    snprintf(be->name, sizeof(be->name), "%s", name);
    *ret = be;
    return 0;
}

int gen_openai_new(const struct gen_openai_cfg *cfg, struct gen_backend **ret)
{
    struct gen_backend *be;
    int rc;

    if (cfg == NULL || cfg->name == NULL || !name_ok(cfg->name))
        return ADS_EINVAL;
    be = calloc(1, sizeof(*be));
    if (be == NULL)
        return ADS_ENOMEM;
    rc = gen_openai_make(cfg, &be->oa);
    if (rc < 0) {
        free(be);
        return rc;
    }
    be->kind = KIND_OPENAI;
    snprintf(be->name, sizeof(be->name), "%s", cfg->name);
    *ret = be;
    return 0;
}

void gen_backend_free(struct gen_backend *be)
{
    if (be == NULL)
        return;
    gen_openai_free(be->oa);
    free(be);
}

const char *gen_backend_name(const struct gen_backend *be)
{
    return be->name;
}

void gen_backend_stats(struct gen_backend *be, struct gen_backend_stats *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (be->kind == KIND_OPENAI)
        gen_openai_stats(be->oa, ret);
}

static bool ask_ok(const struct gen_ask *a)
{
    return a->count >= 1 && a->count <= GEN_MAX_VARIANTS && memchr(a->locale, '\0', sizeof(a->locale)) != NULL &&
           memchr(a->segment, '\0', sizeof(a->segment)) != NULL;
}

/* The prompt. Its wording is part of GEN_PROMPT_VERSION. */
static const char system_prompt[] =
    "You write text variants of a native ad. Answer with one JSON object and nothing else, of the form "
    "{\"variants\":[{\"title\":\"...\",\"description\":\"...\",\"cta\":\"...\"}]}, with exactly the number of "
    "variants asked for. Rules: state only the product facts given, verbatim or closely paraphrased; make no "
    "other claim: no numbers, prices, percentages, superlatives, rankings or guarantees that the facts do not "
    "state. Put every required term in each variant, spelled as given. Never use a forbidden term. Keep each "
    "field within its limit in characters. Use only the {{slot}} placeholders listed, written exactly as shown "
    "(each is replaced by a value of up to the length given, which counts against the limit). Write in the "
    "language of the locale, in the brand voice given.";

int gen_prompt(const struct gen_brief *b, const struct gen_ask *a, struct buf *ret_messages_json)
{
    size_t ucap = GEN_PROMPT_CAP / 2;
    char *user;
    struct buf u;
    const char *const *def = gen_default_forbidden();

    if (!ask_ok(a))
        return ADS_EINVAL;
    user = malloc(ucap);
    if (user == NULL)
        return ADS_ENOMEM;
    buf_init(&u, user, ucap);
    buf_printf(&u, "Locale: %s\n", a->locale);
    if (a->segment[0] != '\0')
        buf_printf(&u, "Audience segment: %s\n", a->segment);
    buf_printf(&u, "Variants: %u\n", a->count);
    buf_printf(&u, "Limits in characters: title %u, description %u, cta %u\n", b->limit_title, b->limit_description,
               b->limit_cta);
    buf_printf(&u, "Brand voice: %s\n", b->voice);
    buf_puts(&u, "Facts:\n");
    for (uint32_t i = 0; i < b->n_facts; i++)
        buf_printf(&u, "- %s\n", b->facts[i]);
    if (b->n_required > 0) {
        buf_puts(&u, "Required terms:");
        for (uint32_t i = 0; i < b->n_required; i++)
            buf_printf(&u, "%s \"%s\"", i > 0 ? "," : "", b->required[i]);
        buf_puts(&u, "\n");
    }
    buf_puts(&u, "Forbidden terms:");
    for (uint32_t i = 0; i < b->n_forbidden; i++)
        buf_printf(&u, "%s \"%s\"", i > 0 ? "," : "", b->forbidden[i]);
    for (size_t i = 0; def[i] != NULL; i++)
        buf_printf(&u, "%s \"%s\"", i > 0 || b->n_forbidden > 0 ? "," : "", def[i]);
    buf_puts(&u, "\n");
    if (b->n_slots > 0) {
        buf_puts(&u, "Slots:");
        for (uint32_t i = 0; i < b->n_slots; i++)
            buf_printf(&u, "%s {{%s}} (up to %u characters)", i > 0 ? "," : "", b->slots[i].name,
                       b->slots[i].max_length);
        buf_puts(&u, "\n");
    }
    if (b->has_native) {
        buf_printf(&u, "Base creative title: %s\n", b->base_title);
        if (b->base_description[0] != '\0')
            buf_printf(&u, "Base creative description: %s\n", b->base_description);
        if (b->base_cta[0] != '\0')
            buf_printf(&u, "Base creative cta: %s\n", b->base_cta);
    }
    buf_puts(ret_messages_json, "[{\"role\":\"system\",\"content\":");
    buf_json_str(ret_messages_json, system_prompt, sizeof(system_prompt) - 1);
    buf_puts(ret_messages_json, "},{\"role\":\"user\",\"content\":");
    buf_json_str(ret_messages_json, user, u.len);
    buf_puts(ret_messages_json, "}]");
    free(user);
    return u.overflow || ret_messages_json->overflow ? ADS_EINVAL : 0;
}

static int put_field(const cJSON *v, const char *key, char *out, size_t cap, bool *cut)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, key);

    if (!cJSON_IsString(f) || f->valuestring == NULL)
        return ADS_EUPSTREAM;
    *cut = !gen_copy_cut(out, cap, f->valuestring, strlen(f->valuestring));
    return 0;
}

int gen_parse_answer(const char *content, size_t len, const struct gen_brief *b, size_t want,
                     struct gen_text *ret_texts, size_t cap, size_t *ret_n, struct ads_diag *ret_diag)
{
    const char *p = content, *end = content + len;
    cJSON *root, *vs;
    size_t n = 0;
    int rc = 0;

    /* Some models wrap JSON in a Markdown code fence even in JSON mode. */
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (end - p >= 3 && memcmp(p, "```", 3) == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *close = NULL;

        if (nl != NULL) {
            p = nl + 1;
            for (const char *q = end - 3; q >= p; q--) {
                if (memcmp(q, "```", 3) == 0) {
                    close = q;
                    break;
                }
            }
            if (close != NULL)
                end = close;
        }
    }
    root = cJSON_ParseWithLength(p, (size_t)(end - p));
    if (root == NULL)
        return ads_diag_set(ret_diag, ADS_EUPSTREAM, NULL, "the model's answer is not JSON");
    vs = cJSON_GetObjectItemCaseSensitive(root, "variants");
    if (!cJSON_IsArray(vs)) {
        cJSON_Delete(root);
        return ads_diag_set(ret_diag, ADS_EUPSTREAM, NULL, "the model's answer has no \"variants\" array");
    }
    for (const cJSON *v = vs->child; v != NULL && n < want && n < cap; v = v->next) {
        struct gen_text *t = &ret_texts[n];

        memset(t, 0, sizeof(*t));
        if (!cJSON_IsObject(v) || put_field(v, "title", t->title, sizeof(t->title), &t->title_cut) < 0 ||
            put_field(v, "description", t->description, sizeof(t->description), &t->description_cut) < 0 ||
            put_field(v, "cta", t->cta, sizeof(t->cta), &t->cta_cut) < 0) {
            rc = ads_diag_set(ret_diag, ADS_EUPSTREAM, NULL,
                              "variant %zu of the model's answer is not an object of strings title, description, "
                              "cta",
                              n);
            break;
        }
        snprintf(t->ai_label, sizeof(t->ai_label), "%s", b->ai_label);
        n++;
    }
    cJSON_Delete(root);
    if (rc == 0 && n == 0)
        rc = ads_diag_set(ret_diag, ADS_EUPSTREAM, NULL, "the model's answer has no variants");
    if (rc == 0)
        *ret_n = n;
    return rc;
}

static size_t count_or_bytes(size_t (*count)(void *ctx, const char *s, size_t n), void *ctx, const char *s, size_t n)
{
    return count != NULL ? count(ctx, s, n) : n;
}

int gen_run(struct gen_backend *be, const struct gen_brief *b, const struct gen_ask *a,
            size_t (*count)(void *ctx, const char *s, size_t n), void *count_ctx, struct gen_text *ret_texts,
            size_t cap, size_t *ret_n, struct gen_usage *ret_usage, struct ads_diag *ret_diag)
{
    struct gen_usage u = {0};
    char *mem;
    struct buf pb;
    size_t n = 0;
    int rc;

    if (ret_usage != NULL)
        *ret_usage = u;
    if (!ask_ok(a) || cap == 0)
        return ads_diag_set(ret_diag, ADS_EINVAL, NULL, "ask for 1-%d variants into room for at least one",
                            GEN_MAX_VARIANTS);
    if (be->kind == KIND_OPENAI)
        return gen_openai_run(be->oa, b, a, count, count_ctx, ret_texts, cap, ret_n, ret_usage, ret_diag);

    mem = malloc(GEN_PROMPT_CAP);
    if (mem == NULL)
        return ADS_ENOMEM;
    buf_init(&pb, mem, GEN_PROMPT_CAP);
    rc = gen_prompt(b, a, &pb);
    if (rc == 0)
        u.prompt = count_or_bytes(count, count_ctx, pb.base, pb.len);
    free(mem);
    if (rc < 0)
        return ads_diag_set(ret_diag, rc, NULL, "the prompt does not fit");
    rc = gen_builtin_run(b, a, ret_texts, cap, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        u.completion += count_or_bytes(count, count_ctx, ret_texts[i].title, strlen(ret_texts[i].title));
        u.completion += count_or_bytes(count, count_ctx, ret_texts[i].description, strlen(ret_texts[i].description));
        u.completion += count_or_bytes(count, count_ctx, ret_texts[i].cta, strlen(ret_texts[i].cta));
    }
    if (ret_usage != NULL)
        *ret_usage = u;
    *ret_n = n;
    return 0;
}
