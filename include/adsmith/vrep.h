/*
 * vrep: a validation report, the list of every problem found in a document.
 *
 * Validators add one entry per problem (they do not stop at the first), each
 * with the JSON pointer (RFC 6901) of the value at fault, a sentence a person
 * can act on, and the rule that failed. The report keeps the first
 * VREP_MAX entries and counts the rest, so a hostile document cannot make it
 * grow without bound.
 *
 * Rules are static strings of the form "schema:<keyword>" for what the JSON
 * Schema says (e.g. "schema:maxLength", "schema:required") and
 * "semantic:<name>" for what the service checks on top of it (e.g.
 * "semantic:end_after_start"); "parse" is used for a document that is not
 * well-formed at all.
 */
#ifndef ADSMITH_VREP_H
#define ADSMITH_VREP_H

#include <stdbool.h>
#include <stddef.h>

#include "adsmith/doc.h"

#define VREP_MAX 64          /* problems kept; the rest are only counted */
#define VREP_POINTER_MAX 192 /* bytes of a pointer, NUL included; longer ones are cut with "..." */
#define VREP_MESSAGE_MAX 224 /* bytes of a message, NUL included */

struct vrep_item {
    const char *rule; /* static */
    char pointer[VREP_POINTER_MAX];
    char message[VREP_MESSAGE_MAX];
};

struct vrep {
    size_t count; /* entries in items[] */
    size_t total; /* problems found, including those not kept */
    size_t schema_total; /* problems whose rule starts with "schema:" or is "parse" */
    struct vrep_item items[VREP_MAX];
};

/** Empties @p rep. */
void vrep_init(struct vrep *rep);

/**
 * Adds a problem: @p rule (static), the pointer @p ptr (@p ptr_len bytes, need not be
 * NUL-terminated) and a printf-style message. Counted even when the report is full.
 */
void vrep_add(struct vrep *rep, const char *rule, const char *ptr, size_t ptr_len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/** Whether nothing was added. */
static inline bool vrep_ok(const struct vrep *rep)
{
    return rep->total == 0;
}

/**
 * Writes the report's entries as an array of maps {"pointer","message","rule"}
 * (count: rep->count) into @p w.
 */
void vrep_write(const struct vrep *rep, struct docw *w);

#endif
