/*
 * hold: publishes one immutable object (the compiled campaign index, the
 * ranking model) to many reader threads and replaces it without ever making a
 * reader wait.
 *
 * Each reader thread has a fixed reader number (0 .. nreaders-1) that no other
 * thread uses at the same time (a server worker's index). It brackets every
 * use with hold_enter() / hold_exit(); what hold_enter() returned stays valid
 * until the matching exit. hold_swap() publishes a new object at once and frees
 * the previous one once no reader can still hold it (epoch-based reclamation:
 * service/core/hold.c gives the argument).
 */
#ifndef ADSMITH_HOLD_H
#define ADSMITH_HOLD_H

#include <stdint.h>

#define HOLD_MAX_READERS 1024

struct hold;

/**
 * A holder for @p nreaders reader threads (1..HOLD_MAX_READERS). @p initial
 * (may be NULL) becomes the current object; the holder owns it and frees
 * every object it owns with @p free_fn (never called with NULL).
 * @return 0, ADS_EINVAL or ADS_ENOMEM (then @p initial is still the caller's).
 */
int hold_new(uint32_t nreaders, void *initial, void (*free_fn)(void *), struct hold **ret);

/** Frees the holder and its current object. No reader may be inside. Accepts NULL. */
void hold_free(struct hold *h);

/**
 * Enters reader @p reader's critical section and returns the current object
 * (NULL if none). Wait-free: a few atomic operations. Not nestable for one
 * reader number.
 */
void *hold_enter(struct hold *h, uint32_t reader);

void hold_exit(struct hold *h, uint32_t reader);

/**
 * Publishes @p obj (the holder owns it; NULL allowed) and frees the previous
 * object once every reader that could have obtained it has exited. Blocks
 * the caller (sleeping briefly) until then; concurrent swaps are serialised.
 * Must not be called by a thread inside a critical section of @p h.
 */
void hold_swap(struct hold *h, void *obj);

#endif
