#include "adsmith/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adsmith/err.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_DIR_ENV "ADSMITH_TZDIR"
#define TZ_NAME_MAX 64

/* Bounds on what one TZif file may declare. Real files stay far below them
 * (a "fat" zone has a few hundred transitions, a dozen types, a few dozen
 * bytes of abbreviations, a 3 KiB file); they only keep a malformed file from
 * making us allocate or read without limit. */
#define TZ_FILE_MAX (256 * 1024)
#define TZ_MAX_TRANS 20000
#define TZ_MAX_TYPES 256 /* a transition names its type in one byte */
#define TZ_MAX_CHARS 4096
#define TZ_MAX_LEAPS 1000
#define TZ_FOOTER_MAX 128

/* RFC 8536 3.2: utoff SHOULD lie in [-89999, 93599]; we require it, so that
 * local-time arithmetic never meets an absurd offset. */
#define TZ_UTOFF_MIN (-89999)
#define TZ_UTOFF_MAX 93599

/* Times given to the footer rule are clamped to about +-35000 years, far
 * beyond any campaign, so that calendar arithmetic cannot overflow. */
#define TZ_T_LIMIT ((int64_t)1 << 40)

#define TZ_HEADER_LEN 44

enum tz_date_kind { TZ_DATE_JULIAN1, TZ_DATE_JULIAN0, TZ_DATE_MONTH };

/* One end of the daylight-saving period of a POSIX TZ rule. */
struct tz_date {
    enum tz_date_kind kind;
    int32_t day;               /* Jn: 1-365; n: 0-365 */
    int32_t month, week, wday; /* Mm.w.d */
    int32_t time;              /* seconds after local midnight, -167h..167h */
};

/* The footer's POSIX TZ string, for times after the last transition. */
struct tz_rule {
    bool present;
    bool has_dst;
    int32_t std_off, dst_off; /* seconds east of UTC */
    struct tz_date start, end;
};

struct tz {
    uint32_t ntrans;
    int32_t first_off;     /* before the first transition: type 0 (RFC 8536 3.2) */
    int32_t last_off;      /* after the last transition, when there is no footer rule */
    const int64_t *trans;  /* ntrans ascending transition times */
    const int32_t *offset; /* ntrans offsets in effect from each transition on */
    struct tz_rule rule;
    /* trans[] and offset[] follow in the same allocation. */
};

/* ---- names ---- */

static bool tz_name_ok(const char *name)
{
    size_t len, part = 0;

    if (name == NULL)
        return false;
    len = strnlen(name, TZ_NAME_MAX + 1);
    if (len == 0 || len > TZ_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (ch == '/') {
            if (part == 0)
                return false; /* leading "/" or "//" */
            part = 0;
            continue;
        }
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '+' || ch == '-'))
            return false;
        part++;
    }
    return part > 0; /* no trailing "/" */
}

/* ---- reading the file ---- */

static int tz_read_file(const char *name, unsigned char **ret_data, size_t *ret_len)
{
    const char *dir = getenv(TZ_DIR_ENV);
    char path[512];
    struct stat st;
    unsigned char *data;
    size_t got = 0;
    int fd, n;

    if (dir == NULL || dir[0] == '\0')
        dir = TZ_DEFAULT_DIR;
    n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return ADS_ENOT_FOUND;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOMEM ? ADS_ENOMEM : ADS_ENOT_FOUND;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ADS_ENOT_FOUND; /* a directory ("Europe") is not a zone */
    }
    if (st.st_size < TZ_HEADER_LEN || st.st_size > TZ_FILE_MAX) {
        close(fd);
        return ADS_EDATA_INVALID;
    }
    /* One byte more than the size, to notice a file that grew while read. */
    data = malloc((size_t)st.st_size + 1);
    if (data == NULL) {
        close(fd);
        return ADS_ENOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(data);
            close(fd);
            return ADS_ENOT_FOUND;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > (size_t)st.st_size)
            break;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        free(data);
        return ADS_EDATA_INVALID;
    }
    *ret_data = data;
    *ret_len = got;
    return 0;
}

/* A bounds-checked reader over the file's bytes: every read fails once past the end. */
struct tz_rd {
    const unsigned char *p;
    size_t left;
};

static bool tz_take(struct tz_rd *r, size_t n, const unsigned char **ret)
{
    if (n > r->left)
        return false;
    *ret = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static uint32_t tz_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t tz_be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)tz_be32(p) << 32 | tz_be32(p + 4));
}

struct tz_header {
    char version; /* 0 for version 1, else '2', '3', ... */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static bool tz_header(struct tz_rd *r, struct tz_header *h)
{
    const unsigned char *p;

    if (!tz_take(r, TZ_HEADER_LEN, &p) || memcmp(p, "TZif", 4) != 0)
        return false;
    h->version = (char)p[4];
    if (h->version != 0 && (h->version < '2' || h->version > '9'))
        return false;
    h->isutcnt = tz_be32(p + 20);
    h->isstdcnt = tz_be32(p + 24);
    h->leapcnt = tz_be32(p + 28);
    h->timecnt = tz_be32(p + 32);
    h->typecnt = tz_be32(p + 36);
    h->charcnt = tz_be32(p + 40);
    /* RFC 8536 3.1: typecnt and charcnt must not be zero; the indicator
     * arrays are absent or one entry per type. */
    return h->typecnt >= 1 && h->typecnt <= TZ_MAX_TYPES && h->charcnt >= 1 && h->charcnt <= TZ_MAX_CHARS &&
           h->timecnt <= TZ_MAX_TRANS && h->leapcnt <= TZ_MAX_LEAPS && (h->isutcnt == 0 || h->isutcnt == h->typecnt) &&
           (h->isstdcnt == 0 || h->isstdcnt == h->typecnt);
}

/* Size of the data block that follows a header; time_size is 4 (v1) or 8. */
static size_t tz_block_len(const struct tz_header *h, size_t time_size)
{
    return (size_t)h->timecnt * time_size + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

/* Reads and checks one data block into z (whose arrays have room for
 * h->timecnt entries). */
static bool tz_block(struct tz_rd *r, const struct tz_header *h, size_t time_size, struct tz *z, int64_t *trans,
                     int32_t *offset)
{
    const unsigned char *times, *idx, *types, *chars, *leaps, *isstd, *isut;
    int32_t type_off[TZ_MAX_TYPES];

    if (!tz_take(r, (size_t)h->timecnt * time_size, &times) || !tz_take(r, h->timecnt, &idx) ||
        !tz_take(r, (size_t)h->typecnt * 6, &types) || !tz_take(r, h->charcnt, &chars) ||
        !tz_take(r, (size_t)h->leapcnt * (time_size + 4), &leaps) || !tz_take(r, h->isstdcnt, &isstd) ||
        !tz_take(r, h->isutcnt, &isut))
        return false;
    (void)chars;
    (void)leaps; /* leap-second corrections are ignored: adsmith cuts hours, not seconds */
    for (uint32_t i = 0; i < h->typecnt; i++) {
        const unsigned char *t = types + (size_t)i * 6;
        int32_t off = (int32_t)tz_be32(t);
        if (off < TZ_UTOFF_MIN || off > TZ_UTOFF_MAX || t[4] > 1 || t[5] >= h->charcnt)
            return false;
        type_off[i] = off;
    }
    for (uint32_t i = 0; i < h->isstdcnt; i++) {
        if (isstd[i] > 1)
            return false;
    }
    for (uint32_t i = 0; i < h->isutcnt; i++) {
        if (isut[i] > 1 || (isut[i] == 1 && (h->isstdcnt == 0 || isstd[i] != 1)))
            return false;
    }
    for (uint32_t i = 0; i < h->timecnt; i++) {
        int64_t t = time_size == 8 ? tz_be64(times + (size_t)i * 8) : (int32_t)tz_be32(times + (size_t)i * 4);
        if (i > 0 && t <= trans[i - 1])
            return false; /* transitions must ascend */
        if (idx[i] >= h->typecnt)
            return false;
        trans[i] = t;
        offset[i] = type_off[idx[i]];
    }
    z->ntrans = h->timecnt;
    z->first_off = type_off[0];
    z->last_off = h->timecnt > 0 ? offset[h->timecnt - 1] : type_off[0];
    return true;
}

/* ---- the footer's POSIX TZ string ---- */

static bool tz_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool tz_is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* A number of at most 3 digits in [min, max]. */
static bool tz_num(const char **s, int32_t min, int32_t max, int32_t *ret)
{
    int32_t v = 0;
    int n = 0;

    while (tz_is_digit(**s) && n < 3) {
        v = v * 10 + (**s - '0');
        (*s)++;
        n++;
    }
    if (n == 0 || tz_is_digit(**s) || v < min || v > max)
        return false;
    *ret = v;
    return true;
}

/* [+-]hh[:mm[:ss]] with hh at most max_h; returns seconds. */
static bool tz_hms(const char **s, int32_t max_h, int32_t *ret)
{
    int32_t sign = 1, h, m = 0, sec = 0;

    if (**s == '+' || **s == '-') {
        sign = **s == '-' ? -1 : 1;
        (*s)++;
    }
    if (!tz_num(s, 0, max_h, &h))
        return false;
    if (**s == ':') {
        (*s)++;
        if (!tz_num(s, 0, 59, &m))
            return false;
        if (**s == ':') {
            (*s)++;
            if (!tz_num(s, 0, 59, &sec))
                return false;
        }
    }
    *ret = sign * (h * 3600 + m * 60 + sec);
    return true;
}

/* A zone abbreviation: 3 or more letters, or <...> of letters, digits, + and -. */
static bool tz_abbr(const char **s)
{
    const char *p = *s;
    size_t n = 0;

    if (*p == '<') {
        p++;
        while (tz_is_alpha(*p) || tz_is_digit(*p) || *p == '+' || *p == '-') {
            p++;
            n++;
        }
        if (*p != '>' || n < 3)
            return false;
        *s = p + 1;
        return true;
    }
    while (tz_is_alpha(*p)) {
        p++;
        n++;
    }
    if (n < 3)
        return false;
    *s = p;
    return true;
}

static bool tz_date(const char **s, struct tz_date *d)
{
    if (**s == 'J') {
        (*s)++;
        d->kind = TZ_DATE_JULIAN1;
        if (!tz_num(s, 1, 365, &d->day))
            return false;
    } else if (**s == 'M') {
        (*s)++;
        d->kind = TZ_DATE_MONTH;
        if (!tz_num(s, 1, 12, &d->month) || *(*s)++ != '.' || !tz_num(s, 1, 5, &d->week) || *(*s)++ != '.' ||
            !tz_num(s, 0, 6, &d->wday))
            return false;
    } else {
        d->kind = TZ_DATE_JULIAN0;
        if (!tz_num(s, 0, 365, &d->day))
            return false;
    }
    d->time = 2 * 3600;
    if (**s == '/') {
        (*s)++;
        /* RFC 8536 3.3.1 extends the hour of a rule time to -167..167. */
        if (!tz_hms(s, 167, &d->time))
            return false;
    }
    return true;
}

/* Parses std offset [dst [offset] ,start[/time],end[/time]]. A rule with a
 * dst part but no dates is refused: zic always writes the dates, and POSIX
 * leaves the default to the implementation. */
static bool tz_rule_parse(const char *s, struct tz_rule *r)
{
    int32_t off;

    memset(r, 0, sizeof(*r));
    if (!tz_abbr(&s) || !tz_hms(&s, 24, &off))
        return false;
    r->std_off = -off; /* POSIX counts west positive */
    r->dst_off = r->std_off;
    r->present = true;
    if (*s == '\0')
        return true;
    if (!tz_abbr(&s))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s != ',') {
        if (!tz_hms(&s, 24, &off))
            return false;
        r->dst_off = -off;
    }
    if (*s++ != ',' || !tz_date(&s, &r->start) || *s++ != ',' || !tz_date(&s, &r->end))
        return false;
    return *s == '\0';
}

static bool tz_footer(struct tz_rd *r, struct tz *z)
{
    const unsigned char *p;
    char text[TZ_FOOTER_MAX + 1];
    size_t n = 0;

    if (!tz_take(r, 1, &p) || p[0] != '\n')
        return false;
    for (;;) {
        if (!tz_take(r, 1, &p))
            return false; /* no closing newline: truncated */
        if (p[0] == '\n')
            break;
        if (p[0] < 0x20 || p[0] > 0x7e || n == TZ_FOOTER_MAX)
            return false;
        text[n++] = (char)p[0];
    }
    text[n] = '\0';
    if (r->left != 0)
        return false; /* trailing bytes */
    if (n == 0)
        return true; /* an empty footer: the last transition's type holds on */
    return tz_rule_parse(text, &z->rule);
}

static int tz_parse(const unsigned char *data, size_t len, struct tz **ret)
{
    struct tz_rd r = {data, len};
    struct tz_header h1, h2;
    const unsigned char *skip;
    const struct tz_header *h;
    size_t time_size;
    struct tz *z;
    int64_t *trans;
    int32_t *offset;

    if (!tz_header(&r, &h1))
        return ADS_EDATA_INVALID;
    h = &h1;
    time_size = 4;
    if (h1.version != 0) {
        /* Version 2+: skip the 32-bit block and read the 64-bit one. */
        if (!tz_take(&r, tz_block_len(&h1, 4), &skip) || !tz_header(&r, &h2) || h2.version != h1.version)
            return ADS_EDATA_INVALID;
        h = &h2;
        time_size = 8;
    }
    if (tz_block_len(h, time_size) > r.left)
        return ADS_EDATA_INVALID; /* truncated: checked before allocating */
    z = calloc(1, sizeof(*z) + (size_t)h->timecnt * (sizeof(int64_t) + sizeof(int32_t)));
    if (z == NULL)
        return ADS_ENOMEM;
    trans = (int64_t *)(z + 1);
    offset = (int32_t *)(trans + h->timecnt);
    z->trans = trans;
    z->offset = offset;
    if (!tz_block(&r, h, time_size, z, trans, offset) || (h->version != 0 && !tz_footer(&r, z)) ||
        (h->version == 0 && r.left != 0)) {
        free(z);
        return ADS_EDATA_INVALID;
    }
    *ret = z;
    return 0;
}

/* ---- public API ---- */

int tz_load(const char *name, struct tz **ret)
{
    unsigned char *data;
    size_t len;
    int rc;

    if (!tz_name_ok(name))
        return ADS_ENOT_FOUND;
    if ((rc = tz_read_file(name, &data, &len)) != 0)
        return rc;
    rc = tz_parse(data, len, ret);
    free(data);
    return rc;
}

bool tz_exists(const char *name)
{
    struct tz *z;

    if (tz_load(name, &z) != 0)
        return false;
    tz_free(z);
    return true;
}

void tz_free(struct tz *z)
{
    free(z);
}

/* ---- calendar ---- */

static int64_t tz_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool tz_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to day d of month m (1-12) of year y (proleptic
 * Gregorian), counting in 400-year eras that start on March 1st so that the
 * leap day comes last. */
static int64_t tz_days_from_civil(int64_t y, int32_t m, int32_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = tz_floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t tz_year_of_days(int64_t days)
{
    int64_t z = days + 719468, era = tz_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    return yoe + era * 400 + (m <= 2);
}

static int32_t tz_month_days(int64_t y, int32_t m)
{
    static const int32_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && tz_leap(y) ? 29 : days[m - 1];
}

/* The UTC instant at which rule date d happens in year y, when the local
 * time in effect just before it is utoff seconds east of UTC. */
static int64_t tz_rule_instant(const struct tz_date *d, int64_t y, int32_t utoff)
{
    int64_t day;

    switch (d->kind) {
    case TZ_DATE_JULIAN1: /* 1-365, February 29 never counted */
        day = tz_days_from_civil(y, 1, 1) + d->day - 1 + (tz_leap(y) && d->day >= 60 ? 1 : 0);
        break;
    case TZ_DATE_JULIAN0: /* 0-365, February 29 counted */ day = tz_days_from_civil(y, 1, 1) + d->day; break;
    default: {
        int64_t first = tz_days_from_civil(y, d->month, 1);
        int32_t first_wday = (int32_t)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
        int32_t mday = 1 + (d->wday - first_wday + 7) % 7 + (d->week - 1) * 7;
        while (mday > tz_month_days(y, d->month))
            mday -= 7; /* week 5 means the last such day */
        day = first + mday - 1;
        break;
    }
    }
    return day * 86400 + d->time - utoff;
}

static int32_t tz_rule_offset(const struct tz_rule *r, int64_t t)
{
    int64_t y, best_t = INT64_MIN;
    int32_t best = r->std_off;

    if (!r->has_dst)
        return r->std_off;
    if (t > TZ_T_LIMIT)
        t = TZ_T_LIMIT;
    if (t < -TZ_T_LIMIT)
        t = -TZ_T_LIMIT;
    /* The last transition at or before t, among those of the years around
     * t's: rule times of up to 167 hours can push a transition into the
     * neighbouring year. On a tie (DST all year: "J1/0,J365/25") DST wins. */
    y = tz_year_of_days(tz_floor_div(t + r->std_off, 86400));
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t start = tz_rule_instant(&r->start, yy, r->std_off);
        int64_t end = tz_rule_instant(&r->end, yy, r->dst_off);
        if (end <= t && (end > best_t)) {
            best_t = end;
            best = r->std_off;
        }
        if (start <= t && start >= best_t) {
            best_t = start;
            best = r->dst_off;
        }
    }
    return best;
}

int32_t tz_offset_at(const struct tz *z, int64_t t)
{
    uint32_t lo, hi;

    if (z->ntrans == 0)
        return z->rule.present ? tz_rule_offset(&z->rule, t) : z->first_off;
    if (t < z->trans[0])
        return z->first_off;
    if (t >= z->trans[z->ntrans - 1])
        return z->rule.present ? tz_rule_offset(&z->rule, t) : z->last_off;
    /* trans[lo] <= t < trans[hi] */
    lo = 0;
    hi = z->ntrans - 1;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->offset[lo];
}
