"""Where a fit's samples live: the passes the EM and Lloyd loops need from them.

The loops in mixture.py and kmeans.py ask a source for merged statistics, never
for the samples themselves, so one loop fits an in-memory array here and a
chunked Dask array (emcore/_dask.py) the same way, with the same answer.
"""
import numpy as np

from emcore import summaries
from emcore._estimation import count_distinct, worst_distinct_values
from emcore._params import kernel_arrays
from emcore import _kernels
from emcore._validation import n_weighted, overflow_error, weight_total


def nearest_labels(X, centers, n_threads=1):
    """Each row's nearest centre (int32), from the Lloyd kernel."""
    labels = np.empty(X.shape[0], dtype=np.int32)
    summaries.lloyd_sums(X, centers, n_threads=n_threads, labels=labels)
    return labels


def log_density(X, means, prec_chol, weights, covariance_type, n_threads=1):
    """(N,) float64 log density of each row under a mixture."""
    k_means, k_prec, k_const, full = kernel_arrays(means, prec_chol, weights,
                                                   covariance_type, X.dtype)
    out = np.empty(X.shape[0])
    _kernels.log_mixture_density(X, k_means, k_prec, k_const, full, False, out, n_threads)
    return out


class InMemorySamples:
    """Checked (N, D) samples and (N,) weights held in this process."""

    def __init__(self, X, w, n_threads):
        self.X, self.w, self.n_threads = X, w, n_threads
        self.dtype = X.dtype
        self.n_features = X.shape[1]
        self.total_weight = weight_total(w)
        self.n_weighted = n_weighted(w)

    def overflow_error(self, what):
        return overflow_error(self.X, what)

    def em_statistics(self, means, prec_chol, weights, covariance_type):
        """(weighted log-likelihood, summed statistics, centre) of one E-step."""
        stats, loglik = summaries.merge([summaries.em_sums(
            self.X, means, prec_chol, weights, covariance_type, self.w,
            n_threads=self.n_threads)])
        return loglik, stats, summaries.em_centre(means, self.dtype)

    def lloyd(self, centers):
        """(summed cluster statistics (K, 1 + D), inertia) of one assignment pass."""
        return summaries.merge([summaries.lloyd_sums(self.X, centers, self.w,
                                                     n_threads=self.n_threads)])

    def assign(self, centers):
        """(labels, inertia) of the samples under final centres."""
        labels = np.empty(self.X.shape[0], dtype=np.int32)
        _, inertia = summaries.merge([summaries.lloyd_sums(
            self.X, centers, self.w, n_threads=self.n_threads, labels=labels)])
        return labels, inertia

    def weighted_log_density(self, means, prec_chol, weights, covariance_type):
        """sum_i w_i log p(x_i)."""
        scores = log_density(self.X, means, prec_chol, weights, covariance_type,
                             self.n_threads)
        return float(np.dot(self.w, scores))

    def n_distinct(self):
        return count_distinct(self.X, self.w)

    def worst_for_mixture(self, means, prec_chol, weights, covariance_type, count):
        """(values, total weights) of the ``count`` distinct values the mixture explains
        worst (see emcore._estimation.worst_distinct_values)."""
        score = log_density(self.X, means, prec_chol, weights, covariance_type,
                            self.n_threads)
        values, _, totals = worst_distinct_values(self.X, self.w, score, count)
        return values, totals

    def farthest_from_centers(self, centers, count):
        """(values, total weights) of the ``count`` distinct values farthest from their
        nearest centre, among those not on a centre."""
        labels = nearest_labels(self.X, centers, self.n_threads)
        dist = ((self.X - centers[labels].astype(self.dtype)) ** 2).sum(axis=1,
                                                                     dtype=np.float64)
        values, _, totals = worst_distinct_values(self.X, self.w, -dist, count,
                                                  exclude=dist == 0)
        return values, totals
