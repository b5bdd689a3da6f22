#include "genfix.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adsmith/doc.h"

int genfix_brief_of_json(const char *json, struct gen_brief *ret)
{
    msgpack_zone zone;
    msgpack_object root;
    struct ads_diag d;
    int rc;

    msgpack_zone_init(&zone, 4096);
    rc = doc_parse(DOC_JSON, json, strlen(json), &zone, &root, &d);
    cr_assert_eq(rc, 0, "doc_parse: %s", d.message);
    rc = gen_brief_from_doc(&root, ret, &d);
    msgpack_zone_destroy(&zone);
    return rc;
}

void genfix_demo_brief(struct gen_brief *ret)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[1024], *text;
    FILE *f;
    long n;

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is not set");
    snprintf(path, sizeof(path), "%s/schemas/examples/campaign-demo.json", root);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    cr_assert_eq(genfix_brief_of_json(text, ret), 0);
    free(text);
}

void genfix_double_start(struct genfix_double *d)
{
    const char *bin = getenv("ADSMITH_OPENAI_DOUBLE");
    int in[2], out[2];
    char line[64];
    FILE *f;

    cr_assert_not_null(bin, "ADSMITH_OPENAI_DOUBLE is not set");
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    d->pid = fork();
    cr_assert(d->pid >= 0);
    if (d->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(bin, bin, "test-key", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    d->stdin_fd = in[1];
    f = fdopen(out[0], "r");
    cr_assert_not_null(fgets(line, sizeof(line), f), "the double did not start");
    cr_assert_eq(sscanf(line, "PORT %d", &d->port), 1, "the double said %s", line);
    fclose(f);
    snprintf(d->base_url, sizeof(d->base_url), "http://127.0.0.1:%d/v1", d->port);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void genfix_double_stop(struct genfix_double *d)
{
    if (d->pid <= 0)
        return;
    close(d->stdin_fd);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
}

struct sink {
    char *p;
    size_t len, cap;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct sink *s = ctx;
    size_t n = size * nmemb;

    if (s->len + n >= s->cap)
        return 0;
    memcpy(s->p + s->len, data, n);
    s->len += n;
    s->p[s->len] = '\0';
    return n;
}

long genfix_double_get(const struct genfix_double *d, const char *path, char *out, size_t cap)
{
    char url[256];
    struct sink s = {out, 0, cap};
    CURL *h = curl_easy_init();
    long status = 0;

    out[0] = '\0';
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", d->port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    cr_assert_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status;
}

unsigned genfix_double_count(const struct genfix_double *d, const char *model)
{
    char body[8192];
    cJSON *root;
    const cJSON *v;
    unsigned n = 0;

    cr_assert_eq(genfix_double_get(d, "/stats", body, sizeof(body)), 200);
    root = cJSON_Parse(body);
    cr_assert_not_null(root);
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "models"), model);
    if (cJSON_IsNumber(v))
        n = (unsigned)v->valuedouble;
    cJSON_Delete(root);
    return n;
}
