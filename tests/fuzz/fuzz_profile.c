/* libFuzzer target: any body, in either encoding, through every validator of
 * issue 3 (PUT, PATCH, events); what a validator accepts must encode, decode
 * and open as a view. Raw bytes must also be refused (or read) safely by the
 * stored-format readers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/event.h"
#include "adsmith/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct profile p, q;
static struct prof_patch pp;
static struct evt evts[EVT_MAX_BATCH];
static char enc[PROF_ENCODED_MAX + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum doc_fmt fmt = size > 0 && (data[0] & 1) ? DOC_MSGPACK : DOC_JSON;
    struct ads_diag d;
    struct prof_view v;
    msgpack_zone zone;
    msgpack_object doc;
    struct buf b;
    size_t n;

    prof_decode(data, size, &q);
    prof_view_open(data, size, &v);
    if (size == 0)
        return 0;
    msgpack_zone_init(&zone, 4096);
    if (doc_parse(fmt, (const char *)data + 1, size - 1, &zone, &doc, &d) == 0) {
        if (prof_from_doc(&doc, "u", 1, &p, &d) == 0) {
            buf_init(&b, enc, sizeof(enc));
            if (prof_encode(&p, &b) != 0 || prof_decode(b.base, b.len, &q) != 0 ||
                prof_view_open(b.base, b.len, &v) != 0)
                abort();
        }
        if (prof_patch_from_doc(&doc, "u", 1, &pp, &d) == 0)
            prof_patch_apply(&q, &pp);
        if (evt_batch_count(&doc) > 0 && evt_batch_from_doc(&doc, 1763800000, evts, &n, &d) == 0) {
            for (size_t i = 0; i < n; i++)
                evt_apply(&q, &evts[i], 3600);
            buf_init(&b, enc, sizeof(enc));
            if (prof_encode(&q, &b) != 0)
                abort();
        }
    }
    msgpack_zone_destroy(&zone);
    return 0;
}
