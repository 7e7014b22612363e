/* Branch-free helpers the kernels call inside loops that must vectorise.
 *
 * Written as plain C ternaries, which gcc and clang turn into max/blend
 * instructions; the same selects written in Cython become if/else blocks that
 * stop the vectoriser.
 *
 * Exp for float and double that compilers can vectorise without
 * -ffast-math: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a Taylor
 * polynomial for exp(r), and 2^n built in the exponent bits. Accurate to about
 * 1 ulp over the clamped range; inputs below the range give the smallest normal
 * scale (about 1e-38 / 1e-308) instead of 0, which no caller relies on.
 * NaN propagates. */
#ifndef EMCORE_VECMATH_H
#define EMCORE_VECMATH_H
#include <stdint.h>
#include <string.h>

static inline float emc_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* t + 1.5 * 2^23 rounds t to an integer held in the low mantissa bits */
    float shifted = x * 1.44269504088896341f + 12582912.0f;
    float n = shifted - 12582912.0f;
    float r = x - n * 0.693145751953125f;          /* ln 2, high part (exact product) */
    r = r - n * 1.428606765330187045e-06f;         /* ln 2, low part */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (bits + 127) << 23;                     /* low bits hold n: exponent n + 127 */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline double emc_exp(double x) {
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    double shifted = x * 1.4426950408889634074 + 6755399441055744.0;  /* 1.5 * 2^52 */
    double n = shifted - 6755399441055744.0;
    double r = x - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;                 /* 1/13! ... */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (bits + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
/* Tile reductions in float64 over double rows: eight running partial sums (one
 * vector of lanes) added in a fixed order at the end, so the result never
 * depends on the build or the thread count. n must be a multiple of 8. Vector
 * extensions make the lanes explicit for gcc and clang; other compilers get the
 * same arithmetic in plain loops. */
static inline double emc_hsum(const double *lanes) {
    double s = 0;
    for (int l = 0; l < 8; l++) s += lanes[l];
    return s;
}

#if defined(__GNUC__) || defined(__clang__)
typedef double emc_d8 __attribute__((vector_size(8 * sizeof(double))));
static inline emc_d8 emc_load8(const double *p) {
    emc_d8 v;
    memcpy(&v, p, sizeof v);  /* no alignment assumed */
    return v;
}
static inline double emc_sum(const double *a, int n) {
    emc_d8 acc = {0};
    for (int t = 0; t < n; t += 8) acc += emc_load8(a + t);
    return emc_hsum((const double *) &acc);
}
static inline void emc_moments(const double *r, const double *x, double m, int n,
                               double *s1, double *s2) {
    emc_d8 a1 = {0}, a2 = {0};
    for (int t = 0; t < n; t += 8) {
        emc_d8 d = emc_load8(x + t) - m, rd = emc_load8(r + t) * d;
        a1 += rd;
        a2 += rd * d;
    }
    *s1 += emc_hsum((const double *) &a1);
    *s2 += emc_hsum((const double *) &a2);
}
static inline double emc_cross(const double *r, const double *xi, double mi,
                               const double *xj, double mj, int n) {
    emc_d8 acc = {0};
    for (int t = 0; t < n; t += 8)
        acc += emc_load8(r + t) * (emc_load8(xi + t) - mi) * (emc_load8(xj + t) - mj);
    return emc_hsum((const double *) &acc);
}
#else
static inline double emc_sum(const double *a, int n) {
    double acc[8] = {0};
    for (int t = 0; t < n; t += 8) for (int l = 0; l < 8; l++) acc[l] += a[t + l];
    return emc_hsum(acc);
}
static inline void emc_moments(const double *r, const double *x, double m, int n,
                               double *s1, double *s2) {
    double a1[8] = {0}, a2[8] = {0};
    for (int t = 0; t < n; t += 8)
        for (int l = 0; l < 8; l++) {
            double d = x[t + l] - m, rd = r[t + l] * d;
            a1[l] += rd;
            a2[l] += rd * d;
        }
    *s1 += emc_hsum(a1);
    *s2 += emc_hsum(a2);
}
static inline double emc_cross(const double *r, const double *xi, double mi,
                               const double *xj, double mj, int n) {
    double acc[8] = {0};
    for (int t = 0; t < n; t += 8)
        for (int l = 0; l < 8; l++) acc[l] += r[t + l] * (xi[t + l] - mi) * (xj[t + l] - mj);
    return emc_hsum(acc);
}
#endif

/* D = 3 (RGB, nearly every call): every statistic of one component in a single
 * pass over the tile, with ten 4-lane float64 accumulators (they fit in AVX2's
 * sixteen registers). stats gets += [sum r, sum r d_i (3), then d_i d_j: the
 * diagonal (3) or, when full, the upper triangle row by row (6)], d = x - m. */
#if defined(__GNUC__) || defined(__clang__)
typedef double emc_d4 __attribute__((vector_size(4 * sizeof(double))));
static inline emc_d4 emc_load4(const double *p) {
    emc_d4 v;
    memcpy(&v, p, sizeof v);
    return v;
}
#define EMC_HSUM4(v) (((v)[0] + (v)[1]) + ((v)[2] + (v)[3]))
static inline void emc_stats3(const double *r, const double *x0, const double *x1,
                              const double *x2, double m0, double m1, double m2, int n,
                              int full, double *stats) {
    emc_d4 an = {0}, a0 = {0}, a1 = {0}, a2 = {0};
    emc_d4 q00 = {0}, q11 = {0}, q22 = {0}, q01 = {0}, q02 = {0}, q12 = {0};
    for (int t = 0; t < n; t += 4) {
        emc_d4 rv = emc_load4(r + t);
        emc_d4 d0 = emc_load4(x0 + t) - m0, d1 = emc_load4(x1 + t) - m1,
               d2 = emc_load4(x2 + t) - m2;
        emc_d4 r0 = rv * d0, r1 = rv * d1, r2 = rv * d2;
        an += rv; a0 += r0; a1 += r1; a2 += r2;
        q00 += r0 * d0; q11 += r1 * d1; q22 += r2 * d2;
        if (full) { q01 += r0 * d1; q02 += r0 * d2; q12 += r1 * d2; }
    }
    stats[0] += EMC_HSUM4(an);
    stats[1] += EMC_HSUM4(a0); stats[2] += EMC_HSUM4(a1); stats[3] += EMC_HSUM4(a2);
    if (full) {
        stats[4] += EMC_HSUM4(q00); stats[5] += EMC_HSUM4(q01); stats[6] += EMC_HSUM4(q02);
        stats[7] += EMC_HSUM4(q11); stats[8] += EMC_HSUM4(q12); stats[9] += EMC_HSUM4(q22);
    } else {
        stats[4] += EMC_HSUM4(q00); stats[5] += EMC_HSUM4(q11); stats[6] += EMC_HSUM4(q22);
    }
}
#else
static inline void emc_stats3(const double *r, const double *x0, const double *x1,
                              const double *x2, double m0, double m1, double m2, int n,
                              int full, double *stats) {
    double acc[10][4] = {{0}};
    for (int t = 0; t < n; t += 4)
        for (int l = 0; l < 4; l++) {
            double rv = r[t + l], d0 = x0[t + l] - m0, d1 = x1[t + l] - m1,
                   d2 = x2[t + l] - m2;
            double r0 = rv * d0, r1 = rv * d1, r2 = rv * d2;
            acc[0][l] += rv; acc[1][l] += r0; acc[2][l] += r1; acc[3][l] += r2;
            acc[4][l] += r0 * d0; acc[5][l] += r1 * d1; acc[6][l] += r2 * d2;
            acc[7][l] += r0 * d1; acc[8][l] += r0 * d2; acc[9][l] += r1 * d2;
        }
    double s[10];
    for (int q = 0; q < 10; q++) s[q] = (acc[q][0] + acc[q][1]) + (acc[q][2] + acc[q][3]);
    for (int q = 0; q < 4; q++) stats[q] += s[q];
    if (full) {
        stats[4] += s[4]; stats[5] += s[7]; stats[6] += s[8];
        stats[7] += s[5]; stats[8] += s[9]; stats[9] += s[6];
    } else {
        stats[4] += s[4]; stats[5] += s[5]; stats[6] += s[6];
    }
}
#endif

/* exp(x), or exactly 0 below the double range: for densities that underflow. */
static inline double emc_exp_or_zero(double x) {
    double e = emc_exp(x);
    return x < -708.0 ? 0.0 : e;
}

static inline float emc_maxf(float a, float b) { return a > b ? a : b; }
static inline double emc_maxd(double a, double b) { return a > b ? a : b; }
static inline float emc_minf(float a, float b) { return a < b ? a : b; }
static inline double emc_mind(double a, double b) { return a < b ? a : b; }
static inline int emc_pick(int take_first, int first, int second) {
    return take_first ? first : second;
}
#endif
