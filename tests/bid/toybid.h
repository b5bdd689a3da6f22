/*
 * toybid: a stand-in for the bid decision, for the OpenRTB layer's own tests
 * (test_ortb.c) and the fuzzer, which exercise ortb_check_bid() and the
 * response writer apart from the decision; the schema check and the e2e
 * tests use the real decision (bid_decide). It answers every impression it
 * can with a bid that follows the request's rules by construction (its own
 * code, not ortb_check_bid's), so that ortb_check_bid() has real answers to
 * judge. Not part of the service.
 */
#ifndef ADSMITH_TESTS_TOYBID_H
#define ADSMITH_TESTS_TOYBID_H

#include "adsmith/ortb.h"

struct toybid {
    struct ortb_bid bids[ORTB_MAX_IMPS];
    char bid_ids[ORTB_MAX_IMPS][16];
    struct cidx_str adomain;
    struct ortb_seatbid seatbid;
    struct ortb_resp resp;
    struct ortb_check_ctx check;
};

/** Fixed rates between USD, EUR, GBP and JPY; others unknown. An ortb_fx_fn. */
int toybid_fx(void *ctx, const char *from, const char *to, double *ret_rate);

/** Fills @p t with an answer to @p req (t->resp; a no-bid when nothing fits). @return the number of bids. */
uint32_t toybid_answer(const struct ortb_req *req, struct toybid *t);

#endif
