"""The bundled photographs, for the tests (a module name of its own: benchmarks/ has a
conftest.py too, and two modules named conftest cannot both be imported)."""
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"


def load_photo(name):
    with Image.open(DATA / f"{name}.png") as im:
        return np.asarray(im.convert("RGB"))


def segment_mean_palette(pixels, labels, k):
    """(k, C) uint8: the rounded float64 mean of each label's pixels, by numpy alone."""
    flat = pixels.reshape(-1, pixels.shape[-1]).astype(np.float64)
    lab = np.asarray(labels).ravel()
    sums = np.zeros((k, flat.shape[1]))
    np.add.at(sums, lab, flat)
    counts = np.bincount(lab, minlength=k)
    means = sums / np.maximum(counts, 1)[:, None]
    return np.clip(np.rint(means), 0, 255).astype(np.uint8)
