"""The image pipeline every image-level entry point uses (EM, quantize, k_sweep, the CLI).

    image -> samples (unique colours weighted by their counts, optionally in OKLab)
          -> model (KMeans or GaussianMixture, fitted on the samples)
          -> labels (each sample's segment, mapped back to every pixel)
          -> palette (each segment's mean colour, back in sRGB, rounded to the image dtype)
          -> image (pixels repainted, or Floyd-Steinberg dithered onto the palette)

Fitting the distinct colours weighted by their counts gives the same model as
fitting every pixel (weights count as copies), at a fraction of the cost.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Union

import numpy as np

from emcore import _colors, _dask, summaries
from emcore._dask import is_dask_array
from emcore._threads import resolve_n_threads, work_of
from emcore._validation import (check_bool, check_choice, check_finite, check_float,
                                check_int, check_labels, check_spread, value_range)
from emcore.colorspace import (COLOR_SPACES, full_scale, oklab_to_srgb, samples_to_oklab,
                               srgb_to_linear)
from emcore.image import (distinct_colors, entry_order, gather, image_format, indexable,
                          read_picture, reordered, rgb8_colors, rgb8_labels, save_image,
                          split_alpha)
from emcore._sources import InMemorySamples
from emcore.kmeans import KMeans, absolute_tolerance, kmeans_plusplus, lattice_lloyd
from emcore.mixture import GaussianMixture
from emcore.spatial import SpatialGaussianMixture
from emcore.transparency import (composite_coordinates, constrained_assign, constrained_lloyd,
                                 integer_entries, integer_polish, opaque_entry_mask)

METHODS = ("kmeans", "gmm")
#: 'segment': each segment is painted with the mean colour of its pixels (the colour
#: that minimises its squared error); 'component': with the fitted mean or centre.
REPAINTS = ("segment", "component")
#: The mixture at the image level: one variance per component gives the best picture of
#: the covariance types (README, "Choosing the defaults"), as in the Rust module emcore
#: replaces; GaussianMixture itself keeps scikit-learn's 'full'.
IMAGE_COVARIANCE = "spherical"
#: k-means at the image level steps 1.8 times the way to the means (KMeans'
#: over_relaxation): on photographs and crops it converged in 10-30% fewer passes
#: and at a lower error (README, "How close to the optimum"); KMeans itself keeps
#: Lloyd's 1, scikit-learn's results.
IMAGE_OVER_RELAXATION = 1.8

#: What the pipeline fits
Model = Union[KMeans, GaussianMixture, SpatialGaussianMixture]


class ImageSamples:
    """An image split into the samples a model is fitted to, and the way back to pixels.

    Parameters
    ----------
    image : str, path, binary file, PIL image, Image, array, or Dask array (H, W, C) / (H, W)
        A Dask image is fitted on its distinct colours (merged from every chunk;
        with alpha, integers only); its labels and repainted image are lazy.
    unique_colors : bool, default True
        Fit the distinct colours weighted by their counts rather than every pixel.
    color_space : {'rgb', 'oklab'}, default 'rgb'
        Where the model is fitted. 'oklab' needs 3 channels of 8 or 16 bits.
    n_threads : int or None
    frames : int, default 1
        The image is this many frames of equal height stacked one above the other
        (emcore.frames.stacked): a spatial fit then couples each pixel with its
        neighbours in its own frame only.

    Attributes
    ----------
    samples : ndarray (M, C)
        The distinct colours (or every pixel), in the image dtype.
    weights : ndarray (M,) float64 or None
        Pixels per distinct colour; None when every pixel is a sample.
    fit_samples : ndarray (M, C) float32 or float64
        The samples in the space the model is fitted in.
    n_distinct : int
        Distinct colours in the image.
    """

    samples: np.ndarray
    weights: np.ndarray | None
    # each pixel's index into samples (or a lazy Dask array); None where the samples are
    # the pixels, and for in-memory 8-bit RGB, whose pixels' colours are looked up again
    # in code_bitmap (image.rgb8_colors)
    inverse: np.ndarray | None
    code_bitmap: np.ndarray | None
    color: np.ndarray | None
    alpha: np.ndarray | None

    def __init__(self, image, *, unique_colors: bool = True, color_space: str = "rgb",
                 n_threads: int | None = None, frames: int = 1):
        self.color_space = check_choice(color_space, "color_space", COLOR_SPACES)
        unique_colors = check_bool(unique_colors, "unique_colors")
        self.frames = check_int(frames, "frames", minimum=1)
        self.n_threads = n_threads
        self.code_bitmap = None
        if is_dask_array(image):
            self._from_dask(image, unique_colors, n_threads)
            return
        picture = read_picture(image)
        arr = picture.pixels
        self.icc_profile, self.metadata = picture.icc_profile, picture.metadata
        self.dtype = arr.dtype
        self.grayscale = arr.ndim == 2
        self.color, self.alpha = split_alpha(arr)
        self.shape = self.color.shape[:2]
        if self.shape[0] % self.frames:
            raise ValueError(f"an image of {self.shape[0]} rows cannot be {self.frames} "
                             "stacked frames of equal height")
        # integer images with alpha: colour and alpha fitted together (emcore/transparency.py)
        self.transparent = self.alpha is not None and arr.dtype.kind in "ui"
        self.has_transparent = False  # a fully transparent pixel, given palette entry 0
        if self.transparent:
            self._with_alpha(unique_colors)
            return
        flat = self.color.reshape(-1, self.color.shape[2])
        if unique_colors and flat.dtype == np.uint8 and flat.shape[1] == 3:
            # no inverse: to_pixels looks each pixel's colour up again in the bitmap
            colors, counts, self.code_bitmap = rgb8_colors(flat, n_threads)
            inverse = None
        else:
            colors, counts, inverse = distinct_colors(flat, z_order=True, n_threads=n_threads)
        self.n_distinct = len(colors)
        if unique_colors:
            self.samples, self.weights, self.inverse = colors, counts.astype(np.float64), inverse
        else:
            self.samples, self.weights, self.inverse = flat, None, None
        self._fit_space(n_threads)

    def _with_alpha(self, unique_colors: bool) -> None:
        """The visible pixels' distinct (colour, alpha) values, fitted in composite
        coordinates; every fully transparent pixel goes to palette entry 0."""
        assert self.color is not None and self.alpha is not None
        n_channels = self.color.shape[2]
        values = np.concatenate([self.color, self.alpha[:, :, None]], axis=2)
        values = values.reshape(-1, n_channels + 1)
        visible = values[:, -1] > 0
        if not visible.any():  # nothing shows: one fully transparent value stands for
            values = np.zeros_like(values)  # every pixel (the colour under alpha 0 is moot)
            visible[:] = True
        self.has_transparent = not bool(visible.all())
        shown = values[visible] if self.has_transparent else values
        colors, counts, inverse = distinct_colors(shown, z_order=True)
        self.n_distinct = len(colors) + self.has_transparent
        if unique_colors:
            self.samples, self.weights = colors, counts.astype(np.float64)
        else:
            self.samples, self.weights = shown, None
            inverse = np.arange(len(shown), dtype=np.int32)
        # the pixels' index into [transparent entry] + samples
        self.inverse = np.zeros(len(values), dtype=np.int32)
        self.inverse[visible] = inverse + self.has_transparent
        self._check_alpha_space()
        self._composite_fit_space()

    def _check_alpha_space(self) -> None:
        if self.color_space != "rgb":
            raise ValueError("an image with alpha is fitted on colour and alpha together "
                             "(composite coordinates); color_space must be 'rgb'")

    def _composite_fit_space(self) -> None:
        """fit_samples of (colour, alpha) samples: their composite coordinates."""
        self.fit_samples = composite_coordinates(
            self.samples[:, :-1], self.samples[:, -1], full_scale(self.dtype)).astype(np.float32)

    def model_k(self, k: int) -> int:
        """How many clusters the model needs for a palette of k entries (one fewer when
        a fully transparent entry is reserved)."""
        return max(k - int(self.has_transparent), 1)

    def _from_dask(self, image, unique_colors: bool, n_threads: int | None) -> None:
        """A Dask image (larger than memory): its distinct colours and counts are merged
        from every chunk's and fitted in memory; labels and image stay lazy."""
        if not unique_colors:
            raise ValueError("a Dask image is fitted on its distinct colours "
                             "(unique_colors=True); to fit every pixel, pass the pixel rows "
                             "to KMeans.fit or GaussianMixture.fit, which take Dask arrays")
        if image.dtype.kind in "iu" and image.dtype not in (np.uint8, np.uint16):
            # in memory these come as the 8 or 16-bit image their values fit (read_picture);
            # a lazy image's values are not known before a pass over every chunk
            raise TypeError(f"a Dask image of integers must be uint8 or uint16 (full "
                            f"intensity 255 or 65535), got {image.dtype}: cast it first, "
                            "e.g. image.astype(np.uint8)")
        rows = _dask.image_rows(image)
        self.icc_profile, self.dtype, self.alpha = None, image.dtype, None
        self.metadata = None
        self.grayscale = image.ndim == 2
        self.color = None
        self.shape = image.shape[:2]
        # with alpha, as _with_alpha does in memory: every fully transparent pixel made
        # one all-zero value, first in Z-order, which is then palette entry 0
        self.transparent = rows.shape[1] in (2, 4)
        if self.transparent:
            if image.dtype.kind not in "ui":
                raise ValueError("a Dask image with alpha must hold integers (8 or 16 bits)")
            self._check_alpha_space()  # before the pass over every chunk
            rows = _dask.transparent_as_zero(rows)
        colors, counts, inverse = distinct_colors(rows, z_order=True)
        check_finite(colors, "image")  # as read_picture checks an image in memory
        # entry 0 is reserved for transparent pixels next to visible ones (an image with
        # nothing visible is its one all-zero value, as in memory)
        self.has_transparent = bool(self.transparent and colors[0, -1] == 0 and len(colors) > 1)
        if self.has_transparent:  # the inverse's 0 is now that entry, the rest shift by one
            colors, counts = colors[1:], counts[1:]
        self.n_distinct = len(colors) + self.has_transparent
        self.samples, self.weights, self.inverse = colors, counts.astype(np.float64), inverse
        if self.transparent:
            self._composite_fit_space()
        else:
            self._fit_space(n_threads)

    def _fit_space(self, n_threads: int | None) -> None:
        if self.color_space == "oklab":
            self.fit_samples = samples_to_oklab(self.samples, full_scale(self.dtype), n_threads)
        else:  # converted once here, not again in fit and predict
            dtype = np.float64 if self.samples.dtype == np.float64 else np.float32
            self.fit_samples = np.ascontiguousarray(self.samples, dtype=dtype)
        if self.samples.dtype.itemsize > 2:  # refused here, in the image's own words
            # (float and wide integer images: 8 and 16-bit values cannot overflow)
            low, high = value_range(self.fit_samples)
            check_spread(low, high, self.fit_samples.dtype, name="the image")

    def effective_k(self, k: int, name: str) -> int:
        """k, or the number of distinct colours when k is larger (every colour kept: lossless)."""
        k = check_int(k, name, minimum=1)
        if k > self.n_distinct:
            warnings.warn(f"{name}={k} is more than the {self.n_distinct} distinct colours in "
                          f"the image: keeping every colour (lossless)", UserWarning,
                          stacklevel=3)
            return self.n_distinct
        return k

    def to_pixels(self, sample_labels: np.ndarray, dtype: type = np.int32) -> np.ndarray:
        """The (H, W) map of each pixel's segment, from each sample's; int32, or
        ``dtype`` (uint8: the indices of an indexed file, when every label fits)."""
        sample_labels = check_labels(sample_labels, (len(self.samples),),
                                     int(np.iinfo(dtype).max) + 1, "sample_labels")
        if self.has_transparent:  # entry 0: the transparent pixels
            sample_labels = np.concatenate([np.zeros(1, dtype=np.int32), sample_labels])
        sample_labels = sample_labels.astype(dtype, copy=False)
        if is_dask_array(self.inverse):
            return _dask.take(sample_labels, self.inverse).reshape(self.shape)
        if self.inverse is not None:
            return gather(sample_labels, self.inverse).reshape(self.shape)
        if self.code_bitmap is None:  # the samples are the pixels
            return sample_labels.reshape(self.shape)
        assert self.color is not None  # 8-bit RGB, its inverse not kept (__init__)
        return rgb8_labels(self.color.reshape(-1, 3), self.code_bitmap, sample_labels,
                           self.n_threads).reshape(self.shape)

    def segment_means(self, sample_labels: np.ndarray, n_segments: int,
                      fallback: np.ndarray) -> np.ndarray:
        """(K, C) float64 weighted mean of each segment's fit samples; ``fallback`` rows
        for segments that hold no pixel."""
        sample_labels = check_labels(sample_labels, (len(self.samples),), n_segments,
                                     "sample_labels")
        stats, _ = summaries.merge([summaries.labelled_sums(
            np.ascontiguousarray(self.fit_samples), np.ascontiguousarray(sample_labels),
            n_segments, self.weights, check_weights=False)])
        mass, sums = stats[:, 0], stats[:, 1:]
        means = np.array(fallback, dtype=np.float64, copy=True)
        filled = mass > 0
        means[filled] = sums[filled] / mass[filled, None]
        return means

    @property
    def input_space(self) -> str:
        """What fit_samples are: 'rgb' (the pixel values), 'oklab', or 'composite' (colour
        and alpha in composite coordinates, emcore/transparency.py)."""
        return "composite" if self.transparent else self.color_space

    def pixel_grid(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(H, W, C) fit-space values of every pixel and the mask of those fitted (None:
        all), for a spatial model; the samples must be the pixels (unique_colors=False).
        Stacked frames come as a volume (frames, H / frames, W, C)."""
        if self.weights is not None or is_dask_array(self.inverse) or self.color is None:
            raise ValueError("a spatial fit needs every pixel of an in-memory image "
                             "(unique_colors=False)")
        height, width = self.shape
        grid = (height, width) if self.frames == 1 else (
            self.frames, height // self.frames, width)
        if not self.has_transparent:
            return self.fit_samples.reshape(grid + (-1,)), None
        assert self.inverse is not None  # set with has_transparent
        shown = self.inverse.reshape(grid) > 0  # entry 0: the transparent pixels
        values = np.zeros(grid + (self.fit_samples.shape[1],), self.fit_samples.dtype)
        values[shown] = self.fit_samples
        return values, shown

    def grid_to_samples(self, pixel_labels: np.ndarray) -> np.ndarray:
        """Each sample's label from a spatial model's (H, W) labels (see pixel_grid)."""
        flat = np.asarray(pixel_labels).reshape(-1)
        if not self.has_transparent:
            return flat
        assert self.inverse is not None  # set with has_transparent
        return flat[self.inverse > 0]

    def palette_colors(self, fit_palette: np.ndarray) -> np.ndarray:
        """Palette rows from fit space to the image's colours, clipped and rounded to its dtype."""
        colors = np.asarray(fit_palette, dtype=np.float64)
        if self.color_space == "oklab":
            colors = oklab_to_srgb(colors, full_scale(self.dtype))
        if self.dtype.kind in "ui":
            info = np.iinfo(self.dtype)
            colors = np.clip(np.rint(colors), info.min, info.max)
        return colors.astype(self.dtype)

    @property
    def has_lattice(self) -> bool:
        """Whether a palette of the image's integers can be fitted exactly: opaque 8- or
        16-bit samples fitted as they are (not in OKLab)."""
        return (self.color_space == "rgb" and not self.transparent
                and self.dtype.kind in "ui" and self.dtype.itemsize <= 2)

    def lattice_palette(self, centres: np.ndarray, step: int,
                        n_threads: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(palette in the image dtype, each sample's entry): k-means centres moved by
        Lloyd's iterations among multiples of ``step`` (emcore.kmeans.lattice_lloyd),
        starting from the centres rounded, so the squared error is at most theirs."""
        info = np.iinfo(self.dtype)
        # float32 distances are exact for 8-bit values only
        X = self.fit_samples if self.dtype.itemsize == 1 else self.samples.astype(np.float64)
        w = self.weights if self.weights is not None else np.ones(len(X))
        threads = resolve_n_threads(n_threads, work_of(X, len(centres)))
        palette, labels, _ = lattice_lloyd(np.ascontiguousarray(X), w, centres, step,
                                           info.min, info.max, threads)
        return palette.astype(self.dtype), labels

    def dither(self, palette: np.ndarray, strength: float, linear: bool = False) -> np.ndarray:
        """(H, W) int32 palette index of every pixel by Floyd-Steinberg error diffusion.

        ``palette`` holds a row per entry with the image's colour channels (and, for
        an image with alpha, the alpha after them). ``linear``: diffuse the error in
        linear light (8 and 16-bit opaque images), the nearest entry still chosen in
        sRGB; measured no better than diffusing in sRGB on the photographs and worse
        on the dark ones (README, "Dithering"), so not the default.
        """
        if self.color is None:
            raise ValueError("dithering needs the whole image in memory: not available for "
                             "a Dask image; use dither=0")
        colors = np.asarray(palette, dtype=np.float64)
        n_channels = self.color.shape[2] + self.transparent
        if colors.ndim != 2 or colors.shape[1] != n_channels or len(colors) == 0:
            raise ValueError(f"the palette must have one row per colour and {n_channels} "
                             f"channel(s) like the image, got shape {colors.shape}")
        if not np.isfinite(colors).all():
            raise ValueError("the palette holds NaN or infinite values")
        if self.transparent:
            return self._dither_with_alpha(colors, strength)
        pixels = self.color
        if linear and self.dtype in (np.uint8, np.uint16):
            scale = full_scale(self.dtype)
            to_linear = srgb_to_linear(np.arange(scale + 1) / scale)
            return _diffuse(to_linear[pixels], colors / scale, strength, 0.0, 1.0,
                            diffused=srgb_to_linear(np.clip(colors / scale, 0, 1)))
        if pixels.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
            pixels = pixels.astype(np.float64)
        pixels = np.ascontiguousarray(pixels)
        if self.dtype.kind in "ui":
            low, high = float(np.iinfo(self.dtype).min), float(np.iinfo(self.dtype).max)
        else:
            low, high = float(pixels.min()), float(pixels.max())
        return _diffuse(pixels, colors, strength, low, high)

    def _dither_with_alpha(self, palette: np.ndarray, strength: float) -> np.ndarray:
        """Error diffusion in composite coordinates; then every transparent pixel takes
        a transparent entry and every opaque pixel an opaque one (its nearest)."""
        assert self.color is not None and self.alpha is not None
        scale = full_scale(self.dtype)
        n_channels = self.color.shape[2]
        flat = self.color.reshape(-1, n_channels)
        alpha = self.alpha.reshape(-1)
        y = composite_coordinates(flat, alpha, scale)
        entries = composite_coordinates(palette[:, :-1], palette[:, -1], scale)
        # the coordinates' range: colour -s/2..s/2, alpha 0..s sqrt(C)/2
        labels = _diffuse(y.reshape(self.shape + (n_channels + 1,)), entries, strength,
                          -scale / 2, scale * np.sqrt(n_channels) / 2).reshape(-1)
        entry_alpha = palette[:, -1]
        transparent = alpha == 0
        if transparent.any():
            clear = np.flatnonzero(entry_alpha == 0)
            labels[transparent] = clear[0] if len(clear) else np.argmin(entry_alpha)
        opaque = alpha == scale
        wrong = opaque & (entry_alpha[labels] != scale)
        if wrong.any() and (entry_alpha == scale).any():
            fixed, _ = constrained_assign(y[wrong], np.ones(int(wrong.sum())),
                                          np.ones(int(wrong.sum()), dtype=bool), entries,
                                          entry_alpha == scale)
            labels[wrong] = fixed
        return labels.reshape(self.shape)

    def paint(self, labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
        """The image with each pixel replaced by its palette colour (alpha kept)."""
        palette = self._painted_palette(palette)
        if is_dask_array(labels):
            out = _dask.take(palette, labels)
            return out[:, :, 0] if self.grayscale else out
        return self.paint_rows(check_labels(labels, self.shape, len(palette), dtype=None),
                               palette)

    def paint_rows(self, labels: np.ndarray, palette: np.ndarray, start: int = 0
                   ) -> np.ndarray:
        """Rows ``start`` .. ``start + len(labels)`` of :meth:`paint`'s image, from
        those rows' labels (in range: not checked again)."""
        colors = gather(self._painted_palette(palette), labels)
        if self.transparent:
            return colors  # the palette holds the alpha
        if self.alpha is not None:
            alpha = self.alpha[start:start + len(labels)]
            return np.concatenate([colors, alpha[:, :, None]], axis=2)
        return colors[:, :, 0] if self.grayscale else colors

    def painted_stand_in(self, palette: np.ndarray) -> np.ndarray:
        """A read-only array of :meth:`paint`'s shape and dtype that takes no memory
        (the first row painted with the first entry, repeated): for a writer that
        reads only those, an indexed file's with the indices apart."""
        row = self.paint_rows(np.zeros((1, self.shape[1]), dtype=np.intp), palette)
        return np.broadcast_to(row, (self.shape[0],) + row.shape[1:])

    def _painted_palette(self, palette: np.ndarray) -> np.ndarray:
        palette = np.asarray(palette)
        return palette if palette.dtype.kind in "ui" else palette.astype(self.dtype)


def _diffuse(pixels: np.ndarray, colors: np.ndarray, strength: float, low: float,
             high: float, diffused: np.ndarray | None = None) -> np.ndarray:
    """The Floyd-Steinberg kernel's (H, W) labels for (H, W, C) pixels and (K, C) colours.

    With ``diffused`` (the colours in linear light) the pixels are linear light in
    [0, 1], the error is diffused there, and the nearest colour is searched among
    ``colors`` (sRGB in [0, 1]) after encoding the pixel's."""
    gap, order = nearest_search_tables(colors)
    labels = np.empty(pixels.shape[:2], dtype=np.int32)
    colors = np.ascontiguousarray(colors, dtype=np.float64)
    _colors.floyd_steinberg(np.ascontiguousarray(pixels), colors,
                            colors if diffused is None else np.ascontiguousarray(diffused),
                            gap, order, float(strength), low, high, diffused is not None,
                            labels)
    return labels


def nearest_search_tables(palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the dithering kernel's nearest-colour search: ``order[g]`` lists colour g, then
    the others nearest g first (lowest index on ties); ``gap[g, j]`` is the distance from g
    to ``order[g, j]``."""
    palette = np.asarray(palette, dtype=np.float64)
    dist = np.sqrt(((palette[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2))
    ranked = dist.copy()
    np.fill_diagonal(ranked, -1.0)  # each colour first in its own row
    order = np.argsort(ranked, axis=1, kind="stable").astype(np.int32)
    gap = np.take_along_axis(dist, order, axis=1)
    return np.ascontiguousarray(gap), np.ascontiguousarray(order)


#: k-means++ at the image level seeds on cells of colours sharing the top
#: SEEDING_CELL_BITS bits of each channel (a cell 4 levels wide in 8 bits), merged into
#: their weighted mean; a cell holding more than 1 / (HEAVY_CELL_SHARE x K) of the
#: weight keeps its colours apart (the dense places, where several centres may
#: belong). On photographs and crops the final error was that of seeding on every
#: colour, within the seeds' spread, from 2-7x fewer points (README, "Many files").
SEEDING_CELL_BITS = 6
HEAVY_CELL_SHARE = 4
#: Cells are used when they are at most this share of the colours (else they save
#: little) and at least this many a cluster (else the start would be a coarse one)
SEEDING_CELL_GAIN = 0.8
SEEDING_CELLS_PER_CLUSTER = 4


def seeding_cells(colors: np.ndarray, fit_samples: np.ndarray, weights: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, weights) to seed k-means++ on in place of Z-ordered distinct integer
    ``colors`` (fitted as ``fit_samples`` with ``weights``): each cell's weighted mean
    in the fit space, and its weight; a heavy cell's colours as they are. None when
    that would not make fewer points by SEEDING_CELL_GAIN, or fewer than
    SEEDING_CELLS_PER_CLUSTER a cluster, or the colours are not integers."""
    if colors.dtype not in (np.uint8, np.uint16) or len(colors) < 2:
        return None
    colors = np.ascontiguousarray(colors)
    values = np.ascontiguousarray(fit_samples)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if values.dtype not in (np.float32, np.float64) or values.ndim != 2 or not (
            len(values) == len(weights) == len(colors)):
        raise ValueError(f"seeding_cells needs (M, D) float fit samples and (M,) weights for "
                         f"{len(colors)} colours, got {values.shape} and {weights.shape}")
    means = np.empty_like(values)
    cell_weights = np.empty(len(colors))
    n = _colors.colour_cells(colors, values, weights, 8 * colors.itemsize - SEEDING_CELL_BITS,
                             float(weights.sum()) / (HEAVY_CELL_SHARE * k), means, cell_weights)
    if not SEEDING_CELLS_PER_CLUSTER * k <= n <= SEEDING_CELL_GAIN * len(colors):
        return None
    # copies: the model keeps its start (CellSeeding), and a view would keep all M rows
    return means[:n].copy(), cell_weights[:n].copy()


class CellSeeding:
    """A KMeans ``init``: k-means++ on :func:`seeding_cells`' values and weights. A
    model file does not keep it (a callable): a loaded model's ``init`` is the default."""

    def __init__(self, values: np.ndarray, weights: np.ndarray, n_threads: int | None):
        self.values, self.weights, self.n_threads = values, weights, n_threads

    def __call__(self, X: np.ndarray, k: int, random_state: np.random.RandomState
                 ) -> np.ndarray:
        # the threads for passes over the cells for k clusters, as KMeans sizes its own
        threads = resolve_n_threads(self.n_threads, work_of(self.values, k))
        return kmeans_plusplus(self.values, self.weights, k, random_state, threads)

    def __repr__(self) -> str:
        return f"CellSeeding({len(self.values)} cells)"


#: What a spatial fit takes of the options of fit_model
SPATIAL_OPTIONS = ("covariance_type", "reg_covar", "max_iter", "n_init", "init_params",
                   "random_state", "n_threads")


def fit_model(samples: ImageSamples, k: int, method: str = "kmeans", smoothing: float = 0.0,
              **options) -> Model:
    """A KMeans or GaussianMixture of k segments fitted to the samples (weighted by counts),
    or, with ``smoothing`` > 0, a SpatialGaussianMixture of that beta fitted to the pixel
    grid (``method`` is then ignored; the samples must be every pixel)."""
    check_choice(method, "method", METHODS)
    smoothing = check_float(smoothing, "smoothing", minimum=0)
    model: Model
    k = samples.model_k(k)
    if smoothing > 0:
        spatial = {name: options[name] for name in SPATIAL_OPTIONS if name in options}
        spatial.setdefault("covariance_type", IMAGE_COVARIANCE)
        if samples.frames > 1:  # frames as a volume whose slices do not touch
            spatial.update(spatial_dims=3, spacing=(np.inf, 1.0, 1.0))
        model = SpatialGaussianMixture(k, beta=smoothing, **spatial)
    elif method == "kmeans":
        options.setdefault("over_relaxation", IMAGE_OVER_RELAXATION)
        cells = None
        if "init" not in options and samples.weights is not None:
            cells = seeding_cells(samples.samples, samples.fit_samples, samples.weights, k)
        if cells is not None:
            options["init"] = CellSeeding(*cells, options.get("n_threads"))
            if options.get("n_init", "auto") == "auto":  # k-means++'s one start
                options["n_init"] = 1
        model = KMeans(k, **options)
    else:
        options.setdefault("covariance_type", IMAGE_COVARIANCE)
        model = GaussianMixture(k, **options)
    return fit_to_samples(model, samples)


def fit_to_samples(model: Model, samples: ImageSamples) -> Model:
    """Fit ``model`` to an image's samples: a spatial mixture to the pixel grid (masked
    where pixels are transparent), the others to the samples weighted by their counts
    (k-means with a cluster per distinct colour: those colours, without Lloyd passes).
    Records the space the samples are in (``input_space_``, kept in model files), so
    that scoring an image with the model later converts pixels the same way
    (emcore.densities.pixels_in_model_space)."""
    if isinstance(model, SpatialGaussianMixture):
        values, mask = samples.pixel_grid()
        model.fit(values, mask=mask)
    elif (isinstance(model, KMeans) and samples.weights is not None
          and model.n_clusters == len(samples.fit_samples)):
        _every_value_kept(model, samples.fit_samples)
    else:
        model.fit(samples.fit_samples, sample_weight=samples.weights)
    model.input_space_ = samples.input_space
    return model


def _every_value_kept(model: KMeans, values: np.ndarray) -> KMeans:
    """``model`` fitted with one cluster per distinct value (the lossless result, without
    running Lloyd's O(K^2) passes)."""
    model._check_params(len(values), values.shape[1])
    model.cluster_centers_ = np.array(values, copy=True)
    model.labels_ = np.arange(len(values), dtype=np.int32)
    model.inertia_, model.n_iter_, model.n_features_in_ = 0.0, 0, values.shape[1]
    return model


class Segmentation:
    """The result of the pipeline.

    Attributes
    ----------
    model : KMeans or GaussianMixture
        Fitted on the image's samples (in OKLab when color_space='oklab').
    labels : ndarray (H, W) int32
        Each pixel's palette index.
    palette : ndarray (K, C)
        The colours painted, in the image dtype.
    image : ndarray
        The repainted image, the input's shape and dtype (alpha kept; integers of
        another type than uint8 and uint16: the depth their values fit, else float64).
    icc_profile : bytes or None
        The input's colour profile, written with the result.
    metadata : dict or None
        The input's resolution, PNG text and EXIF (``Picture.metadata``), written
        with the result.

    ``labels`` and ``image`` are made when first read (from the samples' labels and
    the palette, :func:`finish`), so that writing an indexed file makes neither: on
    a 24 MP photo they are 96 and 72 MB.
    """

    def __init__(self, model: Model, labels: np.ndarray | None, palette: np.ndarray,
                 image: np.ndarray | None = None, icc_profile: bytes | None = None,
                 metadata: dict | None = None, *, samples: ImageSamples | None = None,
                 sample_labels: np.ndarray | None = None):
        if labels is None and (samples is None or sample_labels is None):
            raise ValueError("a Segmentation needs labels, or samples and sample_labels")
        if image is None and samples is None:
            raise ValueError("a Segmentation needs an image, or the samples to paint it")
        self.model, self.palette = model, palette
        self.icc_profile, self.metadata = icc_profile, metadata
        self._labels, self._image = labels, image
        self._samples, self._sample_labels = samples, sample_labels
        self._indices: np.ndarray | None = None  # uint8 labels, made by indices()

    def __repr__(self) -> str:
        return (f"Segmentation({type(self.model).__name__}, {len(self.palette)} colours, "
                f"{'x'.join(str(n) for n in self.shape)} pixels)")

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image."""
        if self._labels is not None:
            return tuple(self._labels.shape)
        assert self._samples is not None
        return tuple(self._samples.shape)

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            assert self._samples is not None and self._sample_labels is not None
            self._labels = self._samples.to_pixels(self._sample_labels)
            self._release_samples()
        return self._labels

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            assert self._samples is not None
            self._image = self._samples.paint(self.indices(), self.palette)
            self._release_samples()
        return self._image

    def _release_samples(self) -> None:
        """Once the labels and the image are both made, the samples (the pixels and
        each one's distinct colour) are needed no more: not kept alive by this result."""
        if self._labels is not None and self._image is not None:
            self._samples, self._sample_labels = None, None

    def indices(self) -> np.ndarray:
        """(H, W) palette index of every pixel, uint8 when the palette has at most 256
        entries (what an indexed file holds; not the int32 ``labels`` map)."""
        if len(self.palette) > 256:
            return self.labels
        if self._indices is None:
            if self._samples is not None and self._sample_labels is not None:
                self._indices = self._samples.to_pixels(self._sample_labels, np.uint8)
            else:
                self._indices = self.labels.astype(np.uint8)
        return self._indices

    def image_rows(self, rows: slice) -> np.ndarray:
        """``image[rows]`` (a slice of rows, step 1), painted on their own when the image
        is not made."""
        if self._image is not None or self._samples is None:
            return self.image[rows]
        indices = self.indices()
        if is_dask_array(indices):
            return self.image[rows]
        start = rows.indices(len(indices))[0]
        return self._samples.paint_rows(indices[rows], self.palette, start)

    def image_like(self) -> np.ndarray:
        """An array of the image's shape and dtype: the image once made, else a read-only
        stand-in of no memory (each pixel the first entry's colour, :meth:`ImageSamples.
        painted_stand_in`), for what reads only those."""
        if self._image is None and self._samples is not None:
            return self._samples.painted_stand_in(self.palette)
        return self.image

    def written(self, fmt: str, rgb: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(image, labels) to hand :func:`emcore.image.write_image` for format ``fmt``.
        An indexed write reads only the image's shape and dtype, so while the image is
        not made it is given :meth:`image_like`'s stand-in beside the uint8 indices;
        otherwise the repainted image and the labels."""
        if rgb:
            return self.image, None
        like = self.image_like()
        if like is not self._image and indexable(like, self.palette, fmt):
            return like, self.indices()
        return self.image, self.labels

    def save(self, path: str | os.PathLike[str], *, rgb: bool = False,
             optimize: bool = False) -> None:
        """Write the image atomically (the format from the extension).

        Parameters
        ----------
        path : str or path-like
        rgb : bool, default False
            Write RGB rather than an image indexed into exactly the palette (written
            where the format allows: PNG, GIF, TIFF, BMP).
        optimize : bool, default False
            Make a PNG smaller by oxipng, the same pixels (see
            :func:`emcore.image.save_image`).
        """
        image, labels = self.written(image_format(path), rgb)
        save_image(image, path, labels=labels, palette=None if rgb else self.palette,
                   icc_profile=self.icc_profile, metadata=self.metadata, optimize=optimize)


def finish(samples: ImageSamples, model: Model, *,
           repaint: str = "segment", dither: float = 0.0,
           eight_bit: bool = False) -> Segmentation:
    """Labels, palette and repainted image from a model fitted on ``samples``.

    ``eight_bit``: a 16-bit image gets an 8-bit palette (each entry rounded from
    the 16-bit fit, as pngquant does for 16-bit PNGs) and an 8-bit result, for an
    indexed file; otherwise the palette keeps the image's dtype.
    """
    check_choice(repaint, "repaint", REPAINTS)
    dither = check_float(dither, "dither", minimum=0)
    if dither > 1:
        raise ValueError(f"dither must be between 0 and 1, got {dither}")
    if isinstance(model, KMeans):
        sample_labels, centres = model.labels_, model.cluster_centers_
    elif isinstance(model, SpatialGaussianMixture):
        sample_labels, centres = samples.grid_to_samples(model.labels_), model.means_
    else:
        sample_labels, centres = model.predict(samples.fit_samples), model.means_
    if np.shape(centres)[1] != samples.fit_samples.shape[1]:
        raise ValueError(f"the model was fitted on {np.shape(centres)[1]} feature(s) but the "
                         f"image's samples have {samples.fit_samples.shape[1]}")
    if repaint == "segment":
        centres = samples.segment_means(sample_labels, len(centres), centres)
    to_eight_bits = eight_bit and samples.dtype == np.uint16  # 65535 / 257 = 255
    n_threads = getattr(model, "n_threads", None)
    if samples.transparent:
        palette, sample_labels = _alpha_palette(samples, sample_labels, centres,
                                                refine=isinstance(model, KMeans),
                                                n_threads=n_threads,
                                                tol=getattr(model, "tol", 0.0))
    elif isinstance(model, KMeans) and repaint == "segment" and samples.has_lattice:
        # k-means goes on to the best palette of integers (of 8-bit entries for a
        # 16-bit image written indexed), not merely its centres rounded
        palette, sample_labels = samples.lattice_palette(centres, 257 if to_eight_bits else 1,
                                                         n_threads)
    else:
        palette = samples.palette_colors(centres)
    in_image_units = palette  # what the ditherer compares the pixels with
    if to_eight_bits:
        palette = np.rint(palette / 257).astype(np.uint8)
        in_image_units = palette.astype(np.float64) * 257
    if dither > 0:
        return Segmentation(model, samples.dither(in_image_units, dither), palette, None,
                            samples.icc_profile, samples.metadata, samples=samples)
    # the labels and image are made when asked for (an indexed write needs neither)
    return Segmentation(model, None, palette, None, samples.icc_profile, samples.metadata,
                        samples=samples, sample_labels=np.array(check_labels(
                            sample_labels, (len(samples.samples),), len(palette),
                            "sample_labels"), copy=True))


def _alpha_palette(samples: ImageSamples, sample_labels: np.ndarray, centres: np.ndarray, *,
                   refine: bool, n_threads: int | None,
                   tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The palette (K, C + 1) of an image with alpha, and each sample's entry.

    Entry 0 is fully transparent when the image has transparent pixels. k-means
    centres are refined by Lloyd iterations under the palette's rules
    (emcore/transparency.py); a mixture's segments are kept, except that opaque
    pixels move to their nearest opaque entry. Entries are rounded to integers,
    every sample then takes its nearest rounded entry (for k-means), and the
    entries are ordered transparent, translucent, opaque (a PNG's tRNS chunk then
    stops at the last translucent one).
    """
    scale = full_scale(samples.dtype)
    X = np.ascontiguousarray(samples.fit_samples)
    threads = resolve_n_threads(n_threads, work_of(X, len(centres) + 1))
    w = samples.weights if samples.weights is not None else np.ones(len(X))
    is_opaque = samples.samples[:, -1] == scale
    reserved = int(samples.has_transparent)
    start = np.concatenate([np.zeros((reserved, X.shape[1])), centres]).astype(np.float64)
    labels = np.asarray(sample_labels, dtype=np.int32) + reserved
    fixed = np.arange(len(start)) < reserved
    if refine:  # k-means' own stopping rule
        start, labels, opaque = constrained_lloyd(
            X, w, is_opaque, start, labels, fixed, scale,
            tol=absolute_tolerance(InMemorySamples(X, w, threads), tol), n_threads=threads)
    else:
        opaque = opaque_entry_mask(labels, w, is_opaque, len(start), fixed)
        wrong = is_opaque & ~opaque[labels]
        if wrong.any():
            labels[wrong] = constrained_assign(X[wrong], w[wrong], is_opaque[wrong], start,
                                               opaque, threads)[0]
    palette = integer_entries(start, opaque, scale, samples.dtype)
    if refine:  # on among integer entries, under the same rules
        palette, labels = integer_polish(X, w, is_opaque, palette, fixed, scale,
                                         n_threads=threads)
        palette = palette.astype(samples.dtype)
    order = entry_order(len(palette), palette[:, -1].astype(np.float64), scale)
    return reordered(palette, labels, order)


def segment_image(image: Any, n_colors: int, *, method: str = "kmeans",
                  color_space: str = "rgb", dither: float = 0.0, repaint: str = "segment",
                  unique_colors: bool = True, smoothing: float = 0.0,
                  random_state: int | np.random.RandomState | None = 0,
                  n_threads: int | None = None, **options: Any) -> Segmentation:
    """Reduce an image to ``n_colors`` colours: the whole pipeline in one call.

    Parameters
    ----------
    image : str, path, binary file, PIL image, Image, array, or Dask array (H, W, 3) / (H, W)
    n_colors : int
        More than the image's distinct colours keeps every colour (with a warning).
    method : {'kmeans', 'gmm'}, default 'kmeans'
        k-means gives the best picture on every photograph measured (README,
        "Choosing the defaults"); 'gmm' fits a Gaussian mixture (spherical
        covariances unless ``covariance_type`` says otherwise).
    color_space : {'rgb', 'oklab'}, default 'rgb'
        Fit in OKLab for a palette spaced by perceived difference.
    dither : float, default 0
        Floyd-Steinberg error diffusion strength, 0 (off) to 1. 15/16 looks best
        from a distance on the photographs measured (README, "Dithering").
    repaint : {'segment', 'component'}, default 'segment'
        Paint each segment with the mean of its pixels, or with the model's
        mean or centre. With k-means on an 8 or 16-bit image, 'segment' goes on
        with Lloyd's iterations among integer colours until the rounded palette is
        a local optimum (``lattice_palette``).
    unique_colors : bool, default True
        Ignored with ``smoothing`` (a spatial fit sees every pixel).
    smoothing : float, default 0
        The Potts prior's ``beta``: above 0, a :class:`SpatialGaussianMixture` is
        fitted to the pixel grid so that neighbouring pixels tend to share a
        segment (noisy images come out whole instead of speckled); ``method`` is
        then ignored. 1 is a good start.
    random_state : int, RandomState or None, default 0
    n_threads : int or None
    **options
        Passed to :class:`KMeans`, :class:`GaussianMixture` or
        :class:`SpatialGaussianMixture`. k-means here takes over-relaxed steps
        (``over_relaxation=IMAGE_OVER_RELAXATION``, 1.8) unless given; 1.0 is
        Lloyd's algorithm.

    Returns
    -------
    Segmentation
    """
    check_choice(method, "method", METHODS)
    smoothing = check_float(smoothing, "smoothing", minimum=0)
    unique_colors = check_bool(unique_colors, "unique_colors")
    samples = ImageSamples(image, unique_colors=unique_colors and smoothing == 0,
                           color_space=color_space, n_threads=n_threads)
    k = samples.effective_k(n_colors, "n_colors")
    model = fit_model(samples, k, method, smoothing, random_state=random_state,
                      n_threads=n_threads, **options)
    return finish(samples, model, repaint=repaint, dither=dither)
