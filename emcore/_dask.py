"""Fitting and scoring Dask arrays: the same kernels, a chunk at a time.

Nothing here imports dask until a Dask array is actually given (dask stays an
optional extra). A fit maps :mod:`emcore.summaries` over the chunks of the
samples (rows) on whatever scheduler is active, a ``dask.distributed`` client
included; only model-sized summaries come back, and they are merged in chunk
order, so the result does not depend on which worker finished first. Per-sample
outputs are lazy ``map_blocks``.
"""
import sys

import numpy as np

from emcore import summaries
from emcore._estimation import distinct_rows, weighted_sum
from emcore._sources import (farthest_from_centers, log_density, nearest_labels,
                             worst_for_mixture)
from emcore._threads import threads_per_task, usable_cores
from emcore._validation import (check_finite, check_sample_weight, check_spread, compute_dtype,
                                n_weighted, overflow_error, value_range, weight_total)

#: Rows drawn (evenly spaced, whatever the chunking) to find a starting model when
#: no starting parameters are given: enough for k-means++ and the k-means start of
#: a mixture, small enough for one machine.
START_SAMPLE = 1 << 18


#: Dask arrays with fewer rows are computed into memory and fitted there: measured on a
#: 2-worker LocalCluster, the scheduler adds 12-21 ms per iteration, more than a diagonal
#: EM iteration with K = 32 costs below about 2 million rows (benchmarks/bench_dask.py;
#: README, "Larger than memory"). The answer is the in-memory fit either way.
IN_MEMORY_BELOW = 2_000_000


def in_memory_if_small(X, sample_weight, verbose=0):
    """(X, sample_weight) computed into numpy when X is a Dask array of fewer than
    IN_MEMORY_BELOW rows; unchanged otherwise."""
    if not is_dask_array(X) or X.shape[0] >= IN_MEMORY_BELOW:
        return X, sample_weight
    if verbose:
        print(f"emcore: {X.shape[0]:,} rows (fewer than {IN_MEMORY_BELOW:,}): computed into "
              "memory and fitted there, where it is faster")
    if is_dask_array(sample_weight):
        sample_weight = sample_weight.compute()
    return X.compute(), sample_weight


def is_dask_array(x):
    """True for a dask.array.Array, without importing dask."""
    return type(x).__module__.startswith("dask.") and hasattr(x, "chunks") and hasattr(
        x, "map_blocks")


def map_rows(method, X, dtype, n_columns=None):
    """``method`` applied lazily to each row chunk of the Dask array X: (N,) or (N, n_columns)."""
    X = X.rechunk({1: -1})
    if n_columns is None:
        return X.map_blocks(method, dtype=dtype, drop_axis=1)
    return X.map_blocks(method, dtype=dtype, chunks=(X.chunks[0], (n_columns,)))


def _kernel_build():
    """The kernel build a worker runs ('avx512', 'avx2' or 'baseline')."""
    from emcore import _kernels
    return _kernels.SIMD


# --------------------------------------------------- what each chunk computes
def _chunk_check(x, w):
    """A chunk checked as in-memory samples are (errors raised on the worker reach the
    caller as they are), and the facts the fit needs: range, weighted count and total."""
    x = check_finite(np.asarray(x), "X")
    w = check_sample_weight(w, len(x), positive_sum=False)
    low, high = value_range(x) if len(x) else (None, None)
    return dict(low=low, high=high, n_weighted=n_weighted(w), total=weight_total(w))


def _prepare(x, w, dtype):
    x = np.ascontiguousarray(x, dtype=dtype)
    w = np.broadcast_to(np.float64(1.0), (len(x),)) if w is None else np.ascontiguousarray(
        w, dtype=np.float64)
    return x, w


def _task_threads(n_threads):
    """A task's threads: the estimator's, capped at the task's share of the cores when
    its scheduler runs several tasks at once (a distributed worker's threads, or the
    local threaded and process schedulers' one task per core), so that an explicit
    n_threads never oversubscribes the machine."""
    if n_threads <= 1:
        return 1
    distributed = sys.modules.get("distributed")  # a worker has imported it; else not one
    try:
        concurrent = distributed.get_worker().state.nthreads
    except (ValueError, AttributeError):  # not on a distributed worker
        import dask
        scheduler = dask.config.get("scheduler", None)
        concurrent = 1 if scheduler in ("sync", "synchronous", "single-threaded") else (
            dask.config.get("num_workers", None) or usable_cores())
    return threads_per_task(n_threads, int(concurrent), usable_cores())


def _chunk_em(x, w, dtype, means, prec_chol, weights, cov_type, block_size, n_threads):
    x, w = _prepare(x, w, dtype)  # weights checked once, before the fit (_chunk_check)
    return summaries.em_sums(x, means, prec_chol, weights, cov_type, w,
                             block_size=block_size, n_threads=_task_threads(n_threads),
                             check_weights=False)


def _chunk_lloyd(x, w, dtype, centers, block_size, n_threads):
    x, w = _prepare(x, w, dtype)
    return summaries.lloyd_sums(x, centers, w, block_size=block_size,
                                n_threads=_task_threads(n_threads), check_weights=False)


def _chunk_log_density(x, w, dtype, means, prec_chol, weights, cov_type, n_threads):
    x, w = _prepare(x, w, dtype)
    return weighted_sum(w, log_density(x, means, prec_chol, weights, cov_type,
                                       _task_threads(n_threads)))


def _chunk_distinct(x, w, dtype):
    return distinct_rows(*_prepare(x, w, dtype))


def _values_and_scores(values, masks, totals, score):
    """A chunk's candidate values with their scores (for merging across chunks)."""
    return values, np.array([score[m].min() for m in masks])


def _chunk_worst_mixture(x, w, dtype, mixture, count, n_threads):
    n_threads = _task_threads(n_threads)
    x, w = _prepare(x, w, dtype)
    return _values_and_scores(*worst_for_mixture(x, w, mixture, count, n_threads))


def _chunk_farthest(x, w, dtype, centers, count, n_threads):
    n_threads = _task_threads(n_threads)
    x, w = _prepare(x, w, dtype)
    return _values_and_scores(*farthest_from_centers(x, w, centers, count, n_threads))


def _chunk_value_totals(x, w, dtype, values):
    x, w = _prepare(x, w, dtype)
    return np.array([float(w[(x == v).all(axis=1)].sum()) for v in values])


class DaskSamples:
    """The samples of a fit as a chunked Dask array; see emcore/_sources.py for the
    interface. Each task runs the kernels on ``n_threads`` threads (1 unless the
    estimator's n_threads says otherwise: a worker runs several tasks at once)."""

    def __init__(self, estimator, X, sample_weight, n_threads, reset=True):
        import dask
        import dask.array as da
        self._dask = dask
        if X.ndim != 2:
            raise ValueError(f"Expected 2D array, got {X.ndim}D array instead: X must be "
                             f"(n_samples, n_features), got shape {X.shape}")
        if X.dtype.kind not in "uif":
            raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"Found array with shape={X.shape}: X is empty")
        self.dtype = np.dtype(compute_dtype(X))
        self.n_features = int(X.shape[1])
        self.n_threads = 1 if estimator.n_threads is None else n_threads
        X = X.rechunk({1: -1})
        self.X = X
        self.blocks = list(X.to_delayed().ravel())
        if sample_weight is None:
            self.wblocks = [None] * len(self.blocks)
        else:
            w = da.asarray(sample_weight)
            if w.shape != (X.shape[0],):
                raise ValueError(f"sample_weight must have shape ({X.shape[0]},), "
                                 f"got {w.shape}")
            self.wblocks = list(w.astype(np.float64).rechunk((X.chunks[0],)).to_delayed()
                                .ravel())
        # empty chunks (dask allows them) have nothing to add
        kept = [i for i, n in enumerate(X.chunks[0]) if n > 0]
        self.blocks = [self.blocks[i] for i in kept]
        self.wblocks = [self.wblocks[i] for i in kept]
        self.block_size = summaries.block_size_for(X.shape[0])
        self._check_worker_builds()
        checks = self._map(_chunk_check)
        self.n_weighted = sum(c["n_weighted"] for c in checks)
        self.total_weight = float(np.sum([c["total"] for c in checks]))
        if not self.total_weight > 0:
            raise ValueError("sample_weight must have a positive sum: every weight is zero")
        self._low = np.min([c["low"] for c in checks if c["low"] is not None], axis=0)
        self._high = np.max([c["high"] for c in checks if c["high"] is not None], axis=0)
        check_spread(self._low, self._high, self.dtype)
        if reset:
            estimator.n_features_in_ = self.n_features
            estimator.__dict__.pop("feature_names_in_", None)
        elif self.n_features != estimator.n_features_in_:
            raise ValueError(f"X has {self.n_features} features, but {type(estimator).__name__}"
                             f" is expecting {estimator.n_features_in_} features as input.")

    def _check_worker_builds(self):
        """Warn when distributed workers run another kernel build (AVX-512, AVX2 or baseline) than
        this process: results then differ in the last bits between chunks."""
        try:
            from distributed import get_client
            client = get_client()
        except (ImportError, ValueError):
            return  # not on a distributed cluster
        from emcore import _kernels
        builds = set(client.run(_kernel_build).values())
        if builds - {_kernels.SIMD}:
            import warnings
            warnings.warn(f"the Dask workers run emcore's {', '.join(sorted(builds))} kernel "
                          f"build(s), this process the {_kernels.SIMD} one: results may differ "
                          "in the last bits from an in-memory fit; set EMCORE_SIMD=baseline "
                          "everywhere for identical builds", RuntimeWarning, stacklevel=4)

    def _map(self, function, *args):
        """``function(chunk, chunk_weights, *args)`` on every chunk, results in chunk order."""
        delayed = self._dask.delayed(function, pure=True)
        return list(self._dask.compute(*[delayed(x, w, *args)
                                         for x, w in zip(self.blocks, self.wblocks)]))

    def overflow_error(self, what):
        return overflow_error(self._low, self._high, self.dtype, what)

    def start_sample(self):
        """(rows, weights) for finding a start: every ceil(N / START_SAMPLE)-th row, the
        same rows for any chunking, in memory."""
        step = max(1, -(-self.X.shape[0] // START_SAMPLE))
        rows = np.ascontiguousarray(self.X[::step].compute(), dtype=self.dtype)
        if self.wblocks[0] is None:
            return rows, np.broadcast_to(np.float64(1.0), (len(rows),))
        import dask.array as da
        w = da.concatenate([da.from_delayed(b, (n,), np.float64)
                            for b, n in zip(self.wblocks, self.X.chunks[0])])
        w = np.ascontiguousarray(w[::step].compute())
        if not (w > 0).any():
            raise ValueError("sample_weight: the start sample has no positive weight; give "
                             "means_init/init or weights with more positive entries")
        return rows, w

    def em_statistics(self, means, prec_chol, weights, covariance_type):
        parts = self._map(_chunk_em, self.dtype, means, prec_chol, weights, covariance_type,
                          self.block_size, self.n_threads)
        stats, loglik = summaries.merge(parts)
        return loglik, stats, summaries.em_centre(means, self.dtype)

    def lloyd(self, centers):
        return summaries.merge(self._map(_chunk_lloyd, self.dtype,
                                         np.ascontiguousarray(centers, dtype=self.dtype),
                                         self.block_size, self.n_threads))

    def assign(self, centers):
        """(lazy labels, inertia) under final centres."""
        centers = np.ascontiguousarray(centers, dtype=self.dtype)
        _, inertia = self.lloyd(centers)
        labels = map_rows(_labels_of(centers, self.dtype), self.X, np.int32)
        return labels, inertia

    def weighted_log_density(self, means, prec_chol, weights, covariance_type):
        return float(np.sum(self._map(_chunk_log_density, self.dtype, means, prec_chol,
                                      weights, covariance_type, self.n_threads)))

    def n_distinct(self):
        rows = np.concatenate(self._map(_chunk_distinct, self.dtype))
        return len(distinct_rows(rows, np.ones(len(rows))))

    def _choose(self, parts, count):
        """The ``count`` best (score, value) over the chunks' candidates, with totals
        summed over every chunk: the same choice for any chunking."""
        values = np.concatenate([v for v, _ in parts])
        scores = np.concatenate([s for _, s in parts])
        if len(values) == 0:
            return values.reshape(0, self.n_features), np.zeros(0)
        unique, inverse = np.unique(values, axis=0, return_inverse=True)
        best = np.full(len(unique), np.inf)
        np.minimum.at(best, inverse.ravel(), scores)
        order = np.lexsort(unique.T[::-1].tolist() + [best])[:count]
        chosen = unique[order]
        totals = np.sum(self._map(_chunk_value_totals, self.dtype, chosen), axis=0)
        return chosen, np.asarray(totals, dtype=np.float64)

    def worst_for_mixture(self, means, prec_chol, weights, covariance_type, count):
        mixture = (means, prec_chol, weights, covariance_type)
        return self._choose(self._map(_chunk_worst_mixture, self.dtype, mixture, count,
                                      self.n_threads), count)

    def farthest_from_centers(self, centers, count):
        return self._choose(self._map(_chunk_farthest, self.dtype,
                                      np.ascontiguousarray(centers, dtype=self.dtype), count,
                                      self.n_threads), count)


class _labels_of:
    """A picklable function: each row's nearest centre (for map_blocks)."""

    def __init__(self, centers, dtype):
        self.centers, self.dtype = centers, dtype

    def __call__(self, block):
        return nearest_labels(np.ascontiguousarray(block, dtype=self.dtype), self.centers)


# ------------------------------------------------------------ images, colours
def _chunk_colors(block):
    """(distinct colours, counts) of one chunk of pixel rows."""
    from emcore.image import unique_colors  # not at import: image.py dispatches here
    colors, counts, _ = unique_colors(np.ascontiguousarray(block))
    return colors, counts


class _IndexOf:
    """A picklable function: each pixel row's index in a table of distinct colours."""

    def __init__(self, colors):
        self.colors = colors

    def __call__(self, block):
        block = np.ascontiguousarray(block)
        if block.dtype == np.uint8 and block.shape[1] == 3:  # a 24-bit code -> index table
            table = np.empty(1 << 24, dtype=np.int32)  # only the colours' entries are read
            table[_codes(self.colors)] = np.arange(len(self.colors), dtype=np.int32)
            return table[_codes(block)]
        _, inverse = np.unique(np.concatenate([self.colors, block]), axis=0,
                               return_inverse=True)
        inverse = inverse.ravel()
        n = len(self.colors)
        index_of = np.empty(n, dtype=np.int32)  # sorted position -> index in self.colors,
        index_of[inverse[:n]] = np.arange(n, dtype=np.int32)  # whatever their order
        return index_of[inverse[n:]]


def _codes(rgb8):
    rgb8 = rgb8.astype(np.int32)
    return (rgb8[:, 0] << 16) | (rgb8[:, 1] << 8) | rgb8[:, 2]


def unique_colors(pixels, z_order=False):
    """emcore.image.distinct_colors of a Dask (N, C) array: the colours and counts in
    memory (merged from every chunk's), the inverse a lazy (N,) int32 Dask array."""
    import dask
    if pixels.ndim != 2:
        raise ValueError(f"pixels must be (N, C), got shape {pixels.shape}")
    pixels = pixels.rechunk({1: -1})
    parts = dask.compute(*[dask.delayed(_chunk_colors, pure=True)(block)
                           for block in pixels.to_delayed().ravel()])
    chunk_colors = np.concatenate([c for c, _ in parts])
    chunk_counts = np.concatenate([n for _, n in parts])
    if pixels.dtype == np.uint8 and pixels.shape[1] == 3:  # merged as 24-bit codes
        totals = np.bincount(_codes(chunk_colors), chunk_counts, minlength=1 << 24)
        codes = np.flatnonzero(totals)
        colors = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1)
        colors, counts = colors.astype(np.uint8), totals[codes].astype(np.int64)
    else:
        colors, inverse = np.unique(chunk_colors, axis=0, return_inverse=True)
        counts = np.bincount(inverse.ravel(), chunk_counts,
                             minlength=len(colors)).astype(np.int64)
    from emcore.image import z_order_permutation  # image.py imports this module
    order = z_order_permutation(colors) if z_order else None
    if order is not None:  # merged in lexicographic order, then put in Z-order
        colors, counts = colors[order], counts[order]
    return colors, counts, pixels.map_blocks(_IndexOf(colors), dtype=np.int32, drop_axis=1)


def image_rows(image):
    """An (H, W, C) or (H, W) Dask image as (H*W, C) pixel rows, chunked by whole rows."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"a Dask image must be (H, W) or (H, W, C) with 1 to 4 channels "
                         f"(grey, grey + alpha, RGB, RGBA); got shape {image.shape}")
    image = image.rechunk({1: -1, 2: -1})
    return image.reshape(-1, image.shape[2])


def _clear_as_zero(block):
    """Rows of colour and alpha with every fully transparent one made all zeros (its
    colour does not show), so that they are one distinct value."""
    return np.where(block[:, -1:] == 0, np.zeros((), dtype=block.dtype), block)


def transparent_as_zero(rows):
    """Lazily, :func:`_clear_as_zero` of every chunk of (N, C) rows whose last column is alpha."""
    return rows.map_blocks(_clear_as_zero, dtype=rows.dtype)


class _Take:
    """A picklable function: table[indices] for map_blocks."""

    def __init__(self, table):
        self.table = table

    def __call__(self, indices):
        return self.table[indices]


def take(table, indices):
    """table[indices] for lazy indices: (shape of indices) + table.shape[1:]."""
    if table.ndim == 1:
        return indices.map_blocks(_Take(table), dtype=table.dtype)
    return indices.map_blocks(_Take(table), dtype=table.dtype, new_axis=indices.ndim,
                              chunks=indices.chunks + ((table.shape[1],),))
