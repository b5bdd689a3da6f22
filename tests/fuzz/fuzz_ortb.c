/* libFuzzer target: any body through ortb_parse(), as MessagePack when its
 * first byte is 0x01 (then the rest is the body), else as JSON (the whole
 * input, so that tests/bid/fixtures/ is a seed corpus as it stands). A
 * request it accepts must map every imp to a cidx query, and the toy
 * decision's bids for it must pass ortb_check_bid() and be written as JSON
 * that cJSON reads back. A refusal must be a 400 with a reason and a message. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../bid/toybid.h"
#include "adsmith/ortb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ortb_scratch *scr;
static struct toybid toy;
static char out[1 << 20];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool mp = size > 0 && data[0] == 0x01;
    const struct ortb_req *r;
    struct ads_diag d;
    enum ortb_fault f = ORTB_F_NONE;
    struct buf b;
    uint32_t i, n;
    int rc;

    if (size == 0)
        return 0;
    if (scr == NULL && ortb_scratch_new(&scr) != 0)
        abort();
    rc = ortb_parse(scr, mp ? DOC_MSGPACK : DOC_JSON, (const char *)data + mp, size - mp, &r, &d, &f);
    if (rc != 0) {
        if (rc == ADS_EBAD_REQUEST && (f == ORTB_F_NONE || d.message[0] == '\0'))
            abort();
        return 0;
    }
    for (i = 0; i < r->nimps; i++) {
        struct cidx_query q;
        if (ortb_imp_query(r, i, 1767225600, &q) != 0 || q.nbanner_sizes > ORTB_MAX_FORMATS ||
            q.ndeals > ORTB_MAX_DEALS)
            abort();
    }
    n = toybid_answer(r, &toy);
    for (i = 0; i < n; i++)
        if (ortb_check_bid(r, &toy.bids[i], &toy.check, &d) != ORTB_RULE_OK)
            abort();
    buf_init(&b, out, sizeof(out));
    if (ortb_resp_write(&toy.resp, DOC_JSON, &b) != 0)
        abort();
    cJSON *j = cJSON_ParseWithLength(b.base, b.len);
    if (j == NULL)
        abort();
    cJSON_Delete(j);
    return 0;
}
