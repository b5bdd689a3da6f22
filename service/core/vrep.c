#include "adsmith/vrep.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void vrep_init(struct vrep *rep)
{
    rep->count = 0;
    rep->total = 0;
    rep->schema_total = 0;
}

void vrep_add(struct vrep *rep, const char *rule, const char *ptr, size_t ptr_len, const char *fmt, ...)
{
    struct vrep_item *it;
    va_list ap;

    rep->total++;
    if (strncmp(rule, "schema:", 7) == 0 || strcmp(rule, "parse") == 0)
        rep->schema_total++;
    if (rep->count == VREP_MAX)
        return;
    it = &rep->items[rep->count++];
    it->rule = rule;
    if (ptr_len < sizeof(it->pointer)) {
        memcpy(it->pointer, ptr, ptr_len);
        it->pointer[ptr_len] = '\0';
    } else {
        /* Cut on a byte that is not inside a UTF-8 sequence, then mark the cut. */
        size_t keep = sizeof(it->pointer) - 4;
        while (keep > 0 && ((unsigned char)ptr[keep] & 0xC0) == 0x80)
            keep--;
        memcpy(it->pointer, ptr, keep);
        memcpy(it->pointer + keep, "...", 4);
    }
    va_start(ap, fmt);
    vsnprintf(it->message, sizeof(it->message), fmt, ap);
    va_end(ap);
}

void vrep_write(const struct vrep *rep, struct docw *w)
{
    docw_array(w, (uint32_t)rep->count);
    for (size_t i = 0; i < rep->count; i++) {
        const struct vrep_item *it = &rep->items[i];
        docw_map(w, 3);
        docw_key(w, "pointer");
        docw_cstr(w, it->pointer);
        docw_key(w, "message");
        docw_cstr(w, it->message);
        docw_key(w, "rule");
        docw_cstr(w, it->rule);
        docw_map_end(w);
    }
    docw_array_end(w);
}
