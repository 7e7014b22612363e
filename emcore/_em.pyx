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
                           thread_scratch, tile_weights, weight_step)
from emcore._vecmath cimport (EMC_LANES, emc_fold_lanes, emc_lanes_cross, emc_lanes_moments,
                              emc_lanes_sum, emc_rgb_diagd, emc_rgb_diagf, emc_rgb_fulld,
                              emc_rgb_fullf, emc_sum, emc_weighted_log_sum, emc_xy_sumsd,
                              emc_xy_sumsf)


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
        if n_features == 2:  # the same sums in one pass (_vecmath.h)
            if floating is float:
                emc_xy_sumsf(e, scale, xs, xs + TILE, mu[0], mu[1], TILE, full, a)
            else:
                emc_xy_sumsd(e, scale, xs, xs + TILE, mu[0], mu[1], TILE, full, a)
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
                tile_weights(&sample_weight[0], w_step, i0, n, weight)
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


# ------------------------------------------------------------------------------------
# The spatial (hidden Markov random field) E-step: mean-field or ICM sweeps over a
# voxel grid, and the M-step's sums from the posteriors they leave.
#
# A voxel's posterior over the K labels is
#     q_i(k) ~ exp(data_ik + sum_m coupling_m q_{i + offset_m}(k))
# (data: log w_k p(x_i | k) up to a constant per voxel; coupling: beta times the
# neighbour's weight). Voxels are updated a colour at a time, colours chosen so
# that no two neighbours share one: with neighbours along the axes only, the parity
# of z + y + x (2 colours); with diagonal neighbours too, the parities of z, y and
# x (8). Within a colour every update reads only other colours, so the order the
# threads take the rows in changes nothing: results are independent of the
# thread count.

from libc.math cimport exp, expf


cdef inline int first_largest(const floating *v, int n) noexcept nogil:
    """The index of v's largest value, the first of equal ones (as numpy's argmax)."""
    cdef int k, best = 0
    for k in range(1, n):
        if v[k] > v[best]:
            best = k
    return best


cdef inline int gather_neighbours(
        const unsigned char *inside,  # IN (N,)
        Py_ssize_t i, Py_ssize_t z, Py_ssize_t y, Py_ssize_t x,
        Py_ssize_t nz, Py_ssize_t ny, Py_ssize_t nx,
        const Py_ssize_t *offsets,    # IN (M, 3)
        const Py_ssize_t *step,       # IN (M,) each offset's step in the flat index
        const double *coupling,       # IN (M,)
        int n_neighbours,
        bint interior,                # every neighbour of i lies on the grid
        bint all_inside,              # no mask
        Py_ssize_t *where,            # OUT (M,) the steps to the neighbours inside, first n
        double *weight) noexcept nogil:  # OUT (M,) their coupling
    """How many of voxel i's neighbours are on the grid and inside; lists them (for a
    voxel with every neighbour on the grid and no mask, that is step and coupling
    themselves, and the caller need not call this)."""
    cdef int m, n = 0
    cdef Py_ssize_t zz, yy, xx, j
    for m in range(n_neighbours):
        if not interior:
            zz = z + offsets[3 * m]
            yy = y + offsets[3 * m + 1]
            xx = x + offsets[3 * m + 2]
            if zz < 0 or zz >= nz or yy < 0 or yy >= ny or xx < 0 or xx >= nx:
                continue
        j = i + step[m]
        if all_inside or inside[j]:
            where[n] = step[m]
            weight[n] = coupling[m]
            n += 1
    return n


cdef inline void neighbour_field(
        const floating *data,         # IN (K,) voxel i's data term
        const floating *q,            # IN (K,) voxel i's row of the (N, K) posteriors
        const Py_ssize_t *where,      # IN (n,) steps from i to its neighbours
        const double *weight,         # IN (n,)
        int n, int n_components,
        double *field) noexcept nogil:  # OUT (K,)
    """data_k + sum_m weight_m q_{where_m}(k): four labels at a time, so that four
    independent register sums hide the additions' latency."""
    cdef int k = 0, t
    cdef double a0, a1, a2, a3, w
    cdef const floating *qj
    while k + 4 <= n_components:
        a0, a1, a2, a3 = data[k], data[k + 1], data[k + 2], data[k + 3]
        for t in range(n):
            w = weight[t]
            qj = q + where[t] * n_components + k
            a0 = a0 + w * qj[0]
            a1 = a1 + w * qj[1]
            a2 = a2 + w * qj[2]
            a3 = a3 + w * qj[3]
        field[k], field[k + 1], field[k + 2], field[k + 3] = a0, a1, a2, a3
        k += 4
    if n_components - k == 3:  # the last one to three labels, without branches inside
        a0, a1, a2 = data[k], data[k + 1], data[k + 2]
        for t in range(n):
            w = weight[t]
            qj = q + where[t] * n_components + k
            a0 = a0 + w * qj[0]
            a1 = a1 + w * qj[1]
            a2 = a2 + w * qj[2]
        field[k], field[k + 1], field[k + 2] = a0, a1, a2
    elif n_components - k == 2:
        a0, a1 = data[k], data[k + 1]
        for t in range(n):
            w = weight[t]
            qj = q + where[t] * n_components + k
            a0 = a0 + w * qj[0]
            a1 = a1 + w * qj[1]
        field[k], field[k + 1] = a0, a1
    elif n_components - k == 1:
        a0 = data[k]
        for t in range(n):
            a0 = a0 + weight[t] * q[where[t] * n_components + k]
        field[k] = a0


cdef inline bint set_posterior(floating *qi, double *field, int n_components,
                               bint hard) noexcept nogil:
    """q_i from its field (softmax, or the one-hot of its best label); True when q_i's
    best label changed."""
    cdef int k, old = first_largest(qi, n_components), best = 0
    cdef double largest, total
    largest = field[0]
    for k in range(1, n_components):
        if field[k] > largest:  # the first of equal maxima, as argmax
            largest = field[k]
            best = k
    if hard:
        for k in range(n_components):
            qi[k] = 1 if k == best else 0
        return best != old
    total = 0
    for k in range(n_components):
        if floating is float:  # float32 posteriors: the float exponential is enough
            field[k] = expf(<float> (field[k] - largest))
        else:
            field[k] = exp(field[k] - largest)
        total += field[k]
    total = 1 / total
    for k in range(n_components):
        qi[k] = <floating> (field[k] * total)
    return first_largest(qi, n_components) != old


def mrf_sweeps(
        const floating[:, ::1] data,       # IN (N, K) per-voxel log w_k p(x | k) + any constant
        floating[:, ::1] q,                # IN/OUT (N, K) posteriors (rows outside: untouched)
        const unsigned char[::1] inside,   # IN (N,) 1 where a voxel is segmented
        Py_ssize_t nz, Py_ssize_t ny, Py_ssize_t nx,  # the grid, N = nz ny nx, x fastest
        const Py_ssize_t[:, ::1] offsets,  # IN (M, 3) (dz, dy, dx) in {-1, 0, 1}, not all 0
        const Py_ssize_t[::1] step,        # IN (M,) (dz ny + dy) nx + dx
        const double[::1] coupling,        # IN (M,) beta x each neighbour's weight
        bint axial,                        # every offset lies along one axis: 2 colours
        bint hard,                         # ICM: q becomes the one-hot of the best label
        int n_sweeps,
        int only_colour,                   # -1: every colour; else that colour alone
        Py_ssize_t oz, Py_ssize_t oy, Py_ssize_t ox,  # where the grid starts in a larger one
        long long[::1] row_changes,        # OUT (nz ny,) voxels whose best label changed
        int n_threads):
    """n_sweeps colour-by-colour updates of every voxel inside, in place. Colours are
    those of the voxels' coordinates in the whole volume (the grid's own plus its
    origin), so that a chunk with a halo updates exactly as the whole volume would."""
    cdef Py_ssize_t n_rows = nz * ny, row, z, y, x, x0, i
    cdef int _sweep, colour, m, n_colours = 2 if axial else 8
    cdef int n_components = data.shape[1], n_neighbours = offsets.shape[0]
    cdef bint all_inside = True, row_interior, z_moves = False, y_moves = False
    cdef char *team
    cdef char *cursor = NULL
    cdef double *field = NULL
    cdef double *weight = NULL
    cdef Py_ssize_t *where = NULL
    cdef Py_ssize_t field_bytes = n_components * sizeof(double)
    cdef Py_ssize_t weight_bytes = n_neighbours * sizeof(double)
    cdef Py_ssize_t where_bytes = n_neighbours * sizeof(Py_ssize_t)
    cdef Py_ssize_t per_thread = padded(field_bytes) + padded(weight_bytes) + padded(where_bytes)
    cdef int n_found
    row_changes[...] = 0
    if n_rows * nx == 0 or n_sweeps <= 0:
        return
    for i in range(n_rows * nx):
        if not inside[i]:
            all_inside = False
            break
    for m in range(n_neighbours):
        z_moves = z_moves or offsets[m, 0] != 0
        y_moves = y_moves or offsets[m, 1] != 0
    team = team_scratch(n_threads, per_thread)
    for _sweep in range(n_sweeps):
        for colour in range(n_colours):  # a parallel region each: their order is fixed
            if only_colour >= 0 and colour != only_colour:
                continue
            with nogil, parallel(num_threads=n_threads):
                cursor = thread_scratch(team, per_thread)
                field = <double *> take(&cursor, field_bytes)
                weight = <double *> take(&cursor, weight_bytes)
                where = <Py_ssize_t *> take(&cursor, where_bytes)
                for row in prange(n_rows, schedule='static'):
                    z = row // ny
                    y = row - z * ny
                    if axial:
                        x0 = (colour + z + oz + y + oy + ox) & 1
                    elif ((z + oz) & 1) != (colour >> 2) or ((y + oy) & 1) != (
                            (colour >> 1) & 1):
                        continue
                    else:
                        x0 = (colour ^ ox) & 1
                    row_interior = ((not z_moves or 0 < z < nz - 1)
                                    and (not y_moves or 0 < y < ny - 1))
                    for x in range(x0, nx, 2):
                        i = row * nx + x
                        if not all_inside and not inside[i]:
                            continue
                        if all_inside and row_interior and 0 < x < nx - 1:
                            neighbour_field(&data[i, 0], &q[i, 0], &step[0], &coupling[0],
                                            n_neighbours, n_components, field)
                        else:
                            n_found = gather_neighbours(
                                &inside[0], i, z, y, x, nz, ny, nx, &offsets[0, 0], &step[0],
                                &coupling[0], n_neighbours, row_interior and 0 < x < nx - 1,
                                all_inside, where, weight)
                            neighbour_field(&data[i, 0], &q[i, 0], where, weight, n_found,
                                            n_components, field)
                        if set_posterior(&q[i, 0], field, n_components, hard):
                            row_changes[row] += 1
    free(team)


cdef inline char *all_live(char *live, int n) noexcept nogil:
    """live, every one of its n components marked live (accumulate_tile)."""
    cdef int k
    for k in range(n):
        live[k] = 1
    return live


def posterior_sums(
        const floating[:, ::1] X,           # IN (N, D)
        const floating[:, ::1] q,           # IN (N, K) posteriors, or (0, K) with labels
        const int[::1] labels,              # IN (N,) a hard assignment, or (0,) with q
        const double[::1] sample_weight,    # IN (N,) or (1,): 0 outside a mask
        const floating[:, ::1] centre,      # IN (K, D) what the sums are centred on
        bint full,
        Py_ssize_t block_size,
        double[:, :, ::1] block_stats,      # OUT (B, K, S), as em_pass writes them
        int n_threads):
    """The M-step's per-block sums with given posteriors as the responsibilities, or
    with a hard assignment's (1 for a sample's label, 0 for the rest: a label outside
    0 .. K - 1 counts for no component)."""
    cdef Py_ssize_t n_samples = X.shape[0], n_blocks = block_stats.shape[0]
    cdef Py_ssize_t w_step = weight_step(sample_weight.shape[0], X.shape[0])
    cdef Py_ssize_t b, start, end, tile, i0, n
    cdef int t, k, n_features = X.shape[1], n_components = centre.shape[0]
    cdef int n_stats = block_stats.shape[2]
    cdef char *team
    cdef char *cursor = NULL
    cdef floating *xs = NULL    # (D, TILE) the tile
    cdef floating *resp = NULL  # (K, TILE) its posteriors, 0 past its end
    cdef double *wide = NULL    # (D, TILE) the tile in float64
    cdef double *r = NULL       # (TILE,) see accumulate_tile
    cdef double *scale = NULL   # (TILE,) the tile's sample weights, 0 past its end
    cdef double *acc = NULL     # (K, S, EMC_LANES)
    cdef char *live = NULL      # (K,) all 1
    cdef Py_ssize_t xs_bytes = n_features * TILE * sizeof(floating)
    cdef Py_ssize_t resp_bytes = n_components * TILE * sizeof(floating)
    cdef Py_ssize_t wide_bytes = n_features * TILE * sizeof(double)
    cdef Py_ssize_t row_bytes = TILE * sizeof(double)
    cdef Py_ssize_t acc_bytes = EMC_LANES * n_components * n_stats * sizeof(double)
    cdef Py_ssize_t per_thread = (padded(xs_bytes) + padded(resp_bytes) + padded(wide_bytes)
                                  + 2 * padded(row_bytes) + padded(acc_bytes)
                                  + padded(n_components))
    cdef bint hard = labels.shape[0] > 0
    block_stats[...] = 0
    if n_samples == 0:
        return
    team = team_scratch(n_threads, per_thread)
    with nogil, parallel(num_threads=n_threads):
        cursor = thread_scratch(team, per_thread)
        xs = <floating *> take(&cursor, xs_bytes)
        resp = <floating *> take(&cursor, resp_bytes)
        wide = <double *> take(&cursor, wide_bytes)
        r = <double *> take(&cursor, row_bytes)
        scale = <double *> take(&cursor, row_bytes)
        acc = <double *> take(&cursor, acc_bytes)
        live = all_live(<char *> take(&cursor, n_components), n_components)
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * block_size
            end = min(start + block_size, n_samples)
            for t in range(EMC_LANES * n_components * n_stats):
                acc[t] = 0
            for tile in range((end - start + TILE - 1) // TILE):
                i0 = start + tile * TILE
                n = min(<Py_ssize_t> TILE, end - i0)
                load_tile(&X[0, 0], i0, n, n_features, xs)
                widen(xs, wide, n_features * TILE)
                for k in range(n_components):
                    if hard:
                        for t in range(n):
                            resp[k * TILE + t] = labels[i0 + t] == k
                    else:
                        for t in range(n):
                            resp[k * TILE + t] = q[i0 + t, k]
                    for t in range(n, TILE):
                        resp[k * TILE + t] = 0
                tile_weights(&sample_weight[0], w_step, i0, n, scale)
                accumulate_tile(wide, scale, &centre[0, 0], resp, live, n_components,
                                n_features, n_stats, full, r, acc)
            for k in range(n_components):
                emc_fold_lanes(acc + EMC_LANES * k * n_stats, n_stats, &block_stats[b, k, 0])
    free(team)
