#ifndef TESSERA_AMX_MATMUL_H
#define TESSERA_AMX_MATMUL_H

/* 1 when this processor and kernel let the process use AMX tiles with bf16 (asks the
   kernel for the tile state once), else 0. */
int tsr_amx_available(void);

/* Row-major C[M,N] (+)= alpha · op(A)[M,K] · op(B)[K,N] on AMX, single-threaded. Each
   float is split into `parts` bf16 numbers (2 or 3) whose sum carries 16 or 24 bits of its
   significand; the products of the leading terms (3 of 4, or 6 of 9) are accumulated in
   float. alpha scales A as it is packed (exact for powers of two, one float rounding
   otherwise). Returns 0, or -1 when scratch memory could not be had (nothing written). */
int tsr_amx_sgemm(int parts, int transA, int transB, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb,
                  int accumulate, float *C, int ldc);

#endif
