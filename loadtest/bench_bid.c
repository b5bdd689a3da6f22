/*
 * adsmith-bench-bid: the CPU cost of the bid decision, per request.
 *
 * Builds an index of N generated campaigns (default 10,000; tests/bid/bidfix.c:
 * no targeting beyond formats and sizes, so that every campaign that can
 * answer an impression's format is eligible and scored: the costly case),
 * then for each request body in a folder (default tests/bid/fixtures)
 * measures in the same run:
 *   parse    ortb_parse() alone: the baseline;
 *   decide   ortb_parse() + bid_decide() (index query, blocks, deals, budget
 *            callback, scoring every eligible candidate, pricing);
 * each as the median over rounds of the mean of a timed loop (the two take
 * turns within each round; time is the thread's CPU time), and prints per
 * body the eligible and scored candidates and decide - parse, the decision's
 * own cost. The model is the default one built into the binary when this
 * build can read it, else a small one trained on the spot (printed).
 *
 *   adsmith-bench-bid [-n campaigns] [-r rounds] [-t ms_per_round] [FIXTURE_DIR]
 *
 * Run it pinned to one core: taskset -c 1 adsmith-bench-bid tests/bid/fixtures
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/bid/bidfix.h"
#include "adsmith/bid.h"
#include "adsmith/ortb.h"
#include "benchkit.h"

extern const char rank_default_model[];
extern const size_t rank_default_model_len;

static struct ortb_scratch *scr;
static struct bid_scratch *bs;
static struct bid_env env;
static struct bid_result res;
static volatile uint32_t sink;

static int spend_none(void *ctx, const struct cidx_camp *c, int64_t now, struct bid_spend *ret)
{
    (void)ctx;
    (void)c;
    (void)now;
    ret->total_micros = ret->day_micros = 0;
    return 0;
}

static int run_once(int decide, const char *body, size_t len)
{
    const struct ortb_req *r;

    if (ortb_parse(scr, DOC_JSON, body, len, &r, NULL, NULL) != 0)
        return -1;
    if (decide && bid_decide(bs, r, &env, &res) != 0)
        return -1;
    sink += decide ? res.npicks : r->nimps;
    return 0;
}

static struct cidx *build(uint32_t n)
{
    struct cidx_builder *b;
    struct cidx *ix;

    if (cidx_builder_new(&b) != 0)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        char *json = bidfix_campaign(i);
        msgpack_zone zone;
        msgpack_object doc;
        struct cidx_camp *c;
        int rc = json == NULL || !msgpack_zone_init(&zone, 8192) ? ADS_ENOMEM : 0;

        if (rc == 0) {
            rc = doc_parse(DOC_JSON, json, strlen(json), &zone, &doc, NULL);
            if (rc == 0)
                rc = cidx_camp_from_doc(&doc, &c, NULL);
            if (rc == 0)
                rc = cidx_builder_add(b, c);
            msgpack_zone_destroy(&zone);
        }
        free(json);
        if (rc != 0) {
            cidx_builder_free(b);
            return NULL;
        }
    }
    if (cidx_build(b, BIDFIX_T0, &ix) != 0)
        ix = NULL;
    cidx_builder_free(b);
    return ix;
}

int main(int argc, char **argv)
{
    const char *dir = "tests/bid/fixtures";
    int rounds = 15, opt;
    double ms = 20;
    uint32_t ncamps = 10000;
    static double parse_v[256], decide_v[256];
    const struct bid_opts opts = {85, 50000000, 10, 0.05, 0};
    struct rank_model *model = NULL;
    struct bid_fx fx;
    struct cidx *ix;
    char *names[256];
    const char *model_src = "default (embedded)";
    size_t n = 0, i;
    int nf;

    while ((opt = getopt(argc, argv, "n:r:t:")) != -1) {
        switch (opt) {
        case 'n': ncamps = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'r': rounds = (int)strtol(optarg, NULL, 10); break;
        case 't': ms = strtod(optarg, NULL); break;
        default:
            fprintf(stderr, "usage: %s [-n campaigns] [-r rounds] [-t ms_per_round] [FIXTURE_DIR]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > 101 || !(ms > 0) || ncamps < 1 || ncamps > CIDX_MAX_CAMPAIGNS) {
        fprintf(stderr, "rounds must be 1..101, ms > 0, campaigns 1..%d\n", CIDX_MAX_CAMPAIGNS);
        return 2;
    }
    if (optind < argc)
        dir = argv[optind];
    if ((nf = bk_fixtures(dir, names)) < 0) {
        fprintf(stderr, "cannot open %s\n", dir);
        return 2;
    }
    n = (size_t)nf;
    if (ortb_scratch_new(&scr) != 0 || bid_scratch_new(&bs) != 0 || bid_fx_parse(BIDFIX_FX, &fx, NULL) != 0)
        return 1;
    if (rank_model_open_mem(rank_default_model, rank_default_model_len, &model, NULL) != 0) {
        model_src = "trained on the spot (the default model's format is not readable by this build)";
        if (bidfix_model(&model) != 0)
            return 1;
    }
    if ((ix = build(ncamps)) == NULL) {
        fprintf(stderr, "cannot build the index\n");
        return 1;
    }
    env = (struct bid_env){ix, model, NULL, spend_none, NULL, &fx, &opts, BIDFIX_T0};

    printf("# %u campaigns; model %s\n", cidx_count(ix), model_src);
    printf("# median of %d rounds of ~%.1f ms of thread CPU time each; CPU us per request\n", rounds, ms);
    printf("%-52s %4s %8s %8s %9s %9s %9s\n", "body", "imps", "eligible", "scored", "parse", "decide", "decision");
    for (i = 0; i < n; i++) {
        static char body[1 << 20];
        char path[4096];
        const struct ortb_req *r;
        double v[2];
        size_t len;
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if ((f = fopen(path, "rb")) == NULL)
            return 1;
        len = fread(body, 1, sizeof(body), f);
        fclose(f);
        if (ortb_parse(scr, DOC_JSON, body, len, &r, NULL, NULL) != 0 || bid_decide(bs, r, &env, &res) != 0) {
            fprintf(stderr, "%s does not parse\n", names[i]);
            return 1;
        }
        printf("%-52s %4u %8u %8u", names[i], r->nimps, res.eligible, res.scored);
        if (bk_measure(run_once, 2, body, len, rounds, ms, v) != 0)
            return 1;
        parse_v[i] = v[0];
        decide_v[i] = v[1];
        printf(" %9.2f %9.2f %9.2f\n", v[0] / 1e3, v[1] / 1e3, (v[1] - v[0]) / 1e3);
        fflush(stdout);
        free(names[i]);
    }
    printf("%-52s %4s %8s %8s %9.2f %9.2f\n", "median over bodies", "", "", "", bk_median(parse_v, n) / 1e3,
           bk_median(decide_v, n) / 1e3);
    cidx_free(ix);
    rank_model_close(model);
    bid_scratch_free(bs);
    ortb_scratch_free(scr);
    return 0;
}
