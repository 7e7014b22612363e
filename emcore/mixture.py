"""Gaussian mixtures fitted by EM on the OpenMP kernels, with scikit-learn's API."""
from __future__ import annotations

import warnings
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from emcore import _kernels, summaries
from emcore._base import EstimatorMixin
from emcore._estimation import m_step, random_parameters, weighted_sum
from emcore._params import (COVARIANCE_TYPES, covariance_shape, kernel_arrays,
                            precision_cholesky, precision_from_cholesky)
from emcore._validation import (check_bool, check_choice, check_declared_params, check_float,
                                check_int, check_optional_callable, check_random_state,
                                check_sample_weight, check_samples, compute_dtype,
                                weight_total)
from emcore._threads import resolve_n_threads, work_of
from emcore._dask import is_dask_array, map_rows
from emcore._sources import InMemorySamples, log_density, nearest_labels, samples_for_fit
from emcore.exceptions import convergence_warning
from emcore.kmeans import KMeans, kmeans_plusplus, weighted_mean, weighted_samples

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
#: init_params='kmeans' runs k-means with over-relaxed steps (each centre 1.5 times
#: the way to its cluster's mean), still to k-means' own tolerance: 25% fewer passes
#: than Lloyd's step on normal, blob and photo-colour data, and a final lower bound
#: the same on average (README, "A scikit-learn estimator"); 1.8, the image
#: pipeline's, overshoots here and took as many passes as Lloyd's
INIT_OVER_RELAXATION = 1.5

WARM_START_CHANGED = ("warm_start: the previous fit has another number of components, "
                      "features or covariance_type; set warm_start=False to refit")

#: A component whose responsibility mass is below this fraction of the total
#: weight is empty: it is re-seeded instead of being left to turn into NaN.
EMPTY_FRACTION = 1e-9


def fitted_mixture_structure(model) -> dict[str, Any]:
    """A fitted mixture's n_components and covariance_type as its arrays have them."""
    return {"n_components": len(model.means_),
            "covariance_type": model.__dict__.get("_fitted_covariance_type",
                                                  model.covariance_type)}


def mixture_array_shapes(covariance_type: str, k: int, d: int) -> dict[str, tuple]:
    """The shape of each fitted array of a mixture of k components of d features."""
    cov = covariance_shape(covariance_type, k, d)
    return {"means_": (k, d), "weights_": (k,), "covariances_": cov,
            "precisions_cholesky_": cov, "precisions_": cov}


def fitted_mixture_shapes(model) -> dict[str, tuple]:
    """The shapes of the arrays a fitted mixture predicts with, from its components
    and features."""
    shapes = mixture_array_shapes(model.covariance_type, len(model.means_),
                                  model.n_features_in_)
    return {name: shapes[name] for name in ("means_", "weights_", "precisions_cholesky_",
                                            "covariances_")}


class GaussianMixture(EstimatorMixin):
    """A Gaussian mixture fitted by expectation-maximisation.

    Follows scikit-learn's ``sklearn.mixture.GaussianMixture`` (same parameters,
    attributes and definitions), adds ``sample_weight`` and ``n_threads``. Each
    iteration is one parallel pass over the samples that computes the
    responsibilities and the M-step's weighted sums together, so no
    samples x components array is ever held; results do not depend on the
    number of threads.

    Parameters
    ----------
    n_components : int, default 1
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default 'full'
    tol : float, default 1e-3
        Stop when the mean log-likelihood gains less than this in an iteration.
    reg_covar : float, default 1e-6
        Added to every variance: the floor that keeps components from collapsing.
    max_iter : int, default 100
        EM iterations at most (0 only initialises).
    n_init : int, default 1
        Initialisations to try; the one with the best final log-likelihood is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default 'kmeans'
        How the starting components are found. 'random' starts from random soft
        responsibilities drawn as scikit-learn draws them. 'k-means++' and
        'random_from_data' pick seed points and assign every sample to its
        nearest seed, so the starting covariances describe the data
        (scikit-learn starts them at reg_covar around the seed points only).
    weights_init, means_init, precisions_init : array_like, optional
        Starting parameters, as in scikit-learn.
    random_state : int, RandomState or None
    warm_start : bool, default False
        Start ``fit`` from the previous solution.
    n_threads : int or None
        OpenMP threads; None means OMP_NUM_THREADS if set, else all usable cores.
    verbose : int, default 0
        Print the log-likelihood after each iteration when > 0.
    callback : callable or None
        Called as ``callback(n_iter, lower_bound)`` after every iteration; it may
        raise (KeyboardInterrupt included) to stop the fit.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean (weighted) log-likelihood of the best initialisation's last E-step.
    lower_bounds_ : ndarray
        The mean log-likelihood after every iteration of that initialisation.
    n_features_in_ : int
    """

    weights_: np.ndarray
    means_: np.ndarray
    covariances_: np.ndarray
    precisions_: np.ndarray
    precisions_cholesky_: np.ndarray
    converged_: bool
    n_iter_: int
    lower_bound_: float
    lower_bounds_: np.ndarray
    n_features_in_: int

    _estimator_type = "density_estimator"
    _fitted_attributes = ("means_", "weights_", "covariances_", "precisions_cholesky_",
                          "precisions_", "converged_", "n_iter_", "lower_bound_",
                          "lower_bounds_", "n_features_in_")

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans",
                 weights_init: ArrayLike | None = None, means_init: ArrayLike | None = None,
                 precisions_init: ArrayLike | None = None,
                 random_state: int | np.random.RandomState | None = None,
                 warm_start: bool = False, n_threads: int | None = None, verbose: int = 0,
                 callback: Callable[[int, float], Any] | None = None) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.n_threads = n_threads
        self.verbose = verbose
        self.callback = callback

    # ------------------------------------------------------------------ checks
    _param_checks = {
        "n_components": partial(check_int, minimum=1),
        "covariance_type": partial(check_choice, choices=COVARIANCE_TYPES),
        "tol": partial(check_float, minimum=0),
        "reg_covar": partial(check_float, minimum=0),
        "max_iter": partial(check_int, minimum=0),
        "n_init": partial(check_int, minimum=1),
        "init_params": partial(check_choice, choices=INIT_PARAMS),
        "warm_start": check_bool,
        "verbose": partial(check_int, minimum=0),
        "callback": check_optional_callable,
    }

    def _check_params(self, n_samples, n_features):
        check_declared_params(self, self._param_checks)
        if self.n_components > n_samples:
            raise ValueError(f"n_components={self.n_components} is more than the "
                             f"{n_samples} samples")
        k, d = self.n_components, n_features
        # the messages are scikit-learn's, so that code matching them keeps working
        if self.weights_init is not None:
            w = np.asarray(self.weights_init, dtype=np.float64)
            if w.shape != (k,):
                raise ValueError(f"The parameter 'weights' should have the shape of ({k},), "
                                 f"but got {w.shape} (weights_init)")
            if not np.isfinite(w).all() or (w < 0).any() or (w > 1).any():
                raise ValueError("The parameter 'weights' should be in the range [0, 1], but "
                                 f"got min value {np.min(w):.5f}, max value {np.max(w):.5f} "
                                 "(weights_init)")
            if abs(1.0 - w.sum()) > 1e-8:
                raise ValueError("The parameter 'weights' should be normalized, but got "
                                 f"sum(weights) = {w.sum():.5f} (weights_init)")
        if self.means_init is not None:
            m = np.asarray(self.means_init)
            if m.shape != (k, d):
                raise ValueError(f"The parameter 'means' should have the shape of ({k}, {d}), "
                                 f"but got {m.shape} (means_init)")
            check_samples(m, "means_init", dtype=np.float64)
        if self.precisions_init is not None:
            kind = f"{self.covariance_type} precision"
            shape = covariance_shape(self.covariance_type, k, d)
            p = np.asarray(self.precisions_init, dtype=np.float64)
            if p.shape != shape:
                raise ValueError(f"The parameter '{kind}' should have the shape of "
                                 f"{shape}, but got {p.shape} (precisions_init)")
            if not np.isfinite(p).all():
                raise ValueError("precisions_init contains NaN or infinite values")
            if self.covariance_type in ("diag", "spherical"):
                if not (p > 0).all():
                    raise ValueError(f"'{kind}' should be positive (precisions_init)")
            else:
                for matrix in p.reshape(-1, d, d):
                    if not (np.allclose(matrix, matrix.T)
                            and (np.linalg.eigvalsh(matrix) > 0).all()):
                        raise ValueError(f"'{kind}' should be symmetric, positive-definite "
                                         "(precisions_init)")

    # ------------------------------------------------------------- the EM core
    def _initial_labels(self, X, w, random_state, n_threads):
        """(labels, centres): a hard start and the centres it came from, near the means
        of their samples (the start's sums are centred on them)."""
        k = self.n_components
        if k == 1:  # one component: every start labels every sample 0; centred on the mean
            mean, _ = weighted_mean(InMemorySamples(X, w, n_threads))
            return np.zeros(len(X), dtype=np.int32), mean
        if self.init_params == "kmeans":
            km = KMeans(k, n_init=1, random_state=random_state, n_threads=n_threads,
                        over_relaxation=INIT_OVER_RELAXATION)
            km._fit_source(InMemorySamples(X, w, n_threads), X, w, n_threads)  # X is checked
            return km.labels_, km.cluster_centers_
        if self.init_params == "k-means++":
            centers = kmeans_plusplus(X, w, k, random_state, n_threads)
        else:  # random_from_data: distinct samples, drawn in proportion to their weight
            centers = X[weighted_samples(w, k, random_state)]
        return nearest_labels(X, centers, n_threads), centers

    def _initialize(self, X, w, random_state, n_threads, eps):
        if self.means_init is None or self.weights_init is None or (
                self.precisions_init is None):
            model = (self.n_components, eps, self.covariance_type, self.reg_covar)
            if self.init_params == "random":
                weights, means, cov = random_parameters(X, w, self.n_components,
                                                        random_state, *model[1:])
            else:  # the M-step of the hard start, its sums made by the kernels
                labels, centres = self._initial_labels(X, w, random_state, n_threads)
                centre = summaries.em_centre(centres, X.dtype)
                stats, _ = summaries.merge([summaries.posterior_sums(
                    X, None, centre.astype(X.dtype), self.covariance_type in ("full", "tied"), w,
                    n_threads=n_threads, check_weights=False, labels=labels)])
                weights, means, cov = m_step(stats, centre, *model[1:])
        if self.weights_init is not None:
            weights = np.asarray(self.weights_init, dtype=np.float64)
        if self.means_init is not None:
            means = np.asarray(self.means_init, dtype=np.float64)
        if self.precisions_init is not None:  # positive (definite): _check_params
            prec = np.asarray(self.precisions_init, dtype=np.float64)
            cov = np.linalg.inv(prec) if self.covariance_type in ("full", "tied") else 1.0 / prec
        return weights, means, cov

    def _reseed_empty(self, source, weights, means, cov):
        """Move empty components onto the distinct values the model explains worst.

        Returns the new (weights, means, cov) and how many components stayed empty
        because X has fewer distinct points than components.
        """
        empty = np.flatnonzero(weights < EMPTY_FRACTION)
        if len(empty) == 0:
            return weights, means, cov, 0
        if source.n_distinct() < self.n_components:
            return weights, means, cov, len(empty)
        values, totals = source.worst_for_mixture(
            means, precision_cholesky(cov, self.covariance_type), weights,
            self.covariance_type, len(empty))
        means, weights = means.copy(), weights.copy()
        filled = empty[:len(values)]
        means[filled] = values
        weights[filled] = totals / source.total_weight
        if self.covariance_type != "tied":
            cov = cov.copy()
            live = np.setdiff1d(np.arange(len(weights)), empty)
            if len(live):
                cov[filled] = cov[live].mean(axis=0)
        return weights / weights.sum(), means, cov, len(empty) - len(filled)

    def _precision_cholesky(self, cov, source):
        if not np.isfinite(cov).all():  # not degenerate data: too large for the dtype
            raise source.overflow_error("the covariances")
        try:
            return precision_cholesky(cov, self.covariance_type)
        except ValueError as err:
            raise ValueError("Fitting the mixture model failed because some components have "
                             "ill-defined empirical covariance (for instance caused by "
                             "singleton or collapsed samples). Try to decrease the number of "
                             f"components, increase reg_covar, or scale the input data. ({err} "
                             "after an EM step.)") from None

    def _run_em(self, source, weights, means, cov, eps, init_index, lower_bound=-np.inf):
        """EM iterations from a start (and, for warm_start, the previous lower bound);
        returns the final state."""
        lower_bounds, converged, n_iter = [], False, 0
        prec_chol = self._precision_cholesky(cov, source)
        for n_iter in range(1, self.max_iter + 1):
            previous = lower_bound
            loglik, stats, centre = source.em_statistics(means, prec_chol, weights,
                                                         self.covariance_type)
            lower_bound = loglik / source.total_weight
            if not np.isfinite(lower_bound):
                raise ValueError("the log-likelihood is not finite: the data overflows this "
                                 "precision; rescale X or use float64")
            weights, means, cov = m_step(stats, centre, eps, self.covariance_type,
                                         self.reg_covar)
            weights, means, cov, n_empty = self._reseed_empty(source, weights, means, cov)
            prec_chol = self._precision_cholesky(cov, source)
            lower_bounds.append(lower_bound)
            if n_empty:
                warnings.warn(f"Number of distinct clusters ({self.n_components - n_empty}) found "
                              f"smaller than n_components ({self.n_components}): X has fewer "
                              "distinct points; the empty components keep a negligible weight",
                              convergence_warning(), stacklevel=4)
                break
            if self.verbose:
                print(f"init {init_index} iteration {n_iter}: "
                      f"mean log-likelihood {lower_bound:.6f}")
            if self.callback is not None:
                self.callback(n_iter, lower_bound)
            if abs(lower_bound - previous) < self.tol:
                converged = True
                break
        if self.max_iter == 0:
            lower_bound = source.weighted_log_density(means, prec_chol, weights,
                                                      self.covariance_type) / source.total_weight
        return dict(weights_=weights, means_=means, covariances_=cov,
                    precisions_cholesky_=prec_chol, converged_=converged, n_iter_=n_iter,
                    lower_bound_=float(lower_bound),
                    lower_bounds_=np.asarray(lower_bounds, dtype=np.float64))

    def _fitted_structure(self):
        return fitted_mixture_structure(self)

    def _fitted_shapes(self):
        return fitted_mixture_shapes(self)

    def _check_fitted_arrays(self):
        """Every fitted array's shape, finiteness and positive definiteness (after load).

        Raises ValueError naming the first inconsistency; the kernels never see one.
        """
        check_choice(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        k = check_int(self.n_components, "n_components", minimum=1)
        d = check_int(self.n_features_in_, "n_features_in_", minimum=1)
        dtype = np.asarray(self.means_).dtype
        for name, shape in mixture_array_shapes(self.covariance_type, k, d).items():
            value = np.asarray(getattr(self, name))
            if value.shape != shape or value.dtype not in (np.float32, np.float64):
                raise ValueError(f"{name} must be a float array of shape {shape}, got "
                                 f"{value.dtype} {value.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"{name} contains NaN or infinite values")
            setattr(self, name, value.astype(dtype))
        if (self.weights_ < 0).any() or not np.isclose(self.weights_.sum(), 1.0, rtol=1e-5):
            raise ValueError("weights_ must be non-negative and sum to 1")
        expected = precision_cholesky(self.covariances_, self.covariance_type)
        rtol = 1e-6 if dtype == np.float64 else 1e-3  # a float32 model stores rounded factors
        if not np.allclose(self.precisions_cholesky_, expected, rtol=rtol, atol=0):
            raise ValueError("precisions_cholesky_ does not match covariances_")
        self.precisions_cholesky_ = expected.astype(dtype)
        self._fitted_covariance_type = self.covariance_type

    # ------------------------------------------------------------------ public
    def fit(self, X: ArrayLike, y: object = None,
            sample_weight: ArrayLike | None = None) -> GaussianMixture:
        """Fit the mixture by EM.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            float64 input is computed in float64, anything else in float32;
            sums are accumulated in float64 either way.
        y : ignored
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative weights: a sample of weight 3 counts as three copies.

        Returns
        -------
        self : GaussianMixture
            The fitted mixture.
        """
        warm = self.warm_start and self.__sklearn_is_fitted__()
        if warm and self._fitted_structure() != {"n_components": self.n_components,
                                                 "covariance_type": self.covariance_type}:
            raise ValueError(WARM_START_CHANGED)
        n_threads = resolve_n_threads(self.n_threads, work_of(X, self.n_components))
        source, start_X, start_w = samples_for_fit(self, X, sample_weight, n_threads,
                                                   reset=not warm)
        d = source.n_features
        self._check_params(source.n_weighted, d)
        if self.reg_covar > np.finfo(source.dtype).max / 4:
            raise ValueError(f"reg_covar={self.reg_covar:g} is too large for {source.dtype} "
                             "data: a covariance that large overflows; use a smaller "
                             "reg_covar or float64 data")
        random_state = check_random_state(self.random_state)
        # scikit-learn adds 10 eps to each component's mass, for unit weights: scaled by the
        # mean weight, the fit does not depend on the weights' scale
        eps = np.finfo(source.dtype).eps * source.total_weight / source.n_weighted
        if warm and (self.means_.shape != (self.n_components, d)
                     or np.shape(self.covariances_) != covariance_shape(
                         self.covariance_type, self.n_components, d)):
            raise ValueError(WARM_START_CHANGED)
        best: dict[str, Any] = {}
        for init in range(1 if warm else self.n_init):
            if warm:  # continue: the previous parameters and lower bound
                weights, means, cov = (np.asarray(a, dtype=np.float64)
                                       for a in (self.weights_, self.means_, self.covariances_))
                result = self._run_em(source, weights, means, cov, eps, init,
                                      lower_bound=float(self.lower_bound_))
            else:
                weights, means, cov = self._initialize(start_X, start_w, random_state,
                                                       n_threads, eps)
                result = self._run_em(source, weights, means, cov, eps, init)
            if not best or result["lower_bound_"] > best["lower_bound_"]:
                best = result
        if not best["converged_"] and self.max_iter > 0:
            warnings.warn("Best performing initialization did not converge. Try different "
                          "init parameters, or increase max_iter, tol, or check for "
                          "degenerate data.", convergence_warning(), stacklevel=2)
        best["precisions_"] = precision_from_cholesky(best["precisions_cholesky_"],
                                                      self.covariance_type)
        for name, value in best.items():  # float32 data gives a float32 model, as scikit-learn
            if isinstance(value, np.ndarray) and name != "lower_bounds_":
                value = value.astype(source.dtype)
                if not np.isfinite(value).all():
                    raise source.overflow_error(f"the fitted {name.rstrip('_')}")
            best[name] = value
        for name, value in best.items():
            setattr(self, name, value)
        self.lower_bound_ = source.dtype.type(best["lower_bound_"])
        self._fitted_covariance_type = self.covariance_type
        return self

    def fit_predict(self, X: ArrayLike, y: object = None,
                    sample_weight: ArrayLike | None = None) -> np.ndarray:
        """Fit, then return the most likely component of every sample.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative weights, as in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n_samples,), intp
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _kernel_input(self, X) -> tuple[np.ndarray,
                                         tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
        X = self._validate_X(X, reset=False)
        return X, kernel_arrays(self.means_, self.precisions_cholesky_, self.weights_,
                                self.covariance_type, X.dtype)

    def _threads_for(self, samples: np.ndarray) -> int:
        return resolve_n_threads(self.n_threads, work_of(samples, self.n_components))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Most likely component of every sample.

        Parameters
        ----------
        X : array_like or Dask array of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), intp
            The component with the largest posterior (the first on ties); a lazy Dask
            array for Dask input.
        """
        if is_dask_array(X):
            return map_rows(self.predict, X, np.intp)
        samples, params = self._kernel_input(X)
        labels = np.empty(samples.shape[0], dtype=np.int32)
        _kernels.most_likely_component(samples, *params, labels,
                                       self._threads_for(samples))
        return labels.astype(np.intp)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Posterior probability of every component for every sample.

        Parameters
        ----------
        X : array_like or Dask array of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Rows sum to 1; in the model's dtype; lazy for Dask input.
        """
        if is_dask_array(X):
            return map_rows(self.predict_proba, X, compute_dtype(X), self.n_components)
        samples, params = self._kernel_input(X)
        out = np.empty((samples.shape[0], self.n_components), dtype=samples.dtype)
        _kernels.log_responsibilities(samples, *params, out, self._threads_for(samples))
        return np.exp(out, out=out)

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Log-likelihood of every sample under the mixture.

        Parameters
        ----------
        X : array_like or Dask array of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            ``log sum_k w_k N(x; mu_k, Sigma_k)``; lazy for Dask input.
        """
        if is_dask_array(X):
            return map_rows(self.score_samples, X, compute_dtype(X))
        samples, _ = self._kernel_input(X)
        scores = log_density(samples, self.means_, self.precisions_cholesky_, self.weights_,
                             self.covariance_type, self._threads_for(samples))
        return scores.astype(samples.dtype, copy=False)

    def score(self, X: ArrayLike, y: object = None,
              sample_weight: ArrayLike | None = None) -> float:
        """Mean (weighted) log-likelihood of X.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array_like of shape (n_samples,), optional

        Returns
        -------
        score : float
        """
        return self._score_and_total_weight(X, sample_weight)[0]

    def _score_and_total_weight(self, X, sample_weight):
        """(mean weighted log-likelihood of X, total weight n): the weights checked once."""
        scores = self.score_samples(X)
        w = check_sample_weight(sample_weight, len(scores))
        n = weight_total(w)
        return weighted_sum(w, scores) / n, n

    def _n_parameters(self):
        k, d = self.means_.shape
        cov = {"full": k * d * (d + 1) / 2, "tied": d * (d + 1) / 2, "diag": k * d,
               "spherical": k}[self.covariance_type]
        return int(cov + k * d + k - 1)

    def bic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Bayesian information criterion of the model on X (lower is better).

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        sample_weight : array_like of shape (n_samples,), optional
            Weights count as copies: n is their sum.

        Returns
        -------
        bic : float
            ``-2 n score(X) + n_parameters log(n)``.
        """
        score, n = self._score_and_total_weight(X, sample_weight)
        return float(-2 * score * n + self._n_parameters() * np.log(n))

    def aic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Akaike information criterion of the model on X (lower is better).

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        sample_weight : array_like of shape (n_samples,), optional
            Weights count as copies: n is their sum.

        Returns
        -------
        aic : float
            ``-2 n score(X) + 2 n_parameters``.
        """
        score, n = self._score_and_total_weight(X, sample_weight)
        return float(-2 * score * n + 2 * self._n_parameters())

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture (with ``random_state``).

        Parameters
        ----------
        n_samples : int, default 1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            The component each sample was drawn from.
        """
        self._check_fitted()
        n_samples = check_int(n_samples, "n_samples")
        if n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples}; the sampling "
                             "requires at least one sample")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        d = self.means_.shape[1]
        parts = []
        covariances = (np.broadcast_to(self.covariances_, (self.n_components, d, d))
                       if self.covariance_type == "tied" else self.covariances_)
        for mean, cov, count in zip(self.means_, covariances, counts):
            if self.covariance_type in ("full", "tied"):
                parts.append(rng.multivariate_normal(mean, cov, count))
            else:
                parts.append(mean + rng.standard_normal((count, d)) * np.sqrt(cov))
        labels = np.repeat(np.arange(self.n_components), counts)
        return np.vstack(parts), labels
