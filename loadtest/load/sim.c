/*
 * sim: see sim.h.
 */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define PI 3.14159265358979323846

void sim_cfg_default(struct sim_cfg *cfg, uint64_t seed)
{
    cfg->seed = seed;
    cfg->base_logit = -4.2;
    cfg->compete_mu = 0.15;
    cfg->compete_sigma = 0.5;
    cfg->market_cpm = 2.0;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a, then mixed */
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        h ^= *p;
        h *= 0x100000001b3u;
    }
    return lrng_mix(h);
}

static uint64_t key_of(const struct sim_cfg *cfg, uint64_t a, uint64_t salt)
{
    return lrng_mix(lrng_mix(cfg->seed ^ 0x73696d75u) ^ lrng_mix(a + salt * 0x9e3779b97f4a7c15u));
}

static double unit_of(uint64_t x)
{
    return (double)(x >> 11) * 0x1.0p-53;
}

static double normal_of(uint64_t x)
{
    double u1 = unit_of(x), u2 = unit_of(lrng_mix(x + 1));
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

double sim_uniform(const struct sim_cfg *cfg, const char *key, uint64_t salt)
{
    return unit_of(key_of(cfg, hash_str(key), salt));
}

double sim_normal(const struct sim_cfg *cfg, const char *key, uint64_t salt)
{
    return normal_of(key_of(cfg, hash_str(key), salt));
}

static bool is_control(const char *variant)
{
    return !variant || !variant[0] || strcmp(variant, "base") == 0;
}

double sim_variant_effect(const struct sim_cfg *cfg, const char *campaign, const char *variant)
{
    if (is_control(variant))
        return 0;
    /* Half the campaigns write variants that beat the control arm, three in ten about equal ones, the rest worse. */
    double u = sim_uniform(cfg, campaign, 21);
    double mean = u < 0.5 ? 0.3 : u < 0.8 ? 0.0 : -0.2;
    uint64_t h = hash_str(campaign) ^ lrng_mix(hash_str(variant));
    return mean + 0.1 * normal_of(key_of(cfg, h, 22));
}

double sim_logit(const struct sim_cfg *cfg, const struct sim_features *f, const char *campaign, const char *variant)
{
    uint64_t c = hash_str(campaign);
    double z = cfg->base_logit;
    z += 0.8 * normal_of(key_of(cfg, f->user ^ lrng_mix(c), 1));                  /* the user and the campaign */
    z += 0.5 * normal_of(key_of(cfg, f->user ^ lrng_mix(f->category), 2));        /* the user and the content */
    z += 0.4 * normal_of(key_of(cfg, f->placement + (f->app ? 1u << 20 : 0), 3)); /* the placement's quality */
    switch (f->devtype) {
    case 4: z += 0.1; break;  /* phone */
    case 5: z += 0.15; break; /* tablet */
    case 2: z -= 0.1; break;  /* desktop */
    case 3: z -= 0.4; break;  /* connected TV */
    case 1: z -= 0.3; break;  /* other */
    default: break;
    }
    z += 0.25 * cos(2.0 * PI * (f->hour - 20) / 24.0); /* evenings click more */
    if (f->pos == 1)
        z += 0.3; /* above the fold */
    else if (f->pos == 3)
        z -= 0.3; /* below */
    if (f->fmt == 1) {
        z += 0.2;
    } else if (f->fmt == 2) {
        z += 0.3;
    } else if (f->w > 0 && f->h > 0) {
        double s = 0.15 * log2((double)f->w * f->h / (300.0 * 250.0));
        z += s < -0.6 ? -0.6 : s > 0.4 ? 0.4 : s;
    }
    return z + sim_variant_effect(cfg, campaign, variant);
}

double sim_pclick(const struct sim_cfg *cfg, const struct sim_features *f, const char *campaign, const char *variant)
{
    return 1.0 / (1.0 + exp(-sim_logit(cfg, f, campaign, variant)));
}

double sim_pconv(const struct sim_cfg *cfg, const struct sim_features *f, const char *campaign)
{
    double z = -2.0 + 0.6 * normal_of(key_of(cfg, f->user ^ lrng_mix(hash_str(campaign)), 1));
    return 1.0 / (1.0 + exp(-z));
}

struct sim_auction sim_auction_run(const struct sim_cfg *cfg, const char *key, double floor, double price, int at)
{
    struct sim_auction a = {0};
    double f = floor > 0.01 ? floor : 0.01;
    a.competing = f * exp(cfg->compete_mu + cfg->compete_sigma * sim_normal(cfg, key, 31));
    double market = cfg->market_cpm * exp(0.6 * sim_normal(cfg, key, 32));
    if (market > a.competing)
        a.competing = market;
    a.won = price >= a.competing && price >= floor;
    if (a.won) {
        double second = (a.competing > floor ? a.competing : floor) + 0.01;
        a.clearing = at == 1 || second > price ? price : second;
    }
    return a;
}

/* ---- AUC ---- */

struct ranked {
    double s;
    uint8_t y;
};

static int cmp_ranked(const void *a, const void *b)
{
    double x = ((const struct ranked *)a)->s, y = ((const struct ranked *)b)->s;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int sim_auc(const double *score, const uint8_t *label, size_t n, double *ret_auc)
{
    double pos = 0, neg = 0;
    for (size_t i = 0; i < n; i++) {
        if (label[i])
            pos++;
        else
            neg++;
    }
    if (pos == 0 || neg == 0)
        return -EINVAL;
    struct ranked *r = malloc(n * sizeof(*r));
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        r[i] = (struct ranked){score[i], label[i] ? 1 : 0};
    qsort(r, n, sizeof(*r), cmp_ranked);
    /* Rank sum of the positives, ties given their average rank. */
    double rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double p = 0;
        while (j < n && r[j].s == r[i].s)
            p += r[j++].y;
        rank_sum += p * ((double)(i + 1) + (double)j) / 2.0;
        i = j;
    }
    free(r);
    *ret_auc = (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
    return 0;
}

int sim_auc_expected(const double *p, size_t n, double *ret_auc)
{
    double *v = malloc((n ? n : 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    memcpy(v, p, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_double);
    double sp = 0, sq = 0, spq = 0, num = 0, below = 0; /* below: sum of (1 - p) over smaller values */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double gp = 0, gq = 0, gpq = 0;
        while (j < n && v[j] == v[i]) {
            gp += v[j];
            gq += 1 - v[j];
            gpq += v[j] * (1 - v[j]);
            j++;
        }
        num += gp * below + 0.5 * (gp * gq - gpq); /* ties: the pairs within the group, i != j, count half */
        below += gq;
        sp += gp;
        sq += gq;
        spq += gpq;
        i = j;
    }
    free(v);
    double den = sp * sq - spq;
    if (!(den > 0))
        return -EINVAL;
    *ret_auc = num / den;
    return 0;
}

struct sim_uplift sim_uplift_ci(uint64_t clicks_t, uint64_t imps_t, uint64_t clicks_c, uint64_t imps_c)
{
    struct sim_uplift u = {0};
    if (imps_t == 0 || imps_c == 0)
        return u;
    u.ctr_treatment = (double)clicks_t / (double)imps_t;
    u.ctr_control = (double)clicks_c / (double)imps_c;
    if (clicks_t == 0 || clicks_c == 0)
        return u;
    u.valid = true;
    double r = u.ctr_treatment / u.ctr_control;
    double se = sqrt((1 - u.ctr_treatment) / (double)clicks_t + (1 - u.ctr_control) / (double)clicks_c);
    u.uplift = r - 1;
    u.low = r * exp(-1.959964 * se) - 1;
    u.high = r * exp(1.959964 * se) - 1;
    return u;
}

/* ---- the log ---- */

int sim_log_add(struct sim_log *log, const struct sim_rec *r)
{
    if (log->n == log->cap) {
        size_t cap = log->cap ? log->cap * 2 : 1024;
        struct sim_rec *v = realloc(log->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        log->v = v;
        log->cap = cap;
    }
    log->v[log->n++] = *r;
    return 0;
}

int sim_log_merge(struct sim_log *dst, const struct sim_log *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (sim_log_add(dst, &src->v[i]) < 0)
            return -ENOMEM;
    return 0;
}

void sim_log_free(struct sim_log *log)
{
    free(log->v);
    log->v = NULL;
    log->n = log->cap = 0;
}
