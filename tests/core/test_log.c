#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "adsmith/err.h"
#include "adsmith/log.h"

static int fds[2];

static void setup(void)
{
    cr_assert_eq(pipe(fds), 0);
    lg_set_fd(fds[1]);
    lg_set_level(LG_DEBUG);
}

/* Reads what was logged so far (one write per record, so a read gets whole records). */
static size_t drain(char *out, size_t cap)
{
    ssize_t n;
    close(fds[1]);
    n = read(fds[0], out, cap - 1);
    cr_assert_geq(n, 0);
    out[n] = '\0';
    return (size_t)n;
}

Test(log, record_is_one_line_of_json_with_typed_fields, .init = setup)
{
    struct lg_rec r;
    char out[4096];
    cJSON *j;

    lg_begin(&r, LG_WARN, "listening \"now\"");
    lg_str(&r, "addr", "127.0.0.1:8080");
    lg_int(&r, "delta", -3);
    lg_uint(&r, "count", 18446744073709551615ull);
    lg_bool(&r, "tls", true);
    lg_err(&r, ADS_ENOT_FOUND);
    lg_end(&r);
    drain(out, sizeof(out));
    cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "not exactly one line: %s", out);
    cr_assert_not_null(j = cJSON_Parse(out), "not JSON: %s", out);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "msg")->valuestring, "listening \"now\"");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "addr")->valuestring, "127.0.0.1:8080");
    cr_assert_eq(cJSON_GetObjectItem(j, "delta")->valuedouble, -3);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "tls")));
    cr_assert_str_eq(cJSON_GetObjectItem(j, "error")->valuestring, "not_found");
    cr_assert_eq(strlen(cJSON_GetObjectItem(j, "ts")->valuestring), strlen("2026-11-22T23:20:34.123Z"));
    cr_assert_null(cJSON_GetObjectItem(j, "truncated"));
    cJSON_Delete(j);
}

Test(log, levels_below_the_minimum_are_dropped, .init = setup)
{
    char out[1024];

    lg_set_level(LG_WARN);
    lg_msg(LG_INFO, "quiet");
    lg_msg(LG_DEBUG, "quieter");
    lg_msg(LG_ERROR, "loud");
    drain(out, sizeof(out));
    cr_assert_null(strstr(out, "quiet"));
    cr_assert_not_null(strstr(out, "\"msg\":\"loud\""));
}

Test(log, oversized_fields_leave_valid_json_marked_truncated, .init = setup)
{
    static char big[3 * LG_MAX_RECORD];
    struct lg_rec r;
    char out[LG_MAX_RECORD * 2];
    cJSON *j;

    memset(big, '"', sizeof(big) - 1); /* every byte needs escaping */
    lg_begin(&r, LG_INFO, "big");
    lg_str(&r, "a", big);
    lg_str(&r, "b", big);
    lg_int(&r, "after", 1);
    lg_end(&r);
    cr_assert_leq(drain(out, sizeof(out)), (size_t)LG_MAX_RECORD);
    cr_assert_not_null(j = cJSON_Parse(out), "not JSON: %.200s", out);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated")));
    cr_assert_gt(strlen(cJSON_GetObjectItem(j, "a")->valuestring), 100);
    cJSON_Delete(j);
}

Test(log, level_names_parse_both_ways)
{
    enum lg_level lv;

    for (int i = LG_DEBUG; i <= LG_ERROR; i++) {
        cr_assert_eq(lg_level_parse(lg_level_name((enum lg_level)i), &lv), 0);
        cr_assert_eq((int)lv, i);
    }
    cr_assert_eq(lg_level_parse("verbose", &lv), ADS_EINVAL);
}
