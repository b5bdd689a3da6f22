/*
 * ctr readers: every format on small inline files, the header rules, the
 * row window (first_row / max_rows), malformed lines with their line numbers,
 * the limits, and the fixtures cut from the shared click-log samples
 * (tests/ctr/fixtures/SOURCES.md).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adsmith/ctr.h"
#include "adsmith/err.h"

static char path[256];
static struct ctr_row row;
static struct ads_diag diag;

static void cleanup(void)
{
    if (path[0] != '\0')
        unlink(path);
    path[0] = '\0';
}

TestSuite(reader, .fini = cleanup);
TestSuite(hash);

/* Writes @p len bytes to a fresh temporary file; its name is in `path`. */
static const char *file_of(const char *data, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    FILE *f;
    int fd;

    cleanup();
    snprintf(path, sizeof(path), "%s/ctr-test-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
    f = fdopen(fd, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static struct ctr_reader *open_text(const char *text, const char *format, const struct ctr_reader_opts *o)
{
    struct ctr_reader *r = NULL;
    int rc = ctr_reader_open(file_of(text, strlen(text)), format, o, &r, &diag);

    cr_assert_eq(rc, 0, "open %s: %s (%s)", format, diag.message, ads_err_name(rc));
    return r;
}

/* Reads the next row, which must be good. */
static void next_ok(struct ctr_reader *r)
{
    int rc = ctr_reader_next(r, &row, &diag);

    cr_assert_eq(rc, 1, "expected a row, got %d: %s", rc, diag.message);
}

/* Reads the next row, which must be refused at @p line with @p words in the message. */
static void next_bad(struct ctr_reader *r, unsigned line, const char *words)
{
    char want[32];
    int rc = ctr_reader_next(r, &row, &diag);

    cr_assert_eq(rc, ADS_EINVAL, "expected ADS_EINVAL, got %d (%s)", rc, diag.message);
    snprintf(want, sizeof(want), "line %u: ", line);
    cr_expect(strncmp(diag.message, want, strlen(want)) == 0, "'%s' should start with '%s'", diag.message, want);
    cr_expect(strstr(diag.message, words) != NULL, "'%s' should say '%s'", diag.message, words);
}

static void at_end(struct ctr_reader *r)
{
    int rc = ctr_reader_next(r, &row, &diag);

    cr_assert_eq(rc, 0, "expected the end, got %d: %s", rc, diag.message);
}

static int open_err(const char *text, const char *format)
{
    struct ctr_reader *r = NULL;
    int rc = ctr_reader_open(file_of(text, strlen(text)), format, NULL, &r, &diag);

    cr_assert_null(r);
    return rc;
}

static uint64_t tok(const char *s)
{
    return ctr_hash(s, strlen(s), 0);
}

/* The value of @p field in the current row, or NULL. */
static const struct ctr_value *value_of(uint32_t field)
{
    for (uint32_t i = 0; i < row.n; i++) {
        if (row.v[i].field == field)
            return &row.v[i];
    }
    return NULL;
}

static int field_index(const struct ctr_reader *r, const char *name)
{
    const struct ctr_schema *s = ctr_reader_schema(r);

    for (uint32_t i = 0; i < s->nfields; i++) {
        if (strcmp(s->fields[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* ---- the hash ---- */

Test(hash, known_answers)
{
    /* Frozen values: a change here breaks every model file ever written. */
    cr_expect_eq(ctr_hash("", 0, 0), UINT64_C(0xe220a8397b1dcdaf));
    cr_expect_eq(ctr_hash("a", 1, 0), UINT64_C(0x8cf4b9a4769cf8d4));
    cr_expect_eq(ctr_hash("68fd1e64", 8, 0), UINT64_C(0xa61e87dcdde60cb9));
    cr_expect_eq(ctr_hash("abcdefgh", 8, 0), UINT64_C(0x5c5e43f1e842e2aa));
    cr_expect_eq(ctr_hash("abcdefghi", 9, 0), UINT64_C(0x606274c97ab4d67a));
    cr_expect_eq(ctr_hash("hello, world", 12, 0), UINT64_C(0x1af4512a83f4ffb0));
    cr_expect_eq(ctr_hash("a", 1, 1), UINT64_C(0x63b965894f8b8b7c));
}

Test(hash, trailing_zeros_and_seeds_differ)
{
    static const char z[16] = {0};

    for (size_t i = 0; i < 16; i++) {
        cr_expect_neq(ctr_hash(z, i, 0), ctr_hash(z, i + 1, 0), "length %zu", i);
        cr_expect_neq(ctr_hash(z, i, 0), ctr_hash(z, i, 1), "seed, length %zu", i);
    }
}

Test(hash, avalanche)
{
    /* Flipping one input bit flips about half of the output bits. */
    unsigned char buf[12];
    double flips = 0;
    int trials = 0;

    for (int k = 0; k < 200; k++) {
        for (size_t j = 0; j < sizeof(buf); j++)
            buf[j] = (unsigned char)(k * 31 + (int)j * 7);
        uint64_t h = ctr_hash(buf, sizeof(buf), 0);
        for (int bit = 0; bit < 8 * (int)sizeof(buf); bit++) {
            buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            flips += __builtin_popcountll(h ^ ctr_hash(buf, sizeof(buf), 0));
            buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            trials++;
        }
    }
    cr_expect(fabs(flips / trials - 32) < 0.5, "mean flipped bits %.3f", flips / trials);
}

/* ---- criteo ---- */

/* Line 1 of the Criteo sample after its first three cells "0\t1\t1", and a sparse row after its label. */
#define CRITEO_1_TAIL                                                                                                  \
    "\t5\t0\t1382\t4\t15\t2\t181\t1\t2\t\t2\t68fd1e64\t80e26c9b\tfb936136\t7b4723c4\t25c83c98\t7e0ccccf\tde7995b8\t"   \
    "1f89b562\ta73ee510\ta8cd5504\tb2cb9c98\t37c9c164\t2824a5f6\t1adce6ef\t8ba8b39a\t891b62e7\te5ba7672\tf54016b9\t"   \
    "21ddcdc9\tb1252a9d\t07b5194c\t\t3a171ecb\tc5c50484\te8b83407\t9727dd16\n"
#define CRITEO_1 "0\t1\t1" CRITEO_1_TAIL
#define CRITEO_2_TAIL "\t-1\t\t\t\t\t\t\t\t\t\t\t\t0.5\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t9727dd16\n"
#define CRITEO_2 "1" CRITEO_2_TAIL

Test(reader, criteo)
{
    struct ctr_reader *r = open_text(CRITEO_1 CRITEO_2, "criteo", NULL);
    const struct ctr_schema *s = ctr_reader_schema(r);

    cr_expect_str_eq(s->id, "criteo");
    cr_assert_eq(s->nfields, 39);
    cr_expect_str_eq(s->fields[0].name, "I1");
    cr_expect_eq(s->fields[12].kind, CTR_NUM);
    cr_expect_str_eq(s->fields[13].name, "C1");
    cr_expect_eq(s->fields[38].kind, CTR_CAT);

    next_ok(r);
    cr_expect_eq(row.label, 0);
    cr_expect_eq(row.line, 1);
    cr_expect_eq(row.n, 37, "I12 and C22 are empty: 39 - 2 values");
    cr_expect_eq(value_of(11), NULL);
    cr_expect_float_eq(value_of(4)->x, 1382, 0);
    cr_expect_eq(value_of(13)->token, tok("68fd1e64"));
    cr_expect_eq(value_of(13)->kind, CTR_CAT);
    cr_expect_float_eq(value_of(13)->x, 1, 0);
    cr_expect_eq(value_of(34), NULL);

    next_ok(r);
    cr_expect_eq(row.label, 1);
    cr_expect_eq(row.n, 3);
    cr_expect_float_eq(value_of(0)->x, -1, 0);
    cr_expect_float_eq(value_of(12)->x, 0.5, 0);
    cr_expect_eq(value_of(38)->token, tok("9727dd16"));
    at_end(r);
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, criteo_malformed_lines)
{
    struct ctr_reader *r = open_text(CRITEO_1 "0\t1\t2\n"
                                              "2" CRITEO_2_TAIL CRITEO_1,
                                     "criteo", NULL);

    next_ok(r);
    next_bad(r, 2, "expected 40 tab-separated columns");
    next_bad(r, 3, "label");
    next_ok(r);
    cr_expect_eq(row.line, 4);
    at_end(r);
    ctr_reader_close(r);

    r = open_text("0\t1\tx1" CRITEO_1_TAIL, "criteo", NULL);
    next_bad(r, 1, "column 3 (I2): 'x1' is not a number");
    ctr_reader_close(r);

    r = open_text("0\tnan\t1" CRITEO_1_TAIL, "criteo", NULL);
    next_bad(r, 1, "is not a number");
    ctr_reader_close(r);

    r = open_text("0\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t13\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t13\t14"
                  "\t15\t16\t17\t18\t19\t20\t21\t22\t23\t24\t25\t26\textra\n",
                  "criteo", NULL);
    next_bad(r, 1, "found more than 40");
    ctr_reader_close(r);
}

/* ---- avazu ---- */

#define AVAZU_HEADER                                                                                                   \
    "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,device_id,"          \
    "device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21\n"
#define AVAZU_1                                                                                                        \
    "10000169349117863715,0,14102100,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22,a99f214a,"           \
    "96809ac8,711ee120,1,0,15704,320,50,1722,0,35,100084,79\n"
#define AVAZU_2                                                                                                        \
    "1000009418151094273,1,14102113,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22,a99f214a,"            \
    "ddd2926e,44956a24,1,2,15706,320,50,1722,0,35,-1,79\n"

Test(reader, avazu_with_header)
{
    struct ctr_reader *r = open_text(AVAZU_HEADER AVAZU_1 AVAZU_2, "avazu", NULL);
    const struct ctr_schema *s = ctr_reader_schema(r);
    int hod = field_index(r, "hour_of_day");

    cr_assert_eq(s->nfields, 23);
    cr_expect_str_eq(s->fields[0].name, "hour");
    cr_expect_str_eq(s->fields[21].name, "C21");
    cr_expect_eq(hod, 22);
    next_ok(r);
    cr_expect_eq(row.line, 2);
    cr_expect_eq(row.label, 0);
    cr_expect_eq(row.n, 23);
    cr_expect_eq(value_of(0)->token, tok("14102100"));
    cr_expect_eq(value_of((uint32_t)hod)->token, tok("00"));
    cr_expect_eq(value_of(field_index(r, "site_id"))->token, tok("1fbe01fe"));
    cr_expect_eq(value_of(field_index(r, "C20"))->token, tok("100084"));
    next_ok(r);
    cr_expect_eq(row.label, 1);
    cr_expect_eq(value_of((uint32_t)hod)->token, tok("13"));
    cr_expect_eq(value_of(field_index(r, "C20"))->token, tok("-1"));
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, avazu_without_header_and_bad_click)
{
    struct ctr_reader *r = open_text(AVAZU_1 "1,2,3\n" AVAZU_2, "avazu", NULL);

    next_ok(r);
    cr_expect_eq(row.line, 1);
    next_bad(r, 2, "expected 24 comma-separated columns");
    next_ok(r);
    ctr_reader_close(r);

    r = open_text("1,yes,14102100,1005,0,a,b,c,d,e,f,g,h,i,1,0,1,2,3,4,5,6,7,8\n", "avazu", NULL);
    next_bad(r, 1, "click (column 2) must be 0 or 1, not 'yes'");
    ctr_reader_close(r);
}

/* ---- libsvm and libffm ---- */

Test(reader, libsvm)
{
    struct ctr_reader *r = open_text("1 3:1 7:0.5 # a comment\n"
                                     "-1 2\n"
                                     "0 qid:3 5:2\r\n"
                                     "+1\n"
                                     "\n"
                                     "   \t\n"
                                     "0 9:1",
                                     "libsvm", NULL);
    const struct ctr_schema *s = ctr_reader_schema(r);

    cr_assert_eq(s->nfields, 1);
    cr_expect_str_eq(s->fields[0].name, "features");
    cr_expect_eq(s->fields[0].kind, CTR_CAT);
    next_ok(r);
    cr_expect_eq(row.label, 1);
    cr_assert_eq(row.n, 2);
    cr_expect_eq(row.v[0].token, tok("3"));
    cr_expect_float_eq(row.v[0].x, 1, 0);
    cr_expect_eq(row.v[1].token, tok("7"));
    cr_expect_float_eq(row.v[1].x, 0.5, 0);
    next_ok(r);
    cr_expect_eq(row.label, 0, "-1 is a negative");
    cr_assert_eq(row.n, 1);
    cr_expect_float_eq(row.v[0].x, 1, 0, "no :val means 1");
    next_ok(r);
    cr_assert_eq(row.n, 1, "qid is ignored");
    cr_expect_eq(row.v[0].token, tok("5"));
    cr_expect_float_eq(row.v[0].x, 2, 0, "the \\r is not part of the value");
    next_ok(r);
    cr_expect_eq(row.label, 1);
    cr_expect_eq(row.n, 0);
    next_ok(r);
    cr_expect_eq(row.line, 7, "blank lines count as lines, not rows");
    cr_expect_eq(row.v[0].token, tok("9"), "a last line without a newline");
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, libsvm_malformed)
{
    struct ctr_reader *r =
        open_text("x 1:1\n2 1:1\n1 a:1\n1 3:\n1 3:x\n1 :1\n1 123456789012345678901:1\n1 4:1\n", "libsvm", NULL);

    next_bad(r, 1, "label 0 or 1");
    next_bad(r, 2, "label 0 or 1");
    next_bad(r, 3, "index must be a whole number");
    next_bad(r, 4, "not a number");
    next_bad(r, 5, "not a number");
    next_bad(r, 6, "index must be a whole number");
    next_bad(r, 7, "at most 20 digits");
    next_ok(r);
    cr_expect_eq(row.line, 8);
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, libffm)
{
    struct ctr_reader *r = open_text("1 0:3:1 2:7:0.5 255:1\n0 256:1:1\n0 a:1:1\n0 1:x:1\n", "libffm", NULL);
    const struct ctr_schema *s = ctr_reader_schema(r);

    cr_assert_eq(s->nfields, CTR_MAX_FIELDS);
    cr_expect_str_eq(s->fields[0].name, "0");
    cr_expect_str_eq(s->fields[255].name, "255");
    next_ok(r);
    cr_assert_eq(row.n, 3);
    cr_expect_eq(row.v[0].field, 0);
    cr_expect_eq(row.v[0].token, tok("3"));
    cr_expect_eq(row.v[1].field, 2);
    cr_expect_eq(row.v[1].token, tok("7"));
    cr_expect_float_eq(row.v[1].x, 0.5, 0);
    cr_expect_eq(row.v[2].field, 255);
    cr_expect_eq(row.v[2].token, tok("1"));
    next_bad(r, 2, "field numbers run from 0 to 255");
    next_bad(r, 3, "not field:index:value");
    next_bad(r, 4, "index must be a whole number");
    at_end(r);
    ctr_reader_close(r);
}

/* ---- csv:SPEC / tsv:SPEC ---- */

Test(reader, csv_spec_header_quotes)
{
    struct ctr_reader *r = open_text("id,clicked,price,site\n"
                                     "a,1,2.5,example.com\n"
                                     "\"b,c\",0,,\"say \"\"hi\"\"\"\n"
                                     "d,1,3,\n",
                                     "csv:skip,label,num:price,cat:site", NULL);
    const struct ctr_schema *s = ctr_reader_schema(r);

    cr_assert_eq(s->nfields, 2);
    cr_expect_str_eq(s->id, "csv");
    cr_expect_str_eq(s->fields[0].name, "price");
    cr_expect_eq(s->fields[0].kind, CTR_NUM);
    cr_expect_eq(s->fields[1].kind, CTR_CAT);
    next_ok(r);
    cr_expect_eq(row.line, 2, "the header line is skipped");
    cr_expect_eq(row.label, 1);
    cr_assert_eq(row.n, 2);
    cr_expect_float_eq(value_of(0)->x, 2.5, 0);
    cr_expect_eq(value_of(1)->token, tok("example.com"));
    next_ok(r);
    cr_expect_eq(row.label, 0);
    cr_assert_eq(row.n, 1);
    cr_expect_eq(value_of(1)->token, tok("say \"hi\""));
    next_ok(r);
    cr_expect_eq(row.n, 1);
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, csv_without_header_and_malformed)
{
    struct ctr_reader *r = open_text("1,2.5,x\n"
                                     "1,2.5\n"
                                     "1,2.5,x,y\n"
                                     "1,abc,x\n"
                                     "yes,1,x\n"
                                     "1,1,\"open\n"
                                     "1,1,\"closed\"junk\n"
                                     "0,1e3,z\n",
                                     "csv:label,num:price,cat:site", NULL);

    next_ok(r);
    cr_expect_eq(row.line, 1, "a first line of data is data");
    next_bad(r, 2, "expected 3 columns");
    next_bad(r, 3, "found more than 3");
    next_bad(r, 4, "column 2 (price): 'abc' is not a number");
    next_bad(r, 5, "the label (column 1) must be 0 or 1");
    next_bad(r, 6, "quoted cell");
    next_bad(r, 7, "quoted cell");
    next_ok(r);
    cr_expect_float_eq(value_of(0)->x, 1000, 0);
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, tsv_spec)
{
    struct ctr_reader *r = open_text("label\tsite\n1\t\"q\"\n0\ta,b\n", "tsv:label,cat:site", NULL);

    next_ok(r);
    cr_expect_eq(row.line, 2);
    cr_expect_eq(value_of(0)->token, tok("\"q\""), "tsv never unquotes");
    next_ok(r);
    cr_expect_eq(value_of(0)->token, tok("a,b"));
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, bad_formats_and_specs)
{
    cr_expect_eq(open_err("", "parquet"), ADS_EINVAL);
    cr_expect(strstr(diag.message, "unknown format 'parquet'") != NULL, "%s", diag.message);
    cr_expect_eq(open_err("", "csv"), ADS_EINVAL);
    cr_expect(strstr(diag.message, "needs a column SPEC") != NULL, "%s", diag.message);
    cr_expect_eq(open_err("", "csv:"), ADS_EINVAL);
    cr_expect_eq(open_err("", "csv:num:a,cat:b"), ADS_EINVAL);
    cr_expect(strstr(diag.message, "no label column") != NULL, "%s", diag.message);
    cr_expect_eq(open_err("", "csv:label,label,cat:b"), ADS_EINVAL);
    cr_expect(strstr(diag.message, "more than one label") != NULL, "%s", diag.message);
    cr_expect_eq(open_err("", "csv:label,cat:b,num:b"), ADS_EINVAL);
    cr_expect(strstr(diag.message, "named twice") != NULL, "%s", diag.message);
    cr_expect_eq(open_err("", "csv:label,cat:a b"), ADS_EINVAL);
    cr_expect_eq(open_err("", "csv:label,cat:"), ADS_EINVAL);
    cr_expect_eq(open_err("", "csv:label,cat:abcdefghijabcdefghijabcdefghijab"), ADS_EINVAL, "32-byte name");
    cr_expect_eq(open_err("", "csv:label,str:a"), ADS_EINVAL);
    cr_expect_eq(open_err("", "csv:label,skip"), ADS_EINVAL);
    cr_expect(strstr(diag.message, "no num:NAME or cat:NAME") != NULL, "%s", diag.message);
    cr_expect_eq(open_err("", "csv:label,,cat:a"), ADS_EINVAL);
    cr_expect_eq(open_err("", "adsmith:label,cat:a"), ADS_EINVAL, "adsmith:SPEC has fields only");
}

Test(reader, spec_limits)
{
    /* 257 fields: one over CTR_MAX_FIELDS. */
    static char spec[8192];
    size_t n = (size_t)snprintf(spec, sizeof(spec), "csv:label");

    for (int i = 0; i <= CTR_MAX_FIELDS; i++)
        n += (size_t)snprintf(spec + n, sizeof(spec) - n, ",cat:f%d", i);
    cr_expect_eq(open_err("", spec), ADS_EINVAL);
    cr_expect(strstr(diag.message, "more than 256 fields") != NULL, "%s", diag.message);

    /* 1025 columns: one over the column limit, even when most are skipped. */
    n = (size_t)snprintf(spec, sizeof(spec), "csv:label,cat:a");
    for (int i = 2; i <= CTR_MAX_VALUES; i++)
        n += (size_t)snprintf(spec + n, sizeof(spec) - n, ",skip");
    cr_expect_eq(open_err("", spec), ADS_EINVAL);
    cr_expect(strstr(diag.message, "more than 1024 columns") != NULL, "%s", diag.message);
}

/* ---- adsmith JSON Lines ---- */

#define ADS_SCHEMA                                                                                                     \
    "{\"schema\":\"adsmith.ctr.v1\",\"fields\":[{\"name\":\"site\",\"kind\":\"cat\"},"                                 \
    "{\"name\":\"price\",\"kind\":\"num\"},{\"name\":\"tags\",\"kind\":\"cat\"}]}\n"

Test(reader, adsmith)
{
    struct ctr_reader *r = open_text(ADS_SCHEMA "{\"label\":1,\"ts\":5,\"features\":{\"site\":\"a.com\",\"price\":2.5,"
                                                "\"tags\":[\"x\",3,null,true]}}\n"
                                                "{\"label\":false,\"features\":{\"site\":3,\"price\":null}}\n"
                                                "{\"label\":0}\n",
                                     "adsmith", NULL);
    const struct ctr_schema *s = ctr_reader_schema(r);

    cr_assert_eq(s->nfields, 3);
    cr_expect_str_eq(s->id, "adsmith");
    cr_expect_str_eq(s->fields[1].name, "price");
    cr_expect_eq(s->fields[1].kind, CTR_NUM);
    next_ok(r);
    cr_expect_eq(row.line, 2);
    cr_expect_eq(row.label, 1);
    cr_assert_eq(row.n, 5);
    cr_expect_eq(row.v[0].field, 0);
    cr_expect_eq(row.v[0].token, tok("a.com"));
    cr_expect_eq(row.v[1].field, 1);
    cr_expect_float_eq(row.v[1].x, 2.5, 0);
    cr_expect_eq(row.v[2].token, tok("x"));
    cr_expect_eq(row.v[3].token, tok("3"), "a whole number is its integer text");
    cr_expect_eq(row.v[4].token, tok("true"));
    next_ok(r);
    cr_expect_eq(row.label, 0);
    cr_assert_eq(row.n, 1, "null is missing");
    cr_expect_eq(row.v[0].token, tok("3"));
    next_ok(r);
    cr_expect_eq(row.n, 0);
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, adsmith_malformed)
{
    struct ctr_reader *r = open_text(ADS_SCHEMA "{\"label\":1,\"features\":{\"city\":\"x\"}}\n"
                                                "{\"label\":2}\n"
                                                "{\"label\":1,\"features\":{\"price\":\"high\"}}\n"
                                                "{\"label\":1,\"features\":{\"site\":{\"a\":1}}}\n"
                                                "{\"label\":1,\"features\":{\"tags\":[[1]]}}\n"
                                                "{\"label\":1} trailing\n"
                                                "[1]\n"
                                                "{\"label\":1,\"features\":[]}\n"
                                                "{\"label\":1,\"features\":{\"price\":1}}\n",
                                     "adsmith", NULL);

    next_bad(r, 2, "'city' is not a field of the schema");
    cr_expect_str_eq(diag.pointer, "/features/city");
    next_bad(r, 3, "/label must be 0 or 1");
    next_bad(r, 4, "a numeric feature is a number");
    next_bad(r, 5, "a categorical feature is a string");
    next_bad(r, 6, "a list of tokens");
    next_bad(r, 7, "not one JSON object");
    next_bad(r, 8, "not a JSON object");
    next_bad(r, 9, "/features must be an object");
    next_ok(r);
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, adsmith_schema_line)
{
    struct ctr_reader *r;

    cr_expect_eq(open_err("", "adsmith"), ADS_EINVAL);
    cr_expect(strstr(diag.message, "the file is empty") != NULL, "%s", diag.message);
    cr_expect_eq(open_err("\n{\"label\":1}\n", "adsmith"), ADS_EINVAL);
    cr_expect(strstr(diag.message, "line 2: the adsmith format starts with a schema line") != NULL, "%s", diag.message);
    cr_expect_eq(open_err("{\"schema\":\"adsmith.ctr.v9\",\"fields\":[]}\n", "adsmith"), ADS_EINVAL);
    cr_expect_eq(open_err("{\"schema\":\"adsmith.ctr.v1\",\"fields\":[]}\n", "adsmith"), ADS_EINVAL);
    cr_expect_eq(
        open_err("{\"schema\":\"adsmith.ctr.v1\",\"fields\":[{\"name\":\"a\",\"kind\":\"str\"}]}\n", "adsmith"),
        ADS_EINVAL);
    cr_expect_eq(open_err("{\"schema\":\"adsmith.ctr.v1\",\"fields\":[{\"name\":\"a\",\"kind\":\"cat\"},"
                          "{\"name\":\"a\",\"kind\":\"num\"}]}\n",
                          "adsmith"),
                 ADS_EINVAL);
    cr_expect(strstr(diag.message, "named twice") != NULL, "%s", diag.message);

    /* With adsmith:SPEC the fields come from the format; a schema line is skipped. */
    r = open_text(ADS_SCHEMA "{\"label\":1,\"features\":{\"b\":\"x\",\"a\":1}}\n", "adsmith:num:a,cat:b", NULL);
    cr_expect_eq(ctr_reader_schema(r)->nfields, 2);
    next_ok(r);
    cr_expect_eq(row.line, 2);
    cr_assert_eq(row.n, 2);
    cr_expect_eq(row.v[0].field, 1);
    cr_expect_eq(row.v[1].field, 0);
    ctr_reader_close(r);
    r = open_text("{\"label\":1,\"features\":{\"b\":\"x\"}}\n", "adsmith:num:a,cat:b", NULL);
    next_ok(r);
    cr_expect_eq(row.line, 1);
    ctr_reader_close(r);
}

/* ---- rows, limits, files ---- */

Test(reader, row_window_counts_malformed_not_blank_or_header)
{
    /* Data rows: 0 = line 2, 1 = line 3 (malformed), 2 = line 5, 3 = line 6, 4 = line 7. */
    static const char text[] = "label\tsite\n1\ta\nbad\n\n0\tc\n1\td\n0\te\n";
    struct ctr_reader_opts o = {.first_row = 1, .max_rows = 3};
    struct ctr_reader *r = open_text(text, "tsv:label,cat:site", &o);

    next_bad(r, 3, "expected 2 columns");
    next_ok(r);
    cr_expect_eq(row.line, 5);
    next_ok(r);
    cr_expect_eq(row.line, 6);
    at_end(r);
    ctr_reader_close(r);

    o.first_row = 2;
    o.max_rows = 0;
    r = open_text(text, "tsv:label,cat:site", &o);
    next_ok(r);
    cr_expect_eq(row.line, 5);
    next_ok(r);
    next_ok(r);
    cr_expect_eq(row.line, 7);
    at_end(r);
    ctr_reader_close(r);

    o.first_row = 10;
    r = open_text(text, "tsv:label,cat:site", &o);
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, overlong_line)
{
    size_t len = CTR_LINE_MAX + 1 + 64;
    char *text = malloc(len + 1);
    struct ctr_reader *r = NULL;
    uint64_t done, total;

    cr_assert_not_null(text);
    /* Line 1 is fine, line 2 has CTR_LINE_MAX + 1 bytes, line 3 is fine. */
    memcpy(text, "1 1:1\n1 ", 8);
    memset(text + 8, '7', CTR_LINE_MAX + 1 - 2);
    memcpy(text + 8 + CTR_LINE_MAX + 1 - 2, "\n0 2:1\n", 8);
    len = strlen(text);
    cr_assert_eq(ctr_reader_open(file_of(text, len), "libsvm", NULL, &r, &diag), 0);
    next_ok(r);
    next_bad(r, 2, "longer than 1048576 bytes");
    next_ok(r);
    cr_expect_eq(row.line, 3);
    cr_expect_eq(row.label, 0);
    at_end(r);
    ctr_reader_progress(r, &done, &total);
    cr_expect_eq(done, len);
    cr_expect_eq(total, len);
    ctr_reader_close(r);
    free(text);
}

Test(reader, longest_line_is_fine)
{
    /* A line of exactly CTR_LINE_MAX bytes (the label, a space, one long index... kept under 20 digits by
     * padding with spaces). */
    char *text = malloc(CTR_LINE_MAX + 2);
    struct ctr_reader *r = NULL;

    cr_assert_not_null(text);
    memset(text, ' ', CTR_LINE_MAX);
    memcpy(text, "1 5:1", 5);
    text[CTR_LINE_MAX] = '\n';
    cr_assert_eq(ctr_reader_open(file_of(text, CTR_LINE_MAX + 1), "libsvm", NULL, &r, &diag), 0);
    next_ok(r);
    cr_expect_eq(row.n, 1);
    at_end(r);
    ctr_reader_close(r);
    free(text);
}

Test(reader, crlf_does_not_count_against_the_limit)
{
    /* Line 1: CTR_LINE_MAX bytes and "\r\n" (accepted, as with "\n" alone);
     * line 2: CTR_LINE_MAX + 1 bytes and "\r\n" (too long); line 3: a short
     * one; line 4: CTR_LINE_MAX bytes and "\r" at the end of the file. */
    size_t m = CTR_LINE_MAX, len = (m + 2) + (m + 3) + 7 + (m + 1);
    char *text = malloc(len);
    struct ctr_reader *r = NULL;
    char *p = text;

    cr_assert_not_null(text);
    memset(p, ' ', m);
    memcpy(p, "1 5:1", 5);
    memcpy(p + m, "\r\n", 2);
    p += m + 2;
    memset(p, ' ', m + 1);
    memcpy(p, "0 6:1", 5);
    memcpy(p + m + 1, "\r\n", 2);
    p += m + 3;
    memcpy(p, "0 7:1\r\n", 7);
    p += 7;
    memset(p, ' ', m);
    memcpy(p, "1 8:1", 5);
    p[m] = '\r';
    cr_assert_eq(ctr_reader_open(file_of(text, len), "libsvm", NULL, &r, &diag), 0);
    next_ok(r);
    cr_expect_eq(row.line, 1);
    cr_expect_eq(row.n, 1);
    next_bad(r, 2, "longer than 1048576 bytes");
    next_ok(r);
    cr_expect_eq(row.line, 3);
    next_ok(r);
    cr_expect_eq(row.line, 4);
    cr_expect_eq(row.label, 1);
    at_end(r);
    ctr_reader_close(r);
    free(text);
}

Test(reader, too_many_values)
{
    /* CTR_MAX_VALUES values are fine, one more is refused. */
    static char text[16 * (CTR_MAX_VALUES + 2)];
    size_t n = (size_t)snprintf(text, sizeof(text), "1");
    struct ctr_reader *r;

    for (int i = 0; i < CTR_MAX_VALUES; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, " %d", i);
    n += (size_t)snprintf(text + n, sizeof(text) - n, "\n1");
    for (int i = 0; i <= CTR_MAX_VALUES; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, " %d", i);
    snprintf(text + n, sizeof(text) - n, "\n");
    r = open_text(text, "libsvm", NULL);
    next_ok(r);
    cr_expect_eq(row.n, CTR_MAX_VALUES);
    next_bad(r, 2, "more than 1024 values in one row");
    at_end(r);
    ctr_reader_close(r);
}

Test(reader, missing_file_and_directory)
{
    struct ctr_reader *r = NULL;

    cr_expect_eq(ctr_reader_open("/nonexistent/ctr.tsv", "criteo", NULL, &r, &diag), -ENOENT);
    cr_expect(strstr(diag.message, "cannot open /nonexistent/ctr.tsv") != NULL, "%s", diag.message);
    cr_expect_eq(ctr_reader_open("/", "criteo", NULL, &r, &diag), -EISDIR);
    cr_expect_null(r);
    ctr_reader_close(NULL);
}

/* ---- the fixtures (first rows of the shared samples) ---- */

static void count_fixture(const char *name, const char *format, uint64_t rows, uint64_t clicks, uint32_t values)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char file[512];
    struct ctr_reader *r = NULL;
    uint64_t n = 0, pos = 0, vals = 0;
    int rc;

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is set by meson test");
    snprintf(file, sizeof(file), "%s/tests/ctr/fixtures/%s", root, name);
    cr_assert_eq(ctr_reader_open(file, format, NULL, &r, &diag), 0, "%s", diag.message);
    while ((rc = ctr_reader_next(r, &row, &diag)) == 1) {
        n++;
        pos += row.label == 1;
        vals += row.n;
    }
    cr_assert_eq(rc, 0, "%s: %s", name, diag.message);
    cr_expect_eq(n, rows, "%s rows", name);
    cr_expect_eq(pos, clicks, "%s clicks", name);
    if (values > 0)
        cr_expect_eq(vals, (uint64_t)values * rows, "%s: %u values a row", name, values);
    ctr_reader_close(r);
}

Test(reader, fixtures)
{
    count_fixture("criteo.tsv", "criteo", 200, 44, 0);
    count_fixture("avazu.csv", "avazu", 200, 37, 23);
    count_fixture("ipinyou.txt", "libsvm", 200, 1, 16);
}
