"""Lloyd k-means kernels: assignment plus weighted centre sums in one pass.

Like the EM pass, samples are cut into fixed blocks (size chosen from N alone)
and each block writes its own partial sums; the caller adds them in block order,
so labels, centres and inertia do not depend on the number of threads, nor on
which thread ran a block (the schedule is dynamic). Distances
are computed a tile of samples at a time (structure-of-arrays, vectorised).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY
from libc.stdlib cimport free

from emcore._tile cimport (TILE, load_tile, padded, squared_distance, take, team_scratch,
                           thread_scratch, vmin, weight_step)
from emcore._vecmath cimport emc_pick, emc_rgb_nearestf, emc_sum


cdef inline void tile_sq_distances(
        const floating *xs,        # IN (D, TILE)
        const floating *center,    # IN (D,)
        int n_features,
        floating *dist) noexcept nogil:  # OUT (TILE,) squared distances to center
    cdef int i, t
    cdef floating c, v
    cdef const floating *xrow
    for t in range(TILE):
        dist[t] = 0
    for i in range(n_features):
        c = center[i]
        xrow = xs + i * TILE  # hoisted: an i * TILE + t index keeps gcc from vectorising
        for t in range(TILE):
            v = xrow[t] - c
            dist[t] = dist[t] + v * v


cdef inline void tile_nearest(
        const floating *xs,        # IN (D, TILE)
        const floating *centers,   # IN (K, D)
        int n_centers,
        int n_features,
        floating *best,            # OUT (TILE,) squared distance to the nearest centre
        int *label,                # OUT (TILE,) its index (first one on ties)
        floating *dist) noexcept nogil:  # SCRATCH (TILE,)
    cdef int j, t
    cdef const floating *c
    cdef floating v0, v1, v2, d
    if floating is float and n_features == 3:  # RGB photos: the C loop in _vecmath.h
        emc_rgb_nearestf(xs, xs + TILE, xs + 2 * TILE, centers, n_centers, TILE, best, label)
        return
    for t in range(TILE):
        best[t] = INFINITY
        label[t] = 0
    if n_features == 3:  # RGB float64: distance and selection fused, one pass per centre
        for j in range(n_centers):
            c = centers + 3 * j
            for t in range(TILE):
                v0 = xs[t] - c[0]
                v1 = xs[TILE + t] - c[1]
                v2 = xs[2 * TILE + t] - c[2]
                d = v0 * v0 + v1 * v1 + v2 * v2
                label[t] = emc_pick(d < best[t], j, label[t])
                best[t] = vmin(d, best[t])
        return
    for j in range(n_centers):
        tile_sq_distances(xs, centers + j * n_features, n_features, dist)
        for t in range(TILE):
            label[t] = emc_pick(dist[t] < best[t], j, label[t])
            best[t] = vmin(dist[t], best[t])


cdef inline void add_run(double *row, double w, double s0, double s1,
                         double s2) noexcept nogil:
    """Add one run's weight and RGB sums to its cluster's row."""
    row[0] += w
    row[1] += s0
    row[2] += s1
    row[3] += s2


cdef inline void add_tile_to_sums(
        const floating *X,              # IN (N, D)
        const double *sample_weight,    # IN (N,) or (1,)
        Py_ssize_t w_step,
        Py_ssize_t i0,
        Py_ssize_t n,                   # samples i0..i0+n-1, n <= TILE
        int n_features,
        const int *label,               # IN (n,) their clusters
        const floating *sq,             # IN (n,) their squared distances to them
        double *term,                   # SCRATCH (TILE,)
        double *sums,                   # IN/OUT (K, 1 + D) the block's cluster sums
        double *inertia) noexcept nogil:  # IN/OUT the block's inertia
    """Add a tile's samples to their clusters' weights and sums, and to the inertia,
    in an order fixed by the tile alone. For RGB, a run of neighbours in the same
    cluster is summed in registers and added once: adding each sample into memory
    would chain every add on the previous one's store."""
    cdef Py_ssize_t t
    cdef int d, run
    cdef double w, run_w = 0, run_0 = 0, run_1 = 0, run_2 = 0
    cdef const floating *x
    cdef double *row
    for t in range(n):
        term[t] = sample_weight[(i0 + t) * w_step] * sq[t]
    for t in range(n, TILE):
        term[t] = 0
    inertia[0] += emc_sum(term, TILE)
    if n_features == 3:
        run = label[0]
        for t in range(n):
            if label[t] != run:
                add_run(sums + 4 * run, run_w, run_0, run_1, run_2)
                run_w = run_0 = run_1 = run_2 = 0
                run = label[t]
            w = sample_weight[(i0 + t) * w_step]
            x = X + (i0 + t) * 3
            run_w = run_w + w
            run_0 = run_0 + w * x[0]
            run_1 = run_1 + w * x[1]
            run_2 = run_2 + w * x[2]
        add_run(sums + 4 * run, run_w, run_0, run_1, run_2)
        return
    for t in range(n):
        w = sample_weight[(i0 + t) * w_step]
        x = X + (i0 + t) * n_features
        row = sums + label[t] * (1 + n_features)
        row[0] += w
        for d in range(n_features):
            row[1 + d] += w * x[d]


def lloyd_pass(
        const floating[:, ::1] X,           # IN (N, D)
        const double[::1] sample_weight,    # IN (N,) or (1,) shared by all
        const floating[:, ::1] centers,     # IN (K, D)
        int[::1] labels,                    # OUT (N,)
        Py_ssize_t block_size,
        double[:, :, ::1] block_sums,       # OUT (B, K, 1 + D): weight, then sum w x
        double[::1] block_inertia,          # OUT (B,) sum w ||x - c||^2
        int n_threads):
    """Assign every sample to its nearest centre and sum the clusters' weights and points."""
    cdef Py_ssize_t n_samples = X.shape[0], n_blocks = block_sums.shape[0]
    cdef Py_ssize_t w_step = weight_step(sample_weight.shape[0], X.shape[0])
    cdef Py_ssize_t b, tile, i0, n, start, end
    cdef int t, n_features = X.shape[1], n_centers = centers.shape[0]
    cdef char *team
    cdef char *cursor = NULL
    cdef floating *xs = NULL          # (D, TILE)
    cdef floating *best = NULL        # (TILE,)
    cdef floating *dist = NULL        # (TILE,)
    cdef int *tile_label = NULL       # (TILE,)
    cdef double *term = NULL          # (TILE,)
    cdef double inertia
    cdef Py_ssize_t xs_bytes = n_features * TILE * sizeof(floating)
    cdef Py_ssize_t row_bytes = TILE * sizeof(floating)
    cdef Py_ssize_t label_bytes = TILE * sizeof(int)
    cdef Py_ssize_t term_bytes = TILE * sizeof(double)
    cdef Py_ssize_t per_thread = (padded(xs_bytes) + 2 * padded(row_bytes) + padded(label_bytes)
                                  + padded(term_bytes))
    block_sums[...] = 0
    block_inertia[...] = 0
    if n_samples == 0:
        return
    team = team_scratch(n_threads, per_thread)
    with nogil, parallel(num_threads=n_threads):
        cursor = thread_scratch(team, per_thread)
        xs = <floating *> take(&cursor, xs_bytes)
        best = <floating *> take(&cursor, row_bytes)
        dist = <floating *> take(&cursor, row_bytes)
        tile_label = <int *> take(&cursor, label_bytes)
        term = <double *> take(&cursor, term_bytes)
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * block_size
            end = min(start + block_size, n_samples)
            inertia = 0
            for tile in range((end - start + TILE - 1) // TILE):
                i0 = start + tile * TILE
                n = min(<Py_ssize_t> TILE, end - i0)
                load_tile(&X[0, 0], i0, n, n_features, xs)
                tile_nearest(xs, &centers[0, 0], n_centers, n_features, best, tile_label,
                             dist)
                for t in range(n):
                    labels[i0 + t] = tile_label[t]
                add_tile_to_sums(&X[0, 0], &sample_weight[0], w_step, i0, n, n_features,
                                 tile_label, best, term, &block_sums[b, 0, 0], &inertia)
            block_inertia[b] = inertia
    free(team)


def candidate_potentials(
        const floating[:, ::1] X,           # IN (N, D)
        const double[::1] sample_weight,    # IN (N,) or (1,) shared by all
        const floating[:, ::1] candidates,  # IN (T, D)
        const double[::1] closest_sq,       # IN (N,) squared distance to the nearest chosen centre
        Py_ssize_t block_size,
        double[:, ::1] block_potential,     # OUT (B, T)
        int n_threads):
    """k-means++: sum_i w_i min(closest_i, ||x_i - c_t||^2) for each candidate t, per block."""
    cdef Py_ssize_t n_samples = X.shape[0], n_blocks = block_potential.shape[0]
    cdef Py_ssize_t w_step = weight_step(sample_weight.shape[0], X.shape[0])
    cdef Py_ssize_t b, tile, i0, n, start, end
    cdef int t, c, n_features = X.shape[1], n_candidates = candidates.shape[0]
    cdef char *team
    cdef char *cursor = NULL
    cdef floating *xs = NULL          # (D, TILE)
    cdef floating *dist = NULL        # (TILE,)
    cdef double *term = NULL          # (TILE,)
    cdef Py_ssize_t xs_bytes = n_features * TILE * sizeof(floating)
    cdef Py_ssize_t dist_bytes = TILE * sizeof(floating)
    cdef Py_ssize_t term_bytes = TILE * sizeof(double)
    cdef Py_ssize_t per_thread = padded(xs_bytes) + padded(dist_bytes) + padded(term_bytes)
    block_potential[...] = 0
    if n_samples == 0:
        return
    team = team_scratch(n_threads, per_thread)
    with nogil, parallel(num_threads=n_threads):
        cursor = thread_scratch(team, per_thread)
        xs = <floating *> take(&cursor, xs_bytes)
        dist = <floating *> take(&cursor, dist_bytes)
        term = <double *> take(&cursor, term_bytes)
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * block_size
            end = min(start + block_size, n_samples)
            for tile in range((end - start + TILE - 1) // TILE):
                i0 = start + tile * TILE
                n = min(<Py_ssize_t> TILE, end - i0)
                load_tile(&X[0, 0], i0, n, n_features, xs)
                for c in range(n_candidates):
                    tile_sq_distances(xs, &candidates[c, 0], n_features, dist)
                    for t in range(n):
                        term[t] = sample_weight[(i0 + t) * w_step] * vmin(
                            <double> dist[t], closest_sq[i0 + t])
                    for t in range(n, TILE):
                        term[t] = 0
                    block_potential[b, c] += emc_sum(term, TILE)
    free(team)


def update_closest(
        const floating[:, ::1] X,           # IN (N, D)
        const double[::1] sample_weight,    # IN (N,) or (1,) shared by all
        const floating[::1] center,         # IN (D,) the newly chosen centre
        double[::1] closest_sq,             # IN/OUT (N,)
        Py_ssize_t block_size,
        double[::1] block_potential,        # OUT (B,) sum_i w_i closest_i per block
        int n_threads):
    """closest_i = min(closest_i, ||x_i - center||^2), and each block's new potential."""
    cdef Py_ssize_t n_samples = X.shape[0], n_blocks = block_potential.shape[0]
    cdef Py_ssize_t w_step = weight_step(sample_weight.shape[0], X.shape[0])
    cdef Py_ssize_t b, i, start, end
    cdef int n_features = X.shape[1]
    cdef double d, potential
    with nogil, parallel(num_threads=n_threads):
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * block_size
            end = min(start + block_size, n_samples)
            potential = 0
            for i in range(start, end):
                d = squared_distance(&X[i, 0], &center[0], n_features)
                if d < closest_sq[i]:
                    closest_sq[i] = d
                potential = potential + sample_weight[i * w_step] * closest_sq[i]
            block_potential[b] = potential
