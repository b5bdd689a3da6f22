/*
 * Fixtures shared by the tests of models/gen/: the demo campaign's brief and
 * the chat-completions test double (tests/gen/openai_double.c).
 */
#ifndef ADSMITH_TESTS_GENFIX_H
#define ADSMITH_TESTS_GENFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "adsmith/gen.h"

/* The brief of schemas/examples/campaign-demo.json (fails the test on error). */
void genfix_demo_brief(struct gen_brief *ret);

/* Reads a campaign JSON text into a brief; returns gen_brief_from_doc()'s code. */
int genfix_brief_of_json(const char *json, struct gen_brief *ret);

struct genfix_double {
    pid_t pid;
    int stdin_fd; /* closing it stops the double */
    int port;
    char base_url[64]; /* http://127.0.0.1:PORT/v1 */
};

/* Starts the double ($ADSMITH_OPENAI_DOUBLE) with API key "test-key". */
void genfix_double_start(struct genfix_double *d);
void genfix_double_stop(struct genfix_double *d);

/* How many completion requests the double saw for @p model (GET /stats). */
unsigned genfix_double_count(const struct genfix_double *d, const char *model);

/* GET @p path into @p out (NUL-terminated); returns the HTTP status. */
long genfix_double_get(const struct genfix_double *d, const char *path, char *out, size_t cap);

#endif
