# The same kernels as _kmeans.pyx, compiled with AVX2 and FMA (see setup.py);
# emcore/_kernels.py imports this build only on CPUs that have both.
include "_kmeans.pyx"
