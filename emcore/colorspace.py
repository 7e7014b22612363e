"""sRGB <-> OKLab (Björn Ottosson's perceptual colour space), for fitting palettes.

Distances in OKLab follow perceived colour differences more closely than in
sRGB, so a palette fitted there spends its colours where the eye sees them.
Pixels go to OKLab in a kernel (emcore/_colors.pyx, float64 arithmetic, written
as float32 for the fit); the fitted palette, a few rows, comes back here.
"""
from __future__ import annotations

import numpy as np

from emcore import _colors
from emcore._threads import resolve_n_threads, work_of

#: linear sRGB -> LMS cone responses, and cube-root LMS -> (L, a, b)
LMS_FROM_RGB = np.array([[0.4122214708, 0.5363325363, 0.0514459929],
                         [0.2119034982, 0.6806995451, 0.1073969566],
                         [0.0883024619, 0.2817188376, 0.6299787005]])
LAB_FROM_LMS = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                         [1.9779984951, -2.4285922050, 0.4505937099],
                         [0.0259040371, 0.7827717662, -0.8086757660]])
RGB_FROM_LMS = np.linalg.inv(LMS_FROM_RGB)
LMS_FROM_LAB = np.linalg.inv(LAB_FROM_LMS)

COLOR_SPACES = ("rgb", "oklab")


def full_scale(dtype: np.dtype) -> float:
    """The value of full intensity for a pixel dtype: 255, 65535, or 1.0 for floats."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def srgb_to_linear(u: np.ndarray) -> np.ndarray:
    """The sRGB transfer function inverted (u in [0, 1])."""
    u = np.asarray(u, dtype=np.float64)
    return np.where(u <= 0.04045, u / 12.92, ((u + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (v in [0, 1]; values outside keep their sign)."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(np.abs(v) <= 0.0031308, 12.92 * v,
                    np.sign(v) * (1.055 * np.abs(v) ** (1 / 2.4) - 0.055))


def srgb_to_oklab(rgb: np.ndarray, scale: float = 255.0) -> np.ndarray:
    """OKLab of sRGB colours (..., 3) given on 0..scale, in float64 (numpy, for small arrays)."""
    lms = srgb_to_linear(np.asarray(rgb, dtype=np.float64) / scale) @ LMS_FROM_RGB.T
    return np.cbrt(lms) @ LAB_FROM_LMS.T


def oklab_to_srgb(lab: np.ndarray, scale: float = 255.0) -> np.ndarray:
    """sRGB (0..scale, float64, not clipped) of OKLab colours (..., 3)."""
    lms = (np.asarray(lab, dtype=np.float64) @ LMS_FROM_LAB.T) ** 3
    return linear_to_srgb(lms @ RGB_FROM_LMS.T) * scale


def samples_to_oklab(rgb: np.ndarray, scale: float, n_threads: int | None = None,
                     dtype: type = np.float32) -> np.ndarray:
    """OKLab of (N, 3) 8 or 16-bit sRGB samples on 0..scale, in ``dtype``, in the kernel.

    Only the (N, 3) output is allocated: no float64 temporaries of the samples.
    Float images have no agreed full scale (1.0 or 255), so they are refused.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise ValueError(f"OKLab needs 3 colour channels, got samples of shape {rgb.shape}")
    if rgb.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"OKLab fitting needs an 8 or 16-bit sRGB image, got {rgb.dtype}: "
                        "convert it to uint8 first, or use color_space='rgb'")
    rgb = np.ascontiguousarray(rgb)
    out: np.ndarray = np.empty(rgb.shape, dtype=dtype)
    _colors.srgb_to_oklab(rgb, float(scale), LMS_FROM_RGB, LAB_FROM_LMS, out,
                          # a pixel's conversion (two 3x3 products, three cube roots)
                          # costs about what a 16-component pass does
                          resolve_n_threads(n_threads, work_of(rgb.reshape(-1, 3), 16)))
    return out
