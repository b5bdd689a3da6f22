#include "adsmith/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "adsmith/err.h"

static _Atomic int lg_min_level = LG_INFO;
static _Atomic int lg_fd = 2;

static const char *const lg_names[] = {"debug", "info", "warn", "error"};

void lg_set_level(enum lg_level level)
{
    atomic_store(&lg_min_level, (int)level);
}

void lg_set_fd(int fd)
{
    atomic_store(&lg_fd, fd);
}

bool lg_enabled(enum lg_level level)
{
    return (int)level >= atomic_load_explicit(&lg_min_level, memory_order_relaxed);
}

int lg_level_parse(const char *s, enum lg_level *ret_level)
{
    for (int i = 0; i < (int)(sizeof(lg_names) / sizeof(lg_names[0])); i++) {
        if (strcmp(s, lg_names[i]) == 0) {
            *ret_level = (enum lg_level)i;
            return 0;
        }
    }
    return ADS_EINVAL;
}

const char *lg_level_name(enum lg_level level)
{
    if ((int)level < 0 || (int)level > LG_ERROR)
        return "unknown";
    return lg_names[level];
}

void lg_begin(struct lg_rec *r, enum lg_level level, const char *msg)
{
    struct timeval tv;
    struct tm tm;
    char ts[32];

    r->on = lg_enabled(level);
    r->truncated = false;
    if (!r->on)
        return;
    /* Leave room for the closing brace, a truncation marker and the newline. */
    buf_init(&r->b, r->mem, sizeof(r->mem) - 32);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(&r->b, "{\"ts\":\"%s.%03dZ\",\"level\":\"%s\",\"msg\":", ts, (int)(tv.tv_usec / 1000), lg_names[level]);
    buf_json_str(&r->b, msg, strlen(msg));
}

/*
 * Reserves room for a field so that a record never ends inside a string:
 * a field that cannot fit whole is dropped (or, for strings, shortened to what
 * fits even if every byte needs a 6-byte escape) and the record is marked.
 */
static bool lg_room(struct lg_rec *r, const char *key, size_t need)
{
    size_t room = r->b.cap - 1 - r->b.len, keylen = strlen(key);

    if (!r->on)
        return false;
    if (room < keylen * 6 + 8 + need) {
        r->truncated = true;
        return false;
    }
    return true;
}

void lg_strn(struct lg_rec *r, const char *key, const char *val, size_t len)
{
    size_t room;

    if (!lg_room(r, key, 8))
        return;
    room = (r->b.cap - 1 - r->b.len - strlen(key) * 6 - 8) / 6;
    if (len > room) {
        len = room;
        r->truncated = true;
    }
    buf_put(&r->b, ",", 1);
    buf_json_str(&r->b, key, strlen(key));
    buf_put(&r->b, ":", 1);
    buf_json_str(&r->b, val, len);
}

void lg_str(struct lg_rec *r, const char *key, const char *val)
{
    lg_strn(r, key, val != NULL ? val : "", val != NULL ? strlen(val) : 0);
}

void lg_int(struct lg_rec *r, const char *key, int64_t val)
{
    if (!lg_room(r, key, 24))
        return;
    buf_put(&r->b, ",", 1);
    buf_json_str(&r->b, key, strlen(key));
    buf_printf(&r->b, ":%" PRId64, val);
}

void lg_uint(struct lg_rec *r, const char *key, uint64_t val)
{
    if (!lg_room(r, key, 24))
        return;
    buf_put(&r->b, ",", 1);
    buf_json_str(&r->b, key, strlen(key));
    buf_printf(&r->b, ":%" PRIu64, val);
}

void lg_bool(struct lg_rec *r, const char *key, bool val)
{
    if (!lg_room(r, key, 8))
        return;
    buf_put(&r->b, ",", 1);
    buf_json_str(&r->b, key, strlen(key));
    buf_puts(&r->b, val ? ":true" : ":false");
}

void lg_err(struct lg_rec *r, int code)
{
    lg_str(r, "error", ads_err_name(code));
    lg_str(r, "detail", ads_err_message(code));
}

void lg_end(struct lg_rec *r)
{
    size_t off = 0;
    ssize_t n;

    if (!r->on)
        return;
    /* The builder stopped 32 bytes short of the array, so these always fit. */
    r->b.cap = sizeof(r->mem);
    if (r->truncated)
        buf_puts(&r->b, ",\"truncated\":true");
    buf_puts(&r->b, "}\n");
    while (off < r->b.len) {
        n = write(atomic_load_explicit(&lg_fd, memory_order_relaxed), r->b.base + off, r->b.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

void lg_msg(enum lg_level level, const char *msg)
{
    struct lg_rec r;
    lg_begin(&r, level, msg);
    lg_end(&r);
}
