"""The one door into the compiled mixture and k-means kernels.

Every call checks the dtype, contiguity and shape of each array against the
others, that parameters are free of NaN, the thread count, and that the
kernels' int-sized scratch arithmetic cannot overflow, before any nogil code
runs: no combination of arrays a caller can pass reaches memory the kernel does
not own. The sample matrix X is checked for finiteness once, where it enters the
public API (emcore/_validation.py: check_samples), not on every pass.

It also picks the build: the widest of AVX-512, AVX2 + FMA and the portable
baseline that this CPU runs. All come from the same .pyx sources and give the
same results up to rounding (the two x86 builds bitwise the same ones).
``EMCORE_SIMD`` caps the choice: ``avx2`` or ``baseline`` (to compare builds, or
to work around a faulty CPU report).
"""
from __future__ import annotations

import importlib
import os
import threading

import numpy as np

from emcore._openmp import cpu_has_avx2_fma, cpu_has_avx512
from emcore._params import n_em_stats
from emcore._threads import affordable_threads, max_threads

TILE = 128  # samples per tile, emcore/_tile.pxd
CODE_WORDS = 1 << 18  # 64-bit words of the 24-bit colour code bitmap, emcore/_codes.pxd
CODE_SUMMARY_WORDS = CODE_WORDS >> 6  # its summary: a bit per word
INT_MAX = 2**31 - 1
SPREAD_TYPES = (np.uint8, np.int32, np.float32, np.float64)  # spread_rgb8's values
BUILDS = ("avx512", "avx2", "baseline")  # widest first


def _choose():
    cap = os.environ.get("EMCORE_SIMD", "auto").strip().lower()
    allowed = BUILDS[BUILDS.index(cap):] if cap in BUILDS else BUILDS
    runs = {"avx512": cpu_has_avx512(), "avx2": cpu_has_avx2_fma(), "baseline": True}
    for build in allowed:
        if not runs[build]:
            continue
        suffix = "" if build == "baseline" else f"_{build}"
        try:
            modules = [importlib.import_module(f"emcore.{name}{suffix}")
                       for name in ("_densities", "_em", "_kmeans")]
        except ImportError:  # built without this variant (not x86, MSVC, an old compiler)
            continue
        return (*modules, build)
    raise ImportError("emcore's portable kernels are missing: the package was not built")


_densities, _em, _kmeans, SIMD = _choose()


class KernelArgumentError(ValueError):
    """Arrays that do not fit together: a bug in the caller, refused before the kernel."""


def _array(a, name, dtype, ndim, shape=None):
    if not isinstance(a, np.ndarray):
        raise KernelArgumentError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise KernelArgumentError(f"{name} must be {np.dtype(dtype)}, got {a.dtype}")
    if a.ndim != ndim:
        raise KernelArgumentError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if not a.flags.c_contiguous:
        raise KernelArgumentError(f"{name} must be C-contiguous")
    if shape is not None and a.shape != tuple(shape):
        raise KernelArgumentError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    return a


def _writable(a, name):
    if not a.flags.writeable:
        raise KernelArgumentError(f"{name} must be writable")
    return a


def _threads(n_threads):
    n_threads = int(n_threads)
    limit = max_threads()
    if not 1 <= n_threads <= limit:
        raise KernelArgumentError(f"n_threads must be between 1 and {limit}, got {n_threads}")
    return affordable_threads(n_threads)


def _fits_int(name, *counts):
    for count in counts:
        if count > INT_MAX:
            raise KernelArgumentError(f"{name}: {count} scratch items is more than the kernels "
                                      "address; use fewer components or features")


def _samples(X):
    if not isinstance(X, np.ndarray) or X.dtype not in (np.float32, np.float64):
        raise KernelArgumentError("X must be a float32 or float64 array")
    _array(X, "X", X.dtype, 2)
    if X.shape[1] < 1 or X.shape[1] > INT_MAX // TILE:
        raise KernelArgumentError(f"X has {X.shape[1]} features")
    return X


def _mixture(X, means, prec, log_const, full):
    """Check mixture parameters against X; returns (K, D)."""
    _samples(X)
    d = X.shape[1]
    _array(means, "means", X.dtype, 2)
    k = means.shape[0]
    if k < 1 or means.shape[1] != d:
        raise KernelArgumentError(f"means must have shape (K >= 1, {d}), got {means.shape}")
    _array(prec, "prec", X.dtype, 2, (k, d * d if full else d))
    _array(log_const, "log_const", X.dtype, 1, (k,))
    if not (np.isfinite(means).all() and np.isfinite(prec).all()):
        raise KernelArgumentError("mixture means and precisions must be finite")
    if np.isnan(log_const).any() or (log_const == np.inf).any():
        raise KernelArgumentError("mixture weights must be finite and non-negative")
    # scratch per thread: (K + 2 D + 3) TILE items, and K TILE for the (K, TILE) tile
    _fits_int("mixture", (k + 2 * d + 3) * TILE, k * (d * d if full else d))
    return k, d


def _blocks(n, block_size, n_blocks):
    if block_size < 1 or n_blocks < 1 or (n_blocks - 1) * block_size >= max(n, 1) or (
            n_blocks * block_size < n):
        raise KernelArgumentError(f"{n_blocks} blocks of {block_size} do not cover {n} samples")


def _weights(w, n):
    _array(w, "sample_weight", np.float64, 1)
    if w.shape[0] not in (n, 1):
        raise KernelArgumentError(f"sample_weight must have {n} values or one, got {w.shape[0]}")
    return w


def log_mixture_density(X, means, prec, log_const, full, take_exp, out, n_threads):
    """(N,) log density (or density): emcore/_densities.pyx."""
    _mixture(X, means, prec, log_const, full)
    _writable(_array(out, "out", np.float64, 1, (X.shape[0],)), "out")
    _densities.log_mixture_density(X, means, prec, log_const, bool(full), bool(take_exp), out,
                                   _threads(n_threads))


def most_likely_component(X, means, prec, log_const, full, labels, n_threads):
    _mixture(X, means, prec, log_const, full)
    _writable(_array(labels, "labels", np.int32, 1, (X.shape[0],)), "labels")
    _densities.most_likely_component(X, means, prec, log_const, bool(full), labels,
                                     _threads(n_threads))


def log_responsibilities(X, means, prec, log_const, full, out, n_threads):
    k, _ = _mixture(X, means, prec, log_const, full)
    _writable(_array(out, "out", X.dtype, 2, (X.shape[0], k)), "out")
    _densities.log_responsibilities(X, means, prec, log_const, bool(full), out,
                                    _threads(n_threads))


def _rgb8(pixels):
    _array(pixels, "pixels", np.uint8, 2)
    if pixels.shape[1] != 3:
        raise KernelArgumentError(f"pixels must be (N, 3), got shape {pixels.shape}")
    return pixels


_code_scratch = threading.local()


def code_scratch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bitmap, summary, rank): the colour-code kernels' scratch arrays, one set per
    Python thread, kept from call to call (fresh, their 3 MiB were page-faulted in
    again by every call: 0.6 ms of a small image's 1.9 ms of distinct colours)."""
    if not hasattr(_code_scratch, "arrays"):
        _code_scratch.arrays = (np.empty(CODE_WORDS, dtype=np.uint64),
                                np.empty(CODE_SUMMARY_WORDS, dtype=np.uint64),
                                np.empty(CODE_WORDS, dtype=np.uint32))
    return _code_scratch.arrays


def distinct_rgb8(pixels, n_threads):
    """(colors, present): the distinct colours of (N, 3) uint8 pixels, (M, 3) in code
    order, and the bitmap of their codes that spread_rgb8 takes (emcore/_codes.pxd)."""
    present = np.empty(CODE_WORDS, dtype=np.uint64)
    _, summary, rank = code_scratch()
    colors = _densities.distinct_rgb8(_rgb8(pixels), present, summary, rank,
                                      _threads(n_threads))
    return colors, present


def spread_rgb8(pixels, present, values, out, n_threads, z_order=False):
    """out[i] = values[index of pixel i's colour among those present marks (Z-order
    codes with ``z_order``)]; ValueError if values does not have one entry per marked
    colour or a pixel's colour is not marked."""
    _rgb8(pixels)
    _array(present, "present", np.uint64, 1, (CODE_WORDS,))
    if not isinstance(values, np.ndarray) or values.dtype not in SPREAD_TYPES:
        raise KernelArgumentError("values must be a uint8, int32, float32 or float64 array")
    _array(values, "values", values.dtype, 1)
    _writable(_array(out, "out", values.dtype, 1, (pixels.shape[0],)), "out")
    _, summary, rank = code_scratch()
    unmarked = _densities.spread_rgb8(pixels, present, summary, rank, values, out,
                                      _threads(n_threads), bool(z_order))
    if unmarked:
        raise KernelArgumentError(f"{unmarked} pixels have colours that present does not mark")


def vecmath_probe(x):
    """(2^x, float32 2^x for x <= 0, ln x for x >= 0) from _vecmath.h's own functions,
    for testing their accuracy; x is any 1-D float array."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise KernelArgumentError(f"x must be 1-D, got shape {x.shape}")
    exp2, exp2f, log = np.empty_like(x), np.empty(x.shape, np.float32), np.empty_like(x)
    _densities.vecmath_probe(x, exp2, exp2f, log)
    return exp2, exp2f, log


def _n_blocks(block_out):
    """Rows of a per-block output array (0 for anything else: _array then says why)."""
    return block_out.shape[0] if isinstance(block_out, np.ndarray) and block_out.ndim else 0


def em_pass(X, sample_weight, means, prec, log_const, full, block_size, block_stats,
            block_loglik, n_threads):
    """One E-step and the M-step's per-block sums: emcore/_em.pyx."""
    k, d = _mixture(X, means, prec, log_const, full)
    _weights(sample_weight, X.shape[0])
    n_stats = n_em_stats(d, full)
    _fits_int("EM pass", (d + 4) * TILE + _em.LANES * k * n_stats)
    n_blocks = _n_blocks(block_stats)
    _writable(_array(block_stats, "block_stats", np.float64, 3, (n_blocks, k, n_stats)),
              "block_stats")
    _writable(_array(block_loglik, "block_loglik", np.float64, 1, (n_blocks,)), "block_loglik")
    _blocks(X.shape[0], block_size, n_blocks)
    _em.em_pass(X, sample_weight, means, prec, log_const, bool(full), int(block_size),
                block_stats, block_loglik, _threads(n_threads))


def _centers(X, centers, name):
    _array(centers, name, X.dtype, 2)
    if centers.shape[0] < 1 or centers.shape[1] != X.shape[1]:
        raise KernelArgumentError(f"{name} must have shape (K >= 1, {X.shape[1]}), got "
                                  f"{centers.shape}")
    if not np.isfinite(centers).all():
        raise KernelArgumentError(f"{name} must be finite")
    _fits_int(name, centers.shape[0] * centers.shape[1], (X.shape[1] + 1) * TILE)
    return centers.shape[0]


def lloyd_pass(X, sample_weight, centers, labels, block_size, block_sums, block_inertia,
               n_threads, reach=None, reach_centers=None):
    """Assignment and per-block cluster sums: emcore/_kmeans.pyx. ``reach`` (see
    :func:`reach_slots`), when given, receives each tile's reach; with
    ``reach_centers``, the centres it was written under, the reach in place narrows
    the search. The result is the same."""
    _samples(X)
    k = _centers(X, centers, "centers")
    _weights(sample_weight, X.shape[0])
    _writable(_array(labels, "labels", np.int32, 1, (X.shape[0],)), "labels")
    n_blocks = _n_blocks(block_sums)
    _writable(_array(block_sums, "block_sums", np.float64, 3, (n_blocks, k, 1 + X.shape[1])),
              "block_sums")
    _writable(_array(block_inertia, "block_inertia", np.float64, 1, (n_blocks,)),
              "block_inertia")
    _blocks(X.shape[0], block_size, n_blocks)
    if reach is None:
        reach = np.empty(0)
    else:
        _writable(_array(reach, "reach", np.float64, 1, (reach_slots(n_blocks, block_size),)),
                  "reach")
    if reach_centers is None or not len(reach):
        reach_centers = np.empty((0, X.shape[1]), dtype=X.dtype)
    else:
        _array(reach_centers, "reach_centers", X.dtype, 2, (k, X.shape[1]))
    _kmeans.lloyd_pass(X, sample_weight, centers, labels, int(block_size), block_sums,
                       block_inertia, reach, reach_centers, _threads(n_threads))


class LloydPasses:
    """lloyd_pass over the same samples pass after pass (a fit's iterations): the
    samples, weights, block layout and thread count are checked once, here, and only
    the centres (and labels, when given) at each pass: on a small fit's pass
    (13,333 x 2 samples, K = 6: 51 us in the kernel) lloyd_pass's checks cost 14 us,
    these 8.

    It keeps its own views of the arrays, so that nothing done to the caller's
    array objects later changes what the kernel is given, and each tile's reach
    from the last pass, which narrows the next pass's search (see lloyd_pass).
    """

    def __init__(self, X, sample_weight, block_size, n_blocks, n_threads):
        _samples(X)
        _weights(sample_weight, X.shape[0])
        _blocks(X.shape[0], block_size, n_blocks)
        self._X, self._w = X.view(), sample_weight.view()
        self._block_size, self._n_blocks = int(block_size), int(n_blocks)
        self._threads = _threads(n_threads)
        self._labels = None  # a scratch label array for passes that do not keep them
        self._reach = None
        self._reach_centers = None  # the centres the reach was written under

    def __call__(self, centers, labels=None):
        """(block_sums (B, K, 1 + D), block_inertia (B,)) under ``centers`` (K, D) of
        X's dtype, each sample's nearest centre written to ``labels`` when given."""
        X = self._X
        n, d = X.shape
        k = _centers(X, centers, "centers")
        if labels is None:
            # one array for every pass: a fresh N-long array would be page-faulted in
            # again by every pass
            if self._labels is None:
                self._labels = np.empty(n, dtype=np.int32)
            labels = self._labels
        else:
            _writable(_array(labels, "labels", np.int32, 1, (n,)), "labels")
        reach, reach_centers = np.empty(0), np.empty((0, d), dtype=X.dtype)
        if lloyd_prunes(k, d):  # the last pass's reach narrows this one
            if self._reach is None:
                self._reach = np.empty(reach_slots(self._n_blocks, self._block_size))
            reach = self._reach
            if self._reach_centers is not None and self._reach_centers.shape == (k, d):
                reach_centers = self._reach_centers
        block_sums = np.empty((self._n_blocks, k, 1 + d))
        block_inertia = np.empty(self._n_blocks)
        self._reach_centers = None  # until this pass has written the reach
        _kmeans.lloyd_pass(X, self._w, centers, labels, self._block_size, block_sums,
                           block_inertia, reach, reach_centers, self._threads)
        if len(reach):
            self._reach_centers = centers.copy()
        return block_sums, block_inertia


def labelled_sums(X, sample_weight, labels, n_centers, block_size, n_threads):
    """(B, K, 1 + D) per-block cluster weights and weighted sums of X's rows for given
    ``labels`` (each in 0 .. n_centers - 1): lloyd_pass with its labels given,
    emcore/_kmeans.pyx."""
    _samples(X)
    n, d = X.shape
    _weights(sample_weight, n)
    _array(labels, "labels", np.int32, 1, (n,))
    if not labels.flags.writeable:  # only read, but the kernel's view of them is writable
        labels = labels.copy()
    k = int(n_centers)
    if k < 1:
        raise KernelArgumentError(f"n_centers must be at least 1, got {k}")
    if n and not (0 <= labels.min() and labels.max() < k):
        raise KernelArgumentError(f"labels must lie in 0 .. {k - 1}")
    _fits_int("labelled sums", k * (1 + d), (d + 1) * TILE)
    n_blocks = max(1, -(-n // block_size)) if block_size >= 1 else 0
    _blocks(n, block_size, n_blocks)
    block_sums = np.empty((n_blocks, k, 1 + d))
    _kmeans.lloyd_pass(X, sample_weight, np.zeros((k, d), X.dtype), labels, int(block_size),
                       block_sums, np.empty(n_blocks), np.empty(0), np.empty((0, d), X.dtype),
                       _threads(n_threads), given=True)
    return block_sums


#: the row spans feature_range reduces apart (more than any thread count here, few
#: enough that taking the extremes over them costs nothing)
RANGE_SPANS = 64


def feature_range(X, n_threads):
    """(low, high): each feature's minimum and maximum as float64 (D,) arrays, NaN
    where the feature holds a NaN (as numpy's min and max), in one read of X."""
    _samples(X)
    if X.shape[0] < 1:
        raise KernelArgumentError("feature_range needs at least one sample")
    spans, d = min(RANGE_SPANS, X.shape[0]), X.shape[1]
    low, high = np.empty((spans, d)), np.empty((spans, d))
    nan = np.empty((spans, d), dtype=np.uint8)
    _kmeans.feature_range(X, low, high, nan, _threads(n_threads))
    low, high, has_nan = low.min(axis=0), high.max(axis=0), nan.any(axis=0)
    low[has_nan] = high[has_nan] = np.nan
    return low, high


def lloyd_prunes(n_centers, n_features):
    """Whether lloyd_pass narrows its search (and so has a use for ``reach``)."""
    min_centers, max_features = _kmeans.PRUNED
    return n_centers >= min_centers and n_features <= max_features


def reach_slots(n_blocks, block_size):
    """The length of :func:`lloyd_pass`'s ``reach``: a slot per tile of every block."""
    return int(n_blocks) * -(-int(block_size) // TILE)


#: samples between two of weighted_draws' checkpoints of its running sum: the second
#: pass replays at most this many per uniform (2 MP: 489 checkpoints, 4 KB)
DRAW_STRIDE = 4096


def weighted_draws(sample_weight, n_samples, total, u, excluded, stride=DRAW_STRIDE):
    """(the samples drawn, how many probabilities are positive): one round of numpy's
    ``RandomState.choice(n_samples, p=w / total)`` with the uniforms u (M,), the
    excluded samples' probabilities 0, without N-long arrays: emcore/_kmeans.pyx.
    ``stride`` (the samples between checkpoints) changes the time, not the draws."""
    n_samples = int(n_samples)
    stride = int(stride)
    if stride < 1:
        raise KernelArgumentError(f"stride must be at least 1, got {stride}")
    if n_samples < 1:
        raise KernelArgumentError("a draw needs at least one sample")
    _weights(sample_weight, n_samples)
    total = float(total)
    if not (np.isfinite(total) and total > 0):
        raise KernelArgumentError(f"total must be a positive weight sum, got {total}")
    _array(u, "u", np.float64, 1)
    if not ((u >= 0) & (u < 1)).all():
        raise KernelArgumentError("u must hold uniforms in [0, 1)")
    _array(excluded, "excluded", np.intp, 1)
    if len(excluded) and not (excluded[0] >= 0 and excluded[-1] < n_samples
                              and (np.diff(excluded) > 0).all()):
        raise KernelArgumentError("excluded must be ascending sample indices")
    order = np.argsort(u, kind="stable")
    chosen = np.empty(len(u), dtype=np.intp)
    checkpoints = np.empty(-(-n_samples // stride) + 1)
    positive = _kmeans.weighted_draws(sample_weight, n_samples, total,
                                      np.ascontiguousarray(u[order]), excluded, stride,
                                      checkpoints, chosen)
    drawn = np.empty_like(chosen)
    drawn[order] = chosen
    return drawn, int(positive)


def kmeans_plusplus(X, sample_weight, first, draws, n_threads):
    """Greedy k-means++ seeding: the chosen samples' indices, ``first`` then one per
    row of ``draws`` (K - 1, T), uniforms in [0, 1)."""
    _samples(X)
    n = X.shape[0]
    if n < 1:
        raise KernelArgumentError("k-means++ needs at least one sample")
    _weights(sample_weight, n)
    _array(draws, "draws", np.float64, 2)
    if draws.shape[1] < 1 or not ((draws >= 0) & (draws < 1)).all():
        raise KernelArgumentError("draws must be uniforms in [0, 1), at least one per centre")
    first = int(first)
    if not 0 <= first < n:
        raise KernelArgumentError(f"first must be a sample index below {n}, got {first}")
    n_tiles = -(-n // TILE)
    n_groups = -(-n_tiles // _kmeans.SEEDING_GROUP)
    n_trials = draws.shape[1]
    _fits_int("k-means++", n_trials, X.shape[1] * TILE)
    chosen = np.empty(draws.shape[0] + 1, dtype=np.intp)
    chosen[0] = first
    _kmeans.kmeans_plusplus(X, sample_weight, draws, chosen, np.empty(n),
                            np.empty(n_tiles), np.empty(n_tiles), np.empty((n_tiles, n_trials)),
                            np.empty((2 * X.shape[1], n_tiles), dtype=X.dtype),
                            np.empty(n_groups), np.empty((2 * X.shape[1], n_groups), dtype=X.dtype),
                            np.empty(n_trials, dtype=np.intp), np.empty(n_trials),
                            np.empty(n_trials, dtype=np.intc), _threads(n_threads))
    return chosen


def _grid_posteriors(q, shape, name="q"):
    """Check (N, K) posteriors laid on a grid of ``shape`` (nz, ny, nx); returns K."""
    if not isinstance(q, np.ndarray) or q.dtype not in (np.float32, np.float64):
        raise KernelArgumentError(f"{name} must be a float32 or float64 array")
    _array(q, name, q.dtype, 2)
    nz, ny, nx = (int(s) for s in shape)
    if min(nz, ny, nx) < 1 or nz * ny * nx != q.shape[0]:
        raise KernelArgumentError(f"a {nz} x {ny} x {nx} grid does not hold {q.shape[0]} voxels")
    if q.shape[1] < 1:
        raise KernelArgumentError(f"{name} needs at least one label")
    return q.shape[1]


def mrf_colours(offsets):
    """How many colours mrf_sweeps parts a grid into for these neighbour offsets: 2 when
    every neighbour lies along one axis (the parity of z + y + x), else 8 (the parities
    of z, y and x); no two neighbours share a colour."""
    return 2 if bool(((np.asarray(offsets) != 0).sum(axis=1) == 1).all()) else 8


def mrf_sweeps(data, q, inside, shape, offsets, coupling, hard, n_sweeps, n_threads,
               colour=None, origin=(0, 0, 0)):
    """Mean-field (or, with ``hard``, ICM) sweeps of a Potts prior over a voxel grid of
    ``shape`` (nz, ny, nx), updating the posteriors q in place: emcore/_em.pyx.
    Returns how many voxel updates changed a voxel's best label. ``colour`` updates
    only that colour; ``origin`` places the grid in a larger volume (its colours)."""
    k = _grid_posteriors(q, shape)
    _writable(q, "q")
    _array(data, "data", q.dtype, 2, q.shape)
    if np.isnan(data).any() or (data == np.inf).any():
        raise KernelArgumentError("data must be finite or -inf")
    _array(inside, "inside", np.uint8, 1, (q.shape[0],))
    _array(offsets, "offsets", np.intp, 2)
    if offsets.shape[1] != 3 or ((offsets < -1) | (offsets > 1)).any() or (
            (offsets == 0).all(axis=1).any()):
        raise KernelArgumentError("offsets must be (M, 3) steps in {-1, 0, 1}, none all zero")
    _array(coupling, "coupling", np.float64, 1, (offsets.shape[0],))
    if not np.isfinite(coupling).all():
        raise KernelArgumentError("coupling must be finite")
    n_sweeps = int(n_sweeps)
    if n_sweeps < 0:
        raise KernelArgumentError(f"n_sweeps must be >= 0, got {n_sweeps}")
    _fits_int("MRF sweep", k, offsets.shape[0])
    n_colours = mrf_colours(offsets)
    nz, ny, nx = (int(s) for s in shape)
    step = np.ascontiguousarray((offsets[:, 0] * ny + offsets[:, 1]) * nx + offsets[:, 2])
    colour = -1 if colour is None else int(colour)
    if not -1 <= colour < n_colours:
        raise KernelArgumentError(f"colour must be below {n_colours}, got {colour}")
    oz, oy, ox = (int(o) for o in origin)
    if min(oz, oy, ox) < 0:
        raise KernelArgumentError(f"origin must be non-negative, got {origin}")
    row_changes = np.empty(nz * ny, dtype=np.longlong)
    _em.mrf_sweeps(data, q, inside, nz, ny, nx, offsets, step, coupling, n_colours == 2,
                   bool(hard),
                   n_sweeps, colour, oz, oy, ox, row_changes, _threads(n_threads))
    return int(row_changes.sum())


def posterior_sums(X, q, labels, sample_weight, centre, full, block_size, block_stats,
                   n_threads):
    """The M-step's per-block sums with q (N, K) as the responsibilities, or labels
    (N,) int32 as a hard assignment (the other one None), centred on ``centre`` (K, D),
    laid out as em_pass's: emcore/_em.pyx."""
    _samples(X)
    n, d = X.shape
    if (q is None) == (labels is None):
        raise KernelArgumentError("give either q or labels")
    k = len(centre) if isinstance(centre, np.ndarray) and centre.ndim == 2 else 0
    if q is None:
        _array(labels, "labels", np.int32, 1, (n,))
        q = np.empty((0, k), dtype=X.dtype)
    else:
        _array(q, "q", X.dtype, 2)
        if q.shape[0] != n:
            raise KernelArgumentError(f"q must have shape ({n}, K), got {q.shape}")
        k = q.shape[1]
        labels = np.empty(0, dtype=np.int32)
    if k < 1:
        raise KernelArgumentError(f"there must be K >= 1 components, got {k}")
    _array(centre, "centre", X.dtype, 2, (k, d))
    _weights(sample_weight, n)
    n_stats = n_em_stats(d, full)
    _fits_int("posterior sums", (2 * d + k + 2) * TILE + _em.LANES * k * n_stats)
    n_blocks = _n_blocks(block_stats)
    _writable(_array(block_stats, "block_stats", np.float64, 3, (n_blocks, k, n_stats)),
              "block_stats")
    _blocks(n, block_size, n_blocks)
    _em.posterior_sums(X, q, labels, sample_weight, centre, bool(full), int(block_size),
                       block_stats, _threads(n_threads))
