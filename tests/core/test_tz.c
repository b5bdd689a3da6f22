#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adsmith/err.h"
#include "adsmith/tz.h"

/* Expected offsets are the tz database's (cross-checked with Python's
 * zoneinfo on the same files); transition instants are exact seconds. */

static struct tz *load(const char *name)
{
    struct tz *z = NULL;
    int rc = tz_load(name, &z);

    cr_assert_eq(rc, 0, "tz_load(%s): %s", name, ads_err_name(rc));
    cr_assert_not_null(z);
    return z;
}

Test(tz, utc)
{
    struct tz *z = load("UTC");

    cr_expect_eq(tz_offset_at(z, 0), 0);
    cr_expect_eq(tz_offset_at(z, 1752580800), 0);
    cr_expect_eq(tz_offset_at(z, -5364662400), 0);
    cr_expect_eq(tz_offset_at(z, INT64_MAX), 0);
    cr_expect_eq(tz_offset_at(z, INT64_MIN), 0);
    cr_expect(tz_exists("UTC"));
    tz_free(z);
}

Test(tz, berlin_winter_summer_and_switches)
{
    struct tz *z = load("Europe/Berlin");

    cr_expect_eq(tz_offset_at(z, 1736942400), 3600, "2025-01-15 12:00Z is CET");
    cr_expect_eq(tz_offset_at(z, 1752580800), 7200, "2025-07-15 12:00Z is CEST");
    /* 2025-03-30 01:00:00Z: 02:00 CET becomes 03:00 CEST. */
    cr_expect_eq(tz_offset_at(z, 1743296400 - 1), 3600);
    cr_expect_eq(tz_offset_at(z, 1743296400), 7200);
    /* 2025-10-26 01:00:00Z: 03:00 CEST becomes 02:00 CET. */
    cr_expect_eq(tz_offset_at(z, 1761440400 - 1), 7200);
    cr_expect_eq(tz_offset_at(z, 1761440400), 3600);
    /* Before the first transition: local mean time (type 0). */
    cr_expect_eq(tz_offset_at(z, -5364662400), 3208);
    tz_free(z);
}

Test(tz, new_york)
{
    struct tz *z = load("America/New_York");

    cr_expect_eq(tz_offset_at(z, 1736942400), -18000);
    cr_expect_eq(tz_offset_at(z, 1752580800), -14400);
    cr_expect_eq(tz_offset_at(z, 1741503600 - 1), -18000, "2025-03-09 07:00Z");
    cr_expect_eq(tz_offset_at(z, 1741503600), -14400);
    cr_expect_eq(tz_offset_at(z, 1762063200 - 1), -14400, "2025-11-02 06:00Z");
    cr_expect_eq(tz_offset_at(z, 1762063200), -18000);
    cr_expect_eq(tz_offset_at(z, -5364662400), -17762);
    tz_free(z);
}

Test(tz, half_and_quarter_hour_zones)
{
    struct tz *kolkata = load("Asia/Kolkata"), *kathmandu = load("Asia/Kathmandu");

    cr_expect_eq(tz_offset_at(kolkata, 1748736000), 19800, "+5:30");
    cr_expect_eq(tz_offset_at(kolkata, 4102444800), 19800, "+5:30 in 2100 (footer IST-5:30)");
    cr_expect_eq(tz_offset_at(kathmandu, 1748736000), 20700, "+5:45");
    cr_expect_eq(tz_offset_at(kathmandu, 486432000), 19800, "+5:30 in 1985");
    cr_expect_eq(tz_offset_at(kathmandu, 32503680000), 20700, "<+0545>-5:45 in 3000");
    tz_free(kolkata);
    tz_free(kathmandu);
}

Test(tz, lord_howe_half_hour_dst)
{
    struct tz *z = load("Australia/Lord_Howe");

    cr_expect_eq(tz_offset_at(z, 1736942400), 39600, "January: +11 (DST)");
    cr_expect_eq(tz_offset_at(z, 1752580800), 37800, "July: +10:30");
    cr_expect_eq(tz_offset_at(z, 1743865200 - 1), 39600, "2025-04-05 15:00Z");
    cr_expect_eq(tz_offset_at(z, 1743865200), 37800);
    cr_expect_eq(tz_offset_at(z, 1759591800 - 1), 37800, "2025-10-04 15:30Z");
    cr_expect_eq(tz_offset_at(z, 1759591800), 39600);
    /* 2045, from the footer rule <+1030>-10:30<+11>-11,M10.1.0,M4.1.0 */
    cr_expect_eq(tz_offset_at(z, 2374671600 - 1), 39600);
    cr_expect_eq(tz_offset_at(z, 2374671600), 37800);
    cr_expect_eq(tz_offset_at(z, 2390398200 - 1), 37800);
    cr_expect_eq(tz_offset_at(z, 2390398200), 39600);
    tz_free(z);
}

Test(tz, after_2037_footer_rule)
{
    struct tz *berlin = load("Europe/Berlin"), *ny = load("America/New_York");

    /* 2050-03-27 01:00Z and 2050-10-30 01:00Z (CET-1CEST,M3.5.0,M10.5.0/3) */
    cr_expect_eq(tz_offset_at(berlin, 2531955600 - 1), 3600);
    cr_expect_eq(tz_offset_at(berlin, 2531955600), 7200);
    cr_expect_eq(tz_offset_at(berlin, 2550704400 - 1), 7200);
    cr_expect_eq(tz_offset_at(berlin, 2550704400), 3600);
    /* 2100-03-14 07:00Z and 2100-11-07 06:00Z (EST5EDT,M3.2.0,M11.1.0) */
    cr_expect_eq(tz_offset_at(ny, 4108690800 - 1), -18000);
    cr_expect_eq(tz_offset_at(ny, 4108690800), -14400);
    cr_expect_eq(tz_offset_at(ny, 4129250400 - 1), -14400);
    cr_expect_eq(tz_offset_at(ny, 4129250400), -18000);
    /* Far out, and at the extremes, still one of the zone's offsets. */
    cr_expect_eq(tz_offset_at(berlin, 32503680000), 3600, "3000-01-01");
    cr_expect(tz_offset_at(berlin, INT64_MAX) == 3600 || tz_offset_at(berlin, INT64_MAX) == 7200);
    tz_free(berlin);
    tz_free(ny);
}

Test(tz, names_that_cannot_leave_the_database)
{
    static const char *const bad[] = {
        "../etc/passwd",
        "",
        "a//b",
        ".",
        "..",
        "/etc/passwd",
        "Europe/",
        "/UTC",
        "Europe/../UTC",
        "Europe/./Berlin",
        "Europe/Berlin\n",
        "Europe\\Berlin",
        "Europe/Berlin ",
        "Etc/UTC%00",
        "Europe",
        "No/Such_Zone",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 65 bytes */
    };
    char longname[4096];
    struct tz *z = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(tz_load(bad[i], &z), ADS_ENOT_FOUND, "\"%s\" refused", bad[i]);
        cr_expect_not(tz_exists(bad[i]), "\"%s\" does not exist", bad[i]);
    }
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    cr_expect_eq(tz_load(longname, &z), ADS_ENOT_FOUND);
    cr_expect_eq(tz_load(NULL, &z), ADS_ENOT_FOUND);
    cr_expect_null(z, "nothing returned on failure");
    cr_expect(tz_exists("America/Argentina/Buenos_Aires"));
    cr_expect(tz_exists("Etc/GMT+5"));
}

/* ---- damaged files, through ADSMITH_TZDIR ---- */

static char dir[64];
static unsigned char *orig;
static size_t orig_len;

static void damaged_setup(void)
{
    FILE *f = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
    char sub[128];

    cr_assert_not_null(f);
    orig = malloc(65536);
    cr_assert_not_null(orig);
    orig_len = fread(orig, 1, 65536, f);
    fclose(f);
    cr_assert_gt(orig_len, 100);
    snprintf(dir, sizeof(dir), "/tmp/adsmith-tz-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/Test", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    cr_assert_eq(setenv("ADSMITH_TZDIR", dir, 1), 0);
}

static void damaged_teardown(void)
{
    char cmd[128];

    free(orig);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static void put(const unsigned char *data, size_t len)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/Test/Zone", dir);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static int try_load(void)
{
    struct tz *z = NULL;
    int rc = tz_load("Test/Zone", &z);

    if (rc == 0) {
        cr_assert_eq(tz_offset_at(z, 1752580800), 7200, "a file that loads gives Berlin's offsets");
        tz_free(z);
    } else {
        cr_assert_null(z);
    }
    return rc;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void set_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

TestSuite(tz_damaged, .init = damaged_setup, .fini = damaged_teardown);

Test(tz_damaged, intact_copy_loads)
{
    put(orig, orig_len);
    cr_assert_eq(try_load(), 0);
}

Test(tz_damaged, every_truncation_refused)
{
    for (size_t len = 0; len < orig_len; len++) {
        put(orig, len);
        cr_assert_eq(try_load(), ADS_EDATA_INVALID, "a copy cut to %zu of %zu bytes is refused", len, orig_len);
    }
}

Test(tz_damaged, corrupt_headers_and_data_refused)
{
    unsigned char *d = malloc(orig_len + 16);
    /* Offsets of the 64-bit part: after the first header and its block. */
    size_t v1 = 44 + be32(orig + 32) * 5 + be32(orig + 36) * 6 + be32(orig + 40) + be32(orig + 28) * 8 +
                be32(orig + 24) + be32(orig + 20);
    size_t h2 = v1, timecnt2 = be32(orig + h2 + 32), idx2 = h2 + 44 + timecnt2 * 8;

    cr_assert_not_null(d);
    cr_assert_eq(memcmp(orig + h2, "TZif", 4), 0, "the second header is where expected");
    cr_assert_gt(timecnt2, 10);

    memcpy(d, orig, orig_len);
    memcpy(d, "TZig", 4);
    put(d, orig_len);
    cr_expect_eq(try_load(), ADS_EDATA_INVALID, "bad magic");

    memcpy(d, orig, orig_len);
    d[4] = '1';
    put(d, orig_len);
    cr_expect_eq(try_load(), ADS_EDATA_INVALID, "unknown version");

    memcpy(d, orig, orig_len);
    set_be32(d + h2 + 32, 0xffffffffu);
    put(d, orig_len);
    cr_expect_eq(try_load(), ADS_EDATA_INVALID, "absurd transition count");

    memcpy(d, orig, orig_len);
    set_be32(d + h2 + 36, 0);
    put(d, orig_len);
    cr_expect_eq(try_load(), ADS_EDATA_INVALID, "no local time types");

    memcpy(d, orig, orig_len);
    d[idx2 + 3] = 200;
    put(d, orig_len);
    cr_expect_eq(try_load(), ADS_EDATA_INVALID, "a transition names a type that does not exist");

    memcpy(d, orig, orig_len);
    memcpy(d + h2 + 44 + 16, d + h2 + 44 + 8, 8); /* transition 2 = transition 1 */
    put(d, orig_len);
    cr_expect_eq(try_load(), ADS_EDATA_INVALID, "transitions that do not ascend");

    memcpy(d, orig, orig_len);
    memcpy(d + orig_len, "junk", 4);
    put(d, orig_len + 4);
    cr_expect_eq(try_load(), ADS_EDATA_INVALID, "trailing bytes");

    memcpy(d, orig, orig_len);
    memcpy(d + orig_len - 8, "XX-1Y,\n", 7); /* footer "CET-1CEST,M3.5.0,M1XX-1Y," */
    put(d, orig_len - 1);
    cr_expect_eq(try_load(), ADS_EDATA_INVALID, "a footer that is not a POSIX TZ string");

    put((const unsigned char *)"this is not a time zone file, just some text\n", 45);
    cr_expect_eq(try_load(), ADS_EDATA_INVALID, "text");

    free(d);
}

Test(tz_damaged, directory_is_not_a_zone)
{
    struct tz *z = NULL;

    cr_expect_eq(tz_load("Test", &z), ADS_ENOT_FOUND);
    cr_expect_not(tz_exists("Test"));
}
