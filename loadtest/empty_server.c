/*
 * adsmith-empty: the "empty libh2o handler" baseline of the bid benchmark
 * (issue 6, loadtest/bench-bid.sh). A libh2o (evloop) server with the
 * daemon's HTTP settings and no application: every request, any method and
 * path, is answered 200 with a tiny fixed JSON body once libh2o has read
 * (and buffered) its whole body, which is then dropped. Plain TCP only:
 * HTTP/1.1 and HTTP/2 with prior knowledge (h2c), as the daemon serves
 * without TLS.
 *
 *   adsmith-empty [--listen HOST:PORT] [--threads N] [--max-body BYTES]
 *                 [--stall-at-ms T --stall-ms S]
 *
 * --listen defaults to 127.0.0.1:0 (a free port). Each of the N worker
 * threads (default 1) runs its own event loop and accepts on its own
 * SO_REUSEPORT socket bound to the same address, as the daemon does. The
 * bound port is printed on stdout as "port N" once every worker listens.
 * --max-body is the daemon's max_body (default 262144); libh2o reads up to
 * twice that before refusing a request, as in the daemon. Runs until killed
 * (SIGTERM, SIGINT).
 *
 * --stall-at-ms T --stall-ms S (issue 8, the coordinated-omission test):
 * once, for the first request that arrives T ms or more after the first
 * request of all, the handler sleeps S ms before answering, so that worker's
 * event loop answers nothing for S ms and every request arriving meanwhile
 * waits (with several threads only the one worker stalls).
 *
 * Exit status: 2 for usage, 1 when it cannot listen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http1.h>
#include <h2o/http2.h>

#define EMPTY_THREADS_MAX 64
#define EMPTY_BODY "{\"ok\":true}"

struct empty_worker {
    h2o_context_t ctx;
    h2o_accept_ctx_t actx;
    h2o_socket_t *listener;
    pthread_t tid;
    int fd;
};

static h2o_globalconf_t gconf;

/* The one-off stall: off when stall_ms is 0. first_ns is the first request's
 * arrival (0 until then), stalled turns true once. */
static unsigned long stall_at_ms, stall_ms;
static _Atomic int64_t first_ns;
static atomic_bool stalled;

static int64_t empty_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Blocks the calling worker's loop for stall_ms, once, when the time has come. */
static void empty_maybe_stall(void)
{
    if (stall_ms == 0 || atomic_load_explicit(&stalled, memory_order_relaxed))
        return;
    int64_t now = empty_now_ns(), zero = 0;
    if (!atomic_compare_exchange_strong(&first_ns, &zero, now) && now - zero >= (int64_t)stall_at_ms * 1000000) {
        bool was = false;
        if (atomic_compare_exchange_strong(&stalled, &was, true)) {
            struct timespec ts = {(time_t)(stall_ms / 1000), (long)(stall_ms % 1000) * 1000000};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
    }
}

static int empty_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t body = h2o_iovec_init(H2O_STRLIT(EMPTY_BODY));

    (void)self;
    empty_maybe_stall();
    /* libh2o has read the whole request body into req->entity before calling
     * a handler; it is discarded with the request's memory pool. */
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_start_response(req, &generator);
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    return 0;
}

static void empty_on_accept(h2o_socket_t *listener, const char *err)
{
    struct empty_worker *w = listener->data;
    h2o_socket_t *sock;

    if (err != NULL)
        return;
    /* Take every pending connection (at most a bounded number per wake-up). */
    for (int i = 0; i < 64 && (sock = h2o_evloop_socket_accept(listener)) != NULL; i++)
        h2o_accept(&w->actx, sock);
}

static void *empty_run(void *arg)
{
    struct empty_worker *w = arg;

    h2o_context_init(&w->ctx, h2o_evloop_create(), &gconf);
    w->actx.ctx = &w->ctx;
    w->actx.hosts = gconf.hosts;
    w->listener = h2o_evloop_socket_create(w->ctx.loop, w->fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listener->data = w;
    h2o_socket_read_start(w->listener, empty_on_accept);
    for (;;)
        h2o_evloop_run(w->ctx.loop, INT32_MAX);
    return NULL;
}

/* Splits "HOST:PORT" ("[::1]:PORT" for IPv6) and resolves it numerically. */
static int empty_resolve(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;

    if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
        return -EINVAL;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL)
        return -EINVAL;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int empty_listen(const struct sockaddr_storage *ss, socklen_t len, int *ret_fd)
{
    int on = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    *ret_fd = fd;
    return 0;
}

static void empty_usage(FILE *f)
{
    fputs("usage: adsmith-empty [--listen HOST:PORT] [--threads N] [--max-body BYTES]\n"
          "                     [--stall-at-ms T --stall-ms S]\n"
          "  an empty libh2o server (h2c and HTTP/1.1): 200 and a fixed body for every request;\n"
          "  prints \"port N\" on stdout when it listens; with --stall-ms, once, T ms after the\n"
          "  first request, a worker's loop blocks for S ms (a stalled server, on purpose)\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"max-body", required_argument, NULL, 'b'},
                                         {"stall-at-ms", required_argument, NULL, 'a'},
                                         {"stall-ms", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *listen_spec = "127.0.0.1:0";
    unsigned long threads = 1, max_body = 256 * 1024;
    struct empty_worker *workers;
    struct sockaddr_storage ss;
    socklen_t len;
    char *end;
    int c, rc;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen_spec = optarg; break;
        case 't':
            errno = 0;
            threads = strtoul(optarg, &end, 10);
            if (errno || *end || threads == 0 || threads > EMPTY_THREADS_MAX) {
                fprintf(stderr, "adsmith-empty: --threads: 1-%d\n", EMPTY_THREADS_MAX);
                return 2;
            }
            break;
        case 'b':
            errno = 0;
            max_body = strtoul(optarg, &end, 10);
            if (errno || *end || max_body == 0 || max_body > 64ul * 1024 * 1024) {
                fputs("adsmith-empty: --max-body: 1-67108864 bytes\n", stderr);
                return 2;
            }
            break;
        case 'a':
        case 's': {
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || *end || optarg[0] == '\0' || optarg[0] == '-' || v > 600000) {
                fprintf(stderr, "adsmith-empty: --%s: 0-600000 ms\n", c == 'a' ? "stall-at-ms" : "stall-ms");
                return 2;
            }
            *(c == 'a' ? &stall_at_ms : &stall_ms) = v;
            break;
        }
        case 'h': empty_usage(stdout); return 0;
        default: empty_usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        empty_usage(stderr);
        return 2;
    }
    if (empty_resolve(listen_spec, &ss, &len) != 0) {
        fprintf(stderr, "adsmith-empty: --listen: cannot resolve '%s' (HOST:PORT, numeric)\n", listen_spec);
        return 2;
    }
    if ((workers = calloc(threads, sizeof(*workers))) == NULL) {
        fputs("adsmith-empty: out of memory\n", stderr);
        return 1;
    }
    /* The first socket picks the port when it is 0; the others bind the same one. */
    for (unsigned long i = 0; i < threads; i++) {
        if ((rc = empty_listen(&ss, len, &workers[i].fd)) != 0) {
            fprintf(stderr, "adsmith-empty: cannot listen on %s: %s\n", listen_spec, strerror(-rc));
            return 1;
        }
        if (i == 0 && getsockname(workers[0].fd, (struct sockaddr *)&ss, &len) != 0) {
            fprintf(stderr, "adsmith-empty: getsockname: %s\n", strerror(errno));
            return 1;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    /* The daemon's settings where they matter for a request (service/http/server.c). */
    h2o_config_init(&gconf);
    gconf.server_name = h2o_iovec_init(H2O_STRLIT("adsmith-empty"));
    gconf.max_request_entity_size = (size_t)max_body * 2;
    gconf.http1.upgrade_to_http2 = 1;
    h2o_hostconf_t *host = h2o_config_register_host(&gconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = empty_on_req;

    for (unsigned long i = 0; i < threads; i++) {
        if ((rc = pthread_create(&workers[i].tid, NULL, empty_run, &workers[i])) != 0) {
            fprintf(stderr, "adsmith-empty: cannot start a thread: %s\n", strerror(rc));
            return 1;
        }
    }
    printf("port %u\n", ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                       : ((struct sockaddr_in *)&ss)->sin_port));
    fflush(stdout);
    pthread_join(workers[0].tid, NULL);
    return 0;
}
