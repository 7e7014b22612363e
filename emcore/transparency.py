"""Colour and alpha fitted together, where an error counts as much as it shows.

A pixel with straight colour ``c`` (C channels, 0..s) and alpha ``a`` (0..s) is
seen composited over a background: ``c a / s + b (1 - a / s)``. Its premultiplied
colour is ``p = c a / s``. Over black and over white (b = 0 and b = s) the mean
squared error between two pixels' composites is, per colour channel,

    ((dp)^2 + (dp - da)^2) / 2  =  (dp - da / 2)^2 + da^2 / 4,

so in the coordinates ``y = (p - a / 2, a sqrt(C) / 2)`` that error is the squared
Euclidean distance (:func:`composite_coordinates`). k-means there minimises the
error people see over either background, and a cluster's mean there is the one
entry that minimises its members' error.

Rules the palette keeps (:func:`constrained_lloyd`, :func:`integer_entries`):

- every fully transparent pixel takes one fully transparent entry (index 0 when
  the image has any), which is never moved;
- an opaque pixel never becomes translucent: entries whose pixels are mostly
  opaque are opaque (alpha ``s`` exactly) and opaque pixels are assigned among
  them only; for such an entry the best colour is still the mean of its
  members' ``y`` colour coordinates, with the alpha coordinate held at ``s``.
"""
from __future__ import annotations

import numpy as np

from emcore import summaries


def composite_coordinates(color: np.ndarray, alpha: np.ndarray, scale: float) -> np.ndarray:
    """(M, C + 1) float64 coordinates whose squared distance is the composite error.

    Parameters
    ----------
    color : ndarray (M, C)
        Straight (not premultiplied) colour, 0..scale.
    alpha : ndarray (M,)
        0 (transparent) .. scale (opaque).
    scale : float
        Full intensity (255 for 8-bit pixels).
    """
    color = np.asarray(color, dtype=np.float64)
    a = np.asarray(alpha, dtype=np.float64)
    out = np.empty((color.shape[0], color.shape[1] + 1))
    out[:, :-1] = color * (a / scale)[:, None] - (a / 2)[:, None]
    out[:, -1] = a * (np.sqrt(color.shape[1]) / 2)
    return out


def _straight_color(coordinates: np.ndarray, alpha: np.ndarray, scale: float) -> np.ndarray:
    """Straight colour (K, C) float64 of composite coordinates for a given alpha (K,),
    not clipped; zero where the alpha is zero."""
    premultiplied = coordinates[:, :-1] + (alpha / 2)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(alpha[:, None] > 0, premultiplied * scale / alpha[:, None], 0.0)


def straight_entries(coordinates: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Straight colour (K, C) and alpha (K,) in float64 from composite coordinates,
    clipped to 0..scale (a transparent entry's colour is 0)."""
    y = np.asarray(coordinates, dtype=np.float64)
    n_channels = y.shape[1] - 1
    alpha = np.clip(y[:, -1] * 2 / np.sqrt(n_channels), 0, scale)
    return np.clip(_straight_color(y, alpha, scale), 0, scale), alpha


def integer_entries(coordinates: np.ndarray, opaque: np.ndarray, scale: float,
                    dtype: np.dtype) -> np.ndarray:
    """The palette (K, C + 1) in ``dtype``: straight colour then alpha, each rounded.

    The alpha is rounded first and the colour chosen for the rounded alpha, so the
    stored entry's composite is as near the fitted one as integers allow; opaque
    entries get alpha ``scale`` exactly, a zero alpha a zero colour.
    """
    y = np.asarray(coordinates, dtype=np.float64)
    _, alpha = straight_entries(y, scale)
    alpha = np.where(opaque, scale, np.rint(alpha))
    color = np.clip(np.rint(_straight_color(y, alpha, scale)), 0, scale)
    return np.concatenate([color, alpha[:, None]], axis=1).astype(dtype)


def nearest_integer_entries(means: np.ndarray, opaque: np.ndarray, scale: float,
                            alpha_steps: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The integer entries (K, C + 1) float64 whose composite coordinates lie nearest
    ``means`` (K, C + 1), and those coordinates.

    An entry's error over its members is its weight times its squared distance to
    their mean (plus a constant), so this is the best integer entry for them. For
    each alpha within ``alpha_steps`` of the mean's (``scale`` for ``opaque`` entries),
    each colour channel's error is a parabola in the colour, least at the nearest
    integer to its vertex; the alpha whose entry comes nearest wins (the lowest on
    ties). An alpha of 0 has colour 0.
    """
    y = np.asarray(means, dtype=np.float64)
    n_channels = y.shape[1] - 1
    _, fitted = straight_entries(y, scale)
    steps = np.arange(-alpha_steps, alpha_steps + 1)
    alphas = np.clip(np.rint(fitted)[:, None] + steps, 0, scale)  # (K, A)
    alphas[opaque] = scale
    # every (entry, alpha) pair as a row: the vertex's straight colour, rounded
    rows_alpha = alphas.reshape(-1)
    rows_color = np.clip(np.rint(_straight_color(np.repeat(y, alphas.shape[1], axis=0),
                                                 rows_alpha, scale)), 0, scale)
    coords = composite_coordinates(rows_color, rows_alpha, scale).reshape(*alphas.shape, -1)
    color = rows_color.reshape(*alphas.shape, n_channels)
    error = ((coords - y[:, None, :]) ** 2).sum(axis=2)
    best = np.argmin(error, axis=1)
    rows = np.arange(len(y))
    entries = np.concatenate([color[rows, best], alphas[rows, best][:, None]], axis=1)
    return entries, coords[rows, best]


def integer_polish(X: np.ndarray, w: np.ndarray, is_opaque: np.ndarray, palette: np.ndarray,
                   fixed: np.ndarray, scale: float, max_iter: int = 20,
                   n_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's iterations among integer entries: each sample takes its nearest entry
    under the palette's rules, then each entry moves to the integer entry nearest its
    members' mean when that is nearer than where it is, until none moves. The error
    never rises: both steps lower it or keep it.

    Parameters
    ----------
    X, w, is_opaque
        As for :func:`constrained_lloyd`.
    palette : ndarray (K, C + 1)
        Integer entries, straight colour then alpha (:func:`integer_entries`).
    fixed : ndarray (K,) bool
        Entries that never move.
    scale : float
    max_iter : int, default 20

    Returns
    -------
    palette : ndarray (K, C + 1) float64
    labels : ndarray (M,) int32, each sample's entry
    """
    palette = np.array(palette, dtype=np.float64, copy=True)
    entries = composite_coordinates(palette[:, :-1], palette[:, -1], scale)
    parts = _parts(X, w, is_opaque)

    def assign():
        opaque = palette[:, -1] == scale  # only grows: an opaque entry stays opaque
        return (*constrained_assign(X, w, is_opaque, entries, opaque, n_threads, parts), opaque)
    labels, stats, opaque = assign()
    for _ in range(max_iter):
        movable = np.flatnonzero((stats[:, 0] > 0) & ~fixed)
        means = stats[movable, 1:] / stats[movable, :1]
        candidate, coords = nearest_integer_entries(means, opaque[movable], scale)
        nearer = (((coords - means) ** 2).sum(axis=1)
                  < ((entries[movable] - means) ** 2).sum(axis=1))
        if not nearer.any():
            break
        palette[movable[nearer]] = candidate[nearer]
        entries[movable[nearer]] = coords[nearer]
        labels, stats, opaque = assign()
    return palette, labels


def _nearest(X: np.ndarray, w: np.ndarray, centers: np.ndarray,
             n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels of X's rows among ``centers`` and the (K, 1 + D) weight and sum of each."""
    labels = np.empty(X.shape[0], dtype=np.int32)
    if X.shape[0] == 0:
        return labels, np.zeros((len(centers), 1 + X.shape[1]))
    sums = summaries.lloyd_sums(X, centers.astype(X.dtype), w, n_threads=n_threads,
                                labels=labels)
    return labels, sums.stats.sum(axis=0)


def _parts(X: np.ndarray, w: np.ndarray, is_opaque: np.ndarray) -> tuple[tuple, tuple]:
    """((rows, weights) any entry may take, (rows, weights) of the opaque samples)."""
    free = ~is_opaque
    return (X[free], w[free]), (X[is_opaque], w[is_opaque])


def constrained_assign(X: np.ndarray, w: np.ndarray, is_opaque: np.ndarray,
                       centers: np.ndarray, opaque_entries: np.ndarray,
                       n_threads: int = 1, parts: tuple | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's nearest entry, opaque samples among the opaque entries only.

    ``parts`` is ``_parts(X, w, is_opaque)`` when the caller keeps it between calls.
    Returns (labels (M,) int32, stats (K, 1 + D): each entry's weight and weighted sum).
    """
    (free_X, free_w), (opaque_X, opaque_w) = parts or _parts(X, w, is_opaque)
    labels = np.empty(X.shape[0], dtype=np.int32)
    lab, stats = _nearest(free_X, free_w, centers, n_threads)
    labels[~is_opaque] = lab
    if len(opaque_X):
        which = np.flatnonzero(opaque_entries)
        lab, st = _nearest(opaque_X, opaque_w, centers[which], n_threads)
        labels[is_opaque] = which[lab]
        stats[which] += st
    return labels, stats


def opaque_entry_mask(labels: np.ndarray, w: np.ndarray, is_opaque: np.ndarray,
                      n_entries: int, fixed: np.ndarray) -> np.ndarray:
    """Entries more than half of whose weight is opaque pixels (at least one entry when
    any pixel is opaque: the one with the most opaque weight); ``fixed`` entries never."""
    opaque_weight = np.bincount(labels, w * is_opaque, minlength=n_entries)
    total = np.bincount(labels, w, minlength=n_entries)
    mask = (opaque_weight > total / 2) & ~fixed
    if is_opaque.any() and not mask.any():
        mask[np.argmax(np.where(fixed, -1.0, opaque_weight))] = True
    return mask


def constrained_lloyd(X: np.ndarray, w: np.ndarray, is_opaque: np.ndarray,
                      centers: np.ndarray, labels: np.ndarray, fixed: np.ndarray,
                      scale: float, max_iter: int = 30, tol: float = 0.0,
                      n_threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lloyd iterations in composite coordinates under the palette's rules, until the
    labels stop changing or the centres move (squared, summed) by ``tol`` at most.

    Parameters
    ----------
    X : ndarray (M, C + 1) float32 or float64
        The distinct visible values in composite coordinates.
    w : ndarray (M,)
        Their pixel counts.
    is_opaque : ndarray (M,) bool
        Values whose alpha is ``scale``.
    centers : ndarray (K, C + 1)
        The start (an unconstrained fit's centres).
    labels : ndarray (M,)
        The start's labels (they decide which entries are opaque).
    fixed : ndarray (K,) bool
        Entries that never move (the transparent one).
    scale : float
    max_iter : int, default 30
    tol : float, default 0
        Absolute, as k-means' (scikit-learn's rule: its ``tol`` times the samples'
        mean variance per feature).

    Returns
    -------
    centers : ndarray (K, C + 1) float64
    labels : ndarray (M,) int32
    opaque_entries : ndarray (K,) bool
    """
    centers = np.array(centers, dtype=np.float64, copy=True)
    opaque_entries = opaque_entry_mask(labels, w, is_opaque, len(centers), fixed)
    opaque_alpha = scale * np.sqrt(X.shape[1] - 1) / 2
    centers[opaque_entries, -1] = opaque_alpha
    previous = None
    parts = _parts(X, w, is_opaque)  # once, not at every iteration
    for _ in range(max_iter):
        labels, stats = constrained_assign(X, w, is_opaque, centers, opaque_entries, n_threads,
                                           parts)
        if previous is not None and np.array_equal(labels, previous):
            break
        previous = labels
        filled = (stats[:, 0] > 0) & ~fixed
        before = centers.copy()
        centers[filled] = stats[filled, 1:] / stats[filled, :1]
        centers[opaque_entries, -1] = opaque_alpha
        if ((centers - before) ** 2).sum() <= tol:  # then labels of these centres
            labels, _ = constrained_assign(X, w, is_opaque, centers, opaque_entries,
                                           n_threads, parts)
            break
    return centers, labels, opaque_entries
