/*
 * `adsmith eval`: scores a click log with a model file and prints logloss,
 * normalised entropy, AUC, calibration (Σp/Σy) and a reliability table, as
 * text or as one JSON object (--json). Rows are scored one at a time through
 * rank_model_predict_row(), the same code path as a model in service.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrio.h"

#include "adsmith/buf.h"
#include "adsmith/cli.h"
#include "adsmith/doc.h"
#include "adsmith/rank.h"

#define EVAL_JSON_MAX 16384 /* the --json object: fixed members, two paths, 10 bins */

static void eval_usage(FILE *out)
{
    fprintf(out, "usage: adsmith eval --model MODEL --input FILE --format F [--json] [OPTIONS]\n\n"
                 "Scores every row of FILE with MODEL and prints, over those rows:\n"
                 "  logloss       mean negative log-likelihood (natural log)\n"
                 "  NE            normalised entropy: logloss / entropy of the rows' click rate (< 1 beats\n"
                 "                predicting the rate itself)\n"
                 "  AUC           area under the ROC curve, tied scores counted half\n"
                 "  calibration   Σp / Σy: predicted clicks over actual clicks (1 is calibrated)\n"
                 "  reliability   rows, mean prediction and click rate in ten bins of prediction\n\n"
                 "options:\n"
                 "  --model MODEL     a model written by adsmith train\n"
                 "  --json            print one JSON object instead of the table (NaN as null)\n" CLI_CTR_INPUT_HELP
                 "\nThe input's schema (its format's fields) must be the model's.\n"
                 "Exit status: 0 printed; 1 the model or input cannot be read, or has more malformed\n"
                 "lines than --max-bad, or no row was read; 2 usage error or a schema that is not the model's.\n");
}

struct eval_args {
    struct cli_ctr_input in;
    const char *model;
    bool json, help;
};

/* 0, or 2 after explaining the usage error. */
static int eval_parse(int argc, char **argv, struct eval_args *a)
{
    const char *v;
    int rc;

    for (int i = 0; i < argc; i++) {
        if ((rc = cli_ctr_opt(argc, argv, &i, "eval", &a->in)) == 2)
            return 2;
        if (rc == 1)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--model")) != NULL) {
            a->model = v;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            a->help = true;
        } else {
            fprintf(stderr, "adsmith eval: unknown option '%s' (see adsmith eval --help)\n", argv[i]);
            return 2;
        }
    }
    if (a->help)
        return 0;
    if (a->model == NULL || a->model[0] == '\0' || a->in.path == NULL || a->in.format == NULL) {
        fprintf(stderr, "adsmith eval: --model, --input and --format are required (see adsmith eval --help)\n");
        return 2;
    }
    return 0;
}

struct eval_ctx {
    const struct rank_model *m;
    struct ctr_eval *e;
};

static int eval_each(void *ctx, const struct ctr_row *row, struct ads_diag *diag)
{
    struct eval_ctx *c = ctx;
    double p = rank_model_predict_row(c->m, row);
    int rc = ctr_eval_add(c->e, p, row->label);

    if (rc == ADS_EINVAL)
        return ads_diag_set(diag, ADS_EINTERNAL, NULL, "the model predicted %g, not a probability", p);
    if (rc == ADS_EQUOTA_EXCEEDED)
        return ads_diag_set(diag, rc, NULL,
                            "more than %" PRIu64 " rows: eval keeps every prediction (for the AUC); "
                            "evaluate a window with --rows",
                            (uint64_t)CTR_EVAL_MAX);
    if (rc != 0)
        ads_diag_set(diag, rc, NULL, "%s", ads_err_message(rc));
    return rc;
}

/* 0, or 1 when the object does not fit (explained). */
static int eval_print_json(const struct eval_args *a, const struct rank_info *info, const char *window,
                           const struct cli_ctr_stats *st, const struct ctr_metrics *mt)
{
    static char mem[EVAL_JSON_MAX];
    struct buf b;
    struct docw w;

    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, DOC_JSON, &b);
    docw_map(&w, 15);
    docw_key(&w, "model");
    docw_cstr(&w, a->model);
    docw_key(&w, "model_version");
    docw_cstr(&w, info->version);
    docw_key(&w, "model_bytes");
    docw_uint(&w, info->file_size);
    docw_key(&w, "input");
    docw_cstr(&w, a->in.path);
    docw_key(&w, "format");
    docw_cstr(&w, a->in.format);
    docw_key(&w, "rows_window");
    docw_cstr(&w, window);
    docw_key(&w, "rows");
    docw_uint(&w, mt->count);
    docw_key(&w, "positives");
    docw_uint(&w, mt->positives);
    docw_key(&w, "malformed");
    docw_uint(&w, st->bad);
    docw_key(&w, "logloss");
    docw_double(&w, mt->logloss);
    docw_key(&w, "ne");
    docw_double(&w, mt->ne);
    docw_key(&w, "auc");
    docw_double(&w, mt->auc);
    docw_key(&w, "calibration");
    docw_double(&w, mt->calibration);
    docw_key(&w, "ctr");
    docw_double(&w, mt->count > 0 ? (double)mt->positives / (double)mt->count : NAN);
    docw_key(&w, "reliability");
    docw_array(&w, CTR_RELIABILITY_BINS);
    for (int i = 0; i < CTR_RELIABILITY_BINS; i++) {
        const struct ctr_bin *bin = &mt->bins[i];
        docw_map(&w, 5);
        docw_key(&w, "lo");
        docw_double(&w, bin->lo);
        docw_key(&w, "hi");
        docw_double(&w, bin->hi);
        docw_key(&w, "count");
        docw_uint(&w, bin->count);
        docw_key(&w, "mean_p");
        docw_double(&w, bin->mean_p);
        docw_key(&w, "rate");
        docw_double(&w, bin->rate);
        docw_map_end(&w);
    }
    docw_array_end(&w);
    docw_map_end(&w);
    if (b.overflow) {
        /* Only two user-given paths are unbounded in length; say so rather than print half an object. */
        fprintf(stderr, "adsmith eval: the JSON result does not fit %d bytes (very long paths?)\n", EVAL_JSON_MAX);
        return 1;
    }
    fwrite(b.base, 1, b.len, stdout);
    fputc('\n', stdout);
    return 0;
}

static void eval_print_text(const struct eval_args *a, const struct rank_info *info, const char *window,
                            const struct cli_ctr_stats *st, const struct ctr_metrics *mt)
{
    printf("model        %s (%s, %" PRIu64 " bytes)\n", a->model, info->version, info->file_size);
    printf("input        %s, %s (%s): %" PRIu64 " rows, %" PRIu64 " clicks (%.2f%%)", a->in.path, window, a->in.format,
           mt->count, mt->positives, mt->count > 0 ? 100.0 * (double)mt->positives / (double)mt->count : 0.0);
    if (st->bad > 0)
        printf(", %" PRIu64 " malformed lines skipped", st->bad);
    printf("\nlogloss      %.5f\nNE           %.5f\nAUC          %.5f\ncalibration  %.4f  (Σp/Σy)\n\n", mt->logloss,
           mt->ne, mt->auc, mt->calibration);
    printf("reliability  predicted      rows   mean p   click rate\n");
    for (int i = 0; i < CTR_RELIABILITY_BINS; i++) {
        const struct ctr_bin *bin = &mt->bins[i];
        printf("             [%.1f, %.1f%c %9" PRIu64, bin->lo, bin->hi, i == CTR_RELIABILITY_BINS - 1 ? ']' : ')',
               bin->count);
        if (bin->count > 0)
            printf("   %.4f   %.4f\n", bin->mean_p, bin->rate);
        else
            printf("        -        -\n");
    }
}

int cli_eval(int argc, char **argv)
{
    struct eval_args a;
    struct ads_diag d = {{0}, {0}};
    struct ctr_reader *r = NULL;
    struct rank_model *m = NULL;
    struct eval_ctx ctx = {NULL, NULL};
    struct cli_ctr_stats st;
    struct ctr_metrics mt;
    struct rank_info info;
    struct cli_bar bar;
    char window[64];
    int rc, status;

    memset(&a, 0, sizeof(a));
    if ((status = eval_parse(argc, argv, &a)) != 0)
        return status;
    if (a.help) {
        eval_usage(stdout);
        return 0;
    }
    if ((rc = rank_model_open(a.model, &m, &d)) != 0) {
        fprintf(stderr, "adsmith eval: %s: %s\n", a.model, d.message[0] != '\0' ? d.message : ads_err_message(rc));
        return 1;
    }
    status = cli_ctr_open("eval", &a.in, &r);
    if (status != 0)
        goto out;
    if ((rc = rank_model_check_schema(m, ctr_reader_schema(r), &d)) != 0) {
        fprintf(stderr, "adsmith eval: %s does not read %s as --format %s: %s\n", a.model, a.in.path, a.in.format,
                d.message);
        status = 2;
        goto out;
    }
    status = 1;
    if (ctr_eval_new(&ctx.e) != 0) {
        fprintf(stderr, "adsmith eval: out of memory\n");
        goto out;
    }
    ctx.m = m;
    cli_bar_init(&bar);
    if (cli_ctr_read("eval", &a.in, r, &bar, eval_each, &ctx, &st) != 0)
        goto out;
    cli_bar_clear(&bar);
    if (st.rows == 0) {
        fprintf(stderr, "adsmith eval: no rows in %s (%s)\n", a.in.path, a.in.format);
        goto out;
    }
    ctr_eval_result(ctx.e, &mt);
    rank_model_info(m, &info);
    cli_ctr_window_text(&a.in, window, sizeof(window));
    if (a.json && eval_print_json(&a, &info, window, &st, &mt) != 0)
        goto out;
    if (!a.json)
        eval_print_text(&a, &info, window, &st, &mt);
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    ctr_eval_free(ctx.e);
    ctr_reader_close(r);
    rank_model_close(m);
    return status;
}
