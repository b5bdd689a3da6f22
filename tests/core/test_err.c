#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "adsmith/err.h"

#define ADS_CODE_(name, num, str, msg) ADS_E##name,
static const int all_codes[] = {ADS_ERR_MAP(ADS_CODE_)};
#undef ADS_CODE_

Test(err, codes_are_dense_negative_and_outside_errno_and_lmdb)
{
    cr_assert_eq(sizeof(all_codes) / sizeof(all_codes[0]), (size_t)ADS_ERR_COUNT);
    for (int i = 0; i < ADS_ERR_COUNT; i++) {
        cr_assert_eq(all_codes[i], -(ADS_ERR_BASE + 1 + i), "code %d is not dense", i);
        cr_assert_lt(all_codes[i], -30799, "code %d overlaps errno or LMDB", all_codes[i]);
    }
}

Test(err, every_code_has_a_unique_name_and_a_message)
{
    for (int i = 0; i < ADS_ERR_COUNT; i++) {
        const char *name = ads_err_name(all_codes[i]);
        cr_assert_str_neq(name, "unknown");
        cr_assert_str_neq(name, "errno");
        cr_assert_gt(strlen(ads_err_message(all_codes[i])), 10);
        for (size_t j = 0; j < strlen(name); j++)
            cr_assert(name[j] == '_' || (name[j] >= 'a' && name[j] <= 'z'), "name %s is not snake_case", name);
        for (int k = 0; k < i; k++)
            cr_assert_str_neq(name, ads_err_name(all_codes[k]), "duplicate name %s", name);
    }
}

Test(err, names_are_stable)
{
    /* Clients match on these strings: changing one is an API break. */
    cr_assert_str_eq(ads_err_name(ADS_ENOT_FOUND), "not_found");
    cr_assert_str_eq(ads_err_name(ADS_EMETHOD), "method_not_allowed");
    cr_assert_str_eq(ads_err_name(ADS_EBODY_TOO_LARGE), "body_too_large");
    cr_assert_eq(ADS_ENOMEM, -40001);
}

Test(err, errno_passes_through)
{
    cr_assert_str_eq(ads_err_name(-ENOENT), "errno");
    cr_assert_str_eq(ads_err_message(-ENOENT), strerror(ENOENT));
    cr_assert_str_eq(ads_err_name(0), "ok");
    cr_assert_str_eq(ads_err_name(-(ADS_ERR_BASE + ADS_ERR_COUNT + 1)), "unknown");
    cr_assert_str_eq(ads_err_name(5), "unknown");
    cr_assert_str_eq(ads_err_name(INT_MIN), "unknown");
    cr_assert_str_eq(ads_err_name(INT_MAX), "unknown");
}

Test(err, diag_formats_truncates_and_returns_the_code)
{
    struct ads_diag d;
    char big[600];

    cr_assert_eq(ads_diag_set(&d, ADS_EINVAL, "/a/b", "bad %d", 7), ADS_EINVAL);
    cr_assert_str_eq(d.message, "bad 7");
    cr_assert_str_eq(d.pointer, "/a/b");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ads_diag_set(&d, ADS_EINVAL, big, "%s", big);
    cr_assert_eq(strlen(d.message), sizeof(d.message) - 1);
    cr_assert_eq(strlen(d.pointer), sizeof(d.pointer) - 1);
    cr_assert_eq(ads_diag_set(NULL, ADS_ENOMEM, NULL, "x"), ADS_ENOMEM);
    ads_diag_set(&d, ADS_EINVAL, NULL, "y");
    cr_assert_str_eq(d.pointer, "");
}
