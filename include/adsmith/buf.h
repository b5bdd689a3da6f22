/*
 * buf: a bounded text builder over caller-owned memory.
 *
 * Writes never overflow: once the capacity is reached the builder stops
 * writing and sets `overflow`; callers check it once at the end. The text is
 * always NUL-terminated (capacity must be >= 1). The builder never allocates,
 * so it can run on stack memory, a request pool or a log line buffer.
 */
#ifndef ADSMITH_BUF_H
#define ADSMITH_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *base; /* caller-owned storage */
    size_t len; /* bytes written, excluding the terminating NUL */
    size_t cap; /* size of base, including room for the NUL */
    bool overflow;
};

/** Starts a builder over @p mem of @p cap bytes (cap >= 1). */
void buf_init(struct buf *b, char *mem, size_t cap);

/** Appends @p len bytes. */
void buf_put(struct buf *b, const char *s, size_t len);

/** Appends a NUL-terminated string. */
void buf_puts(struct buf *b, const char *s);

/** Appends printf-formatted text. */
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Appends @p s (len bytes) as a JSON string literal, quotes included.
 * Control characters are escaped; bytes that are not valid UTF-8 are replaced
 * by U+FFFD so the output is always valid JSON.
 */
void buf_json_str(struct buf *b, const char *s, size_t len);

/**
 * Length (1..4) of the valid UTF-8 sequence at @p s, of which @p avail >= 1
 * bytes may be read; 0 when it is invalid (bad or truncated sequence, overlong
 * form, surrogate, past U+10FFFF). The one UTF-8 decoder of the service.
 */
size_t buf_utf8_seq_len(const unsigned char *s, size_t avail);

/** Appends `"key":` followed by the JSON string @p val. Both NUL-terminated, neither NULL. */
void buf_json_kv(struct buf *b, const char *key, const char *val);

#endif
