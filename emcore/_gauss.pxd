# The Gaussian part of the mixture kernels (_em.pyx, _densities.pyx): the
# log-probabilities of a tile of samples under every component, and their
# log-sum-exp. Tiles and scratch are described in _tile.pxd.
#
# Parameter layout used by every kernel (prepared in emcore/_params.py), in
# log2 units so that the exponentials need no range-reduction multiply:
#   means     (K, D)  component means
#   prec      (K, P)  s U with s = sqrt(log2(e) / 2), where U is, for 'diag' (P = D),
#                     1/sigma per feature, for 'full' (P = D*D) the upper-triangular
#                     Cholesky factor of the precision matrix (precision = U U^T),
#                     row-major
#   log_const (K,)    log2(e) (log weight + log|U| - D/2 log(2 pi)) (the last term
#                     optional)
# so that log2(w_k N(x; mu_k, Sigma_k)) = log_const[k] - ||(x - mu_k) prec_k||^2.
# The kernels' log-probabilities ("lp") are these log2 values.

from cython cimport floating

from emcore._tile cimport TILE, lowest, vmax
from emcore._vecmath cimport emc_exp2_neg, emc_exp2f_neg, emc_log_sum


# A thread's Gaussian tile scratch is tile_scratch_size(K, D) items, laid out as
#   xs (D, TILE) | lp (K, TILE) | diff (D, TILE) | proj | largest | total
# (the last three TILE long); scratch_part returns where each one starts.
cdef enum ScratchPart:
    XS, LP, DIFF, PROJ, LARGEST, TOTAL


cdef inline Py_ssize_t tile_scratch_size(int n_components, int n_features) noexcept nogil:
    return (n_components + 2 * n_features + 3) * TILE


cdef inline floating *scratch_part(floating *scratch, ScratchPart part, int n_components,
                                   int n_features) noexcept nogil:
    cdef Py_ssize_t offset
    if part == XS:
        offset = 0
    elif part == LP:
        offset = n_features
    elif part == DIFF:
        offset = n_features + n_components
    else:  # PROJ, LARGEST, TOTAL follow one another
        offset = 2 * n_features + n_components + (<int> part - <int> PROJ)
    return scratch + offset * TILE


cdef inline floating exp2_nonpositive(floating x) noexcept nogil:
    """2^x for x <= 0, vectorisable (_vecmath.h)."""
    if floating is float:
        return emc_exp2f_neg(x)
    else:
        return emc_exp2_neg(x)


cdef inline void tile_log_probs3(
        const floating *xs, const floating *means, const floating *prec,
        const floating *log_const, int n_components, bint full,
        floating *log_prob, floating *largest) noexcept nogil:
    """tile_log_probs for D = 3, each component in one pass over the tile."""
    cdef int k, t
    cdef const floating *x0 = xs
    cdef const floating *x1 = xs + TILE
    cdef const floating *x2 = xs + 2 * TILE
    cdef const floating *u
    cdef floating *row
    cdef floating c, m0, m1, m2, d0, d1, d2, y0, y1, y2, v
    # d = m - x rather than x - m (the squares are the same): the tile operand
    # can then be read straight from memory by the subtraction; the squares are
    # taken from c one at a time, three fused multiply-subtracts with FMA (summing
    # them first and subtracting the sum takes one instruction more)
    for k in range(n_components):
        row = log_prob + k * TILE
        m0 = means[3 * k]
        m1 = means[3 * k + 1]
        m2 = means[3 * k + 2]
        c = log_const[k]
        if full:
            u = prec + 9 * k  # upper triangle of U: y = (x - m) U
            for t in range(TILE):
                d0 = m0 - x0[t]
                d1 = m1 - x1[t]
                d2 = m2 - x2[t]
                y0 = d0 * u[0]
                y1 = d0 * u[1] + d1 * u[4]
                y2 = d0 * u[2] + d1 * u[5] + d2 * u[8]
                v = ((c - y0 * y0) - y1 * y1) - y2 * y2
                row[t] = v
                largest[t] = vmax(v, largest[t])
        else:
            u = prec + 3 * k
            for t in range(TILE):
                y0 = (m0 - x0[t]) * u[0]
                y1 = (m1 - x1[t]) * u[1]
                y2 = (m2 - x2[t]) * u[2]
                v = ((c - y0 * y0) - y1 * y1) - y2 * y2
                row[t] = v
                largest[t] = vmax(v, largest[t])


cdef inline void tile_log_probs(
        const floating *xs,          # IN (D, TILE)
        const floating *means,       # IN (K, D)
        const floating *prec,        # IN (K, P)
        const floating *log_const,   # IN (K,)
        int n_components,
        int n_features,
        bint full,
        floating *log_prob,          # OUT (K, TILE) log2(w_k N(x_t; k))
        floating *largest,           # OUT (TILE,) max_k log_prob, at least lowest(): see log_sum
        floating *diff,              # SCRATCH (D, TILE)
        floating *proj) noexcept nogil:  # SCRATCH (TILE,)
    cdef int k, i, j, t
    cdef floating m, p, c, v
    cdef floating *row
    cdef const floating *xrow
    cdef floating *drow
    cdef int n_prec = n_features * n_features if full else n_features
    # a finite floor: when every lp is -inf, 2^(-inf - floor) = 0, never NaN
    for t in range(TILE):
        largest[t] = lowest(largest[t])
    # Loops index one TILE-long row by t alone (row pointers hoisted): gcc keeps
    # those vectorised where an i * TILE + t index falls back to scalar code.
    if n_features == 3:  # RGB: one fused pass per component
        tile_log_probs3(xs, means, prec, log_const, n_components, full, log_prob, largest)
        return
    # Each sum starts from its first term, not from a zero fill: 0 + a is a, and gcc
    # turns a fill of zeros into a memset, slow to start at a tile's size.
    for k in range(n_components):
        row = log_prob + k * TILE
        if not full:
            for i in range(n_features):
                m = means[k * n_features + i]
                p = prec[k * n_prec + i]
                xrow = xs + i * TILE
                if i == 0:
                    for t in range(TILE):
                        v = (xrow[t] - m) * p
                        row[t] = v * v
                else:
                    for t in range(TILE):
                        v = (xrow[t] - m) * p
                        row[t] = row[t] + v * v
        else:
            for i in range(n_features):
                m = means[k * n_features + i]
                xrow = xs + i * TILE
                drow = diff + i * TILE
                for t in range(TILE):
                    drow[t] = xrow[t] - m
            # y_j = sum_{i <= j} diff_i U[i, j];  Mahalanobis^2 = sum_j y_j^2
            for j in range(n_features):
                p = prec[k * n_prec + j]  # i = 0
                for t in range(TILE):
                    proj[t] = diff[t] * p
                for i in range(1, j + 1):
                    p = prec[k * n_prec + i * n_features + j]
                    drow = diff + i * TILE
                    for t in range(TILE):
                        proj[t] = proj[t] + drow[t] * p
                if j == 0:
                    for t in range(TILE):
                        row[t] = proj[t] * proj[t]
                else:
                    for t in range(TILE):
                        row[t] = row[t] + proj[t] * proj[t]
        c = log_const[k]
        for t in range(TILE):
            v = c - row[t]
            row[t] = v
            largest[t] = vmax(v, largest[t])


cdef inline floating exp2_floor(floating x) noexcept nogil:
    """Where exp2_nonpositive clamps (_vecmath.h): below it every result is 2^floor."""
    if floating is float:
        return -125.0
    else:
        return -1021.0


cdef inline void tile_exp_normalise(
        floating *log_prob,     # IN (K, TILE) log2-probabilities, OUT 2^(lp - largest)
        int n_components,
        const floating *largest,  # IN (TILE,) from tile_log_probs
        floating *total,        # OUT (TILE,) sum_k 2^(lp - largest)
        char *live) noexcept nogil:  # OUT (K,) or NULL, see below
    """Exponentiate a tile's log2-probabilities relative to each sample's largest one.

    With ``live``, a component whose every sample lies below the exponential's floor
    is marked 0 and its row left as it was: its values, all 2^floor (1e-38 / 1e-308),
    would not change a total (each sample's largest term is 1, and a float sum of 1
    and K such values is 1), only add that much mass to the component's sums. On
    photos a quarter to a half of a fitted model's components are that far from
    every sample of a tile; EM skips them.
    """
    cdef int k, t, above
    cdef bint started = False  # total holds a sum: it starts from the first row summed
    cdef floating v, floor = exp2_floor(largest[0])
    cdef floating *row
    for k in range(n_components):
        row = log_prob + k * TILE
        if live != NULL:
            above = 0  # an integer OR: vectorised where a float max reduction is not
            for t in range(TILE):
                above = above | (row[t] - largest[t] >= floor)
            live[k] = above
            if not above:
                continue
        if started:
            for t in range(TILE):
                v = exp2_nonpositive(row[t] - largest[t])
                row[t] = v
                total[t] = total[t] + v
        else:  # 0 + v is v: no zero fill first (a memset, slow to start at this size)
            for t in range(TILE):
                v = exp2_nonpositive(row[t] - largest[t])
                row[t] = v
                total[t] = v
            started = True
    if not started:  # no component at all (NaN log-probabilities)
        for t in range(TILE):
            total[t] = 0


cdef inline double log_sum(floating largest, floating total) noexcept nogil:
    """ln sum_k 2^lp_k (natural log) of one sample from tile_exp_normalise's outputs."""
    return emc_log_sum(largest, total, lowest(largest))
