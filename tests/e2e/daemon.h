/*
 * e2e: what the end-to-end tests need to run the real daemon and talk to it.
 *
 * A test owns one struct e2e_daemon. e2e_daemon_init() makes a private
 * directory (mkdtemp) that holds everything the test creates: the daemon's
 * data directory, its stdout and stderr, a generated TLS certificate.
 * e2e_daemon_start() runs `$ADSMITH_BIN serve` on an ephemeral loopback port
 * and returns once the daemon logged "serving"; the e2e_http*() and e2e_tcp*()
 * helpers then reach it over 127.0.0.1 only. e2e_daemon_done() kills a daemon
 * still running and removes the directory.
 *
 * Functions return 0 or a negative errno value. Those that can fail for a
 * reason a person needs to read (a daemon that exited early, a missing tool)
 * also write a sentence, with the tail of the daemon's log, into d->why; tests
 * print it in their assertion message.
 *
 * None of this is thread-safe on one struct e2e_daemon, except e2e_http(),
 * which only reads it and may run on many threads at once.
 */
#ifndef ADSMITH_E2E_DAEMON_H
#define ADSMITH_E2E_DAEMON_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define E2E_DIR_MAX 256 /* the private directory's path; files in it fit in E2E_PATH_MAX */
#define E2E_PATH_MAX 512
#define E2E_WHY_MAX 4096
#define E2E_BODY_MAX (64 * 1024)
#define E2E_READY_TIMEOUT_MS 10000

struct e2e_daemon {
    char dir[E2E_DIR_MAX];        /* the private directory; "" before e2e_daemon_init() */
    char data_dir[E2E_PATH_MAX];  /* <dir>/data, passed as --data-dir by e2e_daemon_start() */
    char log_path[E2E_PATH_MAX];  /* <dir>/stderr.log: the daemon's JSON log */
    char out_path[E2E_PATH_MAX];  /* <dir>/stdout.log */
    char cert_path[E2E_PATH_MAX]; /* <dir>/cert.pem once e2e_tls_cert() ran, else "" */
    char key_path[E2E_PATH_MAX];  /* <dir>/key.pem, likewise */
    pid_t pid;                    /* the daemon; 0 when none was spawned */
    bool reaped;                  /* the process was waited for and `status` is valid */
    int status;                   /* exit status, or 128 + signal number when killed */
    int port;                     /* port of the first "listening" record, after start */
    char why[E2E_WHY_MAX];        /* why the last failing call failed */
    char admin_key[64];           /* an admin API key for data_dir, made on first need; "" before */
};

/**
 * Zeroes @p d, creates its private directory under $TMPDIR (or /tmp; -ENAMETOOLONG
 * when that path is over 200 bytes) and
 * initialises libcurl for the process. Call once per test, before any other
 * e2e function, from the test's main thread.
 * @return 0, or a negative errno value with d->why set.
 */
int e2e_daemon_init(struct e2e_daemon *d);

/**
 * Kills (SIGKILL) and reaps the daemon if it still runs, removes the private
 * directory and releases libcurl. Safe to call on a struct that init never
 * reached, and more than once.
 */
void e2e_daemon_done(struct e2e_daemon *d);

/**
 * Runs $ADSMITH_BIN with @p args (the arguments after the program name,
 * NULL-terminated) without waiting for it. stdin is /dev/null, stdout goes to
 * d->out_path and stderr to d->log_path. The child gets the test's
 * environment minus every ADSMITH_* variable, so no setting leaks in from the
 * caller, and with print_suppressions=0 put before the caller's LSAN_OPTIONS
 * (meson's names tests/lsan.supp), so that a sanitizer build's stderr stays
 * JSON records only. The child dies with the test process (PR_SET_PDEATHSIG).
 * @return 0, -EBUSY if a daemon of @p d was spawned before, or a negative errno.
 */
int e2e_daemon_spawn(struct e2e_daemon *d, const char *const args[]);

/**
 * Runs `adsmith serve --listen 127.0.0.1:0 --data-dir <dir>/data --threads 2`
 * followed by @p extra_args (NULL-terminated; NULL for none) and waits up to
 * E2E_READY_TIMEOUT_MS for the "serving" record. Sets d->port from the first
 * "listening" record.
 * @return 0; -ECHILD when the daemon exited before it was ready (d->status
 *         holds its status); -ETIMEDOUT; -EPROTO when a "listening" record has
 *         no usable address. d->why then carries the tail of the log.
 */
int e2e_daemon_start(struct e2e_daemon *d, const char *const extra_args[]);

/** Sends @p signo to the daemon. Returns 0, -ESRCH when it was already reaped, or -errno from kill(2). */
int e2e_daemon_signal(struct e2e_daemon *d, int signo);

/** Returns true while the daemon process exists (it reaps it when it has exited). */
bool e2e_daemon_running(struct e2e_daemon *d);

/**
 * Waits up to @p timeout_ms for the daemon to exit, polling waitpid(2).
 * @return 0 with its exit status (128 + signal number if a signal killed it)
 *         in @p ret_status; -ETIMEDOUT when it still runs; -ESRCH when none was spawned.
 */
int e2e_daemon_wait(struct e2e_daemon *d, int timeout_ms, int *ret_status);

/** Sends @p signo, then e2e_daemon_wait(). */
int e2e_daemon_stop(struct e2e_daemon *d, int signo, int timeout_ms, int *ret_status);

/**
 * Finds the first complete log record whose "msg" is @p msg.
 * @return 0 with the parsed record in @p ret_record (the caller frees it with
 *         cJSON_Delete()); -ENOENT when there is none yet; -errno when the log
 *         cannot be read.
 */
int e2e_log_find(const struct e2e_daemon *d, const char *msg, cJSON **ret_record);

/** Returns true when the log holds a record whose "msg" is @p msg. */
bool e2e_log_has(const struct e2e_daemon *d, const char *msg);

/** Polls the log every 10 ms for up to @p timeout_ms for a record with "msg" @p msg. Returns 0 or -ETIMEDOUT. */
int e2e_log_wait(const struct e2e_daemon *d, const char *msg, int timeout_ms);

/**
 * Checks the log contract: every line of the daemon's stderr is a JSON object
 * with string members "ts", "level" and "msg". Anything else (a sanitizer
 * report, a stray printf) fails the check.
 * @return 0, or -EBADMSG with the first offending line in d->why.
 */
int e2e_log_check(struct e2e_daemon *d);

/**
 * Reads the file @p path into @p buf (at most @p cap - 1 bytes, NUL-terminated).
 * @return 0 with the length in @p ret_len, -EFBIG when the file did not fit
 *         (buf then holds its first cap - 1 bytes), or -errno.
 */
int e2e_file_read(const char *path, char *buf, size_t cap, size_t *ret_len);

/**
 * Generates a self-signed P-256 certificate for CN=localhost with
 * subjectAltName IP:127.0.0.1 and DNS:localhost, valid two days, by running
 * the openssl command-line tool. Fills d->cert_path and d->key_path.
 * @return 0, or a negative errno with d->why set (openssl's output included).
 */
int e2e_tls_cert(struct e2e_daemon *d);

/** Milliseconds on CLOCK_MONOTONIC, for measuring how long something took. */
uint64_t e2e_now_ms(void);

/* ---- raw TCP, for what curl cannot be made to do ---- */

/** Connects a blocking TCP socket to 127.0.0.1:@p port. Returns 0 with the descriptor in @p ret_fd, or -errno. */
int e2e_tcp_connect(int port, int *ret_fd);

/** Polls connect() to 127.0.0.1:@p port every 10 ms until it is refused. Returns 0, or -ETIMEDOUT. */
int e2e_tcp_wait_refused(int port, int timeout_ms);

/** Writes all @p len bytes of @p data. Returns 0 or -errno. */
int e2e_tcp_send(int fd, const char *data, size_t len);

/**
 * Reads one HTTP/1.1 response that carries a Content-Length (the daemon always
 * sends one) into @p buf (NUL-terminated), waiting at most @p timeout_ms in all.
 * @return 0 with its total length in @p ret_len; -ETIMEDOUT; -ECONNRESET when
 *         the peer closed first; -EFBIG when it does not fit in @p cap - 1 bytes.
 */
int e2e_tcp_read_response(int fd, int timeout_ms, char *buf, size_t cap, size_t *ret_len);

/**
 * Waits up to @p timeout_ms for the peer to close the connection (read returns
 * 0 or fails with ECONNRESET), discarding any bytes that arrive first.
 * Returns 0 or -ETIMEDOUT.
 */
int e2e_tcp_wait_eof(int fd, int timeout_ms);

/* ---- HTTP through libcurl ---- */

enum e2e_proto {
    E2E_HTTP1,       /* HTTP/1.1 over cleartext TCP */
    E2E_H2C,         /* HTTP/2 over cleartext TCP with prior knowledge */
    E2E_H2C_UPGRADE, /* HTTP/1.1 request carrying Upgrade: h2c */
    E2E_H2_TLS,      /* TLS with ALPN offering h2, then http/1.1 */
    E2E_HTTP1_TLS,   /* TLS with ALPN offering http/1.1 only */
};

struct e2e_req {
    enum e2e_proto proto;
    const char *method; /* NULL: GET, or POST when there is a body; "HEAD" asks for no body */
    const char *path;   /* e.g. "/healthz" */
    const char *host;   /* NULL: "127.0.0.1"; any other name is resolved to 127.0.0.1 */
    const void *body;   /* request body of body_len bytes; NULL: none (unless read_fn) */
    size_t body_len;
    curl_read_callback read_fn; /* streams the body_len bytes of the body instead of `body` */
    void *read_arg;
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated; NULL: none */
    const char *capture;        /* a response header to capture into e2e_resp.header; NULL: none */
    const char *ca_file;        /* TLS trust anchors; NULL: the system's */
    CURL *handle;               /* a handle to reuse with its open connections; NULL: a fresh one.
                                 * Not with E2E_H2C: libcurl 7.88.1 fails every request that reuses a
                                 * prior-knowledge connection (curl issue 10634, fixed in 8.0.0); an
                                 * E2E_H2C_UPGRADE handle reuses its HTTP/2 connection correctly. */
    long timeout_ms;            /* whole transfer; 0: 10000 */
    bool no_auth;               /* send no Authorization header; by default a /v1/ path gets the
                                 * daemon's admin key unless `headers` has an Authorization line */
};

struct e2e_resp {
    CURLcode code;               /* CURLE_OK when a complete response arrived */
    char error[CURL_ERROR_SIZE]; /* curl's explanation when code is not CURLE_OK */
    long status;                 /* 0 when no response arrived */
    long version;                /* CURLINFO_HTTP_VERSION: CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_2_0, ... */
    long connects;               /* connections the transfer opened (0: it reused one) */
    char content_type[256];      /* "" when absent */
    char header[1024];           /* value of e2e_req.capture from the final response */
    bool has_header;
    size_t body_len;             /* bytes kept in body */
    bool body_truncated;         /* the body was longer than E2E_BODY_MAX; the rest was dropped */
    char body[E2E_BODY_MAX + 1]; /* NUL-terminated */
};

/**
 * Performs @p req against the daemon's port and fills @p ret_resp, whatever
 * the outcome of the transfer: a failed transfer is reported in
 * ret_resp->code, not in the return value.
 * @return 0 when the transfer ran; -ENOMEM when it could not be set up;
 *         -ENOTSUP for a handle reused with E2E_H2C.
 */
int e2e_http(const struct e2e_daemon *d, const struct e2e_req *req, struct e2e_resp *ret_resp);

/**
 * Runs `adsmith @p args...` to completion (up to 20 s) with stdout captured
 * into @p out (@p cap bytes, NUL-terminated, cut if longer) and stderr into
 * @p err likewise (may be NULL). @return 0 with *@p ret_status set, or a
 * negative errno value with d->why set.
 */
int e2e_run(struct e2e_daemon *d, const char *const args[], char *out, size_t cap, char *err, size_t err_cap,
            int *ret_status);

/**
 * Creates an API key in d->data_dir with `adsmith keys create --role @p role`
 * (and `--advertiser @p advertiser` unless NULL) into @p ret_key (64 bytes).
 * @return 0, or a negative errno value with d->why set.
 */
int e2e_key_create(struct e2e_daemon *d, const char *role, const char *advertiser, char ret_key[64]);

/** The daemon's admin key (made on first call, then cached in d->admin_key); NULL with d->why set on failure. */
const char *e2e_admin_key(struct e2e_daemon *d);

/**
 * The path of @p name in @p d's private directory, in one of a few rotating
 * buffers shared with e2e_source(): use it at once. Main thread only.
 */
const char *e2e_path(const struct e2e_daemon *d, const char *name);

/** The path of @p rel in the source tree ($ADSMITH_SOURCE_ROOT, set by meson test), likewise. Aborts when unset. */
const char *e2e_source(const char *rel);

/**
 * The JSON equivalent of a MessagePack value (free with cJSON_Delete); NULL
 * for bin and ext, which the service never sends. A map key that is not a
 * string fails the test.
 */
cJSON *e2e_json_of_msgpack(const msgpack_object *o);

/** Shorthand: GET @p path over @p proto with a fresh handle (TLS trusts d->cert_path). */
int e2e_http_get(const struct e2e_daemon *d, enum e2e_proto proto, const char *path, struct e2e_resp *ret_resp);

/* ---- checks on what the daemon answered ---- */

/**
 * Finds the sample of @p series in Prometheus text @p text: @p series is the
 * metric name with its labels exactly as rendered, e.g.
 * `adsmith_http_requests_total{method="GET",route="/healthz",code="200"}`.
 * @return 0 with the value in @p ret_value, or -ENOENT.
 */
int e2e_metric(const char *text, const char *series, double *ret_value);

/**
 * Asserts (Criterion) that @p r is an error response of @p status in the
 * service's shape: Content-Type application/json and the body
 * {"error":{"code":@p code,"message":non-empty string,"pointer":string}}.
 * Call from the test's own thread.
 */
void e2e_assert_error_json(const struct e2e_resp *r, long status, const char *code);

/** Asserts (Criterion) that e2e_daemon_start(@p d, @p extra_args) succeeds. */
void e2e_assert_started(struct e2e_daemon *d, const char *const extra_args[]);

/**
 * Asserts (Criterion) the clean end every test should reach: the daemon exits
 * within 10 s of SIGTERM with status 0 (a sanitizer build reports leaks and
 * errors through the exit status), its log holds JSON records only, and it
 * logged "stopped".
 */
void e2e_assert_stopped_clean(struct e2e_daemon *d);

#endif
