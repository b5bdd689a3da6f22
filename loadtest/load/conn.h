/*
 * lconn: one HTTP/2 client connection of adsmith-load (libnghttp2), over
 * cleartext TCP with prior knowledge (h2c) or TLS with ALPN h2 (OpenSSL).
 *
 * Connecting (and the TLS handshake) blocks: it happens before the measured
 * part of a run, or on a rare reconnect. After that the socket is
 * non-blocking and the owner drives it from its event loop: it calls
 * lconn_read() when the socket is readable and lconn_flush() after
 * submitting and when it is writable, and watches for EPOLLOUT while
 * `want_write` is set. Neither calls back into the owner except through
 * `done`, which runs inside lconn_read() once per finished stream and must
 * not submit requests itself (nghttp2 is mid-frame then): record, and
 * submit after lconn_read() returns. lconn_read() itself never writes:
 * what nghttp2 answers (WINDOW_UPDATE, SETTINGS ACK) leaves with the next
 * lconn_flush(), together with the new requests, in one write.
 *
 * A connection owns LCONN_STREAMS_MAX stream slots, each with a request
 * whose body buffer is reused: past the first requests adsmith-load itself
 * allocates nothing per request (nghttp2 allocates its own stream state).
 */
#ifndef ADSMITH_LOAD_CONN_H
#define ADSMITH_LOAD_CONN_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "gen.h"

#define LCONN_STREAMS_MAX 100 /* the daemon's fixed SETTINGS_MAX_CONCURRENT_STREAMS */
#define LCONN_HEAD_MAX 512    /* bytes of each response body kept for messages */
#define LCONN_OBUF 65536
#define LCONN_KEEP_MAX (1024 * 1024) /* bytes of a response body kept whole (req.keep_response) */

/** Where to connect: parsed from --url by lconn_target_parse(). */
struct lconn_target {
    char host[256];
    char port[8];
    char authority[272];
    bool tls;
    SSL_CTX *ssl_ctx;      /* made by lconn_target_parse() for https; freed by lconn_target_done() */
    char auth_header[160]; /* "Bearer adsk_..." or "" */
};

struct lconn;

struct lconn_stream {
    struct lgen_req req;
    struct lconn *conn;
    size_t body_sent;
    int64_t sent_ns;
    int status;  /* :status, 0 until it arrives */
    uint64_t rx; /* response body bytes */
    char head[LCONN_HEAD_MAX + 1];
    size_t head_len;
    bool in_use;
};

/**
 * Called once per finished stream. @p error is 0 when a whole response
 * arrived (any status), or a negative errno value (-ECONNRESET when the
 * connection broke, -EPROTO when the stream was reset). The slot is
 * released after the call.
 */
typedef void lconn_done_fn(void *arg, struct lconn_stream *s, int64_t now_ns, int error);

struct lconn {
    const struct lconn_target *target;
    int fd; /* -1 when closed */
    SSL *ssl;
    nghttp2_session *h2;
    unsigned limit; /* streams this connection may have in flight */
    unsigned inflight;
    unsigned feedback_inflight; /* kept by the owner (adsmith-load's run): its feedback streams in flight */
    bool want_write;            /* output is waiting for the socket */
    bool dead;                  /* failed; lconn_close() then lconn_open() to reuse */
    lconn_done_fn *done;
    void *arg;
    uint64_t tx_bytes, rx_bytes;
    uint8_t obuf[LCONN_OBUF];
    size_t olen, ooff;
    const uint8_t *pend; /* nghttp2 output that did not fit in obuf */
    size_t pend_len;
    unsigned nfree;
    unsigned freelist[LCONN_STREAMS_MAX];
    struct lconn_stream slots[LCONN_STREAMS_MAX];
};

/**
 * Parses @p url ("http://host:port" for h2c, "https://host:port" for TLS;
 * a path is ignored) into @p t and sets the API key (may be NULL or "").
 * @return 0, -EINVAL for anything else, -ENOMEM.
 */
int lconn_target_parse(const char *url, const char *key, struct lconn_target *t);

/** Frees what lconn_target_parse() made. */
void lconn_target_done(struct lconn_target *t);

/** Prepares @p c (zeroed by the caller or fresh from lconn_close()) for lconn_open(); slots keep their buffers. */
void lconn_init(struct lconn *c, const struct lconn_target *t, unsigned streams, lconn_done_fn *done, void *arg);

/**
 * Connects, handshakes (TLS, ALPN h2) and queues the HTTP/2 preface and
 * SETTINGS. @return 0; -errno from the socket; -EPROTO when TLS failed or
 * the server did not select h2; -ENOMEM.
 */
int lconn_open(struct lconn *c);

/** Closes the socket and the session, failing nothing: call lconn_fail() first for in-flight streams. */
void lconn_close(struct lconn *c);

/** Frees the slots' buffers; @p c must be closed. */
void lconn_free(struct lconn *c);

/** A free stream slot while fewer than `limit` streams are in flight, else NULL. */
struct lconn_stream *lconn_slot(struct lconn *c);

/** Gives a slot back without submitting it. */
void lconn_unslot(struct lconn *c, struct lconn_stream *s);

/** Submits the request in @p s (from lconn_slot()); bytes go out on lconn_flush(). @return 0 or -EPROTO. */
int lconn_submit(struct lconn *c, struct lconn_stream *s, int64_t now_ns);

/** Reads what the socket holds and runs `done` for finished streams; call lconn_flush() after. @return 0, or negative
 * when the connection failed. */
int lconn_read(struct lconn *c);

/** Writes pending output until done or the socket is full. @return 0, or negative when the connection failed. */
int lconn_flush(struct lconn *c);

/** Marks @p c dead and runs `done` with @p error for each stream in flight. */
void lconn_fail(struct lconn *c, int error, int64_t now_ns);

/** CLOCK_MONOTONIC in nanoseconds. */
int64_t lconn_now_ns(void);

#endif
