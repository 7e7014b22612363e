"""Image-level workflows: the seed's ``EM`` class, ``save_new``, ``quantize`` and ``k_sweep``.

All of them run emcore/pipeline.py: the image's distinct colours weighted by
their counts are fitted, each segment is painted with the mean colour of its
pixels, and the result is written as an indexed image.
"""
from __future__ import annotations

import inspect
import os
import time
import warnings
from typing import Any, Callable, Iterable

import numpy as np

from emcore._validation import check_bool, check_choice, check_float, check_int
from emcore.exceptions import ConvergenceWarning
from emcore.kmeans import KMeans
from emcore.mixture import GaussianMixture
from emcore.pipeline import (IMAGE_COVARIANCE, METHODS, SPATIAL_OPTIONS, ImageSamples,
                             Segmentation, finish, fit_model, fit_to_samples, segment_image)
from emcore.spatial import SpatialGaussianMixture

_GMM_OPTIONS = set(inspect.signature(GaussianMixture.__init__).parameters) - {
    "self", "n_components", "max_iter"}
_EM_OPTIONS = {"unique_colors", "color_space", "dither", "repaint", "smoothing"}


class EM:
    """Segment an image with a Gaussian mixture fitted by EM.

    The call shape of the Rust/PyO3 module it replaces::

        em = EM("photo.jpg", 32)
        em.fit(30)
        save_new(em, "segmented.png")

    Parameters
    ----------
    image : str, path, binary file, PIL image, array, or Dask array (H, W, 3) / (H, W)
        (H, W) grayscale, (H, W, 3) colour, or with an alpha channel; 8 or
        16-bit integers or floats. An integer image with alpha is fitted on
        colour and alpha together, in the composite coordinates of
        :mod:`emcore.transparency` (``means_`` are in those coordinates), with one
        fully transparent segment for its transparent pixels; a float image's
        alpha is kept aside and returned as it was.
    n_clusters : int
        Mixture components. More than the image's distinct colours keeps every
        colour (lossless, with a warning).
    unique_colors : bool, default True
        Fit on the distinct colours weighted by their counts (the same model,
        much faster on photographs).
    color_space : {'rgb', 'oklab'}, default 'rgb'
        Fit in sRGB or in the perceptual OKLab space.
    dither : float, default 0
        Floyd-Steinberg error diffusion strength (0 to 1) in ``segmented()``;
        15/16 looks best from a distance (README, "Dithering").
    repaint : {'segment', 'component'}, default 'segment'
        Paint each segment with the mean colour of its pixels (the colour that
        minimises its squared error) or with the component's mean.
    smoothing : float, default 0
        Above 0, the mixture is a :class:`SpatialGaussianMixture` with this
        ``beta``: neighbouring pixels tend to share a segment (for noisy images).
        It sees every pixel (``unique_colors`` is ignored) and takes the options
        {covariance_type, reg_covar, n_init, init_params, random_state, n_threads}.
    **options
        Any :class:`GaussianMixture` option. The defaults differ from
        GaussianMixture's where measurement says so (README, "Choosing the
        defaults"): covariance_type='spherical' (one variance per component,
        as in the Rust module; the best picture of the four types),
        random_state=0 (the same call gives the same result).

    Attributes
    ----------
    model_ : GaussianMixture or SpatialGaussianMixture
        The fitted mixture; its fitted attributes (means_, weights_,
        covariances_, converged_, n_iter_, lower_bound_, ...) are also
        readable on the EM object itself.
    """

    def __init__(self, image: Any, n_clusters: int, *, unique_colors: bool = True,
                 color_space: str = "rgb", dither: float = 0.0, repaint: str = "segment",
                 smoothing: float = 0.0, **options: Any) -> None:
        self.smoothing = check_float(smoothing, "smoothing", minimum=0)
        accepted = set(SPATIAL_OPTIONS) - {"max_iter"} if self.smoothing else _GMM_OPTIONS
        unknown = set(options) - accepted
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}; EM accepts "
                            f"{', '.join(sorted(_EM_OPTIONS | accepted))}"
                            + (" with smoothing" if self.smoothing else ""))
        options.setdefault("random_state", 0)
        options.setdefault("covariance_type", IMAGE_COVARIANCE)
        self.unique_colors = check_bool(unique_colors, "unique_colors") and not self.smoothing
        self._samples = ImageSamples(image, unique_colors=self.unique_colors,
                                     color_space=color_space,
                                     n_threads=options.get("n_threads"))
        self.n_clusters = self._samples.effective_k(n_clusters, "n_clusters")
        self._result: Segmentation | None = None
        self.dither = dither
        self.repaint = repaint
        k = self._samples.model_k(self.n_clusters)
        self.model_: GaussianMixture | SpatialGaussianMixture = (
            SpatialGaussianMixture(k, beta=self.smoothing, **options) if self.smoothing
            else GaussianMixture(k, **options))

    @property
    def dither(self) -> float:
        """Floyd-Steinberg strength of ``segmented()``; setting it drops the cached result."""
        return self._dither

    @dither.setter
    def dither(self, value: float) -> None:
        self._dither, self._result = value, None

    @property
    def repaint(self) -> str:
        """How segments are painted; setting it drops the cached result."""
        return self._repaint

    @repaint.setter
    def repaint(self, value: str) -> None:
        self._repaint, self._result = value, None

    def fit(self, epochs: int = 100) -> EM:
        """Fit the mixture to the image.

        Parameters
        ----------
        epochs : int, default 100
            At most this many EM iterations (fewer once converged; no warning when
            they run out); with ``smoothing``, spatial iterations after the
            per-pixel start.

        Returns
        -------
        self : EM
        """
        self.model_.max_iter = check_int(epochs, "epochs", minimum=0)
        with warnings.catch_warnings():  # the caller chose the number of epochs
            warnings.filterwarnings("ignore", "Best performing initialization did not converge",
                                    ConvergenceWarning)
            fit_to_samples(self.model_, self._samples)
        self._result = None
        return self

    def __getattr__(self, name: str):
        # fitted attributes of the mixture, e.g. em.means_, em.converged_
        if name.endswith("_") and not name.startswith("_") and "model_" in self.__dict__:
            return getattr(self.__dict__["model_"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def result(self) -> Segmentation:
        """The segmentation of the fitted mixture (computed once, then cached).

        Returns
        -------
        result : Segmentation
            The model, each pixel's label, the palette and the repainted image.
        """
        if self._result is None:
            self.model_._check_fitted()
            self._result = finish(self._samples, self.model_, repaint=self.repaint,
                                  dither=self.dither)
        return self._result

    def labels(self) -> np.ndarray:
        """Each pixel's segment.

        Returns
        -------
        labels : ndarray of shape (H, W), int32
            The most likely component (or, dithered, the palette index).
        """
        return self.result().labels

    def segmented(self) -> np.ndarray:
        """The image with every pixel painted with its segment's colour.

        Returns
        -------
        image : ndarray
            The input's shape and dtype; alpha kept (integers of another type than
            uint8 and uint16: the depth their values fit, else float64).
        """
        return self.result().image


def save_new(em: EM, path: str | os.PathLike[str], *, rgb: bool = False) -> None:
    """Write ``em.segmented()`` to a file atomically (the format from the extension).

    Parameters
    ----------
    em : EM
        A fitted :class:`EM`.
    path : str or path-like
    rgb : bool, default False
        Write RGB rather than an indexed image with exactly the segment colours
        (written where the format has one: PNG, GIF, TIFF, BMP). The input's ICC
        profile is kept either way.
    """
    em.result().save(path, rgb=rgb)


def quantize(image: Any, n_colors: int, *, method: str = "kmeans", unique_colors: bool = True,
             random_state: int | np.random.RandomState | None = 0,
             n_threads: int | None = None,
             **options: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reduce an image to ``n_colors`` colours in one call.

    Parameters
    ----------
    image : str, path, binary file, PIL image, array, or Dask array (H, W, 3) / (H, W)
    n_colors : int
        More than the image's distinct colours keeps every colour (with a warning).
    method : {'kmeans', 'gmm'}
        k-means (Lloyd, k-means++ start on colour cells) or a Gaussian mixture fitted by EM.
    unique_colors : bool, default True
        Fit on distinct colours weighted by their counts.
    random_state : int, RandomState or None, default 0
    n_threads : int or None
    **options
        ``color_space``, ``dither``, ``repaint`` (see :func:`emcore.segment_image`)
        and any :class:`KMeans` or :class:`GaussianMixture` option.

    Returns
    -------
    quantized : ndarray, the image's shape and dtype (other integers than uint8 and
        uint16: the depth their values fit, else float64)
    palette : ndarray (n_colors, C) float64, the colours painted
    labels : ndarray (H, W) int32, the palette index of every pixel
    """
    result = segment_image(image, n_colors, method=method, unique_colors=unique_colors,
                           random_state=random_state, n_threads=n_threads, **options)
    return result.image, result.palette.astype(np.float64), result.labels


def k_sweep(image: Any, k_values: Iterable[int], *, method: str = "kmeans",
            unique_colors: bool = True, random_state: int | np.random.RandomState | None = 0,
            n_threads: int | None = None,
            callback: Callable[[int, float, float], None] | None = None,
            **options: Any) -> dict:
    """Fit once per k and record the cost and the time, the k-means tutorial's closing plot.

    Parameters
    ----------
    image : str, path, binary file, PIL image, array, or Dask array (H, W, 3) / (H, W)
    k_values : iterable of int
        Each at most the image's distinct colours.
    method : {'kmeans', 'gmm'}
        The cost is the inertia for k-means and the BIC for the mixture (both
        over every pixel: unique colours are weighted by their counts).
    unique_colors, random_state, n_threads, **options
        As for :func:`quantize`.
    callback : callable or None
        Called as ``callback(k, cost, seconds)`` after each fit.

    Returns
    -------
    dict with arrays 'k', 'cost' and 'time' (seconds per fit, unique-colour
    counting excluded as it is shared), and 'cost_name'.
    """
    check_choice(method, "method", METHODS)
    samples = ImageSamples(image, unique_colors=unique_colors, n_threads=n_threads)
    ks = [check_int(k, "k", minimum=1) for k in k_values]
    if not ks:
        raise ValueError("k_values is empty")
    too_many = [k for k in ks if k > samples.n_distinct]
    if too_many:
        raise ValueError(f"k={too_many[0]} is more than the {samples.n_distinct} distinct "
                         "colours in the image")
    costs, times = [], []
    for k in ks:
        start = time.perf_counter()
        model = fit_model(samples, k, method, random_state=random_state, n_threads=n_threads,
                          **options)
        if isinstance(model, KMeans):
            cost = model.inertia_
        else:
            assert isinstance(model, GaussianMixture)  # a sweep does not smooth
            cost = model.bic(samples.fit_samples, sample_weight=samples.weights)
        times.append(time.perf_counter() - start)
        costs.append(cost)
        if callback is not None:
            callback(k, cost, times[-1])
    return {"k": np.asarray(ks), "cost": np.asarray(costs), "time": np.asarray(times),
            "cost_name": "inertia" if method == "kmeans" else "BIC"}
