"""Lloyd k-means kernels: assignment plus weighted centre sums in one pass.

Like the EM pass, samples are cut into fixed blocks (size chosen from N alone)
and each block writes its own partial sums; the caller adds them in block order,
so labels, centres and inertia do not depend on the number of threads, nor on
which thread ran a block (the schedule is dynamic). Distances
are computed a tile of samples at a time (structure-of-arrays, vectorised).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, sqrt
from libc.stdlib cimport calloc, free, malloc

from emcore._tile cimport (TILE, load_tile, padded, take, team_scratch, thread_scratch,
                           tile_weights, vmax, vmin, weight_step)
from emcore._vecmath cimport (emc_indices_at_most, emc_maxd, emc_min_maxd, emc_min_maxf,
                              emc_label_changes, emc_masked_sums, emc_mind, emc_pick,
                              emc_rgb_nearestf, emc_rgba_nearestf, emc_sum)


cdef inline void tile_sq_distances(
        const floating *xs,        # IN (D, TILE)
        const floating *center,    # IN (D,)
        int n_features,
        floating *dist) noexcept nogil:  # OUT (TILE,) squared distances to center
    cdef int i, t
    cdef floating c, v
    cdef const floating *xrow
    c = center[0]  # the first feature sets dist (0 + v * v is v * v; a zero fill first
    for t in range(TILE):  # becomes a memset, slow to start at this size)
        v = xs[t] - c
        dist[t] = v * v
    for i in range(1, n_features):
        c = center[i]
        xrow = xs + i * TILE  # hoisted: an i * TILE + t index keeps gcc from vectorising
        for t in range(TILE):
            v = xrow[t] - c
            dist[t] = dist[t] + v * v


# Box pruning of the nearest-centre search. Every sample of a tile lies in the
# tile's bounding box, so its nearest centre is at most U away, U being the
# smallest over centres of the distance to the box's farthest corner; a centre
# farther than U from the box itself is nobody's nearest and is left out. The
# search over the rest, in index order, gives exactly the labels and distances of
# the full search: CANDIDATE_MARGIN covers the rounding of a computed distance
# (relative 1e-6 at most with PRUNE_MAX_FEATURES float32 terms). Samples in
# colour order (emcore/_codes.pxd) make tiles small boxes: a photo's tile keeps
# about 30 of 256 centres. A pass also keeps each tile's reach, its samples'
# largest squared distance to their nearest centre: when no centre has moved more
# than m since, every sample is within sqrt(reach) + m of some centre (its old
# nearest one, moved), a second bound on U that keeps about 18 instead of 32.
cdef double CANDIDATE_MARGIN = 1.0001
cdef enum:
    PRUNE_MIN_CENTERS = 16   # below this the test costs more than the search it saves
    PRUNE_MAX_FEATURES = 8
PRUNED = (PRUNE_MIN_CENTERS, PRUNE_MAX_FEATURES)  # for the door: when reach is of use


cdef inline int tile_candidates(
        const floating *xs,          # IN (D, TILE)
        const double *centers_t,     # IN (D, K) the centres, feature by feature
        int n_centers,
        int n_features,
        double upper,                # IN a bound on each sample's nearest squared distance
        double *far,                 # SCRATCH (K,)
        double *gap,                 # SCRATCH (K,)
        int *candidate) noexcept nogil:  # OUT (K + 8,) the centres kept, in index order
    """The centres that can be nearest to a sample of the tile; returns their count."""
    cdef int i, j, u, m
    cdef floating lo_t, hi_t
    cdef double corner
    cdef double low4[4]
    cdef double box[8]
    if n_features == 3 or n_features == 4:  # RGB(A): three features in one pass
        for i in range(n_features):
            lane_min_max(xs + i * TILE, &lo_t, &hi_t)
            box[2 * i] = lo_t
            box[2 * i + 1] = hi_t
        rgb_box_distances(centers_t, n_centers, box, far, gap)
        if n_features == 4:  # and the fourth in a second
            add_feature_box_distances(centers_t + 3 * n_centers, n_centers, box[6], box[7],
                                      far, gap)
    else:
        for j in range(n_centers):
            far[j] = 0
            gap[j] = 0
        for i in range(n_features):
            lane_min_max(xs + i * TILE, &lo_t, &hi_t)
            add_feature_box_distances(centers_t + i * n_centers, n_centers, lo_t, hi_t, far,
                                      gap)
    # the smallest far[j]: four lanes (a min is exact in any order), then the rest
    for u in range(4):
        low4[u] = INFINITY
    for j in range(0, n_centers - 3, 4):
        for u in range(4):
            low4[u] = emc_mind(far[j + u], low4[u])
    corner = emc_mind(emc_mind(low4[0], low4[1]), emc_mind(low4[2], low4[3]))
    for j in range(n_centers - n_centers % 4, n_centers):
        corner = emc_mind(far[j], corner)
    m = emc_indices_at_most(gap, n_centers, emc_mind(upper, corner) * CANDIDATE_MARGIN,
                            candidate)
    if m == 0:  # only a wrong reach bounds less than the nearest centre's distance: the
        # corner bound always keeps that centre, so the search never runs on none
        m = emc_indices_at_most(gap, n_centers, corner * CANDIDATE_MARGIN, candidate)
    return m


cdef inline void add_feature_box_distances(
        const double *row,           # IN (K,) one feature of every centre
        int n_centers,
        double lo, double hi,        # IN the tile's range on that feature
        double *far,                 # IN/OUT (K,) + the squared distance to the farther face
        double *gap) noexcept nogil:  # IN/OUT (K,) + the squared distance to the range
    cdef int j
    cdef double c, a, g
    for j in range(n_centers):
        c = row[j]
        a = emc_maxd(c - lo, hi - c)          # to the farther face: never negative
        g = emc_maxd(emc_maxd(lo - c, c - hi), 0)
        far[j] = far[j] + a * a
        gap[j] = gap[j] + g * g


cdef inline void rgb_box_distances(
        const double *centers_t,     # IN (3, K)
        int n_centers,
        const double *box,           # IN (6,) low and high of each feature
        double *far,                 # OUT (K,) squared distance to the farthest corner
        double *gap) noexcept nogil:  # OUT (K,) squared distance to the box
    cdef int j
    cdef double c0, c1, c2, a0, a1, a2, g0, g1, g2
    cdef const double *r0 = centers_t
    cdef const double *r1 = centers_t + n_centers
    cdef const double *r2 = centers_t + 2 * n_centers
    for j in range(n_centers):
        c0 = r0[j]
        c1 = r1[j]
        c2 = r2[j]
        a0 = emc_maxd(c0 - box[0], box[1] - c0)
        a1 = emc_maxd(c1 - box[2], box[3] - c1)
        a2 = emc_maxd(c2 - box[4], box[5] - c2)
        g0 = emc_maxd(emc_maxd(box[0] - c0, c0 - box[1]), 0)
        g1 = emc_maxd(emc_maxd(box[2] - c1, c1 - box[3]), 0)
        g2 = emc_maxd(emc_maxd(box[4] - c2, c2 - box[5]), 0)
        far[j] = a0 * a0 + a1 * a1 + a2 * a2
        gap[j] = g0 * g0 + g1 * g1 + g2 * g2


cdef inline void lane_min_max(
        const floating *x,          # IN (TILE,)
        floating *low,              # OUT min of x
        floating *high) noexcept nogil:  # OUT max of x
    """A tile row's smallest and largest values (in vector registers: _vecmath.h)."""
    if floating is float:
        emc_min_maxf(x, TILE, low, high)
    else:
        emc_min_maxd(x, TILE, low, high)


cdef inline void nearest_in_rows(
        const float *xs,           # IN (D, TILE), D = 3 or 4
        int n_features,
        const float *centers,      # IN (K, D)
        int n_centers,
        float *best,               # OUT (TILE,)
        int *label) noexcept nogil:  # OUT (TILE,)
    if n_features == 3:
        emc_rgb_nearestf(xs, TILE, centers, n_centers, TILE, best, label)
    else:
        emc_rgba_nearestf(xs, TILE, centers, n_centers, TILE, best, label)


cdef inline void tile_nearest(
        const floating *xs,        # IN (D, TILE)
        const floating *centers,   # IN (K, D)
        int n_centers,
        int n_features,
        floating *best,            # OUT (TILE,) squared distance to the nearest centre
        int *label,                # OUT (TILE,) its index (first one on ties)
        floating *dist,            # SCRATCH (TILE,)
        const double *centers_t,   # IN (D, K), or NULL: search every centre
        double *far,               # SCRATCH (K,) with centers_t
        double *gap,               # SCRATCH (K,) with centers_t
        int *candidate,            # SCRATCH (K + 8,) with centers_t
        floating *picked,          # SCRATCH (K, D) with centers_t
        double upper) noexcept nogil:  # IN with centers_t: a bound on every nearest distance
    cdef int j, jj, t, i, first, m = n_centers
    if centers_t != NULL:
        m = tile_candidates(xs, centers_t, n_centers, n_features, upper, far, gap, candidate)
    if floating is float and (n_features == 3 or n_features == 4):  # RGB, RGBA: _vecmath.h
        if m == n_centers:
            nearest_in_rows(xs, n_features, centers, n_centers, best, label)
            return
        for jj in range(m):
            for i in range(n_features):
                picked[n_features * jj + i] = centers[n_features * candidate[jj] + i]
        nearest_in_rows(xs, n_features, picked, m, best, label)
        for t in range(TILE):
            label[t] = candidate[label[t]]
        return
    # every label starts at a valid index (what a NaN distance leaves), the first
    # candidate's: a fill with a constant 0 became a memset, slow to start at this size
    first = candidate[0] if 0 < m < n_centers else 0
    for t in range(TILE):
        best[t] = INFINITY
        label[t] = first
    for jj in range(m):
        j = jj if m == n_centers else candidate[jj]
        tile_sq_distances(xs, centers + j * n_features, n_features, dist)
        for t in range(TILE):
            label[t] = emc_pick(dist[t] < best[t], j, label[t])
            best[t] = vmin(dist[t], best[t])


cdef inline void add_run(double *row, int n_features, double w, double s0, double s1,
                         double s2, double s3) noexcept nogil:
    """Add one run's weight and sums (the first n_features of s0..s3) to its cluster's row."""
    row[0] += w
    row[1] += s0
    if n_features >= 2:
        row[2] += s1
    if n_features >= 3:
        row[3] += s2
    if n_features == 4:
        row[4] += s3


cdef inline void register_run_sums(
        const double *wx,               # IN (1 + D, TILE) w, then w x by feature
        Py_ssize_t n,
        int n_features,                 # 1 to 4
        const int *label,               # IN (n,)
        double *sums) noexcept nogil:   # IN/OUT (K, 1 + D)
    """Add runs of neighbours in one cluster to its row, each run summed in registers."""
    cdef Py_ssize_t t
    cdef int run = label[0]
    cdef double run_w = 0, run_0 = 0, run_1 = 0, run_2 = 0, run_3 = 0
    for t in range(n):
        if label[t] != run:
            add_run(sums + (1 + n_features) * run, n_features, run_w, run_0, run_1, run_2,
                    run_3)
            run_w = run_0 = run_1 = run_2 = run_3 = 0
            run = label[t]
        run_w = run_w + wx[t]
        run_0 = run_0 + wx[TILE + t]
        if n_features >= 2:
            run_1 = run_1 + wx[2 * TILE + t]
        if n_features >= 3:
            run_2 = run_2 + wx[3 * TILE + t]
        if n_features == 4:
            run_3 = run_3 + wx[4 * TILE + t]
    add_run(sums + (1 + n_features) * run, n_features, run_w, run_0, run_1, run_2, run_3)


cdef inline void weighted_row(const double *w, const floating *x, double *out,
                              Py_ssize_t n) noexcept nogil:
    """out[t] = w[t] x[t] in float64 (x widened first: one rounding, as x[t] * w)."""
    cdef Py_ssize_t t
    for t in range(n):
        out[t] = w[t] * x[t]


cdef enum:
    # A tile's cluster sums go by masks (emc_masked_sums) when its label changes are at
    # least MASK_COST x K x (2 + D): a mask pass costs about K (1 + D) vector steps, a
    # change of label a mispredicted branch. On samples in no order (Zen 4, AVX-512
    # build) masks were 2x faster at 2 clusters, 15% at 6 and even at 8 (2 features);
    # colour-ordered pixels, whose tiles change label a few times, keep their runs.
    MASK_COST = 4


cdef inline bint by_masks(int n_centers, int n_features, int changes) noexcept nogil:
    """Whether a tile's cluster sums are cheaper by masks than by runs of one label."""
    return MASK_COST * n_centers * (2 + n_features) <= changes


cdef inline void add_tile_to_sums(
        const floating *xs,             # IN (D, TILE) the tile
        const double *sample_weight,    # IN (N,) or (1,)
        Py_ssize_t w_step,
        Py_ssize_t i0,
        Py_ssize_t n,                   # samples i0..i0+n-1, n <= TILE
        int n_features,
        int n_centers,
        const int *label,               # IN (n,) their clusters
        const floating *sq,             # IN (n,) their squared distances to them
        double *term,                   # SCRATCH (TILE,)
        double *wx,                     # SCRATCH (1 + D, TILE)
        double *acc,                    # SCRATCH (1 + D,)
        double *sums,                   # IN/OUT (K, 1 + D) the block's cluster sums
        double *inertia) noexcept nogil:  # IN/OUT the block's inertia
    """Add a tile's samples to their clusters' weights and sums, and to the inertia,
    in an order fixed by the tile alone. A run of neighbours in the same cluster is
    summed apart and added once (in registers up to four features): adding each sample into its
    cluster's row would chain every add on the previous one's store; the products
    w x are made first, in vector registers, so that the run loop only adds."""
    cdef Py_ssize_t t
    cdef int d, run
    cdef const double *wt = sample_weight + i0 * w_step
    if w_step:  # the two weight layouts apart: a strided index keeps gcc from vectorising
        for t in range(n):
            term[t] = wt[t] * sq[t]
    else:
        for t in range(n):
            term[t] = wt[0] * sq[t]
    if n < TILE:  # the tail's padding adds nothing (a guard: gcc's memset is slow to start)
        for t in range(n, TILE):
            term[t] = 0
    inertia[0] += emc_sum(term, TILE)
    tile_weights(sample_weight, w_step, i0, n, wx)
    for d in range(n_features):  # hoisted rows: a d * TILE + t index keeps gcc from vectorising
        weighted_row(wx, xs + d * TILE, wx + (1 + d) * TILE, n)
    if n_features <= 4 and by_masks(n_centers, n_features, emc_label_changes(label, n)):
        for t in range(n):  # term is free again: it takes the labels as doubles
            term[t] = label[t]
        if n < TILE:  # the padding counts for no cluster (a guard, as above)
            for t in range(n, TILE):
                term[t] = -1
        emc_masked_sums(wx, TILE, 1 + n_features, term, n_centers, TILE, sums)
        return
    # one to four features: the run's sums in registers (a call per width, so that
    # each inlined copy knows its width)
    if n_features == 4:
        register_run_sums(wx, n, 4, label, sums)
        return
    if n_features == 3:
        register_run_sums(wx, n, 3, label, sums)
        return
    if n_features == 2:
        register_run_sums(wx, n, 2, label, sums)
        return
    if n_features == 1:
        register_run_sums(wx, n, 1, label, sums)
        return
    run = label[0]
    for d in range(1 + n_features):
        acc[d] = 0
    for t in range(n):
        if label[t] != run:
            flush_run(sums + run * (1 + n_features), acc, 1 + n_features)
            run = label[t]
        for d in range(1 + n_features):
            acc[d] = acc[d] + wx[d * TILE + t]
    flush_run(sums + run * (1 + n_features), acc, 1 + n_features)


cdef inline void flush_run(double *row, double *acc, int n) noexcept nogil:
    """Add a run's sums to its cluster's row, and start the next run at zero."""
    cdef int d
    for d in range(n):
        row[d] += acc[d]
        acc[d] = 0


cdef double farthest_move(const floating *a, const floating *b, int n_centers,
                          int n_features) noexcept nogil:
    """The largest distance between a centre of a (K, D) and the same one of b."""
    cdef int j, i
    cdef double v, d, top = 0
    for j in range(n_centers):
        d = 0
        for i in range(n_features):
            v = <double> a[j * n_features + i] - <double> b[j * n_features + i]
            d = d + v * v
        top = emc_maxd(top, d)
    return sqrt(top)


cdef inline double tile_reach(const floating *best) noexcept nogil:  # IN (TILE,)
    """The largest nearest distance in a tile (its slots past n repeat sample i0,
    load_tile, so a max over all of them); a local of its own (see box_gap)."""
    cdef floating low, high
    lane_min_max(best, &low, &high)
    return high


cdef double *transposed(const floating *centers, int n_centers,
                        int n_features) noexcept nogil:
    """A malloc'ed (D, K) float64 copy of (K, D) centres (free() it), or NULL."""
    cdef double *out = <double *> malloc(n_centers * n_features * sizeof(double))
    cdef int i, j
    if out == NULL:
        return NULL
    for j in range(n_centers):
        for i in range(n_features):
            out[i * n_centers + j] = centers[j * n_features + i]
    return out


def lloyd_pass(
        const floating[:, ::1] X,           # IN (N, D)
        const double[::1] sample_weight,    # IN (N,) or (1,) shared by all
        const floating[:, ::1] centers,     # IN (K, D)
        int[::1] labels,                    # OUT (N,)
        Py_ssize_t block_size,
        double[:, :, ::1] block_sums,       # OUT (B, K, 1 + D): weight, then sum w x
        double[::1] block_inertia,          # OUT (B,) sum w ||x - c||^2
        double[::1] reach,                  # IN/OUT (B ceil(block_size / TILE),) or (0,)
        const floating[:, ::1] reach_centers,  # IN (K, D) the centres reach was written
        int n_threads,                      # under, or (0, D): reach holds nothing yet
        bint given=False):                  # IN: labels are given (IN), not searched
    """Assign every sample to its nearest centre and sum the clusters' weights and points.
    Each tile's reach (its samples' largest squared distance to their nearest centre)
    is written to ``reach`` when it has room; with ``reach_centers``, the reach in place
    narrows the search. The labels and sums are the same either way. With ``given``,
    the labels (each in 0 .. K - 1) are the clusters, nothing is searched, and the
    sums are those of the labels (a segment's mean colour, for any model's labels);
    the inertia is then 0 and the centres are not read."""
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
    cdef double *wx = NULL            # (1 + D, TILE)
    cdef double *acc = NULL           # (1 + D,)
    cdef double *far = NULL           # (K,) with pruning
    cdef double *gap = NULL           # (K,) with pruning
    cdef int *candidate = NULL        # (K + 8,) with pruning
    cdef floating *picked = NULL      # (K, D) with pruning
    cdef double *centers_t = NULL     # (D, K) with pruning, shared by the threads
    cdef floating *zero = NULL        # (TILE,) with given labels: no distances, shared
    cdef double inertia, upper, radius
    cdef Py_ssize_t slot, tiles_per_block = (block_size + TILE - 1) // TILE
    cdef bint prune = (n_centers >= PRUNE_MIN_CENTERS and n_features <= PRUNE_MAX_FEATURES
                       and not given)
    cdef bint keep = reach.shape[0] > 0 and not given
    cdef bint use = keep and reach_centers.shape[0] == n_centers
    cdef double moved = farthest_move(&centers[0, 0], &reach_centers[0, 0], n_centers,
                                      n_features) if use else 0
    cdef Py_ssize_t xs_bytes = n_features * TILE * sizeof(floating)
    cdef Py_ssize_t row_bytes = TILE * sizeof(floating)
    cdef Py_ssize_t label_bytes = TILE * sizeof(int)
    cdef Py_ssize_t term_bytes = TILE * sizeof(double)
    cdef Py_ssize_t wx_bytes = (1 + n_features) * TILE * sizeof(double)
    cdef Py_ssize_t acc_bytes = (1 + n_features) * sizeof(double)
    cdef Py_ssize_t k_bytes = n_centers * sizeof(double) if prune else 0
    cdef Py_ssize_t candidate_bytes = (n_centers + 8) * sizeof(int) if prune else 0
    cdef Py_ssize_t picked_bytes = n_centers * n_features * sizeof(floating) if prune else 0
    cdef Py_ssize_t per_thread = (padded(xs_bytes) + 2 * padded(row_bytes) + padded(label_bytes)
                                  + padded(term_bytes) + padded(wx_bytes) + padded(acc_bytes)
                                  + 2 * padded(k_bytes)
                                  + padded(candidate_bytes) + padded(picked_bytes))
    block_sums[...] = 0
    block_inertia[...] = 0
    if n_samples == 0:
        return
    team = team_scratch(n_threads, per_thread)
    if prune:
        centers_t = transposed(&centers[0, 0], n_centers, n_features)
        if centers_t == NULL:
            free(team)
            raise MemoryError()
    if given:
        zero = <floating *> calloc(TILE, sizeof(floating))
        if zero == NULL:
            free(team)
            raise MemoryError()
    with nogil, parallel(num_threads=n_threads):
        cursor = thread_scratch(team, per_thread)
        xs = <floating *> take(&cursor, xs_bytes)
        best = <floating *> take(&cursor, row_bytes)
        dist = <floating *> take(&cursor, row_bytes)
        tile_label = <int *> take(&cursor, label_bytes)
        term = <double *> take(&cursor, term_bytes)
        wx = <double *> take(&cursor, wx_bytes)
        acc = <double *> take(&cursor, acc_bytes)
        far = <double *> take(&cursor, k_bytes)
        gap = <double *> take(&cursor, k_bytes)
        candidate = <int *> take(&cursor, candidate_bytes)
        picked = <floating *> take(&cursor, picked_bytes)
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * block_size
            end = min(start + block_size, n_samples)
            inertia = 0
            for tile in range((end - start + TILE - 1) // TILE):
                i0 = start + tile * TILE
                n = min(<Py_ssize_t> TILE, end - i0)
                load_tile(&X[0, 0], i0, n, n_features, xs)
                if given:
                    for t in range(n):
                        tile_label[t] = labels[i0 + t]
                    add_tile_to_sums(xs, &sample_weight[0], w_step, i0, n, n_features,
                                     n_centers, tile_label, zero, term, wx, acc,
                                     &block_sums[b, 0, 0], &inertia)
                    continue
                slot = b * tiles_per_block + tile
                upper = INFINITY
                if use:
                    radius = sqrt(reach[slot]) + moved
                    upper = radius * radius
                tile_nearest(xs, &centers[0, 0], n_centers, n_features, best, tile_label,
                             dist, centers_t, far, gap, candidate, picked, upper)
                if keep:
                    reach[slot] = tile_reach(best)
                for t in range(n):
                    labels[i0 + t] = tile_label[t]
                add_tile_to_sums(xs, &sample_weight[0], w_step, i0, n, n_features, n_centers,
                                 tile_label, best, term, wx, acc, &block_sums[b, 0, 0],
                                 &inertia)
            block_inertia[b] = inertia
    free(team)
    free(centers_t)
    free(zero)


# k-means++ seeding. A tile of samples is skipped for a centre (chosen or tried)
# when the gap between the centre and the tile's bounding box is at least the
# tile's largest distance to a chosen centre: then no sample of the tile gets
# closer, and its potential is exactly the one it already had (the same terms,
# summed in the same order). PRUNE_MARGIN covers the rounding of a float32
# distance (relative 1e-6 at most), so skipping never changes a result.
cdef double PRUNE_MARGIN = 1.00001
cdef enum:
    GROUP = 16  # tiles whose joint box is tested first: most are far from a new centre
SEEDING_GROUP = GROUP  # for the door (emcore/_kernels.py), which sizes the group arrays


cdef inline void tile_box(
        const floating *X, Py_ssize_t i0, Py_ssize_t n, int n_features,
        floating *box,                 # OUT (2 D,) at stride ``step``: lowest, then highest
        Py_ssize_t step) noexcept nogil:
    """The bounding box of rows i0 .. i0 + n - 1 (a tile's, or a group of tiles')."""
    cdef Py_ssize_t t
    cdef int i
    cdef floating v, low, high
    for i in range(n_features):
        low = high = X[i0 * n_features + i]
        for t in range(1, n):
            v = X[(i0 + t) * n_features + i]
            low = vmin(v, low)
            high = vmax(v, high)
        box[i * step] = low
        box[(n_features + i) * step] = high


cdef inline void tile_gaps(
        const floating *boxes_t,       # IN (2 D, n_tiles) the tiles' boxes, feature by feature
        Py_ssize_t n_tiles,
        Py_ssize_t first,              # tiles first .. first + n - 1
        int n,
        const floating *center,        # IN (D,)
        int n_features,
        double *gaps) noexcept nogil:  # OUT (n,) squared distance from center to each box
    """The squared distance from center to the nearest point of each of n neighbouring
    tiles' boxes, in vector registers across tiles (branch-free: whether a centre is
    inside a box on a feature is not predictable)."""
    cdef int i, t
    cdef double c, g
    cdef const floating *low
    cdef const floating *high
    for i in range(n_features):
        c = center[i]
        low = boxes_t + i * n_tiles + first
        high = boxes_t + (n_features + i) * n_tiles + first
        if i == 0:  # the first feature sets gaps (no zero fill: see tile_sq_distances)
            for t in range(n):
                g = emc_maxd(emc_maxd(<double> low[t] - c, c - <double> high[t]), 0)
                gaps[t] = g * g
        else:
            for t in range(n):
                g = emc_maxd(emc_maxd(<double> low[t] - c, c - <double> high[t]), 0)
                gaps[t] = gaps[t] + g * g


# A prange body shares every variable it only writes through a pointer among its
# threads; these two return such results from a local of their own instead.
cdef inline double box_gap(
        const floating *boxes_t, Py_ssize_t n_boxes, Py_ssize_t box,
        const floating *center, int n_features) noexcept nogil:
    """tile_gaps for one box."""
    cdef double gap = 0  # (n_features >= 1 sets it; gcc cannot know)
    tile_gaps(boxes_t, n_boxes, box, 1, center, n_features, &gap)
    return gap


cdef inline double largest(const double *x, int n) noexcept nogil:
    cdef double low, high
    emc_min_maxd(x, n, &low, &high)
    return high


cdef inline void potential_terms(
        const floating *xs,             # IN (D, TILE) the tile
        const floating *center,         # IN (D,)
        int n_features,
        const double *sample_weight, Py_ssize_t w_step, Py_ssize_t i0, Py_ssize_t n,
        const double *closest_sq,       # IN (N,)
        floating *dist,                 # OUT (TILE,) squared distances to center
        double *term) noexcept nogil:   # OUT (TILE,) w_i min(closest_i, dist_i), 0 past n
    cdef Py_ssize_t t
    cdef const double *wt = sample_weight + i0 * w_step
    cdef const double *closest = closest_sq + i0
    tile_sq_distances(xs, center, n_features, dist)
    if w_step:  # as in add_tile_to_sums
        for t in range(n):
            term[t] = wt[t] * vmin(<double> dist[t], closest[t])
    else:
        for t in range(n):
            term[t] = wt[0] * vmin(<double> dist[t], closest[t])
    if n < TILE:  # as in add_tile_to_sums
        for t in range(n, TILE):
            term[t] = 0


cdef void draw_samples(
        const double *u,                # IN (T,) uniforms in [0, 1)
        int n_u,
        int *order,                     # SCRATCH (T,)
        const double *tile_potential,   # IN (n_tiles,)
        double total,                   # IN their sum, in tile order
        Py_ssize_t n_tiles,
        Py_ssize_t n_samples,
        const double *sample_weight,
        Py_ssize_t w_step,
        const double *closest_sq,       # IN (N,)
        Py_ssize_t *chosen) noexcept nogil:  # OUT (T,)
    """For each u, a sample drawn with probability w_i closest_i / potential: the first
    whose cumulative mass (in sample order, tile by tile) passes u x potential. The
    u are taken in ascending order in one walk over the tiles: each resumes where the
    last stopped, with the same running sum a walk of its own would have reached
    (every tile passed for a smaller u is passed for a larger one)."""
    cdef Py_ssize_t tile = 0, i, first, end, last = -1
    cdef double before = 0, mass, target
    cdef int j, m, c
    if not total > 0:  # every sample sits on a chosen centre
        for j in range(n_u):
            chosen[j] = 0
        return
    for j in range(n_u):  # insertion sort: T is a handful
        m = j
        while m > 0 and u[order[m - 1]] > u[j]:
            order[m] = order[m - 1]
            m = m - 1
        order[m] = j
    for j in range(n_u):
        c = order[j]
        target = u[c] * total
        while tile < n_tiles:
            if tile_potential[tile] > 0:
                last = tile
                if before + tile_potential[tile] > target:
                    break
                before = before + tile_potential[tile]
            tile = tile + 1
        first = last * TILE
        end = min(first + TILE, n_samples)
        target = target - before
        mass = 0
        chosen[c] = -1
        for i in range(first, end):
            mass = mass + sample_weight[i * w_step] * closest_sq[i]
            if mass > target:
                chosen[c] = i
                break
        if chosen[c] < 0:  # the target rounded past the tile's mass: its last sample with some
            i = end - 1
            while i > first and not sample_weight[i * w_step] * closest_sq[i] > 0:
                i = i - 1
            chosen[c] = i


cdef void seeding_pass(
        const floating *X, int n_features, Py_ssize_t n_samples,
        const double *sample_weight, Py_ssize_t w_step,
        const Py_ssize_t *candidates, int n_candidates,
        const floating *boxes_t,        # IN (2 D, n_tiles) the tiles' boxes, feature by feature
        const floating *group_boxes_t,  # IN (2 D, n_groups) each GROUP tiles' joint box
        double *closest_sq,             # IN (N,); OUT when adding
        double *tile_potential,         # IN (n_tiles,); OUT when adding
        double *tile_farthest,          # IN (n_tiles,) the largest closest_sq; OUT when adding
        double *group_farthest,         # IN (n_groups,) the largest of theirs; OUT when adding
        double *tile_trial,             # OUT (n_tiles, T) each candidate's tile potential
        bint adding,                    # IN: add candidates[0] (T = 1) to the centres
        char *team, Py_ssize_t per_thread, int n_threads) noexcept nogil:
    """Each candidate's potential, tile by tile; when adding, also each sample's new
    closest_sq and each tile's potential and farthest distance. A group of tiles too
    far from a candidate is skipped at once: then so is each of its tiles."""
    cdef Py_ssize_t n_tiles = (n_samples + TILE - 1) // TILE
    cdef Py_ssize_t n_groups = (n_tiles + GROUP - 1) // GROUP
    cdef Py_ssize_t group, tile, i0, n, t
    cdef int c, loaded
    cdef const floating *center
    cdef char *cursor = NULL
    cdef floating *xs = NULL
    cdef floating *dist = NULL
    cdef double *term = NULL
    cdef char *group_near = NULL
    cdef double *gaps = NULL            # (T, GROUP) each candidate's gap to the group's tiles
    cdef double far
    cdef Py_ssize_t first
    with parallel(num_threads=n_threads):
        cursor = thread_scratch(team, per_thread)
        xs = <floating *> take(&cursor, n_features * TILE * sizeof(floating))
        dist = <floating *> take(&cursor, TILE * sizeof(floating))
        term = <double *> take(&cursor, TILE * sizeof(double))
        group_near = <char *> take(&cursor, n_candidates)
        gaps = <double *> take(&cursor, n_candidates * GROUP * sizeof(double))
        for group in prange(n_groups, schedule='dynamic'):
            first = group * GROUP
            for c in range(n_candidates):
                group_near[c] = box_gap(group_boxes_t, n_groups, group,
                                        X + candidates[c] * n_features, n_features) < (
                    PRUNE_MARGIN * group_farthest[group])
                if group_near[c]:
                    tile_gaps(boxes_t, n_tiles, first, min(GROUP, n_tiles - first),
                              X + candidates[c] * n_features, n_features, gaps + c * GROUP)
            for tile in range(first, min(first + GROUP, n_tiles)):
                i0 = tile * TILE
                n = min(<Py_ssize_t> TILE, n_samples - i0)
                loaded = 0
                for c in range(n_candidates):
                    center = X + candidates[c] * n_features
                    if not group_near[c] or gaps[c * GROUP + tile - first] >= (
                            PRUNE_MARGIN * tile_farthest[tile]):
                        tile_trial[tile * n_candidates + c] = tile_potential[tile]
                        continue
                    if not loaded:
                        load_tile(X, i0, n, n_features, xs)
                        loaded = 1
                    potential_terms(xs, center, n_features, sample_weight, w_step, i0, n,
                                    closest_sq, dist, term)
                    tile_trial[tile * n_candidates + c] = emc_sum(term, TILE)
                    if adding:  # term is free again: it takes the new distances, so
                        for t in range(n):  # that their max runs in vector registers
                            term[t] = vmin(<double> dist[t], closest_sq[i0 + t])
                            closest_sq[i0 + t] = term[t]
                        if n < TILE:  # distances are never negative: zeros change no max
                            for t in range(n, TILE):
                                term[t] = 0
                        tile_farthest[tile] = largest(term, TILE)
                        tile_potential[tile] = tile_trial[tile * n_candidates + c]
            if adding:
                far = 0
                for tile in range(first, min(first + GROUP, n_tiles)):
                    far = emc_maxd(far, tile_farthest[tile])
                group_farthest[group] = far


cdef inline double draw_probability(
        const double *sample_weight, Py_ssize_t w_step, Py_ssize_t i, double total,
        double shared,                  # IN sample_weight[0] / total
        const Py_ssize_t *excluded, Py_ssize_t n_ex,
        Py_ssize_t *e) noexcept nogil:  # IN/OUT the first excluded sample not before i
    """Sample i's p, w_i / total (0 for an excluded one), as both of weighted_draws'
    passes take it: its replays add exactly what its first pass added. A shared
    weight's p is one division, the same quotient every time."""
    cdef double p = sample_weight[i] / total if w_step else shared
    if e[0] < n_ex and excluded[e[0]] == i:
        e[0] = e[0] + 1
        return 0
    return p


def weighted_draws(
        const double[::1] sample_weight,    # IN (N,) or (1,) shared by all N
        Py_ssize_t n_samples,
        double total,                       # IN the weights' sum, as numpy's sum gives it
        const double[::1] u,                # IN (M,) uniforms in [0, 1), ascending
        const Py_ssize_t[::1] excluded,     # IN samples of probability 0, ascending
        Py_ssize_t stride,                  # IN samples between two checkpoints, >= 1
        double[::1] checkpoints,            # SCRATCH (ceil(N / stride) + 1,)
        Py_ssize_t[::1] chosen):            # OUT (M,) the sample each u draws
    """The samples numpy's RandomState.choice(N, p=w / total) draws with the uniforms
    u (one round of its draws without replacement, the excluded samples' p set to 0):
    the running sum of p in sample order (cumsum's roundings), each over the last, and
    for each u the first above it (searchsorted's 'right'); without its N-long arrays
    (two of 400 MB for a 50 MP fit on every pixel). The first pass keeps the running
    sum at every stride-th sample; the second goes straight to the stretch where a u
    is passed and replays the sum from its checkpoint (the same additions, so the
    same roundings). Returns how many p are positive."""
    cdef Py_ssize_t i, j, e, b, first, end, n_u = u.shape[0], positive = 0
    cdef Py_ssize_t n_ex = excluded.shape[0]
    cdef Py_ssize_t n_stretches = (n_samples + stride - 1) // stride
    cdef Py_ssize_t w_step = weight_step(sample_weight.shape[0], n_samples)
    cdef double p, cdf = 0, last, shared = sample_weight[0] / total
    cdef const Py_ssize_t *ex = &excluded[0] if n_ex else NULL
    with nogil:
        e = 0
        for b in range(n_stretches):
            checkpoints[b] = cdf
            for i in range(b * stride, min(n_samples, (b + 1) * stride)):
                p = draw_probability(&sample_weight[0], w_step, i, total, shared,
                                     ex, n_ex, &e)
                positive = positive + (p > 0)
                cdf = cdf + p
        checkpoints[n_stretches] = cdf
        last = cdf
        j = 0
        b = 0
        while j < n_u:
            # the first stretch whose running sum ends above u[j] (the sums never fall)
            while b + 1 < n_stretches and not checkpoints[b + 1] / last > u[j]:
                b = b + 1
            first = b * stride
            end = min(n_samples, first + stride)
            e = first_at_least(ex, n_ex, first)
            cdf = checkpoints[b]
            for i in range(first, end):
                cdf = cdf + draw_probability(&sample_weight[0], w_step, i, total, shared,
                                             ex, n_ex, &e)
                while j < n_u and cdf / last > u[j]:
                    chosen[j] = i
                    j = j + 1
            if b + 1 >= n_stretches:  # unreachable for u < 1 (the last ratio is 1)
                while j < n_u:
                    chosen[j] = n_samples - 1
                    j = j + 1
            b = b + 1
    return positive


cdef inline Py_ssize_t first_at_least(const Py_ssize_t *sorted_values, Py_ssize_t n,
                                      Py_ssize_t value) noexcept nogil:
    """The index of the first of n ascending values >= value (n when none is)."""
    cdef Py_ssize_t low = 0, high = n, mid
    while low < high:
        mid = (low + high) // 2
        if sorted_values[mid] < value:
            low = mid + 1
        else:
            high = mid
    return low


def kmeans_plusplus(
        const floating[:, ::1] X,           # IN (N, D), N >= 1
        const double[::1] sample_weight,    # IN (N,) or (1,) shared by all
        const double[:, ::1] draws,         # IN (K - 1, T) uniforms in [0, 1)
        Py_ssize_t[::1] chosen,             # IN/OUT (K,): chosen[0] given, the rest out
        double[::1] closest_sq,             # SCRATCH (N,)
        double[::1] tile_potential,         # SCRATCH (n_tiles,)
        double[::1] tile_farthest,          # SCRATCH (n_tiles,)
        double[:, ::1] tile_trial,          # SCRATCH (n_tiles, T)
        floating[:, ::1] boxes,             # SCRATCH (2 D, n_tiles) feature by feature
        double[::1] group_farthest,         # SCRATCH (n_groups,)
        floating[:, ::1] group_boxes,       # SCRATCH (2 D, n_groups) feature by feature
        Py_ssize_t[::1] candidates,         # SCRATCH (T,)
        double[::1] trial_total,            # SCRATCH (T,)
        int[::1] order,                     # SCRATCH (T,)
        int n_threads):
    """Greedy k-means++: centre k is the candidate, of the T drawn with draws[k - 1],
    that most lowers sum_i w_i min_j ||x_i - c_j||^2 (the first one on ties).
    Tiles' potentials are added in tile order, so the result is the same for any
    number of threads."""
    cdef Py_ssize_t n_samples = X.shape[0], n_tiles = tile_potential.shape[0]
    cdef Py_ssize_t w_step = weight_step(sample_weight.shape[0], X.shape[0])
    cdef Py_ssize_t k, tile
    cdef int c, best, n_features = X.shape[1], n_candidates = draws.shape[1]
    cdef double lowest, total
    cdef Py_ssize_t n_groups = group_farthest.shape[0], group, rows
    cdef Py_ssize_t per_thread = (padded(n_features * TILE * sizeof(floating))
                                  + padded(TILE * sizeof(floating)) + padded(TILE * sizeof(double))
                                  + padded(n_candidates)
                                  + padded(n_candidates * GROUP * sizeof(double)))
    cdef char *team = team_scratch(n_threads, per_thread)
    with nogil:
        for tile in range(n_tiles):
            tile_box(&X[0, 0], tile * TILE, min(<Py_ssize_t> TILE, n_samples - tile * TILE),
                     n_features, &boxes[0, tile], n_tiles)
            tile_farthest[tile] = INFINITY
        for group in range(n_groups):
            rows = group * GROUP * TILE
            tile_box(&X[0, 0], rows, min(<Py_ssize_t> (GROUP * TILE), n_samples - rows),
                     n_features, &group_boxes[0, group], n_groups)
            group_farthest[group] = INFINITY
        for k in range(n_samples):
            closest_sq[k] = INFINITY
        for k in range(chosen.shape[0]):
            if k > 0:
                total = 0
                for tile in range(n_tiles):
                    total = total + tile_potential[tile]
                draw_samples(&draws[k - 1, 0], n_candidates, &order[0], &tile_potential[0], total,
                             n_tiles, n_samples, &sample_weight[0], w_step, &closest_sq[0],
                             &candidates[0])
                seeding_pass(&X[0, 0], n_features, n_samples, &sample_weight[0], w_step,
                             &candidates[0], n_candidates, &boxes[0, 0], &group_boxes[0, 0],
                             &closest_sq[0], &tile_potential[0], &tile_farthest[0],
                             &group_farthest[0], &tile_trial[0, 0], False, team, per_thread,
                             n_threads)
                # each candidate's potential, its tiles' in tile order; the candidates
                # side by side, so that their sums do not wait on one another
                for c in range(n_candidates):
                    trial_total[c] = 0
                for tile in range(n_tiles):
                    for c in range(n_candidates):
                        trial_total[c] = trial_total[c] + tile_trial[tile, c]
                best = 0
                lowest = INFINITY
                for c in range(n_candidates):
                    if trial_total[c] < lowest:
                        lowest = trial_total[c]
                        best = c
                chosen[k] = candidates[best]
            seeding_pass(&X[0, 0], n_features, n_samples, &sample_weight[0], w_step,
                         &chosen[k], 1, &boxes[0, 0], &group_boxes[0, 0], &closest_sq[0],
                         &tile_potential[0], &tile_farthest[0], &group_farthest[0],
                         &tile_trial[0, 0], True, team, per_thread, n_threads)
    free(team)


# Each feature's range, for validation: one read of X (numpy needs three, for
# isfinite, min and max). A row span is read as one flat run of LANE_ROWS rows: the
# run's element j belongs to feature j % D, so the running minimum and maximum of
# each position vectorise however small D is; NaN is flagged apart (a comparison
# with NaN is false, so min and max alone would drop it).
cdef enum:
    LANE_ROWS = 32


cdef void span_range(const floating *x, Py_ssize_t n_rows, int n_features,
                     double *low,           # IN/OUT (D,)
                     double *high,          # IN/OUT (D,)
                     unsigned char *nan,    # IN/OUT (D,) 1 where a NaN was seen
                     floating *lo,          # SCRATCH (LANE_ROWS D,)
                     floating *hi,          # SCRATCH (LANE_ROWS D,)
                     unsigned char *bad) noexcept nogil:  # SCRATCH (LANE_ROWS D,)
    cdef Py_ssize_t width = LANE_ROWS * n_features, runs = n_rows // LANE_ROWS
    cdef Py_ssize_t r, j, i
    cdef floating v
    if runs:
        for j in range(width):
            lo[j] = x[j]
            hi[j] = x[j]
            bad[j] = x[j] != x[j]
        for r in range(1, runs):
            for j in range(width):
                v = x[r * width + j]
                lo[j] = v if v < lo[j] else lo[j]
                hi[j] = v if v > hi[j] else hi[j]
                bad[j] = bad[j] | (v != v)
        for j in range(width):
            i = j % n_features
            low[i] = lo[j] if lo[j] < low[i] else low[i]
            high[i] = hi[j] if hi[j] > high[i] else high[i]
            nan[i] = nan[i] | bad[j]
    for j in range(runs * width, n_rows * n_features):  # the rows after the last run
        i = j % n_features
        v = x[j]
        low[i] = v if v < low[i] else low[i]
        high[i] = v if v > high[i] else high[i]
        nan[i] = nan[i] | (v != v)


def feature_range(
        const floating[:, ::1] X,           # IN (N, D), N >= 1
        double[:, ::1] low,                 # OUT (S, D) each span's minimum per feature
        double[:, ::1] high,                # OUT (S, D) each span's maximum
        unsigned char[:, ::1] nan,          # OUT (S, D) 1 where the span holds a NaN
        int n_threads):
    """Per-feature minimum, maximum and NaN flag of S spans of X's rows (span s: rows
    s N / S to (s + 1) N / S); the caller takes the extremes over spans (exact in any
    order). Infinities are values like the others."""
    cdef Py_ssize_t n_rows = X.shape[0], n_spans = low.shape[0], s, start, end
    cdef int n_features = X.shape[1], d
    cdef Py_ssize_t per_thread = 2 * padded(LANE_ROWS * n_features * sizeof(floating)) + padded(
        LANE_ROWS * n_features)
    cdef char *team = team_scratch(n_threads, per_thread)
    cdef char *cursor = NULL
    cdef floating *lo = NULL
    cdef floating *hi = NULL
    cdef unsigned char *bad = NULL
    with nogil, parallel(num_threads=n_threads):
        cursor = thread_scratch(team, per_thread)
        lo = <floating *> take(&cursor, LANE_ROWS * n_features * sizeof(floating))
        hi = <floating *> take(&cursor, LANE_ROWS * n_features * sizeof(floating))
        bad = <unsigned char *> take(&cursor, LANE_ROWS * n_features)
        for s in prange(n_spans, schedule='static'):
            start = s * n_rows // n_spans
            end = (s + 1) * n_rows // n_spans
            for d in range(n_features):
                low[s, d] = INFINITY
                high[s, d] = -INFINITY
                nan[s, d] = 0
            span_range(&X[0, 0] + start * n_features, end - start, n_features, &low[s, 0],
                       &high[s, 0], &nan[s, 0], lo, hi, bad)
    free(team)
