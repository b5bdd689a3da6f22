/*
 * ctr readers: one line of a click log in, one struct ctr_row out.
 *
 * Input is read with read(2) into one buffer of CTR_LINE_MAX bytes plus a
 * read chunk, so a line of any allowed length is always whole in memory and
 * parsed in place (cells are NUL-terminated or unescaped where they lie).
 * Nothing grows with the input: an overlong line is discarded up to its
 * newline and reported, a row with too many values is reported, never cut.
 *
 * Row positions (first_row, max_rows) count data lines: every non-blank line
 * that is not a header, including malformed ones, so that a time split
 * ("rows 0..N for training, the rest for testing") cuts a file at the same
 * place whatever its lines hold. Lines before first_row are only counted,
 * never parsed.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adsmith/ctr.h"

#define CTR_READ_CHUNK (256u * 1024u)
#define CTR_FORMAT_MAX 65536u          /* bytes of a format string, SPEC included */
#define CTR_COLUMNS_MAX CTR_MAX_VALUES /* columns of a csv:SPEC / tsv:SPEC */
#define CTR_NUM_TEXT_MAX 64u           /* longest number text */
#define CTR_SHOW_MAX 40                /* bytes of an offending cell quoted in a message */
#define CTR_ADSMITH_SCHEMA "adsmith.ctr.v1"

/* Token hashes use seed 0 (ctr.h); the model mixes in the field itself. */
#define CTR_TOKEN_SEED 0

enum ctr_fmt { CTR_F_CRITEO, CTR_F_AVAZU, CTR_F_LIBSVM, CTR_F_LIBFFM, CTR_F_CSV, CTR_F_ADSMITH };

/* What a column of a delimited format holds. */
enum { CTR_COL_SKIP = -2, CTR_COL_LABEL = -1 };

#define CTR_CRITEO_COLS 40
#define CTR_AVAZU_COLS 24

static const char *const ctr_avazu_names[CTR_AVAZU_COLS] = {
    "id",         "click",        "hour",         "C1",
    "banner_pos", "site_id",      "site_domain",  "site_category",
    "app_id",     "app_domain",   "app_category", "device_id",
    "device_ip",  "device_model", "device_type",  "device_conn_type",
    "C14",        "C15",          "C16",          "C17",
    "C18",        "C19",          "C20",          "C21"};

struct ctr_cell {
    char *p;
    size_t len;
};

struct ctr_reader {
    int fd;
    bool close_fd;
    char *buf; /* CTR_LINE_MAX + CTR_READ_CHUNK + 1 bytes */
    size_t cap;
    size_t head, tail; /* unread bytes are buf[head, tail) */
    size_t scan;       /* buf[head, scan) holds no newline */
    bool eof;
    uint64_t consumed; /* bytes of the lines handed out so far */
    uint64_t size;     /* of a regular file, else 0 */

    uint64_t line; /* lines read so far (the current line's 1-based number) */
    uint64_t rows; /* data lines seen so far */
    uint64_t first_row, max_rows;
    bool started; /* the first non-blank line was seen (and checked for a header) */

    enum ctr_fmt fmt;
    char sep;    /* csv/tsv/criteo/avazu */
    bool quotes; /* csv: RFC 4180 double quotes within a line */
    uint32_t ncols;
    int32_t col[CTR_COLUMNS_MAX]; /* csv/tsv: CTR_COL_* or the field index */
    bool spec_given;              /* adsmith:SPEC (else the schema is the file's first line) */

    struct ctr_schema schema;
    struct ctr_cell cells[CTR_COLUMNS_MAX + 1];
};

/* ---- messages ---- */

static int ctr_fail(const struct ctr_reader *r, struct ads_diag *diag, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int ctr_fail(const struct ctr_reader *r, struct ads_diag *diag, const char *pointer, const char *fmt, ...)
{
    char msg[224];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ads_diag_set(diag, ADS_EINVAL, pointer, "line %" PRIu64 ": %s", r->line, msg);
}

/* At most CTR_SHOW_MAX bytes of a cell, for "%.*s" in a message. */
static int ctr_show(size_t len)
{
    return len > CTR_SHOW_MAX ? CTR_SHOW_MAX : (int)len;
}

/* ---- lines ---- */

static int ctr_fill(struct ctr_reader *r)
{
    ssize_t n;

    if (r->head > 0) {
        memmove(r->buf, r->buf + r->head, r->tail - r->head);
        r->tail -= r->head;
        r->scan -= r->head;
        r->head = 0;
    }
    for (;;) {
        n = read(r->fd, r->buf + r->tail, r->cap - 1 - r->tail);
        if (n > 0) {
            r->tail += (size_t)n;
            return 0;
        }
        if (n == 0) {
            r->eof = true;
            return 0;
        }
        if (errno != EINTR)
            return -errno;
    }
}

enum { CTR_LINE_EOF = 0, CTR_LINE_OK = 1, CTR_LINE_LONG = 2 };

/*
 * The next line, without its "\n" or "\r\n" and NUL-terminated in place
 * (the buffer keeps one spare byte for a last line without a newline).
 * CTR_LINE_LONG when it is over CTR_LINE_MAX bytes, its "\r" not counted
 * (a file's line ending must not change which lines it accepts): it was read
 * to its end and dropped. A negative errno on a read error.
 */
static int ctr_next_line(struct ctr_reader *r, char **ret, size_t *ret_len)
{
    bool skipping = false;
    int rc;

    for (;;) {
        char *nl = memchr(r->buf + r->scan, '\n', r->tail - r->scan);
        if (nl != NULL || (r->eof && r->tail > r->head)) {
            char *s = r->buf + r->head;
            size_t len = nl != NULL ? (size_t)(nl - s) : r->tail - r->head;
            r->head += len + (nl != NULL);
            r->scan = r->head;
            r->consumed += len + (nl != NULL);
            if (len > 0 && s[len - 1] == '\r')
                len--;
            if (skipping || len > CTR_LINE_MAX)
                return CTR_LINE_LONG;
            s[len] = '\0';
            *ret = s;
            *ret_len = len;
            return CTR_LINE_OK;
        }
        if (r->eof)
            return skipping ? CTR_LINE_LONG : CTR_LINE_EOF;
        r->scan = r->tail;
        if (r->tail - r->head > CTR_LINE_MAX + 1) {
            /* Longer than any line we accept (plus its "\r"): drop what we have, keep looking for its end. */
            r->consumed += r->tail - r->head;
            r->head = r->scan = r->tail;
            skipping = true;
        }
        if ((rc = ctr_fill(r)) != 0)
            return rc;
    }
}

static bool ctr_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    }
    return true;
}

/* ---- cells and values ---- */

/*
 * Splits s[0, len) at r->sep into r->cells. With r->quotes a cell may be
 * "quoted", with "" for a quote inside; it is unescaped in place.
 * @return the number of cells (at most @p max + 1, so that "too many" shows),
 *   or -1 for a quote that is not closed or is followed by text.
 */
static int ctr_split(struct ctr_reader *r, char *s, size_t len, uint32_t max)
{
    size_t i = 0;
    uint32_t n = 0;

    for (;;) {
        struct ctr_cell *c = &r->cells[n];
        if (r->quotes && i < len && s[i] == '"') {
            size_t w = i + 1, j = i + 1;
            for (;;) {
                if (j >= len)
                    return -1;
                if (s[j] == '"') {
                    if (j + 1 < len && s[j + 1] == '"') {
                        s[w++] = '"';
                        j += 2;
                        continue;
                    }
                    break;
                }
                s[w++] = s[j++];
            }
            c->p = s + i + 1;
            c->len = w - (i + 1);
            i = j + 1;
            if (i < len && s[i] != r->sep)
                return -1;
        } else {
            size_t j = i;
            while (j < len && s[j] != r->sep)
                j++;
            c->p = s + i;
            c->len = j - i;
            i = j;
        }
        n++;
        if (i >= len || n > max)
            return (int)n;
        i++; /* past the separator: a cell follows, possibly empty */
    }
}

/* A finite number spelled in full by p[0, len) (no spaces, no trailing text). */
static bool ctr_number(const char *p, size_t len, double *ret)
{
    char tmp[CTR_NUM_TEXT_MAX];
    char *end;
    double v;

    if (len == 0 || len >= sizeof(tmp))
        return false;
    if (!((p[0] >= '0' && p[0] <= '9') || p[0] == '-' || p[0] == '+' || p[0] == '.'))
        return false;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    errno = 0;
    v = strtod(tmp, &end);
    if (end != tmp + len || !isfinite(v))
        return false;
    *ret = v;
    return true;
}

/* A label: a number equal to 0 or 1; with @p minus_one, -1 means 0 (libsvm's convention). */
static bool ctr_label(const char *p, size_t len, bool minus_one, float *ret)
{
    double v;

    if (!ctr_number(p, len, &v))
        return false;
    if (v == 0 || (minus_one && v == -1)) {
        *ret = 0;
        return true;
    }
    if (v == 1) {
        *ret = 1;
        return true;
    }
    return false;
}

static bool ctr_digits(const char *p, size_t len)
{
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
    }
    return true;
}

static int ctr_put(const struct ctr_reader *r, struct ctr_row *row, uint32_t field, uint64_t token, double x,
                   struct ads_diag *diag)
{
    struct ctr_value *v;

    if (row->n >= CTR_MAX_VALUES)
        return ctr_fail(r, diag, NULL, "more than %d values in one row", CTR_MAX_VALUES);
    v = &row->v[row->n++];
    v->field = field;
    v->kind = (uint32_t)r->schema.fields[field].kind;
    v->token = token;
    v->x = x;
    return 0;
}

static int ctr_put_cat(const struct ctr_reader *r, struct ctr_row *row, uint32_t field, const char *p, size_t len,
                       double x, struct ads_diag *diag)
{
    return ctr_put(r, row, field, ctr_hash(p, len, CTR_TOKEN_SEED), x, diag);
}

/* ---- the schema ---- */

static bool ctr_name_ok(const char *p, size_t len)
{
    if (len == 0 || len >= CTR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == '/'))
            return false;
    }
    return true;
}

static int ctr_field_find(const struct ctr_schema *s, const char *p, size_t len)
{
    for (uint32_t i = 0; i < s->nfields; i++) {
        if (strlen(s->fields[i].name) == len && memcmp(s->fields[i].name, p, len) == 0)
            return (int)i;
    }
    return -1;
}

/* Adds a field; the caller checked the name. -1 when the schema is full. */
static int ctr_field_add(struct ctr_schema *s, const char *p, size_t len, enum ctr_kind kind)
{
    struct ctr_field *f;

    if (s->nfields >= CTR_MAX_FIELDS)
        return -1;
    f = &s->fields[s->nfields];
    memcpy(f->name, p, len);
    f->name[len] = '\0';
    f->kind = kind;
    return (int)s->nfields++;
}

static void ctr_schema_id(struct ctr_schema *s, const char *id)
{
    snprintf(s->id, sizeof(s->id), "%s", id);
}

/*
 * Parses the roles of a csv/tsv SPEC (or, with @p fields_only, of an
 * adsmith:SPEC, which has no columns: only num:/cat: entries).
 */
static int ctr_parse_spec(struct ctr_reader *r, const char *spec, bool fields_only, struct ads_diag *diag)
{
    const char *p = spec;
    bool label = false;
    uint32_t col = 0;

    if (*p == '\0')
        return ads_diag_set(diag, ADS_EINVAL, NULL, "the format's SPEC is empty; e.g. csv:label,num:price,cat:site");
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        int32_t role;

        if (!fields_only && col >= CTR_COLUMNS_MAX)
            return ads_diag_set(diag, ADS_EINVAL, NULL, "the SPEC has more than %d columns", CTR_COLUMNS_MAX);
        if (!fields_only && len == 5 && memcmp(p, "label", 5) == 0) {
            if (label)
                return ads_diag_set(diag, ADS_EINVAL, NULL, "the SPEC names more than one label column");
            label = true;
            role = CTR_COL_LABEL;
        } else if (!fields_only && len == 4 && memcmp(p, "skip", 4) == 0) {
            role = CTR_COL_SKIP;
        } else if (len > 4 && (memcmp(p, "num:", 4) == 0 || memcmp(p, "cat:", 4) == 0)) {
            enum ctr_kind kind = p[0] == 'n' ? CTR_NUM : CTR_CAT;
            if (!ctr_name_ok(p + 4, len - 4))
                return ads_diag_set(diag, ADS_EINVAL, NULL,
                                    "SPEC entry '%.*s': a field name is 1 to %d of A-Z a-z 0-9 _ - . /", ctr_show(len),
                                    p, CTR_NAME_MAX - 1);
            if (ctr_field_find(&r->schema, p + 4, len - 4) >= 0)
                return ads_diag_set(diag, ADS_EINVAL, NULL, "SPEC entry '%.*s': the field is named twice",
                                    ctr_show(len), p);
            if ((role = ctr_field_add(&r->schema, p + 4, len - 4, kind)) < 0)
                return ads_diag_set(diag, ADS_EINVAL, NULL, "the SPEC has more than %d fields", CTR_MAX_FIELDS);
        } else {
            return ads_diag_set(diag, ADS_EINVAL, NULL,
                                fields_only ? "SPEC entry '%.*s' is not num:NAME or cat:NAME"
                                            : "SPEC entry '%.*s' is not label, skip, num:NAME or cat:NAME",
                                ctr_show(len), p);
        }
        if (!fields_only)
            r->col[col++] = role;
        if (end == NULL)
            break;
        p = end + 1;
    }
    r->ncols = col;
    if (!fields_only && !label)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "the SPEC has no label column");
    if (r->schema.nfields == 0)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "the SPEC has no num:NAME or cat:NAME field");
    return 0;
}

static void ctr_schema_fixed(struct ctr_reader *r, const char *const *names, uint32_t n, enum ctr_kind kind)
{
    for (uint32_t i = 0; i < n; i++)
        ctr_field_add(&r->schema, names[i], strlen(names[i]), kind);
}

static void ctr_schema_criteo(struct ctr_reader *r)
{
    char name[CTR_NAME_MAX];

    ctr_schema_id(&r->schema, "criteo");
    for (int i = 1; i <= 13; i++) {
        snprintf(name, sizeof(name), "I%d", i);
        ctr_field_add(&r->schema, name, strlen(name), CTR_NUM);
    }
    for (int i = 1; i <= 26; i++) {
        snprintf(name, sizeof(name), "C%d", i);
        ctr_field_add(&r->schema, name, strlen(name), CTR_CAT);
    }
}

/* ---- formats ---- */

static int ctr_row_criteo(struct ctr_reader *r, char *s, size_t len, struct ctr_row *row, struct ads_diag *diag)
{
    int n = ctr_split(r, s, len, CTR_CRITEO_COLS);
    double x;
    int rc;

    if (n != CTR_CRITEO_COLS)
        return ctr_fail(r, diag, NULL, "expected %d tab-separated columns (label, I1..I13, C1..C26), found %s%d",
                        CTR_CRITEO_COLS, n > CTR_CRITEO_COLS ? "more than " : "", n > CTR_CRITEO_COLS ? n - 1 : n);
    if (!ctr_label(r->cells[0].p, r->cells[0].len, false, &row->label))
        return ctr_fail(r, diag, NULL, "the label (column 1) must be 0 or 1, not '%.*s'", ctr_show(r->cells[0].len),
                        r->cells[0].p);
    for (uint32_t c = 1; c < CTR_CRITEO_COLS; c++) {
        const struct ctr_cell *cell = &r->cells[c];
        if (cell->len == 0)
            continue;
        if (c <= 13) {
            if (!ctr_number(cell->p, cell->len, &x))
                return ctr_fail(r, diag, NULL, "column %u (I%u): '%.*s' is not a number", c + 1, c, ctr_show(cell->len),
                                cell->p);
            rc = ctr_put(r, row, c - 1, 0, x, diag);
        } else {
            rc = ctr_put_cat(r, row, c - 1, cell->p, cell->len, 1, diag);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int ctr_row_avazu(struct ctr_reader *r, char *s, size_t len, struct ctr_row *row, struct ads_diag *diag)
{
    int n = ctr_split(r, s, len, CTR_AVAZU_COLS);
    const struct ctr_cell *hour = &r->cells[2];
    int rc;

    if (n != CTR_AVAZU_COLS)
        return ctr_fail(r, diag, NULL, "expected %d comma-separated columns (id, click, hour, C1 ... C21), found %s%d",
                        CTR_AVAZU_COLS, n > CTR_AVAZU_COLS ? "more than " : "", n > CTR_AVAZU_COLS ? n - 1 : n);
    if (!ctr_label(r->cells[1].p, r->cells[1].len, false, &row->label))
        return ctr_fail(r, diag, NULL, "click (column 2) must be 0 or 1, not '%.*s'", ctr_show(r->cells[1].len),
                        r->cells[1].p);
    for (uint32_t c = 2; c < CTR_AVAZU_COLS; c++) {
        if (r->cells[c].len > 0 && (rc = ctr_put_cat(r, row, c - 2, r->cells[c].p, r->cells[c].len, 1, diag)) != 0)
            return rc;
    }
    /* hour is YYMMDDHH: the hour of the day generalises across days, the full hour does not. */
    if (hour->len >= 2 && ctr_digits(hour->p + hour->len - 2, 2) &&
        (rc = ctr_put_cat(r, row, CTR_AVAZU_COLS - 2, hour->p + hour->len - 2, 2, 1, diag)) != 0)
        return rc;
    return 0;
}

/* Splits at spaces and tabs; returns the next token of s[*i, len) or false at the end. */
static bool ctr_word(const char *s, size_t len, size_t *i, const char **ret, size_t *ret_len)
{
    size_t j;

    while (*i < len && (s[*i] == ' ' || s[*i] == '\t'))
        (*i)++;
    if (*i >= len)
        return false;
    j = *i;
    while (j < len && s[j] != ' ' && s[j] != '\t')
        j++;
    *ret = s + *i;
    *ret_len = j - *i;
    *i = j;
    return true;
}

/* libsvm `label idx[:val] ...` and libffm `label field:idx[:val] ...`; "# ..." ends the line, qid:N is ignored. */
static int ctr_row_sparse(struct ctr_reader *r, const char *s, size_t len, struct ctr_row *row, struct ads_diag *diag)
{
    bool ffm = r->fmt == CTR_F_LIBFFM;
    const char *w = "";
    size_t wlen = 0, i = 0;
    int rc;

    if (!ctr_word(s, len, &i, &w, &wlen) || !ctr_label(w, wlen, true, &row->label))
        return ctr_fail(r, diag, NULL, "a line starts with the label 0 or 1 (or -1), not '%.*s'", ctr_show(wlen), w);
    while (ctr_word(s, len, &i, &w, &wlen)) {
        const char *c1 = memchr(w, ':', wlen), *c2, *idx, *val = NULL;
        size_t idx_len, val_len = 0;
        uint64_t field = 0;
        double x = 1;

        if (w[0] == '#')
            break;
        if (wlen > 4 && memcmp(w, "qid:", 4) == 0)
            continue;
        if (ffm) {
            c2 = c1 != NULL ? memchr(c1 + 1, ':', wlen - (size_t)(c1 + 1 - w)) : NULL;
            if (c1 == NULL || !ctr_digits(w, (size_t)(c1 - w)))
                return ctr_fail(r, diag, NULL, "'%.*s' is not field:index:value", ctr_show(wlen), w);
            for (const char *d = w; d < c1; d++) {
                field = field * 10 + (uint64_t)(*d - '0');
                if (field >= CTR_MAX_FIELDS)
                    return ctr_fail(r, diag, NULL, "'%.*s': field numbers run from 0 to %d", ctr_show(wlen), w,
                                    CTR_MAX_FIELDS - 1);
            }
            idx = c1 + 1;
            idx_len = c2 != NULL ? (size_t)(c2 - idx) : wlen - (size_t)(idx - w);
            if (c2 != NULL) {
                val = c2 + 1;
                val_len = wlen - (size_t)(val - w);
            }
        } else {
            idx = w;
            idx_len = c1 != NULL ? (size_t)(c1 - w) : wlen;
            if (c1 != NULL) {
                val = c1 + 1;
                val_len = wlen - (size_t)(val - w);
            }
        }
        if (!ctr_digits(idx, idx_len))
            return ctr_fail(r, diag, NULL, "'%.*s': the index must be a whole number of at most 20 digits",
                            ctr_show(wlen), w);
        if (val != NULL && !ctr_number(val, val_len, &x))
            return ctr_fail(r, diag, NULL, "'%.*s': the value after ':' is not a number", ctr_show(wlen), w);
        if ((rc = ctr_put_cat(r, row, (uint32_t)field, idx, idx_len, x, diag)) != 0)
            return rc;
    }
    return 0;
}

static int ctr_row_csv(struct ctr_reader *r, char *s, size_t len, struct ctr_row *row, struct ads_diag *diag)
{
    int n = ctr_split(r, s, len, r->ncols);
    double x;
    int rc;

    if (n < 0)
        return ctr_fail(r, diag, NULL, "a quoted cell is not closed, or text follows its closing quote");
    if ((uint32_t)n != r->ncols)
        return ctr_fail(r, diag, NULL, "expected %u columns (one per SPEC entry), found %s%d", r->ncols,
                        (uint32_t)n > r->ncols ? "more than " : "", (uint32_t)n > r->ncols ? n - 1 : n);
    for (uint32_t c = 0; c < r->ncols; c++) {
        const struct ctr_cell *cell = &r->cells[c];
        int32_t role = r->col[c];
        if (role == CTR_COL_SKIP)
            continue;
        if (role == CTR_COL_LABEL) {
            if (!ctr_label(cell->p, cell->len, false, &row->label))
                return ctr_fail(r, diag, NULL, "the label (column %u) must be 0 or 1, not '%.*s'", c + 1,
                                ctr_show(cell->len), cell->p);
            continue;
        }
        if (cell->len == 0)
            continue;
        if (r->schema.fields[role].kind == CTR_NUM) {
            if (!ctr_number(cell->p, cell->len, &x))
                return ctr_fail(r, diag, NULL, "column %u (%s): '%.*s' is not a number", c + 1,
                                r->schema.fields[role].name, ctr_show(cell->len), cell->p);
            rc = ctr_put(r, row, (uint32_t)role, 0, x, diag);
        } else {
            rc = ctr_put_cat(r, row, (uint32_t)role, cell->p, cell->len, 1, diag);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A csv/tsv first line that spells the names of the SPEC's fields (label and skip columns: anything). */
static bool ctr_csv_header(struct ctr_reader *r, char *s, size_t len)
{
    char *copy;
    int n;
    bool header = true;

    /* Splitting unescapes in place; work on a copy so a data line is parsed intact. */
    if ((copy = malloc(len + 1)) == NULL)
        return false;
    memcpy(copy, s, len + 1);
    n = ctr_split(r, copy, len, r->ncols);
    if (n < 0 || (uint32_t)n != r->ncols)
        header = false;
    for (uint32_t c = 0; header && c < r->ncols; c++) {
        const char *name;
        if (r->col[c] < 0)
            continue;
        name = r->schema.fields[r->col[c]].name;
        header = strlen(name) == r->cells[c].len && memcmp(name, r->cells[c].p, r->cells[c].len) == 0;
    }
    free(copy);
    return header;
}

/* The text a JSON number stands for as a token: integers as integers ("3", not "3.0"). */
static size_t ctr_number_text(double v, char *out, size_t cap)
{
    int n;

    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        n = snprintf(out, cap, "%lld", (long long)v);
    else
        n = snprintf(out, cap, "%.17g", v);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static int ctr_json_token(struct ctr_reader *r, struct ctr_row *row, uint32_t field, const cJSON *item, const char *ptr,
                          struct ads_diag *diag)
{
    char num[32];
    size_t len;

    if (cJSON_IsString(item))
        return ctr_put_cat(r, row, field, item->valuestring, strlen(item->valuestring), 1, diag);
    if (cJSON_IsNumber(item)) {
        len = ctr_number_text(item->valuedouble, num, sizeof(num));
        return ctr_put_cat(r, row, field, num, len, 1, diag);
    }
    if (cJSON_IsBool(item))
        return ctr_put_cat(r, row, field, cJSON_IsTrue(item) ? "true" : "false", cJSON_IsTrue(item) ? 4 : 5, 1, diag);
    if (cJSON_IsNull(item))
        return 0;
    return ctr_fail(r, diag, ptr, "%s: a categorical feature is a string, a number, a boolean or null", ptr);
}

static int ctr_row_adsmith(struct ctr_reader *r, const char *s, size_t len, struct ctr_row *row, struct ads_diag *diag)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    const cJSON *label, *features, *f;
    char ptr[8 + CTR_NAME_MAX + 16];
    int rc = 0;

    if (doc == NULL || end == NULL || !ctr_blank(end, len - (size_t)(end - s))) {
        cJSON_Delete(doc);
        return ctr_fail(r, diag, NULL, "not one JSON object (JSON Lines: one object per line)");
    }
    if (!cJSON_IsObject(doc)) {
        rc = ctr_fail(r, diag, "", "the line is not a JSON object");
        goto out;
    }
    label = cJSON_GetObjectItemCaseSensitive(doc, "label");
    if (cJSON_IsBool(label)) {
        row->label = cJSON_IsTrue(label) ? 1 : 0;
    } else if (cJSON_IsNumber(label) && (label->valuedouble == 0 || label->valuedouble == 1)) {
        row->label = (float)label->valuedouble;
    } else {
        rc = ctr_fail(r, diag, "/label", "/label must be 0 or 1");
        goto out;
    }
    features = cJSON_GetObjectItemCaseSensitive(doc, "features");
    if (features == NULL || cJSON_IsNull(features))
        goto out;
    if (!cJSON_IsObject(features)) {
        rc = ctr_fail(r, diag, "/features", "/features must be an object of NAME: value");
        goto out;
    }
    cJSON_ArrayForEach(f, features)
    {
        size_t nlen = strlen(f->string);
        int field = ctr_field_find(&r->schema, f->string, nlen);
        snprintf(ptr, sizeof(ptr), "/features/%.*s", ctr_show(nlen), f->string);
        if (field < 0) {
            rc = ctr_fail(r, diag, ptr, "%s: '%.*s' is not a field of the schema", ptr, ctr_show(nlen), f->string);
            goto out;
        }
        if (r->schema.fields[field].kind == CTR_NUM) {
            if (cJSON_IsNumber(f) && isfinite(f->valuedouble))
                rc = ctr_put(r, row, (uint32_t)field, 0, f->valuedouble, diag);
            else if (cJSON_IsBool(f))
                rc = ctr_put(r, row, (uint32_t)field, 0, cJSON_IsTrue(f) ? 1 : 0, diag);
            else if (!cJSON_IsNull(f))
                rc = ctr_fail(r, diag, ptr, "%s: a numeric feature is a number, a boolean or null", ptr);
        } else if (cJSON_IsArray(f)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, f)
            {
                if (cJSON_IsArray(e) || cJSON_IsObject(e))
                    rc = ctr_fail(r, diag, ptr, "%s: a list of tokens holds strings, numbers or booleans", ptr);
                else
                    rc = ctr_json_token(r, row, (uint32_t)field, e, ptr, diag);
                if (rc != 0)
                    goto out;
            }
        } else {
            rc = ctr_json_token(r, row, (uint32_t)field, f, ptr, diag);
        }
        if (rc != 0)
            goto out;
    }
out:
    cJSON_Delete(doc);
    return rc;
}

/*
 * The adsmith header line: {"schema":"adsmith.ctr.v1","fields":[{"name":N,"kind":"cat"|"num"},...]}.
 * @p is_header is set when the line is an object with a "schema" member at all.
 */
static int ctr_adsmith_header(struct ctr_reader *r, const char *s, size_t len, bool build, bool *is_header,
                              struct ads_diag *diag)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    const cJSON *schema, *fields, *f;
    int rc = 0;

    *is_header = false;
    schema = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "schema") : NULL;
    if (schema == NULL) {
        cJSON_Delete(doc);
        return 0;
    }
    *is_header = true;
    if (!build)
        goto out;
    if (!cJSON_IsString(schema) || strcmp(schema->valuestring, CTR_ADSMITH_SCHEMA) != 0) {
        rc = ctr_fail(r, diag, "/schema", "/schema must be \"%s\"", CTR_ADSMITH_SCHEMA);
        goto out;
    }
    fields = cJSON_GetObjectItemCaseSensitive(doc, "fields");
    if (!cJSON_IsArray(fields) || cJSON_GetArraySize(fields) == 0) {
        rc = ctr_fail(r, diag, "/fields", "/fields must be a non-empty array of {\"name\", \"kind\"}");
        goto out;
    }
    cJSON_ArrayForEach(f, fields)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(f, "kind");
        uint32_t i = r->schema.nfields;
        bool num;

        if (!cJSON_IsString(name) || !ctr_name_ok(name->valuestring, strlen(name->valuestring))) {
            rc = ctr_fail(r, diag, "/fields", "/fields/%u/name must be 1 to %d of A-Z a-z 0-9 _ - . /", i,
                          CTR_NAME_MAX - 1);
            goto out;
        }
        if (!cJSON_IsString(kind) || (strcmp(kind->valuestring, "num") != 0 && strcmp(kind->valuestring, "cat") != 0)) {
            rc = ctr_fail(r, diag, "/fields", "/fields/%u/kind must be \"num\" or \"cat\"", i);
            goto out;
        }
        num = strcmp(kind->valuestring, "num") == 0;
        if (ctr_field_find(&r->schema, name->valuestring, strlen(name->valuestring)) >= 0) {
            rc = ctr_fail(r, diag, "/fields", "/fields/%u: the field '%s' is named twice", i, name->valuestring);
            goto out;
        }
        if (ctr_field_add(&r->schema, name->valuestring, strlen(name->valuestring), num ? CTR_NUM : CTR_CAT) < 0) {
            rc = ctr_fail(r, diag, "/fields", "/fields has more than %d fields", CTR_MAX_FIELDS);
            goto out;
        }
    }
out:
    cJSON_Delete(doc);
    return rc;
}

/* Whether the first non-blank line is a header (then it is not a data row). */
static bool ctr_is_header(struct ctr_reader *r, char *s, size_t len)
{
    bool is_header = false;

    switch (r->fmt) {
    case CTR_F_AVAZU: return len >= 3 && memcmp(s, "id", 2) == 0 && s[2] == ',';
    case CTR_F_CSV: return ctr_csv_header(r, s, len);
    case CTR_F_ADSMITH: ctr_adsmith_header(r, s, len, false, &is_header, NULL); return is_header;
    default: return false;
    }
}

static int ctr_parse(struct ctr_reader *r, char *s, size_t len, struct ctr_row *row, struct ads_diag *diag)
{
    switch (r->fmt) {
    case CTR_F_CRITEO: return ctr_row_criteo(r, s, len, row, diag);
    case CTR_F_AVAZU: return ctr_row_avazu(r, s, len, row, diag);
    case CTR_F_LIBSVM:
    case CTR_F_LIBFFM: return ctr_row_sparse(r, s, len, row, diag);
    case CTR_F_CSV: return ctr_row_csv(r, s, len, row, diag);
    case CTR_F_ADSMITH: return ctr_row_adsmith(r, s, len, row, diag);
    }
    return ADS_EINTERNAL;
}

/* ---- the reader ---- */

static int ctr_set_format(struct ctr_reader *r, const char *format, struct ads_diag *diag)
{
    static const char *const hint = "use criteo, avazu, libsvm, libffm, csv:SPEC, tsv:SPEC, adsmith or adsmith:SPEC";
    char name[CTR_NAME_MAX];

    if (strlen(format) > CTR_FORMAT_MAX)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "the format is longer than %u bytes", CTR_FORMAT_MAX);
    if (strcmp(format, "criteo") == 0) {
        r->fmt = CTR_F_CRITEO;
        r->sep = '\t';
        ctr_schema_criteo(r);
    } else if (strcmp(format, "avazu") == 0) {
        static const char *const hod = "hour_of_day";
        r->fmt = CTR_F_AVAZU;
        r->sep = ',';
        ctr_schema_id(&r->schema, "avazu");
        ctr_schema_fixed(r, ctr_avazu_names + 2, CTR_AVAZU_COLS - 2, CTR_CAT);
        ctr_schema_fixed(r, &hod, 1, CTR_CAT);
    } else if (strcmp(format, "libsvm") == 0) {
        static const char *const features = "features";
        r->fmt = CTR_F_LIBSVM;
        ctr_schema_id(&r->schema, "libsvm");
        ctr_schema_fixed(r, &features, 1, CTR_CAT);
    } else if (strcmp(format, "libffm") == 0) {
        r->fmt = CTR_F_LIBFFM;
        ctr_schema_id(&r->schema, "libffm");
        for (int i = 0; i < CTR_MAX_FIELDS; i++) {
            snprintf(name, sizeof(name), "%d", i);
            ctr_field_add(&r->schema, name, strlen(name), CTR_CAT);
        }
    } else if (strncmp(format, "csv:", 4) == 0 || strncmp(format, "tsv:", 4) == 0) {
        r->fmt = CTR_F_CSV;
        r->sep = format[0] == 'c' ? ',' : '\t';
        r->quotes = format[0] == 'c';
        ctr_schema_id(&r->schema, "csv");
        return ctr_parse_spec(r, format + 4, false, diag);
    } else if (strcmp(format, "adsmith") == 0 || strncmp(format, "adsmith:", 8) == 0) {
        r->fmt = CTR_F_ADSMITH;
        ctr_schema_id(&r->schema, "adsmith");
        if (format[7] == ':') {
            r->spec_given = true;
            return ctr_parse_spec(r, format + 8, true, diag);
        }
    } else if (strcmp(format, "csv") == 0 || strcmp(format, "tsv") == 0) {
        return ads_diag_set(diag, ADS_EINVAL, NULL,
                            "%s needs a column SPEC: %s:label,num:NAME,cat:NAME,skip,... (one entry per column)",
                            format, format);
    } else {
        return ads_diag_set(diag, ADS_EINVAL, NULL, "unknown format '%.*s'; %s", ctr_show(strlen(format)), format,
                            hint);
    }
    return 0;
}

/* adsmith without a SPEC: the schema is the file's first non-blank line, read now. */
static int ctr_read_adsmith_schema(struct ctr_reader *r, struct ads_diag *diag)
{
    char *s = NULL;
    size_t len = 0;
    bool is_header;
    int rc;

    for (;;) {
        rc = ctr_next_line(r, &s, &len);
        if (rc < 0)
            return ads_diag_set(diag, rc, NULL, "cannot read the schema line: %s", strerror(-rc));
        if (rc == CTR_LINE_EOF)
            return ads_diag_set(diag, ADS_EINVAL, NULL,
                                "the file is empty: the adsmith format starts with a schema line "
                                "{\"schema\":\"%s\",\"fields\":[...]}",
                                CTR_ADSMITH_SCHEMA);
        r->line++;
        if (rc == CTR_LINE_LONG)
            return ctr_fail(r, diag, NULL, "longer than %u bytes", CTR_LINE_MAX);
        if (!ctr_blank(s, len))
            break;
    }
    r->started = true;
    if ((rc = ctr_adsmith_header(r, s, len, true, &is_header, diag)) != 0)
        return rc;
    if (!is_header)
        return ctr_fail(r, diag, NULL,
                        "the adsmith format starts with a schema line {\"schema\":\"%s\",\"fields\":[{\"name\":...,"
                        "\"kind\":\"cat\"|\"num\"},...]}, or give the fields: --format adsmith:cat:NAME,num:NAME,...",
                        CTR_ADSMITH_SCHEMA);
    return 0;
}

int ctr_reader_open(const char *path, const char *format, const struct ctr_reader_opts *opts, struct ctr_reader **ret,
                    struct ads_diag *diag)
{
    struct ctr_reader *r;
    struct stat st;
    int rc;

    if (path == NULL || format == NULL || ret == NULL)
        return ads_diag_set(diag, ADS_EINVAL, NULL, "no path or no format");
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory");
    r->fd = -1;
    if (opts != NULL) {
        r->first_row = opts->first_row;
        r->max_rows = opts->max_rows;
    }
    if ((rc = ctr_set_format(r, format, diag)) != 0)
        goto fail;
    r->cap = CTR_LINE_MAX + CTR_READ_CHUNK + 1;
    if ((r->buf = malloc(r->cap)) == NULL) {
        rc = ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory");
        goto fail;
    }
    if (strcmp(path, "-") == 0) {
        r->fd = 0;
    } else if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        ads_diag_set(diag, rc, NULL, "cannot open %s: %s", path, strerror(-rc));
        goto fail;
    } else {
        r->close_fd = true;
    }
    if (fstat(r->fd, &st) != 0) {
        rc = -errno;
        ads_diag_set(diag, rc, NULL, "cannot stat %s: %s", path, strerror(-rc));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = ads_diag_set(diag, -EISDIR, NULL, "%s is a directory", path);
        goto fail;
    }
    if (S_ISREG(st.st_mode))
        r->size = (uint64_t)st.st_size;
    if (r->fmt == CTR_F_ADSMITH && !r->spec_given && (rc = ctr_read_adsmith_schema(r, diag)) != 0)
        goto fail;
    *ret = r;
    return 0;
fail:
    ctr_reader_close(r);
    return rc;
}

int ctr_reader_next(struct ctr_reader *r, struct ctr_row *row, struct ads_diag *diag)
{
    char *s = NULL;
    size_t len = 0;
    uint64_t at;
    int rc;

    for (;;) {
        if (r->max_rows > 0 && r->rows >= r->first_row && r->rows - r->first_row >= r->max_rows)
            return 0;
        rc = ctr_next_line(r, &s, &len);
        if (rc < 0)
            return ads_diag_set(diag, rc, NULL, "read error after line %" PRIu64 ": %s", r->line, strerror(-rc));
        if (rc == CTR_LINE_EOF)
            return 0;
        r->line++;
        if (rc == CTR_LINE_OK && ctr_blank(s, len))
            continue;
        if (!r->started) {
            r->started = true;
            if (rc == CTR_LINE_OK && ctr_is_header(r, s, len))
                continue;
        }
        at = r->rows++;
        if (at < r->first_row)
            continue;
        row->n = 0;
        row->label = 0;
        row->line = r->line;
        if (rc == CTR_LINE_LONG)
            return ctr_fail(r, diag, NULL, "longer than %u bytes", CTR_LINE_MAX);
        if ((rc = ctr_parse(r, s, len, row, diag)) != 0)
            return rc;
        return 1;
    }
}

const struct ctr_schema *ctr_reader_schema(const struct ctr_reader *r)
{
    return &r->schema;
}

void ctr_reader_progress(const struct ctr_reader *r, uint64_t *done, uint64_t *total)
{
    if (done != NULL)
        *done = r->consumed;
    if (total != NULL)
        *total = r->size;
}

void ctr_reader_close(struct ctr_reader *r)
{
    if (r == NULL)
        return;
    if (r->close_fd)
        close(r->fd);
    free(r->buf);
    free(r);
}
