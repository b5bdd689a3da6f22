/*
 * ctr: click logs in, metrics out. The data side of the ranking model
 * (models/ctr/): readers for the click-log formats `adsmith train` and
 * `adsmith eval` accept, and the evaluation metrics they print.
 *
 * A reader turns each line of a log into a struct ctr_row: a 0/1 label and a
 * list of raw values, each tagged with the field (column) it came from. It does
 * no feature engineering: numeric columns stay numbers, categorical columns
 * become 64-bit token hashes. The model's featurizer (rank.h) decides binning,
 * hashing into its weight table and crosses; the xgboost peer reads the same
 * rows, so both models see exactly the same data.
 *
 * Formats (the `format` argument):
 *   "criteo"   Criteo DAC TSV: label, I1..I13 (numeric), C1..C26 (categorical),
 *              exactly 40 columns; an empty cell is a missing value.
 *   "avazu"    Avazu CSV: id, click, hour, C1, banner_pos, site_id, ... C21
 *              (24 columns); a first line starting "id," is the header and is
 *              skipped. `id` is dropped; every other column is categorical,
 *              `hour` (YYMMDDHH) too, and its last two digits also give field
 *              "hour_of_day" (the last field).
 *   "libsvm"   `label idx[:val] ...`: every idx (digits) is a categorical token
 *              of the single field "features" with value val (default 1). The
 *              label is 0 or 1 (-1 also means 0); `qid:N` is ignored and `#`
 *              starts a comment.
 *   "libffm"   `label field:idx[:val] ...`; the schema has CTR_MAX_FIELDS
 *              categorical fields named "0" .. "255" (whether used or not), so
 *              every libffm file has the same schema.
 *   "csv:SPEC" / "tsv:SPEC"  one column role per column, comma-separated:
 *              `label`, `skip`, `num:NAME`, `cat:NAME`; a first line whose
 *              num/cat cells equal the names is a header and is skipped. Fewer
 *              or extra columns are an error. csv cells may be "quoted" (with
 *              "" inside) but cannot span lines; tsv cells are never quoted.
 *   "adsmith"  JSON Lines as the service will export labelled impressions:
 *              {"label":0|1,"features":{"NAME":"token"|number|["token",...]}}
 *              (other members are ignored; a numeric field takes a number, a
 *              categorical one a string, number or boolean, or a list of them;
 *              null is a missing value; a NAME not in the schema is an error).
 *              The first line gives the schema:
 *              {"schema":"adsmith.ctr.v1","fields":[{"name":"site","kind":"cat"},
 *               {"name":"price","kind":"num"},...]}. "adsmith:SPEC" gives the
 *              fields instead (`cat:NAME,num:NAME,...`; a schema line, if any,
 *              is then skipped). A model for the service is trained on its
 *              serving schema (rank.h, RANK_ADSMITH_FIELDS, in that order), so
 *              an export for training writes those fields in its schema line.
 *
 * Tokens: a categorical value's token is ctr_hash(text, len, 0) of its text
 * as written (JSON numbers as their shortest integer text when whole: 3 and
 * "3" are the same token). Field names are 1..CTR_NAME_MAX-1 bytes of
 * A-Z a-z 0-9 _ - . / .
 *
 * Rows: a data row is any non-blank line that is not a header, malformed or
 * not; first_row / max_rows count those, so a split cuts a file at the same
 * place whatever its lines hold. Rows before first_row are not parsed.
 *
 * Every reader is bounded: lines over CTR_LINE_MAX bytes, more than
 * CTR_MAX_VALUES values in a row or CTR_MAX_FIELDS fields are errors with the
 * line number, never truncation. The reader holds one buffer of about
 * CTR_LINE_MAX + 256 KiB, whatever the file's size.
 */
#ifndef ADSMITH_CTR_H
#define ADSMITH_CTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/err.h"

#define CTR_LINE_MAX (1u << 20)
#define CTR_MAX_FIELDS 256
#define CTR_MAX_VALUES 1024
#define CTR_NAME_MAX 32

enum ctr_kind { CTR_NUM = 0, CTR_CAT = 1 };

struct ctr_field {
    char name[CTR_NAME_MAX]; /* NUL-terminated */
    enum ctr_kind kind;
};

/* The fields a reader produces. Fixed for the whole file once the reader is open. */
struct ctr_schema {
    char id[CTR_NAME_MAX]; /* "criteo", "avazu", "libsvm", "libffm", "csv", "adsmith" */
    uint32_t nfields;
    struct ctr_field fields[CTR_MAX_FIELDS];
};

struct ctr_value {
    uint32_t field; /* index into ctr_schema.fields */
    uint32_t kind;  /* enum ctr_kind, equal to the field's */
    uint64_t token; /* CTR_CAT: ctr_hash() of the token text (libsvm/libffm: of the index text) */
    double x;       /* CTR_NUM: the number; CTR_CAT: the value (1 unless the format gives one) */
};

/* One example. Missing values are simply absent. */
struct ctr_row {
    float label; /* 0 or 1 */
    uint32_t n;
    uint64_t line; /* 1-based line number in the file */
    struct ctr_value v[CTR_MAX_VALUES];
};

/**
 * 64-bit hash of @p len bytes (models/ctr/hash.c). Frozen: the same bytes and
 * seed give the same value on every platform and in every version, since
 * model files depend on it. Not cryptographic.
 */
uint64_t ctr_hash(const void *data, size_t len, uint64_t seed);

struct ctr_reader_opts {
    uint64_t first_row; /* skip data rows before this 0-based index */
    uint64_t max_rows;  /* stop after this many rows (0: no limit) */
};

struct ctr_reader;

/**
 * Opens @p path ("-" for stdin) in @p format. @p opts may be NULL.
 * @return 0 with *@p ret set, ADS_EINVAL for an unknown format or bad SPEC
 *   (or, for "adsmith", a missing or bad schema line), a negative errno when
 *   the file cannot be opened or read; @p diag says which.
 */
int ctr_reader_open(const char *path, const char *format, const struct ctr_reader_opts *opts, struct ctr_reader **ret,
                    struct ads_diag *diag);

/**
 * Reads the next row into @p row.
 * @return 1 with a row, 0 at the end (or after max_rows), ADS_EINVAL for a malformed
 *   line (@p diag names the line and the problem; the reader stays usable and
 *   the next call reads the next line), a negative errno on a read error.
 */
int ctr_reader_next(struct ctr_reader *r, struct ctr_row *row, struct ads_diag *diag);

/** The reader's schema; valid until ctr_reader_close(). */
const struct ctr_schema *ctr_reader_schema(const struct ctr_reader *r);

/** Bytes consumed so far and the file's size (0 when unknown, e.g. a pipe): for progress bars. */
void ctr_reader_progress(const struct ctr_reader *r, uint64_t *done, uint64_t *total);

/** Closes the file (not stdin) and frees @p r; NULL is fine. */
void ctr_reader_close(struct ctr_reader *r);

/* ---- evaluation ---- */

#define CTR_RELIABILITY_BINS 10
#define CTR_EVAL_MAX (UINT64_C(1) << 28) /* predictions one ctr_eval holds (16 bytes each) */

struct ctr_bin {
    double lo, hi; /* predicted-probability range [lo, hi); the last bin also holds 1 */
    uint64_t count;
    double mean_p; /* mean prediction in the bin; NaN when count is 0 */
    double rate;   /* observed click rate in the bin; NaN when count is 0 */
};

struct ctr_metrics {
    uint64_t count, positives;
    double logloss;     /* mean negative log-likelihood, p clamped to [1e-15, 1-1e-15] */
    double ne;          /* normalised entropy: logloss / entropy of the base rate (NaN if all labels are equal) */
    double auc;         /* ROC AUC, ties counted half (NaN if all labels are equal) */
    double calibration; /* sum(p) / sum(y); NaN when there is no positive */
    struct ctr_bin bins[CTR_RELIABILITY_BINS];
};

struct ctr_eval;

/** An empty accumulator: 0 or ADS_ENOMEM. Free with ctr_eval_free(). */
int ctr_eval_new(struct ctr_eval **ret);
/**
 * Adds one prediction @p p in [0,1] for label @p y (0 or 1).
 * @return 0, ADS_ENOMEM, ADS_EINVAL (p outside [0,1] or NaN, y not 0 or 1) or
 *   ADS_EQUOTA_EXCEEDED after CTR_EVAL_MAX predictions.
 */
int ctr_eval_add(struct ctr_eval *e, double p, float y);
/**
 * Computes the metrics of everything added so far (may be called again after
 * more adds). With no prediction, count is 0 and every metric is NaN. Returns 0.
 */
int ctr_eval_result(struct ctr_eval *e, struct ctr_metrics *out);
/** Frees @p e; NULL is fine. */
void ctr_eval_free(struct ctr_eval *e);

#endif
