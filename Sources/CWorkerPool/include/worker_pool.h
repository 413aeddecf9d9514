#ifndef TESSERA_WORKER_POOL_H
#define TESSERA_WORKER_POOL_H

/* A pool of helper threads that wait for work by spinning briefly before they sleep.
   Decoding one token runs some twenty short parallel regions (tens of microseconds each);
   waking a sleeping Dispatch worker for each measured about 40 µs on this project's
   machines, as long as the work itself. Helpers that are still spinning from the last
   region start the next within a microsecond. */

typedef void (*tsr_pool_body)(void *context, long index);

/* Runs body(context, i) for every i in 0..<n, on the calling thread and the pool's
   helpers (workers − 1 of them, started on first use), and returns 0 once all have run.
   Returns −1 without running anything when the pool cannot take the work: it is running
   another caller's work (including the caller's own, from inside a body), or it has no
   helpers. The caller then runs the work some other way. */
int tsr_pool_run(long n, tsr_pool_body body, void *context, int workers);

#endif
