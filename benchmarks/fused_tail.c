/* A hand-written fused tail for the fused S0 step (benchmark only, not part of the package):
 * over one row tile of logits x (m, p), in one pass per row, the softmax, minus the one-hot of
 * the label, scaled by 1/n: g = (softmax(x) - onehot(y)) / n, written over x. This is what the
 * eager step computes with two calls (torch's _softmax, then an add of -onehot/n).
 * Built by benchmarks/run.py with gcc -O3 -march=native -ffast-math -fopenmp-simd, so that the
 * max and exp loops vectorize (glibc's libmvec expf). */
#include <math.h>
#include <stdint.h>

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
