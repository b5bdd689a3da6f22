/*
 * adsmith-bench-ortb: the cost of reading an OpenRTB request, per request.
 *
 * For each request body in a folder (default tests/bid/fixtures), measures
 * in the same run:
 *   cjson   cJSON_Parse + cJSON_Delete of the body: the baseline, what any
 *           reader built on cJSON pays at least;
 *   doc     doc_parse() into a reused zone: cJSON on the per-thread arena
 *           plus the strict checks (UTF-8, number grammar, depth) and the
 *           conversion to the msgpack_object tree;
 *   ortb    ortb_parse() + ortb_imp_query() for every imp: what the bid path
 *           pays before the campaign index;
 * each as the median over rounds of the mean of a timed loop (the three take
 * turns within each round; time is the thread's CPU time), and prints one
 * row per body and the ratio ortb / cjson. Exits 1 if a body fails to parse.
 *
 *   adsmith-bench-ortb [-r rounds] [-t ms_per_round] [FIXTURE_DIR]
 *
 * Run it pinned to one core: taskset -c 1 adsmith-bench-ortb tests/bid/fixtures
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/doc.h"
#include "adsmith/ortb.h"
#include "benchkit.h"

enum which { W_CJSON, W_DOC, W_ORTB };

static struct ortb_scratch *scr;
static msgpack_zone zone;
static volatile uint32_t sink;

static int run_once(int which, const char *body, size_t len)
{
    switch ((enum which)which) {
    case W_CJSON: {
        cJSON *j = cJSON_ParseWithLength(body, len);
        if (j == NULL)
            return -1;
        sink += (uint32_t)j->type;
        cJSON_Delete(j);
        return 0;
    }
    case W_DOC: {
        msgpack_object o;
        msgpack_zone_clear(&zone);
        if (doc_parse(DOC_JSON, body, len, &zone, &o, NULL) != 0)
            return -1;
        sink += o.type;
        return 0;
    }
    case W_ORTB: {
        const struct ortb_req *r;
        struct cidx_query q;
        if (ortb_parse(scr, DOC_JSON, body, len, &r, NULL, NULL) != 0)
            return -1;
        for (uint32_t i = 0; i < r->nimps; i++) {
            ortb_imp_query(r, i, 1767225600, &q);
            sink += q.formats;
        }
        return 0;
    }
    }
    return -1;
}

int main(int argc, char **argv)
{
    const char *dir = "tests/bid/fixtures";
    int rounds = 31, opt;
    double ms = 5, sum[3] = {0, 0, 0};
    char *names[256];
    size_t n = 0, i;
    int nf;

    while ((opt = getopt(argc, argv, "r:t:")) != -1) {
        switch (opt) {
        case 'r': rounds = (int)strtol(optarg, NULL, 10); break;
        case 't': ms = strtod(optarg, NULL); break;
        default: fprintf(stderr, "usage: %s [-r rounds] [-t ms_per_round] [FIXTURE_DIR]\n", argv[0]); return 2;
        }
    }
    if (rounds < 1 || rounds > 101 || !(ms > 0)) {
        fprintf(stderr, "rounds must be 1..101 and ms > 0\n");
        return 2;
    }
    if (optind < argc)
        dir = argv[optind];
    if ((nf = bk_fixtures(dir, names)) < 0) {
        fprintf(stderr, "cannot open %s\n", dir);
        return 2;
    }
    n = (size_t)nf;
    if (ortb_scratch_new(&scr) != 0 || !msgpack_zone_init(&zone, ORTB_ZONE_CHUNK))
        return 1;

    printf("# median of %d rounds of ~%.1f ms of thread CPU time each; CPU ns per request\n", rounds, ms);
    printf("%-52s %6s %4s %9s %9s %9s %7s\n", "body", "bytes", "imps", "cjson", "doc", "ortb", "ortb/cj");
    for (i = 0; i < n; i++) {
        static char body[1 << 20];
        char path[4096];
        const struct ortb_req *r;
        double v[3];
        size_t len;
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if ((f = fopen(path, "rb")) == NULL)
            return 1;
        len = fread(body, 1, sizeof(body), f);
        fclose(f);
        if (ortb_parse(scr, DOC_JSON, body, len, &r, NULL, NULL) != 0) {
            fprintf(stderr, "%s does not parse\n", names[i]);
            return 1;
        }
        printf("%-52s %6zu %4u", names[i], len, r->nimps);
        if (bk_measure(run_once, 3, body, len, rounds, ms, v) != 0)
            return 1;
        for (int w = 0; w < 3; w++) {
            sum[w] += v[w];
            printf(" %9.0f", v[w]);
        }
        printf(" %7.2f\n", v[W_ORTB] / v[W_CJSON]);
        free(names[i]);
    }
    printf("%-52s %6s %4s %9.0f %9.0f %9.0f %7.2f\n", "mean over bodies", "", "", sum[0] / (double)n,
           sum[1] / (double)n, sum[2] / (double)n, sum[2] / sum[0]);
    ortb_scratch_free(scr);
    msgpack_zone_destroy(&zone);
    return 0;
}
