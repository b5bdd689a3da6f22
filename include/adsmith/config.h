/*
 * cfg: the daemon's configuration.
 *
 * One table of settings (service/config/config.c) drives every layer. Each
 * setting NAME is read, highest precedence first, from:
 *   1. the command line:   --NAME-WITH-DASHES VALUE  or  --NAME-WITH-DASHES=VALUE
 *   2. the environment:    ADSMITH_NAME_IN_CAPITALS=VALUE
 *   3. the config file:    NAME = VALUE   (one per line; a line starting with '#' or ';'
 *                          is a comment, and so is the rest of a line after " ;")
 *   4. the built-in default.
 * A list setting (listen) set on a layer replaces the whole list of the layers
 * below; within one layer, repeating it appends (a comma-separated value
 * appends each element).
 *
 * The config file path comes from --config or ADSMITH_CONFIG.
 */
#ifndef ADSMITH_CONFIG_H
#define ADSMITH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "adsmith/buf.h"
#include "adsmith/err.h"

#define CFG_MAX_LISTEN 16
#define CFG_MAX_VALUE 4096 /* longest accepted value, in bytes */

enum cfg_source { CFG_SRC_DEFAULT = 0, CFG_SRC_FILE, CFG_SRC_ENV, CFG_SRC_FLAG };

struct cfg {
    char *listen[CFG_MAX_LISTEN]; /* "ADDR:PORT", validated */
    size_t nlisten;
    char *tls_cert; /* NULL: cleartext only */
    char *tls_key;
    char *data_dir;
    char *config_file; /* NULL when none */
    uint32_t threads;  /* resolved: never 0 after cfg_load */
    uint32_t max_connections;
    uint64_t max_body;
    uint64_t max_header_bytes;
    uint32_t idle_timeout_ms;
    uint32_t handshake_timeout_ms;
    uint32_t shutdown_timeout_ms;
    uint32_t storage_retry_ms;
    uint64_t map_size;
    uint32_t interest_half_life_s;
    uint32_t event_dedup_s;
    uint32_t write_queue_max;
    uint32_t campaigns_per_advertiser;
    bool demo;
    char *model; /* "": the embedded default model */
    bool online_learning; /* learn.h: click and impression events update the served model */
    uint32_t online_window_s;
    uint32_t online_publish_s;
    uint32_t online_pending_max;
    int log_level; /* enum lg_level */
    bool access_log;
    /* issue 6: bidding */
    char *notice_url;
    char *notice_key;
    uint32_t bid_shading_pct;
    uint32_t bid_max_cpm_micros;
    char *fx_rates;
    /* issue 7: AI variants and the token ledger */
    char *gen_endpoints;
    uint32_t gen_workers;
    uint32_t gen_timeout_ms;
    uint32_t gen_retries;
    bool gen_stream;
    uint32_t gen_max_output_tokens;
    char *tokenizer;
    uint32_t token_reservation_ttl_s;
    uint32_t variant_control_pct;

    /* Actions asked for on the command line; not settings. */
    bool want_help;
    bool want_print;

    /* Where each setting's value came from, indexed like the settings table. */
    enum cfg_source source[64];
};

/**
 * Loads the configuration from the four layers.
 * @param argv  the options only (not the program or subcommand name); NULL-terminated.
 * @param envp  the environment, NULL-terminated (usually `environ`).
 * @return 0, or ADS_ECONFIG with @p ret_diag saying which value is wrong and why
 *         (the pointer is "/NAME" of the setting). On failure @p c holds no
 *         allocations and must not be used.
 * On success the caller owns @p c and releases it with cfg_done().
 */
int cfg_load(struct cfg *c, int argc, char *const argv[], char *const envp[], struct ads_diag *ret_diag);

/** Releases what cfg_load allocated. Safe on a zeroed struct. */
void cfg_done(struct cfg *c);

/** Writes the effective configuration in config-file syntax, each line commented with its source. */
void cfg_print(const struct cfg *c, struct buf *out);

/** Writes the option help for `adsmith serve --help`, generated from the settings table. */
void cfg_usage(struct buf *out);

/** Number of settings, and the name and default of setting @p i (for documentation checks). */
size_t cfg_setting_count(void);
const char *cfg_setting_name(size_t i);
const char *cfg_setting_default(size_t i);

/**
 * Parses "ADDR:PORT" ("127.0.0.1:8080", "[::1]:8080", "localhost:8080") into a socket address.
 * ADDR is a numeric IPv4 or IPv6 address, or "localhost" (127.0.0.1); no DNS lookup is made.
 * Returns 0 or ADS_EINVAL.
 */
int cfg_parse_addr(const char *s, struct sockaddr_storage *ret_addr, socklen_t *ret_len);

/** Parses a byte size: digits with an optional K, M, G (or KiB, MiB, GiB) binary suffix. Returns 0 or ADS_EINVAL. */
int cfg_parse_size(const char *s, uint64_t *ret_size);

#endif
