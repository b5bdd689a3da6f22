/*
 * lrep: what adsmith-load tells about a run: a text summary, a JSON file
 * with every figure, a gnuplot plot (latency by percentile, throughput and
 * latency over time), and the comparison of two JSON files.
 *
 * Latencies are reported in milliseconds in the text and in microseconds
 * in the JSON ("_us" keys). The JSON layout is documented in
 * loadtest/README.md; `compare` relies only on it.
 */
#ifndef ADSMITH_LOAD_REPORT_H
#define ADSMITH_LOAD_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "run.h"

struct lrep_info {
    const char *command; /* "run" or "seed" */
    const char *url;
    const char *cpus; /* as given, or "" */
    const struct lrun_cfg *cfg;
    double load_before[3]; /* /proc/loadavg when the run started and ended */
    double load_after[3];
    long nprocs;         /* online CPUs */
    char started_at[32]; /* UTC, ISO 8601 */
};

/** Writes the text summary of @p r to @p f. */
void lrep_text(FILE *f, const struct lrep_info *info, const struct lrun_result *r);

/** Writes the JSON report to @p path. @return 0 or -errno. */
int lrep_json(const char *path, const struct lrep_info *info, const struct lrun_result *r);

/**
 * Renders the plot to @p path (".svg" for SVG, anything else PNG) with
 * gnuplot. @return 0; -ENOENT when gnuplot is missing; -EIO when it failed;
 * @p why (of @p why_cap bytes) says which.
 */
int lrep_plot(const char *path, const struct lrep_info *info, const struct lrun_result *r, char *why, size_t why_cap);

/**
 * Prints, for every figure present in both JSON reports (the time series
 * and percentile curve aside), A, B and B / A to @p out.
 * @return 0; -errno when a file cannot be read; -EINVAL when one is not a
 *         report; @p why says which.
 */
int lrep_compare(const char *path_a, const char *path_b, FILE *out, char *why, size_t why_cap);

#endif
