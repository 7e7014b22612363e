# Shared nogil helpers for the kernels: Gaussian component log-probabilities,
# log-sum-exp and squared distances. Everything here is inline, so each kernel
# module compiles its own copy and there is no cross-module call overhead.
#
# Parameter layout used by every kernel (prepared in emcore/_params.py):
#   means     (K, D)  component means
#   prec      (K, P)  'diag': P = D, 1/sigma per feature;
#                     'full': P = D*D, the upper-triangular Cholesky factor U of the
#                     precision matrix (precision = U U^T), row-major
#   log_const (K,)    log weight + log|U| - D/2 log(2 pi) (the last term optional)
# so that log(w_k N(x; mu_k, Sigma_k)) = log_const[k] - 0.5 * ||(x - mu_k) U_k||^2.

from cython cimport floating
from libc.math cimport exp, expf, log, logf, INFINITY


cdef inline floating fexp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating flog(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating mahalanobis_sq(
        const floating *x,       # IN (D,)
        const floating *mean,    # IN (D,)
        const floating *prec,    # IN (D,) or (D, D), see the layout above
        floating *diff,          # SCRATCH (D,)
        int n_features,
        bint full) noexcept nogil:
    """Squared Mahalanobis distance of one sample to one component."""
    cdef int i, j
    cdef floating t, acc = 0
    if not full:
        for i in range(n_features):
            t = (x[i] - mean[i]) * prec[i]
            acc = acc + t * t
        return acc
    for i in range(n_features):
        diff[i] = x[i] - mean[i]
    # y_j = sum_{i <= j} diff_i U[i, j]
    for j in range(n_features):
        t = 0
        for i in range(j + 1):
            t = t + diff[i] * prec[i * n_features + j]
        acc = acc + t * t
    return acc


cdef inline floating component_log_probs(
        const floating *x,           # IN (D,) one sample
        const floating *means,       # IN (K, D)
        const floating *prec,        # IN (K, P)
        const floating *log_const,   # IN (K,)
        int n_components,
        int n_features,
        bint full,
        floating *log_prob,          # OUT (K,) log(w_k N(x; k))
        floating *diff) noexcept nogil:  # SCRATCH (D,)
    """Fill log_prob for every component; return the largest one."""
    cdef int k
    cdef int p = n_features * n_features if full else n_features
    cdef floating lp, best = -INFINITY
    for k in range(n_components):
        lp = log_const[k] - <floating> 0.5 * mahalanobis_sq(
            x, means + k * n_features, prec + k * p, diff, n_features, full)
        log_prob[k] = lp
        if lp > best:
            best = lp
    return best


cdef inline floating exp_shifted_sum(
        floating *values,     # IN log-probabilities, OUT exp(value - largest)
        int n,
        floating largest) noexcept nogil:
    """Exponentiate relative to the largest value and return the sum of the results.

    The log-sum-exp is then largest + log(sum); the sum is >= 1 unless every value
    is -inf, where it is 0 (and no exp(-inf + inf) = NaN is formed).
    """
    cdef int k
    cdef floating total = 0
    if largest == -INFINITY:
        for k in range(n):
            values[k] = 0
        return 0
    for k in range(n):
        values[k] = fexp(values[k] - largest)
        total = total + values[k]
    return total


cdef inline floating squared_distance(
        const floating *x, const floating *c, int n_features) noexcept nogil:
    cdef int i
    cdef floating t, acc = 0
    for i in range(n_features):
        t = x[i] - c[i]
        acc = acc + t * t
    return acc
