/*
 * mdl: the ranking model the daemon serves, and its hot reload.
 *
 * One model (rank.h) is current at any time. Request threads read it without
 * locks: mdl_enter() / mdl_exit() around each use (reader = the worker's
 * index); what mdl_enter() returned stays valid until the exit. A reload
 * (SIGHUP, POST /v1/admin/model:reload) opens the configured file again,
 * checks it (rank_model_open: magic, version, checksum, schema, no NaN,
 * golden predictions, plus the serving schema here), and only then publishes
 * it; the previous model is closed once no request still holds it. A file
 * that fails any check is refused and the running model stays.
 *
 * With no file configured (cfg "model" empty) the model is the default one
 * compiled into the binary (models/default/), so a fresh daemon bids sensibly.
 *
 * Online learning (learn.h) publishes models it derived from the current
 * one with mdl_publish(). Every load of the file (or the embedded model)
 * starts a new generation; a publish derived from an older generation is
 * refused, so a reload always replaces the online model, and the learner
 * restarts from the reloaded one (mdl_inspect()).
 */
#ifndef ADSMITH_MDL_H
#define ADSMITH_MDL_H

#include <stdint.h>

#include "adsmith/err.h"
#include "adsmith/rank.h"

struct mdl;

struct mdl_stats {
    char version[32];      /* rank_info.version of the current model */
    char source[16];       /* "file", "embedded", or "online" (published by the learner) */
    uint64_t loads;        /* models published, the first included (online ones too) */
    uint64_t generation;   /* loads of the file or embedded model (1 after mdl_start), not online publishes */
    uint64_t failures;     /* reloads refused (the running model stayed) */
    int64_t loaded_at;     /* unix seconds the current model was published */
    uint64_t file_bytes;
    char last_error[256];  /* why the last refused reload was refused; "" if none */
};

/**
 * Loads the model from @p path (NULL or "": the embedded default) for
 * @p readers request threads.
 * @return 0 with *@p ret set; the rank_model_open() error (with @p diag) when
 *   the model cannot be served; ADS_EINVAL or ADS_ENOMEM.
 */
int mdl_start(const char *path, unsigned readers, struct mdl **ret, struct ads_diag *diag);

/** Frees everything. Accepts NULL. After the request threads stopped. */
void mdl_stop(struct mdl *m);

/**
 * Loads the configured model again and publishes it. Any thread that is not
 * inside mdl_enter(); reloads are serialised. Takes as long as opening and
 * checking the file (milliseconds for a few MB).
 * @return 0 (published), or the error that refused it (with @p diag); the
 *   running model then stays.
 */
int mdl_reload(struct mdl *m, struct ads_diag *diag);

/**
 * Publishes @p model (derived from generation @p base_generation) as the
 * current model, source "online"; the previous one is closed once no request
 * holds it. Serialised with reloads. On success mdl owns @p model.
 * @return 0; ADS_ECONFLICT when a reload started another generation since
 *   (the caller keeps @p model, and should restart from the reloaded one);
 *   ADS_EDATA_INVALID when @p model is not of the serving schema.
 */
int mdl_publish(struct mdl *m, struct rank_model *model, uint64_t base_generation, struct ads_diag *diag);

/**
 * Calls @p fn with the current model and its generation, while no reload or
 * publish can replace it (they wait for @p fn to return). @p fn must not call
 * mdl_reload(), mdl_publish() or mdl_inspect(), and should be quick (it
 * holds up reloads, never requests).
 */
void mdl_inspect(struct mdl *m, void (*fn)(const struct rank_model *model, uint64_t generation, void *arg), void *arg);

/** The current model for reader @p reader; pair with mdl_exit(). Never NULL after mdl_start(). */
const struct rank_model *mdl_enter(struct mdl *m, unsigned reader);
void mdl_exit(struct mdl *m, unsigned reader);

/** A snapshot of the counters. Any thread. */
void mdl_stats(struct mdl *m, struct mdl_stats *ret);

#endif
