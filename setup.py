"""Build the emcore Cython extensions, with OpenMP when the compiler supports it.

The OpenMP flags are chosen for the compiler actually in use and checked by
compiling and linking a small probe. When the probe fails the kernels are built
serially and a warning says so. ``EMCORE_OPENMP=0`` forces a serial build and
``EMCORE_OPENMP=1`` makes a failed probe an error.

The hot kernels are built three times on x86 with gcc or clang: a portable
baseline, an AVX2 + FMA variant (``*_avx2``) and an AVX-512 variant
(``*_avx512``); emcore/_kernels.py picks the widest one this CPU runs, at import.
A variant the compiler rejects is left out with a warning; ``EMCORE_AVX2=0``
skips both. Nothing is tuned for the build machine's own CPU, and no unsafe
floating-point optimisation is enabled.
"""
import os
import platform
import shutil
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = ["_openmp", "_densities", "_em", "_kmeans", "_colors"]
HOT_KERNELS = ["_densities", "_em", "_kmeans"]  # also built as each variant
AVX2_FLAGS = ["-mavx2", "-mfma"]
# the subsets x86-64-v4 names; 512-bit vectors preferred, or gcc keeps 256
AVX512_FLAGS = AVX2_FLAGS + ["-mavx512f", "-mavx512vl", "-mavx512dq", "-mavx512bw",
                             "-mprefer-vector-width=512"]
VARIANTS = {"_avx2": AVX2_FLAGS, "_avx512": AVX512_FLAGS}

PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return omp_get_max_threads() > 0 && n > 0 ? 0 : 1;
    }
    """
)


def openmp_flags(compiler):
    """(compile_args, link_args) that enable OpenMP for this compiler."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin" and "clang" in " ".join(compiler.compiler):
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def probe_compiles(compiler, compile_args, link_args, source=PROBE):
    """Compile and link a probe with the given flags; True when both succeed."""
    tmp = tempfile.mkdtemp(prefix="emcore-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        objects = compiler.compile([src], output_dir=tmp, extra_postargs=compile_args)
        compiler.link_executable(
            objects, "probe", output_dir=tmp, extra_postargs=link_args
        )
        return True
    except Exception:  # any compile or link error means: no usable OpenMP
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExtWithOpenMP(build_ext):
    def build_extensions(self):
        wanted = os.environ.get("EMCORE_OPENMP", "auto").strip().lower()
        compile_args, link_args = openmp_flags(self.compiler)
        if wanted in ("0", "false", "no", "off"):
            use_openmp = False
        else:
            use_openmp = probe_compiles(self.compiler, compile_args, link_args)
            if not use_openmp:
                if wanted in ("1", "true", "yes", "on"):
                    raise RuntimeError(
                        "EMCORE_OPENMP=1 but the compiler cannot build an OpenMP program"
                    )
                warnings.warn(
                    "emcore: OpenMP is not available with this compiler; the kernels "
                    "are built single-threaded (set EMCORE_OPENMP=1 to make this an error)."
                )
        # -fno-trapping-math lets gcc/clang turn float compare-selects into
        # max/blend instructions so the kernels' loops vectorise; Python never
        # unmasks FP traps, and NaN/inf semantics and rounding are unchanged.
        optimise = (["/O2"] if self.compiler.compiler_type == "msvc"
                    else ["-O3", "-fno-trapping-math"])
        for suffix, flags in VARIANTS.items():
            if any(ext.name.endswith(suffix) for ext in self.extensions) and not probe_compiles(
                    self.compiler, flags, [], "int main(void) { return 0; }"):
                warnings.warn(f"emcore: the compiler rejects {' '.join(flags)}; the "
                              f"{suffix[1:]} kernels are not built.")
                self.extensions = [e for e in self.extensions if not e.name.endswith(suffix)]
        for ext in self.extensions:
            ext.extra_compile_args = optimise + list(ext.extra_compile_args)
            for suffix, flags in VARIANTS.items():
                if ext.name.endswith(suffix):
                    ext.extra_compile_args += flags
            if use_openmp:
                ext.extra_compile_args += compile_args
                ext.extra_link_args += link_args
        if not self.parallel:  # eleven C files: compile them on every core
            self.parallel = os.cpu_count() or 1
        super().build_extensions()


def extension(name):
    return Extension(
        f"emcore.{name}",
        [f"emcore/{name}.pyx"],
        include_dirs=[np.get_include(), "emcore"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=list(filter(None, os.environ.get("EMCORE_CFLAGS", "").split())),
        extra_link_args=list(filter(None, os.environ.get("EMCORE_LDFLAGS", "").split())),
    )


def wants_x86_variants():
    machine = platform.machine().lower()
    return (os.environ.get("EMCORE_AVX2", "1") != "0" and machine in ("x86_64", "amd64", "i686")
            and not sys.platform.startswith("win"))


names = KERNELS + ([name + suffix for suffix in VARIANTS for name in HOT_KERNELS]
                   if wants_x86_variants() else [])

setup(
    ext_modules=cythonize(
        [extension(name) for name in names],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)
