#include <h2o/version.h>
#include <inttypes.h>
#include <lmdb.h>
#include <string.h>

#include "adsmith/handlers.h"
#include "adsmith/learn.h"
#include "adsmith/vgen.h"
#include "adsmith/mdl.h"
#include "adsmith/store.h"
#include "adsmith/version.h"
#include "adsmith/wq.h"

void ops_healthz(struct http_req *r)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_send_json(r, 200, body, sizeof(body) - 1);
}

void ops_readyz(struct http_req *r)
{
    static const char body[] = "{\"status\":\"ready\",\"checks\":{\"storage\":\"ok\"}}";
    struct store *store = app_store(r->app);
    struct store_stats st;
    char why[256];
    int rc;

    if (atomic_load(&r->app->draining)) {
        http_send_error(r, ADS_ESHUTTING_DOWN, NULL, "the server is draining connections before it stops");
        return;
    }
    if (store == NULL) {
        app_storage_error(r->app, why, sizeof(why));
        http_send_error(r, ADS_ENOT_READY, NULL, "storage is not open: %s", why);
        return;
    }
    if ((rc = store_stats(store, &st)) != 0) {
        http_send_error(r, ADS_ENOT_READY, NULL, "storage check failed: %s", ads_err_message(rc));
        return;
    }
    http_send_json(r, 200, body, sizeof(body) - 1);
}

/* One campaign's series; ids are 1-64 bytes of a campaign id, escaped as a label value all the same. */
static void ops_campaign_tokens(void *arg, const char *campaign, const uint64_t tokens[4])
{
    static const char *const kinds[4] = {"prompt", "cached", "completion", "reasoning"};
    struct buf *b = arg;

    for (int k = 0; k < 4; k++) {
        buf_puts(b, "adsmith_campaign_tokens_total{campaign=\"");
        for (const char *p = campaign; *p != '\0'; p++)
            buf_printf(b, *p == '"' || *p == '\\' ? "\\%c" : *p == '\n' ? "\\n" : "%c", *p);
        buf_printf(b, "\",kind=\"%s\"} %" PRIu64 "\n", kinds[k], tokens[k]);
    }
}

void ops_metrics(struct http_req *r)
{
    struct app *app = r->app;
    /* The campaign token series: 4 lines of at most ~200 bytes per campaign named (vgen.h). */
    size_t cap = met_render_bound(app->metrics) + 8192 + (size_t)(VGEN_METER_CAMPAIGNS + 1) * 4 * 200;
    char *mem = h2o_mem_alloc_pool(&r->req->pool, cap);
    struct store *store = app_store(app);
    struct store_stats st = {0};
    struct buf b;

    buf_init(&b, mem, cap);
    met_render(app->metrics, &b);
    if (store != NULL)
        store_stats(store, &st);
    buf_printf(&b,
               "# HELP adsmith_connections_open Client connections open.\n"
               "# TYPE adsmith_connections_open gauge\nadsmith_connections_open %ld\n"
               "# HELP adsmith_storage_open 1 when the LMDB environment is open.\n"
               "# TYPE adsmith_storage_open gauge\nadsmith_storage_open %d\n"
               "# HELP adsmith_lmdb_map_size_bytes LMDB map size.\n"
               "# TYPE adsmith_lmdb_map_size_bytes gauge\nadsmith_lmdb_map_size_bytes %" PRIu64 "\n"
               "# HELP adsmith_lmdb_map_used_bytes LMDB map in use (last page + 1, times the page size).\n"
               "# TYPE adsmith_lmdb_map_used_bytes gauge\nadsmith_lmdb_map_used_bytes %" PRIu64 "\n"
               "# HELP adsmith_lmdb_readers LMDB reader slots in use.\n"
               "# TYPE adsmith_lmdb_readers gauge\nadsmith_lmdb_readers %" PRIu32 "\n"
               "# HELP adsmith_reloads_total SIGHUP reloads handled.\n"
               "# TYPE adsmith_reloads_total counter\nadsmith_reloads_total %lu\n"
               "# HELP adsmith_start_time_seconds Unix time the process started.\n"
               "# TYPE adsmith_start_time_seconds gauge\nadsmith_start_time_seconds %" PRId64 "\n"
               "# HELP adsmith_build_info Build information.\n"
               "# TYPE adsmith_build_info gauge\n"
               "adsmith_build_info{version=\"%s\",commit=\"%s\",h2o=\"%s\",lmdb=\"%d.%d.%d\"} 1\n",
               atomic_load(&app->connections), store != NULL, st.map_size, st.map_used, st.readers,
               atomic_load(&app->reloads), app->started_at, ADS_VERSION, ADS_COMMIT, H2O_VERSION, MDB_VERSION_MAJOR,
               MDB_VERSION_MINOR, MDB_VERSION_PATCH);
    if (app->wq != NULL) {
        struct wq_stats ws;
        wq_stats(app->wq, &ws);
        buf_printf(&b,
                   "# HELP adsmith_writer_jobs_total Profile and event writes applied by the writer thread.\n"
                   "# TYPE adsmith_writer_jobs_total counter\nadsmith_writer_jobs_total %" PRIu64 "\n"
                   "# HELP adsmith_writer_commits_total LMDB write transactions committed (group commits).\n"
                   "# TYPE adsmith_writer_commits_total counter\nadsmith_writer_commits_total %" PRIu64 "\n"
                   "# HELP adsmith_writer_retries_total Groups aborted and applied again write by write.\n"
                   "# TYPE adsmith_writer_retries_total counter\nadsmith_writer_retries_total %" PRIu64 "\n",
                   ws.jobs, ws.commits, ws.retries);
    }
    if (app->model != NULL) {
        struct mdl_stats ms;
        mdl_stats(app->model, &ms);
        buf_printf(&b,
                   "# HELP adsmith_model_info The ranking model being served (version: its type and checksum).\n"
                   "# TYPE adsmith_model_info gauge\nadsmith_model_info{version=\"%s\",source=\"%s\"} 1\n"
                   "# HELP adsmith_model_loads_total Ranking models published, the first included.\n"
                   "# TYPE adsmith_model_loads_total counter\nadsmith_model_loads_total %" PRIu64 "\n"
                   "# HELP adsmith_model_reload_failures_total Reloads refused (the running model stayed).\n"
                   "# TYPE adsmith_model_reload_failures_total counter\nadsmith_model_reload_failures_total %" PRIu64 "\n"
                   "# HELP adsmith_model_loaded_time_seconds Unix time the current model was published.\n"
                   "# TYPE adsmith_model_loaded_time_seconds gauge\nadsmith_model_loaded_time_seconds %" PRId64 "\n",
                   ms.version, ms.source, ms.loads, ms.failures, ms.loaded_at);
    }
    if (app->vgen != NULL) {
        struct vgen_stats gs;
        vgen_stats(app->vgen, &gs);
        buf_printf(&b,
                   "# HELP adsmith_gen_jobs_total Variant generation jobs finished.\n"
                   "# TYPE adsmith_gen_jobs_total counter\nadsmith_gen_jobs_total %" PRIu64 "\n"
                   "# HELP adsmith_gen_jobs_queued Variant generation jobs waiting.\n"
                   "# TYPE adsmith_gen_jobs_queued gauge\nadsmith_gen_jobs_queued %" PRIu64 "\n"
                   "# HELP adsmith_gen_calls_total Calls to generator backends (retries included).\n"
                   "# TYPE adsmith_gen_calls_total counter\nadsmith_gen_calls_total %" PRIu64 "\n"
                   "# HELP adsmith_gen_failed_total Jobs that stored no variant (backend failure, every variant "
                   "rejected, token limit).\n# TYPE adsmith_gen_failed_total counter\nadsmith_gen_failed_total %" PRIu64
                   "\n# HELP adsmith_gen_refused_total Generations refused by a hard token limit (nothing sent).\n"
                   "# TYPE adsmith_gen_refused_total counter\nadsmith_gen_refused_total %" PRIu64 "\n"
                   "# HELP adsmith_variants_stored_total Variants stored, by state after the checks.\n"
                   "# TYPE adsmith_variants_stored_total counter\n"
                   "adsmith_variants_stored_total{state=\"approved\"} %" PRIu64 "\n"
                   "adsmith_variants_stored_total{state=\"pending\"} %" PRIu64 "\n"
                   "adsmith_variants_stored_total{state=\"rejected\"} %" PRIu64 "\n"
                   "# HELP adsmith_gen_tokens_total Tokens settled by this process, by kind.\n"
                   "# TYPE adsmith_gen_tokens_total counter\n"
                   "adsmith_gen_tokens_total{kind=\"prompt\"} %" PRIu64 "\n"
                   "adsmith_gen_tokens_total{kind=\"cached\"} %" PRIu64 "\n"
                   "adsmith_gen_tokens_total{kind=\"completion\"} %" PRIu64 "\n"
                   "adsmith_gen_tokens_total{kind=\"reasoning\"} %" PRIu64 "\n"
                   "# HELP adsmith_gen_estimated_total Settlements whose usage was counted locally (none reported, "
                   "or a broken stream).\n# TYPE adsmith_gen_estimated_total counter\nadsmith_gen_estimated_total %" PRIu64
                   "\n",
                   gs.jobs, gs.queued, gs.calls, gs.failed, gs.refused, gs.approved, gs.pending, gs.rejected,
                   gs.tokens[0], gs.tokens[1], gs.tokens[2], gs.tokens[3], gs.estimated);
        buf_puts(&b, "# HELP adsmith_campaign_tokens_total Tokens settled by this process, by campaign and kind.\n"
                     "# TYPE adsmith_campaign_tokens_total counter\n");
        vgen_each_meter(app->vgen, ops_campaign_tokens, &b);
    }
    if (app->learner != NULL) {
        struct lrn_stats ls;
        lrn_stats(app->learner, &ls);
        buf_printf(&b,
                   "# HELP adsmith_online_learning 1 while online learning updates the model (0: stopped, see GET "
                   "/v1/admin/model).\n# TYPE adsmith_online_learning gauge\nadsmith_online_learning %d\n"
                   "# HELP adsmith_online_events_total Committed events the learner took, by type.\n"
                   "# TYPE adsmith_online_events_total counter\n"
                   "adsmith_online_events_total{type=\"impression\"} %" PRIu64 "\n"
                   "adsmith_online_events_total{type=\"click\"} %" PRIu64 "\n"
                   "# HELP adsmith_online_examples_total Examples learned, by label.\n"
                   "# TYPE adsmith_online_examples_total counter\n"
                   "adsmith_online_examples_total{label=\"1\"} %" PRIu64 "\n"
                   "adsmith_online_examples_total{label=\"0\"} %" PRIu64 "\n"
                   "# HELP adsmith_online_early_negatives_total Impressions learned as negatives before their window "
                   "ended (online_pending_max).\n# TYPE adsmith_online_early_negatives_total counter\n"
                   "adsmith_online_early_negatives_total %" PRIu64 "\n"
                   "# HELP adsmith_online_pending Impressions waiting for a click.\n"
                   "# TYPE adsmith_online_pending gauge\nadsmith_online_pending %" PRIu64 "\n"
                   "# HELP adsmith_online_ignored_total Events the learner ignored: clicks with no pending "
                   "impression, impressions already pending.\n# TYPE adsmith_online_ignored_total counter\n"
                   "adsmith_online_ignored_total{reason=\"unmatched_click\"} %" PRIu64 "\n"
                   "adsmith_online_ignored_total{reason=\"repeated_impression\"} %" PRIu64 "\n"
                   "# HELP adsmith_online_dropped_total Events dropped on the way to the learner (its queue was "
                   "full).\n# TYPE adsmith_online_dropped_total counter\nadsmith_online_dropped_total %" PRIu64 "\n"
                   "# HELP adsmith_online_publishes_total Snapshots published as the served model.\n"
                   "# TYPE adsmith_online_publishes_total counter\nadsmith_online_publishes_total %" PRIu64 "\n"
                   "# HELP adsmith_online_publish_failures_total Snapshots that could not be published.\n"
                   "# TYPE adsmith_online_publish_failures_total counter\n"
                   "adsmith_online_publish_failures_total %" PRIu64 "\n"
                   "# HELP adsmith_online_resets_total Restarts of the learner from a reloaded model file.\n"
                   "# TYPE adsmith_online_resets_total counter\nadsmith_online_resets_total %" PRIu64 "\n"
                   "# HELP adsmith_online_logloss Progressive validation: mean log loss of each example's prediction "
                   "made before it was learned.\n# TYPE adsmith_online_logloss gauge\nadsmith_online_logloss %.6f\n"
                   "# HELP adsmith_online_calibration Progressive validation: sum of predictions / clicks (1 is "
                   "calibrated).\n# TYPE adsmith_online_calibration gauge\nadsmith_online_calibration %.6f\n"
                   "# HELP adsmith_online_auc Progressive validation: ROC AUC over the last %d examples.\n"
                   "# TYPE adsmith_online_auc gauge\nadsmith_online_auc %.6f\n",
                   strcmp(ls.status, "learning") == 0, ls.impressions, ls.clicks, ls.positives, ls.negatives,
                   ls.early_negatives, ls.pending, ls.unmatched, ls.repeated, ls.dropped, ls.publishes,
                   ls.publish_failures, ls.resets, ls.pv.logloss, ls.pv.calibration, LRN_AUC_WINDOW, ls.pv.auc);
    }
    /* issue 6: signed notices received, and those refused for their signature */
    buf_printf(&b,
               "# HELP adsmith_bid_notices_total Win, bill and loss notices received.\n"
               "# TYPE adsmith_bid_notices_total counter\nadsmith_bid_notices_total %lu\n"
               "# HELP adsmith_bid_notices_forged_total Notices refused because their signature did not match.\n"
               "# TYPE adsmith_bid_notices_forged_total counter\nadsmith_bid_notices_forged_total %lu\n",
               bid_handler_notices(), bid_handler_forged());
    if (b.overflow) {
        http_send_error(r, ADS_EINTERNAL, NULL, "the metrics text outgrew its buffer");
        return;
    }
    http_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.base, b.len);
}
