cdef extern from "_omp_shim.h":
    const int EMCORE_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    int omp_get_num_threads() noexcept nogil
    int emc_cpu_has_avx2_fma() noexcept nogil
    int emc_cpu_has_avx512() noexcept nogil
