/*
 * Request handlers. Each takes a routed request and answers it exactly once
 * through http_send*(). They are listed in the route table (service/http/routes.c).
 */
#ifndef ADSMITH_HANDLERS_H
#define ADSMITH_HANDLERS_H

#include "adsmith/http.h"

/** GET /healthz: 200 while the process serves requests. */
void ops_healthz(struct http_req *r);

/** GET /readyz: 200 when storage is open (and, once models exist, a model is loaded); 503 while draining. */
void ops_readyz(struct http_req *r);

/** GET /metrics: Prometheus text format 0.0.4. */
void ops_metrics(struct http_req *r);

/** GET /v1/users/{id}[?source=S]: the profile (of the user holding alias S:{id} with source). */
void users_get(struct http_req *r);

/** PUT /v1/users/{id}: replace or create; 201 created or 200, with the stored profile. */
void users_put(struct http_req *r);

/** PATCH /v1/users/{id}: JSON Merge Patch; 200 with the merged profile, 404 when absent. */
void users_patch(struct http_req *r);

/** DELETE /v1/users/{id}[?source=S]: erase the profile, its aliases and counters; 204. */
void users_delete(struct http_req *r);

/** POST /v1/events: apply a batch of events; 200 {"accepted","duplicates","unresolved"}. */
void events_post(struct http_req *r);

/** GET /v1/campaigns?status=&advertiser=&limit=&cursor=: a page of summaries, id order, and next_cursor. */
void campaigns_list(struct http_req *r);

/** GET /v1/campaigns/{id}: the document with created_at and updated_at; ETag; 304 on If-None-Match. */
void campaigns_get(struct http_req *r);

/** PUT /v1/campaigns/{id}: create (201) or replace (200); If-Match / If-None-Match: *; 400 lists every problem. */
void campaigns_put(struct http_req *r);

/** PATCH /v1/campaigns/{id}: JSON Merge Patch; the merged document must validate. */
void campaigns_patch(struct http_req *r);

/** DELETE /v1/campaigns/{id}: archives (200 with the archived document); ledgers are kept. */
void campaigns_delete(struct http_req *r);

/** GET /v1/campaigns/{id}/usage: spend and tokens against budget and package. */
void campaigns_usage(struct http_req *r);

/** GET /v1/admin/index: the compiled index's counters. */
void campaigns_index_stats(struct http_req *r);

/** POST /v1/admin/eligibility: the campaigns the index finds eligible for an impression described in the body. */
void campaigns_eligibility(struct http_req *r);

/** GET /v1/admin/model: the served model (version, training window, metrics snapshot) and reload counters. */
void model_get(struct http_req *r);

/** POST /v1/admin/model:reload: loads the configured model file again (200, or 422 model_refused: the old one stays). */
void model_reload(struct http_req *r);

/** POST /v1/admin/model:score: what the served model says for features given in the body. */
void model_score(struct http_req *r);

/** POST /openrtb2/bid (a fixed path, the one exchanges expect): an OpenRTB BidRequest; 200 BidResponse, 204 no bid, 400 malformed. */
void bid_post(struct http_req *r);

/** GET|POST /v1/notice/{win|bill|loss}?...&sig=: a signed notice; 200, 403 forged, 400 malformed or expired. */
void notice_post(struct http_req *r);

/** GET /v1/campaigns/{id}/variants: the campaign's AI variants, their checks, provenance and results. */
void campaigns_variants_list(struct http_req *r);

/** POST /v1/campaigns/{id}/variants:generate: queue generation now; 202 {"queued": jobs}. */
void campaigns_variants_generate(struct http_req *r);

/** POST /v1/campaigns/{id}/variants:review: approve, reject or retire a variant. */
void campaigns_variants_review(struct http_req *r);

/** POST /v1/admin/token-prices: a price row of the token ledger (model, kind, valid_from, micros per million). */
void ledger_prices_post(struct http_req *r);

/** GET /v1/admin/token-alerts: token-package thresholds reached, oldest first (?after=SEQ&limit=N). */
void ledger_alerts_get(struct http_req *r);

/** POST /v1/score: calibrated scores and ranks of a platform's candidates for a user and context (score.h). */
void score_post(struct http_req *r);

/** Notices refused for their signature, and notices received, since start (for /metrics). */
unsigned long bid_handler_forged(void);
unsigned long bid_handler_notices(void);

#endif
