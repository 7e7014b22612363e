"""Image-level workflows: the seed's ``EM`` class, ``save_new`` and ``quantize``.

Both fit on the image's unique colours weighted by how often each occurs, which
gives the same model as fitting every pixel (weights count as copies) at a
fraction of the cost on photographs.
"""
import inspect

import numpy as np

from emcore._validation import check_choice, check_int
from emcore.image import as_pixel_array, save_image, split_alpha, unique_colors
from emcore.kmeans import KMeans
from emcore.mixture import GaussianMixture

_GMM_OPTIONS = set(inspect.signature(GaussianMixture.__init__).parameters) - {
    "self", "n_components", "max_iter"}


def _gather(table, index, chunk=1 << 20):
    """``table[index]`` in chunks: numpy turns an int32 index into a full intp copy first,
    which on a 50 MP image is 400 MB; per chunk it is 8 MB."""
    flat = index.reshape(-1)
    out = np.empty((len(flat),) + table.shape[1:], dtype=table.dtype)
    for start in range(0, len(flat), chunk):
        np.take(table, flat[start:start + chunk], axis=0, out=out[start:start + chunk])
    return out.reshape(index.shape + table.shape[1:])


class _Pixels:
    """An image split into the samples to fit and the way back to pixels."""

    def __init__(self, image, unique):
        arr = as_pixel_array(image)
        self.dtype = arr.dtype
        self.grayscale = arr.ndim == 2
        color, self.alpha = split_alpha(arr)
        self.shape = color.shape[:2]
        flat = color.reshape(-1, color.shape[2])
        if unique:
            self.samples, counts, self.inverse = unique_colors(flat)
            self.weights = counts.astype(np.float64)
        else:
            self.samples, self.weights, self.inverse = flat, None, None
        self.n_distinct = (len(self.samples) if unique
                           else len(unique_colors(flat)[0]))

    def check_k(self, k, name):
        k = check_int(k, name, minimum=1)
        if k > self.n_distinct:
            raise ValueError(f"{name}={k} is more than the {self.n_distinct} distinct colours "
                             f"in the image")
        return k

    def to_pixels(self, sample_labels):
        """The (H, W) label map, int32 (half the memory of intp on a 50 MP image)."""
        sample_labels = np.asarray(sample_labels, dtype=np.int32)
        labels = sample_labels if self.inverse is None else _gather(sample_labels, self.inverse)
        return labels.reshape(self.shape)

    def paint(self, labels, palette):
        """The image with each pixel replaced by its cluster's colour, in the input dtype."""
        colors = np.asarray(palette, dtype=np.float64)
        if self.dtype.kind in "ui":
            info = np.iinfo(self.dtype)
            colors = np.clip(np.rint(colors), info.min, info.max)
        out = _gather(colors.astype(self.dtype), labels)
        if self.alpha is not None:
            out = np.concatenate([out, self.alpha[:, :, None]], axis=2)
        elif self.grayscale:
            out = out[:, :, 0]
        return out


def _fit(px, k, method, **options):
    """k-means or a Gaussian mixture fitted to the pixels' samples (weighted by counts)."""
    model = KMeans(k, **options) if method == "kmeans" else GaussianMixture(k, **options)
    return model.fit(px.samples, sample_weight=px.weights)


def _palette_and_labels(px, model):
    """The fitted colours and the (H, W) map of which one each pixel takes."""
    if isinstance(model, KMeans):
        return model.cluster_centers_, px.to_pixels(model.labels_)
    return model.means_, px.to_pixels(model.predict(px.samples))


class EM:
    """Segment an image with a Gaussian mixture fitted by EM.

    The call shape of the Rust/PyO3 module it replaces::

        em = EM("photo.jpg", 32)
        em.fit(30)
        save_new(em, "segmented.png")

    Parameters
    ----------
    image : str, path, PIL image or array
        (H, W) grayscale, (H, W, 3) colour, or with an alpha channel (ignored for
        fitting, kept in ``segmented()``); 8 or 16-bit integers or floats.
    n_clusters : int
        Mixture components; at most the number of distinct colours.
    unique_colors : bool, default True
        Fit on the distinct colours weighted by their counts (the same model,
        much faster on photographs).
    **options
        Any :class:`GaussianMixture` option (covariance_type, tol, reg_covar,
        init_params, n_init, random_state, n_threads, callback, ...). The
        default covariance_type is 'full'; random_state defaults to 0 so the
        same call gives the same result; init_params defaults to 'k-means++'
        (seeding only, where GaussianMixture runs k-means to convergence
        first): after 30 epochs on the bundled coffee photo its likelihood is
        as good (-11.467 vs -11.476 per pixel at 2.2 MP) and the job is about
        80 ms faster.

    Attributes
    ----------
    model_ : GaussianMixture
        The fitted mixture; its fitted attributes (means_, weights_,
        covariances_, converged_, n_iter_, lower_bound_, ...) are also
        readable on the EM object itself.
    """

    def __init__(self, image, n_clusters, *, unique_colors=True, **options):
        unknown = set(options) - _GMM_OPTIONS
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}; EM accepts "
                            f"unique_colors and {', '.join(sorted(_GMM_OPTIONS))}")
        options.setdefault("random_state", 0)
        options.setdefault("init_params", "k-means++")
        self._pixels = _Pixels(image, bool(unique_colors))
        self.n_clusters = self._pixels.check_k(n_clusters, "n_clusters")
        self.unique_colors = bool(unique_colors)
        self.model_ = GaussianMixture(self.n_clusters, **options)
        self._labels = None

    def fit(self, epochs=100):
        """Run at most ``epochs`` EM iterations (fewer once converged); returns self."""
        self.model_.max_iter = check_int(epochs, "epochs", minimum=0)
        px = self._pixels
        self.model_.fit(px.samples, sample_weight=px.weights)
        self._labels = None
        return self

    def __getattr__(self, name):
        # fitted attributes of the mixture, e.g. em.means_, em.converged_
        if name.endswith("_") and not name.startswith("_") and "model_" in self.__dict__:
            return getattr(self.__dict__["model_"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def labels(self):
        """Most likely component of every pixel, shape (H, W)."""
        if self._labels is None:
            self.model_._check_fitted()
            self._labels = self._pixels.to_pixels(self.model_.predict(self._pixels.samples))
        return self._labels

    def segmented(self):
        """The image with every pixel replaced by its component's mean colour (rounded)."""
        return self._pixels.paint(self.labels(), self.model_.means_)


def save_new(em, path):
    """Write ``em.segmented()`` to ``path`` (format from the extension), atomically."""
    save_image(em.segmented(), path)


def quantize(image, n_colors, *, method="kmeans", unique_colors=True, random_state=0,
             n_threads=None, **options):
    """Reduce an image to ``n_colors`` colours in one call.

    Parameters
    ----------
    image : str, path, PIL image or array
    n_colors : int
    method : {'kmeans', 'gmm'}
        k-means (Lloyd, k-means++ start) or a Gaussian mixture fitted by EM.
    unique_colors : bool, default True
        Fit on distinct colours weighted by their counts.
    random_state : int, RandomState or None, default 0
    n_threads : int or None
    **options
        Passed to :class:`KMeans` or :class:`GaussianMixture`.

    Returns
    -------
    quantized : ndarray, the image's shape and dtype
    palette : ndarray (n_colors, C) float64, the cluster colours
    labels : ndarray (H, W), the palette index of every pixel
    """
    check_choice(method, "method", ("kmeans", "gmm"))
    px = _Pixels(image, bool(unique_colors))
    k = px.check_k(n_colors, "n_colors")
    model = _fit(px, k, method, random_state=random_state, n_threads=n_threads, **options)
    palette, labels = _palette_and_labels(px, model)
    return px.paint(labels, palette), np.asarray(palette, dtype=np.float64), labels


def k_sweep(image, k_values, *, method="kmeans", unique_colors=True, random_state=0,
            n_threads=None, callback=None, **options):
    """Fit once per k and record the cost and the time, the k-means tutorial's closing plot.

    Parameters
    ----------
    image : str, path, PIL image or array
    k_values : iterable of int
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
    import time
    check_choice(method, "method", ("kmeans", "gmm"))
    px = _Pixels(image, bool(unique_colors))
    ks = [px.check_k(k, "k") for k in k_values]
    if not ks:
        raise ValueError("k_values is empty")
    costs, times = [], []
    for k in ks:
        start = time.perf_counter()
        model = _fit(px, k, method, random_state=random_state, n_threads=n_threads, **options)
        cost = (model.inertia_ if method == "kmeans"
                else model.bic(px.samples, sample_weight=px.weights))
        times.append(time.perf_counter() - start)
        costs.append(cost)
        if callback is not None:
            callback(k, cost, times[-1])
    return {"k": np.asarray(ks), "cost": np.asarray(costs), "time": np.asarray(times),
            "cost_name": "inertia" if method == "kmeans" else "BIC"}
