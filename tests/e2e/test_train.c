/*
 * End-to-end tests of `adsmith train` and `adsmith eval`: the real binary on
 * the click-log fixtures (tests/ctr/fixtures), its exit status, its stdout
 * (one JSON object with --json) and its model files.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define OUT_MAX (256 * 1024)
#define MODEL_MAX (64 * 1024 * 1024)
#define RUN_TIMEOUT_MS 60000

static struct e2e_daemon ws; /* the workspace: models and input files */
static struct e2e_daemon fg; /* one run at a time */
static char *out_text, *log_text;

static void setup(void)
{
    int rc = e2e_daemon_init(&ws);

    cr_assert_eq(rc, 0, "e2e_daemon_init: %s", ws.why);
    out_text = malloc(OUT_MAX);
    log_text = malloc(OUT_MAX);
    cr_assert(out_text != NULL && log_text != NULL);
}

static void teardown(void)
{
    e2e_daemon_done(&fg);
    e2e_daemon_done(&ws);
    free(out_text);
    free(log_text);
}

TestSuite(train, .init = setup, .fini = teardown, .timeout = 180);

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(e2e_path(&ws, name), "w");

    cr_assert_not_null(f, "cannot create %s: %s", name, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
}

/* Runs `adsmith ARGS...` to completion: stdout in out_text, stderr in log_text; returns the exit status. */
static int run(const char *const args[])
{
    int rc, status = -1;
    size_t len;

    e2e_daemon_done(&fg);
    rc = e2e_daemon_init(&fg);
    cr_assert_eq(rc, 0, "e2e_daemon_init: %s", fg.why);
    rc = e2e_daemon_spawn(&fg, args);
    cr_assert_eq(rc, 0, "cannot run adsmith: %s", fg.why);
    rc = e2e_daemon_wait(&fg, RUN_TIMEOUT_MS, &status);
    cr_assert_eq(rc, 0, "adsmith did not exit within %d ms", RUN_TIMEOUT_MS);
    rc = e2e_file_read(fg.log_path, log_text, OUT_MAX, &len);
    cr_assert_eq(rc, 0, "cannot read stderr: %s", strerror(-rc));
    rc = e2e_file_read(fg.out_path, out_text, OUT_MAX, &len);
    cr_assert_eq(rc, 0, "cannot read stdout: %s", strerror(-rc));
    cr_assert_null(strstr(log_text, "Sanitizer"), "sanitizer report:\n%s", log_text);
    cr_assert_null(strstr(log_text, "runtime error:"), "sanitizer report:\n%s", log_text);
    return status;
}

static void assert_log_has(const char *text)
{
    cr_assert_not_null(strstr(log_text, text), "stderr lacks \"%s\":\n%s", text, log_text);
}

/* Trains on the first 160 rows of the Criteo fixture. */
static int train_criteo(const char *model, const char *seed)
{
    const char *args[] = {"train",    "--input", e2e_source("tests/ctr/fixtures/criteo.tsv"),
                          "--format", "criteo",  "--rows",
                          "0:160",    "--out",   e2e_path(&ws, model),
                          "--seed",   seed,      NULL};

    return run(args);
}

static char *slurp(const char *path, size_t *ret_len)
{
    char *buf = malloc(MODEL_MAX);
    int rc;

    cr_assert_not_null(buf);
    rc = e2e_file_read(path, buf, MODEL_MAX, ret_len);
    cr_assert_eq(rc, 0, "cannot read %s: %s", path, strerror(-rc));
    return buf;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    cr_assert(cJSON_IsNumber(v), "\"%s\" is not a number", key);
    return v->valuedouble;
}

Test(train, train_then_eval_json)
{
    const char *eval[] = {
        "eval",     "--model", e2e_path(&ws, "m"), "--input", e2e_source("tests/ctr/fixtures/criteo.tsv"),
        "--format", "criteo",  "--rows",           "160:",    "--json",
        NULL};
    const char *end = NULL;
    const cJSON *bins, *bin;
    cJSON *doc;
    uint64_t in_bins = 0;
    int status = train_criteo("m", "3");

    cr_assert_eq(status, 0, "train exit %d:\n%s", status, log_text);
    assert_log_has("read 160 rows");
    assert_log_has("wrote ");
    cr_expect_null(strchr(log_text, '\033'), "no terminal escapes when stderr is not a terminal:\n%s", log_text);

    status = run(eval);
    cr_assert_eq(status, 0, "eval exit %d:\n%s", status, log_text);
    /* Exactly one JSON object, then a newline. */
    doc = cJSON_ParseWithOpts(out_text, &end, 0);
    cr_assert_not_null(doc, "not JSON:\n%s", out_text);
    cr_expect_str_eq(end, "\n", "after the object: '%s'", end);
    cr_assert(cJSON_IsObject(doc));
    cr_expect_eq(num(doc, "rows"), 40);
    cr_expect(num(doc, "positives") > 0 && num(doc, "positives") < 40);
    cr_expect(num(doc, "logloss") > 0 && num(doc, "logloss") < 2, "logloss %g", num(doc, "logloss"));
    cr_expect(num(doc, "ne") > 0, "ne");
    cr_expect(num(doc, "auc") >= 0 && num(doc, "auc") <= 1, "auc");
    cr_expect(num(doc, "calibration") > 0, "calibration");
    cr_expect(num(doc, "model_bytes") > 0);
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(doc, "rows_window")->valuestring, "rows 160:");
    bins = cJSON_GetObjectItemCaseSensitive(doc, "reliability");
    cr_assert(cJSON_IsArray(bins));
    cr_expect_eq(cJSON_GetArraySize(bins), 10);
    cJSON_ArrayForEach(bin, bins)
    {
        in_bins += (uint64_t)num(bin, "count");
        cr_expect(num(bin, "hi") > num(bin, "lo"));
    }
    cr_expect_eq(in_bins, 40, "every row is in one bin");
    cJSON_Delete(doc);

    /* The table form says the same things in words. */
    status = run((const char *const[]){"eval", "--model", e2e_path(&ws, "m"), "--input",
                                       e2e_source("tests/ctr/fixtures/criteo.tsv"), "--format", "criteo", "--rows",
                                       "160:", NULL});
    cr_assert_eq(status, 0, "eval exit %d:\n%s", status, log_text);
    cr_expect_not_null(strstr(out_text, "logloss"), "%s", out_text);
    cr_expect_not_null(strstr(out_text, "AUC"), "%s", out_text);
    cr_expect_not_null(strstr(out_text, "40 rows"), "%s", out_text);
}

Test(train, same_seed_same_bytes)
{
    size_t la, lb;
    char *a, *b;

    cr_assert_eq(train_criteo("a", "42"), 0, "%s", log_text);
    cr_assert_eq(train_criteo("b", "42"), 0, "%s", log_text);
    a = slurp(e2e_path(&ws, "a"), &la);
    b = slurp(e2e_path(&ws, "b"), &lb);
    cr_expect_eq(la, lb, "sizes %zu and %zu", la, lb);
    cr_expect(la == lb && memcmp(a, b, la) == 0, "two trainings with --seed 42 differ");
    free(a);
    free(b);
}

Test(train, other_formats)
{
    int status;

    status = run((const char *const[]){"train", "--input", e2e_source("tests/ctr/fixtures/avazu.csv"), "--format",
                                       "avazu", "--out", e2e_path(&ws, "avazu"), NULL});
    cr_assert_eq(status, 0, "avazu: exit %d:\n%s", status, log_text);
    assert_log_has("read 200 rows (37 clicks, lines 2..201)");
    status =
        run((const char *const[]){"eval", "--model", e2e_path(&ws, "avazu"), "--input",
                                  e2e_source("tests/ctr/fixtures/avazu.csv"), "--format", "avazu", "--json", NULL});
    cr_assert_eq(status, 0, "avazu eval: exit %d:\n%s", status, log_text);

    /* The same file as csv:SPEC: a different schema, which the avazu model refuses. */
    status = run((const char *const[]){"eval", "--model", e2e_path(&ws, "avazu"), "--input",
                                       e2e_source("tests/ctr/fixtures/avazu.csv"), "--format",
                                       "csv:skip,label,cat:hour", NULL});
    cr_expect_eq(status, 2, "schema mismatch: exit %d:\n%s", status, log_text);
}

Test(train, usage_errors)
{
    cr_expect_eq(run((const char *const[]){"train", "--input", e2e_source("tests/ctr/fixtures/criteo.tsv"), "--format",
                                           "criteo", NULL}),
                 2);
    assert_log_has("--out are required");
    cr_expect_eq(run((const char *const[]){"train", "--input", e2e_source("tests/ctr/fixtures/criteo.tsv"), "--format",
                                           "parquet", "--out", e2e_path(&ws, "x"), NULL}),
                 2);
    assert_log_has("unknown format 'parquet'");
    cr_expect_eq(run((const char *const[]){"train", "--input", e2e_source("tests/ctr/fixtures/criteo.tsv"), "--format",
                                           "criteo", "--out", e2e_path(&ws, "x"), "--rows", "5:3", NULL}),
                 2);
    assert_log_has("--rows takes A:B");
    cr_expect_eq(run((const char *const[]){"train", "--input", e2e_source("tests/ctr/fixtures/criteo.tsv"), "--format",
                                           "criteo", "--out", e2e_path(&ws, "x"), "--seed", "-1", NULL}),
                 2);
    /* 0 is the trainer's "default", never a value to pass: refused, not silently replaced. */
    cr_expect_eq(run((const char *const[]){"train", "--input", e2e_source("tests/ctr/fixtures/criteo.tsv"), "--format",
                                           "criteo", "--out", e2e_path(&ws, "x"), "--valid-frac", "0", NULL}),
                 2);
    assert_log_has("--valid-frac must be in (0, 0.5]");
    cr_expect_eq(run((const char *const[]){"train", "--input", e2e_source("tests/ctr/fixtures/criteo.tsv"), "--format",
                                           "criteo", "--out", e2e_path(&ws, "x"), "--bits", "0", NULL}),
                 2);
    assert_log_has("--bits must be a whole number above 0");
    cr_expect_eq(run((const char *const[]){"train", "--bogus", NULL}), 2);
    cr_expect_eq(run((const char *const[]){"eval", "--model", e2e_path(&ws, "x"), NULL}), 2);
    cr_expect_eq(run((const char *const[]){"train", "--help", NULL}), 0);
    cr_expect_not_null(strstr(out_text, "csv:SPEC"), "%s", out_text);
    /* The help says how validation really works on small inputs. */
    cr_expect_not_null(strstr(out_text, "5-fold"), "%s", out_text);
    cr_expect_eq(run((const char *const[]){"eval", "--help", NULL}), 0);
}

Test(train, runtime_errors)
{
    /* No such input, a model that is not one, malformed lines. */
    cr_expect_eq(run((const char *const[]){"train", "--input", e2e_path(&ws, "none.tsv"), "--format", "criteo", "--out",
                                           e2e_path(&ws, "x"), NULL}),
                 1);
    assert_log_has("cannot open");
    write_file("not-a-model", "hello\n");
    cr_expect_eq(run((const char *const[]){"eval", "--model", e2e_path(&ws, "not-a-model"), "--input",
                                           e2e_source("tests/ctr/fixtures/criteo.tsv"), "--format", "criteo", NULL}),
                 1);

    write_file("bad.svm", "1 1:1\n0 2:1\nbad line\n1 1:1\n0 2:1\n1 1:1\n0 2:1\n1 1:1\n0 2:1\n1 1:1\n0 2:1\n1 1:1\n"
                          "0 2:1\n1 1:1\n0 2:1\n1 1:1\n0 2:1\n1 1:1\n0 2:1\n1 1:1\n0 2:1\n1 1:1\n0 2:1\n");
    cr_expect_eq(run((const char *const[]){"train", "--input", e2e_path(&ws, "bad.svm"), "--format", "libsvm", "--out",
                                           e2e_path(&ws, "svm"), NULL}),
                 1);
    assert_log_has("line 3: a line starts with the label");
    assert_log_has("more than 0 malformed lines");
    cr_expect_eq(run((const char *const[]){"train", "--input", e2e_path(&ws, "bad.svm"), "--format", "libsvm", "--out",
                                           e2e_path(&ws, "svm"), "--max-bad", "1", NULL}),
                 0, "%s", log_text);
    assert_log_has("line 3: a line starts with the label");

    /* One class only cannot be trained. */
    write_file("ones.svm", "1 1:1\n1 2:1\n1 1:1\n1 2:1\n1 1:1\n1 2:1\n1 1:1\n1 2:1\n1 1:1\n1 2:1\n1 1:1\n1 2:1\n");
    cr_expect_eq(run((const char *const[]){"train", "--input", e2e_path(&ws, "ones.svm"), "--format", "libsvm", "--out",
                                           e2e_path(&ws, "ones"), NULL}),
                 1, "%s", log_text);
    assert_log_has("cannot train");
}
