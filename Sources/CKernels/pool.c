// A small pool of worker threads for decoding, whose parallel regions are a few microseconds long and come
// ~200 times per token: waking threads through the OS for each (libdispatch) costs more than the work. Workers
// spin on a generation counter for a while after each region, then sleep on a condition variable, so an idle
// pool burns no core. One region at a time (a mutex serialises callers); the caller runs part 0.
#include "kernels.h"
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct pk_pool {
    int threads;                       // including the caller
    pthread_t *workers;
    pthread_mutex_t run_lock;          // one region at a time
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    atomic_uint generation;            // bumped once per region
    atomic_int sleepers;
    atomic_int done;                   // workers finished with the current region
    pk_pool_task task;
    void *context;
    int parts;
};

typedef struct { pk_pool *pool; int index; } worker_arg;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// How long a worker spins for the next region before it sleeps: longer than the serial gaps of a decoding step
// (norms, RoPE, a residual add), far shorter than anything a person would notice as a busy core.
#define SPIN_NS 200000u
// How long the caller spins for the workers of a region before it yields its core between checks.
#define YIELD_NS 20000u

static void *worker_main(void *raw) {
    worker_arg arg = *(worker_arg *)raw;
    free(raw);
    pk_pool *p = arg.pool;
    unsigned seen = 0;  // the generation at creation: a region may start before this thread first runs
    for (;;) {
        unsigned g = atomic_load(&p->generation);
        if (g == seen) {
            uint64_t start = now_ns();
            int spins = 0;
            while ((g = atomic_load(&p->generation)) == seen) {
                _mm_pause();
                if (++spins % 256 == 0 && now_ns() - start > SPIN_NS) {
                    pthread_mutex_lock(&p->sleep_lock);
                    atomic_fetch_add(&p->sleepers, 1);
                    while ((g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->wake, &p->sleep_lock);
                    atomic_fetch_sub(&p->sleepers, 1);
                    pthread_mutex_unlock(&p->sleep_lock);
                    break;
                }
            }
        }
        seen = g;
        if (arg.index < p->parts) p->task(p->context, arg.index);
        atomic_fetch_add(&p->done, 1);
    }
}

pk_pool *pk_pool_create(int threads) {
    if (threads < 1) threads = 1;
    pk_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads;
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->sleep_lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->done, 0);
    p->workers = calloc((size_t)threads, sizeof(pthread_t));
    for (int i = 1; i < threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        arg->pool = p;
        arg->index = i;
        pthread_create(&p->workers[i], NULL, worker_main, arg);
    }
    return p;
}

int pk_pool_threads(const pk_pool *p) { return p->threads; }

void pk_pool_run(pk_pool *p, int parts, pk_pool_task task, void *context) {
    if (parts <= 1 || p->threads == 1) {
        for (int i = 0; i < parts; i++) task(context, i);
        return;
    }
    if (parts > p->threads) parts = p->threads;
    pthread_mutex_lock(&p->run_lock);
    p->task = task;
    p->context = context;
    p->parts = parts;
    atomic_store(&p->done, 0);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->sleep_lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->sleep_lock);
    }
    task(context, 0);
    // The workers finish within microseconds when they have cores; when they do not (a loaded machine, more runnable
    // threads than cores), spinning would only hold a core a worker needs: after YIELD_NS the caller yields it.
    uint64_t start = 0;
    for (int spins = 1; atomic_load(&p->done) < p->threads - 1; spins++) {
        _mm_pause();
        if (spins % 64 == 0) {
            if (!start) start = now_ns();
            else if (now_ns() - start > YIELD_NS) sched_yield();
        }
    }
    pthread_mutex_unlock(&p->run_lock);
}

// Chunks handed out one at a time from a shared counter: threads that get slower memory or start later simply
// take fewer, so no thread waits long for another at the end of a region.
typedef struct {
    pk_pool_task task;
    void *context;
    int chunks;
    atomic_int next;
} chunk_run;

static void run_chunks(void *raw, int part) {
    (void)part;
    chunk_run *r = raw;
    int c;
    while ((c = atomic_fetch_add(&r->next, 1)) < r->chunks) r->task(r->context, c);
}

void pk_pool_run_chunks(pk_pool *p, int chunks, pk_pool_task task, void *context) {
    if (chunks <= 0) return;
    chunk_run r = { .task = task, .context = context, .chunks = chunks };
    atomic_init(&r.next, 0);
    pk_pool_run(p, chunks < p->threads ? chunks : p->threads, run_chunks, &r);
}
