# What every kernel shares: samples go through in tiles of TILE held
# structure-of-arrays (xs[d * TILE + t]) so that every inner loop runs over the
# samples of a tile and the compiler vectorises it, and each thread works in its
# own scratch memory, carved from one block allocated before the parallel region.
# Everything is inline: each kernel module compiles its own copy.
#
# The scratch pattern every kernel follows:
#
#     per_thread = padded(a_bytes) + padded(b_bytes)      # the parts, in order
#     team = team_scratch(n_threads, per_thread)          # may raise MemoryError
#     with nogil, parallel(num_threads=n_threads):
#         cursor = thread_scratch(team, per_thread)
#         a = <T *> take(&cursor, a_bytes)
#         b = <U *> take(&cursor, b_bytes)
#         for ... in prange(...): ...
#     free(team)
#
# Allocating before the region means no thread can fail inside it (and skip a
# prange the others wait in), and the MemoryError is raised where Python runs.

from cython cimport floating
from libc.float cimport DBL_MAX, FLT_MAX
from libc.stdlib cimport malloc

from emcore._openmp cimport omp_get_thread_num
from emcore._vecmath cimport emc_maxd, emc_maxf, emc_mind, emc_minf

cdef extern from "_scratch.h":
    const int CACHE_LINE "EMC_CACHE_LINE"
    # n_bytes rounded up to whole cache lines
    Py_ssize_t padded "emc_padded"(Py_ssize_t n_bytes) noexcept nogil
    # the next part of a thread's scratch, n_bytes long; moves the cursor past it
    # (malloc-like to the compiler: parts do not alias, see _scratch.h)
    void *take "emc_take"(char **cursor, Py_ssize_t n_bytes) noexcept nogil

cdef enum:
    # samples per tile (a multiple of 8; BLOCK_ALIGN in _validation.py): K=32 float
    # log-probs are 16 KiB
    TILE = 128


cdef inline char *team_scratch(int n_threads, Py_ssize_t bytes_per_thread) except NULL:
    """One block with bytes_per_thread for each of the at most n_threads threads of a
    parallel(num_threads=n_threads) region; free() it after the region."""
    cdef char *team = <char *> malloc(n_threads * padded(bytes_per_thread) + CACHE_LINE)
    if team == NULL:
        raise MemoryError()
    return team


cdef inline char *thread_scratch(char *team, Py_ssize_t bytes_per_thread) noexcept nogil:
    """The calling thread's part of a team_scratch block, cache-line aligned."""
    cdef size_t first = (<size_t> team + CACHE_LINE - 1) // CACHE_LINE * CACHE_LINE
    return <char *> first + omp_get_thread_num() * padded(bytes_per_thread)


cdef inline Py_ssize_t weight_step(Py_ssize_t n_weights, Py_ssize_t n_samples) noexcept nogil:
    """Index step through sample weights of length N, or of length 1 shared by all."""
    return 1 if n_weights == n_samples else 0


cdef inline void tile_weights(
        const double *sample_weight,    # IN (N,) or (1,) shared by all
        Py_ssize_t w_step,              # 1 or 0: weight_step
        Py_ssize_t i0,
        Py_ssize_t n,                   # samples i0..i0+n-1, n <= TILE
        double *out) noexcept nogil:    # OUT (TILE,) their weights, 0 past n
    """A tile's sample weights. Local pointers and the two layouts apart: indexing a
    memoryview by (i0 + t) * w_step inside a parallel region reloaded the view and the
    step from memory on every sample (a quarter of a one-component EM pass)."""
    cdef Py_ssize_t t
    cdef const double *w = sample_weight + i0 * w_step
    if w_step:
        for t in range(n):
            out[t] = w[t]
    else:
        for t in range(n):
            out[t] = w[0]
    if n < TILE:  # a guard: gcc makes the fill a memset, slow to start at this size
        for t in range(n, TILE):
            out[t] = 0


cdef inline floating vmax(floating a, floating b) noexcept nogil:
    if floating is float:
        return emc_maxf(a, b)
    else:
        return emc_maxd(a, b)


cdef inline floating vmin(floating a, floating b) noexcept nogil:
    if floating is float:
        return emc_minf(a, b)
    else:
        return emc_mind(a, b)


cdef inline floating lowest(floating x) noexcept nogil:
    """The most negative finite value of x's type: the max over no explained component."""
    if floating is float:
        return -FLT_MAX
    else:
        return -DBL_MAX


cdef inline void load_tile(
        const floating *X,       # IN (N, D) row-major
        Py_ssize_t start,
        Py_ssize_t n,            # rows in this tile, 1..TILE
        int n_features,
        floating *xs) noexcept nogil:  # OUT (D, TILE)
    """Transpose rows start..start+n into xs; slots past n repeat row start."""
    cdef int t, d
    cdef const floating *row = X + start * n_features
    # the common widths in one pass each, with strides the compiler knows
    if n_features == 3:  # RGB
        for t in range(n):
            xs[t] = row[3 * t]
            xs[TILE + t] = row[3 * t + 1]
            xs[2 * TILE + t] = row[3 * t + 2]
    elif n_features == 1:  # grey
        for t in range(n):
            xs[t] = row[t]
    elif n_features == 2:  # grey and alpha
        for t in range(n):
            xs[t] = row[2 * t]
            xs[TILE + t] = row[2 * t + 1]
    elif n_features == 4:  # RGBA
        for t in range(n):
            xs[t] = row[4 * t]
            xs[TILE + t] = row[4 * t + 1]
            xs[2 * TILE + t] = row[4 * t + 2]
            xs[3 * TILE + t] = row[4 * t + 3]
    else:
        for d in range(n_features):
            for t in range(n):
                xs[d * TILE + t] = row[t * n_features + d]
    for d in range(n_features):
        for t in range(n, TILE):
            xs[d * TILE + t] = row[d]


cdef inline floating squared_distance(
        const floating *x, const floating *c, int n_features) noexcept nogil:
    cdef int i
    cdef floating t, acc = 0
    for i in range(n_features):
        t = x[i] - c[i]
        acc = acc + t * t
    return acc
