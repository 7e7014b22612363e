"""Where a fit's samples live: the passes the EM and Lloyd loops need from them.

The loops in mixture.py and kmeans.py ask a source for merged statistics, never
for the samples themselves, so one loop fits an in-memory array here and a
chunked Dask array (emcore/_dask.py) the same way, with the same answer. The
per-sample helpers below are what both kinds of source run on their rows.
"""
import numpy as np

from emcore import _kernels, summaries
from emcore._estimation import distinct_rows, weighted_sum, worst_distinct_values
from emcore._params import kernel_arrays
from emcore._validation import (block_layout, check_sample_weight, check_spread, kernel_weights,
                                n_weighted, overflow_error, value_range, weight_total)


def samples_for_fit(estimator, X, sample_weight, n_threads, reset=True):
    """(source, start rows, start weights) for ``estimator.fit``: a Dask array of at
    least IN_MEMORY_BELOW rows stays chunked (its start is found on a sample), anything
    else is checked and held in memory. ``reset`` records n_features_in_ (and feature
    names); otherwise X must match them."""
    from emcore import _dask  # it imports this module
    X, sample_weight = _dask.in_memory_if_small(X, sample_weight, estimator.verbose)
    if _dask.is_dask_array(X):
        source = _dask.DaskSamples(estimator, X, sample_weight, n_threads, reset=reset)
        return (source, *source.start_sample())
    X = estimator._validate_X(X, reset=reset, n_threads=n_threads)
    check_spread(*value_range(X, n_threads), X.dtype)
    source = InMemorySamples(X, check_sample_weight(sample_weight, X.shape[0]), n_threads)
    return source, X, source.w


def nearest_labels(X, centers, n_threads=1):
    """Each row's nearest centre (int32), from the Lloyd kernel. X is checked already
    (every caller's X has been through check_samples, or is a fitted source's): its
    finiteness is not tested again (1.2 ms at 2 MP, on one core)."""
    labels = np.empty(X.shape[0], dtype=np.int32)
    summaries.lloyd_sums(X, centers, n_threads=n_threads, labels=labels, check_weights=False)
    return labels


def nearest_distances(X, centers, n_threads=1):
    """(N,) float64 squared distance of each row to its nearest centre."""
    nearest = np.asarray(centers)[nearest_labels(X, centers, n_threads)].astype(X.dtype)
    return ((X - nearest) ** 2).sum(axis=1, dtype=np.float64)


def log_density(X, means, prec_chol, weights, covariance_type, n_threads=1):
    """(N,) float64 log density of each row under a mixture."""
    k_means, k_prec, k_const, full = kernel_arrays(means, prec_chol, weights,
                                                   covariance_type, X.dtype)
    out = np.empty(X.shape[0])
    _kernels.log_mixture_density(X, k_means, k_prec, k_const, full, False, out, n_threads)
    return out


def worst_for_mixture(X, w, mixture, count, n_threads):
    """(values, masks, totals, scores): worst_distinct_values under the log density of
    ``mixture`` = (means, prec_chol, weights, covariance_type)."""
    score = log_density(X, *mixture, n_threads)
    return (*worst_distinct_values(X, w, score, count), score)


def farthest_from_centers(X, w, centers, count, n_threads):
    """(values, masks, totals, scores): worst_distinct_values scored by minus the squared
    distance to the nearest centre, among rows not on a centre."""
    dist = nearest_distances(X, centers, n_threads)
    return (*worst_distinct_values(X, w, -dist, count, exclude=dist == 0), -dist)


class InMemorySamples:
    """Checked (N, D) samples and (N,) weights held in this process."""

    def __init__(self, X, w, n_threads):
        self.X, self.w, self.n_threads = X, w, n_threads
        self.dtype = X.dtype
        self.n_features = X.shape[1]
        self.total_weight = weight_total(w)
        self.n_weighted = n_weighted(w)
        self._passes = None  # the Lloyd passes over X, checked once (made on first use)

    def overflow_error(self, what):
        return overflow_error(*value_range(self.X, self.n_threads), self.dtype, what)

    def em_statistics(self, means, prec_chol, weights, covariance_type):
        """(weighted log-likelihood, summed statistics, centre) of one E-step."""
        stats, loglik = summaries.merge([summaries.em_sums(
            self.X, means, prec_chol, weights, covariance_type, self.w,
            n_threads=self.n_threads, check_weights=False)])
        return loglik, stats, summaries.em_centre(means, self.dtype)

    def lloyd(self, centers, labels=None):
        """(summed cluster statistics (K, 1 + D), inertia) of one assignment pass;
        each sample's nearest centre is written to ``labels`` when given."""
        if self._passes is None:
            block_size, n_blocks = block_layout(self.X.shape[0])
            self._passes = _kernels.LloydPasses(self.X, kernel_weights(self.w), block_size,
                                                n_blocks, self.n_threads)
        centers = np.ascontiguousarray(centers, dtype=self.dtype)
        return summaries.merge([summaries.BlockSums(*self._passes(centers, labels))])

    def assign(self, centers):
        """(labels, inertia) of the samples under final centres."""
        labels = np.empty(self.X.shape[0], dtype=np.int32)
        return labels, self.lloyd(centers, labels)[1]

    def weighted_log_density(self, means, prec_chol, weights, covariance_type):
        """sum_i w_i log p(x_i)."""
        scores = log_density(self.X, means, prec_chol, weights, covariance_type,
                             self.n_threads)
        return weighted_sum(self.w, scores)

    def n_distinct(self):
        return len(distinct_rows(self.X, self.w))

    def worst_for_mixture(self, means, prec_chol, weights, covariance_type, count):
        """(values, total weights) of the ``count`` distinct values the mixture explains
        worst (see emcore._estimation.worst_distinct_values)."""
        values, _, totals, _ = worst_for_mixture(
            self.X, self.w, (means, prec_chol, weights, covariance_type), count,
            self.n_threads)
        return values, totals

    def farthest_from_centers(self, centers, count):
        """(values, total weights) of the ``count`` distinct values farthest from their
        nearest centre, among those not on a centre."""
        values, _, totals, _ = farthest_from_centers(self.X, self.w, centers, count,
                                                     self.n_threads)
        return values, totals
