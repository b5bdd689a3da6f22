/*
 * lrun: see run.h.
 */
#include "run.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
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
    /* feedback: a ring of requests to send back, and the events batch being filled */
    struct fb_item *fb;
    unsigned fb_head, fb_len;
    struct lgen_buf evbuf, scorebuf;
    unsigned evn;
    bool no_score; /* the server does not serve POST /v1/score */
    int64_t ev_started;
};

struct fb_item {
    enum lgen_kind kind; /* LGEN_NOTICE or LGEN_FEEDBACK */
    char *path;          /* owned */
    char *body;          /* owned; NULL for a notice */
    size_t len;
    struct lgen_win *win; /* owned; LGEN_WIN_SCORE only */
};

#define EV_MAX_AGE_NS (100 * 1000000LL)

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

static unsigned sec_bucket(uint64_t v)
{
    if (v >= (1ull << LHIST_MAX_BITS))
        v = (1ull << LHIST_MAX_BITS) - 1;
    if (v < (1u << LRUN_SEC_SUB_BITS))
        return (unsigned)v;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    return ((m - LRUN_SEC_SUB_BITS + 1) << LRUN_SEC_SUB_BITS) +
           (unsigned)((v >> (m - LRUN_SEC_SUB_BITS)) & ((1u << LRUN_SEC_SUB_BITS) - 1));
}

static uint64_t sec_bucket_mid(unsigned i)
{
    unsigned sub = 1u << LRUN_SEC_SUB_BITS;
    if (i < sub)
        return i;
    unsigned m = (i >> LRUN_SEC_SUB_BITS) + LRUN_SEC_SUB_BITS - 1;
    uint64_t low = (1ull << m) + ((uint64_t)(i & (sub - 1)) << (m - LRUN_SEC_SUB_BITS));
    uint64_t width = 1ull << (m - LRUN_SEC_SUB_BITS);
    return low + width / 2;
}

uint64_t lrun_sec_percentile(const struct lrun_sec *e, double p)
{
    if (!e->hist || e->requests == 0)
        return 0;
    uint64_t total = 0;
    for (unsigned i = 0; i < LRUN_SEC_BUCKETS; i++)
        total += e->hist[i];
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(p / 100.0 * (double)total);
    if (want < 1)
        want = 1;
    uint64_t cum = 0;
    for (unsigned i = 0; i < LRUN_SEC_BUCKETS; i++) {
        cum += e->hist[i];
        if (cum >= want) {
            uint64_t v = sec_bucket_mid(i);
            return v > e->lat_max_ns ? e->lat_max_ns : v;
        }
    }
    return e->lat_max_ns;
}

/* ---- feedback: the simulated exchange and audience ---- */

static bool fb_push(struct thr *t, enum lgen_kind kind, const char *path, const char *body, size_t len,
                    const struct lgen_win *win)
{
    if (!t->fb || t->fb_len >= LRUN_FEEDBACK_MAX) {
        t->res.biz.feedback_dropped++;
        return false;
    }
    struct lgen_win *w = NULL;
    if (win) {
        if (!(w = malloc(sizeof(*w)))) {
            t->res.biz.feedback_dropped++;
            return false;
        }
        *w = *win;
    }
    char *p = strdup(path), *b = NULL;
    if (body) {
        b = malloc(len + 1);
        if (b) {
            memcpy(b, body, len);
            b[len] = '\0';
        }
    }
    if (!p || (body && !b)) {
        free(p);
        free(b);
        free(w);
        t->res.biz.feedback_dropped++;
        return false;
    }
    t->fb[(t->fb_head + t->fb_len) % LRUN_FEEDBACK_MAX] = (struct fb_item){kind, p, b, len, w};
    t->fb_len++;
    return true;
}

static void ev_flush(struct thr *t)
{
    if (t->evn == 0)
        return;
    lgen_buf_printf(&t->evbuf, "]}");
    if (!t->evbuf.oom)
        fb_push(t, LGEN_FEEDBACK, "/v1/events", t->evbuf.p, t->evbuf.len, NULL);
    else
        t->res.biz.feedback_dropped++;
    lgen_buf_reset(&t->evbuf);
    t->evn = 0;
}

static void ev_add(struct thr *t, const char *type, const char *bid_id, const char *user, const char *campaign,
                   const char *variant, int64_t ts, bool pair, int64_t value)
{
    struct lgen_buf *b = &t->evbuf;
    if (t->evn == 0) {
        lgen_buf_reset(b);
        lgen_buf_printf(b, "{\"events\":[");
        t->ev_started = lconn_now_ns();
    } else {
        lgen_buf_printf(b, ",");
    }
    lgen_buf_printf(b,
                    "{\"id\":\"%.3s-%s\",\"type\":\"%s\",\"user\":\"%s\",\"campaign\":\"%s\",\"variant\":\"%s\","
                    "\"ts\":%" PRId64,
                    type, bid_id, type, user, campaign, variant, ts);
    if (pair)
        lgen_buf_printf(b, ",\"impression_id\":\"imp-%s\"", bid_id);
    if (value > 0)
        lgen_buf_printf(b, ",\"value\":%" PRId64, value);
    lgen_buf_printf(b, "}");
    if (++t->evn >= LRUN_EVENTS_BATCH)
        ev_flush(t);
}

/* A token fit to go into an event or a URL unescaped: letters, digits and -_.:~, 1-63 bytes. */
static bool plain(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == ':' || c == '~'))
            return false;
    }
    return n > 0 && n < 64;
}

/* Replaces the OpenRTB macros of @p url into @p out (its path part, from the first '/' after the authority). */
static bool expand_url(const char *url, const char *auction, const char *bid_id, const char *imp_id, const char *price,
                       const char *loss, char *out, size_t cap)
{
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        p = strchr(scheme + 3, '/');
        if (!p)
            return false;
    }
    if (*p != '/')
        return false;
    static const struct {
        const char *name, *value_of;
    } macros[] = {{"${AUCTION_PRICE}", "p"},    {"${AUCTION_ID}", "a"},      {"${AUCTION_BID_ID}", "b"},
                  {"${AUCTION_IMP_ID}", "i"},   {"${AUCTION_SEAT_ID}", "s"}, {"${AUCTION_AD_ID}", "b"},
                  {"${AUCTION_CURRENCY}", "c"}, {"${AUCTION_LOSS}", "l"},    {"${AUCTION_MBR}", "m"}};
    size_t n = 0;
    while (*p) {
        const char *rep = NULL;
        size_t skip = 1;
        if (*p == '$') {
            for (size_t k = 0; k < sizeof(macros) / sizeof(macros[0]); k++) {
                size_t ml = strlen(macros[k].name);
                if (strncmp(p, macros[k].name, ml) == 0) {
                    switch (macros[k].value_of[0]) {
                    case 'p': rep = price; break;
                    case 'a': rep = auction; break;
                    case 'b': rep = bid_id; break;
                    case 'i': rep = imp_id; break;
                    case 's': rep = "adsmith"; break;
                    case 'c': rep = "USD"; break;
                    case 'l': rep = loss; break;
                    default: rep = "1"; break;
                    }
                    skip = ml;
                    break;
                }
            }
        }
        size_t add = rep ? strlen(rep) : 1;
        if (n + add + 1 > cap)
            return false;
        if (rep)
            memcpy(out + n, rep, add);
        else
            out[n] = *p;
        n += add;
        p += skip;
    }
    out[n] = '\0';
    return true;
}

static const char *jstr_of(const cJSON *o, const char *name)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* The events of a won impression: its impression, and its click and conversion when the oracle drew them. */
static void win_events(struct thr *t, const struct lgen_win *w)
{
    char uid[LGEN_ID_MAX];
    lgen_user_id(&t->cfg->gen, w->user, uid);
    int64_t now = (int64_t)time(NULL);
    ev_add(t, "impression", w->bid_id, uid, w->campaign, w->variant, now, false, 0);
    if (w->clicked)
        ev_add(t, "click", w->bid_id, uid, w->campaign, w->variant, now, true, 0);
    if (w->converted)
        ev_add(t, "conversion", w->bid_id, uid, w->campaign, w->variant, now, false, w->value);
}

/* The answer to POST /v1/score of a won impression: its pCTR into the record, then the impression's events. */
static void win_scored(struct thr *t, const struct lconn_stream *s, int error)
{
    const struct lgen_win *w = &s->req.win;
    bool got = false;
    if (!error && s->status == 404)
        t->no_score = true;
    if (!error && s->status == 200 && w->record >= 0 && (size_t)w->record < t->res.biz.log.n) {
        cJSON *j = lgen_parse_answer(s->req.response.p, s->req.response.len);
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "scores"), 0), "score");
        if (cJSON_IsNumber(sc)) {
            struct sim_rec *r = &t->res.biz.log.v[w->record];
            r->pctr = (float)sc->valuedouble;
            r->has_pctr = 1;
            t->res.biz.pctr_seen++;
            got = true;
        }
        cJSON_Delete(j);
    }
    if (!got && w->record >= 0)
        t->res.biz.score_failed++;
    win_events(t, w);
}

/* One bid of an answer: the auction, and for a win the notice, the oracle's outcome and the events. */
static void one_bid(struct thr *t, const struct lgen_bid_info *bi, const cJSON *bid, bool measured)
{
    struct lrun_biz *z = &t->res.biz;
    const char *impid = jstr_of(bid, "impid"), *nurl = jstr_of(bid, "nurl"), *cid = jstr_of(bid, "cid");
    const char *bid_id = jstr_of(bid, "id");
    const cJSON *price_j = cJSON_GetObjectItemCaseSensitive(bid, "price");
    long imp = impid ? strtol(impid, NULL, 10) : 0;
    if (!impid || imp < 1 || imp > (long)bi->nimp || !nurl || !cid || !plain(cid) || !bid_id || !plain(bid_id) ||
        !cJSON_IsNumber(price_j) || !(price_j->valuedouble > 0)) {
        if (measured)
            z->bad_bids++;
        return;
    }
    const struct lgen_imp_info *ii = &bi->imp[imp - 1];
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(bid, "ext"), "adsmith");
    const char *variant = jstr_of(ext, "variant");
    if (!variant || !plain(variant))
        variant = "base";
    const cJSON *pctr = cJSON_GetObjectItemCaseSensitive(ext, "pctr");
    double price = price_j->valuedouble;
    double floor = ii->floor;
    if (jstr_of(bid, "dealid") && ii->deal_floor > floor)
        floor = ii->deal_floor;
    char key[sizeof(bi->auction) + 16];
    snprintf(key, sizeof(key), "%s/%ld", bi->auction, imp);
    struct sim_auction a = sim_auction_run(&t->cfg->sim, key, floor, price, bi->at);
    if (measured) {
        z->bids++;
        z->bid_cpm_micros += (uint64_t)(price * 1e6 + 0.5);
    }
    char pricebuf[32], path[LGEN_PATH_MAX];
    if (!a.won) {
        if (measured)
            z->losses++;
        /* The loss notice: reason 102 (lost to a higher bid), the winning bid as the price. */
        const char *lurl = jstr_of(bid, "lurl");
        if (t->cfg->feedback && lurl) {
            snprintf(pricebuf, sizeof(pricebuf), "%.6f", a.competing);
            if (expand_url(lurl, bi->auction, bid_id, impid, pricebuf, "102", path, sizeof(path)))
                fb_push(t, LGEN_LOSS_NOTICE, path, NULL, 0, NULL);
            else
                z->feedback_dropped++;
        }
        return;
    }
    snprintf(pricebuf, sizeof(pricebuf), "%.6f", a.clearing);
    if (t->cfg->feedback) {
        if (expand_url(nurl, bi->auction, bid_id, impid, pricebuf, "0", path, sizeof(path)))
            fb_push(t, LGEN_NOTICE, path, NULL, 0, NULL);
        else
            z->feedback_dropped++;
    }
    struct sim_features f = {.user = bi->user,
                             .placement = bi->placement,
                             .category = bi->category,
                             .app = bi->app,
                             .devtype = bi->devtype,
                             .hour = bi->hour,
                             .pos = ii->pos,
                             .w = ii->w,
                             .h = ii->h,
                             .fmt = ii->fmt};
    double p = sim_pclick(&t->cfg->sim, &f, cid, variant);
    bool clicked = sim_uniform(&t->cfg->sim, key, 41) < p;
    z->clicks_run += clicked;
    bool converted = clicked && sim_uniform(&t->cfg->sim, key, 42) < sim_pconv(&t->cfg->sim, &f, cid);
    bool control = strcmp(variant, "base") == 0;
    struct lgen_win win = {.user = bi->user,
                           .clicked = clicked,
                           .converted = converted,
                           .value = (int64_t)(5 + sim_uniform(&t->cfg->sim, key, 43) * 95) * 1000000,
                           .record = -1};
    snprintf(win.bid_id, sizeof(win.bid_id), "%s", bid_id);
    snprintf(win.campaign, sizeof(win.campaign), "%s", cid);
    snprintf(win.variant, sizeof(win.variant), "%s", variant);
    if (measured) {
        z->wins++;
        z->spend_micros += (uint64_t)(a.clearing * 1000.0 + 0.5); /* CPM: one impression is 1/1000 */
        z->clicks += clicked;
        z->conversions += converted;
        if (control) {
            z->imps_control++;
            z->clicks_control += clicked;
        } else {
            z->imps_variant++;
            z->clicks_variant += clicked;
        }
        struct sim_rec r = {.p_oracle = (float)p,
                            .price = (float)price,
                            .pctr = cJSON_IsNumber(pctr) ? (float)pctr->valuedouble : 0,
                            .clicked = clicked,
                            .converted = converted,
                            .variant = !control,
                            .has_pctr = cJSON_IsNumber(pctr)};
        z->pctr_seen += r.has_pctr;
        if (sim_log_add(&z->log, &r) == 0)
            win.record = (int64_t)z->log.n - 1;
    }
    if (!t->cfg->feedback)
        return;
    /* adsmith's pCTR of the impression, asked before its events can move the profile. */
    if (t->cfg->score_wins && !t->no_score && !cJSON_IsNumber(pctr)) {
        lgen_buf_reset(&t->scorebuf);
        if (lgen_score_of(&t->cfg->gen, bi, (unsigned)(imp - 1), cid, &t->scorebuf) == 0 &&
            fb_push(t, LGEN_WIN_SCORE, "/v1/score", t->scorebuf.p, t->scorebuf.len, &win))
            return;
    }
    win_events(t, &win);
}

static void bid_answered(struct thr *t, const struct lconn_stream *s, bool measured)
{
    struct lrun_biz *z = &t->res.biz;
    const struct lgen_bid_info *bi = &s->req.bid;
    if (s->status != 200 && s->status != 204)
        return;
    if (measured) {
        z->auctions++;
        z->imps += bi->nimp;
    }
    if (s->status == 204)
        return;
    if (measured)
        z->answered_bids++;
    cJSON *j = lgen_parse_answer(s->req.response.p, s->req.response.len);
    const cJSON *seatbid = cJSON_GetObjectItemCaseSensitive(j, "seatbid");
    if (!cJSON_IsArray(seatbid)) {
        if (measured)
            z->bad_bids++;
        cJSON_Delete(j);
        return;
    }
    const cJSON *sb, *bid;
    cJSON_ArrayForEach(sb, seatbid)
    {
        cJSON_ArrayForEach(bid, cJSON_GetObjectItemCaseSensitive(sb, "bid")) one_bid(t, bi, bid, measured);
    }
    cJSON_Delete(j);
}

static bool is_feedback(enum lgen_kind k)
{
    return k == LGEN_NOTICE || k == LGEN_LOSS_NOTICE || k == LGEN_FEEDBACK || k == LGEN_WIN_SCORE;
}

static void on_done(void *arg, struct lconn_stream *s, int64_t now, int error)
{
    struct thr *t = arg;
    t->inflight--;
    bool fb = is_feedback(s->req.kind);
    if (fb && s->conn->feedback_inflight)
        s->conn->feedback_inflight--;
    bool measured = s->req.intended_ns >= t->t_measure;
    if (s->req.kind == LGEN_BID && !error && t->cfg->mix[LGEN_BID])
        bid_answered(t, s, measured);
    if (s->req.kind == LGEN_WIN_SCORE)
        win_scored(t, s, error);
    if (!measured)
        return;
    uint64_t lat = (uint64_t)(now - s->req.intended_ns), lat_sent = (uint64_t)(now - s->sent_ns);
    bool ok = !error && s->status >= 200 && s->status < 300;
    if (!ok && !t->res.first_error[0]) {
        if (error)
            snprintf(t->res.first_error, sizeof(t->res.first_error), "%s %.200s -> %s", s->req.method, s->req.path,
                     strerror(-error));
        else
            snprintf(t->res.first_error, sizeof(t->res.first_error), "%s %.200s -> %d: %.300s", s->req.method,
                     s->req.path, s->status, s->head);
    }
    stats_record(&t->res.kind[s->req.kind], s, lat, lat_sent, error);
    if (fb)
        return;
    stats_record(&t->res.all, s, lat, lat_sent, error);
    int64_t sec = (now - t->t_measure) / NS;
    if (sec >= 0 && (uint64_t)sec < t->res.nseries) {
        struct lrun_sec *e = &t->res.series[sec];
        e->requests++;
        e->lat_sum_ns += lat;
        if (lat > e->lat_max_ns)
            e->lat_max_ns = lat;
        if (!ok)
            e->errors++;
        if (!e->hist)
            e->hist = calloc(LRUN_SEC_BUCKETS, sizeof(*e->hist));
        if (e->hist)
            e->hist[sec_bucket(lat)]++;
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

/* With --msgpack, re-encodes a JSON body of the kinds that take MessagePack. 0 or negative. */
static int maybe_msgpack(const struct lrun_cfg *cfg, struct lgen_req *q)
{
    switch (q->kind) {
    case LGEN_BID:
    case LGEN_EVENTS:
    case LGEN_SCORE:
    case LGEN_POST_EMPTY:
    case LGEN_FEEDBACK:
    case LGEN_WIN_SCORE: break;
    default: return 0;
    }
    if (!cfg->msgpack || !q->body.len || !q->content_type || strcmp(q->content_type, "application/json") != 0)
        return 0;
    struct lgen_buf mp = {0};
    int rc = lgen_msgpack_of(q->body.p, q->body.len, &mp);
    if (rc < 0) {
        lgen_buf_free(&mp);
        return rc;
    }
    lgen_buf_free(&q->body);
    q->body = mp;
    q->content_type = "application/msgpack";
    return 0;
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
    if (rc == 0)
        rc = maybe_msgpack(t->cfg, &s->req);
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

/* Sends queued feedback on @p c while it has fewer than half its streams in feedback. 0 or negative on failure. */
static int send_feedback(struct thr *t, struct lconn *c, int64_t now)
{
    unsigned cap = c->limit / 2 ? c->limit / 2 : 1;
    while (t->fb_len && c->feedback_inflight < cap) {
        struct lconn_stream *s = lconn_slot(c);
        if (!s)
            return 0;
        struct fb_item *it = &t->fb[t->fb_head];
        struct lgen_req *q = &s->req;
        q->kind = it->kind;
        q->keep_response = it->kind == LGEN_WIN_SCORE;
        if (it->win)
            q->win = *it->win;
        q->intended_ns = now;
        lgen_buf_reset(&q->body);
        snprintf(q->path, sizeof(q->path), "%s", it->path);
        if (it->body) {
            q->method = "POST";
            q->content_type = "application/json";
            lgen_buf_append(&q->body, it->body, it->len);
        } else {
            q->method = "GET";
            q->content_type = NULL;
        }
        free(it->path);
        free(it->body);
        free(it->win);
        t->fb_head = (t->fb_head + 1) % LRUN_FEEDBACK_MAX;
        t->fb_len--;
        if (q->body.oom || maybe_msgpack(t->cfg, q) < 0) {
            lconn_unslot(c, s);
            t->res.biz.feedback_dropped++;
            continue;
        }
        int rc = lconn_submit(c, s, now);
        if (rc < 0)
            return rc;
        t->inflight++;
        c->feedback_inflight++;
    }
    return 0;
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
    c->feedback_inflight = 0;
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
    if (t->evn && (t->stopping || t->evn >= LRUN_EVENTS_BATCH || now - t->ev_started >= EV_MAX_AGE_NS))
        ev_flush(t);
    for (unsigned i = 0; t->fb_len && i < t->nconns; i++) {
        unsigned k = (t->rr + i) % t->nconns;
        if (t->conns[k]->fd < 0)
            continue;
        int rc = send_feedback(t, t->conns[k], now);
        if (rc < 0)
            conn_failed(t, k, rc, now);
    }
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
    if (t->evn && t->ev_started + EV_MAX_AGE_NS < wake)
        wake = t->ev_started + EV_MAX_AGE_NS > now ? t->ev_started + EV_MAX_AGE_NS : now + 1000000;
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
                uint64_t due_before_end = (uint64_t)ceil(((double)(t->t_end - t->t0) - t->phase_ns) / t->period_ns);
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
        if (t->stopping && ((t->inflight == 0 && t->fb_len == 0 && t->evn == 0) || now >= t->t_drain))
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
        rc = maybe_msgpack(cfg, &s->req);
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
        snprintf(r->why, sizeof(r->why), "the first %s request (%s %.200s) failed: %s", name, s->req.method,
                 s->req.path, strerror(-(rc < 0 ? rc : p.error)));
        return rc < 0 ? rc : p.error;
    }
    if (p.status >= 200 && p.status < 300)
        return 0;
    if (p.status == 404 && (kind == LGEN_BID || kind == LGEN_SCORE)) {
        snprintf(
            r->why, sizeof(r->why),
            "this server does not serve %s %.200s yet (404 on the first %s request): drop %s from --mix until it does",
            s->req.method, s->req.path, name, name);
        return -ENOTSUP;
    }
    if (p.status == 401 || p.status == 403) {
        snprintf(r->why, sizeof(r->why),
                 "the server refused the API key for %s %.200s (%d): pass an admin key with --key or ADSMITH_KEY "
                 "(adsmith keys create --role admin)",
                 s->req.method, s->req.path, p.status);
        return -EACCES;
    }
    if (p.status == 404 && (kind == LGEN_CAMPAIGNS || kind == LGEN_CAMPAIGN_EDIT || kind == LGEN_USER_GET)) {
        snprintf(r->why, sizeof(r->why),
                 "%s %.200s answered 404: seed the data set first with the same --seed, --users and --campaigns "
                 "(adsmith-load seed ...)",
                 s->req.method, s->req.path);
        return -EPROTO;
    }
    snprintf(r->why, sizeof(r->why), "the first %s request (%s %.200s) answered %d: %.400s", name, s->req.method,
             s->req.path, p.status, p.head);
    return -EPROTO;
}

/* ---- tokens: the daemon's adsmith_gen_tokens_total before and after a bid run ---- */

struct fetch {
    bool done;
    int error;
    int status;
    struct lgen_buf body;
};

static void fetch_done(void *arg, struct lconn_stream *s, int64_t now, int error)
{
    (void)now;
    struct fetch *f = arg;
    f->done = true;
    f->error = error;
    f->status = s->status;
    lgen_buf_reset(&f->body);
    if (s->req.response.len)
        lgen_buf_append(&f->body, s->req.response.p, s->req.response.len);
}

/* The sum of every adsmith_gen_tokens_total sample in GET /metrics. @return 0, -ENOENT without one, or < 0. */
static int tokens_now(const struct lrun_cfg *cfg, double *ret)
{
    struct lconn *c = calloc(1, sizeof(*c));
    struct fetch f = {0};
    if (!c)
        return -ENOMEM;
    lconn_init(c, cfg->target, 1, fetch_done, &f);
    int rc = lconn_open(c);
    struct lconn_stream *s = rc == 0 ? lconn_slot(c) : NULL;
    if (s) {
        s->req.kind = LGEN_HEALTHZ;
        s->req.method = "GET";
        s->req.content_type = NULL;
        s->req.keep_response = true;
        lgen_buf_reset(&s->req.body);
        snprintf(s->req.path, sizeof(s->req.path), "/metrics");
        rc = lconn_submit(c, s, now_ns());
    } else if (rc == 0) {
        rc = -EPROTO;
    }
    int64_t deadline = now_ns() + 10 * NS;
    while (rc == 0 && !f.done) {
        rc = lconn_flush(c);
        if (rc < 0 || f.done)
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
    if (c->fd >= 0 && !f.done)
        lconn_fail(c, rc ? rc : -ECONNRESET, now_ns());
    lconn_close(c);
    lconn_free(c);
    free(c);
    double sum = 0;
    bool found = false;
    if (rc == 0 && f.done && !f.error && f.status == 200 && f.body.p) {
        static const char name[] = "adsmith_gen_tokens_total{";
        for (const char *line = f.body.p; line && *line;) {
            if (strncmp(line, name, sizeof(name) - 1) == 0) {
                const char *sp = strchr(line, ' ');
                const char *nl = strchr(line, '\n');
                if (sp && (!nl || sp < nl)) {
                    sum += strtod(sp + 1, NULL);
                    found = true;
                }
            }
            line = strchr(line, '\n');
            if (line)
                line++;
        }
    }
    lgen_buf_free(&f.body);
    if (rc < 0)
        return rc;
    if (!found)
        return -ENOENT;
    *ret = sum;
    return 0;
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

static void merge_biz(struct lrun_biz *d, const struct lrun_biz *s)
{
    d->auctions += s->auctions;
    d->imps += s->imps;
    d->answered_bids += s->answered_bids;
    d->bids += s->bids;
    d->bad_bids += s->bad_bids;
    d->wins += s->wins;
    d->losses += s->losses;
    d->spend_micros += s->spend_micros;
    d->bid_cpm_micros += s->bid_cpm_micros;
    d->clicks += s->clicks;
    d->clicks_run += s->clicks_run;
    d->conversions += s->conversions;
    d->imps_variant += s->imps_variant;
    d->clicks_variant += s->clicks_variant;
    d->imps_control += s->imps_control;
    d->clicks_control += s->clicks_control;
    d->pctr_seen += s->pctr_seen;
    d->score_failed += s->score_failed;
    d->feedback_dropped += s->feedback_dropped;
    if (sim_log_merge(&d->log, &s->log) < 0)
        d->feedback_dropped += s->log.n;
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
        if (rc == 0 && cfg->mix[LGEN_BID] && cfg->feedback && !(t->fb = calloc(LRUN_FEEDBACK_MAX, sizeof(*t->fb))))
            rc = -ENOMEM;
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
    double tokens_before = 0;
    bool tokens = cfg->mix[LGEN_BID] && !cfg->seed_mode && tokens_now(cfg, &tokens_before) == 0;
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
        merge_biz(&ret->biz, &t->res.biz);
        for (unsigned s = 0; s < nseries; s++) {
            struct lrun_sec *d = &ret->series[s], *e = &t->res.series[s];
            if (e->hist && !d->hist) {
                d->hist = e->hist;
                e->hist = NULL;
            } else if (e->hist) {
                for (unsigned b = 0; b < LRUN_SEC_BUCKETS; b++)
                    d->hist[b] += e->hist[b];
            }
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
    double tokens_after = 0;
    if (tokens && tokens_now(cfg, &tokens_after) == 0) {
        ret->biz.tokens_known = true;
        ret->biz.tokens = tokens_after > tokens_before ? tokens_after - tokens_before : 0;
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
        for (unsigned s = 0; t->res.series && s < nseries; s++)
            free(t->res.series[s].hist);
        free(t->res.series);
        for (unsigned k = 0; t->fb && k < t->fb_len; k++) {
            struct fb_item *it = &t->fb[(t->fb_head + k) % LRUN_FEEDBACK_MAX];
            free(it->path);
            free(it->body);
            free(it->win);
        }
        free(t->fb);
        lgen_buf_free(&t->evbuf);
        lgen_buf_free(&t->scorebuf);
        sim_log_free(&t->res.biz.log);
        free(t);
    }
    free(ts);
    pthread_mutex_destroy(&sh.lock);
    pthread_cond_destroy(&sh.cond);
    return rc;
}

void lrun_result_free(struct lrun_result *r)
{
    for (unsigned s = 0; r->series && s < r->nseries; s++)
        free(r->series[s].hist);
    sim_log_free(&r->biz.log);
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
