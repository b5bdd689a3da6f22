/*
 * What `adsmith train` and `adsmith eval` share: the input options (--input,
 * --format, --rows, --max-bad), the loop over a click log with its report of
 * malformed lines, and the progress display. Internal to service/cli/.
 */
#ifndef ADSMITH_CLI_CTRIO_H
#define ADSMITH_CLI_CTRIO_H

#include <stdbool.h>
#include <stdint.h>

#include "adsmith/ctr.h"

#define CLI_CTR_SHOW_BAD 20 /* malformed lines printed; more are counted */

/* The input options, for --help (include/adsmith/ctr.h has the details of each format). */
#define CLI_CTR_INPUT_HELP                                                                                             \
    "  --input FILE      the click log (\"-\" reads standard input)\n"                                                 \
    "  --format F        criteo     Criteo DAC TSV: label, I1..I13, C1..C26\n"                                         \
    "                    avazu      Avazu CSV: id, click, hour, C1 ... C21 (header line optional)\n"                   \
    "                    libsvm     label idx[:val] ...   (iPinYou's train.fm.txt)\n"                                  \
    "                    libffm     label field:idx[:val] ...\n"                                                       \
    "                    csv:SPEC   SPEC is one role per column: label, skip, num:NAME, cat:NAME\n"                    \
    "                    tsv:SPEC     e.g. csv:skip,label,num:price,cat:site (header line optional)\n"                 \
    "                    adsmith    JSON Lines of labelled impressions after a schema line;\n"                         \
    "                    adsmith:SPEC  the same, fields given as cat:NAME,num:NAME,...\n"                              \
    "  --rows A:B        only data rows A up to, not including, B (0-based; A: to the end; :B from\n"                  \
    "                    the start). Rows are non-blank, non-header lines, malformed ones included,\n"                 \
    "                    so a time split cuts the file at the same place for train and eval\n"                         \
    "  --max-bad N       skip up to N malformed lines (each is reported); default 0: any stops\n"

/** Progress on stderr: a bar redrawn at most 10 times a second on a terminal, else a plain line every 5 s. */
struct cli_bar {
    bool tty;
    bool drawn; /* the bar is on the terminal's last line */
    uint64_t started_ns, last_ns;
};

/** Monotonic nanoseconds. */
uint64_t cli_now_ns(void);

void cli_bar_init(struct cli_bar *b);

/**
 * Shows @p phase ("reading", "training") at @p frac (0..1; negative when
 * unknown) with @p detail ("12000 rows"). Rate-limited: cheap to call often.
 * @p force draws even if the last draw was recent.
 */
void cli_bar_show(struct cli_bar *b, const char *phase, double frac, const char *detail, bool force);

/** Erases the bar, so that a message can be printed on a clean line. */
void cli_bar_clear(struct cli_bar *b);

/** The input options of a command. */
struct cli_ctr_input {
    const char *path, *format;
    struct ctr_reader_opts window; /* --rows */
    bool window_given;
    uint64_t max_bad; /* --max-bad: malformed lines tolerated (skipped) */
};

/**
 * Takes argv[*@p i] if it is one of the input options, for command @p cmd
 * ("train"). @return 1 when taken (*@p i moved past its value), 0 when it is
 * another option, 2 after explaining a usage error on stderr.
 */
int cli_ctr_opt(int argc, char **argv, int *i, const char *cmd, struct cli_ctr_input *in);

/**
 * Opens the input. @return 0 with *@p ret, else the exit status after
 * explaining on stderr: 2 for a bad format or SPEC, 1 when the file cannot
 * be opened or read.
 */
int cli_ctr_open(const char *cmd, const struct cli_ctr_input *in, struct ctr_reader **ret);

/** "rows 3378.." or "rows 0..3377" or "all rows", for messages and the model's source text. */
void cli_ctr_window_text(const struct cli_ctr_input *in, char *out, size_t cap);

struct cli_ctr_stats {
    uint64_t rows, positives, bad;
    uint64_t first_line, last_line; /* of the rows read; 0 when none */
    double secs;
};

/**
 * Reads every row of @p r and calls @p each on it; a non-zero return of
 * @p each stops the loop (its @p diag is printed). Malformed lines are
 * printed (the first CLI_CTR_SHOW_BAD) and skipped while there are at most
 * in->max_bad of them. @return 0, or 1 after explaining.
 */
int cli_ctr_read(const char *cmd, const struct cli_ctr_input *in, struct ctr_reader *r, struct cli_bar *bar,
                 int (*each)(void *ctx, const struct ctr_row *row, struct ads_diag *diag), void *ctx,
                 struct cli_ctr_stats *ret);

/** Strict number parsing for options: the whole text, finite. */
bool cli_parse_u64(const char *v, uint64_t *ret);
bool cli_parse_double(const char *v, double *ret);

#endif
