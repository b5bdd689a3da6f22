/*
 * Shared between the files of models/gen/ only.
 */
#ifndef ADSMITH_GEN_INTERNAL_H
#define ADSMITH_GEN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/gen.h"

/* Decodes the code point at @p s (@p avail bytes); *@p ret_len its length.
 * An invalid byte reads as U+FFFD with length 1. */
uint32_t gen_utf8_decode(const char *s, size_t avail, size_t *ret_len);

/* Encodes @p cp into @p out (room for 4); returns the length. */
size_t gen_utf8_encode(uint32_t cp, char *out);

/* Whether normalised @p needle occurs in normalised @p hay; with @p word, an
 * ASCII alphanumeric at either end of the needle must not touch another. */
bool gen_norm_contains(const char *hay, const char *needle, bool word);

/* Copies at most @p cap - 1 bytes of @p s (@p n bytes) into @p out, cut at a
 * character boundary, NUL-terminated; returns whether everything fit. */
bool gen_copy_cut(char *out, size_t cap, const char *s, size_t n);

/* Characters of @p s as gen_check() counts them ({{slot}} as its max_length). */
size_t gen_text_chars(const struct gen_brief *b, const char *s);

/* Whether @p s holds one of the brief's forbidden terms or a default one. */
bool gen_has_forbidden(const struct gen_brief *b, const char *s);

/* The builtin backend's generator (builtin.c). */
int gen_builtin_run(const struct gen_brief *b, const struct gen_ask *a, struct gen_text *ret_texts, size_t cap,
                    size_t *ret_n);

/* The openai backend (openai.c). */
struct gen_openai;
int gen_openai_make(const struct gen_openai_cfg *cfg, struct gen_openai **ret);
void gen_openai_free(struct gen_openai *o);
int gen_openai_run(struct gen_openai *o, const struct gen_brief *b, const struct gen_ask *a,
                   size_t (*count)(void *ctx, const char *s, size_t n), void *count_ctx, struct gen_text *ret_texts,
                   size_t cap, size_t *ret_n, struct gen_usage *ret_usage, struct ads_diag *ret_diag);
void gen_openai_stats(struct gen_openai *o, struct gen_backend_stats *ret);

/* Parses a model's answer {"variants":[{"title","description","cta"},...]}
 * (code fences around it tolerated) into @p ret_texts. 0 or ADS_EUPSTREAM. */
int gen_parse_answer(const char *content, size_t len, const struct gen_brief *b, size_t want,
                     struct gen_text *ret_texts, size_t cap, size_t *ret_n, struct ads_diag *ret_diag);

#endif
