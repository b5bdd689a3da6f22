/*
 * lrep: see report.h.
 */
#include "report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const double pcts[] = {50, 90, 99, 99.9};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99.9"};
#define NPCT (sizeof(pcts) / sizeof(pcts[0]))
#define REPORT_MAX (64 * 1024 * 1024)

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static double us(uint64_t ns)
{
    return (double)ns / 1e3;
}

static const char *mode_name(const struct lrun_cfg *cfg)
{
    return cfg->seed_mode ? "seed" : cfg->rate > 0 ? "open" : "closed";
}

/* ---- the bid traffic's business figures ---- */

struct bizfig {
    bool any;        /* bid traffic was measured */
    double bid_rate; /* bids per impression offered */
    double win_rate; /* wins per bid */
    double ctr, cvr; /* clicks per win, conversions per click */
    double avg_bid_cpm, avg_clearing_cpm;
    int oracle_rc, oracle_exp_rc, price_rc, pctr_rc, same_rc;
    double oracle_auc, oracle_auc_expected, price_auc;
    double pctr_auc, oracle_same_auc; /* on the impressions with adsmith's pCTR */
    size_t npctr;
    struct sim_uplift up;
};

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

static void bizfig_compute(const struct lrun_result *r, struct bizfig *f)
{
    const struct lrun_biz *z = &r->biz;
    memset(f, 0, sizeof(*f));
    f->oracle_rc = f->oracle_exp_rc = f->price_rc = f->pctr_rc = f->same_rc = -EINVAL;
    f->any = z->auctions > 0;
    if (!f->any)
        return;
    f->bid_rate = ratio(z->bids, z->imps);
    f->win_rate = ratio(z->wins, z->bids);
    f->ctr = ratio(z->clicks, z->wins);
    f->cvr = ratio(z->conversions, z->clicks);
    f->avg_bid_cpm = z->bids ? (double)z->bid_cpm_micros / 1e6 / (double)z->bids : 0;
    f->avg_clearing_cpm = z->wins ? (double)z->spend_micros / 1e3 / (double)z->wins : 0;
    f->up = sim_uplift_ci(z->clicks_variant, z->imps_variant, z->clicks_control, z->imps_control);
    size_t n = z->log.n, m = 0;
    double *po = malloc((n ? n : 1) * sizeof(double)), *pa = malloc((n ? n : 1) * sizeof(double));
    uint8_t *y = malloc(n ? n : 1);
    if (!po || !pa || !y) {
        free(po);
        free(pa);
        free(y);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        po[i] = z->log.v[i].p_oracle;
        pa[i] = z->log.v[i].price;
        y[i] = z->log.v[i].clicked;
    }
    f->oracle_rc = sim_auc(po, y, n, &f->oracle_auc);
    f->oracle_exp_rc = n ? sim_auc_expected(po, n, &f->oracle_auc_expected) : -EINVAL;
    f->price_rc = sim_auc(pa, y, n, &f->price_auc);
    /* The same impressions twice: those adsmith gave a pCTR for, ranked by it and by the oracle. */
    for (size_t i = 0; i < n; i++) {
        if (!z->log.v[i].has_pctr)
            continue;
        po[m] = z->log.v[i].p_oracle;
        pa[m] = z->log.v[i].pctr;
        y[m] = z->log.v[i].clicked;
        m++;
    }
    f->npctr = m;
    f->pctr_rc = sim_auc(pa, y, m, &f->pctr_auc);
    f->same_rc = sim_auc(po, y, m, &f->oracle_same_auc);
    free(po);
    free(pa);
    free(y);
}

/* ---- text ---- */

static void text_lat(FILE *f, const char *label, const struct lhist *h)
{
    fprintf(f, "  %-22s", label);
    for (unsigned i = 0; i < NPCT; i++)
        fprintf(f, " %9.3f", ms(lhist_percentile(h, pcts[i])));
    fprintf(f, " %9.3f %9.3f\n", ms(h->max), lhist_mean(h) / 1e6);
}

static void text_status(FILE *f, const struct lrun_stats *s)
{
    for (unsigned c = 0; c < 600; c++)
        if (s->status[c])
            fprintf(f, " %u: %" PRIu64, c, s->status[c]);
    if (s->transport)
        fprintf(f, " transport: %" PRIu64, s->transport);
}

void lrep_text(FILE *f, const struct lrep_info *info, const struct lrun_result *r)
{
    const struct lrun_cfg *cfg = info->cfg;
    bool open = cfg->rate > 0;
    fprintf(f, "adsmith-load %s: %s, %s loop", info->command, info->url, cfg->seed_mode ? "closed" : mode_name(cfg));
    if (open)
        fprintf(f, " at %.0f requests/s", cfg->rate);
    fprintf(f, ", %u connection%s x %u streams, %u thread%s", cfg->connections, cfg->connections == 1 ? "" : "s",
            cfg->streams, cfg->threads, cfg->threads == 1 ? "" : "s");
    if (info->cpus && info->cpus[0])
        fprintf(f, " on CPU %s", info->cpus);
    fprintf(f, "\n  %.2f s measured", r->measured_s);
    if (cfg->warmup_s > 0)
        fprintf(f, " after %.1f s warm-up", cfg->warmup_s);
    fprintf(f, "; load average %.2f %.2f %.2f before, %.2f %.2f %.2f after; %ld CPUs\n", info->load_before[0],
            info->load_before[1], info->load_before[2], info->load_after[0], info->load_after[1], info->load_after[2],
            info->nprocs);
    fprintf(f, "requests %" PRIu64 " = %.1f/s; ok %" PRIu64 ", errors %" PRIu64, r->all.requests,
            (double)r->all.requests / r->measured_s, r->all.ok, r->all.errors);
    if (open)
        fprintf(f, "; not sent by the end (backlog) %" PRIu64, r->backlog);
    fprintf(f, "; unanswered %" PRIu64 "; connections %" PRIu64 " (%" PRIu64 " failed)\n", r->unfinished, r->connects,
            r->conn_failures);
    fprintf(f, "status:");
    text_status(f, &r->all);
    fprintf(f, "\nlatency (ms)%s       p50       p90       p99     p99.9       max      mean\n",
            open ? " from intended send" : "                   ");
    text_lat(f, "all", &r->all.lat);
    if (open) {
        text_lat(f, "all, uncorrected", &r->all.lat_sent);
        text_lat(f, "send lag (client)", &r->all.lag);
    }
    for (unsigned k = 0; k < LGEN_KINDS; k++) {
        const struct lrun_stats *s = &r->kind[k];
        if (!s->requests)
            continue;
        char label[64];
        snprintf(label, sizeof(label), "%s (%.0f/s)", lgen_kind_name((enum lgen_kind)k),
                 (double)s->requests / r->measured_s);
        text_lat(f, label, &s->lat);
        if (open) {
            snprintf(label, sizeof(label), "%s, uncorrected", lgen_kind_name((enum lgen_kind)k));
            text_lat(f, label, &s->lat_sent);
        }
    }
    if (r->kind[LGEN_NOTICE].requests || r->kind[LGEN_LOSS_NOTICE].requests || r->kind[LGEN_FEEDBACK].requests ||
        r->kind[LGEN_WIN_SCORE].requests)
        fprintf(f,
                "  (notice, loss_notice, win_score, feedback: the win and loss notices, scores of won impressions and "
                "events sent back; "
                "not in \"all\" nor the time series)\n");
    struct bizfig bf;
    bizfig_compute(r, &bf);
    if (bf.any) {
        const struct lrun_biz *z = &r->biz;
        fprintf(f,
                "bids: %" PRIu64 " auctions, %" PRIu64 " impressions offered, %" PRIu64 " bids (bid rate %.1f %%), "
                "%" PRIu64 " won (win rate %.1f %%); mean bid %.3f, mean clearing price %.3f CPM\n",
                z->auctions, z->imps, z->bids, 100 * bf.bid_rate, z->wins, 100 * bf.win_rate, bf.avg_bid_cpm,
                bf.avg_clearing_cpm);
        fprintf(f,
                "simulated audience: spend %.4f USD, %" PRIu64 " clicks (CTR %.2f %%), %" PRIu64
                " conversions (%.1f %% of clicks)\n",
                (double)z->spend_micros / 1e6, z->clicks, 100 * bf.ctr, z->conversions, 100 * bf.cvr);
        if (bf.oracle_rc == 0)
            fprintf(f, "ranking, %zu won impressions: oracle AUC %.4f (its probabilities predict %.4f)", z->log.n,
                    bf.oracle_auc, bf.oracle_auc_expected);
        else
            fprintf(f, "ranking: no AUC (no click, or no impression without one, among the wins)");
        if (bf.pctr_rc == 0 && bf.same_rc == 0)
            fprintf(f, "; on the %zu with adsmith's pCTR: adsmith AUC %.4f, oracle AUC %.4f", bf.npctr, bf.pctr_auc,
                    bf.oracle_same_auc);
        else
            fprintf(f, "; adsmith's pCTR: no AUC (%zu impressions had one)", bf.npctr);
        if (bf.price_rc == 0)
            fprintf(f, "; adsmith's bid price as a ranking: AUC %.4f", bf.price_auc);
        fprintf(f, "\n");
        if (z->tokens_known)
            fprintf(f, "generation: %.0f tokens over the run (adsmith_gen_tokens_total), %.1f per click\n", z->tokens,
                    z->clicks_run ? z->tokens / (double)z->clicks_run : 0.0);
        else
            fprintf(f, "generation: tokens not known (no adsmith_gen_tokens_total in /metrics)\n");
        if (z->imps_variant)
            fprintf(f,
                    "variants: CTR %.3f %% on %" PRIu64 " impressions vs the control arm's %.3f %% on %" PRIu64
                    ": uplift %+.1f %% (95 %% CI %+.1f %% .. %+.1f %%)%s\n",
                    100 * bf.up.ctr_treatment, z->imps_variant, 100 * bf.up.ctr_control, z->imps_control,
                    100 * bf.up.uplift, 100 * bf.up.low, 100 * bf.up.high, bf.up.valid ? "" : " (too few clicks)");
        else
            fprintf(f, "variants: every won impression was the control arm (no ext.adsmith.variant in the bids)\n");
        if (z->bad_bids || z->feedback_dropped)
            fprintf(f, "warning: %" PRIu64 " unusable bids, %" PRIu64 " feedback requests dropped\n", z->bad_bids,
                    z->feedback_dropped);
    }
    if (cfg->gen.batch > 1 && r->kind[LGEN_EVENTS].requests)
        fprintf(f, "events: %.0f/s in batches of %u\n",
                (double)r->kind[LGEN_EVENTS].ok * cfg->gen.batch / r->measured_s, cfg->gen.batch);
    if (r->backlog)
        fprintf(f,
                "warning: %" PRIu64 " requests were due but never sent (every stream was busy or the server was "
                "gone); the percentiles above do not include them\n",
                r->backlog);
    if (r->first_error[0])
        fprintf(f, "first error: %s\n", r->first_error);
}

/* ---- JSON ---- */

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void jlat(FILE *f, const struct lhist *h)
{
    fprintf(f, "{");
    for (unsigned i = 0; i < NPCT; i++)
        fprintf(f, "\"%s\":%.3f,", pct_names[i], us(lhist_percentile(h, pcts[i])));
    fprintf(f, "\"max\":%.3f,\"min\":%.3f,\"mean\":%.3f}", us(h->max), us(h->count ? h->min : 0), lhist_mean(h) / 1e3);
}

static void jstats(FILE *f, const struct lrun_stats *s, double secs)
{
    fprintf(f,
            "{\"requests\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"transport_errors\":%" PRIu64
            ",\"throughput_rps\":%.3f,\"bytes_out\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"latency_us\":",
            s->requests, s->ok, s->errors, s->transport, (double)s->requests / secs, s->bytes_out, s->bytes_in);
    jlat(f, &s->lat);
    fprintf(f, ",\"latency_uncorrected_us\":");
    jlat(f, &s->lat_sent);
    fprintf(f, ",\"send_lag_us\":");
    jlat(f, &s->lag);
    fprintf(f, ",\"status\":{");
    const char *sep = "";
    for (unsigned c = 0; c < 600; c++) {
        if (s->status[c]) {
            fprintf(f, "%s\"%u\":%" PRIu64, sep, c, s->status[c]);
            sep = ",";
        }
    }
    fprintf(f, "}}");
}

/* Percentiles 0, 90, 99, ... in 20 steps per decade of 1 / (1 - p), while the count resolves them. */
static unsigned curve_points(const struct lhist *h, double *p, unsigned cap)
{
    unsigned n = 0;
    for (unsigned i = 0; n < cap; i++) {
        double x = pow(10.0, i / 20.0);
        if (x > (double)h->count && i > 0)
            break;
        p[n++] = 100.0 * (1.0 - 1.0 / x);
    }
    return n;
}

int lrep_json(const char *path, const struct lrep_info *info, const struct lrun_result *r)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    const struct lrun_cfg *cfg = info->cfg;
    double secs = r->measured_s;
    fprintf(f, "{\"tool\":\"adsmith-load\",\"format\":1,\"command\":");
    jstr(f, info->command);
    fprintf(f, ",\"started_at\":");
    jstr(f, info->started_at);
    fprintf(f, ",\"config\":{\"url\":");
    jstr(f, info->url);
    fprintf(f,
            ",\"mode\":\"%s\",\"rate\":%.3f,\"connections\":%u,\"streams\":%u,\"threads\":%u,\"cpus\":", mode_name(cfg),
            cfg->rate, cfg->connections, cfg->streams, cfg->threads);
    jstr(f, info->cpus ? info->cpus : "");
    fprintf(f,
            ",\"duration_s\":%.3f,\"warmup_s\":%.3f,\"seed\":%" PRIu64 ",\"users\":%" PRIu64 ",\"campaigns\":%" PRIu64
            ",\"batch\":%u,\"event_ids\":%s,\"zipf_s\":%.3f,\"feedback\":%s,\"msgpack\":%s,\"market_cpm\":%.3f,"
            "\"click_logit\":%.3f,\"mix\":{",
            cfg->duration_s, cfg->warmup_s, cfg->gen.seed, cfg->gen.users, cfg->gen.campaigns, cfg->gen.batch,
            cfg->gen.no_event_ids ? "false" : "true", cfg->gen.zipf_s, cfg->feedback ? "true" : "false",
            cfg->msgpack ? "true" : "false", cfg->sim.market_cpm, cfg->sim.base_logit);
    const char *sep = "";
    for (unsigned k = 0; k < LGEN_KINDS; k++) {
        if (cfg->mix[k]) {
            fprintf(f, "%s\"%s\":%u", sep, lgen_kind_name((enum lgen_kind)k), cfg->mix[k]);
            sep = ",";
        }
    }
    fprintf(f, "}},\"machine\":{\"cpus_online\":%ld,\"load_before\":[%.2f,%.2f,%.2f],\"load_after\":[%.2f,%.2f,%.2f]}",
            info->nprocs, info->load_before[0], info->load_before[1], info->load_before[2], info->load_after[0],
            info->load_after[1], info->load_after[2]);
    fprintf(f,
            ",\"summary\":{\"measured_s\":%.6f,\"requests\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"errors\":%" PRIu64
            ",\"throughput_rps\":%.3f,\"backlog\":%" PRIu64 ",\"unfinished\":%" PRIu64
            ",\"connections_opened\":%" PRIu64 ",\"connection_failures\":%" PRIu64
            ",\"events_per_s\":%.3f},\"first_error\":",
            secs, r->all.requests, r->all.ok, r->all.errors, (double)r->all.requests / secs, r->backlog, r->unfinished,
            r->connects, r->conn_failures, (double)r->kind[LGEN_EVENTS].ok * cfg->gen.batch / secs);
    jstr(f, r->first_error);
    fprintf(f, ",\"all\":");
    jstats(f, &r->all, secs);
    fprintf(f, ",\"kinds\":{");
    sep = "";
    for (unsigned k = 0; k < LGEN_KINDS; k++) {
        if (!r->kind[k].requests)
            continue;
        fprintf(f, "%s\"%s\":", sep, lgen_kind_name((enum lgen_kind)k));
        jstats(f, &r->kind[k], secs);
        sep = ",";
    }
    fprintf(f, "}");
    struct bizfig bf;
    bizfig_compute(r, &bf);
    if (bf.any) {
        const struct lrun_biz *z = &r->biz;
        fprintf(f,
                ",\"business\":{\"auctions\":%" PRIu64 ",\"impressions_offered\":%" PRIu64
                ",\"answered_with_bids\":%" PRIu64 ",\"bids\":%" PRIu64 ",\"unusable_bids\":%" PRIu64
                ",\"bid_rate\":%.6f,\"wins\":%" PRIu64 ",\"losses\":%" PRIu64
                ",\"win_rate\":%.6f,\"spend_micros\":%" PRIu64 ",\"mean_bid_cpm\":%.6f,\"mean_clearing_cpm\":%.6f"
                ",\"clicks\":%" PRIu64 ",\"conversions\":%" PRIu64 ",\"ctr\":%.6f,\"conversion_rate\":%.6f"
                ",\"feedback_dropped\":%" PRIu64 ",\"impressions_scored\":%zu",
                z->auctions, z->imps, z->answered_bids, z->bids, z->bad_bids, bf.bid_rate, z->wins, z->losses,
                bf.win_rate, z->spend_micros, bf.avg_bid_cpm, bf.avg_clearing_cpm, z->clicks, z->conversions, bf.ctr,
                bf.cvr, z->feedback_dropped, z->log.n);
        if (bf.oracle_rc == 0)
            fprintf(f, ",\"oracle_auc\":%.6f", bf.oracle_auc);
        if (bf.oracle_exp_rc == 0)
            fprintf(f, ",\"oracle_auc_expected\":%.6f", bf.oracle_auc_expected);
        if (bf.price_rc == 0)
            fprintf(f, ",\"adsmith_price_auc\":%.6f", bf.price_auc);
        fprintf(f, ",\"impressions_with_pctr\":%zu,\"score_failed\":%" PRIu64, bf.npctr, z->score_failed);
        if (z->tokens_known)
            fprintf(f, ",\"tokens\":%.0f,\"clicks_run\":%" PRIu64 ",\"tokens_per_click\":%.3f", z->tokens,
                    z->clicks_run, z->clicks_run ? z->tokens / (double)z->clicks_run : 0.0);
        if (bf.pctr_rc == 0 && bf.same_rc == 0)
            fprintf(f, ",\"adsmith_auc\":%.6f,\"oracle_auc_same\":%.6f", bf.pctr_auc, bf.oracle_same_auc);
        fprintf(f,
                ",\"variants\":{\"impressions\":%" PRIu64 ",\"clicks\":%" PRIu64 ",\"control_impressions\":%" PRIu64
                ",\"control_clicks\":%" PRIu64 ",\"ctr\":%.6f"
                ",\"control_ctr\":%.6f",
                z->imps_variant, z->clicks_variant, z->imps_control, z->clicks_control, bf.up.ctr_treatment,
                bf.up.ctr_control);
        if (bf.up.valid)
            fprintf(f, ",\"uplift\":%.6f,\"uplift_low\":%.6f,\"uplift_high\":%.6f", bf.up.uplift, bf.up.low,
                    bf.up.high);
        fprintf(f, "}}");
    }
    fprintf(f, ",\"distribution\":[");
    double p[128];
    unsigned np = curve_points(&r->all.lat, p, 128);
    for (unsigned i = 0; i < np; i++)
        fprintf(f, "%s{\"percentile\":%.5f,\"latency_us\":%.3f,\"uncorrected_us\":%.3f}", i ? "," : "", p[i],
                us(lhist_percentile(&r->all.lat, p[i])), us(lhist_percentile(&r->all.lat_sent, p[i])));
    fprintf(f, "],\"timeseries\":[");
    for (unsigned s = 0; s < r->nseries; s++) {
        const struct lrun_sec *e = &r->series[s];
        fprintf(f,
                "%s{\"t\":%u,\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
                ",\"mean_us\":%.3f,\"p50_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f}",
                s ? "," : "", s + 1, e->requests, e->errors, e->requests ? us(e->lat_sum_ns / e->requests) : 0.0,
                us(lrun_sec_percentile(e, 50)), us(lrun_sec_percentile(e, 99)), us(e->lat_max_ns));
    }
    fprintf(f, "]}\n");
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* ---- plot ---- */

int lrep_plot(const char *path, const struct lrep_info *info, const struct lrun_result *r, char *why, size_t why_cap)
{
    char script[] = "/tmp/adsmith-load-plot.XXXXXX";
    int fd = mkstemp(script);
    if (fd < 0) {
        snprintf(why, why_cap, "cannot write the gnuplot script: %s", strerror(errno));
        return -errno;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(script);
        return -ENOMEM;
    }
    const struct lrun_cfg *cfg = info->cfg;
    size_t plen = strlen(path);
    bool svg = plen >= 4 && strcmp(path + plen - 4, ".svg") == 0;
    fprintf(f, "set terminal %s size 1000,900 font 'sans,11'\n",
            svg ? "svg dynamic background rgb 'white'" : "pngcairo");
    fprintf(f, "set output '");
    for (const char *c = path; *c; c++)
        fprintf(f, *c == '\'' ? "''" : "%c", *c);
    fprintf(f, "'\nset multiplot layout 2,1 title \"adsmith-load %s: %s loop", info->command, mode_name(cfg));
    if (cfg->rate > 0)
        fprintf(f, " at %.0f req/s", cfg->rate);
    fprintf(f, ", %u x %u streams, %.0f req/s done, load %.2f\"\n", cfg->connections, cfg->streams,
            (double)r->all.requests / r->measured_s, info->load_before[0]);
    fprintf(f, "$pct << EOD\n");
    double p[128];
    unsigned np = curve_points(&r->all.lat, p, 128);
    fprintf(f, "# 1/(1-p) corrected_ms uncorrected_ms\n");
    for (unsigned i = 0; i < np; i++)
        fprintf(f, "%.6g %.6f %.6f\n", 1.0 / (1.0 - p[i] / 100.0), ms(lhist_percentile(&r->all.lat, p[i])),
                ms(lhist_percentile(&r->all.lat_sent, p[i])));
    fprintf(f, "EOD\n$ts << EOD\n");
    for (unsigned s = 0; s < r->nseries; s++) {
        const struct lrun_sec *e = &r->series[s];
        fprintf(f, "%u %" PRIu64 " %" PRIu64 " %.6f %.6f %.6f %.6f\n", s + 1, e->requests, e->errors,
                e->requests ? ms(e->lat_sum_ns / e->requests) : 0.0, ms(e->lat_max_ns), ms(lrun_sec_percentile(e, 50)),
                ms(lrun_sec_percentile(e, 99)));
    }
    fprintf(f, "EOD\n"
               "set grid\nset key top left\nset logscale x\nset logscale y\n"
               "set xtics ('0%%%%' 1, '50%%%%' 2, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, '99.99%%%%' 10000, "
               "'99.999%%%%' 100000)\n"
               "set xlabel 'percentile'\nset ylabel 'latency (ms)'\n");
    if (cfg->rate > 0)
        fprintf(f,
                "plot $pct using 1:2 with lines lw 2 title 'from intended send (corrected for coordinated omission)', "
                "$pct using 1:3 with lines lw 2 dt 2 title 'from actual send (uncorrected)'\n");
    else
        fprintf(f, "plot $pct using 1:2 with lines lw 2 title 'latency (closed loop)'\n");
    fprintf(f, "unset logscale x\nunset logscale y\nset xtics autofreq\nset xlabel 'time (s)'\n"
               "set ylabel 'requests/s'\nset y2label 'latency (ms)'\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\n"
               "plot $ts using 1:2 with lines lw 2 title 'throughput' axes x1y1, "
               "$ts using 1:6 with lines title 'p50 latency' axes x1y2, "
               "$ts using 1:7 with lines title 'p99 latency' axes x1y2, "
               "$ts using 1:5 with lines dt 3 title 'max latency' axes x1y2\n"
               "unset multiplot\n");
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        unlink(script);
        snprintf(why, why_cap, "cannot write the gnuplot script");
        return -EIO;
    }
    pid_t pid;
    char *argv[] = {"gnuplot", script, NULL};
    int rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (rc != 0) {
        unlink(script);
        snprintf(why, why_cap, "cannot run gnuplot (%s): install it with scripts/install-deps.sh bench", strerror(rc));
        return -ENOENT;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    unlink(script);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, why_cap, "gnuplot failed (status %d) rendering %s", status, path);
        return -EIO;
    }
    return 0;
}

/* ---- compare ---- */

static cJSON *load(const char *path, char *why, size_t why_cap, int *ret_rc)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *ret_rc = -errno;
        snprintf(why, why_cap, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *text = NULL;
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0 && st.st_size < REPORT_MAX)
        text = malloc((size_t)st.st_size + 1);
    size_t n = text ? fread(text, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    cJSON *j = NULL;
    if (text) {
        text[n] = '\0';
        j = cJSON_Parse(text);
        free(text);
    }
    cJSON *tool = j ? cJSON_GetObjectItemCaseSensitive(j, "tool") : NULL;
    if (!cJSON_IsString(tool) || strcmp(tool->valuestring, "adsmith-load") != 0) {
        cJSON_Delete(j);
        *ret_rc = -EINVAL;
        snprintf(why, why_cap, "%s is not an adsmith-load JSON report", path);
        return NULL;
    }
    return j;
}

static void walk(const cJSON *a, const cJSON *b, char *path, size_t len, size_t cap, FILE *out)
{
    for (const cJSON *c = a->child; c; c = c->next) {
        /* The settings, the machine and the curves are not figures to divide. */
        if (!c->string ||
            (len == 0 && (strcmp(c->string, "config") == 0 || strcmp(c->string, "format") == 0 ||
                          strcmp(c->string, "machine") == 0)) ||
            strcmp(c->string, "timeseries") == 0 || strcmp(c->string, "distribution") == 0)
            continue;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(b, c->string);
        if (!o)
            continue;
        int n = snprintf(path + len, cap - len, "%s%s", len ? "." : "", c->string);
        if (n < 0 || (size_t)n >= cap - len)
            continue;
        if (cJSON_IsObject(c) && cJSON_IsObject(o)) {
            walk(c, o, path, len + (size_t)n, cap, out);
        } else if (cJSON_IsNumber(c) && cJSON_IsNumber(o)) {
            fprintf(out, "%-52s %14.3f %14.3f", path, c->valuedouble, o->valuedouble);
            if (c->valuedouble != 0)
                fprintf(out, " %9.3f\n", o->valuedouble / c->valuedouble);
            else
                fprintf(out, " %9s\n", "-");
        }
        path[len] = '\0';
    }
}

int lrep_compare(const char *path_a, const char *path_b, FILE *out, char *why, size_t why_cap)
{
    int rc = 0;
    cJSON *a = load(path_a, why, why_cap, &rc);
    if (!a)
        return rc;
    cJSON *b = load(path_b, why, why_cap, &rc);
    if (!b) {
        cJSON_Delete(a);
        return rc;
    }
    fprintf(out, "A = %s\nB = %s\n%-52s %14s %14s %9s\n", path_a, path_b, "figure", "A", "B", "B/A");
    char path[512] = "";
    walk(a, b, path, 0, sizeof(path), out);
    cJSON_Delete(a);
    cJSON_Delete(b);
    return 0;
}
