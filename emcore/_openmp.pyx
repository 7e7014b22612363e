"""Whether this build of emcore runs its kernels with OpenMP."""
from emcore._openmp cimport EMCORE_OPENMP, omp_get_max_threads


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(EMCORE_OPENMP)


def openmp_max_threads():
    """The OpenMP runtime's default team size (1 in a serial build)."""
    return omp_get_max_threads()
