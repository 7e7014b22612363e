"""The EM pass: E-step and the M-step's weighted sums in one streaming pass.

Samples are cut into fixed blocks whose size depends only on N (emcore/_params.py,
``block_layout``). Each block accumulates into its own row of ``block_stats`` in
sample order, whichever thread runs it, and the caller adds the rows in block
order. So the result is bitwise the same for any number of threads, unlike a
reduction of per-thread buffers. No N x K array is ever formed: responsibilities
live in a K-long scratch per thread.

Statistics per component k, centred on the current mean mu_k (float64):
  [0]              N_k  = sum_i r_ik
  [1 : 1+D]        S_k  = sum_i r_ik (x_i - mu_k)
  [1+D : ]         Q_k  = sum_i r_ik (x_i - mu_k)^2        ('diag', D values)
                   or the upper triangle of sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T
                   row by row ('full', D (D + 1) / 2 values)
where r_ik already includes the sample weight.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free

from emcore._gauss cimport component_log_probs, exp_shifted_sum, flog


cdef inline void accumulate_sample(
        const floating *x,          # IN (D,)
        const floating *means,      # IN (K, D)
        const floating *resp,       # IN (K,) exp(log_prob - best), unnormalised
        double scale,               # weight / sum(resp)
        int n_components,
        int n_features,
        bint full,
        double *stats,              # IN/OUT (K, S)
        double *diff) noexcept nogil:  # SCRATCH (D,)
    cdef int k, i, j, q
    cdef int n_stats = 1 + n_features + (n_features * (n_features + 1) // 2 if full else n_features)
    cdef double r, rd
    cdef double *st
    for k in range(n_components):
        r = resp[k] * scale
        if r == 0:  # underflowed: contributes exactly nothing
            continue
        st = stats + k * n_stats
        st[0] += r
        for i in range(n_features):
            diff[i] = <double> x[i] - <double> means[k * n_features + i]
            st[1 + i] += r * diff[i]
        if full:
            q = 1 + n_features
            for i in range(n_features):
                rd = r * diff[i]
                for j in range(i, n_features):
                    st[q] += rd * diff[j]
                    q += 1
        else:
            for i in range(n_features):
                st[1 + n_features + i] += r * diff[i] * diff[i]


def em_pass(
        const floating[:, ::1] X,           # IN (N, D)
        const double[::1] sample_weight,    # IN (N,)
        const floating[:, ::1] means,       # IN (K, D)
        const floating[:, ::1] prec,        # IN (K, P)
        const floating[::1] log_const,      # IN (K,)
        bint full,
        Py_ssize_t block_size,
        double[:, :, ::1] block_stats,      # OUT (B, K, S), see the module docstring
        double[::1] block_loglik,           # OUT (B,) sum_i w_i log p(x_i) per block
        int n_threads):
    """One E-step over all samples, returning the M-step's sums per block."""
    cdef Py_ssize_t n_samples = X.shape[0]
    cdef Py_ssize_t n_blocks = block_stats.shape[0]
    cdef Py_ssize_t b, i, start, end
    cdef int n_features = X.shape[1], n_components = means.shape[0]
    cdef floating *log_prob
    cdef floating *fdiff
    cdef double *ddiff
    cdef double *stats
    cdef floating best, total
    cdef double loglik
    block_stats[...] = 0
    block_loglik[...] = 0
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        log_prob = <floating *> malloc(n_components * sizeof(floating))
        fdiff = <floating *> malloc(n_features * sizeof(floating))
        ddiff = <double *> malloc(n_features * sizeof(double))
        for b in prange(n_blocks, schedule='static'):
            start = b * block_size
            end = min(start + block_size, n_samples)
            stats = &block_stats[b, 0, 0]
            loglik = 0
            for i in range(start, end):
                best = component_log_probs(&X[i, 0], &means[0, 0], &prec[0, 0],
                                           &log_const[0], n_components, n_features,
                                           full, log_prob, fdiff)
                # log_prob becomes exp(log_prob - best); log p(x) = best + log(total)
                total = exp_shifted_sum(log_prob, n_components, best)
                if total == 0:  # no component can explain x (overflow): caller sees -inf
                    loglik = loglik + sample_weight[i] * best
                    continue
                loglik = loglik + sample_weight[i] * (best + flog(total))
                accumulate_sample(&X[i, 0], &means[0, 0], log_prob,
                                  sample_weight[i] / total,
                                  n_components, n_features, full, stats, ddiff)
            block_loglik[b] = loglik
        free(log_prob)
        free(fdiff)
        free(ddiff)

