#include "adsmith/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_entry {
    int code;
    const char *name;
    const char *message;
};

static const struct err_entry err_table[] = {
#define ADS_ERR_ROW_(name, num, str, msg) {ADS_E##name, str, msg},
    ADS_ERR_MAP(ADS_ERR_ROW_)
#undef ADS_ERR_ROW_
};

static const struct err_entry *err_find(int code)
{
    /* Codes are dense: -(BASE+1), -(BASE+2), ... so the index is computed, not
     * searched (in long long, so that no int value overflows). */
    long long idx = -(long long)code - ADS_ERR_BASE - 1;
    if (idx < 0 || idx >= (long long)(sizeof(err_table) / sizeof(err_table[0])))
        return NULL;
    return &err_table[idx];
}

const char *ads_err_name(int code)
{
    const struct err_entry *e;

    if (code == 0)
        return "ok";
    if ((e = err_find(code)) != NULL)
        return e->name;
    if (code < 0 && code > -4096)
        return "errno";
    return "unknown";
}

const char *ads_err_message(int code)
{
    const struct err_entry *e;

    if (code == 0)
        return "success";
    if ((e = err_find(code)) != NULL)
        return e->message;
    if (code < 0 && code > -4096)
        return strerror(-code);
    return "unknown error";
}

int ads_diag_set(struct ads_diag *d, int code, const char *pointer, const char *fmt, ...)
{
    va_list ap;

    if (d == NULL)
        return code;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof(d->message), fmt, ap);
    va_end(ap);
    snprintf(d->pointer, sizeof(d->pointer), "%s", pointer != NULL ? pointer : "");
    return code;
}
