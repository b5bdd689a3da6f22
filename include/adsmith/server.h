/*
 * srv: the HTTP server: worker threads, listeners, TLS, signals, shutdown.
 *
 * N worker threads each run their own libh2o event loop and accept on their own
 * SO_REUSEPORT socket for every listen address, so the kernel spreads
 * connections across them. The calling thread handles signals:
 *   SIGTERM, SIGINT  graceful shutdown: stop accepting, answer in-flight
 *                    requests, close connections, exit within shutdown_timeout_ms
 *   SIGHUP           run the reload hooks (later modules register theirs)
 */
#ifndef ADSMITH_SERVER_H
#define ADSMITH_SERVER_H

#include <stddef.h>

#include "adsmith/app.h"
#include "adsmith/err.h"

#define SRV_MAX_RELOAD_HOOKS 8

struct srv;

/**
 * Creates the server: binds every listen address (resolving port 0 to a real
 * port), loads the TLS certificate and key if configured, sets up libh2o.
 * Nothing is served until srv_run(). @p app is borrowed and must outlive the server.
 * @return 0, or ADS_ECONFIG (bad address, address in use, unreadable certificate)
 * with @p ret_diag saying which and why; ADS_ENOMEM.
 */
int srv_new(struct app *app, struct ads_diag *ret_diag, struct srv **ret_srv);

/**
 * Number of listen addresses, and the i-th one as bound ("127.0.0.1:43817"),
 * NULL past the end. The string belongs to @p s and lives until srv_free().
 */
size_t srv_listen_count(const struct srv *s);
const char *srv_listen_addr(const struct srv *s, size_t i);

/**
 * Registers @p fn to run (on the signal-handling thread) at each SIGHUP.
 * Returns 0 or ADS_EINVAL when SRV_MAX_RELOAD_HOOKS are taken. Call before srv_run().
 */
int srv_on_reload(struct srv *s, void (*fn)(void *arg), void *arg);

/**
 * Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, so that threads it
 * creates afterwards inherit the mask and the signals reach only srv_run()'s
 * sigwait(). Call first thing in the main thread, before creating any thread.
 */
void srv_block_signals(void);

/**
 * Starts the workers and blocks, handling signals, until a graceful shutdown
 * finishes. Must be called from the main thread. Returns 0 when every
 * connection closed in time, ADS_ESHUTTING_DOWN when the deadline cut some off.
 */
int srv_run(struct srv *s);

/** Frees the server. Accepts NULL. */
void srv_free(struct srv *s);

#endif
