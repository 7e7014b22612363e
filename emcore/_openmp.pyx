"""What this build and this CPU offer: OpenMP, AVX2 with FMA, and AVX-512."""
from cython.parallel cimport parallel

from emcore._openmp cimport (EMCORE_OPENMP, emc_cpu_has_avx2_fma, emc_cpu_has_avx512,
                             omp_get_max_threads, omp_get_num_threads, omp_get_thread_num)


def openmp_enabled():
    """Whether the kernels were compiled with OpenMP.

    Returns
    -------
    enabled : bool
        False for a serial build (a compiler without OpenMP, or EMCORE_OPENMP=0):
        ``n_threads`` is then ignored.
    """
    return bool(EMCORE_OPENMP)


def cpu_has_avx2_fma():
    """True when this CPU can run the AVX2 + FMA builds of the kernels."""
    return bool(emc_cpu_has_avx2_fma())


def cpu_has_avx512():
    """True when this CPU (and its OS) can run the AVX-512 builds of the kernels."""
    return bool(emc_cpu_has_avx512())


def runtime_max_threads():
    """The OpenMP runtime's thread limit for the calling thread (1 in a serial build):
    OMP_NUM_THREADS or the CPUs when it was loaded, or what threadpoolctl set since."""
    return omp_get_max_threads()


def team_size(int n_threads):
    """The number of threads a kernel's parallel region of n_threads actually runs
    (the runtime may give fewer; a serial build gives 1)."""
    cdef int size = 1
    cdef int *shared = &size  # written through: a variable assigned in the region is private
    if n_threads < 1:
        raise ValueError(f"n_threads must be positive, got {n_threads}")
    with nogil, parallel(num_threads=n_threads):
        if omp_get_thread_num() == 0:
            shared[0] = omp_get_num_threads()
    return size
