"""emcore: fast Gaussian-mixture (EM) and k-means colour segmentation of images.

The hot loops are Cython kernels compiled with OpenMP; this package validates
input, chooses dtypes and orchestrates them.
"""
from emcore._base import load
from emcore._openmp import openmp_enabled
from emcore.densities import Kernel, compute_densities
from emcore.image import Image, load_image, rgb_vector_to_image, save_image, unique_colors
from emcore.kmeans import KMeans
from emcore.mixture import GaussianMixture
from emcore.segment import EM, k_sweep, quantize, save_new

__version__ = "0.1.0"

__all__ = [
    "EM", "GaussianMixture", "Image", "KMeans", "Kernel", "compute_densities", "load",
    "k_sweep", "load_image", "openmp_enabled", "quantize", "rgb_vector_to_image", "save_image",
    "save_new", "unique_colors", "__version__",
]
