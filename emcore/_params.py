"""Gaussian parameter conversions shared by compute_densities and GaussianMixture.

The covariance layouts follow scikit-learn: 'full' (K, D, D), 'tied' (D, D)
shared by every component, 'diag' (K, D), 'spherical' (K,). Kernels take every
type as either per-feature inverse standard deviations (K, D) or the flattened
upper-triangular Cholesky factor of the precision matrix (K, D*D); see
emcore/_gauss.pxd.
"""
from __future__ import annotations

import numpy as np

COVARIANCE_TYPES = ("spherical", "diag", "tied", "full")


def n_em_stats(n_features, full):
    """Columns of an EM pass's per-component statistics: the mass, the D sums of
    r (x - c), and the sums of r (x - c)^2: D of them, or the upper triangle's
    D(D+1)/2 for 'full' and 'tied' (``full``)."""
    d = n_features
    return 1 + d + (d * (d + 1) // 2 if full else d)


def covariance_shape(covariance_type, n_components, n_features):
    """The shape of covariances_ (and precisions_) for a covariance type."""
    k, d = n_components, n_features
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]
LOG_2PI = np.log(2.0 * np.pi)
LOG2_E = 1.0 / np.log(2.0)


def precision_cholesky(covariances: np.ndarray, covariance_type: str,
                       name: str = "covariance") -> np.ndarray:
    """Cholesky factors of the precision matrices, as scikit-learn's precisions_cholesky_.

    Parameters
    ----------
    covariances : array_like
        In the layout of ``covariance_type``.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    name : str, default 'covariance'
        What the error messages call the matrices.

    Returns
    -------
    precisions_cholesky : ndarray
        The same layout: inverse standard deviations ('diag', 'spherical') or upper
        triangular factors U with precision = U U^T ('full', 'tied').

    Raises
    ------
    ValueError
        A non-positive variance, or a non-symmetric or non-positive-definite matrix.
    """
    cov = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "tied":
        return precision_cholesky(cov[None], "full", name)[0]
    if covariance_type == "full":
        scale = np.maximum(np.abs(cov).max(axis=(1, 2)), np.finfo(np.float64).tiny)
        asym = np.abs(cov - cov.transpose(0, 2, 1)).max(axis=(1, 2))
        if (asym > 1e-7 * scale).any():
            raise ValueError(f"{name} {int(np.argmax(asym > 1e-7 * scale))} is not symmetric")
        try:
            lower = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            lower = None
        if lower is None or not np.isfinite(lower).all():
            for k, c in enumerate(cov):  # find the first bad one for the message
                try:
                    np.linalg.cholesky(c)
                except np.linalg.LinAlgError:
                    break
            raise ValueError(f"{name} {k} is not positive definite")
        # precision = inv(L)^T inv(L) = U U^T with U = inv(L)^T upper triangular
        return np.linalg.inv(lower).transpose(0, 2, 1)
    if not (cov > 0).all():
        raise ValueError(f"every {name} variance must be positive")
    return 1.0 / np.sqrt(cov)


def precision_from_cholesky(prec_chol, covariance_type):
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    return prec_chol**2


def log_det_precision_cholesky(prec_chol, covariance_type, n_features):
    """log|U| for each component, i.e. -1/2 log|Sigma| (one value for 'tied')."""
    if covariance_type == "tied":
        return np.log(np.diagonal(prec_chol)).sum()
    if covariance_type == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "diag":
        return np.log(prec_chol).sum(axis=1)
    return n_features * np.log(prec_chol)


def kernel_arrays(means, prec_chol, weights, covariance_type, dtype, normalize=True):
    """(means, prec, log_const, full) laid out for the kernels, in dtype.

    The kernels work in log2 units (see emcore/_gauss.pxd): prec is the precision
    Cholesky factor times sqrt(log2(e) / 2), log_const the log weight and
    normalisation times log2(e), so that a log2-probability is
    log_const - ||(x - mean) prec||^2. Computed in float64, then cast.
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2 or covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"means must be (n_components, n_features) and covariance_type one "
                         f"of {', '.join(COVARIANCE_TYPES)}; got means of shape "
                         f"{means.shape} and {covariance_type!r}")
    n_components, n_features = means.shape
    prec_chol = np.asarray(prec_chol, dtype=np.float64)
    expected = covariance_shape(covariance_type, n_components, n_features)
    if prec_chol.shape != expected or np.shape(weights) != (n_components,):
        raise ValueError(f"for {n_components} '{covariance_type}' components of {n_features} "
                         f"features the precision Cholesky factors must have shape {expected} "
                         f"and the weights ({n_components},); got {prec_chol.shape} and "
                         f"{np.shape(weights)}")
    with np.errstate(divide="ignore"):  # a zero weight is log 0 = -inf: never chosen
        log_const = np.log(np.asarray(weights, dtype=np.float64))
    log_const = log_const + log_det_precision_cholesky(prec_chol, covariance_type, n_features)
    if normalize:
        log_const -= 0.5 * n_features * LOG_2PI
    log_const = log_const * LOG2_E
    prec_chol = prec_chol * np.sqrt(0.5 * LOG2_E)
    full = covariance_type in ("full", "tied")
    if covariance_type == "tied":  # the full kernels, with the one factor for every component
        prec = np.broadcast_to(prec_chol.reshape(1, -1), (n_components, n_features**2))
    elif full:
        prec = prec_chol.reshape(n_components, n_features * n_features)
    elif covariance_type == "diag":
        prec = prec_chol
    else:
        prec = np.repeat(prec_chol[:, None], n_features, axis=1)
    as_kernel = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    return as_kernel(means), as_kernel(prec), as_kernel(log_const), full
