/*
 * bidfix: what the bid tests share (tests/bid/test_decide.c, resp_gen.c, the
 * fuzzer and tests/e2e/test_bid.c): a small ranking model of the "adsmith"
 * schema trained on the spot, so that no test depends on the file format of
 * the default model, and generated campaign documents that, with the ones in
 * schemas/examples, give every fixture request in tests/bid/fixtures
 * something to bid with.
 */
#ifndef ADSMITH_TESTS_BIDFIX_H
#define ADSMITH_TESTS_BIDFIX_H

#include <stddef.h>
#include <stdint.h>

#include "adsmith/rank.h"

#define BIDFIX_T0 1767268800 /* 2026-01-01 12:00:00Z: the tests' "now" */
#define BIDFIX_FX "EUR=1.08,GBP=1.27,JPY=0.0067"

/**
 * Trains a model on 600 rows where campaign "c1" on banner is clicked more
 * than the others, writes it to a temporary file and opens it.
 * @return 0 with *@p ret set (close with rank_model_close()), or the first error.
 */
int bidfix_model(struct rank_model **ret);

/**
 * The JSON text (malloc'd; NULL on failure) of generated campaign @p i: every
 * format the fixtures ask for (banner in their sizes, video, native), USD,
 * EUR or GBP, max_cpm or target_cpc, some with every fixture's deal ids,
 * HTTPS-only creatives, flight from 0 in UTC, active. Valid by the schema.
 */
char *bidfix_campaign(uint32_t i);

/** The JSON text (malloc'd) of schemas/examples/@p name under $ADSMITH_SOURCE_ROOT (else "."); NULL if unreadable. */
char *bidfix_example(const char *name);

#endif
