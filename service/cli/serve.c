/* `adsmith serve`: load the configuration, open storage, run the server. */
#include <signal.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "adsmith/app.h"
#include "adsmith/campaign.h"
#include "adsmith/catalog.h"
#include "adsmith/cli.h"
#include "adsmith/config.h"
#include "adsmith/http.h"
#include "adsmith/learn.h"
#include "adsmith/log.h"
#include "adsmith/mdl.h"
#include "adsmith/metrics.h"
#include "adsmith/server.h"
#include "adsmith/version.h"
#include "adsmith/variant.h"
#include "adsmith/vgen.h"

extern char **environ;

static void serve_usage(void)
{
    char mem[8192];
    struct buf b;

    buf_init(&b, mem, sizeof(mem));
    cfg_usage(&b);
    printf("usage: adsmith serve [OPTIONS]\n\n"
           "Runs the daemon: HTTP/1.1, h2c (prior knowledge and Upgrade) and, with a\n"
           "certificate, HTTP/2 over TLS. SIGTERM/SIGINT drain and stop; SIGHUP reloads.\n"
           "Each option can also come from the environment or the config file\n"
           "(precedence: flag > env > file > default).\n\noptions:\n%s",
           b.base);
}

#define SERVE_VARIANT_REFRESH_MS 1000 /* click statistics reach the bandit within about this */

static struct store *serve_store(void *arg)
{
    return app_store(arg);
}

static void serve_log_failure(const char *what, int rc, const char *detail)
{
    struct lg_rec r;

    lg_begin(&r, LG_ERROR, what);
    lg_str(&r, "error", ads_err_name(rc));
    lg_str(&r, "detail", detail);
    lg_end(&r);
}

static void serve_log_model(struct app *app, const char *msg)
{
    struct mdl_stats st;
    struct lg_rec r;

    mdl_stats(app->model, &st);
    lg_begin(&r, LG_INFO, msg);
    lg_str(&r, "version", st.version);
    lg_str(&r, "source", st.source);
    lg_str(&r, "path", app->cfg->model != NULL ? app->cfg->model : "");
    lg_uint(&r, "bytes", st.file_bytes);
    lg_end(&r);
}

/* SIGHUP: the model file again (a refused one leaves the running model in place). */
static void serve_reload_model(void *arg)
{
    struct app *app = arg;
    struct ads_diag d = {{0}, {0}};
    int rc = mdl_reload(app->model, &d);

    if (rc == 0) {
        serve_log_model(app, "model reloaded");
    } else {
        struct lg_rec r;
        lg_begin(&r, LG_ERROR, "model reload refused; the running model stays");
        lg_str(&r, "error", ads_err_name(rc));
        lg_str(&r, "detail", d.message);
        lg_end(&r);
    }
}

int cli_serve(int argc, char **argv)
{
    struct cfg cfg;
    struct ads_diag d = {{0}, {0}};
    struct metrics *metrics = NULL;
    struct srv *srv = NULL;
    struct app app = {0};
    struct lg_rec r;
    size_t nroutes;
    int rc, status = 1;

    if ((rc = cfg_load(&cfg, argc, argv, environ, &d)) != 0) {
        /* Before the log level is known; errors always show. */
        lg_begin(&r, LG_ERROR, "invalid configuration");
        lg_str(&r, "error", ads_err_name(rc));
        lg_str(&r, "detail", d.message);
        lg_str(&r, "pointer", d.pointer);
        lg_str(&r, "help", "adsmith serve --help");
        lg_end(&r);
        return 2;
    }
    if (cfg.want_help || cfg.want_print) {
        if (cfg.want_help) {
            serve_usage();
        } else {
            /* Room for every setting at its longest (four 4 KiB paths, 16 addresses). */
            static char mem[65536];
            struct buf b;
            buf_init(&b, mem, sizeof(mem));
            cfg_print(&cfg, &b);
            fputs(b.base, stdout);
        }
        cfg_done(&cfg);
        return 0;
    }
    lg_set_level((enum lg_level)cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    /* Before any thread exists, so every thread inherits the mask. */
    srv_block_signals();

    lg_begin(&r, LG_INFO, "starting");
    lg_str(&r, "version", ADS_VERSION);
    lg_str(&r, "commit", ADS_COMMIT);
    lg_str(&r, "data_dir", cfg.data_dir);
    lg_uint(&r, "threads", cfg.threads);
    lg_end(&r);

    http_routes(&nroutes);
    if ((rc = met_new(cfg.threads, http_route_labels(), nroutes, &metrics)) != 0) {
        serve_log_failure("cannot allocate metrics", rc, "");
        goto out;
    }
    app.cfg = &cfg;
    app.metrics = metrics;
    app.started_at = (int64_t)time(NULL);
    /* Storage that cannot open now is retried in the background while the
     * daemon serves /healthz and reports unready; data it can never read stops it. */
    /* libcurl (the chat-completions backends) wants its global set-up once, before any thread uses it. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        serve_log_failure("cannot initialise libcurl", ADS_EINTERNAL, "curl_global_init failed");
        goto out;
    }
    if ((rc = app_storage_open(&app)) != 0) {
        if (!atomic_load(&app.refused))
            serve_log_failure("cannot start the storage retry thread", rc, ads_err_message(rc));
        goto out;
    }
    if ((rc = app_writer_start(&app)) != 0) {
        serve_log_failure("cannot start the writer thread", rc, ads_err_message(rc));
        goto out;
    }
    if ((rc = camp_validator_new(&app.campaign_validator, &d)) != 0) {
        serve_log_failure("cannot compile the campaign schema", rc, d.message);
        goto out;
    }
    if ((rc = catl_start(&app, cfg.threads, &app.catalog)) != 0) {
        serve_log_failure("cannot start the campaign index thread", rc, ads_err_message(rc));
        goto out;
    }
    if ((rc = vpick_cache_new(&app, cfg.threads, SERVE_VARIANT_REFRESH_MS, &app.variants)) != 0) {
        serve_log_failure("cannot start the variant snapshot thread", rc, ads_err_message(rc));
        goto out;
    }
    {
        struct vgen_cfg vc = {.endpoints = cfg.gen_endpoints,
                              .tokenizer = cfg.tokenizer,
                              .workers = cfg.gen_workers,
                              .timeout_ms = cfg.gen_timeout_ms,
                              .retries = cfg.gen_retries,
                              .max_output_tokens = cfg.gen_max_output_tokens,
                              .reservation_ttl_s = cfg.token_reservation_ttl_s,
                              .stream = cfg.gen_stream};
        if ((rc = vgen_new(&vc, serve_store, &app, app.wq, &app.vgen, &d)) != 0) {
            serve_log_failure("cannot start variant generation", rc, rc == ADS_ECONFIG ? d.message : ads_err_message(rc));
            status = rc == ADS_ECONFIG ? 2 : 1;
            goto out;
        }
    }
    if ((rc = mdl_start(cfg.model, cfg.threads, &app.model, &d)) != 0) {
        serve_log_failure("cannot load the ranking model", rc, d.message);
        goto out;
    }
    serve_log_model(&app, "model loaded");
    if (cfg.online_learning) {
        struct lrn_opts lo = {cfg.online_window_s, cfg.online_publish_s, cfg.online_pending_max};
        struct lrn_stats ls;
        if ((rc = lrn_new(&lo, app.model, &app.learner, &d)) != 0) {
            serve_log_failure("cannot start online learning", rc, d.message);
            goto out;
        }
        if ((rc = lrn_start(app.learner)) != 0) {
            serve_log_failure("cannot start the online learning thread", rc, ads_err_message(rc));
            goto out;
        }
        lrn_stats(app.learner, &ls);
        lg_begin(&r, ls.last_error[0] != '\0' ? LG_WARN : LG_INFO, "online learning started");
        lg_str(&r, "status", ls.status);
        lg_str(&r, "base", ls.base_version);
        lg_uint(&r, "window_s", cfg.online_window_s);
        lg_uint(&r, "publish_s", cfg.online_publish_s);
        lg_uint(&r, "pending_max", cfg.online_pending_max);
        if (ls.last_error[0] != '\0')
            lg_str(&r, "detail", ls.last_error);
        lg_end(&r);
    }
    if ((rc = srv_new(&app, &d, &srv)) != 0) {
        serve_log_failure("cannot start the server", rc, d.message);
        status = rc == ADS_ECONFIG ? 2 : 1;
        goto out;
    }
    if ((rc = srv_on_reload(srv, serve_reload_model, &app)) != 0) {
        serve_log_failure("cannot register the model reload", rc, ads_err_message(rc));
        goto out;
    }
    if ((rc = srv_run(srv)) != 0) {
        /* Connections the deadline cut off still reference server memory; leave
         * it to the kernel instead of freeing it under them. */
        _exit(1);
    }
    status = atomic_load(&app.refused) ? 1 : 0;

out:
    srv_free(srv);
    lrn_free(app.learner); /* after the workers (they submit), before the model it publishes to */
    mdl_stop(app.model);
    catl_stop(app.catalog);
    camp_validator_free(app.campaign_validator);
    vgen_free(app.vgen); /* before the writer: its workers wait on writes */
    vpick_cache_free(app.variants);
    app_writer_stop(&app);
    app_storage_close(&app);
    met_free(metrics);
    curl_global_cleanup();
    cfg_done(&cfg);
    return status;
}
