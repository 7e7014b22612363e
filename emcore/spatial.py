"""Spatially coherent segmentation: a Gaussian mixture under a Potts prior (HMRF-EM).

Each voxel's label is drawn from a Potts Markov random field: a label agrees with
its neighbours' with a bonus ``beta`` per neighbour (weighted by closeness), on top
of the mixture weight. EM alternates

1. the E-step: every voxel's data term log w_k p(x | k) from the current Gaussians
   (the kernels' per-sample log responsibilities), then one sweep of mean-field
   updates (or, ``e_step='icm'``, of iterated conditional modes) of the posteriors
   q over the grid, colour by colour so that the result does not depend on the
   thread count (emcore/_em.pyx: mrf_sweeps);
2. the M-step: weights, means and covariances from q, with the same float64 sums
   and formulas as :class:`~emcore.GaussianMixture` (emcore/_em.pyx:
   posterior_sums, then emcore/_estimation.py: m_step).

It starts from a per-voxel :class:`~emcore.GaussianMixture` of the image averaged
over small boxes (see ``_start``); with ``beta=0`` the result is the per-voxel
mixture of the image itself, exactly.
"""
from __future__ import annotations

import itertools
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from emcore import _kernels, summaries
from emcore._base import EstimatorMixin
from emcore._estimation import m_step
from emcore._params import (COVARIANCE_TYPES, kernel_arrays, precision_cholesky,
                            precision_from_cholesky)
from emcore._dask import IN_MEMORY_BELOW, is_dask_array
from emcore._threads import resolve_n_threads, work_of
from emcore._validation import (as_real_array, check_choice, check_declared_params,
                                check_float, check_int)
from emcore.mixture import (INIT_PARAMS, GaussianMixture, fitted_mixture_shapes,
                            fitted_mixture_structure)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

E_STEPS = ("mean-field", "icm")

#: A component whose posterior mass is below this fraction of the voxels keeps its
#: previous Gaussian (its weight still follows the posteriors).
EMPTY_FRACTION = 1e-9

#: Sweeps at most when labelling a new image with a fitted model.
PREDICT_SWEEPS = 50


def neighbourhood(spatial_dims: int, connectivity: int,
                  spacing: tuple[float, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The neighbours of a voxel and their weights.

    Parameters
    ----------
    spatial_dims : {2, 3}
    connectivity : int, 1 .. spatial_dims
        Neighbours differ in at most this many coordinates, each by one: 1 gives 4
        neighbours in 2-D and 6 in 3-D; 2 gives 8 in 2-D and 18 in 3-D; 3 gives 26.
    spacing : tuple of floats, optional
        The voxel size along each spatial axis (z, y, x); isotropic by default. An
        infinite size leaves out every neighbour along that axis: a stack of 2-D
        images (the frames of an animation) as a volume whose slices do not touch.

    Returns
    -------
    offsets : ndarray of shape (M, 3), intp
        (dz, dy, dx) steps; dz = 0 in 2-D.
    weights : ndarray of shape (M,)
        Inversely proportional to each neighbour's distance, scaled to sum to
        2 x the axes of finite spacing (4 in 2-D, 6 in 3-D): every neighbourhood
        pulls as hard in total as the neighbours along the axes of an isotropic
        grid, each of which has weight 1 (so ``beta`` means the same whatever the
        connectivity, and a stack of slices is coupled as each slice alone).
    """
    spacing_arr = np.ones(spatial_dims) if spacing is None else np.asarray(spacing, float)
    steps = [s for s in itertools.product((-1, 0, 1), repeat=spatial_dims)
             if 0 < np.count_nonzero(s) <= connectivity
             and np.isfinite(spacing_arr[np.flatnonzero(s)]).all()]
    if not steps:
        raise ValueError(f"no neighbours: connectivity {connectivity} with spacing "
                         f"{tuple(spacing_arr)} leaves every step along an infinite axis")
    offsets = np.zeros((len(steps), 3), dtype=np.intp)
    offsets[:, 3 - spatial_dims:] = steps
    # the steps kept make none along an infinite axis (whose 0 x inf would be NaN)
    lengths = np.asarray(steps) * np.where(np.isfinite(spacing_arr), spacing_arr, 0.0)
    distance = np.sqrt((lengths ** 2).sum(axis=1))
    weights = 1.0 / distance
    coupled_axes = int(np.isfinite(spacing_arr).sum())
    return offsets, weights * (2 * coupled_axes / weights.sum())


def box_mean(values: np.ndarray, inside: np.ndarray, radius: int) -> np.ndarray:
    """The mean of the voxels inside over each voxel's (2 radius + 1)^d box.

    Parameters
    ----------
    values : ndarray of shape (*spatial, C)
    inside : ndarray of bool, of the spatial shape
    radius : int

    Returns
    -------
    mean : ndarray of shape (*spatial, C), float64
        Boxes are clipped at the edges; a voxel whose box holds no voxel inside is 0.
    """
    total = np.where(inside[..., None], values, 0).astype(np.float64)
    count = inside.astype(np.float64)
    for axis in range(inside.ndim):
        total, count = (_box_sum(a, axis, radius) for a in (total, count))
    return total / np.maximum(count, 1)[..., None]


def _box_sum(a, axis, radius):
    """Sums over windows of 2 radius + 1 along ``axis``, clipped at the ends: the
    shifted copies added in a fixed order, so that a chunk with a halo of ``radius``
    sums each voxel exactly as the whole array does."""
    n = a.shape[axis]
    out = np.zeros_like(a)
    for shift in range(-radius, radius + 1):
        lo, hi = max(0, -shift), min(n, n - shift)
        if lo >= hi:
            continue
        target = [slice(None)] * a.ndim
        source = [slice(None)] * a.ndim
        target[axis], source[axis] = slice(lo, hi), slice(lo + shift, hi + shift)
        out[tuple(target)] += a[tuple(source)]
    return out


#: The largest ``beta``: a voxel's prior energy sums beta x its neighbours' weights
#: (2 x spatial_dims at most) for each label and takes differences of them, which
#: overflow above about 1e307 (on a noisy phantom 1e300 labels 99.4% of the
#: voxels as 1e3 does: the prior decides long before).
MAX_BETA = 1e300


def _check_beta(value, name):
    value = check_float(value, name, minimum=0)
    if value > MAX_BETA:
        raise ValueError(f"{name} must be at most {MAX_BETA:g} (the prior's energies "
                         f"would overflow), got {value:g}")
    return value


def _check_spacing(value, name):
    if value is None:
        return value
    arr = np.asarray(value, dtype=np.float64) if np.ndim(value) == 1 else None
    if arr is None or not ((arr > 0).all() and np.isfinite(arr).any()):  # NaN: not > 0
        raise ValueError(f"{name} must be None or a sequence of positive voxel sizes "
                         f"(infinite: no neighbours along that axis; not all), got {value!r}")
    return value


class SpatialGaussianMixture(EstimatorMixin):
    """A Gaussian mixture over an image's or a volume's voxels with a Potts prior.

    Neighbouring voxels tend to share a label, so segments of a noisy image come
    out whole instead of speckled. Fits 2-D images (H, W) or (H, W, C) and, with
    ``spatial_dims=3``, volumes (Z, Y, X) or (Z, Y, X, C), with a mask of the
    voxels to segment. Results do not depend on the number of threads.

    Parameters
    ----------
    n_components : int, default 1
    beta : float, default 1.5
        The prior's interaction strength: how much a label gains, in nats, for
        each neighbour (of weight 1) that has it; a voxel whose neighbours all
        share a label gains 2 x spatial_dims x beta for it. 0 is the per-voxel
        mixture. 1.5 was the most accurate of 0.5-2 on every phantom measured
        (benchmarks/spatial.py), thin stripes included.
    connectivity : int, optional
        1 for neighbours along the axes only; up to ``spatial_dims`` for diagonal
        ones too (see :func:`neighbourhood`). Default: ``spatial_dims`` (8
        neighbours in 2-D, 26 in 3-D).
    spacing : sequence of floats, optional
        Voxel size along each spatial axis; a neighbour's weight is inversely
        proportional to its distance (see :func:`neighbourhood`). Isotropic by default.
        ``inf`` along an axis couples no voxel with its neighbours along it:
        ``(inf, 1, 1)`` fits a stack of images with one mixture, each image's pixels
        coupled only within it.
    spatial_dims : {2, 3}, default 2
        How many leading axes of the input are spatial; a further axis holds channels.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default 'full'
    e_step : {'mean-field', 'icm'}, default 'mean-field'
        Soft mean-field posteriors, or iterated conditional modes (each voxel takes
        its best label given its neighbours').
    tol : float, default 1e-4
        Stop when at most this fraction of the voxels changes label in an iteration.
    reg_covar : float, default 1e-6
        Added to every variance.
    max_iter : int, default 100
        Spatial EM iterations at most, after the per-voxel start.
    n_init, init_params, random_state :
        Of the per-voxel :class:`~emcore.GaussianMixture` that gives the start.
    n_threads : int, optional
        OpenMP threads; by default the rule of emcore/_threads.py.

    Attributes
    ----------
    labels_ : ndarray of the input's spatial shape, intp
        Each voxel's most probable label; -1 outside the mask.
    weights_ : ndarray of shape (n_components,)
        Each label's share of the posterior mass. With ``beta`` > 0 the E-step does
        not use it: the Potts field alone is the label prior (mixture weights there
        feed the prior's preference for large segments back into itself, and small
        segments erode away; measured).
    means_, covariances_, precisions_cholesky_, precisions_ : ndarray
        The Gaussians, as in :class:`~emcore.GaussianMixture`.
    offsets_ : ndarray of shape (M, 3), intp
        The neighbourhood's (dz, dy, dx) steps.
    coupling_ : ndarray of shape (M,)
        ``beta`` times each neighbour's weight.
    n_iter_ : int
        Spatial iterations run.
    converged_ : bool
    n_features_in_ : int
        Channels.
    """

    _estimator_type = "clusterer"
    _fitted_attributes = ("means_", "weights_", "covariances_", "precisions_cholesky_",
                          "precisions_", "offsets_", "coupling_", "converged_", "n_iter_",
                          "n_features_in_")

    labels_: np.ndarray
    weights_: np.ndarray
    means_: np.ndarray
    covariances_: np.ndarray
    precisions_cholesky_: np.ndarray
    precisions_: np.ndarray
    offsets_: np.ndarray
    coupling_: np.ndarray
    n_iter_: int
    converged_: bool
    n_features_in_: int

    def __init__(self, n_components: int = 1, *, beta: float = 1.5,
                 connectivity: int | None = None, spacing: tuple[float, ...] | None = None,
                 spatial_dims: int = 2, covariance_type: str = "full",
                 e_step: str = "mean-field", tol: float = 1e-4, reg_covar: float = 1e-6,
                 max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans",
                 random_state: int | np.random.RandomState | None = None,
                 n_threads: int | None = None) -> None:
        self.n_components = n_components
        self.beta = beta
        self.connectivity = connectivity
        self.spacing = spacing
        self.spatial_dims = spatial_dims
        self.covariance_type = covariance_type
        self.e_step = e_step
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.n_threads = n_threads

    _param_checks = {
        "n_components": partial(check_int, minimum=1),
        "beta": _check_beta,
        "spatial_dims": partial(check_int, minimum=2, maximum=3),
        "covariance_type": partial(check_choice, choices=COVARIANCE_TYPES),
        "e_step": partial(check_choice, choices=E_STEPS),
        "tol": partial(check_float, minimum=0),
        "reg_covar": partial(check_float, minimum=0),
        "max_iter": partial(check_int, minimum=0),
        "n_init": partial(check_int, minimum=1),
        "init_params": partial(check_choice, choices=INIT_PARAMS),
        "spacing": _check_spacing,
    }

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        check_declared_params(self, self._param_checks)
        dims = self.spatial_dims
        if self.connectivity is not None:
            check_int(self.connectivity, "connectivity", minimum=1, maximum=dims)
        if self.spacing is not None and len(self.spacing) != dims:
            raise ValueError(f"spacing must have {dims} values (one per spatial axis), "
                             f"got {len(self.spacing)}")

    def _neighbourhood(self):
        dims = self.spatial_dims
        offsets, weights = neighbourhood(dims, self.connectivity or dims, self.spacing)
        return offsets, float(self.beta) * weights

    def _grid(self, image, mask, n_features=None):
        """(X (N, C) for the kernels, inside (N,) uint8, spatial shape, the kernels'
        (nz, ny, nx)) from an image and an optional mask."""
        dims = self.spatial_dims
        arr = as_real_array(image, "image")
        if arr.ndim not in (dims, dims + 1):
            raise ValueError(f"image must have {dims} spatial axes and optionally one of "
                             f"channels, got shape {arr.shape}")
        shape = arr.shape[:dims]
        if min(shape) < 1:
            raise ValueError(f"image is empty: shape {arr.shape}")
        channels = 1 if arr.ndim == dims else arr.shape[-1]
        if channels < 1:
            raise ValueError("image has no channels")
        if n_features is not None and channels != n_features:
            raise ValueError(f"image has {channels} channels; the model was fitted on "
                             f"{n_features}")
        dtype = np.float32 if arr.dtype == np.float32 else np.float64
        if n_features is not None:
            dtype = self.means_.dtype
        X = np.ascontiguousarray(arr.reshape(-1, channels), dtype=dtype)
        if mask is None:
            inside = np.ones(len(X), dtype=np.uint8)
        else:
            m = np.asarray(mask)
            if m.shape != shape:
                raise ValueError(f"mask must have the image's spatial shape {shape}, "
                                 f"got {m.shape}")
            if m.dtype != bool:
                raise TypeError(f"mask must be a boolean array, got {m.dtype}")
            inside = np.ascontiguousarray(m.reshape(-1), dtype=np.uint8)
        chosen = inside.astype(bool)
        if not chosen.any():
            raise ValueError("the mask selects no voxel")
        if not np.isfinite(X[chosen]).all():
            raise ValueError("image contains NaN or infinite values inside the mask")
        if not chosen.all():  # outside the mask: any finite value, never used
            X[~chosen] = X[np.argmax(chosen)]
        grid = (1,) * (3 - dims) + shape
        return X, inside, shape, grid

    # ------------------------------------------------------------- the EM core
    def _data_term(self, X, means, prec_chol, n_threads):
        """(N, K) log p(x | k) less its log-sum-exp over k: the Gaussians alone, without
        the mixture weights (the Potts field is the label prior)."""
        uniform = np.full(len(means), 1.0 / len(means))
        k_means, k_prec, k_const, full = kernel_arrays(means, prec_chol, uniform,
                                                       self.covariance_type, X.dtype)
        out = np.empty((len(X), len(k_means)), dtype=X.dtype)
        _kernels.log_responsibilities(X, k_means, k_prec, k_const, full, out, n_threads)
        return out

    def _sums(self, X, q, weight, centre, n_threads, labels=None):
        """summaries.posterior_sums of X with q (or labels, a hard assignment), merged:
        (K, S)."""
        return summaries.merge([summaries.posterior_sums(
            X, q, centre, self.covariance_type in ("full", "tied"), weight,
            n_threads=n_threads, check_weights=False, labels=labels)])[0]

    def _m_step(self, X, q, inside, means, cov, eps, n_threads):
        centre = means.astype(X.dtype)
        total = self._sums(X, q, inside.astype(np.float64), centre, n_threads)
        return self._finish_m_step(total, centre, means, cov, eps)

    def _finish_m_step(self, total, centre, means, cov, eps, empty=None):
        """New (weights, means, covariances) from posterior sums centred on ``centre``.
        A component whose mass is below EMPTY_FRACTION of the total (or, given, each
        one ``empty`` marks) keeps ``means`` and ``cov``."""
        new_weights, new_means, new_cov = m_step(total, centre.astype(np.float64), eps,
                                                 self.covariance_type, self.reg_covar)
        if empty is None:
            empty = total[:, 0] < EMPTY_FRACTION * total[:, 0].sum()
        if empty.any():
            new_means[empty] = means[empty]
            if self.covariance_type != "tied":
                new_cov[empty] = cov[empty]
        return new_weights, new_means, new_cov

    def _sweep(self, data, q, inside, grid, offsets, coupling, n_threads):
        """One sweep over q in place; how many voxel updates changed a best label."""
        return _kernels.mrf_sweeps(data, q, inside, grid, offsets, coupling,
                                   self.e_step == "icm", 1, n_threads)

    @staticmethod
    def _per_voxel_posteriors(data, inside):
        q = np.exp(data)
        q[inside == 0] = 0
        return q

    def _per_voxel_mixture(self, X, n_threads, sample_weight=None):
        return GaussianMixture(self.n_components, covariance_type=self.covariance_type,
                               reg_covar=self.reg_covar, n_init=self.n_init,
                               init_params=self.init_params, random_state=self.random_state,
                               n_threads=n_threads).fit(X, sample_weight=sample_weight)

    def _start(self, X, inside, grid, n_threads):
        """(weights, means, covariances) to start spatial EM from, float64.

        A per-voxel mixture of the image averaged over about 25 voxels (5 x 5, or
        3 x 3 x 3 in a volume), where noise is a fifth as large and small classes
        stand apart, labels the voxels (those outside a mask weigh nothing); the
        start is those segments' statistics in the original image. The chunked
        fit (emcore/_spatial_chunks.py) takes the same steps.
        """
        radius = 2 if self.spatial_dims == 2 else 1
        averaged = box_mean(X.reshape(grid + (-1,)), inside.reshape(grid).astype(bool), radius)
        averaged = np.ascontiguousarray(averaged.reshape(X.shape), dtype=X.dtype)
        weight = inside.astype(np.float64)
        model = self._per_voxel_mixture(averaged, n_threads, weight)
        return self._start_from(model, X, model.predict(averaged), weight, n_threads)

    def _start_from(self, model, X, labels, weight, n_threads):
        """The hard segments' (weights, means, covariances), from their posterior sums
        centred on the averaged volume's means."""
        centre = model.means_.astype(X.dtype)
        total = self._sums(X, None, weight, centre, n_threads, labels=labels.astype(np.int32))
        return self._start_parameters(total, centre, model)

    def _start_parameters(self, total, centre, model):
        """The start from the hard segments' sums; a segment no voxel chose keeps the
        averaged volume's Gaussian."""
        return self._finish_m_step(total, centre, model.means_, model.covariances_,
                                   np.finfo(np.float64).eps, empty=total[:, 0] == 0)

    # ------------------------------------------------------------------ public
    def fit(self, image: ArrayLike, y: object = None,
            mask: ArrayLike | None = None) -> SpatialGaussianMixture:
        """Fit the mixture and its labels by spatial EM.

        Parameters
        ----------
        image : array_like
            (H, W) or (H, W, C); with ``spatial_dims=3``, (Z, Y, X) or (Z, Y, X, C).
            float32 is computed in float32, anything else in float64; sums are
            float64 either way. A Dask array of 2 million voxels or more is
            fitted chunk by chunk (each chunk with a halo of its neighbours: the same
            updates as in memory, sums equal to rounding); a smaller one is computed
            into memory first.
        y : ignored
        mask : array_like of bool, optional
            The voxels to segment, of the image's spatial shape; the others get
            label -1 and do not count as anyone's neighbours.

        Returns
        -------
        self : SpatialGaussianMixture
        """
        self._check_params()
        if is_dask_array(image) and int(np.prod(np.shape(image)[:self.spatial_dims])) >= (
                IN_MEMORY_BELOW):
            from emcore import _spatial_chunks  # it imports this module
            return _spatial_chunks.fit(self, image, mask)
        X, inside, shape, grid = self._grid(image, mask)
        n_inside = int(inside.sum())
        if self.n_components > n_inside:
            raise ValueError(f"n_components={self.n_components} is more than the "
                             f"{n_inside} voxels to segment")
        n_threads = resolve_n_threads(self.n_threads, work_of(X, self.n_components))
        offsets, coupling = self._neighbourhood()
        converged, n_iter, q = True, 0, None
        if self.beta == 0:  # the per-voxel mixture, exactly
            per_voxel = self._per_voxel_mixture(X[inside.astype(bool)], n_threads)
            weights, means, cov = (np.asarray(a, dtype=np.float64) for a in (
                per_voxel.weights_, per_voxel.means_, per_voxel.covariances_))
            prec_chol = precision_cholesky(cov, self.covariance_type)
        else:
            weights, means, cov = self._start(X, inside, grid, n_threads)
            prec_chol = precision_cholesky(cov, self.covariance_type)
            eps = np.finfo(X.dtype).eps
            converged = False
            for n_iter in range(1, self.max_iter + 1):
                data = self._data_term(X, means, prec_chol, n_threads)
                if q is None:
                    q = self._per_voxel_posteriors(data, inside)
                changed = self._sweep(data, q, inside, grid, offsets, coupling, n_threads)
                weights, means, cov = self._m_step(X, q, inside, means, cov, eps, n_threads)
                prec_chol = precision_cholesky(cov, self.covariance_type)
                if n_iter > 1 and changed <= self.tol * n_inside:
                    converged = True
                    break
        self._store(weights, means, cov, prec_chol, X.dtype)
        if q is None:  # beta = 0, or no iteration
            best = per_voxel.predict(X) if self.beta == 0 else self._per_voxel_labels(X)
        else:
            best = q.argmax(axis=1)
        self.labels_ = self._labels(best, inside, shape)
        self.offsets_, self.coupling_ = offsets, coupling
        self.n_iter_, self.converged_ = n_iter, converged
        self._fitted_covariance_type = self.covariance_type
        self.n_features_in_ = X.shape[1]
        return self

    def _store(self, weights, means, cov, prec_chol, dtype):
        self.weights_ = weights.astype(dtype)
        self.means_ = means.astype(dtype)
        self.covariances_ = cov.astype(dtype)
        self.precisions_cholesky_ = prec_chol.astype(dtype)
        self.precisions_ = precision_from_cholesky(prec_chol, self.covariance_type).astype(dtype)

    def _per_voxel_labels(self, X):
        data = self._data_term(X, self.means_, self.precisions_cholesky_, 1)
        return data.argmax(axis=1)

    @staticmethod
    def _labels(per_voxel, inside, shape):
        return np.where(inside.astype(bool), per_voxel, -1).astype(np.intp).reshape(shape)

    def _fitted_structure(self):
        return fitted_mixture_structure(self)

    def _fitted_shapes(self):
        return fitted_mixture_shapes(self)

    def _check_fitted_arrays(self):
        GaussianMixture._check_fitted_arrays(self)
        offsets = np.asarray(self.offsets_)
        coupling = np.asarray(self.coupling_, dtype=np.float64)
        if (offsets.ndim != 2 or offsets.shape[1] != 3 or len(coupling) != len(offsets)
                or not np.isfinite(coupling).all()):
            raise ValueError("offsets_ and coupling_ must be (M, 3) steps and M finite weights")
        self.offsets_ = np.ascontiguousarray(offsets, dtype=np.intp)
        self.coupling_ = coupling

    def predict_proba(self, image: ArrayLike, mask: ArrayLike | None = None) -> np.ndarray:
        """Spatial posteriors of a new image under the fitted model.

        Mean-field (or ICM) sweeps with the fitted parameters, from the per-voxel
        posteriors, until at most ``tol`` of the voxels change label in a sweep
        (at most 50 sweeps).

        Parameters
        ----------
        image : array_like
            Shaped as for :meth:`fit`, with as many channels.
        mask : array_like of bool, optional

        Returns
        -------
        proba : ndarray of shape (*spatial, n_components)
            Zero outside the mask.
        """
        self._check_fitted()
        X, inside, shape, grid = self._grid(image, mask, self.n_features_in_)
        n_threads = resolve_n_threads(self.n_threads, work_of(X, self.n_components))
        data = self._data_term(X, self.means_, self.precisions_cholesky_, n_threads)
        q = self._per_voxel_posteriors(data, inside)
        for _ in range(PREDICT_SWEEPS):
            changed = self._sweep(data, q, inside, grid, self.offsets_, self.coupling_,
                                  n_threads)
            if changed <= self.tol * inside.sum():
                break
        return q.reshape(shape + (self.n_components,))

    def predict(self, image: ArrayLike, mask: ArrayLike | None = None) -> np.ndarray:
        """Each voxel's most probable label under the fitted model (-1 outside the mask).

        Parameters
        ----------
        image : array_like
        mask : array_like of bool, optional

        Returns
        -------
        labels : ndarray of the image's spatial shape, intp
        """
        q = self.predict_proba(image, mask)
        labels = q.argmax(axis=-1)
        if mask is not None:
            labels[~np.asarray(mask)] = -1
        return labels

    def fit_predict(self, image: ArrayLike, y: object = None,
                    mask: ArrayLike | None = None) -> np.ndarray:
        """Fit, then return ``labels_``.

        Parameters
        ----------
        image : array_like
        y : ignored
        mask : array_like of bool, optional

        Returns
        -------
        labels : ndarray of the image's spatial shape, intp
        """
        return self.fit(image, mask=mask).labels_
