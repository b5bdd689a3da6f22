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
 * Pattern subset (ECMAScript with the u flag, whose stricter syntax is kept:
 * what JavaScript refuses is refused): literals; escapes of ^ $ \ . * + ? ( ) [ ]
 * { } | and /, \t \n \r \f \v \0 \cX \xHH \uXXXX (surrogate pairs join) \u{X...};
 * \d \D \w \W \s \S; . (any code point but a line terminator); ^ and $ (input
 * start and end: no m flag); classes [...] and [^...] with ranges and escapes
 * (\- and \b only there); groups (...) and (?:...) with |; the quantifiers ?
 * * + {n} {n,} {n,m}, greedy or lazy. Not supported, refused when compiling:
 * \b \B, lookarounds, named groups, backreferences, \p{...}, a group repeated
 * more than 1000 times, and a group that can match the empty string repeated
 * without bound. Patterns run on a backtracking matcher with a step limit
 * (about a million steps plus 16 per byte); a string that exhausts it is
 * reported as a problem rather than accepted.
 *
 * Problems are sentences a person can act on ("is 70 characters; the most
 * allowed is 64", "must match ^[A-Z]{3}$ (ISO 4217 alphabetic currency code)"),
 * quoting the start of the schema's "description" where that helps. Rules are
 * "schema:" and the keyword; a false schema is "schema:false" and a schema
 * nested past the evaluation limit (a safety net) is "schema:depth". anyOf and
 * oneOf report one problem at the value (saying what each alternative lacks),
 * never the alternatives' own; "if" is evaluated silently; uniqueItems reports
 * each repeated item at its own pointer; additionalProperties: false each
 * unknown member at its own pointer.
 *
 * Where the data model differs from JSON.parse's: a map holding a member name
 * twice is validated as if only the last were there (as ajv sees it after
 * JSON.parse) when it has at most 256 members; larger maps have every member
 * checked. uniqueItems compares at most 1024 items pairwise; a longer array is
 * a problem unless maxItems already refused it.
 */
#ifndef ADSMITH_JSCH_H
#define ADSMITH_JSCH_H

#include <msgpack.h>
#include <stddef.h>

#include "adsmith/err.h"
#include "adsmith/vrep.h"

struct jsch;

/**
 * Compiles the schema of @p len bytes of JSON text (nothing of @p json is kept).
 * Annotations ($schema must name draft 2020-12; $schema, $id and $defs only at
 * the root) are checked for their type and otherwise ignored.
 * @return 0 with *@p ret set (free with jsch_free), or ADS_EINVAL with @p diag
 *   saying what is unsupported or malformed and where (a JSON pointer into the
 *   schema), or ADS_ENOMEM.
 */
int jsch_compile(const char *json, size_t len, struct jsch **ret, struct ads_diag *diag);

/** Frees @p s (NULL is fine). */
void jsch_free(struct jsch *s);

/**
 * Validates @p root against @p s, adding one entry to @p rep for every
 * problem (rule "schema:<keyword>"; the pointer is that of the offending value,
 * or for "required" and "dependentRequired" that of the missing member; for
 * "propertyNames" that of the member whose name is refused).
 * Never allocates from the heap (stack use is bounded: tens of KiB); recursion is
 * bounded by the document's depth (doc_parse() caps it at DOC_MAX_DEPTH) and
 * the schema's (compiling refuses $ref cycles that do not descend into the
 * document).
 * @return 0 when the document is valid, ADS_EINVAL when it is not.
 */
int jsch_validate(const struct jsch *s, const msgpack_object *root, struct vrep *rep);

#endif
