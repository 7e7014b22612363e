"""Per-sample mixture scoring kernels: no reductions, one output row per sample.

The caller (densities.py, mixture.py) validates and allocates; these functions
only compute. Arguments are marked IN / OUT. Samples go through in tiles of
TILE (see _tile.pxd), spread over threads with a static schedule; each thread
has its own scratch.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free

import numpy as np

from emcore._codes cimport (code_index, code_team, is_marked, list_codes, mark_codes,
                            rank_codes, rgb_code, summarise)
from emcore._gauss cimport (DIFF, LARGEST, LP, PROJ, TOTAL, XS, log_sum, scratch_part,
                            tile_exp_normalise, tile_log_probs, tile_scratch_size)
from emcore._tile cimport (TILE, load_tile, padded, take, team_scratch, thread_scratch,
                           vmax)
from emcore._vecmath cimport EMC_LN2, emc_exp2_or_zero, emc_exp2f_neg, emc_log, emc_pick


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
    cdef char *team
    cdef char *cursor = NULL
    cdef floating *scratch = NULL
    cdef floating *lp = NULL
    cdef floating *largest = NULL
    cdef floating *total = NULL
    cdef Py_ssize_t per_thread = tile_scratch_size(n_components, n_features) * sizeof(floating)
    if n_samples == 0:
        return
    team = team_scratch(n_threads, per_thread)
    with nogil, parallel(num_threads=n_threads):
        cursor = thread_scratch(team, per_thread)
        scratch = <floating *> take(&cursor, per_thread)
        largest = scratch_part(scratch, LARGEST, n_components, n_features)
        total = scratch_part(scratch, TOTAL, n_components, n_features)
        for tile in prange(n_tiles, schedule='static'):
            start = tile * TILE
            n = min(<Py_ssize_t> TILE, n_samples - start)
            lp = score_tile(&X[0, 0], start, n, n_features, &means[0, 0], &prec[0, 0],
                            &log_const[0], n_components, full, scratch)
            tile_exp_normalise(lp, n_components, largest, total, NULL)
            if take_exp:  # sum_k 2^lp_k = 2^largest * total: no log, vectorised
                for t in range(n):
                    out[start + t] = emc_exp2_or_zero(largest[t]) * total[t]
            else:
                for t in range(n):
                    out[start + t] = log_sum(largest[t], total[t])
    free(team)


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
    cdef char *team
    cdef char *cursor = NULL
    cdef floating *scratch = NULL
    cdef floating *lp = NULL
    cdef floating *best = NULL
    cdef floating v
    cdef int *label = NULL
    cdef Py_ssize_t tile_bytes = tile_scratch_size(n_components, n_features) * sizeof(floating)
    cdef Py_ssize_t label_bytes = TILE * sizeof(int)
    cdef Py_ssize_t per_thread = padded(tile_bytes) + padded(label_bytes)
    if n_samples == 0:
        return
    team = team_scratch(n_threads, per_thread)
    with nogil, parallel(num_threads=n_threads):
        cursor = thread_scratch(team, per_thread)
        scratch = <floating *> take(&cursor, tile_bytes)
        label = <int *> take(&cursor, label_bytes)
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
    free(team)


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
    cdef char *team
    cdef char *cursor = NULL
    cdef floating *scratch = NULL
    cdef floating *lp = NULL
    cdef floating *largest = NULL
    cdef floating *total = NULL
    cdef double lse
    cdef Py_ssize_t per_thread = tile_scratch_size(n_components, n_features) * sizeof(floating)
    if n_samples == 0:
        return
    team = team_scratch(n_threads, per_thread)
    with nogil, parallel(num_threads=n_threads):
        cursor = thread_scratch(team, per_thread)
        scratch = <floating *> take(&cursor, per_thread)
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
            tile_exp_normalise(lp, n_components, largest, total, NULL)
            for t in range(n):
                # log2 of the sum, then the difference in natural units
                lse = log_sum(largest[t], total[t]) / EMC_LN2
                for k in range(n_components):
                    out[start + t, k] = <floating> ((out[start + t, k] - lse) * EMC_LN2)
    free(team)


def distinct_rgb8(
        const uint8_t[:, ::1] pixels,       # IN (N, 3)
        uint64_t[::1] present,              # OUT (N_WORDS,) a bit per colour code
        uint64_t[::1] summary,              # SCRATCH (N_SUMMARY,)
        uint32_t[::1] rank,                 # SCRATCH (N_WORDS,)
        int n_threads):
    """The distinct colours (M, 3) uint8 in code order (_codes.pxd); spread_rgb8 then
    maps values per colour back to the pixels."""
    cdef Py_ssize_t m
    cdef uint64_t *team = code_team(n_threads)
    with nogil:
        m = mark_codes(pixels, present, summary, rank, False, team, n_threads)
    free(team)
    colors_arr = np.empty((m, 3), dtype=np.uint8)
    cdef uint8_t[:, ::1] colors = colors_arr
    with nogil:
        list_codes(present, summary, colors)
    return colors_arr


ctypedef fused spread_t:
    uint8_t
    int32_t
    float
    double


def spread_rgb8(
        const uint8_t[:, ::1] pixels,       # IN (N, 3)
        const uint64_t[::1] present,        # IN (N_WORDS,) from distinct_rgb8 of these pixels
        uint64_t[::1] summary,              # SCRATCH (N_SUMMARY,)
        uint32_t[::1] rank,                 # SCRATCH (N_WORDS,)
        const spread_t[::1] values,         # IN (M,) a value per marked colour, code order
        spread_t[::1] out,                  # OUT (N,) each pixel's colour's value
        int n_threads,
        bint z_order=False):                # IN: present marks Z-order codes (unique_rgb8)
    """out[i] = values[index of pixel i's colour]; returns how many pixels have an
    unmarked colour (their out is left as it was). Values are densities, or labels
    (a segmentation's, in place of unique_rgb8's inverse: emcore.image.rgb8_labels).

    The ranks are counted here from present, values must have one entry per
    marked colour (ValueError if not), and a pixel's bit is tested before its
    index is used: no index reaches past values.
    """
    cdef Py_ssize_t i, n = pixels.shape[0], m, unmarked = 0
    cdef uint32_t code
    with nogil:
        summarise(&present[0], &summary[0])
        m = rank_codes(present, &summary[0], rank)
    if values.shape[0] != m:
        raise ValueError(f"values has {values.shape[0]} entries for {m} marked colours")
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule='static'):
            code = rgb_code(pixels, i, z_order)
            if is_marked(code, present):
                out[i] = values[code_index(code, present, rank)]
            else:
                unmarked += 1
    return unmarked


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
