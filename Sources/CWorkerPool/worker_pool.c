/* One job at a time: the caller that takes `submit` publishes its job, bumps
   `generation`, runs items itself and waits until every item has run and no helper still
   holds the job (`active`), so that the job, on the caller's stack, outlives every use.
   Sequentially consistent atomics throughout: a helper announces itself (active + 1)
   before it reads `current`, and the caller clears `current` before it waits for `active`
   to reach zero, so a helper either sees the job while the caller waits for it or sees no
   job at all. Sleepers: the caller bumps `generation` before it reads `sleepers`, a helper
   counts itself a sleeper (under the lock) before it reads `generation`, so one of the two
   sees the other. */
#define _GNU_SOURCE
#include "worker_pool.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define relax() _mm_pause()
#else
#define relax() ((void)0)
#endif

typedef struct {
    tsr_pool_body body;
    void *context;
    long n;
    _Atomic long next;
    _Atomic long remaining;
} job;

static pthread_mutex_t submit = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(job *) current;
static _Atomic unsigned long generation;
static _Atomic long active;
static _Atomic int sleepers;
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int helpers;  /* written under `submit` */

/* How long an idle helper spins before it sleeps: longer than the serial gaps between a
   decoding step's parallel regions, short enough that an idle process soon uses no CPU. */
#define SPIN_NANOSECONDS 200000L

static long elapsed_ns(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000000000L + (now.tv_nsec - since->tv_nsec);
}

static void run_items(job *j) {
    for (;;) {
        long i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) return;
        j->body(j->context, i);
        atomic_fetch_sub(&j->remaining, 1);
    }
}

static void *helper(void *unused) {
    (void)unused;
    unsigned long seen = atomic_load(&generation);
    for (;;) {
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (long spins = 0; atomic_load(&generation) == seen; spins++) {
            if ((spins & 255) != 255 || elapsed_ns(&start) < SPIN_NANOSECONDS) { relax(); continue; }
            pthread_mutex_lock(&sleep_lock);
            atomic_fetch_add(&sleepers, 1);
            while (atomic_load(&generation) == seen) pthread_cond_wait(&wake, &sleep_lock);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&sleep_lock);
        }
        seen = atomic_load(&generation);
        atomic_fetch_add(&active, 1);
        job *j = atomic_load(&current);
        if (j) run_items(j);
        atomic_fetch_sub(&active, 1);
    }
    return NULL;
}

int tsr_pool_run(long n, tsr_pool_body body, void *context, int workers) {
    if (n <= 0) return 0;
    if (workers < 2 || pthread_mutex_trylock(&submit) != 0) return -1;
    while (helpers < workers - 1) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, helper, NULL);
        pthread_attr_destroy(&attr);
        if (failed) break;
        helpers++;
    }
    if (helpers == 0) {
        pthread_mutex_unlock(&submit);
        return -1;
    }
    job j = {.body = body, .context = context, .n = n};
    atomic_store(&j.next, 0);
    atomic_store(&j.remaining, n);
    atomic_store(&current, &j);
    atomic_fetch_add(&generation, 1);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    run_items(&j);
    while (atomic_load(&j.remaining) > 0) relax();
    atomic_store(&current, (job *)NULL);
    while (atomic_load(&active) > 0) relax();
    pthread_mutex_unlock(&submit);
    return 0;
}
