/*
 * adsmith-peer: adsmith's click model next to an xgboost GBDT on the same
 * rows (models/bench/run.sh runs it on each shared data set).
 *
 * Both models see exactly the rows a ctr reader gives (include/adsmith/ctr.h).
 * For xgboost they become one sparse matrix: a numeric field is one column
 * holding the raw number (absent = missing); a categorical (field, token)
 * seen at least PEER_MIN_COUNT times in the training rows is one column (its
 * value, 1 unless the format gives one), and the rarer tokens of a field
 * share one "other" column. The dictionary comes from training rows only.
 *
 * xgboost's hyper-parameters are chosen on a validation split inside the
 * training rows (the last PEER_VALID_FRAC, time order kept), over a small
 * grid with early stopping on validation logloss; the final booster is then
 * trained on all training rows with the chosen settings and rounds.
 *
 * Speed, single thread (xgboost nthread=1), each figure the median of
 * --repeat passes over up to PEER_TIME_ROWS test rows:
 *   xgb_row     XGBoosterPredict on a one-row DMatrix (built beforehand, not
 *               timed): the serving case, one candidate at a time
 *   xgb_batch   XGBoosterPredict on the whole test matrix, per row
 *   xgb_inplace XGBoosterPredictFromCSR on one row (no DMatrix): xgboost's
 *               own low-latency call
 * (xgboost caches the predictions of a DMatrix it has seen, so every timed
 * call gets a fresh matrix.)
 *   ads_row     rank_model_predict_row() per row
 *   ads_req     a request through the serving API: begin, add every value
 *               but the candidate's, commit, score one candidate
 *   ads_cand    rank_req_score() per extra candidate of a committed request
 *               (the last PEER_CAND_VALUES values of a row are the candidate)
 *
 * Output: one JSON object on stdout (models/bench/run.sh makes the table).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xgboost/c_api.h>

#include "adsmith/buf.h"
#include "adsmith/ctr.h"
#include "adsmith/doc.h"
#include "adsmith/rank.h"

#define PEER_MIN_COUNT 2
#define PEER_VALID_FRAC 0.2
#define PEER_MAX_ROUNDS 2000
#define PEER_EARLY_STOP 40
#define PEER_TIME_ROWS 2000
#define PEER_CAND_VALUES 2
#define PEER_CANDS 50 /* candidates scored per committed request */
#define PEER_REPEAT_MAX 101

/* ---- rows, kept compact ---- */

struct peer_rows {
    size_t n, cap;
    float *label;
    size_t *start; /* values of row i: v[start[i], start[i + 1]) */
    struct ctr_value *v;
    size_t nv, vcap;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("adsmith-peer: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (q == NULL)
        die("out of memory");
    return q;
}

static void xgb_check(int rc, const char *what)
{
    if (rc != 0)
        die("%s: %s", what, XGBGetLastError());
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "A:B" / "A:" / ":B" as in `adsmith train --rows`. */
static void parse_rows(const char *v, struct ctr_reader_opts *o)
{
    unsigned long long a = 0, b = 0;
    char *end;

    if (v[0] != ':') {
        a = strtoull(v, &end, 10);
        if (*end != ':')
            die("--rows: expected A:B, not '%s'", v);
        v = end;
    }
    v++;
    if (*v != '\0') {
        b = strtoull(v, &end, 10);
        if (*end != '\0' || b <= a)
            die("--rows: expected A:B with B > A");
    }
    o->first_row = a;
    o->max_rows = b > 0 ? b - a : 0;
}

static void read_rows(const char *path, const char *format, const struct ctr_reader_opts *o, struct peer_rows *rows,
                      struct ctr_schema *ret_schema)
{
    struct ctr_reader *r = NULL;
    struct ctr_row *row = malloc(sizeof(*row));
    struct ads_diag d = {{0}, {0}};
    int rc;

    if (row == NULL)
        die("out of memory");
    if (ctr_reader_open(path, format, o, &r, &d) != 0)
        die("%s", d.message);
    if (ret_schema != NULL)
        *ret_schema = *ctr_reader_schema(r);
    while ((rc = ctr_reader_next(r, row, &d)) != 0) {
        if (rc < 0)
            die("%s: %s", path, d.message);
        if (rows->n + 2 > rows->cap) {
            rows->cap = rows->cap == 0 ? 4096 : rows->cap * 2;
            rows->label = xrealloc(rows->label, rows->cap * sizeof(*rows->label));
            rows->start = xrealloc(rows->start, rows->cap * sizeof(*rows->start));
        }
        if (rows->nv + row->n > rows->vcap) {
            rows->vcap = (rows->vcap + row->n) * 2;
            rows->v = xrealloc(rows->v, rows->vcap * sizeof(*rows->v));
        }
        rows->start[rows->n] = rows->nv;
        rows->label[rows->n] = row->label;
        memcpy(rows->v + rows->nv, row->v, row->n * sizeof(*row->v));
        rows->nv += row->n;
        rows->n++;
        rows->start[rows->n] = rows->nv;
    }
    ctr_reader_close(r);
    free(row);
    if (rows->n == 0)
        die("%s: no rows", path);
}

/* Row @p i as a struct ctr_row in @p out. */
static void row_get(const struct peer_rows *rows, size_t i, struct ctr_row *out)
{
    size_t n = rows->start[i + 1] - rows->start[i];

    out->label = rows->label[i];
    out->n = (uint32_t)n;
    out->line = i;
    memcpy(out->v, rows->v + rows->start[i], n * sizeof(*out->v));
}

/* ---- the dictionary: (field, token) -> column ---- */

struct dict_slot {
    uint64_t key; /* 0: empty */
    uint32_t count;
    uint32_t col; /* UINT32_MAX until assigned */
};

struct dict {
    struct dict_slot *slot;
    size_t cap, n; /* cap is a power of two */
    uint32_t ncols;
    uint32_t num_col[CTR_MAX_FIELDS];   /* numeric field -> column */
    uint32_t other_col[CTR_MAX_FIELDS]; /* categorical field -> column of its rare tokens */
};

static uint64_t dict_key(const struct ctr_value *v)
{
    uint64_t k = v->token ^ ((uint64_t)(v->field + 1) * UINT64_C(0x9e3779b97f4a7c15));

    k ^= k >> 29;
    return k == 0 ? 1 : k;
}

static struct dict_slot *dict_find(struct dict *d, uint64_t key, bool insert)
{
    size_t i = (size_t)key & (d->cap - 1);

    while (d->slot[i].key != 0 && d->slot[i].key != key)
        i = (i + 1) & (d->cap - 1);
    if (d->slot[i].key == 0) {
        if (!insert)
            return NULL;
        d->slot[i].key = key;
        d->slot[i].col = UINT32_MAX;
        d->n++;
    }
    return &d->slot[i];
}

static void dict_build(struct dict *d, const struct ctr_schema *s, const struct peer_rows *train)
{
    d->cap = 1;
    while (d->cap < 2 * train->nv + 16)
        d->cap *= 2;
    d->slot = calloc(d->cap, sizeof(*d->slot));
    if (d->slot == NULL)
        die("out of memory");
    for (uint32_t f = 0; f < s->nfields; f++) {
        if (s->fields[f].kind == CTR_NUM)
            d->num_col[f] = d->ncols++;
        else
            d->other_col[f] = d->ncols++;
    }
    for (size_t i = 0; i < train->nv; i++) {
        if (train->v[i].kind == CTR_CAT)
            dict_find(d, dict_key(&train->v[i]), true)->count++;
    }
    /* Columns in the order tokens first appear, so the matrix does not depend on the table's layout. */
    for (size_t i = 0; i < train->nv; i++) {
        struct dict_slot *sl;
        if (train->v[i].kind != CTR_CAT)
            continue;
        sl = dict_find(d, dict_key(&train->v[i]), false);
        if (sl->count >= PEER_MIN_COUNT && sl->col == UINT32_MAX)
            sl->col = d->ncols++;
    }
}

static uint32_t dict_col(struct dict *d, const struct ctr_value *v)
{
    struct dict_slot *sl;

    if (v->kind == CTR_NUM)
        return d->num_col[v->field];
    sl = dict_find(d, dict_key(v), false);
    return sl != NULL && sl->col != UINT32_MAX ? sl->col : d->other_col[v->field];
}

/* ---- xgboost matrices ---- */

struct csr {
    size_t nrows, nnz;
    size_t *indptr;
    unsigned *indices;
    float *data;
};

static int entry_cmp(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

    return (x > y) - (x < y);
}

/* Rows [from, to) of @p rows as CSR; duplicate columns in a row are summed (xgboost wants them unique). */
static void csr_build(struct dict *d, const struct peer_rows *rows, size_t from, size_t to, struct csr *out)
{
    struct {
        unsigned col;
        float x;
    } *tmp = malloc(CTR_MAX_VALUES * sizeof(*tmp));
    size_t cap = rows->start[to] - rows->start[from];

    if (tmp == NULL)
        die("out of memory");
    out->nrows = to - from;
    out->nnz = 0;
    out->indptr = xrealloc(NULL, (out->nrows + 1) * sizeof(size_t));
    out->indices = xrealloc(NULL, (cap + 1) * sizeof(unsigned));
    out->data = xrealloc(NULL, (cap + 1) * sizeof(float));
    for (size_t i = from; i < to; i++) {
        size_t n = 0;
        out->indptr[i - from] = out->nnz;
        for (size_t k = rows->start[i]; k < rows->start[i + 1]; k++) {
            tmp[n].col = dict_col(d, &rows->v[k]);
            tmp[n].x = (float)rows->v[k].x;
            n++;
        }
        qsort(tmp, n, sizeof(*tmp), entry_cmp);
        for (size_t k = 0; k < n; k++) {
            if (out->nnz > out->indptr[i - from] && out->indices[out->nnz - 1] == tmp[k].col) {
                out->data[out->nnz - 1] += tmp[k].x;
                continue;
            }
            out->indices[out->nnz] = tmp[k].col;
            out->data[out->nnz] = tmp[k].x;
            out->nnz++;
        }
    }
    out->indptr[out->nrows] = out->nnz;
    free(tmp);
}

static DMatrixHandle dmatrix(const struct csr *c, uint32_t ncols, const float *labels)
{
    DMatrixHandle h;

    xgb_check(XGDMatrixCreateFromCSREx(c->indptr, c->indices, c->data, c->nrows + 1, c->nnz, ncols, &h),
              "XGDMatrixCreateFromCSREx");
    if (labels != NULL)
        xgb_check(XGDMatrixSetFloatInfo(h, "label", labels, c->nrows), "XGDMatrixSetFloatInfo");
    return h;
}

static void csr_free(struct csr *c)
{
    free(c->indptr);
    free(c->indices);
    free(c->data);
}

struct xgb_params {
    int depth;
    double eta;
    double mcw;
};

static BoosterHandle booster_new(DMatrixHandle train, const struct xgb_params *p, int nthread)
{
    BoosterHandle b;
    char v[32];

    xgb_check(XGBoosterCreate(&train, 1, &b), "XGBoosterCreate");
    xgb_check(XGBoosterSetParam(b, "objective", "binary:logistic"), "objective");
    xgb_check(XGBoosterSetParam(b, "eval_metric", "logloss"), "eval_metric");
    xgb_check(XGBoosterSetParam(b, "tree_method", "hist"), "tree_method");
    xgb_check(XGBoosterSetParam(b, "subsample", "0.8"), "subsample");
    xgb_check(XGBoosterSetParam(b, "colsample_bytree", "0.8"), "colsample_bytree");
    xgb_check(XGBoosterSetParam(b, "seed", "0"), "seed");
    xgb_check(XGBoosterSetParam(b, "verbosity", "0"), "verbosity");
    snprintf(v, sizeof(v), "%d", p->depth);
    xgb_check(XGBoosterSetParam(b, "max_depth", v), "max_depth");
    snprintf(v, sizeof(v), "%g", p->eta);
    xgb_check(XGBoosterSetParam(b, "eta", v), "eta");
    snprintf(v, sizeof(v), "%g", p->mcw);
    xgb_check(XGBoosterSetParam(b, "min_child_weight", v), "min_child_weight");
    snprintf(v, sizeof(v), "%d", nthread);
    xgb_check(XGBoosterSetParam(b, "nthread", v), "nthread");
    return b;
}

/* Trains with early stopping on @p valid; returns the best validation logloss and its round count. */
static double booster_search(DMatrixHandle train, DMatrixHandle valid, const struct xgb_params *p, int *ret_rounds)
{
    BoosterHandle b = booster_new(train, p, 0);
    const char *names[1] = {"valid"};
    double best = INFINITY;
    int best_round = 0;

    for (int it = 0; it < PEER_MAX_ROUNDS && it - best_round < PEER_EARLY_STOP; it++) {
        const char *res, *colon;
        double ll;
        xgb_check(XGBoosterUpdateOneIter(b, it, train), "XGBoosterUpdateOneIter");
        xgb_check(XGBoosterEvalOneIter(b, it, &valid, names, 1, &res), "XGBoosterEvalOneIter");
        colon = strrchr(res, ':');
        if (colon == NULL)
            die("unexpected evaluation text '%s'", res);
        ll = strtod(colon + 1, NULL);
        if (ll < best) {
            best = ll;
            best_round = it;
        }
    }
    XGBoosterFree(b);
    *ret_rounds = best_round + 1;
    return best;
}

/* ---- timing ---- */

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), dbl_cmp);
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Keeps the compiler from dropping a loop whose results are otherwise unused. */
static volatile double sink;

/* ---- metrics ---- */

struct result {
    struct ctr_metrics m;
    uint64_t bytes;
    double ns_row, ns_batch, ns_inplace, ns_req, ns_cand;
};

static void metrics_of(const double *p, const struct peer_rows *test, struct ctr_metrics *out)
{
    struct ctr_eval *e = NULL;

    if (ctr_eval_new(&e) != 0)
        die("out of memory");
    for (size_t i = 0; i < test->n; i++) {
        if (ctr_eval_add(e, p[i], test->label[i]) != 0)
            die("prediction %zu is %g", i, p[i]);
    }
    ctr_eval_result(e, out);
    ctr_eval_free(e);
}

static void json_result(struct docw *w, const char *name, const struct result *r, bool serving)
{
    docw_key(w, name);
    docw_map(w, 7);
    docw_key(w, "logloss");
    docw_double(w, r->m.logloss);
    docw_key(w, "auc");
    docw_double(w, r->m.auc);
    docw_key(w, "calibration");
    docw_double(w, r->m.calibration);
    docw_key(w, "bytes");
    docw_uint(w, r->bytes);
    docw_key(w, "ns_row");
    docw_double(w, r->ns_row);
    if (serving) {
        docw_key(w, "ns_req");
        docw_double(w, r->ns_req);
        docw_key(w, "ns_cand");
        docw_double(w, r->ns_cand);
    } else {
        docw_key(w, "ns_batch");
        docw_double(w, r->ns_batch);
        docw_key(w, "ns_inplace");
        docw_double(w, r->ns_inplace);
    }
    docw_map_end(w);
}

/* ---- the two models ---- */

static void run_xgb(const struct ctr_schema *schema, const struct peer_rows *train, const struct peer_rows *test,
                    int repeat, struct result *res, char *params, size_t params_cap)
{
    static const int depths[] = {2, 4, 6};
    static const double etas[] = {0.03, 0.1, 0.3};
    static const double mcws[] = {1, 5};
    struct dict d;
    struct csr c_all, c_sub, c_valid, c_test;
    size_t nsub = train->n - (size_t)((double)train->n * PEER_VALID_FRAC);
    DMatrixHandle m_all, m_sub, m_valid, m_test, *m_rows;
    struct xgb_params best = {0, 0, 0};
    double best_ll = INFINITY, *p, times[PEER_REPEAT_MAX];
    int best_rounds = 0;
    size_t ntime = test->n < PEER_TIME_ROWS ? test->n : PEER_TIME_ROWS;
    BoosterHandle b;
    bst_ulong len;
    const float *out;
    const char *buf;

    memset(&d, 0, sizeof(d));
    dict_build(&d, schema, train);
    csr_build(&d, train, 0, train->n, &c_all);
    csr_build(&d, train, 0, nsub, &c_sub);
    csr_build(&d, train, nsub, train->n, &c_valid);
    csr_build(&d, test, 0, test->n, &c_test);
    m_all = dmatrix(&c_all, d.ncols, train->label);
    m_sub = dmatrix(&c_sub, d.ncols, train->label);
    m_valid = dmatrix(&c_valid, d.ncols, train->label + nsub);
    m_test = dmatrix(&c_test, d.ncols, test->label);

    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        for (size_t j = 0; j < sizeof(etas) / sizeof(etas[0]); j++) {
            for (size_t k = 0; k < sizeof(mcws) / sizeof(mcws[0]); k++) {
                struct xgb_params p1 = {depths[i], etas[j], mcws[k]};
                int rounds;
                double ll = booster_search(m_sub, m_valid, &p1, &rounds);
                if (ll < best_ll) {
                    best_ll = ll;
                    best = p1;
                    best_rounds = rounds;
                }
            }
        }
    }
    b = booster_new(m_all, &best, 0);
    for (int it = 0; it < best_rounds; it++)
        xgb_check(XGBoosterUpdateOneIter(b, it, m_all), "XGBoosterUpdateOneIter");
    snprintf(params, params_cap, "max_depth=%d eta=%g min_child_weight=%g rounds=%d (valid logloss %.4f), %u columns",
             best.depth, best.eta, best.mcw, best_rounds, best_ll, d.ncols);
    xgb_check(XGBoosterSaveModelToBuffer(b, "{\"format\": \"ubj\"}", &len, &buf), "XGBoosterSaveModelToBuffer");
    res->bytes = len;

    /* Accuracy: the whole test set at once. Then single-threaded timing. */
    xgb_check(XGBoosterSetParam(b, "nthread", "1"), "nthread");
    xgb_check(XGBoosterPredict(b, m_test, 0, 0, 0, &len, &out), "XGBoosterPredict");
    if (len != test->n)
        die("xgboost returned %" PRIu64 " predictions for %zu rows", (uint64_t)len, test->n);
    p = xrealloc(NULL, test->n * sizeof(*p));
    for (size_t i = 0; i < test->n; i++)
        p[i] = out[i];
    metrics_of(p, test, &res->m);

    /*
     * xgboost caches the predictions of a DMatrix it has seen (until the model
     * changes), so every timed call gets a matrix it has never predicted:
     * built before the clock starts, freed after it stops.
     */
    for (int r = 0; r < repeat; r++) {
        DMatrixHandle fresh = dmatrix(&c_test, d.ncols, NULL);
        uint64_t t0 = now_ns();
        xgb_check(XGBoosterPredict(b, fresh, 0, 0, 0, &len, &out), "XGBoosterPredict");
        times[r] = (double)(now_ns() - t0) / (double)test->n;
        sink = out[0];
        XGDMatrixFree(fresh);
    }
    res->ns_batch = median(times, repeat);

    m_rows = xrealloc(NULL, ntime * sizeof(*m_rows));
    for (int r = 0; r < repeat; r++) {
        uint64_t t0;
        double acc = 0;
        for (size_t i = 0; i < ntime; i++) {
            size_t ptr[2] = {0, c_test.indptr[i + 1] - c_test.indptr[i]};
            xgb_check(XGDMatrixCreateFromCSREx(ptr, c_test.indices + c_test.indptr[i], c_test.data + c_test.indptr[i],
                                               2, ptr[1], d.ncols, &m_rows[i]),
                      "XGDMatrixCreateFromCSREx");
        }
        t0 = now_ns();
        for (size_t i = 0; i < ntime; i++) {
            XGBoosterPredict(b, m_rows[i], 0, 0, 0, &len, &out);
            acc += out[0];
        }
        times[r] = (double)(now_ns() - t0) / (double)ntime;
        sink = acc;
        for (size_t i = 0; i < ntime; i++)
            XGDMatrixFree(m_rows[i]);
    }
    res->ns_row = median(times, repeat);

    /* In-place prediction (no DMatrix, nothing cached): xgboost's own serving call since 1.4. */
    {
        char(*iface)[3][160] = xrealloc(NULL, ntime * sizeof(*iface));
        size_t(*ptrs)[2] = xrealloc(NULL, ntime * sizeof(*ptrs));
        static const char cfg[] = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
                                  "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";
        for (size_t i = 0; i < ntime; i++) {
            ptrs[i][0] = 0;
            ptrs[i][1] = c_test.indptr[i + 1] - c_test.indptr[i];
            snprintf(iface[i][0], sizeof(iface[i][0]),
                     "{\"data\": [%" PRIuPTR ", true], \"shape\": [2], \"typestr\": \"<u8\", \"version\": 3}",
                     (uintptr_t)ptrs[i]);
            snprintf(iface[i][1], sizeof(iface[i][1]),
                     "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu], \"typestr\": \"<u4\", \"version\": 3}",
                     (uintptr_t)(c_test.indices + c_test.indptr[i]), ptrs[i][1]);
            snprintf(iface[i][2], sizeof(iface[i][2]),
                     "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu], \"typestr\": \"<f4\", \"version\": 3}",
                     (uintptr_t)(c_test.data + c_test.indptr[i]), ptrs[i][1]);
        }
        for (int r = 0; r < repeat; r++) {
            uint64_t t0 = now_ns();
            double acc = 0;
            for (size_t i = 0; i < ntime; i++) {
                bst_ulong const *shape;
                bst_ulong dim;
                xgb_check(XGBoosterPredictFromCSR(b, iface[i][0], iface[i][1], iface[i][2], d.ncols, cfg, NULL, &shape,
                                                  &dim, &out),
                          "XGBoosterPredictFromCSR");
                acc += out[0];
                /* The same answer as the batch: a check that the in-place call saw the row. */
                if (r == 0 && fabs(out[0] - p[i]) > 1e-6)
                    die("in-place prediction %zu is %g, batch %g", i, out[0], p[i]);
            }
            times[r] = (double)(now_ns() - t0) / (double)ntime;
            sink = acc;
        }
        res->ns_inplace = median(times, repeat);
        free(iface);
        free(ptrs);
    }

    free(m_rows);
    free(p);
    XGBoosterFree(b);
    XGDMatrixFree(m_all);
    XGDMatrixFree(m_sub);
    XGDMatrixFree(m_valid);
    XGDMatrixFree(m_test);
    csr_free(&c_all);
    csr_free(&c_sub);
    csr_free(&c_valid);
    csr_free(&c_test);
    free(d.slot);
}

/* The request of row @p i: every value but the last PEER_CAND_VALUES categorical ones. */
static void serving_request(struct rank_req *q, const struct rank_model *m, const struct ctr_row *row, uint32_t ncand)
{
    rank_req_begin(q, m);
    for (uint32_t k = 0; k + ncand < row->n; k++) {
        const struct ctr_value *v = &row->v[k];
        if (v->kind == CTR_NUM)
            rank_req_add_num(q, v->field, v->x);
        else
            rank_req_add_token(q, v->field, v->token);
    }
    rank_req_commit(q);
}

static uint32_t cand_values(const struct ctr_row *row)
{
    uint32_t n = 0;

    for (uint32_t k = row->n; k-- > 0 && n < PEER_CAND_VALUES && row->v[k].kind == CTR_CAT;)
        n++;
    return n;
}

/* A candidate of the last @p ncand values of @p row (their tokens, as text: rank_cand_add takes text). */
static void serving_cand(struct rank_cand *c, const struct ctr_row *row, uint32_t ncand)
{
    rank_cand_init(c);
    for (uint32_t k = row->n - ncand; k < row->n; k++) {
        char text[24];
        int len = snprintf(text, sizeof(text), "%016" PRIx64, row->v[k].token);
        rank_cand_add(c, row->v[k].field, text, (size_t)len);
    }
}

static void run_adsmith(const char *path, const struct ctr_schema *schema, const struct peer_rows *test, int repeat,
                        struct result *res)
{
    struct rank_model *m = NULL;
    struct ads_diag d = {{0}, {0}};
    struct rank_info info;
    size_t ntime = test->n < PEER_TIME_ROWS ? test->n : PEER_TIME_ROWS;
    struct ctr_row *rows = malloc(ntime * sizeof(*rows)), *one = malloc(sizeof(*one));
    struct rank_cand *cands = malloc(PEER_CANDS * sizeof(*cands));
    struct rank_req *q = malloc(sizeof(*q));
    double *p = calloc(test->n, sizeof(*p)), times[PEER_REPEAT_MAX];

    if (rows == NULL || one == NULL || cands == NULL || q == NULL || p == NULL)
        die("out of memory");
    if (rank_model_open(path, &m, &d) != 0)
        die("%s: %s", path, d.message);
    if (rank_model_check_schema(m, schema, &d) != 0)
        die("%s: %s", path, d.message);
    rank_model_info(m, &info);
    res->bytes = info.file_size;
    for (size_t i = 0; i < test->n; i++) {
        row_get(test, i, one);
        p[i] = rank_model_predict_row(m, one);
    }
    metrics_of(p, test, &res->m);

    for (size_t i = 0; i < ntime; i++)
        row_get(test, i, &rows[i]);
    for (int r = 0; r < repeat; r++) {
        uint64_t t0 = now_ns();
        double acc = 0;
        for (size_t i = 0; i < ntime; i++)
            acc += rank_model_predict_row(m, &rows[i]);
        times[r] = (double)(now_ns() - t0) / (double)ntime;
        sink = acc;
    }
    res->ns_row = median(times, repeat);

    /* Serving: one request per row, scored with that row's own candidate. */
    for (int r = 0; r < repeat; r++) {
        uint64_t t0 = now_ns();
        double acc = 0;
        for (size_t i = 0; i < ntime; i++) {
            uint32_t nc = cand_values(&rows[i]);
            serving_cand(&cands[0], &rows[i], nc);
            serving_request(q, m, &rows[i], nc);
            acc += rank_req_score(q, &cands[0]);
        }
        times[r] = (double)(now_ns() - t0) / (double)ntime;
        sink = acc;
    }
    res->ns_req = median(times, repeat);

    /* Per extra candidate: PEER_CANDS candidates (from different rows) against each committed request. */
    for (size_t k = 0; k < PEER_CANDS; k++)
        serving_cand(&cands[k], &rows[k % ntime], cand_values(&rows[k % ntime]));
    for (int r = 0; r < repeat; r++) {
        double total = 0, acc = 0;
        for (size_t i = 0; i < ntime; i++) {
            uint64_t t0;
            serving_request(q, m, &rows[i], cand_values(&rows[i]));
            t0 = now_ns();
            for (size_t k = 0; k < PEER_CANDS; k++)
                acc += rank_req_score(q, &cands[k]);
            total += (double)(now_ns() - t0);
        }
        times[r] = total / (double)(ntime * PEER_CANDS);
        sink = acc;
    }
    res->ns_cand = median(times, repeat);

    rank_model_close(m);
    free(rows);
    free(one);
    free(cands);
    free(q);
    free(p);
}

static void usage(void)
{
    fprintf(stderr, "usage: adsmith-peer --format F --train FILE [--train-rows A:B] --test FILE [--test-rows A:B]\n"
                    "                    --model ADSMITH_MODEL [--repeat N]\n"
                    "Prints one JSON object: {\"adsmith\": {...}, \"xgboost\": {...}, \"xgb_params\": \"...\"}.\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *format = NULL, *train_path = NULL, *test_path = NULL, *model = NULL;
    struct ctr_reader_opts train_o = {0, 0}, test_o = {0, 0};
    struct peer_rows train, test;
    struct ctr_schema *schema = malloc(sizeof(*schema));
    struct result xr, ar;
    char params[256];
    int repeat = 7;
    static char mem[4096];
    struct buf b;
    struct docw w;

    memset(&train, 0, sizeof(train));
    memset(&test, 0, sizeof(test));
    memset(&xr, 0, sizeof(xr));
    memset(&ar, 0, sizeof(ar));
    if (schema == NULL)
        die("out of memory");
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        if (strcmp(argv[i], "--format") == 0)
            format = v;
        else if (strcmp(argv[i], "--train") == 0)
            train_path = v;
        else if (strcmp(argv[i], "--test") == 0)
            test_path = v;
        else if (strcmp(argv[i], "--model") == 0)
            model = v;
        else if (strcmp(argv[i], "--train-rows") == 0)
            parse_rows(v, &train_o);
        else if (strcmp(argv[i], "--test-rows") == 0)
            parse_rows(v, &test_o);
        else if (strcmp(argv[i], "--repeat") == 0)
            repeat = (int)strtol(v, NULL, 10);
        else
            usage();
    }
    if (format == NULL || train_path == NULL || test_path == NULL || model == NULL || repeat < 1 ||
        repeat > PEER_REPEAT_MAX)
        usage();
    read_rows(train_path, format, &train_o, &train, schema);
    read_rows(test_path, format, &test_o, &test, NULL);

    run_xgb(schema, &train, &test, repeat, &xr, params, sizeof(params));
    run_adsmith(model, schema, &test, repeat, &ar);

    buf_init(&b, mem, sizeof(mem));
    docw_init(&w, DOC_JSON, &b);
    docw_map(&w, 5);
    docw_key(&w, "train_rows");
    docw_uint(&w, train.n);
    docw_key(&w, "test_rows");
    docw_uint(&w, test.n);
    json_result(&w, "adsmith", &ar, true);
    json_result(&w, "xgboost", &xr, false);
    docw_key(&w, "xgb_params");
    docw_cstr(&w, params);
    docw_map_end(&w);
    if (b.overflow)
        die("result too long");
    puts(b.base);
    free(schema);
    return 0;
}
