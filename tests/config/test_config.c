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
    cr_assert_eq(c.map_size, 1024ull * 1024 * 1024);
    cr_assert_eq(c.threads, (uint32_t)sysconf(_SC_NPROCESSORS_ONLN), "threads=0 resolves to the core count");
    cr_assert_eq(c.log_level, LG_INFO);
    cr_assert(!c.access_log);
    cr_assert_eq(c.source[0], CFG_SRC_DEFAULT);
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

    cr_assert_eq(load(&c, (char *[]){NULL}, envp, &d), ADS_ECONFIG);
    cr_assert_str_eq(d.pointer, "/map_size");
    cr_assert_eq(load(&c, (char *[]){NULL}, envp2, &d), 0);
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

Test(config, print_config_round_trips_through_a_file)
{
    struct cfg a, b;
    char mem[8192], mem2[8192];
    struct buf out, out2;
    char *argv[] = {"--listen", "127.0.0.1:9", "--listen", "[::1]:10", "--max-body", "3KiB", "--log-level", "warn",
                    "--access-log", NULL};
    char cfgarg[80];
    char *argv2[] = {"--config", cfgarg, NULL};
    const char *path;

    cr_assert_eq(load(&a, argv, no_env, NULL), 0);
    buf_init(&out, mem, sizeof(mem));
    cfg_print(&a, &out);
    cr_assert(!out.overflow);
    cr_assert_not_null(strstr(mem, "listen = 127.0.0.1:9, [::1]:10    ; flag\n"), "%s", mem);
    cr_assert_not_null(strstr(mem, "max_body = 3072    ; flag\n"));
    cr_assert_not_null(strstr(mem, "map_size = 1073741824    ; default\n"));

    path = conf_file(mem);
    snprintf(cfgarg, sizeof(cfgarg), "%s", path);
    cr_assert_eq(load(&b, argv2, no_env, NULL), 0, "printed config does not load back");
    buf_init(&out2, mem2, sizeof(mem2));
    cfg_print(&b, &out2);
    /* Same values; only the sources differ (file instead of flag/default). */
    cr_assert_eq(b.nlisten, 2);
    cr_assert_eq(b.max_body, a.max_body);
    cr_assert_eq(b.log_level, a.log_level);
    cr_assert_eq(b.access_log, a.access_log);
    cr_assert_eq(b.threads, a.threads);
    cfg_done(&a);
    cfg_done(&b);
    unlink(path);
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
