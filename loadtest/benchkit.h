/*
 * benchkit: what the per-request benchmarks (adsmith-bench-ortb,
 * adsmith-bench-bid) share: thread CPU time, an interleaved measurement of
 * several variants on one body, and the fixture directory they read.
 */
#ifndef ADSMITH_BENCHKIT_H
#define ADSMITH_BENCHKIT_H

#include <stddef.h>

#define BK_MAX_ROUNDS 101
#define BK_MAX_KINDS 4
#define BK_MAX_FILES 256

/** This thread's CPU time in ns: being descheduled on a shared machine does not count. */
double bk_cpu_ns(void);

/** Runs variant @p which once on the body; 0, or nonzero to stop the measurement. */
typedef int (*bk_run_fn)(int which, const char *body, size_t len);

/**
 * Median over @p rounds (1..BK_MAX_ROUNDS) of the mean CPU ns per call of each
 * of @p nkinds (1..BK_MAX_KINDS) variants, into @p ret. Each variant's loop is
 * first calibrated to about @p ms of CPU; the variants take turns within every
 * round, so whatever else runs on the machine weighs on them alike.
 * @return 0, or -1 when a run failed.
 */
int bk_measure(bk_run_fn run, int nkinds, const char *body, size_t len, int rounds, double ms, double *ret);

/** The median of @p n (> 0) values; sorts @p v. */
double bk_median(double *v, size_t n);

/**
 * The names of the *.json files of @p dir (at most BK_MAX_FILES, sorted;
 * free each with free()) into @p names. @return how many, or -1 when @p dir
 * cannot be read.
 */
int bk_fixtures(const char *dir, char **names);

#endif
