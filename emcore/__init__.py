"""emcore: fast Gaussian-mixture (EM) and k-means colour segmentation of images.

The hot loops are Cython kernels compiled with OpenMP; this package validates
input, chooses dtypes and orchestrates them.
"""
from typing import TYPE_CHECKING

try:
    from emcore._openmp import openmp_enabled
except ModuleNotFoundError as err:  # the source folder, not an installed or built emcore
    if not (err.name or "").startswith("emcore."):
        raise
    import os as _os
    raise ImportError(
        f"emcore's compiled kernels are missing in {_os.path.dirname(__file__)}: this is the "
        "source folder. Run from another folder after 'pip install .', or build in place "
        "with 'python setup.py build_ext --inplace'.") from None

__version__ = "0.2.0"

#: public name -> the module that defines it; imported on first use (PEP 562), so
#: that ``import emcore`` (and the command line's start) costs a few milliseconds
#: and what a caller never touches is never imported
_EXPORTS = {
    "load": "emcore.persistence",
    "Kernel": "emcore.densities", "compute_densities": "emcore.densities",
    "Image": "emcore.image", "load_image": "emcore.image",
    "rgb_vector_to_image": "emcore.image", "save_image": "emcore.image",
    "unique_colors": "emcore.image",
    "KMeans": "emcore.kmeans",
    "GaussianMixture": "emcore.mixture",
    "Segmentation": "emcore.pipeline", "segment_image": "emcore.pipeline",
    "EM": "emcore.segment", "k_sweep": "emcore.segment", "quantize": "emcore.segment",
    "save_new": "emcore.segment",
    "SpatialGaussianMixture": "emcore.spatial",
}

__all__ = [
    "EM", "GaussianMixture", "Image", "KMeans", "Kernel", "Segmentation",
    "SpatialGaussianMixture", "compute_densities", "k_sweep", "load", "load_image",
    "openmp_enabled", "quantize", "rgb_vector_to_image", "save_image", "save_new",
    "segment_image", "unique_colors", "__version__",
]


assert set(__all__) == set(_EXPORTS) | {"openmp_enabled", "__version__"}


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'emcore' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # what type checkers and IDEs see
    from emcore.densities import Kernel, compute_densities
    from emcore.image import Image, load_image, rgb_vector_to_image, save_image, unique_colors
    from emcore.kmeans import KMeans
    from emcore.mixture import GaussianMixture
    from emcore.persistence import load
    from emcore.pipeline import Segmentation, segment_image
    from emcore.segment import EM, k_sweep, quantize, save_new
    from emcore.spatial import SpatialGaussianMixture
