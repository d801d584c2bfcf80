/* The fused engine's elementwise tail in float32, hand-written (grokmap.training.engines.ctail).
 *
 * Over one row tile of logits x (m rows of p), one row at a time while it is in cache:
 *     g = (softmax(x) - onehot(y)) / n,   written over x,
 * what the eager step otherwise computes with two passes of torch kernels (_softmax, then an add
 * of -onehot/n). The max and exp loops vectorize (AVX-512 here) through glibc's vector expf
 * (libmvec), declared below by hand: glibc declares it only under -ffast-math, which must not be
 * used, since gcc before 13 links a -ffast-math shared object with code that turns on
 * flush-to-zero for the whole process, changing every other float computation in it. */
#include <math.h>
#include <stdint.h>

__attribute__((simd("notinbranch"))) float expf(float);

void softmax_minus_onehot(float *x, const int64_t *y, int64_t m, int64_t p, float inv_n) {
    for (int64_t r = 0; r < m; r++) {
        float *row = x + r * p;
        float mx = row[0];
#pragma omp simd reduction(max : mx)
        for (int64_t j = 1; j < p; j++) mx = row[j] > mx ? row[j] : mx;
        float s = 0.f;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < p; j++) {
            float e = expf(row[j] - mx);
            row[j] = e;
            s += e;
        }
        float k = inv_n / s;
#pragma omp simd
        for (int64_t j = 0; j < p; j++) row[j] *= k;
        row[y[r]] -= inv_n;
    }
}
