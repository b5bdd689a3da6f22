/*
 * lconn: see conn.h. nghttp2 is used in its memory-buffer mode
 * (nghttp2_session_mem_send / mem_recv), so the same code serves plain
 * sockets and OpenSSL, and output is coalesced into one write per flush.
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WINDOW (16 * 1024 * 1024)

int64_t lconn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int lconn_target_parse(const char *url, const char *key, struct lconn_target *t)
{
    memset(t, 0, sizeof(*t));
    const char *rest;
    if (strncmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        rest = url + 8;
        t->tls = true;
    } else {
        return -EINVAL;
    }
    size_t hostlen = strcspn(rest, "/");
    if (hostlen == 0 || hostlen >= sizeof(t->host))
        return -EINVAL;
    char hostport[256];
    memcpy(hostport, rest, hostlen);
    hostport[hostlen] = '\0';
    snprintf(t->authority, sizeof(t->authority), "%s", hostport);
    const char *host = hostport, *port = t->tls ? "443" : "80";
    char *colon;
    if (hostport[0] == '[') {
        char *end = strchr(hostport, ']');
        if (!end)
            return -EINVAL;
        *end = '\0';
        host = hostport + 1;
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return -EINVAL;
    } else if ((colon = strrchr(hostport, ':')) != NULL) {
        *colon = '\0';
        port = colon + 1;
    }
    if (strlen(port) == 0 || strlen(port) >= sizeof(t->port) || strspn(port, "0123456789") != strlen(port))
        return -EINVAL;
    snprintf(t->host, sizeof(t->host), "%s", host);
    snprintf(t->port, sizeof(t->port), "%s", port);
    if (key && key[0]) {
        if (strlen(key) > sizeof(t->auth_header) - 8)
            return -EINVAL;
        snprintf(t->auth_header, sizeof(t->auth_header), "Bearer %s", key);
    }
    if (t->tls) {
        /* A load generator, like h2load, does not verify the certificate:
         * it runs against test daemons with self-signed ones. */
        t->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!t->ssl_ctx)
            return -ENOMEM;
        SSL_CTX_set_verify(t->ssl_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_min_proto_version(t->ssl_ctx, TLS1_2_VERSION);
        SSL_CTX_set_mode(t->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        static const unsigned char alpn[] = "\x02h2";
        SSL_CTX_set_alpn_protos(t->ssl_ctx, alpn, sizeof(alpn) - 1);
    }
    return 0;
}

void lconn_target_done(struct lconn_target *t)
{
    SSL_CTX_free(t->ssl_ctx);
    t->ssl_ctx = NULL;
}

/* ---- nghttp2 callbacks ---- */

static void finish(struct lconn *c, struct lconn_stream *s, int error, int64_t now)
{
    c->done(c->arg, s, now, error);
    s->in_use = false;
    c->freelist[c->nfree++] = (unsigned)(s - c->slots);
    c->inflight--;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    (void)flags;
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7) != 0)
        return 0;
    struct lconn_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s && valuelen == 3) {
        int st = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        /* An interim 1xx response is followed by the final one. */
        if (st >= 200 && st <= 599)
            s->status = st;
    }
    return 0;
}

static int on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                   void *user)
{
    (void)flags;
    (void)user;
    struct lconn_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!s)
        return 0;
    s->rx += len;
    size_t room = LCONN_HEAD_MAX - s->head_len;
    size_t n = len < room ? len : room;
    memcpy(s->head + s->head_len, data, n);
    s->head_len += n;
    s->head[s->head_len] = '\0';
    if (s->req.keep_response && s->req.response.len + len <= LCONN_KEEP_MAX)
        lgen_buf_append(&s->req.response, data, len);
    return 0;
}

static int on_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user)
{
    struct lconn *c = user;
    struct lconn_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!s || !s->in_use)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    finish(c, s, (error_code != NGHTTP2_NO_ERROR || s->status == 0) ? -EPROTO : 0, lconn_now_ns());
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    (void)user;
    (void)session;
    (void)frame;
    return 0;
}

static ssize_t body_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *source, void *user)
{
    (void)session;
    (void)stream_id;
    (void)user;
    struct lconn_stream *s = source->ptr;
    size_t left = s->req.body.len - s->body_sent;
    size_t n = left < len ? left : len;
    memcpy(buf, s->req.body.p + s->body_sent, n);
    s->body_sent += n;
    if (s->body_sent == s->req.body.len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- lifecycle ---- */

void lconn_init(struct lconn *c, const struct lconn_target *t, unsigned streams, lconn_done_fn *done, void *arg)
{
    c->target = t;
    c->fd = -1;
    c->ssl = NULL;
    c->h2 = NULL;
    c->limit = streams > LCONN_STREAMS_MAX ? LCONN_STREAMS_MAX : (streams ? streams : 1);
    c->inflight = 0;
    c->want_write = false;
    c->dead = false;
    c->done = done;
    c->arg = arg;
    c->olen = c->ooff = 0;
    c->pend = NULL;
    c->pend_len = 0;
    c->nfree = 0;
    for (unsigned i = LCONN_STREAMS_MAX; i-- > 0;) {
        c->slots[i].in_use = false;
        c->slots[i].conn = c;
        c->freelist[c->nfree++] = i;
    }
}

static int tcp_connect(const struct lconn_target *t, int *ret_fd)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0)
        return rc == EAI_MEMORY ? -ENOMEM : -EHOSTUNREACH;
    int err = -ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            freeaddrinfo(res);
            *ret_fd = fd;
            return 0;
        }
        err = -errno;
        close(fd);
    }
    freeaddrinfo(res);
    return err;
}

int lconn_open(struct lconn *c)
{
    const struct lconn_target *t = c->target;
    int fd = -1, rc = tcp_connect(t, &fd);
    if (rc < 0)
        return rc;
    c->fd = fd;
    if (t->tls) {
        c->ssl = SSL_new(t->ssl_ctx);
        if (!c->ssl)
            goto fail_nomem;
        SSL_set_fd(c->ssl, fd);
        SSL_set_tlsext_host_name(c->ssl, t->host);
        if (SSL_connect(c->ssl) != 1) {
            ERR_clear_error();
            rc = -EPROTO;
            goto fail;
        }
        const unsigned char *proto;
        unsigned plen;
        SSL_get0_alpn_selected(c->ssl, &proto, &plen);
        if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
            rc = -EPROTO;
            goto fail;
        }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        goto fail_nomem;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    rc = nghttp2_session_client_new(&c->h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        goto fail_nomem;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, LCONN_STREAMS_MAX},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, WINDOW) != 0)
        goto fail_nomem;
    return 0;

fail_nomem:
    rc = -ENOMEM;
fail:
    lconn_close(c);
    return rc;
}

void lconn_close(struct lconn *c)
{
    if (c->h2) {
        nghttp2_session_del(c->h2);
        c->h2 = NULL;
    }
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->olen = c->ooff = 0;
    c->pend = NULL;
    c->pend_len = 0;
    c->want_write = false;
}

void lconn_free(struct lconn *c)
{
    for (unsigned i = 0; i < LCONN_STREAMS_MAX; i++) {
        lgen_buf_free(&c->slots[i].req.body);
        lgen_buf_free(&c->slots[i].req.response);
    }
}

void lconn_fail(struct lconn *c, int error, int64_t now_ns)
{
    c->dead = true;
    for (unsigned i = 0; i < LCONN_STREAMS_MAX; i++)
        if (c->slots[i].in_use)
            finish(c, &c->slots[i], error, now_ns);
}

/* ---- streams ---- */

struct lconn_stream *lconn_slot(struct lconn *c)
{
    if (c->dead || c->fd < 0 || c->inflight >= c->limit || c->nfree == 0)
        return NULL;
    /* The server's own limit, once its SETTINGS arrived. */
    uint32_t remote = nghttp2_session_get_remote_settings(c->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (c->inflight >= remote)
        return NULL;
    struct lconn_stream *s = &c->slots[c->freelist[--c->nfree]];
    s->in_use = true;
    s->status = 0;
    s->rx = 0;
    s->head_len = 0;
    s->head[0] = '\0';
    s->body_sent = 0;
    lgen_buf_reset(&s->req.response);
    c->inflight++;
    return s;
}

void lconn_unslot(struct lconn *c, struct lconn_stream *s)
{
    s->in_use = false;
    c->freelist[c->nfree++] = (unsigned)(s - c->slots);
    c->inflight--;
}

#define NV(n, v)                                                                                                       \
    {                                                                                                                  \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE                                 \
    }

int lconn_submit(struct lconn *c, struct lconn_stream *s, int64_t now_ns)
{
    const struct lconn_target *t = c->target;
    char clen[24];
    nghttp2_nv nva[9] = {
        NV(":method", s->req.method), NV(":scheme", t->tls ? "https" : "http"), NV(":authority", t->authority),
        NV(":path", s->req.path),     NV("user-agent", "adsmith-load"),
    };
    size_t n = 5;
    if (t->auth_header[0])
        nva[n++] = (nghttp2_nv)NV("authorization", t->auth_header);
    nghttp2_data_provider prd = {.source = {.ptr = s}, .read_callback = body_read};
    if (s->req.content_type && s->req.body.len) {
        nva[n++] = (nghttp2_nv)NV("content-type", s->req.content_type);
        snprintf(clen, sizeof(clen), "%zu", s->req.body.len);
        nva[n++] = (nghttp2_nv)NV("content-length", clen);
        /* MessagePack bodies (--msgpack) still want JSON answers: the bid simulator reads them */
        if (strcmp(s->req.content_type, "application/msgpack") == 0)
            nva[n++] = (nghttp2_nv)NV("accept", "application/json");
    }
    s->sent_ns = now_ns;
    int32_t id = nghttp2_submit_request(c->h2, NULL, nva, n, s->req.body.len ? &prd : NULL, s);
    if (id < 0) {
        lconn_unslot(c, s);
        return -EPROTO;
    }
    c->tx_bytes += s->req.body.len;
    return 0;
}

/* ---- I/O ---- */

static ssize_t sock_read(struct lconn *c, uint8_t *buf, size_t len)
{
    if (c->ssl) {
        int n = SSL_read(c->ssl, buf, (int)len);
        if (n > 0)
            return n;
        int e = SSL_get_error(c->ssl, n);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return -EAGAIN;
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -ECONNRESET;
    }
    ssize_t n = read(c->fd, buf, len);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? -EAGAIN : -errno;
    return n;
}

static ssize_t sock_write(struct lconn *c, const uint8_t *buf, size_t len)
{
    if (c->ssl) {
        int n = SSL_write(c->ssl, buf, (int)len);
        if (n > 0)
            return n;
        int e = SSL_get_error(c->ssl, n);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return -EAGAIN;
        return -ECONNRESET;
    }
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? -EAGAIN : -errno;
    return n;
}

int lconn_read(struct lconn *c)
{
    uint8_t buf[65536];
    if (c->fd < 0)
        return -ENOTCONN;
    for (;;) {
        ssize_t n = sock_read(c, buf, sizeof(buf));
        if (n == -EAGAIN)
            break;
        if (n == 0)
            return -ECONNRESET;
        if (n < 0)
            return (int)n;
        c->rx_bytes += (uint64_t)n;
        ssize_t used = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
        if (used < 0)
            return -EPROTO;
        if ((size_t)n < sizeof(buf) && !c->ssl)
            break; /* a short read means the socket is empty; saves a read() returning EAGAIN */
    }
    /* What nghttp2 wants to send in reply (WINDOW_UPDATE, SETTINGS ACK) goes
     * out with the next requests on the owner's lconn_flush(): one write, not two. */
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
        return -ECONNRESET;
    return 0;
}

int lconn_flush(struct lconn *c)
{
    if (c->fd < 0)
        return -ENOTCONN;
    for (;;) {
        /* Fill obuf from nghttp2 (pend first: what did not fit last time). */
        while (c->olen < LCONN_OBUF) {
            if (c->pend_len == 0) {
                const uint8_t *data;
                ssize_t n = nghttp2_session_mem_send(c->h2, &data);
                if (n < 0)
                    return -EPROTO;
                if (n == 0)
                    break;
                c->pend = data;
                c->pend_len = (size_t)n;
            }
            size_t room = LCONN_OBUF - c->olen;
            size_t k = c->pend_len < room ? c->pend_len : room;
            memcpy(c->obuf + c->olen, c->pend, k);
            c->olen += k;
            c->pend += k;
            c->pend_len -= k;
        }
        if (c->ooff == c->olen) {
            c->olen = c->ooff = 0;
            c->want_write = false;
            if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
                return -ECONNRESET; /* GOAWAY handled and nothing left: the server closed the session */
            return 0;
        }
        while (c->ooff < c->olen) {
            ssize_t n = sock_write(c, c->obuf + c->ooff, c->olen - c->ooff);
            if (n == -EAGAIN) {
                c->want_write = true;
                return 0;
            }
            if (n < 0)
                return (int)n;
            c->ooff += (size_t)n;
        }
        c->olen = c->ooff = 0;
    }
}
