"""What this build and this CPU offer: OpenMP, and AVX2 with FMA."""
from emcore._openmp cimport EMCORE_OPENMP, emc_cpu_has_avx2_fma


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
