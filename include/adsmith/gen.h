/*
 * gen: AI variant generator backends and the checks every variant passes
 * before it is stored (issue 7).
 *
 * A campaign's "generation" member is read once into a struct gen_brief
 * (fixed-size, bounded by the campaign schema's limits). A backend turns a
 * brief plus an ask (locale, segment, count, seed) into up to 20 struct
 * gen_text variants of the native creative's title, description and cta:
 *
 *   builtin  an offline generator with a grammar of its own (en and zh
 *            phrases; other locales fall back to en). Deterministic for a
 *            given (brief, ask); no network. Uses facts verbatim or lightly
 *            framed, puts the required terms in, keeps the base creative's
 *            {{slot}} placeholders and fits the field limits by construction.
 *   openai   any OpenAI-compatible POST {base_url}/chat/completions endpoint
 *            (OpenAI, DeepSeek, Qwen compatible mode, vLLM, llama.cpp server),
 *            with JSON or SSE streaming answers, timeouts, retries with
 *            exponential backoff and jitter, and a circuit breaker.
 *
 * Nothing a backend returns is trusted: the caller runs gen_check() on every
 * variant and stores only those that pass.
 *
 * Lengths. Field limits (brief.limit_*) count Unicode characters (code
 * points), as the issue asks; each text buffer holds 4 bytes per character of
 * the field's schema maximum (90/500/25) plus the NUL, so a text within its
 * limit always fits. A {{slot}} counts as its declared max_length (bytes of
 * the filled-in value, hence at least as many as its characters), so the
 * served text never exceeds the limit whatever the slot is filled with.
 */
#ifndef ADSMITH_GEN_H
#define ADSMITH_GEN_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adsmith/buf.h"
#include "adsmith/err.h"

/* Bump when the prompt text or the builtin grammar changes; recorded in each
 * variant's provenance. */
#define GEN_PROMPT_VERSION 1

/* The campaign schema's limits (bytes unless said otherwise). */
#define GEN_MAX_FACTS 32
#define GEN_FACT_MAX 280
#define GEN_VOICE_MAX 1000
#define GEN_MAX_REQUIRED 16
#define GEN_MAX_FORBIDDEN 64
#define GEN_TERM_MAX 64
#define GEN_MAX_LOCALES 16
#define GEN_LOCALE_MAX 16
#define GEN_LABEL_MAX 64
#define GEN_BACKEND_NAME_MAX 32
#define GEN_MAX_SLOTS 16
#define GEN_SLOT_NAME_MAX 32
#define GEN_MAX_VARIANTS 20
#define GEN_SEGMENT_MAX 64

/* Field limits in characters: the schema's maxima, also the defaults. */
#define GEN_TITLE_CHARS 90
#define GEN_DESCRIPTION_CHARS 500
#define GEN_CTA_CHARS 25

/* Text buffers: 4 bytes (the longest UTF-8 sequence) per character, plus NUL. */
#define GEN_TITLE_CAP (4 * GEN_TITLE_CHARS + 1)
#define GEN_DESCRIPTION_CAP (4 * GEN_DESCRIPTION_CHARS + 1)
#define GEN_CTA_CAP (4 * GEN_CTA_CHARS + 1)

/* Size gen_prompt() needs at most for any brief within the limits above. */
#define GEN_PROMPT_CAP (96 * 1024)

struct gen_slot {
    char name[GEN_SLOT_NAME_MAX + 1];
    uint32_t max_length; /* bytes of the filled-in value, 1-64 */
};

/** A campaign's generation brief. Plain data (copy freely); every string NUL-terminated. */
struct gen_brief {
    char facts[GEN_MAX_FACTS][GEN_FACT_MAX + 1];
    uint32_t n_facts;
    char voice[GEN_VOICE_MAX + 1];
    char required[GEN_MAX_REQUIRED][GEN_TERM_MAX + 1];
    uint32_t n_required;
    char forbidden[GEN_MAX_FORBIDDEN][GEN_TERM_MAX + 1];
    uint32_t n_forbidden;
    uint32_t limit_title, limit_description, limit_cta; /* characters; default 90/500/25 */
    char locales[GEN_MAX_LOCALES][GEN_LOCALE_MAX + 1];
    uint32_t n_locales;
    uint32_t variants; /* per locale and format, 1-20 */
    char ai_label[GEN_LABEL_MAX + 1];
    char backend[GEN_BACKEND_NAME_MAX + 1];
    /* The base native creative (has_native false: the campaign has none and
     * the builtin generator writes from the facts alone). */
    bool has_native;
    char base_title[GEN_TITLE_CAP];
    char base_description[GEN_DESCRIPTION_CAP];
    char base_cta[GEN_CTA_CAP];
    struct gen_slot slots[GEN_MAX_SLOTS];
    uint32_t n_slots;
};

/**
 * Reads @p campaign_doc (a campaign as doc_parse() returns it, already
 * validated against the schema; still re-checked here for types and sizes)
 * into *@p ret. @p ret_diag may be NULL.
 * @return 0; ADS_ENOT_FOUND when the campaign has no "generation" member;
 *   ADS_EINVAL with diag (message and JSON pointer) when a member has the wrong
 *   type or exceeds the limits above.
 */
int gen_brief_from_doc(const msgpack_object *campaign_doc, struct gen_brief *ret, struct ads_diag *ret_diag);

/** What to write. */
struct gen_ask {
    char locale[GEN_LOCALE_MAX + 1];   /* BCP 47; "zh*" gets the builtin's zh grammar, all else en */
    char segment[GEN_SEGMENT_MAX + 1]; /* audience segment name, may be ""; part of the prompt and the seed */
    uint32_t count;                    /* variants wanted, 1-GEN_MAX_VARIANTS */
    uint64_t seed;              /* same seed, same builtin output; its low 31 bits are sent as "seed" to providers */
    uint32_t max_output_tokens; /* 0: 400 per variant */
};

/** One variant. */
struct gen_text {
    char title[GEN_TITLE_CAP];
    char description[GEN_DESCRIPTION_CAP];
    char cta[GEN_CTA_CAP];
    char ai_label[GEN_LABEL_MAX + 1]; /* the brief's label, set by gen_run(); gen_check() insists on it */
    /* Set when a provider's field did not fit its buffer: the field holds a
     * prefix cut at a character boundary and gen_check() says too_long. */
    bool title_cut, description_cut, cta_cut;
};

/** Tokens spent, as the provider reported them or as counted locally (estimated). */
struct gen_usage {
    uint64_t prompt;
    uint64_t cached;     /* of prompt: served from the provider's prompt cache */
    uint64_t completion; /* reasoning included */
    uint64_t reasoning;  /* of completion */
    bool estimated;      /* some part counted locally: the provider reported none, or a stream broke off */
};

/* ---- checks ---- */

enum gen_reason {
    GEN_OK = 0,
    GEN_INVALID_UTF8,        /* a field is not valid UTF-8 */
    GEN_CONTROL_CHAR,        /* a field holds U+0000-U+001F or U+007F (the schema forbids them) */
    GEN_EMPTY,               /* a field is empty */
    GEN_TOO_LONG,            /* more characters than the field's limit ({{slot}} counted as its max_length) */
    GEN_UNKNOWN_SLOT,        /* {{name}} not declared in creatives.slots, or an unclosed "{{" */
    GEN_FORBIDDEN_TERM,      /* a brief's forbidden term or one of the default absolute-claim terms */
    GEN_REQUIRED_MISSING,    /* a required term appears in no field */
    GEN_CLAIM_OUTSIDE_FACTS, /* a number or a superlative that no fact states */
    GEN_LABEL_MISSING,       /* the brief's ai_label is blank, or the variant's label differs from it */
};

struct gen_verdict {
    enum gen_reason reason;      /* the first failure found, GEN_OK when none */
    const char *field;           /* "title", "description", "cta", "ai_label" or "" (static) */
    char term[GEN_TERM_MAX + 1]; /* the offending term, number, slot or word, as listed / written */
};

/** The stable code of @p r: "ok", "invalid_utf8", "control_char", "empty", "too_long", "unknown_slot",
 * "forbidden_term", "required_missing", "claim_outside_facts", "label_missing". Static. */
const char *gen_reason_name(enum gen_reason r);

/**
 * Checks variant @p t against brief @p b, in the order of enum gen_reason
 * (per field: title, description, cta). Term matching is on normalised text
 * (gen_norm()): brief terms match anywhere; default terms that begin or end
 * with an ASCII letter or digit need a non-alphanumeric neighbour there
 * ("cure" does not match "secure"). The claim heuristic: every number in the
 * text (a run of digits, with inner "." or ",") must occur in some fact, and
 * every superlative word of a fixed list (en "best", "fastest", "only", ...,
 * zh "最", "领先", ...) must occur in some fact (required terms count as facts
 * here). Details and the default list: models/gen/README.md.
 * @return 0 with *@p ret filled (ret->reason GEN_OK or the failure).
 */
int gen_check(const struct gen_brief *b, const struct gen_text *t, struct gen_verdict *ret);

/** The built-in absolute-claim terms (NULL-terminated, static), for the prompt and the docs. */
const char *const *gen_default_forbidden(void);

/**
 * Normalises @p n bytes of UTF-8 for term matching into @p out (cap bytes,
 * always NUL-terminated; cut at a character boundary when short): full-width
 * U+FF01-U+FF5E to ASCII, U+3000 to a space, then lower case for ASCII,
 * Latin-1, Latin Extended-A, Greek and Cyrillic. Invalid bytes are copied
 * as they are. @return the bytes written (without the NUL).
 */
size_t gen_norm(const char *s, size_t n, char *out, size_t cap);

/** Unicode characters in @p n bytes of UTF-8 (an invalid byte counts as one). */
size_t gen_chars(const char *s, size_t n);

/* ---- backends ---- */

struct gen_backend;

/** Configuration of an OpenAI-compatible backend. Strings are copied by gen_openai_new(). */
struct gen_openai_cfg {
    const char *name;         /* backend name campaigns use, 1-32 of [a-z0-9_-] starting with a letter */
    const char *base_url;     /* e.g. "https://api.openai.com/v1"; "/chat/completions" is appended; <= 512 bytes */
    const char *model;        /* <= 128 bytes */
    const char *api_key;      /* the caller reads it from the environment variable its config names; NULL or "": none */
    uint32_t timeout_ms;      /* whole request, streaming included; 0: 30000 */
    uint32_t retries;         /* extra attempts after the first, 0-10 */
    uint32_t backoff_base_ms; /* first backoff; doubles per retry, with jitter in [d/2, d]; 0: 200 */
    uint32_t backoff_max_ms;  /* 0: 10000 */
    uint32_t retry_after_max_ms;  /* a Retry-After header is honoured up to this; 0: 30000 */
    uint32_t breaker_failures;    /* consecutive failed calls that open the breaker; 0: never opens */
    uint32_t breaker_cooldown_ms; /* open this long, then one probe call (half-open) */
    bool stream;                  /* SSE answers, with stream_options.include_usage */
    bool json_mode;               /* response_format {"type":"json_object"} */
    bool max_completion_tokens;   /* send "max_completion_tokens" instead of "max_tokens" (newer OpenAI models) */
    double temperature;           /* sent as is; <0: not sent */
};

/**
 * A builtin backend named @p name (NULL: "builtin").
 * @return 0, ADS_EINVAL (bad name), ADS_ENOMEM.
 */
int gen_builtin_new(const char *name, struct gen_backend **ret);

/**
 * An OpenAI-compatible backend. Safe to share between threads (the breaker is
 * locked; each call uses its own curl handle). The caller must have called
 * curl_global_init() (the daemon does at start).
 * @return 0, ADS_EINVAL (a missing or overlong name, base_url or model, retries > 10), ADS_ENOMEM.
 */
int gen_openai_new(const struct gen_openai_cfg *cfg, struct gen_backend **ret);

/** Frees @p be (NULL is fine). No call may be running on it. */
void gen_backend_free(struct gen_backend *be);

/** The backend's name (owned by it). */
const char *gen_backend_name(const struct gen_backend *be);

/** Breaker and traffic counters of a backend (all 0 for builtin). */
struct gen_backend_stats {
    uint64_t requests; /* HTTP requests sent */
    uint64_t failures; /* calls that failed */
    uint64_t refused;  /* calls refused by the open breaker */
    bool open;         /* breaker open (or half-open with its probe running) */
};

/** Reads the counters of @p be into *@p ret. */
void gen_backend_stats(struct gen_backend *be, struct gen_backend_stats *ret);

/**
 * Writes the chat messages for (@p b, @p a) into @p ret_messages_json as a
 * JSON array [{"role":"system","content":...},{"role":"user","content":...}]:
 * exactly the "messages" the openai backend sends, so the caller can count
 * the prompt's tokens before reserving them. GEN_PROMPT_CAP bytes suffice.
 * @return 0, ADS_EINVAL (a bad ask: count 0 or > GEN_MAX_VARIANTS, or the buffer
 *   overflowed; its contents are then unspecified).
 */
int gen_prompt(const struct gen_brief *b, const struct gen_ask *a, struct buf *ret_messages_json);

/**
 * Asks @p be for a->count variants (at most @p cap are written to
 * @p ret_texts, *@p ret_n set to how many; a provider may return fewer than
 * asked, never 0 on success). Each text's ai_label is the brief's.
 *
 * @p count is the local tokenizer (NULL: byte length, an upper bound); it
 * counts the builtin's prompt (gen_prompt()) and output, and estimates the
 * openai backend's usage when the provider reports none or a stream breaks
 * off (ret_usage->estimated is then true).
 *
 * Unlike other ret_* parameters, *@p ret_usage (may be NULL) is written on
 * failure too: it holds every token spent by the call's attempts (a broken
 * stream or a timeout is charged the prompt plus what arrived, estimated; an
 * HTTP error status or a refused connection is charged nothing).
 *
 * @return 0; ADS_EINVAL (bad ask, cap 0); ADS_EUPSTREAM (an error status
 *   after retries, a 4xx, a timeout, a broken stream, an answer that is not
 *   the expected JSON; diag says which); ADS_EUPSTREAM_UNAVAILABLE (the
 *   breaker is open: no request was sent); ADS_ENOMEM.
 */
int gen_run(struct gen_backend *be, const struct gen_brief *b, const struct gen_ask *a,
            size_t (*count)(void *ctx, const char *s, size_t n), void *count_ctx, struct gen_text *ret_texts,
            size_t cap, size_t *ret_n, struct gen_usage *ret_usage, struct ads_diag *ret_diag);

#endif
