/*
 * jsch: a JSON Schema (draft 2020-12) validator for the subset of the
 * vocabulary adsmith's own schemas use, over the msgpack_object trees that
 * doc_parse() produces (so JSON and MessagePack documents are checked by the
 * same code).
 *
 * The schema is compiled once (jsch_compile) from its JSON text; compiling
 * refuses any keyword or regular-expression construct it does not implement,
 * so a schema edit that needs more is caught by the tests rather than
 * silently ignored. The compiled schema is immutable and may be shared by
 * every thread.
 *
 * Supported keywords: $schema $id $defs $ref (local "#/$defs/NAME" only)
 * title description default readOnly $comment examples; type (one name or a
 * list) enum const; properties required additionalProperties (bool or schema)
 * dependentRequired minProperties maxProperties propertyNames;
 * items minItems maxItems uniqueItems; minLength maxLength pattern;
 * minimum maximum exclusiveMinimum exclusiveMaximum; anyOf oneOf allOf not
 * if then else; boolean schemas. Semantics follow the specification (and
 * ajv, the reference implementation the tests compare with): an "integer" is any
 * number with no fractional part (1.0 is an integer), lengths count Unicode
 * code points, patterns are ECMAScript regular expressions with the "u" flag and
 * are unanchored unless they say ^ and $, uniqueItems compares by JSON equality
 * (1 and 1.0 are equal; map key order does not matter).
 *
 * Pattern subset: literals, escapes \\ \/ \. \- \^ \$ \( \) \[ \] \{ \} \| \* \+ \? and
 * \uXXXX, ^ and $, character classes [...] and [^...] with ranges and escapes,
 * groups (...) with |, and the quantifiers ? * + {n} {n,} {n,m}.
 */
#ifndef ADSMITH_JSCH_H
#define ADSMITH_JSCH_H

#include <msgpack.h>
#include <stddef.h>

#include "adsmith/err.h"
#include "adsmith/vrep.h"

struct jsch;

/**
 * Compiles the schema of @p len bytes of JSON text.
 * @return 0 with *@p ret set (free with jsch_free), or ADS_EINVAL with @p diag
 *   saying what is unsupported or malformed and where (a JSON pointer into the
 *   schema), or ADS_ENOMEM.
 */
int jsch_compile(const char *json, size_t len, struct jsch **ret, struct ads_diag *diag);

void jsch_free(struct jsch *s);

/**
 * Validates @p root against @p s, adding one entry to @p rep for every
 * problem (rule "schema:<keyword>"; the pointer is that of the offending value,
 * or for "required" and "dependentRequired" that of the missing member).
 * Never allocates from the heap; recursion is bounded by the document's depth
 * (doc_parse() caps it at DOC_MAX_DEPTH) and the schema's.
 * @return 0 when the document is valid, ADS_EINVAL when it is not.
 */
int jsch_validate(const struct jsch *s, const msgpack_object *root, struct vrep *rep);

#endif
