#include "benchkit.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bk_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int bk_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bk_cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loop length that takes about @p ms of CPU for variant @p w on this body. */
static long bk_calibrate(bk_run_fn run, int w, const char *body, size_t len, double ms)
{
    long iters = 1, k;
    double t0, t;

    for (;;) {
        t0 = bk_cpu_ns();
        for (k = 0; k < iters; k++)
            if (run(w, body, len) != 0)
                return -1;
        t = bk_cpu_ns() - t0;
        if (t > ms * 1e6 / 4 || iters > (1L << 30))
            break;
        iters *= 2;
    }
    return (long)((double)iters * (ms * 1e6) / (t > 1 ? t : 1)) + 1;
}

int bk_measure(bk_run_fn run, int nkinds, const char *body, size_t len, int rounds, double ms, double *ret)
{
    static double samples[BK_MAX_KINDS][BK_MAX_ROUNDS];
    long iters[BK_MAX_KINDS];

    if (nkinds < 1 || nkinds > BK_MAX_KINDS || rounds < 1 || rounds > BK_MAX_ROUNDS)
        return -1;
    for (int w = 0; w < nkinds; w++)
        if ((iters[w] = bk_calibrate(run, w, body, len, ms)) < 0)
            return -1;
    for (int r = 0; r < rounds; r++) {
        for (int w = 0; w < nkinds; w++) {
            double t0 = bk_cpu_ns();
            for (long k = 0; k < iters[w]; k++)
                run(w, body, len);
            samples[w][r] = (bk_cpu_ns() - t0) / (double)iters[w];
        }
    }
    for (int w = 0; w < nkinds; w++) {
        qsort(samples[w], (size_t)rounds, sizeof(samples[w][0]), bk_cmp_double);
        ret[w] = samples[w][rounds / 2];
    }
    return 0;
}

double bk_median(double *v, size_t n)
{
    qsort(v, n, sizeof(v[0]), bk_cmp_double);
    return v[n / 2];
}

int bk_fixtures(const char *dir, char **names)
{
    struct dirent *e;
    DIR *d = opendir(dir);
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL && n < BK_MAX_FILES) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0 && (names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), bk_cmp_name);
    return n;
}
