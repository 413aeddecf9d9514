#ifndef TESSERA_WORKER_POOL_H
#define TESSERA_WORKER_POOL_H

/* A pool of helper threads that wait for work by spinning briefly before they sleep.
   Decoding one token at batch 1 runs 16 parallel regions of tens of microseconds (q/k/v,
   attention, output projection and experts in each of the reference shape's 4 layers).
   Two-way regions of 20 µs of work, 5,000 in a row, measured on a 2-core Xeon: 59-62 µs
   each through DispatchQueue.concurrentPerform (waking a worker every time), 21.5-22.6 µs
   each through this pool. */

typedef void (*tsr_pool_body)(void *context, long index);

/* Runs body(context, i) for every i in 0..<n, on the calling thread and the pool's
   helpers (workers − 1 of them, started on first use), and returns 0 once all have run.
   Returns −1 without running anything when the pool cannot take the work: it is running
   another caller's work (including the caller's own, from inside a body), or it has no
   helpers. The caller then runs the work some other way. */
int tsr_pool_run(long n, tsr_pool_body body, void *context, int workers);

#endif
