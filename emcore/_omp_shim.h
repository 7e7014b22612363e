/* Platform shim: the OpenMP runtime when the build enables it (serial stubs
 * otherwise), and the CPU checks that pick the AVX2 and AVX-512 kernel builds. */
#ifndef EMCORE_OMP_SHIM_H
#define EMCORE_OMP_SHIM_H
#ifdef _OPENMP
#include <omp.h>
#define EMCORE_OPENMP 1
#else
#define EMCORE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
#endif

static inline int emc_cpu_has_avx2_fma(void) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* The subsets the AVX-512 builds are compiled for (setup.py); gcc's check also
 * asks the OS whether it saves the 512-bit registers. */
static inline int emc_cpu_has_avx512(void) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return emc_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}
#endif
