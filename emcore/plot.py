"""Plots for the k-means tutorial's workflow (needs matplotlib: ``pip install 'emcore[plot]'``).

Functions that take ``path`` write the figure there atomically and work without
a display; they always return the matplotlib Figure.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from emcore._files import atomic_output
from emcore.image import Image, float_to_uint8

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def _figure(**kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("emcore.plot needs matplotlib: pip install 'emcore[plot]'") from None
    return Figure(**kwargs)


def _finish(fig, path):
    if path is not None:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=os.path.splitext(os.fspath(path))[1].lstrip(".") or "png")
    return fig


def _matrix(image):
    arr = image.rgb_matrix if isinstance(image, Image) else np.asarray(image)
    return arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr


def display_images(*images: Image | ArrayLike, titles: Sequence[str] | None = None,
                   path: str | os.PathLike[str] | None = None) -> Any:
    """Show images side by side.

    Parameters
    ----------
    *images : Image or array_like
    titles : sequence of str, optional
        One per image; by default each :class:`Image`'s title.
    path : str or path-like, optional
        Also write the figure there (the format from the extension).

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    if not images:
        raise ValueError("display_images needs at least one image")
    fig = _figure(figsize=(4 * len(images), 4))
    for i, image in enumerate(images):
        ax = fig.add_subplot(1, len(images), i + 1)
        arr = _matrix(image)
        if arr.dtype.kind == "f":  # k-means centres are floats on the 0-255 scale
            eight_bit = float_to_uint8(arr)
            arr = arr if eight_bit is None else eight_bit
        ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
        title = titles[i] if titles else getattr(image, "title", "")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return _finish(fig, path)


def plot_rgb_vector(vector: ArrayLike, *, max_points: int = 20000, random_state: int = 0,
                    title: str = "", path: str | os.PathLike[str] | None = None) -> Any:
    """3-D scatter of pixel colours, each point drawn in its own colour.

    Parameters
    ----------
    vector : array_like of shape (N, 3)
        Pixel colours (0..255 integers, or 0..1 floats).
    max_points : int, default 20000
        Larger inputs are subsampled to this many pixels, uniformly at random.
    random_state : int, default 0
        Seed of the subsample.
    title : str, default ''
    path : str or path-like, optional
        Also write the figure there.

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    vector = np.asarray(vector)
    if vector.ndim != 2 or vector.shape[1] != 3:
        raise ValueError(f"plot_rgb_vector needs (N, 3) colours, got shape {vector.shape}")
    if len(vector) > max_points:
        idx = np.random.RandomState(random_state).choice(len(vector), max_points, replace=False)
        vector = vector[idx]
    scale = 255.0 if vector.dtype == np.uint8 or vector.max() > 1 else 1.0
    fig = _figure(figsize=(6, 6))
    ax = fig.add_subplot(projection="3d")
    ax.scatter(vector[:, 0], vector[:, 1], vector[:, 2],
               c=np.clip(vector / scale, 0, 1), s=2, depthshade=False)
    ax.set_xlabel("red")
    ax.set_ylabel("green")
    ax.set_zlabel("blue")
    ax.set_title(title)
    return _finish(fig, path)


def plot_k_metrics(k_values: ArrayLike, costs: ArrayLike, times: ArrayLike, *,
                   cost_name: str = "cost", path: str | os.PathLike[str] | None = None) -> Any:
    """Cost and fitting time against k, on two axes (the tutorial's last figure).

    Parameters
    ----------
    k_values, costs, times : array_like of equal, non-zero length
        For example the three lists :func:`emcore.k_sweep` returns.
    cost_name : str, default 'cost'
        The cost axis' label.
    path : str or path-like, optional
        Also write the figure there.

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    k_values, costs, times = map(np.asarray, (k_values, costs, times))
    if not (len(k_values) == len(costs) == len(times)) or len(k_values) == 0:
        raise ValueError("k_values, costs and times must be non-empty and of equal length")
    fig = _figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ax.plot(k_values, costs, "o-", color="tab:blue")
    ax.set_xlabel("k")
    ax.set_ylabel(cost_name, color="tab:blue")
    twin = ax.twinx()
    twin.plot(k_values, times, "s--", color="tab:orange")
    twin.set_ylabel("time (s)", color="tab:orange")
    ax.set_title(f"{cost_name} and time against k")
    fig.tight_layout()
    return _finish(fig, path)
