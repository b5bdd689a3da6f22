#include "adsmith/hold.h"

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "adsmith/err.h"

/*
 * hold: epoch-based publication (contract in include/adsmith/hold.h).
 *
 * Readers announce themselves in a per-reader slot (its own cache line) and
 * never wait; a swap publishes the new object, then waits until no reader can
 * still hold the old one, then frees it.
 *
 * State: `current` (the object), `gen` (a counter bumped by every swap), and
 * per reader `seen`: 0 outside a critical section, else the value of gen the
 * reader read on entry.
 *
 * Reader:  g = load(gen, acquire); store(seen, g, release); fence(seq_cst);
 *          ix = load(current, acquire) ... store(seen, 0, release).
 * Swapper: old = exchange(current, new, seq_cst); g' = fetch_add(gen) + 1;
 *          fence(seq_cst); wait while some reader has 0 < seen < g'; free(old).
 *
 * Why the swapper may free `old` once no reader has 0 < seen < g':
 *  - A reader whose load of current could return `old` did that load before
 *    the exchange. Its store to `seen` precedes that load, separated by a
 *    seq_cst fence, and the swapper's exchange precedes its reads of `seen`,
 *    separated by its own seq_cst fence. With two such fences, either the
 *    swapper's read sees the reader's store or the reader's load sees the
 *    exchange (the store-buffering case that seq_cst fences forbid). So a
 *    reader still able to return `old` is visible to the swapper with its seen.
 *  - That reader read gen before the swapper's fetch_add (else, reading gen
 *    with acquire from the fetch_add, which follows the exchange, its later
 *    load of current would see the exchange), so its seen is below g' and
 *    the swapper waits for it.
 *  - A reader seen with seen >= g' entered after the increment and sees the
 *    new object (or a newer one); a reader seen at 0 is outside. In both cases
 *    its last use of `old`, if any, ended before a release store to `seen`
 *    (the exit's 0, or the next entry's g) that the swapper's acquire load
 *    read, so those reads happen before the free.
 * Each swap's g' is larger than every earlier one, so a reader that entered
 * for an older swap and is still inside also holds back a later swap: an
 * object is only freed when it is unreachable. Swaps are serialised by a
 * mutex (writers may block, readers never). */

struct hold_reader {
    alignas(64) atomic_uint_fast64_t seen;
};

struct hold {
    _Atomic(void *) current;
    atomic_uint_fast64_t gen;
    pthread_mutex_t swap_lock;
    void (*free_fn)(void *);
    uint32_t nreaders;
    struct hold_reader *readers;
};

int hold_new(uint32_t nreaders, void *initial, void (*free_fn)(void *), struct hold **ret)
{
    struct hold *h;
    void *mem;

    if (nreaders == 0 || nreaders > HOLD_MAX_READERS || free_fn == NULL)
        return ADS_EINVAL;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return ADS_ENOMEM;
    if (posix_memalign(&mem, 64, sizeof(struct hold_reader) * nreaders) != 0) {
        free(h);
        return ADS_ENOMEM;
    }
    h->readers = mem;
    for (uint32_t i = 0; i < nreaders; i++)
        atomic_init(&h->readers[i].seen, 0);
    h->nreaders = nreaders;
    h->free_fn = free_fn;
    atomic_init(&h->gen, 1);
    atomic_init(&h->current, initial);
    pthread_mutex_init(&h->swap_lock, NULL);
    *ret = h;
    return 0;
}

void hold_free(struct hold *h)
{
    void *cur;

    if (h == NULL)
        return;
    if ((cur = atomic_load_explicit(&h->current, memory_order_acquire)) != NULL)
        h->free_fn(cur);
    pthread_mutex_destroy(&h->swap_lock);
    free(h->readers);
    free(h);
}

void *hold_enter(struct hold *h, uint32_t reader)
{
    uint64_t g = atomic_load_explicit(&h->gen, memory_order_acquire);

    atomic_store_explicit(&h->readers[reader].seen, g, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load_explicit(&h->current, memory_order_acquire);
}

void hold_exit(struct hold *h, uint32_t reader)
{
    atomic_store_explicit(&h->readers[reader].seen, 0, memory_order_release);
}

void hold_swap(struct hold *h, void *obj)
{
    void *old;
    uint64_t g;

    pthread_mutex_lock(&h->swap_lock);
    old = atomic_exchange_explicit(&h->current, obj, memory_order_seq_cst);
    g = atomic_fetch_add_explicit(&h->gen, 1, memory_order_seq_cst) + 1;
    atomic_thread_fence(memory_order_seq_cst);
    for (uint32_t r = 0; r < h->nreaders; r++) {
        unsigned spins = 0;
        for (;;) {
            uint64_t s = atomic_load_explicit(&h->readers[r].seen, memory_order_acquire);
            if (s == 0 || s >= g)
                break;
            if (++spins < 64) {
                sched_yield();
            } else {
                struct timespec ts = {0, 50000};
                nanosleep(&ts, NULL);
            }
        }
    }
    pthread_mutex_unlock(&h->swap_lock);
    if (old != NULL)
        h->free_fn(old);
}
