"""The compiled kernels to use: the AVX2 + FMA builds where this CPU has them.

Both builds come from the same .pyx sources. ``EMCORE_SIMD=baseline`` forces the
portable build (to compare the two, or to work around a faulty CPU report).
"""
import os

from emcore._openmp import cpu_has_avx2_fma


def _choose():
    if os.environ.get("EMCORE_SIMD", "auto").strip().lower() != "baseline" and cpu_has_avx2_fma():
        try:
            from emcore import _densities_avx2, _em_avx2, _kmeans_avx2
            return _densities_avx2, _em_avx2, _kmeans_avx2, "avx2"
        except ImportError:  # built without the AVX2 variants (not x86, or MSVC)
            pass
    from emcore import _densities, _em, _kmeans
    return _densities, _em, _kmeans, "baseline"


densities, em, kmeans, SIMD = _choose()
