# 8-bit RGB colours through a bitmap of their 24-bit codes, shared by
# _colors.pyx (unique_colors) and _densities.pyx (compute_densities on 8-bit
# photos). A bit per code (2 MiB, cache-sized, rather than a 64 MiB table of
# counts): one pass over the pixels sets the bits (mark_codes, a bitmap per thread
# then OR-ed when several threads share the pass), the running count
# of set bits before each 64-bit word ("rank") gives every code its colour index,
# code order being the lexicographic order of (r, g, b) (or, with z_order, the
# Z-order: the bits of r, g and b interleaved, so that colours near in code order
# are near in colour, which the k-means kernels' box pruning wants), and
# code_index maps a code to that index from its word's rank and a bit count.
# A summary holds a bit per word of the bitmap, set where the word is not zero:
# ranking and listing visit only those words (a small image's colours fill a few
# thousand of the 262,144), and a word without a marked colour gets no rank.

from cython.parallel cimport prange
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc
from libc.string cimport memset

from emcore._vecmath cimport emc_lowest_bit64, emc_popcount64

cdef enum:
    N_WORDS = 1 << 18   # 2**24 colour codes, one bit each, in 64-bit words
    N_SUMMARY = N_WORDS >> 6  # a bit per word of the bitmap: 64-bit words
    TEAM_WORDS = N_WORDS + N_SUMMARY  # a team thread's bitmap and summary


cdef inline uint32_t spread_bits(uint32_t v) noexcept nogil:
    """The 8 bits of v moved to bits 0, 3, 6, ..., 21."""
    v = (v | (v << 16)) & 0x030000FF
    v = (v | (v << 8)) & 0x0300F00F
    v = (v | (v << 4)) & 0x030C30C3
    return (v | (v << 2)) & 0x09249249


cdef inline uint32_t gather_bits(uint32_t v) noexcept nogil:
    """spread_bits inverted: bits 0, 3, 6, ..., 21 of v as one byte."""
    v = v & 0x09249249
    v = (v ^ (v >> 2)) & 0x030C30C3
    v = (v ^ (v >> 4)) & 0x0300F00F
    return (v ^ (v >> 8)) & 0xFF


cdef inline uint32_t rgb_code(const uint8_t[:, ::1] pixels, Py_ssize_t i,
                              bint z_order=False) noexcept nogil:
    if z_order:
        return ((spread_bits(pixels[i, 0]) << 2) | (spread_bits(pixels[i, 1]) << 1)
                | spread_bits(pixels[i, 2]))
    return (<uint32_t> pixels[i, 0] << 16) | (<uint32_t> pixels[i, 1] << 8) | pixels[i, 2]


cdef inline void mark_range(const uint8_t[:, ::1] pixels,  # IN (N, 3)
                            Py_ssize_t start, Py_ssize_t stop,
                            uint64_t *bits,     # IN/OUT (N_WORDS,) bitmap
                            uint64_t *summary,  # IN/OUT (N_SUMMARY,) its summary
                            bint z_order=False) noexcept nogil:
    """Set the bits of the colour codes of pixels start..stop-1, and their words'."""
    cdef Py_ssize_t i
    cdef uint32_t code
    for i in range(start, stop):
        code = rgb_code(pixels, i, z_order)
        bits[code >> 6] |= (<uint64_t> 1) << (code & 63)
        summary[code >> 12] |= (<uint64_t> 1) << ((code >> 6) & 63)


cdef inline void summarise(const uint64_t *present,        # IN (N_WORDS,)
                           uint64_t *summary) noexcept nogil:  # OUT (N_SUMMARY,)
    """The summary of a bitmap made elsewhere."""
    cdef Py_ssize_t s, j
    cdef uint64_t bits
    for s in range(N_SUMMARY):
        bits = 0
        for j in range(64):
            bits = bits | ((<uint64_t> (present[s * 64 + j] != 0)) << j)
        summary[s] = bits


cdef inline Py_ssize_t rank_codes(const uint64_t[::1] present,   # IN (N_WORDS,)
                                  const uint64_t *summary,       # IN (N_SUMMARY,)
                                  uint32_t[::1] rank) noexcept nogil:  # OUT (N_WORDS,)
    """Colours marked before each word that has one (the other words' ranks are not
    written: code_index is for marked codes only); returns the number marked."""
    cdef Py_ssize_t s, w, m = 0
    cdef uint64_t bits
    for s in range(N_SUMMARY):
        bits = summary[s]
        while bits:
            w = s * 64 + emc_lowest_bit64(bits)
            rank[w] = <uint32_t> m
            m += emc_popcount64(present[w])
            bits &= bits - 1
    return m


cdef inline uint64_t *code_team(int n_threads) except? NULL:
    """The zeroed bitmaps and summaries (TEAM_WORDS each), one per thread, that
    mark_codes takes (NULL: one thread)."""
    cdef uint64_t *team
    if n_threads <= 1:
        return NULL
    team = <uint64_t *> calloc(<size_t> n_threads * TEAM_WORDS, sizeof(uint64_t))
    if team == NULL:
        raise MemoryError()
    return team


cdef inline Py_ssize_t mark_codes(
        const uint8_t[:, ::1] pixels,       # IN (N, 3)
        uint64_t[::1] present,              # OUT (N_WORDS,) a bit per colour code
        uint64_t[::1] summary,              # OUT (N_SUMMARY,) a bit per word of present
        uint32_t[::1] rank,                 # OUT (N_WORDS,) colours before each word
        bint z_order,
        uint64_t *team,                     # SCRATCH (T, TEAM_WORDS) all zero; NULL: one thread
        int n_threads) noexcept nogil:
    """Mark every pixel's colour code; returns the number of distinct colours. With a
    team, each of its T = n_threads threads marks its share of the pixels in a bitmap
    of its own, then the bitmaps are OR-ed word by word: the same bits either way."""
    cdef Py_ssize_t n = pixels.shape[0], share = (n + n_threads - 1) // n_threads, w
    cdef int t, s
    cdef uint64_t word
    cdef uint64_t *mine
    if team == NULL:
        memset(&present[0], 0, N_WORDS * sizeof(uint64_t))
        memset(&summary[0], 0, N_SUMMARY * sizeof(uint64_t))
        mark_range(pixels, 0, n, &present[0], &summary[0], z_order)
        return rank_codes(present, &summary[0], rank)
    for t in prange(n_threads, num_threads=n_threads, schedule='static'):
        mine = team + <Py_ssize_t> t * TEAM_WORDS
        mark_range(pixels, min(n, t * share), min(n, (t + 1) * share), mine,
                   mine + N_WORDS, z_order)
    for w in prange(TEAM_WORDS, num_threads=n_threads, schedule='static'):
        word = 0
        for s in range(n_threads):
            word = word | team[<Py_ssize_t> s * TEAM_WORDS + w]
        if w < N_WORDS:
            present[w] = word
        else:
            summary[w - N_WORDS] = word
    return rank_codes(present, &summary[0], rank)


cdef inline void list_codes(const uint64_t[::1] present,     # IN from mark_codes
                            const uint64_t[::1] summary,     # IN from mark_codes
                            uint8_t[:, ::1] colors,  # OUT (M, 3)
                            bint z_order=False) noexcept nogil:
    """The marked colours in code order."""
    cdef Py_ssize_t s, w, index = 0
    cdef uint64_t word, bits
    cdef uint32_t code
    for s in range(N_SUMMARY):
        bits = summary[s]
        while bits:
            w = s * 64 + emc_lowest_bit64(bits)
            bits &= bits - 1
            word = present[w]
            while word:
                code = <uint32_t> (w << 6) + <uint32_t> emc_lowest_bit64(word)
                if z_order:
                    colors[index, 0] = gather_bits(code >> 2)
                    colors[index, 1] = gather_bits(code >> 1)
                    colors[index, 2] = gather_bits(code)
                else:
                    colors[index, 0] = code >> 16
                    colors[index, 1] = (code >> 8) & 255
                    colors[index, 2] = code & 255
                index += 1
                word &= word - 1


cdef inline bint is_marked(uint32_t code, const uint64_t[::1] present) noexcept nogil:
    return (present[code >> 6] >> (code & 63)) & 1


cdef inline Py_ssize_t code_index(uint32_t code, const uint64_t[::1] present,
                                  const uint32_t[::1] rank) noexcept nogil:
    """The index of a marked colour code among the marked colours."""
    cdef uint64_t below = present[code >> 6] & (((<uint64_t> 1) << (code & 63)) - 1)
    return rank[code >> 6] + emc_popcount64(below)
