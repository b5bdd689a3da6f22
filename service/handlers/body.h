/*
 * Shared steps of the handlers that take a document: check storage, parse the
 * body in the client's encoding. Internal to service/handlers/.
 */
#ifndef ADSMITH_HANDLERS_BODY_H
#define ADSMITH_HANDLERS_BODY_H

#include <msgpack.h>
#include <stdbool.h>

#include "adsmith/http.h"
#include "adsmith/store.h"

/** The open store, or NULL after answering 503 not_ready. */
struct store *body_store(struct http_req *r);

/**
 * Parses the request body (per Content-Type) into a tree in @p zone.
 * @return true, or false after answering 415 or 400 (with where the body is broken).
 */
bool body_parse(struct http_req *r, msgpack_zone *zone, msgpack_object *ret_doc);

/** Answers the error in @p diag (message and pointer) with @p err's status. */
void body_send_diag(struct http_req *r, int err, const struct ads_diag *diag);

struct camps_rec;

/**
 * Reads the campaign of the path's {id} that the caller may see, in a read
 * transaction left open in *@p ret_txn (end it with store_read_end()).
 * @return true, or false after answering (404 for a campaign of another
 *   advertiser, as for one that does not exist; 503; 400 for a bad id).
 */
bool campaigns_read(struct http_req *r, MDB_txn **ret_txn, struct camps_rec *rec);

/** Unix time now, in seconds. */
uint64_t body_now(void);

#endif
