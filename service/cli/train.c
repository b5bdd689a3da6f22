/*
 * `adsmith train`: reads a click log (models/ctr) and writes a ranking model
 * (models/rank). The trainer keeps the rows it is given and makes several
 * passes over them, so reading and training are two phases, each with its
 * own progress display. The same input, options and seed give a
 * byte-identical model file (no time stamp is recorded).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctrio.h"

#include "adsmith/cli.h"
#include "adsmith/rank.h"

#define TRAIN_SOURCE_MAX 512
#define TRAIN_DEFAULT_SEED 1

static void train_usage(FILE *out)
{
    fprintf(out,
            "usage: adsmith train --input FILE --format F --out MODEL [OPTIONS]\n\n"
            "Trains adsmith's click model on a click log and writes it to MODEL (through a temporary\n"
            "file and a rename, so a reader never sees half a model). Rows are taken in file order and\n"
            "the hyper-parameters and the calibration are chosen out of sample: up to 200,000 rows by\n"
            "5-fold cross-validation over contiguous blocks of rows (--valid-frac does not apply), above\n"
            "that on the last --valid-frac of the rows, so give rows in time order. The same input,\n"
            "options and --seed give a byte-identical file.\n\n"
            "input:\n" CLI_CTR_INPUT_HELP "\n"
            "model (models/README.md explains each):\n"
            "  --out MODEL       where to write the model\n"
            "  --seed N          random seed (default %d)\n"
            "  --family F        lr (logistic regression, default) or fm (factorization machine)\n"
            "  --epochs N        passes over the data; default: chosen on the validation rows\n"
            "  --neg-rate R      keep each negative with probability R, 0 < R <= 1 (default 1)\n"
            "  --bits N          log2 of the hashed weight table, 10..24 (default 18)\n"
            "  --fm-k N          factors per feature for fm\n"
            "  --crosses A*B,... pairs of field names crossed\n"
            "  --valid-frac F    over 200,000 rows: share of the last rows used for validation,\n"
            "                    0 < F <= 0.5 (default 0.2)\n"
            "  --l1 X --l2 X --alpha X  FTRL-Proximal settings; default: chosen on the validation rows\n\n"
            "Exit status: 0 model written; 1 the input cannot be read, has more malformed lines than\n"
            "--max-bad, cannot train a model (too few rows, one class only) or the model cannot be\n"
            "written; 2 usage error.\n",
            TRAIN_DEFAULT_SEED);
}

struct train_args {
    struct cli_ctr_input in;
    const char *out;
    struct rank_train_opts opts;
    bool help;
};

/* Which of @p names argv[*i] is (-1: none), with its value in *@p ret (see cli_opt_value). */
static int train_opt_of(int argc, char **argv, int *i, const char *const *names, int n, const char **ret)
{
    for (int k = 0; k < n; k++) {
        const char *v = cli_opt_value(argc, argv, i, names[k]);
        if (v != NULL) {
            *ret = v;
            return k;
        }
    }
    return -1;
}

/* 0, or 2 after explaining the usage error. */
static int train_parse(int argc, char **argv, struct train_args *a)
{
    static const char *const u32_names[3] = {"--epochs", "--bits", "--fm-k"};
    static const char *const num_names[5] = {"--neg-rate", "--valid-frac", "--l1", "--l2", "--alpha"};
    uint32_t *const u32_dst[3] = {&a->opts.epochs, &a->opts.bits, &a->opts.fm_k};
    double *const num_dst[5] = {&a->opts.neg_rate, &a->opts.valid_frac, &a->opts.l1, &a->opts.l2, &a->opts.alpha};
    const char *v = NULL;
    uint64_t n;
    double x;
    int rc, k;

    a->opts.seed = TRAIN_DEFAULT_SEED;
    a->opts.neg_rate = 1;
    for (int i = 0; i < argc; i++) {
        if ((rc = cli_ctr_opt(argc, argv, &i, "train", &a->in)) == 2)
            return 2;
        if (rc == 1)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--out")) != NULL) {
            a->out = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--seed")) != NULL) {
            if (!cli_parse_u64(v, &a->opts.seed)) {
                fprintf(stderr, "adsmith train: --seed must be a whole number, not '%s'\n", v);
                return 2;
            }
        } else if ((v = cli_opt_value(argc, argv, &i, "--family")) != NULL) {
            a->opts.family = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--crosses")) != NULL) {
            a->opts.crosses = v;
        } else if ((k = train_opt_of(argc, argv, &i, u32_names, 3, &v)) >= 0) {
            /* 0 means "the default" to the trainer; given here it is a mistake, not a choice. */
            if (!cli_parse_u64(v, &n) || n > UINT32_MAX || (n == 0 && u32_dst[k] != &a->opts.epochs)) {
                fprintf(stderr, "adsmith train: %s must be a whole number%s, not '%s'\n", u32_names[k],
                        u32_dst[k] != &a->opts.epochs ? " above 0" : "", v);
                return 2;
            }
            *u32_dst[k] = (uint32_t)n;
        } else if ((k = train_opt_of(argc, argv, &i, num_names, 5, &v)) >= 0) {
            if (!cli_parse_double(v, &x) || x < 0) {
                fprintf(stderr, "adsmith train: %s must be a number >= 0, not '%s'\n", num_names[k], v);
                return 2;
            }
            if (num_dst[k] == &a->opts.neg_rate && (x <= 0 || x > 1)) {
                fprintf(stderr, "adsmith train: --neg-rate must be in (0, 1], not '%s'\n", v);
                return 2;
            }
            if (num_dst[k] == &a->opts.valid_frac && (x <= 0 || x > 0.5)) {
                fprintf(stderr, "adsmith train: --valid-frac must be in (0, 0.5], not '%s'\n", v);
                return 2;
            }
            *num_dst[k] = x;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            a->help = true;
        } else {
            fprintf(stderr, "adsmith train: unknown option '%s' (see adsmith train --help)\n", argv[i]);
            return 2;
        }
    }
    if (a->help)
        return 0;
    if (a->in.path == NULL || a->in.format == NULL || a->out == NULL || a->out[0] == '\0') {
        fprintf(stderr, "adsmith train: --input, --format and --out are required (see adsmith train --help)\n");
        return 2;
    }
    return 0;
}

static int train_each(void *ctx, const struct ctr_row *row, struct ads_diag *diag)
{
    int rc = rank_trainer_add(ctx, row);

    if (rc != 0)
        ads_diag_set(diag, rc, NULL, "the trainer refused the row: %s", ads_err_message(rc));
    return rc;
}

static void train_progress(void *ctx, double frac)
{
    cli_bar_show(ctx, "training", frac, "", frac >= 1);
}

int cli_train(int argc, char **argv)
{
    struct train_args a;
    struct ads_diag d = {{0}, {0}};
    struct ctr_reader *r = NULL;
    struct rank_trainer *t = NULL;
    struct rank_model *m = NULL;
    struct cli_ctr_stats st;
    struct cli_bar bar;
    char source[TRAIN_SOURCE_MAX], window[64];
    uint64_t fit_started;
    int rc, status;

    memset(&a, 0, sizeof(a));
    if ((status = train_parse(argc, argv, &a)) != 0)
        return status;
    if (a.help) {
        train_usage(stdout);
        return 0;
    }
    if ((status = cli_ctr_open("train", &a.in, &r)) != 0)
        return status;
    cli_ctr_window_text(&a.in, window, sizeof(window));
    snprintf(source, sizeof(source), "%s %s (%s)", a.in.path, window, a.in.format);
    a.opts.source = source;
    status = 1;
    if ((rc = rank_trainer_new(ctr_reader_schema(r), &a.opts, &t, &d)) != 0) {
        fprintf(stderr, "adsmith train: %s\n", d.message[0] != '\0' ? d.message : ads_err_message(rc));
        status = rc == ADS_EINVAL ? 2 : 1;
        goto out;
    }
    cli_bar_init(&bar);
    fprintf(stderr, "reading %s, %s (%s)\n", strcmp(a.in.path, "-") == 0 ? "standard input" : a.in.path, window,
            a.in.format);
    if (cli_ctr_read("train", &a.in, r, &bar, train_each, t, &st) != 0)
        goto out;
    cli_bar_clear(&bar);
    fprintf(stderr, "read %" PRIu64 " rows (%" PRIu64 " clicks, lines %" PRIu64 "..%" PRIu64 ")%s in %.2f s\n", st.rows,
            st.positives, st.first_line, st.last_line, st.bad > 0 ? ", skipped malformed lines" : "", st.secs);

    fit_started = cli_now_ns();
    rc = rank_trainer_fit(t, train_progress, &bar, &d);
    cli_bar_clear(&bar);
    if (rc != 0) {
        fprintf(stderr, "adsmith train: cannot train: %s\n", d.message[0] != '\0' ? d.message : ads_err_message(rc));
        goto out;
    }
    fprintf(stderr, "trained in %.2f s\n", (double)(cli_now_ns() - fit_started) / 1e9);
    if ((rc = rank_trainer_write(t, a.out, &d)) != 0) {
        fprintf(stderr, "adsmith train: cannot write %s: %s\n", a.out,
                d.message[0] != '\0' ? d.message : ads_err_message(rc));
        goto out;
    }
    /* Read the file back: it is checked exactly as the service will check it, and it says what it holds. */
    if ((rc = rank_model_open(a.out, &m, &d)) != 0) {
        fprintf(stderr, "adsmith train: the model written to %s does not load: %s\n", a.out, d.message);
        goto out;
    }
    {
        struct rank_info info;
        rank_model_info(m, &info);
        fprintf(stderr,
                "wrote %s: %s, %" PRIu64 " bytes; validation (%" PRIu64 " rows, %" PRIu64
                " clicks): logloss %.4f, AUC %.4f, calibration %.3f\n",
                a.out, info.version, info.file_size, info.valid_rows, info.valid_positives, info.valid_logloss,
                info.valid_auc, info.valid_calibration);
    }
    status = 0;
out:
    rank_model_close(m);
    rank_trainer_free(t);
    ctr_reader_close(r);
    return status;
}
