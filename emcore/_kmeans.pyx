"""Lloyd k-means kernels: assignment plus weighted centre sums in one pass.

Like the EM pass, samples are cut into fixed blocks (size chosen from N alone)
and each block writes its own partial sums; the caller adds them in block order,
so labels, centres and inertia do not depend on the number of threads.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY

from emcore._gauss cimport squared_distance


cdef inline int nearest_center(
        const floating *x, const floating *centers, int n_centers, int n_features,
        floating *best_sq) noexcept nogil:
    """Index of the closest centre (first one on ties) and its squared distance."""
    cdef int j, label = 0
    cdef floating d, best = INFINITY
    for j in range(n_centers):
        d = squared_distance(x, centers + j * n_features, n_features)
        if d < best:
            best = d
            label = j
    best_sq[0] = best
    return label


def lloyd_pass(
        const floating[:, ::1] X,           # IN (N, D)
        const double[::1] sample_weight,    # IN (N,)
        const floating[:, ::1] centers,     # IN (K, D)
        int[::1] labels,                    # OUT (N,)
        Py_ssize_t block_size,
        double[:, :, ::1] block_sums,       # OUT (B, K, 1 + D): weight, then sum w x
        double[::1] block_inertia,          # OUT (B,) sum w ||x - c||^2
        int n_threads):
    """Assign every sample to its nearest centre and sum the clusters' weights and points."""
    cdef Py_ssize_t n_samples = X.shape[0], n_blocks = block_sums.shape[0]
    cdef Py_ssize_t b, i, start, end
    cdef int d, label, n_features = X.shape[1], n_centers = centers.shape[0]
    cdef floating best
    cdef double w, inertia
    cdef double *row
    block_sums[...] = 0
    block_inertia[...] = 0
    with nogil, parallel(num_threads=n_threads):
        for b in prange(n_blocks, schedule='static'):
            start = b * block_size
            end = min(start + block_size, n_samples)
            inertia = 0
            for i in range(start, end):
                label = nearest_center(&X[i, 0], &centers[0, 0], n_centers, n_features, &best)
                labels[i] = label
                w = sample_weight[i]
                inertia = inertia + w * best
                row = &block_sums[b, label, 0]
                row[0] += w
                for d in range(n_features):
                    row[1 + d] += w * X[i, d]
            block_inertia[b] = inertia


def candidate_potentials(
        const floating[:, ::1] X,           # IN (N, D)
        const double[::1] sample_weight,    # IN (N,)
        const floating[:, ::1] candidates,  # IN (T, D)
        const double[::1] closest_sq,       # IN (N,) squared distance to the nearest chosen centre
        Py_ssize_t block_size,
        double[:, ::1] block_potential,     # OUT (B, T)
        int n_threads):
    """k-means++: sum_i w_i min(closest_i, ||x_i - c_t||^2) for each candidate t, per block."""
    cdef Py_ssize_t n_samples = X.shape[0], n_blocks = block_potential.shape[0]
    cdef Py_ssize_t b, i, start, end
    cdef int t, n_features = X.shape[1], n_candidates = candidates.shape[0]
    cdef double d
    block_potential[...] = 0
    with nogil, parallel(num_threads=n_threads):
        for b in prange(n_blocks, schedule='static'):
            start = b * block_size
            end = min(start + block_size, n_samples)
            for i in range(start, end):
                for t in range(n_candidates):
                    d = squared_distance(&X[i, 0], &candidates[t, 0], n_features)
                    block_potential[b, t] += sample_weight[i] * min(d, closest_sq[i])


def update_closest(
        const floating[:, ::1] X,           # IN (N, D)
        const floating[::1] center,         # IN (D,) the newly chosen centre
        double[::1] closest_sq,             # IN/OUT (N,)
        int n_threads):
    """closest_i = min(closest_i, ||x_i - center||^2)."""
    cdef Py_ssize_t i, n_samples = X.shape[0]
    cdef int n_features = X.shape[1]
    cdef double d
    with nogil, parallel(num_threads=n_threads):
        for i in prange(n_samples, schedule='static'):
            d = squared_distance(&X[i, 0], &center[0], n_features)
            if d < closest_sq[i]:
                closest_sq[i] = d
