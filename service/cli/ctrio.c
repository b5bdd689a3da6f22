/* Click-log input for `adsmith train` and `adsmith eval` (ctrio.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctrio.h"

#include "adsmith/cli.h"

#define CLI_BAR_WIDTH 30
#define CLI_BAR_TTY_NS 100000000u    /* redraw a terminal bar at most every 0.1 s */
#define CLI_BAR_PLAIN_NS 5000000000u /* a plain progress line every 5 s */

uint64_t cli_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cli_bar_init(struct cli_bar *b)
{
    b->tty = isatty(2) == 1;
    b->drawn = false;
    b->started_ns = b->last_ns = cli_now_ns();
}

void cli_bar_clear(struct cli_bar *b)
{
    if (b->drawn) {
        fputs("\r\033[K", stderr);
        b->drawn = false;
    }
}

void cli_bar_show(struct cli_bar *b, const char *phase, double frac, const char *detail, bool force)
{
    uint64_t now = cli_now_ns();
    double secs = (double)(now - b->started_ns) / 1e9;
    char bar[CLI_BAR_WIDTH + 1];

    if (!force && now - b->last_ns < (b->tty ? CLI_BAR_TTY_NS : CLI_BAR_PLAIN_NS))
        return;
    b->last_ns = now;
    if (!b->tty) {
        fprintf(stderr, "%s:", phase);
        if (frac >= 0)
            fprintf(stderr, " %.1f%%,", 100 * fmin(frac, 1));
        if (detail[0] != '\0')
            fprintf(stderr, " %s,", detail);
        fprintf(stderr, " %.1f s\n", secs);
        return;
    }
    if (frac >= 0) {
        size_t fill = (size_t)(fmin(frac, 1) * CLI_BAR_WIDTH);
        for (size_t i = 0; i < CLI_BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[CLI_BAR_WIDTH] = '\0';
        fprintf(stderr, "\r%-9s [%s] %5.1f%%  ", phase, bar, 100 * fmin(frac, 1));
    } else {
        fprintf(stderr, "\r%-9s ", phase);
    }
    if (detail[0] != '\0')
        fprintf(stderr, "%s  ", detail);
    fprintf(stderr, "%.1f s\033[K", secs);
    b->drawn = true;
}

bool cli_parse_u64(const char *v, uint64_t *ret)
{
    unsigned long long n;
    char *end;

    if (v[0] < '0' || v[0] > '9')
        return false;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (*end != '\0' || errno != 0)
        return false;
    *ret = n;
    return true;
}

bool cli_parse_double(const char *v, double *ret)
{
    char *end;
    double x;

    if (v[0] == '\0')
        return false;
    errno = 0;
    x = strtod(v, &end);
    if (*end != '\0' || errno != 0 || !isfinite(x))
        return false;
    *ret = x;
    return true;
}

/* "A:B", "A:" or ":B": rows A (default 0) up to, not including, B (default: the end). */
static bool cli_ctr_rows(const char *v, struct ctr_reader_opts *o)
{
    const char *colon = strchr(v, ':');
    char a[32];
    uint64_t first = 0, end = 0;
    size_t alen;

    if (colon == NULL || (alen = (size_t)(colon - v)) >= sizeof(a))
        return false;
    memcpy(a, v, alen);
    a[alen] = '\0';
    if (alen > 0 && !cli_parse_u64(a, &first))
        return false;
    if (colon[1] != '\0' && (!cli_parse_u64(colon + 1, &end) || end <= first))
        return false;
    o->first_row = first;
    o->max_rows = colon[1] != '\0' ? end - first : 0;
    return true;
}

int cli_ctr_opt(int argc, char **argv, int *i, const char *cmd, struct cli_ctr_input *in)
{
    const char *v;

    if ((v = cli_opt_value(argc, argv, i, "--input")) != NULL) {
        if (v[0] == '\0') {
            fprintf(stderr, "adsmith %s: --input needs a file (\"-\" for standard input)\n", cmd);
            return 2;
        }
        in->path = v;
    } else if ((v = cli_opt_value(argc, argv, i, "--format")) != NULL) {
        if (v[0] == '\0') {
            fprintf(stderr,
                    "adsmith %s: --format needs a value: criteo, avazu, libsvm, libffm, csv:SPEC, tsv:SPEC, "
                    "adsmith\n",
                    cmd);
            return 2;
        }
        in->format = v;
    } else if ((v = cli_opt_value(argc, argv, i, "--rows")) != NULL) {
        if (!cli_ctr_rows(v, &in->window)) {
            fprintf(stderr,
                    "adsmith %s: --rows takes A:B (data rows A up to, not including, B; 0-based), A: or :B, with "
                    "B > A, not '%s'\n",
                    cmd, v);
            return 2;
        }
        in->window_given = true;
    } else if ((v = cli_opt_value(argc, argv, i, "--max-bad")) != NULL) {
        if (!cli_parse_u64(v, &in->max_bad)) {
            fprintf(stderr, "adsmith %s: --max-bad must be a whole number, not '%s'\n", cmd, v);
            return 2;
        }
    } else {
        return 0;
    }
    return 1;
}

int cli_ctr_open(const char *cmd, const struct cli_ctr_input *in, struct ctr_reader **ret)
{
    struct ads_diag d = {{0}, {0}};
    int rc = ctr_reader_open(in->path, in->format, &in->window, ret, &d);

    if (rc == 0)
        return 0;
    fprintf(stderr, "adsmith %s: %s\n", cmd, d.message);
    if (rc == ADS_EINVAL) {
        fprintf(stderr, "adsmith %s --help describes the formats\n", cmd);
        return 2;
    }
    return 1;
}

void cli_ctr_window_text(const struct cli_ctr_input *in, char *out, size_t cap)
{
    if (!in->window_given)
        snprintf(out, cap, "all rows");
    else if (in->window.max_rows > 0)
        snprintf(out, cap, "rows %" PRIu64 ":%" PRIu64, in->window.first_row,
                 in->window.first_row + in->window.max_rows);
    else
        snprintf(out, cap, "rows %" PRIu64 ":", in->window.first_row);
}

static void cli_ctr_bad(const char *cmd, struct cli_bar *bar, uint64_t bad, const struct ads_diag *d)
{
    if (bad > CLI_CTR_SHOW_BAD + 1)
        return;
    cli_bar_clear(bar);
    if (bad == CLI_CTR_SHOW_BAD + 1)
        fprintf(stderr, "adsmith %s: (further malformed lines are counted, not shown)\n", cmd);
    else
        fprintf(stderr, "adsmith %s: %s\n", cmd, d->message);
}

int cli_ctr_read(const char *cmd, const struct cli_ctr_input *in, struct ctr_reader *r, struct cli_bar *bar,
                 int (*each)(void *ctx, const struct ctr_row *row, struct ads_diag *diag), void *ctx,
                 struct cli_ctr_stats *ret)
{
    struct ctr_row *row = malloc(sizeof(*row));
    struct ads_diag d = {{0}, {0}};
    uint64_t started = cli_now_ns(), done, total;
    char detail[96];
    int rc, status = 1;

    memset(ret, 0, sizeof(*ret));
    if (row == NULL) {
        fprintf(stderr, "adsmith %s: out of memory\n", cmd);
        return 1;
    }
    for (;;) {
        rc = ctr_reader_next(r, row, &d);
        if (rc == 0)
            break;
        if (rc == ADS_EINVAL) {
            cli_ctr_bad(cmd, bar, ++ret->bad, &d);
            if (ret->bad > in->max_bad) {
                cli_bar_clear(bar);
                fprintf(stderr,
                        "adsmith %s: more than %" PRIu64 " malformed lines (--max-bad): is --format %s right for %s?\n",
                        cmd, in->max_bad, in->format, in->path);
                goto out;
            }
            continue;
        }
        if (rc < 0) {
            cli_bar_clear(bar);
            fprintf(stderr, "adsmith %s: %s: %s\n", cmd, in->path, d.message);
            goto out;
        }
        if ((rc = each(ctx, row, &d)) != 0) {
            cli_bar_clear(bar);
            fprintf(stderr, "adsmith %s: line %" PRIu64 ": %s\n", cmd, row->line,
                    d.message[0] != '\0' ? d.message : ads_err_message(rc));
            goto out;
        }
        if (ret->rows++ == 0)
            ret->first_line = row->line;
        ret->last_line = row->line;
        ret->positives += row->label == 1;
        if ((ret->rows & 1023) == 0) {
            ctr_reader_progress(r, &done, &total);
            snprintf(detail, sizeof(detail), "%" PRIu64 " rows", ret->rows);
            cli_bar_show(bar, "reading", total > 0 ? (double)done / (double)total : -1, detail, false);
        }
    }
    status = 0;
out:
    ret->secs = (double)(cli_now_ns() - started) / 1e9;
    free(row);
    return status;
}
