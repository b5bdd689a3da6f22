/*
 * lg: one-line JSON log records on stderr.
 *
 *   {"ts":"2026-11-22T23:20:34.123Z","level":"info","msg":"listening","addr":"127.0.0.1:8080"}
 *
 * A record is built in a fixed stack buffer and written with one write(2), so
 * records from different threads never interleave. A field that does not fit
 * in LG_MAX_RECORD is shortened or dropped, and the record (still valid JSON)
 * is marked "truncated":true.
 *
 * Only the program layer (service/cli, service/app, service/http, handlers)
 * logs; library modules return error codes and an ads_diag instead.
 */
#ifndef ADSMITH_LOG_H
#define ADSMITH_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "adsmith/buf.h"

#define LG_MAX_RECORD 2048

enum lg_level { LG_DEBUG = 0, LG_INFO, LG_WARN, LG_ERROR };

/** Sets the minimum level written (default LG_INFO). Thread-safe. */
void lg_set_level(enum lg_level level);

/** Sets the file descriptor records go to (default 2). For tests. */
void lg_set_fd(int fd);

/** Returns true when records of @p level are written. */
bool lg_enabled(enum lg_level level);

/** Parses "debug", "info", "warn" or "error". Returns 0 or ADS_EINVAL. */
int lg_level_parse(const char *s, enum lg_level *ret_level);

/** Name of a level ("info", ...). */
const char *lg_level_name(enum lg_level level);

/** A record under construction; lives on the caller's stack. */
struct lg_rec {
    struct buf b;
    bool on;
    bool truncated;
    char mem[LG_MAX_RECORD];
};

/** Starts a record with "ts", "level" and "msg". If the level is disabled, the other calls are no-ops. */
void lg_begin(struct lg_rec *r, enum lg_level level, const char *msg);
/** Adds a string field (NULL: ""); any bytes, escaped to valid JSON. */
void lg_str(struct lg_rec *r, const char *key, const char *val);
/** Adds a string field of @p len bytes, which need not be NUL-terminated. */
void lg_strn(struct lg_rec *r, const char *key, const char *val, size_t len);
/** Add number and boolean fields. */
void lg_int(struct lg_rec *r, const char *key, int64_t val);
void lg_uint(struct lg_rec *r, const char *key, uint64_t val);
void lg_bool(struct lg_rec *r, const char *key, bool val);
/** Adds "error":NAME and "detail":MESSAGE for an error code. */
void lg_err(struct lg_rec *r, int code);
/** Closes the record and writes it to the log descriptor with one write(2). */
void lg_end(struct lg_rec *r);

/** Shorthand for a record with only a message. */
void lg_msg(enum lg_level level, const char *msg);

#endif
