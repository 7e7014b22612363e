/* Branch-free helpers the kernels call inside loops that must vectorise.
 *
 * Written as plain C ternaries, which gcc and clang turn into max/blend
 * instructions; the same selects written in Cython become if/else blocks that
 * stop the vectoriser.
 *
 * Base-2 exponentials for float and double that compilers can vectorise
 * without -ffast-math. The kernels keep log-probabilities in log2 units (the
 * factor is folded into the parameters, see _params.py), so that the range
 * reduction x = n + r, |r| <= 1/2, is exact: 2^r by a polynomial, 2^n built
 * in the exponent bits. The float polynomial is a degree-6 near-minimax fit
 * (under 1 ulp on [-1/2, 1/2]); the double one is the degree-11 Chebyshev fit
 * of 2^r on [-1/2, 1/2] (mpmath's chebyfit at 50 digits; relative error 2e-17,
 * a tenth of an ulp, with its coefficients rounded to double): two fused
 * multiply-adds fewer than a degree-13 Taylor series. Both give exactly 1 at
 * x = 0. NaN propagates. The _neg forms, for x <= 0 (a
 * log-probability minus the largest one), clamp only from below: one select
 * fewer in the hot loop; below the smallest normal scale they return about
 * 1e-38 / 1e-308 rather than 0, which no caller relies on. */
#ifndef EMCORE_VECMATH_H
#define EMCORE_VECMATH_H
#include <stdint.h>
#include <math.h>
#include <string.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

#define EMC_LN2 0.6931471805599453

/* Set bits of a 64-bit word: one instruction where the build has it (SSE4.2 and
 * up: the AVX2 and AVX-512 builds); else counted inline, branch-free (faster than
 * the call gcc makes to its library for __builtin_popcountll). */
static inline int emc_popcount64(uint64_t x) {
#if defined(__POPCNT__)
    return __builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int) ((x * 0x0101010101010101ULL) >> 56);
#endif
}

/* The index of the lowest set bit of x != 0. */
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static __forceinline int emc_lowest_bit64(uint64_t x) {
    unsigned long i;
    _BitScanForward64(&i, x);
    return (int) i;
}
#else
static inline int emc_lowest_bit64(uint64_t x) { return __builtin_ctzll(x); }
#endif

static inline float emc_exp2f_neg(float x) {
    x = x < -125.0f ? -125.0f : x;   /* 2^-125.5 and up: no denormal results */
    /* x + 1.5 * 2^23 rounds x to an integer n held in the low mantissa bits;
     * the extra 127 is the exponent bias of 2^n */
    float shifted = x + 12583039.0f;
    float r = x - (shifted - 12583039.0f);         /* exact */
    float p = 1.535336196e-04f;
    p = p * r + 1.339887502e-03f;
    p = p * r + 9.618436918e-03f;
    p = p * r + 5.550332367e-02f;
    p = p * r + 2.402264774e-01f;
    p = p * r + 6.931471825e-01f;
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)  /* each step one fused multiply-add */
    p = p * r + 1.0f;
#else  /* two roundings per step: the last step in double, or the result is 1.15 ulp off
        * (this costs the portable build's EM 15%) */
    p = (float) ((double) p * r + 1.0);
#endif
    uint32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits <<= 23;                                   /* low bits hold n + 127 */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline double emc_exp2_core(double x) {  /* -1022 <= x <= 1024 */
    double shifted = x + 6755399441056767.0;       /* 1.5 * 2^52 + 1023 */
    double r = x - (shifted - 6755399441056767.0);
    double p = 4.4558179083360645e-10;             /* see the header comment */
    p = p * r + 7.074194297288521e-09;
    p = p * r + 1.0178057087733941e-07;
    p = p * r + 1.3215432535912375e-06;
    p = p * r + 1.5252733841556773e-05;
    p = p * r + 0.00015403530463724353;
    p = p * r + 0.001333355814640647;
    p = p * r + 0.009618129107587256;
    p = p * r + 0.055504108664821625;
    p = p * r + 0.24022650695910158;
    p = p * r + 0.6931471805599453;
    p = p * r + 1.0;
    uint64_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits <<= 52;                                   /* n = 1024 gives inf */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline double emc_exp2_neg(double x) {
    return emc_exp2_core(x < -1021.0 ? -1021.0 : x);
}

/* 2^x, exactly 0 below the normal range and inf from 1024 on: for densities.
 * Above 1023 the rounded exponent can reach 1024 (an infinite scale) while 2^x is
 * still finite, so 2^(x - 1) is evaluated and doubled there (two selects, one
 * polynomial; found by the direct accuracy test in tests/test_kernels.py). */
static inline double emc_exp2_or_zero(double x) {
    int high = x > 1023.0;
    double t = high ? x - 1.0 : x;
    double e = emc_exp2_core(t < -1022.0 ? -1022.0 : (t > 1024.0 ? 1024.0 : t));
    e = high ? 2.0 * e : e;
    return x < -1022.0 ? 0.0 : e;
}

/* A tile's sum in float64: eight running partial sums (one vector of lanes)
 * added in a fixed order at the end, so the result never depends on the build
 * or the thread count. n must be a multiple of 8. */
static inline double emc_hsum(const double *lanes) {
    double s = 0;
    for (int l = 0; l < 8; l++) s += lanes[l];
    return s;
}

#if defined(__GNUC__) || defined(__clang__)
typedef double emc_d8 __attribute__((vector_size(8 * sizeof(double))));
typedef double emc_d8u __attribute__((vector_size(8 * sizeof(double)), aligned(8), may_alias));
/* Vector loads and stores are macros, not functions: a function returning or
 * taking a 32- or 64-byte vector has an ABI that depends on -mavx / -mavx512f
 * (gcc's -Wpsabi), and these are compiled both with and without AVX2. */
#define emc_load8(p) (*(const emc_d8u *) (p))  /* no alignment assumed */
static inline double emc_sum(const double *a, int n) {
    emc_d8 acc = {0};
    for (int t = 0; t < n; t += 8) acc += emc_load8(a + t);
    return emc_hsum((const double *) &acc);
}
#else
static inline double emc_sum(const double *a, int n) {
    double acc[8] = {0};
    for (int t = 0; t < n; t += 8) for (int l = 0; l < 8; l++) acc[l] += a[t + l];
    return emc_hsum(acc);
}
#endif

/* The EM pass's M-step sums (_em.pyx). For one component with mean mu the
 * statistics are, with d = x - mu (centred on mu, so a component sitting on
 * one repeated colour gets exact zeros) and r = responsibility x weight:
 *   [sum r,  sum r d_i (D),  sum r d_i d_j: i == j ('diag', D values) or the
 *    upper triangle row by row ('full', D (D + 1) / 2 values)].
 * Every product and sum is float64. Each statistic is kept as EMC_LANES lane
 * sums (one vector register: 8 in the AVX-512 build, 4 in the others),
 * acc[EMC_LANES q + l], carried from the first tile of a block to its last and
 * added up by emc_fold_lanes once per block: the order of every addition is
 * fixed by the build's lane count and the tile layout alone. n, the tile length,
 * is a multiple of 8. */
#ifdef __AVX512F__
#define EMC_LANES 8
#else
#define EMC_LANES 4
#endif
#if defined(__GNUC__) || defined(__clang__)
typedef double emc_dl __attribute__((vector_size(EMC_LANES * sizeof(double))));
/* unaligned, aliasing-safe views for loads and stores */
typedef double emc_dlu __attribute__((vector_size(EMC_LANES * sizeof(double)), aligned(8),
                                      may_alias));
typedef float emc_flu __attribute__((vector_size(EMC_LANES * sizeof(float)), aligned(4),
                                     may_alias));
/* macros for the -Wpsabi reason given at emc_load8 */
#define emc_loadl(p) (*(const emc_dlu *) (p))
#define emc_storel(p, v) (*(emc_dlu *) (p) = (v))
/* gcc splits the generic conversion into halves */
#if defined(__AVX512F__)
#define emc_widenl(p) ((emc_dl) _mm512_cvtps_pd(_mm256_loadu_ps(p)))
#elif defined(__AVX__)
#define emc_widenl(p) ((emc_dl) _mm256_cvtps_pd(_mm_loadu_ps(p)))
#else
#define emc_widenl(p) __builtin_convertvector(*(const emc_flu *) (p), emc_dl)
#endif
static inline void emc_lanes_sum(const double *r, int n, double *acc) {
    emc_dl a = emc_loadl(acc);
    for (int t = 0; t < n; t += EMC_LANES) a += emc_loadl(r + t);
    emc_storel(acc, a);
}
static inline void emc_lanes_moments(const double *r, const double *x, double m, int n,
                                     double *acc1, double *acc2) {
    emc_dl a1 = emc_loadl(acc1), a2 = emc_loadl(acc2);
    for (int t = 0; t < n; t += EMC_LANES) {
        emc_dl d = emc_loadl(x + t) - m, rd = emc_loadl(r + t) * d;
        a1 += rd;
        a2 += rd * d;
    }
    emc_storel(acc1, a1);
    emc_storel(acc2, a2);
}
static inline void emc_lanes_cross(const double *r, const double *xi, double mi,
                                   const double *xj, double mj, int n, double *acc) {
    emc_dl a = emc_loadl(acc);
    for (int t = 0; t < n; t += EMC_LANES)
        a += emc_loadl(r + t) * (emc_loadl(xi + t) - mi) * (emc_loadl(xj + t) - mj);
    emc_storel(acc, a);
}
/* statistic q's lanes in acc */
#define EMC_GET(q) emc_loadl(acc + (q) * EMC_LANES)
#define EMC_PUT(q, v) emc_storel(acc + (q) * EMC_LANES, v)
/* D = 3 (RGB, nearly every call): all the sums of one component in one pass
 * over the tile, r = e * scale formed on the fly, every accumulator a named
 * register (an array would live in memory). It works with d' = m - x = -d,
 * so that the tile operand comes straight from memory: the first moments are
 * subtracted, the products of two d' are those of two d. */
#define EMC_RGB_PROLOGUE(ETYPE, LOAD_E)                                                 \
    emc_dl an = EMC_GET(0), a0 = EMC_GET(1), a1 = EMC_GET(2), a2 = EMC_GET(3);          \
    for (int t = 0; t < n; t += EMC_LANES) {                                            \
        emc_dl rv = LOAD_E(e + t) * emc_loadl(scale + t);                               \
        emc_dl d0 = m0 - emc_loadl(x0 + t), d1 = m1 - emc_loadl(x1 + t),                \
               d2 = m2 - emc_loadl(x2 + t);                                             \
        emc_dl r0 = rv * d0, r1 = rv * d1, r2 = rv * d2;                                \
        an += rv; a0 -= r0; a1 -= r1; a2 -= r2;
#define EMC_RGB_EPILOGUE                                                                \
    EMC_PUT(0, an); EMC_PUT(1, a0); EMC_PUT(2, a1); EMC_PUT(3, a2);
#define EMC_DEFINE_RGB_STATS(SUFFIX, ETYPE, LOAD_E)                                     \
static inline void emc_rgb_diag##SUFFIX(const ETYPE *e, const double *scale,            \
        const double *x0, const double *x1, const double *x2, double m0, double m1,     \
        double m2, int n, double *acc) {                                                \
    emc_dl q0 = EMC_GET(4), q1 = EMC_GET(5), q2 = EMC_GET(6);                           \
    EMC_RGB_PROLOGUE(ETYPE, LOAD_E)                                                     \
        q0 += r0 * d0; q1 += r1 * d1; q2 += r2 * d2;                                    \
    }                                                                                   \
    EMC_RGB_EPILOGUE                                                                    \
    EMC_PUT(4, q0); EMC_PUT(5, q1); EMC_PUT(6, q2);                                     \
}                                                                                       \
static inline void emc_rgb_full##SUFFIX(const ETYPE *e, const double *scale,            \
        const double *x0, const double *x1, const double *x2, double m0, double m1,     \
        double m2, int n, double *acc) {                                                \
    emc_dl q00 = EMC_GET(4), q01 = EMC_GET(5), q02 = EMC_GET(6),                        \
           q11 = EMC_GET(7), q12 = EMC_GET(8), q22 = EMC_GET(9);                        \
    EMC_RGB_PROLOGUE(ETYPE, LOAD_E)                                                     \
        q00 += r0 * d0; q01 += r0 * d1; q02 += r0 * d2;                                 \
        q11 += r1 * d1; q12 += r1 * d2; q22 += r2 * d2;                                 \
    }                                                                                   \
    EMC_RGB_EPILOGUE                                                                    \
    EMC_PUT(4, q00); EMC_PUT(5, q01); EMC_PUT(6, q02);                                  \
    EMC_PUT(7, q11); EMC_PUT(8, q12); EMC_PUT(9, q22);                                  \
}
EMC_DEFINE_RGB_STATS(f, float, emc_widenl)
EMC_DEFINE_RGB_STATS(d, double, emc_loadl)
/* D = 2, the same arithmetic (diag: n, r d0, r d1, r d0 d0, r d1 d1; full: n, r d0,
 * r d1, r d0 d0, r d0 d1, r d1 d1) */
#define EMC_DEFINE_XY_STATS(SUFFIX, ETYPE, LOAD_E)                                      \
static inline void emc_xy_sums##SUFFIX(const ETYPE *e, const double *scale,             \
        const double *x0, const double *x1, double m0, double m1, int n, int full,      \
        double *acc) {                                                                  \
    emc_dl an = EMC_GET(0), a0 = EMC_GET(1), a1 = EMC_GET(2), q00 = EMC_GET(3);         \
    emc_dl q01 = EMC_GET(4), q11 = an;                                                  \
    if (full) q11 = EMC_GET(5);                                                         \
    for (int t = 0; t < n; t += EMC_LANES) {                                            \
        emc_dl rv = LOAD_E(e + t) * emc_loadl(scale + t);                               \
        emc_dl d0 = m0 - emc_loadl(x0 + t), d1 = m1 - emc_loadl(x1 + t);                \
        emc_dl r0 = rv * d0, r1 = rv * d1;                                              \
        an += rv; a0 -= r0; a1 -= r1;                                                   \
        q00 += r0 * d0;                                                                 \
        if (full) { q01 += r0 * d1; q11 += r1 * d1; } else { q01 += r1 * d1; }          \
    }                                                                                   \
    EMC_PUT(0, an); EMC_PUT(1, a0); EMC_PUT(2, a1); EMC_PUT(3, q00); EMC_PUT(4, q01);   \
    if (full) EMC_PUT(5, q11);                                                          \
}
EMC_DEFINE_XY_STATS(f, float, emc_widenl)
EMC_DEFINE_XY_STATS(d, double, emc_loadl)
#undef EMC_DEFINE_XY_STATS
#undef EMC_DEFINE_RGB_STATS
#undef EMC_RGB_PROLOGUE
#undef EMC_RGB_EPILOGUE
#undef EMC_GET
#undef EMC_PUT
#else  /* the same arithmetic, lane by lane */
static inline void emc_lanes_sum(const double *r, int n, double *acc) {
    for (int t = 0; t < n; t += EMC_LANES)
        for (int l = 0; l < EMC_LANES; l++) acc[l] += r[t + l];
}
static inline void emc_lanes_moments(const double *r, const double *x, double m, int n,
                                     double *acc1, double *acc2) {
    for (int t = 0; t < n; t += EMC_LANES)
        for (int l = 0; l < EMC_LANES; l++) {
            double d = x[t + l] - m, rd = r[t + l] * d;
            acc1[l] += rd;
            acc2[l] += rd * d;
        }
}
static inline void emc_lanes_cross(const double *r, const double *xi, double mi,
                                   const double *xj, double mj, int n, double *acc) {
    for (int t = 0; t < n; t += EMC_LANES)
        for (int l = 0; l < EMC_LANES; l++)
            acc[l] += r[t + l] * (xi[t + l] - mi) * (xj[t + l] - mj);
}
#define EMC_DEFINE_RGB_STATS(SUFFIX, ETYPE)                                             \
static inline void emc_rgb_sums##SUFFIX(const ETYPE *e, const double *scale,            \
        const double *x0, const double *x1, const double *x2, double m0, double m1,     \
        double m2, int n, int full, double *acc) {                                      \
    /* acc rows: n, r d0..d2, then r d_i d_j for i <= j ('full') or i == j */           \
    for (int t = 0; t < n; t += EMC_LANES)                                              \
        for (int l = 0; l < EMC_LANES; l++) {                                           \
            double rv = (double) e[t + l] * scale[t + l];                               \
            double d[3] = {x0[t + l] - m0, x1[t + l] - m1, x2[t + l] - m2};             \
            acc[l] += rv;                                                               \
            for (int i = 0, q = 4; i < 3; i++) {                                        \
                double rd = rv * d[i];                                                  \
                acc[EMC_LANES * (1 + i) + l] += rd;                                     \
                for (int j = i; j < (full ? 3 : i + 1); j++, q++)                       \
                    acc[EMC_LANES * q + l] += rd * d[j];                                \
            }                                                                           \
        }                                                                               \
}                                                                                       \
static inline void emc_rgb_diag##SUFFIX(const ETYPE *e, const double *scale,            \
        const double *x0, const double *x1, const double *x2, double m0, double m1,     \
        double m2, int n, double *acc) {                                                \
    emc_rgb_sums##SUFFIX(e, scale, x0, x1, x2, m0, m1, m2, n, 0, acc);                  \
}                                                                                       \
static inline void emc_rgb_full##SUFFIX(const ETYPE *e, const double *scale,            \
        const double *x0, const double *x1, const double *x2, double m0, double m1,     \
        double m2, int n, double *acc) {                                                \
    emc_rgb_sums##SUFFIX(e, scale, x0, x1, x2, m0, m1, m2, n, 1, acc);                  \
}
EMC_DEFINE_RGB_STATS(f, float)
EMC_DEFINE_RGB_STATS(d, double)
#undef EMC_DEFINE_RGB_STATS
#define EMC_DEFINE_XY_STATS(SUFFIX, ETYPE)                                              \
static inline void emc_xy_sums##SUFFIX(const ETYPE *e, const double *scale,             \
        const double *x0, const double *x1, double m0, double m1, int n, int full,      \
        double *acc) {                                                                  \
    for (int t = 0; t < n; t += EMC_LANES)                                              \
        for (int l = 0; l < EMC_LANES; l++) {                                           \
            double rv = (double) e[t + l] * scale[t + l];                               \
            double d0 = x0[t + l] - m0, d1 = x1[t + l] - m1, r0 = rv * d0, r1 = rv * d1;\
            acc[l] += rv;                                                               \
            acc[EMC_LANES + l] += r0;                                                   \
            acc[2 * EMC_LANES + l] += r1;                                               \
            acc[3 * EMC_LANES + l] += r0 * d0;                                          \
            if (full) {                                                                 \
                acc[4 * EMC_LANES + l] += r0 * d1;                                      \
                acc[5 * EMC_LANES + l] += r1 * d1;                                      \
            } else {                                                                    \
                acc[4 * EMC_LANES + l] += r1 * d1;                                      \
            }                                                                           \
        }                                                                               \
}
EMC_DEFINE_XY_STATS(f, float)
EMC_DEFINE_XY_STATS(d, double)
#undef EMC_DEFINE_XY_STATS
#endif

/* stats[q] = the sum of statistic q's lanes, pairwise: (l0 + l1) + (l2 + l3), and
 * with eight lanes that plus (l4 + l5) + (l6 + l7). */
static inline void emc_fold_lanes(const double *acc, int n_stats, double *stats) {
    for (int q = 0; q < n_stats; q++) {
        const double *l = acc + EMC_LANES * q;
        double s = (l[0] + l[1]) + (l[2] + l[3]);
#if EMC_LANES == 8
        s += (l[4] + l[5]) + (l[6] + l[7]);
#endif
        stats[q] = s;
    }
}

/* log(x) for double that compilers can vectorise: x = 2^e m with m in
 * [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172,
 * by its odd series to s^21 (truncation below 1e-17 relative). Accurate to a
 * few ulp for positive normal x; 0 gives -inf. Used once per sample, on
 * sum_k exp(lp_k - max), which lies in [1, K] or is 0. */
static inline double emc_log(double x) {
    /* 32-bit exponent arithmetic on the high word: AVX2 has no 64-bit
     * arithmetic shift or int64 -> double conversion */
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int32_t e = ((int32_t) (bits >> 32) - 0x3fe6a09e) >> 20;  /* high word of sqrt(1/2) */
    uint64_t mbits = bits - ((uint64_t) (int64_t) e << 52);
    double m;
    memcpy(&m, &mbits, sizeof m);
    double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double p = 1.0 / 21;
    p = p * s2 + 1.0 / 19;
    p = p * s2 + 1.0 / 17;
    p = p * s2 + 1.0 / 15;
    p = p * s2 + 1.0 / 13;
    p = p * s2 + 1.0 / 11;
    p = p * s2 + 1.0 / 9;
    p = p * s2 + 1.0 / 7;
    p = p * s2 + 1.0 / 5;
    p = p * s2 + 1.0 / 3;
    double de = (double) e;
    /* ln 2 split so that de * high part is exact */
    double r = de * 6.93147180369123816490e-01 + (2.0 * s + (2.0 * s * s2 * p
               + de * 1.90821492927058770002e-10));
    return x == 0.0 ? -HUGE_VAL : r;
}

/* ln sum_k 2^lp_k of one sample, from its log2-probabilities' largest =
 * max_k lp_k and total = sum_k 2^(lp_k - largest); -inf when largest is
 * `floor` (no component explains the sample, see tile_log_probs). */
static inline double emc_log_sum(double largest, double total, double floor) {
    double v = largest * EMC_LN2 + emc_log(total);
    return largest == floor ? -HUGE_VAL : v;
}

/* A sample's term of the log-likelihood, w emc_log_sum(...): 0 when w is 0
 * (padding, zero weights: never 0 * -inf). */
static inline double emc_weighted_log_sum(double w, double largest, double total,
                                          double floor) {
    double v = w * emc_log_sum(largest, total, floor);
    return w == 0.0 ? 0.0 : v;
}

static inline float emc_maxf(float a, float b) { return a > b ? a : b; }
static inline double emc_maxd(double a, double b) { return a > b ? a : b; }
static inline float emc_minf(float a, float b) { return a < b ? a : b; }
static inline double emc_mind(double a, double b) { return a < b ? a : b; }
/* take_first ? first : second, as bit operations: written as a conditional, gcc
 * turns `label[t] = emc_pick(d < best[t], j, label[t])` into a masked store
 * (vpmaskmovd), which AMD cores run slowly whenever the mask is mixed, making
 * k-means 2.5x slower per pixel on noisy photos than on smooth ones. */
static inline int emc_pick(int take_first, int first, int second) {
    int mask = -(take_first != 0);
    return (first & mask) | (second & ~mask);
}

/* The smallest and largest of x[0], ..., x[n - 1], n a multiple of 8 (a tile's
 * row, _kmeans.pyx): a few running minima and maxima side by side (a vector
 * register of each with AVX; gcc leaves such a loop written in Cython scalar,
 * each compare chained on the one before), then across them. Min and max are
 * exact in any order, so every build gives the same result. */
#define EMC_ACROSS(lo, hi, w, low, high)                                              \
    do {                                                                             \
        *(low) = (lo)[0];                                                            \
        *(high) = (hi)[0];                                                           \
        for (int u_ = 1; u_ < (w); u_++) {                                           \
            *(low) = (lo)[u_] < *(low) ? (lo)[u_] : *(low);                          \
            *(high) = (hi)[u_] > *(high) ? (hi)[u_] : *(high);                       \
        }                                                                            \
    } while (0)
#if defined(__AVX__)
#define EMC_DEFINE_MIN_MAX(SUFFIX, T, VT, W, LOADU, MIN, MAX, STOREU)                 \
static inline void emc_min_max##SUFFIX(const T *x, int n, T *low, T *high) {           \
    VT lo_v = LOADU(x), hi_v = lo_v;                                                 \
    T lo[W], hi[W];                                                                  \
    for (int t = W; t < n; t += W) {                                                 \
        VT v = LOADU(x + t);                                                         \
        lo_v = MIN(v, lo_v);                                                         \
        hi_v = MAX(v, hi_v);                                                         \
    }                                                                                \
    STOREU(lo, lo_v);                                                                \
    STOREU(hi, hi_v);                                                                \
    EMC_ACROSS(lo, hi, W, low, high);                                                \
}
EMC_DEFINE_MIN_MAX(f, float, __m256, 8, _mm256_loadu_ps, _mm256_min_ps, _mm256_max_ps,
                   _mm256_storeu_ps)
EMC_DEFINE_MIN_MAX(d, double, __m256d, 4, _mm256_loadu_pd, _mm256_min_pd, _mm256_max_pd,
                   _mm256_storeu_pd)
#else
#define EMC_DEFINE_MIN_MAX(SUFFIX, T)                                                 \
static inline void emc_min_max##SUFFIX(const T *x, int n, T *low, T *high) {           \
    T lo[8], hi[8];                                                                  \
    for (int u = 0; u < 8; u++) lo[u] = hi[u] = x[u];                                \
    for (int t = 8; t < n; t += 8) {                                                 \
        for (int u = 0; u < 8; u++) {                                                \
            lo[u] = x[t + u] < lo[u] ? x[t + u] : lo[u];                             \
            hi[u] = x[t + u] > hi[u] ? x[t + u] : hi[u];                             \
        }                                                                            \
    }                                                                                \
    EMC_ACROSS(lo, hi, 8, low, high);                                                \
}
EMC_DEFINE_MIN_MAX(f, float)
EMC_DEFINE_MIN_MAX(d, double)
#endif

/* The indices j < k with value[j] <= upper, in increasing order, into index;
 * returns their count. index must have room for k + 8 entries: the AVX-512 form
 * keeps eight at a time, packed in a register (vpcompressd) and stored whole
 * (a compressing store straight to memory is microcoded on AMD's cores). */
static inline int emc_indices_at_most(const double *__restrict value, int k, double upper,
                                      int *__restrict index) {
    int m = 0, j = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
    const __m512d bound = _mm512_set1_pd(upper);
    const __m256i eight = _mm256_set1_epi32(8);
    __m256i next = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (; j + 8 <= k; j += 8, next = _mm256_add_epi32(next, eight)) {
        __mmask8 keep = _mm512_cmp_pd_mask(_mm512_loadu_pd(value + j), bound, _CMP_LE_OQ);
        _mm256_storeu_si256((__m256i *) (index + m), _mm256_maskz_compress_epi32(keep, next));
        m += emc_popcount64(keep);
    }
#endif
    for (; j < k; j++) {  /* branch-free: which pass is not predictable */
        index[m] = j;
        m += value[j] <= upper;
    }
    return m;
}

/* k-means assignment for an RGB or RGBA float tile (_kmeans.pyx): for each of the n
 * samples (x[t], x[stride + t], ...: 3 or 4 channels), the squared distance to its
 * nearest of the k centres (row-major (k, channels)) and that centre's index, the
 * first one on ties;
 * n is a multiple of 32. The vector form holds two registers of samples' best
 * distances and labels (16 samples with AVX2, 32 with AVX-512) while it runs
 * through every centre (the loop gcc writes loads and stores them once per
 * centre), and takes the tile operand straight from memory, as c - x (the same
 * square as x - c). The plain form is the same arithmetic, centre by centre
 * (its outputs marked __restrict, or gcc checks them for overlap with the inputs
 * and runs 8% slower). */
#if (defined(__AVX2__) || defined(__AVX512F__)) && defined(__FMA__)
#ifdef __AVX512F__  /* the nearer samples' lanes chosen by a mask register */
#define EMC_W 16
#define EMC_PS __m512
#define EMC_PI __m512i
#define emc_v_set1_ps _mm512_set1_ps
#define emc_v_set1_epi32 _mm512_set1_epi32
#define emc_v_add_epi32 _mm512_add_epi32
#define emc_v_loadu_ps _mm512_loadu_ps
#define emc_v_storeu_ps _mm512_storeu_ps
#define emc_v_sub_ps _mm512_sub_ps
#define emc_v_mul_ps _mm512_mul_ps
#define emc_v_fmadd_ps _mm512_fmadd_ps
#define emc_v_min_ps _mm512_min_ps
#define emc_v_take_nearer(label, d, best, j) \
    _mm512_mask_mov_epi32(label, _mm512_cmp_ps_mask(d, best, _CMP_LT_OQ), j)
#define emc_v_store_labels(p, v) _mm512_storeu_si512(p, v)
#else  /* by a blend on a comparison's lanes */
#define EMC_W 8
#define EMC_PS __m256
#define EMC_PI __m256i
#define emc_v_set1_ps _mm256_set1_ps
#define emc_v_set1_epi32 _mm256_set1_epi32
#define emc_v_add_epi32 _mm256_add_epi32
#define emc_v_loadu_ps _mm256_loadu_ps
#define emc_v_storeu_ps _mm256_storeu_ps
#define emc_v_sub_ps _mm256_sub_ps
#define emc_v_mul_ps _mm256_mul_ps
#define emc_v_fmadd_ps _mm256_fmadd_ps
#define emc_v_min_ps _mm256_min_ps
#define emc_v_take_nearer(label, d, best, j)                                           \
    _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(label),                   \
                                         _mm256_castsi256_ps(j),                       \
                                         _mm256_cmp_ps(d, best, _CMP_LT_OQ)))
#define emc_v_store_labels(p, v) _mm256_storeu_si256((EMC_PI *) (p), v)
#endif
static inline void emc_nearest_rowsf(const float *x, int stride, int n_ch,
                                     const float *centers, int k, int n, float *best,
                                     int *label) {
    const float *x0 = x, *x1 = x + stride, *x2 = x + 2 * stride, *x3 = x + 3 * stride;
    for (int t = 0; t < n; t += 2 * EMC_W) {
        EMC_PS best_a = emc_v_set1_ps(INFINITY), best_b = best_a;
        EMC_PI label_a = emc_v_set1_epi32(0), label_b = label_a, j_v = label_a;
        const EMC_PI one = emc_v_set1_epi32(1);
        for (int j = 0; j < k; j++, j_v = emc_v_add_epi32(j_v, one)) {
            const float *c = centers + n_ch * j;
            EMC_PS c0 = emc_v_set1_ps(c[0]), c1 = emc_v_set1_ps(c[1]), c2 = emc_v_set1_ps(c[2]);
            EMC_PS va = emc_v_sub_ps(c0, emc_v_loadu_ps(x0 + t)),
                   vb = emc_v_sub_ps(c0, emc_v_loadu_ps(x0 + t + EMC_W));
            EMC_PS da = emc_v_mul_ps(va, va), db = emc_v_mul_ps(vb, vb);
            va = emc_v_sub_ps(c1, emc_v_loadu_ps(x1 + t));
            vb = emc_v_sub_ps(c1, emc_v_loadu_ps(x1 + t + EMC_W));
            da = emc_v_fmadd_ps(va, va, da);
            db = emc_v_fmadd_ps(vb, vb, db);
            va = emc_v_sub_ps(c2, emc_v_loadu_ps(x2 + t));
            vb = emc_v_sub_ps(c2, emc_v_loadu_ps(x2 + t + EMC_W));
            da = emc_v_fmadd_ps(va, va, da);
            db = emc_v_fmadd_ps(vb, vb, db);
            if (n_ch == 4) {  /* a constant in each caller below: no branch is left */
                EMC_PS c3 = emc_v_set1_ps(c[3]);
                va = emc_v_sub_ps(c3, emc_v_loadu_ps(x3 + t));
                vb = emc_v_sub_ps(c3, emc_v_loadu_ps(x3 + t + EMC_W));
                da = emc_v_fmadd_ps(va, va, da);
                db = emc_v_fmadd_ps(vb, vb, db);
            }
            label_a = emc_v_take_nearer(label_a, da, best_a, j_v);
            label_b = emc_v_take_nearer(label_b, db, best_b, j_v);
            best_a = emc_v_min_ps(da, best_a);   /* da < best_a ? da : best_a */
            best_b = emc_v_min_ps(db, best_b);
        }
        emc_v_storeu_ps(best + t, best_a);
        emc_v_storeu_ps(best + t + EMC_W, best_b);
        emc_v_store_labels(label + t, label_a);
        emc_v_store_labels(label + t + EMC_W, label_b);
    }
}
#undef EMC_W
#undef EMC_PS
#undef EMC_PI
#undef emc_v_set1_ps
#undef emc_v_set1_epi32
#undef emc_v_add_epi32
#undef emc_v_loadu_ps
#undef emc_v_storeu_ps
#undef emc_v_sub_ps
#undef emc_v_mul_ps
#undef emc_v_fmadd_ps
#undef emc_v_min_ps
#undef emc_v_take_nearer
#undef emc_v_store_labels
#else
static inline void emc_nearest_rowsf(const float *x, int stride, int n_ch,
                                     const float *centers, int k, int n,
                                     float *__restrict best, int *__restrict label) {
    const float *x0 = x, *x1 = x + stride, *x2 = x + 2 * stride, *x3 = x + 3 * stride;
    for (int t = 0; t < n; t++) {
        best[t] = INFINITY;
        label[t] = 0;
    }
    for (int j = 0; j < k; j++) {
        const float *c = centers + n_ch * j;
        const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = n_ch == 4 ? c[3] : 0.0f;
        for (int t = 0; t < n; t++) {
            float v0 = x0[t] - c0, v1 = x1[t] - c1, v2 = x2[t] - c2;
            float d = v0 * v0 + v1 * v1 + v2 * v2;
            if (n_ch == 4) {
                float v3 = x3[t] - c3;
                d = d + v3 * v3;
            }
            label[t] = emc_pick(d < best[t], j, label[t]);
            best[t] = emc_minf(d, best[t]);
        }
    }
}
#endif
#endif
/* Lloyd's cluster sums of one tile without a branch on the labels (_kmeans.pyx):
 * for each cluster j < k and each of the `rows` rows of wx (the weight, then w x
 * feature by feature, `stride` apart), the sum over the samples whose label
 * (given as a double) is j. Each sum is kept as sixteen lane sums, two vectors of
 * eight taking alternate groups of eight samples (two chains of additions instead
 * of one), added lane by lane and then by emc_hsum, and added to sums[j rows + r].
 * A sample is kept or dropped by its bits (and with the comparison's all-ones
 * lanes): nothing is multiplied, and every build adds the same numbers in the same
 * order. n is a multiple of 16. Summing runs of one label instead mispredicts at
 * every change of label: 3-6 ns a sample at a few clusters on samples in no
 * particular order. */
static inline int emc_label_changes(const int *label, int n) {
    int changes = 0;
    for (int t = 1; t < n; t++) changes += label[t] != label[t - 1];
    return changes;
}
#if defined(__GNUC__) || defined(__clang__)
typedef long long emc_l8 __attribute__((vector_size(8 * sizeof(long long))));
#define EMC_DEFINE_MASKED_SUMS(R)                                                      \
static inline void emc_masked_sums##R(const double *wx, int stride, const double *label, \
                                      int k, int n, double *sums) {                    \
    for (int j = 0; j < k; j++) {                                                    \
        emc_d8 a[R] = {{0}}, b[R] = {{0}};                                           \
        emc_d8 want = (emc_d8){0} + (double) j;                                      \
        for (int t = 0; t < n; t += 16) {                                            \
            emc_l8 keep_a = (emc_l8) (emc_load8(label + t) == want);                 \
            emc_l8 keep_b = (emc_l8) (emc_load8(label + t + 8) == want);             \
            for (int r = 0; r < R; r++) {                                            \
                a[r] += (emc_d8) ((emc_l8) emc_load8(wx + r * stride + t) & keep_a);  \
                b[r] += (emc_d8) ((emc_l8) emc_load8(wx + r * stride + t + 8) & keep_b); \
            }                                                                        \
        }                                                                            \
        for (int r = 0; r < R; r++) {                                                \
            emc_d8 both = a[r] + b[r];                                               \
            sums[j * R + r] += emc_hsum((const double *) &both);                     \
        }                                                                            \
    }                                                                                \
}
#else  /* the same additions, lane by lane */
#define EMC_DEFINE_MASKED_SUMS(R)                                                      \
static inline void emc_masked_sums##R(const double *wx, int stride, const double *label, \
                                      int k, int n, double *sums) {                    \
    for (int j = 0; j < k; j++) {                                                    \
        double a[R][8] = {{0}}, b[R][8] = {{0}}, both[8];                            \
        for (int t = 0; t < n; t += 16)                                              \
            for (int r = 0; r < R; r++)                                              \
                for (int l = 0; l < 8; l++) {                                        \
                    a[r][l] += label[t + l] == j ? wx[r * stride + t + l] : 0.0;     \
                    b[r][l] += label[t + 8 + l] == j ? wx[r * stride + t + 8 + l] : 0.0; \
                }                                                                    \
        for (int r = 0; r < R; r++) {                                                \
            for (int l = 0; l < 8; l++) both[l] = a[r][l] + b[r][l];                 \
            sums[j * R + r] += emc_hsum(both);                                       \
        }                                                                            \
    }                                                                                \
}
#endif
EMC_DEFINE_MASKED_SUMS(2)
EMC_DEFINE_MASKED_SUMS(3)
EMC_DEFINE_MASKED_SUMS(4)
EMC_DEFINE_MASKED_SUMS(5)
/* rows 2 to 5: one to four features */
static inline void emc_masked_sums(const double *wx, int stride, int rows, const double *label,
                                   int k, int n, double *sums) {
    if (rows == 2) emc_masked_sums2(wx, stride, label, k, n, sums);
    else if (rows == 3) emc_masked_sums3(wx, stride, label, k, n, sums);
    else if (rows == 4) emc_masked_sums4(wx, stride, label, k, n, sums);
    else emc_masked_sums5(wx, stride, label, k, n, sums);
}

/* The two widths the kernels call, each with its channel count fixed */
static inline void emc_rgb_nearestf(const float *x, int stride, const float *centers, int k,
                                    int n, float *best, int *label) {
    emc_nearest_rowsf(x, stride, 3, centers, k, n, best, label);
}
static inline void emc_rgba_nearestf(const float *x, int stride, const float *centers, int k,
                                     int n, float *best, int *label) {
    emc_nearest_rowsf(x, stride, 4, centers, k, n, best, label);
}
