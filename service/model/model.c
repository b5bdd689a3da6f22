#include "adsmith/mdl.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adsmith/hold.h"

/* models/default/default.model, compiled in by scripts/embed.py (meson.build). */
extern const char rank_default_model[];
extern const size_t rank_default_model_len;

struct mdl {
    char *path; /* NULL: the embedded default */
    struct hold *holder; /* of struct rank_model */
    const struct rank_model *current; /* what the holder publishes; read under mu only */
    pthread_mutex_t mu; /* serialises reloads; guards stats */
    struct mdl_stats stats;
};

static void mdl_close_any(void *m)
{
    rank_model_close(m);
}

/* Opens and checks the configured model: the file, or the embedded one. */
static int mdl_open(const struct mdl *m, struct rank_model **ret, struct ads_diag *diag)
{
    struct ctr_schema want;
    int rc;

    rc = m->path != NULL ? rank_model_open(m->path, ret, diag)
                         : rank_model_open_mem(rank_default_model, rank_default_model_len, ret, diag);
    if (rc != 0)
        return rc;
    /* The bid path fills the "adsmith" serving schema: a model of another
     * schema (one trained on Criteo's columns, say) cannot score it. */
    rank_schema_adsmith(&want);
    if ((rc = rank_model_check_schema(*ret, &want, diag)) != 0) {
        rank_model_close(*ret);
        *ret = NULL;
    }
    return rc;
}

/* Records @p model as published (under m->mu); @p online: by mdl_publish(). */
static void mdl_published(struct mdl *m, const struct rank_model *model, bool online)
{
    struct rank_info info;

    rank_model_info(model, &info);
    snprintf(m->stats.version, sizeof(m->stats.version), "%s", info.version);
    snprintf(m->stats.source, sizeof(m->stats.source), "%s",
             online ? "online" : m->path != NULL ? "file" : "embedded");
    m->stats.file_bytes = info.file_size;
    m->stats.loaded_at = (int64_t)time(NULL);
    m->stats.loads++;
    if (!online)
        m->stats.generation++;
    m->current = model;
}

int mdl_start(const char *path, unsigned readers, struct mdl **ret, struct ads_diag *diag)
{
    struct rank_model *model = NULL;
    struct mdl *m = calloc(1, sizeof(*m));
    int rc;

    if (m == NULL)
        return ADS_ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    if (path != NULL && path[0] != '\0' && (m->path = strdup(path)) == NULL) {
        mdl_stop(m);
        return ADS_ENOMEM;
    }
    if ((rc = mdl_open(m, &model, diag)) != 0) {
        mdl_stop(m);
        return rc;
    }
    if ((rc = hold_new(readers, model, mdl_close_any, &m->holder)) != 0) {
        rank_model_close(model);
        mdl_stop(m);
        return rc;
    }
    mdl_published(m, model, false);
    *ret = m;
    return 0;
}

void mdl_stop(struct mdl *m)
{
    if (m == NULL)
        return;
    hold_free(m->holder);
    pthread_mutex_destroy(&m->mu);
    free(m->path);
    free(m);
}

int mdl_reload(struct mdl *m, struct ads_diag *diag)
{
    struct rank_model *model = NULL;
    int rc;

    pthread_mutex_lock(&m->mu);
    if ((rc = mdl_open(m, &model, diag)) != 0) {
        m->stats.failures++;
        snprintf(m->stats.last_error, sizeof(m->stats.last_error), "%s",
                 diag != NULL && diag->message[0] != '\0' ? diag->message : ads_err_message(rc));
    } else {
        hold_swap(m->holder, model); /* returns once no request holds the old model, which it then closes */
        mdl_published(m, model, false);
        m->stats.last_error[0] = '\0';
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int mdl_publish(struct mdl *m, struct rank_model *model, uint64_t base_generation, struct ads_diag *diag)
{
    struct ctr_schema want;
    int rc;

    rank_schema_adsmith(&want);
    if ((rc = rank_model_check_schema(model, &want, diag)) != 0)
        return rc;
    pthread_mutex_lock(&m->mu);
    if (base_generation != m->stats.generation) {
        pthread_mutex_unlock(&m->mu);
        return ads_diag_set(diag, ADS_ECONFLICT, NULL,
                            "the model was reloaded since (generation %llu, the published model derives from %llu)",
                            (unsigned long long)m->stats.generation, (unsigned long long)base_generation);
    }
    hold_swap(m->holder, model);
    mdl_published(m, model, true);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

void mdl_inspect(struct mdl *m, void (*fn)(const struct rank_model *model, uint64_t generation, void *arg), void *arg)
{
    /* Every swap happens under mu, so the current model outlives the call. */
    pthread_mutex_lock(&m->mu);
    fn(m->current, m->stats.generation, arg);
    pthread_mutex_unlock(&m->mu);
}

const struct rank_model *mdl_enter(struct mdl *m, unsigned reader)
{
    return hold_enter(m->holder, reader);
}

void mdl_exit(struct mdl *m, unsigned reader)
{
    hold_exit(m->holder, reader);
}

void mdl_stats(struct mdl *m, struct mdl_stats *ret)
{
    pthread_mutex_lock(&m->mu);
    *ret = m->stats;
    pthread_mutex_unlock(&m->mu);
}
