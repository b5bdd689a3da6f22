/*
 * The model file: built in memory by the trainer, mapped read-only by the
 * service. Little-endian, every number at its natural alignment, so the
 * mapping is used in place (the weights are never copied). models/README.md
 * has the byte-by-byte table; the offsets are in rank_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rank_int.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the model file is read in place: this code assumes a little-endian host"
#endif

_Static_assert(sizeof(struct ctr_value) == RANK_VALUE_REC, "golden values are stored as struct ctr_value");

static void put32(unsigned char *p, size_t off, uint32_t v)
{
    memcpy(p + off, &v, 4);
}

static void put64(unsigned char *p, size_t off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

static void putf64(unsigned char *p, size_t off, double v)
{
    memcpy(p + off, &v, 8);
}

static uint32_t get32(const unsigned char *p, size_t off)
{
    uint32_t v;
    memcpy(&v, p + off, 4);
    return v;
}

static uint64_t get64(const unsigned char *p, size_t off)
{
    uint64_t v;
    memcpy(&v, p + off, 8);
    return v;
}

static double getf64(const unsigned char *p, size_t off)
{
    double v;
    memcpy(&v, p + off, 8);
    return v;
}

static size_t align_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

static const char *type_name(uint32_t type)
{
    return type == RANK_TYPE_FM ? "fm" : "lr";
}

int rank__image_build(const struct rank_cfg *c, const float *w, const struct rank_image_meta *meta,
                      unsigned char **ret, size_t *ret_size, struct ads_diag *diag)
{
    size_t off_fields = RANK_HDR_SIZE;
    size_t off_cross = off_fields + (size_t)c->nfields * RANK_FIELD_REC;
    size_t off_golden = align_up(off_cross + (size_t)c->ncross * RANK_CROSS_REC, 8);
    size_t golden_bytes = 0;
    for (uint32_t g = 0; g < meta->ngolden; g++)
        golden_bytes += RANK_GOLDEN_HDR + (size_t)meta->golden_n[g] * RANK_VALUE_REC;
    size_t fbytes = c->min_count > 1 ? ((size_t)1 << c->bits) / 8 : 0;
    size_t off_freq = c->min_count > 1 ? align_up(off_golden + golden_bytes, RANK_WEIGHTS_ALIGN) : 0;
    size_t off_weights = align_up(off_golden + golden_bytes + fbytes, RANK_WEIGHTS_ALIGN);
    size_t wbytes = ((size_t)1 << c->bits) * c->stride * sizeof(float);
    size_t size = off_weights + wbytes;
    unsigned char *p = calloc(1, size);

    if (c->min_count > 1 && c->freq == NULL)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "a rare-token threshold needs its bitmap");
    if (p == NULL)
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory building a %zu-byte model", size);
    memcpy(p + RH_MAGIC, RANK_MAGIC, 8);
    put32(p, RH_VERSION, RANK_FORMAT_VERSION);
    put32(p, RH_HDR_SIZE, RANK_HDR_SIZE);
    put64(p, RH_FILE_SIZE, size);
    put64(p, RH_SCHEMA_ID, rank__schema_id(c));
    put64(p, RH_SEED, c->seed);
    put32(p, RH_TYPE, c->type);
    put32(p, RH_BITS, c->bits);
    put32(p, RH_K, c->k);
    put32(p, RH_STRIDE, c->stride);
    put32(p, RH_NFIELDS, c->nfields);
    put32(p, RH_NCROSS, c->ncross);
    put32(p, RH_NUMBINS, c->numbins);
    put32(p, RH_NGOLDEN, meta->ngolden);
    put64(p, RH_OFF_FIELDS, off_fields);
    put64(p, RH_OFF_CROSS, off_cross);
    put64(p, RH_OFF_GOLDEN, off_golden);
    put64(p, RH_OFF_WEIGHTS, off_weights);
    put64(p, RH_WEIGHTS_BYTES, wbytes);
    putf64(p, RH_BIAS, meta->bias);
    putf64(p, RH_CAL_A, meta->cal_a);
    putf64(p, RH_CAL_B, meta->cal_b);
    putf64(p, RH_NEG_RATE, meta->neg_rate);
    put64(p, RH_FIRST_LINE, meta->first_line);
    put64(p, RH_LAST_LINE, meta->last_line);
    put64(p, RH_ROWS, meta->rows);
    put64(p, RH_POSITIVES, meta->positives);
    put64(p, RH_TRAINED_AT, (uint64_t)meta->trained_at);
    put64(p, RH_VALID_ROWS, meta->valid_rows);
    put64(p, RH_VALID_POS, meta->valid_pos);
    putf64(p, RH_VALID_LOGLOSS, meta->valid_logloss);
    putf64(p, RH_VALID_AUC, meta->valid_auc);
    putf64(p, RH_VALID_CAL, meta->valid_cal);
    putf64(p, RH_L1, meta->l1);
    putf64(p, RH_L2, meta->l2);
    putf64(p, RH_ALPHA, meta->alpha);
    put32(p, RH_EPOCHS, meta->epochs);
    put32(p, RH_CAL_KIND, RANK_CAL_PLATT);
    put32(p, RH_MIN_COUNT, c->min_count > 1 ? c->min_count : 0);
    put64(p, RH_OFF_FREQ, off_freq);
    if (fbytes > 0)
        memcpy(p + off_freq, c->freq, fbytes);
    memcpy(p + RH_SCHEMA, c->schema, strnlen(c->schema, CTR_NAME_MAX - 1));
    memcpy(p + RH_SOURCE, meta->source, strnlen(meta->source, 63));
    for (uint32_t f = 0; f < c->nfields; f++) {
        unsigned char *r = p + off_fields + (size_t)f * RANK_FIELD_REC;
        memcpy(r, c->fields[f].name, strnlen(c->fields[f].name, CTR_NAME_MAX - 1));
        put32(r, 32, (uint32_t)c->fields[f].kind);
    }
    for (uint32_t x = 0; x < c->ncross; x++) {
        put32(p, off_cross + (size_t)x * RANK_CROSS_REC, c->cross[x][0]);
        put32(p, off_cross + (size_t)x * RANK_CROSS_REC + 4, c->cross[x][1]);
    }
    memcpy(p + off_weights, w, wbytes);

    /* Golden rows: their predictions are computed by the same code that will
     * score them at open, from the image as it will be on disk. */
    struct rank_model m;
    int rc = rank__parse(p, size, true, &m, diag);
    if (rc < 0) {
        free(p);
        return rc;
    }
    size_t at = off_golden;
    for (uint32_t g = 0; g < meta->ngolden; g++) {
        uint32_t n = meta->golden_n[g];
        put32(p, at, n);
        putf64(p, at + 8, rank__calibrate(&m, rank__raw_row(&m, meta->golden[g], n)));
        memcpy(p + at + RANK_GOLDEN_HDR, meta->golden[g], (size_t)n * RANK_VALUE_REC);
        at += RANK_GOLDEN_HDR + (size_t)n * RANK_VALUE_REC;
    }
    put64(p, RH_CHECKSUM, rank__checksum(p, size, RH_CHECKSUM));
    /* The image must pass every check of open, golden predictions included. */
    rc = rank__parse(p, size, false, &m, diag);
    if (rc < 0) {
        free(p);
        return rc;
    }
    *ret = p;
    *ret_size = size;
    return 0;
}

static int bad(struct ads_diag *diag, const char *fmt, const char *what, unsigned long long a, unsigned long long b)
{
    char msg[200];

    snprintf(msg, sizeof(msg), fmt, what, a, b);
    return ads_diag_set(diag, ADS_EDATA_INVALID, NULL, "not a usable adsmith model: %s", msg);
}

static bool section_ok(uint64_t off, uint64_t len, uint64_t lo, size_t size, uint64_t align)
{
    return off >= lo && off % align == 0 && off <= size && len <= size - off;
}

int rank__parse(const unsigned char *p, size_t size, bool building, struct rank_model *m, struct ads_diag *diag)
{
    struct rank_cfg *c = &m->cfg;

    memset(m, 0, sizeof(*m));
    if (size < RANK_HDR_SIZE)
        return bad(diag, "%s (%llu bytes, the header alone is %llu)", "file too short", size, RANK_HDR_SIZE);
    if (memcmp(p + RH_MAGIC, RANK_MAGIC, 8) != 0)
        return ads_diag_set(diag, ADS_EDATA_INVALID, NULL,
                            "not an adsmith model file (bad magic: the first 8 bytes are not \"ADSRANK\\0\")");
    uint32_t version = get32(p, RH_VERSION);
    if (version != RANK_FORMAT_VERSION)
        return ads_diag_set(diag, ADS_EDATA_INVALID, NULL,
                            "model file format version %u is not supported (this adsmith reads version %u)%s",
                            version, RANK_FORMAT_VERSION,
                            version > RANK_FORMAT_VERSION ? ": it was written by a newer adsmith" : "");
    if (get32(p, RH_HDR_SIZE) != RANK_HDR_SIZE)
        return bad(diag, "%s: %llu, expected %llu", "bad header size", get32(p, RH_HDR_SIZE), RANK_HDR_SIZE);
    uint64_t fsize = get64(p, RH_FILE_SIZE);
    if (fsize != size)
        return ads_diag_set(diag, ADS_EDATA_INVALID, NULL,
                            "model file %s: the header says %llu bytes, the file has %zu",
                            fsize > size ? "truncated" : "has trailing bytes", (unsigned long long)fsize, size);
    uint64_t sum = get64(p, RH_CHECKSUM);
    /* The checksum covers the whole file, its own 8 bytes read as zero. */
    uint64_t got = rank__checksum(p, size, RH_CHECKSUM);
    if (!building && got != sum)
        return ads_diag_set(diag, ADS_EDATA_INVALID, NULL,
                            "model file is corrupt: checksum %016llx, the header says %016llx",
                            (unsigned long long)got, (unsigned long long)sum);
    c->type = get32(p, RH_TYPE);
    c->bits = get32(p, RH_BITS);
    c->k = get32(p, RH_K);
    c->seed = get64(p, RH_SEED);
    c->numbins = get32(p, RH_NUMBINS);
    c->nfields = get32(p, RH_NFIELDS);
    c->ncross = get32(p, RH_NCROSS);
    uint32_t stride = get32(p, RH_STRIDE), ngolden = get32(p, RH_NGOLDEN);
    if (c->type != RANK_TYPE_LR && c->type != RANK_TYPE_FM)
        return bad(diag, "%s %llu%.0llu", "unknown model type", c->type, 0);
    if (c->bits < 10 || c->bits > 24)
        return bad(diag, "%s %llu (allowed 10..%llu)", "hash table bits", c->bits, 24);
    if ((c->type == RANK_TYPE_LR && c->k != 0) || (c->type == RANK_TYPE_FM && (c->k < 1 || c->k > RANK_FM_K_MAX)))
        return bad(diag, "%s %llu for model type %llu", "factor count", c->k, c->type);
    if (stride != 1 + c->k)
        return bad(diag, "%s %llu, expected %llu", "stride", stride, 1 + c->k);
    if (c->nfields < 1 || c->nfields > CTR_MAX_FIELDS)
        return bad(diag, "%s %llu (allowed 1..%llu)", "field count", c->nfields, CTR_MAX_FIELDS);
    if (c->ncross > RANK_MAX_CROSS)
        return bad(diag, "%s %llu (at most %llu)", "cross count", c->ncross, RANK_MAX_CROSS);
    if (ngolden > RANK_GOLDEN_MAX)
        return bad(diag, "%s %llu (at most %llu)", "golden rows", ngolden, RANK_GOLDEN_MAX);
    if ((c->numbins & ~(RANK_NUM_COARSE | RANK_NUM_FINE | RANK_NUM_EXACT | RANK_NUM_CONT | RANK_NUM_QUAD | 
                        RANK_NUM_PROD)) != 0)
        return bad(diag, "%s %llx%.0llu", "unknown numeric binning flags", c->numbins, 0);
    if (get32(p, RH_CAL_KIND) != RANK_CAL_PLATT)
        return bad(diag, "%s %llu%.0llu", "unknown calibration kind", get32(p, RH_CAL_KIND), 0);
    uint64_t off_fields = get64(p, RH_OFF_FIELDS), off_cross = get64(p, RH_OFF_CROSS);
    uint64_t off_golden = get64(p, RH_OFF_GOLDEN), off_w = get64(p, RH_OFF_WEIGHTS);
    uint64_t wbytes = get64(p, RH_WEIGHTS_BYTES);
    if (!section_ok(off_fields, (uint64_t)c->nfields * RANK_FIELD_REC, RANK_HDR_SIZE, size, 8))
        return bad(diag, "%s at %llu is outside the file of %llu bytes", "field table", off_fields, size);
    if (!section_ok(off_cross, (uint64_t)c->ncross * RANK_CROSS_REC, off_fields, size, 4))
        return bad(diag, "%s at %llu is outside the file of %llu bytes", "cross table", off_cross, size);
    if (!section_ok(off_golden, 0, off_cross, size, 8))
        return bad(diag, "%s at %llu is outside the file of %llu bytes", "golden rows", off_golden, size);
    if (wbytes != ((uint64_t)1 << c->bits) * stride * sizeof(float))
        return bad(diag, "%s: %llu bytes, expected %llu", "weight table size", wbytes,
                   ((uint64_t)1 << c->bits) * stride * sizeof(float));
    if (!section_ok(off_w, wbytes, off_golden, size, RANK_WEIGHTS_ALIGN) || off_w + wbytes != size)
        return bad(diag, "%s at %llu does not end the file of %llu bytes", "weight table", off_w, size);
    /* The rare-token bitmap, when there is one, lies between the golden rows and the weights. */
    c->min_count = get32(p, RH_MIN_COUNT);
    uint64_t off_freq = get64(p, RH_OFF_FREQ), golden_end = off_w;
    if (c->min_count == 1)
        return bad(diag, "%s %llu%.0llu", "rare-token threshold", 1, 0);
    if (c->min_count > 1) {
        uint64_t fbytes = ((uint64_t)1 << c->bits) / 8;
        if (!section_ok(off_freq, fbytes, off_golden, size, RANK_WEIGHTS_ALIGN) || off_freq + fbytes > off_w)
            return bad(diag, "%s at %llu is outside the file of %llu bytes", "rare-token bitmap", off_freq, size);
        c->freq = (const uint64_t *)(const void *)(p + off_freq);
        golden_end = off_freq;
    } else if (off_freq != 0) {
        return bad(diag, "%s at %llu without a threshold%.0llu", "rare-token bitmap", off_freq, 0);
    }
    for (size_t i = RH_END; i < RANK_HDR_SIZE; i++)
        if (p[i] != 0)
            return bad(diag, "%s at byte %llu%.0llu: reserved bytes must be zero", "header", i, 0);

    memcpy(c->schema, p + RH_SCHEMA, CTR_NAME_MAX);
    if (c->schema[CTR_NAME_MAX - 1] != '\0')
        return bad(diag, "%s%.0llu%.0llu", "schema name not terminated", 0, 0);
    for (uint32_t f = 0; f < c->nfields; f++) {
        const unsigned char *r = p + off_fields + (size_t)f * RANK_FIELD_REC;
        memcpy(c->fields[f].name, r, CTR_NAME_MAX);
        uint32_t kind = get32(r, 32);
        if (c->fields[f].name[CTR_NAME_MAX - 1] != '\0' || c->fields[f].name[0] == '\0' ||
            (kind != CTR_NUM && kind != CTR_CAT))
            return bad(diag, "%s %llu is malformed%.0llu", "field", f, 0);
        c->fields[f].kind = (enum ctr_kind)kind;
    }
    for (uint32_t x = 0; x < c->ncross; x++) {
        c->cross[x][0] = get32(p, off_cross + (size_t)x * RANK_CROSS_REC);
        c->cross[x][1] = get32(p, off_cross + (size_t)x * RANK_CROSS_REC + 4);
        if (c->cross[x][0] >= c->nfields || c->cross[x][1] >= c->nfields || c->cross[x][0] == c->cross[x][1])
            return bad(diag, "%s %llu names fields outside the %llu of the schema", "cross", x, c->nfields);
    }
    if (rank__schema_id(c) != get64(p, RH_SCHEMA_ID))
        return bad(diag, "%s %016llx does not match its fields (%016llx)", "schema id", get64(p, RH_SCHEMA_ID),
                   rank__schema_id(c));
    rank__cfg_derive(c);

    m->base = p;
    m->size = size;
    m->w = (const float *)(const void *)(p + off_w);
    m->bias = getf64(p, RH_BIAS);
    m->cal_a = getf64(p, RH_CAL_A);
    m->cal_b = getf64(p, RH_CAL_B);
    if (!isfinite(m->bias) || !isfinite(m->cal_a) || !isfinite(m->cal_b) || m->cal_a <= 0)
        return bad(diag, "%s%.0llu%.0llu", "bias or calibration is not a finite number (or the slope is not positive)",
                   0, 0);
    size_t nw = wbytes / sizeof(float);
    for (size_t i = 0; i < nw; i++)
        if (!isfinite(m->w[i]))
            return bad(diag, "%s %llu of %llu is not a finite number", "weight", i, nw);

    uint64_t at = off_golden;
    for (uint32_t g = 0; g < ngolden; g++) {
        if (at + RANK_GOLDEN_HDR > golden_end)
            return bad(diag, "%s %llu runs into the next section at %llu", "golden row", g, golden_end);
        uint32_t n = get32(p, at);
        double want = getf64(p, at + 8);
        if (n > RANK_GOLDEN_VALUES || at + RANK_GOLDEN_HDR + (uint64_t)n * RANK_VALUE_REC > golden_end)
            return bad(diag, "%s %llu has a bad value count %llu", "golden row", g, n);
        struct ctr_value v[RANK_GOLDEN_VALUES];
        memcpy(v, p + at + RANK_GOLDEN_HDR, (size_t)n * RANK_VALUE_REC);
        if (!building) {
            double now = rank__calibrate(m, rank__raw_row(m, v, n));
            if (!(fabs(now - want) <= 1e-7))
                return ads_diag_set(diag, ADS_EDATA_INVALID, NULL,
                                    "model file's golden prediction %u is %.9f, this build computes %.9f: the "
                                    "featurizer or hash changed since it was trained; retrain the model",
                                    g, want, now);
        }
        at += RANK_GOLDEN_HDR + (uint64_t)n * RANK_VALUE_REC;
    }

    struct rank_info *in = &m->info;
    snprintf(in->version, sizeof(in->version), "%s-%016llx", type_name(c->type), (unsigned long long)sum);
    in->schema = c->schema;
    in->schema_id = get64(p, RH_SCHEMA_ID);
    in->hash_seed = c->seed;
    in->type = (enum rank_type)c->type;
    in->type_name = type_name(c->type);
    in->bits = c->bits;
    in->fm_k = c->k;
    in->nfields = c->nfields;
    in->ncrosses = c->ncross;
    in->file_size = size;
    in->source = (const char *)p + RH_SOURCE;
    if (p[RH_SOURCE + 63] != '\0')
        return bad(diag, "%s%.0llu%.0llu", "training source text not terminated", 0, 0);
    in->first_line = get64(p, RH_FIRST_LINE);
    in->last_line = get64(p, RH_LAST_LINE);
    in->rows = get64(p, RH_ROWS);
    in->positives = get64(p, RH_POSITIVES);
    in->trained_at = (int64_t)get64(p, RH_TRAINED_AT);
    in->neg_rate = getf64(p, RH_NEG_RATE);
    in->valid_rows = get64(p, RH_VALID_ROWS);
    in->valid_positives = get64(p, RH_VALID_POS);
    in->valid_logloss = getf64(p, RH_VALID_LOGLOSS);
    in->valid_auc = getf64(p, RH_VALID_AUC);
    in->valid_calibration = getf64(p, RH_VALID_CAL);
    in->l1 = getf64(p, RH_L1);
    in->l2 = getf64(p, RH_L2);
    in->alpha = getf64(p, RH_ALPHA);
    in->epochs = get32(p, RH_EPOCHS);
    in->min_count = c->min_count;
    return 0;
}

int rank_model_open(const char *path, struct rank_model **ret, struct ads_diag *diag)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        int e = errno;
        return ads_diag_set(diag, -e, NULL, "cannot open model %s: %s", path, strerror(e));
    }
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return ads_diag_set(diag, -e, NULL, "cannot stat model %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ads_diag_set(diag, ADS_EDATA_INVALID, NULL, "model %s is not a regular file", path);
    }
    if ((uint64_t)st.st_size < RANK_HDR_SIZE) {
        close(fd);
        return ads_diag_set(diag, ADS_EDATA_INVALID, NULL, "model %s: file too short (%lld bytes): truncated?", path,
                            (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        int e = errno;
        return ads_diag_set(diag, -e, NULL, "cannot map model %s: %s", path, strerror(e));
    }
    struct rank_model *m = malloc(sizeof(*m));
    if (m == NULL) {
        munmap(map, size);
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory opening model %s", path);
    }
    int rc = rank__parse(map, size, false, m, diag); /* every check, the checksum and golden rows included */
    if (rc < 0) {
        if (diag != NULL) {
            char msg[sizeof(diag->message)];
            snprintf(msg, sizeof(msg), "%s", diag->message);
            ads_diag_set(diag, rc, NULL, "model %s: %s", path, msg);
        }
        free(m);
        munmap(map, size);
        return rc;
    }
    m->mapped = true;
    *ret = m;
    return 0;
}

int rank_model_open_mem(const void *image, size_t size, struct rank_model **ret, struct ads_diag *diag)
{
    struct rank_model *m = malloc(sizeof(*m));
    int rc;

    if (m == NULL)
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory opening a model");
    if ((uintptr_t)image % 8 != 0) {
        free(m);
        return ads_diag_set(diag, ADS_EINVAL, NULL, "a model image must be 8-byte aligned");
    }
    if ((rc = rank__parse(image, size, false, m, diag)) < 0) {
        free(m);
        return rc;
    }
    m->mapped = false;
    *ret = m;
    return 0;
}

void rank_model_close(struct rank_model *m)
{
    if (m == NULL)
        return;
    if (m->mapped)
        munmap((void *)(uintptr_t)m->base, m->size);
    free(m);
}
