/*
 * adsmith error codes.
 *
 * Every function of the core library that can fail returns an int: 0 on
 * success, a negative value on failure. Negative errno values (-ENOMEM, -EINVAL, ...) pass through
 * unchanged; adsmith's own codes live in a reserved range below
 * ADS_ERR_BASE, far from errno (< 4096) and from LMDB's (-30799 .. -30780).
 *
 * The list below is append-only: codes and names are part of the public API
 * (clients match on the name, which appears as "code" in every JSON error).
 * Never renumber or remove an entry.
 */
#ifndef ADSMITH_ERR_H
#define ADSMITH_ERR_H

#include <stddef.h>

#define ADS_ERR_BASE 40000

/* X(enum suffix, number, stable name, default message) */
#define ADS_ERR_MAP(X)                                                                                                     \
    X(NOMEM, 1, "out_of_memory", "the server ran out of memory; retry later")                                            \
    X(INVAL, 2, "invalid_argument", "an argument is invalid")                                                           \
    X(NOT_FOUND, 3, "not_found", "nothing exists at this path")                                                         \
    X(METHOD, 4, "method_not_allowed", "this path does not accept that method; see the Allow header")                   \
    X(BODY_TOO_LARGE, 5, "body_too_large", "the request body exceeds the server's limit (max_body)")                    \
    X(HEADERS_TOO_LARGE, 6, "headers_too_large", "the request headers exceed the server's limit (max_header_bytes)")   \
    X(BAD_REQUEST, 7, "bad_request", "the request is malformed")                                                       \
    X(CONFIG, 8, "config_invalid", "the configuration is invalid")                                                      \
    X(STORAGE, 9, "storage_error", "the storage engine failed")                                                         \
    X(DATA_TOO_NEW, 10, "data_version_too_new", "the data directory was written by a newer adsmith")                    \
    X(STORAGE_FULL, 11, "storage_full", "the LMDB map is full; raise map_size")                                         \
    X(NOT_READY, 12, "not_ready", "the service is not ready to serve")                                                  \
    X(SHUTTING_DOWN, 13, "shutting_down", "the service is shutting down")                                               \
    X(INTERNAL, 14, "internal", "an internal error occurred; it has been logged")                                       \
    X(HTTP_ERROR, 15, "http_error", "the HTTP request could not be processed")                                          \
    X(DATA_INVALID, 16, "data_invalid", "the data directory does not hold adsmith data")                                \
    X(UNSUPPORTED_MEDIA, 17, "unsupported_media_type",                                                                 \
      "send Content-Type application/json or application/msgpack")                                                      \
    X(CONFLICT, 18, "conflict", "the request conflicts with stored data")                                              \
    X(OVERLOADED, 19, "overloaded", "the service is at capacity; retry with backoff")                                   \
    X(UNAUTHORIZED, 20, "unauthorized", "send a valid API key: Authorization: Bearer <key>")                          \
    X(FORBIDDEN, 21, "forbidden", "this API key's role does not allow this request")                                   \
    X(PRECONDITION_FAILED, 22, "precondition_failed",                                                                  \
      "the resource changed since you read it (If-Match / If-None-Match); GET it and retry")                            \
    X(QUOTA_EXCEEDED, 23, "quota_exceeded", "a limit on stored objects is reached")                                   \
    X(MODEL_REFUSED, 24, "model_refused", "the model file was refused; the running model stays")                      \
    X(TOKEN_LIMIT, 25, "token_limit",                                                                                  \
      "the campaign's token package is spent for this period (hard limit); top it up or wait for the next period")    \
    X(UPSTREAM, 26, "upstream_failed", "the generator backend failed or answered something unusable; retry later")    \
    X(UPSTREAM_UNAVAILABLE, 27, "upstream_unavailable",                                                                \
      "the generator backend is failing and paused (circuit open); retry after Retry-After")

enum ads_err {
#define ADS_ERR_ENUM_(name, num, str, msg) ADS_E##name = -(ADS_ERR_BASE + (num)),
    ADS_ERR_MAP(ADS_ERR_ENUM_)
#undef ADS_ERR_ENUM_
};

/* Number of adsmith error codes: they run from -(ADS_ERR_BASE + 1) to -(ADS_ERR_BASE + ADS_ERR_COUNT). */
enum {
#define ADS_ERR_ONE_(name, num, str, msg) +1
    ADS_ERR_COUNT = 0 ADS_ERR_MAP(ADS_ERR_ONE_)
#undef ADS_ERR_ONE_
};

/**
 * Stable, machine-readable name of an error code ("not_found", ...).
 * For a negative errno value returns "errno"; for 0 returns "ok"; for any other
 * value returns "unknown". The returned string is static.
 */
const char *ads_err_name(int code);

/**
 * Default human-readable message of an error code. For a negative errno value
 * this is strerror()'s text. The returned string is static (for errno it is
 * valid until the next call from the same thread).
 */
const char *ads_err_message(int code);

/**
 * Detail of a failure, filled by library functions that can say more than an
 * error code: a sentence a person can act on, and the JSON pointer (RFC 6901)
 * of the offending field ("" for the whole document).
 */
struct ads_diag {
    char message[256];
    char pointer[128];
};

/**
 * Fills @p d (if not NULL) with a formatted message and a pointer (NULL for "").
 * Returns @p code, so that callers can write `return ads_diag_set(d, ADS_EINVAL, ...)`.
 * Overlong text is truncated, never overflowed.
 */
int ads_diag_set(struct ads_diag *d, int code, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
