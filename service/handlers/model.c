/* /v1/admin/model: the served ranking model (mdl.h). */
#include <stdio.h>
#include <string.h>

#include "adsmith/app.h"
#include "adsmith/config.h"
#include "adsmith/doc.h"
#include "adsmith/handlers.h"
#include "adsmith/learn.h"
#include "adsmith/mdl.h"
#include "adsmith/rank.h"
#include "body.h"

#define MODEL_SCORE_MAX_CANDIDATES 64
#define MODEL_SCORE_MAX_TOKEN 256 /* bytes of one feature value */

/* The "online" member: online learning's counters and progressive validation (learn.h). */
static void model_online(struct lrn *l, struct docw *w)
{
    struct lrn_stats s;

    if (l == NULL) {
        docw_map(w, 1);
        docw_key(w, "enabled");
        docw_bool(w, false);
        docw_map_end(w);
        return;
    }
    lrn_stats(l, &s);
    docw_map(w, 23);
    docw_key(w, "enabled");
    docw_bool(w, true);
    docw_key(w, "status");
    docw_cstr(w, s.status);
    docw_key(w, "base_version");
    docw_cstr(w, s.base_version);
    docw_key(w, "version");
    docw_cstr(w, s.version);
    docw_key(w, "impressions");
    docw_uint(w, s.impressions);
    docw_key(w, "clicks");
    docw_uint(w, s.clicks);
    docw_key(w, "pending");
    docw_uint(w, s.pending);
    docw_key(w, "positives");
    docw_uint(w, s.positives);
    docw_key(w, "negatives");
    docw_uint(w, s.negatives);
    docw_key(w, "early_negatives");
    docw_uint(w, s.early_negatives);
    docw_key(w, "unmatched_clicks");
    docw_uint(w, s.unmatched);
    docw_key(w, "repeated_impressions");
    docw_uint(w, s.repeated);
    docw_key(w, "dropped");
    docw_uint(w, s.dropped);
    docw_key(w, "publishes");
    docw_uint(w, s.publishes);
    docw_key(w, "publish_failures");
    docw_uint(w, s.publish_failures);
    docw_key(w, "resets");
    docw_uint(w, s.resets);
    docw_key(w, "published_at");
    docw_int(w, s.published_at);
    docw_key(w, "examples");
    docw_uint(w, s.pv.examples);
    docw_key(w, "logloss");
    docw_double(w, s.pv.logloss);
    docw_key(w, "calibration");
    docw_double(w, s.pv.calibration);
    docw_key(w, "auc");
    docw_double(w, s.pv.auc);
    docw_key(w, "auc_examples");
    docw_uint(w, s.pv.auc_examples);
    docw_key(w, "last_error");
    docw_cstr(w, s.last_error);
    docw_map_end(w);
}

void model_get(struct http_req *r)
{
    const struct rank_model *m;
    struct rank_info in;
    struct mdl_stats st;
    enum doc_fmt fmt = http_accept_fmt(r);
    struct docw w;
    struct buf b;

    mdl_stats(r->app->model, &st);
    m = mdl_enter(r->app->model, r->hw->idx);
    rank_model_info(m, &in);
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, 4096), 4096);
    docw_init(&w, fmt, &b);
    docw_map(&w, 23);
    docw_key(&w, "version");
    docw_cstr(&w, in.version);
    docw_key(&w, "source");
    docw_cstr(&w, st.source);
    docw_key(&w, "schema");
    docw_cstr(&w, in.schema);
    docw_key(&w, "type");
    docw_cstr(&w, in.type_name);
    docw_key(&w, "bits");
    docw_uint(&w, in.bits);
    docw_key(&w, "file_bytes");
    docw_uint(&w, in.file_size);
    docw_key(&w, "trained_on");
    docw_cstr(&w, in.source != NULL ? in.source : "");
    docw_key(&w, "first_line");
    docw_uint(&w, in.first_line);
    docw_key(&w, "last_line");
    docw_uint(&w, in.last_line);
    docw_key(&w, "rows");
    docw_uint(&w, in.rows);
    docw_key(&w, "positives");
    docw_uint(&w, in.positives);
    docw_key(&w, "trained_at");
    docw_int(&w, in.trained_at);
    docw_key(&w, "neg_rate");
    docw_double(&w, in.neg_rate);
    docw_key(&w, "valid_rows");
    docw_uint(&w, in.valid_rows);
    docw_key(&w, "valid_logloss");
    docw_double(&w, in.valid_logloss);
    docw_key(&w, "valid_auc");
    docw_double(&w, in.valid_auc);
    docw_key(&w, "valid_calibration");
    docw_double(&w, in.valid_calibration);
    mdl_exit(r->app->model, r->hw->idx);
    docw_key(&w, "loaded_at");
    docw_int(&w, st.loaded_at);
    docw_key(&w, "loads");
    docw_uint(&w, st.loads);
    docw_key(&w, "reload_failures");
    docw_uint(&w, st.failures);
    docw_key(&w, "last_error");
    docw_cstr(&w, st.last_error);
    docw_key(&w, "path");
    docw_cstr(&w, r->app->cfg->model != NULL ? r->app->cfg->model : "");
    docw_key(&w, "online");
    model_online(r->app->learner, &w);
    docw_map_end(&w);
    http_send_doc(r, 200, fmt, &b);
}

/*
 * Runs on this worker's loop thread and holds it for as long as opening and
 * checking the file takes (milliseconds for a few MB); the other workers
 * serve meanwhile, and requests already scoring keep the old model.
 */
void model_reload(struct http_req *r)
{
    struct ads_diag d = {{0}, {0}};
    struct mdl_stats before, after;
    enum doc_fmt fmt = http_accept_fmt(r);
    struct docw w;
    struct buf b;
    int rc;

    mdl_stats(r->app->model, &before);
    if ((rc = mdl_reload(r->app->model, &d)) != 0) {
        http_send_error(r, ADS_EMODEL_REFUSED, NULL, "%s; the running model %s stays",
                        d.message[0] != '\0' ? d.message : ads_err_message(rc), before.version);
        return;
    }
    mdl_stats(r->app->model, &after);
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, 256), 256);
    docw_init(&w, fmt, &b);
    docw_map(&w, 2);
    docw_key(&w, "version");
    docw_cstr(&w, after.version);
    docw_key(&w, "previous");
    docw_cstr(&w, before.version);
    docw_map_end(&w);
    http_send_doc(r, 200, fmt, &b);
}

/* The field of the "adsmith" schema named @p name (a string object); -1 if none. */
static int model_field(const struct ctr_schema *s, const msgpack_object *name)
{
    for (uint32_t f = 0; f < s->nfields; f++) {
        if (name->via.str.size == strlen(s->fields[f].name) &&
            memcmp(name->via.str.ptr, s->fields[f].name, name->via.str.size) == 0)
            return (int)f;
    }
    return -1;
}

/* Adds one categorical value @p v (a string) to the request or the candidate. */
static bool model_add_token(struct http_req *r, struct rank_req *rq, struct rank_cand *c, uint32_t f,
                            const msgpack_object *v, const char *ptr, uint32_t *dropped)
{
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 || v->via.str.size > MODEL_SCORE_MAX_TOKEN) {
        http_send_error(r, ADS_EINVAL, ptr, "must be a string of 1 to %d bytes", MODEL_SCORE_MAX_TOKEN);
        return false;
    }
    /* Values beyond the limits are dropped and counted: "dropped" in the answer. */
    if ((c != NULL ? rank_cand_add(c, f, v->via.str.ptr, v->via.str.size)
                   : rank_req_add(rq, f, v->via.str.ptr, v->via.str.size)) == ADS_EOVERLOADED)
        (*dropped)++;
    return true;
}

/*
 * Fills the request (@p c NULL: user and context fields) or a candidate from
 * the map @p o at JSON pointer @p at: a string or a list of strings for a
 * categorical field, a number for a numeric one.
 */
static bool model_add_map(struct http_req *r, const struct ctr_schema *s, const msgpack_object *o, const char *at,
                          struct rank_req *rq, struct rank_cand *c, uint32_t *dropped)
{
    char ptr[128];

    if (o->type != MSGPACK_OBJECT_MAP) {
        http_send_error(r, ADS_EINVAL, at, "must be an object of feature names to values");
        return false;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        int f = k->type == MSGPACK_OBJECT_STR ? model_field(s, k) : -1;
        bool cand_field = f >= 0 && rank_field_group((enum rank_field)f) == RANK_GROUP_CANDIDATE;

        snprintf(ptr, sizeof(ptr), "%s/%.*s", at, k->type == MSGPACK_OBJECT_STR ? (int)k->via.str.size : 0,
                 k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "");
        if (f < 0 || cand_field != (c != NULL)) {
            http_send_error(r, ADS_EINVAL, ptr, "is not a %s feature of the model's schema (models/README.md)",
                            c != NULL ? "candidate" : "user or context");
            return false;
        }
        if (s->fields[f].kind == CTR_NUM) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER && v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER &&
                v->type != MSGPACK_OBJECT_FLOAT64 && v->type != MSGPACK_OBJECT_FLOAT32) {
                http_send_error(r, ADS_EINVAL, ptr, "must be a number");
                return false;
            }
            double x = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER   ? (double)v->via.u64
                       : v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double)v->via.i64
                                                                    : v->via.f64;
            if (rank_req_add_num(rq, (uint32_t)f, x) == ADS_EOVERLOADED)
                (*dropped)++;
        } else if (v->type == MSGPACK_OBJECT_ARRAY) {
            for (uint32_t k2 = 0; k2 < v->via.array.size; k2++) {
                char item[160];
                snprintf(item, sizeof(item), "%s/%u", ptr, k2);
                if (!model_add_token(r, rq, c, (uint32_t)f, &v->via.array.ptr[k2], item, dropped))
                    return false;
            }
        } else if (!model_add_token(r, rq, c, (uint32_t)f, v, ptr, dropped)) {
            return false;
        }
    }
    return true;
}

void model_score(struct http_req *r)
{
    struct ctr_schema s;
    struct rank_req rq;
    struct rank_cand *cands = NULL;
    const msgpack_object *features, *list;
    const struct rank_model *m = NULL;
    struct rank_info in;
    msgpack_zone zone;
    msgpack_object doc;
    uint32_t ncand = 0, dropped = 0;
    enum doc_fmt fmt = http_accept_fmt(r);
    struct docw w;
    struct buf b;

    msgpack_zone_init(&zone, 4096);
    if (!body_parse(r, &zone, &doc))
        goto out;
    if (doc.type != MSGPACK_OBJECT_MAP) {
        http_send_error(r, ADS_EINVAL, "", "the body must be an object: {\"features\": {...}, \"candidates\": [...]}");
        goto out;
    }
    features = doc_map_get(&doc, "features");
    list = doc_map_get(&doc, "candidates");
    if (list != NULL && (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > MODEL_SCORE_MAX_CANDIDATES)) {
        http_send_error(r, ADS_EINVAL, "/candidates", "must be an array of at most %d candidate objects",
                        MODEL_SCORE_MAX_CANDIDATES);
        goto out;
    }
    ncand = list != NULL ? list->via.array.size : 0;
    cands = h2o_mem_alloc_pool(&r->req->pool, (ncand + 1) * sizeof(*cands));
    rank_schema_adsmith(&s);
    m = mdl_enter(r->app->model, r->hw->idx);
    rank_req_begin(&rq, m);
    if (features != NULL && !model_add_map(r, &s, features, "/features", &rq, NULL, &dropped))
        goto out;
    rank_req_commit(&rq);
    for (uint32_t i = 0; i < ncand; i++) {
        char at[32];
        snprintf(at, sizeof(at), "/candidates/%u", i);
        rank_cand_init(&cands[i]);
        if (!model_add_map(r, &s, &list->via.array.ptr[i], at, &rq, &cands[i], &dropped))
            goto out;
    }
    rank_model_info(m, &in);
    buf_init(&b, h2o_mem_alloc_pool(&r->req->pool, 256 + 32 * (size_t)ncand), 256 + 32 * (size_t)ncand);
    docw_init(&w, fmt, &b);
    docw_map(&w, 3);
    docw_key(&w, "model");
    docw_cstr(&w, in.version);
    docw_key(&w, "scores");
    /* Without candidates: the request's own score (no candidate features). */
    docw_array(&w, ncand > 0 ? ncand : 1);
    for (uint32_t i = 0; i < (ncand > 0 ? ncand : 1); i++)
        docw_double(&w, rank_req_score(&rq, ncand > 0 ? &cands[i] : NULL));
    docw_array_end(&w);
    docw_key(&w, "dropped");
    docw_uint(&w, dropped);
    docw_map_end(&w);
    http_send_doc(r, 200, fmt, &b);
out:
    if (m != NULL)
        mdl_exit(r->app->model, r->hw->idx);
    msgpack_zone_destroy(&zone);
}
