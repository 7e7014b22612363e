"""emcore: fast Gaussian-mixture (EM) and k-means colour segmentation of images.

The hot loops are Cython kernels compiled with OpenMP; this package validates
input, chooses dtypes and orchestrates them.
"""
from emcore._openmp import openmp_enabled
from emcore.densities import Kernel, compute_densities

__version__ = "0.1.0"

__all__ = ["Kernel", "compute_densities", "openmp_enabled", "__version__"]
