"""emcore: fast Gaussian-mixture (EM) and k-means colour segmentation of images.

The hot loops are Cython kernels compiled with OpenMP; this package validates
input, chooses dtypes and orchestrates them.
"""
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
from emcore.persistence import load
from emcore.densities import Kernel, compute_densities
from emcore.image import Image, load_image, rgb_vector_to_image, save_image, unique_colors
from emcore.kmeans import KMeans
from emcore.mixture import GaussianMixture
from emcore.pipeline import Segmentation, segment_image
from emcore.segment import EM, k_sweep, quantize, save_new
from emcore.spatial import SpatialGaussianMixture

__version__ = "0.2.0"

__all__ = [
    "EM", "GaussianMixture", "Image", "KMeans", "Kernel", "compute_densities", "load",
    "k_sweep", "load_image", "openmp_enabled", "quantize", "rgb_vector_to_image", "save_image",
    "save_new", "Segmentation", "segment_image", "SpatialGaussianMixture", "unique_colors",
    "__version__",
]
