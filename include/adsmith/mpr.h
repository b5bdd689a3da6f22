/*
 * mpr: reads MessagePack in place, without allocating.
 *
 * msgpack-c's unpacker always builds an object tree in a heap zone; the bid
 * path reads stored profiles straight out of LMDB's memory map instead, so it
 * uses this cursor. Strings returned point into the input buffer and live as
 * long as it does (for LMDB: until the read transaction ends).
 *
 * Every reader checks the type and the remaining length; on a mismatch or a
 * truncated input it returns ADS_EDATA_INVALID and leaves the cursor where it
 * was, so the caller may try another type.
 */
#ifndef ADSMITH_MPR_H
#define ADSMITH_MPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting a single mpr_skip() will descend before giving up. */
#define MPR_MAX_DEPTH 32

struct mpr {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last byte */
};

enum mpr_type {
    MPR_END, /* no bytes left */
    MPR_NIL,
    MPR_BOOL,
    MPR_UINT,  /* positive fixint, uint 8/16/32/64 */
    MPR_INT,   /* negative fixint, int 8/16/32/64 (value may still be >= 0) */
    MPR_FLOAT, /* float 32/64 */
    MPR_STR,
    MPR_BIN,
    MPR_ARRAY,
    MPR_MAP,
    MPR_EXT,     /* fixext, ext 8/16/32 */
    MPR_INVALID, /* 0xc1, the one byte MessagePack never uses */
};

/** Starts a cursor over @p len bytes at @p data (borrowed). */
void mpr_init(struct mpr *r, const void *data, size_t len);

/** The type of the next value, without consuming it. */
enum mpr_type mpr_peek(const struct mpr *r);

/** Consumes a nil if one is next; returns whether it did. */
bool mpr_nil(struct mpr *r);

/** Reads a boolean. 0 or ADS_EDATA_INVALID. */
int mpr_bool(struct mpr *r, bool *ret);

/** Reads an integer (either family) that fits in uint64_t. 0 or ADS_EDATA_INVALID (also if negative). */
int mpr_u64(struct mpr *r, uint64_t *ret);

/** Reads an integer (either family) that fits in int64_t. 0 or ADS_EDATA_INVALID (also if > INT64_MAX). */
int mpr_i64(struct mpr *r, int64_t *ret);

/** Reads a float 32/64 or any integer, as a double. 0 or ADS_EDATA_INVALID. */
int mpr_f64(struct mpr *r, double *ret);

/**
 * Reads a str (fixstr, str 8/16/32). *@p ret points into the input (not
 * NUL-terminated), *@p ret_len is its length. 0 or ADS_EDATA_INVALID.
 */
int mpr_str(struct mpr *r, const char **ret, size_t *ret_len);

/** Reads a bin (bin 8/16/32) the same way as mpr_str(). 0 or ADS_EDATA_INVALID. */
int mpr_bin(struct mpr *r, const void **ret, size_t *ret_len);

/** Reads an array header; the @p *ret_n elements follow. 0 or ADS_EDATA_INVALID. */
int mpr_array(struct mpr *r, uint32_t *ret_n);

/** Reads a map header; @p *ret_n key/value pairs follow. 0 or ADS_EDATA_INVALID. */
int mpr_map(struct mpr *r, uint32_t *ret_n);

/**
 * Skips one whole value, containers included, iteratively (no recursion).
 * 0, or ADS_EDATA_INVALID on truncated input, 0xc1, or nesting deeper than
 * MPR_MAX_DEPTH.
 */
int mpr_skip(struct mpr *r);

#endif
