/*
 * doc: request and response documents, in JSON or MessagePack.
 *
 * Clients choose the encoding: Content-Type for what they send, Accept for
 * what they get back. Both encodings of a request body are parsed into the
 * same tree of msgpack_object values (msgpack-c's type), so validation code is
 * written once. JSON is parsed with cJSON and converted; MessagePack with
 * msgpack-c's unpacker. Responses are written through one writer (docw) that
 * emits either encoding into a bounded struct buf.
 *
 * JSON numbers become POSITIVE_INTEGER / NEGATIVE_INTEGER when they are
 * written without a fraction or exponent and fit in 64 bits (read from the
 * text, so exactly, past 2^53 too; "-0" is 0), FLOAT64 otherwise ("1.0" and
 * "1e3" included). MessagePack float 32 becomes FLOAT64 too. MessagePack bin
 * and ext values are refused (ids and text are str), as are map keys that are
 * not strings, non-finite numbers (NaN, infinity, JSON beyond a double's range)
 * and strings holding U+0000 (they would be cut short by C string functions).
 */
#ifndef ADSMITH_DOC_H
#define ADSMITH_DOC_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/buf.h"
#include "adsmith/err.h"

/* Limits on every parsed document, whatever the encoding. */
#define DOC_MAX_DEPTH 16     /* nesting of arrays and maps; the root is depth 1 */
#define DOC_MAX_NODES 200000 /* values in one document, containers included, map keys not */

enum doc_fmt {
    DOC_JSON,
    DOC_MSGPACK,
};

/**
 * The encoding named by a Content-Type header value (@p len bytes, not
 * NUL-terminated, parameters such as "; charset=utf-8" ignored, case-insensitive).
 * An absent or empty header (@p len 0) means JSON.
 * "application/json", "application/...+json", "text/json" -> DOC_JSON;
 * "application/msgpack", "application/x-msgpack", "application/vnd.msgpack" -> DOC_MSGPACK.
 * @return 0, or ADS_EUNSUPPORTED_MEDIA for anything else.
 */
int doc_fmt_of_content_type(const char *ct, size_t len, enum doc_fmt *ret_fmt);

/**
 * The encoding a client asks for in an Accept header value (@p len bytes):
 * DOC_MSGPACK when it lists a MessagePack type (as above) with a q-value above
 * 0 and at least that of any JSON type it lists; DOC_JSON otherwise (absent,
 * * / *, ...). Never reads past @p len; malformed ranges (or q-values) are skipped.
 */
enum doc_fmt doc_fmt_of_accept(const char *accept, size_t len);

/** The Content-Type to answer with for @p fmt ("application/json" or "application/msgpack"). Static. */
const char *doc_content_type(enum doc_fmt fmt);

/**
 * Parses @p len bytes of @p body in @p fmt into a tree allocated from @p zone
 * (the caller owns the zone and frees it with everything in it; the tree,
 * strings included, points nowhere else, so @p body may go once this returns).
 * JSON must be valid UTF-8 JSON text (RFC 8259; a leading byte order mark is
 * skipped) with nothing but whitespace after the value; MessagePack must be
 * exactly one value. Strings in the tree are not NUL-terminated.
 * @p ret_diag may be NULL.
 * @return 0 with *@p ret_root set, or
 *   ADS_EBAD_REQUEST  not well-formed (diag says where: a byte offset, and
 *                     for JSON the line and column), an empty body, trailing data,
 *                     a bin/ext value, a non-string map key, a string that is not
 *                     UTF-8 or holds U+0000, a non-finite number, nesting deeper
 *                     than DOC_MAX_DEPTH or more than DOC_MAX_NODES values
 *                     (diag->pointer is the path of the offending value, or of the
 *                     map for a bad key, where known; "" is the root);
 *   ADS_ENOMEM.
 */
int doc_parse(enum doc_fmt fmt, const char *body, size_t len, msgpack_zone *zone, msgpack_object *ret_root,
              struct ads_diag *ret_diag);

/** Whether @p len bytes are valid UTF-8 (no overlong forms, surrogates, or U+0000), as doc_parse requires of strings.
 */
bool doc_utf8_valid(const char *s, size_t len);

/**
 * The value of member @p key of @p map, or NULL when absent or @p map is NULL
 * or not a map. Of a repeated name, the last (as JSON.parse() reads it).
 */
const msgpack_object *doc_map_get(const msgpack_object *map, const char *key);

/** The same for a key of @p n bytes (need not be NUL-terminated). */
const msgpack_object *doc_map_getn(const msgpack_object *map, const char *key, size_t n);

/**
 * RFC 7396 JSON Merge Patch: *@p ret = @p patch applied to @p target (NULL:
 * absent). null members of the patch remove; maps merge recursively; any
 * other value replaces. The result shares unchanged values with both inputs
 * and allocates only its new maps from @p zone. Recursion is bounded by the
 * patch's depth (doc_parse() caps it).
 * @return 0, or ADS_ENOMEM.
 */
int doc_merge_patch(msgpack_zone *zone, const msgpack_object *target, const msgpack_object *patch,
                    msgpack_object *ret);

/**
 * Appends to @p b one RFC 6901 reference token: "/" then @p key with "~"
 * written "~0" and "/" written "~1". For building the pointers in diagnostics.
 */
void doc_pointer_key(struct buf *b, const char *key, size_t len);

/** Appends "/" and the decimal @p index to @p b. */
void doc_pointer_index(struct buf *b, size_t index);

/* ---- writing ---- */

struct docw {
    enum doc_fmt fmt;
    struct buf *out;
    msgpack_packer pk;
    uint32_t depth;
    /* Per open container (index 0: the top level): whether a value was
     * written (JSON needs a comma), whether it is a map and expects a key
     * next, and how many of the announced values (pairs) are still to come. */
    bool need_comma[DOC_MAX_DEPTH + 1];
    bool in_map[DOC_MAX_DEPTH + 1];
    bool want_key[DOC_MAX_DEPTH + 1];
    uint32_t left[DOC_MAX_DEPTH + 1];
};

/**
 * Starts writing one document in @p fmt into @p out (borrowed; binary-safe for
 * MessagePack). Output past out's capacity sets out->overflow, which callers
 * check once at the end. Containers deeper than DOC_MAX_DEPTH are a bug, as
 * are a count that differs from the values written (MessagePack writes it up
 * front, so the document would be broken), a key outside a map or where a
 * value belongs, an end that does not match, or a second top-level value; the
 * writer then sets out->overflow rather than write a broken document, and
 * ignores every later call.
 */
void docw_init(struct docw *w, enum doc_fmt fmt, struct buf *out);

/** Opens a map of @p n pairs (MessagePack needs the count up front); close with docw_map_end(). */
void docw_map(struct docw *w, uint32_t n);
void docw_map_end(struct docw *w);

/** Opens an array of @p n values; close with docw_array_end(). */
void docw_array(struct docw *w, uint32_t n);
void docw_array_end(struct docw *w);

/** Writes a map key (NUL-terminated). In a map, keys and values alternate. */
void docw_key(struct docw *w, const char *key);

/** A map key of @p n bytes (need not be NUL-terminated). */
void docw_keyn(struct docw *w, const char *key, size_t n);

/** Writes a whole tree as doc_parse() returns it (no bin or ext values). */
void docw_object(struct docw *w, const msgpack_object *o);

/** Values. Strings are @p len bytes (JSON: invalid UTF-8 is replaced, as buf_json_str() does). */
void docw_str(struct docw *w, const char *s, size_t len);
void docw_cstr(struct docw *w, const char *s);
void docw_int(struct docw *w, int64_t v);
void docw_uint(struct docw *w, uint64_t v);
/**
 * A double; non-finite values are written as null in JSON (which has no NaN).
 * JSON gets the shortest of "%.15g" / "%.17g" that reads back exactly, with
 * ".0" added to integral values so that doc_parse() reads them as FLOAT64.
 */
void docw_double(struct docw *w, double v);
void docw_bool(struct docw *w, bool v);
void docw_nil(struct docw *w);

#endif
