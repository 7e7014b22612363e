"""Per-sample mixture scoring kernels: no reductions, one output row per sample.

The caller (emcore/_params.py, densities.py, mixture.py) validates and allocates;
these functions only compute. Arguments are marked IN / OUT.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free

from emcore._gauss cimport component_log_probs, exp_shifted_sum, fexp, flog


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
    cdef Py_ssize_t i, n_samples = X.shape[0]
    cdef int n_features = X.shape[1], n_components = means.shape[0]
    cdef floating *log_prob
    cdef floating *diff
    cdef floating best, lse
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        log_prob = <floating *> malloc(n_components * sizeof(floating))
        diff = <floating *> malloc(n_features * sizeof(floating))
        for i in prange(n_samples, schedule='static'):
            best = component_log_probs(&X[i, 0], &means[0, 0], &prec[0, 0], &log_const[0],
                                       n_components, n_features, full, log_prob, diff)
            lse = best + flog(exp_shifted_sum(log_prob, n_components, best))
            out[i] = fexp(<double> lse) if take_exp else lse
        free(log_prob)
        free(diff)


def most_likely_component(
        const floating[:, ::1] X,          # IN (N, D)
        const floating[:, ::1] means,      # IN (K, D)
        const floating[:, ::1] prec,       # IN (K, P)
        const floating[::1] log_const,     # IN (K,)
        bint full,
        int[::1] labels,                   # OUT (N,) argmax_k of w_k N(x_i; k)
        int n_threads):
    """The component with the largest posterior for every sample (first one on ties)."""
    cdef Py_ssize_t i, n_samples = X.shape[0]
    cdef int k, label, n_features = X.shape[1], n_components = means.shape[0]
    cdef floating *log_prob
    cdef floating *diff
    cdef floating best
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        log_prob = <floating *> malloc(n_components * sizeof(floating))
        diff = <floating *> malloc(n_features * sizeof(floating))
        for i in prange(n_samples, schedule='static'):
            best = component_log_probs(&X[i, 0], &means[0, 0], &prec[0, 0], &log_const[0],
                                       n_components, n_features, full, log_prob, diff)
            label = 0
            for k in range(n_components):
                if log_prob[k] == best:
                    label = k
                    break
            labels[i] = label
        free(log_prob)
        free(diff)


def log_responsibilities(
        const floating[:, ::1] X,          # IN (N, D)
        const floating[:, ::1] means,      # IN (K, D)
        const floating[:, ::1] prec,       # IN (K, P)
        const floating[::1] log_const,     # IN (K,)
        bint full,
        floating[:, ::1] out,              # OUT (N, K) log posterior of each component
        int n_threads):
    """log r_ik = log w_k N(x_i; k) - log sum_j w_j N(x_i; j): the caller asked for N x K."""
    cdef Py_ssize_t i, n_samples = X.shape[0]
    cdef int k, n_features = X.shape[1], n_components = means.shape[0]
    cdef floating *diff
    cdef floating *log_prob
    cdef floating best, lse
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        diff = <floating *> malloc(n_features * sizeof(floating))
        log_prob = <floating *> malloc(n_components * sizeof(floating))
        for i in prange(n_samples, schedule='static'):
            best = component_log_probs(&X[i, 0], &means[0, 0], &prec[0, 0], &log_const[0],
                                       n_components, n_features, full, &out[i, 0], diff)
            for k in range(n_components):
                log_prob[k] = out[i, k]
            lse = best + flog(exp_shifted_sum(log_prob, n_components, best))
            for k in range(n_components):
                out[i, k] = out[i, k] - lse
        free(diff)
        free(log_prob)
