#ifndef TESSERA_VECTOR_MATH_H
#define TESSERA_VECTOR_MATH_H

/* a[r, i] = silu(gu[r, i]) · gu[r, W + i] for `rows` rows of gu = [gate | up] (2W wide). */
void tsr_swiglu_forward(const float *gu, float *a, long rows, long width);

/* Given da [rows, W], writes dgu [rows, 2W]: da · up · silu'(gate) in the first half of
   each row, da · silu(gate) in the second. */
void tsr_swiglu_backward(const float *gu, const float *da, float *dgu, long rows, long width);

#endif
