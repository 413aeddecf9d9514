/* The machine's read rate, one and two threads, best of 5, over 512 MB of floats (memory) or
   the size given in MB (a size the last-level cache holds measures the cache): what a
   decoding step that streams its weights can reach. Build and run:
   gcc -O2 -mavx2 -pthread scripts/memory_read_rate.c -o /tmp/memory_read_rate && /tmp/memory_read_rate [MB] */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static long N = 128L << 20;  /* floats: 512 MB, or argv[1] MB */
static float *buf; static int threads;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void *reader(void *arg) {
  long id = (long)arg, per = N / threads; const float *p = buf + id * per;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (long i = 0; i < per; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i)); a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16)); a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  float v[8]; _mm256_storeu_ps(v, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return (void *)(long)(v[0] > 1e30f);
}
int main(int argc, char **argv) {
  if (argc > 1) N = atol(argv[1]) * (1L << 18);
  buf = aligned_alloc(64, N * 4); for (long i = 0; i < N; i++) buf[i] = 1.0f;
  for (threads = 1; threads <= 2; threads++) {
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
      pthread_t t[2]; double t0 = now();
      for (long i = 0; i < threads; i++) pthread_create(&t[i], 0, reader, (void *)i);
      for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
      double dt = now() - t0; if (dt < best) best = dt;
    }
    printf("read %d thread(s): %.1f GB/s\n", threads, N * 4.0 / best / 1e9);
  }
  return 0;
}
