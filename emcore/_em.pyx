"""The EM pass: E-step and the M-step's weighted sums in one streaming pass.

Samples are cut into fixed blocks whose size depends only on N (block_layout in
emcore/_validation.py). Each block accumulates into its own row of
``block_stats`` in sample order, whichever thread runs it, and the caller adds
the rows in block order, so the result is bitwise the same for any number of
threads (a reduction of per-thread buffers, as in scikit-learn's Lloyd kernel,
is not). That also lets blocks go to whichever thread is free (a dynamic
schedule): a core busy with something else does not hold up the pass. No
N x K array is formed: responsibilities live in a K x TILE scratch per thread.
A component whose every sample in a tile lies below the exponential's floor is
skipped for that tile (tile_exp_normalise in _gauss.pxd): on a photo's distinct
colours that is a quarter to a half of a fitted model's components per tile.

Statistics per component k, centred on the current mean mu_k:
  [0]              N_k  = sum_i r_ik
  [1 : 1+D]        S_k  = sum_i r_ik (x_i - mu_k)
  [1+D : ]         Q_k  = sum_i r_ik (x_i - mu_k)^2        ('diag', D values)
                   or the upper triangle of sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T
                   row by row ('full', D (D + 1) / 2 values)
where r_ik includes the sample weight. Every product and sum here is float64
(EMC_LANES lane sums per statistic, carried through a block and added in a
fixed order; see _vecmath.h), whatever the precision of the log-probabilities.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free

from emcore._gauss cimport (DIFF, LARGEST, LP, PROJ, TOTAL, XS, scratch_part,
                            tile_exp_normalise, tile_log_probs, tile_scratch_size)
from emcore._tile cimport (TILE, load_tile, lowest, padded, take, team_scratch,
                           thread_scratch, weight_step)
from emcore._vecmath cimport (EMC_LANES, emc_fold_lanes, emc_lanes_cross, emc_lanes_moments,
                              emc_lanes_sum, emc_rgb_diagd, emc_rgb_diagf, emc_rgb_fulld,
                              emc_rgb_fullf, emc_sum, emc_weighted_log_sum)


LANES = EMC_LANES  # lane sums per statistic in this build: the checked door sizes scratch by it


cdef inline void widen(const floating *src, double *dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = src[i]


cdef inline void rgb_sums(const floating *e, const double *scale, const double *xs,
                          const floating *mu, bint full, double *acc) noexcept nogil:
    """accumulate_tile for D = 3: one fused pass (_vecmath.h)."""
    if floating is float:
        if full:
            emc_rgb_fullf(e, scale, xs, xs + TILE, xs + 2 * TILE, mu[0], mu[1], mu[2], TILE, acc)
        else:
            emc_rgb_diagf(e, scale, xs, xs + TILE, xs + 2 * TILE, mu[0], mu[1], mu[2], TILE, acc)
    else:
        if full:
            emc_rgb_fulld(e, scale, xs, xs + TILE, xs + 2 * TILE, mu[0], mu[1], mu[2], TILE, acc)
        else:
            emc_rgb_diagd(e, scale, xs, xs + TILE, xs + 2 * TILE, mu[0], mu[1], mu[2], TILE, acc)


cdef inline void accumulate_tile(
        const double *xs,           # IN (D, TILE) the tile in float64
        const double *scale,        # IN (TILE,) weight / total
        const floating *means,      # IN (K, D)
        const floating *resp,       # IN (K, TILE) 2^(lp - largest)
        const char *live,           # IN (K,) 0: the component's row is to be skipped
        int n_components,
        int n_features,
        int n_stats,
        bint full,
        double *r,                  # SCRATCH (TILE,)
        double *acc) noexcept nogil:  # IN/OUT (K, S, EMC_LANES) lane sums of the statistics
    """Add one tile's weighted sums, every product and sum in float64 (_vecmath.h)."""
    cdef int k, i, j, t, q
    cdef const floating *e
    cdef const floating *mu
    cdef double *a
    for k in range(n_components):
        if not live[k]:
            continue
        e = resp + k * TILE
        mu = means + k * n_features
        a = acc + EMC_LANES * k * n_stats
        if n_features == 3:
            rgb_sums(e, scale, xs, mu, full, a)
            continue
        for t in range(TILE):
            r[t] = <double> e[t] * scale[t]
        emc_lanes_sum(r, TILE, a)
        # the diagonal second moments sit at 1 + D + i ('diag') or on the triangle's diagonal
        q = 1 + n_features
        for i in range(n_features):
            emc_lanes_moments(r, xs + i * TILE, mu[i], TILE, a + EMC_LANES * (1 + i),
                              a + EMC_LANES * q)
            q += 1
            if full:
                for j in range(i + 1, n_features):
                    emc_lanes_cross(r, xs + i * TILE, mu[i], xs + j * TILE, mu[j], TILE,
                                    a + EMC_LANES * q)
                    q += 1


def em_pass(
        const floating[:, ::1] X,           # IN (N, D)
        const double[::1] sample_weight,    # IN (N,) or (1,) shared by all
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
    cdef Py_ssize_t w_step = weight_step(sample_weight.shape[0], X.shape[0])
    cdef Py_ssize_t b, start, end, tile, i0, n
    cdef int t, k, n_features = X.shape[1], n_components = means.shape[0]
    cdef int n_stats = block_stats.shape[2]
    cdef char *team
    cdef char *cursor = NULL
    cdef floating *scratch = NULL  # the Gaussian tile scratch (_gauss.pxd)
    cdef floating *xs = NULL
    cdef floating *lp = NULL
    cdef floating *diff = NULL
    cdef floating *proj = NULL
    cdef floating *largest = NULL
    cdef floating *total = NULL
    cdef double *wide = NULL    # (D, TILE) the tile in float64
    cdef double *r = NULL       # (TILE,) one component's r, see accumulate_tile
    cdef double *weight = NULL  # (TILE,) the tile's sample weights, 0 past its end
    cdef double *scale = NULL   # (TILE,) weight / total
    cdef double *term = NULL    # (TILE,) weight * log p(x)
    cdef double *acc = NULL     # (K, S, EMC_LANES) the block's lane sums
    cdef char *live = NULL      # (K,) see tile_exp_normalise
    cdef double loglik
    cdef Py_ssize_t tile_bytes = tile_scratch_size(n_components, n_features) * sizeof(floating)
    cdef Py_ssize_t wide_bytes = n_features * TILE * sizeof(double)
    cdef Py_ssize_t row_bytes = TILE * sizeof(double)
    cdef Py_ssize_t acc_bytes = EMC_LANES * n_components * n_stats * sizeof(double)
    cdef Py_ssize_t per_thread = (padded(tile_bytes) + padded(wide_bytes) + 4 * padded(row_bytes)
                                  + padded(acc_bytes) + padded(n_components))
    block_stats[...] = 0
    block_loglik[...] = 0
    if n_samples == 0:
        return
    team = team_scratch(n_threads, per_thread)
    with nogil, parallel(num_threads=n_threads):
        cursor = thread_scratch(team, per_thread)
        scratch = <floating *> take(&cursor, tile_bytes)
        wide = <double *> take(&cursor, wide_bytes)
        r = <double *> take(&cursor, row_bytes)
        weight = <double *> take(&cursor, row_bytes)
        scale = <double *> take(&cursor, row_bytes)
        term = <double *> take(&cursor, row_bytes)
        acc = <double *> take(&cursor, acc_bytes)
        live = <char *> take(&cursor, n_components)
        xs = scratch_part(scratch, XS, n_components, n_features)
        lp = scratch_part(scratch, LP, n_components, n_features)
        diff = scratch_part(scratch, DIFF, n_components, n_features)
        proj = scratch_part(scratch, PROJ, n_components, n_features)
        largest = scratch_part(scratch, LARGEST, n_components, n_features)
        total = scratch_part(scratch, TOTAL, n_components, n_features)
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * block_size
            end = min(start + block_size, n_samples)
            loglik = 0
            for t in range(EMC_LANES * n_components * n_stats):
                acc[t] = 0
            for tile in range((end - start + TILE - 1) // TILE):
                i0 = start + tile * TILE
                n = min(<Py_ssize_t> TILE, end - i0)
                load_tile(&X[0, 0], i0, n, n_features, xs)
                tile_log_probs(xs, &means[0, 0], &prec[0, 0], &log_const[0],
                               n_components, n_features, full, lp, largest, diff, proj)
                tile_exp_normalise(lp, n_components, largest, total, live)
                for t in range(n):
                    weight[t] = sample_weight[(i0 + t) * w_step]
                for t in range(n, TILE):
                    weight[t] = 0
                for t in range(TILE):
                    scale[t] = weight[t] / total[t]
                    term[t] = emc_weighted_log_sum(weight[t], largest[t], total[t],
                                                   lowest(largest[t]))
                loglik = loglik + emc_sum(term, TILE)
                widen(xs, wide, n_features * TILE)
                accumulate_tile(wide, scale, &means[0, 0], lp, live, n_components,
                                n_features, n_stats, full, r, acc)
            for k in range(n_components):
                emc_fold_lanes(acc + EMC_LANES * k * n_stats, n_stats, &block_stats[b, k, 0])
            block_loglik[b] = loglik
    free(team)
