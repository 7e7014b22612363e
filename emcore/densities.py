"""Per-pixel Gaussian mixture densities: ``compute_densities(image, kernels)``."""
from __future__ import annotations

import functools
import numbers
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple

import numpy as np

from emcore import _kernels
from emcore._dask import is_dask_array
from emcore._params import COVARIANCE_TYPES, kernel_arrays, precision_cholesky
from emcore._threads import resolve_n_threads, work_of
from emcore._validation import as_pixel_depth, as_real_array, check_bool, check_finite
from emcore.colorspace import full_scale, samples_to_oklab
from emcore.transparency import composite_coordinates

#: The spaces the image pipeline fits models in (ImageSamples.input_space).
INPUT_SPACES = ("rgb", "oklab", "composite")

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

#: Pixels converted to the compute dtype at a time (24 MiB of float64 RGB).
SLAB_PIXELS = 1 << 20
#: What _repeated_colors weighs, in evaluations of one kernel at one pixel.
EVALUATION_COSTS = {"mark": 3.0, "bitmap": 2.0**19, "spread": 4.0, "spread_per_mi": 8.0}

class Kernel(NamedTuple):
    """One Gaussian kernel of a mixture, as :func:`compute_densities` takes it.

    Attributes
    ----------
    mean : array_like of shape (D,)
    covariance : array_like of shape (D,) or (D, D)
        The D variances of a diagonal matrix, or a full symmetric positive-definite
        matrix.
    weight : float
        Non-negative.
    """

    mean: ArrayLike
    covariance: ArrayLike
    weight: float


def _kernel_triple(index, kernel):
    try:
        mean, covariance, weight = kernel
    except (TypeError, ValueError):
        raise TypeError(
            f"kernel {index} must be a (mean, covariance, weight) triple, got {kernel!r}"
        ) from None
    mean = check_finite(as_real_array(mean, f"kernel {index} mean"), f"kernel {index} mean")
    covariance = check_finite(
        as_real_array(covariance, f"kernel {index} covariance"), f"kernel {index} covariance")
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, (numbers.Real, np.ndarray)):
        raise TypeError(f"kernel {index} weight must be a real number, got {weight!r}")
    weight = np.asarray(weight, dtype=np.float64)
    if weight.size != 1 or not np.isfinite(weight).all():
        raise ValueError(f"kernel {index} weight must be one finite number, got {weight!r}")
    if float(weight.ravel()[0]) < 0:
        raise ValueError(f"kernel {index} weight must be non-negative, "
                         f"got {float(weight.ravel()[0])}")
    return mean.astype(np.float64).ravel(), covariance.astype(np.float64), float(weight.ravel()[0])


def _input_space(kernels) -> str:
    """The space a fitted model's samples were in: 'rgb' unless the image pipeline
    recorded another (``input_space_``, kept in model files)."""
    space = getattr(kernels, "input_space_", "rgb")
    if space not in INPUT_SPACES:
        raise ValueError(f"the model's input_space_ must be one of {INPUT_SPACES}, got {space!r}")
    return str(space)


def pixels_in_model_space(flat: np.ndarray, space: str, n_threads: int | None) -> np.ndarray:
    """(N, C) pixels as a model fitted by the image pipeline saw them: unchanged for
    'rgb', OKLab for 'oklab' (8 or 16-bit sRGB), composite coordinates for
    'composite' (8 or 16-bit colour and alpha, emcore/transparency.py)."""
    if space == "rgb":
        return flat
    given = flat.dtype
    flat = as_pixel_depth(flat)  # other integers: the 8 or 16-bit image they fit
    if flat.dtype not in (np.uint8, np.uint16):
        beyond = " with values outside 0-65535" if given.kind in "iu" else ""
        raise ValueError(f"the model was fitted in {space} from 8 or 16-bit pixels; this "
                         f"image is {given}{beyond}")
    scale = full_scale(flat.dtype)
    if space == "oklab":
        return samples_to_oklab(np.ascontiguousarray(flat), scale, n_threads,
                                dtype=np.float64)
    return composite_coordinates(flat[:, :-1], flat[:, -1], scale)


def _mixture_parameters(kernels):
    """(means, prec_chol, weights, covariance_type) from kernels or a fitted mixture."""
    if hasattr(kernels, "means_") and hasattr(kernels, "weights_"):
        cov_type = getattr(kernels, "covariance_type", "full")
        if cov_type not in COVARIANCE_TYPES:
            raise ValueError(f"unsupported covariance_type {cov_type!r} in the fitted mixture")
        prec = getattr(kernels, "precisions_cholesky_", None)
        # the kernels read the upper triangle only: a lower-triangular factor of the same
        # precision (another library's, or scikit-learn's from precisions_init) is rebuilt
        if prec is None or (cov_type in ("full", "tied") and np.tril(np.asarray(prec), -1).any()):
            prec = precision_cholesky(kernels.covariances_, cov_type)
        return (np.asarray(kernels.means_, dtype=np.float64), np.asarray(prec, dtype=np.float64),
                np.asarray(kernels.weights_, dtype=np.float64), cov_type)
    if isinstance(kernels, (str, bytes)) or not hasattr(kernels, "__len__"):
        raise TypeError("kernels must be a sequence of (mean, covariance, weight) or a "
                        "fitted mixture")
    if len(kernels) == 0:
        raise ValueError("kernels is empty: give at least one (mean, covariance, weight)")
    triples = [_kernel_triple(i, k) for i, k in enumerate(kernels)]
    n_features = triples[0][0].size
    if n_features == 0:
        raise ValueError("kernel 0 mean is empty")
    means, covs, weights, any_full = [], [], [], False
    for i, (mean, cov, weight) in enumerate(triples):
        if mean.size != n_features:
            raise ValueError(f"kernel {i} mean has {mean.size} values, kernel 0 has {n_features}")
        if cov.size == n_features and (n_features == 1 or cov.shape != (n_features, n_features)):
            cov = cov.ravel()  # diagonal given as (D,), (1, D) or (D, 1)
        elif cov.shape == (n_features, n_features):
            any_full = True
        else:
            raise ValueError(
                f"kernel {i} covariance has shape {cov.shape}; for {n_features}-D means it must "
                f"be ({n_features},) variances or a ({n_features}, {n_features}) matrix")
        means.append(mean)
        covs.append(cov)
        weights.append(weight)
    if not sum(weights) > 0:
        raise ValueError("kernel weights are all zero")
    if any_full:
        covs = [np.diag(c) if c.ndim == 1 else c for c in covs]
        cov_type = "full"
    else:
        cov_type = "diag"
    cov = np.stack(covs)
    if cov_type == "diag" and not (cov > 0).all():
        bad = int(np.argmax((cov <= 0).any(axis=1)))
        raise ValueError(f"kernel {bad} covariance has a zero or negative variance")
    prec = precision_cholesky(cov, cov_type, name="kernel")
    return np.stack(means), prec, np.asarray(weights), cov_type


def compute_densities(image: ArrayLike, kernels: Iterable[tuple[Any, Any, Any]] | Any, *,
                      log: bool = False, normalize: bool = True,
                      dtype: DTypeLike = np.float64, out_dtype: DTypeLike = np.float64,
                      n_threads: int | None = None) -> np.ndarray:
    """Weighted sum of Gaussian densities at every pixel.

    For every pixel x, ``sum_k w_k N(x; mu_k, Sigma_k)``, computed in one parallel
    pass with log-sum-exp; it allocates nothing of size pixels x kernels.

    Parameters
    ----------
    image : array_like, shape (H, W, D), (N, D), or (H, W) / (N,) when D = 1
        Pixels with their D channels on the last axis; any real dtype and layout.
    kernels : sequence of (mean, covariance, weight), or a fitted mixture
        mean is (D,), (1, D) or (D, 1); covariance is D variances ((D,), (1, D)
        or (D, 1)) or a (D, D) symmetric positive-definite matrix; weight is a
        non-negative number. :class:`Kernel` is a namedtuple of that shape. A
        fitted :class:`~emcore.GaussianMixture` (or any object with ``means_``,
        ``covariances_``, ``weights_``) is accepted too.
    log : bool, default False
        Return the natural log of the density, finite where the density itself
        underflows to 0.
    normalize : bool, default True
        Include the constant (2 pi)^(-D/2). The determinant factor
        |Sigma|^(-1/2) is always included.
    dtype : {numpy.float64, numpy.float32}, default float64
        Precision of the computation.
    out_dtype : {numpy.float64, numpy.float32}, default float64
        Type of the result (float32 halves the memory of a large output; values
        are computed in ``dtype`` and rounded once).
    n_threads : int or None
        OpenMP threads; None means OMP_NUM_THREADS if set, else all usable cores.

    Returns
    -------
    densities : numpy.ndarray of out_dtype
        The image's shape without its channel axis; for a Dask array, a lazy Dask
        array of the same (chunked like the image).

    Notes
    -----
    A pixel's density depends on its colour alone, and 8-bit photos repeat
    colours (a 0.87 MP photo may hold 60,000). For 8-bit grey or RGB images each
    distinct colour is scored once and the values are spread back to the pixels
    whenever a cost model of the kernel count, the thread count and (after one
    pass that counts the colours) the colour count says it pays. The values are
    bitwise those of scoring every pixel; the extra memory is at most 11 bytes per
    distinct colour. Other dtypes (float images included) score every pixel. On
    noise, with nearly a colour per pixel, the count is wasted time (up to about
    half as much again with 8-16 kernels).

    Examples
    --------
    >>> import numpy as np
    >>> from emcore import Kernel, compute_densities
    >>> img = np.zeros((2, 2, 3), dtype=np.uint8)
    >>> k = Kernel(mean=[0, 0, 0], covariance=[1, 1, 1], weight=1.0)
    >>> d = compute_densities(img, [k])  # (2, 2): N(0; 0, I) at every pixel
    >>> bool(np.allclose(d, (2 * np.pi) ** -1.5, rtol=1e-15, atol=0))
    True
    """
    log, normalize = check_bool(log, "log"), check_bool(normalize, "normalize")
    means, prec_chol, weights, cov_type = _mixture_parameters(kernels)
    n_features = means.shape[1]
    space = _input_space(kernels)
    if is_dask_array(image) and space != "rgb":
        raise ValueError(f"a model fitted in {space} scores in-memory images only; compute "
                         "the Dask image first")
    if is_dask_array(image):  # lazy, a chunk at a time (one thread per task by default)
        return _dask_densities(image, kernels, n_features, log=log, normalize=normalize,
                               dtype=dtype, out_dtype=out_dtype,
                               n_threads=1 if n_threads is None else n_threads)
    pixels = as_real_array(image, "image")
    spatial = pixels.shape[:-1] if _has_channel_axis(pixels.shape, n_features) else pixels.shape
    if pixels.size == 0:
        raise ValueError(f"image is empty (shape {pixels.shape})")
    check_finite(pixels, "image")
    dtype, out_dtype = np.dtype(dtype), np.dtype(out_dtype)
    for name, value in (("dtype", dtype), ("out_dtype", out_dtype)):
        if value not in (np.float32, np.float64):
            raise ValueError(f"{name} must be float32 or float64, got {value}")
    flat = pixels_in_model_space(pixels.reshape(-1, n_features), space, n_threads)
    kernel = kernel_arrays(means, prec_chol, weights, cov_type, dtype, normalize=normalize)
    n_threads = resolve_n_threads(n_threads, work_of(flat, len(kernel[0])))
    out = np.empty(flat.shape[0], dtype=out_dtype)
    colors = _repeated_colors(flat, len(means), n_threads)
    if colors is None:
        _score_rows(flat, kernel, dtype, log, out, n_threads)
    else:  # the same values: a pixel's density depends on its colour alone
        distinct, spread = colors
        values = np.empty(len(distinct), dtype=out_dtype)
        _score_rows(distinct, kernel, dtype, log, values, n_threads)
        spread(values, out)
    return out.reshape(spatial)


def _score_rows(rows, kernel, dtype, log, out, n_threads):
    """The mixture density (or its log) of every row of an (N, D) array, into out.

    The rows are converted to the compute dtype slab by slab: memory stays at the
    output plus one slab."""
    k_means, k_prec, k_const, full = kernel
    for start in range(0, rows.shape[0], SLAB_PIXELS):
        with np.errstate(over="ignore"):  # reported just below
            X = np.ascontiguousarray(rows[start:start + SLAB_PIXELS], dtype=dtype)
        if rows.dtype.kind == "f" and not np.isfinite(X).all():  # integers always fit
            raise ValueError("image has values too large for float32; use dtype=np.float64")
        part = out[start:start + SLAB_PIXELS]
        slab = part if out.dtype == np.float64 else np.empty(len(part))  # kernels write f64
        _kernels.log_mixture_density(X, k_means, k_prec, k_const, full, not log, slab,
                                     n_threads)
        if slab is not part:
            part[...] = slab
        del X, slab  # before the next slab is allocated


def _repeated_colors(flat, n_kernels, n_threads):
    """(distinct colours, spread) for 8-bit grey or RGB pixels when scoring each
    distinct colour once and spreading the values back to the pixels
    (``spread(values, out)``) should be the faster road; None otherwise.

    Both roads give the same values, so a wrong guess costs time only. The costs
    (``EVALUATION_COSTS``, in evaluations of one kernel at one pixel, measured on
    0.3-4 MP images on one thread): marking RGB pixels' colours costs ``mark`` per
    pixel and ``bitmap`` once (the walks over the 2**18-word bitmap; all wasted
    when the answer is no), spreading ``spread`` per pixel plus
    ``spread_per_mi`` per 2**20 colours (the values fall out of cache). Scoring
    speeds up T times on T threads, marking and spreading about (1 + T) / 2 times.
    """
    costs = EVALUATION_COSTS
    n_pixels = flat.shape[0]
    if flat.dtype != np.uint8 or flat.shape[1] not in (1, 3):
        return None
    scoring_gain, spreading_gain = n_threads, (1 + n_threads) / 2

    def worth_it(n_colors, mark):  # is scoring N - M fewer rows worth mark + spread?
        spread = costs["spread"] + costs["spread_per_mi"] * n_colors / 2**20
        saved = (n_pixels - n_colors) * n_kernels / scoring_gain
        return saved > n_pixels * (mark + spread) / spreading_gain

    if flat.shape[1] == 1:  # all 256 levels: nothing to mark
        if not worth_it(256, 0):
            return None
        levels = flat[:, 0]
        return (np.arange(256, dtype=np.uint8)[:, None],
                lambda values, out: np.take(values, levels, out=out))
    # even if every pixel had the same colour
    if not worth_it(0, costs["mark"] + costs["bitmap"] / n_pixels):
        return None
    pixels = np.ascontiguousarray(flat)
    distinct, present = _kernels.distinct_rgb8(pixels, n_threads)
    if not worth_it(len(distinct), 0):  # the marking is done: only spreading is left
        return None
    return distinct, lambda values, out: _kernels.spread_rgb8(pixels, present, values, out,
                                                              n_threads)


def _has_channel_axis(shape, n_features):
    """True when an image of this shape holds n_features channels on its last axis,
    False for a grayscale (H, W) or (N,) with 1-channel kernels; ValueError otherwise."""
    if len(shape) in (2, 3) and shape[-1] == n_features:
        return True
    if n_features == 1 and len(shape) in (1, 2):
        return False
    raise ValueError(
        f"image has shape {tuple(shape)}; for {n_features}-channel kernels it must be "
        f"(H, W, {n_features}) or (N, {n_features})"
        + (" or a 2-D grayscale image" if n_features == 1 else ""))


def _dask_densities(image, kernels, n_features, **options):
    """compute_densities mapped over a Dask image's chunks (the channel axis whole)."""
    channels = _has_channel_axis(image.shape, n_features)
    function = functools.partial(compute_densities, kernels=kernels, **options)
    out_dtype = np.dtype(options["out_dtype"])
    if not channels:
        return image.map_blocks(function, dtype=out_dtype)
    image = image.rechunk({image.ndim - 1: -1})
    return image.map_blocks(function, dtype=out_dtype, drop_axis=image.ndim - 1)
