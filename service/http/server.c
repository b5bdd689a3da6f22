#include "adsmith/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <h2o.h>
#include <h2o/http2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "adsmith/config.h"
#include "adsmith/http.h"
#include "adsmith/log.h"

/* While draining, an HTTP/1.1 connection still reading a request gets this long
 * (counted from when it began the request) before it is closed; idle keep-alive
 * connections close at once. See srv_worker_drain(). */
#define SRV_DRAIN_READ_MS 1000
#define SRV_ACCEPTS_PER_WAKE 16
/* When accept() fails for lack of descriptors the listener stays readable;
 * stop polling it this long instead of spinning. */
#define SRV_ACCEPT_PAUSE_MS 100

struct srv_worker {
    h2o_context_t ctx; /* first, so a context pointer is a worker pointer */
    struct srv *srv;
    unsigned idx;
    pthread_t tid;
    h2o_multithread_receiver_t wake;
    struct http_worker hw; /* index and write-queue port, for the router */
    h2o_accept_ctx_t actx;
    int fd[CFG_MAX_LISTEN];
    h2o_socket_t *lsock[CFG_MAX_LISTEN];
    size_t nconns; /* touched only by this worker's thread */
    bool drained;  /* every connection closed before the deadline */
    h2o_timeout_entry_t accept_resume; /* linked while accepting is paused (EMFILE) */
};

struct srv_hook {
    void (*fn)(void *arg);
    void *arg;
};

struct srv {
    struct app *app;
    const struct cfg *cfg;
    h2o_globalconf_t gconf;
    bool gconf_inited;
    SSL_CTX *ssl;
    size_t nlisten;
    char addr[CFG_MAX_LISTEN][INET6_ADDRSTRLEN + 8];
    struct srv_worker *workers;
    unsigned nworkers;
    pthread_barrier_t started;
    pthread_barrier_t woken; /* every wake message sent: workers may dispose their queues */
    atomic_bool stop;
    uint64_t deadline_ms; /* CLOCK_MONOTONIC; written before `stop` is set */
    struct srv_hook hooks[SRV_MAX_RELOAD_HOOKS];
    size_t nhooks;
    long max_connections; /* max_connections, lowered to what the descriptor limit allows */
};

static uint64_t srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct http_worker *srv_worker_of(h2o_context_t *ctx)
{
    return &((struct srv_worker *)ctx)->hw;
}

static void srv_addr_name(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
    char host[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, outsz, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, outsz, "%s:%u", host, ntohs(a->sin_port));
    }
}

/* Opens one listening socket. Every worker binds its own socket to the same
 * address with SO_REUSEPORT, and the kernel balances new connections. */
static int srv_listen_fd(const struct sockaddr_storage *ss, socklen_t len, int *ret_fd)
{
    int fd, on = 1;

    if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *ret_fd = fd;
    return 0;
}

/* SO_REUSEPORT would let this process share a port with another one (a second
 * adsmith left running) and silently take part of its traffic. A socket bound
 * without it fails with EADDRINUSE if anyone listens there, so try one first. */
static int srv_probe_port(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd, on = 1, rc = 0;

    if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) ||
        bind(fd, (const struct sockaddr *)ss, len) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

static int srv_bind_all(struct srv *s, struct ads_diag *diag)
{
    for (size_t i = 0; i < s->cfg->nlisten; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        int rc;
        if (cfg_parse_addr(s->cfg->listen[i], &ss, &len) != 0)
            return ads_diag_set(diag, ADS_ECONFIG, "/listen", "listen: cannot resolve '%s'", s->cfg->listen[i]);
        if ((rc = srv_probe_port(&ss, len)) != 0)
            return ads_diag_set(diag, ADS_ECONFIG, "/listen", "cannot listen on %s: %s", s->cfg->listen[i],
                                strerror(-rc));
        for (unsigned w = 0; w < s->nworkers; w++) {
            if ((rc = srv_listen_fd(&ss, len, &s->workers[w].fd[i])) != 0)
                return ads_diag_set(diag, ADS_ECONFIG, "/listen", "cannot listen on %s: %s", s->cfg->listen[i],
                                    strerror(-rc));
            /* Port 0 asks the kernel for a free port; the first socket learns it
             * and the other workers bind that same port. */
            if (w == 0 && getsockname(s->workers[w].fd[i], (struct sockaddr *)&ss, &len) != 0)
                return ads_diag_set(diag, ADS_ECONFIG, "/listen", "getsockname: %s", strerror(errno));
        }
        srv_addr_name(&ss, s->addr[i], sizeof(s->addr[i]));
        s->nlisten = i + 1;
    }
    return 0;
}

static int srv_ssl_fail(struct ads_diag *diag, const char *what, const char *file)
{
    char detail[200];
    ERR_error_string_n(ERR_get_error(), detail, sizeof(detail));
    ERR_clear_error();
    return ads_diag_set(diag, ADS_ECONFIG, "/tls_cert", "%s %s: %s", what, file, detail);
}

static int srv_setup_tls(struct srv *s, struct ads_diag *diag)
{
    const struct cfg *c = s->cfg;

    if (c->tls_cert == NULL)
        return 0;
    if ((s->ssl = SSL_CTX_new(TLS_server_method())) == NULL)
        return srv_ssl_fail(diag, "cannot create a TLS context for", c->tls_cert);
    SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(s->ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(s->ssl, c->tls_cert) != 1)
        return srv_ssl_fail(diag, "cannot load the certificate chain", c->tls_cert);
    if (SSL_CTX_use_PrivateKey_file(s->ssl, c->tls_key, SSL_FILETYPE_PEM) != 1)
        return srv_ssl_fail(diag, "cannot load the private key", c->tls_key);
    if (SSL_CTX_check_private_key(s->ssl) != 1)
        return srv_ssl_fail(diag, "the private key does not match the certificate", c->tls_cert);
    /* ALPN offers h2 first, then http/1.1. */
    h2o_ssl_register_alpn_protocols(s->ssl, h2o_http2_alpn_protocols);
    return 0;
}

static void srv_setup_h2o(struct srv *s)
{
    const struct cfg *c = s->cfg;
    h2o_hostconf_t *host;

    h2o_config_init(&s->gconf);
    s->gconf_inited = true;
    s->gconf.server_name = h2o_iovec_init(H2O_STRLIT("adsmith"));
    /* libh2o buffers a whole body before routing. It may read up to twice
     * max_body so that moderately oversized bodies get our JSON 413 from the
     * router; past that libh2o refuses the request itself (HTTP/1.1: 413, made
     * JSON by the router's filter; HTTP/2: RST_STREAM REFUSED_STREAM). */
    s->gconf.max_request_entity_size = (size_t)c->max_body * 2;
    s->gconf.http1.req_timeout = c->idle_timeout_ms;
    s->gconf.http1.upgrade_to_http2 = 1;
    s->gconf.http2.idle_timeout = c->idle_timeout_ms;
    s->gconf.http2.graceful_shutdown_timeout = c->shutdown_timeout_ms;
    s->gconf.handshake_timeout = c->handshake_timeout_ms;
    host = h2o_config_register_host(&s->gconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    http_router_register(host, s->app, srv_worker_of);
}

int srv_new(struct app *app, struct ads_diag *ret_diag, struct srv **ret_srv)
{
    struct srv *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL)
        return ads_diag_set(ret_diag, ADS_ENOMEM, "", "out of memory");
    s->app = app;
    s->cfg = app->cfg;
    s->nworkers = app->cfg->threads;
    if ((s->workers = calloc(s->nworkers, sizeof(*s->workers))) == NULL) {
        free(s);
        return ads_diag_set(ret_diag, ADS_ENOMEM, "", "out of memory");
    }
    for (unsigned w = 0; w < s->nworkers; w++) {
        s->workers[w].srv = s;
        s->workers[w].idx = w;
        s->workers[w].hw.idx = w;
        for (size_t i = 0; i < CFG_MAX_LISTEN; i++)
            s->workers[w].fd[i] = -1;
    }
    if ((rc = srv_setup_tls(s, ret_diag)) != 0 || (rc = srv_bind_all(s, ret_diag)) != 0) {
        srv_free(s);
        return rc;
    }
    srv_setup_h2o(s);
    *ret_srv = s;
    return 0;
}

size_t srv_listen_count(const struct srv *s)
{
    return s->nlisten;
}

const char *srv_listen_addr(const struct srv *s, size_t i)
{
    return i < s->nlisten ? s->addr[i] : NULL;
}

int srv_on_reload(struct srv *s, void (*fn)(void *arg), void *arg)
{
    if (s->nhooks == SRV_MAX_RELOAD_HOOKS)
        return ADS_EINVAL;
    s->hooks[s->nhooks++] = (struct srv_hook){fn, arg};
    return 0;
}

/* ---- worker threads ---- */

static void srv_on_close(void *data)
{
    struct srv_worker *w = data;
    w->nconns--;
    atomic_fetch_sub(&w->srv->app->connections, 1);
}

static void srv_on_accept(h2o_socket_t *listener, const char *err);

static void srv_accept_resume(h2o_timeout_entry_t *entry)
{
    struct srv_worker *w = H2O_STRUCT_FROM_MEMBER(struct srv_worker, accept_resume, entry);

    for (size_t i = 0; i < w->srv->nlisten; i++) {
        if (w->lsock[i] != NULL)
            h2o_socket_read_start(w->lsock[i], srv_on_accept);
    }
}

static void srv_accept_pause(struct srv_worker *w, int err)
{
    struct lg_rec r;

    if (h2o_timeout_is_linked(&w->accept_resume))
        return;
    for (size_t i = 0; i < w->srv->nlisten; i++)
        h2o_socket_read_stop(w->lsock[i]);
    w->accept_resume.cb = srv_accept_resume;
    h2o_timeout_link(w->ctx.loop, &w->ctx.hundred_ms_timeout, &w->accept_resume);
    lg_begin(&r, LG_WARN, "accept paused: out of file descriptors");
    lg_str(&r, "detail", strerror(err));
    lg_uint(&r, "worker", w->idx);
    lg_uint(&r, "pause_ms", SRV_ACCEPT_PAUSE_MS);
    lg_end(&r);
}

static void srv_on_accept(h2o_socket_t *listener, const char *err)
{
    struct srv_worker *w = listener->data;
    struct app *app = w->srv->app;

    if (err != NULL)
        return;
    for (int i = 0; i < SRV_ACCEPTS_PER_WAKE; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                srv_accept_pause(w, errno);
            break;
        }
        if (atomic_fetch_add(&app->connections, 1) >= w->srv->max_connections) {
            atomic_fetch_sub(&app->connections, 1);
            met_conn_rejected(app->metrics, w->idx);
            h2o_socket_close(sock);
            continue;
        }
        w->nconns++;
        sock->on_close.cb = srv_on_close;
        sock->on_close.data = w;
        h2o_accept(&w->actx, sock);
    }
}

/* Only wakes the loop; the loop then reads srv->stop. */
static void srv_on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        free(m);
    }
}

static void srv_worker_drain(struct srv_worker *w)
{
    struct srv *s = w->srv;
    uint64_t now;

    h2o_timeout_unlink(&w->accept_resume);
    for (size_t i = 0; i < s->nlisten; i++) {
        h2o_socket_read_stop(w->lsock[i]);
        h2o_socket_close(w->lsock[i]);
        w->lsock[i] = NULL;
    }
    /* HTTP/2: GOAWAY, then close once open streams finish. HTTP/1.1: responses
     * carry "Connection: close" from here on. */
    h2o_context_request_shutdown(&w->ctx);
    /* libh2o 2.2.5 leaves idle HTTP/1.1 keep-alive connections open until their
     * request timeout, and offers no call to close them. It reads the timeout's
     * length afresh on every loop turn, so shortening it here closes idle
     * connections now and bounds requests still being read. */
    if (w->ctx.http1.req_timeout.timeout > SRV_DRAIN_READ_MS)
        w->ctx.http1.req_timeout.timeout = SRV_DRAIN_READ_MS;
    /* Likewise a connection that has not finished (or begun) its TLS handshake. */
    if (w->ctx.handshake_timeout.timeout > SRV_DRAIN_READ_MS)
        w->ctx.handshake_timeout.timeout = SRV_DRAIN_READ_MS;
    /* Writes still queued report back to this loop, even for requests whose
     * client has gone: wait for them too. */
    while ((w->nconns > 0 || w->hw.port.pending > 0) && (now = srv_now_ms()) < s->deadline_ms)
        h2o_evloop_run(w->ctx.loop, (int32_t)(s->deadline_ms - now));
    w->drained = w->nconns == 0 && w->hw.port.pending == 0;
}

static void *srv_worker_main(void *arg)
{
    struct srv_worker *w = arg;
    struct srv *s = w->srv;
    h2o_evloop_t *loop = h2o_evloop_create();

    h2o_context_init(&w->ctx, loop, &s->gconf);
    h2o_multithread_register_receiver(w->ctx.queue, &w->wake, srv_on_wake);
    wq_port_init(&w->hw.port, w->ctx.queue);
    w->actx.ctx = &w->ctx;
    w->actx.hosts = s->gconf.hosts;
    w->actx.ssl_ctx = s->ssl;
    for (size_t i = 0; i < s->nlisten; i++) {
        w->lsock[i] = h2o_evloop_socket_create(loop, w->fd[i], H2O_SOCKET_FLAG_DONT_READ);
        w->fd[i] = -1; /* the socket owns it now */
        w->lsock[i]->data = w;
        h2o_socket_read_start(w->lsock[i], srv_on_accept);
    }
    pthread_barrier_wait(&s->started);

    while (!atomic_load(&s->stop))
        h2o_evloop_run(loop, INT32_MAX);
    srv_worker_drain(w);
    /* A worker that was awake anyway sees `stop` before the main thread has
     * sent it a wake message; it must not free the queue that message goes to. */
    pthread_barrier_wait(&s->woken);

    /* Connections still open past the deadline reference the context: leave it
     * to process exit rather than free memory they use. Disposal stays on this
     * thread: libh2o returns buffers to thread-local free lists. */
    if (w->drained) {
        /* h2o_context_request_shutdown() armed a one-second timer for the second
         * HTTP/2 GOAWAY; with no connection left it has nothing to do, and the
         * context cannot be disposed while it is linked. */
        h2o_timeout_unlink(&w->ctx.http2._graceful_shutdown_timeout);
        h2o_multithread_queue_t *queue = w->ctx.queue;
        h2o_multithread_unregister_receiver(queue, &w->wake);
        wq_quiesce(s->app->wq);
        wq_port_dispose(&w->hw.port);
        h2o_context_dispose(&w->ctx);
        /* libh2o 2.2.5's evloop build closes the queue's pipe but never frees the queue. */
        free(queue);
        h2o_evloop_destroy(loop);
    }
    return NULL;
}

/* Lets the process hold max_connections sockets: the soft descriptor limit is
 * often 1024 while the hard limit is far higher. Where the hard limit is too
 * low, max_connections is lowered to fit, so accept() does not run out. */
static void srv_fit_nofile(struct srv *s)
{
    const struct cfg *c = s->cfg;
    rlim_t reserve = 64 + (rlim_t)c->threads * (c->nlisten + 4);
    rlim_t want = (rlim_t)c->max_connections + reserve;
    struct rlimit rl;
    struct lg_rec r;

    s->max_connections = (long)c->max_connections;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= want)
        return;
    s->max_connections = rl.rlim_cur > reserve + 1 ? (long)(rl.rlim_cur - reserve) : 1;
    lg_begin(&r, LG_WARN, "max_connections lowered to fit the descriptor limit");
    lg_uint(&r, "nofile", rl.rlim_cur);
    lg_uint(&r, "max_connections", (uint64_t)s->max_connections);
    lg_end(&r);
}

static void srv_begin_shutdown(struct srv *s, int signo)
{
    struct lg_rec r;

    lg_begin(&r, LG_INFO, "shutdown: draining");
    lg_str(&r, "signal", signo == SIGINT ? "SIGINT" : "SIGTERM");
    lg_int(&r, "connections", atomic_load(&s->app->connections));
    lg_uint(&r, "deadline_ms", s->cfg->shutdown_timeout_ms);
    lg_end(&r);
    atomic_store(&s->app->draining, true);
    s->deadline_ms = srv_now_ms() + s->cfg->shutdown_timeout_ms;
    atomic_store(&s->stop, true);
    for (unsigned w = 0; w < s->nworkers; w++)
        h2o_multithread_send_message(&s->workers[w].wake, NULL);
    pthread_barrier_wait(&s->woken);
}

static void srv_reload(struct srv *s)
{
    struct lg_rec r;

    for (size_t i = 0; i < s->nhooks; i++)
        s->hooks[i].fn(s->hooks[i].arg);
    atomic_fetch_add(&s->app->reloads, 1);
    lg_begin(&r, LG_INFO, "reload");
    lg_uint(&r, "hooks", s->nhooks);
    lg_end(&r);
}

static void srv_signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

void srv_block_signals(void)
{
    sigset_t set;
    srv_signal_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int srv_run(struct srv *s)
{
    sigset_t set;
    unsigned undrained = 0;
    struct lg_rec r;
    int signo, rc = 0;

    /* Workers inherit this mask, so the signals reach only sigwait() below. */
    srv_block_signals();
    srv_signal_set(&set);
    srv_fit_nofile(s);

    pthread_barrier_init(&s->started, NULL, s->nworkers + 1);
    pthread_barrier_init(&s->woken, NULL, s->nworkers + 1);
    for (unsigned w = 0; w < s->nworkers; w++) {
        if (pthread_create(&s->workers[w].tid, NULL, srv_worker_main, &s->workers[w]) != 0) {
            /* The barrier counts every worker; without them all the server cannot start. */
            lg_msg(LG_ERROR, "cannot create a worker thread");
            abort();
        }
    }
    pthread_barrier_wait(&s->started);
    pthread_barrier_destroy(&s->started);

    for (size_t i = 0; i < s->nlisten; i++) {
        lg_begin(&r, LG_INFO, "listening");
        lg_str(&r, "addr", s->addr[i]);
        lg_bool(&r, "tls", s->ssl != NULL);
        lg_str(&r, "protocols", s->ssl != NULL ? "h2,http/1.1" : "http/1.1,h2c");
        lg_end(&r);
    }
    lg_begin(&r, LG_INFO, "serving");
    lg_uint(&r, "threads", s->nworkers);
    lg_int(&r, "pid", getpid());
    lg_end(&r);

    for (;;) {
        if (sigwait(&set, &signo) != 0)
            continue;
        if (signo == SIGHUP) {
            srv_reload(s);
            continue;
        }
        srv_begin_shutdown(s, signo);
        break;
    }

    for (unsigned w = 0; w < s->nworkers; w++) {
        pthread_join(s->workers[w].tid, NULL);
        if (!s->workers[w].drained)
            undrained++;
    }
    pthread_barrier_destroy(&s->woken);
    lg_begin(&r, undrained > 0 ? LG_WARN : LG_INFO, "stopped");
    lg_int(&r, "connections_cut", atomic_load(&s->app->connections));
    lg_end(&r);
    if (undrained > 0)
        rc = ADS_ESHUTTING_DOWN;
    return rc;
}

void srv_free(struct srv *s)
{
    if (s == NULL)
        return;
    for (unsigned w = 0; w < s->nworkers; w++) {
        for (size_t i = 0; i < CFG_MAX_LISTEN; i++) {
            if (s->workers[w].fd[i] >= 0)
                close(s->workers[w].fd[i]);
        }
    }
    if (s->gconf_inited)
        h2o_config_dispose(&s->gconf);
    if (s->ssl != NULL)
        SSL_CTX_free(s->ssl);
    free(s->workers);
    free(s);
}
