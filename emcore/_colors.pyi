# Types of the compiled colour kernels (emcore/_colors.pyx), for type checkers.
import numpy as np

def unique_rgb8(
    pixels: np.ndarray, present: np.ndarray, summary: np.ndarray, rank: np.ndarray,
    z_order: bool = ..., n_threads: int = ..., with_inverse: bool = ...
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...
def srgb_to_oklab(
    rgb: np.ndarray,
    scale: float,
    lms_from_rgb: np.ndarray,
    lab_from_lms: np.ndarray,
    out: np.ndarray,
    n_threads: int,
) -> None: ...
def floyd_steinberg(
    image: np.ndarray,
    palette: np.ndarray,
    diffused: np.ndarray,
    gap: np.ndarray,
    order: np.ndarray,
    strength: float,
    low: float,
    high: float,
    encode: bool,
    labels: np.ndarray,
) -> None: ...
def colour_cells(
    colors: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray,
    shift: int,
    heavy: float,
    means: np.ndarray,
    cell_weights: np.ndarray,
) -> int: ...
