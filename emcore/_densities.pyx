"""Per-sample mixture scoring kernels: no reductions, one output row per sample.

The caller (densities.py, mixture.py) validates and allocates; these functions
only compute. Arguments are marked IN / OUT. Samples go through in tiles of
TILE (see _gauss.pxd), spread over threads with a static schedule; each thread
has its own scratch.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free

from emcore._gauss cimport (DIFF, EMC_LN2, LARGEST, LP, PROJ, TILE, TOTAL, XS,
                            emc_exp2_or_zero, emc_exp2f_neg, emc_log, emc_pick, load_tile,
                            log_sum, scratch_part,
                            tile_exp_normalise, tile_log_probs, tile_scratch_size, vmax)


cdef inline floating *score_tile(
        const floating *X, Py_ssize_t start, Py_ssize_t n, int n_features,
        const floating *means, const floating *prec, const floating *log_const,
        int n_components, bint full, floating *scratch) noexcept nogil:
    """Log-probabilities of rows start..start+n, returned as the scratch's (K, TILE) part;
    their maximum per sample goes to the scratch's LARGEST part."""
    cdef floating *xs = scratch_part(scratch, XS, n_components, n_features)
    cdef floating *lp = scratch_part(scratch, LP, n_components, n_features)
    load_tile(X, start, n, n_features, xs)
    tile_log_probs(xs, means, prec, log_const, n_components, n_features, full, lp,
                   scratch_part(scratch, LARGEST, n_components, n_features),
                   scratch_part(scratch, DIFF, n_components, n_features),
                   scratch_part(scratch, PROJ, n_components, n_features))
    return lp


def log_mixture_density(
        const floating[:, ::1] X,          # IN (N, D)
        const floating[:, ::1] means,      # IN (K, D)
        const floating[:, ::1] prec,       # IN (K, P)
        const floating[::1] log_const,     # IN (K,)
        bint full,
        bint take_exp,
        double[::1] out,                   # OUT (N,) log density, or density if take_exp
        int n_threads):
    """log sum_k w_k N(x_i; k) for every sample, by log-sum-exp."""
    cdef Py_ssize_t n_samples = X.shape[0], n_tiles = (X.shape[0] + TILE - 1) // TILE
    cdef Py_ssize_t tile, start, n
    cdef int t, n_features = X.shape[1], n_components = means.shape[0]
    cdef floating *scratch
    cdef floating *lp
    cdef floating *largest
    cdef floating *total
    cdef int failed[1]  # shared: a plain variable assigned in parallel() is thread-private
    failed[0] = 0
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        scratch = <floating *> malloc(tile_scratch_size(n_components, n_features)
                                      * sizeof(floating))
        if scratch == NULL:
            failed[0] = 1
        else:
            largest = scratch_part(scratch, LARGEST, n_components, n_features)
            total = scratch_part(scratch, TOTAL, n_components, n_features)
            for tile in prange(n_tiles, schedule='static'):
                start = tile * TILE
                n = min(<Py_ssize_t> TILE, n_samples - start)
                lp = score_tile(&X[0, 0], start, n, n_features, &means[0, 0], &prec[0, 0],
                                &log_const[0], n_components, full, scratch)
                tile_exp_normalise(lp, n_components, largest, total)
                if take_exp:  # sum_k 2^lp_k = 2^largest * total: no log, vectorised
                    for t in range(n):
                        out[start + t] = emc_exp2_or_zero(largest[t]) * total[t]
                else:
                    for t in range(n):
                        out[start + t] = log_sum(largest[t], total[t])
            free(scratch)
    if failed[0]:
        raise MemoryError()


def most_likely_component(
        const floating[:, ::1] X,          # IN (N, D)
        const floating[:, ::1] means,      # IN (K, D)
        const floating[:, ::1] prec,       # IN (K, P)
        const floating[::1] log_const,     # IN (K,)
        bint full,
        int[::1] labels,                   # OUT (N,) argmax_k of w_k N(x_i; k)
        int n_threads):
    """The component with the largest posterior for every sample (first one on ties)."""
    cdef Py_ssize_t n_samples = X.shape[0], n_tiles = (X.shape[0] + TILE - 1) // TILE
    cdef Py_ssize_t tile, start, n
    cdef int t, k, n_features = X.shape[1], n_components = means.shape[0]
    cdef floating *scratch
    cdef floating *lp
    cdef floating *best
    cdef floating v
    cdef int *label
    cdef int failed[1]
    failed[0] = 0
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        scratch = <floating *> malloc(tile_scratch_size(n_components, n_features)
                                      * sizeof(floating))
        label = <int *> malloc(TILE * sizeof(int))
        if scratch == NULL or label == NULL:
            failed[0] = 1
        else:
            best = scratch_part(scratch, LARGEST, n_components, n_features)
            for tile in prange(n_tiles, schedule='static'):
                start = tile * TILE
                n = min(<Py_ssize_t> TILE, n_samples - start)
                lp = score_tile(&X[0, 0], start, n, n_features, &means[0, 0], &prec[0, 0],
                                &log_const[0], n_components, full, scratch)
                for t in range(TILE):
                    best[t] = lp[t]
                    label[t] = 0
                for k in range(1, n_components):
                    for t in range(TILE):
                        v = lp[k * TILE + t]
                        label[t] = emc_pick(v > best[t], k, label[t])
                        best[t] = vmax(v, best[t])
                for t in range(n):
                    labels[start + t] = label[t]
        free(scratch)
        free(label)
    if failed[0]:
        raise MemoryError()


def log_responsibilities(
        const floating[:, ::1] X,          # IN (N, D)
        const floating[:, ::1] means,      # IN (K, D)
        const floating[:, ::1] prec,       # IN (K, P)
        const floating[::1] log_const,     # IN (K,)
        bint full,
        floating[:, ::1] out,              # OUT (N, K) log posterior of each component
        int n_threads):
    """log r_ik = log w_k N(x_i; k) - log sum_j w_j N(x_i; j) (natural logs): the caller
    asked for N x K."""
    cdef Py_ssize_t n_samples = X.shape[0], n_tiles = (X.shape[0] + TILE - 1) // TILE
    cdef Py_ssize_t tile, start, n
    cdef int t, k, n_features = X.shape[1], n_components = means.shape[0]
    cdef floating *scratch
    cdef floating *lp
    cdef floating *largest
    cdef floating *total
    cdef double lse
    cdef int failed[1]
    failed[0] = 0
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        scratch = <floating *> malloc(tile_scratch_size(n_components, n_features)
                                      * sizeof(floating))
        if scratch == NULL:
            failed[0] = 1
        else:
            largest = scratch_part(scratch, LARGEST, n_components, n_features)
            total = scratch_part(scratch, TOTAL, n_components, n_features)
            for tile in prange(n_tiles, schedule='static'):
                start = tile * TILE
                n = min(<Py_ssize_t> TILE, n_samples - start)
                lp = score_tile(&X[0, 0], start, n, n_features, &means[0, 0], &prec[0, 0],
                                &log_const[0], n_components, full, scratch)
                for t in range(n):
                    for k in range(n_components):
                        out[start + t, k] = lp[k * TILE + t]
                tile_exp_normalise(lp, n_components, largest, total)
                for t in range(n):
                    # log2 of the sum, then the difference in natural units
                    lse = log_sum(largest[t], total[t]) / EMC_LN2
                    for k in range(n_components):
                        out[start + t, k] = <floating> ((out[start + t, k] - lse) * EMC_LN2)
            free(scratch)
    if failed[0]:
        raise MemoryError()


def vecmath_probe(
        const double[::1] x,          # IN (N,)
        double[::1] exp2_out,         # OUT (N,) emc_exp2_or_zero(x)
        float[::1] exp2f_out,         # OUT (N,) emc_exp2f_neg((float) x), for x <= 0
        double[::1] log_out):         # OUT (N,) emc_log(x), for x >= 0
    """The hand-written exponential and logarithm of _vecmath.h, element by element,
    so that their accuracy is tested directly (tests/test_kernels.py)."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            exp2_out[i] = emc_exp2_or_zero(x[i])
            exp2f_out[i] = emc_exp2f_neg(<float> x[i]) if x[i] <= 0 else 0
            log_out[i] = emc_log(x[i]) if x[i] >= 0 else 0
