# The same kernels as _em.pyx, compiled with AVX-512 and FMA (see setup.py);
# emcore/_kernels.py imports this build only on CPUs that have them.
include "_em.pyx"
