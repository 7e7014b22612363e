/* OpenMP shim: the real runtime when the build enables OpenMP, serial stubs otherwise. */
#ifndef EMCORE_OMP_SHIM_H
#define EMCORE_OMP_SHIM_H
#ifdef _OPENMP
#include <omp.h>
#define EMCORE_OPENMP 1
#else
#define EMCORE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif
#endif
