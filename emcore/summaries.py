"""Sufficient statistics of samples held in pieces: summarise, merge in order, M-step.

Every EM and Lloyd iteration in emcore is one pass that leaves per-block sums;
the parameters follow from their total. This module exposes that pass for one
piece of the samples at a time, so that data too large for one machine (a Dask
array, a Ray dataset, Spark partitions, a loop over files) is fitted with the
same kernels and the same answer as in memory:

1. choose one block size for the whole data set: ``block_size_for(n_samples)``;
2. on each piece, ``em_sums``, ``lloyd_sums`` or, with responsibilities given (the
   spatial mixture's posteriors), ``posterior_sums`` (pieces may run anywhere, with
   ``n_threads=1`` on a worker that runs several tasks at once);
3. ``merge`` the pieces' results **in the pieces' order**;
4. the new parameters: :func:`m_step` (mixtures) or :func:`cluster_centers`
   (k-means).

The result is bitwise the in-memory one when the pieces start at multiples of
the block size (the blocks are then the same blocks, added in the same order),
and equal to rounding (about 1e-12 relative) for any other split. Summaries hold
model-sized arrays only: (blocks, K, statistics) and (blocks,).

Example, a mixture fitted over pieces in a plain loop::

    bs = block_size_for(n_total)
    for _ in range(n_iter):
        parts = [em_sums(piece, means, prec_chol, weights, "diag", block_size=bs)
                 for piece in pieces]
        stats, loglik = merge(parts)
        weights, means, cov = m_step(stats, em_centre(means, dtype), eps, "diag", 1e-6)
        prec_chol = precision_cholesky(cov, "diag")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from emcore import _kernels
from emcore._estimation import m_step
from emcore._params import kernel_arrays, n_em_stats, precision_cholesky
from emcore._validation import (block_layout, check_finite, check_int, check_sample_weight,
                                kernel_weights)

__all__ = ["BlockSums", "block_size_for", "cluster_centers", "em_centre", "em_sums",
           "lloyd_sums", "m_step", "merge", "posterior_sums",
           "precision_cholesky", "reach_length"]


@dataclass(frozen=True)
class BlockSums:
    """One piece's per-block sums, in block order.

    Attributes
    ----------
    stats : ndarray (B, K, S) float64
        Per block and component: for EM the responsibility mass, the sums of
        r (x - centre) and of the second moments (see :func:`em_sums`); for
        k-means the weight and the weighted sum of each cluster's samples.
    totals : ndarray (B,) float64
        Per block: the weighted log-likelihood (EM) or the inertia (k-means).
    """

    stats: np.ndarray
    totals: np.ndarray


def block_size_for(n_samples: int) -> int:
    """The block size to use for every piece of a data set.

    Parameters
    ----------
    n_samples : int
        Samples in the whole data set (every piece together).

    Returns
    -------
    block_size : int
        Pass it to every :func:`em_sums` or :func:`lloyd_sums` call of the data set.
    """
    return block_layout(n_samples)[0]


def _blocks(n_samples, block_size):
    block_size = (check_int(block_size, "block_size", minimum=1) if block_size is not None
                  else block_size_for(n_samples))
    return block_size, max(1, -(-int(n_samples) // block_size))


def _piece(X, sample_weight, check):
    """The piece's weights, checked with X's finiteness unless ``check`` is False."""
    if not isinstance(X, np.ndarray) or X.dtype not in (np.float32, np.float64) or X.ndim != 2:
        raise TypeError("X must be a 2-D float32 or float64 numpy array, got "
                        f"{getattr(X, 'dtype', type(X).__name__)} {np.shape(X)}")
    if check:
        check_finite(X, "X")
    if check or sample_weight is None:
        return check_sample_weight(sample_weight, X.shape[0], positive_sum=False)
    return sample_weight


def em_centre(means: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """The points EM statistics are centred on: the means as the kernels see them.

    Parameters
    ----------
    means : ndarray of shape (K, D)
    dtype : numpy dtype
        The samples' dtype (float32 or float64).

    Returns
    -------
    centre : ndarray of shape (K, D), float64
        ``means`` rounded to ``dtype``, for :func:`m_step`.
    """
    return np.asarray(means, dtype=np.float64).astype(dtype).astype(np.float64)


def em_sums(X: np.ndarray, means: np.ndarray, precisions_cholesky: np.ndarray,
            weights: np.ndarray, covariance_type: str, sample_weight: np.ndarray | None = None,
            *, block_size: int | None = None, n_threads: int = 1,
            check_weights: bool = True) -> BlockSums:
    """One E-step over a piece of samples: per-block statistics for the M-step.

    Parameters
    ----------
    X : ndarray (n, D) float32 or float64, C-contiguous
    means, precisions_cholesky, weights : ndarray
        The current mixture, in scikit-learn's layout for ``covariance_type``.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    sample_weight : ndarray (n,) or None
        Non-negative; a piece may weigh nothing.
    block_size : int, optional
        The data set's block size (:func:`block_size_for`); the piece's own by default.
    n_threads : int, default 1
        OpenMP threads for this piece.
    check_weights : bool, default True
        False skips checking ``sample_weight`` and that X is finite again (for
        callers that checked both once and pass float64 contiguous weights every
        iteration); NaN or infinite samples otherwise raise ValueError.

    Returns
    -------
    sums : BlockSums
        stats (B, K, 1 + D + S): mass, sums of r (x - c) and sums of r (x - c)^2
        (S = D) or its upper triangle (S = D(D+1)/2 for 'full' and 'tied'), with
        c = ``em_centre(means, X.dtype)``; totals: the weighted log-likelihood.
    """
    w = _piece(X, sample_weight, check_weights)
    k_means, k_prec, k_const, full = kernel_arrays(means, precisions_cholesky, weights,
                                                   covariance_type, X.dtype)
    block_size, n_blocks = _blocks(X.shape[0], block_size)
    d = X.shape[1]
    stats = np.empty((n_blocks, len(k_means), n_em_stats(d, full)))
    totals = np.empty(n_blocks)
    _kernels.em_pass(X, kernel_weights(w), k_means, k_prec, k_const, full, block_size,
                     stats, totals, n_threads)
    return BlockSums(stats, totals)


def lloyd_sums(X: np.ndarray, centers: np.ndarray, sample_weight: np.ndarray | None = None,
               *, block_size: int | None = None, n_threads: int = 1,
               labels: np.ndarray | None = None, check_weights: bool = True,
               reach: np.ndarray | None = None,
               reach_centers: np.ndarray | None = None) -> BlockSums:
    """One Lloyd assignment over a piece: per-block cluster weights and sums.

    Parameters
    ----------
    X : ndarray (n, D) float32 or float64, C-contiguous
    centers : ndarray (K, D)
    sample_weight : ndarray (n,) or None
        Non-negative; a piece may weigh nothing.
    block_size : int, optional
        The data set's block size (:func:`block_size_for`).
    n_threads : int, default 1
    labels : ndarray (n,) int32, optional
        OUT: each sample's nearest centre, when given.
    check_weights : bool, default True
        As for :func:`em_sums`.
    reach : ndarray float64, optional
        IN/OUT, the piece's own array of :func:`reach_length` slots: receives each
        tile's largest squared distance from a sample to its nearest centre.
    reach_centers : ndarray (K, D) of X's dtype, optional
        The centres of the pass that wrote ``reach``: its values then narrow the
        search (no sample is farther from its nearest centre than its tile's reach
        plus the farthest any centre has moved since; about half the candidates at
        256 colours). The result is the same either way.

    Returns
    -------
    sums : BlockSums
        stats (B, K, 1 + D): cluster weight, then the weighted sum of its samples;
        totals: the inertia.
    """
    w = _piece(X, sample_weight, check_weights)
    block_size, n_blocks = _blocks(X.shape[0], block_size)
    k, d = np.shape(centers)
    if labels is None:
        labels = np.empty(X.shape[0], dtype=np.int32)
    stats = np.empty((n_blocks, k, 1 + d))
    totals = np.empty(n_blocks)
    _kernels.lloyd_pass(X, kernel_weights(w), np.ascontiguousarray(centers, dtype=X.dtype),
                        labels, block_size, stats, totals, n_threads, reach, reach_centers)
    return BlockSums(stats, totals)


def labelled_sums(X: np.ndarray, labels: np.ndarray, n_clusters: int,
                  sample_weight: np.ndarray | None = None, *, block_size: int | None = None,
                  n_threads: int = 1, check_weights: bool = True) -> BlockSums:
    """Each cluster's weight and weighted sum of a piece of samples with given labels
    (a segment's mean, whatever model labelled it).

    Parameters
    ----------
    X : ndarray (n, D) float32 or float64, C-contiguous
    labels : ndarray (n,) int32
        Each sample's cluster, 0 to ``n_clusters`` - 1.
    n_clusters : int
    sample_weight, block_size, n_threads, check_weights
        As for :func:`em_sums`.

    Returns
    -------
    sums : BlockSums
        stats (B, K, 1 + D) laid out as :func:`lloyd_sums`'; totals: zeros.
    """
    w = _piece(X, sample_weight, check_weights)
    block_size, n_blocks = _blocks(X.shape[0], block_size)
    stats = _kernels.labelled_sums(X, kernel_weights(w), labels, n_clusters, block_size,
                                   n_threads)
    return BlockSums(stats, np.zeros(n_blocks))


def reach_length(n_samples: int, block_size: int | None = None) -> int:
    """The length of :func:`lloyd_sums`' ``reach`` for a piece of ``n_samples``."""
    block_size, n_blocks = _blocks(n_samples, block_size)
    return _kernels.reach_slots(n_blocks, block_size)


def posterior_sums(X: np.ndarray, q: np.ndarray | None, centre: np.ndarray, full: bool,
                   sample_weight: np.ndarray | None = None, *, block_size: int | None = None,
                   n_threads: int = 1, check_weights: bool = True,
                   labels: np.ndarray | None = None) -> BlockSums:
    """The M-step's sums over a piece of samples with given responsibilities (the
    spatial mixture's posteriors, emcore/spatial.py) or a hard assignment (a
    mixture's start from k-means labels).

    Parameters
    ----------
    X : ndarray (n, D) float32 or float64, C-contiguous
    q : ndarray (n, K) of X's dtype, C-contiguous, or None
        Each sample's responsibilities; None with ``labels``.
    centre : ndarray (K, D) of X's dtype
        What the sums are centred on (for :func:`m_step`).
    full : bool
        Upper-triangle second moments ('full' and 'tied') rather than diagonal ones.
    sample_weight, block_size, n_threads, check_weights
        As for :func:`em_sums`.
    labels : ndarray (n,) int32, optional
        Instead of q: each sample's component, as responsibility 1 (a label outside
        0 .. K - 1 counts for none).

    Returns
    -------
    sums : BlockSums
        stats (B, K, 1 + D + S) laid out as :func:`em_sums`' (centred on ``centre``);
        totals: zeros (no likelihood is computed).
    """
    w = _piece(X, sample_weight, check_weights)
    block_size, n_blocks = _blocks(X.shape[0], block_size)
    d = X.shape[1]
    stats = np.empty((n_blocks, np.shape(centre)[0], n_em_stats(d, full)))
    _kernels.posterior_sums(X, q, labels, kernel_weights(w), centre, full, block_size, stats,
                            n_threads)
    return BlockSums(stats, np.zeros(n_blocks))


def merge(pieces: Iterable[BlockSums]) -> tuple[np.ndarray, float]:
    """Add the pieces' block sums: in piece order, then block order, so the result does
    not depend on where or when the pieces ran.

    Parameters
    ----------
    pieces : iterable of BlockSums
        Every piece's result, in the pieces' order.

    Returns
    -------
    stats : ndarray of shape (K, S)
        The statistics summed over every block.
    total : float
        The summed totals (log-likelihood or inertia).
    """
    pieces = list(pieces)
    if not pieces:
        raise ValueError("merge needs at least one piece")
    if len(pieces) == 1:  # the same sums, without the copies
        return pieces[0].stats.sum(axis=0), float(pieces[0].totals.sum())
    stats = np.concatenate([p.stats for p in pieces])
    totals = np.concatenate([p.totals for p in pieces])
    return stats.sum(axis=0), float(totals.sum())


def cluster_centers(stats: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New k-means centres from merged :func:`lloyd_sums` statistics.

    Parameters
    ----------
    stats : ndarray of shape (K, 1 + D)
        From :func:`merge`.
    previous : ndarray of shape (K, D)
        The centres the sums were taken with.

    Returns
    -------
    centers : ndarray of shape (K, D)
        In ``previous``'s dtype; an empty cluster keeps its previous centre.
    filled : ndarray of shape (K,), bool
        The clusters that had weight.
    """
    stats, previous = np.asarray(stats), np.asarray(previous)
    if previous.ndim != 2 or stats.shape != (len(previous), 1 + previous.shape[1]):
        raise ValueError(f"stats must have shape (K, 1 + D) for previous centres (K, D); got "
                         f"{stats.shape} and {previous.shape}")
    weight, sums = stats[:, 0], stats[:, 1:]
    filled = weight > 0
    if filled.all():  # the usual case, without the masked copies
        return (sums / weight[:, None]).astype(previous.dtype), filled
    centers = np.array(previous, copy=True)
    centers[filled] = (sums[filled] / weight[filled, None]).astype(centers.dtype)
    return centers, filled
