#include <criterion/criterion.h>
#include <errno.h>

#include "adsmith/http.h"

#define ADS_CODE_(name, num, str, msg) ADS_E##name,
static const int all_codes[] = {ADS_ERR_MAP(ADS_CODE_)};
#undef ADS_CODE_

Test(status, every_error_code_has_an_http_status)
{
    for (size_t i = 0; i < sizeof(all_codes) / sizeof(all_codes[0]); i++) {
        int status = 0;
        cr_assert_eq(http_status_lookup(all_codes[i], &status), 0, "%s has no HTTP status",
                     ads_err_name(all_codes[i]));
        cr_assert(status >= 400 && status <= 599, "%s maps to %d", ads_err_name(all_codes[i]), status);
    }
}

Test(status, client_errors_are_4xx_and_unknown_codes_are_500)
{
    cr_assert_eq(http_status_of(ADS_ENOT_FOUND), 404);
    cr_assert_eq(http_status_of(ADS_EMETHOD), 405);
    cr_assert_eq(http_status_of(ADS_EBODY_TOO_LARGE), 413);
    cr_assert_eq(http_status_of(ADS_EHEADERS_TOO_LARGE), 431);
    cr_assert_eq(http_status_of(ADS_EBAD_REQUEST), 400);
    cr_assert_eq(http_status_of(ADS_ESTORAGE_FULL), 507);
    cr_assert_eq(http_status_of(-EIO), 500);
}

Test(status, error_body_has_the_published_shape)
{
    char mem[512];
    struct buf b;

    buf_init(&b, mem, sizeof(mem));
    http_error_body(ADS_ENOT_FOUND, "/imp/0/id", "no \"imp\"", &b);
    cr_assert_str_eq(mem, "{\"error\":{\"code\":\"not_found\",\"message\":\"no \\\"imp\\\"\",\"pointer\":\"/imp/0/id\"}}");
    buf_init(&b, mem, sizeof(mem));
    http_error_body(ADS_EMETHOD, NULL, NULL, &b);
    cr_assert_str_eq(mem, "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"this path does not accept that "
                          "method; see the Allow header\",\"pointer\":\"\"}}");
}
