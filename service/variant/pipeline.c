#include "adsmith/vgen.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "adsmith/buf.h"
#include "adsmith/camps.h"
#include "adsmith/doc.h"
#include "adsmith/gen.h"
#include "adsmith/ledger.h"
#include "adsmith/store.h"
#include "adsmith/tok.h"
#include "adsmith/variant.h"
#include "adsmith/wq.h"

#define VGEN_KEYS 16384         /* (campaign, segment, locale) states remembered: queued, running, backing off */
#define VGEN_RESCAN_S 60        /* full scan at least this often, changed or not */
#define VGEN_BACKOFF_MAX_S 3600 /* unproductive jobs back off doubling up to this */
#define VGEN_KEY_MAX (CIDX_ID_MAX + 1 + VAR_SEGMENT_MAX + 1 + VAR_LOCALE_MAX + 1)

/* Settled tokens of one campaign since start, for /metrics. */
struct vgen_meter {
    char campaign[CIDX_ID_MAX + 1];
    uint64_t tokens[4];
};

struct vgen_job {
    char campaign[CIDX_ID_MAX + 1];
    char segment[VAR_SEGMENT_MAX + 1];
    char locale[VAR_LOCALE_MAX + 1];
    uint32_t count; /* 0: what is missing */
};

/* What the scanner and the workers know of one (campaign, segment, locale). */
struct vgen_key {
    char key[VGEN_KEY_MAX]; /* "" = never used */
    size_t len;
    bool busy;      /* queued or running */
    int64_t until;  /* not queued by the scanner before this time */
    uint32_t fails; /* consecutive unproductive jobs */
};

struct vgen {
    struct vgen_cfg cfg;
    struct store *(*get_store)(void *arg);
    void *arg;
    struct wq *wq;
    struct tok *tok;            /* NULL: tok_estimate() */
    struct ledger_zones *zones; /* thread-safe */
    struct gen_backend *backends[VGEN_MAX_ENDPOINTS + 1];
    struct vgen_endpoint endpoints[VGEN_MAX_ENDPOINTS];
    const char *names[VGEN_MAX_ENDPOINTS + 1];
    size_t nbackends;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* workers wait for jobs; the scanner for its tick */
    bool stopping;
    struct vgen_job queue[VGEN_QUEUE_MAX];
    size_t head, nqueued;
    struct vgen_key *keys; /* VGEN_KEYS, open addressing; slots are reused, never emptied */
    uint64_t seq;

    pthread_t *threads; /* workers, then the scanner */
    size_t nthreads;

    pthread_mutex_t meter_mu;
    struct vgen_meter meters[VGEN_METER_CAMPAIGNS + 1]; /* the last one: every campaign past the limit */
    size_t nmeters;

    struct {
        atomic_ulong jobs, calls, failed, refused, approved, pending, rejected, estimated;
        atomic_ulong tokens[4];
    } st;
};

static int64_t vgen_now(void)
{
    return (int64_t)time(NULL);
}

/* ---- gen_endpoints ---- */

static bool vgen_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 32 || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool vgen_env_ok(const char *s, size_t n)
{
    if (n > 64 || (n > 0 && s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

int vgen_endpoints_parse(const char *spec, struct vgen_endpoint *ret, size_t cap, size_t *ret_n,
                         struct ads_diag *ret_diag)
{
    size_t n = 0;
    const char *p = spec != NULL ? spec : "";

    while (*p != '\0') {
        size_t len = strcspn(p, ","), b, e;
        const char *item = p, *eq, *bar1, *bar2;
        struct vgen_endpoint ep;

        p += len + (p[len] == ',');
        for (b = 0; b < len && (item[b] == ' ' || item[b] == '\t'); b++)
            ;
        for (e = len; e > b && (item[e - 1] == ' ' || item[e - 1] == '\t'); e--)
            ;
        if (e == b)
            continue;
        item += b;
        len = e - b;
        memset(&ep, 0, sizeof(ep));
        eq = memchr(item, '=', len);
        bar1 = eq != NULL ? memchr(eq + 1, '|', len - (size_t)(eq + 1 - item)) : NULL;
        bar2 = bar1 != NULL ? memchr(bar1 + 1, '|', len - (size_t)(bar1 + 1 - item)) : NULL;
        if (bar2 == NULL)
            return ads_diag_set(ret_diag, ADS_EINVAL, "/gen_endpoints",
                                "gen_endpoints: entry %zu is not NAME=BASE_URL|MODEL|KEY_ENV "
                                "(e.g. deepseek=https://api.deepseek.com/v1|deepseek-chat|DEEPSEEK_API_KEY)",
                                n + 1);
        if (n == cap)
            return ads_diag_set(ret_diag, ADS_EINVAL, "/gen_endpoints", "gen_endpoints: at most %zu backends", cap);
        if (!vgen_name_ok(item, (size_t)(eq - item)) || ((size_t)(eq - item) == 7 && memcmp(item, "builtin", 7) == 0))
            return ads_diag_set(ret_diag, ADS_EINVAL, "/gen_endpoints",
                                "gen_endpoints: entry %zu: the name must be 1-32 of a-z 0-9 _ - starting with a "
                                "letter, and not \"builtin\"",
                                n + 1);
        memcpy(ep.name, item, (size_t)(eq - item));
        if ((size_t)(bar1 - eq - 1) >= sizeof(ep.base_url) ||
            !((bar1 - eq - 1 > 7 && memcmp(eq + 1, "http://", 7) == 0) ||
              (bar1 - eq - 1 > 8 && memcmp(eq + 1, "https://", 8) == 0)))
            return ads_diag_set(ret_diag, ADS_EINVAL, "/gen_endpoints",
                                "gen_endpoints: backend %s: the base URL must start with http:// or https:// "
                                "(at most 512 bytes)",
                                ep.name);
        memcpy(ep.base_url, eq + 1, (size_t)(bar1 - eq - 1));
        if (bar2 - bar1 - 1 < 1 || (size_t)(bar2 - bar1 - 1) >= sizeof(ep.model))
            return ads_diag_set(ret_diag, ADS_EINVAL, "/gen_endpoints",
                                "gen_endpoints: backend %s: the model name must be 1-128 bytes", ep.name);
        memcpy(ep.model, bar1 + 1, (size_t)(bar2 - bar1 - 1));
        if (!vgen_env_ok(bar2 + 1, len - (size_t)(bar2 + 1 - item)))
            return ads_diag_set(ret_diag, ADS_EINVAL, "/gen_endpoints",
                                "gen_endpoints: backend %s: KEY_ENV must be an environment variable name "
                                "(A-Z a-z 0-9 _), or empty for none",
                                ep.name);
        memcpy(ep.key_env, bar2 + 1, len - (size_t)(bar2 + 1 - item));
        for (size_t i = 0; i < n; i++)
            if (strcmp(ret[i].name, ep.name) == 0)
                return ads_diag_set(ret_diag, ADS_EINVAL, "/gen_endpoints", "gen_endpoints: backend %s is listed twice",
                                    ep.name);
        ret[n++] = ep;
    }
    *ret_n = n;
    return 0;
}

/* ---- keys: what is queued, running or backing off ---- */

static size_t vgen_key_make(char *out, const char *campaign, const char *segment, const char *locale)
{
    size_t a = strlen(campaign), b = strlen(segment), c = strlen(locale);

    memcpy(out, campaign, a + 1);
    memcpy(out + a + 1, segment, b + 1);
    memcpy(out + a + b + 2, locale, c);
    return a + b + 2 + c;
}

/* The state of @p key, or a free slot for it (key "" or expired), or NULL when the table is full. Under mu. */
static struct vgen_key *vgen_key_find(struct vgen *g, const char *key, size_t len, int64_t now)
{
    uint64_t h = 1469598103934665603ull;
    struct vgen_key *spare = NULL;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
    for (size_t i = 0; i < VGEN_KEYS; i++) {
        struct vgen_key *k = &g->keys[(h + i) % VGEN_KEYS];
        if (k->len == 0)
            return spare != NULL ? spare : k;
        if (k->len == len && memcmp(k->key, key, len) == 0)
            return k;
        /* A group neither queued nor backing off holds nothing worth keeping: its slot serves another. */
        if (spare == NULL && !k->busy && k->until <= now)
            spare = k;
    }
    return spare;
}

/*
 * Queues a job unless its key is busy or backing off (@p forced skips the
 * backoff: an explicit request). Under mu. 0 queued, 1 not needed, or
 * ADS_EOVERLOADED.
 */
static int vgen_enqueue(struct vgen *g, const struct vgen_job *j, bool forced, int64_t now)
{
    char key[VGEN_KEY_MAX];
    size_t len = vgen_key_make(key, j->campaign, j->segment, j->locale);
    struct vgen_key *k = vgen_key_find(g, key, len, now);

    if (k == NULL || g->nqueued == VGEN_QUEUE_MAX)
        return ADS_EOVERLOADED;
    if (k->len == len && memcmp(k->key, key, len) == 0) {
        if (k->busy || (!forced && k->until > now))
            return 1;
    } else {
        memcpy(k->key, key, len);
        k->len = len;
        k->fails = 0;
    }
    k->busy = true;
    g->queue[(g->head + g->nqueued) % VGEN_QUEUE_MAX] = *j;
    g->nqueued++;
    pthread_cond_broadcast(&g->wake);
    return 0;
}

/* A job ended: productive (it stored what was asked) or not; @p until overrides the backoff (hard limit). */
static void vgen_key_done(struct vgen *g, const struct vgen_job *j, bool productive, int64_t until)
{
    char key[VGEN_KEY_MAX];
    size_t len = vgen_key_make(key, j->campaign, j->segment, j->locale);
    int64_t now = vgen_now();
    struct vgen_key *k;

    pthread_mutex_lock(&g->mu);
    k = vgen_key_find(g, key, len, now);
    if (k != NULL && k->len == len && memcmp(k->key, key, len) == 0) {
        k->busy = false;
        if (productive) {
            k->fails = 0;
            k->until = now;
        } else {
            int64_t d = VGEN_BACKOFF_S;
            for (uint32_t i = 0; i < k->fails && d < VGEN_BACKOFF_MAX_S; i++)
                d *= 2;
            k->fails++;
            k->until = now + (d < VGEN_BACKOFF_MAX_S ? d : VGEN_BACKOFF_MAX_S);
        }
        if (until > k->until)
            k->until = until;
    }
    pthread_mutex_unlock(&g->mu);
}

/* ---- reading a campaign ---- */

struct vgen_camp {
    void *raw; /* a copy of the stored document: the unpacked objects point into it */
    msgpack_zone zone;
    msgpack_object doc;
    struct gen_brief brief;
    struct ledger_pkg pkg;
    bool manual;
    uint32_t nsegments;
    char segments[VGEN_MAX_SEGMENTS + 1][VAR_SEGMENT_MAX + 1];
};

static void vgen_camp_done(struct vgen_camp *c)
{
    msgpack_zone_destroy(&c->zone);
    free(c->raw);
}

/* Reads @p id's brief and package (not its live counts). 0, ADS_ENOT_FOUND, ADS_EINVAL (no brief) or an error. */
static int vgen_camp_read(struct vgen *g, MDB_txn *txn, struct store *s, const char *id, struct vgen_camp *ret,
                          struct ads_diag *diag)
{
    struct camps_rec rec;
    const msgpack_object *gen, *appr, *tg, *seg, *inc;
    size_t off = 0;
    int rc;

    if ((rc = camps_get(txn, s, id, &rec)) != 0)
        return ads_diag_set(diag, rc, NULL, "campaign %s: %s", id, ads_err_message(rc));
    if ((ret->raw = malloc(rec.doc_len)) == NULL)
        return ADS_ENOMEM;
    memcpy(ret->raw, rec.doc, rec.doc_len);
    msgpack_zone_init(&ret->zone, 4096);
    if (msgpack_unpack(ret->raw, rec.doc_len, &off, &ret->zone, &ret->doc) != MSGPACK_UNPACK_SUCCESS ||
        ret->doc.type != MSGPACK_OBJECT_MAP) {
        rc = ads_diag_set(diag, ADS_EDATA_INVALID, NULL, "campaign %s: the stored document is unreadable", id);
        goto fail;
    }
    if ((rc = gen_brief_from_doc(&ret->doc, &ret->brief, diag)) != 0) {
        if (rc == ADS_ENOT_FOUND)
            rc = ads_diag_set(diag, ADS_EINVAL, "/generation",
                              "campaign %s has no generation brief: add \"generation\" (and \"token_package\") to "
                              "have variants written",
                              id);
        goto fail;
    }
    rc = ledger_pkg_from_doc(&ret->doc, g->zones, &ret->pkg);
    if (rc != 0) {
        rc = ads_diag_set(diag, rc == ADS_ENOT_FOUND ? ADS_EINVAL : rc, "/token_package",
                          "campaign %s: its token package cannot be read (%s)", id, ads_err_message(rc));
        goto fail;
    }
    gen = doc_map_get(&ret->doc, "generation");
    appr = gen != NULL ? doc_map_get(gen, "approval") : NULL;
    ret->manual = appr != NULL && appr->type == MSGPACK_OBJECT_STR && appr->via.str.size == 6 &&
                  memcmp(appr->via.str.ptr, "manual", 6) == 0;
    ret->nsegments = 1;
    ret->segments[0][0] = '\0';
    tg = doc_map_get(&ret->doc, "targeting");
    seg = tg != NULL ? doc_map_get(tg, "segments") : NULL;
    inc = seg != NULL ? doc_map_get(seg, "include") : NULL;
    if (inc != NULL && inc->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < inc->via.array.size && ret->nsegments <= VGEN_MAX_SEGMENTS; i++) {
            const msgpack_object *o = &inc->via.array.ptr[i];
            if (o->type == MSGPACK_OBJECT_STR && o->via.str.size > 0 && o->via.str.size <= VAR_SEGMENT_MAX) {
                memcpy(ret->segments[ret->nsegments], o->via.str.ptr, o->via.str.size);
                ret->segments[ret->nsegments++][o->via.str.size] = '\0';
            }
        }
    }
    return 0;
fail:
    vgen_camp_done(ret);
    return rc;
}

/* Live (approved or pending) variants of one group. */
static int vgen_live(MDB_txn *txn, struct store *s, const char *campaign, const char *segment, const char *locale,
                     uint32_t *ret_n)
{
    uint32_t a, p;
    int rc;

    if ((rc = var_count(txn, s, campaign, segment, locale, VAR_APPROVED, &a)) != 0 ||
        (rc = var_count(txn, s, campaign, segment, locale, VAR_PENDING, &p)) != 0)
        return rc;
    *ret_n = a + p;
    return 0;
}

/* ---- write transactions, through the write queue ---- */

struct vgen_reserve_job {
    struct wq_job wq;
    const char *campaign, *request_id, *model;
    const struct ledger_pkg *pkg;
    uint32_t attempt, ttl_s;
    uint64_t tokens;
    int64_t now;
    struct ledger_reservation res;
};

static int vgen_reserve_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct vgen_reserve_job *j = (struct vgen_reserve_job *)wj;

    /* A refusal returns 0 so that its count commits. */
    return ledger_reserve(txn, s, j->campaign, j->pkg, j->request_id, j->attempt, j->tokens, j->model, j->now, j->ttl_s,
                          &j->res);
}

struct vgen_settle_job {
    struct wq_job wq;
    const struct vgen_camp *camp;
    const struct vgen_job *job;
    const char *request_id, *backend, *model;
    uint32_t attempt;
    struct ledger_use use;
    int64_t now;
    const struct gen_text *texts; /* NULL: the call failed, settle only */
    size_t ntexts;
    struct ledger_settlement set;
    uint32_t stored[VAR_NSTATES]; /* variants written, by state */
};

static void vgen_cut(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap) { /* cut on a character boundary */
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int vgen_settle_apply(struct wq_job *wj, MDB_txn *txn, struct store *s)
{
    struct vgen_settle_job *j = (struct vgen_settle_job *)wj;
    int rc;

    memset(j->stored, 0, sizeof(j->stored));
    if ((rc = ledger_settle(txn, s, j->job->campaign, &j->camp->pkg, j->request_id, j->attempt, &j->use, j->model,
                            j->now, &j->set)) != 0)
        return rc;
    if (j->texts == NULL || j->set.duplicate)
        return 0;
    for (size_t i = 0; i < j->ntexts; i++) {
        const struct gen_text *t = &j->texts[i];
        struct gen_verdict v;
        struct var_rec rec;

        memset(&rec, 0, sizeof(rec));
        vgen_cut(rec.campaign, sizeof(rec.campaign), j->job->campaign);
        vgen_cut(rec.locale, sizeof(rec.locale), j->job->locale);
        vgen_cut(rec.segment, sizeof(rec.segment), j->job->segment);
        if (gen_check(&j->camp->brief, t, &v) != 0)
            v.reason = GEN_INVALID_UTF8;
        if (v.reason == GEN_OK &&
            (strlen(t->title) >= sizeof(rec.title) || strlen(t->description) >= sizeof(rec.description) ||
             strlen(t->cta) >= sizeof(rec.cta))) {
            v.reason = GEN_TOO_LONG;
            v.field = "title";
        }
        rec.state = v.reason != GEN_OK ? VAR_REJECTED : j->camp->manual ? VAR_PENDING : VAR_APPROVED;
        if (v.reason != GEN_OK) {
            /* The text of a rejected variant is kept for the marketer to read,
             * except what the checks refused to store: a forbidden term never
             * reaches storage, so its text is replaced by the verdict. */
            if (v.reason == GEN_FORBIDDEN_TERM || v.reason == GEN_INVALID_UTF8 || v.reason == GEN_CONTROL_CHAR ||
                v.reason == GEN_TOO_LONG) {
                snprintf(rec.title, sizeof(rec.title), "(withheld: %s in %s)", gen_reason_name(v.reason),
                         v.field != NULL && v.field[0] != '\0' ? v.field : "text");
            } else {
                vgen_cut(rec.title, sizeof(rec.title), t->title[0] != '\0' ? t->title : "(empty)");
                vgen_cut(rec.description, sizeof(rec.description), t->description);
                vgen_cut(rec.cta, sizeof(rec.cta), t->cta);
            }
            snprintf(rec.reasons[0], sizeof(rec.reasons[0]), "%s", gen_reason_name(v.reason));
            rec.nreasons = 1;
            if (v.field != NULL && v.field[0] != '\0' && rec.nreasons < VAR_MAX_REASONS)
                snprintf(rec.reasons[rec.nreasons++], sizeof(rec.reasons[0]), "field:%s", v.field);
        } else {
            vgen_cut(rec.title, sizeof(rec.title), t->title);
            vgen_cut(rec.description, sizeof(rec.description), t->description);
            vgen_cut(rec.cta, sizeof(rec.cta), t->cta);
        }
        vgen_cut(rec.ai_label, sizeof(rec.ai_label), j->camp->brief.ai_label);
        vgen_cut(rec.prov.backend, sizeof(rec.prov.backend), j->backend);
        vgen_cut(rec.prov.model, sizeof(rec.prov.model), j->model);
        snprintf(rec.prov.prompt_version, sizeof(rec.prov.prompt_version), "%d", GEN_PROMPT_VERSION);
        snprintf(rec.prov.request_id, sizeof(rec.prov.request_id), "%s/%u", j->request_id, j->attempt);
        rec.prov.prompt_tokens = j->use.prompt; /* as the provider counts: cached and reasoning included */
        rec.prov.completion_tokens = j->use.completion;
        rec.prov.created_at = (uint64_t)j->now;
        rec.updated_at = (uint64_t)j->now;
        rc = var_put(txn, s, &rec, NULL);
        /* A variant that cannot be stored (the same text again, a full group)
         * is dropped; the tokens stay charged. */
        if (rc == ADS_ECONFLICT || rc == ADS_EQUOTA_EXCEEDED || rc == ADS_EINVAL)
            continue;
        if (rc != 0)
            return rc;
        j->stored[rec.state]++;
    }
    return 0;
}

/* ---- metering for /metrics ---- */

static void vgen_meter(struct vgen *g, const char *campaign, const struct ledger_use *u)
{
    /* By kind as the ledger keeps them: uncached prompt, cached prompt, visible completion, reasoning. */
    uint64_t cached = u->cached < u->prompt ? u->cached : u->prompt;
    uint64_t reasoning = u->reasoning < u->completion ? u->reasoning : u->completion;
    const uint64_t by_kind[4] = {u->prompt - cached, cached, u->completion - reasoning, reasoning};
    struct vgen_meter *m = NULL;

    pthread_mutex_lock(&g->meter_mu);
    for (size_t i = 0; i < g->nmeters && m == NULL; i++)
        if (strcmp(g->meters[i].campaign, campaign) == 0)
            m = &g->meters[i];
    if (m == NULL && g->nmeters < VGEN_METER_CAMPAIGNS) {
        m = &g->meters[g->nmeters++];
        vgen_cut(m->campaign, sizeof(m->campaign), campaign);
    }
    if (m == NULL)
        m = &g->meters[VGEN_METER_CAMPAIGNS];
    for (int k = 0; k < 4; k++) {
        m->tokens[k] += by_kind[k];
        atomic_fetch_add(&g->st.tokens[k], by_kind[k]);
    }
    pthread_mutex_unlock(&g->meter_mu);
}

void vgen_each_meter(struct vgen *g, void (*cb)(void *arg, const char *campaign, const uint64_t tokens[4]), void *arg)
{
    pthread_mutex_lock(&g->meter_mu);
    for (size_t i = 0; i < g->nmeters; i++)
        cb(arg, g->meters[i].campaign, g->meters[i].tokens);
    if (g->nmeters == VGEN_METER_CAMPAIGNS)
        cb(arg, "_other", g->meters[VGEN_METER_CAMPAIGNS].tokens);
    pthread_mutex_unlock(&g->meter_mu);
}

/* ---- one job ---- */

static size_t vgen_count_cb(void *ctx, const char *s, size_t n)
{
    return tok_count(ctx, s, n);
}

static struct gen_backend *vgen_backend(struct vgen *g, const char *name, const char **ret_model)
{
    for (size_t i = 0; i < g->nbackends; i++) {
        if (strcmp(g->names[i], name) == 0) {
            *ret_model = i == 0 ? "builtin" : g->endpoints[i - 1].model;
            return g->backends[i];
        }
    }
    return NULL;
}

/* Sleeps @p ms unless the pipeline stops first. */
static bool vgen_sleep(struct vgen *g, uint32_t ms)
{
    struct timespec until;
    bool stop;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->mu);
    while (!g->stopping && pthread_cond_timedwait(&g->wake, &g->mu, &until) != ETIMEDOUT)
        ;
    stop = g->stopping;
    pthread_mutex_unlock(&g->mu);
    return !stop;
}

static void vgen_run_job(struct vgen *g, const struct vgen_job *job)
{
    struct store *s = g->get_store(g->arg);
    struct vgen_camp *camp = calloc(1, sizeof(*camp));
    struct gen_text *texts = calloc(GEN_MAX_VARIANTS, sizeof(*texts));
    char *prompt = malloc(GEN_PROMPT_CAP);
    struct gen_backend *be;
    struct gen_ask ask;
    struct buf pb;
    const char *model = "";
    char rid[40];
    unsigned char rnd[8];
    uint32_t live = 0, want;
    uint64_t prompt_tokens, stored = 0;
    int64_t until = 0;
    MDB_txn *txn;
    int rc;

    if (s == NULL || camp == NULL || texts == NULL || prompt == NULL)
        goto out;
    if (store_read_begin(s, &txn) != 0)
        goto out;
    rc = vgen_camp_read(g, txn, s, job->campaign, camp, NULL);
    if (rc == 0 && (rc = vgen_live(txn, s, job->campaign, job->segment, job->locale, &live)) != 0)
        vgen_camp_done(camp);
    store_read_end(txn);
    if (rc != 0)
        goto out;
    want = job->count != 0 ? job->count : camp->brief.variants > live ? camp->brief.variants - live : 0;
    if (want > VAR_MAX_PER_GROUP - (live < VAR_MAX_PER_GROUP ? live : VAR_MAX_PER_GROUP))
        want = VAR_MAX_PER_GROUP - (live < VAR_MAX_PER_GROUP ? live : VAR_MAX_PER_GROUP);
    if (want == 0) {
        stored = 1; /* nothing to do is not a failure */
        goto done;
    }
    if ((be = vgen_backend(g, camp->brief.backend, &model)) == NULL)
        goto done; /* validation admits only configured backends; a config change can still remove one */

    memset(&ask, 0, sizeof(ask));
    vgen_cut(ask.locale, sizeof(ask.locale), job->locale);
    vgen_cut(ask.segment, sizeof(ask.segment), job->segment);
    ask.count = want;
    ask.max_output_tokens = g->cfg.max_output_tokens;
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        goto done;
    memcpy(&ask.seed, rnd, sizeof(ask.seed));
    snprintf(rid, sizeof(rid), "vg-%016llx", (unsigned long long)ask.seed);
    buf_init(&pb, prompt, GEN_PROMPT_CAP);
    if (gen_prompt(&camp->brief, &ask, &pb) != 0 || pb.overflow)
        goto done;
    prompt_tokens = tok_count(g->tok, pb.base, pb.len) + VGEN_MSG_OVERHEAD;

    for (uint32_t attempt = 0; attempt <= g->cfg.retries; attempt++) {
        struct vgen_reserve_job rj = {.campaign = job->campaign,
                                      .request_id = rid,
                                      .model = model,
                                      .pkg = &camp->pkg,
                                      .attempt = attempt,
                                      .ttl_s = g->cfg.reservation_ttl_s,
                                      .tokens = prompt_tokens + g->cfg.max_output_tokens,
                                      .now = vgen_now()};
        struct vgen_settle_job sj;
        struct gen_usage u;
        size_t n = 0;

        rj.wq.apply = vgen_reserve_apply;
        if (wq_run(g->wq, &rj.wq) != 0)
            break;
        if (rj.res.refused) {
            atomic_fetch_add(&g->st.refused, 1);
            until = rj.res.period_end; /* nothing more fits before the next period */
            break;
        }
        memset(&u, 0, sizeof(u));
        atomic_fetch_add(&g->st.calls, 1);
        rc = gen_run(be, &camp->brief, &ask, vgen_count_cb, g->tok, texts, GEN_MAX_VARIANTS, &n, &u, NULL);
        memset(&sj, 0, sizeof(sj));
        sj.wq.apply = vgen_settle_apply;
        sj.camp = camp;
        sj.job = job;
        sj.request_id = rid;
        sj.backend = camp->brief.backend;
        sj.model = model;
        sj.attempt = attempt;
        /* The provider's figures as reported: the ledger splits cached from prompt and reasoning from completion. */
        sj.use.prompt = u.prompt;
        sj.use.cached = u.cached;
        sj.use.completion = u.completion;
        sj.use.reasoning = u.reasoning;
        sj.use.estimated = u.estimated;
        sj.now = vgen_now();
        sj.texts = rc == 0 ? texts : NULL;
        sj.ntexts = rc == 0 ? n : 0;
        if (wq_run(g->wq, &sj.wq) != 0)
            break; /* the reservation expires and returns its tokens */
        if (!sj.set.duplicate)
            vgen_meter(g, job->campaign, &sj.use);
        if (u.estimated)
            atomic_fetch_add(&g->st.estimated, 1);
        atomic_fetch_add(&g->st.approved, sj.stored[VAR_APPROVED]);
        atomic_fetch_add(&g->st.pending, sj.stored[VAR_PENDING]);
        atomic_fetch_add(&g->st.rejected, sj.stored[VAR_REJECTED]);
        stored = sj.stored[VAR_APPROVED] + sj.stored[VAR_PENDING];
        if (rc == 0 || rc == ADS_EUPSTREAM_UNAVAILABLE || rc == ADS_EINVAL || rc == ADS_ENOMEM)
            break;
        if (attempt < g->cfg.retries && !vgen_sleep(g, 200u << (attempt < 6 ? attempt : 6)))
            break;
    }
done:
    vgen_camp_done(camp);
out:
    atomic_fetch_add(&g->st.jobs, 1);
    if (stored == 0)
        atomic_fetch_add(&g->st.failed, 1);
    vgen_key_done(g, job, stored > 0, until);
    free(prompt);
    free(texts);
    free(camp);
}

static void *vgen_worker(void *arg)
{
    struct vgen *g = arg;

    for (;;) {
        struct vgen_job job;

        pthread_mutex_lock(&g->mu);
        while (!g->stopping && g->nqueued == 0)
            pthread_cond_wait(&g->wake, &g->mu);
        if (g->stopping) {
            pthread_mutex_unlock(&g->mu);
            return NULL;
        }
        job = g->queue[g->head];
        g->head = (g->head + 1) % VGEN_QUEUE_MAX;
        g->nqueued--;
        pthread_mutex_unlock(&g->mu);
        vgen_run_job(g, &job);
    }
}

/* ---- the scanner ---- */

/* Queues every group of @p id that has fewer live variants than its brief asks for. */
static void vgen_scan_campaign(struct vgen *g, MDB_txn *txn, struct store *s, const char *id, int64_t now)
{
    struct vgen_camp *camp = calloc(1, sizeof(*camp));

    if (camp == NULL)
        return;
    if (vgen_camp_read(g, txn, s, id, camp, NULL) == 0) {
        for (uint32_t si = 0; si < camp->nsegments; si++) {
            for (uint32_t li = 0; li < camp->brief.n_locales; li++) {
                struct vgen_job j = {.count = 0};
                uint32_t live;
                if (vgen_live(txn, s, id, camp->segments[si], camp->brief.locales[li], &live) != 0 ||
                    live >= camp->brief.variants)
                    continue;
                vgen_cut(j.campaign, sizeof(j.campaign), id);
                vgen_cut(j.segment, sizeof(j.segment), camp->segments[si]);
                vgen_cut(j.locale, sizeof(j.locale), camp->brief.locales[li]);
                pthread_mutex_lock(&g->mu);
                vgen_enqueue(g, &j, false, now);
                pthread_mutex_unlock(&g->mu);
            }
        }
        vgen_camp_done(camp);
    }
    free(camp);
}

static void vgen_scan(struct vgen *g, struct store *s)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int64_t now = vgen_now();
    int op = MDB_FIRST;

    if (store_read_begin(s, &txn) != 0)
        return;
    if (mdb_cursor_open(txn, store_dbi(s, STORE_DB_CAMPAIGNS), &cur) == 0) {
        while (mdb_cursor_get(cur, &k, &v, op) == 0) {
            struct camps_rec rec;
            char id[CIDX_ID_MAX + 1];
            op = MDB_NEXT;
            if (k.mv_size == 0 || k.mv_size > CIDX_ID_MAX || camps_decode(&v, &rec) != 0 ||
                strcmp(rec.status, "active") != 0)
                continue;
            memcpy(id, k.mv_data, k.mv_size);
            id[k.mv_size] = '\0';
            vgen_scan_campaign(g, txn, s, id, now);
        }
        mdb_cursor_close(cur);
    }
    store_read_end(txn);
}

static void *vgen_scanner(void *arg)
{
    struct vgen *g = arg;
    uint64_t last_camp = UINT64_MAX, last_var = UINT64_MAX;
    int64_t last_full = 0;

    while (vgen_sleep(g, g->cfg.scan_ms != 0 ? g->cfg.scan_ms : 1000)) {
        struct store *s = g->get_store(g->arg);
        uint64_t crev = 0, vrev = 0;
        MDB_txn *txn;

        if (s == NULL || store_read_begin(s, &txn) != 0)
            continue;
        camps_revision(txn, s, &crev);
        var_revision(txn, s, &vrev);
        store_read_end(txn);
        if (crev == last_camp && vrev == last_var && vgen_now() - last_full < VGEN_RESCAN_S)
            continue;
        last_camp = crev;
        last_var = vrev;
        last_full = vgen_now();
        vgen_scan(g, s);
    }
    return NULL;
}

/* ---- life cycle ---- */

int vgen_new(const struct vgen_cfg *cfg, struct store *(*get_store)(void *arg), void *arg, struct wq *q,
             struct vgen **ret, struct ads_diag *ret_diag)
{
    struct vgen *g = calloc(1, sizeof(*g));
    size_t nep = 0;
    int rc;

    if (g == NULL || (g->keys = calloc(VGEN_KEYS, sizeof(*g->keys))) == NULL) {
        free(g);
        return ADS_ENOMEM;
    }
    g->cfg = *cfg;
    if (g->cfg.workers == 0)
        g->cfg.workers = 1;
    g->get_store = get_store;
    g->arg = arg;
    g->wq = q;
    pthread_mutex_init(&g->mu, NULL);
    pthread_mutex_init(&g->meter_mu, NULL);
    pthread_cond_init(&g->wake, NULL);
    /* A reservation must outlive its call, or the hard limit could be overrun by a call still spending it. */
    if ((uint64_t)cfg->reservation_ttl_s * 1000 <= (uint64_t)cfg->timeout_ms + 1000) {
        rc = ads_diag_set(ret_diag, ADS_ECONFIG, "/token_reservation_ttl_s",
                          "token_reservation_ttl_s (%u s) must be longer than gen_timeout_ms (%u ms) plus a second: "
                          "a reservation must outlive the call it pays for",
                          cfg->reservation_ttl_s, cfg->timeout_ms);
        goto fail;
    }
    if ((rc = vgen_endpoints_parse(cfg->endpoints, g->endpoints, VGEN_MAX_ENDPOINTS, &nep, ret_diag)) != 0) {
        rc = ADS_ECONFIG;
        goto fail;
    }
    if (cfg->tokenizer != NULL && cfg->tokenizer[0] != '\0' &&
        (rc = tok_load(cfg->tokenizer, &g->tok, ret_diag)) != 0) {
        rc = rc == ADS_ENOMEM ? rc : ADS_ECONFIG;
        goto fail;
    }
    if ((rc = ledger_zones_new(&g->zones)) != 0 || (rc = gen_builtin_new("builtin", &g->backends[0])) != 0)
        goto fail;
    g->names[0] = "builtin";
    g->nbackends = 1;
    for (size_t i = 0; i < nep; i++) {
        const char *key = g->endpoints[i].key_env[0] != '\0' ? getenv(g->endpoints[i].key_env) : NULL;
        struct gen_openai_cfg oc = {.name = g->endpoints[i].name,
                                    .base_url = g->endpoints[i].base_url,
                                    .model = g->endpoints[i].model,
                                    .api_key = key,
                                    .timeout_ms = cfg->timeout_ms,
                                    .retries = 0, /* retried here, each attempt reserved on its own */
                                    .breaker_failures = 5,
                                    .breaker_cooldown_ms = 30000,
                                    .stream = cfg->stream,
                                    .json_mode = true,
                                    .temperature = 0.8};
        if ((rc = gen_openai_new(&oc, &g->backends[g->nbackends])) != 0)
            goto fail;
        g->names[g->nbackends++] = g->endpoints[i].name;
    }
    g->names[g->nbackends] = NULL;
    if ((g->threads = calloc(g->cfg.workers + 1, sizeof(*g->threads))) == NULL) {
        rc = ADS_ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i <= g->cfg.workers; i++) {
        if ((rc = pthread_create(&g->threads[i], NULL, i < g->cfg.workers ? vgen_worker : vgen_scanner, g)) != 0) {
            rc = -rc;
            goto fail;
        }
        g->nthreads++;
    }
    *ret = g;
    return 0;
fail:
    vgen_free(g);
    return rc;
}

void vgen_free(struct vgen *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_cond_broadcast(&g->wake);
    pthread_mutex_unlock(&g->mu);
    for (size_t i = 0; i < g->nthreads; i++)
        pthread_join(g->threads[i], NULL);
    free(g->threads);
    for (size_t i = 0; i < g->nbackends; i++)
        gen_backend_free(g->backends[i]);
    ledger_zones_free(g->zones);
    tok_free(g->tok);
    free(g->keys);
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->meter_mu);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

int vgen_request(struct vgen *g, const char *campaign, const char *locale, const char *segment, uint32_t count,
                 uint32_t *ret_jobs, struct ads_diag *ret_diag)
{
    struct store *s = g->get_store(g->arg);
    struct vgen_camp *camp;
    uint32_t queued = 0;
    bool found_locale = locale == NULL, found_segment = segment == NULL;
    int64_t now = vgen_now();
    MDB_txn *txn;
    int rc = 0;

    if (s == NULL)
        return ADS_ENOT_READY;
    if (count > GEN_MAX_VARIANTS)
        return ads_diag_set(ret_diag, ADS_EINVAL, "/count", "count must be 1-%d", GEN_MAX_VARIANTS);
    if ((camp = calloc(1, sizeof(*camp))) == NULL)
        return ADS_ENOMEM;
    if ((rc = store_read_begin(s, &txn)) != 0) {
        free(camp);
        return rc;
    }
    rc = vgen_camp_read(g, txn, s, campaign, camp, ret_diag);
    if (rc == 0 && camp->pkg.hard) {
        /* Said now rather than as a refusal later: under a hard limit a package
         * that cannot hold even an empty prompt's reservation refuses every job. */
        struct ledger_usage u;
        uint64_t least = (uint64_t)g->cfg.max_output_tokens + VGEN_MSG_OVERHEAD;
        if ((rc = ledger_usage(txn, s, campaign, &camp->pkg, now, &u)) == 0 && u.remaining < least)
            rc = ads_diag_set(ret_diag, ADS_ETOKEN_LIMIT, "/token_package",
                              "campaign %s has %llu tokens left in this period (until %lld) and a generation "
                              "reserves at least %llu: top the package up or wait for the next period",
                              campaign, (unsigned long long)u.remaining, (long long)u.period_end,
                              (unsigned long long)least);
        if (rc != 0)
            vgen_camp_done(camp);
    }
    store_read_end(txn);
    if (rc != 0) {
        free(camp);
        return rc;
    }
    pthread_mutex_lock(&g->mu);
    for (uint32_t si = 0; si < camp->nsegments && rc == 0; si++) {
        if (segment != NULL && strcmp(segment, camp->segments[si]) != 0)
            continue;
        found_segment = true;
        for (uint32_t li = 0; li < camp->brief.n_locales && rc == 0; li++) {
            struct vgen_job j = {.count = count};
            int q;
            if (locale != NULL && strcmp(locale, camp->brief.locales[li]) != 0)
                continue;
            found_locale = true;
            vgen_cut(j.campaign, sizeof(j.campaign), campaign);
            vgen_cut(j.segment, sizeof(j.segment), camp->segments[si]);
            vgen_cut(j.locale, sizeof(j.locale), camp->brief.locales[li]);
            if ((q = vgen_enqueue(g, &j, true, now)) == 0)
                queued++;
            else if (q < 0)
                rc = ads_diag_set(ret_diag, q, NULL, "the generation queue is full (%d jobs); retry later",
                                  VGEN_QUEUE_MAX);
        }
    }
    pthread_mutex_unlock(&g->mu);
    vgen_camp_done(camp);
    free(camp);
    if (rc == 0 && !found_locale)
        rc = ads_diag_set(ret_diag, ADS_EINVAL, "/locale", "locale %s is not among the campaign's generation.locales",
                          locale);
    if (rc == 0 && !found_segment)
        rc = ads_diag_set(ret_diag, ADS_EINVAL, "/segment",
                          "segment %s is not generated for: use \"\" (every user) or one of the first %d "
                          "targeting.segments.include",
                          segment, VGEN_MAX_SEGMENTS);
    if (rc == 0)
        *ret_jobs = queued;
    return rc;
}

const char *const *vgen_backend_names(const struct vgen *g, size_t *ret_n)
{
    *ret_n = g->nbackends;
    return g->names;
}

void vgen_stats(struct vgen *g, struct vgen_stats *ret)
{
    pthread_mutex_lock(&g->mu);
    ret->queued = g->nqueued;
    pthread_mutex_unlock(&g->mu);
    ret->jobs = atomic_load(&g->st.jobs);
    ret->calls = atomic_load(&g->st.calls);
    ret->failed = atomic_load(&g->st.failed);
    ret->refused = atomic_load(&g->st.refused);
    ret->approved = atomic_load(&g->st.approved);
    ret->pending = atomic_load(&g->st.pending);
    ret->rejected = atomic_load(&g->st.rejected);
    ret->estimated = atomic_load(&g->st.estimated);
    for (int k = 0; k < 4; k++)
        ret->tokens[k] = atomic_load(&g->st.tokens[k]);
}
