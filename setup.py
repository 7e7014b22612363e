"""Build the emcore Cython extensions, with OpenMP when the compiler supports it.

The OpenMP flags are chosen for the compiler actually in use and checked by
compiling and linking a small probe. When the probe fails the kernels are built
serially and a warning says so. ``EMCORE_OPENMP=0`` forces a serial build and
``EMCORE_OPENMP=1`` makes a failed probe an error.
"""
import os
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


def openmp_works(compiler, compile_args, link_args):
    """Compile and link the probe with the given flags; True when both succeed."""
    tmp = tempfile.mkdtemp(prefix="emcore-omp-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(PROBE)
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
            use_openmp = openmp_works(self.compiler, compile_args, link_args)
            if not use_openmp:
                if wanted in ("1", "true", "yes", "on"):
                    raise RuntimeError(
                        "EMCORE_OPENMP=1 but the compiler cannot build an OpenMP program"
                    )
                warnings.warn(
                    "emcore: OpenMP is not available with this compiler; the kernels "
                    "are built single-threaded (set EMCORE_OPENMP=1 to make this an error)."
                )
        optimise = ["/O2"] if self.compiler.compiler_type == "msvc" else ["-O3"]
        for ext in self.extensions:
            ext.extra_compile_args = optimise + list(ext.extra_compile_args)
            if use_openmp:
                ext.extra_compile_args += compile_args
                ext.extra_link_args += link_args
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


setup(
    ext_modules=cythonize(
        [extension(name) for name in KERNELS],
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
