/*
 * The online learner (learn.h): a queue of committed event batches, the
 * pending impressions waiting for their click, FTRL over the served model
 * (rank_online.h), progressive validation and periodic snapshots.
 */
#include "adsmith/learn.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adsmith/mdl.h"
#include "adsmith/rank_online.h"

#define LRN_TICK_MS 100
#define LRN_HASH_SEED 0x6c726e5f70656e64ull

/* ---- progressive validation ---- */

int lrn_pv_init(struct lrn_pv *pv, uint32_t window)
{
    memset(pv, 0, sizeof(*pv));
    if (window == 0)
        return ADS_EINVAL;
    pv->ring = malloc(window * sizeof(*pv->ring));
    pv->scratch = malloc(window * sizeof(*pv->scratch));
    if (pv->ring == NULL || pv->scratch == NULL) {
        lrn_pv_done(pv);
        return ADS_ENOMEM;
    }
    pv->cap = window;
    return 0;
}

void lrn_pv_done(struct lrn_pv *pv)
{
    free(pv->ring);
    free(pv->scratch);
    pv->ring = pv->scratch = NULL;
}

void lrn_pv_add(struct lrn_pv *pv, double p, int y)
{
    double q = p < 1e-15 ? 1e-15 : p > 1 - 1e-15 ? 1 - 1e-15 : p;

    pv->n++;
    pv->pos += y != 0;
    pv->sum_loss += y != 0 ? -log(q) : -log1p(-q);
    pv->sum_p += p;
    pv->ring[pv->next] = (struct lrn_pv_ex){p, y != 0 ? 1.0 : 0.0};
    pv->next = (pv->next + 1) % pv->cap;
    if (pv->len < pv->cap)
        pv->len++;
}

static int lrn_pv_cmp(const void *a, const void *b)
{
    double x = ((const struct lrn_pv_ex *)a)->p, y = ((const struct lrn_pv_ex *)b)->p;
    return (x > y) - (x < y);
}

void lrn_pv_get(struct lrn_pv *pv, struct lrn_pv_summary *ret)
{
    double pos = 0, neg = 0, area = 0;

    memset(ret, 0, sizeof(*ret));
    ret->examples = pv->n;
    ret->positives = pv->pos;
    ret->logloss = pv->n > 0 ? pv->sum_loss / (double)pv->n : 0;
    ret->calibration = pv->pos > 0 ? pv->sum_p / (double)pv->pos : 0;
    ret->auc_examples = pv->len;
    /* Rank-sum AUC over the window, sorted by prediction; tied predictions
     * count half a pair. */
    memcpy(pv->scratch, pv->ring, pv->len * sizeof(*pv->ring));
    qsort(pv->scratch, pv->len, sizeof(*pv->scratch), lrn_pv_cmp);
    for (uint32_t i = 0; i < pv->len;) {
        uint32_t j = i;
        double gp = 0, gn = 0;
        while (j < pv->len && pv->scratch[j].p == pv->scratch[i].p) {
            if (pv->scratch[j].y != 0)
                gp++;
            else
                gn++;
            j++;
        }
        area += gp * (neg + 0.5 * gn);
        pos += gp;
        neg += gn;
        i = j;
    }
    ret->auc = pos > 0 && neg > 0 ? area / (pos * neg) : 0.5;
}

/* ---- batches ---- */

struct lrn_item {
    uint8_t click;
    uint8_t nvals;
    uint32_t off; /* first value in the batch's value array */
    char id[EVT_ID_MAX + 1];
};

struct lrn_batch {
    struct lrn_batch *next; /* in the queue */
    uint32_t cap, count;
    uint32_t nv, capv;
    struct ctr_value *v;
    struct lrn_item items[];
};

_Static_assert(EVT_MAX_FEATURES <= UINT8_MAX, "lrn_item.nvals is 8 bits");

int lrn_batch_new(uint32_t max_events, struct lrn_batch **ret)
{
    struct lrn_batch *b;

    if (max_events == 0 || max_events > EVT_MAX_BATCH)
        return ADS_EINVAL;
    if ((b = calloc(1, sizeof(*b) + max_events * sizeof(b->items[0]))) == NULL)
        return ADS_ENOMEM;
    b->cap = max_events;
    *ret = b;
    return 0;
}

static int lrn_batch_push(struct lrn_batch *b, bool click, const char *id, const struct ctr_value *v, uint32_t n)
{
    size_t len = strnlen(id, EVT_ID_MAX + 1);

    if (len == 0 || len > EVT_ID_MAX || n > EVT_MAX_FEATURES)
        return ADS_EINVAL;
    if (b->count == b->cap)
        return ADS_EOVERLOADED;
    if (b->nv + n > b->capv) {
        uint32_t cap = b->capv != 0 ? b->capv : 256;
        while (cap < b->nv + n)
            cap *= 2;
        struct ctr_value *nvv = realloc(b->v, cap * sizeof(*nvv));
        if (nvv == NULL)
            return ADS_ENOMEM;
        b->v = nvv;
        b->capv = cap;
    }
    struct lrn_item *it = &b->items[b->count++];
    it->click = click;
    it->nvals = (uint8_t)n;
    it->off = b->nv;
    memcpy(it->id, id, len + 1);
    if (n > 0)
        memcpy(b->v + b->nv, v, n * sizeof(*v));
    b->nv += n;
    return 0;
}

int lrn_batch_impression(struct lrn_batch *b, const char *id, const struct ctr_value *v, uint32_t n)
{
    return lrn_batch_push(b, false, id, v, n);
}

int lrn_batch_click(struct lrn_batch *b, const char *id)
{
    return lrn_batch_push(b, true, id, NULL, 0);
}

uint32_t lrn_batch_count(const struct lrn_batch *b)
{
    return b->count;
}

void lrn_batch_free(struct lrn_batch *b)
{
    if (b == NULL)
        return;
    free(b->v);
    free(b);
}

/* ---- the learner ---- */

/* An impression waiting for its click: in a hash chain by id, and in a list by arrival. */
struct lrn_pend {
    struct lrn_pend *hnext;
    struct lrn_pend *older, *newer;
    uint64_t hash, at_ms;
    uint32_t nvals;
    char id[EVT_ID_MAX + 1];
    struct ctr_value v[];
};

struct lrn {
    struct lrn_opts o;
    struct mdl *m;

    pthread_mutex_t mu; /* the queue, the published stats, stop */
    pthread_cond_t cv;
    bool stop, started;
    pthread_t tid;
    struct lrn_batch *qhead, *qtail;
    uint64_t queued;  /* events in the queue */
    uint64_t dropped; /* events dropped at submit */
    struct lrn_stats pub;

    /* Below: the learner's own (lrn_step) */
    struct rank_online *ol; /* NULL: the current model cannot be learned online */
    uint64_t gen;           /* the mdl generation ol started from */
    struct lrn_pend **buckets;
    size_t mask;
    struct lrn_pend *oldest, *newest;
    struct lrn_pv pv;
    struct lrn_stats st;
    uint64_t last_publish_ms; /* UINT64_MAX: before the first step */
    uint64_t learned;         /* examples since the last publish */
};

struct lrn_reset_ctx {
    struct lrn *l;
    struct rank_online *ol;
    uint64_t gen;
    int rc;
    struct ads_diag diag;
    char version[32];
};

static void lrn_reset_cb(const struct rank_model *model, uint64_t generation, void *arg)
{
    struct lrn_reset_ctx *c = arg;
    struct rank_info in;

    rank_model_info(model, &in);
    snprintf(c->version, sizeof(c->version), "%s", in.version);
    c->gen = generation;
    c->rc = rank_online_new(model, &c->ol, &c->diag);
}

/* (Re)starts the FTRL state from the model mdl serves now. */
static void lrn_reset(struct lrn *l)
{
    struct lrn_reset_ctx c = {.l = l};

    mdl_inspect(l->m, lrn_reset_cb, &c);
    rank_online_free(l->ol);
    l->ol = c.rc == 0 ? c.ol : NULL;
    l->gen = c.gen;
    l->learned = 0;
    snprintf(l->st.base_version, sizeof(l->st.base_version), "%s", c.version);
    snprintf(l->st.status, sizeof(l->st.status), "%s", l->ol != NULL ? "learning" : "stopped");
    if (c.rc != 0)
        snprintf(l->st.last_error, sizeof(l->st.last_error), "%s", c.diag.message);
}

int lrn_new(const struct lrn_opts *opts, struct mdl *m, struct lrn **ret, struct ads_diag *diag)
{
    struct lrn *l;
    size_t nb = 16;
    pthread_condattr_t ca;

    if (opts->window_s == 0 || opts->publish_s == 0 || opts->pending_max == 0 || opts->pending_max > LRN_PENDING_MAX)
        return ads_diag_set(diag, ADS_EINVAL, NULL,
                            "online learning needs window_s >= 1, publish_s >= 1 and pending_max in 1..%d",
                            LRN_PENDING_MAX);
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory");
    l->o = *opts;
    l->m = m;
    while (nb < opts->pending_max)
        nb *= 2;
    l->mask = nb - 1;
    if ((l->buckets = calloc(nb, sizeof(*l->buckets))) == NULL || lrn_pv_init(&l->pv, LRN_AUC_WINDOW) != 0) {
        free(l->buckets);
        free(l);
        return ads_diag_set(diag, ADS_ENOMEM, NULL, "out of memory for %zu pending impression slots", nb);
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    l->last_publish_ms = UINT64_MAX;
    l->st.enabled = true;
    lrn_reset(l);
    l->pub = l->st;
    *ret = l;
    return 0;
}

static uint64_t lrn_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *lrn_main(void *arg)
{
    struct lrn *l = arg;
    struct timespec until;

    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += LRN_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT)
            ;
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->mu);
        lrn_step(l, lrn_now_ms());
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int lrn_start(struct lrn *l)
{
    int rc = pthread_create(&l->tid, NULL, lrn_main, l);

    if (rc != 0)
        return -rc;
    l->started = true;
    return 0;
}

void lrn_free(struct lrn *l)
{
    if (l == NULL)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->tid, NULL);
    }
    while (l->qhead != NULL) {
        struct lrn_batch *b = l->qhead;
        l->qhead = b->next;
        lrn_batch_free(b);
    }
    while (l->oldest != NULL) {
        struct lrn_pend *p = l->oldest;
        l->oldest = p->newer;
        free(p);
    }
    free(l->buckets);
    lrn_pv_done(&l->pv);
    rank_online_free(l->ol);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int lrn_submit(struct lrn *l, struct lrn_batch *b)
{
    pthread_mutex_lock(&l->mu);
    if (l->queued + b->count > LRN_QUEUE_MAX) {
        l->dropped += b->count;
        pthread_mutex_unlock(&l->mu);
        lrn_batch_free(b);
        return ADS_EOVERLOADED;
    }
    /* No wake-up: the learner takes the queue every LRN_TICK_MS, which
     * keeps this path to one uncontended lock. */
    b->next = NULL;
    if (l->qtail != NULL)
        l->qtail->next = b;
    else
        l->qhead = b;
    l->qtail = b;
    l->queued += b->count;
    pthread_mutex_unlock(&l->mu);
    return 0;
}

/* ---- pending impressions ---- */

static uint64_t lrn_hash(const char *id, size_t len)
{
    return ctr_hash(id, len, LRN_HASH_SEED);
}

static struct lrn_pend **lrn_find(struct lrn *l, const char *id, size_t len, uint64_t h)
{
    struct lrn_pend **pp = &l->buckets[h & l->mask];

    while (*pp != NULL && !((*pp)->hash == h && strncmp((*pp)->id, id, len + 1) == 0))
        pp = &(*pp)->hnext;
    return pp;
}

/* Unlinks @p p (found at *@p pp in its chain) from the table and the arrival list. */
static void lrn_unlink(struct lrn *l, struct lrn_pend **pp, struct lrn_pend *p)
{
    *pp = p->hnext;
    if (p->older != NULL)
        p->older->newer = p->newer;
    else
        l->oldest = p->newer;
    if (p->newer != NULL)
        p->newer->older = p->older;
    else
        l->newest = p->older;
    l->st.pending--;
}

static void lrn_learn(struct lrn *l, const struct ctr_value *v, uint32_t n, int label)
{
    double p;

    if (l->ol == NULL || rank_online_update(l->ol, v, n, label, &p) != 0)
        return;
    lrn_pv_add(&l->pv, p, label);
    if (label != 0)
        l->st.positives++;
    else
        l->st.negatives++;
    l->learned++;
}

/* The oldest pending impression becomes a negative example. */
static void lrn_expire_oldest(struct lrn *l)
{
    struct lrn_pend *p = l->oldest;
    struct lrn_pend **pp = lrn_find(l, p->id, strlen(p->id), p->hash);

    lrn_unlink(l, pp, p);
    lrn_learn(l, p->v, p->nvals, 0);
    free(p);
}

static void lrn_impression(struct lrn *l, const struct lrn_batch *b, const struct lrn_item *it, uint64_t now_ms)
{
    size_t len = strlen(it->id);
    uint64_t h = lrn_hash(it->id, len);
    struct lrn_pend **pp = lrn_find(l, it->id, len, h), *p;

    l->st.impressions++;
    if (*pp != NULL) {
        l->st.repeated++;
        return;
    }
    if (l->ol == NULL)
        return;
    if (l->st.pending >= l->o.pending_max) {
        lrn_expire_oldest(l);
        l->st.early_negatives++;
        pp = lrn_find(l, it->id, len, h); /* the chain may have changed */
    }
    if ((p = malloc(sizeof(*p) + it->nvals * sizeof(p->v[0]))) == NULL) {
        l->st.dropped++;
        return;
    }
    p->hnext = NULL;
    p->hash = h;
    p->at_ms = now_ms;
    p->nvals = it->nvals;
    memcpy(p->id, it->id, len + 1);
    memcpy(p->v, b->v + it->off, it->nvals * sizeof(p->v[0]));
    *pp = p;
    p->older = l->newest;
    p->newer = NULL;
    if (l->newest != NULL)
        l->newest->newer = p;
    else
        l->oldest = p;
    l->newest = p;
    l->st.pending++;
}

static void lrn_click(struct lrn *l, const struct lrn_item *it)
{
    size_t len = strlen(it->id);
    uint64_t h = lrn_hash(it->id, len);
    struct lrn_pend **pp = lrn_find(l, it->id, len, h), *p = *pp;

    l->st.clicks++;
    if (p == NULL) {
        l->st.unmatched++;
        return;
    }
    lrn_unlink(l, pp, p);
    lrn_learn(l, p->v, p->nvals, 1);
    free(p);
}

/* ---- one round ---- */

static void lrn_publish(struct lrn *l)
{
    struct rank_online_meta meta = {.trained_at = (int64_t)time(NULL)};
    struct rank_model *model = NULL;
    struct ads_diag d = {{0}, {0}};
    struct lrn_pv_summary s;
    struct rank_info in;
    int rc;

    lrn_pv_get(&l->pv, &s);
    meta.valid_rows = s.examples;
    meta.valid_positives = s.positives;
    meta.valid_logloss = s.logloss;
    meta.valid_auc = s.auc;
    meta.valid_calibration = s.calibration;
    if ((rc = rank_online_model(l->ol, &meta, &model, &d)) == 0) {
        rank_model_info(model, &in);
        snprintf(l->st.version, sizeof(l->st.version), "%s", in.version);
        if ((rc = mdl_publish(l->m, model, l->gen, &d)) != 0) {
            rank_model_close(model);
            l->st.version[0] = '\0';
        }
    }
    if (rc != 0) {
        l->st.publish_failures++;
        snprintf(l->st.last_error, sizeof(l->st.last_error), "%s", d.message[0] != '\0' ? d.message : ads_err_message(rc));
        return;
    }
    l->st.publishes++;
    l->st.published_at = meta.trained_at;
    l->learned = 0;
}

void lrn_step(struct lrn *l, uint64_t now_ms)
{
    struct lrn_batch *q;
    struct mdl_stats ms;
    uint64_t window_ms = (uint64_t)l->o.window_s * 1000;

    pthread_mutex_lock(&l->mu);
    q = l->qhead;
    l->qhead = l->qtail = NULL;
    l->queued = 0;
    pthread_mutex_unlock(&l->mu);

    /* A reload started a new generation: learn on from the reloaded weights. */
    mdl_stats(l->m, &ms);
    if (ms.generation != l->gen) {
        lrn_reset(l);
        l->st.resets++;
    }
    if (l->last_publish_ms == UINT64_MAX)
        l->last_publish_ms = now_ms;

    while (q != NULL) {
        struct lrn_batch *b = q;
        q = b->next;
        for (uint32_t i = 0; i < b->count; i++) {
            if (b->items[i].click)
                lrn_click(l, &b->items[i]);
            else
                lrn_impression(l, b, &b->items[i], now_ms);
        }
        lrn_batch_free(b);
    }
    while (l->oldest != NULL && l->oldest->at_ms + window_ms <= now_ms)
        lrn_expire_oldest(l);

    if (l->ol != NULL && l->learned > 0 && now_ms - l->last_publish_ms >= (uint64_t)l->o.publish_s * 1000) {
        lrn_publish(l);
        l->last_publish_ms = now_ms;
    }

    if (l->pv.n != l->st.pv.examples)
        lrn_pv_get(&l->pv, &l->st.pv);
    pthread_mutex_lock(&l->mu);
    l->pub = l->st;
    pthread_mutex_unlock(&l->mu);
}

void lrn_stats(struct lrn *l, struct lrn_stats *ret)
{
    pthread_mutex_lock(&l->mu);
    *ret = l->pub;
    ret->dropped += l->dropped; /* the learner's own drops (out of memory) plus the queue's */
    pthread_mutex_unlock(&l->mu);
}
