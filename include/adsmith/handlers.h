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

#endif
