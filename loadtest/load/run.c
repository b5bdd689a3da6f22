/*
 * lrun: see run.h.
 */
#include "run.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL
#define RECONNECT_NS (100 * 1000000LL)
#define FAR_FUTURE (INT64_MAX / 4)

/* The start gate: threads connect, report ready, and wait for `go`; the
 * main thread then sets one t0 for all, so their schedules line up. */
struct shared {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned ready;
    bool go;
    int64_t t0;
    atomic_uint_fast64_t next_user, next_campaign;
    atomic_int failed;
};

struct thr {
    const struct lrun_cfg *cfg;
    struct shared *sh;
    unsigned id;
    pthread_t tid;
    int epfd, tfd;
    unsigned nconns;
    struct lconn **conns;
    int64_t *reconnect_at;
    bool *watch_out; /* EPOLLOUT is registered */
    struct lgen gen;
    struct lrng pick;
    uint64_t cum[LGEN_KINDS]; /* cumulative mix weights */
    uint64_t total_w;
    int64_t t0, t_measure, t_end, t_drain, t_stop;
    double period_ns; /* open loop: between this thread's intended sends */
    double phase_ns;  /* open loop: this thread's offset, so the threads' sends interleave evenly */
    uint64_t next_k;
    int64_t armed; /* when the timer is set to fire */
    unsigned rr;
    unsigned inflight;
    bool stopping, exhausted;
    int err;
    struct lrun_result res; /* this thread's figures */
};

static int64_t now_ns(void)
{
    return lconn_now_ns();
}

static void stats_init(struct lrun_stats *s)
{
    memset(s, 0, sizeof(*s));
    lhist_init(&s->lat);
    lhist_init(&s->lat_sent);
    lhist_init(&s->lag);
}

static void stats_merge(struct lrun_stats *d, const struct lrun_stats *s)
{
    lhist_merge(&d->lat, &s->lat);
    lhist_merge(&d->lat_sent, &s->lat_sent);
    lhist_merge(&d->lag, &s->lag);
    d->requests += s->requests;
    d->ok += s->ok;
    d->errors += s->errors;
    d->transport += s->transport;
    d->bytes_out += s->bytes_out;
    d->bytes_in += s->bytes_in;
    for (unsigned i = 0; i < 600; i++)
        d->status[i] += s->status[i];
}

static void stats_record(struct lrun_stats *st, const struct lconn_stream *s, uint64_t lat, uint64_t lat_sent,
                         int error)
{
    lhist_record(&st->lat, lat);
    lhist_record(&st->lat_sent, lat_sent);
    lhist_record(&st->lag, lat - lat_sent);
    st->requests++;
    st->bytes_out += s->req.body.len;
    st->bytes_in += s->rx;
    if (error) {
        st->transport++;
        st->errors++;
        return;
    }
    st->status[s->status]++;
    if (s->status >= 200 && s->status < 300)
        st->ok++;
    else
        st->errors++;
}

static void on_done(void *arg, struct lconn_stream *s, int64_t now, int error)
{
    struct thr *t = arg;
    t->inflight--;
    if (s->req.intended_ns < t->t_measure)
        return;
    uint64_t lat = (uint64_t)(now - s->req.intended_ns), lat_sent = (uint64_t)(now - s->sent_ns);
    stats_record(&t->res.all, s, lat, lat_sent, error);
    stats_record(&t->res.kind[s->req.kind], s, lat, lat_sent, error);
    int64_t sec = (now - t->t_measure) / NS;
    if (sec >= 0 && (uint64_t)sec < t->res.nseries) {
        struct lrun_sec *e = &t->res.series[sec];
        e->requests++;
        e->lat_sum_ns += lat;
        if (lat > e->lat_max_ns)
            e->lat_max_ns = lat;
        if (error || s->status < 200 || s->status >= 300)
            e->errors++;
    }
    bool ok = !error && s->status >= 200 && s->status < 300;
    if (!ok && !t->res.first_error[0]) {
        if (error)
            snprintf(t->res.first_error, sizeof(t->res.first_error), "%s %.200s -> %s", s->req.method, s->req.path,
                     strerror(-error));
        else
            snprintf(t->res.first_error, sizeof(t->res.first_error), "%s %.200s -> %d: %.300s", s->req.method,
                     s->req.path, s->status, s->head);
    }
}

/* ---- choosing and sending ---- */

static enum lgen_kind choose(struct thr *t, uint64_t *ret_index)
{
    if (t->cfg->seed_mode) {
        uint64_t u = atomic_fetch_add(&t->sh->next_user, 1);
        if (u < t->cfg->seed_users) {
            *ret_index = u;
            return LGEN_SEED_USER;
        }
        uint64_t c = atomic_fetch_add(&t->sh->next_campaign, 1);
        if (c < t->cfg->seed_campaigns) {
            *ret_index = c;
            return LGEN_SEED_CAMPAIGN;
        }
        return LGEN_KINDS;
    }
    uint64_t x = lrng_below(&t->pick, t->total_w);
    unsigned k = 0;
    while (t->cum[k] <= x)
        k++;
    *ret_index = 0;
    return (enum lgen_kind)k;
}

/* 1 sent, 0 no room (or nothing left to send), negative on failure. */
static int send_one(struct thr *t, struct lconn *c, int64_t intended, int64_t now)
{
    if (t->exhausted)
        return 0;
    struct lconn_stream *s = lconn_slot(c);
    if (!s)
        return 0;
    uint64_t index;
    enum lgen_kind kind = choose(t, &index);
    if (kind == LGEN_KINDS) {
        lconn_unslot(c, s);
        t->exhausted = true;
        return 0;
    }
    int rc = lgen_make(&t->gen, kind, index, (int64_t)time(NULL), &s->req);
    if (rc < 0) {
        lconn_unslot(c, s);
        return rc;
    }
    s->req.intended_ns = intended;
    rc = lconn_submit(c, s, now);
    if (rc < 0)
        return rc;
    t->inflight++;
    return 1;
}

static void conn_failed(struct thr *t, unsigned i, int error, int64_t now)
{
    struct lconn *c = t->conns[i];
    if (c->fd >= 0)
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    lconn_fail(c, error, now);
    lconn_close(c);
    t->watch_out[i] = false;
    t->reconnect_at[i] = now + RECONNECT_NS;
    t->res.conn_failures++;
}

static int conn_start(struct thr *t, unsigned i)
{
    struct lconn *c = t->conns[i];
    lconn_init(c, t->cfg->target, t->cfg->streams, on_done, t);
    int rc = lconn_open(c);
    if (rc < 0)
        return rc;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i + 1};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        rc = -errno;
        lconn_close(c);
        return rc;
    }
    t->watch_out[i] = false;
    t->reconnect_at[i] = 0;
    t->res.connects++;
    return 0;
}

static void dispatch(struct thr *t, int64_t now)
{
    if (t->stopping)
        return;
    if (t->period_ns <= 0) {
        for (unsigned i = 0; i < t->nconns; i++) {
            int rc;
            while ((rc = send_one(t, t->conns[i], now, now)) == 1)
                ;
            if (rc < 0)
                conn_failed(t, i, rc, now);
        }
        return;
    }
    for (;;) {
        int64_t due = t->t0 + (int64_t)(t->phase_ns + (double)t->next_k * t->period_ns);
        if (due > now || due >= t->t_end)
            return;
        bool sent = false;
        for (unsigned j = 0; j < t->nconns && !sent; j++) {
            unsigned i = (t->rr + j) % t->nconns;
            int rc = send_one(t, t->conns[i], due, now);
            if (rc == 1) {
                sent = true;
                t->rr = (i + 1) % t->nconns;
            } else if (rc < 0) {
                conn_failed(t, i, rc, now);
            }
        }
        if (!sent)
            return; /* every stream busy: the request waits, and its wait counts */
        t->next_k++;
    }
}

static void flush_all(struct thr *t, int64_t now)
{
    for (unsigned i = 0; i < t->nconns; i++) {
        struct lconn *c = t->conns[i];
        if (c->fd < 0)
            continue;
        int rc = lconn_flush(c);
        if (rc < 0) {
            conn_failed(t, i, rc, now);
            continue;
        }
        if (c->want_write != t->watch_out[i]) {
            struct epoll_event ev = {.events = EPOLLIN | (c->want_write ? EPOLLOUT : 0), .data.u64 = i + 1};
            epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
            t->watch_out[i] = c->want_write;
        }
    }
}

static void arm(struct thr *t, int64_t now)
{
    int64_t wake = t->stopping ? t->t_drain : t->t_end;
    if (!t->stopping && t->period_ns > 0) {
        int64_t due = t->t0 + (int64_t)(t->phase_ns + (double)t->next_k * t->period_ns);
        if (due > now && due < wake)
            wake = due;
    }
    for (unsigned i = 0; i < t->nconns; i++)
        if (t->reconnect_at[i] && t->reconnect_at[i] < wake)
            wake = t->reconnect_at[i];
    if (wake >= FAR_FUTURE)
        wake = now + 3600 * NS;
    /* Closed loop re-arms for the same end time on every pass: skip the syscall. */
    if (wake == t->armed && wake > now)
        return;
    t->armed = wake;
    struct itimerspec it = {.it_value = {.tv_sec = wake / NS, .tv_nsec = wake % NS}};
    if (it.it_value.tv_sec == 0 && it.it_value.tv_nsec == 0)
        it.it_value.tv_nsec = 1;
    timerfd_settime(t->tfd, TFD_TIMER_ABSTIME, &it, NULL);
}

static void loop(struct thr *t)
{
    struct epoll_event evs[256];
    for (;;) {
        int64_t now = now_ns();
        if (!t->stopping && now >= t->t_end) {
            t->stopping = true;
            t->t_stop = now;
            t->t_drain = now + (int64_t)(t->cfg->drain_s * NS);
            if (t->period_ns > 0) {
                uint64_t due_before_end =
                    (uint64_t)ceil(((double)(t->t_end - t->t0) - t->phase_ns) / t->period_ns);
                t->res.backlog = due_before_end > t->next_k ? due_before_end - t->next_k : 0;
            }
        }
        if (!t->stopping)
            for (unsigned i = 0; i < t->nconns; i++)
                if (t->reconnect_at[i] && t->reconnect_at[i] <= now && conn_start(t, i) < 0) {
                    t->reconnect_at[i] = now + RECONNECT_NS;
                    t->res.conn_failures++;
                }
        dispatch(t, now);
        flush_all(t, now);
        if (t->exhausted && t->inflight == 0) {
            t->t_stop = now_ns();
            return;
        }
        if (t->stopping && (t->inflight == 0 || now >= t->t_drain))
            break;
        arm(t, now);
        int n = epoll_wait(t->epfd, evs, 256, -1);
        if (n < 0)
            continue;
        now = now_ns();
        for (int e = 0; e < n; e++) {
            if (evs[e].data.u64 == 0) {
                uint64_t x;
                (void)!read(t->tfd, &x, sizeof(x));
                continue;
            }
            unsigned i = (unsigned)(evs[e].data.u64 - 1);
            struct lconn *c = t->conns[i];
            if (c->fd < 0 || c->dead)
                continue;
            int rc = 0;
            if (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                rc = lconn_read(c);
            if (rc == 0 && (evs[e].events & EPOLLOUT))
                rc = lconn_flush(c);
            if (rc < 0)
                conn_failed(t, i, rc, now);
        }
    }
    t->res.unfinished = t->inflight;
}

static void *thr_main(void *arg)
{
    struct thr *t = arg;
    if (t->cfg->ncpus) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(t->cfg->cpus[t->id % t->cfg->ncpus], &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
            t->err = -EINVAL;
    }
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (t->epfd < 0 || t->tfd < 0) {
        t->err = -errno;
    } else {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
        epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->tfd, &ev);
    }
    for (unsigned i = 0; i < t->nconns && t->err == 0; i++) {
        int rc = conn_start(t, i);
        if (rc < 0)
            t->err = rc;
    }
    if (t->err)
        atomic_store(&t->sh->failed, 1);
    pthread_mutex_lock(&t->sh->lock);
    t->sh->ready++;
    pthread_cond_broadcast(&t->sh->cond);
    while (!t->sh->go)
        pthread_cond_wait(&t->sh->cond, &t->sh->lock);
    pthread_mutex_unlock(&t->sh->lock);
    if (atomic_load(&t->sh->failed))
        return NULL;
    const struct lrun_cfg *cfg = t->cfg;
    t->t0 = t->sh->t0;
    /* Start together at t0: a request sent before it would fall outside every window. */
    struct timespec at = {.tv_sec = t->t0 / NS, .tv_nsec = t->t0 % NS};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
        ;
    t->t_measure = t->t0 + (int64_t)(cfg->warmup_s * NS);
    t->t_end = cfg->duration_s > 0 ? t->t_measure + (int64_t)(cfg->duration_s * NS) : FAR_FUTURE;
    t->t_drain = FAR_FUTURE;
    t->t_stop = t->t_end;
    if (cfg->rate > 0) {
        /* Thread i sends at t0 + (i + k * threads) / rate: together one request every 1/rate, not bursts. */
        t->period_ns = (double)NS * cfg->threads / cfg->rate;
        t->phase_ns = t->period_ns * t->id / cfg->threads;
    }
    loop(t);
    return NULL;
}

/* ---- the probe: one request of each kind before the run ---- */

struct probe {
    bool done;
    int error;
    int status;
    char head[LCONN_HEAD_MAX + 1];
};

static void probe_done(void *arg, struct lconn_stream *s, int64_t now, int error)
{
    (void)now;
    struct probe *p = arg;
    p->done = true;
    p->error = error;
    p->status = s->status;
    snprintf(p->head, sizeof(p->head), "%s", s->head);
}

static int probe_one(const struct lrun_cfg *cfg, struct lconn *c, struct lgen *g, enum lgen_kind kind,
                     struct lrun_result *r)
{
    struct probe p = {0};
    lconn_init(c, cfg->target, 1, probe_done, &p);
    int rc = lconn_open(c);
    if (rc < 0) {
        snprintf(r->why, sizeof(r->why), "cannot connect to %s%s: %s", cfg->target->authority,
                 cfg->target->tls ? " (TLS with ALPN h2)" : " (h2c)", strerror(-rc));
        return rc;
    }
    struct lconn_stream *s = lconn_slot(c);
    rc = lgen_make(g, kind, 0, (int64_t)time(NULL), &s->req);
    if (rc == 0)
        rc = lconn_submit(c, s, now_ns());
    int64_t deadline = now_ns() + 10 * NS;
    while (rc == 0 && !p.done) {
        rc = lconn_flush(c);
        if (rc < 0 || p.done)
            break;
        struct pollfd pfd = {.fd = c->fd, .events = (short)(POLLIN | (c->want_write ? POLLOUT : 0))};
        int64_t left = (deadline - now_ns()) / 1000000;
        if (left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        if (poll(&pfd, 1, (int)left) > 0)
            rc = lconn_read(c);
    }
    if (!p.done)
        lconn_fail(c, rc ? rc : -ECONNRESET, now_ns());
    lconn_close(c);
    const char *name = lgen_kind_name(kind);
    if (rc < 0 || p.error) {
        snprintf(r->why, sizeof(r->why), "the first %s request (%s %s) failed: %s", name, s->req.method, s->req.path,
                 strerror(-(rc < 0 ? rc : p.error)));
        return rc < 0 ? rc : p.error;
    }
    if (p.status >= 200 && p.status < 300)
        return 0;
    if (p.status == 404 && (kind == LGEN_BID || kind == LGEN_SCORE)) {
        snprintf(r->why, sizeof(r->why),
                 "this server does not serve %s %s yet (404 on the first %s request): drop %s from --mix until it does",
                 s->req.method, s->req.path, name, name);
        return -ENOTSUP;
    }
    if (p.status == 401 || p.status == 403) {
        snprintf(r->why, sizeof(r->why),
                 "the server refused the API key for %s %s (%d): pass an admin key with --key or ADSMITH_KEY "
                 "(adsmith keys create --role admin)",
                 s->req.method, s->req.path, p.status);
        return -EACCES;
    }
    if (p.status == 404 && (kind == LGEN_CAMPAIGNS || kind == LGEN_CAMPAIGN_EDIT || kind == LGEN_USER_GET)) {
        snprintf(r->why, sizeof(r->why),
                 "%s %s answered 404: seed the data set first with the same --seed, --users and --campaigns "
                 "(adsmith-load seed ...)",
                 s->req.method, s->req.path);
        return -EPROTO;
    }
    snprintf(r->why, sizeof(r->why), "the first %s request (%s %s) answered %d: %.400s", name, s->req.method,
             s->req.path, p.status, p.head);
    return -EPROTO;
}

static int probe_all(const struct lrun_cfg *cfg, struct lrun_result *r)
{
    struct lconn *c = calloc(1, sizeof(*c));
    struct lgen g;
    if (!c)
        return -ENOMEM;
    int rc = lgen_init(&g, &cfg->gen, LRUN_THREADS_MAX);
    for (unsigned k = 0; k < LGEN_KINDS && rc == 0; k++)
        if (cfg->mix[k])
            rc = probe_one(cfg, c, &g, (enum lgen_kind)k, r);
    lconn_free(c);
    free(c);
    return rc;
}

/* ---- the run ---- */

static int check(const struct lrun_cfg *cfg, struct lrun_result *r)
{
    const char *bad = NULL;
    if (cfg->connections == 0 || cfg->connections > LRUN_CONNECTIONS_MAX)
        bad = "--connections must be 1-4096";
    else if (cfg->streams == 0 || cfg->streams > LCONN_STREAMS_MAX)
        bad = "--streams must be 1-100 (the server allows 100 streams per connection)";
    else if (cfg->threads == 0 || cfg->threads > LRUN_THREADS_MAX || cfg->threads > cfg->connections)
        bad = "--threads must be 1-64 and at most --connections";
    else if (!(cfg->rate >= 0) || cfg->rate > 1e8)
        bad = "--rate must be 0-100000000 requests/s";
    else if (!(cfg->duration_s >= 0) || cfg->duration_s > LRUN_SERIES_MAX || !(cfg->warmup_s >= 0) ||
             cfg->warmup_s > 3600)
        bad = "--duration must be at most 86400 s and --warmup at most 3600 s";
    else if (!cfg->seed_mode && cfg->duration_s <= 0)
        bad = "--duration must be more than 0";
    if (!bad && !cfg->seed_mode) {
        uint64_t w = 0;
        for (unsigned k = 0; k < LGEN_KINDS; k++)
            w += cfg->mix[k];
        if (w == 0)
            bad = "--mix sends nothing";
        else if ((cfg->mix[LGEN_CAMPAIGNS] || cfg->mix[LGEN_CAMPAIGN_EDIT]) && cfg->gen.campaigns == 0)
            bad = "campaigns and campaign_edit need --campaigns N (as seeded)";
    }
    if (bad) {
        snprintf(r->why, sizeof(r->why), "%s", bad);
        return -EINVAL;
    }
    return 0;
}

int lrun_execute(const struct lrun_cfg *cfg, struct lrun_result *ret)
{
    memset(ret, 0, sizeof(*ret));
    stats_init(&ret->all);
    for (unsigned k = 0; k < LGEN_KINDS; k++)
        stats_init(&ret->kind[k]);
    int rc = check(cfg, ret);
    if (rc == 0 && cfg->probe && !cfg->seed_mode)
        rc = probe_all(cfg, ret);
    if (rc < 0)
        return rc;

    unsigned nseries = cfg->duration_s > 0 ? (unsigned)ceil(cfg->duration_s) : 3600;
    struct shared sh = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    atomic_init(&sh.next_user, 0);
    atomic_init(&sh.next_campaign, 0);
    atomic_init(&sh.failed, 0);
    struct thr **ts = calloc(cfg->threads, sizeof(*ts));
    ret->series = calloc(nseries, sizeof(*ret->series));
    rc = (ts && ret->series) ? 0 : -ENOMEM;
    unsigned started = 0;
    for (unsigned i = 0; i < cfg->threads && rc == 0; i++) {
        struct thr *t = calloc(1, sizeof(*t));
        if (!t) {
            rc = -ENOMEM;
            break;
        }
        ts[i] = t;
        t->cfg = cfg;
        t->sh = &sh;
        t->id = i;
        t->epfd = t->tfd = -1;
        t->nconns = cfg->connections / cfg->threads + (i < cfg->connections % cfg->threads ? 1 : 0);
        t->conns = calloc(t->nconns, sizeof(*t->conns));
        t->reconnect_at = calloc(t->nconns, sizeof(*t->reconnect_at));
        t->watch_out = calloc(t->nconns, sizeof(*t->watch_out));
        t->res.series = calloc(nseries, sizeof(*t->res.series));
        t->res.nseries = nseries;
        if (!t->conns || !t->reconnect_at || !t->watch_out || !t->res.series) {
            rc = -ENOMEM;
            break;
        }
        for (unsigned c = 0; c < t->nconns && rc == 0; c++)
            if (!(t->conns[c] = calloc(1, sizeof(struct lconn))))
                rc = -ENOMEM;
        stats_init(&t->res.all);
        for (unsigned k = 0; k < LGEN_KINDS; k++)
            stats_init(&t->res.kind[k]);
        if (rc == 0)
            rc = lgen_init(&t->gen, &cfg->gen, i);
        lrng_seed(&t->pick, lrng_mix(cfg->gen.seed ^ 0x7069636bu) + i);
        for (unsigned k = 0; k < LGEN_KINDS; k++) {
            t->total_w += cfg->mix[k];
            t->cum[k] = t->total_w;
        }
    }
    if (rc < 0) {
        snprintf(ret->why, sizeof(ret->why), "out of memory or bad generator settings");
        goto out;
    }
    for (; started < cfg->threads; started++) {
        if (pthread_create(&ts[started]->tid, NULL, thr_main, ts[started]) != 0) {
            atomic_store(&sh.failed, 1);
            rc = -EAGAIN;
            snprintf(ret->why, sizeof(ret->why), "cannot start threads");
            break;
        }
    }
    pthread_mutex_lock(&sh.lock);
    while (sh.ready < started)
        pthread_cond_wait(&sh.cond, &sh.lock);
    sh.t0 = now_ns() + 1000000;
    sh.go = true;
    pthread_cond_broadcast(&sh.cond);
    pthread_mutex_unlock(&sh.lock);
    for (unsigned i = 0; i < started; i++)
        pthread_join(ts[i]->tid, NULL);
    if (rc < 0)
        goto out;

    int64_t t_measure = sh.t0 + (int64_t)(cfg->warmup_s * NS), t_stop = t_measure;
    ret->nseries = nseries;
    for (unsigned i = 0; i < cfg->threads; i++) {
        struct thr *t = ts[i];
        if (t->err && rc == 0) {
            rc = t->err;
            snprintf(ret->why, sizeof(ret->why), "thread %u could not %s: %s", i,
                     t->err == -EINVAL ? "pin itself to its CPU (--cpus)" : "connect", strerror(-t->err));
        }
        stats_merge(&ret->all, &t->res.all);
        for (unsigned k = 0; k < LGEN_KINDS; k++)
            stats_merge(&ret->kind[k], &t->res.kind[k]);
        for (unsigned s = 0; s < nseries; s++) {
            struct lrun_sec *d = &ret->series[s], *e = &t->res.series[s];
            d->requests += e->requests;
            d->errors += e->errors;
            d->lat_sum_ns += e->lat_sum_ns;
            if (e->lat_max_ns > d->lat_max_ns)
                d->lat_max_ns = e->lat_max_ns;
        }
        ret->backlog += t->res.backlog;
        ret->unfinished += t->res.unfinished;
        ret->connects += t->res.connects;
        ret->conn_failures += t->res.conn_failures;
        if (!ret->first_error[0] && t->res.first_error[0])
            snprintf(ret->first_error, sizeof(ret->first_error), "%s", t->res.first_error);
        if (t->t_stop > t_stop && t->t_stop < FAR_FUTURE)
            t_stop = t->t_stop;
    }
    ret->measured_s = (double)(t_stop - t_measure) / NS;
    if (ret->measured_s <= 0)
        ret->measured_s = 1e-9;
    if (cfg->seed_mode) {
        unsigned used = (unsigned)ceil(ret->measured_s);
        ret->nseries = used < nseries ? used : nseries;
    }

out:
    for (unsigned i = 0; ts && i < cfg->threads; i++) {
        struct thr *t = ts[i];
        if (!t)
            continue;
        for (unsigned c = 0; t->conns && c < t->nconns; c++) {
            if (t->conns[c]) {
                lconn_close(t->conns[c]);
                lconn_free(t->conns[c]);
                free(t->conns[c]);
            }
        }
        if (t->epfd >= 0)
            close(t->epfd);
        if (t->tfd >= 0)
            close(t->tfd);
        free(t->conns);
        free(t->reconnect_at);
        free(t->watch_out);
        free(t->res.series);
        free(t);
    }
    free(ts);
    pthread_mutex_destroy(&sh.lock);
    pthread_cond_destroy(&sh.cond);
    return rc;
}

void lrun_result_free(struct lrun_result *r)
{
    free(r->series);
    r->series = NULL;
}

int lrun_parse_cpus(const char *s, int cpus[LRUN_THREADS_MAX], unsigned *ret_n)
{
    unsigned n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10);
        if (end == p || a < 0 || a >= CPU_SETSIZE)
            return -EINVAL;
        long b = a;
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (end == p + 1 || b < a || b >= CPU_SETSIZE)
                return -EINVAL;
            p = end;
        }
        for (long c = a; c <= b; c++) {
            if (n >= LRUN_THREADS_MAX)
                return -EINVAL;
            cpus[n++] = (int)c;
        }
        if (*p == ',')
            p++;
        else if (*p)
            return -EINVAL;
    }
    if (n == 0)
        return -EINVAL;
    *ret_n = n;
    return 0;
}
