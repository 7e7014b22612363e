# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The EM pass: E-step and the M-step's weighted sums in one streaming pass.

Samples are cut into fixed blocks whose size depends only on N (block_layout in
emcore/_validation.py). Each block accumulates into its own row of
``block_stats`` in sample order, whichever thread runs it, and the caller adds
the rows in block order, so the result is bitwise the same for any number of
threads (a reduction of per-thread buffers, as in scikit-learn's Lloyd kernel,
is not). No N x K array is formed: responsibilities live in a K x TILE scratch
per thread.

Statistics per component k, centred on the current mean mu_k:
  [0]              N_k  = sum_i r_ik
  [1 : 1+D]        S_k  = sum_i r_ik (x_i - mu_k)
  [1+D : ]         Q_k  = sum_i r_ik (x_i - mu_k)^2        ('diag', D values)
                   or the upper triangle of sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T
                   row by row ('full', D (D + 1) / 2 values)
where r_ik includes the sample weight. Every product and sum here is float64
(eight lane sums per tile, added in order; see _vecmath.h), whatever the
precision of the log-probabilities.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free

from emcore._gauss cimport (DIFF, LARGEST, LP, PROJ, SCALE, TILE, TOTAL, XS, emc_cross,
                            emc_moments, emc_stats3, emc_sum, load_tile, log_sum, scratch_part,
                            tile_exp_normalise, tile_log_probs, tile_scratch_size)


cdef inline void widen(const floating *src, double *dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = src[i]


cdef inline void accumulate_tile(
        const double *xs,           # IN (D, TILE) the tile in float64
        const floating *means,      # IN (K, D)
        const floating *resp,       # IN (K, TILE) exp(lp - largest)
        const floating *scale,      # IN (TILE,) weight / total
        int n_components,
        int n_features,
        bint full,
        double *r,                  # SCRATCH (TILE,)
        double *stats) noexcept nogil:  # IN/OUT (K, S), see the module docstring
    """Add one tile's weighted sums: every product and sum is float64 (_vecmath.h)."""
    cdef int k, i, j, t, q
    cdef int n_stats = 1 + n_features + (n_features * (n_features + 1) // 2 if full
                                         else n_features)
    cdef const floating *e
    cdef double *st
    cdef const floating *mu
    for k in range(n_components):
        e = resp + k * TILE
        for t in range(TILE):
            r[t] = <double> e[t] * <double> scale[t]
        st = stats + k * n_stats
        mu = means + k * n_features
        if n_features == 3:  # RGB: one fused pass (_vecmath.h)
            emc_stats3(r, xs, xs + TILE, xs + 2 * TILE, mu[0], mu[1], mu[2], TILE, full, st)
            continue
        st[0] += emc_sum(r, TILE)
        # the diagonal second moments sit at 1 + D + i ('diag') or on the triangle's diagonal
        q = 1 + n_features
        for i in range(n_features):
            emc_moments(r, xs + i * TILE, mu[i], TILE, &st[1 + i], &st[q])
            q += 1
            if full:
                for j in range(i + 1, n_features):
                    st[q] += emc_cross(r, xs + i * TILE, mu[i], xs + j * TILE, mu[j], TILE)
                    q += 1


def em_pass(
        const floating[:, ::1] X,           # IN (N, D)
        const double[::1] sample_weight,    # IN (N,)
        const floating[:, ::1] means,       # IN (K, D)
        const floating[:, ::1] prec,        # IN (K, P)
        const floating[::1] log_const,      # IN (K,)
        bint full,
        Py_ssize_t block_size,
        double[:, :, ::1] block_stats,      # OUT (B, K, S), see the module docstring
        double[::1] block_loglik,           # OUT (B,) sum_i w_i log p(x_i) per block
        int n_threads):
    """One E-step over all samples, returning the M-step's sums per block."""
    cdef Py_ssize_t n_samples = X.shape[0], n_blocks = block_stats.shape[0]
    cdef Py_ssize_t b, start, end, tile, i0, n
    cdef int t, n_features = X.shape[1], n_components = means.shape[0]
    cdef floating *scratch
    cdef floating *xs
    cdef floating *lp
    cdef floating *diff
    cdef floating *proj
    cdef floating *largest
    cdef floating *total
    cdef floating *scale
    cdef double *wide         # (D + 1, TILE): the tile in float64, then one r row
    cdef double w, loglik
    cdef int failed[1]  # shared: assigning a plain variable in parallel() is thread-private
    block_stats[...] = 0
    block_loglik[...] = 0
    failed[0] = 0
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        scratch = <floating *> malloc(tile_scratch_size(n_components, n_features)
                                      * sizeof(floating))
        wide = <double *> malloc((n_features + 1) * TILE * sizeof(double))
        if scratch == NULL or wide == NULL:
            failed[0] = 1
        else:
            xs = scratch_part(scratch, XS, n_components, n_features)
            lp = scratch_part(scratch, LP, n_components, n_features)
            diff = scratch_part(scratch, DIFF, n_components, n_features)
            proj = scratch_part(scratch, PROJ, n_components, n_features)
            largest = scratch_part(scratch, LARGEST, n_components, n_features)
            total = scratch_part(scratch, TOTAL, n_components, n_features)
            scale = scratch_part(scratch, SCALE, n_components, n_features)
            for b in prange(n_blocks, schedule='static'):
                start = b * block_size
                end = min(start + block_size, n_samples)
                loglik = 0
                for tile in range((end - start + TILE - 1) // TILE):
                    i0 = start + tile * TILE
                    n = min(<Py_ssize_t> TILE, end - i0)
                    load_tile(&X[0, 0], i0, n, n_features, xs)
                    tile_log_probs(xs, &means[0, 0], &prec[0, 0], &log_const[0],
                                   n_components, n_features, full, lp, diff, proj)
                    tile_exp_normalise(lp, n_components, largest, total)
                    for t in range(TILE):
                        w = sample_weight[i0 + t] if t < n else 0
                        scale[t] = <floating> (w / total[t])
                        if w != 0:  # padding and zero weights add nothing (not 0 * -inf)
                            loglik = loglik + w * log_sum(largest[t], total[t])
                    widen(xs, wide, n_features * TILE)
                    accumulate_tile(wide, &means[0, 0], lp, scale, n_components, n_features,
                                    full, wide + n_features * TILE, &block_stats[b, 0, 0])
                block_loglik[b] = loglik
        free(scratch)
        free(wide)
    if failed[0]:
        raise MemoryError()
