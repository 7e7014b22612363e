"""What this build and this CPU offer: OpenMP, AVX2 with FMA, and AVX-512."""
from emcore._openmp cimport EMCORE_OPENMP, emc_cpu_has_avx2_fma, emc_cpu_has_avx512


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
