#include "daemon.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

extern char **environ;

/* The log of one test's daemon stays small; this only guards against a runaway. */
#define E2E_LOG_MAX (16 * 1024 * 1024)
#define E2E_TAIL 1500
#define E2E_POLL_MS 10

uint64_t e2e_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void e2e_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int e2e_why(struct e2e_daemon *d, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int e2e_why(struct e2e_daemon *d, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(d->why, sizeof(d->why), fmt, ap);
    va_end(ap);
    return rc;
}

/* Appends the last E2E_TAIL bytes of @p path to d->why. */
static void e2e_why_tail(struct e2e_daemon *d, const char *label, const char *path)
{
    char tail[E2E_TAIL + 1];
    size_t used = strlen(d->why);
    ssize_t n;
    off_t size;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return;
    size = lseek(fd, 0, SEEK_END);
    if (size > E2E_TAIL)
        lseek(fd, size - E2E_TAIL, SEEK_SET);
    else
        lseek(fd, 0, SEEK_SET);
    n = read(fd, tail, E2E_TAIL);
    close(fd);
    tail[n > 0 ? n : 0] = '\0';
    snprintf(d->why + used, sizeof(d->why) - used, "\n--- %s (%s) ---\n%s", label, path, tail);
}

int e2e_daemon_init(struct e2e_daemon *d)
{
    const char *tmp = getenv("TMPDIR");
    int rc;

    memset(d, 0, sizeof(*d));
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    if (strlen(tmp) > 200)
        return e2e_why(d, -ENAMETOOLONG, "TMPDIR is longer than 200 bytes: %s", tmp);
    snprintf(d->dir, sizeof(d->dir), "%s/adsmith-e2e-XXXXXX", tmp);
    if (mkdtemp(d->dir) == NULL) {
        rc = -errno;
        e2e_why(d, rc, "mkdtemp(%s): %s", d->dir, strerror(-rc));
        d->dir[0] = '\0';
        return rc;
    }
    snprintf(d->data_dir, sizeof(d->data_dir), "%s/data", d->dir);
    snprintf(d->log_path, sizeof(d->log_path), "%s/stderr.log", d->dir);
    snprintf(d->out_path, sizeof(d->out_path), "%s/stdout.log", d->dir);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return e2e_why(d, -ENOMEM, "curl_global_init failed");
    return 0;
}

static int e2e_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void e2e_daemon_done(struct e2e_daemon *d)
{
    int status;

    if (d->pid > 0 && !d->reaped) {
        kill(d->pid, SIGKILL);
        while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR)
            ;
        d->reaped = true;
    }
    if (d->dir[0] != '\0') {
        nftw(d->dir, e2e_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        d->dir[0] = '\0';
        curl_global_cleanup();
    }
}

/* Builds the child's environment: ours without ADSMITH_*, and LSAN_OPTIONS
 * starting with print_suppressions=0 so that a sanitizer build's summary of
 * suppressed leaks does not break the one-JSON-record-per-line log (options
 * the caller set, such as meson's suppressions file, follow and still apply).
 * envp[0] is the only string it allocates. */
static char **e2e_child_env(void)
{
    static const char lsan[] = "LSAN_OPTIONS=";
    const char *old = getenv("LSAN_OPTIONS");
    size_t n = 0, k = 1, len;
    char **envp;

    while (environ[n] != NULL)
        n++;
    if ((envp = calloc(n + 2, sizeof(*envp))) == NULL)
        return NULL;
    len = sizeof(lsan) + 32 + (old != NULL ? strlen(old) : 0);
    if ((envp[0] = malloc(len)) == NULL) {
        free(envp);
        return NULL;
    }
    snprintf(envp[0], len, "%sprint_suppressions=0%s%s", lsan, old != NULL && old[0] != '\0' ? ":" : "",
             old != NULL ? old : "");
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "ADSMITH_", 8) == 0 || strncmp(environ[i], lsan, sizeof(lsan) - 1) == 0)
            continue;
        envp[k++] = environ[i];
    }
    envp[k] = NULL;
    return envp;
}

int e2e_daemon_spawn(struct e2e_daemon *d, const char *const args[])
{
    static const char exec_failed[] = "e2e: cannot exec ADSMITH_BIN\n";
    const char *bin = getenv("ADSMITH_BIN");
    const char **argv;
    char **envp;
    size_t nargs = 0;
    pid_t parent = getpid(), pid;
    int in, out, err, rc = 0;

    if (d->pid != 0)
        return e2e_why(d, -EBUSY, "a daemon was already spawned for this test");
    if (bin == NULL || bin[0] == '\0')
        return e2e_why(d, -ENOENT, "ADSMITH_BIN is not set; run the tests through `meson test`");
    while (args[nargs] != NULL)
        nargs++;
    if ((argv = calloc(nargs + 2, sizeof(*argv))) == NULL)
        return e2e_why(d, -ENOMEM, "out of memory");
    argv[0] = bin;
    memcpy(argv + 1, args, nargs * sizeof(*argv));
    if ((envp = e2e_child_env()) == NULL) {
        free(argv);
        return e2e_why(d, -ENOMEM, "out of memory");
    }

    in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    out = open(d->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    err = open(d->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0 || err < 0) {
        int e = errno;
        rc = e2e_why(d, -e, "cannot open the daemon's stdio files in %s: %s", d->dir, strerror(e));
        goto out;
    }

    pid = fork();
    if (pid < 0) {
        int e = errno;
        rc = e2e_why(d, -e, "fork: %s", strerror(e));
        goto out;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        sigset_t none;
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGHUP, &dfl, NULL);
        sigaction(SIGPIPE, &dfl, NULL);
        /* A test killed by its timeout must not leave a daemon behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(127);
        close_range(3, ~0U, 0);
        execve(bin, (char *const *)argv, envp);
        if (write(2, exec_failed, sizeof(exec_failed) - 1) < 0)
            _exit(127);
        _exit(127);
    }
    d->pid = pid;
    d->reaped = false;

out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (err >= 0)
        close(err);
    free(envp[0]);
    free(envp);
    free(argv);
    return rc;
}

static void e2e_reap(struct e2e_daemon *d, int wstatus)
{
    d->reaped = true;
    if (WIFEXITED(wstatus))
        d->status = WEXITSTATUS(wstatus);
    else if (WIFSIGNALED(wstatus))
        d->status = 128 + WTERMSIG(wstatus);
    else
        d->status = 255;
}

bool e2e_daemon_running(struct e2e_daemon *d)
{
    int wstatus;
    pid_t r;

    if (d->pid <= 0 || d->reaped)
        return false;
    while ((r = waitpid(d->pid, &wstatus, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r == d->pid) {
        e2e_reap(d, wstatus);
        return false;
    }
    return r == 0;
}

int e2e_daemon_signal(struct e2e_daemon *d, int signo)
{
    if (d->pid <= 0 || d->reaped)
        return -ESRCH;
    return kill(d->pid, signo) == 0 ? 0 : -errno;
}

int e2e_daemon_wait(struct e2e_daemon *d, int timeout_ms, int *ret_status)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;

    if (d->pid <= 0)
        return -ESRCH;
    while (e2e_daemon_running(d)) {
        if (e2e_now_ms() >= deadline)
            return -ETIMEDOUT;
        e2e_sleep_ms(E2E_POLL_MS / 2);
    }
    if (!d->reaped)
        return -ESRCH;
    *ret_status = d->status;
    return 0;
}

int e2e_daemon_stop(struct e2e_daemon *d, int signo, int timeout_ms, int *ret_status)
{
    int rc = e2e_daemon_signal(d, signo);

    if (rc != 0 && rc != -ESRCH)
        return rc;
    return e2e_daemon_wait(d, timeout_ms, ret_status);
}

/* ---- the JSON log ---- */

static int e2e_log_load(const char *path, char **ret_text, size_t *ret_len)
{
    struct stat st;
    char *text;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if (st.st_size > E2E_LOG_MAX) {
        close(fd);
        return -EFBIG;
    }
    if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
        close(fd);
        return -ENOMEM;
    }
    /* The daemon may still be appending: read what was there at fstat time. */
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    text[len] = '\0';
    *ret_text = text;
    *ret_len = len;
    return 0;
}

static bool e2e_record_has_msg(const cJSON *rec, const char *msg)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(rec, "msg");

    return cJSON_IsString(m) && strcmp(m->valuestring, msg) == 0;
}

int e2e_log_find(const struct e2e_daemon *d, const char *msg, cJSON **ret_record)
{
    char *text, *line, *nl;
    size_t len;
    int rc;

    if ((rc = e2e_log_load(d->log_path, &text, &len)) != 0)
        return rc;
    rc = -ENOENT;
    /* Only whole lines: the last one may still be being written. */
    for (line = text; (nl = memchr(line, '\n', len - (size_t)(line - text))) != NULL; line = nl + 1) {
        cJSON *rec = cJSON_ParseWithLength(line, (size_t)(nl - line));
        if (rec != NULL && e2e_record_has_msg(rec, msg)) {
            *ret_record = rec;
            rc = 0;
            break;
        }
        cJSON_Delete(rec);
    }
    free(text);
    return rc;
}

bool e2e_log_has(const struct e2e_daemon *d, const char *msg)
{
    cJSON *rec;

    if (e2e_log_find(d, msg, &rec) != 0)
        return false;
    cJSON_Delete(rec);
    return true;
}

int e2e_log_wait(const struct e2e_daemon *d, const char *msg, int timeout_ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;

    while (!e2e_log_has(d, msg)) {
        if (e2e_now_ms() >= deadline)
            return -ETIMEDOUT;
        e2e_sleep_ms(E2E_POLL_MS);
    }
    return 0;
}

static bool e2e_record_valid(const cJSON *rec)
{
    static const char *const keys[] = {"ts", "level", "msg"};

    if (!cJSON_IsObject(rec))
        return false;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(rec, keys[i])))
            return false;
    }
    return true;
}

int e2e_log_check(struct e2e_daemon *d)
{
    char *text, *line, *end;
    size_t len;
    int rc, lineno = 1;

    if ((rc = e2e_log_load(d->log_path, &text, &len)) != 0)
        return e2e_why(d, rc, "cannot read %s: %s", d->log_path, strerror(-rc));
    for (line = text; line < text + len; line = end + 1, lineno++) {
        cJSON *rec;
        bool ok;
        if ((end = memchr(line, '\n', len - (size_t)(line - text))) == NULL) {
            rc = e2e_why(d, -EBADMSG, "log line %d is not terminated by a newline: %.300s", lineno, line);
            break;
        }
        rec = cJSON_ParseWithLength(line, (size_t)(end - line));
        ok = e2e_record_valid(rec);
        cJSON_Delete(rec);
        if (!ok) {
            rc = e2e_why(d, -EBADMSG, "log line %d is not a JSON record with ts, level and msg: %.*s", lineno,
                         (int)(end - line < 300 ? end - line : 300), line);
            e2e_why_tail(d, "log tail", d->log_path);
            break;
        }
    }
    free(text);
    return rc;
}

int e2e_file_read(const char *path, char *buf, size_t cap, size_t *ret_len)
{
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return -errno;
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (rc == 0 && len == cap - 1) {
        char extra;
        if (read(fd, &extra, 1) == 1)
            rc = -EFBIG;
    }
    close(fd);
    buf[len] = '\0';
    if (rc == 0)
        *ret_len = len;
    return rc;
}

/* ---- starting the daemon ---- */

/* Takes the port from the "addr" of the first "listening" record ("127.0.0.1:43121", "[::1]:43121"). */
static int e2e_parse_port(struct e2e_daemon *d)
{
    const cJSON *addr;
    const char *colon;
    cJSON *rec;
    long port;
    char *end;
    int rc;

    if ((rc = e2e_log_find(d, "listening", &rec)) != 0)
        return rc;
    addr = cJSON_GetObjectItemCaseSensitive(rec, "addr");
    rc = -EPROTO;
    if (cJSON_IsString(addr) && (colon = strrchr(addr->valuestring, ':')) != NULL) {
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno == 0 && *end == '\0' && port > 0 && port <= 65535) {
            d->port = (int)port;
            rc = 0;
        }
    }
    cJSON_Delete(rec);
    return rc;
}

int e2e_daemon_start(struct e2e_daemon *d, const char *const extra_args[])
{
    static const char *const base[] = {"serve", "--listen", "127.0.0.1:0", "--threads", "2", "--data-dir"};
    const size_t nbase = sizeof(base) / sizeof(base[0]);
    const char *args[64];
    size_t n = 0;
    uint64_t deadline;
    int rc;

    for (size_t i = 0; i < nbase; i++)
        args[n++] = base[i];
    args[n++] = d->data_dir;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        if (n == sizeof(args) / sizeof(args[0]) - 1)
            return e2e_why(d, -E2BIG, "too many extra arguments");
        args[n++] = extra_args[i];
    }
    args[n] = NULL;
    if ((rc = e2e_daemon_spawn(d, args)) != 0)
        return rc;

    deadline = e2e_now_ms() + E2E_READY_TIMEOUT_MS;
    for (;;) {
        /* Look at the log first: a daemon that logs "serving" and then dies is caught by the test. */
        if (e2e_log_has(d, "serving"))
            break;
        if (!e2e_daemon_running(d)) {
            /* It may have logged "serving" between the two checks. */
            if (e2e_log_has(d, "serving"))
                break;
            e2e_why(d, -ECHILD, "adsmith exited with status %d before it was ready", d->status);
            e2e_why_tail(d, "log tail", d->log_path);
            return -ECHILD;
        }
        if (e2e_now_ms() >= deadline) {
            e2e_why(d, -ETIMEDOUT, "adsmith logged no \"ready\" record within %d ms", E2E_READY_TIMEOUT_MS);
            e2e_why_tail(d, "log tail", d->log_path);
            return -ETIMEDOUT;
        }
        e2e_sleep_ms(E2E_POLL_MS);
    }
    if ((rc = e2e_parse_port(d)) != 0) {
        e2e_why(d, rc, "adsmith is ready but no \"listening\" record gives an ADDR:PORT");
        e2e_why_tail(d, "log tail", d->log_path);
        return rc;
    }
    return 0;
}

/* ---- TLS certificate ---- */

int e2e_tls_cert(struct e2e_daemon *d)
{
    char log_path[E2E_PATH_MAX + 16];
    const char *argv[] = {"openssl",
                          "req",
                          "-x509",
                          "-newkey",
                          "ec",
                          "-pkeyopt",
                          "ec_paramgen_curve:prime256v1",
                          "-nodes",
                          "-days",
                          "2",
                          "-subj",
                          "/CN=localhost",
                          "-addext",
                          "subjectAltName=IP:127.0.0.1,DNS:localhost",
                          "-keyout",
                          d->key_path,
                          "-out",
                          d->cert_path,
                          NULL};
    posix_spawn_file_actions_t fa;
    uint64_t deadline;
    struct stat st;
    int wstatus = 0, rc;
    pid_t pid, r;

    snprintf(d->cert_path, sizeof(d->cert_path), "%s/cert.pem", d->dir);
    snprintf(d->key_path, sizeof(d->key_path), "%s/key.pem", d->dir);
    snprintf(log_path, sizeof(log_path), "%s/openssl.log", d->dir);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    rc = posix_spawnp(&pid, "openssl", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return e2e_why(d, -rc, "cannot run the openssl tool: %s", strerror(rc));

    deadline = e2e_now_ms() + 30000;
    while ((r = waitpid(pid, &wstatus, WNOHANG)) == 0 || (r < 0 && errno == EINTR)) {
        if (e2e_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &wstatus, 0);
            return e2e_why(d, -ETIMEDOUT, "openssl req did not finish within 30 s");
        }
        e2e_sleep_ms(E2E_POLL_MS);
    }
    if (r < 0 || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || stat(d->cert_path, &st) != 0 || st.st_size == 0 ||
        stat(d->key_path, &st) != 0 || st.st_size == 0) {
        e2e_why(d, -EIO, "openssl req failed to write %s and %s", d->cert_path, d->key_path);
        e2e_why_tail(d, "openssl output", log_path);
        return -EIO;
    }
    return 0;
}

/* ---- raw TCP ---- */

int e2e_tcp_connect(int port, int *ret_fd)
{
    struct sockaddr_in sa;
    int fd, rc;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    while ((rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa))) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *ret_fd = fd;
    return 0;
}

int e2e_tcp_wait_refused(int port, int timeout_ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;
    int fd, rc;

    for (;;) {
        rc = e2e_tcp_connect(port, &fd);
        if (rc == -ECONNREFUSED)
            return 0;
        if (rc == 0)
            close(fd);
        if (e2e_now_ms() >= deadline)
            return -ETIMEDOUT;
        e2e_sleep_ms(E2E_POLL_MS);
    }
}

int e2e_tcp_send(int fd, const char *data, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        off += (size_t)n;
    }
    return 0;
}

/* Waits until @p fd is readable or the deadline passes. Returns 1, 0 on timeout, or -errno. */
static int e2e_wait_readable(int fd, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uint64_t now = e2e_now_ms();
    int rc;

    if (now >= deadline)
        return 0;
    while ((rc = poll(&p, 1, (int)(deadline - now))) < 0 && errno == EINTR)
        ;
    return rc < 0 ? -errno : rc;
}

/* Returns the Content-Length of a response head of @p len bytes, or -1 when it has none. */
static long e2e_content_length(const char *head, size_t len)
{
    static const char name[] = "\r\ncontent-length:";
    const size_t nlen = sizeof(name) - 1;

    for (size_t i = 0; i + nlen <= len; i++) {
        if (strncasecmp(head + i, name, nlen) == 0) {
            const char *p = head + i + nlen;
            char *end;
            long v;
            while (*p == ' ' || *p == '\t')
                p++;
            if (!isdigit((unsigned char)*p))
                return -1;
            errno = 0;
            v = strtol(p, &end, 10);
            return errno == 0 && (*end == '\r' || *end == ' ') ? v : -1;
        }
    }
    return -1;
}

int e2e_tcp_read_response(int fd, int timeout_ms, char *buf, size_t cap, size_t *ret_len)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;
    size_t len = 0;

    for (;;) {
        const char *eoh;
        ssize_t n;
        int rc;
        buf[len] = '\0';
        if ((eoh = strstr(buf, "\r\n\r\n")) != NULL) {
            size_t head = (size_t)(eoh - buf) + 4;
            long cl = e2e_content_length(buf, head);
            if (cl >= 0 && len >= head + (size_t)cl) {
                *ret_len = len;
                return 0;
            }
        }
        if (len == cap - 1)
            return -EFBIG;
        if ((rc = e2e_wait_readable(fd, deadline)) <= 0)
            return rc == 0 ? -ETIMEDOUT : rc;
        n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ECONNRESET;
        len += (size_t)n;
    }
}

int e2e_tcp_wait_eof(int fd, int timeout_ms)
{
    uint64_t deadline = e2e_now_ms() + (uint64_t)timeout_ms;
    char scratch[4096];

    for (;;) {
        ssize_t n;
        int rc = e2e_wait_readable(fd, deadline);
        if (rc == 0)
            return -ETIMEDOUT;
        if (rc < 0)
            return rc;
        n = recv(fd, scratch, sizeof(scratch), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* ---- HTTP through libcurl ---- */

struct e2e_xfer {
    struct e2e_resp *resp;
    const char *capture;
};

static size_t e2e_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct e2e_resp *r = arg;
    size_t len = size * nmemb, room = E2E_BODY_MAX - r->body_len;

    if (len > room) {
        r->body_truncated = true;
        memcpy(r->body + r->body_len, data, room);
        r->body_len += room;
    } else {
        memcpy(r->body + r->body_len, data, len);
        r->body_len += len;
    }
    r->body[r->body_len] = '\0';
    return len;
}

/* Copies a header value without its leading blanks and trailing CR/LF. */
static void e2e_copy_value(char *out, size_t cap, const char *v, size_t len)
{
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
        len--;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

static size_t e2e_on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    struct e2e_xfer *x = arg;
    struct e2e_resp *r = x->resp;
    size_t len = size * nmemb;
    const char *colon = memchr(line, ':', len);
    size_t nlen;

    /* A status line starts a new response (after a 101 or 100): forget the previous headers. */
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        r->content_type[0] = '\0';
        r->header[0] = '\0';
        r->has_header = false;
        return len;
    }
    if (colon == NULL)
        return len;
    nlen = (size_t)(colon - line);
    if (nlen == 12 && strncasecmp(line, "content-type", 12) == 0)
        e2e_copy_value(r->content_type, sizeof(r->content_type), colon + 1, len - nlen - 1);
    if (x->capture != NULL && strlen(x->capture) == nlen && strncasecmp(line, x->capture, nlen) == 0) {
        e2e_copy_value(r->header, sizeof(r->header), colon + 1, len - nlen - 1);
        r->has_header = true;
    }
    return len;
}

static long e2e_curl_version(enum e2e_proto proto)
{
    switch (proto) {
    case E2E_H2C: return CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    case E2E_H2C_UPGRADE: return CURL_HTTP_VERSION_2_0;
    case E2E_H2_TLS: return CURL_HTTP_VERSION_2TLS;
    case E2E_HTTP1:
    case E2E_HTTP1_TLS: return CURL_HTTP_VERSION_1_1;
    }
    return CURL_HTTP_VERSION_1_1;
}

static bool e2e_proto_tls(enum e2e_proto proto)
{
    return proto == E2E_H2_TLS || proto == E2E_HTTP1_TLS;
}

int e2e_http(const struct e2e_daemon *d, const struct e2e_req *req, struct e2e_resp *ret_resp)
{
    const char *host = req->host != NULL ? req->host : "127.0.0.1";
    struct curl_slist *headers = NULL, *resolve = NULL, *tmp;
    struct e2e_xfer x = {ret_resp, req->capture};
    char url[1024], entry[300];
    CURL *h = req->handle;
    int rc = 0;

    memset(ret_resp, 0, offsetof(struct e2e_resp, body));
    ret_resp->body[0] = '\0';
    if (h != NULL && req->proto == E2E_H2C)
        return -ENOTSUP;
    if (h != NULL)
        curl_easy_reset(h); /* keeps the handle's open connections */
    else if ((h = curl_easy_init()) == NULL)
        return -ENOMEM;

    snprintf(url, sizeof(url), "%s://%s:%d%s", e2e_proto_tls(req->proto) ? "https" : "http", host, d->port, req->path);
    /* Every name reaches the daemon on loopback; no resolver, no proxy. */
    if (strcmp(host, "127.0.0.1") != 0) {
        snprintf(entry, sizeof(entry), "%s:%d:127.0.0.1", host, d->port);
        if ((resolve = curl_slist_append(NULL, entry)) == NULL) {
            rc = -ENOMEM;
            goto out;
        }
    }
    /* curl would otherwise hold back bodies over 1 MiB for a 100 Continue. */
    if ((headers = curl_slist_append(NULL, "Expect:")) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (!req->no_auth && strncmp(req->path, "/v1/", 4) == 0) {
        bool has = false;
        for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++)
            has |= strncasecmp(req->headers[i], "Authorization:", 14) == 0;
        /* The key is made once per daemon and cached in it: a lazily filled cache, hence the cast. */
        const char *key = has ? NULL : e2e_admin_key((struct e2e_daemon *)d);
        if (key != NULL) {
            snprintf(entry, sizeof(entry), "Authorization: Bearer %s", key);
            if ((tmp = curl_slist_append(headers, entry)) == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            headers = tmp;
        }
    }
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        if ((tmp = curl_slist_append(headers, req->headers[i])) == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        headers = tmp;
    }

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, e2e_curl_version(req->proto));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ret_resp->error);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (resolve != NULL)
        curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, e2e_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ret_resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, e2e_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    if (e2e_proto_tls(req->proto)) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (req->ca_file != NULL)
            curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
    }
    if (req->read_fn != NULL) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, req->read_fn);
        curl_easy_setopt(h, CURLOPT_READDATA, req->read_arg);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (req->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
    }
    if (req->method != NULL) {
        if (strcmp(req->method, "HEAD") == 0)
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        else if (strcmp(req->method, "GET") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }

    ret_resp->code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret_resp->status);
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &ret_resp->version);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &ret_resp->connects);

out:
    if (h != req->handle)
        curl_easy_cleanup(h);
    else
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(headers);
    curl_slist_free_all(resolve);
    return rc;
}

int e2e_http_get(const struct e2e_daemon *d, enum e2e_proto proto, const char *path, struct e2e_resp *ret_resp)
{
    struct e2e_req req = {.proto = proto, .path = path, .ca_file = d->cert_path[0] != '\0' ? d->cert_path : NULL};

    return e2e_http(d, &req, ret_resp);
}

/* ---- checks ---- */

int e2e_metric(const char *text, const char *series, double *ret_value)
{
    size_t len = strlen(series);

    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        if (strncmp(line, series, len) == 0 && line[len] == ' ') {
            char *end;
            double v = strtod(line + len + 1, &end);
            if (end != line + len + 1 && (*end == '\n' || *end == '\0' || *end == ' ')) {
                *ret_value = v;
                return 0;
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return -ENOENT;
}

void e2e_assert_error_json(const struct e2e_resp *r, long status, const char *code)
{
    const cJSON *err, *c, *m, *p;
    cJSON *doc;
    bool ok_shape, ok_code, ok_message, ok_pointer;

    cr_assert_eq(r->code, CURLE_OK, "the transfer failed: %s (%s)", curl_easy_strerror(r->code), r->error);
    cr_assert_eq(r->status, status, "status %ld, expected %ld; body: %s", r->status, status, r->body);
    cr_assert(strncmp(r->content_type, "application/json", 16) == 0,
              "error Content-Type is '%s', expected application/json", r->content_type);
    doc = cJSON_Parse(r->body);
    cr_assert_not_null(doc, "the error body is not JSON: %s", r->body);
    err = cJSON_GetObjectItemCaseSensitive(doc, "error");
    c = cJSON_GetObjectItemCaseSensitive(err, "code");
    m = cJSON_GetObjectItemCaseSensitive(err, "message");
    p = cJSON_GetObjectItemCaseSensitive(err, "pointer");
    ok_code = cJSON_IsString(c) && strcmp(c->valuestring, code) == 0;
    ok_message = cJSON_IsString(m) && m->valuestring[0] != '\0';
    ok_pointer = cJSON_IsString(p);
    ok_shape = cJSON_IsObject(doc) && cJSON_GetArraySize(doc) == 1 && cJSON_IsObject(err);
    cJSON_Delete(doc);
    cr_assert(ok_shape, "the body is not {\"error\":{...}}: %s", r->body);
    cr_assert(ok_code, "error.code is not \"%s\": %s", code, r->body);
    cr_assert(ok_message, "error.message is not a non-empty string: %s", r->body);
    cr_assert(ok_pointer, "error.pointer is not a string: %s", r->body);
}

void e2e_assert_started(struct e2e_daemon *d, const char *const extra_args[])
{
    int rc = e2e_daemon_start(d, extra_args);

    cr_assert_eq(rc, 0, "adsmith did not start (%d): %s", rc, d->why);
}

void e2e_assert_stopped_clean(struct e2e_daemon *d)
{
    int status = -1, rc = e2e_daemon_stop(d, SIGTERM, 10000, &status);

    cr_assert_eq(rc, 0, "adsmith did not exit within 10 s of SIGTERM (%d)", rc);
    rc = e2e_log_check(d);
    cr_assert_eq(rc, 0, "%s", d->why);
    cr_assert_eq(status, 0, "adsmith exited with status %d after SIGTERM", status);
    cr_assert(e2e_log_has(d, "stopped"), "no \"stopped\" record after SIGTERM");
}

/* ---- running the CLI, API keys ---- */

int e2e_run(struct e2e_daemon *d, const char *const args[], char *out, size_t cap, char *err, size_t err_cap,
            int *ret_status)
{
    struct e2e_daemon r;
    size_t len;
    int rc;

    /* A private runner: its own directory for the captured stdout and stderr. */
    if ((rc = e2e_daemon_init(&r)) != 0)
        return e2e_why(d, rc, "%s", r.why);
    if ((rc = e2e_daemon_spawn(&r, args)) != 0 || (rc = e2e_daemon_wait(&r, 20000, ret_status)) != 0) {
        e2e_why(d, rc, "adsmith %s: %s", args[0], rc == -ETIMEDOUT ? "did not exit within 20 s" : r.why);
        e2e_daemon_done(&r);
        return rc;
    }
    if ((rc = e2e_file_read(r.out_path, out, cap, &len)) != 0)
        out[0] = '\0';
    if (err != NULL && e2e_file_read(r.log_path, err, err_cap, &len) != 0)
        err[0] = '\0';
    e2e_daemon_done(&r);
    return 0;
}

int e2e_key_create(struct e2e_daemon *d, const char *role, const char *advertiser, char ret_key[64])
{
    const char *args[] = {"keys", "create", "--data-dir", d->data_dir, "--role", role, NULL, NULL, NULL};
    char out[256], err[1024];
    int status = -1, rc;
    size_t n;

    if (advertiser != NULL) {
        args[6] = "--advertiser";
        args[7] = advertiser;
    }
    if ((rc = e2e_run(d, args, out, sizeof(out), err, sizeof(err), &status)) != 0)
        return rc;
    n = strcspn(out, "\n");
    if (status != 0 || n == 0 || n >= 64)
        return e2e_why(d, -EPROTO, "adsmith keys create exited with %d: %s", status, err);
    memcpy(ret_key, out, n);
    ret_key[n] = '\0';
    return 0;
}

const char *e2e_admin_key(struct e2e_daemon *d)
{
    if (d->admin_key[0] == '\0' && e2e_key_create(d, "admin", NULL, d->admin_key) != 0)
        return NULL;
    return d->admin_key;
}

/* ---- paths ---- */

static char *e2e_ring(void)
{
    static char mem[8][E2E_PATH_MAX];
    static unsigned next;

    return mem[next++ % 8];
}

const char *e2e_path(const struct e2e_daemon *d, const char *name)
{
    char *p = e2e_ring();

    snprintf(p, E2E_PATH_MAX, "%s/%s", d->dir, name);
    return p;
}

const char *e2e_source(const char *rel)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char *p = e2e_ring();

    if (root == NULL) {
        fprintf(stderr, "e2e: ADSMITH_SOURCE_ROOT is not set (meson test sets it)\n");
        abort();
    }
    snprintf(p, E2E_PATH_MAX, "%s/%s", root, rel);
    return p;
}

/* ---- documents ---- */

cJSON *e2e_json_of_msgpack(const msgpack_object *o)
{
    cJSON *j;
    char *s;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return cJSON_CreateNull();
    case MSGPACK_OBJECT_BOOLEAN: return cJSON_CreateBool(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return cJSON_CreateNumber((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return cJSON_CreateNumber((double)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return cJSON_CreateNumber(o->via.f64);
    case MSGPACK_OBJECT_STR:
        s = strndup(o->via.str.ptr, o->via.str.size);
        j = cJSON_CreateString(s);
        free(s);
        return j;
    case MSGPACK_OBJECT_ARRAY:
        j = cJSON_CreateArray();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            cJSON_AddItemToArray(j, e2e_json_of_msgpack(&o->via.array.ptr[i]));
        return j;
    case MSGPACK_OBJECT_MAP:
        j = cJSON_CreateObject();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            cr_assert_eq(k->type, MSGPACK_OBJECT_STR, "a MessagePack map key is not a string");
            s = strndup(k->via.str.ptr, k->via.str.size);
            cJSON_AddItemToObject(j, s, e2e_json_of_msgpack(&o->via.map.ptr[i].val));
            free(s);
        }
        return j;
    default: return NULL;
    }
}

