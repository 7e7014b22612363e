"""The M-step maths as pure functions of arrays.

Mixture parameters (weights, means, covariances in the layout of
``covariance_type``) from the kernels' summed statistics, from a hard
assignment, or from random soft responsibilities; and where an empty component
or cluster restarts. Everything here is float64 numpy; nothing keeps state.
"""
from __future__ import annotations

import functools

import numpy as np

from emcore._params import n_em_stats

#: Rows of random responsibilities drawn and summed at a time (init_params='random').
RANDOM_CHUNK = 1 << 16


def weighted_sum(w, values) -> float:
    """sum_i w_i v_i in float64, in one fixed order and without BLAS: numpy's dot
    hands a long vector to OpenBLAS's threads, which then spin on every core for a
    while after each call, taking the CPU from emcore's own threads and from the
    other files of a batch (a one-thread batch used two cores)."""
    return float(np.einsum("i,i->", np.asarray(w, dtype=np.float64),
                           np.asarray(values, dtype=np.float64)))


@functools.lru_cache(maxsize=16)
def _upper_triangle(n_features):
    """np.triu_indices(D), kept: it costs more than the EM pass of a small fit."""
    rows, cols = np.triu_indices(n_features)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


def _triangle_to_full(second, n_features):
    """(K, D(D+1)/2) upper-triangle sums -> (K, D, D) symmetric matrices."""
    iu = _upper_triangle(n_features)
    out = np.zeros((len(second), n_features, n_features))
    out[:, iu[0], iu[1]] = second
    out[:, iu[1], iu[0]] = second
    return out


def _finish_covariances(scatter, nk, covariance_type, reg_covar):
    """Covariances from per-component scatter about the means, divided by nk or not.

    ``scatter`` is (K, D, D) for 'full' and 'tied', (K, D) otherwise, already divided
    by nk; reg_covar is added to every variance.
    """
    d = scatter.shape[1]
    if covariance_type == "tied":  # the components' scatter pooled by their mass
        cov = (scatter * nk[:, None, None]).sum(axis=0) / nk.sum()
        cov[np.arange(d), np.arange(d)] += reg_covar
        return cov
    if covariance_type == "full":
        cov = scatter.copy()
        cov[:, np.arange(d), np.arange(d)] += reg_covar
        return cov
    cov = scatter + reg_covar
    return cov.mean(axis=1) if covariance_type == "spherical" else cov


def m_step(stats: np.ndarray, centre: np.ndarray, eps: float, covariance_type: str,
           reg_covar: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mixture's new parameters from summed statistics centred on ``centre``.

    Parameters
    ----------
    stats : ndarray of shape (K, 1 + D + S)
        The responsibility mass, the sums of r (x - centre) and the sums of
        r (x - centre)^2 (S = D) or of its upper triangle (S = D(D+1)/2, for
        'full' and 'tied'), as emcore/_em.pyx writes them.
    centre : ndarray of shape (K, D)
        What the sums are centred on (:func:`emcore.summaries.em_centre`).
    eps : float
        Added ten times to each mass, as scikit-learn does.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
        Added to the covariances' diagonals.

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    covariances : ndarray
        In the layout of ``covariance_type``.
    """
    stats, centre = np.asarray(stats), np.asarray(centre)
    if centre.ndim != 2 or stats.ndim != 2 or len(stats) != len(centre):
        raise ValueError(f"stats must be (K, 1 + D + S) and centre (K, D) for the same K; got "
                         f"shapes {stats.shape} and {centre.shape}")
    n_features = centre.shape[1]
    n_stats = n_em_stats(n_features, covariance_type in ("full", "tied"))
    if stats.shape[1] != n_stats:
        raise ValueError(f"stats for '{covariance_type}' components of {n_features} features "
                         f"must have {n_stats} columns, got {stats.shape[1]}")
    nk = stats[:, 0] + 10 * eps
    shift = stats[:, 1:1 + n_features] / nk[:, None]
    means = centre + shift
    second = stats[:, 1 + n_features:]
    if covariance_type in ("full", "tied"):
        scatter = (_triangle_to_full(second, n_features) / nk[:, None, None]
                   - shift[:, :, None] * shift[:, None, :])
    else:
        scatter = second / nk[:, None] - shift**2
    return nk / nk.sum(), means, _finish_covariances(scatter, nk, covariance_type, reg_covar)


def random_parameters(X, w, n_components, random_state, eps, covariance_type, reg_covar):
    """(weights, means, covariances) from uniform random responsibilities.

    scikit-learn's init_params='random': each sample's responsibilities are
    uniform draws normalised to sum to one, drawn as scikit-learn draws them (one
    (N, K) stream). Summed a chunk at a time, twice (means, then scatter about
    them), replaying the same draws, so no N x K array is held.
    """
    n, d = X.shape
    k = n_components
    state = random_state.get_state()

    def responsibilities():
        for start in range(0, n, RANDOM_CHUNK):
            stop = min(start + RANDOM_CHUNK, n)
            resp = random_state.uniform(size=(stop - start, k))
            resp /= resp.sum(axis=1, keepdims=True)
            yield start, stop, resp * w[start:stop, None]

    nk = np.full(k, 10 * eps)
    sums = np.zeros((k, d))
    for start, stop, r in responsibilities():
        nk += r.sum(axis=0)
        sums += r.T @ X[start:stop]
    means = sums / nk[:, None]
    random_state.set_state(state)  # the same draws again
    full = covariance_type in ("full", "tied")
    scatter = np.zeros((k, d, d) if full else (k, d))
    for start, stop, r in responsibilities():
        for c in range(k):
            diff = X[start:stop] - means[c]
            if full:
                scatter[c] += (r[:, c, None] * diff).T @ diff
            else:
                scatter[c] += r[:, c] @ diff**2
    scatter /= nk.reshape((k,) + (1,) * (scatter.ndim - 1))
    return nk / nk.sum(), means, _finish_covariances(scatter, nk, covariance_type, reg_covar)


def distinct_rows(X, w):
    """The distinct rows of X that have a positive weight (in no particular order)."""
    rows = np.ascontiguousarray(X[w > 0])
    as_bytes = np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))
    return np.unique(rows.view(as_bytes)).view(rows.dtype).reshape(-1, rows.shape[1])


def worst_distinct_values(X, w, score, count, exclude=None):
    """The ``count`` distinct values of X that score lowest, and where they are.

    Re-seeding works on distinct values, not samples, so that fitting every pixel
    and fitting the distinct colours weighted by their counts restart an empty
    component at the same place with the same weight. Samples of weight zero and
    (optionally) samples where ``exclude`` is True are never chosen; ties in
    score are broken by the value itself, never by position.

    Returns
    -------
    values : ndarray (m, D), m <= count
        Fewer than ``count`` when X has fewer eligible distinct values.
    masks : list of m boolean arrays (N,)
        The samples equal to each value.
    totals : ndarray (m,)
        The total weight of each value's samples.
    """
    eligible = w > 0
    if exclude is not None:
        eligible &= ~exclude
    score = np.where(eligible, score, np.inf)
    order = np.argsort(score, kind="stable")
    n_eligible = int(np.count_nonzero(eligible))
    window = min(4 * count, n_eligible)
    while True:
        # widen the window to every sample tied with its last one, so that what is in
        # it does not depend on the samples' order
        if 0 < window < n_eligible:
            window = int(np.searchsorted(score[order], score[order[window - 1]], side="right"))
        candidates = order[:window]
        values, first = np.unique(X[candidates], axis=0, return_index=True)
        if len(values) >= count or window >= n_eligible:
            break
        window = min(2 * window, n_eligible)
    best = np.lexsort(values.T[::-1].tolist() + [score[candidates[first]]])[:count]
    values = values[best]
    masks = [(X == v).all(axis=1) & eligible for v in values]
    totals = np.array([float(w[m].sum()) for m in masks])
    return values, masks, totals
