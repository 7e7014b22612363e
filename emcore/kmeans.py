"""K-means (Lloyd) on the OpenMP kernel, with scikit-learn's definitions."""
from __future__ import annotations

import math
import warnings
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from emcore import _kernels
from emcore._base import EstimatorMixin
from emcore._dask import is_dask_array, map_rows
from emcore._sources import InMemorySamples, nearest_labels, samples_for_fit
from emcore._validation import (check_bool, check_choice, check_declared_params,
                                check_float, check_int, check_optional_callable,
                                check_random_state, check_sample_weight, check_samples,
                                compute_dtype, kernel_weights)
from emcore._threads import resolve_n_threads, work_of
from emcore.exceptions import convergence_warning
from emcore.summaries import cluster_centers

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

#: Accepted for scikit-learn compatibility; both run emcore's exact Lloyd kernel
#: (Elkan's algorithm gives the same centres and labels as Lloyd's).
ALGORITHMS = ("lloyd", "elkan")


def weighted_mean(source):
    """((1, D) float64 weighted mean, total weight) of a sample source, by one
    one-centre Lloyd pass."""
    stats, _ = source.lloyd(np.zeros((1, source.n_features), dtype=source.dtype))
    return stats[:, 1:] / stats[:, :1], stats[0, 0]


def total_variance(source):
    """Sum over features of the weighted variance, by two one-centre Lloyd passes:
    the first gives the weighted mean, the second the inertia about it."""
    mean, total = weighted_mean(source)
    return source.lloyd(mean.astype(source.dtype))[1] / total


def absolute_tolerance(source, tol):
    """scikit-learn's k-means tolerance: ``tol`` times the mean per-feature (here
    weighted) variance of a sample source; 0 without a pass when ``tol`` is 0."""
    variance = total_variance(source) if tol else 0.0
    _check_inertia(variance, source)
    return variance / source.n_features * tol


def kmeans_plusplus(X, w, n_clusters, random_state, n_threads):
    """Greedy weighted k-means++ seeding (Arthur and Vassilvitskii, with local trials).

    Each new centre is the best of 2 + log(k) candidates drawn with probability
    proportional to weight x squared distance to the nearest chosen centre. The
    whole loop runs in one kernel call; its random numbers are drawn here first.
    """
    n_trials = 2 + int(np.log(n_clusters))
    # numpy's choice(N, p=w / w.sum()) to the bit: for one draw the same uniform and
    # search as choice without replacement
    first = weighted_samples(w, 1, random_state)[0]
    draws = random_state.uniform(size=(n_clusters - 1, n_trials))
    chosen = _kernels.kmeans_plusplus(X, kernel_weights(w), first, draws, n_threads)
    return X[chosen]


def weighted_samples(w, size, random_state):
    """``size`` distinct sample indices: numpy's ``RandomState.choice(N, size,
    replace=False, p=w / w.sum())`` to the bit (the same uniforms, roundings and
    order), drawn by the weighted_draws kernel without N-long arrays."""
    weights, n, total = kernel_weights(w), len(w), w.sum()
    found: list[int] = []
    while len(found) < size:
        u = random_state.random_sample(size - len(found))
        drawn, positive = _kernels.weighted_draws(weights, n, total, u,
                                                  np.array(sorted(found), dtype=np.intp))
        if not found and positive < size:
            raise ValueError("Fewer non-zero entries in p than size")
        for index in drawn:  # a round's repeats count once, in the order drawn
            if int(index) not in found:
                found.append(int(index))
    return np.array(found, dtype=np.intp)


#: No cluster (an empty index array, shared: never written)
NO_CLUSTERS = np.empty(0, dtype=np.intp)
NO_CLUSTERS.flags.writeable = False


def relocate_empty_clusters(source, centers, stats):
    """Give each empty cluster the distinct value farthest from its centre (in place).

    A value moves with all its samples, so fitting every pixel and fitting the
    distinct colours weighted by their counts (or the data in chunks) relocate
    identically. Only values away from their centre move: with fewer distinct
    points than clusters, the clusters that stay empty keep their centres (the
    caller warns). Returns the clusters given a value.
    """
    if stats[:, 0].all():  # the usual case: every cluster has weight
        return NO_CLUSTERS
    empty = np.flatnonzero(stats[:, 0] == 0)
    values, totals = source.farthest_from_centers(centers, len(empty))
    old_labels = nearest_labels(np.ascontiguousarray(values, dtype=source.dtype), centers)
    for cluster, value, old, total in zip(empty, values, old_labels, totals):
        stats[old, 0] -= total
        stats[old, 1:] -= total * value
        stats[cluster, 0] = total
        stats[cluster, 1:] = total * value
    return empty


def check_over_relaxation(value, name):
    """A float in [1, 2): ValueError or TypeError otherwise."""
    value = check_float(value, name, minimum=1)
    if value >= 2:
        raise ValueError(f"{name} must be below 2 (at 2 a step can undo the last one), "
                         f"got {value}")
    return value


def relaxed_step(centers, means, relax, relocated):
    """The next centres of an over-relaxed Lloyd iteration: each ``relax`` times the way
    from its centre to its cluster's mean, in float64, then in the centres' dtype.

    With the labels held, cluster j's squared error is its error about the mean plus
    W_j ||c_j - mean_j||^2, which this step multiplies by (1 - relax)^2 <= 1 for relax
    in [1, 2): so it never rises, and the next assignment only lowers it. A cluster
    just given a value (``relocated``) goes to it: it has no direction to follow yet.
    ``relax`` 1 is Lloyd's step, the means themselves (not c + (mean - c), which rounds).
    """
    if relax == 1:
        return means
    stepped = centers + relax * (means.astype(np.float64) - centers)
    if len(relocated):
        stepped[relocated] = means[relocated]
    return stepped.astype(means.dtype)


def lattice_lloyd(X, w, centers, step, low, high, n_threads, max_iter=100):
    """Lloyd's iterations with every centre on the lattice ``step * integer`` in [low, high].

    For a palette of integers (``step`` 1) or of 8-bit entries for 16-bit samples
    (``step`` 257). Each iteration gives every sample its nearest lattice centre and
    moves each centre to the lattice point nearest its samples' weighted mean,
    which is the lattice point of least squared error for those samples (the error
    is a parabola in each coordinate), so the weighted squared error never rises;
    it stops when no centre moves. An empty cluster keeps its centre.

    Parameters
    ----------
    X : ndarray (N, D) float32 or float64
        The samples; float32 is exact only while squared distances stay below 2**24
        (8-bit values), so wider values should come as float64.
    w : ndarray (N,) float64
    centers : ndarray (K, D)
        The start, put on the lattice first.
    step, low, high : float
    n_threads : int
    max_iter : int

    Returns
    -------
    centers : ndarray (K, D) float64 on the lattice
    labels : ndarray (N,) int32, each sample's nearest centre
    inertia : float, the weighted squared error of ``labels`` under ``centers``
    """
    def on_lattice(values):
        return np.clip(np.rint(np.asarray(values, dtype=np.float64) / step) * step, low, high)
    source = InMemorySamples(X, w, n_threads)
    labels = np.empty(X.shape[0], dtype=np.int32)
    centers = on_lattice(centers)
    for _ in range(max_iter):
        stats, inertia = source.lloyd(centers.astype(X.dtype), labels)
        moved, _ = cluster_centers(stats, centers)
        moved = on_lattice(moved)
        if np.array_equal(moved, centers):
            break
        centers = moved
    else:  # the labels of the last centres
        inertia = source.lloyd(centers.astype(X.dtype), labels)[1]
    return centers, labels, inertia


def _check_inertia(inertia, source):
    if not math.isfinite(inertia):
        raise source.overflow_error("squared distances")


def _check_initial_shape(shape, n_clusters, n_features):
    """ValueError, in scikit-learn's words, for initial centres of the wrong shape."""
    if len(shape) != 2 or shape[0] != n_clusters:
        raise ValueError(f"The shape of the initial centers {shape} does not match the number "
                         f"of clusters {n_clusters}.")
    if shape[1] != n_features:
        raise ValueError(f"The shape of the initial centers {shape} does not match the number "
                         f"of features of the data {n_features}.")


class KMeans(EstimatorMixin):
    """K-means clustering by Lloyd's algorithm.

    scikit-learn's ``KMeans`` (same parameters, defaults, attributes and
    definitions: inertia, tolerance, convergence, empty-cluster relocation), with
    sample weights, a parallel kernel that assigns and sums in one pass, and
    results independent of the number of threads. The first four parameters may
    be given by position, as in the numpy tutorial's
    ``KMeans(n_clusters, tol, max_iter, random_state)``.

    Parameters
    ----------
    n_clusters : int, default 8
    tol : float, default 1e-4
        Stop when the centres move less (squared, summed) than tol times the
        mean variance of the data.
    max_iter : int, default 300
    random_state : int, RandomState or None
    init : {'k-means++', 'random'}, callable or array of shape (n_clusters, n_features)
        A callable is called as ``init(X, n_clusters, random_state)`` and returns
        the starting centres.
    n_init : 'auto' or int, default 'auto'
        Runs from different seeds; the lowest inertia wins. 'auto' is 1 for
        'k-means++' and arrays, 10 for 'random' and callables (scikit-learn's rule).
    algorithm : {'lloyd', 'elkan'}, default 'lloyd'
        Both run emcore's exact Lloyd kernel; 'elkan' is accepted because Elkan's
        algorithm gives the same centres and labels.
    over_relaxation : float in [1, 2), default 1.0
        Each iteration moves a centre this many times the way to its cluster's
        mean: 1 is Lloyd's algorithm (scikit-learn's results); above 1 the slow
        directions converge in fewer iterations and the fit often ends at a lower
        inertia (the image pipeline uses 1.8). The inertia never rises from one
        iteration to the next for any value below 2, the stopping rule is the
        same (the distance to the means), and the returned centres are always
        their clusters' means.
    copy_x : bool, default True
        Accepted for scikit-learn compatibility: emcore never writes to X.
    verbose : int, default 0
        Print the inertia after each iteration when > 0.
    n_threads : int or None
        OpenMP threads; None means OMP_NUM_THREADS if set, else all usable cores.
    callback : callable or None
        Called as ``callback(n_iter, inertia)`` after every iteration.

    Attributes
    ----------
    cluster_centers_ : ndarray (n_clusters, n_features)
        float32 for float32 input, float64 otherwise.
    labels_ : ndarray (n_samples,) int32
    inertia_ : float
        Weighted sum of squared distances to the nearest centre.
    n_iter_ : int
    iterations : int
        The same as n_iter_ (the tutorial's name).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X was a dataframe with string column names.
    """

    cluster_centers_: np.ndarray
    labels_: np.ndarray
    inertia_: float
    n_iter_: int
    n_features_in_: int
    feature_names_in_: np.ndarray

    _estimator_type = "clusterer"
    _fitted_attributes = ("cluster_centers_", "inertia_", "n_iter_", "n_features_in_")

    def __init__(self, n_clusters: int = 8, tol: float = 1e-4, max_iter: int = 300,
                 random_state: int | np.random.RandomState | None = None, *,
                 init: str | ArrayLike | Callable[..., ArrayLike] = "k-means++",
                 n_init: int | str = "auto", algorithm: str = "lloyd",
                 over_relaxation: float = 1.0, copy_x: bool = True,
                 verbose: int = 0, n_threads: int | None = None,
                 callback: Callable[[int, float], Any] | None = None) -> None:
        self.n_clusters = n_clusters
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.init = init
        self.n_init = n_init
        self.algorithm = algorithm
        self.over_relaxation = over_relaxation
        self.copy_x = copy_x
        self.verbose = verbose
        self.n_threads = n_threads
        self.callback = callback

    @property
    def iterations(self) -> int:
        """Lloyd iterations of the best run: ``n_iter_`` under the tutorial's name."""
        self._check_fitted()
        return self.n_iter_

    _param_checks = {
        "n_clusters": partial(check_int, minimum=1),
        "tol": partial(check_float, minimum=0),
        "max_iter": partial(check_int, minimum=1),
        "algorithm": partial(check_choice, choices=ALGORITHMS),
        "over_relaxation": check_over_relaxation,
        "copy_x": check_bool,
        "verbose": partial(check_int, minimum=0),
        "callback": check_optional_callable,
    }

    def _check_params(self, n_samples, n_features):
        """The parameters, checked; returns (n_clusters, n_init)."""
        check_declared_params(self, self._param_checks)
        k = int(self.n_clusters)
        if k > n_samples:
            raise ValueError(f"n_samples={n_samples} should be >= n_clusters={k}: "
                             f"n_clusters={k} is more than the {n_samples} samples")
        if isinstance(self.init, str):
            check_choice(self.init, "init", ("k-means++", "random"))
        elif not callable(self.init):
            centers = check_samples(self.init, "init")
            _check_initial_shape(centers.shape, k, n_features)
        if k == 1 and self.algorithm == "elkan":
            warnings.warn("algorithm='elkan' doesn't make sense for a single cluster. Using "
                          "'lloyd' instead.", RuntimeWarning, stacklevel=3)
        if isinstance(self.n_init, str) and self.n_init == "auto":
            return k, 10 if callable(self.init) or (isinstance(self.init, str)
                                                   and self.init == "random") else 1
        n_init = check_int(self.n_init, "n_init", minimum=1)
        if not (isinstance(self.init, str) or callable(self.init)) and n_init != 1:
            warnings.warn(f"Explicit initial center position passed: performing only one init "
                          f"instead of n_init={n_init}", RuntimeWarning, stacklevel=3)
            n_init = 1
        return k, n_init

    def _initial_centers(self, X, w, random_state, n_threads):
        k = self.n_clusters
        if isinstance(self.init, str):
            if self.init == "k-means++":
                return kmeans_plusplus(X, w, k, random_state, n_threads)
            return X[weighted_samples(w, k, random_state)]
        given = self.init(X, k, random_state) if callable(self.init) else self.init
        centers = check_samples(given, "init", dtype=X.dtype)
        _check_initial_shape(centers.shape, k, X.shape[1])
        return centers.copy()

    def _lloyd(self, source, centers, tol):
        """Lloyd iterations from ``centers``; returns (centres, n_iter). ``tol`` is a
        callable giving the absolute tolerance (computed on first use: a
        single-iteration fit never needs it)."""
        relax, last_stats = float(self.over_relaxation), None
        for n_iter in range(1, self.max_iter + 1):
            stats, inertia = source.lloyd(centers)
            _check_inertia(inertia, source)
            relocated = relocate_empty_clusters(source, centers, stats)
            means, filled = cluster_centers(stats, centers)
            shift = float(((means.astype(np.float64) - centers) ** 2).sum())
            if self.verbose:
                print(f"Iteration {n_iter}, inertia {inertia}.")
            if self.callback is not None:
                self.callback(n_iter, inertia)
            if not filled.all():
                warnings.warn(f"Number of distinct clusters ({int(filled.sum())}) found smaller "
                              f"than n_clusters ({len(filled)}). Possibly due to duplicate "
                              "points in X: the empty clusters keep their centres",
                              convergence_warning(), stacklevel=4)
                break
            # the centres did not move: the labels did not change (scikit-learn's strict
            # convergence), whatever tol is
            if shift == 0:
                if self.verbose:
                    print(f"Converged at iteration {n_iter}: strict convergence.")
                break
            if n_iter < self.max_iter and shift <= tol():
                if self.verbose:
                    print(f"Converged at iteration {n_iter}: center shift {shift} within "
                          f"tolerance {tol()}.")
                break
            # the same clusters as the last pass: the means are where the relaxed steps
            # would only spiral in, so go there (the next pass then stops)
            same = relax == 1 or (last_stats is not None and bool((stats == last_stats).all()))
            centers = relaxed_step(centers, means, 1.0 if same else relax, relocated)
            last_stats = stats
        else:
            n_iter = self.max_iter
        return means, n_iter

    def fit(self, X: ArrayLike, y: object = None,
            sample_weight: ArrayLike | None = None) -> KMeans:
        """Cluster X.

        Parameters
        ----------
        X : array_like (n_samples, n_features)
            float32 input is computed (and the centres kept) in float32,
            anything else in float64, as scikit-learn does.
        y : ignored
        sample_weight : array_like (n_samples,), optional
            Non-negative weights: a sample of weight 3 counts as three copies.

        Returns
        -------
        self : KMeans
            The fitted estimator.
        """
        n_threads = resolve_n_threads(self.n_threads, work_of(X, self.n_clusters))
        source, start_X, start_w = samples_for_fit(self, X, sample_weight, n_threads)
        return self._fit_source(source, start_X, start_w, n_threads)

    def _fit_source(self, source, start_X, start_w, n_threads):
        """Fit to a source of checked samples (seeded on ``start_X``, ``start_w``): the
        part of ``fit`` a mixture's k-means start shares, its samples checked once."""
        k, n_init = self._check_params(source.n_weighted, source.n_features)
        self._n_init = n_init  # the initialisations run, under scikit-learn's private name
        random_state = check_random_state(self.random_state)
        cached: list[float] = []

        def tol():
            if not cached:
                cached.append(absolute_tolerance(source, self.tol))
            return cached[0]
        best: tuple[Any, ...] = ()
        for _ in range(n_init):
            centers = self._initial_centers(start_X, start_w, random_state, n_threads)
            if self.verbose:
                print("Initialization complete")
            centers, n_iter = self._lloyd(source, centers, tol)
            labels, inertia = source.assign(centers)
            if not best or inertia < best[2]:
                best = centers, labels, inertia, n_iter
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        return self

    def _fitted_structure(self):
        return {"n_clusters": len(self.cluster_centers_)}

    def _fitted_shapes(self):
        return {"cluster_centers_": (len(self.cluster_centers_), self.n_features_in_)}

    def _check_fitted_arrays(self):
        """The fitted centres' shape and finiteness (after load); ValueError otherwise."""
        k = check_int(self.n_clusters, "n_clusters", minimum=1)
        d = check_int(self.n_features_in_, "n_features_in_", minimum=1)
        centers = np.asarray(self.cluster_centers_)
        if centers.shape != (k, d) or centers.dtype not in (np.float32, np.float64):
            raise ValueError(f"cluster_centers_ must be a float array of shape ({k}, {d}), "
                             f"got {centers.dtype} {centers.shape}")
        if not np.isfinite(centers).all():
            raise ValueError("cluster_centers_ contains NaN or infinite values")
        check_float(float(self.inertia_), "inertia_", minimum=0)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Index of the nearest cluster centre for every sample.

        Parameters
        ----------
        X : array_like or Dask array of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
            The first nearest centre on ties; a lazy Dask array for Dask input.
        """
        if is_dask_array(X):
            return map_rows(self.predict, X, np.int32)
        samples = self._validate_X(X, reset=False)
        return nearest_labels(samples, self.cluster_centers_,
                              resolve_n_threads(self.n_threads, work_of(samples, self.n_clusters)))

    def fit_predict(self, X: ArrayLike, y: object = None,
                    sample_weight: ArrayLike | None = None) -> np.ndarray:
        """Fit, then return ``labels_``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative weights, as in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def _distances(self, X):
        centers = np.asarray(self.cluster_centers_, dtype=np.float64)
        out = np.empty((X.shape[0], len(centers)), dtype=X.dtype)
        for j, c in enumerate(centers):  # one column at a time: no N x K x D temporary
            out[:, j] = np.sqrt(((X - c) ** 2).sum(axis=1))
        return out

    def transform(self, X: ArrayLike) -> Any:
        """Euclidean distance of every sample to every centre.

        Parameters
        ----------
        X : array_like or Dask array of shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
            Or a pandas/polars DataFrame after ``set_output``; lazy for Dask input.
        """
        if is_dask_array(X):
            return map_rows(self.transform, X, compute_dtype(X), self.n_clusters)
        return self._wrap_output(self._distances(self._validate_X(X, reset=False)), X)

    def fit_transform(self, X: ArrayLike, y: object = None,
                      sample_weight: ArrayLike | None = None) -> Any:
        """Fit, then return the distances of X to the centres.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative weights, as in :meth:`fit`.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
            Or a DataFrame after ``set_output``, as :meth:`transform`.
        """
        checked = self.fit(X, sample_weight=sample_weight)._validate_X(X, reset=False)
        return self._wrap_output(self._distances(checked), X)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of transform's columns.

        Parameters
        ----------
        input_features : ignored
            Accepted for scikit-learn's API.

        Returns
        -------
        names : ndarray of str objects
            'kmeans0', 'kmeans1', ... one per cluster.
        """
        self._check_fitted()
        return np.asarray([f"kmeans{i}" for i in range(self.n_clusters)], dtype=object)

    def score(self, X: ArrayLike, y: object = None,
              sample_weight: ArrayLike | None = None) -> float:
        """Minus the (weighted) inertia of X under the fitted centres.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative weights, as in :meth:`fit`.

        Returns
        -------
        score : float
            ``-sum_i w_i min_j ||x_i - c_j||^2`` (higher is better).
        """
        samples = self._validate_X(X, reset=False)
        source = InMemorySamples(samples, check_sample_weight(sample_weight, samples.shape[0]),
                                 resolve_n_threads(self.n_threads,
                                                   work_of(samples, self.n_clusters)))
        return -source.lloyd(self.cluster_centers_)[1]
