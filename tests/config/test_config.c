#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adsmith/config.h"
#include "adsmith/log.h"

static char *const no_env[] = {NULL};

static int load(struct cfg *c, char *const argv[], char *const envp[], struct ads_diag *d)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    return cfg_load(c, argc, argv, envp, d);
}

/* Writes @p text to a new temporary file; returns its path (static storage). */
static const char *conf_file(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/adsmith-cfg-XXXXXX");
    cr_assert_geq(fd = mkstemp(path), 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(config, defaults)
{
    struct cfg c;
    char *argv[] = {NULL};

    cr_assert_eq(load(&c, argv, no_env, NULL), 0);
    cr_assert_eq(c.nlisten, 1);
    cr_assert_str_eq(c.listen[0], "127.0.0.1:8080");
    cr_assert_str_eq(c.data_dir, "./adsmith-data");
    cr_assert_null(c.tls_cert);
    cr_assert_eq(c.max_body, 256 * 1024);
    cr_assert_eq(c.map_size, 16ull * 1024 * 1024 * 1024);
    cr_assert_eq(c.threads, (uint32_t)sysconf(_SC_NPROCESSORS_ONLN), "threads=0 resolves to the core count");
    cr_assert_eq(c.log_level, LG_INFO);
    cr_assert(!c.access_log);
    cfg_done(&c);
}

Test(config, flag_beats_env_beats_file_beats_default)
{
    struct cfg c;
    const char *path = conf_file("# comment\n; another\nthreads = 3    ; inline\nmax_body = 1KiB\nmap_size = 64MiB\nlog_level = debug\n");
    char cfgarg[80];
    char *argv[] = {"--config", cfgarg, "--threads", "5", NULL};
    char *envp[] = {"ADSMITH_THREADS=4", "ADSMITH_MAX_BODY=2KiB", "HOME=/root", NULL};

    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&c, argv, envp, NULL), 0);
    cr_assert_eq(c.threads, 5);          /* flag */
    cr_assert_eq(c.max_body, 2048);      /* env over file */
    cr_assert_eq(c.map_size, 64u << 20); /* file over default */
    cr_assert_eq(c.log_level, LG_DEBUG);
    cr_assert_eq(c.idle_timeout_ms, 10000); /* default */
    for (size_t i = 0; i < cfg_setting_count(); i++) {
        const char *n = cfg_setting_name(i);
        enum cfg_source want = strcmp(n, "threads") == 0 || strcmp(n, "config") == 0 ? CFG_SRC_FLAG
                               : strcmp(n, "max_body") == 0                            ? CFG_SRC_ENV
                               : strcmp(n, "map_size") == 0 || strcmp(n, "log_level") == 0 ? CFG_SRC_FILE
                                                                                         : CFG_SRC_DEFAULT;
        cr_assert_eq(c.source[i], want, "source of %s is %d, expected %d", n, c.source[i], want);
    }
    cfg_done(&c);
    unlink(path);
}

Test(config, config_path_from_env_and_equals_syntax)
{
    struct cfg c;
    const char *path = conf_file("access_log = yes\n");
    char env[96];
    char *envp[] = {env, NULL};
    char *argv[] = {"--max-body=512", "--access-log=false", NULL};

    snprintf(env, sizeof(env), "ADSMITH_CONFIG=%s", path);
    cr_assert_eq(load(&c, (char *[]){NULL}, envp, NULL), 0);
    cr_assert(c.access_log, "file read through ADSMITH_CONFIG");
    cr_assert_str_eq(c.config_file, path);
    cfg_done(&c);
    cr_assert_eq(load(&c, argv, envp, NULL), 0);
    cr_assert_eq(c.max_body, 512);
    cr_assert(!c.access_log);
    cfg_done(&c);
    unlink(path);
}

Test(config, a_list_layer_replaces_lower_layers_and_appends_within)
{
    struct cfg c;
    const char *path = conf_file("listen = 127.0.0.1:1\nlisten = 127.0.0.1:2\n");
    char cfgarg[80];
    char *envp[] = {"ADSMITH_LISTEN=127.0.0.1:3, [::1]:4", NULL};
    char *argv[] = {"--config", cfgarg, NULL};
    char *argv2[] = {"--config", cfgarg, "--listen", "127.0.0.1:5", "--listen=localhost:6", NULL};

    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&c, argv, no_env, NULL), 0);
    cr_assert_eq(c.nlisten, 2);
    cr_assert_str_eq(c.listen[1], "127.0.0.1:2");
    cfg_done(&c);
    cr_assert_eq(load(&c, argv, envp, NULL), 0);
    cr_assert_eq(c.nlisten, 2);
    cr_assert_str_eq(c.listen[0], "127.0.0.1:3");
    cr_assert_str_eq(c.listen[1], "[::1]:4");
    cfg_done(&c);
    cr_assert_eq(load(&c, argv2, envp, NULL), 0);
    cr_assert_eq(c.nlisten, 2);
    cr_assert_str_eq(c.listen[0], "127.0.0.1:5");
    cr_assert_str_eq(c.listen[1], "localhost:6");
    cfg_done(&c);
    unlink(path);
}

struct bad_case {
    char *argv[4];
    const char *pointer;
    const char *needle;
};

Test(config, bad_values_name_the_setting_and_the_fix)
{
    static const struct bad_case cases[] = {
        {{"--max-body", "lots", NULL}, "/max_body", "is not a size"},
        {{"--max-body", "0", NULL}, "/max_body", "out of range"},
        {{"--max-body", "99999999999999999999999", NULL}, "/max_body", "is not a size"},
        {{"--threads", "-1", NULL}, "/threads", "whole number"},
        {{"--threads", "257", NULL}, "/threads", "out of range"},
        {{"--listen", "localhost", NULL}, "/listen", "ADDR:PORT"},
        {{"--listen", "127.0.0.1:70000", NULL}, "/listen", "ADDR:PORT"},
        {{"--listen", "[::1:80", NULL}, "/listen", "ADDR:PORT"},
        {{"--listen", "example.com:80", NULL}, "/listen", "ADDR:PORT"},
        {{"--log-level", "loud", NULL}, "/log_level", "debug, info, warn, error"},
        {{"--access-log=maybe", NULL}, "/access_log", "boolean"},
        {{"--tls-cert", "/x.pem", NULL}, "/tls_key", "set together"},
        {{"--data-dir", "", NULL}, "/data_dir", "must not be empty"},
        {{"--data-dir=", NULL}, "/data_dir", "must not be empty"},
        {{"--no-such-flag", NULL}, "", "unknown option"},
        {{"--threads", NULL}, "", "needs a value"},
        {{"positional", NULL}, "", "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        struct ads_diag d;
        cr_assert_eq(load(&c, (char *const *)cases[i].argv, no_env, &d), ADS_ECONFIG, "case %zu accepted", i);
        cr_assert_str_eq(d.pointer, cases[i].pointer, "case %zu: pointer %s", i, d.pointer);
        cr_assert_not_null(strstr(d.message, cases[i].needle), "case %zu: message '%s'", i, d.message);
    }
}

Test(config, bad_env_value_is_an_error_and_unknown_adsmith_env_is_ignored)
{
    struct cfg c;
    struct ads_diag d;
    char *envp[] = {"ADSMITH_MAP_SIZE=1k", NULL};
    char *envp2[] = {"ADSMITH_SOMETHING_ELSE=1", NULL};
    char *envp3[] = {"ADSMITH_DATA_DIR=", NULL};
    /* Names are exact: lower-case spellings are other variables. */
    char *envp4[] = {"ADSMITH_config=/nonexistent.conf", "adsmith_threads=3", "ADSMITH_Threads=3", NULL};

    cr_assert_eq(load(&c, (char *[]){NULL}, envp, &d), ADS_ECONFIG);
    cr_assert_str_eq(d.pointer, "/map_size");
    cr_assert_eq(load(&c, (char *[]){NULL}, envp2, &d), 0);
    cfg_done(&c);
    cr_assert_eq(load(&c, (char *[]){NULL}, envp3, &d), ADS_ECONFIG, "an empty data_dir would crash the daemon");
    cr_assert_str_eq(d.pointer, "/data_dir");
    cr_assert_eq(load(&c, (char *[]){NULL}, envp4, &d), 0, "%s", d.message);
    cr_assert_null(c.config_file);
    cr_assert_eq(c.threads, (uint32_t)sysconf(_SC_NPROCESSORS_ONLN));
    cfg_done(&c);
}

Test(config, file_errors_carry_path_and_line)
{
    struct cfg c;
    struct ads_diag d;
    const char *path = conf_file("threads = 2\n\nlisten_on = 1.2.3.4:5\n");
    char cfgarg[80], expect[120];
    char *argv[] = {"--config", cfgarg, NULL};

    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&c, argv, no_env, &d), ADS_ECONFIG);
    snprintf(expect, sizeof(expect), "%s:3: unknown setting 'listen_on'", path);
    cr_assert_not_null(strstr(d.message, expect), "message: %s", d.message);
    unlink(path);

    /* Only the first error is reported, with its own line. */
    path = conf_file("bogus = 1\nthreads = x\n");
    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&c, argv, no_env, &d), ADS_ECONFIG);
    snprintf(expect, sizeof(expect), "%s:1: unknown setting 'bogus' (see adsmith serve --help)", path);
    cr_assert_str_eq(d.message, expect);
    unlink(path);

    path = conf_file("threads = 1\nthreads = x\nbogus = 1\n");
    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&c, argv, no_env, &d), ADS_ECONFIG);
    cr_assert_not_null(strstr(d.message, ":2: threads: 'x' is not a whole number"), "message: %s", d.message);
    cr_assert_str_eq(d.pointer, "/threads");
    unlink(path);

    char longline[400];
    memset(longline, 'a', sizeof(longline));
    memcpy(longline, "threads = 2\ndata_dir = /", 24);
    longline[sizeof(longline) - 2] = '\n';
    longline[sizeof(longline) - 1] = '\0';
    path = conf_file(longline);
    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&c, argv, no_env, &d), ADS_ECONFIG);
    cr_assert_not_null(strstr(d.message, ":2: longer than 198 bytes"), "message: %s", d.message);
    unlink(path);

    path = conf_file("threads 2\n");
    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&c, argv, no_env, &d), ADS_ECONFIG);
    cr_assert_not_null(strstr(d.message, ":1: expected NAME = VALUE"), "message: %s", d.message);
    unlink(path);

    path = conf_file("[server]\nthreads = 2\n");
    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&c, argv, no_env, &d), ADS_ECONFIG);
    cr_assert_not_null(strstr(d.message, "sections are not used"), "message: %s", d.message);
    unlink(path);

    path = conf_file("config = /etc/other\n");
    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&c, argv, no_env, &d), ADS_ECONFIG, "a config file cannot name another");
    unlink(path);

    char *missing[] = {"--config", "/nonexistent/adsmith.conf", NULL};
    cr_assert_eq(load(&c, missing, no_env, &d), ADS_ECONFIG);
    cr_assert_not_null(strstr(d.message, "cannot read config file /nonexistent/adsmith.conf"), "%s", d.message);
}

/* Drops the "    ; source" comment of every line, keeping the settings. */
static void strip_sources(char *text)
{
    char *in = text, *out = text;
    while (*in != '\0') {
        char *eol = strchr(in, '\n'), *semi;
        size_t n = eol != NULL ? (size_t)(eol - in) : strlen(in);
        semi = memmem(in, n, "    ; ", 6);
        if (semi != NULL)
            n = (size_t)(semi - in);
        memmove(out, in, n);
        out += n;
        *out++ = '\n';
        in += (eol != NULL ? (size_t)(eol - in) + 1 : strlen(in));
    }
    *out = '\0';
}

Test(config, print_config_round_trips_through_a_file)
{
    static char mem[65536], mem2[65536];
    struct cfg a, b;
    struct buf out, out2;
    char *argv[40] = {"--max-body", "3KiB", "--log-level", "warn", "--access-log", "--config", NULL};
    char addrs[CFG_MAX_LISTEN][48], cfgarg[80];
    char *argv2[] = {"--config", cfgarg, NULL};
    const char *path, *empty = conf_file("");
    int n = 6;

    /* The most addresses there can be, each as long as an IPv6 address gets. */
    argv[n++] = (char *)empty;
    for (int i = 0; i < CFG_MAX_LISTEN; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "[fd00:1234:5678:9abc:def0:1234:5678:%x]:%d", i, 60000 + i);
        argv[n++] = "--listen";
        argv[n++] = addrs[i];
    }
    argv[n] = NULL;
    cr_assert_eq(load(&a, argv, no_env, NULL), 0);
    buf_init(&out, mem, sizeof(mem));
    cfg_print(&a, &out);
    cr_assert(!out.overflow);
    cr_assert_not_null(strstr(mem, "listen = [fd00:1234:5678:9abc:def0:1234:5678:0]:60000    ; flag\n"), "%s", mem);
    cr_assert_not_null(strstr(mem, "listen = [fd00:1234:5678:9abc:def0:1234:5678:f]:60015    ; flag\n"), "%s", mem);
    cr_assert_not_null(strstr(mem, "max_body = 3072    ; flag\n"));
    cr_assert_not_null(strstr(mem, "map_size = 17179869184    ; default\n"));

    path = conf_file(mem);
    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&b, argv2, no_env, NULL), 0, "printed config does not load back");
    cr_assert_eq(b.nlisten, (size_t)CFG_MAX_LISTEN);
    buf_init(&out2, mem2, sizeof(mem2));
    cfg_print(&b, &out2);
    cr_assert_not_null(strstr(mem2, "max_body = 3072    ; file\n"), "%s", mem2);
    /* Same settings; only the sources (and the config path itself) differ. */
    strip_sources(mem);
    strip_sources(mem2);
    *strstr(mem, "# config = ") = '\0';
    *strstr(mem2, "# config = ") = '\0';
    cr_assert_str_eq(mem2, mem);
    cfg_done(&a);
    cfg_done(&b);
    unlink(path);
    unlink(empty);
}

Test(config, parse_size_units)
{
    uint64_t v;

    cr_assert_eq(cfg_parse_size("262144", &v), 0);
    cr_assert_eq(v, 262144);
    cr_assert_eq(cfg_parse_size("256KiB", &v), 0);
    cr_assert_eq(v, 262144);
    cr_assert_eq(cfg_parse_size("1G", &v), 0);
    cr_assert_eq(v, 1ull << 30);
    cr_assert_eq(cfg_parse_size("2TiB", &v), 0);
    cr_assert_eq(v, 2ull << 40);
    cr_assert_eq(cfg_parse_size("1kb", &v), ADS_EINVAL);
    cr_assert_eq(cfg_parse_size("-1", &v), ADS_EINVAL);
    cr_assert_eq(cfg_parse_size("", &v), ADS_EINVAL);
    cr_assert_eq(cfg_parse_size("17179869184G", &v), ADS_EINVAL, "overflow");
}

/* Every setting must appear in README's configuration table with its default. */
Test(config, readme_documents_every_setting_and_default)
{
    const char *root = getenv("ADSMITH_SOURCE_ROOT");
    char path[512], *text;
    FILE *f;
    long n;

    cr_assert_not_null(root, "ADSMITH_SOURCE_ROOT is set by meson");
    snprintf(path, sizeof(path), "%s/README.md", root);
    cr_assert_not_null(f = fopen(path, "r"), "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    for (size_t i = 0; i < cfg_setting_count(); i++) {
        char key[80], def[80];
        const char *row, *eol;
        snprintf(key, sizeof(key), "| `%s` |", cfg_setting_name(i));
        snprintf(def, sizeof(def), "`%s`", cfg_setting_default(i)[0] != '\0' ? cfg_setting_default(i) : "(none)");
        cr_assert_not_null(row = strstr(text, key), "README has no table row for %s", cfg_setting_name(i));
        eol = strchr(row, '\n');
        cr_assert(strstr(row, def) != NULL && strstr(row, def) < eol, "README row for %s lacks default %s",
                  cfg_setting_name(i), def);
    }
    free(text);
}

/* issue 6: settings a bid would otherwise trip over later (every bid 204, every notice 403) are refused at load. */
Test(config, bid_settings_are_checked_at_load)
{
    static const struct {
        const char *flag, *value, *pointer;
    } bad[] = {
        {"--notice-key", "abc", "/notice_key"},
        {"--notice-key", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g", "/notice_key"},
        {"--notice-key", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00", "/notice_key"},
        {"--fx-rates", "EUR=1,08", "/fx_rates"},
        {"--fx-rates", "eur=1.08", "/fx_rates"},
        {"--fx-rates", "EUR=0", "/fx_rates"},
        {"--notice-url", "bid.example.com", "/notice_url"},
        {"--notice-url", "https://bid.example.com/", "/notice_url"},
        {"--notice-url", "https://bid.example.com/?a=1", "/notice_url"},
    };
    struct cfg c;
    struct ads_diag d;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[] = {(char *)bad[i].flag, (char *)bad[i].value, NULL};
        cr_assert_eq(load(&c, argv, no_env, &d), ADS_ECONFIG, "%s %s accepted", bad[i].flag, bad[i].value);
        cr_assert_str_eq(d.pointer, bad[i].pointer);
        cr_assert(strstr(d.message, bad[i].pointer + 1) != NULL, "the message names the setting: %s", d.message);
    }
    {
        char *argv[] = {"--notice-key", "000102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f",
                        "--fx-rates", "EUR=1.08,GBP=1.27", "--notice-url", "https://bid.example.com/rtb", NULL};
        cr_assert_eq(load(&c, argv, no_env, &d), 0, "%s", d.message);
        cfg_done(&c);
    }
    {
        char *argv[] = {"--openrtb-path", "/bid", NULL};
        cr_assert_eq(load(&c, argv, no_env, &d), ADS_ECONFIG, "the bid path is fixed: /openrtb2/bid");
    }
}
