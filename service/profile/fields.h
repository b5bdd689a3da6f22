/*
 * fld: shared by the validators of client documents (profiles, events): walk
 * a parsed document (doc_parse) and report the first broken rule with the
 * JSON pointer of its field. Internal to service/; not part of the API.
 */
#ifndef ADSMITH_FIELDS_H
#define ADSMITH_FIELDS_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/buf.h"
#include "adsmith/err.h"

/* Latest accepted time: year 3000, so a value in milliseconds is caught. */
#define FLD_MAX_TIME 32503680000ull

/* Deeper than any document the validators accept (doc_parse allows 16 levels). */
#define FLD_MAX_DEPTH 24

/* One step of the pointer: a key (borrowed until the step is popped), or an index. */
struct fld_step {
    const char *key; /* NULL: index */
    size_t index;
};

/* The pointer of the value being checked is kept as steps and only written
 * out when a check fails, so valid documents pay nothing for it. */
struct fld_ctx {
    struct ads_diag *diag;
    size_t depth;
    struct fld_step steps[FLD_MAX_DEPTH];
};

void fld_init(struct fld_ctx *c, struct ads_diag *diag);

/** Appends "/key" (@p key borrowed until popped) or "/index" to the pointer; returns the mark to fld_pop() back to. */
size_t fld_push_key(struct fld_ctx *c, const char *key);
size_t fld_push_index(struct fld_ctx *c, size_t i);
void fld_pop(struct fld_ctx *c, size_t mark);

/** Sets the diag (message from @p fmt, the current pointer) and returns ADS_EINVAL. */
int fld_fail(struct fld_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** "a string", "an object", ... for messages. */
const char *fld_type_name(const msgpack_object *o);

/** Fails unless @p o has type @p t (FLOAT64 also accepts integers); @p what names the wanted type. */
int fld_want(struct fld_ctx *c, const msgpack_object *o, msgpack_object_type t, const char *what);

/** Whether @p len bytes hold no control characters. */
bool fld_is_text(const char *s, size_t len);

/** A string of 1..@p max bytes without control characters, copied NUL-terminated into @p dst (max + 1 bytes). */
int fld_str(struct fld_ctx *c, const msgpack_object *o, size_t max, char *dst);

/** A unix time in seconds, 0..FLD_MAX_TIME. */
int fld_time(struct fld_ctx *c, const msgpack_object *o, uint64_t *ret);

/** A count, 0..UINT32_MAX. */
int fld_count(struct fld_ctx *c, const msgpack_object *o, uint64_t *ret);

/** A number from 0 to @p max. */
int fld_number(struct fld_ctx *c, const msgpack_object *o, double max, double *ret);

/** An array of at most @p max elements. */
int fld_list(struct fld_ctx *c, const msgpack_object *o, uint32_t max);

/**
 * Checks that @p o is an object whose keys are all among @p names (n of them),
 * none twice; seen[i] gets the value of names[i], or NULL when absent.
 */
int fld_fields(struct fld_ctx *c, const msgpack_object *o, const char *const *names, size_t n,
               const msgpack_object **seen);

#endif
