"""Colour kernels: unique 8-bit RGB colours, sRGB -> OKLab, Floyd-Steinberg dithering.

Thin and typed: emcore/colorspace.py and emcore/pipeline.py check every argument
(shapes, dtypes, value ranges) before calling in.
"""
import numpy as np
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport cbrt, pow, sqrt
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.stdlib cimport malloc, free

from emcore._codes cimport (N_SUMMARY, N_WORDS, code_index, code_team, is_marked, list_codes,
                            mark_codes, rgb_code)
from emcore._tile cimport squared_distance

cdef enum:
    # pixels whose colour indices unique_rgb8 holds at once without an inverse: 1 MiB
    INDEX_CHUNK = 1 << 18

ctypedef fused pixel_t:
    uint8_t
    uint16_t
    float
    double


def _check_bitmap(pixels, present, summary, rank):
    if pixels.shape[1] != 3:
        raise ValueError(f"pixels must be (N, 3), got {pixels.shape[1]} channels")
    if present.shape[0] != N_WORDS or rank.shape[0] != N_WORDS:
        raise ValueError(f"present and rank must have {N_WORDS} entries")
    if summary.shape[0] != N_SUMMARY:
        raise ValueError(f"summary must have {N_SUMMARY} entries")


def unique_rgb8(
        const uint8_t[:, ::1] pixels,       # IN (N, 3)
        uint64_t[::1] present,              # OUT (2**18,) a bit per colour code
        uint64_t[::1] summary,              # SCRATCH (2**12,)
        uint32_t[::1] rank,                 # SCRATCH (2**18,)
        bint z_order=False,
        int n_threads=1,
        bint with_inverse=True):
    """Unique colours in code order (lexicographic, or Z-order), their counts, and
    each pixel's colour index.

    Two passes over the pixels (mark_codes, then code_index for each), shared among
    n_threads, the GIL released throughout; the counts are then added in pixel
    order. Returns (colors (M, 3) uint8, counts (M,) int64, inverse (N,) int32).
    Without ``with_inverse`` the indices go through a buffer of INDEX_CHUNK pixels
    and the inverse is None: _densities.spread_rgb8 finds them again from ``present``.
    """
    _check_bitmap(pixels, present, summary, rank)
    if n_threads < 1:
        raise ValueError(f"n_threads must be at least 1, got {n_threads}")
    cdef Py_ssize_t i, n = pixels.shape[0], m, start, stop
    cdef Py_ssize_t chunk = n if with_inverse else max(1, min(n, INDEX_CHUNK))
    cdef uint32_t code
    cdef uint64_t *team = code_team(n_threads)
    with nogil:
        m = mark_codes(pixels, present, summary, rank, z_order, team, n_threads)
    free(team)
    colors_arr = np.empty((m, 3), dtype=np.uint8)
    counts_arr = np.zeros(m, dtype=np.int64)
    index_arr = np.empty(chunk, dtype=np.int32)
    cdef uint8_t[:, ::1] colors = colors_arr
    cdef int64_t[::1] counts = counts_arr
    cdef int32_t[::1] index = index_arr
    with nogil:
        list_codes(present, summary, colors, z_order)
        start = 0
        while start < n:
            stop = min(n, start + chunk)
            for i in prange(start, stop, num_threads=n_threads, schedule='static'):
                code = rgb_code(pixels, i, z_order)
                # every code is marked, unless the pixels changed under the kernel
                # (only a marked code's word has a rank): then colour 0, never past
                # the colours
                index[i - start] = <int32_t> code_index(code, present, rank) if is_marked(
                    code, present) else 0
            for i in range(stop - start):
                counts[index[i]] += 1
            start = stop
    return colors_arr, counts_arr, index_arr if with_inverse else None


cdef inline double srgb_to_linear(double u) noexcept nogil:
    """The sRGB transfer function inverted, u in [0, 1]."""
    if u <= 0.04045:
        return u / 12.92
    return pow((u + 0.055) / 1.055, 2.4)


cdef inline double linear_to_srgb(double v) noexcept nogil:
    """The sRGB transfer function, v in [0, 1]."""
    if v <= 0.0031308:
        return 12.92 * v
    return 1.055 * pow(v, 1.0 / 2.4) - 0.055


def srgb_to_oklab(
        const pixel_t[:, ::1] rgb,          # IN (N, 3) sRGB, 0..scale
        double scale,                       # the value of full intensity (255, 65535, 1.0)
        const double[:, ::1] lms_from_rgb,  # IN (3, 3) linear sRGB -> LMS
        const double[:, ::1] lab_from_lms,  # IN (3, 3) cube-root LMS -> OKLab
        floating[:, ::1] out,               # OUT (N, 3) OKLab
        int n_threads):
    """OKLab coordinates of sRGB colours, every step in float64, written in out's type."""
    cdef Py_ssize_t i, n = rgb.shape[0]
    cdef double r, g, b, cone_l, cone_m, cone_s
    with nogil:
        # scalars only: prange makes each one private to its thread (an array would be shared)
        for i in prange(n, num_threads=n_threads, schedule='static'):
            r = srgb_to_linear(<double> rgb[i, 0] / scale)
            g = srgb_to_linear(<double> rgb[i, 1] / scale)
            b = srgb_to_linear(<double> rgb[i, 2] / scale)
            cone_l = cbrt(lms_from_rgb[0, 0] * r + lms_from_rgb[0, 1] * g + lms_from_rgb[0, 2] * b)
            cone_m = cbrt(lms_from_rgb[1, 0] * r + lms_from_rgb[1, 1] * g + lms_from_rgb[1, 2] * b)
            cone_s = cbrt(lms_from_rgb[2, 0] * r + lms_from_rgb[2, 1] * g + lms_from_rgb[2, 2] * b)
            out[i, 0] = <floating> (lab_from_lms[0, 0] * cone_l + lab_from_lms[0, 1] * cone_m
                                    + lab_from_lms[0, 2] * cone_s)
            out[i, 1] = <floating> (lab_from_lms[1, 0] * cone_l + lab_from_lms[1, 1] * cone_m
                                    + lab_from_lms[1, 2] * cone_s)
            out[i, 2] = <floating> (lab_from_lms[2, 0] * cone_l + lab_from_lms[2, 1] * cone_m
                                    + lab_from_lms[2, 2] * cone_s)


cdef inline int nearest_color(
        const double *x,           # IN (C,) the colour to match
        const double *palette,     # IN (K, C)
        const double *gap,         # IN (K, K) distance between palette colours i and order[i, j]
        const int *order,          # IN (K, K) each colour, then the others nearest first
        int n_colors,
        int n_channels,
        int guess) noexcept nogil:
    """Exact nearest palette colour (lowest index on ties), searched outward from a guess.

    Palette colours are visited in order of their distance g from the guess;
    by the triangle inequality, a colour farther from x than the best found so
    far (distance r) needs g > d(x, guess) + r, so the search stops there.
    """
    cdef int j, c, best = guess
    cdef double best_sq = squared_distance(x, palette + guess * n_channels, n_channels)
    cdef double d0 = sqrt(best_sq), d, limit
    for j in range(1, n_colors):
        # 1e-9 relative margin: the square roots may be off by an ulp or two
        limit = (d0 + sqrt(best_sq)) * (1.0 + 1e-9)
        if gap[guess * n_colors + j] > limit:
            break
        c = order[guess * n_colors + j]
        d = squared_distance(x, palette + c * n_channels, n_channels)
        if d < best_sq or (d == best_sq and c < best):
            best_sq = d
            best = c
    return best


def floyd_steinberg(
        const pixel_t[:, :, ::1] image,     # IN (H, W, C) in the space the error is diffused in
        const double[:, ::1] palette,       # IN (K, C) the colours, in the space searched
        const double[:, ::1] diffused,      # IN (K, C) the same colours, in the image's space
        const double[:, ::1] gap,           # IN (K, K) see nearest_color
        const int[:, ::1] order,            # IN (K, K) see nearest_color
        double strength,                    # 0 (none) to 1 (full error diffusion)
        double low,                         # the diffused colour is clipped to [low, high]
        double high,
        bint encode,                        # search sRGB-encoded colours of linear light
        int32_t[:, ::1] labels):            # OUT (H, W) palette index of every pixel
    """Serpentine Floyd-Steinberg error diffusion onto a fixed palette.

    Rows alternate direction. A pixel's colour plus the error diffused into it
    is clipped to [low, high], matched to its nearest palette colour, and
    strength times the difference is passed on: 7/16 ahead, 3/16 behind on the
    next row, 5/16 below, 1/16 ahead on the next row. With ``encode`` the image
    and ``diffused`` are linear light in [0, 1] and the nearest colour is searched
    among ``palette``'s sRGB-encoded ones after encoding the pixel's the same way;
    otherwise both palettes are the same colours. Every step is float64.
    """
    cdef Py_ssize_t height = image.shape[0], width = image.shape[1]
    cdef int n_channels = image.shape[2], n_colors = palette.shape[0]
    cdef Py_ssize_t y, x, i, step
    cdef int c, best, guess = 0
    cdef double v, e
    cdef double *rows
    cdef double *here
    cdef double *below
    cdef double *tmp
    cdef double *value
    cdef double *searched
    # two rows of diffused error, each with one pixel of padding at both ends, and the
    # pixel's colour in the two spaces
    rows = <double *> malloc((2 * (width + 2) + 2) * n_channels * sizeof(double))
    if rows == NULL:
        raise MemoryError()
    with nogil:
        here = rows
        below = rows + (width + 2) * n_channels
        value = below + (width + 2) * n_channels
        searched = value + n_channels if encode else value
        for i in range(2 * (width + 2) * n_channels):
            rows[i] = 0
        for y in range(height):
            step = 1 if y % 2 == 0 else -1
            for i in range(width):
                x = i if step == 1 else width - 1 - i
                for c in range(n_channels):
                    v = image[y, x, c] + here[(x + 1) * n_channels + c]
                    value[c] = low if v < low else (high if v > high else v)
                if encode:
                    for c in range(n_channels):
                        searched[c] = linear_to_srgb(value[c])
                best = nearest_color(searched, &palette[0, 0], &gap[0, 0], &order[0, 0],
                                     n_colors, n_channels, guess)
                labels[y, x] = best
                guess = best
                for c in range(n_channels):
                    e = (value[c] - diffused[best, c]) * strength
                    here[(x + 1 + step) * n_channels + c] += e * 0.4375
                    below[(x + 1 - step) * n_channels + c] += e * 0.1875
                    below[(x + 1) * n_channels + c] += e * 0.3125
                    below[(x + 1 + step) * n_channels + c] += e * 0.0625
            tmp = here
            here = below
            below = tmp
            for i in range((width + 2) * n_channels):
                below[i] = 0
    free(rows)


ctypedef fused code_t:
    uint8_t
    uint16_t


cdef inline bint same_cell(const code_t *a, const code_t *b, int n_channels,
                           int shift) noexcept nogil:
    """Whether two colours share the top bits (all but ``shift``) of every channel."""
    cdef int c
    for c in range(n_channels):
        if (a[c] >> shift) != (b[c] >> shift):
            return False
    return True


def colour_cells(
        const code_t[:, ::1] colors,        # IN (M, C) distinct colours in Z-order
        const floating[:, ::1] values,      # IN (M, D) each colour in the fit space
        const double[::1] weights,          # IN (M,) each colour's weight
        int shift,                          # IN low bits a channel drops: a cell shares the rest
        double heavy,                       # IN a cell weighing more keeps its colours apart
        floating[:, ::1] means,             # OUT (M, D) the first n rows: the cells' means
        double[::1] cell_weights):          # OUT (M,) the first n: the cells' weights
    """Cells of Z-ordered colours for seeding (emcore/pipeline.py, seeding_cells): a
    run of colours sharing their top bits is one cell, its weighted mean in the fit
    space, unless it weighs more than ``heavy``: then each of its colours is a cell.
    Returns the number of cells n. Sums run in colour order, in float64: exactly
    numpy's for integer values and weights (every partial sum an integer)."""
    cdef Py_ssize_t n_colors = colors.shape[0], start = 0, end, first, step, i, n = 0
    cdef int n_channels = colors.shape[1], n_features = values.shape[1], d
    cdef double w, s
    if not (values.shape[0] == weights.shape[0] == n_colors <= means.shape[0]
            and n_colors <= cell_weights.shape[0] and means.shape[1] == n_features):
        raise ValueError("colour_cells: values, weights, means and cell_weights must have a "
                         "row for every colour (and means values' features)")
    with nogil:
        while start < n_colors:
            end = start + 1
            while end < n_colors and same_cell(&colors[start, 0], &colors[end, 0], n_channels,
                                               shift):
                end = end + 1
            w = 0
            for i in range(start, end):
                w = w + weights[i]
            step = 1 if w > heavy else end - start  # a heavy run: a cell per colour
            first = start
            while first < end:  # each cell's weight and mean, summed in colour order
                w = 0
                for i in range(first, first + step):
                    w = w + weights[i]
                cell_weights[n] = w
                for d in range(n_features):
                    s = 0
                    for i in range(first, first + step):
                        s = s + <double> values[i, d] * weights[i]
                    means[n, d] = <floating> (s / w)
                n = n + 1
                first = first + step
            start = end
    return n
