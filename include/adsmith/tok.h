/*
 * tok: the local tokenizer (models/tok/). A byte-level BPE tokenizer that
 * reads the tiktoken rank-file format, used for prompt estimates and for the
 * built-in generator's token counts.
 *
 * Rank file: one token a line, `<base64 of the token's bytes> <rank>`, lines
 * ending in "\n" (a "\r" before it and blank lines are accepted). The rank is
 * both the token id and its merge priority (lower merges first). Every one of
 * the 256 single bytes must be a token, so that any byte string encodes.
 * Bounded: at most TOK_MAX_FILE bytes, TOK_MAX_RANKS lines, ranks below
 * TOK_MAX_RANKS, tokens of 1..TOK_MAX_TOKEN_BYTES bytes; a token or a rank
 * listed twice is refused. Errors name the line.
 *
 * Encoding (what tiktoken's encode_ordinary does): the text is first split
 * into pieces by a regular expression (PCRE2, UTF and Unicode properties; the
 * cl100k_base pattern unless another is given), then each piece is encoded on
 * its own: a piece that is itself a token maps to it; otherwise its bytes are
 * merged pair by pair, always the adjacent pair whose concatenation has the
 * lowest rank (the leftmost on a tie), until no adjacent pair is a token.
 * Special tokens (<|endoftext|> ...) are not recognised: they encode as text.
 * Input that is not valid UTF-8 still encodes: the bytes of an invalid
 * sequence, which the pattern never matches, form pieces of their own
 * (runs of consecutive unmatched bytes, each run one piece).
 *
 * Threads: a struct tok is immutable once loaded; any number of threads may
 * encode, count and decode with it at the same time. tok_free must not race
 * with them.
 */
#ifndef ADSMITH_TOK_H
#define ADSMITH_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "adsmith/err.h"

/** Largest rank file accepted, in bytes. */
#define TOK_MAX_FILE (64u << 20)
/** Most lines (tokens) in a rank file; every rank is below this. */
#define TOK_MAX_RANKS 1000000u
/** Longest token, in bytes. */
#define TOK_MAX_TOKEN_BYTES 256u
/** Longest pre-split pattern accepted, in bytes. */
#define TOK_MAX_PATTERN 4096u

/** The cl100k_base pre-split pattern (the default). */
#define TOK_PATTERN_CL100K                                                                                             \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "                                         \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"                                                                     \
    "\\s+(?!\\S)|\\s+"

/** The o200k_base pre-split pattern. */
#define TOK_PATTERN_O200K                                                                                              \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'"  \
    "ll|'d)?"                                                                                                          \
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'" \
    "ll|'d)?"                                                                                                          \
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

struct tok;

/** Load options; a NULL options pointer means all defaults. */
struct tok_opts {
    /** Pre-split pattern (PCRE2 syntax, compiled with UTF and UCP); NULL for TOK_PATTERN_CL100K. */
    const char *pattern;
};

/**
 * Reads the rank file at @p path with the default options (cl100k_base
 * pre-split). On success *ret is a new tokenizer, freed with tok_free.
 * @return 0; -errno when the file cannot be read; ADS_EINVAL when it is over
 * TOK_MAX_FILE or malformed (@p ret_diag, if not NULL, then says which line and
 * why, prefixed with the path); ADS_ENOMEM.
 */
int tok_load(const char *path, struct tok **ret, struct ads_diag *ret_diag);

/** tok_load with options (@p opts may be NULL). A pattern that does not compile is ADS_EINVAL. */
int tok_load_opts(const char *path, const struct tok_opts *opts, struct tok **ret, struct ads_diag *ret_diag);

/**
 * Parses a rank file held in memory (@p data, @p len bytes; copied, the
 * caller keeps ownership) with the default options. Errors as tok_load.
 */
int tok_from_mem(const void *data, size_t len, struct tok **ret, struct ads_diag *ret_diag);

/** tok_from_mem with options (@p opts may be NULL). */
int tok_from_mem_opts(const void *data, size_t len, const struct tok_opts *opts, struct tok **ret,
                      struct ads_diag *ret_diag);

/** Frees a tokenizer; NULL is accepted. */
void tok_free(struct tok *t);

/** Number of tokens in the rank file. */
size_t tok_vocab_size(const struct tok *t);

/**
 * Encodes @p len bytes of @p text (any bytes; NULL when @p len is 0) into
 * token ids, at most @p cap of them into @p ret_ids (which may be NULL when
 * @p cap is 0).
 * @return 0 with *ret_n the number of ids written; -ENOBUFS when more than
 * @p cap ids are needed: then, unlike other failures, *ret_n is set (to the
 * number needed) and the first @p cap ids are written; ADS_ENOMEM (pieces of over 256 bytes need
 * working memory, about 44 bytes per byte of the piece); ADS_EINVAL when
 * @p t is NULL.
 */
int tok_encode(const struct tok *t, const char *text, size_t len, uint32_t *ret_ids, size_t cap, size_t *ret_n);

/**
 * Number of tokens @p text encodes to with @p t; with @p t NULL,
 * tok_estimate(text, len). When working memory runs out (see tok_encode)
 * the estimate is returned too, so the result never undercounts.
 */
size_t tok_count(const struct tok *t, const char *text, size_t len);

/**
 * The conservative estimate used when no rank file is configured: an upper
 * bound of the token count of @p text under any byte-level BPE vocabulary,
 * which is @p len. Every token of a byte-level BPE holds at least one byte of
 * the text and the tokens of an encoding partition its bytes, so no encoding
 * has more tokens than bytes; the vocabulary of the 256 single bytes alone
 * reaches that bound, so no smaller bound holds for every vocabulary. It
 * counts the text only, not a chat format's per-message tokens.
 */
size_t tok_estimate(const char *text, size_t len);

/**
 * Decodes @p n ids into their bytes, into @p ret_buf of @p cap bytes (no
 * terminating NUL is added; on -ENOBUFS the tokens that fit whole, in order,
 * are written).
 * @return 0 with *ret_len the number of bytes; -ENOBUFS when more than @p cap
 * bytes are needed (*ret_len is then the number needed); ADS_EINVAL when an id
 * is not a rank of the file or @p t is NULL.
 */
int tok_decode(const struct tok *t, const uint32_t *ids, size_t n, char *ret_buf, size_t cap, size_t *ret_len);

#endif
