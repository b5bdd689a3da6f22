/* Shared fixtures of the bid tests (bidfix.h). */
#include "bidfix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adsmith/ctr.h"

static struct ctr_value tok(uint32_t f, const char *text)
{
    return (struct ctr_value){.field = f, .kind = CTR_CAT, .token = ctr_hash(text, strlen(text), 0), .x = 1};
}

int bidfix_model(struct rank_model **ret)
{
    static const char *const camps[] = {"c1", "a", "b", "c"};
    static const char *const fmts[] = {"banner", "native"};
    const struct rank_train_opts o = {
        .seed = 1, .l1 = 0.1, .l2 = 1, .alpha = 0.1, .epochs = 3, .bits = 10, .folds = 1, .min_count = 1};
    struct ctr_schema *schema = calloc(1, sizeof(*schema));
    struct ctr_row *row = calloc(1, sizeof(*row));
    struct rank_trainer *t = NULL;
    struct ads_diag d = {{0}, {0}};
    char path[64];
    int rc, fd = -1;

    snprintf(path, sizeof(path), "/tmp/adsmith-bidfix-XXXXXX");
    rc = schema == NULL || row == NULL ? ADS_ENOMEM : 0;
    if (rc == 0) {
        rank_schema_adsmith(schema);
        rc = rank_trainer_new(schema, &o, &t, &d);
    }
    for (uint32_t i = 0; i < 600 && rc == 0; i++) {
        const char *c = camps[i % 4], *f = fmts[(i / 4) % 2];
        row->n = 0;
        row->line = i + 1;
        row->v[row->n++] = tok(RANK_F_DOMAIN, "news.example");
        row->v[row->n++] = tok(RANK_F_FORMAT, f);
        row->v[row->n++] = tok(RANK_F_CAMPAIGN, c);
        row->label = (i % 7 == 0 || (strcmp(c, "c1") == 0 && f[0] == 'b' && i % 3 == 0)) ? 1.0f : 0.0f;
        rc = rank_trainer_add(t, row);
    }
    if (rc == 0)
        rc = rank_trainer_fit(t, NULL, NULL, &d);
    if (rc == 0 && (fd = mkstemp(path)) < 0)
        rc = ADS_EINTERNAL;
    if (fd >= 0)
        close(fd);
    if (rc == 0)
        rc = rank_trainer_write(t, path, &d);
    if (rc == 0)
        rc = rank_model_open(path, ret, &d);
    if (fd >= 0)
        unlink(path);
    rank_trainer_free(t);
    free(schema);
    free(row);
    return rc;
}

char *bidfix_example(const char *name)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[512];
    FILE *f;
    char *text;
    long len;

    snprintf(path, sizeof(path), "%s/schemas/examples/%s", root != NULL ? root : ".", name);
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = len > 0 ? malloc((size_t)len + 1) : NULL;
    if (text != NULL && fread(text, 1, (size_t)len, f) == (size_t)len) {
        text[len] = '\0';
    } else {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

char *bidfix_campaign(uint32_t i)
{
    static const char *const curs[] = {"USD", "EUR", "GBP"};
    static const char *const formats[] = {"[\"banner\",\"native\",\"video\"]", "[\"banner\"]", "[\"native\"]",
                                          "[\"video\"]", "[\"banner\",\"video\"]"};
    /* every banner size the fixtures offer, and a few common ones */
    static const char sizes[] =
        "[{\"w\":300,\"h\":250},{\"w\":300,\"h\":600},{\"w\":320,\"h\":50},{\"w\":320,\"h\":250},"
        "{\"w\":720,\"h\":1366},{\"w\":728,\"h\":90},{\"w\":1024,\"h\":576},"
        "{\"w\":1080,\"h\":1920},{\"w\":160,\"h\":600},{\"w\":970,\"h\":250}]";
    /* every deal id of the fixtures */
    static const char deals[] = "\"deals\":[\"123\",\"1452f.eadb4.7aaa\",\"1452f.eadb4.f9bc\",\"333\",\"444\","
                                "\"AB-Agency1-0001\",\"V123\",\"XY-Agency2-0001\"],";
    size_t cap = 8192;
    char *out = malloc(cap);
    char bid[160];
    int n;

    if (out == NULL)
        return NULL;
    if (i % 4 == 3)
        snprintf(bid, sizeof(bid), "{\"strategy\":\"target_cpc\",\"amount_micros\":%u}", 20000 + (i * 7919) % 200000);
    else
        snprintf(bid, sizeof(bid), "{\"strategy\":\"max_cpm\",\"amount_micros\":%u}", 500000 + (i * 104729) % 20000000);
    n = snprintf(out, cap,
                 "{\"id\":\"gen-%03u\",\"advertiser\":\"gen-adv-%u\",\"name\":\"Generated campaign %u\","
                 "\"status\":\"active\",\"currency\":\"%s\",\"flight\":{\"start\":0,\"time_zone\":\"UTC\"},"
                 "\"targeting\":{%s\"formats\":%s},\"bid\":%s,\"pacing\":\"asap\","
                 "\"budget\":{\"daily_micros\":100000000000,\"total_micros\":1000000000000},"
                 "\"adomain\":[\"gen%u.example\"],"
                 "\"creative_categories\":{\"taxonomy\":\"iab_content_1.0\",\"ids\":[\"IAB%u-1\"]},"
                 "\"creatives\":{\"slots\":{\"city\":{\"source\":\"attributes.city\",\"max_length\":32,"
                 "\"fallback\":\"your city\"}},"
                 "\"banner\":{\"sizes\":%s,\"html_template\":\"<a href=\\\"https://gen%u.example/\\\">"
                 "Offer %u for {{city}} &amp; friends</a>\",\"click_url\":\"https://gen%u.example/c\"},"
                 "\"native\":{\"title\":\"Offer %u in {{city}}\",\"sponsored_by\":\"Gen %u\","
                 "\"image\":{\"url\":\"https://cdn.gen%u.example/i.jpg\",\"w\":1200,\"h\":627},"
                 "\"click_url\":\"https://gen%u.example/n\"},"
                 "\"video\":{\"vast_url\":\"https://gen%u.example/vast.xml\",\"duration_s\":15}}}",
                 i, i % 10, i, curs[i % 3], i % 5 == 0 ? deals : "", formats[i % 5], bid, i, 1 + i % 20, sizes, i, i, i,
                 i, i, i, i, i);
    if (n < 0 || (size_t)n >= cap) {
        free(out);
        return NULL;
    }
    return out;
}
