#include "adsmith/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adsmith/bid.h"
#include "adsmith/log.h"

enum cfg_type { CFG_T_STR, CFG_T_LIST, CFG_T_UINT, CFG_T_SIZE, CFG_T_BOOL, CFG_T_LEVEL };

struct cfg_setting {
    const char *name; /* file key; flag and env names derive from it */
    enum cfg_type type;
    size_t off;
    const char *def; /* default, parsed like any other value */
    uint64_t min, max;
    unsigned flags; /* CFG_F_* */
    const char *arg;
    const char *help;
};

#define CFG_F_NO_FILE 1u  /* cannot be set from the config file */
#define CFG_F_REQUIRED 2u /* a string that may not be empty */

#define OFF(f) offsetof(struct cfg, f)
#define KiB 1024ULL
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

static const struct cfg_setting cfg_settings[] = {
    {"listen", CFG_T_LIST, OFF(listen), "127.0.0.1:8080", 0, 0, 0, "ADDR:PORT",
     "address to listen on (HTTP/1.1 and h2c; TLS with ALPN h2 when tls_cert is set); repeatable"},
    {"tls_cert", CFG_T_STR, OFF(tls_cert), "", 0, 0, 0, "FILE", "PEM certificate chain; with tls_key, every listener speaks TLS"},
    {"tls_key", CFG_T_STR, OFF(tls_key), "", 0, 0, 0, "FILE", "PEM private key for tls_cert"},
    {"data_dir", CFG_T_STR, OFF(data_dir), "./adsmith-data", 0, 0, CFG_F_REQUIRED, "DIR",
     "LMDB environment directory (created if missing)"},
    {"config", CFG_T_STR, OFF(config_file), "", 0, 0, CFG_F_NO_FILE, "FILE", "config file of NAME = VALUE lines"},
    {"threads", CFG_T_UINT, OFF(threads), "0", 0, 256, 0, "N", "worker threads, each with its own loop; 0 = one per CPU core"},
    {"max_connections", CFG_T_UINT, OFF(max_connections), "1024", 1, 1000000, 0, "N",
     "open client connections, all threads together; more are closed at accept"},
    {"max_body", CFG_T_SIZE, OFF(max_body), "256KiB", 1, 64 * MiB, 0, "SIZE", "largest request body accepted (413 beyond)"},
    {"max_header_bytes", CFG_T_SIZE, OFF(max_header_bytes), "16KiB", 1 * KiB, 256 * KiB, 0, "SIZE",
     "largest total of request header names and values plus the path (431 beyond)"},
    {"idle_timeout_ms", CFG_T_UINT, OFF(idle_timeout_ms), "10000", 100, 3600000, 0, "MS",
     "close a connection idle (or stalled reading a request) this long"},
    {"handshake_timeout_ms", CFG_T_UINT, OFF(handshake_timeout_ms), "10000", 100, 600000, 0, "MS", "TLS handshake deadline"},
    {"shutdown_timeout_ms", CFG_T_UINT, OFF(shutdown_timeout_ms), "10000", 100, 600000, 0, "MS",
     "on SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway"},
    {"storage_retry_ms", CFG_T_UINT, OFF(storage_retry_ms), "5000", 100, 3600000, 0, "MS",
     "when data_dir cannot be opened (permissions, read-only, full disk), serve unready and retry this often"},
    {"map_size", CFG_T_SIZE, OFF(map_size), "16GiB", 1 * MiB, 1024 * GiB, 0, "SIZE",
     "LMDB map size: the most the database can hold (sparse; costs no disk until used)"},
    {"interest_half_life_s", CFG_T_UINT, OFF(interest_half_life_s), "604800", 60, 31536000, 0, "SECONDS",
     "profile interest weights halve in this time without new events"},
    {"event_dedup_s", CFG_T_UINT, OFF(event_dedup_s), "3600", 0, 604800, 0, "SECONDS",
     "an event id is applied once within this window (0: no deduplication); each id kept costs ~100 bytes of map"},
    {"write_queue_max", CFG_T_UINT, OFF(write_queue_max), "256", 1, 65536, 0, "N",
     "profile writes waiting for the writer thread; more are answered 503 overloaded"},
    {"campaigns_per_advertiser", CFG_T_UINT, OFF(campaigns_per_advertiser), "10000", 1, 1000000, 0, "N",
     "campaigns one advertiser may hold that are not archived; more are refused (409 quota_exceeded)"},
    {"demo", CFG_T_BOOL, OFF(demo), "false", 0, 0, 0, "BOOL",
     "on a data directory without keys, create an admin key and print it; without campaigns, store the demo campaign"},
    {"model", CFG_T_STR, OFF(model), "", 0, 0, 0, "FILE",
     "ranking model file (adsmith train, schema \"adsmith\"); empty: the default model built into the binary. "
     "SIGHUP and POST /v1/admin/model:reload load it again"},
    {"online_learning", CFG_T_BOOL, OFF(online_learning), "false", 0, 0, 0, "BOOL",
     "learn online: impression events with features and their clicks update the served model's weights"},
    {"online_window_s", CFG_T_UINT, OFF(online_window_s), "600", 1, 86400, 0, "SECONDS",
     "online learning: an impression without a click after this long counts as a negative"},
    {"online_publish_s", CFG_T_UINT, OFF(online_publish_s), "10", 1, 86400, 0, "SECONDS",
     "online learning: publish a snapshot of the learned weights this often (when something was learned)"},
    {"online_pending_max", CFG_T_UINT, OFF(online_pending_max), "1000000", 1, 10000000, 0, "N",
     "online learning: impressions waiting for a click; beyond it the oldest counts as a negative early"},
    {"log_level", CFG_T_LEVEL, OFF(log_level), "info", 0, 0, 0, "LEVEL", "debug, info, warn or error"},
    {"access_log", CFG_T_BOOL, OFF(access_log), "false", 0, 0, 0, "BOOL", "log one record per request"},
    /* issue 6: bidding */
    {"notice_url", CFG_T_STR, OFF(notice_url), "http://127.0.0.1:8080", 0, 0, 0, "URL",
     "scheme and host the win/bill/loss notice URLs of bids start with (https in production)"},
    {"notice_key", CFG_T_STR, OFF(notice_key), "", 0, 0, 0, "HEX",
     "64 hex digits: the HMAC-SHA256 key that signs notice URLs; empty: a key generated once and kept in LMDB"},
    {"bid_shading_pct", CFG_T_UINT, OFF(bid_shading_pct), "85", 1, 100, 0, "PERCENT",
     "first-price (at=1) bids are this percentage of the bid's value"},
    {"bid_max_cpm_micros", CFG_T_UINT, OFF(bid_max_cpm_micros), "50000000", 0, 4000000000u, 0, "MICROS",
     "the most any bid pays per 1000 impressions, in USD micros; 0: no cap beyond each campaign's"},
    {"fx_rates", CFG_T_STR, OFF(fx_rates), "EUR=1.08,GBP=1.27,JPY=0.0067", 0, 0, 0, "LIST",
     "USD per unit of each currency bids, floors and spend are converted with (USD=1 always)"},
    /* issue 7: AI variants and the token ledger */
    {"gen_endpoints", CFG_T_STR, OFF(gen_endpoints), "", 0, 0, 0, "LIST",
     "OpenAI-compatible chat-completions backends campaigns may name besides \"builtin\": "
     "NAME=BASE_URL|MODEL|KEY_ENV, comma-separated (KEY_ENV: the environment variable holding the API key; may be empty)"},
    {"gen_workers", CFG_T_UINT, OFF(gen_workers), "2", 1, 64, 0, "N",
     "threads generating variants in the background (never on the request threads)"},
    {"gen_timeout_ms", CFG_T_UINT, OFF(gen_timeout_ms), "30000", 100, 600000, 0, "MS",
     "deadline of one call to a chat-completions backend"},
    {"gen_retries", CFG_T_UINT, OFF(gen_retries), "2", 0, 10, 0, "N",
     "retries of a failed backend call (429, 5xx, timeout), with exponential backoff"},
    {"gen_stream", CFG_T_BOOL, OFF(gen_stream), "true", 0, 0, 0, "BOOL",
     "stream chat completions (asking stream_options.include_usage), so a broken call still meters what it spent"},
    {"gen_max_output_tokens", CFG_T_UINT, OFF(gen_max_output_tokens), "1024", 16, 32768, 0, "N",
     "most completion tokens one generation may use; reserved in full before the call"},
    {"tokenizer", CFG_T_STR, OFF(tokenizer), "", 0, 0, 0, "FILE",
     "tiktoken rank file (e.g. cl100k_base.tiktoken) for counting prompt tokens; empty: a conservative estimate "
     "(one token per byte)"},
    {"token_reservation_ttl_s", CFG_T_UINT, OFF(token_reservation_ttl_s), "900", 10, 86400, 0, "SECONDS",
     "a token reservation not settled in this time expires and its tokens return to the package"},
    {"variant_control_pct", CFG_T_UINT, OFF(variant_control_pct), "10", 0, 100, 0, "PERCENT",
     "share of native impressions that serve the base creative as the control arm, even when variants exist"},
};

#define CFG_NSETTINGS (sizeof(cfg_settings) / sizeof(cfg_settings[0]))

_Static_assert(CFG_NSETTINGS <= sizeof(((struct cfg *)0)->source) / sizeof(enum cfg_source), "cfg.source too small");

static const char *const cfg_source_names[] = {"default", "file", "env", "flag"};

size_t cfg_setting_count(void)
{
    return CFG_NSETTINGS;
}

const char *cfg_setting_name(size_t i)
{
    return i < CFG_NSETTINGS ? cfg_settings[i].name : NULL;
}

const char *cfg_setting_default(size_t i)
{
    return i < CFG_NSETTINGS ? cfg_settings[i].def : NULL;
}

/* State of one load: which settings the current layer has already touched. */
struct cfg_loader {
    struct cfg *c;
    enum cfg_source layer;
    bool touched[CFG_NSETTINGS];
    bool file_failed; /* the config file had an error: ignore its later lines */
    struct ads_diag *diag;
};

static char **cfg_str_slot(struct cfg *c, const struct cfg_setting *s)
{
    return (char **)((char *)c + s->off);
}

static void cfg_list_clear(struct cfg *c)
{
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    c->nlisten = 0;
}

/* Reads the leading decimal digits of @p s: at least one, no sign, no overflow. */
static int cfg_parse_digits(const char *s, uint64_t *ret, const char **ret_end)
{
    char *end;
    unsigned long long v;

    if (!isdigit((unsigned char)s[0]))
        return ADS_EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return ADS_EINVAL;
    *ret = v;
    *ret_end = end;
    return 0;
}

int cfg_parse_size(const char *s, uint64_t *ret_size)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},          {"K", KiB},      {"KiB", KiB},       {"M", MiB},       {"MiB", MiB},
                 {"G", GiB},       {"GiB", GiB},    {"T", 1024 * GiB}, {"TiB", 1024 * GiB}};
    const char *end;
    uint64_t v;

    if (cfg_parse_digits(s, &v, &end) != 0)
        return ADS_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return ADS_EINVAL;
            *ret_size = v * units[i].mult;
            return 0;
        }
    }
    return ADS_EINVAL;
}

static int cfg_parse_uint(const char *s, uint64_t *ret)
{
    const char *end;
    uint64_t v;

    if (cfg_parse_digits(s, &v, &end) != 0 || *end != '\0')
        return ADS_EINVAL;
    *ret = v;
    return 0;
}

static int cfg_parse_bool(const char *s, bool *ret)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return ADS_EINVAL;
}

int cfg_parse_addr(const char *s, struct sockaddr_storage *ret_addr, socklen_t *ret_len)
{
    char host[256];
    const char *port, *colon;
    struct addrinfo hints, *res = NULL;
    uint64_t portnum;
    size_t hostlen;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return ADS_EINVAL;
        hostlen = (size_t)(close - s - 1);
        memcpy(host, s + 1, hostlen < sizeof(host) ? hostlen : 0);
        port = close + 2;
    } else {
        if ((colon = strrchr(s, ':')) == NULL || strchr(s, ':') != colon)
            return ADS_EINVAL;
        hostlen = (size_t)(colon - s);
        memcpy(host, s, hostlen < sizeof(host) ? hostlen : 0);
        port = colon + 1;
    }
    if (hostlen == 0 || hostlen >= sizeof(host))
        return ADS_EINVAL;
    host[hostlen] = '\0';
    if (cfg_parse_uint(port, &portnum) != 0 || portnum > 65535)
        return ADS_EINVAL;

    /* Numeric addresses only (and "localhost"): resolving names at start-up
     * would make the listen set depend on DNS. */
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
        return ADS_EINVAL;
    memcpy(ret_addr, res->ai_addr, res->ai_addrlen);
    *ret_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int cfg_set(struct cfg_loader *L, const struct cfg_setting *s, const char *value)
{
    struct cfg *c = L->c;
    size_t idx = (size_t)(s - cfg_settings);
    uint64_t n;
    bool first = !L->touched[idx];
    char ptr[64];

    snprintf(ptr, sizeof(ptr), "/%s", s->name);
    if (strlen(value) > CFG_MAX_VALUE)
        return ads_diag_set(L->diag, ADS_ECONFIG, ptr, "%s: value is longer than %d bytes", s->name, CFG_MAX_VALUE);
    L->touched[idx] = true;
    c->source[idx] = L->layer;

    switch (s->type) {
    case CFG_T_STR: {
        char **slot = cfg_str_slot(c, s), *dup = NULL;
        if (value[0] == '\0' && (s->flags & CFG_F_REQUIRED))
            return ads_diag_set(L->diag, ADS_ECONFIG, ptr, "%s: must not be empty", s->name);
        if (value[0] != '\0' && (dup = strdup(value)) == NULL)
            return ads_diag_set(L->diag, ADS_ENOMEM, ptr, "out of memory");
        free(*slot);
        *slot = dup;
        return 0;
    }
    case CFG_T_LIST: {
        /* A layer replaces the list of the layers below it; within a layer, values append. */
        const char *p = value;
        if (first)
            cfg_list_clear(c);
        while (*p != '\0') {
            size_t len = strcspn(p, ",");
            char item[300];
            struct sockaddr_storage ss;
            socklen_t sl;
            while (len > 0 && isspace((unsigned char)*p)) {
                p++;
                len--;
            }
            size_t end = len;
            while (end > 0 && isspace((unsigned char)p[end - 1]))
                end--;
            if (end == 0 || end >= sizeof(item))
                return ads_diag_set(L->diag, ADS_ECONFIG, ptr, "%s: empty or overlong address in '%s'", s->name, value);
            memcpy(item, p, end);
            item[end] = '\0';
            if (cfg_parse_addr(item, &ss, &sl) != 0)
                return ads_diag_set(L->diag, ADS_ECONFIG, ptr,
                                    "%s: '%s' is not ADDR:PORT with a numeric address or localhost "
                                    "(e.g. 127.0.0.1:8080 or [::1]:8080, port 0-65535)",
                                    s->name, item);
            if (c->nlisten == CFG_MAX_LISTEN)
                return ads_diag_set(L->diag, ADS_ECONFIG, ptr, "%s: at most %d addresses", s->name, CFG_MAX_LISTEN);
            if ((c->listen[c->nlisten] = strdup(item)) == NULL)
                return ads_diag_set(L->diag, ADS_ENOMEM, ptr, "out of memory");
            c->nlisten++;
            p += len;
            if (*p == ',')
                p++;
        }
        return 0;
    }
    case CFG_T_UINT:
    case CFG_T_SIZE: {
        int rc = s->type == CFG_T_SIZE ? cfg_parse_size(value, &n) : cfg_parse_uint(value, &n);
        if (rc != 0)
            return ads_diag_set(L->diag, ADS_ECONFIG, ptr, "%s: '%s' is not %s", s->name, value,
                                s->type == CFG_T_SIZE ? "a size (e.g. 262144, 256KiB, 1GiB)" : "a whole number");
        if (n < s->min || n > s->max)
            return ads_diag_set(L->diag, ADS_ECONFIG, ptr, "%s: %s is out of range [%llu, %llu]", s->name, value,
                                (unsigned long long)s->min, (unsigned long long)s->max);
        if (s->type == CFG_T_SIZE)
            *(uint64_t *)((char *)c + s->off) = n;
        else
            *(uint32_t *)((char *)c + s->off) = (uint32_t)n;
        return 0;
    }
    case CFG_T_BOOL:
        if (cfg_parse_bool(value, (bool *)((char *)c + s->off)) != 0)
            return ads_diag_set(L->diag, ADS_ECONFIG, ptr, "%s: '%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
                                s->name, value);
        return 0;
    case CFG_T_LEVEL: {
        enum lg_level lv;
        if (lg_level_parse(value, &lv) != 0)
            return ads_diag_set(L->diag, ADS_ECONFIG, ptr, "%s: '%s' is not one of debug, info, warn, error", s->name,
                                value);
        *(int *)((char *)c + s->off) = (int)lv;
        return 0;
    }
    }
    return ads_diag_set(L->diag, ADS_EINTERNAL, ptr, "unhandled setting type");
}

/* How a setting's name is spelled on each layer: "max_body" in the file,
 * "max-body" as a flag, "MAX_BODY" after ADSMITH_ in the environment. Matching
 * is exact, so a layer never accepts a spelling another layer would not. */
enum cfg_spelling { CFG_SPELL_FILE, CFG_SPELL_FLAG, CFG_SPELL_ENV };

static char cfg_spell(char c, enum cfg_spelling how)
{
    if (how == CFG_SPELL_FLAG && c == '_')
        return '-';
    if (how == CFG_SPELL_ENV)
        return (char)toupper((unsigned char)c);
    return c;
}

static const struct cfg_setting *cfg_find(const char *name, size_t len, enum cfg_spelling how)
{
    for (size_t i = 0; i < CFG_NSETTINGS; i++) {
        const char *n = cfg_settings[i].name;
        size_t j;
        if (strlen(n) != len)
            continue;
        for (j = 0; j < len && name[j] == cfg_spell(n[j], how); j++)
            ;
        if (j == len)
            return &cfg_settings[i];
    }
    return NULL;
}

static int cfg_ini_handler(void *user, const char *section, const char *name, const char *value)
{
    struct cfg_loader *L = user;
    const struct cfg_setting *s;

    /* inih goes on after an error and reports the first error's line: keep
     * that error's message, and ignore the lines after it. */
    if (L->file_failed)
        return 1;
    L->file_failed = true;
    if (section[0] != '\0') {
        ads_diag_set(L->diag, ADS_ECONFIG, "", "sections are not used; remove [%s]", section);
        return 0;
    }
    if ((s = cfg_find(name, strlen(name), CFG_SPELL_FILE)) == NULL || (s->flags & CFG_F_NO_FILE)) {
        ads_diag_set(L->diag, ADS_ECONFIG, "", "unknown setting '%s' (see adsmith serve --help)", name);
        return 0;
    }
    if (cfg_set(L, s, value) != 0)
        return 0;
    L->file_failed = false;
    return 1;
}

/* libinih reads lines into INI_MAX_LINE (200) bytes and treats the rest of a
 * longer line as a line of its own; refuse such lines with a clear message. */
#define CFG_MAX_LINE (INI_MAX_LINE - 2)
#define CFG_MAX_FILE (1024 * 1024)

static int cfg_load_file(struct cfg_loader *L, const char *path)
{
    char msg[sizeof(L->diag->message)], ptr[sizeof(L->diag->pointer)];
    char *text = NULL;
    size_t len = 0, line = 1, col = 0;
    FILE *f;
    int rc = 0, at;

    L->layer = CFG_SRC_FILE;
    if ((f = fopen(path, "r")) == NULL)
        return ads_diag_set(L->diag, ADS_ECONFIG, "/config", "cannot read config file %s: %s", path, strerror(errno));
    if ((text = malloc(CFG_MAX_FILE + 1)) == NULL) {
        fclose(f);
        return ads_diag_set(L->diag, ADS_ENOMEM, "/config", "out of memory");
    }
    len = fread(text, 1, CFG_MAX_FILE + 1, f);
    if (ferror(f))
        rc = ads_diag_set(L->diag, ADS_ECONFIG, "/config", "cannot read config file %s: %s", path, strerror(errno));
    else if (len > CFG_MAX_FILE)
        rc = ads_diag_set(L->diag, ADS_ECONFIG, "/config", "config file %s is larger than %d bytes", path, CFG_MAX_FILE);
    fclose(f);
    for (size_t i = 0; rc == 0 && i < len; i++) {
        if (text[i] == '\0')
            rc = ads_diag_set(L->diag, ADS_ECONFIG, "/config", "%s:%zu: a NUL byte: not a text file", path, line);
        else if (text[i] == '\n')
            line++, col = 0;
        else if (++col > CFG_MAX_LINE)
            rc = ads_diag_set(L->diag, ADS_ECONFIG, "/config", "%s:%zu: longer than %d bytes", path, line, CFG_MAX_LINE);
    }
    if (rc == 0) {
        text[len] = '\0';
        at = ini_parse_string(text, cfg_ini_handler, L);
        if (at < 0) {
            rc = ads_diag_set(L->diag, ADS_ENOMEM, "/config", "out of memory");
        } else if (at > 0) {
            /* inih reports syntax errors (no '=') without calling the handler. */
            if (!L->file_failed)
                snprintf(L->diag->message, sizeof(L->diag->message), "expected NAME = VALUE");
            snprintf(msg, sizeof(msg), "%s", L->diag->message);
            snprintf(ptr, sizeof(ptr), "%s", L->diag->pointer);
            rc = ads_diag_set(L->diag, ADS_ECONFIG, ptr, "%s:%d: %s", path, at, msg);
        }
    }
    free(text);
    return rc;
}

static int cfg_load_env(struct cfg_loader *L, char *const envp[])
{
    static const char prefix[] = "ADSMITH_";
    int rc;

    L->layer = CFG_SRC_ENV;
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        const char *e = envp[i], *eq;
        const struct cfg_setting *s;
        if (strncmp(e, prefix, sizeof(prefix) - 1) != 0 || (eq = strchr(e, '=')) == NULL)
            continue;
        e += sizeof(prefix) - 1;
        if ((s = cfg_find(e, (size_t)(eq - e), CFG_SPELL_ENV)) == NULL)
            continue; /* unknown ADSMITH_* variables may belong to other tools; ignore them */
        if ((rc = cfg_set(L, s, eq + 1)) != 0)
            return rc;
    }
    return 0;
}

static int cfg_load_flags(struct cfg_loader *L, int argc, char *const argv[])
{
    int rc;

    L->layer = CFG_SRC_FLAG;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *name, *eq, *value;
        const struct cfg_setting *s;
        size_t len;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            L->c->want_help = true;
            continue;
        }
        if (strcmp(a, "--print-config") == 0) {
            L->c->want_print = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return ads_diag_set(L->diag, ADS_ECONFIG, "", "unexpected argument '%s' (options start with --)", a);
        name = a + 2;
        eq = strchr(name, '=');
        len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if ((s = cfg_find(name, len, CFG_SPELL_FLAG)) == NULL)
            return ads_diag_set(L->diag, ADS_ECONFIG, "", "unknown option '%s' (see adsmith serve --help)", a);
        if (eq != NULL) {
            value = eq + 1;
        } else if (s->type == CFG_T_BOOL) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return ads_diag_set(L->diag, ADS_ECONFIG, "", "option '%s' needs a value (%s)", a, s->arg);
        }
        if ((rc = cfg_set(L, s, value)) != 0)
            return rc;
    }
    return 0;
}

static const char *cfg_find_config_path(int argc, char *const argv[], char *const envp[])
{
    const char *path = NULL;

    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        if (strncmp(envp[i], "ADSMITH_CONFIG=", 15) == 0)
            path = envp[i] + 15;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
    }
    return path != NULL && path[0] != '\0' ? path : NULL;
}

/*
 * The bid settings are checked here, not where they are used: a notice key
 * or a currency table that could not be read would otherwise make every bid
 * request a 204 and every notice a 403, with nothing in the log to say why.
 */
static int cfg_check_bid(const struct cfg *c, struct ads_diag *diag)
{
    struct bid_fx fx;
    struct ads_diag fd;
    const char *u = c->notice_url;

    if (c->notice_key != NULL) {
        size_t n = strlen(c->notice_key);
        if (n != 2 * BID_KEY_BYTES || strspn(c->notice_key, "0123456789abcdefABCDEF") != n)
            return ads_diag_set(diag, ADS_ECONFIG, "/notice_key",
                                "notice_key: must be %d hex digits (e.g. from `openssl rand -hex 32`), "
                                "or empty for a key kept in the data directory; got %zu characters",
                                2 * BID_KEY_BYTES, n);
    }
    if (bid_fx_parse(c->fx_rates, &fx, &fd) != 0)
        return ads_diag_set(diag, ADS_ECONFIG, "/fx_rates", "fx_rates: %s (write CODE=USD_PER_UNIT,..., e.g. "
                            "EUR=1.08,GBP=1.27)", fd.message);
    if (u != NULL && ((strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0) ||
                      u[strlen(u) - 1] == '/' || strpbrk(u, " \t\"<>?#") != NULL))
        return ads_diag_set(diag, ADS_ECONFIG, "/notice_url",
                            "notice_url: must be a scheme and host (and optional path) without a trailing '/', "
                            "query or fragment, e.g. https://bid.example.com");
    return 0;
}

int cfg_load(struct cfg *c, int argc, char *const argv[], char *const envp[], struct ads_diag *ret_diag)
{
    struct ads_diag scratch;
    struct cfg_loader L;
    const char *path;
    int rc;

    memset(c, 0, sizeof(*c));
    if (ret_diag == NULL)
        ret_diag = &scratch;
    memset(ret_diag, 0, sizeof(*ret_diag));
    memset(&L, 0, sizeof(L));
    L.c = c;
    L.diag = ret_diag;

    L.layer = CFG_SRC_DEFAULT;
    for (size_t i = 0; i < CFG_NSETTINGS; i++) {
        if ((rc = cfg_set(&L, &cfg_settings[i], cfg_settings[i].def)) != 0)
            goto fail;
    }
    if ((path = cfg_find_config_path(argc, argv, envp)) != NULL) {
        memset(L.touched, 0, sizeof(L.touched));
        if ((rc = cfg_load_file(&L, path)) != 0)
            goto fail;
    }
    memset(L.touched, 0, sizeof(L.touched));
    if ((rc = cfg_load_env(&L, envp)) != 0)
        goto fail;
    memset(L.touched, 0, sizeof(L.touched));
    if ((rc = cfg_load_flags(&L, argc, argv)) != 0)
        goto fail;

    if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
        rc = ads_diag_set(ret_diag, ADS_ECONFIG, c->tls_cert == NULL ? "/tls_cert" : "/tls_key",
                          "tls_cert and tls_key must be set together");
        goto fail;
    }
    if (c->nlisten == 0) {
        rc = ads_diag_set(ret_diag, ADS_ECONFIG, "/listen", "listen: at least one address is needed");
        goto fail;
    }
    if ((rc = cfg_check_bid(c, ret_diag)) != 0)
        goto fail;
    if (c->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n < 1 ? 1 : n > 256 ? 256 : (uint32_t)n;
    }
    return 0;

fail:
    cfg_done(c);
    return rc;
}

void cfg_done(struct cfg *c)
{
    cfg_list_clear(c);
    for (size_t i = 0; i < CFG_NSETTINGS; i++) {
        if (cfg_settings[i].type == CFG_T_STR) {
            char **slot = cfg_str_slot(c, &cfg_settings[i]);
            free(*slot);
            *slot = NULL;
        }
    }
}

static void cfg_print_value(const struct cfg *c, const struct cfg_setting *s, struct buf *out)
{
    const char *p = (const char *)c + s->off;

    switch (s->type) {
    case CFG_T_STR:
        buf_puts(out, *(char *const *)p != NULL ? *(char *const *)p : "");
        break;
    case CFG_T_LIST: /* printed by cfg_print(), one line per item */
        break;
    case CFG_T_UINT:
        buf_printf(out, "%u", *(const uint32_t *)p);
        break;
    case CFG_T_SIZE:
        buf_printf(out, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case CFG_T_BOOL:
        buf_puts(out, *(const bool *)p ? "true" : "false");
        break;
    case CFG_T_LEVEL:
        buf_puts(out, lg_level_name((enum lg_level) * (const int *)p));
        break;
    }
}

void cfg_print(const struct cfg *c, struct buf *out)
{
    buf_puts(out, "# adsmith effective configuration (precedence: flag > env > file > default)\n");
    for (size_t i = 0; i < CFG_NSETTINGS; i++) {
        const struct cfg_setting *s = &cfg_settings[i];
        /* One line per list item (repeating a setting appends), so lines stay
         * short enough for the file parser. inih takes " ;" as the start of an
         * inline comment (not " #"). */
        for (size_t k = 0; k < (s->type == CFG_T_LIST ? c->nlisten : 1); k++) {
            buf_printf(out, "%s%s = ", (s->flags & CFG_F_NO_FILE) ? "# " : "", s->name);
            if (s->type == CFG_T_LIST)
                buf_puts(out, c->listen[k]);
            else
                cfg_print_value(c, s, out);
            buf_printf(out, "    ; %s\n", cfg_source_names[c->source[i]]);
        }
    }
}

void cfg_usage(struct buf *out)
{
    for (size_t i = 0; i < CFG_NSETTINGS; i++) {
        const struct cfg_setting *s = &cfg_settings[i];
        char flag[64], env[64];
        size_t j;
        for (j = 0; s->name[j] != '\0' && j < sizeof(flag) - 1; j++) {
            flag[j] = s->name[j] == '_' ? '-' : s->name[j];
            env[j] = (char)toupper((unsigned char)s->name[j]);
        }
        flag[j] = env[j] = '\0';
        buf_printf(out, "  --%s %s\n      %s\n      env ADSMITH_%s, default '%s'\n", flag, s->arg, s->help, env, s->def);
    }
    buf_puts(out, "  --print-config\n      print the effective configuration and exit\n"
                  "  --help\n      print this help and exit\n");
}
