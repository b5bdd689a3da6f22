/*
 * rank_exp: the measurement harness behind models/README.md. Trains a rank
 * model on a row range of a click log and scores a later row range, printing
 * the validation snapshot, test log loss / AUC / calibration, the model size
 * and the scoring time per row. Built by models/experiments/run.sh against a
 * build directory's core library; not part of the product.
 *
 *   rank_exp FILE FORMAT TRAIN_FIRST TRAIN_ROWS TEST_FIRST TEST_ROWS [key=value ...]
 *   keys: family=lr|fm bits=N k=N numbins=N crosses=a*b,.. neg=R seed=N refit=0|1
 *         folds=N valid=F l1= l2= alpha= epochs=N min=N l2b=F bags=N fl2=NAME:F,..
 *         out=PATH load=PATH (no training) time=1 cand=N
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../rank/rank_int.h"

static struct ctr_row row;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    struct rank_train_opts o = {.seed = 1};
    struct ads_diag d = {0};
    struct ctr_reader *r;
    struct rank_trainer *t;
    uint32_t numbins = RANK_NUM_DEFAULT;
    int refit = 1, timing = 0, ncand = 0, load = 0;
    double l2b = -1;
    uint32_t bags = 0;
    char *fl2 = NULL;
    const char *out = "/tmp/rank_exp.model";

    if (argc < 7) {
        fprintf(stderr, "usage: rank_exp FILE FORMAT TRAIN_FIRST TRAIN_ROWS TEST_FIRST TEST_ROWS [key=value ...]\n");
        return 2;
    }
    for (int i = 7; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            return 2;
        *eq = '\0';
        const char *k = argv[i], *v = eq + 1;
        if (strcmp(k, "family") == 0)
            o.family = v;
        else if (strcmp(k, "bits") == 0)
            o.bits = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "k") == 0)
            o.fm_k = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "numbins") == 0)
            numbins = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "crosses") == 0)
            o.crosses = v;
        else if (strcmp(k, "neg") == 0)
            o.neg_rate = strtod(v, NULL);
        else if (strcmp(k, "seed") == 0)
            o.seed = strtoull(v, NULL, 10);
        else if (strcmp(k, "refit") == 0)
            refit = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "folds") == 0)
            o.folds = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "valid") == 0)
            o.valid_frac = strtod(v, NULL);
        else if (strcmp(k, "l1") == 0)
            o.l1 = strtod(v, NULL);
        else if (strcmp(k, "l2") == 0)
            o.l2 = strtod(v, NULL);
        else if (strcmp(k, "alpha") == 0)
            o.alpha = strtod(v, NULL);
        else if (strcmp(k, "l2b") == 0)
            l2b = strtod(v, NULL);
        else if (strcmp(k, "bags") == 0)
            bags = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "fl2") == 0)
            fl2 = eq + 1;
        else if (strcmp(k, "min") == 0)
            o.min_count = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "epochs") == 0)
            o.epochs = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "out") == 0)
            out = v;
        else if (strcmp(k, "load") == 0) {
            out = v;
            load = 1;
        }
        else if (strcmp(k, "time") == 0)
            timing = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "cand") == 0)
            ncand = (int)strtol(v, NULL, 10);
        else
            return 2;
    }
    struct ctr_reader_opts ro = {.first_row = strtoull(argv[3], NULL, 10), .max_rows = strtoull(argv[4], NULL, 10)};
    if (load)
        goto evaluate;
    if (ctr_reader_open(argv[1], argv[2], &ro, &r, &d) < 0) {
        fprintf(stderr, "%s\n", d.message);
        return 1;
    }
    if (rank_trainer_new(ctr_reader_schema(r), &o, &t, &d) < 0) {
        fprintf(stderr, "%s\n", d.message);
        return 1;
    }
    rank__trainer_tweak(t, numbins, refit != 0);
    rank__trainer_tweak_bins(t, l2b, bags);
    for (char *p = fl2; p != NULL && *p != '\0';) {
        /* NAME:FACTOR,... */
        char *colon = strchr(p, ':'), *end;
        const struct ctr_schema *sc = ctr_reader_schema(r);
        if (colon == NULL)
            return 2;
        uint32_t f = 0;
        while (f < sc->nfields && (strncmp(sc->fields[f].name, p, (size_t)(colon - p)) != 0 ||
                                   sc->fields[f].name[colon - p] != '\0'))
            f++;
        if (rank__trainer_tweak_field(t, f, strtod(colon + 1, &end)) < 0)
            return 2;
        p = *end == ',' ? end + 1 : end;
    }
    int rc;
    while ((rc = ctr_reader_next(r, &row, &d)) == 1)
        rank_trainer_add(t, &row);
    ctr_reader_close(r);
    if (rc < 0 || rank_trainer_fit(t, NULL, NULL, &d) < 0 || rank_trainer_write(t, out, &d) < 0) {
        fprintf(stderr, "%s\n", d.message);
        return 1;
    }
    rank_trainer_free(t);

evaluate:;
    struct rank_model *m;
    if (rank_model_open(out, &m, &d) < 0) {
        fprintf(stderr, "%s\n", d.message);
        return 1;
    }
    struct rank_info in;
    rank_model_info(m, &in);
    printf("model %s %s bits=%u k=%u size=%llu l1=%g l2=%g alpha=%g epochs=%u min=%u\n", in.version, in.type_name,
           in.bits, in.fm_k, (unsigned long long)in.file_size, in.l1, in.l2, in.alpha, in.epochs, in.min_count);
    printf("valid rows=%llu logloss=%.5f auc=%.5f cal=%.4f\n", (unsigned long long)in.valid_rows, in.valid_logloss,
           in.valid_auc, in.valid_calibration);

    ro = (struct ctr_reader_opts){.first_row = strtoull(argv[5], NULL, 10), .max_rows = strtoull(argv[6], NULL, 10)};
    if (ctr_reader_open(argv[1], argv[2], &ro, &r, &d) < 0 || rank_model_check_schema(m, ctr_reader_schema(r), &d) < 0) {
        fprintf(stderr, "%s\n", d.message);
        return 1;
    }
    struct ctr_eval *e;
    ctr_eval_new(&e);
    size_t cap = 1024, n = 0;
    struct ctr_row *rows = malloc(cap * sizeof(*rows));
    while (ctr_reader_next(r, &row, &d) == 1) {
        ctr_eval_add(e, rank_model_predict_row(m, &row), row.label);
        if (timing) {
            if (n == cap) {
                cap *= 2;
                rows = realloc(rows, cap * sizeof(*rows));
            }
            rows[n++] = row;
        }
    }
    ctr_reader_close(r);
    struct ctr_metrics mt;
    ctr_eval_result(e, &mt);
    printf("test rows=%llu logloss=%.5f auc=%.5f cal=%.4f ne=%.4f\n", (unsigned long long)mt.count, mt.logloss, mt.auc,
           mt.calibration, mt.ne);
    ctr_eval_free(e);

    if (timing) {
        double med[15], sink = 0;
        for (int rep = 0; rep < 15; rep++) {
            double t0 = now_ns();
            for (int it = 0; it < 20; it++)
                for (size_t i = 0; i < n; i++)
                    sink += rank_model_predict_row(m, &rows[i]);
            med[rep] = (now_ns() - t0) / (20.0 * (double)n);
        }
        qsort(med, 15, sizeof(med[0]), cmp_d);
        printf("time predict_row: median %.1f ns/row (min %.1f, max %.1f) [%g]\n", med[7], med[0], med[14], sink);
        if (ncand > 0) {
            /* The serving path: values of the schema's last ncand fields play
             * the candidate (for "adsmith": campaign, advertiser, creative,
             * camp_category), the rest the request (added once); the cost per
             * candidate is rank_req_score() alone. */
            uint32_t cut = in.nfields - (uint32_t)ncand;
            static struct rank_req rq;
            struct rank_cand *cands = malloc(n * sizeof(*cands));
            for (size_t i = 0; i < n; i++) {
                cands[i].n = 0;
                for (uint32_t j = 0; j < rows[i].n; j++)
                    if (rows[i].v[j].field >= cut && cands[i].n < RANK_CAND_MAX)
                        cands[i].v[cands[i].n++] = rows[i].v[j];
            }
            rank_req_begin(&rq, m);
            for (uint32_t j = 0; j < rows[0].n; j++)
                if (rows[0].v[j].field < cut) {
                    if (rows[0].v[j].kind == CTR_CAT)
                        rank_req_add_token(&rq, rows[0].v[j].field, rows[0].v[j].token);
                    else
                        rank_req_add_num(&rq, rows[0].v[j].field, rows[0].v[j].x);
                }
            rank_req_commit(&rq);
            for (int rep = 0; rep < 15; rep++) {
                double t0 = now_ns();
                for (int it = 0; it < 20; it++)
                    for (size_t i = 0; i < n; i++)
                        sink += rank_req_score(&rq, &cands[i]);
                med[rep] = (now_ns() - t0) / (20.0 * (double)n);
            }
            qsort(med, 15, sizeof(med[0]), cmp_d);
            printf("time rank_req_score (%d candidate fields, %u request values): median %.1f ns/candidate (min "
                   "%.1f, max %.1f) [%g]\n",
                   ncand, rq.n, med[7], med[0], med[14], sink);
            free(cands);
        }
    }
    free(rows);
    rank_model_close(m);
    return 0;
}
