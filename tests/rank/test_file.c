#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../models/rank/rank_int.h"
#include "adsmith/rank.h"

/* Known answers on tiny hand-made models, the file's round trip, and every
 * kind of damage a model file can suffer. */

/* A two-field schema: "f" categorical, "n" numeric. */
static void tiny_cfg(struct rank_cfg *c, uint32_t type, uint32_t k)
{
    memset(c, 0, sizeof(*c));
    c->seed = 7;
    c->type = type;
    c->bits = 10;
    c->k = k;
    c->numbins = RANK_NUM_CONT;
    c->nfields = 2;
    snprintf(c->schema, sizeof(c->schema), "tiny");
    snprintf(c->fields[0].name, CTR_NAME_MAX, "f");
    c->fields[0].kind = CTR_CAT;
    snprintf(c->fields[1].name, CTR_NAME_MAX, "n");
    c->fields[1].kind = CTR_NUM;
    rank__cfg_derive(c);
}

static struct ctr_value cat(uint32_t f, const char *tok)
{
    return (struct ctr_value){.field = f, .kind = CTR_CAT, .token = ctr_hash(tok, strlen(tok), 0), .x = 1};
}

static struct ctr_value num(uint32_t f, double x)
{
    return (struct ctr_value){.field = f, .kind = CTR_NUM, .x = x};
}

/* LR: bias -1, "f present" 0.5, token "a" 1.0, "n present" 0.25, n's continuous weight -0.5. */
static unsigned char *tiny_lr(size_t *size, struct rank_cfg *c)
{
    static struct rank_image_meta meta;
    float *w = calloc((size_t)1 << 10, sizeof(float));
    struct ctr_value a = cat(0, "a");
    unsigned char *img = NULL;

    tiny_cfg(c, RANK_TYPE_LR, 0);
    w[c->present[0]] = 0.5f;
    w[rank__bucket(c, c->fkey[0], a.token)] = 1.0f;
    w[c->present[1]] = 0.25f;
    w[c->cont[1]] = -0.5f;
    memset(&meta, 0, sizeof(meta));
    meta.bias = -1;
    meta.cal_a = 1;
    meta.neg_rate = 1;
    snprintf(meta.source, sizeof(meta.source), "hand-made");
    meta.ngolden = 1;
    meta.golden_n[0] = 2;
    meta.golden[0][0] = a;
    meta.golden[0][1] = num(1, 255);
    cr_assert_eq(rank__image_build(c, w, &meta, &img, size, NULL), 0);
    free(w);
    return img;
}

Test(rank_file, hash_is_frozen)
{
    struct rank_cfg c;

    /* Model files depend on these values: a change here orphans every model. */
    tiny_cfg(&c, RANK_TYPE_LR, 0);
    cr_expect_eq(rank__mix(1), 0x4179b061e0c0e0d0ull, "mix(1) = %016llx", (unsigned long long)rank__mix(1));
    cr_expect_eq(rank__bucket(&c, c.fkey[0], ctr_hash("a", 1, 0)), 1005u, "bucket %u",
                 rank__bucket(&c, c.fkey[0], ctr_hash("a", 1, 0)));
    cr_expect_eq(c.present[1], 2u);
    cr_expect_eq(c.cont[1], 3u);
}

Test(rank_file, known_answer_lr)
{
    struct rank_cfg c;
    struct rank_model m;
    size_t size;
    unsigned char *img = tiny_lr(&size, &c);
    struct ctr_value v[3] = {cat(0, "a"), num(1, 255)};

    cr_assert_eq(rank__parse(img, size, false, &m, NULL), 0);
    /* z = -1 + 0.5 + 1.0 + 0.25 - 0.5 * log2(1 + 255) / 8 = 0.25 */
    cr_expect_float_eq(rank__raw_row(&m, v, 2), 0.25, 1e-12);
    cr_expect_float_eq(rank__calibrate(&m, 0.25), 0.56217650088579807, 1e-12);
    /* an unseen token keeps only the field's presence weight: z = -1 + 0.5 */
    v[0] = cat(0, "never seen");
    cr_expect_float_eq(rank__raw_row(&m, v, 1), -0.5, 1e-12);
    /* a missing field contributes nothing; a negative number flips the continuous term */
    v[0] = num(1, -3);
    cr_expect_float_eq(rank__raw_row(&m, v, 1), -1 + 0.25 + 0.5 * 2.0 / 8, 1e-7);
    /* values of an unknown field or the wrong kind are ignored */
    v[0] = (struct ctr_value){.field = 9, .kind = CTR_CAT, .token = 1, .x = 1};
    v[1] = (struct ctr_value){.field = 1, .kind = CTR_CAT, .token = 1, .x = 1};
    cr_expect_float_eq(rank__raw_row(&m, v, 2), -1, 1e-12);
    free(img);
}

Test(rank_file, known_answer_fm)
{
    struct rank_cfg c;
    static struct rank_image_meta meta;
    struct rank_model m;
    unsigned char *img;
    size_t size;
    float *w;

    tiny_cfg(&c, RANK_TYPE_FM, 2);
    w = calloc(((size_t)1 << 10) * c.stride, sizeof(float));
    struct ctr_value v[2] = {cat(0, "a"), num(1, 255)};
    uint32_t ba = rank__bucket(&c, c.fkey[0], v[0].token), bc = c.cont[1];
    w[ba * c.stride] = 0.5f;     /* linear weight of token a */
    w[ba * c.stride + 1] = 1.0f; /* v_a = (1, 2) */
    w[ba * c.stride + 2] = 2.0f;
    w[bc * c.stride + 1] = 3.0f; /* v_cont = (3, -1), times x = log2(256)/8 = 1 */
    w[bc * c.stride + 2] = -1.0f;
    memset(&meta, 0, sizeof(meta));
    meta.cal_a = 2;
    meta.cal_b = -1;
    meta.neg_rate = 1;
    cr_assert_eq(rank__image_build(&c, w, &meta, &img, &size, NULL), 0);
    cr_assert_eq(rank__parse(img, size, false, &m, NULL), 0);
    /* z = 0.5 + <v_a, v_cont> = 0.5 + (3 - 2) = 1.5; p = sigmoid(2 * 1.5 - 1) */
    cr_expect_float_eq(rank__raw_row(&m, v, 2), 1.5, 1e-12);
    cr_expect_float_eq(rank__calibrate(&m, 1.5), 1 / (1 + exp(-2.0)), 1e-12);
    free(img);
    free(w);
}

static char *write_tmp(const unsigned char *p, size_t n)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/adsmith-rank-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, p, n), (ssize_t)n);
    close(fd);
    return path;
}

Test(rank_file, round_trip)
{
    struct rank_cfg c;
    size_t size;
    unsigned char *img = tiny_lr(&size, &c);
    char *path = write_tmp(img, size);
    struct rank_model *m = NULL;
    struct ads_diag d = {0};
    struct rank_info in;

    cr_assert_eq(rank_model_open(path, &m, &d), 0, "%s", d.message);
    rank_model_info(m, &in);
    cr_expect_str_eq(in.schema, "tiny");
    cr_expect_str_eq(in.type_name, "lr");
    cr_expect_str_eq(in.source, "hand-made");
    cr_expect_eq(in.bits, 10u);
    cr_expect_eq(in.nfields, 2u);
    cr_expect_eq(in.file_size, size);
    cr_expect_eq(strncmp(in.version, "lr-", 3), 0);

    struct ctr_row *row = calloc(1, sizeof(*row));
    row->n = 2;
    row->v[0] = cat(0, "a");
    row->v[1] = num(1, 255);
    cr_expect_float_eq(rank_model_predict_row(m, row), 0.56217650088579807, 1e-7);
    free(row);

    struct ctr_schema *s = calloc(1, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "tiny");
    s->nfields = 2;
    snprintf(s->fields[0].name, CTR_NAME_MAX, "f");
    s->fields[0].kind = CTR_CAT;
    snprintf(s->fields[1].name, CTR_NAME_MAX, "n");
    s->fields[1].kind = CTR_NUM;
    cr_expect_eq(rank_model_check_schema(m, s, &d), 0);
    s->fields[1].kind = CTR_CAT;
    cr_expect_eq(rank_model_check_schema(m, s, &d), ADS_EDATA_INVALID);
    cr_expect(strstr(d.message, "field 1") != NULL, "%s", d.message);
    snprintf(s->id, sizeof(s->id), "criteo");
    cr_expect_eq(rank_model_check_schema(m, s, &d), ADS_EDATA_INVALID);
    cr_expect(strstr(d.message, "schema") != NULL, "%s", d.message);
    free(s);
    rank_model_close(m);
    rank_model_close(NULL);
    unlink(path);
    free(img);
}

static void expect_refused(const unsigned char *p, size_t n, const char *words)
{
    struct rank_model m;
    struct ads_diag d = {0};

    cr_expect_eq(rank__parse(p, n, false, &m, &d), ADS_EDATA_INVALID, "accepted (%s)", words);
    if (words != NULL)
        cr_expect(strstr(d.message, words) != NULL, "\"%s\" not in \"%s\"", words, d.message);
}

Test(rank_file, every_byte_flip_refused)
{
    struct rank_cfg c;
    size_t size;
    unsigned char *img = tiny_lr(&size, &c);

    for (size_t i = 0; i < size; i++) {
        img[i] ^= 0x20;
        expect_refused(img, size, NULL);
        img[i] ^= 0x20;
    }
    free(img);
}

Test(rank_file, truncation_refused)
{
    struct rank_cfg c;
    size_t size;
    unsigned char *img = tiny_lr(&size, &c);

    for (size_t n = 0; n < size; n += n < 600 ? 1 : 97)
        expect_refused(img, n, n < RANK_HDR_SIZE ? "too short" : "truncated");
    /* a file with bytes appended */
    unsigned char *big = calloc(1, size + 8);
    memcpy(big, img, size);
    expect_refused(big, size + 8, "trailing bytes");
    free(big);

    /* the same through the file system */
    char *path = write_tmp(img, size / 2);
    struct rank_model *m = NULL;
    struct ads_diag d = {0};
    cr_expect_eq(rank_model_open(path, &m, &d), ADS_EDATA_INVALID);
    cr_expect(strstr(d.message, "truncated") != NULL && strstr(d.message, path) != NULL, "%s", d.message);
    cr_expect_null(m);
    unlink(path);
    cr_expect_eq(rank_model_open("/nonexistent/model", &m, &d), -ENOENT);

    /* A flipped weight byte in a file: the checksum refuses it at open. */
    img[size - 9] ^= 0x01;
    path = write_tmp(img, size);
    cr_expect_eq(rank_model_open(path, &m, &d), ADS_EDATA_INVALID, "a corrupt file was opened");
    cr_expect(strstr(d.message, "checksum") != NULL, "%s", d.message);
    unlink(path);
    cr_expect_eq(rank_model_open_mem(img, size, &m, &d), ADS_EDATA_INVALID, "a corrupt image was opened");
    img[size - 9] ^= 0x01;
    cr_assert_eq(rank_model_open_mem(img, size, &m, &d), 0, "%s", d.message);
    rank_model_close(m);
    free(img);
}

/* Damage that keeps a valid checksum: a newer writer, or a bug, not a bad disk. */
static void reseal(unsigned char *p, size_t n)
{
    uint64_t sum = rank__checksum(p, n, RH_CHECKSUM);
    memcpy(p + RH_CHECKSUM, &sum, 8);
}

Test(rank_file, consistent_but_wrong_refused)
{
    struct rank_cfg c;
    size_t size;
    unsigned char *img = tiny_lr(&size, &c), *p = malloc(size);
    uint32_t u;
    float f;
    uint64_t off_w;

    memcpy(&off_w, img + RH_OFF_WEIGHTS, 8);

    memcpy(p, img, size);
    memcpy(p, "NOTAMODL", 8);
    expect_refused(p, size, "magic");

    memcpy(p, img, size);
    u = RANK_FORMAT_VERSION + 1;
    memcpy(p + RH_VERSION, &u, 4);
    reseal(p, size);
    expect_refused(p, size, "newer adsmith");

    memcpy(p, img, size);
    u = 1; /* the format before the rare-token bitmap */
    memcpy(p + RH_VERSION, &u, 4);
    reseal(p, size);
    expect_refused(p, size, "version 1 is not supported");

    memcpy(p, img, size);
    u = 1; /* a threshold of 1 is "none" and is written as 0 */
    memcpy(p + RH_MIN_COUNT, &u, 4);
    reseal(p, size);
    expect_refused(p, size, "rare-token threshold");

    memcpy(p, img, size);
    u = 3; /* a threshold without a bitmap */
    memcpy(p + RH_MIN_COUNT, &u, 4);
    reseal(p, size);
    expect_refused(p, size, "rare-token bitmap");

    memcpy(p, img, size);
    u = 3;
    memcpy(p + RH_TYPE, &u, 4);
    reseal(p, size);
    expect_refused(p, size, "model type");

    memcpy(p, img, size);
    u = 30;
    memcpy(p + RH_BITS, &u, 4);
    reseal(p, size);
    expect_refused(p, size, "bits");

    memcpy(p, img, size);
    p[RANK_HDR_SIZE] = 'g'; /* field "f" renamed: the schema id no longer matches */
    reseal(p, size);
    expect_refused(p, size, "schema id");

    memcpy(p, img, size);
    f = NAN;
    memcpy(p + off_w + 4 * 100, &f, 4);
    reseal(p, size);
    expect_refused(p, size, "finite");

    memcpy(p, img, size);
    f = INFINITY;
    memcpy(p + off_w, &f, 4);
    reseal(p, size);
    expect_refused(p, size, "finite");

    memcpy(p, img, size);
    f = 3.0f; /* a weight the golden row uses */
    memcpy(p + off_w + 4 * (size_t)c.present[0], &f, 4);
    reseal(p, size);
    expect_refused(p, size, "golden");

    memcpy(p, img, size);
    uint64_t big = size * 2;
    memcpy(p + RH_OFF_FIELDS, &big, 8);
    reseal(p, size);
    expect_refused(p, size, "field table");

    free(p);
    free(img);
}
