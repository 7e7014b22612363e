# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Unique colours of 8-bit RGB pixels by one pass over their 24-bit codes."""
import numpy as np
from libc.stdint cimport uint8_t, uint32_t, int32_t, int64_t


def unique_rgb8(
        const uint8_t[:, ::1] pixels,       # IN (N, 3)
        uint32_t[::1] table):               # SCRATCH (2**24,), all zero on entry and exit
    """Unique colours in first-code order, their counts, and each pixel's colour index.

    Three linear passes: count per code, compact the codes that occur (in code
    order, which is the lexicographic order of (r, g, b)), then map every pixel.
    Returns (colors (M, 3) uint8, counts (M,) int64, inverse (N,) int32).
    """
    cdef Py_ssize_t i, n = pixels.shape[0], m = 0
    cdef uint32_t code
    cdef uint32_t n_codes = 1 << 24
    for i in range(n):
        code = (<uint32_t> pixels[i, 0] << 16) | (<uint32_t> pixels[i, 1] << 8) | pixels[i, 2]
        table[code] += 1
    for code in range(n_codes):
        if table[code]:
            m += 1
    colors_arr = np.empty((m, 3), dtype=np.uint8)
    counts_arr = np.empty(m, dtype=np.int64)
    inverse_arr = np.empty(n, dtype=np.int32)
    cdef uint8_t[:, ::1] colors = colors_arr
    cdef int64_t[::1] counts = counts_arr
    cdef int32_t[::1] inverse = inverse_arr
    m = 0
    for code in range(n_codes):
        if table[code]:
            colors[m, 0] = code >> 16
            colors[m, 1] = (code >> 8) & 255
            colors[m, 2] = code & 255
            counts[m] = table[code]
            table[code] = <uint32_t> m   # the table now maps code -> colour index
            m += 1
    for i in range(n):
        code = (<uint32_t> pixels[i, 0] << 16) | (<uint32_t> pixels[i, 1] << 8) | pixels[i, 2]
        inverse[i] = <int32_t> table[code]
    for i in range(m):  # leave the scratch table clean
        code = (<uint32_t> colors[i, 0] << 16) | (<uint32_t> colors[i, 1] << 8) | colors[i, 2]
        table[code] = 0
    return colors_arr, counts_arr, inverse_arr
